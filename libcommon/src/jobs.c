/*
 * jobs.c - the job queue's operations, one parameterised statement each (see jobs.h).
 *
 * DESIGN. Every operation is a single statement, so it is atomic without BEGIN/COMMIT round
 * trips, joins a transaction the caller may have open, and holds row locks only for the length
 * of one statement. Data-modifying CTEs chain the steps: claim = pick (FOR UPDATE SKIP LOCKED;
 * expired leases first, then queued tasks, each branch walking its partial index in order so a
 * claim costs the same with 10 or 100,000 waiting tasks) -> lease the tasks -> fail jobs whose
 * expired task used its attempts -> mark jobs running; complete = move the task to succeeded ->
 * bump the job's done counter and maybe succeed it. Only closing the open tasks of a job that
 * ended is a second statement (close_tasks), for the lock order below. The _with variants of
 * cancel and fail are the one place this module opens a transaction: the ending statement and
 * the caller's function, committed together; close_tasks runs after the commit.
 *
 * Lock order is always task row, then job row (claim, complete, fail); cancel locks only the
 * job row. So no two operations wait on each other in a cycle. A claim marks its job running
 * only if the job row is free (SKIP LOCKED): claims never queue behind each other on a job row
 * (if that update is skipped or rolled back, the job's next completion marks it running).
 *
 * Counting. `done` is bumped by 1 in the same statement that moves a task from queued/running to
 * succeeded. Two completions of one task serialise on the task row; the second re-checks the
 * row (READ COMMITTED re-evaluation), finds it succeeded and changes nothing. The job row's
 * `done = done + 1` is likewise re-read after the lock, so concurrent completions of different
 * tasks of one job all count: done always equals the number of succeeded tasks. (Counting with a
 * subquery instead would read a snapshot from before the lock wait and lose updates.)
 *
 * Fair claims (cm_jobs_options.fair) order the queued branch by each task's turn in its owner's
 * queue plus the owner's running tasks, so owners take turns; that branch ranks every runnable
 * queued task instead of walking the index, which a per-owner quota keeps small.
 *
 * Attempts count claims, so a task whose worker dies on it (lease expiry, no fail call) also
 * runs out of attempts; the claim that finds such a task fails it and its job instead of handing
 * it out. Backoff with jitter is computed in SQL from the task's attempts: a retry waits
 * d/2 + random() * d/2 with d = min(cap, base * 2^(attempts-1)).
 *
 * Blobs travel as bytea hex text ("\x..."), since the cm_pg wrapper passes text parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/jobs.h"
#include "cm/log.h"
#include "cm/util.h"

struct cm_jobs {
	cm_pg *pg;
	char   worker[CM_JOBS_MAX_WORKER_ID + 1];
	char   channel[CM_JOBS_MAX_CHANNEL + 1];
	/* Option values preformatted as statement parameters. */
	char lease_ms[16];
	char max_attempts[16];
	char backoff_base_ms[16];
	char backoff_cap_ms[16];
	bool fair;
};

static const char *const status_names[] = {
    [CM_JOB_QUEUED] = "queued", [CM_JOB_RUNNING] = "running",     [CM_JOB_SUCCEEDED] = "succeeded",
    [CM_JOB_FAILED] = "failed", [CM_JOB_CANCELLED] = "cancelled",
};

const char *
cm_job_status_name(cm_job_status s)
{
	if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[s];
}

static bool
parse_status(const char *s, cm_job_status *out)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (cm_job_status)i;
			return true;
		}
	}
	return false;
}

static bool
active(const char *job_status)
{
	return strcmp(job_status, "queued") == 0 || strcmp(job_status, "running") == 0;
}

