/*
 * service.c - the service skeleton (cm/service.h): one life for every service.
 *
 * DESIGN. cm_service_start runs the start-up steps in order and, on the first failure, undoes
 * what was done (cm_service_stop frees whatever exists, so one exit path serves both). The
 * skeleton owns what every service has - the common config, metrics, the start-up/readiness
 * connections, each worker's PostgreSQL and Redis connections, the RPC server and the admin
 * port - and calls the definition's hooks for what differs. Workers' connections live in an
 * array indexed by worker, so the RPC server hands the service's own worker state to handlers
 * untouched.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/admin.h"
#include "cm/follow.h"
#include "cm/jobs.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/service.h"
#include "cm/util.h"

#define SERVICE_MAX_KEYS 64       /* common + own config entries */
#define SERVICE_MAX_MIGRATIONS 64 /* migrations of one schema */
#define SERVICE_DB_POLL_MS 500    /* start-up: PostgreSQL polled this often */
#define SERVICE_READY_MS 2000     /* readiness checked this often */

struct cm_service {
	const cm_service_def *def;
	cm_service_config     common;
	cm_service_keynames   names;
	cm_service_env        env;
	void                 *config;
	void                 *app;
	bool                  app_inited;
	cm_service_conns     *conns;    /* one per worker */
	cm_pg                *pg;       /* start-up, then readiness (checker thread only) */
	cm_redis             *redis;    /* readiness only */
	int                   redis_up; /* -1 unknown: logged when it changes */
	cm_gauge             *redis_gauge;
	cm_rpc_server        *rpc;
	bool                  started; /* def->start succeeded: def->stop is due */
	cm_admin             *admin;
};

/* ---- config --------------------------------------------------------------------------------- */

size_t
cm_service_common_table(const cm_service_def *def, cm_service_config *c, cm_service_keynames *names,
                        cm_cfg_entry *out, size_t cap)
{
	char   up[32];
	size_t i;

	for (i = 0; def->name[i] != '\0' && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)def->name[i]);
	up[i] = '\0';
	snprintf(names->rpc_url, sizeof(names->rpc_url), "%s_RPC_URL", up);
	snprintf(names->admin_addr, sizeof(names->admin_addr), "%s_ADMIN_ADDR", up);
	snprintf(names->workers, sizeof(names->workers), "%s_WORKERS", up);
	snprintf(names->db_retry_s, sizeof(names->db_retry_s), "%s_DB_RETRY_S", up);

	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"LOG_LEVEL", CM_CFG_STR, &c->log_level, "info", 0, 0, 0, "debug|info|warn|error"},
		{"DATABASE_URL", CM_CFG_STR, &c->database_url,
		    "host=127.0.0.1 port=5432 dbname=postgres user=postgres", CM_CFG_SECRET, 0, 0,
		    "libpq conninfo or URI"},
		{"REDIS_HOST", CM_CFG_STR, &c->redis_host, "127.0.0.1", 0, 0, 0,
		    "Redis host (empty: none; every service works without it, slower)"},
		{"REDIS_PORT", CM_CFG_INT, &c->redis_port, "6379", 0, 1, 65535, "Redis port"},
		{names->rpc_url, CM_CFG_STR, &c->rpc_url, def->rpc_url_default, 0, 0, 0,
		    "nng URL to serve RPC on"},
		{names->admin_addr, CM_CFG_STR, &c->admin_addr, def->admin_addr_default, 0, 0, 0,
		    "host:port of /healthz /readyz /metrics"},
		{names->workers, CM_CFG_INT, &c->workers, def->workers_default, 0, 1, 256,
		    "RPC worker threads"},
		{names->db_retry_s, CM_CFG_INT, &c->db_retry_s, "30", 0, 0, 3600,
		    "start-up: wait this long for PostgreSQL"},
		{"PG_STATEMENT_TIMEOUT_MS", CM_CFG_INT, &c->pg_statement_timeout_ms, "30000", 0, 0,
		    3600000, "ceiling of every statement (RPC calls: their deadline if sooner)"},
		{"PG_LOCK_TIMEOUT_MS", CM_CFG_INT, &c->pg_lock_timeout_ms, "5000", 0, 0, 3600000,
		    "longest wait for a row or table lock"},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}

