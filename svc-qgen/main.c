/*
 * main.c - svc-qgen: config -> logging -> LLM / svc-pdf / events -> PostgreSQL (waited for) ->
 * migrations -> RPC workers + job runners -> admin port -> wait for SIGTERM -> drain -> stop.
 */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cm/admin.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "config.h"
#include "server.h"

/* Waits up to QGEN_DB_RETRY_S for PostgreSQL, then applies the migrations. */
static cm_err
prepare_db(cm_pg *pg)
{
	struct timespec ts = {0, 500 * 1000000L};
	int64_t         deadline = cm_mono_ms() + QGEN_DB_RETRY_S * 1000;
	cm_migration    migs[32];
	size_t          n = qgen_migrations_all(migs, 32);
	bool            up;
	cm_err          err = CM_EUNAVAIL;

	while (!(up = cm_pg_ping(pg)) && cm_mono_ms() < deadline)
		nanosleep(&ts, NULL);
	if (!up)
		cm_error("QGEN-PG-FAIL", "postgresql unreachable for %d s: %s", QGEN_DB_RETRY_S,
		         cm_pg_errmsg(pg));
	else if ((err = cm_pg_migrate_up(pg, QGEN_SCHEMA, migs, n)) != CM_OK)
		cm_error("QGEN-MIGRATE-FAIL", "migrations failed: %s", cm_pg_errmsg(pg));
	return err;
}

int
main(void)
{
	static qgen_service svc;
	qgen_config         cfg;
	qgen_ready          ready = {0};
	cm_metrics         *m = NULL;
	cm_rpc_server      *srv = NULL;
	cm_admin           *admin = NULL;
	bool                inited = false, running = false;
	char                err[256];
	int                 rc = 1;

	cm_signals_block();
	if (qgen_config_load(&cfg, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "svc-qgen: configuration: %s\n", err);
		return 2;
	}
	cm_log_init("qgen", cm_log_level_parse(cfg.log_level));
	qgen_config_log(&cfg);

	if ((m = cm_metrics_alloc("qgen_")) == NULL || qgen_service_init(&svc, &cfg, m) != CM_OK)
		goto out;
	inited = true;
	ready.svc = &svc;
	if (cm_pg_open(&ready.pg, cfg.database_url, QGEN_SCHEMA) != CM_OK ||
	    prepare_db(ready.pg) != CM_OK)
		goto out;
	if (qgen_server_start(&svc, &srv) != CM_OK || qgen_runners_start(&svc) != CM_OK)
		goto out;
	running = true;
	if (cm_admin_start(&admin, cfg.admin_addr, m, qgen_ready_check, &ready, 2000) != CM_OK) {
		cm_error("QGEN-ADMIN-FAIL", "cannot serve the admin port on %s", cfg.admin_addr);
		goto out;
	}
	cm_info("QGEN-START",
	        "serving on %s (admin %s, events %s, %lld workers, %lld runners x %lld calls)",
	        cfg.rpc_url, cfg.admin_addr, cfg.events_url, (long long)cfg.workers,
	        (long long)cfg.runners, (long long)cfg.parallel);
	{
		int sig = cm_wait_for_signal(); /* not inside cm_info: it may not evaluate */
		cm_info("QGEN-SIGNAL", "stopping on signal %d", sig);
	}
	cm_admin_set_draining(admin);
	rc = 0;
out:
	if (running)
		qgen_runners_stop(&svc);
	cm_rpc_server_stop(srv);
	cm_admin_stop(admin);
	cm_pg_close(ready.pg);
	if (inited)
		qgen_service_fini(&svc);
	cm_metrics_free(m);
	if (rc == 0)
		cm_info("QGEN-STOP", "stopped");
	return rc;
}
