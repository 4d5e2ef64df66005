/*
 * test_jobs.c - the job queue against a real PostgreSQL (fixture pgredis), in a schema of its
 * own per run: lifecycle and progress, disjoint claims under concurrency (SKIP LOCKED), lease
 * expiry and reclaim, idempotent completion, retries with backoff then failure, lease
 * exhaustion, cancellation, ending a job together with the caller's rows (one transaction),
 * LISTEN wake-up latency, four claimers draining a job in batches, and fair claims (owners take
 * turns). Throughput is measured by bench/jobs.sh (bench/jobs/bench_jobs.c), not here.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/jobs.h"
#include "cm/pg.h"
#include "cm/util.h"

static char schema[40];
static char channel[48];

static const cm_migration migs[] = {
    {1, "jobs", cm_jobs_migration_up, cm_jobs_migration_down},
};

typedef struct worker {
	cm_pg   *pg;
	cm_jobs *jobs;
} worker;

static void
worker_open(worker *w, const char *id, int lease_ms, int max_attempts, int base_ms, int cap_ms)
{
	cm_jobs_options o = {
	    .worker_id = id,
	    .channel = channel,
	    .lease_ms = lease_ms,
	    .max_attempts = max_attempts,
	    .backoff_base_ms = base_ms,
	    .backoff_cap_ms = cap_ms,
	};
	assert_int_equal(cm_pg_open(&w->pg, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_int_equal(cm_jobs_open(&w->jobs, w->pg, &o), CM_OK);
}

static void
worker_close(worker *w)
{
	cm_jobs_close(w->jobs);
	cm_pg_close(w->pg);
}

static int64_t
sql_int(cm_pg *pg, const char *sql, const char *arg)
{
	cm_pg_result *r = NULL;
	const char   *p[1] = {arg};
	int64_t       v = -1;

	assert_int_equal(cm_pg_exec(pg, sql, arg != NULL ? 1 : 0, p, &r), CM_OK);
	assert_true(cm_parse_i64(cm_pg_get(r, 0, 0), &v));
	cm_pg_result_free(r);
	return v;
}

static int64_t
succeeded_tasks(cm_pg *pg, const char *job)
{
	return sql_int(
	    pg, "SELECT count(*) FROM tasks WHERE job_id = $1::uuid AND status = 'succeeded'", job);
}

static void
assert_result(cm_jobs *j, const char *job, int idx, const char *want)
{
	uint8_t *res = NULL;
	size_t   len = 0;

	assert_int_equal(cm_jobs_result(j, job, idx, &res, &len), CM_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(res, want, len);
	free(res);
}

/* Claims until something comes (the retry time may lie ahead), up to ms milliseconds. */
static int
claim_wait(cm_jobs *j, cm_jobs_task *t, int max, int ms)
{
	int64_t end = cm_mono_ms() + ms;
	int     n = 0;

	do {
		assert_int_equal(cm_jobs_claim(j, t, max, &n), CM_OK);
		if (n > 0)
			break;
		usleep(5000);
	} while (cm_mono_ms() < end);
	return n;
}

/* Claims repeatedly until mono time `until`; every claim must find nothing. A negative proven
 * over the whole interval, not by one look after a sleep. */
static void
claim_none_until(cm_jobs *j, int64_t until)
{
	cm_jobs_task t[4];
	int          n = 0;

	do {
		assert_int_equal(cm_jobs_claim(j, t, 4, &n), CM_OK);
		assert_int_equal(n, 0);
		usleep(10 * 1000);
	} while (cm_mono_ms() < until);
}

static int
group_setup(void **state)
{
	char   id[37];
	cm_pg *pg = NULL;
	cm_err err;

	(void)state;
	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "jobs_%.8s", id);
	snprintf(channel, sizeof(channel), "%s_wake", schema);
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK)
		return -1;
	err = cm_pg_migrate_up(pg, schema, migs, 1);
	if (err != CM_OK)
		fprintf(stderr, "migrate: %s\n", cm_pg_errmsg(pg));
	cm_pg_close(pg);
	return err == CM_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	cm_pg *pg = NULL;
	char   sql[96];
	int    rc = 0;

	(void)state;
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), NULL) != CM_OK)
		return -1;
	/* The down migration must work too. */
	if (cm_pg_migrate_down(pg, schema, migs, 1, 0) != CM_OK)
		rc = -1;
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
	if (cm_pg_exec(pg, sql, 0, NULL, NULL) != CM_OK)
		rc = -1;
	cm_pg_close(pg);
	return rc;
}

