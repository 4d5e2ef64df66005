/*
 * server.c - svc-pdf's definition for the service skeleton: method table, process state,
 * per-worker state, and readiness. No SQL here.
 *
 * DESIGN: each RPC worker thread gets its PostgreSQL connection (schema "pdf") and Redis
 * connection from the skeleton and builds its own mupdf context (independent: nothing of mupdf
 * is shared between workers, see extract.c), so a handler never shares a connection or a
 * context with another thread. A worker that cannot be built stops start-up (cm/service.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"
#include "files.h"
#include "handlers.h"
#include "indexer.h"
#include "proto/common.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "server.h"
#include "spool.h"

const cm_rpc_method pdf_methods[] = {
    {"pdf.Upload", &pdf__upload_request__descriptor, &pdf__upload_response__descriptor,
     pdf_handle_upload, NULL},
    {"pdf.UploadPart", &pdf__upload_part__descriptor, &pdf__upload_part_response__descriptor,
     pdf_handle_upload_part, NULL},
    {"pdf.UploadBody", &pdf__upload_body_request__descriptor,
     &pdf__upload_body_response__descriptor, pdf_handle_upload_body, NULL},
    {"pdf.UploadAbort", &pdf__upload_abort_request__descriptor,
     &pdf__upload_part_response__descriptor, pdf_handle_upload_abort, NULL},
    {"pdf.List", &pdf__list_request__descriptor, &pdf__list_response__descriptor, pdf_handle_list,
     NULL},
    {"pdf.Get", &pdf__get_request__descriptor, &pdf__document__descriptor, pdf_handle_get, NULL},
    {"pdf.GetPage", &pdf__get_page_request__descriptor, &pdf__page__descriptor, pdf_handle_get_page,
     NULL},
    {"pdf.Delete", &pdf__delete_request__descriptor, &pdf__delete_response__descriptor,
     pdf_handle_delete, NULL},
    {"pdf.Select", &pdf__select_request__descriptor, &pdf__selected_response__descriptor,
     pdf_handle_select, NULL},
    {"pdf.Selected", &pdf__selected_request__descriptor, &pdf__selected_response__descriptor,
     pdf_handle_selected, NULL},
    {"pdf.Chunks", &pdf__chunks_request__descriptor, &pdf__chunks_response__descriptor,
     pdf_handle_chunks, NULL},
    {"pdf.Search", &pdf__search_request__descriptor, &pdf__chunks_response__descriptor,
     pdf_handle_search, NULL},
    {"pdf.Deletions", &cm__deletions_request__descriptor, &cm__deletions_response__descriptor,
     pdf_handle_deletions, NULL},
};
const size_t pdf_n_methods = sizeof(pdf_methods) / sizeof(pdf_methods[0]);

cm_err
pdf_service_init(pdf_service *s, const pdf_config *cfg, cm_metrics *m)
{
	cm_err err;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->metrics = m;
	if ((err = pdf_files_init(s->cfg.data_dir)) != CM_OK ||
	    (err = pdf_spool_init(s->cfg.data_dir)) != CM_OK ||
	    (err = pdf_gate_alloc(&s->gate, (int)s->cfg.user_max_active)) != CM_OK)
		goto out;
	if ((err = pdf_extractor_alloc(&s->extractor)) != CM_OK) {
		cm_error("PDF-MUPDF-INIT", "cannot create the mupdf context: %s", cm_strerror(err));
		goto out;
	}
	s->extractions =
	    cm_metrics_counter(m, "extractions_total", "PDF text extractions run (mupdf)", NULL);
	s->skipped = cm_metrics_counter(
	    m, "extractions_skipped_total",
	    "uploads that needed no extraction (same file stored or cached)", NULL);
	s->failures = cm_metrics_counter(
	    m, "extraction_failures_total",
	    "extractions that failed (corrupt, encrypted, no text, limits)", NULL);
	s->extract_seconds =
	    cm_metrics_histogram(m, "extract_duration_seconds", "time to extract one PDF", NULL);
	s->busy_refused = cm_metrics_counter(
	    m, "uploads_refused_busy_total",
	    "uploads refused because the user had PDF_USER_MAX_ACTIVE in progress", NULL);
	s->uploads_active =
	    cm_metrics_gauge(m, "uploads_in_progress", "uploads being handled right now", NULL);
	s->chunks_indexed = cm_metrics_counter(
	    m, "chunks_indexed_total", "chunks given their full-text vector after upload", NULL);
out:
	if (err != CM_OK)
		pdf_service_fini(s);
	return err;
}

void
pdf_service_fini(pdf_service *s)
{
	pdf_extractor_free(s->extractor);
	s->extractor = NULL;
	pdf_gate_free(s->gate);
	s->gate = NULL;
}

cm_err
pdf_worker_alloc(pdf_service *s, cm_pg *pg, cm_redis *redis, pdf_worker **out)
{
	pdf_worker *w = NULL;
	cm_err      err = CM_ENOMEM;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto out;
	w->svc = s;
	w->pg = pg;
	w->redis = redis;
	if ((err = pdf_xctx_alloc(s->extractor, &w->x)) != CM_OK ||
	    (err = cm_pg_open_like(pg, &w->store_pg)) != CM_OK)
		goto out;
	*out = w;
	w = NULL;
out:
	pdf_worker_free(w);
	return err;
}

void
pdf_worker_free(pdf_worker *w)
{
	if (w == NULL)
		return;
	pdf_xctx_free(w->x);
	cm_pg_close(w->store_pg);
	free(w);
}

/* ---- the skeleton's hooks -------------------------------------------------------------------- */

