/*
 * test_llm.c - the LLM client against test/fakellm/fakellm.py (started here on 127.0.0.1:28510)
 * and the fixture's Redis: plain, JSON-mode and streamed calls, 429 storms with Retry-After, 5xx
 * retries, malformed answers, quota failover without retry storms, hangs against the deadline, cut
 * streams, the concurrency limit shared by two clients through Redis, and local limits while
 * Redis is down (a client pointed at a closed port; the shared Redis is never stopped here).
 *
 * Each test resets the fake (counters and configuration) and uses a Redis key prefix unique to
 * the run. Measured figures are printed as "MEASURE ..." lines.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "cm/buf.h"
#include "cm/llm.h"
#include "cm/metrics.h"
#include "cm/redis.h"
#include "cm/util.h"
#include "fakellm_helper.h"

#define FAKE_PORT 28510
#define FAKE_URL "http://127.0.0.1:28510"

static pid_t fake_pid = -1;
static char  prefix[80];

/* ---- the fake ------------------------------------------------------------------------------ */

/* One request to the fake's control API; the answer's JSON (caller decrefs) or NULL. */
static json_t *
fake(const char *method, const char *path, const char *body)
{
	cm_buf       b;
	json_t      *j = NULL;
	json_error_t jerr;

	cm_buf_init(&b, 1u << 20);
	if (test_fake_call(FAKE_URL, method, path, body, &b))
		j = json_loadb(b.data != NULL ? b.data : "", b.len, 0, &jerr);
	cm_buf_fini(&b);
	return j;
}

static void
control(const char *body)
{
	json_t *j = fake("POST", "/_control", body);

	assert_non_null(j);
	json_decref(j);
}

static json_int_t
stat_int(const char *name)
{
	json_t    *j = fake("GET", "/_stats", NULL);
	json_int_t v;

	assert_non_null(j);
	v = json_integer_value(json_object_get(j, name));
	json_decref(j);
	return v;
}

static json_int_t
stat_sub(const char *obj, const char *name)
{
	json_t    *j = fake("GET", "/_stats", NULL);
	json_int_t v;

	assert_non_null(j);
	v = json_integer_value(json_object_get(json_object_get(j, obj), name));
	json_decref(j);
	return v;
}

static int
group_setup(void **state)
{
	char        pidfile[512], id[37];
	const char *st = getenv("CM_TEST_STATE");

	cm_uuid_v4(id);
	snprintf(prefix, sizeof(prefix), "cmtest:llm:%s:", id);
	if (st == NULL) {
		fprintf(stderr, "CM_TEST_STATE not set (run under ctest)\n");
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(pidfile, sizeof(pidfile), "%s/fakellm-%d.pid", st, FAKE_PORT);
	return (fake_pid = test_fake_start(FAKE_PORT, pidfile)) < 0 ? -1 : 0;
}

static int
group_teardown(void **state)
{
	if (fake_pid > 0) {
		int64_t t0 = cm_mono_ms();
		int     status = test_fake_stop(fake_pid);

		fprintf(stderr, "MEASURE fakellm SIGTERM -> exit %lld ms (status %d)\n",
		        (long long)(cm_mono_ms() - t0), status);
	}
	curl_global_cleanup();
	return 0;
}

static int
setup(void **state)
{
	json_t *j = fake("POST", "/_reset", "{\"config\":true}");
	char    id[37];

	cm_uuid_v4(id); /* fresh Redis keys: no slot, window or set-aside carried over */
	snprintf(prefix, sizeof(prefix), "cmtest:llm:%s:", id);
	if (j == NULL)
		return -1;
	json_decref(j);
	return 0;
}

/* ---- clients ------------------------------------------------------------------------------- */

static int
redis_port(void)
{
	return (int)strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10);
}

