/*
 * test_qgen.c - question generation end to end: edge -> svc-qgen (two replicas) -> svc-pdf and
 * the fake LLM (test/fakellm on 127.0.0.1:28500, steered through /_control).
 *
 * The document is a real ~100-page PDF (test/data/gen_test_pdfs.sh real: the bash manual or
 * the licence texts, typeset). Covered: the v1 flow (202, job progress, exactly `count` valid
 * questions, answers hidden unless asked, exports), the cache, the legacy synchronous route in
 * both modes parsed the way the frontend parses it, bad input, other users' ids, the model
 * failing in every way the fake can (429 storms, 5xx, prose and fences around JSON, malformed
 * JSON, total failure), cancellation stopping the calls, a replica SIGKILLed mid-job (the
 * fake's counters prove stored batches are not paid for again), Redis down, and a provider whose
 * quota is exhausted, and answers the model took from another page (dropped and replaced). Tests
 * that stop a server, or leave state behind (the provider set aside), restore it in their teardown,
 * whether they passed or not.
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
#include "ws_client.h"

#define FAKE "http://127.0.0.1:28500"
#define CSV_HEAD "#separator:comma\r\n#html:false\r\n#tags column:3\r\n#columns:"

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
static char              user_a[4200], user_b[4200];
static char              doc_a[64], doc_short[64], pdf_path[512];

/* ---- helpers --------------------------------------------------------------------------------- */

/* A request to the fake LLM itself; returns the parsed JSON answer or NULL (http_client.h). */
static json_t *
fake(const char *method, const char *path, const char *body)
{
	return http_fake(FAKE, method, path, body);
}

static void
fake_set(const char *settings)
{
	json_t *v = fake("POST", "/_control", settings);

	assert_non_null(v);
	if (json_object_get(v, "error") != NULL)
		fail_msg("the fake refused %s", settings);
	json_decref(v);
}

static void
fake_reset(void)
{
	json_t *v = fake("POST", "/_reset", "{\"config\":true}");

	assert_non_null(v);
	json_decref(v);
}

static long
fake_calls(void)
{
	json_t *v = fake("GET", "/_stats", NULL);
	long    n;

	assert_non_null(v);
	n = (long)json_integer_value(json_object_get(v, "calls"));
	json_decref(v);
	return n;
}

/* The fake's counters: calls it admitted (every call but the 429s, when no other fault is set:
 * what a provider charges for) and calls in flight now. */
static void
fake_counts(long *paid, long *inflight)
{
	json_t *v = fake("GET", "/_stats", NULL);

	assert_non_null(v);
	*paid = (long)json_integer_value(json_object_get(v, "calls")) -
	        (long)json_integer_value(json_object_get(json_object_get(v, "by_status"), "429"));
	*inflight = (long)json_integer_value(json_object_get(v, "inflight"));
	json_decref(v);
}

/* An integer from the environment the stack was started with, or def. */
static long
env_long(const char *name, long def)
{
	const char *v = getenv(name);
	int64_t     n;

	return v != NULL && cm_parse_i64(v, &n) ? (long)n : def;
}

static void
harness(const char *script, const char *cmd, const char *extra)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s/%s %s %s %s %s", getenv("CM_TEST_HARNESS"), script, cmd,
	         getenv("CM_TEST_STATE"),
	         strcmp(script, "stack.sh") == 0 ? getenv("CM_TEST_BIN") : "",
	         extra != NULL ? extra : "");
	assert_int_equal(system(line), 0);
}

static void
login_new_user(char *bearer, size_t n)
{
	char      body[256], id[37];
	http_resp r;

	cm_uuid_v4(id);
	snprintf(body, sizeof(body), "{\"email\":\"q-%s@example.com\",\"password\":\"questions!\"}",
	         id);
	assert_int_equal(http_do("POST", "/api/v1/auth/register", json_hdr, body, strlen(body), &r),
	                 0);
	assert_int_equal(r.status, 201);
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/v1/auth/login", json_hdr, body, strlen(body), &r),
	                 0);
	assert_int_equal(r.status, 200);
	snprintf(bearer, n, "Authorization: Bearer %s", js(r.json, "access_token"));
	http_resp_free(&r);
}

static long
call(const char *auth, const char *method, const char *path, const char *body, http_resp *r)
{
	const char *h[] = {auth, "Content-Type: application/json", NULL};

	assert_int_equal(http_do(method, path, h, body, body != NULL ? strlen(body) : 0, r), 0);
	return r->status;
}

/* Uploads a file's bytes as user auth; the document id goes to id. */
static void
upload(const char *auth, const char *data, size_t len, const char *name, char *id, size_t idlen)
{
	const char *h[] = {auth, "Content-Type: application/pdf", NULL};
	char        path[256];
	http_resp   r;

	snprintf(path, sizeof(path), "/api/v1/documents?filename=%s", name);
	assert_int_equal(http_do("POST", path, h, data, len, &r), 0);
	assert_int_equal(r.status, 201); /* every user here is new: never a re-upload */
	snprintf(id, idlen, "%s", js(r.json, "id"));
	http_resp_free(&r);
}

