/*
 * llm.c - the LLM client: providers, the connection pool, and the retry loop of cm_llm_chat().
 *
 * DESIGN. A call takes a pooled connection (curl handle + Redis handle) for its whole duration,
 * so nothing on the call's path is shared except each provider's limiter and atomics. The loop:
 * pick the next provider that is not set aside (starting after the one that just failed), wait for
 * its limiter slot within the deadline, make one HTTP attempt bounded by the time left, release
 * the slot with the tokens used, count metrics, then classify: success ends; quota/key errors set
 * the provider aside and continue at once; retryable errors sleep (Retry-After or full-jitter
 * backoff) unless that sleep would end past the deadline; the rest end the call. See cm/llm.h for
 * the contract. Configuration from the environment is a cm_config table plus the LLM_PROVIDERS
 * list, parsed by hand (no strtok) into fields separated by '|' and entries separated by ';'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/config.h"
#include "cm/log.h"
#include "cm/util.h"
#include "llm_int.h"

static const char *const outcome_names[CM_LLM_OUTCOME_COUNT] = {
    "ok", "rate_limited", "quota", "unavailable", "timeout", "malformed", "invalid", "canceled"};

/* ---- construction ------------------------------------------------------------------------- */

static void
default_name(const char *url, size_t idx, char *out, size_t len)
{
	const char *h = strstr(url, "://");
	size_t      k;

	h = h != NULL ? h + 3 : url;
	k = (size_t)snprintf(out, len, "%zu-", idx);
	for (; *h != '\0' && *h != '/' && k + 1 < len; h++)
		out[k++] = (*h == ':') ? '_' : *h;
	out[k < len ? k : len - 1] = '\0';
}