/* Every test starts with empty tables, so no test claims another's tasks. */
static int
empty_tables(void **state)
{
	cm_pg *pg = NULL;
	cm_err err;

	(void)state;
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK)
		return -1;
	err = cm_pg_exec(pg, "TRUNCATE tasks, jobs", 0, NULL, NULL);
	cm_pg_close(pg);
	return err == CM_OK ? 0 : -1;
}

static void
test_lifecycle(void **state)
{
	worker       w;
	cm_jobs_task t[10];
	cm_jobs_info info;
	char         job[37], empty[37];
	int          n = 0;
	bool         won;

	(void)state;
	worker_open(&w, "w1", 0, 0, 0, 0);
	assert_string_equal(cm_jobs_worker_id(w.jobs), "w1");
	assert_int_equal(cm_jobs_create(w.jobs, "qgen.generate", "user-1", "hello", 5, 3, job),
	                 CM_OK);
	assert_int_equal(cm_jobs_get(w.jobs, job, "user-1", &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_QUEUED);
	assert_int_equal(info.total, 3);
	assert_int_equal(info.done, 0);
	assert_string_equal(info.kind, "qgen.generate");
	assert_true(info.created_ms > 0);
	assert_int_equal(cm_jobs_get(w.jobs, job, "user-2", &info), CM_ENOTFOUND);

	assert_int_equal(cm_jobs_claim(w.jobs, t, 10, &n), CM_OK);
	assert_int_equal(n, 3);
	for (int i = 0; i < n; i++) {
		assert_string_equal(t[i].job_id, job);
		assert_int_equal(t[i].idx, i);
		assert_int_equal(t[i].attempt, 1);
		assert_string_equal(t[i].kind, "qgen.generate");
		assert_int_equal(t[i].params_len, 5);
		assert_memory_equal(t[i].params, "hello", 5);
	}
	cm_jobs_tasks_fini(t, n);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 10, &n), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_RUNNING);

	assert_int_equal(cm_jobs_complete(w.jobs, job, 0, "r0", 2, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_complete(w.jobs, job, 0, "xx", 2, &won), CM_OK);
	assert_false(won); /* again: nothing changes */
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.done, 1);
	assert_int_equal(info.status, CM_JOB_RUNNING);
	assert_int_equal(cm_jobs_result(w.jobs, job, 1, &(uint8_t *){NULL}, &(size_t){0}),
	                 CM_ENOTFOUND);
	assert_int_equal(cm_jobs_complete(w.jobs, job, 1, "", 0, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_complete(w.jobs, job, 2, "r2", 2, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_get(w.jobs, job, "user-1", &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_SUCCEEDED);
	assert_int_equal(info.done, 3);
	assert_string_equal(info.error, "");
	assert_int_equal(succeeded_tasks(w.pg, job), 3);
	assert_result(w.jobs, job, 0, "r0");
	assert_result(w.jobs, job, 1, "");
	assert_result(w.jobs, job, 2, "r2");
	assert_int_equal(cm_jobs_complete(w.jobs, job, 7, "r", 1, &won), CM_ENOTFOUND);

	assert_int_equal(cm_jobs_set_result_id(w.jobs, job, "set-42"), CM_OK);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_string_equal(info.result_id, "set-42");
	assert_int_equal(cm_jobs_cancel(w.jobs, job, NULL), CM_EPRECOND);

	/* No tasks, no params: done at once. Bad input is refused before SQL. */
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, 0, empty), CM_OK);
	assert_int_equal(cm_jobs_get(w.jobs, empty, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_SUCCEEDED);
	assert_int_equal(cm_jobs_create(w.jobs, "", "u", NULL, 0, 1, empty), CM_EINVAL);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, -1, empty), CM_EINVAL);
	assert_int_equal(cm_jobs_get(w.jobs, "not-a-uuid", NULL, &info), CM_EINVAL);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 0, &n), CM_EINVAL);
	assert_int_equal(
	    cm_jobs_open(&(cm_jobs *){NULL}, w.pg, &(cm_jobs_options){.channel = "Bad-Channel"}),
	    CM_EINVAL);
	worker_close(&w);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

#define DISJOINT_TASKS 400

typedef struct claimer {
	pthread_barrier_t *start;
	char               id[16];
	int                lease_ms;
	int                batch;
	int                claimed; /* tasks this thread claimed and completed */
	int                won;
	unsigned short    *seen; /* per idx, shared; each thread writes only indexes it claimed */
	cm_err             err;
} claimer;