/* A one-page PDF whose text is `text` (for the too-short document). */
static void
tiny_pdf(cm_buf *b, const char *text)
{
	size_t off[6];
	size_t xref;
	char   content[256];
	int    n = snprintf(content, sizeof(content), "BT /F1 12 Tf 72 720 Td (%s) Tj ET", text);

	cm_buf_init(b, 1u << 20);
	assert_int_equal(cm_buf_appends(b, "%PDF-1.4\n"), CM_OK);
	off[1] = b->len;
	assert_int_equal(cm_buf_appends(b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"),
	                 CM_OK);
	off[2] = b->len;
	assert_int_equal(
	    cm_buf_appends(b, "2 0 obj << /Type /Pages /Count 1 /Kids [3 0 R] >> endobj\n"), CM_OK);
	off[3] = b->len;
	assert_int_equal(
	    cm_buf_appends(b, "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
	                      " /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
	                      " endobj\n"),
	    CM_OK);
	off[4] = b->len;
	assert_int_equal(
	    cm_buf_appends(b, "4 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica"
	                      " >> endobj\n"),
	    CM_OK);
	off[5] = b->len;
	assert_int_equal(
	    cm_buf_printf(b, "5 0 obj << /Length %d >> stream\n%s\nendstream endobj\n", n, content),
	    CM_OK);
	xref = b->len;
	assert_int_equal(cm_buf_appends(b, "xref\n0 6\n0000000000 65535 f \n"), CM_OK);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(cm_buf_printf(b, "%010zu 00000 n \n", off[i]), CM_OK);
	assert_int_equal(
	    cm_buf_printf(b, "trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref),
	    CM_OK);
}

/* Waits for a job to end; checks progress never goes back. Returns the final status. */
static void
wait_job(const char *auth, const char *job_id, char *status, size_t slen, int timeout_s)
{
	char    path[128];
	int64_t until = cm_mono_ms() + timeout_s * 1000;
	long    last_done = -1;

	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job_id);
	status[0] = '\0';
	while (cm_mono_ms() < until) {
		http_resp r;
		json_t   *p;
		long      done;
		assert_int_equal(call(auth, "GET", path, NULL, &r), 200);
		p = json_object_get(r.json, "progress");
		done = (long)json_integer_value(json_object_get(p, "done"));
		assert_true(done >= last_done); /* monotonic */
		last_done = done;
		snprintf(status, slen, "%s", js(r.json, "status"));
		http_resp_free(&r);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			return;
		usleep(50 * 1000);
	}
	fail_msg("job %s did not finish in %d s (last status %s)", job_id, timeout_s, status);
}

/* A job's progress.done now. */
static long
job_done(const char *auth, const char *job_id)
{
	char      path[128];
	http_resp r;
	long      done;

	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job_id);
	assert_int_equal(call(auth, "GET", path, NULL, &r), 200);
	done =
	    (long)json_integer_value(json_object_get(json_object_get(r.json, "progress"), "done"));
	http_resp_free(&r);
	return done;
}

/* Starts a set; returns the HTTP status, job and set ids. */
static long
create_set(const char *auth, const char *doc, const char *body, char *job, char *set)
{
	char      path[160];
	http_resp r;
	long      s;

	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets", doc);
	s = call(auth, "POST", path, body, &r);
	if (job != NULL)
		snprintf(job, 64, "%s", s == 202 ? js(r.json, "job_id") : "");
	if (set != NULL)
		snprintf(set, 64, "%s",
		         s == 202 ? js(r.json, "question_set_id") : js(r.json, "id"));
	http_resp_free(&r);
	return s;
}

/* Checks a v1 set with answers: exactly n questions, 4 distinct options, answers in range and
 * spread over the letters, no repeated text. */
static void
check_set(const json_t *set, int n)
{
	json_t *qs = json_object_get(set, "questions");
	int     letters[4] = {0}, mcq = 0;

	assert_int_equal(json_array_size(qs), (size_t)n);
	for (size_t i = 0; i < json_array_size(qs); i++) {
		json_t     *q = json_array_get(qs, i), *opts = json_object_get(q, "options");
		const char *text = js(q, "text");
		assert_true(strlen(text) >= 10);
		assert_true(cm_uuid_valid(js(q, "id")));
		assert_true(
		    json_integer_value(json_object_get(json_object_get(q, "source"), "page")) >= 1);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(text, js(json_array_get(qs, k), "text"));
		if (strcmp(js(q, "type"), "mcq") != 0)
			continue;
		assert_int_equal(json_array_size(opts), 4);
		for (size_t a = 0; a < 4; a++)
			for (size_t b = a + 1; b < 4; b++)
				assert_string_not_equal(json_string_value(json_array_get(opts, a)),
				                        json_string_value(json_array_get(opts, b)));
		json_int_t ans = json_integer_value(json_object_get(q, "answer"));
		assert_true(ans >= 0 && ans <= 3);
		letters[ans]++;
		mcq++;
	}
	if (mcq >= 8)
		for (int l = 0; l < 4; l++)
			assert_true(letters[l] >= mcq / 4 - 1); /* not "all B" */
}

