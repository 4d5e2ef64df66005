/*
 * config.c - svc-eval's own config table. Defaults are for the local stack
 * (docs/architecture.md); the common keys (DATABASE_URL, REDIS_*, EVAL_RPC_URL, ...) are the
 * skeleton's (cm/service.h).
 */
#include "config.h"

size_t
eval_config_table(void *config, cm_cfg_entry *out, size_t cap)
{
	eval_config *c = config;
	/* One entry per line reads better than what the formatter makes of this table. */
	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"EVAL_EVENTS_URL", CM_CFG_STR, &c->events_url, "tcp://127.0.0.1:7205", 0, 0, 0,
		    "nng URL to publish job events on (the edge subscribes)"},
		{"EVAL_PDF_URLS", CM_CFG_STR, &c->pdf_urls, "tcp://127.0.0.1:7102", 0, 0, 0,
		    "svc-pdf replicas, comma-separated (source text of the questions)"},
		{"EVAL_QGEN_URLS", CM_CFG_STR, &c->qgen_urls, "tcp://127.0.0.1:7104", 0, 0, 0,
		    "svc-qgen replicas, comma-separated (question sets with their answers)"},
		{"EVAL_RUNNERS", CM_CFG_INT, &c->runners, "16", 0, 1, 64,
		    "attempts this replica grades at once (one PostgreSQL connection each)"},
		{"EVAL_BATCH", CM_CFG_INT, &c->batch, "8", 0, 1, 10,
		    "open answers graded by one LLM call"},
		{"EVAL_PARALLEL", CM_CFG_INT, &c->parallel, "4", 0, 1, 64,
		    "LLM calls in flight per attempt (the provider's limits still apply)"},
		{"EVAL_RETRIES", CM_CFG_INT, &c->retries, "2", 0, 0, 5,
		    "calls more for the answers a reply missed or graded out of range"},
		{"EVAL_LEASE_MS", CM_CFG_INT, &c->lease_ms, "15000", 0, 1000, 600000,
		    "job lease; another replica takes an attempt over this long after its runner died"},
		{"EVAL_POLL_MS", CM_CFG_INT, &c->poll_ms, "2000", 0, 10, 60000,
		    "idle runners look for work this often besides LISTEN wake-ups"},
		{"EVAL_CACHE_TTL_S", CM_CFG_INT, &c->cache_ttl_s, "604800", 0, 0, 31536000,
		    "lifetime of a cached grade (0: no grade cache)"},
		{"EVAL_NEAR_PCT", CM_CFG_INT, &c->near_pct, "80", 0, 50, 100,
		    "word-pair overlap (%) at which an answer reuses a cached grade (100: exact only)"},
		{"EVAL_USER_ACTIVE_MAX", CM_CFG_INT, &c->user_active_max, "4", 0, 1, 1000,
		    "attempts of one user being graded at once (more: RESOURCE_EXHAUSTED)"},
		{"EVAL_RETRY_AFTER_S", CM_CFG_INT, &c->retry_after_s, "5", 0, 1, 3600,
		    "retry_after_s given with RESOURCE_EXHAUSTED"},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}
