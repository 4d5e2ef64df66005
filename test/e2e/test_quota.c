/*
 * test_quota.c - per-user quotas end to end: 429 with Retry-After and the contract's error body
 * through the edge.
 *
 * svc-qgen: the fake LLM answers slowly (ttft 4 s) so that a user's five sets stay open; the
 * sixth is 429 RESOURCE_EXHAUSTED with Retry-After (QGEN_RETRY_AFTER_S, 10) while another user's
 * set is accepted. svc-pdf: an upload is held in progress by taking its file's lock in
 * PostgreSQL first (pdf_store_lock, the lock svc-pdf itself waits on) and seen to be there by
 * svc-pdf's pdf_uploads_in_progress gauge; the same user's next upload is then 429 with
 * Retry-After (PDF_RETRY_AFTER_S, 5), another user's upload goes through, and once the lock
 * goes the held upload finishes. Teardowns restore the fake and end
 * the sets, pass or fail.
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

#include "cm/buf.h"
#include "cm/pg.h"
#include "cm/util.h"
#include "../../svc-pdf/files.h"
#include "../../svc-pdf/store.h"
#include "../../svc-pdf/testpdf.h"
#include "http_client.h"

#define FAKE "http://127.0.0.1:28500"
#define PDF_METRICS "http://127.0.0.1:29102/metrics" /* svc-pdf's admin port (stack.sh) */

static char user_a[4200], user_b[4200];
static char jobs[8][64]; /* sets to cancel in the teardown */
static int  njobs;
static char nonce[17];

static long
call(const char *auth, const char *method, const char *path, const char *body, http_resp *r)
{
	const char *h[] = {auth, "Content-Type: application/json", NULL};

	assert_int_equal(http_do(method, path, h, body, body != NULL ? strlen(body) : 0, r), 0);
	return r->status;
}

/* A one-page PDF unique to this run and tag, with enough text for questions. */
static void
make_pdf(cm_buf *b, const char *tag)
{
	char        text[768];
	const char *pages[1] = {text};
	pdf_testpdf o;

	snprintf(text, sizeof(text),
	         "Quota %s %s. Photosynthesis converts light energy into chemical energy stored in "
	         "glucose molecules. The Calvin cycle fixes carbon dioxide into sugars using ATP "
	         "and NADPH. Mitochondria produce most of the ATP that a eukaryotic cell needs. "
	         "Enzymes lower the activation energy of reactions without being consumed.",
	         nonce, tag);
	memset(&o, 0, sizeof(o));
	o.npages = 1;
	o.pages = pages;
	cm_buf_init(b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
}

/* POSTs pdf as auth; the status, and the document id into id (may be NULL). */
static long
upload(const char *auth, const cm_buf *pdf, char *id, http_resp *keep)
{
	const char *h[] = {auth, "Content-Type: application/pdf", NULL};
	http_resp   r;
	long        s;

	assert_int_equal(
	    http_do("POST", "/api/v1/documents?filename=q.pdf", h, pdf->data, pdf->len, &r), 0);
	s = r.status;
	if (id != NULL)
		snprintf(id, 64, "%s", js(r.json, "id"));
	if (keep != NULL)
		*keep = r;
	else
		http_resp_free(&r);
	return s;
}

static void
assert_429(http_resp *r, const char *retry_after)
{
	char    buf[32];
	json_t *e = json_object_get(r->json, "error");

	assert_int_equal(r->status, 429);
	assert_non_null(http_header(r, "Retry-After", buf, sizeof(buf)));
	assert_string_equal(buf, retry_after);
	assert_non_null(e);
	assert_string_equal(js(e, "code"), "RESOURCE_EXHAUSTED");
}

static int
group_setup(void **state)
{
	char r[8];

	(void)state;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	if (http_new_user("quota-a", "quota-pass-1", user_a, sizeof(user_a)) != 0 ||
	    http_new_user("quota-b", "quota-pass-1", user_b, sizeof(user_b)) != 0)
		return -1;
	return 0;
}

static int
qgen_teardown(void **state)
{
	json_t *v = http_fake(FAKE, "POST", "/_reset", "{\"config\":true}");

	(void)state;
	json_decref(v);
	for (int i = 0; i < njobs; i++) {
		char      path[160];
		http_resp r;
		snprintf(path, sizeof(path), "/api/v1/jobs/%.64s", jobs[i]);
		if (http_do("DELETE", path, (const char *const[]){i < 5 ? user_a : user_b, NULL},
		            NULL, 0, &r) == 0)
			http_resp_free(&r);
	}
	njobs = 0;
	return v != NULL ? 0 : -1;
}

/* Five open sets of user a; the sixth is 429 + Retry-After; user b's is accepted. */
static void
test_sixth_set_429(void **state)
{
	const char *body = "{\"count\":5,\"types\":[\"mcq\"]}";
	char        doc_a[64], doc_b[64], path_a[160], path_b[160];
	cm_buf      pa, pb;
	http_resp   r;
	json_t     *v;

	(void)state;
	v = http_fake(FAKE, "POST", "/_control", "{\"ttft_ms\":4000}");
	assert_non_null(v);
	json_decref(v);
	make_pdf(&pa, "qgen-a");
	make_pdf(&pb, "qgen-b");
	assert_int_equal(upload(user_a, &pa, doc_a, NULL), 201);
	assert_int_equal(upload(user_b, &pb, doc_b, NULL), 201);
	snprintf(path_a, sizeof(path_a), "/api/v1/documents/%s/question-sets", doc_a);
	snprintf(path_b, sizeof(path_b), "/api/v1/documents/%s/question-sets", doc_b);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(call(user_a, "POST", path_a, body, &r), 202);
		snprintf(jobs[njobs++], 64, "%s", js(r.json, "job_id"));
		http_resp_free(&r);
	}
	assert_int_equal(call(user_a, "POST", path_a, body, &r), 429);
	assert_429(&r, "10");
	http_resp_free(&r);
	assert_int_equal(call(user_b, "POST", path_b, body, &r), 202);
	snprintf(jobs[njobs++], 64, "%s", js(r.json, "job_id"));
	http_resp_free(&r);
	cm_buf_fini(&pa);
	cm_buf_fini(&pb);
}