static json_t *
get_set(const char *auth, const char *set, bool answers)
{
	char      path[160];
	http_resp r;
	json_t   *v;

	snprintf(path, sizeof(path), "/api/v1/question-sets/%s%s", set,
	         answers ? "?include_answers=true" : "");
	assert_int_equal(call(auth, "GET", path, NULL, &r), 200);
	v = json_incref(r.json);
	http_resp_free(&r);
	return v;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	char   path[512], cmd[1200];
	char  *pdf;
	FILE  *f;
	long   len;
	cm_buf tiny;

	(void)state;
	login_new_user(user_a, sizeof(user_a));
	login_new_user(user_b, sizeof(user_b));
	snprintf(path, sizeof(path), "%s/qgen-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(pdf_path, sizeof(pdf_path), "%s", path);
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	if (access(path, R_OK) != 0 && system(cmd) != 0)
		return -1;
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	pdf = malloc((size_t)len);
	if (pdf == NULL || fread(pdf, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		free(pdf);
		return -1;
	}
	fclose(f);
	upload(user_a, pdf, (size_t)len, "manual.pdf", doc_a, sizeof(doc_a));
	free(pdf);
	tiny_pdf(&tiny, "Three words only");
	upload(user_a, tiny.data, tiny.len, "tiny.pdf", doc_short, sizeof(doc_short));
	cm_buf_fini(&tiny);
	fake_reset();
	return 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* 25 quiz questions from the ~100-page document, then the same request from the cache. */
static void
test_v1_generate_and_cache(void **state)
{
	char        job[64], set[64], status[32];
	json_t     *v;
	http_resp   r;
	const char *body = "{\"count\":25,\"types\":[\"mcq\"],\"difficulty\":\"medium\"}";

	(void)state;
	fake_reset();
	assert_int_equal(create_set(user_a, doc_a, body, job, set), 202);
	assert_true(cm_uuid_valid(job) && cm_uuid_valid(set));
	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
	/* 25 questions over 8 calls in parallel: 4 per call (one wave), 7 calls when every answer
	 * is good. */
	assert_int_equal(fake_calls(), 7);

	v = get_set(user_a, set, true);
	assert_string_equal(js(v, "status"), "succeeded");
	check_set(v, 25);
	json_decref(v);
	/* Without include_answers the key stays hidden. */
	v = get_set(user_a, set, false);
	assert_null(json_object_get(json_array_get(json_object_get(v, "questions"), 0), "answer"));
	json_decref(v);

	/* The same request again: 200 from the cache, no model call. */
	long before = fake_calls();
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets?include_answers=true",
	         doc_a);
	assert_int_equal(call(user_a, "POST", path, body, &r), 200);
	assert_true(json_is_true(json_object_get(r.json, "cached")));
	check_set(r.json, 25);
	assert_string_not_equal(js(r.json, "id"), set);
	http_resp_free(&r);
	assert_int_equal(fake_calls(), before);

	/* The job resource after the end. */
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_string_equal(js(r.json, "kind"), "qgen");
	assert_string_equal(js(r.json, "result_id"), set);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(r.json, "progress"), "done")), 25);
	http_resp_free(&r);
	/* A finished job cannot be cancelled: 422 (FAILED_PRECONDITION). */
	assert_int_equal(call(user_a, "DELETE", path, NULL, &r), 422);
	http_resp_free(&r);

	/* Exports: svc-qgen renders, the edge relays the type and the file name. */
	char hdr[256], want[160];
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=gift", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_non_null(strstr(r.body, "::Q1::"));
	assert_string_equal(http_header(&r, "Content-Type", hdr, sizeof(hdr)),
	                    "text/plain; charset=utf-8");
	snprintf(want, sizeof(want), "attachment; filename=\"questions-%s.txt\"", set);
	assert_string_equal(http_header(&r, "Content-Disposition", hdr, sizeof(hdr)), want);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=CSV", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_int_equal(strncmp(r.body, CSV_HEAD, strlen(CSV_HEAD)), 0);
	assert_string_equal(http_header(&r, "Content-Type", hdr, sizeof(hdr)),
	                    "text/csv; charset=utf-8");
	snprintf(want, sizeof(want), "attachment; filename=\"questions-%s.csv\"", set);
	assert_string_equal(http_header(&r, "Content-Disposition", hdr, sizeof(hdr)), want);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=qti", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_true(r.len > 4 && memcmp(r.body, "PK\x03\x04", 4) == 0);
	assert_string_equal(http_header(&r, "Content-Type", hdr, sizeof(hdr)), "application/zip");
	snprintf(want, sizeof(want), "attachment; filename=\"questions-%s.zip\"", set);
	assert_string_equal(http_header(&r, "Content-Disposition", hdr, sizeof(hdr)), want);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=docx", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 400);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 400);
	http_resp_free(&r);
	assert_int_equal(
	    call(user_a, "GET", "/api/v1/question-sets/not-a-uuid/export?format=gift", NULL, &r),
	    404);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=gift", set);
	assert_int_equal(call(user_b, "GET", path, NULL, &r), 404);
	http_resp_free(&r);

	/* Someone else's set, job and export are not found. */
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set);
	assert_int_equal(call(user_b, "GET", path, NULL, &r), 404);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	assert_int_equal(call(user_b, "GET", path, NULL, &r), 404);
	http_resp_free(&r);
	assert_int_equal(call(user_b, "DELETE", path, NULL, &r), 404);
	http_resp_free(&r);
}

static size_t
sink(char *p, size_t size, size_t n, void *arg)
{
	cm_buf *b = arg;

	return cm_buf_append(b, p, size * n) == CM_OK ? size * n : 0;
}

/* qgen_questions_rejected_total{reason="<reason>"} summed over both svc-qgen replicas (admin
 * ports of stack.sh); fails when one does not answer. */
static long
rejected_total(const char *reason)
{
	static const char *const admins[] = {"http://127.0.0.1:29104/metrics",
	                                     "http://127.0.0.1:29114/metrics"};
	char                     name[128];
	long                     sum = 0;

	snprintf(name, sizeof(name), "\nqgen_questions_rejected_total{reason=\"%s\"} ", reason);
	for (size_t i = 0; i < 2; i++) {
		CURL       *c = curl_easy_init();
		cm_buf      b;
		const char *line;

		cm_buf_init(&b, 1u << 20);
		assert_non_null(c);
		curl_easy_setopt(c, CURLOPT_URL, admins[i]);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
		assert_int_equal(curl_easy_perform(c), CURLE_OK);
		assert_int_equal(cm_buf_append(&b, "", 1), CM_OK);
		line = strstr(b.data, name);
		assert_non_null(line);
		sum += strtol(line + strlen(name), NULL, 10);
		curl_easy_cleanup(c);
		cm_buf_fini(&b);
	}
	return sum;
}

/* Lower-case letters and digits of s, other runs as one space (for "does the quote hold it"). */
static void
words_of(const char *s, char *out, size_t n)
{
	size_t o = 0;
	bool   gap = false;

	for (; *s != '\0' && o + 2 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z')) {
			if (gap && o > 0)
				out[o++] = ' ';
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
			gap = false;
		} else {
			gap = true;
		}
	}
	out[o] = '\0';
}

/* The fake writes the first three answers from another page: exactly those three questions are
 * dropped as ungrounded (and nothing else is dropped), calls replace them, and the set has
 * exactly the count asked for, each question with the passage of its page that holds its
 * answer. */
