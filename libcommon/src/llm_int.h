/*
 * llm_int.h - what the LLM client's files share: the provider and client structs, one HTTP
 * attempt (llm_http.c) and the limiter (llm_limit.c). Not installed; not part of the API.
 */
#ifndef CM_LLM_INT_H
#define CM_LLM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/llm.h"
#include "cm/redis.h"

typedef enum cm_llm_outcome {
	CM_LLM_OK = 0,
	CM_LLM_RATE_LIMITED, /* 429, retryable */
	CM_LLM_QUOTA,        /* insufficient_quota, 401, 403: set the provider aside */
	CM_LLM_UNAVAILABLE,  /* 5xx, connection failure, cut stream */
	CM_LLM_TIMEOUT,
	CM_LLM_MALFORMED,
	CM_LLM_INVALID, /* other 4xx */
	CM_LLM_CANCELED,
	CM_LLM_OUTCOME_COUNT
} cm_llm_outcome;

typedef struct cm_llm_prov {
	char   name[CM_LLM_MAX_NAME + 1];
	char  *url;  /* full chat completions URL */
	char  *auth; /* "Authorization: Bearer <key>" or NULL; wiped before free */
	char  *model;
	int    max_concurrency, rpm, tpm;
	double price_prompt, price_completion;
	/* per-process limiter, used while Redis is unreachable */
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int             inflight;
	int64_t         win_start_ms; /* monotonic start of the current minute */
	int64_t         win_reqs, win_tokens;
	_Atomic int64_t aside_until_ms; /* monotonic; quota cool-down */
	cm_counter     *m_req[CM_LLM_OUTCOME_COUNT];
	cm_counter     *m_tok_prompt, *m_tok_completion, *m_cost;
	cm_histogram   *m_dur;
} cm_llm_prov;

/* One pooled connection: a curl easy handle (opaque here) and a Redis handle. */
typedef struct cm_llm_conn {
	void               *curl;
	cm_redis           *redis;
	struct cm_llm_conn *next;
} cm_llm_conn;

struct cm_llm {
	cm_llm_config   cfg; /* string members point at the copies below */
	char           *redis_host;
	char           *prefix;
	cm_llm_prov     prov[CM_LLM_MAX_PROVIDERS];
	size_t          nprov;
	pthread_mutex_t pool_mu;
	cm_llm_conn    *idle;
	int             nidle;
};

/* What one HTTP attempt produced. */
typedef struct cm_llm_attempt {
	cm_llm_outcome outcome;
	cm_err         err;
	int            status;         /* HTTP status, 0 when none */
	int64_t        retry_after_ms; /* from Retry-After / retry-after-ms, 0 when absent */
	bool           delivered;      /* a stream passed at least one delta to the caller */
	char           errmsg[CM_MAX_ERRMSG];
} cm_llm_attempt;

/* One POST to p with req, at most timeout_ms long; content, finish reason and usage go to res. */
void cm_llm_http_attempt(cm_llm *llm, cm_llm_conn *c, cm_llm_prov *p, const cm_llm_req *req,
                         int64_t timeout_ms, cm_llm_result *res, cm_llm_attempt *at);

/* Frees a curl handle (void * keeps curl out of this header). */
void                cm_llm_http_free(void *curl);
CM_MUSTCHECK cm_err cm_llm_http_global_init(void);

/* A held concurrency slot and rate admission. */
typedef struct cm_llm_slot {
	bool held;
	bool via_redis;
	char id[40];
} cm_llm_slot;

/* Waits until p has a free slot and the minute has room, or the monotonic deadline passes
 * (CM_ELIMIT). lease_ms bounds how long a crashed holder keeps the slot in Redis. */
CM_MUSTCHECK cm_err cm_llm_limit_acquire(cm_llm *llm, cm_llm_prov *p, cm_redis *r,
                                         int64_t deadline_mono_ms, int64_t lease_ms,
                                         cm_llm_slot *slot);
/* Frees the slot and adds the tokens the call used to the minute's count. */
void cm_llm_limit_release(cm_llm *llm, cm_llm_prov *p, cm_redis *r, cm_llm_slot *slot,
                          int64_t tokens);
/* Sets p aside for the quota cool-down here and, through Redis, in the other replicas. */
void cm_llm_limit_set_aside(cm_llm *llm, cm_llm_prov *p, cm_redis *r);
/* True when p is set aside (locally, or by another replica through Redis). */
bool cm_llm_limit_is_aside(cm_llm *llm, cm_llm_prov *p, cm_redis *r);

#endif
