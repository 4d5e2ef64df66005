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
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "cm/service.h"
#include "cran_manual.h"
#include "worker_helper.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/server.h"
#include "../../svc-pdf/testpdf.h"
#include "../../svc-qgen/handlers.h"
#include "../../svc-qgen/server.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"

#define PDF_RPC "tcp://127.0.0.1:27295"
#define FAKE_PORT "28522"
#define FAKE_URL "http://127.0.0.1:" FAKE_PORT
#define COUNT 10
#define SLOW_FACTOR 30 /* the slow call: about 30 x 0.6 s */

static cm_service      *psrv;
static pdf_worker      *pw;
static cm_pg           *pw_pg;
static cm_redis        *pw_redis;
static qgen_service     qsvc;
static qgen_worker     *qw;
static cm_service_conns qw_conns;
static cm_metrics      *qm;
static pid_t            fake_pid = -1;
static char             datadir[64], doc_id[40], user[48], schema[40];

/* ---- the fake LLM -------------------------------------------------------------------------- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return cm_buf_append(arg, p, size * n) == CM_OK ? size * n : 0;
}

static bool
fake(const char *method, const char *path, const char *body, cm_buf *out)
{
	CURL  *c = curl_easy_init();
	cm_buf b;
	char   url[128];
	long   status = 0;
	bool   ok;

	cm_buf_init(&b, 1u << 20);
	snprintf(url, sizeof(url), "%s%s", FAKE_URL, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out != NULL ? out : &b);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "{}");
	ok = curl_easy_perform(c) == CURLE_OK &&
	     curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	return ok;
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

static bool
start_fake(void)
{
	char        script[512];
	const char *harness = getenv("CM_TEST_HARNESS");

	if (harness == NULL || fake("GET", "/healthz", NULL, NULL))
		return false; /* not under ctest, or the port is taken */
	snprintf(script, sizeof(script), "%s/../fakellm/fakellm.py", harness);
	if ((fake_pid = fork()) == 0) {
		execlp("python3", "python3", script, "--port", FAKE_PORT, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		if (fake("GET", "/healthz", NULL, NULL))
			return true;
		usleep(100000);
	}
	return false;
}

/* ---- the services -------------------------------------------------------------------------- */

typedef struct call {
	cm_arena   arena;
	cm_rpc_ctx ctx;
} call;

static cm_err
invoke(call *c, void *w, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	cm_arena_init(&c->arena);
	memset(&c->ctx, 0, sizeof(c->ctx));
	c->ctx.method = "test";
	c->ctx.request_id = "";
	c->ctx.subject = subject;
	c->ctx.session_id = "";
	c->ctx.client_addr = "";
	c->ctx.deadline_ms = cm_now_ms() + 30000;
	c->ctx.worker_state = w;
	c->ctx.arena = &c->arena;
	*resp = cm_arena_alloc(&c->arena, d->sizeof_message);
	d->message_init(*resp);
	return fn(&c->ctx, req, *resp);
}

static cm_err
upload(const char *subject, const char *filename, const void *pdf, size_t len, char *doc)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	call                 c;
	cm_err               err;

	rq.filename = (char *)filename;
	rq.content.data = (uint8_t *)pdf;
	rq.content.len = len;
	err = invoke(&c, pw, pdf_handle_upload, subject, &rq, &pdf__upload_response__descriptor,
	             (void **)&rs);
	if (err == CM_OK)
		snprintf(doc, 40, "%s", rs->document->id);
	cm_arena_fini(&c.arena);
	return err;
}

