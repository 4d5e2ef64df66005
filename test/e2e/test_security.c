/*
 * test_security.c - the HTTP face under attack: one test per finding of issue #9 that lives in
 * the edge's HTTP layer (request desync on every early answer, idle and slowloris sockets, a slow
 * but live upload, 431/414 in the error shape, Expect: 100-continue, WebSocket Host and Origin,
 * CSRF, client addresses behind a trusted proxy, anonymous rate limits, login throttling that a
 * stranger cannot turn against the owner, connection caps, the request-body memory budget).
 * Revocation after logout, the renewal table and cookie replay are in test_auth.c, quotas in
 * test_quota.c, WebSocket floods in unit_edge_wsloop.
 *
 * It talks to the stack's second edge (CM_TEST_EDGE_STRICT, test/harness/stack.sh), configured
 * with small limits so each one can be reached quickly: idle timeout 2 s, 1 request/s with a
 * burst of 10 per address and per user, X-Forwarded-For trusted from 127.0.0.1, 24 connections
 * per address, an 8 KiB header limit and a 2.5 MiB body budget. Raw sockets (raw_conn.h) show what
 * an HTTP library would hide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"
#include "raw_conn.h"
#include "../../svc-pdf/testpdf.h"

#define SMUGGLED "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
#define HEALTHZ "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

static char strict[128];
static char resp[65536];

static int
setup(void **state)
{
	const char *s = getenv("CM_TEST_EDGE_STRICT");

	(void)state;
	cm_strlcpy(strict, s != NULL && s[0] != '\0' ? s : "http://127.0.0.1:28081",
	           sizeof(strict));
	/* The shared client's helpers (http_json, http_register...) go to the strict edge too. */
	setenv("CM_TEST_EDGE", strict, 1);
	return 0;
}

/* Paces a slow client (the scenario itself, not a wait for a state). */
static void
pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Every answer the edge gives before reading a body: the body (a request of its own) is dropped,
 * the next request on the connection is answered, the smuggled one never is. */
static void
test_no_desync_on_early_answers(void **state)
{
	static const struct {
		const char *method, *path;
		int         status;
	} early[] = {
	    {"POST", "/api/v1/documents", 401}, /* authentication required */
	    {"POST", "/api/v1/chats/00000000-0000-4000-8000-000000000000/messages", 401}, /* JSON */
	    {"POST", "/api/auth/verify", 405},      /* wrong method, legacy */
	    {"DELETE", "/api/v1/auth/login", 405},  /* wrong method, v1 */
	    {"POST", "/api/nope", 404},             /* unknown legacy route */
	    {"POST", "/api/v1/nope", 404},          /* unknown v1 route */
	    {"OPTIONS", "/api/v1/auth/login", 204}, /* preflight */
	    {"GET", "/healthz", 200},               /* local answers */
	    {"GET", "/readyz", 200},
	    {"GET", "/metrics", 200},
	    {"GET", "/api/v1/openapi.json", 200},
	};
	char req[512];

	(void)state;
	for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
		int fd = raw_open(strict);
		int n = snprintf(req, sizeof(req),
		                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		                 "Content-Length: %zu\r\n\r\n%s" HEALTHZ,
		                 early[i].method, early[i].path, strlen(SMUGGLED), SMUGGLED);

		assert_true(fd >= 0);
		assert_true(raw_send(fd, req, (size_t)n));
		assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), early[i].status);
		/* The next request on the connection is the one after the body. */
		assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 200);
		assert_non_null(strstr(resp, "{\"status\":\"ok\"}"));
		/* And nothing else comes: the body was not taken for a request. */
		assert_int_equal(raw_response(fd, resp, sizeof(resp), 300), -1);
		raw_close(fd);
	}
}

/* A large body behind an early answer is not read: the answer comes, then the connection closes. */
static void
test_large_body_after_early_answer_closes(void **state)
{
	static char filler[128 * 1024];
	const char  head[] = "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\n"
	                     "Content-Type: application/pdf\r\nContent-Length: 10000000\r\n\r\n";
	int         fd = raw_open(strict);

	(void)state;
	memset(filler, 'G', sizeof(filler));
	assert_true(fd >= 0);
	assert_true(raw_send(fd, head, sizeof(head) - 1));
	(void)raw_send(fd, filler, sizeof(filler)); /* the server may close while we write */
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 401);
	assert_non_null(strstr(resp, "Connection: close"));
	assert_true(raw_closed_within(fd, 5000));
	raw_close(fd);
}