/* Keeps names safe inside Prometheus label values and Redis keys. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			*s = '_';
	}
}

static cm_err
prov_init(cm_llm *llm, cm_llm_prov *p, const cm_llm_provider *src, size_t idx)
{
	cm_buf b;
	size_t ul;
	char   labels[160];
	cm_err err = CM_OK;

	cm_buf_init(&b, 4096);
	if (src->base_url == NULL || src->base_url[0] == '\0' || src->model == NULL ||
	    src->model[0] == '\0') {
		err = CM_EINVAL;
		goto out;
	}
	if (src->name != NULL && src->name[0] != '\0')
		cm_strlcpy(p->name, src->name, sizeof(p->name));
	else
		default_name(src->base_url, idx, p->name, sizeof(p->name));
	sanitize(p->name);
	ul = strlen(src->base_url);
	while (ul > 0 && src->base_url[ul - 1] == '/')
		ul--;
	if ((err = cm_buf_printf(&b, "%.*s%s", (int)ul, src->base_url,
	                         ul >= 3 && memcmp(src->base_url + ul - 3, "/v1", 3) == 0
	                             ? "/chat/completions"
	                             : "/v1/chat/completions")) != CM_OK)
		goto out;
	if ((p->url = strdup(b.data)) == NULL || (p->model = strdup(src->model)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	if (src->api_key != NULL && src->api_key[0] != '\0') {
		cm_buf_reset(&b);
		if ((err = cm_buf_printf(&b, "Authorization: Bearer %s", src->api_key)) != CM_OK)
			goto out;
		if ((p->auth = strdup(b.data)) == NULL) {
			err = CM_ENOMEM;
			goto out;
		}
	}
	p->max_concurrency = src->max_concurrency;
	p->rpm = src->rpm;
	p->tpm = src->tpm;
	p->price_prompt = src->price_prompt_per_1k;
	p->price_completion = src->price_completion_per_1k;
	p->win_start_ms = cm_mono_ms();
	if (llm->cfg.metrics != NULL) {
		cm_metrics *m = llm->cfg.metrics;
		for (int o = 0; o < CM_LLM_OUTCOME_COUNT; o++) {
			snprintf(labels, sizeof(labels), "provider=\"%s\",outcome=\"%s\"", p->name,
			         outcome_names[o]);
			p->m_req[o] =
			    cm_metrics_counter(m, "llm_requests_total",
			                       "LLM HTTP attempts by provider and outcome", labels);
		}
		snprintf(labels, sizeof(labels), "provider=\"%s\",kind=\"prompt\"", p->name);
		p->m_tok_prompt =
		    cm_metrics_counter(m, "llm_tokens_total", "LLM tokens used", labels);
		snprintf(labels, sizeof(labels), "provider=\"%s\",kind=\"completion\"", p->name);
		p->m_tok_completion =
		    cm_metrics_counter(m, "llm_tokens_total", "LLM tokens used", labels);
		snprintf(labels, sizeof(labels), "provider=\"%s\"", p->name);
		p->m_cost = cm_metrics_counter(
		    m, "llm_cost_estimate_micros_total",
		    "Estimated LLM cost, millionths of the configured price unit", labels);
		p->m_dur = cm_metrics_histogram(m, "llm_duration_seconds",
		                                "LLM HTTP attempt duration", labels);
	}
out:
	if (b.data != NULL)
		cm_wipe(b.data, b.len);
	cm_buf_fini(&b);
	return err;
}

static void
prov_fini(cm_llm_prov *p)
{
	if (p->auth != NULL) {
		cm_wipe(p->auth, strlen(p->auth));
		free(p->auth);
	}
	free(p->url);
	free(p->model);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

#define DEF(field, v)                                                                              \
	do {                                                                                       \
		if (llm->cfg.field <= 0)                                                           \
			llm->cfg.field = (v);                                                      \
	} while (0)

cm_err
cm_llm_alloc(cm_llm **out, const cm_llm_config *cfg)
{
	cm_llm *llm = NULL;
	cm_err  err = CM_OK;

	*out = NULL;
	if (cfg == NULL || cfg->providers == NULL || cfg->nproviders == 0 ||
	    cfg->nproviders > CM_LLM_MAX_PROVIDERS) {
		err = CM_EINVAL;
		goto out;
	}
	if ((err = cm_llm_http_global_init()) != CM_OK)
		goto out;
	if ((llm = calloc(1, sizeof(*llm))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	pthread_mutex_init(&llm->pool_mu, NULL);
	for (size_t i = 0; i < CM_LLM_MAX_PROVIDERS; i++) {
		pthread_condattr_t ca;

		pthread_mutex_init(&llm->prov[i].mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* local_acquire waits on it */
		pthread_cond_init(&llm->prov[i].cv, &ca);
		pthread_condattr_destroy(&ca);
		atomic_init(&llm->prov[i].aside_until_ms, 0);
	}
	llm->cfg = *cfg;
	DEF(timeout_ms, 60000);
	DEF(attempt_timeout_ms, llm->cfg.timeout_ms);
	DEF(connect_timeout_ms, 5000);
	DEF(stream_idle_ms, 30000);
	DEF(max_attempts, 5);
	DEF(backoff_base_ms, 500);
	DEF(backoff_max_ms, 20000);
	DEF(quota_cooldown_ms, 300000);
	llm->redis_host = strdup(cfg->redis_host != NULL ? cfg->redis_host : "");
	llm->prefix = strdup(cfg->redis_prefix != NULL ? cfg->redis_prefix : "cm:llm:");
	if (llm->redis_host == NULL || llm->prefix == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	llm->cfg.redis_host = llm->redis_host;
	llm->cfg.redis_prefix = llm->prefix;
	llm->cfg.providers = NULL; /* copied into prov[] */
	for (size_t i = 0; i < cfg->nproviders; i++) {
		if ((err = prov_init(llm, &llm->prov[i], &cfg->providers[i], i)) != CM_OK)
			goto out;
		llm->nprov++;
	}
	*out = llm;
	llm = NULL;
out:
	cm_llm_free(llm);
	return err;
}

void
cm_llm_free(cm_llm *llm)
{
	cm_llm_conn *c, *next;

	if (llm == NULL)
		return;
	for (c = llm->idle; c != NULL; c = next) {
		next = c->next;
		cm_llm_http_free(c->curl);
		cm_redis_close(c->redis);
		free(c);
	}
	for (size_t i = 0; i < CM_LLM_MAX_PROVIDERS; i++)
		prov_fini(&llm->prov[i]);
	pthread_mutex_destroy(&llm->pool_mu);
	free(llm->redis_host);
	free(llm->prefix);
	free(llm);
}

/* ---- configuration from the environment -------------------------------------------------- */

/* The next field of s up to any byte in seps (copied into out); advances *s past the separator. */
static const char *
next_field(const char **s, const char *seps, char *out, size_t len)
{
	size_t n = strcspn(*s, seps);

	snprintf(out, len, "%.*s", (int)n, *s);
	*s += n;
	if (**s != '\0')
		(*s)++; /* past the separator */
	return out;
}

