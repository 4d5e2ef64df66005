/*
 * runners.h - a pool of job-runner threads for a service's durable jobs (cm/jobs.h).
 *
 * Each runner thread owns its connections - a cm_pg on the service's schema, a cm_redis and a
 * cm_jobs on the channel - and loops: claim one task and hand it to `run`; when there is none,
 * call `idle` (optional housekeeping) and wait for a notification or the poll interval (at most
 * CM_RUNNERS_MAX_WAIT_MS, so that stopping is prompt). One LISTEN connection per pool wakes every
 * idle runner on a notification. A task cut short by stopping stays claimed until its lease expires; then another
 * replica's runner resumes it (at least once: task results are written idempotently).
 *
 * A thread that cannot build its connections or state logs RUNNER-INIT and ends; the replica's
 * other runners and every other replica keep the queue moving (a queue with one consumer fewer;
 * connections are lazy, so this happens only when memory runs out).
 */
#ifndef CM_RUNNERS_H
#define CM_RUNNERS_H

#include <stdbool.h>

#include "cm/err.h"
#include "cm/jobs.h"
#include "cm/pg.h"
#include "cm/redis.h"

#define CM_RUNNERS_MAX_WAIT_MS 500 /* longest idle wait before a stopping runner notices */

/* One runner thread's connections (owned by the pool) and its service state. */
typedef struct cm_runner {
	cm_pg    *pg;
	cm_redis *redis;
	cm_jobs  *jobs;
	int       index;
	void     *state; /* what thread_init set */
} cm_runner;

typedef struct cm_runners_config {
	const char     *name; /* log ids: "<name>-RUNNER-..." */
	int             threads;
	const char     *database_url;
	const char     *schema;
	const char     *redis_host; /* "" = no Redis */
	int             redis_port;
	cm_jobs_options jobs; /* channel, lease, attempts (copied) */
	int             poll_ms;
	/* Optional: the service's state around the runner's connections (borrowing them). */
	cm_err (*thread_init)(void *arg, cm_runner *r);
	void (*thread_fini)(void *arg, cm_runner *r);
	/* One claimed task, run to its end (or until the job is lost, cancelled or stopping). */
	void (*run)(void *arg, cm_runner *r, const cm_jobs_task *t);
	/* Optional, when the queue had nothing: housekeeping between waits. */
	void (*idle)(void *arg, cm_runner *r);
	void *arg;
} cm_runners_config;

typedef struct cm_runners cm_runners;

/* Starts cfg->threads runners (strings in cfg must outlive the pool). */
CM_MUSTCHECK cm_err cm_runners_start(cm_runners **out, const cm_runners_config *cfg);
/* Asks every runner to stop after its current step and joins them; NULL is a no-op. */
void cm_runners_stop(cm_runners *p);

/* Claims at most one task with r's connections and runs it on the caller's thread (the loop's
 * step; tests drive it directly). *ran tells whether there was one. */
CM_MUSTCHECK cm_err cm_runner_run_one(cm_runner *r, void (*run)(void *arg, cm_runner *r,
                                                                const cm_jobs_task *t),
                                      void *arg, bool *ran);

#endif
