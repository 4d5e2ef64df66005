/*
 * test_frontend_proxy.c - every path outside the API goes to the web app's own server (here
 * test/harness/fakefront.py at EDGE_FRONTEND_URL), through edge/frontend.c.
 *
 * Covered: pages, assets and the app's own 404 on the edge's origin; a redirect the app aims at
 * where it believes it lives (http://localhost:3100, or its own origin) comes back on the origin
 * the browser used, and only that kind; Next's navigation headers reach the app and its response
 * headers (two Set-Cookie among them) come back; hop-by-hop headers stay behind both ways; the
 * forwarding headers are the edge's, not the client's; page after page on one kept-alive client
 * connection rides one kept-alive upstream connection (the pool of the edge's loop that serves
 * it); a failing app is a 502 in the JSON error shape; large and unframed answers are streamed
 * (the first part reaches the client while the app holds the rest), cut short when the app dies
 * or stalls after the head, and ended when the client leaves; a slow app is a 504;
 * X-Forwarded-Proto counts only from a trusted proxy (the strict edge trusts 127.0.0.1).
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "cm/util.h"
#include "http_client.h"
#include "raw_conn.h"

/* How many header lines of a response (raw text) are exactly "name: value". */
static int
count_header(const char *headers, const char *name, const char *value)
{
	size_t      n = strlen(name), v = strlen(value);
	int         count = 0;
	const char *p = headers;

	while (p != NULL && *p != '\0') {
		const char *end = strstr(p, "\r\n");
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == n + 2 + v && strncasecmp(p, name, n) == 0 && p[n] == ':' &&
		    p[n + 1] == ' ' && memcmp(p + n + 2, value, v) == 0)
			count++;
		p = end != NULL ? end + 2 : NULL;
	}
	return count;
}

/* A request header as the fake app received it ("" when it did not). */
static const char *
seen(const http_resp *r, const char *lower_name)
{
	return js(json_object_get(r->json, "headers"), lower_name);
}

static json_int_t
upstream_conn(const http_resp *r)
{
	return json_integer_value(json_object_get(r->json, "conn"));
}

