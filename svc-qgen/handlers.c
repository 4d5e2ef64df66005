/*
 * handlers.c - svc-qgen's RPC methods: Create, GetJob, CancelJob, GetSet.
 *
 * DESIGN. Create does the cheap, synchronous part of a request: check it, find the caller's
 * document through svc-pdf (its owner check is the only one: another user's document is
 * NOT_FOUND there), answer at once from the cache (cache.h) when the same document bytes were
 * asked the same question before (any user: the key is the document's sha256, never its id),
 * else insert the set and its job in one transaction, which also checks the per-user quotas
 * (within_quota). The runners (runner.c) do the rest.
 * CancelJob ends the job and its set in one transaction too (qgen_store_cancel_job).
 * Responses point into the per-call arena: packed question lists are unpacked with an allocator
 * over cm_rpc_alloc, so nothing needs freeing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "cache.h"
#include "codec.h"
#include "handlers.h"
#include "server.h"
#include "store.h"
#include "types.h"

/* ---- arena allocation for responses ---------------------------------------------------------- */

static void *
arena_alloc(void *data, size_t n)
{
	return cm_rpc_alloc(data, n > 0 ? n : 1);
}

static void
arena_free(void *data, void *p)
{
	(void)data;
	(void)p; /* freed with the call */
}

/* Fills set (already initialised) from a row; questions only when the row has them. */
static cm_err
fill_set(cm_rpc_ctx *ctx, const qgen_set_row *row, bool include_answers, Qgen__QuestionSet *set)
{
	ProtobufCAllocator  a = {arena_alloc, arena_free, ctx};
	Qgen__QuestionList *list;

	set->id = cm_rpc_strdup(ctx, row->id);
	set->document_id = cm_rpc_strdup(ctx, row->document_id);
	set->status = cm_rpc_strdup(ctx, row->status);
	set->cached = row->cached;
	set->job_id = cm_rpc_strdup(ctx, row->job_id);
	set->error = cm_rpc_strdup(ctx, row->error);
	set->created_at = cm_rpc_strdup(ctx, row->created_at);
	set->topic = cm_rpc_strdup(ctx, row->topic);
	set->difficulty = cm_rpc_strdup(ctx, row->difficulty);
	set->count = row->count;
	if (set->id == NULL || set->document_id == NULL || set->status == NULL ||
	    set->job_id == NULL || set->error == NULL || set->created_at == NULL ||
	    set->topic == NULL || set->difficulty == NULL)
		return CM_ENOMEM;
	if (row->questions == NULL)
		return CM_OK;
	if ((list = qgen__question_list__unpack(&a, row->questions_len, row->questions)) == NULL)
		return CM_EPROTO;
	if (!include_answers) {
		for (size_t i = 0; i < list->n_questions; i++) {
			list->questions[i]->answer_index = 0;
			list->questions[i]->reference = (char *)"";
			list->questions[i]->explanation = (char *)"";
			list->questions[i]->quote = (char *)""; /* it holds the answer */
		}
	}
	set->n_questions = list->n_questions;
	set->questions = list->questions;
	return CM_OK;
}

/* ---- Create -------------------------------------------------------------------------------- */

/* Lower case, single spaces, trimmed: "Photosynthesis " and "photosynthesis" share a cache
 * entry. */
static void
normalize_topic(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	bool   space = false;

	for (; *in != '\0' && n + 2 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		if (isspace(c)) {
			space = n > 0;
			continue;
		}
		if (space)
			out[n++] = ' ';
		space = false;
		out[n++] = (char)tolower(c);
	}
	out[n] = '\0';
}

/* The cache key of the set row asks for, made by the model calls go to first. */
static void
cache_key(const qgen_service *s, const qgen_set_row *row, char out[QGEN_CACHE_KEY_LEN])
{
	qgen_cache_spec spec = {.sha256 = row->sha256,
	                        .count = row->count,
	                        .types = row->types,
	                        .difficulty = row->difficulty,
	                        .topic = row->topic,
	                        .first_page = row->first_page,
	                        .last_page = row->last_page,
	                        .per_call = (int)s->cfg.per_call,
	                        .model = qgen_cache_model(s)};

	qgen_cache_key(s, &spec, out);
}

