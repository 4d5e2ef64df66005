/*
 * llm.h - a blocking client for OpenAI-compatible /v1/chat/completions (OpenAI, vLLM, Ollama,
 * llama.cpp server), shared by every service that talks to a model.
 *
 * One cm_llm per process, shared by all RPC worker threads: cm_llm_chat() is thread-safe and blocks
 * the calling worker for the whole call (never call it from an nng callback). Internally it keeps a
 * small pool of connections (a libcurl easy handle with its keep-alive connection, a Redis handle)
 * taken for one call at a time, so connections to the provider are reused.
 *
 * Providers. One or more {base URL, API key, model, limits}, tried in the order given. The URL
 * posted to is base_url + "/chat/completions" when base_url ends in "/v1" (the OpenAI SDK
 * convention), else base_url + "/v1/chat/completions". After a retryable failure the next attempt
 * goes to the next provider that is not set aside (so with several providers retries rotate). A
 * provider that answers "insufficient_quota" (429 with that code or type), 401 or 403 is set aside
 * for quota_cooldown_ms, in this process and, through Redis, in every replica; the same call
 * continues at once with the next provider, without sleeping and without retrying that provider.
 *
 * Limits, per provider: at most max_concurrency calls in flight and rpm requests / tpm tokens per
 * minute, counted across all replicas in Redis (a lease-based semaphore whose leases expire by
 * themselves, so a crashed holder frees its slot; fixed one-minute windows). While Redis is
 * unreachable each process enforces the same numbers on its own (so N replicas may together reach
 * N times the limit until Redis is back). Waiting for a slot counts against the call's deadline.
 *
 * Retries: 429 (not quota), 5xx, connection failures, a timed-out attempt and a stream cut before
 * its first delta are retried, at most max_attempts attempts in all, with exponential backoff and
 * full jitter (a random wait in [0, min(backoff_max_ms, backoff_base_ms * 2^(n-1))]); a Retry-After
 * (seconds) or retry-after-ms header replaces that wait (plus up to 250 ms of jitter). No wait goes
 * past the call's deadline: when the next attempt could not start in time the last error is
 * returned. A stream that already delivered deltas is never retried (the caller saw them).
 *
 * Errors of cm_llm_chat():
 *   CM_OK        content (and, in JSON mode, an extracted JSON object) in the result
 *   CM_EINVAL    bad request (no messages), or the provider answered another 4xx (e.g. context too
 *                long): not retried
 *   CM_ELIMIT    still 429 after the retries, or no limiter slot before the deadline
 *   CM_EUNAVAIL  5xx, connection failures or cut streams after the retries
 *   CM_ETIMEDOUT the deadline passed during an attempt
 *   CM_EPROTO    the provider's answer is not a chat completion, or in JSON mode the content holds
 *                no complete JSON object (content is still returned, for repair or logging)
 *   CM_EPERM     every provider is set aside: quota exhausted or API key refused. Distinct from
 *                CM_ELIMIT on purpose: waiting a few seconds does not help; an operator must act.
 *                Services translate it to their own user-facing status.
 *   CM_ECANCELED the delta callback asked to stop, or req->cancel was set
 *   CM_ENOMEM / CM_ETOOBIG (an answer larger than CM_LLM_MAX_BODY) / CM_EINTERNAL
 *
 * Metrics (when a registry is given; names get the registry's prefix):
 *   llm_requests_total{provider,outcome}   one per HTTP attempt; outcome is ok, rate_limited,
 * quota, unavailable, timeout, malformed, invalid, canceled llm_tokens_total{provider,kind} kind is
 * prompt or completion, as the provider reports (estimated as bytes/4 when a stream reports none)
 *   llm_cost_estimate_micros_total{provider} tokens times the configured price per 1k tokens, in
 *                                          millionths of the price's currency unit
 *   llm_duration_seconds{provider}         per attempt, from request to last byte
 * API keys are never logged, never put in metrics, and wiped from memory before it is freed.
 */
#ifndef CM_LLM_H
#define CM_LLM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/limits.h"
#include "cm/metrics.h"

