/*
 * test_faults.c - the stack under faults: PostgreSQL restarted while requests flow, Redis
 * stopped, an svc-auth replica killed, and svc-pdf killed in the middle of a streamed upload. Runs
 * after the other tests that use the servers (ctest DEPENDS, test/CMakeLists.txt), and every test's
 * teardown starts again whatever it stopped, whether its assertions passed or not (starting what
 * runs is a no-op).
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

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"
#include "raw_conn.h"
#include "../../svc-pdf/testpdf.h"

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
static char              auth_hdr[4200];

static void
harness(const char *script, const char *cmd, const char *extra)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s/%s %s %s %s", getenv("CM_TEST_HARNESS"), script, cmd,
	         getenv("CM_TEST_STATE"), extra != NULL ? extra : "");
	assert_int_equal(system(line), 0);
}

/* Teardown: PostgreSQL, Redis and every process of the stack running again. */
static int
restore(void **state)
{
	char line[1024];

	(void)state;
	snprintf(line, sizeof(line), "%s/pgredis.sh start %s && %s/stack.sh start %s %s",
	         getenv("CM_TEST_HARNESS"), getenv("CM_TEST_STATE"), getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"), getenv("CM_TEST_BIN"));
	return system(line) == 0 ? 0 : -1;
}

static long
me(void)
{
	const char *h[] = {auth_hdr, NULL};
	http_resp   r;
	long        s;

	if (http_do("GET", "/api/v1/auth/me", h, NULL, 0, &r) != 0)
		return -1;
	s = r.status;
	http_resp_free(&r);
	return s;
}

static int
setup(void **state)
{
	char      body[256], id[37];
	http_resp r;

	(void)state;
	cm_uuid_v4(id);
	snprintf(body, sizeof(body),
	         "{\"email\":\"f-%s@example.com\",\"password\":\"fault tolerant\"}", id);
	if (http_do("POST", "/api/v1/auth/register", json_hdr, body, strlen(body), &r) != 0 ||
	    r.status != 201)
		return -1;
	http_resp_free(&r);
	if (http_do("POST", "/api/v1/auth/login", json_hdr, body, strlen(body), &r) != 0 ||
	    r.status != 200)
		return -1;
	snprintf(auth_hdr, sizeof(auth_hdr), "Authorization: Bearer %s",
	         js(r.json, "access_token"));
	http_resp_free(&r);
	return 0;
}

static void
test_postgres_restart(void **state)
{
	int64_t t0;
	long    s;
	int     ok_after = 0;

	(void)state;
	assert_int_equal(me(), 200);
	harness("pgredis.sh", "stop-pg", "fast");
	/* During the outage: a fast, honest 503. */
	for (int i = 0; i < 5; i++) {
		t0 = cm_mono_ms();
		s = me();
		assert_int_equal(s, 503);
		assert_true(cm_mono_ms() - t0 < 3000);
	}
	harness("pgredis.sh", "start-pg", NULL);
	/* After it: service resumes without restarting anything (polled: svc-auth reconnects after
	 * its back-off), and stays up. */
	for (int64_t until = cm_mono_ms() + 10000; ok_after < 5 && cm_mono_ms() < until;) {
		if (me() == 200)
			ok_after++;
		else
			usleep(100 * 1000);
	}
	assert_int_equal(ok_after, 5);
}

static void
test_redis_down_auth_works(void **state)
{
	char      body[256], id[37];
	http_resp r;

	(void)state;
	harness("pgredis.sh", "stop-redis", NULL);
	cm_uuid_v4(id);
	snprintf(body, sizeof(body),
	         "{\"email\":\"r-%s@example.com\",\"password\":\"no redis here\"}", id);
	assert_int_equal(http_do("POST", "/api/v1/auth/register", json_hdr, body, strlen(body), &r),
	                 0);
	assert_int_equal(r.status, 201);
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/v1/auth/login", json_hdr, body, strlen(body), &r),
	                 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	assert_int_equal(me(), 200);
}

static void
test_replica_killed(void **state)
{
	int  ok = 0;
	char extra[600];

	(void)state;
	snprintf(extra, sizeof(extra), "%s 0", getenv("CM_TEST_BIN"));
	harness("stack.sh", "kill-auth", extra);
	for (int i = 0; i < 50; i++)
		ok += me() == 200;
	assert_int_equal(ok, 50);
	harness("stack.sh", "start", getenv("CM_TEST_BIN"));
	assert_int_equal(me(), 200);
}

/* No svc-auth at all: an honest 503 with Retry-After, except the legacy logout, which never fails.
 */
static void
test_all_auth_replicas_down(void **state)
{
	char      extra[600], buf[32];
	http_resp r;

	(void)state;
	for (int i = 0; i < 2; i++) {
		snprintf(extra, sizeof(extra), "%s %d", getenv("CM_TEST_BIN"), i);
		harness("stack.sh", "kill-auth", extra);
	}
	{
		const char *h[] = {auth_hdr, NULL};
		assert_int_equal(http_do("GET", "/api/v1/auth/me", h, NULL, 0, &r), 0);
	}
	assert_int_equal(r.status, 503);
	assert_non_null(http_header(&r, "Retry-After", buf, sizeof(buf)));
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "UNAVAILABLE");
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/auth/logout", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/readyz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 503);
	http_resp_free(&r);
	harness("stack.sh", "start", getenv("CM_TEST_BIN"));
	assert_int_equal(me(), 200);
}

