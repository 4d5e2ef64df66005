/*
 * test_qgen_stream.c - streamed generation calls that finish a set early: svc-qgen's Create
 * handler and a runner in this process, a real svc-pdf (its RPC server, here too), the pgredis
 * fixture's PostgreSQL and Redis, and the fake LLM (test/fakellm, started here on its own port)
 * writing its answers a few words at a time. A set of 10 is 5 calls of 2 plus one spare call
 * (QGEN_SPARE_PCT 25, QGEN_PARALLEL 6); the first call the fake answers writes 30 times slower.
 * The set must hold exactly 10 distinct questions long before that call could end, every call
 * streamed, no call beyond the six, and the calls still writing when the set was full were
 * cancelled mid-stream (qgen_streams_cancelled_total) and their cost counted
 * (qgen_extra_tokens_total). Questions the fake places on another page are dropped as they
 * stream in and topped up. With QGEN_STREAM off the same set comes from whole answers (no
 * stream asked for): the path for a provider that cannot stream.
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

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "cran_manual.h"
#include "fakellm_helper.h"
#include "qgen_harness.h"
#include "proto/qgen.pb-c.h"

#define PDF_RPC "tcp://127.0.0.1:27295"
#define FAKE_PORT 28522
#define FAKE_URL "http://127.0.0.1:28522"
#define COUNT 10
#define SLOW_FACTOR 30       /* the slow call: about 30 x 0.6 s */
#define RUN_TIMEOUT_MS 60000 /* a set's job, run on this thread, has ended by then */

static test_pdf          psvc;
static test_qgen         qg;
static cm_service_config common;
static pid_t             fake_pid = -1;
static char              doc_id[40], user[48], schema[40];

/* ---- the fake LLM -------------------------------------------------------------------------- */

static bool
fake(const char *method, const char *path, const char *body, cm_buf *out)
{
	return test_fake_call(FAKE_URL, method, path, body, out);
}

/* A top-level number of the fake's /_stats ("calls", "streams"). */
static long
fake_stat(const char *name)
{
	cm_buf      b;
	char        key[40];
	const char *p;
	long        v = -1;

	cm_buf_init(&b, 1u << 20);
	assert_true(fake("GET", "/_stats", NULL, &b));
	snprintf(key, sizeof(key), "\"%s\": ", name);
	if ((p = strstr(b.data, key)) != NULL)
		v = strtol(p + strlen(key), NULL, 10);
	cm_buf_fini(&b);
	return v;
}

/* ---- the services -------------------------------------------------------------------------- */

static int
setup(void **state)
{
	qgen_config qc;
	const char *db_url = getenv("CM_TEST_PG");
	cm_buf      b;
	char        nonce[17], r[8];

	(void)state;
	cm_log_init("qgen-stream-test", CM_LOG_WARN);
	if ((fake_pid = test_fake_start(FAKE_PORT, NULL)) < 0)
		return -1;
	unsetenv("LLM_PROVIDERS");
	setenv("LLM_BASE_URL", FAKE_URL "/v1", 1);
	setenv("LLM_MODEL", "fake", 1);
	setenv("LLM_MAX_CONCURRENCY", "8", 1);
	setenv("LLM_BACKOFF_BASE_MS", "20", 1);
	if (test_pdf_start(&psvc, "/tmp/qgen-stest-XXXXXX", db_url, test_redis_port(), PDF_RPC,
	                   "127.0.0.1:29295", 2) != CM_OK)
		return -1;

	test_fixture_config(&common, "tcp://127.0.0.1:27296", "127.0.0.1:29296");
	test_qgen_config(&qc, PDF_RPC);
	qc.parallel = 6;        /* 10 questions: 5 calls of 2, and a free slot for a spare */
	qc.cache_ttl_s = 0;     /* every set is made, none read from the cache */
	qc.hedge_max_extra = 0; /* no duplicates: the spare alone stands in for the slow call */
	qc.spare_pct = 25;
	qc.stream = true;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, 4, nonce);
	snprintf(schema, sizeof(schema), "qgen_st_%s", nonce);
	if (test_qgen_start(&qg, &common, schema, &qc) != CM_OK || qg.svc.llm == NULL)
		return -1;

	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(user, sizeof(user), "stream-%s", nonce);
	cm_buf_init(&b, 1u << 20);
	/* a document of this run's own */
	if (cran_manual_pdf(nonce, &b) != CM_OK ||
	    test_pdf_upload(&psvc, user, "SuppDists.pdf", b.data, b.len, doc_id, NULL) != CM_OK)
		return -1;
	cm_buf_fini(&b);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	test_qgen_stop(&qg);
	(void)test_fake_stop(fake_pid);
	return test_pdf_stop(&psvc);
}

/* ---- a set ----------------------------------------------------------------------------------- */

