/*
 * service.h - the one skeleton every service runs on.
 *
 * A service is a definition (cm_service_def): its name and schema, its own config keys beyond
 * the common ones, its migrations, its method table, app and per-worker state init/fini, an
 * optional step after the migrations, optional background work, and extra readiness. Its main.c
 * is one line: `return cm_service_main(&x_service);`, which runs
 *
 *   config -> log -> metrics -> app init -> wait for PostgreSQL -> migrate -> prepare ->
 *   RPC server (workers) -> background start -> admin port -> wait for SIGTERM ->
 *   draining (/readyz 503) -> background stop -> RPC drain -> stop.
 *
 * COMMON KEYS, declared once here (X is the upper-case name, e.g. AUTH):
 *   LOG_LEVEL, DATABASE_URL, REDIS_HOST, REDIS_PORT, X_RPC_URL, X_ADMIN_ADDR, X_WORKERS,
 *   X_DB_RETRY_S (how long start-up waits for PostgreSQL), PG_STATEMENT_TIMEOUT_MS (the ceiling
 *   of every statement, and the bound of background work) and PG_LOCK_TIMEOUT_MS.
 *
 * WORKERS. Every RPC worker thread owns one PostgreSQL connection (search_path = the schema)
 * and one Redis connection, opened by the skeleton and closed by it after worker_fini; the
 * service's worker_init builds its own worker state around them (borrowing, never closing them)
 * and handlers find that state in ctx->worker_state. For each call the worker's PostgreSQL
 * connection is bounded by the call's deadline (cm_pg_set_deadline), so no statement outlives
 * its caller.
 *
 * POLICY FOR A WORKER THAT CANNOT START: the process does not serve. If any worker's state
 * cannot be built, start-up fails, the error is logged (<NAME>-WORKER-INIT) and the process exits
 * 1, so the orchestrator restarts it; a service never runs with fewer workers than configured
 * and never keeps a worker that can only answer UNAVAILABLE.
 *
 * READINESS: PostgreSQL reachable (on the skeleton's own connection), then def->ready. Redis is
 * reported (log line on change, gauge <name>_redis_up) but never required: Redis is a cache and
 * a coordinator, and every service works without it, slower.
 *
 * Exit status of cm_service_main: 0 after a clean stop, 2 for a configuration error, 1 for any
 * other start-up failure.
 */
#ifndef CM_SERVICE_H
#define CM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"
#include "cm/jobs.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "cm/rpc.h"

typedef struct cm_metrics cm_metrics;

/* The common keys. */
typedef struct cm_service_config {
	const char *log_level;
	const char *database_url;
	const char *redis_host;
	int64_t     redis_port;
	const char *rpc_url;
	const char *admin_addr;
	int64_t     workers;
	int64_t     db_retry_s;
	int64_t     pg_statement_timeout_ms;
	int64_t     pg_lock_timeout_ms;
} cm_service_config;

/* What app_init is given; valid until the process stops. */
typedef struct cm_service_env {
	const char              *name;    /* "auth" */
	const char              *schema;  /* "auth" */
	const cm_service_config *common;  /* the common keys */
	void                    *config;  /* the service's own config struct (config_size bytes) */
	cm_metrics              *metrics; /* prefix "<name>_" */
} cm_service_env;

/* One thread's connections (an RPC worker's or a job runner's), owned by the skeleton. */
typedef struct cm_service_conns {
	cm_pg    *pg;
	cm_redis *redis;
	cm_jobs  *jobs; /* the job queue on pg; NULL when the service has none (jobs_options) */
	int       index;
} cm_service_conns;

/* Opens a thread's connections from the common keys: pg on schema, redis, and jobs with jo
 * (NULL: none). Connections are lazy: this fails only on bad arguments or memory; on failure
 * what was opened is closed. */
CM_MUSTCHECK cm_err cm_service_conns_open(cm_service_conns *c, const cm_service_config *common,
                                          const char *schema, const cm_jobs_options *jo);
void                cm_service_conns_close(cm_service_conns *c);

typedef struct cm_service_def {
	const char *name;   /* lower case: log component, metrics prefix, key prefix upper-cased */
	const char *schema; /* PostgreSQL schema of every connection and of the migrations */
	const char *rpc_url_default;
	const char *admin_addr_default;
	const char *workers_default; /* as text, like every default of a config table */

	/* The service's own keys: the skeleton allocates config_size zeroed bytes and asks
	 * config_table to fill `out` (at most cap entries) with entries whose targets lie in
	 * that struct; returns how many. NULL: no keys of its own. */
	size_t config_size;
	size_t (*config_table)(void *config, cm_cfg_entry *out, size_t cap);

	/* Migrations of the schema (pointers to the count: generated arrays are extern). */
	const cm_migration *migrations;
	const size_t       *n_migrations;
	int jobs_version;   /* the job queue's tables (cm/jobs.h) as migration N; 0: none */
	int follow_version; /* a deletion log consumer's tables (cm/follow.h) as migration N; 0:
	                       none */

	const cm_rpc_method *methods;
	const size_t        *n_methods;

	/* The app state: app_size zeroed bytes allocated by the skeleton, built in place by
	 * app_init (read-only to workers afterwards, or locked inside) and handed to every other
	 * hook. A failing app_init cleans up after itself and stops start-up; app_fini runs only
	 * after a successful app_init. Every hook may be NULL. */
	size_t app_size;
	cm_err (*app_init)(const cm_service_env *env, void *app);
	void (*app_fini)(void *app);
	/* Once, after the migrations, on the start-up connection (e.g. seed rows). Retried while
	 * it returns CM_EUNAVAIL, within X_DB_RETRY_S. */
	cm_err (*prepare)(void *app, cm_pg *pg);
	/* On each worker thread, before it serves; see the policy above. Job runners (cm/runners.h)
	 * build their state with the same pair around their own conns. */
	cm_err (*worker_init)(void *app, const cm_service_conns *conns, void **state);
	void (*worker_fini)(void *app, void *state);
	/* The service's job queue (channel, lease, attempts): every worker's conns carry a cm_jobs
	 * handle on its connection. NULL: no job queue. */
	void (*jobs_options)(const void *app, cm_jobs_options *jo);
	/* Background work (job runners, consumers): started after the RPC server, stopped first. */
	cm_err (*start)(void *app);
	void (*stop)(void *app);
	/* Readiness beyond PostgreSQL (data directory, upstreams). Runs on the checker thread. */
	bool (*ready)(void *app, char *why, size_t whylen);
} cm_service_def;

typedef struct cm_service cm_service;

/* Runs the whole life of a service; returns the process exit status (see above). */
int cm_service_main(const cm_service_def *def);

/* The same life in steps, for tests: start runs everything up to the admin port and returns;
 * stop drains and frees. *out_app (may be NULL) receives the app state. */
CM_MUSTCHECK cm_err cm_service_start(const cm_service_def *def, cm_service **out, void **out_app);
void                cm_service_stop(cm_service *svc);

/* Every migration of a definition, the job queue's and the follower's included, in ascending
 * versions. Returns how many were written (at most cap). */
size_t cm_service_migrations(const cm_service_def *def, cm_migration *out, size_t cap);

/* The common keys' entries for `name` (env names built into `names`, which must outlive use). */
typedef struct cm_service_keynames {
	char rpc_url[64], admin_addr[64], workers[64], db_retry_s[64];
} cm_service_keynames;
size_t cm_service_common_table(const cm_service_def *def, cm_service_config *c,
                               cm_service_keynames *names, cm_cfg_entry *out, size_t cap);

#endif
