/*
 * config.h - svc-eval's own configuration (env EVAL_*, beside the common keys of the service
 * skeleton, cm/service.h; the model itself is configured by cm_llm_alloc_env's LLM_* variables)
 * and every fixed limit of the service, in one place.
 */
#ifndef EVAL_CONFIG_H
#define EVAL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"

#define EVAL_SCHEMA "eval"
#define EVAL_JOB_KIND "eval"
#define EVAL_CHANNEL "eval_jobs"
#define EVAL_PROMPT_VERSION 1 /* bump when prompts change: cached grades stop matching */

/* Limits of one request (INVALID_ARGUMENT beyond them). */
#define EVAL_MAX_ANSWERS 500         /* answers, or legacy items, per attempt */
#define EVAL_MAX_ANSWER_BYTES 8192   /* one answer's text */
#define EVAL_MAX_QUESTION_BYTES 4096 /* a legacy item's question or reference text */
#define EVAL_MAX_OPTIONS 10          /* options of a legacy item */
#define EVAL_MAX_OPTION_BYTES 1024   /* one option */
#define EVAL_MAX_ID_BYTES 128        /* a question id */
#define EVAL_MAX_TOPIC 200           /* bytes of a topic */

/* Limits of what is kept from a model and sent to it. */
#define EVAL_MAX_FEEDBACK 2000         /* bytes kept of a feedback, suggestion or hint */
#define EVAL_MAX_LIST 8                /* strengths, areas, suggestions kept */
#define EVAL_MAX_CONTEXT 3000          /* bytes of source text per question in a prompt */
#define EVAL_UPSTREAM_TIMEOUT_MS 10000 /* one call to svc-qgen or svc-pdf */
#define EVAL_CACHE_CANDIDATES 200      /* cached answers compared for a near match */
#define EVAL_OVERALL_MAX_ITEMS 60      /* graded answers shown to the overall call */

typedef struct eval_config {
	const char *events_url;
	const char *pdf_urls;
	const char *qgen_urls;
	int64_t     runners;
	int64_t     batch;
	int64_t     parallel;
	int64_t     retries;
	int64_t     lease_ms;
	int64_t     poll_ms;
	int64_t     cache_ttl_s;
	int64_t     near_pct;
	int64_t     user_active_max;
	int64_t     retry_after_s;
} eval_config;

/* The table of svc-eval's own keys, targets in *config (an eval_config); returns how many
 * entries were written to out (at most cap). For cm_service_def.config_table. */
size_t eval_config_table(void *config, cm_cfg_entry *out, size_t cap);

#endif