/* Finds the caller's document (or legacy selection) through svc-pdf. */
static cm_err
find_document(cm_rpc_ctx *ctx, qgen_service *s, const Qgen__CreateRequest *rq,
              Pdf__Document **doc_out, ProtobufCMessage **owner_out)
{
	cm_rpc_call_opts  o = {0};
	cm_rpc_result     res;
	ProtobufCMessage *resp = NULL;
	cm_err            err;
	int64_t           deadline = cm_now_ms() + QGEN_PDF_TIMEOUT_MS;

	*doc_out = NULL;
	*owner_out = NULL;
	o.request_id = ctx->request_id;
	o.subject = ctx->subject;
	o.deadline_ms =
	    ctx->deadline_ms > 0 && ctx->deadline_ms < deadline ? ctx->deadline_ms : deadline;
	o.idempotent = true;
	if (rq->use_selected) {
		Pdf__SelectedRequest sq = PDF__SELECTED_REQUEST__INIT;
		o.method = "pdf.Selected";
		err = cm_rpc_call(s->pdf, &o, &sq.base, &pdf__selected_response__descriptor, &resp,
		                  &res);
		if (err == CM_OK) {
			Pdf__SelectedResponse *sr = (Pdf__SelectedResponse *)resp;
			if (sr->document == NULL) {
				protobuf_c_message_free_unpacked(resp, NULL);
				err = CM_ENOTFOUND;
			} else {
				*doc_out = sr->document;
				*owner_out = resp;
			}
		}
	} else {
		Pdf__GetRequest gq = PDF__GET_REQUEST__INIT;
		if (!cm_uuid_valid(rq->document_id)) {
			return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such document");
		}
		gq.id = rq->document_id;
		o.method = "pdf.Get";
		err = cm_rpc_call(s->pdf, &o, &gq.base, &pdf__document__descriptor, &resp, &res);
		if (err == CM_OK) {
			*doc_out = (Pdf__Document *)resp;
			*owner_out = resp;
		}
	}
	if (err == CM_ENOTFOUND)
		cm_rpc_fail(ctx, CM_ENOTFOUND,
		            rq->use_selected ? "no PDF selected: upload or select one first"
		                             : "no such document");
	else if (err != CM_OK)
		cm_rpc_fail(ctx, err == CM_EUNAVAIL || err == CM_ETIMEDOUT ? CM_EUNAVAIL : err,
		            "documents unavailable: %s", res.message);
	cm_rpc_result_fini(&res);
	return err;
}

/* Checks the request into row (count, types, difficulty, topic, pages). */
static cm_err
check_request(cm_rpc_ctx *ctx, const Qgen__CreateRequest *rq, qgen_set_row *row)
{
	bool            mcq = false, open = false;
	qgen_difficulty d = QGEN_MEDIUM;

	if (rq->count < 1 || rq->count > QGEN_MAX_COUNT)
		return cm_rpc_fail(ctx, CM_EINVAL, "count must be an integer between 1 and %d",
		                   QGEN_MAX_COUNT);
	if (rq->n_types > 2)
		return cm_rpc_fail(ctx, CM_EINVAL,
		                   "types must be an array of \"mcq\" and/or \"open\"");
	for (size_t i = 0; i < rq->n_types; i++) {
		qgen_type t;
		if (!qgen_type_parse(rq->types[i], &t))
			return cm_rpc_fail(ctx, CM_EINVAL,
			                   "unknown question type '%.40s' (use mcq or open)",
			                   rq->types[i]);
		if (t == QGEN_MCQ)
			mcq = true;
		else
			open = true;
	}
	if (!mcq && !open)
		mcq = true;
	if (rq->difficulty[0] != '\0' && !qgen_difficulty_parse(rq->difficulty, &d))
		return cm_rpc_fail(ctx, CM_EINVAL, "difficulty must be easy, medium or hard");
	if (strlen(rq->topic) > QGEN_MAX_TOPIC)
		return cm_rpc_fail(ctx, CM_EINVAL, "topic is longer than %d bytes", QGEN_MAX_TOPIC);
	if (rq->n_pages != 0 &&
	    (rq->n_pages != 2 || rq->pages[0] < 1 || rq->pages[1] < rq->pages[0]))
		return cm_rpc_fail(ctx, CM_EINVAL,
		                   "pages must be [first, last] with 1 <= first <= last");
	row->count = rq->count;
	snprintf(row->types, sizeof(row->types), "%s",
	         mcq && open ? "mcq,open"
	         : mcq       ? "mcq"
	                     : "open");
	snprintf(row->difficulty, sizeof(row->difficulty), "%s", qgen_difficulty_name(d));
	normalize_topic(rq->topic, row->topic, sizeof(row->topic));
	row->first_page = rq->n_pages == 2 ? rq->pages[0] : 0; /* 0: from the start */
	row->last_page = rq->n_pages == 2 ? rq->pages[1] : 0;  /* 0: to the end */
	return CM_OK;
}