/* A chunked body behind an early answer (its size unknown at the headers) is dropped as it
 * arrives, smuggled request and all, and the next request on the connection is the one after it.
 * (Past 64 KiB the answer goes at once with Connection: close and the rest is not read.) */
static void
test_chunked_body_after_early_answer_dropped(void **state)
{
	char req[1024];
	int  fd = raw_open(strict);
	int  n = snprintf(
	     req, sizeof(req),
	     "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n" HEALTHZ,
	     strlen(SMUGGLED), SMUGGLED);

	(void)state;
	assert_true(fd >= 0);
	assert_true(raw_send(fd, req, (size_t)n));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 401);
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 200);
	assert_non_null(strstr(resp, "{\"status\":\"ok\"}"));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 300), -1);
	raw_close(fd);
}

/* Idle keep-alive sockets and half-sent headers are closed after the idle timeout (2 s here). */
static void
test_idle_and_slowloris_closed(void **state)
{
	int idle = raw_open(strict), loris = raw_open(strict), kept = raw_open(strict);

	(void)state;
	assert_true(idle >= 0 && loris >= 0 && kept >= 0);
	assert_true(raw_send(loris, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ", 37));
	assert_true(raw_send(kept, HEALTHZ, strlen(HEALTHZ)));
	assert_int_equal(raw_response(kept, resp, sizeof(resp), 5000), 200);
	assert_true(raw_closed_within(idle, 6000));
	assert_true(raw_closed_within(loris, 6000));
	assert_true(raw_closed_within(kept, 6000)); /* idle after its answer */
	raw_close(idle);
	raw_close(loris);
	raw_close(kept);
}

/* A slow upload that keeps making progress is not cut by the timeout: 8 pieces over 4 s (twice
 * the idle timeout) reach svc-auth, which answers the (wrong) credentials. */
static void
test_slow_live_body_not_cut(void **state)
{
	const char body[] = "{\"username\":\"nobody-slow\",\"password\":\"not-the-password\"}";
	char       head[256];
	size_t     len = sizeof(body) - 1, piece = (len + 7) / 8;
	int        fd = raw_open(strict);
	int        n = snprintf(head, sizeof(head),
	                        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: "
	                               "198.51.100.40\r\nContent-Type: application/json\r\n"
	                               "Content-Length: %zu\r\n\r\n",
	                        len);

	(void)state;
	assert_true(fd >= 0);
	assert_true(raw_send(fd, head, (size_t)n));
	for (size_t off = 0; off < len; off += piece) {
		pause_ms(500);
		assert_true(raw_send(fd, body + off, off + piece <= len ? piece : len - off));
	}
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 401);
	raw_close(fd);
}

/* Oversized headers and targets get the contract's JSON error, not a silent close. */
static void
test_header_and_uri_limits(void **state)
{
	static char req[16384];
	char        big[12000], path[700];
	int         fd, n;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = snprintf(req, sizeof(req),
	             "GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
	assert_true((fd = raw_open(strict)) >= 0);
	assert_true(raw_send(fd, req, (size_t)n));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 431);
	assert_non_null(strstr(resp, "\"code\":\"INVALID_ARGUMENT\""));
	assert_non_null(strstr(resp, "Request Header Fields Too Large"));
	raw_close(fd);

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	n = snprintf(req, sizeof(req), "GET /api/v1/%s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	assert_true((fd = raw_open(strict)) >= 0);
	assert_true(raw_send(fd, req, (size_t)n));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 414);
	assert_non_null(strstr(resp, "\"code\":\"INVALID_ARGUMENT\""));
	raw_close(fd);
}

/* Expect: 100-continue gets its interim answer at once (curl no longer waits a second), and a
 * request refused at its headers gets the refusal instead, before any body is sent. */
static void
test_expect_100_continue(void **state)
{
	const char head[] =
	    "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: "
	    "198.51.100.41\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
	    "Expect: 100-continue\r\n\r\n";
	const char refused[] = "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\n"
	                       "Content-Type: application/pdf\r\nContent-Length: 100000\r\n"
	                       "Expect: 100-continue\r\n\r\n";
	int        fd = raw_open(strict);

	(void)state;
	assert_true(fd >= 0);
	assert_true(raw_send(fd, head, sizeof(head) - 1));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 500), 100);
	assert_true(raw_send(fd, "{}", 2));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 401);
	raw_close(fd);

	assert_true((fd = raw_open(strict)) >= 0);
	assert_true(raw_send(fd, refused, sizeof(refused) - 1));
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 401);
	raw_close(fd);
}