static bool
parse_int_field(const char *s, int dflt, int *out)
{
	int64_t v;

	if (s[0] == '\0') {
		*out = dflt;
		return true;
	}
	if (!cm_parse_i64(s, &v) || v < 0 || v > 1000000)
		return false;
	*out = (int)v;
	return true;
}

static bool
parse_price(const char *s, double *out)
{
	char *end = NULL;

	*out = 0;
	if (s == NULL || s[0] == '\0')
		return true;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= 0;
}

cm_err
cm_llm_alloc_env(cm_llm **out, const char *redis_host, int redis_port, cm_metrics *metrics,
                 char *errbuf, size_t errlen)
{
	const char *url = NULL, *key = NULL, *model = NULL, *providers = NULL;
	const char *price_p = NULL, *price_c = NULL;
	int64_t     conc, rpm, tpm, timeout, atimeout, ctimeout, idle, attempts, bbase, bmax, cool;
	const cm_cfg_entry table[] = {
	    {"LLM_BASE_URL", CM_CFG_STR, &url, "", 0, 0, 0, "OpenAI-compatible base URL"},
	    {"LLM_API_KEY", CM_CFG_STR, &key, "", CM_CFG_SECRET, 0, 0, "API key"},
	    {"LLM_MODEL", CM_CFG_STR, &model, "gpt-4o-mini", 0, 0, 0, "model name"},
	    {"LLM_PROVIDERS", CM_CFG_STR, &providers, "", CM_CFG_SECRET, 0, 0,
	     "url|key|model|max_concurrency|rpm[|tpm];..."},
	    {"LLM_MAX_CONCURRENCY", CM_CFG_INT, &conc, "8", 0, 0, 100000, "calls in flight"},
	    {"LLM_RPM", CM_CFG_INT, &rpm, "0", 0, 0, 1000000, "requests per minute"},
	    {"LLM_TPM", CM_CFG_INT, &tpm, "0", 0, 0, 1000000000, "tokens per minute"},
	    {"LLM_TIMEOUT_MS", CM_CFG_INT, &timeout, "60000", 0, 100, 3600000, "call budget"},
	    {"LLM_ATTEMPT_TIMEOUT_MS", CM_CFG_INT, &atimeout, "0", 0, 0, 3600000, "one attempt"},
	    {"LLM_CONNECT_TIMEOUT_MS", CM_CFG_INT, &ctimeout, "5000", 0, 10, 120000, "connect"},
	    {"LLM_STREAM_IDLE_MS", CM_CFG_INT, &idle, "30000", 0, 1000, 3600000, "stream silence"},
	    {"LLM_MAX_ATTEMPTS", CM_CFG_INT, &attempts, "5", 0, 1, 50, "attempts per call"},
	    {"LLM_BACKOFF_BASE_MS", CM_CFG_INT, &bbase, "500", 0, 1, 600000, "first backoff"},
	    {"LLM_BACKOFF_MAX_MS", CM_CFG_INT, &bmax, "20000", 0, 1, 600000, "largest backoff"},
	    {"LLM_QUOTA_COOLDOWN_S", CM_CFG_INT, &cool, "300", 0, 1, 86400, "quota set-aside"},
	    {"LLM_PRICE_PROMPT_PER_1K", CM_CFG_STR, &price_p, "0", 0, 0, 0, "price"},
	    {"LLM_PRICE_COMPLETION_PER_1K", CM_CFG_STR, &price_c, "0", 0, 0, 0, "price"},
	};
	cm_llm_provider pv[CM_LLM_MAX_PROVIDERS];
	char            f[6][512];
	size_t          n = 0;
	double          pp, pc;
	cm_llm_config   cfg;
	cm_err          err;

	*out = NULL;
	memset(pv, 0, sizeof(pv));
	if ((err = cm_config_load(table, sizeof(table) / sizeof(table[0]), errbuf, errlen)) !=
	    CM_OK)
		goto out;
	if (!parse_price(price_p, &pp) || !parse_price(price_c, &pc)) {
		snprintf(errbuf, errlen, "LLM_PRICE_*_PER_1K: not a non-negative decimal");
		err = CM_EINVAL;
		goto out;
	}
	if (providers[0] == '\0' && url[0] == '\0') {
		err = CM_ENOTFOUND;
		goto out;
	}
	if (providers[0] == '\0') {
		pv[n++] =
		    (cm_llm_provider){NULL, url, key, model, (int)conc, (int)rpm, (int)tpm, pp, pc};
	} else {
		const char *s = providers;
		while (*s != '\0') {
			const char *entry_end = s + strcspn(s, ";");
			char        entry[3072];
			const char *e = entry;

			snprintf(entry, sizeof(entry), "%.*s", (int)(entry_end - s), s);
			s = *entry_end == ';' ? entry_end + 1 : entry_end;
			if (entry[0] == '\0')
				continue;
			if (n == CM_LLM_MAX_PROVIDERS) {
				snprintf(errbuf, errlen, "LLM_PROVIDERS: more than %d providers",
				         CM_LLM_MAX_PROVIDERS);
				err = CM_EINVAL;
				goto out;
			}
			for (int k = 0; k < 6; k++)
				next_field(&e, "|", f[k], sizeof(f[k]));
			pv[n].base_url = strdup(f[0]);
			pv[n].api_key = strdup(f[1][0] != '\0' ? f[1] : key);
			pv[n].model = strdup(f[2][0] != '\0' ? f[2] : model);
			pv[n].price_prompt_per_1k = pp;
			pv[n].price_completion_per_1k = pc;
			if (pv[n].base_url == NULL || pv[n].api_key == NULL ||
			    pv[n].model == NULL) {
				n++;
				err = CM_ENOMEM;
				goto out;
			}
			if (!parse_int_field(f[3], (int)conc, &pv[n].max_concurrency) ||
			    !parse_int_field(f[4], (int)rpm, &pv[n].rpm) ||
			    !parse_int_field(f[5], (int)tpm, &pv[n].tpm) || f[0][0] == '\0') {
				snprintf(errbuf, errlen,
				         "LLM_PROVIDERS: entry %zu is not "
				         "url|key|model|max_concurrency|rpm[|tpm]",
				         n + 1);
				n++;
				err = CM_EINVAL;
				goto out;
			}
			n++;
		}
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.providers = pv;
	cfg.nproviders = n;
	cfg.redis_host = redis_host;
	cfg.redis_port = redis_port;
	cfg.timeout_ms = (int)timeout;
	cfg.attempt_timeout_ms = (int)atimeout;
	cfg.connect_timeout_ms = (int)ctimeout;
	cfg.stream_idle_ms = (int)idle;
	cfg.max_attempts = (int)attempts;
	cfg.backoff_base_ms = (int)bbase;
	cfg.backoff_max_ms = (int)bmax;
	cfg.quota_cooldown_ms = (int)(cool * 1000);
	cfg.metrics = metrics;
	if ((err = cm_llm_alloc(out, &cfg)) != CM_OK) {
		snprintf(errbuf, errlen, "LLM provider config invalid (%s)", cm_strerror(err));
		goto out;
	}
	cm_config_log(table, sizeof(table) / sizeof(table[0]));
	for (size_t i = 0; i < (*out)->nprov; i++) {
		const cm_llm_prov *p = &(*out)->prov[i];
		cm_info("CM-LLM-CONFIG",
		        "provider %s: %s model=%s key=%s max_concurrency=%d rpm=%d tpm=%d", p->name,
		        p->url, p->model, p->auth != NULL ? "***" : "(none)", p->max_concurrency,
		        p->rpm, p->tpm);
	}
out:
	if (providers != NULL && providers[0] != '\0') {
		for (size_t i = 0; i < n; i++) {
			free((char *)pv[i].base_url);
			if (pv[i].api_key != NULL)
				cm_wipe((char *)pv[i].api_key, strlen(pv[i].api_key));
			free((char *)pv[i].api_key);
			free((char *)pv[i].model);
		}
	}
	cm_wipe(f, sizeof(f));
	return err;
}

/* ---- calls --------------------------------------------------------------------------------- */

static cm_llm_conn *
conn_take(cm_llm *llm)
{
	cm_llm_conn *c;

	pthread_mutex_lock(&llm->pool_mu);
	if ((c = llm->idle) != NULL) {
		llm->idle = c->next;
		llm->nidle--;
	}
	pthread_mutex_unlock(&llm->pool_mu);
	if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
	    cm_redis_open(&c->redis, llm->redis_host, llm->cfg.redis_port, 0) != CM_OK) {
		free(c);
		c = NULL;
	}
	return c;
}