/* Loads the common and the service's own keys from one table: the first problem in either is
 * reported, and the log lists both. */
static cm_err
load_config(cm_service *s, bool log, char *err, size_t errlen)
{
	cm_cfg_entry t[SERVICE_MAX_KEYS];
	size_t n = cm_service_common_table(s->def, &s->common, &s->names, t, SERVICE_MAX_KEYS);
	cm_err e = CM_OK;

	if (s->def->config_table != NULL)
		n += s->def->config_table(s->config, t + n, SERVICE_MAX_KEYS - n);
	if (log)
		cm_config_log(t, n);
	else
		e = cm_config_load(t, n, err, errlen);
	return e;
}

/* ---- migrations ----------------------------------------------------------------------------- */

size_t
cm_service_migrations(const cm_service_def *def, cm_migration *out, size_t cap)
{
	size_t n = 0, own = def->n_migrations != NULL ? *def->n_migrations : 0;

	for (size_t i = 0; i < own && n < cap; i++)
		out[n++] = def->migrations[i];
	if (def->jobs_version > 0 && n < cap) {
		out[n].version = def->jobs_version;
		out[n].name = "jobs";
		out[n].up = cm_jobs_migration_up;
		out[n].down = cm_jobs_migration_down;
		n++;
	}
	if (def->follow_version > 0 && n < cap) {
		out[n].version = def->follow_version;
		out[n].name = "follow";
		out[n].up = cm_follow_migration_up;
		out[n].down = cm_follow_migration_down;
		n++;
	}
	for (size_t i = 1; i < n; i++) { /* insertion sort: ascending versions */
		cm_migration m = out[i];
		size_t       j = i;
		while (j > 0 && out[j - 1].version > m.version) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = m;
	}
	return n;
}

/* Waits up to X_DB_RETRY_S for PostgreSQL, migrates, then runs def->prepare; an unreachable
 * database is retried within that time, any other failure is final. */
static cm_err
prepare_db(cm_service *s)
{
	cm_migration    migs[SERVICE_MAX_MIGRATIONS];
	size_t          n = cm_service_migrations(s->def, migs, SERVICE_MAX_MIGRATIONS);
	int64_t         deadline = cm_mono_ms() + s->common.db_retry_s * 1000;
	struct timespec ts = {0, SERVICE_DB_POLL_MS * 1000000L};
	cm_err          err;

	for (;;) {
		if (!cm_pg_ping(s->pg))
			err = CM_EUNAVAIL;
		else if ((err = cm_pg_migrate_up(s->pg, s->def->schema, migs, n)) == CM_OK &&
		         s->def->prepare != NULL)
			err = s->def->prepare(s->app, s->pg);
		if (err != CM_EUNAVAIL || cm_mono_ms() >= deadline)
			break;
		nanosleep(&ts, NULL);
	}
	if (err == CM_EUNAVAIL)
		cm_error("SERVICE-PG-FAIL", "%s: PostgreSQL unreachable for %lld s: %s",
		         s->def->name, (long long)s->common.db_retry_s, cm_pg_errmsg(s->pg));
	else if (err != CM_OK)
		cm_error("SERVICE-MIGRATE-FAIL", "%s: preparing the database failed: %s (%s)",
		         s->def->name, cm_strerror(err), cm_pg_errmsg(s->pg));
	return err;
}

/* ---- workers -------------------------------------------------------------------------------- */

cm_err
cm_service_conns_open(cm_service_conns *c, const cm_service_config *common, const char *schema,
                      const cm_jobs_options *jo)
{
	cm_err err;

	c->pg = NULL;
	c->redis = NULL;
	c->jobs = NULL;
	if ((err = cm_pg_open(&c->pg, common->database_url, schema)) != CM_OK ||
	    (err = cm_redis_open(&c->redis, common->redis_host, (int)common->redis_port,
	                         CM_REDIS_TIMEOUT_MS)) != CM_OK ||
	    (jo != NULL && (err = cm_jobs_open(&c->jobs, c->pg, jo)) != CM_OK))
		cm_service_conns_close(c);
	return err;
}

