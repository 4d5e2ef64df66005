/*
 * store.c - svc-eval's SQL and Redis keys (store.h). Every statement is parameterised; lists of
 * rows travel as one JSON parameter (jsonb_to_recordset), so an attempt's results are written
 * in one round trip and a batch's grades in one statement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cm/follow.h"
#include "cm/log.h"
#include "cm/util.h"
#include "config.h"
#include "store.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static int
get_int(const cm_pg_result *r, int row, int col)
{
	int64_t v = 0;

	(void)cm_parse_i64(cm_pg_get(r, row, col), &v);
	return (int)v;
}

static bool
get_bool(const cm_pg_result *r, int row, int col)
{
	return strcmp(cm_pg_get(r, row, col), "t") == 0;
}

static json_t *
list_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* A malloc'd JSON text of the list (NULL on OOM or a string jansson refuses). */
static char *
list_text(char *const *v, size_t n)
{
	json_t *a = list_json(v, n);
	char   *s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;

	json_decref(a);
	return s;
}

static bool
read_list(const char *text, char **list, size_t *n)
{
	json_error_t e;
	json_t      *a = json_loads(text, 0, &e);
	bool         ok = true;

	for (size_t i = 0; json_is_array(a) && i < json_array_size(a) && ok; i++) {
		json_t *v = json_array_get(a, i);
		if (json_is_string(v))
			ok = eval_list_add(list, n, json_string_value(v));
	}
	json_decref(a);
	return ok;
}

void
eval_attempt_row_fini(eval_attempt_row *a)
{
	for (size_t i = 0; i < a->n_results; i++) {
		eval_result_row *r = &a->results[i];
		free(r->question_id);
		free(r->question);
		free(r->reference);
		free(r->answer);
		free(r->feedback);
		free(r->suggestions);
		free(r->hint);
		free(r->error);
		free(r->source);
	}
	free(a->results);
	a->results = NULL;
	a->n_results = 0;
	eval_overall_fini(&a->overall);
}

/* ---- attempts -------------------------------------------------------------------------------- */

static json_t *
result_json(const eval_result_row *r)
{
	return json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:b,s:i,s:b,s:s,s:s,s:s,s:s,s:s}", "idx",
	                 r->idx, "question_id", r->question_id, "type", eval_type_name(r->type),
	                 "status", eval_status_name(r->status), "question", r->question,
	                 "reference", r->reference, "page", r->page, "answer", r->answer,
	                 "via_model", r->via_model, "score", r->score, "correct", r->correct,
	                 "feedback", r->feedback, "suggestions", r->suggestions, "hint", r->hint,
	                 "error", r->error, "source", r->source);
}

#define ATTEMPT_INSERT                                                                             \
	"INSERT INTO attempts (id, owner_id, question_set_id, document_id, job_id, status,"        \
	" strictness, want_overall, topic, overall_done, overall_feedback, strengths, areas,"      \
	" study, document_sha256) SELECT $1::uuid, $2, $3::uuid, $4::uuid, $5::uuid, $6, $7,"      \
	" $8::boolean, $9, $10::boolean, $11, $12::jsonb, $13::jsonb, $14::jsonb, $15"