static void *
claim_loop(void *arg)
{
	claimer        *c = arg;
	worker          w;
	cm_jobs_task    t[CM_JOBS_MAX_CLAIM];
	cm_jobs_options o = {.worker_id = c->id, .channel = channel, .lease_ms = c->lease_ms};
	int             n;
	bool            won;

	c->err = CM_OK;
	if (cm_pg_open(&w.pg, getenv("CM_TEST_PG"), schema) != CM_OK ||
	    cm_jobs_open(&w.jobs, w.pg, &o) != CM_OK || !cm_pg_ping(w.pg)) {
		c->err = CM_EUNAVAIL;
		pthread_barrier_wait(c->start);
		return NULL;
	}
	pthread_barrier_wait(c->start);
	for (;;) {
		if ((c->err = cm_jobs_claim(w.jobs, t, c->batch, &n)) != CM_OK || n == 0)
			break;
		for (int i = 0; i < n && c->err == CM_OK; i++) {
			if (c->seen != NULL)
				c->seen[t[i].idx]++;
			c->err = cm_jobs_complete(w.jobs, t[i].job_id, t[i].idx, "ok", 2, &won);
			c->claimed++;
			c->won += won;
		}
		cm_jobs_tasks_fini(t, n);
		if (c->err != CM_OK)
			break;
	}
	worker_close(&w);
	return NULL;
}