void
cm_service_conns_close(cm_service_conns *c)
{
	cm_jobs_close(c->jobs);
	cm_redis_close(c->redis);
	cm_pg_close(c->pg);
	c->jobs = NULL;
	c->redis = NULL;
	c->pg = NULL;
}

static cm_err
worker_init(void *arg, int index, void **state)
{
	cm_service       *s = arg;
	cm_service_conns *c = &s->conns[index];
	cm_jobs_options   jo;
	cm_err            err;

	*state = NULL;
	c->index = index;
	if (s->def->jobs_options != NULL)
		s->def->jobs_options(s->app, &jo);
	if ((err = cm_service_conns_open(c, &s->common, s->def->schema,
	                                 s->def->jobs_options != NULL ? &jo : NULL)) != CM_OK ||
	    (s->def->worker_init != NULL && (err = s->def->worker_init(s->app, c, state)) != CM_OK))
		cm_error("SERVICE-WORKER-INIT", "%s: worker %d cannot start: %s", s->def->name,
		         index, cm_strerror(err));
	return err;
}

static void
worker_fini(void *arg, int index, void *state)
{
	cm_service *s = arg;

	if (state != NULL && s->def->worker_fini != NULL)
		s->def->worker_fini(s->app, state);
	cm_service_conns_close(&s->conns[index]);
}

/* Every statement of a call is bounded by the call's deadline; between calls, by the ceiling. */
static void
call_begin(void *arg, int index, const cm_rpc_ctx *ctx)
{
	cm_service *s = arg;

	cm_pg_set_deadline(s->conns[index].pg, ctx->deadline_ms);
}

static void
call_end(void *arg, int index)
{
	cm_service *s = arg;

	cm_pg_set_deadline(s->conns[index].pg, 0);
}

/* ---- readiness ------------------------------------------------------------------------------ */

static bool
ready(void *arg, char *why, size_t whylen)
{
	cm_service *s = arg;
	int         up;

	if (!cm_pg_ping(s->pg)) {
		snprintf(why, whylen, "PostgreSQL unreachable: %s", cm_pg_errmsg(s->pg));
		return false;
	}
	up = cm_redis_ping(s->redis) ? 1 : 0;
	if (up != s->redis_up) {
		if (up)
			cm_info("SERVICE-REDIS-UP", "Redis reachable");
		else
			cm_warn("SERVICE-REDIS-DOWN", "Redis unreachable (%s): working without it",
			        cm_redis_errmsg(s->redis));
		s->redis_up = up;
	}
	cm_gauge_set(s->redis_gauge, up);
	if (s->def->ready != NULL && !s->def->ready(s->app, why, whylen))
		return false;
	snprintf(why, whylen, "ok");
	return true;
}

/* ---- life ----------------------------------------------------------------------------------- */

/* The steps before the database: config, log, metrics, app. Returns 2 for a configuration
 * error, 1 for another failure, 0 when done. */
static int
start_app(cm_service *s)
{
	char err[256];
	char prefix[40];

	if (s->def->config_size > 0 && (s->config = calloc(1, s->def->config_size)) == NULL)
		return 1;
	if (load_config(s, false, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "svc-%s: configuration: %s\n", s->def->name, err);
		return 2;
	}
	cm_log_init(s->def->name, cm_log_level_parse(s->common.log_level));
	(void)load_config(s, true, NULL, 0);
	cm_pg_set_default_timeouts(s->common.pg_statement_timeout_ms, s->common.pg_lock_timeout_ms);
	snprintf(prefix, sizeof(prefix), "%s_", s->def->name);
	if ((s->env.metrics = cm_metrics_alloc(prefix)) == NULL)
		return 1;
	s->redis_gauge = cm_metrics_gauge(s->env.metrics, "redis_up", "Redis reachable", NULL);
	s->env.name = s->def->name;
	s->env.schema = s->def->schema;
	s->env.common = &s->common;
	s->env.config = s->config;
	if (s->def->app_size > 0 && (s->app = calloc(1, s->def->app_size)) == NULL)
		return 1;
	if (s->def->app_init != NULL && s->def->app_init(&s->env, s->app) != CM_OK) {
		cm_error("SERVICE-INIT", "%s: cannot start", s->def->name);
		return 1;
	}
	s->app_inited = true;
	return 0;
}

