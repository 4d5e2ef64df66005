/*
 * config.h - svc-pdf's configuration (env LOG_LEVEL, DATABASE_URL, REDIS_*, PDF_*) and its fixed
 * limits. Every limit of this service lives here: configurable ones have their defaults in the
 * config table (config.c), fixed ones are the PDF_* constants below.
 */
#ifndef PDF_CONFIG_H
#define PDF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

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
#define PDF_LOCK_POLL_MS 25 /* waiting for another upload of the same file */
#define PDF_DB_RETRY_S 30   /* start-up: wait this long for PostgreSQL */

typedef struct pdf_config {
	const char *log_level;
	const char *database_url;
	const char *redis_host;
	int64_t     redis_port;
	const char *rpc_url;
	const char *admin_addr;
	int64_t     workers;
	const char *data_dir;
	int64_t     max_pages;
	int64_t     extract_timeout_ms;
	int64_t     max_memory_mb;
	int64_t     max_upload;
} pdf_config;

/* Fills c from the environment and the defaults; on failure errbuf says why. */
CM_MUSTCHECK cm_err pdf_config_load(pdf_config *c, char *errbuf, size_t errlen);
/* Logs every value once (DATABASE_URL masked). */
void pdf_config_log(pdf_config *c);
/* The defaults (as if no variable were set), for tests and tools. */
void pdf_config_defaults(pdf_config *c);

#endif