static void
test_disjoint_claims(void **state)
{
	worker            a, b;
	cm_jobs_task      ta[4], tb[4];
	char              job[37];
	int               na = 0, nb = 0;
	unsigned short   *seen = calloc(DISJOINT_TASKS, sizeof(*seen));
	pthread_barrier_t start;
	pthread_t         th[2];
	claimer           c[2];
	cm_jobs_info      info;
	int64_t           t0;

	(void)state;
	assert_non_null(seen);
	worker_open(&a, "a", 0, 0, 0, 0);
	worker_open(&b, "b", 0, 0, 0, 0);
	assert_int_equal(cm_jobs_create(a.jobs, "k", "u", NULL, 0, DISJOINT_TASKS, job), CM_OK);

	/* SKIP LOCKED itself: while a's claim transaction is still open (rows locked, not yet
	 * leased as far as b's snapshot knows), b neither waits nor takes the same rows. */
	assert_int_equal(cm_pg_begin(a.pg), CM_OK);
	assert_int_equal(cm_jobs_claim(a.jobs, ta, 4, &na), CM_OK);
	t0 = cm_mono_ms();
	assert_int_equal(cm_jobs_claim(b.jobs, tb, 4, &nb), CM_OK);
	assert_true(cm_mono_ms() - t0 < 1000);
	assert_int_equal(na, 4);
	assert_int_equal(nb, 4);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			assert_int_not_equal(ta[i].idx, tb[k].idx);
	assert_int_equal(cm_pg_commit(a.pg), CM_OK);
	for (int i = 0; i < 4; i++) {
		seen[ta[i].idx]++;
		seen[tb[i].idx]++;
		assert_int_equal(cm_jobs_complete(a.jobs, job, ta[i].idx, "ok", 2, NULL), CM_OK);
		assert_int_equal(cm_jobs_complete(b.jobs, job, tb[i].idx, "ok", 2, NULL), CM_OK);
	}

	/* Two threads race for the rest. */
	assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].start = &start;
		c[i].batch = 3;
		c[i].lease_ms = 30000;
		c[i].seen = seen;
		snprintf(c[i].id, sizeof(c[i].id), "t%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, claim_loop, &c[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c[i].err, CM_OK);
		assert_int_equal(c[i].won, c[i].claimed); /* no task was handed out twice */
		assert_true(c[i].claimed > 0);
	}
	assert_int_equal(c[0].claimed + c[1].claimed, DISJOINT_TASKS - 8);
	for (int i = 0; i < DISJOINT_TASKS; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(cm_jobs_get(a.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_SUCCEEDED);
	assert_int_equal(info.done, DISJOINT_TASKS);
	assert_int_equal(succeeded_tasks(a.pg, job), DISJOINT_TASKS);
	cm_jobs_tasks_fini(ta, na);
	cm_jobs_tasks_fini(tb, nb);
	free(seen);
	worker_close(&a);
	worker_close(&b);
}

/* ---- leases --------------------------------------------------------------------------------- */

static void
test_lease_expiry_and_idempotent_completion(void **state)
{
	worker       a, b;
	cm_jobs_task t[4];
	cm_jobs_info info;
	char         job[37];
	int          n = 0;
	bool         held, cancelled, won;
	int64_t      claimed_at;

	(void)state;
	worker_open(&a, "dying", 1000, 0, 0, 0);
	worker_open(&b, "rescuer", 1000, 0, 0, 0);
	assert_int_equal(cm_jobs_create(a.jobs, "k", "u", NULL, 0, 2, job), CM_OK);
	claimed_at = cm_mono_ms();
	assert_int_equal(cm_jobs_claim(a.jobs, t, 4, &n), CM_OK);
	assert_int_equal(n, 2);
	/* Leased: b finds nothing through the first 600 ms of the 1000 ms lease. */
	claim_none_until(b.jobs, claimed_at + 600);
	assert_int_equal(cm_jobs_renew(a.jobs, job, 0, &held, &cancelled), CM_OK);
	assert_true(held);
	assert_false(cancelled);
	assert_int_equal(cm_jobs_renew_all(a.jobs, &n), CM_OK);
	assert_int_equal(n, 2);
	/* Renewed: still a's well past the first lease's end (claim + 1000 ms). */
	claim_none_until(b.jobs, claimed_at + 1300);

	/* a "dies": it stops renewing. */
	n = claim_wait(b.jobs, t, 4, 3000);
	assert_int_equal(n, 2);
	assert_int_equal(t[0].attempt, 2);
	assert_int_equal(t[1].attempt, 2);
	assert_int_equal(cm_jobs_renew(a.jobs, job, 0, &held, NULL), CM_OK);
	assert_false(held);
	assert_int_equal(cm_jobs_renew(b.jobs, job, 0, &held, NULL), CM_OK);
	assert_true(held);
	assert_int_equal(cm_jobs_fail(a.jobs, job, 0, "late", false, NULL), CM_EPRECOND);

	/* Task 0: the new holder first, then the old one. Task 1: the other way round. */
	assert_int_equal(cm_jobs_complete(b.jobs, job, 0, "b0", 2, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_complete(a.jobs, job, 0, "a0", 2, &won), CM_OK);
	assert_false(won);
	assert_int_equal(cm_jobs_complete(a.jobs, job, 1, "a1", 2, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_complete(b.jobs, job, 1, "b1", 2, &won), CM_OK);
	assert_false(won);
	assert_int_equal(cm_jobs_get(a.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_SUCCEEDED);
	assert_int_equal(info.done, 2);
	assert_int_equal(succeeded_tasks(a.pg, job), 2);
	assert_result(a.jobs, job, 0, "b0");
	assert_result(a.jobs, job, 1, "a1");
	cm_jobs_tasks_fini(t, n);
	worker_close(&a);
	worker_close(&b);
}

/* A worker that keeps dying on a task uses up its attempts: the job fails, it does not loop. */
static void
test_lease_exhaustion_fails_job(void **state)
{
	worker       w;
	cm_jobs_task t[2];
	cm_jobs_info info;
	char         job[37];
	int          n = 0;

	(void)state;
	worker_open(&w, "crashy", 150, 2, 0, 0);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, 1, job), CM_OK);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 2, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(claim_wait(w.jobs, t, 2, 2000), 1);
	assert_int_equal(t[0].attempt, 2);
	/* The second lease expires too: the claim that finds it out of attempts fails the job
	 * and hands out nothing. Polled until the job says so. */
	for (int64_t until = cm_mono_ms() + 3000;;) {
		assert_int_equal(cm_jobs_claim(w.jobs, t, 2, &n), CM_OK);
		assert_int_equal(n, 0);
		assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
		if (info.status != CM_JOB_RUNNING || cm_mono_ms() >= until)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(info.status, CM_JOB_FAILED);
	assert_non_null(strstr(info.error, "lease expired"));
	worker_close(&w);
}

/* ---- retries -------------------------------------------------------------------------------- */

static void
test_retries_then_failure(void **state)
{
	worker       w;
	cm_jobs_task t[2];
	cm_jobs_info info;
	char         job[37], job2[37], why[32];
	int          n = 0;
	bool         gave_up;
	int64_t      failed_at = 0;

	(void)state;
	/* base 100 ms, cap 150 ms: retry 1 waits 50..100 ms, retry 2 75..150 ms. */
	worker_open(&w, "w", 30000, 3, 100, 150);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, 1, job), CM_OK);
	for (int attempt = 1; attempt <= 3; attempt++) {
		n = claim_wait(w.jobs, t, 2, 3000);
		assert_int_equal(n, 1);
		assert_int_equal(t[0].attempt, attempt);
		if (attempt == 2)
			assert_true(cm_mono_ms() - failed_at >= 45);
		if (attempt == 3)
			assert_true(cm_mono_ms() - failed_at >= 70);
		snprintf(why, sizeof(why), "boom %d", attempt);
		assert_int_equal(cm_jobs_fail(w.jobs, job, 0, why, false, &gave_up), CM_OK);
		failed_at = cm_mono_ms();
		assert_int_equal(gave_up, attempt == 3);
		assert_int_equal(cm_jobs_claim(w.jobs, t, 2, &n), CM_OK);
		assert_int_equal(n, 0); /* backing off (or failed) */
		assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
		assert_int_equal(info.status, attempt < 3 ? CM_JOB_RUNNING : CM_JOB_FAILED);
	}
	assert_non_null(strstr(info.error, "boom 3"));
	assert_non_null(strstr(info.error, "after 3 attempt"));
	assert_int_equal(sql_int(w.pg,
	                         "SELECT count(*) FROM tasks WHERE job_id = $1::uuid"
	                         " AND status = 'failed' AND last_error = 'boom 3'",
	                         job),
	                 1);
	claim_none_until(w.jobs, failed_at + 300); /* it stays failed, past any backoff (150) */
	assert_int_equal(cm_jobs_complete(w.jobs, job, 0, "late", 4, NULL), CM_EPRECOND);

	/* A permanent failure does not retry. */
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, 2, job2), CM_OK);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(cm_jobs_fail(w.jobs, job2, t[0].idx, "bad input", true, &gave_up), CM_OK);
	assert_true(gave_up);
	assert_int_equal(cm_jobs_get(w.jobs, job2, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_FAILED);
	assert_non_null(strstr(info.error, "bad input"));
	assert_int_equal(cm_jobs_claim(w.jobs, t, 2, &n), CM_OK);
	assert_int_equal(n, 0); /* the other task of a failed job is not handed out */
	assert_int_equal(sql_int(w.pg,
	                         "SELECT count(*) FROM tasks WHERE job_id = $1::uuid"
	                         " AND status = 'cancelled'",
	                         job2),
	                 1);
	worker_close(&w);
}

