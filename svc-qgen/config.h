/*
 * config.h - svc-qgen's configuration (env LOG_LEVEL, DATABASE_URL, REDIS_*, QGEN_*; the
 * model itself is configured by cm_llm_alloc_env's LLM_* variables) and its fixed limits.
 */
#ifndef QGEN_CONFIG_H
#define QGEN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

#define QGEN_SCHEMA "qgen"
#define QGEN_JOB_KIND "qgen"
#define QGEN_CHANNEL "qgen_jobs"
#define QGEN_PROMPT_VERSION 1     /* bump when prompts change: cached sets stop matching */
#define QGEN_MIN_TEXT 200         /* characters a document needs before questions make sense */
#define QGEN_DB_RETRY_S 30        /* start-up: wait this long for PostgreSQL */
#define QGEN_PDF_TIMEOUT_MS 30000 /* fetching a document's chunks from svc-pdf */
#define QGEN_MAX_CHUNKS 20000     /* chunks considered for one set */
#define QGEN_MAX_SEARCH 50        /* chunks ranked for a topic */

typedef struct qgen_config {
	const char *log_level;
	const char *database_url;
	const char *redis_host;
	int64_t     redis_port;
	const char *rpc_url;
	const char *admin_addr;
	const char *events_url;
	const char *pdf_urls;
	int64_t     workers;
	int64_t     runners;
	int64_t     parallel;
	int64_t     per_call;
	int64_t     max_rounds;
	int64_t     lease_ms;
	int64_t     cache_ttl_s;
	int64_t     poll_ms;
	const char *schema; /* not from the environment: QGEN_SCHEMA unless a test sets its own */
} qgen_config;

CM_MUSTCHECK cm_err qgen_config_load(qgen_config *c, char *errbuf, size_t errlen);
void                qgen_config_log(qgen_config *c);

#endif
