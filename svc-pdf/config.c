/*
 * config.c - svc-pdf's config table. Defaults are for the local stack (docs/architecture.md).
 *
 * DESIGN: one table, used to load, to log, and (with every variable ignored) to produce the
 * defaults. DATABASE_URL may carry a password, so it is logged masked.
 */
#include <string.h>

#include "cm/config.h"
#include "config.h"

/* One entry per line reads better than what the formatter makes of this table. */
/* clang-format off */
#define PDF_CONFIG_TABLE(c)                                                                        \
	{                                                                                          \
		{"LOG_LEVEL", CM_CFG_STR, &(c)->log_level, "info", 0, 0, 0, "debug|info|warn|error"}, \
		{"DATABASE_URL", CM_CFG_STR, &(c)->database_url,                                   \
		    "host=127.0.0.1 port=5432 dbname=postgres user=postgres", CM_CFG_SECRET, 0, 0, \
		    "libpq conninfo or URI"},                                                      \
		{"REDIS_HOST", CM_CFG_STR, &(c)->redis_host, "127.0.0.1", 0, 0, 0,                  \
		    "Redis host (empty: no cache)"},                                               \
		{"REDIS_PORT", CM_CFG_INT, &(c)->redis_port, "6379", 0, 1, 65535, "Redis port"},   \
		{"PDF_RPC_URL", CM_CFG_STR, &(c)->rpc_url, "tcp://127.0.0.1:7102", 0, 0, 0,         \
		    "nng URL to serve RPC on"},                                                    \
		{"PDF_ADMIN_ADDR", CM_CFG_STR, &(c)->admin_addr, "127.0.0.1:9102", 0, 0, 0,         \
		    "host:port of /healthz /readyz /metrics"},                                     \
		{"PDF_WORKERS", CM_CFG_INT, &(c)->workers, "2", 0, 1, 256,                          \
		    "RPC worker threads (extractions in parallel)"},                               \
		{"PDF_DATA_DIR", CM_CFG_STR, &(c)->data_dir, "./.state/pdfs", 0, 0, 0,              \
		    "directory of the content-addressed files"},                                   \
		{"PDF_MAX_PAGES", CM_CFG_INT, &(c)->max_pages, "5000", 0, 1, 1000000,               \
		    "pages accepted in one document"},                                             \
		{"PDF_EXTRACT_TIMEOUT_MS", CM_CFG_INT, &(c)->extract_timeout_ms, "60000", 0, 10,    \
		    3600000, "time allowed for extracting one document"},                          \
		{"PDF_MAX_MEMORY_MB", CM_CFG_INT, &(c)->max_memory_mb, "512", 0, 8, 65536,          \
		    "memory mupdf may use for one extraction"},                                    \
		{"PDF_MAX_UPLOAD", CM_CFG_INT, &(c)->max_upload, "52428800", 0, 1024, 1073741824,   \
		    "largest file accepted"},                                                      \
	}
/* clang-format on */

cm_err
pdf_config_load(pdf_config *c, char *errbuf, size_t errlen)
{
	cm_cfg_entry t[] = PDF_CONFIG_TABLE(c);

	return cm_config_load(t, sizeof(t) / sizeof(t[0]), errbuf, errlen);
}

void
pdf_config_log(pdf_config *c)
{
	cm_cfg_entry t[] = PDF_CONFIG_TABLE(c);

	cm_config_log(t, sizeof(t) / sizeof(t[0]));
}

void
pdf_config_defaults(pdf_config *c)
{
	cm_cfg_entry t[] = PDF_CONFIG_TABLE(c);
	size_t       n = sizeof(t) / sizeof(t[0]);

	/* Defaults only: parse each default text as the loader would, without the environment. */
	for (size_t i = 0; i < n; i++) {
		cm_cfg_entry one = t[i];
		one.env = "PDF_CONFIG_DEFAULTS_UNSET_";
		one.flags &= ~CM_CFG_REQUIRED;
		if (cm_config_load(&one, 1, NULL, 0) != CM_OK)
			continue; /* a bad default is reported by pdf_config_load at start */
	}
}