/* A cache hit: a new set of this user holding the cached questions (new ids). */
static cm_err
answer_from_cache(cm_rpc_ctx *ctx, qgen_worker *w, qgen_set_row *row, const cm_buf *cached,
                  Qgen__CreateResponse *resp)
{
	qgen_qlist         l;
	uint8_t           *blob = NULL;
	size_t             len = 0;
	cm_err             err;
	Qgen__QuestionSet *set;

	qgen_qlist_init(&l);
	if ((err = qgen_unpack_questions((const uint8_t *)cached->data, cached->len, &l)) !=
	        CM_OK ||
	    l.n != (size_t)row->count)
		err = CM_EPROTO; /* a stale or foreign value: generate instead */
	if (err == CM_OK)
		err = qgen_pack_questions(&l, true, &blob, &len);
	qgen_qlist_fini(&l);
	if (err != CM_OK)
		return err;
	row->questions = blob;
	row->questions_len = len;
	row->cached = true;
	snprintf(row->status, sizeof(row->status), "succeeded");
	row->progress = row->count;
	if ((err = qgen_store_insert_set(w->pg, row)) == CM_OK) {
		qgen_set_row back;
		if ((err = qgen_store_get_set(w->pg, row->id, NULL, true, &back)) == CM_OK) {
			if ((set = cm_rpc_alloc(ctx, sizeof(*set))) == NULL) {
				err = CM_ENOMEM;
			} else {
				qgen__question_set__init(set);
				err = fill_set(ctx, &back, true, set);
				resp->set = set;
			}
			free(back.questions);
		}
	}
	free(blob);
	row->questions = NULL;
	if (err == CM_OK) {
		resp->question_set_id = cm_rpc_strdup(ctx, row->id);
		resp->job_id = (char *)"";
		resp->status = (char *)"succeeded";
		resp->cached = true;
		cm_counter_add(w->svc->cache_hits, 1);
	}
	return err;
}

/* The per-user quotas, inside the transaction that creates the set (w->pg, open): under the
 * owner's lock, the count of open sets and the insert that follows are one decision, so a burst
 * of parallel creates on any replica never passes the bound. Cache hits make no job and are
 * never refused. CM_ELIMIT (with the message and retry_after_s) over a quota. */
static cm_err
within_quota(cm_rpc_ctx *ctx, qgen_worker *w, const qgen_set_row *row)
{
	const qgen_config *c = &w->svc->cfg;
	int                sets = 0, questions = 0;
	cm_err             err;

	if (c->user_max_sets == 0 && c->user_max_questions == 0)
		return CM_OK;
	if ((err = qgen_store_lock_owner(w->pg, row->owner)) != CM_OK ||
	    (err = qgen_store_active(w->pg, row->owner, &sets, &questions)) != CM_OK)
		return err;
	if (c->user_max_sets > 0 && sets >= c->user_max_sets)
		err = cm_rpc_fail(ctx, CM_ELIMIT,
		                  "%d question sets are queued or running already (at most %d); "
		                  "try again when one has finished",
		                  sets, (int)c->user_max_sets);
	else if (c->user_max_questions > 0 && questions + row->count > c->user_max_questions)
		err = cm_rpc_fail(ctx, CM_ELIMIT,
		                  "%d questions are queued or running already; %d more would pass "
		                  "the limit of %d: try again when a set has finished",
		                  questions, row->count, (int)c->user_max_questions);
	if (err == CM_ELIMIT) {
		ctx->retry_after_s = (int32_t)c->retry_after_s;
		cm_counter_add(w->svc->quota_refused, 1);
	}
	return err;
}