static void
create(int count, char *job, char *set)
{
	Qgen__CreateRequest   rq = QGEN__CREATE_REQUEST__INIT;
	Qgen__CreateResponse *rs = NULL;
	char                 *types[1] = {(char *)"mcq"};
	char                  topic[48], r[4], hex[9];
	test_call             c;

	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), hex);
	rq.document_id = doc_id;
	rq.count = count;
	rq.types = types;
	rq.n_types = 1;
	rq.difficulty = (char *)"easy";
	snprintf(topic, sizeof(topic), "stream %s", hex);
	rq.topic = topic;
	assert_int_equal(test_invoke(&c, qg.w, qgen_handle_create, user, &rq,
	                             &qgen__create_response__descriptor, (void **)&rs),
	                 CM_OK);
	snprintf(job, 40, "%s", rs->job_id);
	snprintf(set, 40, "%s", rs->question_set_id);
	cm_arena_fini(&c.arena);
}

/* Runs the queued job to its end (the runner drains its calls before it returns). */
static void
run_until_done(const char *job)
{
	assert_int_equal(test_qgen_run_until_done(&qg, job, RUN_TIMEOUT_MS, NULL), CM_OK);
}

/* The set must be succeeded with exactly count distinct questions. */
static void
expect_set(const char *set, int count)
{
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__QuestionSet  *qs = NULL;
	test_call           c;

	rq.id = (char *)set;
	rq.include_answers = true;
	assert_int_equal(test_invoke(&c, qg.w, qgen_handle_get_set, user, &rq,
	                             &qgen__question_set__descriptor, (void **)&qs),
	                 CM_OK);
	assert_string_equal(qs->status, "succeeded");
	assert_int_equal(qs->n_questions, (size_t)count);
	for (size_t i = 0; i < qs->n_questions; i++) {
		assert_int_equal(qs->questions[i]->n_options, 4);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(qs->questions[i]->text, qs->questions[k]->text);
	}
	cm_arena_fini(&c.arena);
}

/* svc-qgen's metric line `name` (with labels), 0 when absent. */
static long long
metric(const char *name)
{
	long long v = test_metric(qg.metrics, name);

	return v < 0 ? 0 : v;
}

static void
test_full_set_cancels_the_calls_still_writing(void **state)
{
	char      job[40], set[40], body[200];
	long long cut0 = metric("qgen_streams_cancelled_total");
	long long extra0 = metric("qgen_extra_tokens_total");
	int64_t   t0, took;

	(void)state;
	assert_true(fake("POST", "/_reset", "{\"config\":true}", NULL));
	/* About 0.6 s a call of two questions, written word by word; the first call the fake
	 * answers takes 30 times as long: it starts writing after 150 ms and is still at it
	 * when the rest of the set is in. */
	snprintf(body, sizeof(body),
	         "{\"ttft_ms\":5,\"tokens_per_s\":300,\"slow_next\":1,\"slow_factor\":%d}",
	         SLOW_FACTOR);
	assert_true(fake("POST", "/_control", body, NULL));
	create(COUNT, job, set);
	t0 = cm_mono_ms();
	run_until_done(job);
	took = cm_mono_ms() - t0;
	expect_set(set, COUNT);
	print_message("set of %d in %lld ms (draining included); fake: %ld calls, %ld streams; "
	              "%lld streams cut, %lld extra tokens\n",
	              COUNT, (long long)took, fake_stat("calls"), fake_stat("streams"),
	              metric("qgen_streams_cancelled_total") - cut0,
	              metric("qgen_extra_tokens_total") - extra0);
	/* The slow call alone would have taken about 18 s. */
	assert_true(took < 8000);
	assert_int_equal(fake_stat("calls"), 6); /* 5 calls of 2 and the spare, nothing more */
	assert_int_equal(fake_stat("streams"), 6);
	assert_true(metric("qgen_streams_cancelled_total") - cut0 >= 1);
	assert_true(metric("qgen_extra_tokens_total") - extra0 > 0);
}

static void
test_ungrounded_questions_are_topped_up(void **state)
{
	char      job[40], set[40];
	long long ung0 = metric("qgen_questions_rejected_total{reason=\"ungrounded\"}");

	(void)state;
	assert_true(fake("POST", "/_reset", "{\"config\":true}", NULL));
	assert_true(fake("POST", "/_control",
	                 "{\"ttft_ms\":20,\"tokens_per_s\":300,\"ungrounded_next\":4}", NULL));
	create(COUNT, job, set);
	run_until_done(job);
	expect_set(set, COUNT);
	assert_int_equal(metric("qgen_questions_rejected_total{reason=\"ungrounded\"}") - ung0, 4);
}

static void
test_whole_answers_without_streaming(void **state)
{
	char job[40], set[40];

	(void)state;
	assert_true(fake("POST", "/_reset", "{\"config\":true}", NULL));
	assert_true(fake("POST", "/_control", "{\"ttft_ms\":20,\"tokens_per_s\":300}", NULL));
	qg.svc.cfg.stream = false;
	create(COUNT, job, set);
	run_until_done(job);
	qg.svc.cfg.stream = true;
	expect_set(set, COUNT);
	assert_true(fake_stat("calls") >= 5);
	assert_int_equal(fake_stat("streams"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_set_cancels_the_calls_still_writing),
	    cmocka_unit_test(test_ungrounded_questions_are_topped_up),
	    cmocka_unit_test(test_whole_answers_without_streaming),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
