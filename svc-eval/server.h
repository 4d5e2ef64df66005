/*
 * server.h - svc-eval's definition for the service skeleton (cm/service.h), its process state,
 * per-thread state, method table and job runners.
 *
 * eval_service is created once: config, the LLM client (NULL: the offline grader), the svc-pdf
 * and svc-qgen clients, the event publisher, metrics. Two kinds of threads use it:
 *   - RPC workers (the skeleton's) answer eval.Submit / GetAttempt / GetJob; each has an
 *     eval_worker around the skeleton's PostgreSQL and Redis connections, plus a cm_jobs handle;
 *   - runners (runner.c) claim attempts from the queue and grade them; each owns its own
 *     connections and starts call threads per attempt; one listener thread per replica holds
 *     the LISTEN connection and wakes the idle runners.
 * Tests build an eval_worker themselves and call the handlers, or run one attempt with
 * eval_runner_run_one.
 */
#ifndef EVAL_SERVER_H
#define EVAL_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/jobs.h"
#include "cm/llm.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/pubsub.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "config.h"

typedef struct eval_service {
	cm_service_config common; /* DATABASE_URL, REDIS_*: runners open their own connections */
	const char       *schema; /* EVAL_SCHEMA, unless a test runs in a schema of its own */
	eval_config       cfg;
	cm_llm           *llm;       /* NULL: offline grader */
	char              model[64]; /* cache key part: LLM_MODEL, or "offline" */
	cm_rpc_client    *pdf;
	cm_rpc_client    *qgen;
	cm_pub           *pub; /* may be NULL (no events) */
	cm_metrics       *metrics;
	cm_counter       *attempts;
	cm_counter       *answers_mcq;
	cm_counter       *answers_open;
	cm_counter       *cache_lookups;
	cm_counter       *cache_hits;
	cm_counter       *cache_near_hits;
	cm_counter       *inflight_waits;
	cm_counter       *grade_calls;
	cm_counter       *overall_calls;
	cm_counter       *items_retried;
	cm_counter       *items_failed;
	cm_counter       *scores_capped;
	cm_counter       *quota_refused;
	cm_counter       *jobs_succeeded;
	cm_counter       *jobs_failed;
	cm_histogram     *job_seconds;

	/* Tests: a runner stops (as if killed) after storing this many batches; 0: never. */
	atomic_int test_stop_after_batches;

	/* runners */
	struct cm_runners  *runners;
	struct cm_follower *cascade; /* svc-pdf's deletion log (cascade.h); NULL when stopped */
	atomic_bool stopping; /* set before the runners stop: attempts end at their next step */
} eval_service;

typedef struct eval_worker {
	eval_service *svc;
	cm_pg        *pg;
	cm_redis     *redis;
	cm_jobs      *jobs;          /* pg, redis, jobs borrowed: the skeleton's or a runner's */
	int64_t       next_prune_ms; /* runners: when to prune the grade cache next */
} eval_worker;

/* The service: schema "eval" (the job queue's tables are its migration 2), background work the
 * runners; ready when svc-pdf has a replica. */
extern const cm_service_def eval_service_def;

/* Every migration of schema "eval": migrations/ plus the job queue's tables. */
size_t eval_migrations_all(cm_migration *out, size_t cap);

/* Copies common, schema and cfg; builds the LLM client from LLM_* (none set: offline), the
 * svc-pdf and svc-qgen clients, the publisher; registers metrics on m (prefix "eval_"; may be
 * NULL). */
CM_MUSTCHECK cm_err eval_service_init(eval_service *s, const cm_service_config *common,
                                      const char *schema, const eval_config *cfg, cm_metrics *m);
void                eval_service_fini(eval_service *s);

/* The job queue's options of svc-eval (channel, lease, attempts). */
void eval_jobs_options(const eval_service *s, cm_jobs_options *jo);
/* An eval_worker around conns (pg, redis and jobs borrowed), for an RPC worker or a job runner
 * (cm_service_def.worker_init / worker_fini; app is the eval_service). */
CM_MUSTCHECK cm_err eval_worker_init(void *app, const cm_service_conns *conns, void **state);
void                eval_worker_fini(void *app, void *state);

extern const cm_rpc_method eval_methods[];
extern const size_t        eval_n_methods;

/* Starts / stops cfg.runners runner threads. Stopping waits for running attempts' current
 * step; an attempt cut short stays claimed until its lease expires, then another replica
 * resumes it. */
CM_MUSTCHECK cm_err eval_runners_start(eval_service *s);
void                eval_runners_stop(eval_service *s);

/* Claims and runs at most one attempt on the caller's thread with the given connections
 * (tests). *ran tells whether there was one. */
CM_MUSTCHECK cm_err eval_runner_run_one(eval_service *s, eval_worker *w, bool *ran);

/* Publishes a job event (topic "job.<id>", type "job.progress" or "job.done"). */
void eval_publish(eval_service *s, const char *type, const char *job_id, const char *owner,
                  int done, int total, const char *status);

#endif
