/*
 * config.h - svc-pdf's own configuration (env PDF_*, beside the common keys of the service
 * skeleton, cm/service.h) and its fixed limits. Every limit of this service lives here:
 * configurable ones have their defaults in the config table (config.c), fixed ones are the PDF_*
 * constants below.
 */
#ifndef PDF_CONFIG_H
#define PDF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"

#define PDF_SCHEMA "pdf"
#define PDF_MAX_FILENAME 255                /* bytes of a sanitised display name */
#define PDF_MAX_META 1024                   /* bytes kept of one metadata value */
#define PDF_MAX_TEXT (64u * 1024u * 1024u)  /* extracted text of one document */
#define PDF_CACHE_MAX (32u * 1024u * 1024u) /* larger texts are not cached in Redis */
#define PDF_CACHE_TTL_S 86400               /* Redis text cache lifetime */
#define PDF_CHUNK_MIN 1500                  /* chunk size target, bytes */
#define PDF_CHUNK_MAX 2500
#define PDF_LIST_DEFAULT 20
#define PDF_LIST_MAX 100
#define PDF_SEARCH_DEFAULT 5
#define PDF_SEARCH_MAX 50
#define PDF_MAX_QUERY 1000  /* bytes of a search query / list filter */
#define PDF_TRGM_MIN "0.4"  /* least word_similarity of a query word in the trigram fallback */
#define PDF_HEAD_CHARS "64" /* characters of a page's start in Chunk.page_heads */
#define PDF_HEADS_SPAN 64   /* chunks spanning more pages get no page_heads */
#define PDF_LOCK_POLL_MS 25 /* waiting for another upload of the same file */

typedef struct pdf_config {
	const char *data_dir;
	int64_t     max_pages;
	int64_t     extract_timeout_ms;
	int64_t     max_memory_mb;
	int64_t     max_upload;
	int64_t     user_max_active;   /* concurrent uploads per user and replica; 0: no bound */
	int64_t     retry_after_s;     /* given with RESOURCE_EXHAUSTED at that bound */
	int64_t     user_max_spools;   /* upload bodies arriving at once per user (spool.h) */
	int64_t     spool_min_free_mb; /* no new spool below this much free space */
} pdf_config;

/* The table of svc-pdf's own keys, targets in *config (a pdf_config); returns how many entries
 * were written to out (at most cap). For cm_service_def.config_table. */
size_t pdf_config_table(void *config, cm_cfg_entry *out, size_t cap);
/* The defaults (as if no variable were set), for tests and tools. */
void pdf_config_defaults(pdf_config *c);

#endif