/* A client for n providers on the fake with keys k0, k1, ...; redis_port_ < 0: Redis down. */
static cm_llm *
client(size_t n, int max_conc, int port_redis, cm_metrics *m)
{
	cm_llm_provider pv[4];
	char            names[4][32], keys[4][32];
	cm_llm_config   cfg;
	cm_llm         *llm = NULL;

	memset(pv, 0, sizeof(pv));
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "fake%d", (int)i);
		snprintf(keys[i], sizeof(keys[i]), "k%d", (int)i);
		pv[i].name = names[i];
		pv[i].base_url = FAKE_URL "/v1/";
		pv[i].api_key = keys[i];
		pv[i].model = "fake-model";
		pv[i].max_concurrency = max_conc;
		pv[i].price_prompt_per_1k = 0.5;
		pv[i].price_completion_per_1k = 1.5;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.providers = pv;
	cfg.nproviders = n;
	cfg.redis_host = "127.0.0.1";
	cfg.redis_port = port_redis > 0 ? port_redis : 1; /* port 1: refused */
	cfg.redis_prefix = prefix;
	cfg.timeout_ms = 10000;
	cfg.backoff_base_ms = 50;
	cfg.backoff_max_ms = 400;
	cfg.max_attempts = 4;
	cfg.quota_cooldown_ms = 60000;
	cfg.metrics = m;
	assert_int_equal(cm_llm_alloc(&llm, &cfg), CM_OK);
	return llm;
}

