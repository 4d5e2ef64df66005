/*
 * server.c - svc-pdf's method table, per-worker state, and readiness. No SQL here.
 *
 * DESIGN: each RPC worker thread calls worker_init once; it opens that thread's PostgreSQL
 * connection (schema "pdf"), Redis connection and mupdf context (independent: nothing of mupdf
 * is shared between workers, see extract.c), so a handler never shares a connection or a
 * context with another thread. A worker whose state could not be built answers every call
 * UNAVAILABLE rather than crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/log.h"
#include "files.h"
#include "handlers.h"
#include "proto/pdf.pb-c.h"
#include "server.h"

const cm_rpc_method pdf_methods[] = {
    {"pdf.Upload", &pdf__upload_request__descriptor, &pdf__upload_response__descriptor,
     pdf_handle_upload},
    {"pdf.List", &pdf__list_request__descriptor, &pdf__list_response__descriptor, pdf_handle_list},
    {"pdf.Get", &pdf__get_request__descriptor, &pdf__document__descriptor, pdf_handle_get},
    {"pdf.GetPage", &pdf__get_page_request__descriptor, &pdf__page__descriptor,
     pdf_handle_get_page},
    {"pdf.Delete", &pdf__delete_request__descriptor, &pdf__delete_response__descriptor,
     pdf_handle_delete},
    {"pdf.Select", &pdf__select_request__descriptor, &pdf__selected_response__descriptor,
     pdf_handle_select},
    {"pdf.Selected", &pdf__selected_request__descriptor, &pdf__selected_response__descriptor,
     pdf_handle_selected},
    {"pdf.Chunks", &pdf__chunks_request__descriptor, &pdf__chunks_response__descriptor,
     pdf_handle_chunks},
    {"pdf.Search", &pdf__search_request__descriptor, &pdf__chunks_response__descriptor,
     pdf_handle_search},
};
const size_t pdf_n_methods = sizeof(pdf_methods) / sizeof(pdf_methods[0]);

cm_err
pdf_service_init(pdf_service *s, const pdf_config *cfg, cm_metrics *m)
{
	cm_err err;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->metrics = m;
	if ((err = pdf_files_init(s->cfg.data_dir)) != CM_OK)
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
}

cm_err
pdf_worker_alloc(pdf_service *s, pdf_worker **out)
{
	pdf_worker *w = NULL;
	cm_err      err = CM_ENOMEM;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto out;
	w->svc = s;
	if ((err = cm_pg_open(&w->pg, s->cfg.database_url, PDF_SCHEMA)) != CM_OK ||
	    (err = cm_redis_open(&w->redis, s->cfg.redis_host, (int)s->cfg.redis_port,
	                         CM_REDIS_TIMEOUT_MS)) != CM_OK ||
	    (err = pdf_xctx_alloc(s->extractor, &w->x)) != CM_OK)
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
	cm_redis_close(w->redis);
	cm_pg_close(w->pg);
	free(w);
}

static void *
worker_init(void *arg, int index)
{
	pdf_worker *w = NULL;

	if (pdf_worker_alloc(arg, &w) != CM_OK)
		cm_error("PDF-WORKER-INIT", "worker %d has no state; it will answer UNAVAILABLE",
		         index);
	return w;
}

static void
worker_fini(void *arg, void *state)
{
	(void)arg;
	pdf_worker_free(state);
}

cm_err
pdf_server_start(pdf_service *s, cm_rpc_server **out)
{
	cm_rpc_server_config c;

	memset(&c, 0, sizeof(c));
	c.url = s->cfg.rpc_url;
	c.workers = (int)s->cfg.workers;
	c.methods = pdf_methods;
	c.n_methods = pdf_n_methods;
	c.worker_init = worker_init;
	c.worker_fini = worker_fini;
	c.arg = s;
	c.metrics = s->metrics;
	return cm_rpc_server_start(out, &c);
}

bool
pdf_ready_check(void *arg, char *why, size_t whylen)
{
	pdf_ready *r = arg;
	bool       ok = false;

	if (!cm_pg_ping(r->pg))
		snprintf(why, whylen, "postgresql unreachable: %s", cm_pg_errmsg(r->pg));
	else if (access(r->svc->cfg.data_dir, W_OK | X_OK) != 0)
		snprintf(why, whylen, "data directory %s not writable", r->svc->cfg.data_dir);
	else
		ok = true;
	/* Redis is a cache: without it uploads still work (slower), so it does not gate readiness.
	 */
	if (ok && r->redis != NULL && !cm_redis_ping(r->redis))
		cm_debug("PDF-REDIS-DOWN", "redis unreachable; serving without the text cache");
	return ok;
}