static int
ws_handshake(const char *host, const char *origin)
{
	char req[512];
	int  fd = raw_open(strict), n, status;

	n = snprintf(req, sizeof(req),
	             "GET /api/v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	             "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
	             host, origin != NULL ? "Origin: " : "", origin != NULL ? origin : "",
	             origin != NULL ? "\r\n" : "");
	if (fd < 0 || !raw_send(fd, req, (size_t)n)) {
		raw_close(fd);
		return -1;
	}
	status = raw_response(fd, resp, sizeof(resp), 5000);
	raw_close(fd);
	return status;
}

/* The upgrade works whatever name the edge is reached by; a page of another origin cannot open
 * a socket with the user's cookie. */
static void
test_websocket_host_and_origin(void **state)
{
	(void)state;
	assert_int_equal(ws_handshake("127.0.0.1:28081", NULL), 101);
	assert_non_null(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	assert_int_equal(ws_handshake("localhost:28081", NULL), 101);
	assert_int_equal(ws_handshake("learn.example.com", NULL), 101);
	assert_int_equal(ws_handshake("learn.example.com", "https://learn.example.com"), 101);
	assert_int_equal(ws_handshake("localhost:28081", "http://localhost:3000"), 101);
	assert_int_equal(ws_handshake("localhost:28081", "http://evil.example"), 403);
	assert_int_equal(ws_handshake("localhost:28081", "null"), 403);
}

/* A cross-site text/plain POST carrying the session cookie does not change the legacy selection;
 * the same request from the app's own origin, an allowed one, or a program, goes through. */
static void
test_csrf_on_legacy_cookie_routes(void **state)
{
	char        email[160], body[512], cookie[2048], hcookie[2100], val[2048];
	http_resp   r;
	const char *sel = "{\"filename\":\"nothing-here.pdf\"}";

	(void)state;
	assert_int_equal(http_register("csrf", "csrf-pass-123", email, sizeof(email)), 0);
	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"csrf-pass-123\"}", email);
	{
		const char *h[] = {"Content-Type: application/json",
		                   "X-Forwarded-For: 198.51.100.50", NULL};
		assert_int_equal(http_do("POST", "/api/auth/login", h, body, strlen(body), &r), 0);
	}
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, val, sizeof(val)));
	snprintf(cookie, sizeof(cookie), "%s", val);
	http_resp_free(&r);
	snprintf(hcookie, sizeof(hcookie), "Cookie: %s", cookie);

	{
		const char *h[] = {hcookie, "Content-Type: text/plain",
		                   "Origin: http://evil.example", "X-Forwarded-For: 198.51.100.50",
		                   NULL};
		assert_int_equal(http_do("POST", "/api/pdf/select", h, sel, strlen(sel), &r), 0);
		assert_int_equal(r.status, 403);
		http_resp_free(&r);
	}
	{
		const char *h[] = {hcookie, "Content-Type: text/plain",
		                   "Referer: http://evil.example/page",
		                   "X-Forwarded-For: 198.51.100.50", NULL};
		assert_int_equal(http_do("POST", "/api/pdf/select", h, sel, strlen(sel), &r), 0);
		assert_int_equal(r.status, 403);
		http_resp_free(&r);
	}
	{
		const char *h[] = {hcookie, "Content-Type: application/json",
		                   "Origin: http://localhost:3000",
		                   "X-Forwarded-For: 198.51.100.50", NULL};
		assert_int_equal(http_do("POST", "/api/pdf/select", h, sel, strlen(sel), &r), 0);
		assert_int_equal(r.status, 404); /* through to svc-pdf: no such file */
		http_resp_free(&r);
	}
	{
		const char *h[] = {hcookie, "Content-Type: application/json",
		                   "X-Forwarded-For: 198.51.100.50", NULL};
		assert_int_equal(http_do("POST", "/api/pdf/select", h, sel, strlen(sel), &r), 0);
		assert_int_equal(r.status, 404);
		http_resp_free(&r);
	}
}