/* ---- cancellation --------------------------------------------------------------------------- */

/* The caller's rows of the end-of-job transaction: a TEMP table on the worker's connection. */
typedef struct side {
	const char *job;
	const char *status;
	cm_err      fail; /* what the function returns after its update */
	int         calls;
} side;

static cm_err
side_update(void *arg, cm_pg *pg)
{
	side       *sd = arg;
	const char *p[2] = {sd->job, sd->status};
	cm_err      err;

	sd->calls++;
	err = cm_pg_exec(pg, "UPDATE side SET status = $2 WHERE job_id = $1::uuid", 2, p, NULL);
	return err != CM_OK ? err : sd->fail;
}

static void
side_row(worker *w, const char *job)
{
	const char *p[1] = {job};

	assert_int_equal(cm_pg_exec(w->pg,
	                            "CREATE TEMP TABLE IF NOT EXISTS side"
	                            " (job_id uuid PRIMARY KEY, status text NOT NULL)",
	                            0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(
	    cm_pg_exec(w->pg, "INSERT INTO side VALUES ($1::uuid, 'open')", 1, p, NULL), CM_OK);
}

static int64_t
side_is(cm_pg *pg, const char *job, const char *status)
{
	char sql[128];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM side WHERE job_id = $1::uuid AND status = '%s'", status);
	return sql_int(pg, sql, job);
}

/* cancel_with / fail_with: the job and the caller's rows end together, or neither does. */
static void
test_end_with_caller_rows(void **state)
{
	worker       w;
	cm_jobs_task t[1];
	cm_jobs_info info;
	char         job[37], job2[37];
	int          n = 0;
	bool         gave_up;
	side         sd = {NULL, "cancelled", CM_EINTERNAL, 0};

	(void)state;
	worker_open(&w, "w", 30000, 2, 50, 50);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "owner", NULL, 0, 1, job), CM_OK);
	side_row(&w, job);
	sd.job = job;
	/* The caller's part fails: the cancel is rolled back with it. */
	assert_int_equal(cm_jobs_cancel_with(w.jobs, job, "owner", side_update, &sd), CM_EINTERNAL);
	assert_int_equal(sd.calls, 1);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_QUEUED);
	assert_int_equal(side_is(w.pg, job, "open"), 1);
	/* It succeeds: both changed, and the tasks are closed after the commit. */
	sd.fail = CM_OK;
	assert_int_equal(cm_jobs_cancel_with(w.jobs, job, "owner", side_update, &sd), CM_OK);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_CANCELLED);
	assert_int_equal(side_is(w.pg, job, "cancelled"), 1);
	assert_int_equal(sql_int(w.pg,
	                         "SELECT count(*) FROM tasks WHERE job_id = $1::uuid"
	                         " AND status = 'cancelled'",
	                         job),
	                 1);
	/* Another owner's job: not found, and the caller's part never runs. */
	sd.calls = 0;
	assert_int_equal(cm_jobs_cancel_with(w.jobs, job, "stranger", side_update, &sd),
	                 CM_ENOTFOUND);
	assert_int_equal(sd.calls, 0);

	/* fail_with: a retry leaves the caller's rows alone; the failure that gives up changes
	 * them with the job, and a failing caller's part rolls the failure back. */
	assert_int_equal(cm_jobs_create(w.jobs, "k", "owner", NULL, 0, 1, job2), CM_OK);
	side_row(&w, job2);
	sd = (side){job2, "failed", CM_OK, 0};
	assert_int_equal(claim_wait(w.jobs, t, 1, 2000), 1);
	assert_int_equal(
	    cm_jobs_fail_with(w.jobs, job2, 0, "once", false, &gave_up, side_update, &sd), CM_OK);
	assert_false(gave_up);
	assert_int_equal(sd.calls, 0);
	assert_int_equal(side_is(w.pg, job2, "open"), 1);
	assert_int_equal(claim_wait(w.jobs, t, 1, 2000), 1); /* attempt 2 of 2 */
	sd.fail = CM_EINTERNAL;
	assert_int_equal(
	    cm_jobs_fail_with(w.jobs, job2, 0, "twice", false, &gave_up, side_update, &sd),
	    CM_EINTERNAL);
	assert_false(gave_up);
	assert_int_equal(cm_jobs_get(w.jobs, job2, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_RUNNING);
	assert_int_equal(side_is(w.pg, job2, "open"), 1);
	sd.fail = CM_OK;
	assert_int_equal(
	    cm_jobs_fail_with(w.jobs, job2, 0, "twice", false, &gave_up, side_update, &sd), CM_OK);
	assert_true(gave_up);
	assert_int_equal(cm_jobs_get(w.jobs, job2, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_FAILED);
	assert_int_equal(side_is(w.pg, job2, "failed"), 1);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 0);
	worker_close(&w);
}