static void
test_ungrounded_dropped_and_replaced(void **state)
{
	char        job[64], set[64], status[32], body[160], id[37], want[600], got[600];
	long        ungrounded0 = rejected_total("ungrounded");
	long        ambiguous0 = rejected_total("ambiguous_distractor");
	long        invalid0 = rejected_total("invalid");
	json_t     *v, *st, *items, *qs;
	const char *answer;

	(void)state;
	fake_reset();
	fake_set("{\"ungrounded_next\":3}");
	cm_uuid_v4(id); /* a topic of this run's: never answered from the cache */
	snprintf(body, sizeof(body), "{\"count\":10,\"types\":[\"mcq\"],\"topic\":\"ground %.8s\"}",
	         id);
	assert_int_equal(create_set(user_a, doc_a, body, job, set), 202);
	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");

	st = fake("GET", "/_stats", NULL);
	assert_non_null(st);
	assert_int_equal(json_integer_value(json_object_get(st, "ungrounded")), 3);
	items = json_object_get(st, "ungrounded_items");
	assert_int_equal(json_array_size(items), 3);
	assert_int_equal(rejected_total("ungrounded") - ungrounded0, 3);
	assert_int_equal(rejected_total("ambiguous_distractor") - ambiguous0, 0);
	assert_int_equal(rejected_total("invalid") - invalid0, 0);

	v = get_set(user_a, set, true);
	check_set(v, 10);
	qs = json_object_get(v, "questions");
	for (size_t i = 0; i < json_array_size(qs); i++) {
		json_t     *q = json_array_get(qs, i);
		json_t     *src = json_object_get(q, "source");
		const char *quote = js(src, "quote");

		answer = json_string_value(
		    json_array_get(json_object_get(q, "options"),
		                   (size_t)json_integer_value(json_object_get(q, "answer"))));
		assert_non_null(answer);
		assert_true(strlen(quote) > 0 && strlen(quote) <= 300);
		words_of(answer, want, sizeof(want));
		words_of(quote, got, sizeof(got));
		assert_true(want[0] != '\0');
		if (strstr(got, want) == NULL)
			fail_msg("question %zu: answer \"%s\" not in its quote \"%s\"", i, answer,
			         quote);
		for (size_t k = 0; k < json_array_size(items); k++) {
			json_t *u = json_array_get(items, k);
			assert_false(strcmp(js(u, "question"), js(q, "text")) == 0 &&
			             strcmp(js(u, "answer"), answer) == 0);
		}
	}
	json_decref(v);
	/* Without include_answers the quote (which holds the answer) stays hidden too. */
	v = get_set(user_a, set, false);
	assert_null(json_object_get(
	    json_object_get(json_array_get(json_object_get(v, "questions"), 0), "source"),
	    "quote"));
	json_decref(v);
	json_decref(st);
}

/* Open and mixed sets, a topic, a page range. */
static void
test_v1_types_topic_pages(void **state)
{
	char    job[64], set[64], status[32];
	json_t *v, *qs;
	int     open = 0;

	(void)state;
	assert_int_equal(
	    create_set(user_a, doc_a,
	               "{\"count\":12,\"types\":[\"mcq\",\"open\"],\"difficulty\":\"hard\","
	               "\"topic\":\"shell variables\",\"pages\":[10,40]}",
	               job, set),
	    202);
	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
	v = get_set(user_a, set, true);
	check_set(v, 12);
	qs = json_object_get(v, "questions");
	for (size_t i = 0; i < json_array_size(qs); i++) {
		json_t    *q = json_array_get(qs, i);
		json_int_t page =
		    json_integer_value(json_object_get(json_object_get(q, "source"), "page"));
		assert_true(page >= 10 && page <= 40);
		assert_string_equal(js(q, "difficulty"), "hard");
		if (strcmp(js(q, "type"), "open") == 0) {
			open++;
			assert_true(strlen(js(q, "answer")) > 0); /* the reference answer */
		}
	}
	assert_true(open > 0 && open < 12);
	assert_string_equal(js(v, "topic"), "shell variables");
	json_decref(v);
}

static void
test_v1_bad_input(void **state)
{
	static const char *const bad[] = {"{\"count\":0}",
	                                  "{\"count\":201}",
	                                  "{\"count\":\"ten\"}",
	                                  "{}",
	                                  "{\"count\":5,\"types\":[\"essay\"]}",
	                                  "{\"count\":5,\"types\":\"mcq\"}",
	                                  "{\"count\":5,\"difficulty\":\"extreme\"}",
	                                  "{\"count\":5,\"pages\":[5,2]}",
	                                  "{\"count\":5,\"pages\":[0,2]}",
	                                  "{\"count\":5,\"topic\":7}",
	                                  "{\"count\":5",
	                                  "[1,2]",
	                                  NULL};
	char                     path[160], big[600];
	http_resp                r;

	(void)state;
	for (int i = 0; bad[i] != NULL; i++) {
		assert_int_equal(create_set(user_a, doc_a, bad[i], NULL, NULL), 400);
	}
	/* svc-qgen is the validator: its rule reaches the client as it wrote it. */
	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets", doc_a);
	assert_int_equal(call(user_a, "POST", path, "{\"count\":201}", &r), 400);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "INVALID_ARGUMENT");
	assert_string_equal(js(json_object_get(r.json, "error"), "message"),
	                    "count must be an integer between 1 and 200");
	http_resp_free(&r);
	/* Pages past the end of the document. */
	assert_int_equal(create_set(user_a, doc_a, "{\"count\":5,\"pages\":[900,950]}", NULL, NULL),
	                 400);
	/* A topic too long. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char body[800];
	snprintf(body, sizeof(body), "{\"count\":5,\"topic\":\"%s\"}", big);
	assert_int_equal(create_set(user_a, doc_a, body, NULL, NULL), 400);
	/* Another user's document, an unknown one, a malformed id. */
	assert_int_equal(create_set(user_b, doc_a, "{\"count\":5}", NULL, NULL), 404);
	assert_int_equal(
	    create_set(user_a, "00000000-0000-4000-8000-000000000000", "{\"count\":5}", NULL, NULL),
	    404);
	assert_int_equal(create_set(user_a, "not-a-uuid", "{\"count\":5}", NULL, NULL), 404);
	/* A document of three words. */
	assert_int_equal(create_set(user_a, doc_short, "{\"count\":5}", NULL, NULL), 422);
	/* No credentials. */
	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets", doc_a);
	assert_int_equal(http_do("POST", path, json_hdr, "{\"count\":5}", 11, &r), 0);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
	assert_int_equal(
	    call(user_a, "GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000", NULL, &r),
	    404);
	http_resp_free(&r);
}

/* Parses QUESTIONS_STRING as the frontend does: first '{' to last '}', JSON.parse. */
static json_t *
frontend_parse(const char *s)
{
	const char *a = strchr(s, '{'), *b = strrchr(s, '}');

	assert_non_null(a);
	assert_non_null(b);
	return json_loadb(a, (size_t)(b - a + 1), 0, NULL);
}