static long
refresh_from(const char *xff)
{
	char        hx[96];
	const char *h[] = {"Content-Type: application/json", hx, NULL};
	http_resp   r;
	long        status;

	snprintf(hx, sizeof(hx), "X-Forwarded-For: %s", xff);
	if (http_do("POST", "/api/v1/auth/refresh", h, "{}", 2, &r) != 0)
		return -1;
	status = r.status;
	if (status == 429)
		assert_non_null(http_header(&r, "Retry-After", hx, sizeof(hx)));
	http_resp_free(&r);
	return status;
}

/* Anonymous clients are limited per address (burst 10 at 1/s), the address being the right-most
 * X-Forwarded-For hop that is not a trusted proxy: another address has its own bucket, and a
 * client cannot pick its address by writing one to the left. */
static void
test_anonymous_rate_limit_per_address(void **state)
{
	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_not_equal(refresh_from("203.0.113.7"), 429);
	assert_int_equal(refresh_from("203.0.113.7"), 429);
	assert_int_equal(refresh_from("10.9.9.9, 203.0.113.7"), 429); /* spoofed left part */
	assert_int_not_equal(refresh_from("203.0.113.8"), 429);
	assert_int_equal(refresh_from("203.0.113.7, 127.0.0.1"),
	                 429); /* a trusted hop is skipped */
}

static long
login_from(const char *email, const char *password, const char *xff)
{
	char        body[512], hx[96];
	const char *h[] = {"Content-Type: application/json", hx, NULL};
	http_resp   r;
	long        status;

	snprintf(hx, sizeof(hx), "X-Forwarded-For: %s", xff);
	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", email, password);
	if (http_do("POST", "/api/v1/auth/login", h, body, strlen(body), &r) != 0)
		return -1;
	status = r.status;
	http_resp_free(&r);
	return status;
}

/* Wrong passwords from a stranger's address throttle that address only: the owner, from their
 * own address, still logs in with the right password. */