static void
test_cancel(void **state)
{
	worker       w;
	cm_jobs_task t[4];
	cm_jobs_info info;
	char         job[37], other[37];
	int          n = 0, nt = 0;
	bool         cancelled, held;

	(void)state;
	worker_open(&w, "w", 0, 0, 0, 0);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "owner-a", NULL, 0, 10, job), CM_OK);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 2, &nt), CM_OK);
	assert_int_equal(nt, 2);
	assert_int_equal(cm_jobs_is_cancelled(w.jobs, job, &cancelled), CM_OK);
	assert_false(cancelled);
	assert_int_equal(cm_jobs_cancel(w.jobs, job, "owner-b"), CM_ENOTFOUND);
	assert_int_equal(cm_jobs_cancel(w.jobs, job, "owner-a"), CM_OK);
	assert_int_equal(cm_jobs_cancel(w.jobs, job, NULL), CM_OK); /* again */
	assert_int_equal(cm_jobs_is_cancelled(w.jobs, job, &cancelled), CM_OK);
	assert_true(cancelled);
	assert_int_equal(cm_jobs_claim(w.jobs, t + 2, 2, &n), CM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(cm_jobs_renew(w.jobs, job, t[0].idx, &held, &cancelled), CM_OK);
	assert_true(cancelled);
	assert_int_equal(cm_jobs_complete(w.jobs, job, t[0].idx, "r", 1, NULL), CM_ECANCELED);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_CANCELLED);
	assert_true(info.cancel_requested);
	assert_int_equal(info.done, 0);
	assert_int_equal(sql_int(w.pg,
	                         "SELECT count(*) FROM tasks WHERE job_id = $1::uuid"
	                         " AND status = 'cancelled'",
	                         job),
	                 10); /* out of the claim indexes */

	/* Another job is unaffected. */
	assert_int_equal(cm_jobs_create(w.jobs, "k", "owner-a", NULL, 0, 1, other), CM_OK);
	assert_int_equal(cm_jobs_claim(w.jobs, t + 2, 2, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[2].job_id, other);
	assert_int_equal(cm_jobs_complete(w.jobs, other, 0, "r", 1, NULL), CM_OK);
	cm_jobs_tasks_fini(t, nt + n);
	worker_close(&w);
}

