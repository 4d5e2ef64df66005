/*
 * server.h - svc-pdf's definition for the service skeleton (cm/service.h), its process state,
 * per-worker state and RPC method table.
 *
 * pdf_service is created once (config, the mupdf extractor, metrics, the data directory, the
 * per-user upload gate).
 * pdf_worker is what each RPC worker thread has: the PostgreSQL and Redis connections the
 * skeleton opened for it (borrowed) and its own mupdf context; handlers find it in
 * ctx->worker_state. Tests build a pdf_worker themselves and call the handlers directly.
 */
#ifndef PDF_SERVER_H
#define PDF_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "cm/err.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/redis.h"

#include "cm/rpc.h"
#include "cm/service.h"
#include "config.h"
#include "extract.h"
#include "gate.h"

typedef struct pdf_service {
	pdf_config     cfg;
	pdf_extractor *extractor;
	cm_metrics    *metrics;         /* not owned; may be NULL */
	cm_counter    *extractions;     /* pdf_extractions_total */
	cm_counter    *skipped;         /* pdf_extractions_skipped_total */
	cm_counter    *failures;        /* pdf_extraction_failures_total */
	cm_histogram  *extract_seconds; /* pdf_extract_duration_seconds */
	cm_counter    *busy_refused;    /* pdf_uploads_refused_busy_total */
	cm_gauge      *uploads_active;  /* pdf_uploads_in_progress */
	pdf_gate      *gate;            /* PDF_USER_MAX_ACTIVE (gate.h) */
	cm_counter    *chunks_indexed;  /* pdf_chunks_indexed_total */
	const char    *database_url; /* the skeleton's DATABASE_URL (NULL in tests: no indexer) */
	const char    *schema;
	struct pdf_indexer *indexer;        /* the chunks' vectors (indexer.h); NULL when stopped */
	_Atomic int64_t     spool_swept_ms; /* last sweep of abandoned upload spools (body.c) */
} pdf_service;

typedef struct pdf_worker {
	pdf_service *svc;
	cm_pg       *pg;
	cm_redis    *redis;
	pdf_xctx    *x;
	cm_pg       *store_pg; /* owned: a second connection, for the upload's storage thread */
} pdf_worker;

/* The migrations of schema "pdf" (generated from migrations/ by cmake). */
extern const cm_migration pdf_migrations[];
extern const size_t       pdf_migrations_count;

/* Copies cfg; creates the data directory and the extractor; registers metrics on m (which
 * must be created with the prefix "pdf_", or be NULL). */
CM_MUSTCHECK cm_err pdf_service_init(pdf_service *s, const pdf_config *cfg, cm_metrics *m);
void                pdf_service_fini(pdf_service *s);

/* A worker around pg and redis (borrowed: the caller closes them after pdf_worker_free), with
 * its own mupdf context and a second connection like pg (saver.h), for the calling thread. */
CM_MUSTCHECK cm_err pdf_worker_alloc(pdf_service *s, cm_pg *pg, cm_redis *redis, pdf_worker **out);
void                pdf_worker_free(pdf_worker *w);

/* The service: schema "pdf"; app state a pdf_service; readiness also needs the data directory
 * writable. */
extern const cm_service_def pdf_service_def;

/* The method table: pdf.Upload, pdf.UploadPart, pdf.UploadBody, pdf.UploadAbort, pdf.List, pdf.Get,
 * pdf.GetPage, pdf.Delete, pdf.Select, pdf.Selected, pdf.Chunks, pdf.Search, and pdf.Deletions
 * (services only). */
extern const cm_rpc_method pdf_methods[];
extern const size_t        pdf_n_methods;

#endif