static bool
valid_channel(const char *s)
{
	size_t i;

	if (s[0] == '\0' || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= CM_JOBS_MAX_CHANNEL ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static bool
valid_text(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* Copies src into dst (dstlen bytes), cutting at a UTF-8 character boundary. */
static void
copy_utf8(char *dst, const char *src, size_t dstlen)
{
	size_t n = cm_strlcpy(dst, src, dstlen);

	if (n < dstlen)
		return;
	n = dstlen - 1;
	while (n > 0 && ((unsigned char)dst[n] & 0xC0) == 0x80)
		n--; /* dst[n] is a continuation byte of a cut character: drop the character */
	dst[n] = '\0';
}

static int64_t
get_i64(const cm_pg_result *r, int row, int col)
{
	int64_t v = 0;

	if (!cm_parse_i64(cm_pg_get(r, row, col), &v))
		v = 0;
	return v;
}

/* A blob as a bytea parameter, within the module's size limit. */
static char *
blob_param(const void *p, size_t len)
{
	return len > CM_JOBS_MAX_BLOB ? NULL : cm_pg_bytea_param(p, len);
}

static cm_err
opt_int(int v, int def, int min, char out[16])
{
	if (v == 0)
		v = def;
	if (v < min)
		return CM_EINVAL;
	snprintf(out, 16, "%d", v);
	return CM_OK;
}

cm_err
cm_jobs_open(cm_jobs **out, cm_pg *pg, const cm_jobs_options *opt)
{
	static const cm_jobs_options none;
	cm_jobs                     *j = NULL;
	cm_err                       err = CM_OK;
	char                         uuid[CM_UUID_LEN + 1];

	*out = NULL;
	if (opt == NULL)
		opt = &none;
	if (pg == NULL) {
		err = CM_EINVAL;
		goto out;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	j->pg = pg;
	j->fair = opt->fair;
	if (opt->worker_id == NULL) {
		cm_uuid_v4(uuid);
		cm_strlcpy(j->worker, uuid, sizeof(j->worker));
	} else if (!valid_text(opt->worker_id, CM_JOBS_MAX_WORKER_ID)) {
		err = CM_EINVAL;
		goto out;
	} else {
		cm_strlcpy(j->worker, opt->worker_id, sizeof(j->worker));
	}
	if (opt->channel != NULL && !valid_channel(opt->channel)) {
		err = CM_EINVAL;
		goto out;
	}
	cm_strlcpy(j->channel, opt->channel != NULL ? opt->channel : CM_JOBS_DEFAULT_CHANNEL,
	           sizeof(j->channel));
	if ((err = opt_int(opt->lease_ms, CM_JOBS_DEFAULT_LEASE_MS, 100, j->lease_ms)) != CM_OK ||
	    (err = opt_int(opt->max_attempts, CM_JOBS_DEFAULT_MAX_ATTEMPTS, 1, j->max_attempts)) !=
	        CM_OK ||
	    (err = opt_int(opt->backoff_base_ms, CM_JOBS_DEFAULT_BACKOFF_BASE_MS, 1,
	                   j->backoff_base_ms)) != CM_OK ||
	    (err = opt_int(opt->backoff_cap_ms, CM_JOBS_DEFAULT_BACKOFF_CAP_MS, 1,
	                   j->backoff_cap_ms)) != CM_OK)
		goto out;
	*out = j;
	j = NULL;
out:
	free(j);
	return err;
}

void
cm_jobs_close(cm_jobs *j)
{
	free(j);
}

const char *
cm_jobs_worker_id(const cm_jobs *j)
{
	return j->worker;
}

/* Moves the open tasks of a job that has ended (cancelled, failed) out of the claim indexes.
 * A statement of its own, run after the one that ended the job, so it never holds the job row
 * while waiting for task rows. Best effort: claims skip such tasks anyway (they join the job),
 * they only cost scan time while left behind. */
static void
close_tasks(cm_jobs *j, const char *job_id)
{
	const char *p[1] = {job_id};

	if (cm_pg_exec(
	        j->pg,
	        "UPDATE tasks SET status = 'cancelled', lease_owner = NULL, lease_until = NULL,"
	        " updated_at = now()"
	        " WHERE job_id = $1::uuid AND status IN ('queued', 'running')"
	        " AND EXISTS (SELECT 1 FROM jobs WHERE id = $1::uuid"
	        "             AND status IN ('failed', 'cancelled'))",
	        1, p, NULL) != CM_OK)
		cm_warn("JOBS-CLOSE-FAIL", "closing the tasks of ended job %s failed: %s", job_id,
		        cm_pg_errmsg(j->pg));
}

/* ---- producers ------------------------------------------------------------------------------ */

static const char SQL_CREATE[] =
    "WITH j AS ("
    "  INSERT INTO jobs (id, kind, owner, params, total, status)"
    "  VALUES ($1::uuid, $2::text, $3::text, $4::bytea, $5::int,"
    "          CASE WHEN $5::int = 0 THEN 'succeeded' ELSE 'queued' END)"
    "  RETURNING id),"
    " t AS (INSERT INTO tasks (job_id, idx)"
    "  SELECT j.id, g FROM j, generate_series(0, $5::int - 1) AS g)"
    " SELECT pg_notify($6::text, $7::text)";

cm_err
cm_jobs_create(cm_jobs *j, const char *kind, const char *owner, const void *params,
               size_t params_len, int ntasks, char job_id[CM_UUID_LEN + 1])
{
	char       *blob = NULL;
	char        id[CM_UUID_LEN + 1], n[16];
	const char *p[7];
	cm_err      err = CM_OK;

	job_id[0] = '\0';
	if (!valid_text(kind, CM_JOBS_MAX_KIND) || !valid_text(owner, CM_JOBS_MAX_OWNER) ||
	    ntasks < 0 || ntasks > CM_JOBS_MAX_TASKS || (params == NULL && params_len > 0) ||
	    params_len > CM_JOBS_MAX_BLOB) {
		err = CM_EINVAL;
		goto out;
	}
	if (params != NULL && (blob = blob_param(params, params_len)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	cm_uuid_v4(id);
	snprintf(n, sizeof(n), "%d", ntasks);
	p[0] = id;
	p[1] = kind;
	p[2] = owner;
	p[3] = blob;
	p[4] = n;
	p[5] = j->channel;
	p[6] = id;
	if ((err = cm_pg_exec(j->pg, SQL_CREATE, 7, p, NULL)) != CM_OK) {
		cm_warn("JOBS-CREATE-FAIL", "creating a %s job failed: %s", kind,
		        cm_pg_errmsg(j->pg));
		goto out;
	}
	cm_strlcpy(job_id, id, CM_UUID_LEN + 1);
out:
	free(blob);
	return err;
}

static const char SQL_CANCEL[] =
    "WITH c AS ("
    "  UPDATE jobs SET status = 'cancelled', cancel_requested = true, updated_at = now()"
    "  WHERE id = $1::uuid AND ($2::text IS NULL OR owner = $2::text)"
    "    AND status IN ('queued', 'running')"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM c),"
    "        (SELECT status FROM jobs WHERE id = $1::uuid AND ($2::text IS NULL OR owner = "
    "$2::text))";

/* The cancel statement; closing the tasks is the caller's next step. */
static cm_err
cancel_job(cm_jobs *j, const char *job_id, const char *owner)
{
	cm_pg_result *r = NULL;
	const char   *p[2] = {job_id, owner};
	cm_err        err = CM_OK;

	/* A second round only when a concurrent change hid the outcome (the statement is
	 * idempotent). */
	for (int round = 0; round < 2; round++) {
		const char *st;
		cm_pg_result_free(r);
		if ((err = cm_pg_exec(j->pg, SQL_CANCEL, 2, p, &r)) != CM_OK)
			goto out;
		st = cm_pg_get(r, 0, 1);
		if (get_i64(r, 0, 0) == 1 || strcmp(st, "cancelled") == 0) {
			err = CM_OK;
			break;
		}
		err = cm_pg_isnull(r, 0, 1) ? CM_ENOTFOUND : CM_EPRECOND;
		if (!active(st))
			break;
	}
out:
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_cancel(cm_jobs *j, const char *job_id, const char *owner)
{
	return cm_jobs_cancel_with(j, job_id, owner, NULL, NULL);
}

cm_err
cm_jobs_cancel_with(cm_jobs *j, const char *job_id, const char *owner, cm_jobs_tx_fn fn, void *arg)
{
	cm_err err;

	if (!cm_uuid_valid(job_id))
		return CM_EINVAL;
	if (fn == NULL) {
		if ((err = cancel_job(j, job_id, owner)) == CM_OK)
			close_tasks(j, job_id);
		return err;
	}
	if ((err = cm_pg_begin(j->pg)) != CM_OK)
		return err;
	if ((err = cancel_job(j, job_id, owner)) != CM_OK || (err = fn(arg, j->pg)) != CM_OK ||
	    (err = cm_pg_commit(j->pg)) != CM_OK) {
		cm_pg_rollback(j->pg);
		return err;
	}
	close_tasks(j, job_id);
	return CM_OK;
}

static const char SQL_GET[] =
    "SELECT id, kind, owner, status, total, done, cancel_requested, coalesce(error, ''),"
    "       coalesce(result_id, ''), (extract(epoch FROM created_at) * 1000)::bigint,"
    "       (extract(epoch FROM updated_at) * 1000)::bigint"
    " FROM jobs WHERE id = $1::uuid AND ($2::text IS NULL OR owner = $2::text)";

cm_err
cm_jobs_get(cm_jobs *j, const char *job_id, const char *owner, cm_jobs_info *out)
{
	cm_pg_result *r = NULL;
	const char   *p[2] = {job_id, owner};
	cm_err        err = CM_OK;

	memset(out, 0, sizeof(*out));
	if (!cm_uuid_valid(job_id)) {
		err = CM_EINVAL;
		goto out;
	}
	if ((err = cm_pg_exec(j->pg, SQL_GET, 2, p, &r)) != CM_OK)
		goto out;
	if (cm_pg_nrows(r) != 1) {
		err = CM_ENOTFOUND;
		goto out;
	}
	cm_strlcpy(out->id, cm_pg_get(r, 0, 0), sizeof(out->id));
	copy_utf8(out->kind, cm_pg_get(r, 0, 1), sizeof(out->kind));
	copy_utf8(out->owner, cm_pg_get(r, 0, 2), sizeof(out->owner));
	if (!parse_status(cm_pg_get(r, 0, 3), &out->status)) {
		err = CM_EINTERNAL;
		goto out;
	}
	out->total = (int)get_i64(r, 0, 4);
	out->done = (int)get_i64(r, 0, 5);
	out->cancel_requested = strcmp(cm_pg_get(r, 0, 6), "t") == 0;
	copy_utf8(out->error, cm_pg_get(r, 0, 7), sizeof(out->error));
	copy_utf8(out->result_id, cm_pg_get(r, 0, 8), sizeof(out->result_id));
	out->created_ms = get_i64(r, 0, 9);
	out->updated_ms = get_i64(r, 0, 10);
out:
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_set_result_id(cm_jobs *j, const char *job_id, const char *result_id)
{
	cm_pg_result *r = NULL;
	const char   *p[2] = {job_id, result_id};
	cm_err        err = CM_OK;

	if (!cm_uuid_valid(job_id) || !valid_text(result_id, CM_JOBS_MAX_RESULT_ID)) {
		err = CM_EINVAL;
		goto out;
	}
	if ((err = cm_pg_exec(
	         j->pg,
	         "UPDATE jobs SET result_id = $2::text, updated_at = now() WHERE id = $1::uuid", 2,
	         p, &r)) != CM_OK)
		goto out;
	if (cm_pg_affected(r) != 1)
		err = CM_ENOTFOUND;
out:
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_result(cm_jobs *j, const char *job_id, int idx, uint8_t **out, size_t *len)
{
	cm_pg_result *r = NULL;
	char          n[16];
	const char   *p[2] = {job_id, n};
	cm_err        err = CM_OK;

	*out = NULL;
	*len = 0;
	if (!cm_uuid_valid(job_id) || idx < 0) {
		err = CM_EINVAL;
		goto out;
	}
	snprintf(n, sizeof(n), "%d", idx);
	if ((err = cm_pg_exec(j->pg,
	                      "SELECT result FROM tasks WHERE job_id = $1::uuid AND idx = $2::int"
	                      " AND status = 'succeeded' AND result IS NOT NULL",
	                      2, p, &r)) != CM_OK)
		goto out;
	if (cm_pg_nrows(r) != 1) {
		err = CM_ENOTFOUND;
		goto out;
	}
	err = cm_pg_bytea_decode(cm_pg_get(r, 0, 0), out, len);
out:
	cm_pg_result_free(r);
	return err;
}

/* ---- workers -------------------------------------------------------------------------------- */

/* The claim statement in pieces: the expired-lease branch, one of two fresh branches (oldest
 * first, or fair between owners), and the steps after the pick. */
#define CLAIM_EXPIRED                                                                              \
	"WITH cand AS ("                                                                           \
	"  SELECT * FROM ("                                                                        \
	"    SELECT t.job_id, t.idx, t.attempts >= $4::int AS dead"                                \
	"    FROM tasks t JOIN jobs j ON j.id = t.job_id"                                          \
	"    WHERE t.status = 'running' AND t.lease_until < now()"                                 \
	"      AND j.status IN ('queued', 'running')"                                              \
	"    ORDER BY t.lease_until LIMIT $2::int"                                                 \
	"    FOR UPDATE OF t SKIP LOCKED) AS expired"                                              \
	"  UNION ALL"

#define CLAIM_FRESH_OLDEST                                                                         \
	"  SELECT * FROM ("                                                                        \
	"    SELECT t.job_id, t.idx, false"                                                        \
	"    FROM tasks t JOIN jobs j ON j.id = t.job_id"                                          \
	"    WHERE t.status = 'queued' AND t.not_before <= now()"                                  \
	"      AND j.status IN ('queued', 'running')"                                              \
	"    ORDER BY t.not_before, t.job_id, t.idx LIMIT $2::int"                                 \
	"    FOR UPDATE OF t SKIP LOCKED) AS fresh"

/* A task's turn = its place in its owner's queue (1 = the owner's oldest runnable task) + the
 * owner's tasks running now. The window function sits in a subquery: FOR UPDATE is not
 * allowed beside one. */
#define CLAIM_FRESH_FAIR                                                                           \
	"  SELECT * FROM ("                                                                        \
	"    SELECT t.job_id, t.idx, false"                                                        \
	"    FROM tasks t JOIN ("                                                                  \
	"      SELECT q.job_id, q.idx, q.not_before,"                                              \
	"        row_number() OVER (PARTITION BY j.owner ORDER BY q.not_before, q.job_id, q.idx)"  \
	"        + coalesce(b.n, 0) AS turn"                                                       \
	"      FROM tasks q JOIN jobs j ON j.id = q.job_id"                                        \
	"      LEFT JOIN (SELECT rj.owner, count(*) AS n FROM tasks rt"                            \
	"                 JOIN jobs rj ON rj.id = rt.job_id"                                       \
	"                 WHERE rt.status = 'running' GROUP BY rj.owner) b ON b.owner = j.owner"   \
	"      WHERE q.status = 'queued' AND q.not_before <= now()"                                \
	"        AND j.status IN ('queued', 'running')) o"                                         \
	"      ON t.job_id = o.job_id AND t.idx = o.idx"                                           \
	"    WHERE t.status = 'queued'"                                                            \
	"    ORDER BY o.turn, o.not_before, o.job_id, o.idx LIMIT $2::int"                         \
	"    FOR UPDATE OF t SKIP LOCKED) AS fresh"

#define CLAIM_REST                                                                                 \
	"  LIMIT $2::int),"                                                                        \
	" upd AS ("                                                                                \
	"  UPDATE tasks t SET"                                                                     \
	"    status = CASE WHEN c.dead THEN 'failed' ELSE 'running' END,"                          \
	"    attempts = t.attempts + CASE WHEN c.dead THEN 0 ELSE 1 END,"                          \
	"    lease_owner = CASE WHEN c.dead THEN NULL ELSE $1::text END,"                          \
	"    lease_until = CASE WHEN c.dead THEN NULL"                                             \
	"                  ELSE now() + $3::int * interval '1 millisecond' END,"                   \
	"    last_error = CASE WHEN c.dead THEN 'lease expired on attempt ' || t.attempts"         \
	"                 || ' (worker lost); last error: ' || coalesce(t.last_error, 'none')"     \
	"                 ELSE t.last_error END,"                                                  \
	"    updated_at = now()"                                                                   \
	"  FROM cand c WHERE t.job_id = c.job_id AND t.idx = c.idx"                                \
	"  RETURNING t.job_id, t.idx, t.attempts, c.dead, t.last_error),"                          \
	" failed AS ("                                                                             \
	"  UPDATE jobs j SET status = 'failed', error = 'task ' || d.idx || ': ' || d.last_error," \
	"    updated_at = now()"                                                                   \
	"  FROM (SELECT DISTINCT ON (job_id) job_id, idx, last_error FROM upd WHERE dead"          \
	"        ORDER BY job_id, idx) d"                                                          \
	"  WHERE j.id = d.job_id AND j.status IN ('queued', 'running')"                            \
	"  RETURNING j.id),"                                                                       \
	" started AS ("                                                                            \
	"  UPDATE jobs j SET status = 'running', updated_at = now()"                               \
	"  WHERE j.id IN (SELECT id FROM jobs"                                                     \
	"                 WHERE status = 'queued' AND id IN (SELECT job_id FROM upd WHERE NOT "    \
	"dead)"                                                                                    \
	"                   AND id NOT IN (SELECT job_id FROM upd WHERE dead)"                     \
	"                 FOR NO KEY UPDATE SKIP LOCKED)"                                          \
	"  RETURNING j.id)"                                                                        \
	" SELECT u.job_id, u.idx, u.attempts, j.kind, CASE WHEN u.dead THEN NULL ELSE j.params "   \
	"END,"                                                                                     \
	"        u.dead"                                                                           \
	" FROM upd u JOIN jobs j ON j.id = u.job_id"                                               \
	" ORDER BY u.dead, u.job_id, u.idx"

static const char SQL_CLAIM[] = CLAIM_EXPIRED CLAIM_FRESH_OLDEST CLAIM_REST;
static const char SQL_CLAIM_FAIR[] = CLAIM_EXPIRED CLAIM_FRESH_FAIR CLAIM_REST;

void
cm_jobs_tasks_fini(cm_jobs_task *tasks, int n)
{
	for (int i = 0; i < n; i++) {
		free(tasks[i].params);
		tasks[i].params = NULL;
		tasks[i].params_len = 0;
	}
}

cm_err
cm_jobs_claim(cm_jobs *j, cm_jobs_task *tasks, int max, int *n)
{
	cm_pg_result *r = NULL;
	char          lim[16];
	const char   *p[4] = {j->worker, lim, j->lease_ms, j->max_attempts};
	cm_err        err = CM_OK;
	int           got = 0, rows;

	*n = 0;
	if (max < 1 || max > CM_JOBS_MAX_CLAIM) {
		err = CM_EINVAL;
		goto out;
	}
	snprintf(lim, sizeof(lim), "%d", max);
	if ((err = cm_pg_exec(j->pg, j->fair ? SQL_CLAIM_FAIR : SQL_CLAIM, 4, p, &r)) != CM_OK) {
		cm_warn("JOBS-CLAIM-FAIL", "claiming tasks failed: %s", cm_pg_errmsg(j->pg));
		goto out;
	}
	rows = cm_pg_nrows(r);
	for (int i = 0; i < rows; i++) {
		if (strcmp(cm_pg_get(r, i, 5), "t") == 0)
			close_tasks(j, cm_pg_get(r, i, 0)); /* its job failed: lease exhausted */
	}
	for (got = 0; got < rows && got < max && strcmp(cm_pg_get(r, got, 5), "t") != 0; got++) {
		cm_jobs_task *t = &tasks[got];
		memset(t, 0, sizeof(*t));
		cm_strlcpy(t->job_id, cm_pg_get(r, got, 0), sizeof(t->job_id));
		t->idx = (int)get_i64(r, got, 1);
		t->attempt = (int)get_i64(r, got, 2);
		copy_utf8(t->kind, cm_pg_get(r, got, 3), sizeof(t->kind));
		if (!cm_pg_isnull(r, got, 4) &&
		    (err = cm_pg_bytea_decode(cm_pg_get(r, got, 4), &t->params, &t->params_len)) !=
		        CM_OK)
			goto out; /* the claimed tasks are not handed out: their leases will expire
			           */
	}
	*n = got;
	got = 0;
out:
	cm_jobs_tasks_fini(tasks, got);
	cm_pg_result_free(r);
	return err;
}

static const char SQL_RENEW[] =
    "WITH r AS ("
    "  UPDATE tasks SET lease_until = now() + $4::int * interval '1 millisecond'"
    "  WHERE job_id = $1::uuid AND idx = $2::int AND status = 'running' AND lease_owner = $3::text"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM r), (SELECT status FROM jobs WHERE id = $1::uuid)";

cm_err
cm_jobs_renew(cm_jobs *j, const char *job_id, int idx, bool *held, bool *cancelled)
{
	cm_pg_result *r = NULL;
	char          n[16];
	const char   *p[4] = {job_id, n, j->worker, j->lease_ms};
	cm_err        err = CM_OK;

	*held = false;
	if (cancelled != NULL)
		*cancelled = false;
	if (!cm_uuid_valid(job_id) || idx < 0) {
		err = CM_EINVAL;
		goto out;
	}
	snprintf(n, sizeof(n), "%d", idx);
	if ((err = cm_pg_exec(j->pg, SQL_RENEW, 4, p, &r)) != CM_OK)
		goto out;
	*held = get_i64(r, 0, 0) == 1;
	if (cancelled != NULL)
		*cancelled = !active(cm_pg_get(r, 0, 1)); /* "" (no job) is not active */
out:
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_renew_all(cm_jobs *j, int *n)
{
	cm_pg_result *r = NULL;
	const char   *p[2] = {j->worker, j->lease_ms};
	cm_err        err;

	if (n != NULL)
		*n = 0;
	err = cm_pg_exec(j->pg,
	                 "UPDATE tasks SET lease_until = now() + $2::int * interval '1 millisecond'"
	                 " WHERE lease_owner = $1::text AND status = 'running'",
	                 2, p, &r);
	if (err == CM_OK && n != NULL)
		*n = (int)cm_pg_affected(r);
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_is_cancelled(cm_jobs *j, const char *job_id, bool *cancelled)
{
	cm_pg_result *r = NULL;
	const char   *p[1] = {job_id};
	cm_err        err = CM_OK;

	*cancelled = false;
	if (!cm_uuid_valid(job_id)) {
		err = CM_EINVAL;
		goto out;
	}
	if ((err = cm_pg_exec(j->pg, "SELECT status FROM jobs WHERE id = $1::uuid", 1, p, &r)) !=
	    CM_OK)
		goto out;
	*cancelled = cm_pg_nrows(r) != 1 || !active(cm_pg_get(r, 0, 0));
out:
	cm_pg_result_free(r);
	return err;
}

static const char SQL_COMPLETE[] =
    "WITH t AS ("
    "  UPDATE tasks t SET status = 'succeeded', result = $3::bytea, lease_owner = NULL,"
    "    lease_until = NULL, updated_at = now()"
    "  FROM jobs j"
    "  WHERE t.job_id = $1::uuid AND t.idx = $2::int AND t.status IN ('queued', 'running')"
    "    AND j.id = t.job_id AND j.status IN ('queued', 'running')"
    "  RETURNING t.job_id),"
    " j AS ("
    "  UPDATE jobs SET done = done + 1,"
    "    status = CASE WHEN done + 1 >= total THEN 'succeeded' ELSE 'running' END,"
    "    updated_at = now()"
    "  WHERE id = $1::uuid AND status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM t)"
    "  RETURNING status)"
    " SELECT (SELECT count(*) FROM t), (SELECT status FROM j),"
    "        (SELECT status FROM tasks WHERE job_id = $1::uuid AND idx = $2::int),"
    "        (SELECT status FROM jobs WHERE id = $1::uuid)";

cm_err
cm_jobs_complete(cm_jobs *j, const char *job_id, int idx, const void *result, size_t len, bool *won)
{
	cm_pg_result *r = NULL;
	char         *blob = NULL;
	char          n[16];
	const char   *p[3] = {job_id, n, NULL};
	cm_err        err = CM_OK;

	if (won != NULL)
		*won = false;
	if (!cm_uuid_valid(job_id) || idx < 0 || (result == NULL && len > 0) ||
	    len > CM_JOBS_MAX_BLOB) {
		err = CM_EINVAL;
		goto out;
	}
	if ((blob = blob_param(result, len)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	snprintf(n, sizeof(n), "%d", idx);
	p[2] = blob;
	/* The task and job statuses come from the statement's snapshot, from before its own
	 * changes. When they say "still open" although nothing changed, a concurrent statement
	 * (completion, cancel, fail) got there first: run again (idempotent) to see its outcome. */
	for (int round = 0; round < 2; round++) {
		const char *task_st, *job_st;
		cm_pg_result_free(r);
		if ((err = cm_pg_exec(j->pg, SQL_COMPLETE, 3, p, &r)) != CM_OK) {
			cm_warn("JOBS-COMPLETE-FAIL", "completing a task failed: %s",
			        cm_pg_errmsg(j->pg));
			goto out;
		}
		if (get_i64(r, 0, 0) == 1) {
			if (won != NULL)
				*won = true;
			err = CM_OK;
			break;
		}
		task_st = cm_pg_get(r, 0, 2);
		job_st = cm_pg_get(r, 0, 3);
		if (cm_pg_isnull(r, 0, 2))
			err = CM_ENOTFOUND;
		else if (strcmp(task_st, "succeeded") == 0)
			err = CM_OK; /* an earlier completion won */
		else if (strcmp(job_st, "cancelled") == 0)
			err = CM_ECANCELED;
		else if (strcmp(task_st, "failed") == 0 || !active(job_st))
			err = CM_EPRECOND;
		else {
			err = CM_EPRECOND; /* still racing after the second round: give up */
			continue;
		}
		break;
	}
out:
	free(blob);
	cm_pg_result_free(r);
	return err;
}

static const char SQL_FAIL[] =
    "WITH t AS ("
    "  UPDATE tasks SET"
    "    status = CASE WHEN $5::bool OR attempts >= $6::int THEN 'failed' ELSE 'queued' END,"
    "    not_before = CASE WHEN $5::bool OR attempts >= $6::int THEN not_before"
    "      ELSE now() + least($8::float8, $7::float8 * power(2::float8, least(attempts - 1, 30)))"
    "                   * (0.5 + random() / 2) * interval '1 millisecond' END,"
    "    lease_owner = NULL, lease_until = NULL, last_error = $4::text, updated_at = now()"
    "  WHERE job_id = $1::uuid AND idx = $2::int AND status = 'running' AND lease_owner = $3::text"
    "  RETURNING idx, status, attempts),"
    " j AS ("
    "  UPDATE jobs SET status = 'failed', updated_at = now(),"
    "    error = 'task ' || t.idx || ' failed after ' || t.attempts || ' attempt(s): ' || $4::text"
    "  FROM t WHERE jobs.id = $1::uuid AND t.status = 'failed'"
    "    AND jobs.status IN ('queued', 'running')"
    "  RETURNING 1)"
    " SELECT status FROM t";

/* The fail statement; *failed tells whether the task (and its job) failed for good. */
static cm_err
fail_task(cm_jobs *j, const char *job_id, int idx, const char *why, bool permanent, bool *failed)
{
	cm_pg_result *r = NULL;
	char          n[16];
	const char   *p[8] = {job_id,
	                      n,
	                      j->worker,
	                      why,
                            permanent ? "true" : "false",
	                      j->max_attempts,
	                      j->backoff_base_ms,
	                      j->backoff_cap_ms};
	cm_err        err = CM_OK;

	*failed = false;
	snprintf(n, sizeof(n), "%d", idx);
	if ((err = cm_pg_exec(j->pg, SQL_FAIL, 8, p, &r)) != CM_OK) {
		cm_warn("JOBS-FAIL-FAIL", "recording a task failure failed: %s",
		        cm_pg_errmsg(j->pg));
		goto out;
	}
	if (cm_pg_nrows(r) != 1) {
		err = CM_EPRECOND; /* not our lease any more */
		goto out;
	}
	*failed = strcmp(cm_pg_get(r, 0, 0), "failed") == 0;
out:
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_jobs_fail(cm_jobs *j, const char *job_id, int idx, const char *reason, bool permanent,
             bool *gave_up)
{
	return cm_jobs_fail_with(j, job_id, idx, reason, permanent, gave_up, NULL, NULL);
}

cm_err
cm_jobs_fail_with(cm_jobs *j, const char *job_id, int idx, const char *reason, bool permanent,
                  bool *gave_up, cm_jobs_tx_fn fn, void *arg)
{
	char   why[CM_MAX_ERRMSG];
	bool   failed = false;
	cm_err err;

	if (gave_up != NULL)
		*gave_up = false;
	if (!cm_uuid_valid(job_id) || idx < 0)
		return CM_EINVAL;
	copy_utf8(why, reason != NULL && reason[0] != '\0' ? reason : "unknown error", sizeof(why));
	if (fn != NULL && (err = cm_pg_begin(j->pg)) != CM_OK)
		return err;
	if ((err = fail_task(j, job_id, idx, why, permanent, &failed)) == CM_OK && fn != NULL) {
		if (failed)
			err = fn(arg, j->pg);
		if (err == CM_OK)
			err = cm_pg_commit(j->pg);
	}
	if (err != CM_OK) {
		if (fn != NULL)
			cm_pg_rollback(j->pg);
		return err;
	}
	if (failed) {
		if (gave_up != NULL)
			*gave_up = true;
		cm_warn("JOBS-TASK-FAILED", "job %s failed: task %d: %s", job_id, idx, why);
		close_tasks(j, job_id);
	}
	return CM_OK;
}