cm_err
qgen_handle_create(cm_rpc_ctx *ctx, const void *req, void *out)
{
	const Qgen__CreateRequest *rq = req;
	Qgen__CreateResponse      *resp = out;
	qgen_worker               *w = ctx->worker_state;
	qgen_service              *s;
	qgen_set_row               row;
	Pdf__Document             *doc = NULL;
	ProtobufCMessage          *doc_owner = NULL;
	Qgen__JobParams            jp = QGEN__JOB_PARAMS__INIT;
	char                       key[QGEN_CACHE_KEY_LEN] = "", job_id[CM_UUID_LEN + 1];
	char                      *types[2];
	uint8_t                   *params = NULL;
	size_t                     plen;
	cm_buf                     cached;
	bool                       found = false;
	cm_err                     err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	s = w->svc;
	memset(&row, 0, sizeof(row));
	cm_buf_init(&cached, 64u * 1024u * 1024u);
	if ((err = check_request(ctx, rq, &row)) != CM_OK)
		goto out;
	if (s->cfg.user_max_questions > 0 && row.count > s->cfg.user_max_questions) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "count must be at most %d (the per-user limit)",
		                  (int)s->cfg.user_max_questions);
		goto out;
	}
	if ((err = find_document(ctx, s, rq, &doc, &doc_owner)) != CM_OK)
		goto out;
	if (doc->text_length < QGEN_MIN_TEXT) {
		err = cm_rpc_fail(
		    ctx, CM_EPRECOND,
		    "the document has too little text (%lld characters) to make questions "
		    "from",
		    (long long)doc->text_length);
		goto out;
	}
	if (row.first_page > doc->pages) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "pages out of range: the document has %d pages",
		                  (int)doc->pages);
		goto out;
	}
	cm_uuid_v4(row.id);
	snprintf(row.owner, sizeof(row.owner), "%s", ctx->subject);
	snprintf(row.document_id, sizeof(row.document_id), "%s", doc->id);
	snprintf(row.sha256, sizeof(row.sha256), "%s", doc->sha256);
	cache_key(s, &row, key);
	cm_counter_add(s->sets_created, 1);

	qgen_cache_get(w, key, &cached, &found);
	if (found) {
		if ((err = answer_from_cache(ctx, w, &row, &cached, resp)) == CM_OK)
			goto out;
		if (err == CM_EUNAVAIL) {
			cm_rpc_fail(ctx, err, "database unavailable");
			goto out;
		}
		row.cached = false;
		row.progress = 0;
	}

	/* The set and its job, together. */
	jp.set_id = row.id;
	jp.document_id = row.document_id;
	jp.sha256 = row.sha256;
	jp.owner = row.owner;
	jp.count = row.count;
	jp.n_types = 0;
	if (strstr(row.types, "mcq") != NULL)
		types[jp.n_types++] = (char *)"mcq";
	if (strstr(row.types, "open") != NULL)
		types[jp.n_types++] = (char *)"open";
	jp.types = types;
	jp.difficulty = row.difficulty;
	jp.topic = row.topic;
	jp.first_page = row.first_page;
	jp.last_page = row.last_page;
	jp.cache_key = key;
	plen = protobuf_c_message_get_packed_size(&jp.base);
	if ((params = malloc(plen + 1)) == NULL) {
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	protobuf_c_message_pack(&jp.base, params);
	snprintf(row.status, sizeof(row.status), "queued");
	if ((err = cm_pg_begin(w->pg)) != CM_OK || (err = within_quota(ctx, w, &row)) != CM_OK ||
	    (err = cm_jobs_create(w->jobs, QGEN_JOB_KIND, row.owner, params, plen, 1, job_id)) !=
	        CM_OK ||
	    (snprintf(row.job_id, sizeof(row.job_id), "%s", job_id),
	     (err = qgen_store_insert_set(w->pg, &row)) != CM_OK) ||
	    (err = cm_pg_commit(w->pg)) != CM_OK) {
		cm_pg_rollback(w->pg);
		if (err == CM_ELIMIT) /* over a quota: within_quota said why */
			goto out;
		if (err == CM_ENOTFOUND) /* deleted since svc-pdf answered (store.h) */
			cm_rpc_fail(ctx, err, "no such document");
		else
			cm_rpc_fail(ctx, err == CM_EUNAVAIL ? CM_EUNAVAIL : CM_EINTERNAL,
			            "cannot queue the job: %s", cm_strerror(err));
		goto out;
	}
	resp->question_set_id = cm_rpc_strdup(ctx, row.id);
	resp->job_id = cm_rpc_strdup(ctx, job_id);
	resp->status = (char *)"queued";
	cm_info("QGEN-CREATE", "set %s job %s: %d %s questions (%s) for document %s", row.id,
	        job_id, row.count, row.types, row.difficulty, row.document_id);
out:
	free(params);
	cm_buf_fini(&cached);
	if (doc_owner != NULL)
		protobuf_c_message_free_unpacked(doc_owner, NULL);
	return err;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static cm_err
fill_job(cm_rpc_ctx *ctx, qgen_worker *w, const char *job_id, Qgen__Job *job)
{
	cm_jobs_info info;
	qgen_set_row row;
	char         created[32], updated[32];
	cm_err       err;

	if (!cm_uuid_valid(job_id))
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such job");
	if ((err = cm_jobs_get(w->jobs, job_id, ctx->subject, &info)) != CM_OK)
		return cm_rpc_fail(ctx, err,
		                   err == CM_ENOTFOUND ? "no such job" : "database unavailable");
	/* A job whose set went with its document (cascade.c) is gone too. */
	if ((err = qgen_store_get_set_by_job(w->pg, job_id, &row)) != CM_OK)
		return cm_rpc_fail(ctx, err,
		                   err == CM_ENOTFOUND ? "no such job" : "database unavailable");
	cm_format_time_ms(info.created_ms, created);
	cm_format_time_ms(info.updated_ms, updated);
	job->id = cm_rpc_strdup(ctx, info.id);
	job->kind = (char *)"qgen";
	job->status = (char *)cm_job_status_name(info.status);
	job->total = row.count;
	job->done = info.status == CM_JOB_SUCCEEDED ? row.count : row.progress;
	job->result_id = cm_rpc_strdup(ctx, row.id);
	job->error = cm_rpc_strdup(ctx, info.error[0] != '\0' ? info.error : row.error);
	job->created_at = cm_rpc_strdup(ctx, created);
	job->updated_at = cm_rpc_strdup(ctx, updated);
	if (job->id == NULL || job->result_id == NULL || job->error == NULL ||
	    job->created_at == NULL || job->updated_at == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	return CM_OK;
}

cm_err
qgen_handle_get_job(cm_rpc_ctx *ctx, const void *req, void *out)
{
	const Qgen__JobRef *rq = req;
	qgen_worker        *w = ctx->worker_state;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	return fill_job(ctx, w, rq->id, out);
}

cm_err
qgen_handle_cancel_job(cm_rpc_ctx *ctx, const void *req, void *out)
{
	const Qgen__JobRef *rq = req;
	qgen_worker        *w = ctx->worker_state;
	qgen_set_row        row;
	cm_err              err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if (!cm_uuid_valid(rq->id))
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such job");
	/* The job and its set, in one transaction. */
	err = qgen_store_cancel_job(w->jobs, rq->id, ctx->subject, "cancelled by the user", &row);
	if (err == CM_EPRECOND)
		return cm_rpc_fail(ctx, err, "the job has already finished");
	if (err != CM_OK)
		return cm_rpc_fail(ctx, err,
		                   err == CM_ENOTFOUND ? "no such job" : "database unavailable");
	if (row.id[0] != '\0')
		qgen_publish(w->svc, "job.done", rq->id, ctx->subject, row.progress, row.count,
		             "cancelled");
	cm_info("QGEN-CANCEL", "job %s cancelled", rq->id);
	return fill_job(ctx, w, rq->id, out);
}

/* ---- sets ---------------------------------------------------------------------------------- */

cm_err
qgen_handle_get_set(cm_rpc_ctx *ctx, const void *req, void *out)
{
	const Qgen__GetSetRequest *rq = req;
	qgen_worker               *w = ctx->worker_state;
	qgen_set_row               row;
	cm_err                     err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if ((err = qgen_store_get_set(w->pg, rq->id, ctx->subject, true, &row)) != CM_OK)
		return cm_rpc_fail(ctx, err,
		                   err == CM_ENOTFOUND ? "no such question set"
		                                       : "database unavailable");
	err = fill_set(ctx, &row, rq->include_answers, out);
	free(row.questions);
	if (err != CM_OK)
		return cm_rpc_fail(ctx, err, "cannot read the questions");
	return CM_OK;
}
