/*
 * server.h - svc-qgen's definition for the service skeleton (cm/service.h), its process state,
 * per-thread state, method table and job runners.
 *
 * qgen_service is created once: config, the LLM client (NULL: the offline provider), the svc-pdf
 * client, the event publisher, metrics. Two kinds of threads use it:
 *   - RPC workers (the skeleton's) answer qgen.Create / GetJob / CancelJob / GetSet / Export; each
 *     has a qgen_worker around the skeleton's PostgreSQL and Redis connections, plus a cm_jobs
 * handle;
 *   - runners (runner.c) claim generation jobs from the queue and run them; each owns its
 *     own connections and a LISTEN connection, and starts call threads per job.
 * Tests build a qgen_worker themselves and call the handlers, or run one job with
 * qgen_runner_run_one.
 */
#ifndef QGEN_SERVER_H
#define QGEN_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

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
#include "grounding.h"

typedef struct qgen_service {
	cm_service_config common; /* DATABASE_URL, REDIS_*: runners open their own connections */
	const char       *schema; /* QGEN_SCHEMA, unless a test runs in a schema of its own */
	qgen_config       cfg;
	qgen_ground_cfg   ground; /* from cfg.ground_* */
	cm_llm           *llm;    /* NULL: offline provider */
	cm_rpc_client    *pdf;
	cm_pub           *pub; /* may be NULL (no events) */
	cm_metrics       *metrics;
	cm_counter       *sets_created;
	cm_counter       *quota_refused;
	cm_counter       *cache_hits;
	/* questions_rejected_total{reason="invalid"}, and by grounding verdict (not GROUNDED) */
	cm_counter   *rejected_invalid;
	cm_counter   *rejected[QGEN_GROUND_NVERDICTS];
	cm_counter   *batches_failed;
	cm_counter   *llm_calls;
	cm_counter   *hedged_calls; /* duplicates of late calls started (hedge.h) */
	cm_counter   *extra_tokens; /* tokens the sets did not use (runner.c charge_unused) */
	cm_counter   *streams_cut;  /* streamed calls cancelled after their answer began */
	cm_counter   *jobs_succeeded;
	cm_counter   *jobs_failed;
	cm_histogram *job_seconds;

	/* runners */
	struct cm_runners *runners;
	atomic_bool        stopping; /* set before the runners stop: jobs end at their next step */

	struct cm_follower *cascade; /* svc-pdf's deletion log (cascade.h); NULL when stopped */
} qgen_service;

typedef struct qgen_worker {
	qgen_service *svc;
	cm_pg        *pg; /* borrowed: the skeleton's or the runner's connections */
	cm_redis     *redis;
	cm_jobs      *jobs;
} qgen_worker;

/* The service: schema "qgen" (the job queue's tables are its migration 2), background work the
 * job runners and the follower of svc-pdf's deletion log (cascade.h); ready when svc-pdf has a
 * replica too. */
extern const cm_service_def qgen_service_def;

/* Every migration of schema "qgen": migrations/ plus the job queue's tables. */
size_t qgen_migrations_all(cm_migration *out, size_t cap);

/* Copies common, schema and cfg; builds the LLM client from LLM_* (none set: offline), the
 * svc-pdf client, the publisher; registers metrics on m (prefix "qgen_"; may be NULL). */
CM_MUSTCHECK cm_err qgen_service_init(qgen_service *s, const cm_service_config *common,
                                      const char *schema, const qgen_config *cfg, cm_metrics *m);
void                qgen_service_fini(qgen_service *s);

/* The job queue's options of svc-qgen (channel, lease, attempts, fair claims). */
void qgen_jobs_options(const qgen_service *s, cm_jobs_options *jo);
/* A qgen_worker around conns (pg, redis and jobs borrowed), for an RPC worker or a job runner
 * (cm_service_def.worker_init / worker_fini; app is the qgen_service). */
CM_MUSTCHECK cm_err qgen_worker_init(void *app, const cm_service_conns *conns, void **state);
void                qgen_worker_fini(void *app, void *state);

extern const cm_rpc_method qgen_methods[];
extern const size_t        qgen_n_methods;

/* Starts / stops cfg.runners runner threads. Stopping waits for running jobs' current step;
 * a job cut short stays claimed until its lease expires, then another replica resumes it. */
CM_MUSTCHECK cm_err qgen_runners_start(qgen_service *s);
void                qgen_runners_stop(qgen_service *s);

/* Claims and runs at most one job on the caller's thread with the given connections (tests).
 * *ran tells whether there was one. */
CM_MUSTCHECK cm_err qgen_runner_run_one(qgen_service *s, qgen_worker *w, bool *ran);

/* Publishes a job event (topic "job.<id>", type "job.progress" or "job.done"). */
void qgen_publish(qgen_service *s, const char *type, const char *job_id, const char *owner,
                  int done, int total, const char *status);

#endif
