/*
 * qgen_harness.h - svc-pdf and svc-qgen in the caller's process, as the svc-qgen integration
 * tests (test_qgen_offline.c, test_qgen_stream.c, test_qgen_quota.c) and the quality report
 * (bench/quality/services.c) run them:
 *   - test_pdf: svc-pdf started by the skeleton as its main.c does (its RPC server on the
 *     caller's address, or on an ipc:// socket in its private data directory), and a worker of
 *     that service's for uploading directly (test_pdf_upload);
 *   - test_qgen: an svc-qgen service on a schema of its own (migrated up at start, down at
 *     stop, so the e2e stack's replicas never claim its jobs) with one worker (worker_helper.h)
 *     for calling the handlers, and test_qgen_run_until_done to run its jobs on the caller's
 *     thread (qgen_runner_run_one): no runner threads.
 *
 * DESIGN. Only the assembly is shared; what each caller measures stays with it: the ports, the
 * schema's name, svc-qgen's configuration (qgen_config, filled by the caller), which provider
 * (LLM_* in the environment) and the requests. svc-pdf reads its configuration from the
 * environment (PDF_*), so starting one sets it; the caller's qgen_config reaches qgen_service_init
 * directly. Header-only and free of cmocka like worker_helper.h: functions return cm_err and the
 * tests assert. Headers of both services are included by path (names like config.h clash).
 */
#ifndef TEST_QGEN_HARNESS_H
#define TEST_QGEN_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/service.h"
#include "cm/util.h"
#include "worker_helper.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/server.h"
#include "../../svc-qgen/handlers.h"
#include "../../svc-qgen/server.h"
#include "proto/pdf.pb-c.h"

/* ---- svc-pdf ------------------------------------------------------------------------------- */

typedef struct test_pdf {
	cm_service *srv;      /* svc-pdf, run by the skeleton as its main.c does */
	pdf_worker *w;        /* a worker of that service's, for uploading directly */
	cm_pg      *pg;       /* w's connections */
	cm_redis   *redis;    /* no Redis: the upload works without the cache */
	char        dir[64];  /* its data directory (mkdtemp), removed at stop */
	char        url[128]; /* its RPC address: svc-qgen's pdf_urls */
} test_pdf;

/* Starts svc-pdf on PostgreSQL db_url and Redis 127.0.0.1:redis_port with `workers` RPC workers,
 * its data in a new directory made from dir_template ("/tmp/x-XXXXXX"). rpc_url NULL: an ipc://
 * socket in that directory (no shared port taken). Sets LOG_LEVEL, DATABASE_URL, REDIS_*, and
 * PDF_*. On failure test_pdf_stop still frees what was made. */
static __attribute__((unused)) cm_err
test_pdf_start(test_pdf *p, const char *dir_template, const char *db_url, const char *redis_port,
               const char *rpc_url, const char *admin_addr, int workers)
{
	pdf_service *papp = NULL;
	char         nw[16];
	cm_err       err;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s", dir_template);
	if (db_url == NULL || mkdtemp(p->dir) == NULL) {
		p->dir[0] = '\0';
		return CM_EINVAL;
	}
	if (rpc_url != NULL)
		snprintf(p->url, sizeof(p->url), "%s", rpc_url);
	else
		snprintf(p->url, sizeof(p->url), "ipc://%s/pdf.ipc", p->dir);
	snprintf(nw, sizeof(nw), "%d", workers);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db_url, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", redis_port, 1);
	setenv("PDF_RPC_URL", p->url, 1);
	setenv("PDF_ADMIN_ADDR", admin_addr, 1);
	setenv("PDF_WORKERS", nw, 1);
	setenv("PDF_DATA_DIR", p->dir, 1);
	if ((err = cm_service_start(&pdf_service_def, &p->srv, (void **)&papp)) != CM_OK ||
	    (err = cm_pg_open(&p->pg, db_url, PDF_SCHEMA)) != CM_OK ||
	    (err = cm_redis_open(&p->redis, "", 0, CM_REDIS_TIMEOUT_MS)) != CM_OK ||
	    (err = pdf_worker_alloc(papp, p->pg, p->redis, &p->w)) != CM_OK)
		return err;
	return CM_OK;
}

/* Stops what test_pdf_start started and removes the data directory; -1 when it stays behind. */
static __attribute__((unused)) int
test_pdf_stop(test_pdf *p)
{
	char cmd[128];
	int  rc = 0;

	if (p->w != NULL)
		pdf_worker_free(p->w);
	cm_redis_close(p->redis);
	cm_pg_close(p->pg);
	if (p->srv != NULL)
		cm_service_stop(p->srv);
	if (p->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "%s left behind\n", p->dir);
			rc = -1;
		}
	}
	memset(p, 0, sizeof(*p));
	return rc;
}

/* Uploads PDF bytes as subject through svc-pdf's Upload handler; fills the document id and,
 * unless NULL, its page count. */