cm_err
eval_store_insert_attempt(cm_pg *pg, const eval_attempt_row *a)
{
	char         *strengths = NULL, *areas = NULL, *study = NULL, *rows = NULL;
	json_t       *arr = json_array();
	const char   *p[15];
	cm_pg_result *r = NULL;
	cm_err        err = CM_ENOMEM;

	if (arr == NULL)
		goto out;
	for (size_t i = 0; i < a->n_results; i++) {
		json_t *o = result_json(&a->results[i]);
		if (o == NULL || json_array_append_new(arr, o) != 0)
			goto out;
	}
	if ((rows = json_dumps(arr, JSON_COMPACT)) == NULL ||
	    (strengths = list_text(a->overall.strengths, a->overall.n_strengths)) == NULL ||
	    (areas = list_text(a->overall.areas, a->overall.n_areas)) == NULL ||
	    (study = list_text(a->overall.study, a->overall.n_study)) == NULL)
		goto out;
	p[0] = a->id;
	p[1] = a->owner;
	p[2] = a->set_id[0] != '\0' ? a->set_id : NULL;
	p[3] = a->document_id[0] != '\0' ? a->document_id : NULL;
	p[4] = a->job_id[0] != '\0' ? a->job_id : NULL;
	p[5] = a->status;
	p[6] = eval_strictness_name(a->strictness);
	p[7] = a->want_overall ? "true" : "false";
	p[8] = a->topic;
	p[9] = a->overall_done ? "true" : "false";
	p[10] = a->overall.feedback != NULL ? a->overall.feedback : "";
	p[11] = strengths;
	p[12] = areas;
	p[13] = study;
	p[14] = a->document_sha256;
	/* With a document, its row is taken first (cm/follow.h): a deletion being applied makes
	 * this wait, then insert nothing, so no attempt outlives its document (cascade.h). */
	if ((err = cm_pg_exec(pg,
	                      p[3] != NULL ? CM_FOLLOW_LIVE_DOCUMENT(4) ATTEMPT_INSERT
	                          " FROM d WHERE d.deleted_at IS NULL"
	                                   : ATTEMPT_INSERT,
	                      15, p, &r)) != CM_OK)
		goto out;
	if (cm_pg_affected(r) != 1) {
		err = CM_ENOTFOUND;
		goto out;
	}
	p[1] = rows;
	err = cm_pg_exec(
	    pg,
	    "INSERT INTO results (attempt_id, idx, question_id, type, status, question, reference,"
	    " page, answer, via_model, score, correct, feedback, suggestions, hint, error, source,"
	    " graded_at)"
	    " SELECT $1::uuid, r.idx, r.question_id, r.type, r.status, r.question, r.reference,"
	    " r.page, r.answer, r.via_model, r.score, r.correct, r.feedback, r.suggestions, r.hint,"
	    " r.error, r.source, CASE WHEN r.status = 'pending' THEN NULL ELSE now() END"
	    " FROM jsonb_to_recordset($2::jsonb) AS r(idx int, question_id text, type text,"
	    " status text, question text, reference text, page int, answer text, via_model boolean,"
	    " score int, correct boolean, feedback text, suggestions text, hint text, error text,"
	    " source text)",
	    2, p, NULL);
out:
	cm_pg_result_free(r);
	json_decref(arr);
	free(rows);
	free(strengths);
	free(areas);
	free(study);
	return err;
}

cm_err
eval_store_delete_document(cm_pg *pg, const char *document_id, const char *owner, eval_job_fn fn,
                           void *arg, int *deleted)
{
	const char   *p[2] = {document_id, owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	*deleted = 0;
	if ((err = cm_pg_exec(pg,
	                      "DELETE FROM attempts WHERE document_id = $1::uuid AND owner_id = $2"
	                      " RETURNING coalesce(job_id::text, '')",
	                      2, p, &r)) != CM_OK)
		return err;
	*deleted = cm_pg_nrows(r);
	for (int i = 0; fn != NULL && i < *deleted; i++)
		if (cm_pg_get(r, i, 0)[0] != '\0')
			fn(arg, cm_pg_get(r, i, 0));
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
eval_store_lock_owner(cm_pg *pg, const char *owner)
{
	const char *p[1] = {owner};

	return cm_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext('eval.submit'), hashtext($1))",
	                  1, p, NULL);
}