/* ---- wake-up -------------------------------------------------------------------------------- */

typedef struct waiter {
	cm_jobs_listener *l;
	bool              notified;
	cm_err            err;
	int               entering; /* set (atomically) just before the wait */
	int64_t           woke_ms;
} waiter;

static void *
wait_thread(void *arg)
{
	waiter *wt = arg;

	__atomic_store_n(&wt->entering, 1, __ATOMIC_SEQ_CST);
	wt->err = cm_jobs_listener_wait(wt->l, 5000, &wt->notified);
	wt->woke_ms = cm_mono_ms();
	return NULL;
}

static void
test_listen_wakes_worker(void **state)
{
	worker            w;
	cm_jobs_listener *l = NULL;
	waiter            wt = {0};
	pthread_t         th;
	char              job[37];
	bool              notified;
	int64_t           t0, created_ms;

	(void)state;
	worker_open(&w, "w", 0, 0, 0, 0);
	assert_int_equal(cm_jobs_listener_open(&l, getenv("CM_TEST_PG"), "no such"), CM_EINVAL);
	assert_int_equal(cm_jobs_listener_open(&l, getenv("CM_TEST_PG"), channel), CM_OK);
	/* The first wait connects and returns at once: anything earlier was missed. */
	assert_int_equal(cm_jobs_listener_wait(l, 1000, &notified), CM_OK);
	assert_true(notified);
	/* Nothing sent: the wait times out (the worker's poll interval). */
	t0 = cm_mono_ms();
	assert_int_equal(cm_jobs_listener_wait(l, 150, &notified), CM_OK);
	assert_false(notified);
	assert_true(cm_mono_ms() - t0 >= 140);

	wt.l = l;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &wt), 0);
	/* The waiter is about to block; the notification cannot beat it by much (a NOTIFY takes a
	 * round trip to PostgreSQL), and even if it did the listener holds it for the wait. */
	for (int64_t until = cm_mono_ms() + 5000;
	     !__atomic_load_n(&wt.entering, __ATOMIC_SEQ_CST) && cm_mono_ms() < until;)
		usleep(1000);
	assert_true(__atomic_load_n(&wt.entering, __ATOMIC_SEQ_CST));
	created_ms = cm_mono_ms();
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", NULL, 0, 1, job), CM_OK);
	pthread_join(th, NULL);
	assert_int_equal(wt.err, CM_OK);
	assert_true(wt.notified);
	printf("# LISTEN wake-up %lld ms after create started\n",
	       (long long)(wt.woke_ms - created_ms));
	assert_true(wt.woke_ms - created_ms < 200);
	cm_jobs_listener_close(l);
	worker_close(&w);
}

/* ---- many claimers ------------------------------------------------------------------------- */

/* Four claimers taking ten tasks at a time drain a job: every task completed once, the job
 * succeeded. (The queue's throughput is bench/jobs.sh.) */
static void
test_claimers_drain_a_job(void **state)
{
	worker            w;
	pthread_barrier_t start;
	pthread_t         th[4];
	claimer           c[4];
	unsigned short   *seen = calloc(DISJOINT_TASKS, sizeof(*seen));
	cm_jobs_info      info;
	char              job[37];
	int               won = 0;

	(void)state;
	assert_non_null(seen);
	worker_open(&w, "drain", 0, 0, 0, 0);
	assert_int_equal(cm_jobs_create(w.jobs, "k", "u", "p", 1, DISJOINT_TASKS, job), CM_OK);
	assert_int_equal(pthread_barrier_init(&start, NULL, 4), 0);
	for (int i = 0; i < 4; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].start = &start;
		c[i].batch = 10;
		c[i].lease_ms = 30000;
		c[i].seen = seen;
		snprintf(c[i].id, sizeof(c[i].id), "d%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, claim_loop, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(c[i].err, CM_OK);
		assert_int_equal(c[i].won, c[i].claimed);
		won += c[i].won;
	}
	assert_int_equal(won, DISJOINT_TASKS);
	for (int i = 0; i < DISJOINT_TASKS; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(cm_jobs_get(w.jobs, job, NULL, &info), CM_OK);
	assert_int_equal(info.status, CM_JOB_SUCCEEDED);
	assert_int_equal(info.done, DISJOINT_TASKS);
	free(seen);
	worker_close(&w);
}

/* ---- fair claims ------------------------------------------------------------------------------
 */

/* Six one-task jobs of "hog", then one of "meek"; ids[0..5] hog's in order, ids[6] meek's. */
static void
hog_and_meek(cm_jobs *j, char ids[7][37])
{
	for (int i = 0; i < 6; i++)
		assert_int_equal(cm_jobs_create(j, "k", "hog", NULL, 0, 1, ids[i]), CM_OK);
	assert_int_equal(cm_jobs_create(j, "k", "meek", NULL, 0, 1, ids[6]), CM_OK);
}

static bool
claimed(const cm_jobs_task *t, int n, const char *job)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(t[i].job_id, job) == 0)
			return true;
	}
	return false;
}