static void
conn_give(cm_llm *llm, cm_llm_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&llm->pool_mu);
	if (llm->nidle < CM_LLM_POOL_IDLE) {
		c->next = llm->idle;
		llm->idle = c;
		llm->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&llm->pool_mu);
	if (c != NULL) {
		cm_llm_http_free(c->curl);
		cm_redis_close(c->redis);
		free(c);
	}
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int64_t
rand_upto(int64_t hi)
{
	uint64_t r;

	if (hi <= 0)
		return 0;
	cm_random_bytes(&r, sizeof(r));
	return (int64_t)(r % (uint64_t)(hi + 1));
}

/* The wait before retry number n (1-based). */
static int64_t
backoff_ms(const cm_llm *llm, int n, int64_t retry_after_ms)
{
	int64_t cap = llm->cfg.backoff_base_ms;

	if (retry_after_ms > 0)
		return retry_after_ms + rand_upto(250);
	for (int i = 1; i < n && cap < llm->cfg.backoff_max_ms; i++)
		cap *= 2;
	if (cap > llm->cfg.backoff_max_ms)
		cap = llm->cfg.backoff_max_ms;
	return rand_upto(cap);
}

/* The first provider at or after `from` (cyclically) that is not set aside; -1 when none. */
static int
pick(cm_llm *llm, cm_redis *r, size_t from)
{
	for (size_t k = 0; k < llm->nprov; k++) {
		size_t i = (from + k) % llm->nprov;
		if (!cm_llm_limit_is_aside(llm, &llm->prov[i], r))
			return (int)i;
	}
	return -1;
}