static void
test_legacy_generate(void **state)
{
	const char *legacy_sel = "{\"filename\":\"manual.pdf\"}";
	http_resp   r;
	json_t     *doc, *qs;
	char        other[4200];

	(void)state;
	/* Without a selected PDF: 400. */
	login_new_user(other, sizeof(other));
	assert_int_equal(call(other, "POST", "/api/chat/generate-questions", "{\"count\":5}", &r),
	                 400);
	assert_non_null(json_object_get(r.json, "detail"));
	http_resp_free(&r);

	assert_int_equal(call(user_a, "POST", "/api/pdf/select", legacy_sel, &r), 200);
	http_resp_free(&r);
	/* Quiz: lettered options and a letter key. */
	assert_int_equal(call(user_a, "POST", "/api/chat/generate-questions",
	                      "{\"count\":25,\"mode\":\"quiz\",\"topic\":\"the shell\"}", &r),
	                 200);
	assert_non_null(json_object_get(r.json, "timestamp"));
	doc = frontend_parse(js(r.json, "response"));
	assert_non_null(doc);
	qs = json_object_get(doc, "questions");
	assert_int_equal(json_array_size(qs), 25);
	for (size_t i = 0; i < 25; i++) {
		json_t     *q = json_array_get(qs, i), *opts = json_object_get(q, "options");
		const char *key = js(q, "correctAnswer");
		assert_int_equal(json_array_size(opts), 4);
		for (size_t k = 0; k < 4; k++) {
			const char *o = json_string_value(json_array_get(opts, k));
			assert_int_equal(o[0], 'A' + (int)k);
			assert_int_equal(o[1], ')');
		}
		assert_true(strlen(key) == 1 && key[0] >= 'A' && key[0] <= 'D');
		assert_true(strlen(js(q, "question")) > 0);
	}
	json_decref(doc);
	http_resp_free(&r);

	/* Practice: plain strings. */
	assert_int_equal(call(user_a, "POST", "/api/chat/generate-questions", "{\"count\":6}", &r),
	                 200);
	doc = frontend_parse(js(r.json, "response"));
	qs = json_object_get(doc, "questions");
	assert_int_equal(json_array_size(qs), 6);
	for (size_t i = 0; i < 6; i++)
		assert_true(json_is_string(json_array_get(qs, i)));
	json_decref(doc);
	http_resp_free(&r);

	/* Bad count: 400 in the legacy shape. */
	assert_int_equal(call(user_a, "POST", "/api/chat/generate-questions", "{\"count\":0}", &r),
	                 400);
	assert_non_null(json_object_get(r.json, "detail"));
	http_resp_free(&r);
}

/* The model misbehaving: 429 storms, 5xx, prose/fences around JSON, malformed JSON. The set still
 * ends with exactly `count` valid questions. */
static void
test_model_faults_recovered(void **state)
{
	static const char *const faults[] = {"{\"rate_limit_next\":8,\"retry_after_s\":0}",
	                                     "{\"fault_429_rate\":0.3,\"retry_after_s\":0}",
	                                     "{\"fail_rate\":0.3}",
	                                     "{\"prose_rate\":0.5,\"fence_rate\":0.5}",
	                                     "{\"malformed_rate\":0.3}",
	                                     NULL};
	char                     body[200], job[64], set[64], status[32];

	(void)state;
	for (int i = 0; faults[i] != NULL; i++) {
		json_t *v;
		fake_reset();
		fake_set(faults[i]);
		/* A different topic each time: the cache must not answer. */
		snprintf(body, sizeof(body), "{\"count\":15,\"topic\":\"fault %d\"}", i);
		assert_int_equal(create_set(user_a, doc_a, body, job, set), 202);
		wait_job(user_a, job, status, sizeof(status), 120);
		assert_string_equal(status, "succeeded");
		v = get_set(user_a, set, true);
		check_set(v, 15);
		json_decref(v);
	}
	fake_reset();
}

/* The model down for good: the job fails with a reason (no hang, no made-up questions); the legacy
 * route answers 503 with it. */
static void
test_model_down_fails_honestly(void **state)
{
	char      job[64], set[64], status[32], path[128];
	http_resp r;

	(void)state;
	fake_reset();
	fake_set("{\"fail_rate\":1.0}");
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":5,\"topic\":\"model down\"}", job, set), 202);
	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "failed");
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	assert_true(strlen(js(r.json, "error")) > 0);
	http_resp_free(&r);
	json_t *v = get_set(user_a, set, false);
	assert_string_equal(js(v, "status"), "failed");
	assert_int_equal(json_array_size(json_object_get(v, "questions")), 0);
	json_decref(v);

	assert_int_equal(call(user_a, "POST", "/api/chat/generate-questions",
	                      "{\"count\":5,\"mode\":\"quiz\",\"topic\":\"still down\"}", &r),
	                 503);
	assert_non_null(strstr(js(r.json, "detail"), "failed"));
	http_resp_free(&r);
	fake_reset();
}

/* Whether the edge reaches svc-qgen again (after replicas restarted: its dialers reconnect with a
 * back-off), polled for up to timeout_ms: an unknown job is 404 then, 503 before. */
static bool
edge_reaches_qgen(int timeout_ms)
{
	int64_t   until = cm_mono_ms() + timeout_ms;
	http_resp r;
	long      st;

	for (;;) {
		st = call(user_a, "GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000", NULL,
		          &r);
		http_resp_free(&r);
		if (st == 404 || cm_mono_ms() >= until)
			return st == 404;
		usleep(50 * 1000);
	}
}

/* Teardown: forgets the provider's set-aside, which lives in Redis and in each replica (up to
 * LLM_QUOTA_COOLDOWN_S, 2 s in the harness, plus Redis' TTL rounding): both replicas and Redis
 * start again, so whatever runs next (another run of this suite on the same stack) has the model
 * at once, without a sleep guessing how long the cool-down lasts. */
