/*
 * test_pdf_quota.c - svc-pdf's bound on one user's concurrent uploads (PDF_USER_MAX_ACTIVE,
 * default 1), against the pgredis fixture's PostgreSQL, with the upload handler called on
 * several workers as the RPC workers do. An upload is held in progress, deterministically, by
 * taking its file's lock (pdf_store_lock) on another connection first: the upload then waits
 * inside the pipeline, holding its place, until the test lets go. Meanwhile the same user's
 * second upload is RESOURCE_EXHAUSTED with retry_after_s at once and another user's upload
 * goes through; every way out (success, refusal, bad input, deadline) gives the place back.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "../../svc-pdf/files.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/server.h"
#include "../../svc-pdf/store.h"
#include "../../svc-pdf/testpdf.h"
#include "proto/pdf.pb-c.h"

#define NWORKERS 3

static pdf_service svc;
static cm_metrics *metrics;
static pdf_worker *W[NWORKERS]; /* as the replica's RPC workers */
static cm_pg      *locker;      /* takes files' locks ahead of an upload */
static const char *db_url;
static int64_t     redis_port;
static char        datadir[64];
static char        nonce[17];
static int         seq;

/* A unique one-page PDF. */
static void
make_pdf(cm_buf *b, const char *tag)
{
	char        text[256];
	const char *pages[1] = {text};
	pdf_testpdf o;

	snprintf(text, sizeof(text), "Quota test %s %d %s: the quick brown fox jumps over the dog.",
	         nonce, ++seq, tag);
	memset(&o, 0, sizeof(o));
	o.npages = 1;
	o.pages = pages;
	cm_buf_init(b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
}

typedef struct up {
	pdf_worker   *w;
	const char   *subject;
	const cm_buf *pdf;
	int64_t       deadline_ms;
	cm_err        err;
	int32_t       retry_s;
	char          msg[CM_MAX_ERRMSG];
} up;

/* Calls pdf.Upload's handler as u->subject on u->w; the outcome goes into u. */
static void
upload(up *u)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs;
	cm_arena             arena;
	cm_rpc_ctx           ctx;

	cm_arena_init(&arena);
	memset(&ctx, 0, sizeof(ctx));
	ctx.method = "pdf.Upload";
	ctx.request_id = "";
	ctx.subject = u->subject;
	ctx.session_id = "";
	ctx.client_addr = "";
	ctx.deadline_ms = u->deadline_ms > 0 ? u->deadline_ms : cm_now_ms() + 30000;
	ctx.worker_state = u->w;
	ctx.arena = &arena;
	rs = cm_arena_alloc(&arena, sizeof(*rs));
	pdf__upload_response__init(rs);
	rq.filename = (char *)"q.pdf";
	rq.content.data = (uint8_t *)u->pdf->data;
	rq.content.len = u->pdf->len;
	u->err = pdf_handle_upload(&ctx, &rq, rs);
	u->retry_s = ctx.retry_after_s;
	snprintf(u->msg, sizeof(u->msg), "%s", ctx.message);
	cm_arena_fini(&arena);
}

static void *
upload_main(void *arg)
{
	upload(arg);
	return NULL;
}

/* Takes the lock of pdf's file on the locker connection. */
static void
lock_file(const cm_buf *pdf, char sha[PDF_SHA256_HEX + 1])
{
	pdf_sha256_hex(pdf->data, pdf->len, sha);
	assert_int_equal(pdf_store_lock(locker, sha, cm_mono_ms() + 5000), CM_OK);
}

/* Polls until user holds `want` places, for at most 5 s. */
static void
wait_held(const char *user, int want)
{
	int64_t         until = cm_mono_ms() + 5000;
	struct timespec ts = {0, 10 * 1000000L};

	while (pdf_gate_held(svc.gate, user) != want) {
		if (cm_mono_ms() > until)
			fail_msg("%s holds %d places, not %d", user, pdf_gate_held(svc.gate, user),
			         want);
		nanosleep(&ts, NULL);
	}
}