/* svc-pdf dies after the first 1 MiB piece of an upload reached its spool: the second piece
 * finds no replica, the rest of the body is read and dropped (libmicrohttpd answers only once a
 * body is in) and the client gets an honest 503 with Retry-After on a connection that stays
 * usable; once svc-pdf is back the same user's upload goes through. */
static void
test_pdf_killed_mid_upload(void **state)
{
	static char piece[1 << 20];
	char        head[8192], resp[8192], extra[600], id[37];
	int         fd, n;
	size_t      len = 3u << 20;

	(void)state;
	assert_int_equal(http_user_id(auth_hdr, id, sizeof(id)), 0);
	memset(piece, 'x', sizeof(piece));
	memcpy(piece, "%PDF-1.4\n", 9);
	n = snprintf(head, sizeof(head),
	             "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\n%s\r\n"
	             "Content-Type: application/pdf\r\nContent-Length: %zu\r\n\r\n",
	             auth_hdr, len);
	assert_true((fd = raw_open(http_base())) >= 0);
	assert_true(raw_send(fd, head, (size_t)n));
	assert_true(raw_send(fd, piece, sizeof(piece)));
	assert_true(raw_send(fd, piece, 10));
	for (int64_t until = cm_mono_ms() + 5000; stack_spools(id) == 0; usleep(10000))
		assert_true(cm_mono_ms() < until);
	snprintf(extra, sizeof(extra), "%s", getenv("CM_TEST_BIN"));
	harness("stack.sh", "kill-pdf", extra);
	assert_true(raw_send(fd, piece, sizeof(piece) - 10));
	assert_true(raw_send(fd, piece, sizeof(piece)));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 503);
	assert_non_null(strstr(resp, "Retry-After: 1"));
	assert_non_null(strstr(resp, "\"code\":\"UNAVAILABLE\""));
	{
		const char *next = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
		assert_true(raw_send(fd, next, strlen(next)));
	}
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 200);
	raw_close(fd);

	harness("stack.sh", "start", getenv("CM_TEST_BIN"));
	{
		pdf_testpdf o = {.npages = 2, .title = "After The Crash", .padding = 3000000};
		const char *h[] = {auth_hdr, "Content-Type: application/pdf", NULL};
		cm_buf      pdf;
		http_resp   r;
		long        status = 0;

		cm_buf_init(&pdf, 8u << 20);
		assert_int_equal(pdf_testpdf_build(&o, &pdf), CM_OK);
		/* The edge's client reconnects by itself: polled, within a deadline. */
		for (int64_t until = cm_mono_ms() + 10000; cm_mono_ms() < until; usleep(100000)) {
			assert_int_equal(http_do("POST", "/api/v1/documents?filename=after.pdf", h,
			                         pdf.data, pdf.len, &r),
			                 0);
			status = r.status;
			http_resp_free(&r);
			if (status != 503)
				break;
		}
		assert_int_equal(status, 201);
		cm_buf_fini(&pdf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_postgres_restart, restore),
	    cmocka_unit_test_teardown(test_redis_down_auth_works, restore),
	    cmocka_unit_test_teardown(test_replica_killed, restore),
	    cmocka_unit_test_teardown(test_all_auth_replicas_down, restore),
	    cmocka_unit_test_teardown(test_pdf_killed_mid_upload, restore),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
