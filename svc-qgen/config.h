/*
 * config.h - svc-qgen's own configuration (env QGEN_*, beside the common keys of the service
 * skeleton, cm/service.h; the model itself is configured by cm_llm_alloc_env's LLM_* variables)
 * and its fixed limits.
 */
#ifndef QGEN_CONFIG_H
#define QGEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"

#define QGEN_SCHEMA "qgen"
#define QGEN_JOB_KIND "qgen"
#define QGEN_CHANNEL "qgen_jobs"
/* Bump when prompts or the checks of what they bring change: cached sets stop matching.
 * 2: grounded questions with quotes (grounding.h). */
#define QGEN_PROMPT_VERSION 2
#define QGEN_MIN_TEXT 200         /* characters a document needs before questions make sense */
#define QGEN_PDF_TIMEOUT_MS 30000 /* fetching a document's chunks from svc-pdf */
#define QGEN_MAX_CHUNKS 20000     /* chunks considered for one set */
#define QGEN_MAX_SEARCH 50        /* chunks ranked for a topic */

typedef struct qgen_config {
	const char *events_url;
	const char *pdf_urls;
	int64_t     runners;
	int64_t     parallel;
	int64_t     per_call;
	int64_t     max_rounds;
	int64_t     lease_ms;
	int64_t     cache_ttl_s;
	int64_t     poll_ms;
	int64_t     user_max_sets;      /* queued or running sets per user; 0: no bound */
	int64_t     user_max_questions; /* questions in those sets per user; 0: no bound */
	int64_t     retry_after_s;      /* given with RESOURCE_EXHAUSTED over a quota */
	int64_t     hedge_max_extra;    /* hedged calls: extra tokens, % of a set's (0: off) */
	int64_t     hedge_after_pct;    /* a call is late this many % past the median */
	int64_t     hedge_min_ms;       /* and this many ms past it */
	int64_t     spare_pct;          /* first wave: questions asked beyond count, % (plan.h) */
	bool        stream;             /* stream calls, use each question as it arrives */
	int64_t     ground_min_overlap; /* percent of an answer's content words its passage holds */
	int64_t     ground_window;      /* sentences a passage may span */
	bool        ground_ambiguous;   /* reject an mcq whose distractor is as well supported */
} qgen_config;

/* The table of svc-qgen's own keys, targets in *config (a qgen_config); returns how many entries
 * were written to out (at most cap). For cm_service_def.config_table. */
size_t qgen_config_table(void *config, cm_cfg_entry *out, size_t cap);

#endif
