/*
 * bench_jobs.c - claim+complete throughput of the job queue (cm/jobs.h) against a real
 * PostgreSQL, for bench/jobs.sh. Built with the tests, never run by ctest: a throughput figure
 * is a measurement, not a verdict (the queue's correctness is test/integration/test_jobs.c).
 *
 * usage: bench_jobs CONNINFO [TASKS]
 * Works in a schema of its own (jobs_bench_<random>, dropped at the end). For each of
 * (1 thread, claim batch 1), (4, 1), (1, 10), (4, 10): one job of TASKS tasks (default 2000),
 * THREADS workers (each with its own connection) claiming BATCH at a time and completing each
 * task, timed from the moment every connection is open. Prints one line per configuration:
 *   tasks=N threads=T batch=B ms=M tasks_per_s=X
 * and exits non-zero when a configuration did not complete every task exactly once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/jobs.h"
#include "cm/pg.h"
#include "cm/util.h"

#define BENCH_MAX_THREADS 8

static const cm_migration migs[] = {
    {1, "jobs", cm_jobs_migration_up, cm_jobs_migration_down},
};

typedef struct claimer {
	const char        *conninfo;
	const char        *schema;
	pthread_barrier_t *start;
	char               id[16];
	int                batch;
	int                won; /* completions that counted */
	cm_err             err;
} claimer;

static void *
claim_loop(void *arg)
{
	claimer        *c = arg;
	cm_pg          *pg = NULL;
	cm_jobs        *jobs = NULL;
	cm_jobs_task    t[CM_JOBS_MAX_CLAIM];
	cm_jobs_options o = {.worker_id = c->id, .lease_ms = 30000};
	int             n = 0;
	bool            won;

	if ((c->err = cm_pg_open(&pg, c->conninfo, c->schema)) == CM_OK)
		c->err = cm_jobs_open(&jobs, pg, &o);
	pthread_barrier_wait(c->start);
	while (c->err == CM_OK) {
		if ((c->err = cm_jobs_claim(jobs, t, c->batch, &n)) != CM_OK || n == 0)
			break;
		for (int i = 0; i < n && c->err == CM_OK; i++) {
			c->err = cm_jobs_complete(jobs, t[i].job_id, t[i].idx, "ok", 2, &won);
			c->won += won;
		}
		cm_jobs_tasks_fini(t, n);
	}
	cm_jobs_close(jobs);
	cm_pg_close(pg);
	return NULL;
}

/* One configuration; CM_OK when every task completed exactly once. */
static cm_err
bench(const char *conninfo, const char *schema, int tasks, int threads, int batch)
{
	pthread_barrier_t start;
	pthread_t         th[BENCH_MAX_THREADS];
	claimer           c[BENCH_MAX_THREADS];
	cm_pg            *pg = NULL;
	cm_jobs          *jobs = NULL;
	cm_jobs_options   o = {.worker_id = "bench"};
	cm_jobs_info      info;
	char              job[37];
	int64_t           t0, ms;
	int               won = 0;
	cm_err            err;

	if ((err = cm_pg_open(&pg, conninfo, schema)) != CM_OK ||
	    (err = cm_jobs_open(&jobs, pg, &o)) != CM_OK ||
	    (err = cm_jobs_create(jobs, "bench", "u", "p", 1, tasks, job)) != CM_OK)
		goto out;
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		c[i] = (claimer){
		    .conninfo = conninfo, .schema = schema, .start = &start, .batch = batch};
		snprintf(c[i].id, sizeof(c[i].id), "b%d", i);
		if (pthread_create(&th[i], NULL, claim_loop, &c[i]) != 0) {
			fprintf(stderr, "bench_jobs: cannot start a thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start); /* connections are open: time the work only */
	t0 = cm_mono_ms();
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	ms = cm_mono_ms() - t0;
	pthread_barrier_destroy(&start);
	for (int i = 0; i < threads; i++) {
		if (c[i].err != CM_OK)
			err = c[i].err;
		won += c[i].won;
	}
	if (err != CM_OK)
		goto out;
	if ((err = cm_jobs_get(jobs, job, NULL, &info)) != CM_OK)
		goto out;
	if (won != tasks || info.status != CM_JOB_SUCCEEDED || info.done != tasks) {
		fprintf(stderr, "bench_jobs: %d of %d tasks won, job status %d, done %d\n", won,
		        tasks, (int)info.status, (int)info.done);
		err = CM_EINTERNAL;
		goto out;
	}
	printf("tasks=%d threads=%d batch=%d ms=%lld tasks_per_s=%.0f\n", tasks, threads, batch,
	       (long long)ms, tasks * 1000.0 / (double)(ms > 0 ? ms : 1));
	fflush(stdout);
out:
	if (err != CM_OK && pg != NULL)
		fprintf(stderr, "bench_jobs: %s: %s\n", cm_strerror(err), cm_pg_errmsg(pg));
	cm_jobs_close(jobs);
	cm_pg_close(pg);
	return err;
}

int
main(int argc, char **argv)
{
	static const int configs[][2] = {{1, 1}, {4, 1}, {1, 10}, {4, 10}};
	const char      *conninfo;
	cm_pg           *pg = NULL;
	char             id[37], schema[40], sql[96];
	int64_t          tasks = 2000;
	int              rc = 0;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 &&
	     (!cm_parse_i64(argv[2], &tasks) || tasks < 1 || tasks > CM_JOBS_MAX_TASKS))) {
		fprintf(stderr, "usage: bench_jobs CONNINFO [TASKS (1..%d)]\n", CM_JOBS_MAX_TASKS);
		return 2;
	}
	conninfo = argv[1];
	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "jobs_bench_%.8s", id);
	if (cm_pg_open(&pg, conninfo, schema) != CM_OK ||
	    cm_pg_migrate_up(pg, schema, migs, 1) != CM_OK) {
		fprintf(stderr, "bench_jobs: cannot prepare schema %s: %s\n", schema,
		        pg != NULL ? cm_pg_errmsg(pg) : "no connection");
		cm_pg_close(pg);
		return 1;
	}
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]) && rc == 0; i++) {
		if (bench(conninfo, schema, (int)tasks, configs[i][0], configs[i][1]) != CM_OK)
			rc = 1;
	}
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
	if (cm_pg_exec(pg, sql, 0, NULL, NULL) != CM_OK) {
		fprintf(stderr, "bench_jobs: cannot drop schema %s: %s\n", schema,
		        cm_pg_errmsg(pg));
		rc = 1;
	}
	cm_pg_close(pg);
	return rc;
}
