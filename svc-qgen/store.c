/*
 * store.c - svc-qgen's SQL (store.h). Every statement is parameterised; blobs travel
 * as bytea hex text (cm_pg_bytea_param).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/follow.h"
#include "cm/util.h"
#include "store.h"

#define SET_COLUMNS                                                                                \
	"id::text, owner_id, document_id::text, sha256, coalesce(job_id::text, ''), status, "      \
	"count, "                                                                                  \
	"types, difficulty, topic, first_page, last_page, cached, progress, error, "               \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static int
get_int(const cm_pg_result *r, int row, int col)
{
	int64_t v = 0;

	(void)cm_parse_i64(cm_pg_get(r, row, col), &v);
	return (int)v;
}

static void
read_row(const cm_pg_result *r, qgen_set_row *row)
{
	cm_strlcpy(row->id, cm_pg_get(r, 0, 0), sizeof(row->id));
	cm_strlcpy(row->owner, cm_pg_get(r, 0, 1), sizeof(row->owner));
	cm_strlcpy(row->document_id, cm_pg_get(r, 0, 2), sizeof(row->document_id));
	cm_strlcpy(row->sha256, cm_pg_get(r, 0, 3), sizeof(row->sha256));
	cm_strlcpy(row->job_id, cm_pg_get(r, 0, 4), sizeof(row->job_id));
	cm_strlcpy(row->status, cm_pg_get(r, 0, 5), sizeof(row->status));
	row->count = get_int(r, 0, 6);
	cm_strlcpy(row->types, cm_pg_get(r, 0, 7), sizeof(row->types));
	cm_strlcpy(row->difficulty, cm_pg_get(r, 0, 8), sizeof(row->difficulty));
	cm_strlcpy(row->topic, cm_pg_get(r, 0, 9), sizeof(row->topic));
	row->first_page = get_int(r, 0, 10);
	row->last_page = get_int(r, 0, 11);
	row->cached = strcmp(cm_pg_get(r, 0, 12), "t") == 0;
	row->progress = get_int(r, 0, 13);
	cm_strlcpy(row->error, cm_pg_get(r, 0, 14), sizeof(row->error));
	cm_strlcpy(row->created_at, cm_pg_get(r, 0, 15), sizeof(row->created_at));
}

cm_err
qgen_store_insert_set(cm_pg *pg, const qgen_set_row *row)
{
	char          count[16], first[16], last[16];
	char         *blob = NULL;
	cm_pg_result *r = NULL;
	cm_err        err;
	const char   *p[14];

	if (row->questions != NULL &&
	    (blob = cm_pg_bytea_param(row->questions, row->questions_len)) == NULL)
		return CM_ENOMEM;
	snprintf(count, sizeof(count), "%d", row->count);
	snprintf(first, sizeof(first), "%d", row->first_page);
	snprintf(last, sizeof(last), "%d", row->last_page);
	p[0] = row->id;
	p[1] = row->owner;
	p[2] = row->document_id;
	p[3] = row->sha256;
	p[4] = row->job_id[0] != '\0' ? row->job_id : NULL;
	p[5] = row->status;
	p[6] = count;
	p[7] = row->types;
	p[8] = row->difficulty;
	p[9] = row->topic;
	p[10] = first;
	p[11] = last;
	p[12] = row->cached ? "true" : "false";
	p[13] = blob;
	/* The document's row is taken first (migrations/003_cascade.up.sql): a deletion being
	 * applied makes this wait, then insert nothing. */
	err = cm_pg_exec(
	    pg,
	    CM_FOLLOW_LIVE_DOCUMENT(
	        3) "INSERT INTO question_sets (id, owner_id, document_id, sha256, job_id, status,"
	           " count, types, difficulty, topic, first_page, last_page, cached, questions,"
	           " progress)"
	           " SELECT $1::uuid, $2, $3::uuid, $4, $5::uuid, $6, $7::int, $8, $9, $10,"
	           " $11::int, $12::int, $13::boolean, $14::bytea,"
	           " CASE WHEN $14::bytea IS NULL THEN 0 ELSE $7::int END"
	           " FROM d WHERE d.deleted_at IS NULL",
	    14, p, &r);
	if (err == CM_OK && cm_pg_affected(r) != 1)
		err = CM_ENOTFOUND;
	cm_pg_result_free(r);
	free(blob);
	return err;
}