cm_err
eval_store_active(cm_pg *pg, const char *owner, int *n)
{
	const char   *p[1] = {owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	*n = 0;
	if ((err = cm_pg_exec(pg,
	                      "SELECT count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id"
	                      " WHERE a.owner_id = $1 AND j.status IN ('queued','running')",
	                      1, p, &r)) != CM_OK)
		return err;
	*n = get_int(r, 0, 0);
	cm_pg_result_free(r);
	return CM_OK;
}

static char *
dup_col(const cm_pg_result *r, int row, int col, bool *oom)
{
	char *s = strdup(cm_pg_get(r, row, col));

	if (s == NULL)
		*oom = true;
	return s;
}

static cm_err
read_results(cm_pg *pg, eval_attempt_row *a)
{
	const char   *p[1] = {a->id};
	cm_pg_result *r = NULL;
	bool          oom = false;
	cm_err        err;
	int           n;

	if ((err = cm_pg_exec(
	         pg,
	         "SELECT idx, question_id, type, status, question, reference, page,"
	         " answer, via_model, score, correct, feedback, suggestions, hint, error,"
	         " source FROM results WHERE attempt_id = $1::uuid ORDER BY idx",
	         1, p, &r)) != CM_OK)
		return err;
	n = cm_pg_nrows(r);
	if (n > 0 && (a->results = calloc((size_t)n, sizeof(*a->results))) == NULL) {
		cm_pg_result_free(r);
		return CM_ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		eval_result_row *x = &a->results[i];
		const char      *st = cm_pg_get(r, i, 3);
		x->idx = get_int(r, i, 0);
		x->question_id = dup_col(r, i, 1, &oom);
		x->type = strcmp(cm_pg_get(r, i, 2), "mcq") == 0 ? EVAL_MCQ : EVAL_OPEN;
		x->status = strcmp(st, "pending") == 0  ? EVAL_PENDING
		            : strcmp(st, "failed") == 0 ? EVAL_FAILED
		                                        : EVAL_GRADED;
		x->question = dup_col(r, i, 4, &oom);
		x->reference = dup_col(r, i, 5, &oom);
		x->page = get_int(r, i, 6);
		x->answer = dup_col(r, i, 7, &oom);
		x->via_model = get_bool(r, i, 8);
		x->score = get_int(r, i, 9);
		x->correct = get_bool(r, i, 10);
		x->feedback = dup_col(r, i, 11, &oom);
		x->suggestions = dup_col(r, i, 12, &oom);
		x->hint = dup_col(r, i, 13, &oom);
		x->error = dup_col(r, i, 14, &oom);
		x->source = dup_col(r, i, 15, &oom);
		a->n_results++;
	}
	cm_pg_result_free(r);
	return oom ? CM_ENOMEM : CM_OK;
}

cm_err
eval_store_get_attempt(cm_pg *pg, const char *id, const char *owner, bool with_results,
                       eval_attempt_row *a)
{
	const char   *p[2] = {id, owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	memset(a, 0, sizeof(*a));
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND;
	if ((err = cm_pg_exec(
	         pg,
	         "SELECT id::text, owner_id, coalesce(question_set_id::text, ''),"
	         " coalesce(document_id::text, ''), coalesce(job_id::text, ''), status, strictness,"
	         " want_overall, topic, overall_done, overall_feedback, strengths::text, "
	         "areas::text,"
	         " study::text, error, " TS("created_at") ", " TS(
	             "updated_at") ", document_sha256"
	                           " FROM attempts WHERE id = $1::uuid AND ($2::text IS NULL OR "
	                           "owner_id = $2)",
	         2, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 0) {
		cm_pg_result_free(r);
		return CM_ENOTFOUND;
	}
	cm_strlcpy(a->id, cm_pg_get(r, 0, 0), sizeof(a->id));
	cm_strlcpy(a->owner, cm_pg_get(r, 0, 1), sizeof(a->owner));
	cm_strlcpy(a->set_id, cm_pg_get(r, 0, 2), sizeof(a->set_id));
	cm_strlcpy(a->document_id, cm_pg_get(r, 0, 3), sizeof(a->document_id));
	cm_strlcpy(a->job_id, cm_pg_get(r, 0, 4), sizeof(a->job_id));
	cm_strlcpy(a->status, cm_pg_get(r, 0, 5), sizeof(a->status));
	(void)eval_strictness_parse(cm_pg_get(r, 0, 6), &a->strictness);
	a->want_overall = get_bool(r, 0, 7);
	cm_strlcpy(a->topic, cm_pg_get(r, 0, 8), sizeof(a->topic));
	a->overall_done = get_bool(r, 0, 9);
	if ((a->overall.feedback = strdup(cm_pg_get(r, 0, 10))) == NULL ||
	    !read_list(cm_pg_get(r, 0, 11), a->overall.strengths, &a->overall.n_strengths) ||
	    !read_list(cm_pg_get(r, 0, 12), a->overall.areas, &a->overall.n_areas) ||
	    !read_list(cm_pg_get(r, 0, 13), a->overall.study, &a->overall.n_study))
		err = CM_ENOMEM;
	cm_strlcpy(a->error, cm_pg_get(r, 0, 14), sizeof(a->error));
	cm_strlcpy(a->created_at, cm_pg_get(r, 0, 15), sizeof(a->created_at));
	cm_strlcpy(a->updated_at, cm_pg_get(r, 0, 16), sizeof(a->updated_at));
	cm_strlcpy(a->document_sha256, cm_pg_get(r, 0, 17), sizeof(a->document_sha256));
	cm_pg_result_free(r);
	if (err == CM_OK && with_results)
		err = read_results(pg, a);
	if (err != CM_OK)
		eval_attempt_row_fini(a);
	return err;
}

cm_err
eval_store_job_progress(cm_pg *pg, const char *job_id, char attempt_id[CM_UUID_LEN + 1], int *done,
                        int *total)
{
	const char   *p[1] = {job_id};
	cm_pg_result *r = NULL;
	cm_err        err;

	*done = *total = 0;
	attempt_id[0] = '\0';
	if ((err = cm_pg_exec(pg,
	                      "SELECT a.id::text, count(r.idx) FILTER (WHERE r.via_model),"
	                      " count(r.idx) FILTER (WHERE r.via_model AND r.status <> 'pending')"
	                      " FROM attempts a LEFT JOIN results r ON r.attempt_id = a.id"
	                      " WHERE a.job_id = $1::uuid GROUP BY a.id",
	                      1, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 0) {
		err = CM_ENOTFOUND;
	} else {
		cm_strlcpy(attempt_id, cm_pg_get(r, 0, 0), CM_UUID_LEN + 1);
		*total = get_int(r, 0, 1);
		*done = get_int(r, 0, 2);
	}
	cm_pg_result_free(r);
	return err;
}

cm_err
eval_store_set_running(cm_pg *pg, const char *attempt_id)
{
	const char *p[1] = {attempt_id};

	return cm_pg_exec(pg,
	                  "UPDATE attempts SET status = 'running', updated_at = now()"
	                  " WHERE id = $1::uuid AND status = 'queued'",
	                  1, p, NULL);
}

cm_err
eval_store_put_grades(cm_pg *pg, const char *attempt_id, const eval_put *g, size_t n, int *written)
{
	json_t       *arr = json_array();
	char         *rows = NULL;
	const char   *p[2];
	cm_pg_result *r = NULL;
	cm_err        err = CM_ENOMEM;

	if (written != NULL)
		*written = 0;
	if (arr == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:i,s:s,s:i,s:b,s:s,s:s,s:s,s:s,s:s,s:o}", "idx", g[i].idx,
		                      "status", eval_status_name(g[i].status), "score", g[i].score,
		                      "correct", g[i].correct, "feedback",
		                      g[i].feedback != NULL ? g[i].feedback : "", "suggestions",
		                      g[i].suggestions != NULL ? g[i].suggestions : "", "hint",
		                      g[i].hint != NULL ? g[i].hint : "", "error",
		                      g[i].error != NULL ? g[i].error : "", "source",
		                      g[i].source != NULL ? g[i].source : "", "batch",
		                      g[i].batch >= 0 ? json_integer(g[i].batch) : json_null());
		if (o == NULL || json_array_append_new(arr, o) != 0)
			goto out;
	}
	if ((rows = json_dumps(arr, JSON_COMPACT)) == NULL)
		goto out;
	p[0] = attempt_id;
	p[1] = rows;
	err = cm_pg_exec(
	    pg,
	    "UPDATE results r SET status = g.status, score = g.score, correct = g.correct,"
	    " feedback = g.feedback, suggestions = g.suggestions, hint = g.hint, error = g.error,"
	    " source = g.source, batch = g.batch, graded_at = now()"
	    " FROM jsonb_to_recordset($2::jsonb) AS g(idx int, status text, score int,"
	    " correct boolean, feedback text, suggestions text, hint text, error text, source text,"
	    " batch int)"
	    " WHERE r.attempt_id = $1::uuid AND r.idx = g.idx AND r.status = 'pending'",
	    2, p, &r);
	if (err == CM_OK && written != NULL)
		*written = (int)cm_pg_affected(r);
	cm_pg_result_free(r);
out:
	json_decref(arr);
	free(rows);
	return err;
}

cm_err
eval_store_put_overall(cm_pg *pg, const char *attempt_id, const eval_overall *o)
{
	char       *s = list_text(o->strengths, o->n_strengths);
	char       *a = list_text(o->areas, o->n_areas);
	char       *t = list_text(o->study, o->n_study);
	const char *p[5] = {attempt_id, o->feedback != NULL ? o->feedback : "", s, a, t};
	cm_err      err = CM_ENOMEM;

	if (s != NULL && a != NULL && t != NULL)
		err = cm_pg_exec(pg,
		                 "UPDATE attempts SET overall_done = true, overall_feedback = $2,"
		                 " strengths = $3::jsonb, areas = $4::jsonb, study = $5::jsonb,"
		                 " updated_at = now() WHERE id = $1::uuid AND NOT overall_done",
		                 5, p, NULL);
	free(s);
	free(a);
	free(t);
	return err;
}

cm_err
eval_store_finish(cm_pg *pg, const char *attempt_id, const char *status, const char *error,
                  bool *won)
{
	const char   *p[3] = {attempt_id, status, error};
	cm_pg_result *r = NULL;
	cm_err        err;

	*won = false;
	if ((err = cm_pg_exec(pg,
	                      "UPDATE attempts SET status = $2, error = $3, updated_at = now()"
	                      " WHERE id = $1::uuid AND status IN ('queued','running')",
	                      3, p, &r)) != CM_OK)
		return err;
	*won = cm_pg_affected(r) > 0;
	cm_pg_result_free(r);
	return CM_OK;
}

/* ---- grade cache ----------------------------------------------------------------------------- */

static void
sha256_hex(const char *s, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	cm_hex(h, sizeof(h), out);
}

cm_err
eval_store_cache_scan(cm_pg *pg, const eval_cache_key *k, int64_t ttl_s, eval_cache_fn fn,
                      void *arg)
{
	char          ttl[24], lim[16];
	const char   *p[5] = {k->qkey, k->strictness, k->model, ttl, lim};
	cm_pg_result *r = NULL;
	cm_err        err;

	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
	snprintf(lim, sizeof(lim), "%d", EVAL_CACHE_CANDIDATES);
	if ((err =
	         cm_pg_exec(pg,
	                    "SELECT norm, score, feedback, suggestions, hint FROM grade_cache"
	                    " WHERE qkey = $1 AND strictness = $2 AND model = $3"
	                    " AND created_at > now() - make_interval(secs => $4::double precision)"
	                    " ORDER BY created_at DESC LIMIT $5::int",
	                    5, p, &r)) != CM_OK)
		return err;
	for (int i = 0; i < cm_pg_nrows(r); i++) {
		eval_grade g = {get_int(r, i, 1), (char *)cm_pg_get(r, i, 2),
		                (char *)cm_pg_get(r, i, 3), (char *)cm_pg_get(r, i, 4)};
		if (!fn(arg, cm_pg_get(r, i, 0), &g))
			break;
	}
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
eval_store_cache_put(cm_pg *pg, const eval_cache_key *k, const char *norm, const eval_grade *g)
{
	char        hash[65], score[16];
	const char *p[9] = {k->qkey, k->strictness, k->model,       hash,   norm,
	                    score,   g->feedback,   g->suggestions, g->hint};

	sha256_hex(norm, hash);
	snprintf(score, sizeof(score), "%d", g->score);
	return cm_pg_exec(
	    pg,
	    "INSERT INTO grade_cache (qkey, strictness, model, norm_hash, norm, score,"
	    " feedback, suggestions, hint) VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8,"
	    " $9) ON CONFLICT DO NOTHING",
	    9, p, NULL);
}

cm_err
eval_store_cache_prune(cm_pg *pg, int64_t ttl_s, int64_t *n)
{
	char          ttl[24];
	const char   *p[1] = {ttl};
	cm_pg_result *r = NULL;
	cm_err        err;

	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
	if ((err = cm_pg_exec(
	         pg,
	         "DELETE FROM grade_cache"
	         " WHERE created_at < now() - make_interval(secs => $1::double precision)",
	         1, p, &r)) != CM_OK)
		return err;
	if (n != NULL)
		*n = cm_pg_affected(r);
	cm_pg_result_free(r);
	return CM_OK;
}

void
eval_store_redis_key(const eval_cache_key *k, const char *norm, char out[96])
{
	crypto_hash_sha256_state st;
	unsigned char            h[crypto_hash_sha256_BYTES];
	char                     hex[2 * crypto_hash_sha256_BYTES + 1];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)k->qkey, strlen(k->qkey) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)k->strictness,
	                          strlen(k->strictness) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)k->model, strlen(k->model) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)norm, strlen(norm));
	crypto_hash_sha256_final(&st, h);
	cm_hex(h, sizeof(h), hex);
	snprintf(out, 96, "eval:grade:v%d:%s", EVAL_PROMPT_VERSION, hex);
}

