/*
 * config.c - svc-chat's own config table. Defaults are for the local stack
 * (docs/architecture.md); the common keys (DATABASE_URL, REDIS_*, CHAT_RPC_URL, CHAT_WORKERS,
 * ...) are the skeleton's (cm/service.h).
 */
#include <string.h>

#include "config.h"

size_t
chat_config_table(void *config, cm_cfg_entry *out, size_t cap)
{
	chat_config *c = config;
	/* One entry per line reads better than what the formatter makes of this table. */
	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"CHAT_EVENTS_URL", CM_CFG_STR, &c->events_url, "tcp://127.0.0.1:7203", 0, 0, 0,
		    "nng URL to publish chat deltas on (the edge subscribes); empty: none"},
		{"CHAT_PDF_URLS", CM_CFG_STR, &c->pdf_urls, "tcp://127.0.0.1:7102", 0, 0, 0,
		    "svc-pdf replicas, comma-separated"},
		{"CHAT_TURN_TIMEOUT_MS", CM_CFG_INT, &c->turn_timeout_ms, "120000", 0, 1000, 3600000,
		    "longest an answer is generated, whether or not the caller still waits"},
		{"CHAT_USER_TURNS", CM_CFG_INT, &c->user_turns, "2", 0, 1, 100,
		    "answers one user may have in progress at once, over all replicas"},
		{"CHAT_HISTORY_TURNS", CM_CFG_INT, &c->history_turns, "6", 0, 0, 50,
		    "earlier question/answer pairs given to the model"},
		{"CHAT_MAX_MESSAGES", CM_CFG_INT, &c->max_messages, "1000", 0, 10, 100000,
		    "messages kept per chat; the oldest go first"},
		{"CHAT_CONTEXT_BYTES", CM_CFG_INT, &c->context_bytes, "12000", 0, 1000, 200000,
		    "bytes of document passages in one prompt"},
		{"CHAT_SEARCH_LIMIT", CM_CFG_INT, &c->search_limit, "6", 0, 1, 50,
		    "chunks asked of svc-pdf's search per question"},
		{"CHAT_MAX_TOKENS", CM_CFG_INT, &c->max_tokens, "1024", 0, 16, 32768,
		    "longest answer asked of the model, in tokens"},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}

cm_err
chat_config_defaults(chat_config *c)
{
	cm_cfg_entry t[16];
	char         errbuf[128];
	size_t       n;

	memset(c, 0, sizeof(*c));
	n = chat_config_table(c, t, 16);
	return cm_config_defaults(t, n, errbuf, sizeof(errbuf));
}