static void
count(cm_llm_prov *p, const cm_llm_attempt *at, const cm_llm_result *res, double seconds)
{
	cm_counter_add(p->m_req[at->outcome], 1);
	cm_histogram_observe(p->m_dur, seconds);
	if (at->err != CM_OK)
		return;
	cm_counter_add(p->m_tok_prompt, (uint64_t)res->prompt_tokens);
	cm_counter_add(p->m_tok_completion, (uint64_t)res->completion_tokens);
	/* price per 1k tokens -> millionths: tokens * price * 1000 */
	cm_counter_add(p->m_cost,
	               (uint64_t)((double)res->prompt_tokens * p->price_prompt * 1000.0 +
	                          (double)res->completion_tokens * p->price_completion * 1000.0 +
	                          0.5));
}

const char *
cm_llm_model(const cm_llm *llm)
{
	return llm->prov[0].model;
}

void
cm_llm_result_init(cm_llm_result *res)
{
	memset(res, 0, sizeof(*res));
}

void
cm_llm_result_fini(cm_llm_result *res)
{
	free(res->content);
	cm_llm_result_init(res);
}

static void
reset_result(cm_llm_result *res)
{
	free(res->content);
	res->content = NULL;
	res->content_len = 0;
	res->json = NULL;
	res->json_len = 0;
	res->finish_reason[0] = '\0';
	res->prompt_tokens = res->completion_tokens = 0;
}

