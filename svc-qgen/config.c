/*
 * config.c - svc-qgen's own config table. Defaults are for the local stack
 * (docs/architecture.md); the common keys (DATABASE_URL, REDIS_*, QGEN_RPC_URL, ...) are the
 * skeleton's (cm/service.h).
 */
#include "config.h"

size_t
qgen_config_table(void *config, cm_cfg_entry *out, size_t cap)
{
	qgen_config *c = config;
	/* One entry per line reads better than what the formatter makes of this table. */
	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"QGEN_EVENTS_URL", CM_CFG_STR, &c->events_url, "tcp://127.0.0.1:7204", 0, 0, 0,
		    "nng URL to publish job events on (the edge subscribes)"},
		{"QGEN_PDF_URLS", CM_CFG_STR, &c->pdf_urls, "tcp://127.0.0.1:7102", 0, 0, 0,
		    "svc-pdf replicas, comma-separated"},
		{"QGEN_RUNNERS", CM_CFG_INT, &c->runners, "2", 0, 1, 64,
		    "jobs this replica runs at once"},
		{"QGEN_PARALLEL", CM_CFG_INT, &c->parallel, "8", 0, 1, 256,
		    "LLM calls in flight per job (the provider's limits still apply)"},
		{"QGEN_PER_CALL", CM_CFG_INT, &c->per_call, "5", 0, 1, 50,
		    "questions asked of one LLM call"},
		{"QGEN_MAX_ROUNDS", CM_CFG_INT, &c->max_rounds, "4", 0, 1, 20,
		    "top-up rounds before a set fails for want of valid questions"},
		{"QGEN_LEASE_MS", CM_CFG_INT, &c->lease_ms, "15000", 0, 1000, 600000,
		    "job lease; another replica takes a job over this long after its runner died"},
		{"QGEN_CACHE_TTL_S", CM_CFG_INT, &c->cache_ttl_s, "604800", 0, 0, 31536000,
		    "lifetime of a cached set in Redis (0: no cache)"},
		{"QGEN_POLL_MS", CM_CFG_INT, &c->poll_ms, "2000", 0, 10, 60000,
		    "idle runners look for work this often besides LISTEN wake-ups"},
		{"QGEN_USER_MAX_ACTIVE_SETS", CM_CFG_INT, &c->user_max_sets, "5", 0, 0, 10000,
		    "question sets one user may have queued or running (0: no bound)"},
		{"QGEN_USER_MAX_ACTIVE_QUESTIONS", CM_CFG_INT, &c->user_max_questions, "500", 0, 0,
		    1000000, "questions in one user's queued or running sets (0: no bound)"},
		{"QGEN_RETRY_AFTER_S", CM_CFG_INT, &c->retry_after_s, "10", 0, 1, 3600,
		    "retry_after_s given with RESOURCE_EXHAUSTED over a quota"},
		{"QGEN_HEDGE_MAX_EXTRA", CM_CFG_INT, &c->hedge_max_extra, "25", 0, 0, 100,
		    "hedged calls: extra tokens a set may spend on duplicates of late calls, in % of "
		    "its expected tokens (0: no hedging)"},
		{"QGEN_HEDGE_AFTER_PCT", CM_CFG_INT, &c->hedge_after_pct, "50", 0, 0, 1000,
		    "a call is late, and gets a duplicate, this many % past the median of the "
		    "job's answered calls"},
		{"QGEN_HEDGE_MIN_MS", CM_CFG_INT, &c->hedge_min_ms, "1000", 0, 0, 600000,
		    "... and at least this many ms past it"},
		{"QGEN_SPARE_PCT", CM_CFG_INT, &c->spare_pct, "25", 0, 0, 100,
		    "spare questions: the first wave asks this % of the set more, spread over its "
		    "calls and the QGEN_PARALLEL slots they leave free; streamed, what is still being "
		    "written when the set is full is cancelled (0: none)"},
		{"QGEN_STREAM", CM_CFG_BOOL, &c->stream, "true", 0, 0, 0,
		    "stream the model's answers and use each question as soon as it is written, so "
		    "a full set cancels the calls still writing (false: whole answers, for a "
		    "provider that cannot stream)"},
		{"QGEN_GROUND_MIN_OVERLAP", CM_CFG_INT, &c->ground_min_overlap, "60", 0, 0, 100,
		    "percent of an answer's content words its cited page must hold (0: any answer)"},
		{"QGEN_GROUND_WINDOW", CM_CFG_INT, &c->ground_window, "2", 0, 1, 5,
		    "sentences of the page one answer may be found across"},
		{"QGEN_GROUND_AMBIGUOUS", CM_CFG_BOOL, &c->ground_ambiguous, "true", 0, 0, 0,
		    "drop an mcq whose distractor the passage supports as well as its answer"},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}