/* Oldest first (the default), a batch of 4 is all hog's; by turns, meek's job is the second
 * one handed out: hog's oldest (turn 1, older), meek's (turn 1), hog's next two (turns 2, 3). */
static void
test_fair_claims_take_turns(void **state)
{
	worker          w;
	cm_jobs_options o = {.worker_id = "fair", .channel = channel, .fair = true};
	cm_jobs_task    t[4];
	char            ids[7][37];
	int             n = 0;

	(void)state;
	worker_open(&w, "plain", 0, 0, 0, 0);
	hog_and_meek(w.jobs, ids);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 4, &n), CM_OK);
	assert_int_equal(n, 4);
	assert_false(claimed(t, n, ids[6]));
	cm_jobs_tasks_fini(t, n);
	worker_close(&w);

	assert_int_equal(empty_tables(NULL), 0);
	assert_int_equal(cm_pg_open(&w.pg, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_int_equal(cm_jobs_open(&w.jobs, w.pg, &o), CM_OK);
	hog_and_meek(w.jobs, ids);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 4, &n), CM_OK);
	assert_int_equal(n, 4);
	for (int i = 0; i < 3; i++)
		assert_true(claimed(t, n, ids[i]));
	assert_true(claimed(t, n, ids[6]));
	cm_jobs_tasks_fini(t, n);
	worker_close(&w);
}

/* One at a time, as the runners claim: while hog has a task running, meek's comes next; with
 * nothing running, ties go to the oldest. */
static void
test_fair_claims_one_at_a_time(void **state)
{
	worker          w;
	cm_jobs_options o = {.worker_id = "fair1", .channel = channel, .fair = true};
	cm_jobs_task    t[1];
	char            ids[7][37], meek2[37];
	int             n = 0;
	bool            won = false;

	(void)state;
	assert_int_equal(cm_pg_open(&w.pg, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_int_equal(cm_jobs_open(&w.jobs, w.pg, &o), CM_OK);
	hog_and_meek(w.jobs, ids);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, ids[0]); /* turn 1 each: hog's is older */
	cm_jobs_tasks_fini(t, n);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, ids[6]); /* hog has one running: meek's turn */
	cm_jobs_tasks_fini(t, n);
	assert_int_equal(cm_jobs_complete(w.jobs, ids[0], 0, NULL, 0, &won), CM_OK);
	assert_true(won);
	assert_int_equal(cm_jobs_complete(w.jobs, ids[6], 0, NULL, 0, &won), CM_OK);
	assert_true(won);
	/* Nothing running; meek queues again: hog's next is older, then meek's new one. */
	assert_int_equal(cm_jobs_create(w.jobs, "k", "meek", NULL, 0, 1, meek2), CM_OK);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, ids[1]);
	cm_jobs_tasks_fini(t, n);
	assert_int_equal(cm_jobs_claim(w.jobs, t, 1, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].job_id, meek2);
	cm_jobs_tasks_fini(t, n);
	worker_close(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_lifecycle, empty_tables),
	    cmocka_unit_test_setup(test_disjoint_claims, empty_tables),
	    cmocka_unit_test_setup(test_lease_expiry_and_idempotent_completion, empty_tables),
	    cmocka_unit_test_setup(test_lease_exhaustion_fails_job, empty_tables),
	    cmocka_unit_test_setup(test_retries_then_failure, empty_tables),
	    cmocka_unit_test_setup(test_cancel, empty_tables),
	    cmocka_unit_test_setup(test_end_with_caller_rows, empty_tables),
	    cmocka_unit_test_setup(test_listen_wakes_worker, empty_tables),
	    cmocka_unit_test_setup(test_claimers_drain_a_job, empty_tables),
	    cmocka_unit_test_setup(test_fair_claims_take_turns, empty_tables),
	    cmocka_unit_test_setup(test_fair_claims_one_at_a_time, empty_tables),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
