/*
 * config.c - svc-pdf's own config table. Defaults are for the local stack
 * (docs/architecture.md); the common keys (DATABASE_URL, REDIS_*, PDF_RPC_URL, ...) are the
 * skeleton's (cm/service.h).
 */
#include <string.h>

#include "cm/limits.h"
#include "config.h"

size_t
pdf_config_table(void *config, cm_cfg_entry *out, size_t cap)
{
	pdf_config *c = config;
	/* One entry per line reads better than what the formatter makes of this table. */
	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"PDF_DATA_DIR", CM_CFG_STR, &c->data_dir, "./.state/pdfs", 0, 0, 0,
		    "directory of the content-addressed files"},
		{"PDF_MAX_PAGES", CM_CFG_INT, &c->max_pages, "5000", 0, 1, 1000000,
		    "pages accepted in one document"},
		{"PDF_EXTRACT_TIMEOUT_MS", CM_CFG_INT, &c->extract_timeout_ms, "60000", 0, 10, 3600000,
		    "time allowed for extracting one document"},
		{"PDF_MAX_MEMORY_MB", CM_CFG_INT, &c->max_memory_mb, "512", 0, 8, 65536,
		    "memory mupdf may use for one extraction"},
		{"PDF_MAX_UPLOAD", CM_CFG_INT, &c->max_upload, CM_LIMIT_STR(CM_MAX_UPLOAD_DEFAULT), 0,
		    1024, 1073741824, "largest file accepted"},
		{"PDF_USER_MAX_ACTIVE", CM_CFG_INT, &c->user_max_active, "1", 0, 0, 256,
		    "uploads one user may have in progress in this replica (0: no bound)"},
		{"PDF_RETRY_AFTER_S", CM_CFG_INT, &c->retry_after_s, "5", 0, 1, 3600,
		    "retry_after_s given to a user over PDF_USER_MAX_ACTIVE"},
		{"PDF_USER_MAX_SPOOLS", CM_CFG_INT, &c->user_max_spools, "4", 0, 0, 1024,
		    "upload bodies one user may have arriving at once, all replicas (0: no bound)"},
		{"PDF_SPOOL_MIN_FREE_MB", CM_CFG_INT, &c->spool_min_free_mb, "512", 0, 0, 1048576,
		    "free space on the data volume below which no new upload body is taken"},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}

void
pdf_config_defaults(pdf_config *c)
{
	cm_cfg_entry t[16];
	size_t       n;

	memset(c, 0, sizeof(*c));
	n = pdf_config_table(c, t, sizeof(t) / sizeof(t[0]));
	if (cm_config_defaults(t, n, NULL, 0) != CM_OK)
		return; /* a bad default is reported at start, by the skeleton's load */
}