static cm_err
ask(cm_llm *llm, const char *text, bool json, cm_llm_result *res)
{
	cm_llm_msg msgs[2] = {{"system", "You are terse."}, {"user", text}};
	cm_llm_req req;

	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 2;
	req.json_mode = json;
	return cm_llm_chat(llm, &req, res);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void
test_plain(void **state)
{
	cm_metrics   *m = cm_metrics_alloc("t_");
	cm_llm       *llm = client(1, 0, redis_port(), m);
	cm_llm_result res;
	cm_buf        out;

	cm_llm_result_init(&res);
	assert_int_equal(ask(llm, "hello there", false, &res), CM_OK);
	assert_string_equal(res.content, "Echo: hello there");
	assert_string_equal(res.finish_reason, "stop");
	assert_string_equal(res.provider, "fake0");
	assert_string_equal(res.model, "fake-model");
	assert_int_equal(res.attempts, 1);
	assert_int_equal(res.http_status, 200);
	assert_true(res.prompt_tokens > 0 && res.completion_tokens > 0);
	assert_null(res.json);
	assert_int_equal(stat_int("calls"), 1);
	assert_int_equal(stat_sub("by_key", "k0"), 1);
	/* a second call reuses the pooled connection and counts again */
	assert_int_equal(ask(llm, "again", false, &res), CM_OK);
	cm_buf_init(&out, 1u << 20);
	assert_int_equal(cm_metrics_render(m, &out), CM_OK);
	assert_non_null(
	    strstr(out.data, "t_llm_requests_total{provider=\"fake0\",outcome=\"ok\"} 2"));
	assert_non_null(strstr(out.data, "t_llm_tokens_total{provider=\"fake0\",kind=\"prompt\"}"));
	assert_non_null(strstr(out.data, "t_llm_cost_estimate_micros_total{provider=\"fake0\"}"));
	assert_non_null(strstr(out.data, "t_llm_duration_seconds_count{provider=\"fake0\"} 2"));
	assert_null(strstr(out.data, "k0")); /* the key never shows */
	cm_buf_fini(&out);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
	cm_metrics_free(m);
}

static const char quiz[] =
    "Write quiz questions about the text.\nCOUNT: 3\nPAGE: 4\nTEXT:\n"
    "Photosynthesis converts light energy into chemical energy. Chlorophyll absorbs mostly blue "
    "and red light. The Calvin cycle fixes carbon dioxide into sugars. Stomata regulate gas "
    "exchange in leaves.";

static void
check_quiz(const cm_llm_result *res)
{
	json_error_t jerr;
	json_t      *j = json_loadb(res->json, res->json_len, 0, &jerr);
	json_t      *qs = json_object_get(j, "questions"), *q;
	size_t       i;
	int          seen_index[4] = {0};

	assert_non_null(j);
	assert_int_equal(json_array_size(qs), 3);
	json_array_foreach(qs, i, q)
	{
		json_t    *opts = json_object_get(q, "options");
		json_int_t ai = json_integer_value(json_object_get(q, "answer_index"));

		assert_true(json_is_string(json_object_get(q, "question")));
		assert_true(json_is_string(json_object_get(q, "explanation")));
		assert_int_equal(json_integer_value(json_object_get(q, "page")), 4);
		assert_int_equal(json_array_size(opts), 4);
		assert_true(ai >= 0 && ai < 4);
		seen_index[ai]++;
		for (size_t a = 0; a < 4; a++)
			for (size_t b = a + 1; b < 4; b++)
				assert_string_not_equal(json_string_value(json_array_get(opts, a)),
				                        json_string_value(json_array_get(opts, b)));
	}
	json_decref(j);
}

static void
test_json_mode(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;
	char         *first;

	cm_llm_result_init(&res);
	assert_int_equal(ask(llm, quiz, true, &res), CM_OK);
	assert_non_null(res.json);
	check_quiz(&res);
	first = strdup(res.content);
	/* deterministic: the same prompt gives the same questions */
	assert_int_equal(ask(llm, quiz, true, &res), CM_OK);
	assert_string_equal(res.content, first);
	/* wrapped in a fence, then in prose: still extracted */
	control("{\"fence_rate\":1}");
	assert_int_equal(ask(llm, quiz, true, &res), CM_OK);
	assert_true(strncmp(res.content, "```json", 7) == 0);
	check_quiz(&res);
	control("{\"fence_rate\":0,\"prose_rate\":1}");
	assert_int_equal(ask(llm, quiz, true, &res), CM_OK);
	assert_true(res.json > res.content);
	check_quiz(&res);
	free(first);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

typedef struct deltas {
	cm_buf text;
	int    n;
	int    stop_after; /* 0 = never */
} deltas;

static bool
on_delta(void *arg, const char *text, size_t len)
{
	deltas *d = arg;

	assert_int_equal(cm_buf_append(&d->text, text, len), CM_OK);
	d->n++;
	return d->stop_after == 0 || d->n < d->stop_after;
}

static cm_err
ask_stream(cm_llm *llm, const char *text, deltas *d, cm_llm_result *res)
{
	cm_llm_msg msgs[1] = {{"user", text}};
	cm_llm_req req;

	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 1;
	req.on_delta = on_delta;
	req.arg = d;
	return cm_llm_chat(llm, &req, res);
}

static const char long_text[] =
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty";

static void
test_stream(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;
	deltas        d;
	int64_t       t0;

	cm_llm_result_init(&res);
	memset(&d, 0, sizeof(d));
	cm_buf_init(&d.text, 1u << 20);
	control("{\"ttft_ms\":100,\"tokens_per_s\":200}");
	t0 = cm_mono_ms();
	assert_int_equal(ask_stream(llm, long_text, &d, &res), CM_OK);
	fprintf(stderr,
	        "MEASURE stream of %d deltas, %lld completion tokens: %lld ms "
	        "(model: 100 ms TTFT + tokens/200 s)\n",
	        d.n, (long long)res.completion_tokens, (long long)(cm_mono_ms() - t0));
	assert_true(d.n > 3);
	assert_int_equal(d.text.len, res.content_len);
	assert_memory_equal(d.text.data, res.content, res.content_len);
	assert_int_equal(strncmp(res.content, "Echo: one two", 13), 0);
	assert_string_equal(res.finish_reason, "stop");
	assert_true(res.completion_tokens > 20); /* usage from the final chunk */
	assert_int_equal(stat_int("streams"), 1);
	/* the callback stops the call */
	cm_buf_reset(&d.text);
	d.n = 0;
	d.stop_after = 2;
	assert_int_equal(ask_stream(llm, long_text, &d, &res), CM_ECANCELED);
	assert_int_equal(d.n, 2);
	cm_buf_fini(&d.text);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

static void
test_429_storm_retry_after(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;
	int64_t       t0, ms;

	cm_llm_result_init(&res);
	control("{\"rate_limit_next\":2,\"retry_after_s\":1}");
	t0 = cm_mono_ms();
	assert_int_equal(ask(llm, "after the storm", false, &res), CM_OK);
	ms = cm_mono_ms() - t0;
	fprintf(stderr, "MEASURE 2 x 429 with Retry-After: 1 then success: %lld ms, %d attempts\n",
	        (long long)ms, res.attempts);
	assert_int_equal(res.attempts, 3);
	assert_true(ms >= 2000);       /* both waits honoured (backoff alone is <= 400 ms) */
	assert_true(ms < 2000 + 1500); /* plus at most 250 ms jitter each, and some slack */
	assert_int_equal(stat_sub("by_status", "429"), 2);
	/* a storm longer than the attempts: CM_ELIMIT */
	control("{\"rate_limit_next\":10,\"retry_after_s\":0}");
	assert_int_equal(ask(llm, "still limited", false, &res), CM_ELIMIT);
	assert_int_equal(res.attempts, 4);
	assert_int_equal(res.http_status, 429);
	/* a Retry-After that would overshoot the deadline: no sleep, the error at once */
	control("{\"rate_limit_next\":10,\"retry_after_s\":30}");
	t0 = cm_mono_ms();
	assert_int_equal(ask(llm, "long wait", false, &res), CM_ELIMIT);
	assert_int_equal(res.attempts, 1);
	assert_true(cm_mono_ms() - t0 < 1000);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

static void
test_5xx_retries(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;

	cm_llm_result_init(&res);
	control("{\"fail_next\":2}");
	assert_int_equal(ask(llm, "flaky", false, &res), CM_OK);
	assert_int_equal(res.attempts, 3);
	assert_int_equal(stat_sub("by_status", "503"), 2);
	/* 500 is retried as 503 is; the last attempt's status is reported. */
	assert_int_equal(setup(NULL), 0);
	control("{\"fail_rate\":1,\"fail_status\":500}");
	assert_int_equal(ask(llm, "down", false, &res), CM_EUNAVAIL);
	assert_int_equal(res.attempts, 4);
	assert_int_equal(stat_int("calls"), 4);
	assert_int_equal(stat_sub("by_status", "500"), 4);
	assert_int_equal(res.http_status, 500);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

static void
test_malformed(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;

	cm_llm_result_init(&res);
	/* the HTTP body is not a chat completion */
	control("{\"bad_body_rate\":1}");
	assert_int_equal(ask(llm, "x", false, &res), CM_EPROTO);
	assert_int_equal(stat_int("calls"), 1);
	/* JSON mode, content cut short: CM_EPROTO, the content kept for repair */
	control("{\"bad_body_rate\":0,\"malformed_rate\":1}");
	assert_int_equal(ask(llm, quiz, true, &res), CM_EPROTO);
	assert_true(res.content_len > 10);
	assert_null(res.json);
	assert_int_equal(stat_int("calls"), 2);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

static void
test_quota_failover(void **state)
{
	cm_llm       *llm = client(2, 0, redis_port(), NULL);
	cm_llm       *other, *solo;
	cm_llm_result res;

	cm_llm_result_init(&res);
	control("{\"exhausted_keys\":[\"k0\"]}");
	assert_int_equal(ask(llm, "who answers", false, &res), CM_OK);
	assert_string_equal(res.provider, "fake1");
	assert_int_equal(res.attempts, 2);
	assert_int_equal(stat_sub("by_key", "k0"), 1);
	assert_int_equal(stat_sub("by_key", "k1"), 1);
	/* set aside: later calls, here and in another replica (through Redis), skip it */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ask(llm, "again", false, &res), CM_OK);
	other = client(2, 0, redis_port(), NULL);
	assert_int_equal(ask(other, "other replica", false, &res), CM_OK);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(stat_sub("by_key", "k0"), 1);
	assert_int_equal(stat_sub("by_key", "k1"), 5);
	/* every key exhausted: CM_EPERM at once, one call per provider, no retry */
	control("{\"exhausted_keys\":[\"k0\",\"k1\"]}");
	solo = client(1, 0, -1, NULL); /* no Redis: knows nothing yet */
	assert_int_equal(ask(solo, "nobody", false, &res), CM_EPERM);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(ask(solo, "still nobody", false, &res), CM_EPERM);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(stat_sub("by_key", "k0"), 2);
	cm_llm_result_fini(&res);
	cm_llm_free(solo);
	cm_llm_free(other);
	cm_llm_free(llm);
}

static void
test_hang_deadline(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_msg    msgs[1] = {{"user", "are you there"}};
	cm_llm_req    req;
	cm_llm_result res;
	int64_t       t0, ms;

	cm_llm_result_init(&res);
	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 1;
	req.deadline_ms = cm_now_ms() + 1500;
	control("{\"hang_rate\":1,\"hang_s\":20}");
	t0 = cm_mono_ms();
	assert_int_equal(cm_llm_chat(llm, &req, &res), CM_ETIMEDOUT);
	ms = cm_mono_ms() - t0;
	fprintf(stderr,
	        "MEASURE hang with a 1500 ms deadline: returned after %lld ms (%d attempts)\n",
	        (long long)ms, res.attempts);
	assert_true(ms >= 1400 && ms < 2000);
	/* a deadline already past: no call at all */
	req.deadline_ms = cm_now_ms() - 1;
	assert_int_equal(cm_llm_chat(llm, &req, &res), CM_ETIMEDOUT);
	assert_int_equal(res.attempts, 0);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

/* cm_llm_req.cancel: set by another thread while the call waits for a slow answer, the
 * transfer is aborted (libcurl's progress callback: within about a second) and the call returns
 * CM_ECANCELED without retrying; a flag already set makes no attempt at all. */
typedef struct cancel_arg {
	atomic_bool *flag;
	int          after_ms;
} cancel_arg;

static void *
cancel_later(void *arg)
{
	cancel_arg *a = arg;

	usleep((useconds_t)a->after_ms * 1000);
	atomic_store(a->flag, true);
	return NULL;
}

static void
test_cancel(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_msg    msgs[1] = {{"user", "take your time"}};
	cm_llm_req    req;
	cm_llm_result res;
	atomic_bool   flag;
	cancel_arg    ca = {&flag, 300};
	pthread_t     thr;
	int64_t       t0, ms;

	cm_llm_result_init(&res);
	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 1;
	req.cancel = &flag;
	atomic_init(&flag, false);
	control("{\"ttft_ms\":8000}");
	t0 = cm_mono_ms();
	assert_int_equal(pthread_create(&thr, NULL, cancel_later, &ca), 0);
	assert_int_equal(cm_llm_chat(llm, &req, &res), CM_ECANCELED);
	ms = cm_mono_ms() - t0;
	pthread_join(thr, NULL);
	fprintf(stderr, "MEASURE cancel 300 ms into an 8 s call: returned after %lld ms\n",
	        (long long)ms);
	assert_true(ms >= 300 && ms < 2500);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(stat_int("calls"), 1);
	/* Already cancelled: nothing is sent. */
	assert_int_equal(cm_llm_chat(llm, &req, &res), CM_ECANCELED);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(stat_int("calls"), 1);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

static void
test_cut_stream(void **state)
{
	cm_llm       *llm = client(1, 0, redis_port(), NULL);
	cm_llm_result res;
	deltas        d;

	cm_llm_result_init(&res);
	memset(&d, 0, sizeof(d));
	cm_buf_init(&d.text, 1u << 20);
	control("{\"cut_stream_rate\":1}");
	assert_int_equal(ask_stream(llm, long_text, &d, &res), CM_EUNAVAIL);
	assert_true(d.n > 0);
	assert_int_equal(res.attempts, 1); /* deltas were delivered: never retried */
	assert_int_equal(stat_int("calls"), 1);
	fprintf(stderr, "cut stream: %s\n", res.errmsg);
	cm_buf_fini(&d.text);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
}

typedef struct worker {
	pthread_t thr;
	cm_llm   *llm;
	int       calls;
	int       ok;
} worker;

static void *
work(void *arg)
{
	worker       *w = arg;
	cm_llm_result res;

	cm_llm_result_init(&res);
	for (int i = 0; i < w->calls; i++)
		w->ok += ask(w->llm, "in parallel", false, &res) == CM_OK;
	cm_llm_result_fini(&res);
	return NULL;
}

/* nthreads workers over the given clients (round robin), calls each; returns the calls that
 * succeeded and prints the fake's peak concurrency. */
static int
run_parallel(cm_llm **llms, int nllm, int nthreads, int calls, const char *what)
{
	worker  w[16];
	int     ok = 0;
	int64_t t0 = cm_mono_ms();

	for (int i = 0; i < nthreads; i++) {
		w[i] = (worker){.llm = llms[i % nllm], .calls = calls};
		assert_int_equal(pthread_create(&w[i].thr, NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thr, NULL);
		ok += w[i].ok;
	}
	fprintf(stderr,
	        "MEASURE %s: %d threads x %d calls at 100 ms each: %lld ms, peak %lld, "
	        "offered peak %lld\n",
	        what, nthreads, calls, (long long)(cm_mono_ms() - t0),
	        (long long)stat_int("peak_concurrency"), (long long)stat_int("peak_offered"));
	return ok;
}

static void
test_concurrency_shared(void **state)
{
	cm_llm *a = client(1, 2, redis_port(), NULL);
	cm_llm *b = client(1, 2, redis_port(), NULL);
	cm_llm *llms[2] = {a, b};

	control("{\"ttft_ms\":100}");
	/* two "replicas" with max_concurrency 2 each, one Redis: 2 in flight at most, together */
	assert_int_equal(run_parallel(llms, 2, 8, 2, "shared limit 2 via Redis, 2 clients"), 16);
	assert_true(stat_int("peak_concurrency") <= 2);
	assert_int_equal(stat_int("peak_concurrency"), 2);
	cm_llm_free(a);
	cm_llm_free(b);
}

static void
test_redis_down_local_limit(void **state)
{
	cm_llm         *a = client(1, 2, -1, NULL);
	cm_llm         *llms[1] = {a};
	cm_llm_msg      msgs[1] = {{"user", "rpm"}};
	cm_llm_req      req;
	cm_llm_result   res;
	cm_llm_config   cfg;
	cm_llm_provider pv;
	cm_llm         *r = NULL;

	control("{\"ttft_ms\":100}");
	assert_int_equal(run_parallel(llms, 1, 6, 2, "Redis down, local limit 2"), 12);
	assert_true(stat_int("peak_concurrency") <= 2);
	cm_llm_free(a);
	/* requests per minute, locally: 3 pass, the 4th waits until its deadline */
	memset(&pv, 0, sizeof(pv));
	pv.name = "rpm";
	pv.base_url = FAKE_URL;
	pv.model = "m";
	pv.rpm = 3;
	memset(&cfg, 0, sizeof(cfg));
	cfg.providers = &pv;
	cfg.nproviders = 1;
	cfg.redis_host = "127.0.0.1";
	cfg.redis_port = 1;
	assert_int_equal(cm_llm_alloc(&r, &cfg), CM_OK);
	cm_llm_result_init(&res);
	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 1;
	for (int i = 0; i < 3; i++)
		assert_int_equal(cm_llm_chat(r, &req, &res), CM_OK);
	req.deadline_ms = cm_now_ms() + 300;
	assert_int_equal(cm_llm_chat(r, &req, &res), CM_ELIMIT);
	assert_int_equal(res.attempts, 0);
	cm_llm_result_fini(&res);
	cm_llm_free(r);
}

/* Redis' clock, in milliseconds (the limiter's windows are minutes of it). */
static int64_t
redis_now_ms(void)
{
	cm_redis *r = NULL;
	int64_t   ms = -1;

	assert_int_equal(cm_redis_open(&r, "127.0.0.1", redis_port(), 500), CM_OK);
	assert_int_equal(
	    cm_redis_eval_int(r,
	                      "local t = redis.call('TIME') "
	                      "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)",
	                      0, NULL, 0, NULL, &ms),
	    CM_OK);
	cm_redis_close(r);
	return ms;
}

/* Waits (polling Redis' clock, at most a minute) until the current minute window has at least
 * need_ms left, so that a check taking less than that runs inside one window; returns the
 * window. */
static int64_t
fresh_window(int64_t need_ms)
{
	int64_t until = cm_mono_ms() + 65000, now;

	while ((now = redis_now_ms()) % 60000 > 60000 - need_ms) {
		assert_true(cm_mono_ms() < until);
		usleep(20 * 1000);
	}
	return now / 60000;
}

/* rpm and tpm counted in Redis (fixed minutes of Redis' clock). Each check starts with at
 * least 5 s of its window left (it takes well under 1 s), so a window boundary never falls
 * inside it. */
static void
test_rate_limits_redis(void **state)
{
	cm_llm_provider pv;
	cm_llm_config   cfg;
	cm_llm         *r = NULL;
	cm_llm_msg      msgs[1] = {{"user", long_text}};
	cm_llm_req      req;
	cm_llm_result   res;
	int64_t         m0;

	memset(&pv, 0, sizeof(pv));
	pv.name = "rate";
	pv.base_url = FAKE_URL;
	pv.model = "m";
	pv.rpm = 3;
	memset(&cfg, 0, sizeof(cfg));
	cfg.providers = &pv;
	cfg.nproviders = 1;
	cfg.redis_host = "127.0.0.1";
	cfg.redis_port = redis_port();
	cfg.redis_prefix = prefix;
	cm_llm_result_init(&res);
	memset(&req, 0, sizeof(req));
	req.msgs = msgs;
	req.nmsgs = 1;
	assert_int_equal(cm_llm_alloc(&r, &cfg), CM_OK);
	m0 = fresh_window(5000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cm_llm_chat(r, &req, &res), CM_OK);
	req.deadline_ms = cm_now_ms() + 300;
	assert_int_equal(cm_llm_chat(r, &req, &res), CM_ELIMIT);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(redis_now_ms() / 60000, m0);
	cm_llm_free(r);
	/* tokens per minute: the first call uses more than 10, the next one waits */
	pv.name = "tokens";
	pv.rpm = 0;
	pv.tpm = 10;
	req.deadline_ms = 0;
	assert_int_equal(cm_llm_alloc(&r, &cfg), CM_OK);
	m0 = fresh_window(5000);
	assert_int_equal(cm_llm_chat(r, &req, &res), CM_OK);
	assert_true(res.prompt_tokens + res.completion_tokens > 10);
	req.deadline_ms = cm_now_ms() + 300;
	assert_int_equal(cm_llm_chat(r, &req, &res), CM_ELIMIT);
	assert_int_equal(res.attempts, 0);
	assert_int_equal(redis_now_ms() / 60000, m0);
	assert_int_equal(stat_int("calls"), 3 + 1); /* the refused calls never reached it */
	cm_llm_result_fini(&res);
	cm_llm_free(r);
}

static void
test_env_config(void **state)
{
	cm_llm       *llm = NULL;
	char          err[256];
	cm_llm_result res;

	unsetenv("LLM_BASE_URL");
	unsetenv("LLM_PROVIDERS");
	assert_int_equal(cm_llm_alloc_env(&llm, NULL, 0, NULL, err, sizeof(err)), CM_ENOTFOUND);
	setenv("LLM_PROVIDERS", FAKE_URL "|kA|m1|2|0;" FAKE_URL "/v1||m2", 1);
	setenv("LLM_API_KEY", "kDefault", 1);
	control("{\"exhausted_keys\":[\"kA\"]}");
	assert_int_equal(cm_llm_alloc_env(&llm, NULL, 0, NULL, err, sizeof(err)), CM_OK);
	cm_llm_result_init(&res);
	assert_int_equal(ask(llm, "env", false, &res), CM_OK);
	assert_string_equal(res.provider, "1-127.0.0.1_28510");
	/* The client names the model it asks first, and the result the one that answered. */
	assert_string_equal(cm_llm_model(llm), "m1");
	assert_string_equal(res.model, "m2");
	assert_int_equal(stat_sub("by_key", "kDefault"), 1);
	cm_llm_result_fini(&res);
	cm_llm_free(llm);
	/* LLM_MODEL unset: the one default model name. */
	unsetenv("LLM_PROVIDERS");
	unsetenv("LLM_MODEL");
	setenv("LLM_BASE_URL", FAKE_URL, 1);
	assert_int_equal(cm_llm_alloc_env(&llm, NULL, 0, NULL, err, sizeof(err)), CM_OK);
	assert_string_equal(cm_llm_model(llm), "gpt-4o-mini");
	cm_llm_free(llm);
	unsetenv("LLM_BASE_URL");
	setenv("LLM_PROVIDERS", FAKE_URL "|k|m|many", 1);
	assert_int_equal(cm_llm_alloc_env(&llm, NULL, 0, NULL, err, sizeof(err)), CM_EINVAL);
	assert_null(strstr(err, "k|"));
	unsetenv("LLM_PROVIDERS");
	unsetenv("LLM_API_KEY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_plain, setup),
	    cmocka_unit_test_setup(test_json_mode, setup),
	    cmocka_unit_test_setup(test_stream, setup),
	    cmocka_unit_test_setup(test_429_storm_retry_after, setup),
	    cmocka_unit_test_setup(test_5xx_retries, setup),
	    cmocka_unit_test_setup(test_malformed, setup),
	    cmocka_unit_test_setup(test_quota_failover, setup),
	    cmocka_unit_test_setup(test_hang_deadline, setup),
	    cmocka_unit_test_setup(test_cut_stream, setup),
	    cmocka_unit_test_setup(test_cancel, setup),
	    cmocka_unit_test_setup(test_concurrency_shared, setup),
	    cmocka_unit_test_setup(test_redis_down_local_limit, setup),
	    cmocka_unit_test_setup(test_rate_limits_redis, setup),
	    cmocka_unit_test_setup(test_env_config, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