static cm_err
app_init(const cm_service_env *env, void *app)
{
	pdf_service *s = app;
	cm_err       err = pdf_service_init(s, env->config, env->metrics);

	s->database_url = env->common->database_url;
	s->schema = env->schema;
	return err;
}

static void
app_fini(void *app)
{
	pdf_service_fini(app);
}

static cm_err
worker_init(void *app, const cm_service_conns *conns, void **state)
{
	pdf_worker *w = NULL;
	cm_err      err = pdf_worker_alloc(app, conns->pg, conns->redis, &w);

	*state = w;
	return err;
}

static void
worker_fini(void *app, void *state)
{
	(void)app;
	pdf_worker_free(state);
}

/* Background work: the chunks' full-text vectors (indexer.h). */
static cm_err
start(void *app)
{
	pdf_service *s = app;

	return pdf_indexer_start(&s->indexer, s->database_url, s->schema, s->chunks_indexed);
}

static void
stop(void *app)
{
	pdf_service *s = app;

	pdf_indexer_stop(s->indexer);
	s->indexer = NULL;
}

/* Beyond PostgreSQL (the skeleton's check): the files must be writable. */
static bool
ready(void *app, char *why, size_t whylen)
{
	pdf_service *s = app;

	if (access(s->cfg.data_dir, W_OK | X_OK) != 0) {
		snprintf(why, whylen, "data directory %s not writable", s->cfg.data_dir);
		return false;
	}
	return true;
}

const cm_service_def pdf_service_def = {
    .name = "pdf",
    .schema = PDF_SCHEMA,
    .rpc_url_default = "tcp://127.0.0.1:7102",
    .admin_addr_default = "127.0.0.1:9102",
    .workers_default = "2", /* extractions in parallel: one per core */
    .config_size = sizeof(pdf_config),
    .config_table = pdf_config_table,
    .migrations = pdf_migrations,
    .n_migrations = &pdf_migrations_count,
    .methods = pdf_methods,
    .n_methods = &pdf_n_methods,
    .app_size = sizeof(pdf_service),
    .app_init = app_init,
    .app_fini = app_fini,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .start = start,
    .stop = stop,
    .ready = ready,
};