static int
clear_set_aside(void **state)
{
	char line[2048];

	(void)state;
	fake_reset();
	snprintf(line, sizeof(line),
	         "h=%s st=%s bin=%s && $h/stack.sh kill-qgen $st $bin 0 && "
	         "$h/stack.sh kill-qgen $st $bin 1 && $h/pgredis.sh stop-redis $st && "
	         "$h/pgredis.sh start-redis $st && $h/stack.sh start-qgen $st $bin 0 && "
	         "$h/stack.sh start-qgen $st $bin 1",
	         getenv("CM_TEST_HARNESS"), getenv("CM_TEST_STATE"), getenv("CM_TEST_BIN"));
	if (system(line) != 0)
		return -1;
	return edge_reaches_qgen(15000) ? 0 : -1;
}

/* Quota exhausted: the job fails at once, without a retry storm. The provider is then set aside;
 * clear_set_aside undoes that. */
static void
test_quota_exhausted_fails_at_once(void **state)
{
	char job[64], set[64], status[32];

	(void)state;
	fake_reset();
	fake_set("{\"quota_exhausted\":true}");
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":20,\"topic\":\"no quota\"}", job, set), 202);
	wait_job(user_a, job, status, sizeof(status), 60);
	assert_string_equal(status, "failed");
	assert_true(fake_calls() <= 8); /* at most one refused call per call slot, none retried */
}

/* Which replica's log has a line with log id `id` about `job`, polled for up to timeout_ms; -1
 * when neither has one by then. */
static int
replica_logged(const char *id, const char *job, int timeout_ms)
{
	int64_t until = cm_mono_ms() + timeout_ms;

	for (;;) {
		for (int i = 0; i < 2; i++) {
			char cmd[700];
			snprintf(cmd, sizeof(cmd),
			         "grep -q -E '\"id\":\"%s\".*job %s: ' %s/logs/qgen%d.log", id, job,
			         getenv("CM_TEST_STATE"), i);
			if (system(cmd) == 0)
				return i;
		}
		if (cm_mono_ms() >= until)
			return -1;
		usleep(50 * 1000);
	}
}

/* DELETE /jobs/{id}: no model call starts once the cancel is seen. The fake takes 3 s per call,
 * so when the cancel comes every call slot is busy and none can free up before the runner sees
 * the cancel (it looks every 200 ms): no call may start after the DELETE at all. */
static void
test_cancel_stops_calls(void **state)
{
	char      job[64], set[64], status[32], path[128];
	http_resp r;
	long      wave, paid, inflight, at_cancel;
	int64_t   until;

	(void)state;
	/* Calls in flight for one job: QGEN_PARALLEL, bounded by the client's LLM_MAX_CONCURRENCY
	 * (test/harness/stack.sh; both 8 unless the environment says otherwise). */
	wave = env_long("QGEN_PARALLEL", 8);
	if (env_long("LLM_MAX_CONCURRENCY", 8) < wave)
		wave = env_long("LLM_MAX_CONCURRENCY", 8);
	fake_reset();
	fake_set("{\"ttft_ms\":3000}");
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":200,\"topic\":\"cancel me\"}", job, set), 202);
	until = cm_mono_ms() + 20000;
	do {
		fake_counts(&paid, &inflight);
		if (inflight < wave)
			usleep(20 * 1000);
	} while (inflight < wave && cm_mono_ms() < until);
	assert_int_equal(inflight, wave);
	at_cancel = fake_calls();
	assert_int_equal(at_cancel, wave); /* all in flight, none answered or refused yet */

	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	assert_int_equal(call(user_a, "DELETE", path, NULL, &r), 202);
	assert_string_equal(js(r.json, "status"), "cancelled");
	http_resp_free(&r);
	/* Settled: the runner saw the cancel, ended the job and cancelled its calls in flight
	 * (their transfers are aborted; the fake only notices when its 3 s are up). Once the fake
	 * has nothing in flight, no call started after the cancel. */
	assert_true(replica_logged("QGEN-JOB-END", job, 20000) >= 0);
	until = cm_mono_ms() + 10000;
	do {
		fake_counts(&paid, &inflight);
		if (inflight > 0)
			usleep(20 * 1000);
	} while (inflight > 0 && cm_mono_ms() < until);
	assert_int_equal(inflight, 0);
	assert_int_equal(fake_calls(), at_cancel);
	wait_job(user_a, job, status, sizeof(status), 10);
	assert_string_equal(status, "cancelled");
	/* A set that did not finish has nothing to export: 422 (FAILED_PRECONDITION). */
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=gift", set);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 422);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	/* Cancelling again is idempotent. */
	assert_int_equal(call(user_a, "DELETE", path, NULL, &r), 202);
	http_resp_free(&r);
	fake_reset();
}

static int killed_replica = -1; /* for the teardown */

/* Teardown: the replica a test killed runs again, whatever the test's outcome. */
static int
restart_killed_replica(void **state)
{
	char line[1024];
	int  rc;

	(void)state;
	if (killed_replica < 0)
		return 0;
	snprintf(line, sizeof(line), "%s/stack.sh start-qgen %s %s %d", getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"), getenv("CM_TEST_BIN"), killed_replica);
	rc = system(line);
	killed_replica = -1;
	fake_reset();
	return rc == 0 ? 0 : -1;
}

/* SIGKILL the replica running a job: the other takes it over after the lease, reloads the batches
 * stored before the kill and pays only for the rest; the set has exactly `count` distinct
 * questions. */
static void
test_replica_killed_mid_job(void **state)
{
	/* 60 questions in calls of q = min(QGEN_PER_CALL 5, ceil(60 / QGEN_PARALLEL 8)) = 5: 12
	 * calls when nothing goes wrong (the fake's answers are all valid and distinct). */
	const long needed = 12, per_call = 5;
	char       job[64], set[64], status[32], which[4];
	long       done_at_kill = 0, paid_at_kill, inflight_at_kill, paid, inflight, stored;
	int64_t    until;
	int        victim;
	json_t    *v;

	(void)state;
	fake_reset();
	fake_set("{\"ttft_ms\":400,\"max_concurrency\":4,\"retry_after_s\":0}");
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":60,\"topic\":\"takeover\"}", job, set), 202);
	/* The runner, not the replica that took the Create (its log names the job too). */
	victim = replica_logged("QGEN-JOB-START", job, 10000);
	assert_true(victim >= 0);
	/* Some batches stored (progress counts stored questions), more to come. */
	until = cm_mono_ms() + 30000;
	while ((done_at_kill = job_done(user_a, job)) < 2 * per_call && cm_mono_ms() < until)
		usleep(20 * 1000);
	assert_in_range(done_at_kill, 2 * per_call, 59);
	snprintf(which, sizeof(which), "%d", victim);
	killed_replica = victim;
	harness("stack.sh", "kill-qgen", which);
	/* What was paid for up to the kill: the victim is gone and the other replica cannot claim
	 * the job before its lease (3 s) runs out. */
	fake_counts(&paid_at_kill, &inflight_at_kill);

	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
	assert_int_equal(replica_logged("QGEN-JOB-RESUME", job, 0), 1 - victim);
	v = get_set(user_a, set, true);
	check_set(v, 60);
	json_decref(v);

	/* Stored before the kill: at least ceil(done / 5) batches (a batch holds at most 5 valid
	 * questions). Only calls the victim had paid for without storing their batch (in flight,
	 * or answered just before the kill) may be paid for again. */
	stored = (done_at_kill + per_call - 1) / per_call;
	fake_counts(&paid, &inflight);
	print_message("takeover: %ld questions stored at the kill, %ld calls paid then (%ld in "
	              "flight), %ld in all (%ld needed)\n",
	              done_at_kill, paid_at_kill, inflight_at_kill, paid, needed);
	assert_true(paid <= needed + (paid_at_kill - stored));
}