/* Fixed limits of the client (candidates for limits.h). */
#define CM_LLM_MAX_PROVIDERS 8
#define CM_LLM_MAX_BODY (8u * 1024u * 1024u) /* largest answer (or request) accepted */
#define CM_LLM_MAX_NAME 48                   /* provider label length, without NUL */
#define CM_LLM_POOL_IDLE 64                  /* idle connections kept for reuse */

typedef struct cm_llm cm_llm;

typedef struct cm_llm_provider {
	const char *name;     /* label for metrics and logs; NULL = "<index>-<host>" */
	const char *base_url; /* "https://api.openai.com/v1", "http://127.0.0.1:8000/v1" */
	const char *api_key;  /* may be NULL or "" (local servers); never logged */
	const char *model;
	int         max_concurrency; /* 0 = unlimited */
	int         rpm;             /* requests per minute; 0 = unlimited */
	int         tpm;             /* tokens per minute (prompt + completion); 0 = unlimited */
	double      price_prompt_per_1k; /* for llm_cost_estimate; 0 = not counted */
	double      price_completion_per_1k;
} cm_llm_provider;

typedef struct cm_llm_config {
	const cm_llm_provider *providers;  /* copied by cm_llm_alloc */
	size_t                 nproviders; /* 1 .. CM_LLM_MAX_PROVIDERS */
	const char            *redis_host; /* NULL or "" = per-process limits only */
	int                    redis_port;
	const char *redis_prefix; /* key namespace shared by the replicas; NULL = "cm:llm:" */
	/* Zero means the default given in brackets. */
	int timeout_ms;         /* [60000] a call's budget when the request has no deadline */
	int attempt_timeout_ms; /* [= timeout_ms] one HTTP attempt at most */
	int connect_timeout_ms; /* [5000] */
	int stream_idle_ms;     /* [30000] a stream silent this long is dropped */
	int max_attempts;       /* [5] HTTP attempts per call, quota failovers included */
	int backoff_base_ms;    /* [500] */
	int backoff_max_ms;     /* [20000] */
	int quota_cooldown_ms; /* [300000] how long a provider with an exhausted quota is skipped */
	cm_metrics *metrics;   /* may be NULL; must outlive the client */
} cm_llm_config;

/* Builds the client; the config and provider strings are copied. CM_EINVAL when a provider has no
 * base_url or model, or there are none or too many. Never fails because Redis is down. */
CM_MUSTCHECK cm_err cm_llm_alloc(cm_llm **out, const cm_llm_config *cfg);

/*
 * Builds the client from the environment:
 *   LLM_BASE_URL, LLM_API_KEY (secret), LLM_MODEL [gpt-4o-mini: the one default model name of the
 *   project; services ask cm_llm_model() rather than keep their own], LLM_MAX_CONCURRENCY [8],
 *   LLM_RPM [0], LLM_TPM [0]
 *   LLM_PROVIDERS  "url|key|model|max_concurrency|rpm[|tpm];..." replaces LLM_BASE_URL when set;
 *                  an empty field takes the single-provider value (LLM_API_KEY, LLM_MODEL, ...).
 *                  Keys cannot contain '|' or ';'.
 *   LLM_TIMEOUT_MS [60000], LLM_ATTEMPT_TIMEOUT_MS [0 = LLM_TIMEOUT_MS], LLM_CONNECT_TIMEOUT_MS
 *   [5000], LLM_STREAM_IDLE_MS [30000], LLM_MAX_ATTEMPTS [5], LLM_BACKOFF_BASE_MS [500],
 *   LLM_BACKOFF_MAX_MS [20000], LLM_QUOTA_COOLDOWN_S [300],
 *   LLM_PRICE_PROMPT_PER_1K, LLM_PRICE_COMPLETION_PER_1K [0] (decimal, e.g. "0.00015")
 * CM_ENOTFOUND when neither LLM_BASE_URL nor LLM_PROVIDERS is set (the caller then uses its
 * offline provider); CM_EINVAL with a description in errbuf for a bad value. Logs the providers
 * once (id CM-LLM-CONFIG) with keys masked.
 */
