/*
 * runners.h - a pool of job-runner threads for a service's durable jobs (cm/jobs.h).
 *
 * Each runner thread owns its connections - a cm_pg on the service's schema, a cm_redis and a
 * cm_jobs on the channel - and loops: claim one task and hand it to `run`; when there is none,
 * call `idle` (optional housekeeping) and wait for a notification or the poll interval (at most
 * CM_RUNNERS_MAX_WAIT_MS, so that stopping is prompt). One LISTEN connection per pool wakes every
 * idle runner on a notification. A task cut short by stopping stays claimed until its lease
 * expires; then another replica's runner resumes it (at least once: task results are written
 * idempotently).
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
#include "cm/service.h"

#define CM_RUNNERS_MAX_WAIT_MS 500 /* longest idle wait before a stopping runner notices */

typedef struct cm_runners_config {
	const char              *name; /* log ids */
	int                      threads;
	const cm_service_config *common; /* DATABASE_URL, REDIS_* (must outlive the pool) */
	const char              *schema;
	cm_jobs_options          jobs; /* channel, lease, attempts (copied; strings must outlive) */
	int                      poll_ms;
	/* Optional: the service's state around a runner's connections (borrowing them); the same
	 * pair as the service's RPC workers (cm_service_def.worker_init / worker_fini). */
	cm_err (*thread_init)(void *arg, const cm_service_conns *conns, void **state);
	void (*thread_fini)(void *arg, void *state);
	/* One claimed task, run to its end (or until the job is lost, cancelled or stopping). */
	void (*run)(void *arg, void *state, const cm_jobs_task *t);
	/* Optional, when the queue had nothing: housekeeping between waits. */
	void (*idle)(void *arg, void *state);
	void *arg;
} cm_runners_config;

typedef struct cm_runners cm_runners;

/* Starts cfg->threads runners. */
CM_MUSTCHECK cm_err cm_runners_start(cm_runners **out, const cm_runners_config *cfg);
/* Asks every runner to stop after its current step and joins them; NULL is a no-op. */
void cm_runners_stop(cm_runners *p);

/* Claims at most one task on jobs and runs it on the caller's thread with state (the loop's
 * step; tests drive it directly). *ran tells whether there was one. */
CM_MUSTCHECK cm_err cm_runner_run_one(cm_jobs *jobs,
                                      void (*run)(void *arg, void *state, const cm_jobs_task *t),
                                      void *arg, void *state, bool *ran);

#endif