/* A WebSocket client sees its job's progress, monotonic, and the final job.done; strangers and
 * other users' jobs get errors, not events. */
static void
test_websocket_progress(void **state)
{
	char       job[64], set[64], path[4400], frame[4096];
	ws_client *c, *anon;
	long       last = -1, total = 0;
	bool       done = false, subscribed = false;
	int        progress_frames = 0;

	(void)state;
	fake_reset();
	fake_set("{\"ttft_ms\":150,\"max_concurrency\":2,\"retry_after_s\":0}");
	/* Unauthenticated: one error frame, then closed. */
	anon = ws_connect("/api/v1/ws", NULL);
	assert_non_null(anon);
	assert_int_equal(ws_recv(anon, frame, sizeof(frame), 5000), 0);
	assert_non_null(strstr(frame, "UNAUTHENTICATED"));
	ws_close(anon);

	snprintf(path, sizeof(path), "/api/v1/ws?access_token=%s",
	         user_a + strlen("Authorization: Bearer "));
	c = ws_connect(path, NULL);
	assert_non_null(c);
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":30,\"topic\":\"websocket\"}", job, set), 202);
	snprintf(frame, sizeof(frame), "{\"subscribe\":\"job:%s\"}", job);
	assert_int_equal(ws_send(c, frame), 0);
	/* Garbage is answered, and the socket stays usable. */
	assert_int_equal(ws_send(c, "{not json"), 0);
	while (!done && ws_recv(c, frame, sizeof(frame), 30000) == 0) {
		json_t *v = json_loads(frame, 0, NULL);
		assert_non_null(v);
		const char *type = js(v, "type");
		if (strcmp(type, "subscribed") == 0) {
			subscribed = true;
		} else if (strcmp(type, "job.progress") == 0) {
			long d = (long)json_integer_value(json_object_get(v, "done"));
			assert_string_equal(js(v, "job_id"), job);
			assert_true(d >= last);
			last = d;
			total = (long)json_integer_value(json_object_get(v, "total"));
			progress_frames++;
		} else if (strcmp(type, "job.done") == 0) {
			assert_string_equal(js(v, "job_id"), job);
			assert_string_equal(js(v, "status"), "succeeded");
			done = true;
		} else {
			assert_string_equal(type, "error");
		}
		json_decref(v);
	}
	assert_true(subscribed);
	assert_true(done);
	assert_int_equal(total, 30);
	assert_int_equal(last, 30);
	assert_true(progress_frames >= 2);

	/* Another user cannot subscribe to this job. */
	ws_client *b;
	snprintf(path, sizeof(path), "/api/v1/ws?access_token=%s",
	         user_b + strlen("Authorization: Bearer "));
	b = ws_connect(path, NULL);
	assert_non_null(b);
	snprintf(frame, sizeof(frame), "{\"subscribe\":\"job:%s\"}", job);
	assert_int_equal(ws_send(b, frame), 0);
	assert_int_equal(ws_recv(b, frame, sizeof(frame), 5000), 0);
	assert_non_null(strstr(frame, "NOT_FOUND"));
	ws_close(b);
	ws_close(c);
	fake_reset();
}

/* Polls GET path as auth until it answers want, at most timeout_s; returns the last status. */
static long
wait_status(const char *auth, const char *path, long want, int timeout_s)
{
	int64_t   until = cm_mono_ms() + timeout_s * 1000;
	long      st;
	http_resp r;

	for (;;) {
		st = call(auth, "GET", path, NULL, &r);
		http_resp_free(&r);
		if (st == want || cm_mono_ms() >= until)
			return st;
		usleep(100 * 1000);
	}
}