static void
test_stranger_cannot_lock_owner_out(void **state)
{
	char email[160];

	(void)state;
	assert_int_equal(http_register("lockout", "owner-pass-123", email, sizeof(email)), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(login_from(email, "wrong-password", "192.0.2.66"), 401);
	assert_int_equal(login_from(email, "owner-pass-123", "192.0.2.66"), 429);
	assert_int_equal(login_from(email, "owner-pass-123", "192.0.2.10"), 200);
}

/* One address holds at most 24 sockets: the 25th is closed at once; others still get in. */
static void
test_connection_cap_per_address(void **state)
{
	int fds[25];

	(void)state;
	for (int i = 0; i < 24; i++) {
		assert_true((fds[i] = raw_open(strict)) >= 0);
		assert_true(raw_send(fds[i], HEALTHZ, strlen(HEALTHZ)));
		assert_int_equal(raw_response(fds[i], resp, sizeof(resp), 5000), 200);
	}
	assert_true((fds[24] = raw_open(strict)) >= 0);
	(void)raw_send(fds[24], HEALTHZ, strlen(HEALTHZ));
	assert_true(raw_closed_within(fds[24], 2000));
	raw_close(fds[24]);
	for (int i = 0; i < 24; i++)
		raw_close(fds[i]);
	/* Freed slots are usable again once the server has seen the closes: poll for it. */
	{
		int ok = 0;
		for (int tries = 0; tries < 50 && !ok; tries++) {
			int fd = raw_open(strict);
			ok = fd >= 0 && raw_send(fd, HEALTHZ, strlen(HEALTHZ)) &&
			     raw_response(fd, resp, sizeof(resp), 1000) == 200;
			raw_close(fd);
		}
		assert_true(ok);
	}
}

/* Opens an upload of `len` bytes on the strict edge from `addr` and sends its first `sent`. */
static int
upload_open(const char *bearer, const char *addr, size_t len, const char *data, size_t sent)
{
	char req[2600];
	int  fd, n;

	n = snprintf(req, sizeof(req),
	             "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\n%s\r\n"
	             "X-Forwarded-For: %s\r\nContent-Type: application/pdf\r\n"
	             "Content-Length: %zu\r\n\r\n",
	             bearer, addr, len);
	assert_true((fd = raw_open(strict)) >= 0);
	assert_true(raw_send(fd, req, (size_t)n));
	if (sent > 0)
		assert_true(raw_send(fd, data, sent));
	return fd;
}

/* Bodies in flight share a memory budget (2.5 MiB here), but an upload is streamed to svc-pdf in
 * 1 MiB pieces, so it holds at most a piece of it (edge/upload.h): a 6 MB upload, larger than the
 * whole budget, goes through; two uploads held half-way hold a piece each; a third that would
 * pass the budget is refused with 503 and Retry-After before its body is read. */
static void
test_body_budget(void **state)
{
	char        bearer[2048];
	cm_buf      pdf;
	pdf_testpdf o = {.npages = 2, .title = "Over Budget", .padding = 6000000};
	int         held[2], fd, status;

	(void)state;
	/* The connection-cap test before filled this address's 24 slots: the edge frees them as it
	 * sees the closes, which may take a moment (seen under ASan: the first connect refused). */
	for (int64_t until = cm_mono_ms() + 5000;
	     http_new_user("budget", "budget-pass-1", bearer, sizeof(bearer)) != 0; usleep(20000))
		assert_true(cm_mono_ms() < until);
	cm_buf_init(&pdf, 16u << 20);
	assert_int_equal(pdf_testpdf_build(&o, &pdf), CM_OK);
	fd = upload_open(bearer, "198.51.100.60", pdf.len, pdf.data, pdf.len);
	status = raw_response(fd, resp, sizeof(resp), 20000);
	raw_close(fd);
	assert_int_equal(status, 201);
	/* Its budget is given back as the edge finishes the request, a moment after the answer. */
	for (int64_t until = cm_mono_ms() + 5000;
	     http_metric_at(strict, "edge_request_body_bytes") != 0; usleep(10000))
		assert_true(cm_mono_ms() < until);

	held[0] = upload_open(bearer, "198.51.100.61", 8000000, pdf.data, 1200000);
	held[1] = upload_open(bearer, "198.51.100.62", 8000000, pdf.data, 1200000);
	/* Both admitted (the edge's loops take connections in either order): a piece each. */
	for (int64_t until = cm_mono_ms() + 5000;
	     http_metric_at(strict, "edge_request_body_bytes") < 2 * (1024 * 1024 + 65536);
	     usleep(10000))
		assert_true(cm_mono_ms() < until);
	fd = upload_open(bearer, "198.51.100.63", 2000000, NULL, 0);
	assert_int_equal(raw_response(fd, resp, sizeof(resp), 5000), 503);
	assert_non_null(strstr(resp, "Retry-After: 1"));
	assert_non_null(strstr(resp, "\"code\":\"UNAVAILABLE\""));
	raw_close(fd);
	raw_close(held[0]);
	raw_close(held[1]);
	cm_buf_fini(&pdf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_desync_on_early_answers),
	    cmocka_unit_test(test_large_body_after_early_answer_closes),
	    cmocka_unit_test(test_chunked_body_after_early_answer_dropped),
	    cmocka_unit_test(test_idle_and_slowloris_closed),
	    cmocka_unit_test(test_slow_live_body_not_cut),
	    cmocka_unit_test(test_header_and_uri_limits),
	    cmocka_unit_test(test_expect_100_continue),
	    cmocka_unit_test(test_websocket_host_and_origin),
	    cmocka_unit_test(test_csrf_on_legacy_cookie_routes),
	    cmocka_unit_test(test_anonymous_rate_limit_per_address),
	    cmocka_unit_test(test_stranger_cannot_lock_owner_out),
	    cmocka_unit_test(test_connection_cap_per_address),
	    cmocka_unit_test(test_body_budget),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