static size_t
sink(char *p, size_t size, size_t n, void *arg)
{
	cm_buf *b = arg;

	return cm_buf_append(b, p, size * n) == CM_OK ? size * n : 0;
}

/* svc-pdf's pdf_uploads_in_progress, or -1 when the admin port did not answer. */
static long
uploads_in_progress(void)
{
	CURL       *c = curl_easy_init();
	cm_buf      b;
	const char *line;
	long        v = -1;

	cm_buf_init(&b, 1u << 20);
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, PDF_METRICS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	if (curl_easy_perform(c) == CURLE_OK && cm_buf_append(&b, "", 1) == CM_OK &&
	    (line = strstr(b.data, "\npdf_uploads_in_progress ")) != NULL)
		v = strtol(line + strlen("\npdf_uploads_in_progress "), NULL, 10);
	curl_easy_cleanup(c);
	cm_buf_fini(&b);
	return v;
}

typedef struct held {
	const cm_buf *pdf;
	long          status;
} held;

static void *
held_main(void *arg)
{
	held *h = arg;

	h->status = upload(user_a, h->pdf, NULL, NULL);
	return NULL;
}

/* User a's upload waits on its file's lock (svc-pdf's pdf_uploads_in_progress, polled, says
 * when it is there); a's next upload is then 429 + Retry-After, b's is 201; the held one ends
 * 201 once let go. */
static void
test_second_upload_429(void **state)
{
	cm_pg    *pg = NULL;
	cm_buf    first, second, other;
	char      sha[PDF_SHA256_HEX + 1];
	pthread_t th;
	held      h;
	http_resp r;
	int64_t   until = cm_mono_ms() + 5000;

	(void)state;
	make_pdf(&first, "pdf-a1");
	make_pdf(&second, "pdf-a2");
	make_pdf(&other, "pdf-b");
	pdf_sha256_hex(first.data, first.len, sha);
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), "pdf"), CM_OK);
	assert_int_equal(pdf_store_lock(pg, sha, cm_mono_ms() + 5000), CM_OK);
	assert_int_equal(uploads_in_progress(), 0);
	h = (held){&first, 0};
	assert_int_equal(pthread_create(&th, NULL, held_main, &h), 0);
	while (uploads_in_progress() != 1) {
		if (cm_mono_ms() > until)
			fail_msg("the held upload did not reach svc-pdf in 5 s");
		usleep(10 * 1000);
	}
	assert_int_equal(upload(user_a, &second, NULL, &r), 429);
	assert_429(&r, "5");
	http_resp_free(&r);
	assert_int_equal(upload(user_b, &other, NULL, NULL), 201);
	pdf_store_unlock(pg, sha);
	pthread_join(th, NULL);
	assert_int_equal(h.status, 201);
	assert_int_equal(uploads_in_progress(), 0);
	assert_int_equal(upload(user_a, &second, NULL, NULL), 201); /* the place is back */
	cm_pg_close(pg);
	cm_buf_fini(&first);
	cm_buf_fini(&second);
	cm_buf_fini(&other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_sixth_set_429, qgen_teardown),
	    cmocka_unit_test(test_second_upload_429),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
