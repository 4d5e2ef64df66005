/*
 * main.c - svc-pdf: config -> logging -> data dir + mupdf -> PostgreSQL (waited for) ->
 * migrations -> RPC workers -> admin port -> wait for SIGTERM -> drain -> stop.
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

/* Waits up to PDF_DB_RETRY_S for PostgreSQL, then applies the migrations. */
static cm_err
prepare_db(cm_pg *pg)
{
	struct timespec ts = {0, 500 * 1000000L};
	int64_t         deadline = cm_mono_ms() + PDF_DB_RETRY_S * 1000;
	bool            up;
	cm_err          err = CM_EUNAVAIL;

	while (!(up = cm_pg_ping(pg)) && cm_mono_ms() < deadline)
		nanosleep(&ts, NULL);
	if (!up)
		cm_error("PDF-PG-FAIL", "postgresql unreachable for %d s: %s", PDF_DB_RETRY_S,
		         cm_pg_errmsg(pg));
	else if ((err = cm_pg_migrate_up(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count)) !=
	         CM_OK)
		cm_error("PDF-MIGRATE-FAIL", "migrations failed: %s", cm_pg_errmsg(pg));
	return err;
}

int
main(void)
{
	static pdf_service svc;
	pdf_config         cfg;
	pdf_ready          ready = {0};
	cm_metrics        *m = NULL;
	cm_rpc_server     *srv = NULL;
	cm_admin          *admin = NULL;
	bool               inited = false;
	char               err[256];
	int                rc = 1;

	cm_signals_block();
	if (pdf_config_load(&cfg, err, sizeof(err)) != CM_OK) {
		fprintf(stderr, "svc-pdf: configuration: %s\n", err);
		rc = 2;
		goto out;
	}
	cm_log_init("pdf", cm_log_level_parse(cfg.log_level));
	pdf_config_log(&cfg);

	if ((m = cm_metrics_alloc("pdf_")) == NULL || pdf_service_init(&svc, &cfg, m) != CM_OK)
		goto out;
	inited = true;
	ready.svc = &svc;
	if (cm_pg_open(&ready.pg, cfg.database_url, PDF_SCHEMA) != CM_OK ||
	    cm_redis_open(&ready.redis, cfg.redis_host, (int)cfg.redis_port, CM_REDIS_TIMEOUT_MS) !=
	        CM_OK)
		goto out;
	if (prepare_db(ready.pg) != CM_OK)
		goto out;
	if (pdf_server_start(&svc, &srv) != CM_OK)
		goto out;
	if (cm_admin_start(&admin, cfg.admin_addr, m, pdf_ready_check, &ready, 2000) != CM_OK) {
		cm_error("PDF-ADMIN-FAIL", "cannot serve the admin port on %s", cfg.admin_addr);
		goto out;
	}
	cm_info("PDF-START", "serving on %s (admin %s, %lld workers, data %s)", cfg.rpc_url,
	        cfg.admin_addr, (long long)cfg.workers, cfg.data_dir);

	{
		int sig = cm_wait_for_signal(); /* not inside cm_info: it may not evaluate */
		cm_info("PDF-SIGNAL", "stopping on signal %d", sig);
	}
	cm_admin_set_draining(admin);
	rc = 0;
out:
	cm_rpc_server_stop(srv); /* lets in-flight calls finish and reply */
	cm_admin_stop(admin);
	cm_redis_close(ready.redis);
	cm_pg_close(ready.pg);
	if (inited)
		pdf_service_fini(&svc);
	cm_metrics_free(m);
	if (rc == 0)
		cm_info("PDF-STOP", "stopped");
	return rc;
}
