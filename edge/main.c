/*
 * main.c - the edge process: config -> logging -> keys -> upstreams -> HTTP -> wait for SIGTERM
 * (reloading on SIGHUP: reload.h) -> drain -> stop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/admin.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "config.h"
#include "edge.h"
#include "httpproxy.h"
#include "migrate.h"
#include "ratelimit.h"
#include "refresh.h"
#include "reload.h"
#include "revoked.h"
#include "ws.h"

/* One RPC client per configured upstream (svc-auth is required; an empty list turns the
 * service's routes into 503). */
static cm_err
open_upstreams(edge *e)
{
	const struct {
		edge_upstream_id id;
		const char      *urls, *env;
	} ups[] = {
	    {EDGE_UP_AUTH, e->cfg.auth_urls, "EDGE_AUTH_URLS"},
	    {EDGE_UP_PDF, e->cfg.pdf_urls, "EDGE_PDF_URLS"},
	    {EDGE_UP_QGEN, e->cfg.qgen_urls, "EDGE_QGEN_URLS"},
	    {EDGE_UP_EVAL, e->cfg.eval_urls, "EDGE_EVAL_URLS"},
	    {EDGE_UP_CHAT, e->cfg.chat_urls, "EDGE_CHAT_URLS"},
	};

	for (size_t i = 0; i < sizeof(ups) / sizeof(ups[0]); i++) {
		cm_rpc_client *c = NULL;

		if (ups[i].urls[0] == '\0' && ups[i].id != EDGE_UP_AUTH)
			continue;
		if (cm_rpc_client_open(&c, edge_upstream_name(ups[i].id), ups[i].urls,
		                       e->metrics) != CM_OK) {
			cm_error("EDGE-UPSTREAM", "bad %s: %s", ups[i].env, ups[i].urls);
			return CM_EINVAL;
		}
		atomic_store(&e->up[ups[i].id], c);
	}
	return CM_OK;
}

/* The HTTP upstreams, on the event loops' pooled proxy (httpproxy.h): the web app's
 * server and the old backend legacy routes migrate from (migrate.h). */
static cm_err
open_http_upstreams(edge *e)
{
	char   why[256];
	cm_err err;

	if ((e->cfg.frontend_url[0] != '\0' || e->cfg.legacy_backend_url[0] != '\0') &&
	    edge_httpproxy_open(&e->http) != CM_OK)
		return CM_ENOMEM;
	if (e->cfg.frontend_url[0] != '\0' &&
	    edge_httpproxy_add(e->http, "frontend", "the frontend server", e->cfg.frontend_url, 0,
	                       &e->frontend_up) != CM_OK) {
		cm_error("EDGE-FRONTEND", "bad EDGE_FRONTEND_URL (http://host:port): %s",
		         e->cfg.frontend_url);
		return CM_EINVAL;
	}
	if ((err = edge_migrate_alloc(&e->migrate, &e->cfg, e->http, why, sizeof(why))) != CM_OK) {
		cm_error("EDGE-MIGRATE-CONFIG", "%s", why[0] != '\0' ? why : cm_strerror(err));
		return err;
	}
	return e->http != NULL ? edge_httpproxy_start(e->http, e) : CM_OK;
}

/* The environment, then EDGE_CONFIG_FILE over it. *file keeps the strings e->cfg points at. */
static cm_err
load_config(edge *e, cm_cfg_file **file, cm_cfg_origin *origins, char *err, size_t errlen)
{
	cm_err rc;

	if ((rc = edge_config_load(&e->cfg, err, errlen)) != CM_OK)
		return rc;
	if (e->cfg.config_file[0] != '\0' &&
	    (rc = cm_cfg_file_read(file, e->cfg.config_file, err, errlen)) != CM_OK)
		return rc;
	return edge_config_load_file(&e->cfg, *file, origins, err, errlen);
}

/* Waits for SIGTERM or SIGINT; reloads on SIGHUP; frees what reloads retired as it comes due. */
static int
serve_until_stopped(edge_reloader *rl)
{
	for (;;) {
		int sig = cm_wait_for_signal_ms(1000);

		edge_reloader_tick(rl);
		if (sig == SIGHUP) {
			cm_info("EDGE-SIGNAL", "reloading the configuration on SIGHUP");
			(void)edge_reload(rl);
		} else if (sig != 0) {
			return sig;
		}
	}
}