/* User b's own copy of the real PDF (a new document id each time). */
static void
upload_own(const char *auth, const char *name, char *doc)
{
	FILE *f = fopen(pdf_path, "rb");
	char *pdf;
	long  len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	assert_non_null(pdf = malloc((size_t)len));
	assert_int_equal(fread(pdf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	upload(auth, pdf, (size_t)len, name, doc, 64);
	free(pdf);
}

/* Deleting a document deletes its question sets, attempts and chats (svc-qgen, svc-eval and
 * svc-chat follow svc-pdf's deletion log): a finished set and a running one answer 404 within a
 * few of the followers' polls, and so do the running set's job, an attempt at the finished set
 * and a chat about the document (its messages included); no new chat can be made for it. */
static void
test_document_delete_takes_sets(void **state)
{
	char      doc[64], job[64], set[64], job2[64], set2[64], status[32], path[160];
	char      body[256], chat[64], attempt[64];
	json_t   *v;
	http_resp r;

	(void)state;
	upload_own(user_b, "mine.pdf", doc); /* user b's own document */
	assert_string_not_equal(doc, doc_a);
	fake_reset();
	assert_int_equal(create_set(user_b, doc, "{\"count\":5,\"topic\":\"delete me\"}", job, set),
	                 202);
	wait_job(user_b, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
	/* An attempt at the finished set (its first question answered), and a chat. */
	v = get_set(user_b, set, true);
	snprintf(body, sizeof(body), "{\"answers\":[{\"question_id\":\"%s\",\"answer\":0}]}",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(v, "questions"), 0), "id")));
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/attempts", set);
	assert_int_equal(call(user_b, "POST", path, body, &r), 202);
	snprintf(attempt, sizeof(attempt), "%s",
	         json_string_value(json_object_get(r.json, "attempt_id")));
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/documents/%s/chats", doc);
	assert_int_equal(call(user_b, "POST", path, NULL, &r), 201);
	snprintf(chat, sizeof(chat), "%s", json_string_value(json_object_get(r.json, "chat_id")));
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	assert_int_equal(call(user_b, "POST", path, "{\"content\":\"What is this about?\"}", &r),
	                 200);
	http_resp_free(&r);
	fake_set("{\"ttft_ms\":2000}"); /* the second set is still running at the deletion */
	assert_int_equal(
	    create_set(user_b, doc, "{\"count\":40,\"topic\":\"delete me running\"}", job2, set2),
	    202);
	snprintf(path, sizeof(path), "/api/v1/documents/%s", doc);
	assert_int_equal(call(user_b, "DELETE", path, NULL, &r), 204);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set);
	assert_int_equal(wait_status(user_b, path, 404, 15), 404);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set2);
	assert_int_equal(wait_status(user_b, path, 404, 15), 404);
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job2);
	assert_int_equal(wait_status(user_b, path, 404, 15), 404);
	snprintf(path, sizeof(path), "/api/v1/attempts/%s", attempt);
	assert_int_equal(wait_status(user_b, path, 404, 15), 404);
	snprintf(path, sizeof(path), "/api/v1/chats/%s/messages", chat);
	assert_int_equal(wait_status(user_b, path, 404, 15), 404);
	snprintf(path, sizeof(path), "/api/v1/documents/%s/chats", doc);
	assert_int_equal(call(user_b, "POST", path, NULL, &r), 404);
	http_resp_free(&r);
	fake_reset();
	/* User a's copy of the same bytes, and its sets, are untouched. */
	snprintf(path, sizeof(path), "/api/v1/documents/%s", doc_a);
	assert_int_equal(call(user_a, "GET", path, NULL, &r), 200);
	http_resp_free(&r);
}

/* Teardown: Redis running again, whatever the test's outcome. */
static int
start_redis(void **state)
{
	char line[1024];

	(void)state;
	snprintf(line, sizeof(line), "%s/pgredis.sh start-redis %s", getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"));
	return system(line) == 0 ? 0 : -1;
}

/* Both svc-qgen replicas are down while the document is deleted: the deletion still succeeds
 * (the edge no longer calls svc-qgen for it), and once they are back the set goes. */
static void
test_document_delete_while_qgen_down(void **state)
{
	char      doc[64], job[64], set[64], status[32], path[160];
	http_resp r;

	(void)state;
	upload_own(user_b, "mine-too.pdf", doc);
	fake_reset();
	assert_int_equal(
	    create_set(user_b, doc, "{\"count\":5,\"topic\":\"delete while down\"}", job, set),
	    202);
	wait_job(user_b, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
	harness("stack.sh", "kill-qgen", "0");
	harness("stack.sh", "kill-qgen", "1");
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set);
	assert_int_equal(wait_status(user_b, path, 503, 10), 503); /* svc-qgen is really gone */
	snprintf(path, sizeof(path), "/api/v1/documents/%s", doc);
	assert_int_equal(call(user_b, "DELETE", path, NULL, &r), 204);
	http_resp_free(&r);
	harness("stack.sh", "start-qgen", "0");
	harness("stack.sh", "start-qgen", "1");
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s", set);
	assert_int_equal(wait_status(user_b, path, 404, 20), 404);
}

/* Brings both svc-qgen replicas back whatever a test left (start-qgen is idempotent). */
static int
qgen_back(void **state)
{
	char line[1024];
	int  rc = 0;

	(void)state;
	for (int i = 0; i < 2; i++) {
		snprintf(line, sizeof(line), "%s/stack.sh start-qgen %s %s %d",
		         getenv("CM_TEST_HARNESS"), getenv("CM_TEST_STATE"), getenv("CM_TEST_BIN"),
		         i);
		if (system(line) != 0)
			rc = -1;
	}
	return rc;
}

/* Redis down: no cache, still correct. */
static void
test_redis_down(void **state)
{
	char    job[64], set[64], status[32];
	json_t *v;

	(void)state;
	fake_reset();
	harness("pgredis.sh", "stop-redis", NULL);
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":10,\"topic\":\"no redis\"}", job, set), 202);
	wait_job(user_a, job, status, sizeof(status), 120);
	v = get_set(user_a, set, true);
	check_set(v, 10);
	json_decref(v);
	/* Asked again: generated again (there is no cache), still right. */
	assert_int_equal(
	    create_set(user_a, doc_a, "{\"count\":10,\"topic\":\"no redis\"}", job, set), 202);
	wait_job(user_a, job, status, sizeof(status), 120);
	assert_string_equal(status, "succeeded");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1_generate_and_cache),
	    cmocka_unit_test(test_ungrounded_dropped_and_replaced),
	    cmocka_unit_test(test_v1_types_topic_pages),
	    cmocka_unit_test(test_v1_bad_input),
	    cmocka_unit_test(test_legacy_generate),
	    cmocka_unit_test(test_websocket_progress),
	    cmocka_unit_test(test_model_faults_recovered),
	    cmocka_unit_test(test_model_down_fails_honestly),
	    cmocka_unit_test(test_cancel_stops_calls),
	    cmocka_unit_test_teardown(test_replica_killed_mid_job, restart_killed_replica),
	    cmocka_unit_test(test_document_delete_takes_sets),
	    cmocka_unit_test_teardown(test_document_delete_while_qgen_down, qgen_back),
	    cmocka_unit_test_teardown(test_redis_down, start_redis),
	    cmocka_unit_test_teardown(test_quota_exhausted_fails_at_once, clear_set_aside),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	return cmocka_run_group_tests(tests, setup, NULL);
}