void
eval_store_redis_get(cm_redis *r, const char *key, eval_grade *g, bool *found)
{
	cm_buf       b;
	json_error_t e;
	json_t      *o = NULL;
	json_int_t   s = -1;
	const char  *f = NULL, *sg = NULL, *h = NULL;

	*found = false;
	cm_buf_init(&b, 64u * 1024u);
	if (cm_redis_get(r, key, &b, found) != CM_OK || !*found) {
		*found = false;
		goto out;
	}
	*found = false;
	o = json_loadb(b.data, b.len, 0, &e);
	if (json_unpack(o, "{s:I,s:s,s:s,s:s}", "s", &s, "f", &f, "g", &sg, "h", &h) != 0 ||
	    s < 0 || s > 10)
		goto out; /* a stale or foreign value: a miss */
	*found = eval_grade_set(g, (int)s, f, sg, h);
out:
	json_decref(o);
	cm_buf_fini(&b);
}

void
eval_store_redis_put(cm_redis *r, const char *key, const eval_grade *g, int64_t ttl_s)
{
	json_t *o = json_pack("{s:i,s:s,s:s,s:s}", "s", g->score, "f", g->feedback, "g",
	                      g->suggestions, "h", g->hint);
	char   *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s != NULL && cm_redis_set(r, key, s, strlen(s), ttl_s) != CM_OK)
		cm_debug("EVAL-CACHE-DOWN", "grade not cached in Redis: %s", cm_redis_errmsg(r));
	free(s);
	json_decref(o);
}

