/*
 * main.c - svc-auth: config -> logging -> keys -> database -> RPC workers + admin port ->
 * wait for SIGTERM -> drain -> stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/admin.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "password.h"
#include "server.h"

static cm_err
load_key(auth_app *app)
{
	const auth_config *c = &app->cfg;
	char              *priv = NULL, *pub = NULL;
	cm_err             err  = CM_EINVAL;

	if (c->jwt_private_key_file != NULL && c->jwt_private_key_file[0] != '\0') {
		if ((priv = cm_read_file(c->jwt_private_key_file, 65536)) != NULL &&
		    (pub = cm_read_file(c->jwt_public_key_file != NULL ? c->jwt_public_key_file : "", 65536)) != NULL)
			err = cm_jwt_key_rs256(&app->key, priv, pub);
		if (err != CM_OK)
			cm_error("AUTH-KEY", "cannot load the RS256 key pair (JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE)");
	} else if (c->jwt_secret != NULL && strlen(c->jwt_secret) >= 32) {
		err = cm_jwt_key_hs256(&app->key, c->jwt_secret, strlen(c->jwt_secret));
	} else {
		cm_error("AUTH-KEY", "set JWT_SECRET (at least 32 bytes) or the RS256 key files");
	}
	if (priv != NULL) {
		cm_wipe(priv, strlen(priv));
		free(priv);
	}
	free(pub);
	return err;
}

/* Readiness has its own connections, used only on the admin checker thread. */
typedef struct readiness {
	const auth_app *app;
	cm_pg          *pg;
	cm_redis       *redis;
	int             redis_up; /* -1 unknown, 0, 1: logged when it changes */
} readiness;

/* Ready when PostgreSQL answers. Redis is reported (log line on change, gauge auth_redis_up)
 * but not required: without it login throttling uses per-process counters, all else works. */
static bool
ready(void *arg, char *why, size_t whylen)
{
	readiness *rd = arg;
	bool       ok = false;

	if (rd->pg == NULL && cm_pg_open(&rd->pg, rd->app->cfg.database_url, "auth") != CM_OK)
		snprintf(why, whylen, "out of memory");
	else if (rd->redis == NULL &&
	         cm_redis_open(&rd->redis, rd->app->cfg.redis_host, (int) rd->app->cfg.redis_port, 0) != CM_OK)
		snprintf(why, whylen, "out of memory");
	else if (!cm_pg_ping(rd->pg))
		snprintf(why, whylen, "PostgreSQL unreachable");
	else {
		int up = cm_redis_ping(rd->redis) ? 1 : 0;

		ok = true;
		snprintf(why, whylen, "ok");
		if (up != rd->redis_up) {
			if (up)
				cm_info("AUTH-REDIS-UP", "Redis reachable");
			else
				cm_warn("AUTH-REDIS-DOWN", "Redis unreachable (%s): throttling per process",
				    cm_redis_errmsg(rd->redis));
			rd->redis_up = up;
		}
		cm_gauge_set(cm_metrics_gauge(rd->app->metrics, "redis_up", "Redis reachable", ""), up);
	}
	return ok;
}

int
main(void)
{
	static auth_app      app;
	static readiness     rd = {&app, NULL, NULL, -1};
	cm_rpc_server       *srv   = NULL;
	cm_admin            *admin = NULL;
	cm_pg               *pg    = NULL;
	cm_rpc_server_config rc    = {0};
	char                 err[256];
	int                  rc_exit = 1;

	cm_signals_block();
	if (auth_config_load(&app.cfg, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "svc-auth: configuration: %s\n", err);
		return 2;
	}
	cm_log_init("auth", cm_log_level_parse(app.cfg.log_level));
	auth_config_log(&app.cfg);
	if (load_key(&app) != CM_OK)
		goto out;
	if ((app.metrics = cm_metrics_alloc("auth_")) == NULL ||
	    (app.throttle = auth_throttle_alloc((auth_throttle_limits){app.cfg.throttle_account_max,
	         app.cfg.throttle_addr_max, app.cfg.throttle_window_s})) == NULL ||
	    auth_password_init(app.cfg.pwhash_opslimit, app.cfg.pwhash_memlimit_kib) != CM_OK)
		goto out;

	/* PostgreSQL may still be starting (compose, Kubernetes): keep trying for a while. */
	if (cm_pg_open(&pg, app.cfg.database_url, "auth") != CM_OK)
		goto out;
	for (int i = 0;; i++) {
		cm_err e = auth_prepare_database(&app, pg);
		if (e == CM_OK)
			break;
		if (e != CM_EUNAVAIL || i >= 60) {
			cm_error("AUTH-DB", "cannot prepare the database: %s (%s)", cm_strerror(e),
			    cm_pg_errmsg(pg));
			goto out;
		}
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}

	rc.url         = app.cfg.rpc_url;
	rc.workers     = (int) app.cfg.workers;
	rc.methods     = auth_methods;
	rc.n_methods   = auth_methods_count;
	rc.worker_init = auth_worker_init;
	rc.worker_fini = auth_worker_fini;
	rc.arg         = &app;
	rc.metrics     = app.metrics;
	if (cm_rpc_server_start(&srv, &rc) != CM_OK)
		goto out;
	if (cm_admin_start(&admin, app.cfg.admin_addr, app.metrics, ready, &rd, 2000) != CM_OK)
		goto out;

	{
		int sig = cm_wait_for_signal(); /* not inside cm_info: it may not evaluate */
		cm_info("AUTH-SIGNAL", "stopping on signal %d", sig);
	}
	cm_admin_set_draining(admin);
	rc_exit = 0;
out:
	cm_rpc_server_stop(srv); /* lets in-flight calls finish */
	cm_admin_stop(admin);
	cm_pg_close(rd.pg);
	cm_redis_close(rd.redis);
	cm_pg_close(pg);
	auth_throttle_free(app.throttle);
	cm_metrics_free(app.metrics);
	cm_jwt_key_free(app.key);
	return rc_exit;
}
