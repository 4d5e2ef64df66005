/*
 * server.h - svc-pdf's process state, per-worker state and RPC method table.
 *
 * pdf_service is created once (config, the mupdf extractor, metrics, the data directory).
 * pdf_worker is what each RPC worker thread owns: its PostgreSQL and Redis connections and its
 * mupdf context; handlers find it in ctx->worker_state. Tests build a pdf_worker themselves and
 * call the handlers directly.
 */
#ifndef PDF_SERVER_H
#define PDF_SERVER_H

#include <stddef.h>

#include "cm/err.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "config.h"
#include "extract.h"

typedef struct pdf_service {
	pdf_config     cfg;
	pdf_extractor *extractor;
	cm_metrics    *metrics;         /* not owned; may be NULL */
	cm_counter    *extractions;     /* pdf_extractions_total */
	cm_counter    *skipped;         /* pdf_extractions_skipped_total */
	cm_counter    *failures;        /* pdf_extraction_failures_total */
	cm_histogram  *extract_seconds; /* pdf_extract_duration_seconds */
} pdf_service;

typedef struct pdf_worker {
	pdf_service *svc;
	cm_pg       *pg;
	cm_redis    *redis;
	pdf_xctx    *x;
} pdf_worker;

/* The migrations of schema "pdf" (generated from migrations/ by cmake). */
extern const cm_migration pdf_migrations[];
extern const size_t       pdf_migrations_count;

/* Copies cfg; creates the data directory and the extractor; registers metrics on m (which
 * must be created with the prefix "pdf_", or be NULL). */
CM_MUSTCHECK cm_err pdf_service_init(pdf_service *s, const pdf_config *cfg, cm_metrics *m);
void                pdf_service_fini(pdf_service *s);

/* Opens a worker's connections (lazily connecting) and mupdf context, for the calling thread. */
CM_MUSTCHECK cm_err pdf_worker_alloc(pdf_service *s, pdf_worker **out);
void                pdf_worker_free(pdf_worker *w);

/* The method table: pdf.Upload, pdf.List, pdf.Get, pdf.GetPage, pdf.Delete, pdf.Select,
 * pdf.Selected, pdf.Chunks, pdf.Search. */
extern const cm_rpc_method pdf_methods[];
extern const size_t        pdf_n_methods;

/* Starts the RPC server on cfg.rpc_url with cfg.workers workers, each with its own pdf_worker. */
CM_MUSTCHECK cm_err pdf_server_start(pdf_service *s, cm_rpc_server **out);

/* Readiness for the admin port: PostgreSQL reachable (Redis is optional), data dir writable.
 * arg is a pdf_ready (one PostgreSQL handle owned by the admin checker thread). */
typedef struct pdf_ready {
	pdf_service *svc;
	cm_pg       *pg;
	cm_redis    *redis;
} pdf_ready;
bool pdf_ready_check(void *arg, char *why, size_t whylen);

#endif