cm_err
cm_llm_chat(cm_llm *llm, const cm_llm_req *req, cm_llm_result *res)
{
	cm_llm_conn   *c = NULL;
	cm_llm_attempt at;
	cm_err         err = CM_EUNAVAIL;
	int64_t        deadline, now = cm_mono_ms();
	size_t         from = 0;
	int            retries = 0;

	reset_result(res);
	res->attempts = 0;
	res->http_status = 0;
	res->provider[0] = res->errmsg[0] = '\0';
	res->model = NULL;
	if (req == NULL || req->msgs == NULL || req->nmsgs == 0) {
		err = CM_EINVAL;
		cm_strlcpy(res->errmsg, "no messages", sizeof(res->errmsg));
		goto out;
	}
	for (size_t i = 0; i < req->nmsgs; i++) {
		if (req->msgs[i].role == NULL || req->msgs[i].content == NULL) {
			err = CM_EINVAL;
			cm_strlcpy(res->errmsg, "a message without role or content",
			           sizeof(res->errmsg));
			goto out;
		}
	}
	deadline =
	    now + (req->deadline_ms > 0 ? req->deadline_ms - cm_now_ms() : llm->cfg.timeout_ms);
	if ((c = conn_take(llm)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	for (;;) {
		int          idx = pick(llm, c->redis, from);
		cm_llm_prov *p;
		cm_llm_slot  slot;
		int64_t      left, t0, wait;

		if (idx < 0) {
			err = CM_EPERM;
			cm_strlcpy(res->errmsg,
			           "every LLM provider is set aside (quota exhausted or key "
			           "refused)",
			           sizeof(res->errmsg));
			break;
		}
		p = &llm->prov[idx];
		cm_strlcpy(res->provider, p->name, sizeof(res->provider));
		if (req->cancel != NULL && atomic_load(req->cancel)) {
			err = CM_ECANCELED;
			cm_strlcpy(res->errmsg, "canceled by the caller", sizeof(res->errmsg));
			break;
		}
		if ((left = deadline - cm_mono_ms()) <= 0) {
			if (res->attempts == 0 || err == CM_OK)
				err = CM_ETIMEDOUT;
			if (res->errmsg[0] == '\0')
				cm_strlcpy(res->errmsg, "deadline passed", sizeof(res->errmsg));
			break;
		}
		if (left > llm->cfg.attempt_timeout_ms)
			left = llm->cfg.attempt_timeout_ms;
		if (cm_llm_limit_acquire(llm, p, c->redis, deadline, left + 5000, &slot) != CM_OK) {
			err = CM_ELIMIT;
			snprintf(res->errmsg, sizeof(res->errmsg), "no %s slot before the deadline",
			         p->name);
			break;
		}
		if ((left = deadline - cm_mono_ms()) > llm->cfg.attempt_timeout_ms)
			left = llm->cfg.attempt_timeout_ms;
		reset_result(res);
		t0 = cm_mono_ms();
		res->attempts++;
		res->model = p->model;
		cm_llm_http_attempt(llm, c, p, req, left, res, &at);
		cm_llm_limit_release(llm, p, c->redis, &slot,
		                     at.err == CM_OK ? res->prompt_tokens + res->completion_tokens
		                                     : 0);
		count(p, &at, res, (double)(cm_mono_ms() - t0) / 1000.0);
		res->http_status = at.status;
		err = at.err;
		cm_strlcpy(res->errmsg, at.errmsg, sizeof(res->errmsg));
		if (err == CM_OK)
			break;
		cm_debug("CM-LLM-ATTEMPT", "provider %s attempt %d: %s", p->name, res->attempts,
		         at.errmsg);
		if (at.outcome == CM_LLM_QUOTA) {
			cm_llm_limit_set_aside(llm, p, c->redis);
			from = (size_t)idx + 1;
			if (res->attempts >= llm->cfg.max_attempts)
				break;
			continue; /* the next provider, now */
		}
		if ((at.outcome != CM_LLM_RATE_LIMITED && at.outcome != CM_LLM_UNAVAILABLE &&
		     at.outcome != CM_LLM_TIMEOUT) ||
		    at.delivered || res->attempts >= llm->cfg.max_attempts)
			break;
		wait = backoff_ms(llm, ++retries, at.retry_after_ms);
		if (cm_mono_ms() + wait >= deadline) {
			if (at.outcome == CM_LLM_TIMEOUT)
				err = CM_ETIMEDOUT;
			break; /* no time for another attempt: the last error stands */
		}
		sleep_ms(wait);
		from = (size_t)idx + 1;
	}
	if (err == CM_OK && req->json_mode &&
	    cm_llm_extract_json(res->content != NULL ? res->content : "", res->content_len,
	                        &res->json, &res->json_len) != CM_OK) {
		err = CM_EPROTO;
		cm_strlcpy(res->errmsg, "JSON mode: no complete JSON object in the answer",
		           sizeof(res->errmsg));
	}
	if (err != CM_OK && err != CM_ECANCELED) /* a canceled call is the caller's choice */
		cm_warn("CM-LLM-FAIL", "LLM call failed after %d attempt(s) (provider %s): %s: %s",
		        res->attempts, res->provider, cm_strerror(err), res->errmsg);
out:
	conn_give(llm, c);
	if (res->content == NULL && (res->content = strdup("")) == NULL && err == CM_OK)
		err = CM_ENOMEM;
	if (err == CM_OK)
		res->errmsg[0] = '\0';
	return err;
}