static void
claim_key(const char *grade_key, char *out, size_t outlen)
{
	const char *h = strrchr(grade_key, ':');

	snprintf(out, outlen, "eval:grading:%s", h != NULL ? h + 1 : grade_key);
}

void
eval_store_claim(cm_redis *r, const char *grade_key, const char *owner, int64_t ttl_ms,
                 bool *claimed)
{
	static const char script[] = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) "
	                             "then return 1 end return 0";
	char              key[128], ttl[24];
	const char       *keys[1] = {key}, *args[2] = {owner, ttl};
	int64_t           got = 1;

	claim_key(grade_key, key, sizeof(key));
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
	if (cm_redis_eval_int(r, script, 1, keys, 2, args, &got) != CM_OK)
		got = 1; /* Redis down: grade it here */
	*claimed = got == 1;
}

void
eval_store_claim_held(cm_redis *r, const char *grade_key, bool *held)
{
	char        key[128];
	const char *keys[1] = {key};
	int64_t     n = 0;

	claim_key(grade_key, key, sizeof(key));
	*held = cm_redis_eval_int(r, "return redis.call('EXISTS', KEYS[1])", 1, keys, 0, NULL,
	                          &n) == CM_OK &&
	        n == 1;
}

void
eval_store_unclaim(cm_redis *r, const char *grade_key)
{
	char key[128];

	claim_key(grade_key, key, sizeof(key));
	if (cm_redis_del(r, key) != CM_OK)
		cm_debug("EVAL-CLAIM-DEL", "claim left to expire: %s", cm_redis_errmsg(r));
}
