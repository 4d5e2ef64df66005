/*
 * config.h - svc-chat's own configuration (env CHAT_*, beside the common keys of the service
 * skeleton, cm/service.h; the model is configured by cm_llm_alloc_env's LLM_* variables) and
 * every limit of the service: configurable ones have their defaults in config.c, fixed ones are
 * the CHAT_* constants below.
 */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"

#define CHAT_SCHEMA "chat"

/* Caps of what a caller sends and what is kept. */
#define CHAT_MAX_MESSAGE 8192         /* bytes of one user message (more: INVALID_ARGUMENT) */
#define CHAT_MAX_ANSWER (32u * 1024u) /* bytes of an answer kept; the stream is stopped there */
#define CHAT_MAX_CITATIONS 32         /* pages cited by one answer */
#define CHAT_LIST_DEFAULT 20          /* chat.ListMessages page size */
#define CHAT_LIST_MAX 100

/* Building a prompt. */
#define CHAT_MAX_PASSAGES 16   /* page passages in one prompt */
#define CHAT_HISTORY_CLIP 2000 /* bytes of each earlier message given to the model */
#define CHAT_FALLBACK_PAGES 3  /* nothing matched: the document's first pages instead */
#define CHAT_MAX_QUERY 1000    /* bytes of the question sent to pdf.Search (its own cap) */

/* Time. */
#define CHAT_PDF_TIMEOUT_MS 5000   /* retrieval from svc-pdf, per call */
#define CHAT_STORE_TIMEOUT_MS 5000 /* storing the answer, whatever the caller's deadline */
#define CHAT_TURN_GRACE_S 30       /* a turn row outlives its generation bound by this much */
#define CHAT_RETRY_AFTER_S 2       /* RESOURCE_EXHAUSTED: when to try again */

typedef struct chat_config {
	const char *events_url;
	const char *pdf_urls;
	int64_t     turn_timeout_ms;
	int64_t     user_turns;
	int64_t     history_turns;
	int64_t     max_messages;
	int64_t     context_bytes;
	int64_t     search_limit;
	int64_t     max_tokens;
} chat_config;

/* The table of svc-chat's own keys, targets in *config (a chat_config); returns how many entries
 * were written to out (at most cap). For cm_service_def.config_table. */
size_t chat_config_table(void *config, cm_cfg_entry *out, size_t cap);

/* Every key at its default (tests, tools). */
CM_MUSTCHECK cm_err chat_config_defaults(chat_config *c);

#endif