CM_MUSTCHECK cm_err cm_llm_alloc_env(cm_llm **out, const char *redis_host, int redis_port,
                                     cm_metrics *metrics, char *errbuf, size_t errlen);

/* Waits for nothing: calls must have returned. NULL is a no-op. */
void cm_llm_free(cm_llm *llm);

/* The model calls go to first: the first provider's (as configured, or LLM_MODEL's default).
 * Valid while the client lives. A call that failed over may have used another: see
 * cm_llm_result.model. */
const char *cm_llm_model(const cm_llm *llm);

typedef struct cm_llm_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
} cm_llm_msg;

/* Streaming: called on the calling thread with each content delta, in order (text is not
 * NUL-terminated). Return false to stop the call, which then returns CM_ECANCELED. */
typedef bool (*cm_llm_delta_fn)(void *arg, const char *text, size_t len);

typedef struct cm_llm_req {
	const cm_llm_msg *msgs;
	size_t            nmsgs;
	int               max_tokens;  /* 0 = the provider's default */
	double            temperature; /* sent when >= 0 (so a zeroed request asks for 0) */
	bool              json_mode;   /* response_format json_object + extraction into res->json */
	cm_llm_delta_fn   on_delta;    /* non-NULL: stream (server-sent events) */
	void             *arg;
	int64_t deadline_ms; /* absolute unix ms (the RPC deadline); 0 = now + timeout_ms */
	/* NULL, or a flag another thread may set to stop the call: the transfer is aborted
	 * (libcurl's progress callback: at once while bytes arrive, within about a second while
	 * waiting for the first), no attempt or retry starts after it is seen, and the call returns
	 * CM_ECANCELED with no tokens counted. Used to drop a call whose answer is no longer
	 * needed (svc-qgen's hedged calls). */
	const atomic_bool *cancel;
} cm_llm_req;

typedef struct cm_llm_result {
	char       *content; /* malloc'd, NUL-terminated; "" rather than NULL after a call */
	size_t      content_len;
	const char *json; /* JSON mode on CM_OK: the object inside content (not terminated) */
	size_t      json_len;
	char        finish_reason[24]; /* "stop", "length", ... ("" when unknown) */
	int64_t     prompt_tokens;
	int64_t     completion_tokens;
	int         attempts;    /* HTTP attempts made */
	int         http_status; /* of the last attempt; 0 when none got an answer */
	char        provider[CM_LLM_MAX_NAME + 1]; /* the provider of the last attempt */
	const char *model;          /* the model the last attempt asked for (its provider's; valid
	                               while the client lives); NULL when no attempt was made */
	char errmsg[CM_MAX_ERRMSG]; /* why the call failed; "" on CM_OK */
} cm_llm_result;

/* Zeroes a result before first use; fini frees content (the result can then be reused). */
void cm_llm_result_init(cm_llm_result *res);
void cm_llm_result_fini(cm_llm_result *res);

/* One chat completion with retries, limits and failover as described above. `res` must have been
 * initialised; its previous content is freed. */
CM_MUSTCHECK cm_err cm_llm_chat(cm_llm *llm, const cm_llm_req *req, cm_llm_result *res);

/*
 * Finds the JSON object in model text, which models like to wrap: ```json fences, prose before
 * and after ("Sure! Here it is: {...} Hope this helps"), braces in the prose. A candidate is a '{'
 * followed (after white space) by '"' or '}'; from each candidate in turn the matching '}' is
 * found (skipping braces inside JSON strings, with escapes) and the first balanced span that
 * parses as a JSON object is returned, so the outermost object wins over any nested one. A
 * balanced span that does not parse is skipped as a whole; a candidate that never balances (a
 * truncated answer) ends the search, so no inner object ever stands in for a broken outer one.
 * At most 64 candidates are tried (linear time on hostile input). On CM_OK *start and *olen
 * delimit the object inside text (nothing copied); CM_EPROTO when there is no complete valid
 * object.
 */
CM_MUSTCHECK cm_err cm_llm_extract_json(const char *text, size_t len, const char **start,
                                        size_t *olen);

#endif
