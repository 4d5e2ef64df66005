/*
 * test_qgen_hedge.c - hedged calls end to end: edge -> svc-qgen (two replicas) -> the fake LLM
 * with a slow tail (test/fakellm: slow_next makes the next answered call slow_factor times
 * longer). A set of 10 questions is 5 parallel calls of 2 (QGEN_PARALLEL 8); one is made 30x
 * slower. The job must finish long before that call would have, with exactly 10 distinct
 * questions, after exactly one duplicate call, whose cost (qgen_extra_tokens_total) stays within
 * QGEN_HEDGE_MAX_EXTRA (25%) of the set's tokens.
 */
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

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"

#define FAKE "http://127.0.0.1:28500"
#define TTFT_MS 300
#define SLOW_FACTOR 30     /* the slow call: 9 s */
#define HEDGE_MAX_EXTRA 25 /* QGEN_HEDGE_MAX_EXTRA's default: the stack sets none */

static const char *const qgen_admin[] = {"http://127.0.0.1:29104/metrics",
                                         "http://127.0.0.1:29114/metrics"};
static char              user[4200], doc[64];

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

/* A counter of both svc-qgen replicas, summed (the job runs on either). */
static long
qgen_counter(const char *name)
{
	long sum = 0;

	for (size_t i = 0; i < 2; i++) {
		CURL       *c = curl_easy_init();
		cm_buf      b;
		const char *line;
		size_t      nl = strlen(name);

		cm_buf_init(&b, 1u << 22);
		assert_non_null(c);
		curl_easy_setopt(c, CURLOPT_URL, qgen_admin[i]);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
		assert_int_equal(curl_easy_perform(c), CURLE_OK);
		curl_easy_cleanup(c);
		assert_int_equal(cm_buf_append(&b, "", 1), CM_OK);
		for (line = b.data; line != NULL && *line != '\0';) {
			if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
				sum += strtol(line + nl + 1, NULL, 10);
			line = strchr(line, '\n');
			line = line != NULL ? line + 1 : NULL;
		}
		cm_buf_fini(&b);
	}
	return sum;
}

static json_t *
fake(const char *method, const char *path, const char *body)
{
	json_t *v = http_fake(FAKE, method, path, body);

	assert_non_null(v);
	return v;
}

static long
call(const char *auth, const char *method, const char *path, const char *body, http_resp *r)
{
	const char *h[] = {auth, "Content-Type: application/json", NULL};

	assert_int_equal(http_do(method, path, h, body, body != NULL ? strlen(body) : 0, r), 0);
	return r->status;
}

static int
setup(void **state)
{
	char      path[512], cmd[1200];
	char     *pdf = NULL;
	FILE     *f;
	long      len;
	http_resp r;

	(void)state;
	if (http_new_user("hedge", "questions!", user, sizeof(user)) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/qgen-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	if ((access(path, R_OK) != 0 && system(cmd) != 0) || (f = fopen(path, "rb")) == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	if (len > 0 && (pdf = malloc((size_t)len)) != NULL &&
	    fread(pdf, 1, (size_t)len, f) == (size_t)len) {
		const char *h[] = {user, "Content-Type: application/pdf", NULL};
		if (http_do("POST", "/api/v1/documents?filename=hedge.pdf", h, pdf, (size_t)len,
		            &r) == 0 &&
		    r.status == 201)
			snprintf(doc, sizeof(doc), "%s", js(r.json, "id"));
		http_resp_free(&r);
	}
	fclose(f);
	free(pdf);
	return doc[0] != '\0' ? 0 : -1;
}

static int
restore_fake(void **state)
{
	(void)state;
	json_decref(http_fake(FAKE, "POST", "/_reset", "{\"config\":true}"));
	return 0;
}

static void
test_slow_call_is_hedged(void **state)
{
	char      path[160], body[160], id[37], job[64] = "", set[64] = "", status[32] = "";
	long      hedged0 = qgen_counter("qgen_hedged_calls_total");
	long      extra0 = qgen_counter("qgen_extra_tokens_total"), extra;
	int64_t   t0, until, took;
	json_t   *st, *qs;
	long      tokens;
	http_resp r;

	(void)state;
	json_decref(fake("POST", "/_reset", "{\"config\":true}"));
	snprintf(body, sizeof(body), "{\"ttft_ms\":%d,\"slow_next\":1,\"slow_factor\":%d}", TTFT_MS,
	         SLOW_FACTOR);
	json_decref(fake("POST", "/_control", body));

	cm_uuid_v4(id);
	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets", doc);
	snprintf(body, sizeof(body), "{\"count\":10,\"topic\":\"hedge %s\"}", id);
	t0 = cm_mono_ms();
	assert_int_equal(call(user, "POST", path, body, &r), 202);
	snprintf(job, sizeof(job), "%s", js(r.json, "job_id"));
	snprintf(set, sizeof(set), "%s", js(r.json, "question_set_id"));
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	for (until = t0 + 30000; cm_mono_ms() < until; usleep(20 * 1000)) {
		assert_int_equal(call(user, "GET", path, NULL, &r), 200);
		snprintf(status, sizeof(status), "%s", js(r.json, "status"));
		http_resp_free(&r);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
	}
	took = cm_mono_ms() - t0;
	assert_string_equal(status, "succeeded");

	/* Before the slow call (9 s) could have answered: a duplicate did. */
	st = fake("GET", "/_stats", NULL);
	print_message("set of 10 in %lld ms; fake: %lld calls, %lld+%lld tokens answered\n",
	              (long long)took, json_integer_value(json_object_get(st, "calls")),
	              json_integer_value(json_object_get(st, "prompt_tokens")),
	              json_integer_value(json_object_get(st, "completion_tokens")));
	assert_true(took < TTFT_MS * SLOW_FACTOR * 2 / 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "faults"), "slow")),
	                 1);
	assert_int_equal(json_integer_value(json_object_get(st, "calls")), 6); /* 5 + 1 duplicate */
	tokens = (long)(json_integer_value(json_object_get(st, "prompt_tokens")) +
	                json_integer_value(json_object_get(st, "completion_tokens")));
	json_decref(st);

	/* Exactly 10 questions, none twice (the pair's loser brought none). */
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set);
	assert_int_equal(call(user, "GET", path, NULL, &r), 200);
	qs = json_object_get(r.json, "questions");
	assert_int_equal(json_array_size(qs), 10);
	for (size_t i = 0; i < json_array_size(qs); i++)
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(js(json_array_get(qs, i), "text"),
			                        js(json_array_get(qs, k), "text"));
	http_resp_free(&r);

	/* One duplicate; its cost is counted once the cancelled call is drained, and stays within
	 * the budget: 25% of the set's tokens, which are the answered calls' (5 calls of 2). */
	assert_int_equal(qgen_counter("qgen_hedged_calls_total") - hedged0, 1);
	for (until = cm_mono_ms() + 10000;
	     (extra = qgen_counter("qgen_extra_tokens_total") - extra0) == 0 &&
	     cm_mono_ms() < until;)
		usleep(20 * 1000);
	print_message("extra tokens %ld of the set's %ld\n", extra, tokens);
	assert_true(extra > 0);
	assert_true(extra * 100 <= tokens * HEDGE_MAX_EXTRA);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_slow_call_is_hedged, restore_fake),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	return cmocka_run_group_tests(tests, setup, NULL);
}