static __attribute__((unused)) cm_err
test_pdf_upload(test_pdf *p, const char *subject, const char *filename, const void *pdf, size_t len,
                char doc[40], int *npages)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	test_call            c;
	cm_err               err;

	rq.filename = (char *)filename;
	rq.content.data = (uint8_t *)pdf;
	rq.content.len = len;
	err = test_invoke(&c, p->w, pdf_handle_upload, subject, &rq,
	                  &pdf__upload_response__descriptor, (void **)&rs);
	if (err == CM_OK) {
		snprintf(doc, 40, "%s", rs->document->id);
		if (npages != NULL)
			*npages = rs->document->pages;
	}
	cm_arena_fini(&c.arena);
	return err;
}

/* ---- svc-qgen ------------------------------------------------------------------------------ */

typedef struct test_qgen {
	qgen_service     svc;
	qgen_worker     *w;
	cm_service_conns conns;   /* w's connections (worker_helper.h) */
	cm_metrics      *metrics; /* the service's registry ("qgen_"), for test_metric */
	cm_jobs_options  jo;      /* for more workers of the same service (test_worker_open) */
	const char      *db_url;
	char             schema[48];
	bool             schema_made, svc_on, worker_on;
} test_qgen;

/* The configuration the tests start from, set by hand (not from QGEN_*): events off, svc-pdf
 * at pdf_url, one runner, 4 calls of 5 at once, 4 rounds, a 15 s lease, a 60 s set cache, and
 * grounding at the QGEN_GROUND_* defaults. pdf_url must outlive qc. */
static __attribute__((unused)) void
test_qgen_config(qgen_config *qc, const char *pdf_url)
{
	memset(qc, 0, sizeof(*qc));
	qc->events_url = "";
	qc->pdf_urls = pdf_url;
	qc->runners = 1;
	qc->parallel = 4;
	qc->per_call = 5;
	qc->max_rounds = 4;
	qc->lease_ms = 15000;
	qc->cache_ttl_s = 60;
	qc->poll_ms = 100;
	qc->ground_min_overlap = 60;
	qc->ground_window = 2;
	qc->ground_ambiguous = true;
}

/* Creates the schema (migrations up on common->database_url), then the service with the
 * caller's qc and one worker. common must outlive q (the worker's connections name it). On
 * failure test_qgen_stop still undoes what was made. */
static __attribute__((unused)) cm_err
test_qgen_start(test_qgen *q, const cm_service_config *common, const char *schema,
                const qgen_config *qc)
{
	cm_migration migs[16];
	size_t       n = qgen_migrations_all(migs, 16);
	void        *st = NULL;
	cm_err       err;

	memset(q, 0, sizeof(*q));
	q->db_url = common->database_url;
	snprintf(q->schema, sizeof(q->schema), "%s", schema);
	if ((err = test_schema_create(q->db_url, q->schema, migs, n)) != CM_OK)
		return err;
	q->schema_made = true;
	if ((q->metrics = cm_metrics_alloc("qgen_")) == NULL)
		return CM_ENOMEM;
	if ((err = qgen_service_init(&q->svc, common, q->schema, qc, q->metrics)) != CM_OK)
		return err;
	q->svc_on = true;
	qgen_jobs_options(&q->svc, &q->jo);
	if ((err = test_worker_open(common, q->schema, &q->jo, qgen_worker_init, &q->svc, &q->conns,
	                            &st)) != CM_OK)
		return err;
	q->worker_on = true;
	q->w = st;
	return CM_OK;
}

static __attribute__((unused)) void
test_qgen_stop(test_qgen *q)
{
	cm_migration migs[16];

	if (q->worker_on)
		test_worker_close(qgen_worker_fini, &q->svc, q->w, &q->conns);
	if (q->svc_on)
		qgen_service_fini(&q->svc);
	if (q->schema_made)
		test_schema_drop_at(q->db_url, q->schema, migs, qgen_migrations_all(migs, 16));
	cm_metrics_free(q->metrics);
	memset(q, 0, sizeof(*q));
}

/* Runs queued jobs on this thread until job has ended (a runner drains its calls before it
 * returns), for at most timeout_ms; info (may be NULL) receives the job's last state. CM_OK when
 * it ended, CM_ETIMEDOUT when it had not by then, or the error of reading the job or claiming. */
static __attribute__((unused)) cm_err
test_qgen_run_until_done(test_qgen *q, const char *job, int64_t timeout_ms, cm_jobs_info *info)
{
	int64_t      end = cm_mono_ms() + timeout_ms;
	cm_jobs_info own;
	cm_err       err;

	if (info == NULL)
		info = &own;
	while (cm_mono_ms() < end) {
		bool ran = false;
		if ((err = cm_jobs_get(q->w->jobs, job, NULL, info)) != CM_OK)
			return err;
		if (info->status != CM_JOB_QUEUED && info->status != CM_JOB_RUNNING)
			return CM_OK;
		if ((err = qgen_runner_run_one(&q->svc, q->w, &ran)) != CM_OK)
			return err;
		if (!ran)
			usleep(50 * 1000);
	}
	return CM_ETIMEDOUT;
}

#endif