static cm_err
start_serving(cm_service *s)
{
	cm_rpc_server_config rc;
	cm_err               err;

	if ((s->conns = calloc((size_t)s->common.workers, sizeof(*s->conns))) == NULL)
		return CM_ENOMEM;
	memset(&rc, 0, sizeof(rc));
	rc.url = s->common.rpc_url;
	rc.workers = (int)s->common.workers;
	rc.methods = s->def->methods;
	rc.n_methods = s->def->n_methods != NULL ? *s->def->n_methods : 0;
	rc.worker_init = worker_init;
	rc.worker_fini = worker_fini;
	rc.call_begin = call_begin;
	rc.call_end = call_end;
	rc.arg = s;
	rc.metrics = s->env.metrics;
	if ((err = cm_rpc_server_start(&s->rpc, &rc)) != CM_OK)
		return err;
	if (s->def->start != NULL) {
		if ((err = s->def->start(s->app)) != CM_OK) {
			cm_error("SERVICE-START", "%s: background work cannot start: %s",
			         s->def->name, cm_strerror(err));
			return err;
		}
		s->started = true;
	}
	if ((err = cm_admin_start(&s->admin, s->common.admin_addr, s->env.metrics, ready, s,
	                          SERVICE_READY_MS)) != CM_OK)
		cm_error("SERVICE-ADMIN", "%s: cannot serve the admin port on %s", s->def->name,
		         s->common.admin_addr);
	return err;
}

static int
start_all(const cm_service_def *def, cm_service **out)
{
	cm_service *s;
	int         rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return 1;
	s->def = def;
	s->redis_up = -1;
	*out = s;
	if ((rc = start_app(s)) != 0)
		return rc;
	if (cm_pg_open(&s->pg, s->common.database_url, def->schema) != CM_OK ||
	    cm_redis_open(&s->redis, s->common.redis_host, (int)s->common.redis_port,
	                  CM_REDIS_TIMEOUT_MS) != CM_OK ||
	    prepare_db(s) != CM_OK || start_serving(s) != CM_OK)
		return 1;
	cm_info("SERVICE-START", "svc-%s serving on %s (admin %s, %lld workers)", def->name,
	        s->common.rpc_url, s->common.admin_addr, (long long)s->common.workers);
	return 0;
}

cm_err
cm_service_start(const cm_service_def *def, cm_service **out, void **out_app)
{
	cm_service *s = NULL;
	int         rc = start_all(def, &s);

	if (rc != 0) {
		cm_service_stop(s);
		*out = NULL;
		return rc == 2 ? CM_EINVAL : CM_EUNAVAIL;
	}
	*out = s;
	if (out_app != NULL)
		*out_app = s->app;
	return CM_OK;
}

void
cm_service_stop(cm_service *s)
{
	if (s == NULL)
		return;
	cm_admin_set_draining(s->admin);
	if (s->started && s->def->stop != NULL)
		s->def->stop(s->app);
	cm_rpc_server_stop(s->rpc); /* lets in-flight calls finish and reply */
	cm_admin_stop(s->admin);
	cm_redis_close(s->redis);
	cm_pg_close(s->pg);
	if (s->app_inited && s->def->app_fini != NULL)
		s->def->app_fini(s->app);
	free(s->app);
	cm_metrics_free(s->env.metrics);
	free(s->conns);
	free(s->config);
	free(s);
}

int
cm_service_main(const cm_service_def *def)
{
	cm_service *s = NULL;
	int         rc;

	cm_signals_block();
	if ((rc = start_all(def, &s)) == 0) {
		int sig = cm_wait_for_signal(); /* not inside cm_info: it may not evaluate */
		cm_info("SERVICE-SIGNAL", "svc-%s stopping on signal %d", def->name, sig);
	}
	cm_service_stop(s);
	if (rc == 0)
		cm_info("SERVICE-STOP", "svc-%s stopped", def->name);
	return rc;
}