cm_err
qgen_store_lock_owner(cm_pg *pg, const char *owner)
{
	const char *p[1] = {owner};

	return cm_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext('qgen.create'), hashtext($1))",
	                  1, p, NULL);
}

cm_err
qgen_store_active(cm_pg *pg, const char *owner, int *sets, int *questions)
{
	const char   *p[1] = {owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	*sets = 0;
	*questions = 0;
	/* jobs_owner_active (migration 004) holds just the owner's open jobs. */
	if ((err = cm_pg_exec(pg,
	                      "SELECT count(*), coalesce(sum(s.count), 0) FROM jobs j"
	                      " JOIN question_sets s ON s.job_id = j.id"
	                      " WHERE j.owner = $1 AND j.status IN ('queued', 'running')",
	                      1, p, &r)) != CM_OK)
		return err;
	*sets = get_int(r, 0, 0);
	*questions = get_int(r, 0, 1);
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
qgen_store_get_set(cm_pg *pg, const char *id, const char *owner, bool with_questions,
                   qgen_set_row *row)
{
	const char   *p[3] = {id, owner, with_questions ? "true" : "false"};
	cm_pg_result *r = NULL;
	cm_err        err;

	memset(row, 0, sizeof(*row));
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND;
	err = cm_pg_exec(
	    pg,
	    "SELECT " SET_COLUMNS ", CASE WHEN $3::boolean THEN questions END"
	    " FROM question_sets WHERE id = $1::uuid AND ($2::text IS NULL OR owner_id = $2)",
	    3, p, &r);
	if (err != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 0) {
		err = CM_ENOTFOUND;
	} else {
		read_row(r, row);
		if (with_questions && !cm_pg_isnull(r, 0, 16))
			err = cm_pg_bytea_decode(cm_pg_get(r, 0, 16), &row->questions,
			                         &row->questions_len);
	}
	cm_pg_result_free(r);
	return err;
}

cm_err
qgen_store_get_set_by_job(cm_pg *pg, const char *job_id, qgen_set_row *row)
{
	const char   *p[1] = {job_id};
	cm_pg_result *r = NULL;
	cm_err        err;

	memset(row, 0, sizeof(*row));
	if (!cm_uuid_valid(job_id))
		return CM_ENOTFOUND;
	if ((err =
	         cm_pg_exec(pg, "SELECT " SET_COLUMNS " FROM question_sets WHERE job_id = $1::uuid",
	                    1, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 0)
		err = CM_ENOTFOUND;
	else
		read_row(r, row);
	cm_pg_result_free(r);
	return err;
}

cm_err
qgen_store_set_status(cm_pg *pg, const char *set_id, const char *status, const char *error)
{
	const char *p[3] = {set_id, status, error};

	return cm_pg_exec(
	    pg,
	    "UPDATE question_sets SET status = $2, error = $3, updated_at = clock_timestamp()"
	    " WHERE id = $1::uuid AND status IN ('queued', 'running')",
	    3, p, NULL);
}

typedef struct end_ctx {
	const char   *job_id; /* cancel: the set is found by its job */
	const char   *set_id; /* fail: the set is known */
	const char   *status;
	const char   *reason;
	qgen_set_row *set;
} end_ctx;

/* The set's part of the transaction that ends its job. */
static cm_err
end_set(void *arg, cm_pg *pg)
{
	end_ctx     *c = arg;
	qgen_set_row row;
	cm_err       err;

	if (c->set_id != NULL)
		return qgen_store_set_status(pg, c->set_id, c->status, c->reason);
	if ((err = qgen_store_get_set_by_job(pg, c->job_id, &row)) == CM_ENOTFOUND)
		return CM_OK; /* a job without a set (its document was deleted) */
	if (err == CM_OK)
		err = qgen_store_set_status(pg, row.id, c->status, c->reason);
	if (err == CM_OK && c->set != NULL)
		*c->set = row;
	return err;
}

cm_err
qgen_store_cancel_job(cm_jobs *jobs, const char *job_id, const char *owner, const char *reason,
                      qgen_set_row *set)
{
	end_ctx c = {job_id, NULL, "cancelled", reason, set};

	if (set != NULL)
		memset(set, 0, sizeof(*set));
	return cm_jobs_cancel_with(jobs, job_id, owner, end_set, &c);
}

cm_err
qgen_store_fail_job(cm_jobs *jobs, const char *job_id, const char *set_id, const char *reason,
                    bool permanent, bool *gave_up)
{
	end_ctx c = {job_id, set_id, "failed", reason, NULL};

	return cm_jobs_fail_with(jobs, job_id, 0, reason, permanent, gave_up, end_set, &c);
}

cm_err
qgen_store_set_progress(cm_pg *pg, const char *set_id, int done)
{
	char        n[16];
	const char *p[2] = {set_id, n};

	snprintf(n, sizeof(n), "%d", done);
	return cm_pg_exec(pg,
	                  "UPDATE question_sets SET progress = least($2::int, count),"
	                  " status = 'running', updated_at = clock_timestamp()"
	                  " WHERE id = $1::uuid AND status IN ('queued', 'running')",
	                  2, p, NULL);
}

cm_err
qgen_store_finish_set(cm_pg *pg, const char *set_id, const void *blob, size_t len, bool *won)
{
	char         *b = cm_pg_bytea_param(blob, len);
	const char   *p[2] = {set_id, b};
	cm_pg_result *r = NULL;
	cm_err        err;

	*won = false;
	if (b == NULL)
		return CM_ENOMEM;
	err = cm_pg_exec(pg,
	                 "UPDATE question_sets SET status = 'succeeded', questions = $2::bytea,"
	                 " progress = count, error = '', updated_at = clock_timestamp()"
	                 " WHERE id = $1::uuid AND status IN ('queued', 'running')",
	                 2, p, &r);
	free(b);
	if (err == CM_OK)
		*won = cm_pg_affected(r) == 1;
	cm_pg_result_free(r);
	return err;
}

cm_err
qgen_store_put_batch(cm_pg *pg, const char *job_id, int idx, const void *blob, size_t len)
{
	char        n[16];
	char       *b = cm_pg_bytea_param(blob, len);
	const char *p[3] = {job_id, n, b};
	cm_err      err;

	if (b == NULL)
		return CM_ENOMEM;
	snprintf(n, sizeof(n), "%d", idx);
	err = cm_pg_exec(
	    pg,
	    "INSERT INTO batches (job_id, idx, questions) VALUES ($1::uuid, $2::int, $3::bytea)"
	    " ON CONFLICT (job_id, idx) DO NOTHING",
	    3, p, NULL);
	free(b);
	return err;
}

cm_err
qgen_store_batches(cm_pg *pg, const char *job_id, qgen_batch_fn fn, void *arg)
{
	const char   *p[1] = {job_id};
	cm_pg_result *r = NULL;
	cm_err        err;

	if ((err = cm_pg_exec(
	         pg, "SELECT idx, questions FROM batches WHERE job_id = $1::uuid ORDER BY idx", 1,
	         p, &r)) != CM_OK)
		return err;
	for (int i = 0; i < cm_pg_nrows(r) && err == CM_OK; i++) {
		uint8_t *blob = NULL;
		size_t   len = 0;
		if ((err = cm_pg_bytea_decode(cm_pg_get(r, i, 1), &blob, &len)) == CM_OK)
			err = fn(arg, get_int(r, i, 0), blob, len);
		free(blob);
	}
	cm_pg_result_free(r);
	return err;
}

cm_err
qgen_store_drop_batches(cm_pg *pg, const char *job_id)
{
	const char *p[1] = {job_id};

	return cm_pg_exec(pg, "DELETE FROM batches WHERE job_id = $1::uuid", 1, p, NULL);
}

cm_err
qgen_store_delete_document(cm_pg *pg, const char *document_id, const char *owner, qgen_job_fn fn,
                           void *arg, int *n)
{
	const char   *p[2] = {document_id, owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	*n = 0;
	if (!cm_uuid_valid(document_id))
		return CM_OK;
	if ((err = cm_pg_exec(pg,
	                      "WITH gone AS (DELETE FROM question_sets WHERE document_id = $1::uuid"
	                      " AND owner_id = $2 RETURNING job_id),"
	                      " b AS (DELETE FROM batches WHERE job_id IN"
	                      " (SELECT job_id FROM gone WHERE job_id IS NOT NULL))"
	                      " SELECT coalesce(job_id::text, '') FROM gone",
	                      2, p, &r)) != CM_OK)
		return err;
	*n = cm_pg_nrows(r);
	for (int i = 0; fn != NULL && i < *n; i++)
		fn(arg, cm_pg_get(r, i, 0));
	cm_pg_result_free(r);
	return CM_OK;
}