/* HEAD path through the proxy: 200, no body, Content-Length: length. */
static void
head_announces(const char *path, const char *length)
{
	http_resp r;
	char      buf[64];

	assert_int_equal(http_do("HEAD", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	assert_non_null(http_header(&r, "Content-Length", buf, sizeof(buf)));
	assert_string_equal(buf, length);
	http_resp_free(&r);
}

static void
test_pages(void **state)
{
	http_resp r;
	char      buf[128];

	(void)state;
	assert_int_equal(http_do("GET", "/", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "frontend-marker"));
	assert_non_null(http_header(&r, "Content-Type", buf, sizeof(buf)));
	assert_string_equal(buf, "text/html");
	assert_non_null(http_header(&r, "X-Request-Id", buf, sizeof(buf)));
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/static/app.js?v=1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "console.log"));
	/* The app's caching survives the edge (API answers are no-store; pages are not). */
	assert_non_null(http_header(&r, "Cache-Control", buf, sizeof(buf)));
	assert_string_equal(buf, "public, max-age=60");
	http_resp_free(&r);
	/* HEAD announces the size GET would send (20 bytes; a streamed answer's too), not the
	 * empty body's. */
	head_announces("/static/app.js", "20");
	head_announces("/_big?n=300000", "300000");
	assert_int_equal(http_do("GET", "/no/such/page", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404); /* the app's own answer */
	assert_string_equal(r.body, "not found");
	http_resp_free(&r);
	/* The API stays the API. */
	assert_int_equal(http_do("GET", "/api/nope", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	assert_non_null(json_object_get(r.json, "detail"));
	http_resp_free(&r);
}

static void
expect_location(const char *path, long status, const char *location)
{
	http_resp r;
	char      buf[256];

	assert_int_equal(http_do("GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, status);
	assert_non_null(http_header(&r, "Location", buf, sizeof(buf)));
	assert_string_equal(buf, location);
	http_resp_free(&r);
}

/* `next start` redirects to where it believes it lives; the browser must stay on the edge. */
static void
test_redirects_stay_on_the_edge(void **state)
{
	char want[256];

	(void)state;
	snprintf(want, sizeof(want), "%s/login?next=/x", http_base());
	expect_location("/_redirect", 307, want);
	snprintf(want, sizeof(want), "%s/self", http_base());
	expect_location("/_redirect_self", 308, want); /* EDGE_FRONTEND_URL's own origin */
	/* Relative references and other sites pass as the app wrote them. */
	expect_location("/_redirect_rel", 302, "/login");
	expect_location("/_redirect_ext", 302, "https://example.com/away");
}

static void
test_headers_both_ways(void **state)
{
	static const char *const h[] = {"RSC: 1",
	                                "Next-Router-State-Tree: %5B%22%22%2C%7B%7D%5D",
	                                "Next-Router-Prefetch: 1",
	                                "Cookie: theme=dark",
	                                "Content-Type: text/plain;charset=UTF-8",
	                                "Connection: X-Hop-Req",
	                                "X-Hop-Req: must not cross",
	                                "Keep-Alive: timeout=9",
	                                "TE: trailers",
	                                "Proxy-Authorization: Basic eDp5",
	                                "X-Forwarded-For: 6.6.6.6",
	                                "X-Forwarded-Host: evil.example",
	                                "X-Forwarded-Proto: https",
	                                NULL};
	http_resp                r;
	char                     buf[256], host[128], want[256];

	(void)state;
	assert_int_equal(http_do("POST", "/_echo?a=1", h, "[\"act\"]", 7, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	/* What the app received: the request as sent, with Next's navigation headers. */
	assert_string_equal(js(r.json, "method"), "POST");
	assert_string_equal(js(r.json, "path"), "/_echo?a=1");
	assert_int_equal(json_integer_value(json_object_get(r.json, "body_len")), 7);
	assert_string_equal(seen(&r, "rsc"), "1");
	assert_string_equal(seen(&r, "next-router-state-tree"), "%5B%22%22%2C%7B%7D%5D");
	assert_string_equal(seen(&r, "next-router-prefetch"), "1");
	assert_string_equal(seen(&r, "cookie"), "theme=dark");
	assert_string_equal(seen(&r, "content-type"), "text/plain;charset=UTF-8");
	/* ...without the hop-by-hop ones... */
	assert_null(json_object_get(json_object_get(r.json, "headers"), "x-hop-req"));
	assert_null(json_object_get(json_object_get(r.json, "headers"), "connection"));
	assert_null(json_object_get(json_object_get(r.json, "headers"), "keep-alive"));
	assert_null(json_object_get(json_object_get(r.json, "headers"), "te"));
	assert_null(json_object_get(json_object_get(r.json, "headers"), "proxy-authorization"));
	assert_null(json_object_get(json_object_get(r.json, "headers"), "expect"));
	/* ...and with the edge's forwarding headers, not the client's (no trusted proxy here). */
	cm_strlcpy(host, http_base() + strlen("http://"), sizeof(host));
	assert_string_equal(seen(&r, "host"), "127.0.0.1:28090");
	assert_string_equal(seen(&r, "x-forwarded-for"), "127.0.0.1");
	assert_string_equal(seen(&r, "x-forwarded-proto"), "http");
	assert_string_equal(seen(&r, "x-forwarded-host"), host);
	assert_non_null(http_header(&r, "X-Request-Id", buf, sizeof(buf)));
	assert_string_equal(seen(&r, "x-request-id"), buf);

	/* What came back: the app's headers, both cookies, its Content-Location on our origin. */
	assert_non_null(http_header(&r, "X-Nextjs-Cache", buf, sizeof(buf)));
	assert_string_equal(buf, "HIT");
	assert_non_null(http_header(&r, "Vary", buf, sizeof(buf)));
	assert_string_equal(buf, "RSC, Next-Router-State-Tree, Next-Router-Prefetch");
	assert_int_equal(count_header(r.headers, "Set-Cookie", "a=1; Path=/"), 1);
	assert_int_equal(count_header(r.headers, "Set-Cookie", "b=2; Path=/; HttpOnly"), 1);
	snprintf(want, sizeof(want), "%s/_echo?from=app", http_base());
	assert_non_null(http_header(&r, "Content-Location", buf, sizeof(buf)));
	assert_string_equal(buf, want);
	/* ...and not its hop-by-hop ones. */
	assert_null(http_header(&r, "X-Hop-Resp", buf, sizeof(buf)));
	assert_null(http_header(&r, "Keep-Alive", buf, sizeof(buf)));
	assert_null(http_header(&r, "Proxy-Authenticate", buf, sizeof(buf)));
	assert_null(http_header(&r, "Trailer", buf, sizeof(buf)));
	http_resp_free(&r);
}

/* Page after page on one client connection rides one upstream connection: the client's
 * connection stays on one of the edge's event loops, and that loop's pool keeps the upstream one
 * alive (a new client connection may land on another loop, with a pool of its own). */
static void
test_one_upstream_connection(void **state)
{
	http_session *s = http_session_open();
	http_resp     r;
	json_int_t    first;

	(void)state;
	assert_non_null(s);
	assert_int_equal(http_session_do(s, "GET", "/_echo", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	first = upstream_conn(&r);
	assert_true(first > 0);
	http_resp_free(&r);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(
		    http_session_do(s, i % 2 == 0 ? "GET" : "POST", "/_echo", NULL, "{}", 2, &r),
		    0);
		assert_int_equal(r.status, 200);
		assert_int_equal(upstream_conn(&r), first);
		http_resp_free(&r);
	}
	assert_int_equal(http_session_connects(s), 1);
	http_session_close(s);
}

/* Framings an app's server uses: a chunked page (extension and trailer dropped), a 204, a HEAD
 * answered with a Content-Length and no body; and a kept-alive upstream connection the app closes
 * after its answer (its keep-alive timeout): the next request still gets its page, on a fresh
 * connection, on the same client connection. */
static void
test_framings_and_stale_connections(void **state)
{
	http_session *s = http_session_open();
	http_resp     r;
	json_int_t    before, after;

	(void)state;
	assert_non_null(s);
	assert_int_equal(http_session_do(s, "GET", "/_chunked", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, strlen("<html><body>streamed</body></html>"));
	assert_memory_equal(r.body, "<html><body>streamed</body></html>", r.len);
	http_resp_free(&r);
	assert_int_equal(http_session_do(s, "GET", "/_empty", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.len, 0);
	http_resp_free(&r);
	assert_int_equal(http_session_do(s, "HEAD", "/", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	http_resp_free(&r);

	assert_int_equal(http_session_do(s, "GET", "/_echo", NULL, NULL, 0, &r), 0);
	before = upstream_conn(&r);
	http_resp_free(&r);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(http_session_do(s, "GET", "/_drop_after", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_memory_equal(r.body, "dropped after", r.len);
		http_resp_free(&r);
		/* At once, while the close may still be on its way. */
		assert_int_equal(http_session_do(s, "GET", "/_echo", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		after = upstream_conn(&r);
		assert_true(after != before);
		before = after;
		http_resp_free(&r);
	}
	assert_int_equal(http_session_connects(s), 1);
	http_session_close(s);
}

/* A body as large as the route takes reaches the app whole, the head sent from the proxy's
 * buffer and the body straight from the request's (one sendmsg, two pieces). */
static void
test_large_body(void **state)
{
	enum { N = 60000 }; /* under the route's body cap (EDGE_JSON_BODY_MAX) */
	const char *const h[] = {"Content-Type: application/octet-stream", NULL};
	char             *body = malloc(N);
	http_resp         r;

	(void)state;
	assert_non_null(body);
	memset(body, 'b', N);
	assert_int_equal(http_do("POST", "/_echo", h, body, N, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	assert_int_equal(json_integer_value(json_object_get(r.json, "body_len")), N);
	http_resp_free(&r);
	free(body);
}

static void
test_app_failures(void **state)
{
	http_resp r;
	char      path[64];

	(void)state;
	/* The app's server closes without answering (retried once on a fresh connection). */
	assert_int_equal(http_do("GET", "/_hangup", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "UNAVAILABLE");
	http_resp_free(&r);
	/* An app that dies mid-body: the edge never passes the torn answer off as a whole one. */
	assert_int_equal(http_do("GET", "/_cut", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "UNAVAILABLE");
	http_resp_free(&r);
	/* An answer past what the edge would hold (16 MiB) is streamed through whole, and the proxy
	 * goes on serving. */
	snprintf(path, sizeof(path), "/_big?n=%d", 16 * 1024 * 1024 + 1);
	assert_int_equal(http_do("GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 16 * 1024 * 1024 + 1);
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/_echo", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
}

/* A raw GET of path to base whose answer's head (200) is read into head; the connection. */
static int
get_head(const char *base, const char *path, char *head, size_t cap)
{
	char req[512];
	int  fd = raw_open(base);

	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	assert_true(raw_send(fd, req, strlen(req)));
	assert_int_equal(raw_head(fd, head, cap, 10000), 200);
	return fd;
}

/* A chunked body's decoded length, -1 while its last chunk has not come (or on bad framing). */
static long
chunked_len(const char *p, size_t n)
{
	size_t i = 0;
	long   total = 0;

	for (;;) {
		char         *end;
		unsigned long size;
		const char   *crlf = memmem(p + i, n - i, "\r\n", 2);

		if (crlf == NULL)
			return -1;
		size = strtoul(p + i, &end, 16);
		if (end == p + i)
			return -1;
		i = (size_t)(crlf - p) + 2;
		if (size == 0)
			return n - i >= 2 && memcmp(p + i, "\r\n", 2) == 0 ? total : -1;
		if (n - i < size + 2)
			return -1;
		total += (long)size;
		i += size + 2;
	}
}

/* Large and unframed answers are streamed: the first part reaches the client while the app
 * still holds the rest (the app sends it only when told to, by a request the test makes after
 * seeing the first part), in both framings, on a connection that then goes on serving. */
static void
test_streamed_answers(void **state)
{
	static char body[400000];
	char        req[256], head[4096];
	size_t      len;
	bool        closed;
	http_resp   r;
	int         fd;

	(void)state;
	/* Content-Length framed, larger than what is collected. */
	fd = get_head(http_base(), "/_gated?id=len&first=150000&rest=50000", head, sizeof(head));
	assert_non_null(strcasestr(head, "\r\nContent-Length: 200000\r\n"));
	len = 0;
	assert_true(raw_read(fd, body, sizeof(body), &len, 150000, 5000, &closed));
	assert_false(closed);
	assert_int_equal(body[149999], 'a');
	assert_int_equal(http_do("GET", "/_release?id=len", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 204);
	http_resp_free(&r);
	assert_true(raw_read(fd, body, sizeof(body), &len, 200000, 10000, &closed));
	assert_int_equal(len, 200000);
	assert_int_equal(body[199999], 'b');

	/* Chunked from the app (a page streamed as it renders): streamed whatever its size, and
	 * chunked to the client, on the same kept-alive connection. */
	snprintf(
	    req, sizeof(req),
	    "GET /_gated?id=chunks&first=1000&rest=300000&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(raw_send(fd, req, strlen(req)));
	assert_int_equal(raw_head(fd, head, sizeof(head), 10000), 200);
	assert_non_null(strcasestr(head, "\r\nTransfer-Encoding: chunked\r\n"));
	assert_null(strcasestr(head, "\r\nContent-Length:"));
	len = 0;
	assert_true(raw_read(fd, body, sizeof(body), &len, 1000, 5000, &closed));
	assert_false(closed);
	assert_int_equal(http_do("GET", "/_release?id=chunks", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 204);
	http_resp_free(&r);
	while (chunked_len(body, len) < 0) {
		assert_true(raw_read(fd, body, sizeof(body), &len, len + 1, 10000, &closed));
		assert_false(closed);
	}
	assert_int_equal(chunked_len(body, len), 301000);
	snprintf(req, sizeof(req), "GET /_echo HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(raw_send(fd, req, strlen(req)));
	assert_int_equal(raw_response(fd, head, sizeof(head), 10000), 200);
	raw_close(fd);
}

/* An app that dies after the head of a streamed answer went out: the client's connection is
 * closed short of the promised length (never a whole-looking answer), and a client that leaves
 * mid-stream ends the upstream call; the proxy goes on serving after both. */
static void
test_streamed_answer_cut(void **state)
{
	static char body[1000000];
	char        head[4096];
	size_t      len = 0;
	bool        closed;
	http_resp   r;
	int         fd;

	(void)state;
	fd = get_head(http_base(), "/_cut?len=1000000&sent=200000", head, sizeof(head));
	assert_non_null(strcasestr(head, "\r\nContent-Length: 1000000\r\n"));
	assert_true(raw_read(fd, body, sizeof(body), &len, sizeof(body), 10000, &closed));
	assert_true(closed);
	assert_int_equal(len, 200000);
	raw_close(fd);

	fd = get_head(http_base(), "/_gated?id=gone&first=100000&rest=100000", head, sizeof(head));
	raw_close(fd);
	assert_int_equal(http_do("GET", "/_release?id=gone", NULL, NULL, 0, &r), 0);
	http_resp_free(&r);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(http_do("GET", "/_echo", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		http_resp_free(&r);
	}
}

/* An app too slow, on the strict edge (EDGE_PROXY_TIMEOUT_MS=1500): no answer in time is a 504 in
 * the JSON error shape; a streamed answer that stops coming is cut once nothing came for that
 * long (its head went out: the client's connection closes short of the announced length). */
static void
test_app_too_slow(void **state)
{
	static char body[200000];
	const char *strict = getenv("CM_TEST_EDGE_STRICT");
	char        req[256], head[4096];
	size_t      len = 0;
	bool        closed;
	http_resp   r;
	int         fd;

	(void)state;
	assert_non_null(strict);
	assert_true((fd = raw_open(strict)) >= 0);
	snprintf(req, sizeof(req), "GET /_stall?id=slow HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(raw_send(fd, req, strlen(req)));
	assert_int_equal(raw_response(fd, head, sizeof(head), 10000), 504);
	assert_non_null(strstr(head, "\"code\":\"DEADLINE_EXCEEDED\""));
	raw_close(fd);
	assert_int_equal(http_do("GET", "/_release?id=slow", NULL, NULL, 0, &r), 0);
	http_resp_free(&r);

	fd = get_head(strict, "/_gated?id=stalled&first=100000&rest=100000", head, sizeof(head));
	assert_true(raw_read(fd, body, sizeof(body), &len, sizeof(body), 10000, &closed));
	assert_true(closed);
	assert_int_equal(len, 100000);
	raw_close(fd);
	assert_int_equal(http_do("GET", "/_release?id=stalled", NULL, NULL, 0, &r), 0);
	http_resp_free(&r);
}

/* A raw GET of path to base with Host and extra header lines; the Location it gets, into out. */
static void
raw_location(const char *base, const char *path, const char *host, const char *extra, char *out,
             size_t n)
{
	char        req[1024], reply[8192];
	int         fd = raw_open(base);
	const char *p, *end;

	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, host, extra);
	assert_true(raw_send(fd, req, strlen(req)));
	assert_int_equal(raw_response(fd, reply, sizeof(reply), 10000), 307);
	raw_close(fd);
	assert_non_null(p = strcasestr(reply, "\r\nLocation: "));
	p += strlen("\r\nLocation: ");
	assert_non_null(end = strstr(p, "\r\n"));
	assert_true((size_t)(end - p) < n);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
}

/* The browser's scheme is the edge's to know: from a trusted proxy's X-Forwarded-Proto only. */
static void
test_public_origin_from_trusted_proxy(void **state)
{
	const char *strict = getenv("CM_TEST_EDGE_STRICT");
	char        loc[256];

	(void)state;
	if (strict == NULL || strict[0] == '\0')
		strict = "http://127.0.0.1:28081";
	/* The strict edge trusts 127.0.0.1 (a client address of our own keeps its rate limits
	 * apart from test_security's). */
	raw_location(strict, "/_redirect", "app.example.com",
	             "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.90\r\n", loc,
	             sizeof(loc));
	assert_string_equal(loc, "https://app.example.com/login?next=/x");
	/* The main edge trusts nobody: the same header is the client's word and changes nothing. */
	raw_location(http_base(), "/_redirect", "app.example.com:8443",
	             "X-Forwarded-Proto: https\r\n", loc, sizeof(loc));
	assert_string_equal(loc, "http://app.example.com:8443/login?next=/x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_redirects_stay_on_the_edge),
	    cmocka_unit_test(test_headers_both_ways),
	    cmocka_unit_test(test_one_upstream_connection),
	    cmocka_unit_test(test_framings_and_stale_connections),
	    cmocka_unit_test(test_large_body),
	    cmocka_unit_test(test_app_failures),
	    cmocka_unit_test(test_streamed_answers),
	    cmocka_unit_test(test_streamed_answer_cut),
	    cmocka_unit_test(test_app_too_slow),
	    cmocka_unit_test(test_public_origin_from_trusted_proxy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