static int
setup(void **state)
{
	pdf_config cfg;
	cm_pg     *pg = NULL;
	char       r[8];

	(void)state;
	cm_log_init("pdf-quota-test", CM_LOG_WARN);
	pdf_config_defaults(&cfg);
	db_url = getenv("CM_TEST_PG");
	if (getenv("CM_TEST_REDIS_PORT") == NULL ||
	    !cm_parse_i64(getenv("CM_TEST_REDIS_PORT"), &redis_port))
		redis_port = 26379;
	snprintf(datadir, sizeof(datadir), "/tmp/pdf-quota-XXXXXX");
	if (db_url == NULL || mkdtemp(datadir) == NULL)
		return -1;
	cfg.data_dir = datadir;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), nonce);
	if (cm_pg_open(&pg, db_url, PDF_SCHEMA) != CM_OK ||
	    cm_pg_migrate_up(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count) != CM_OK)
		return -1;
	cm_pg_close(pg);
	if ((metrics = cm_metrics_alloc("pdf_")) == NULL ||
	    pdf_service_init(&svc, &cfg, metrics) != CM_OK ||
	    cm_pg_open(&locker, db_url, PDF_SCHEMA) != CM_OK)
		return -1;
	for (int i = 0; i < NWORKERS; i++) {
		cm_pg    *wpg = NULL;
		cm_redis *redis = NULL;
		if (cm_pg_open(&wpg, db_url, PDF_SCHEMA) != CM_OK ||
		    cm_redis_open(&redis, "127.0.0.1", (int)redis_port, CM_REDIS_TIMEOUT_MS) !=
		        CM_OK ||
		    pdf_worker_alloc(&svc, wpg, redis, &W[i]) != CM_OK)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	for (int i = 0; i < NWORKERS; i++) {
		cm_pg    *pg = W[i]->pg;
		cm_redis *redis = W[i]->redis;
		pdf_worker_free(W[i]);
		cm_redis_close(redis);
		cm_pg_close(pg);
	}
	cm_pg_close(locker);
	pdf_service_fini(&svc);
	cm_metrics_free(metrics);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ann's first upload is in progress (held at its file's lock): her second is refused at once
 * with retry_after_s, bob's goes through; when the first ends, ann may upload again. */
static void
test_second_upload_refused(void **state)
{
	cm_buf    first, second, other;
	char      sha[PDF_SHA256_HEX + 1];
	pthread_t th;
	up        a1, a2, b;

	(void)state;
	assert_int_equal(svc.cfg.user_max_active, 1);
	make_pdf(&first, "ann-1");
	make_pdf(&second, "ann-2");
	make_pdf(&other, "bob");
	lock_file(&first, sha);
	a1 = (up){.w = W[0], .subject = "ann", .pdf = &first};
	assert_int_equal(pthread_create(&th, NULL, upload_main, &a1), 0);
	wait_held("ann", 1);

	a2 = (up){.w = W[1], .subject = "ann", .pdf = &second};
	upload(&a2);
	assert_int_equal(a2.err, CM_ELIMIT);
	assert_int_equal(a2.retry_s, svc.cfg.retry_after_s);
	assert_true(a2.retry_s > 0);
	assert_non_null(strstr(a2.msg, "another upload"));
	b = (up){.w = W[2], .subject = "bob", .pdf = &other};
	upload(&b);
	assert_int_equal(b.err, CM_OK);
	assert_int_equal(pdf_gate_held(svc.gate, "bob"), 0);
	assert_int_equal(pdf_gate_held(svc.gate, "ann"), 1); /* the refusal took nothing */

	pdf_store_unlock(locker, sha);
	pthread_join(th, NULL);
	assert_int_equal(a1.err, CM_OK);
	assert_int_equal(pdf_gate_held(svc.gate, "ann"), 0);
	upload(&a2);
	assert_int_equal(a2.err, CM_OK);
	cm_buf_fini(&first);
	cm_buf_fini(&second);
	cm_buf_fini(&other);
}

/* Failed uploads give their place back: bad input at once, and an upload whose deadline
 * passes while it waits. */
static void
test_place_back_on_failure(void **state)
{
	cm_buf bad, slow, next;
	char   sha[PDF_SHA256_HEX + 1];
	up     u;

	(void)state;
	cm_buf_init(&bad, 64);
	assert_int_equal(cm_buf_appends(&bad, "not a PDF at all"), CM_OK);
	u = (up){.w = W[0], .subject = "cy", .pdf = &bad};
	upload(&u);
	assert_int_equal(u.err, CM_EINVAL);
	assert_int_equal(pdf_gate_held(svc.gate, "cy"), 0);

	make_pdf(&slow, "cy-slow");
	lock_file(&slow, sha);
	u = (up){.w = W[0], .subject = "cy", .pdf = &slow, .deadline_ms = cm_now_ms() + 600};
	upload(&u);
	assert_int_equal(u.err, CM_ETIMEDOUT);
	assert_int_equal(pdf_gate_held(svc.gate, "cy"), 0);
	pdf_store_unlock(locker, sha);

	make_pdf(&next, "cy-next");
	u = (up){.w = W[1], .subject = "cy", .pdf = &next};
	upload(&u);
	assert_int_equal(u.err, CM_OK);
	cm_buf_fini(&bad);
	cm_buf_fini(&slow);
	cm_buf_fini(&next);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_second_upload_refused),
	    cmocka_unit_test(test_place_back_on_failure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
