/*
 * config.c - svc-qgen's config table. Defaults are for the local stack
 * (docs/architecture.md); DATABASE_URL may carry a password, so it is logged masked.
 */
#include "cm/config.h"
#include "config.h"

/* clang-format off */
#define QGEN_CONFIG_TABLE(c)                                                                       \
	{                                                                                          \
		{"LOG_LEVEL", CM_CFG_STR, &(c)->log_level, "info", 0, 0, 0, "debug|info|warn|error"}, \
		{"DATABASE_URL", CM_CFG_STR, &(c)->database_url,                                   \
		    "host=127.0.0.1 port=5432 dbname=postgres user=postgres", CM_CFG_SECRET, 0, 0, \
		    "libpq conninfo or URI"},                                                      \
		{"REDIS_HOST", CM_CFG_STR, &(c)->redis_host, "127.0.0.1", 0, 0, 0,                  \
		    "Redis host (empty: no cache, per-process LLM limits)"},                       \
		{"REDIS_PORT", CM_CFG_INT, &(c)->redis_port, "6379", 0, 1, 65535, "Redis port"},   \
		{"QGEN_RPC_URL", CM_CFG_STR, &(c)->rpc_url, "tcp://127.0.0.1:7104", 0, 0, 0,        \
		    "nng URL to serve RPC on"},                                                    \
		{"QGEN_ADMIN_ADDR", CM_CFG_STR, &(c)->admin_addr, "127.0.0.1:9104", 0, 0, 0,        \
		    "host:port of /healthz /readyz /metrics"},                                     \
		{"QGEN_EVENTS_URL", CM_CFG_STR, &(c)->events_url, "tcp://127.0.0.1:7204", 0, 0, 0,  \
		    "nng URL to publish job events on (the edge subscribes)"},                     \
		{"QGEN_PDF_URLS", CM_CFG_STR, &(c)->pdf_urls, "tcp://127.0.0.1:7102", 0, 0, 0,      \
		    "svc-pdf replicas, comma-separated"},                                          \
		{"QGEN_WORKERS", CM_CFG_INT, &(c)->workers, "4", 0, 1, 256,                         \
		    "RPC worker threads"},                                                         \
		{"QGEN_RUNNERS", CM_CFG_INT, &(c)->runners, "2", 0, 1, 64,                          \
		    "jobs this replica runs at once"},                                             \
		{"QGEN_PARALLEL", CM_CFG_INT, &(c)->parallel, "8", 0, 1, 256,                       \
		    "LLM calls in flight per job (the provider's limits still apply)"},            \
		{"QGEN_PER_CALL", CM_CFG_INT, &(c)->per_call, "5", 0, 1, 50,                        \
		    "questions asked of one LLM call"},                                            \
		{"QGEN_MAX_ROUNDS", CM_CFG_INT, &(c)->max_rounds, "4", 0, 1, 20,                    \
		    "top-up rounds before a set fails for want of valid questions"},               \
		{"QGEN_LEASE_MS", CM_CFG_INT, &(c)->lease_ms, "15000", 0, 1000, 600000,             \
		    "job lease; another replica takes a job over this long after its runner died"}, \
		{"QGEN_CACHE_TTL_S", CM_CFG_INT, &(c)->cache_ttl_s, "604800", 0, 0, 31536000,       \
		    "lifetime of a cached set in Redis (0: no cache)"},                            \
		{"QGEN_POLL_MS", CM_CFG_INT, &(c)->poll_ms, "2000", 0, 10, 60000,                   \
		    "idle runners look for work this often besides LISTEN wake-ups"},              \
	}
/* clang-format on */

cm_err
qgen_config_load(qgen_config *c, char *errbuf, size_t errlen)
{
	cm_cfg_entry t[] = QGEN_CONFIG_TABLE(c);

	c->schema = QGEN_SCHEMA;
	return cm_config_load(t, sizeof(t) / sizeof(t[0]), errbuf, errlen);
}

void
qgen_config_log(qgen_config *c)
{
	cm_cfg_entry t[] = QGEN_CONFIG_TABLE(c);

	cm_config_log(t, sizeof(t) / sizeof(t[0]));
}