int
main(void)
{
	static edge          e;
	static cm_cfg_origin origins[EDGE_CFG_MAX];
	char                 err[256];
	char                *pem = NULL;
	int                  rc = 1;
	edge_ws_limits       wsl;
	cm_cfg_file         *file = NULL;
	edge_reloader       *rl = NULL;
	cm_admin            *admin = NULL;
	const cm_admin_page  configz = {"/configz", "application/json", edge_configz_render, NULL};
	cm_admin_page        pages[1];

	cm_signals_block_hup();
	if (load_config(&e, &file, origins, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "edge: configuration: %s\n", err);
		cm_cfg_file_free(file);
		return 2;
	}
	cm_log_init("edge", cm_log_level_parse(e.cfg.log_level));
	edge_config_log(&e.cfg, origins);
	/* Access lines: one write for many (log_buffer.c); the rest of the log is never held. */
	if (e.cfg.access_log_flush_ms > 0 && !cm_log_buffer_start((int)e.cfg.access_log_flush_ms))
		cm_warn("EDGE-ACCESS-LOG", "access log lines are written one by one (no memory)");
	if (edge_reloader_alloc(&rl, &e, origins) != CM_OK)
		goto out;

	if (e.cfg.jwt_public_key_file != NULL && e.cfg.jwt_public_key_file[0] != '\0') {
		if ((pem = cm_read_file(e.cfg.jwt_public_key_file, 65536)) == NULL ||
		    cm_jwt_key_rs256(&e.jwt, NULL, pem) != CM_OK) {
			cm_error("EDGE-KEY", "cannot load RS256 public key from %s",
			         e.cfg.jwt_public_key_file);
			goto out;
		}
	} else if (e.cfg.jwt_secret == NULL || strlen(e.cfg.jwt_secret) < 32 ||
	           cm_jwt_key_hs256(&e.jwt, e.cfg.jwt_secret, strlen(e.cfg.jwt_secret)) != CM_OK) {
		cm_error("EDGE-KEY", "set JWT_SECRET (at least 32 bytes) or JWT_PUBLIC_KEY_FILE");
		goto out;
	}
	if ((e.metrics = cm_metrics_alloc("edge_")) == NULL ||
	    (e.limiter = edge_limiter_alloc(&e.cfg, e.metrics)) == NULL ||
	    (e.refresher = edge_refresher_alloc()) == NULL)
		goto out;
	if (open_upstreams(&e) != CM_OK)
		goto out;
	if (edge_revoked_start(&e.revoked, e.cfg.redis_host, e.cfg.redis_port) != CM_OK)
		goto out;
	if (open_http_upstreams(&e) != CM_OK)
		goto out;
	edge_ws_limits_default(&wsl);
	wsl.idle_s = (int)e.cfg.ws_idle_s;
	wsl.max_sockets = (int)e.cfg.ws_max_sockets;
	/* The socket loop first: the HTTP engine hands upgraded sockets to it. */
	if (edge_ws_start_limits(&e, &wsl) != CM_OK || edge_start(&e) != CM_OK)
		goto out;
	pages[0] = configz;
	pages[0].arg = rl;
	if (e.cfg.admin_addr[0] != '\0' && cm_admin_start_pages(&admin, e.cfg.admin_addr, e.metrics,
	                                                        NULL, NULL, 0, pages, 1) != CM_OK)
		goto out;

	{
		int sig = serve_until_stopped(rl); /* not inside cm_info: it may not evaluate */
		cm_info("EDGE-SIGNAL", "stopping on signal %d", sig);
	}
	cm_admin_set_draining(admin);
	/* No new WebSocket upgrades (server.c refuses them while draining), then close the
	 * sockets, then drain the requests. */
	atomic_store(&e.draining, true);
	edge_ws_stop(&e);
	edge_drain_and_stop(&e);
	rc = 0;
out:
	cm_admin_stop(admin);
	for (int i = 0; i < EDGE_UP_COUNT; i++)
		cm_rpc_client_close(e.up[i]);
	edge_limiter_free(e.limiter);
	edge_refresher_free(e.refresher);
	edge_revoked_stop(e.revoked);
	edge_httpproxy_close(e.http);
	edge_migrate_free(e.migrate);
	cm_metrics_free(e.metrics);
	cm_jwt_key_free(e.jwt);
	edge_reloader_free(rl);
	cm_cfg_file_free(file);
	free(pem);
	cm_log_buffer_stop();
	return rc;
}