static int
setup(void **state)
{
	static char       pages[CRAN_MANUAL_PAGES][2048];
	const char       *pv[CRAN_MANUAL_PAGES];
	qgen_config       qc;
	cm_service_config common;
	cm_jobs_options   jo;
	void             *qst = NULL;
	pdf_service      *papp = NULL;
	const char       *db_url = getenv("CM_TEST_PG");
	pdf_testpdf       o;
	cm_buf            b;
	char              nonce[17], r[8], redis_port[8];
	cm_pg            *pg = NULL;
	cm_migration      migs[16];
	size_t            n = qgen_migrations_all(migs, 16);

	(void)state;
	cm_log_init("qgen-stream-test", CM_LOG_WARN);
	if (!start_fake()) {
		fprintf(stderr, "fakellm did not start on %s\n", FAKE_PORT);
		return -1;
	}
	unsetenv("LLM_PROVIDERS");
	setenv("LLM_BASE_URL", FAKE_URL "/v1", 1);
	setenv("LLM_MODEL", "fake", 1);
	setenv("LLM_MAX_CONCURRENCY", "8", 1);
	setenv("LLM_BACKOFF_BASE_MS", "20", 1);
	snprintf(redis_port, sizeof(redis_port), "%s",
	         getenv("CM_TEST_REDIS_PORT") != NULL ? getenv("CM_TEST_REDIS_PORT") : "26379");
	snprintf(datadir, sizeof(datadir), "/tmp/qgen-stest-XXXXXX");
	if (db_url == NULL || mkdtemp(datadir) == NULL)
		return -1;
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db_url, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", redis_port, 1);
	setenv("PDF_RPC_URL", PDF_RPC, 1);
	setenv("PDF_ADMIN_ADDR", "127.0.0.1:29295", 1);
	setenv("PDF_WORKERS", "2", 1);
	setenv("PDF_DATA_DIR", datadir, 1);
	if (cm_service_start(&pdf_service_def, &psrv, (void **)&papp) != CM_OK ||
	    cm_pg_open(&pw_pg, db_url, PDF_SCHEMA) != CM_OK ||
	    cm_redis_open(&pw_redis, "", 0, CM_REDIS_TIMEOUT_MS) != CM_OK ||
	    pdf_worker_alloc(papp, pw_pg, pw_redis, &pw) != CM_OK)
		return -1;

	memset(&common, 0, sizeof(common));
	common.log_level = "warn";
	common.database_url = db_url;
	common.redis_host = "127.0.0.1";
	(void)cm_parse_i64(redis_port, &common.redis_port);
	common.rpc_url = "tcp://127.0.0.1:27296";
	common.admin_addr = "127.0.0.1:29296";
	common.workers = 1;
	memset(&qc, 0, sizeof(qc));
	qc.events_url = "";
	qc.pdf_urls = PDF_RPC;
	qc.runners = 1;
	qc.parallel = 6; /* 10 questions: 5 calls of 2, and a free slot for a spare */
	qc.per_call = 5;
	qc.max_rounds = 4;
	qc.lease_ms = 15000;
	qc.cache_ttl_s = 0; /* every set is made, none read from the cache */
	qc.poll_ms = 100;
	qc.hedge_max_extra = 0; /* no duplicates: the spare alone stands in for the slow call */
	qc.spare_pct = 25;
	qc.stream = true;
	qc.ground_min_overlap = 60;
	qc.ground_window = 2;
	qc.ground_ambiguous = true;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, 4, nonce);
	snprintf(schema, sizeof(schema), "qgen_st_%s", nonce);
	if (cm_pg_open(&pg, db_url, schema) != CM_OK ||
	    cm_pg_migrate_up(pg, schema, migs, n) != CM_OK)
		return -1;
	cm_pg_close(pg);
	if ((qm = cm_metrics_alloc("qgen_")) == NULL ||
	    qgen_service_init(&qsvc, &common, schema, &qc, qm) != CM_OK || qsvc.llm == NULL)
		return -1;
	qgen_jobs_options(&qsvc, &jo);
	if (test_worker_open(&common, schema, &jo, qgen_worker_init, &qsvc, &qw_conns, &qst) !=
	    CM_OK)
		return -1;
	qw = qst;

	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	snprintf(user, sizeof(user), "stream-%s", nonce);
	for (size_t i = 0; i < CRAN_MANUAL_PAGES; i++) {
		cran_wrap(cran_manual[i], pages[i], sizeof(pages[i]));
		pv[i] = pages[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = (int)CRAN_MANUAL_PAGES;
	o.pages = pv;
	o.title = nonce; /* a document of this run's own */
	cm_buf_init(&b, 1u << 20);
	if (pdf_testpdf_build(&o, &b) != CM_OK ||
	    upload(user, "SuppDists.pdf", b.data, b.len, doc_id) != CM_OK)
		return -1;
	cm_buf_fini(&b);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	test_worker_close(qgen_worker_fini, &qsvc, qw, &qw_conns);
	qgen_service_fini(&qsvc);
	{
		cm_migration migs[16];
		test_schema_drop(schema, migs, qgen_migrations_all(migs, 16));
	}
	pdf_worker_free(pw);
	cm_redis_close(pw_redis);
	cm_pg_close(pw_pg);
	cm_service_stop(psrv);
	cm_metrics_free(qm);
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- a set ----------------------------------------------------------------------------------- */

static void
create(int count, char *job, char *set)
{
	Qgen__CreateRequest   rq = QGEN__CREATE_REQUEST__INIT;
	Qgen__CreateResponse *rs = NULL;
	char                 *types[1] = {(char *)"mcq"};
	char                  topic[48], r[4], hex[9];
	call                  c;

	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), hex);
	rq.document_id = doc_id;
	rq.count = count;
	rq.types = types;
	rq.n_types = 1;
	rq.difficulty = (char *)"easy";
	snprintf(topic, sizeof(topic), "stream %s", hex);
	rq.topic = topic;
	assert_int_equal(invoke(&c, qw, qgen_handle_create, user, &rq,
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
	for (int i = 0; i < 100; i++) {
		cm_jobs_info info;
		bool         ran = false;
		assert_int_equal(cm_jobs_get(qw->jobs, job, NULL, &info), CM_OK);
		if (info.status != CM_JOB_QUEUED && info.status != CM_JOB_RUNNING)
			return;
		assert_int_equal(qgen_runner_run_one(&qsvc, qw, &ran), CM_OK);
		if (!ran)
			usleep(50 * 1000);
	}
	fail_msg("job %s did not end", job);
}

/* The set must be succeeded with exactly count distinct questions. */
static void
expect_set(const char *set, int count)
{
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__QuestionSet  *qs = NULL;
	call                c;

	rq.id = (char *)set;
	rq.include_answers = true;
	assert_int_equal(invoke(&c, qw, qgen_handle_get_set, user, &rq,
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

/* svc-qgen's metric line `name` (with labels), -1 when absent. */
static long long
metric(const char *name)
{
	cm_buf      b;
	long long   v = -1;
	const char *p;

	cm_buf_init(&b, 1u << 20);
	if (cm_metrics_render(qm, &b) == CM_OK && b.data != NULL) {
		for (p = b.data; (p = strstr(p, name)) != NULL; p += strlen(name))
			if ((p == b.data || p[-1] == '\n') && p[strlen(name)] == ' ') {
				v = strtoll(p + strlen(name) + 1, NULL, 10);
				break;
			}
	}
	cm_buf_fini(&b);
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
	qsvc.cfg.stream = false;
	create(COUNT, job, set);
	run_until_done(job);
	qsvc.cfg.stream = true;
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
