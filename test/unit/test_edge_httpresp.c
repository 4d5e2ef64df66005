/*
 * test_edge_httpresp.c - the proxy's response parser (edge/httpresp.h): each framing (length,
 * chunked with extensions and trailers, until close, none for HEAD/204/304), interim 1xx
 * responses, keep-alive by version and Connection, the bounds, and what it refuses. Every
 * well-formed case is fed whole, a byte at a time and split at every point, with the same
 * outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpresp.h"

typedef struct outcome {
	edge_resp_rc rc;
	int          status;
	bool         keep_alive;
	size_t       used; /* of the whole input, when DONE */
	char         headers[1024];
	size_t       nheaders;
	char         body[1024];
	size_t       nbody;
} outcome;

/* Feeds s in pieces of `step` bytes (0: whole), then EOF when `eof` and still MORE. */
static void
run(const char *s, size_t n, bool head, size_t step, bool eof, size_t hmax, size_t bmax, outcome *o)
{
	cm_buf        h, b;
	edge_httpresp p;
	size_t        at = 0, used;

	memset(o, 0, sizeof(*o));
	cm_buf_init(&h, hmax);
	cm_buf_init(&b, bmax);
	edge_httpresp_init(&p, head, &h, &b);
	o->rc = EDGE_RESP_MORE;
	while (at < n && o->rc == EDGE_RESP_MORE) {
		size_t k = step == 0 || n - at < step ? n - at : step;
		o->rc = edge_httpresp_feed(&p, s + at, k, &used);
		assert_true(used <= k);
		if (o->rc == EDGE_RESP_MORE)
			assert_int_equal(used, k);
		at += used;
	}
	if (o->rc == EDGE_RESP_MORE && eof)
		o->rc = edge_httpresp_eof(&p);
	o->used = at;
	o->status = p.status;
	o->keep_alive = p.keep_alive;
	if (h.len > 0 && h.len <= sizeof(o->headers)) {
		memcpy(o->headers, h.data, h.len);
		o->nheaders = h.len;
	}
	if (b.len > 0 && b.len <= sizeof(o->body)) {
		memcpy(o->body, b.data, b.len);
		o->nbody = b.len;
	}
	edge_httpresp_fini(&p);
	cm_buf_fini(&h);
	cm_buf_fini(&b);
}

/* The outcome of s, the same whole, byte by byte and split at every point. */
static void
parse(const char *s, bool head, bool eof, outcome *o)
{
	size_t  n = strlen(s);
	outcome x;

	run(s, n, head, 0, eof, 4096, 4096, o);
	run(s, n, head, 1, eof, 4096, 4096, &x);
	assert_int_equal(x.rc, o->rc);
	if (o->rc == EDGE_RESP_DONE) {
		assert_int_equal(x.used, o->used);
		assert_int_equal(x.nbody, o->nbody);
		if (o->nbody > 0)
			assert_memory_equal(x.body, o->body, o->nbody);
	}
	for (size_t cut = 1; cut < n; cut++) {
		cm_buf        h, b;
		edge_httpresp p;
		size_t        used = 0, u2 = 0;
		edge_resp_rc  rc;

		cm_buf_init(&h, 4096);
		cm_buf_init(&b, 4096);
		edge_httpresp_init(&p, head, &h, &b);
		rc = edge_httpresp_feed(&p, s, cut, &used);
		if (rc == EDGE_RESP_MORE)
			rc = edge_httpresp_feed(&p, s + cut, n - cut, &u2);
		if (rc == EDGE_RESP_MORE && eof)
			rc = edge_httpresp_eof(&p);
		assert_int_equal(rc, o->rc);
		if (rc == EDGE_RESP_DONE) {
			assert_int_equal(used + u2, o->used);
			assert_int_equal(b.len, o->nbody);
			if (o->nbody > 0)
				assert_memory_equal(b.data, o->body, o->nbody);
			assert_int_equal(p.status, o->status);
			assert_int_equal(p.keep_alive, o->keep_alive);
		}
		edge_httpresp_fini(&p);
		cm_buf_fini(&h);
		cm_buf_fini(&b);
	}
}

/* The value of header `name` in o ("name\0value\0" records), NULL when absent. */
static const char *
header(const outcome *o, const char *name)
{
	for (const char *p = o->headers; p < o->headers + o->nheaders;
	     p += strlen(p) + 1, p += strlen(p) + 1)
		if (strcmp(p, name) == 0)
			return p + strlen(p) + 1;
	return NULL;
}

static void
test_content_length(void **state)
{
	static const char r[] =
	    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
	    "X-A:   spaced  \r\n\r\nhello";
	outcome o;

	(void)state;
	parse(r, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.status, 200);
	assert_true(o.keep_alive);
	assert_int_equal(o.nbody, 5);
	assert_memory_equal(o.body, "hello", 5);
	assert_string_equal(header(&o, "Content-Type"), "text/html");
	assert_string_equal(header(&o, "X-A"), "spaced");
	assert_int_equal(o.used, strlen(r));
}

/* Bytes after a whole response are not taken: the caller sees a second response coming. */
static void
test_stops_at_the_end(void **state)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200";
	outcome           o;

	(void)state;
	run(r, strlen(r), false, 0, false, 4096, 4096, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.used, strlen(r) - strlen("HTTP/1.1 200"));
	assert_memory_equal(o.body, "ok", 2);
}

static void
test_chunked(void **state)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	                        "5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n"
	                        "X-Trailer: t\r\n\r\n";
	static const char lf[] =
	    "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nA\n0123456789\n0\n\n";
	outcome o;

	(void)state;
	parse(r, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_true(o.keep_alive);
	assert_int_equal(o.nbody, 12);
	assert_memory_equal(o.body, "hello world!", 12);
	assert_null(header(&o, "X-Trailer")); /* trailers are skipped */
	parse(lf, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_memory_equal(o.body, "0123456789", 10);
}

static void
test_until_close(void **state)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
	static const char te[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz";
	outcome           o;

	(void)state;
	parse(r, false, true, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_false(o.keep_alive);
	assert_memory_equal(o.body, "all of it", 9);
	parse(te, false, true, &o); /* not chunked last: the close ends it */
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_false(o.keep_alive);
	/* Without the close it is not over. */
	run(r, strlen(r), false, 0, false, 4096, 4096, &o);
	assert_int_equal(o.rc, EDGE_RESP_MORE);
}

static void
test_no_body(void **state)
{
	static const char with_len[] = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
	static const char n204[] = "HTTP/1.1 204 No Content\r\n\r\n";
	static const char n304[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
	outcome           o;

	(void)state;
	parse(with_len, true, false, &o); /* HEAD */
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.nbody, 0);
	assert_true(o.keep_alive);
	parse(n204, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.status, 204);
	parse(n304, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.status, 304);
}

/* 100 Continue and 103 Early Hints come before the answer; their headers are not its own. */
static void
test_interim(void **state)
{
	static const char r[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
	                        "Link: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\n"
	                        "Location: /x\r\nContent-Length: 0\r\n\r\n";
	outcome           o;

	(void)state;
	parse(r, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_int_equal(o.status, 201);
	assert_null(header(&o, "Link"));
	assert_string_equal(header(&o, "Location"), "/x");
}

static void
test_keep_alive(void **state)
{
	static const char close11[] = "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\n"
	                              "Content-Length: 0\r\n\r\n";
	static const char http10[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const char ka10[] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	                           "Content-Length: 0\r\n\r\n";
	static const char both[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	outcome           o;

	(void)state;
	parse(close11, false, false, &o);
	assert_false(o.keep_alive);
	parse(http10, false, false, &o);
	assert_false(o.keep_alive);
	parse(ka10, false, false, &o);
	assert_true(o.keep_alive);
	parse(both, false, false, &o); /* both framings: chunked, and never reused */
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_memory_equal(o.body, "abc", 3);
	assert_false(o.keep_alive);
}

/* Folded, malformed and NUL-free junk lines are dropped; the rest is kept. */
static void
test_dropped_lines(void **state)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nX-Good: 1\r\n folded continuation\r\n"
	                        "no colon here\r\nBad Name: x\r\n: empty name\r\n"
	                        "Content-Length: 0\r\n\r\n";
	outcome           o;

	(void)state;
	parse(r, false, false, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
	assert_string_equal(header(&o, "X-Good"), "1");
	assert_null(header(&o, "Bad Name"));
	assert_null(header(&o, ""));
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
	    "HTTP/2 200 OK\r\n\r\n",
	    "ICY 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 600 Odd\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nxx",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n",
	};
	outcome o;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i], false, false, &o);
		assert_int_equal(o.rc, EDGE_RESP_BAD);
	}
	/* A NUL in the head. */
	{
		static const char nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
		run(nul, sizeof(nul) - 1, false, 0, false, 4096, 4096, &o);
	}
	assert_int_equal(o.rc, EDGE_RESP_BAD);
	/* Cut short: EOF before the head, inside a length body, inside a chunk. */
	parse("HTTP/1.1 200 OK\r\nContent-Le", false, true, &o);
	assert_int_equal(o.rc, EDGE_RESP_BAD);
	parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false, true, &o);
	assert_int_equal(o.rc, EDGE_RESP_BAD);
	parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", false, true, &o);
	assert_int_equal(o.rc, EDGE_RESP_BAD);
}

static void
test_bounds(void **state)
{
	static const char r[] =
	    "HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	    "Content-Length: 10\r\n\r\n0123456789";
	outcome o;

	(void)state;
	run(r, strlen(r), false, 0, false, 40, 4096, &o); /* the head past its cap */
	assert_int_equal(o.rc, EDGE_RESP_TOOBIG);
	run(r, strlen(r), false, 3, false, 40, 4096, &o);
	assert_int_equal(o.rc, EDGE_RESP_TOOBIG);
	run(r, strlen(r), false, 0, false, 4096, 8, &o); /* the body past its cap */
	assert_int_equal(o.rc, EDGE_RESP_TOOBIG);
	run(r, strlen(r), false, 0, false, 4096, 10, &o);
	assert_int_equal(o.rc, EDGE_RESP_DONE);
}

/* The size a streamed answer announces, known from the head alone; the body moved to another
 * buffer half-way keeps its bytes in order. */
static void
test_body_size_and_moved_body(void **state)
{
	static const struct {
		const char *head;
		int64_t     size;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n", 70000},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -1},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -1},
	    {"HTTP/1.0 200 OK\r\n\r\n", -1},
	    {"HTTP/1.1 200 OK\r\nContent-Len", -1}, /* the head is not in yet */
	};
	cm_buf        h, b, moved;
	edge_httpresp p;
	size_t        used;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cm_buf_init(&h, 4096);
		cm_buf_init(&b, 4096);
		edge_httpresp_init(&p, false, &h, &b);
		(void)edge_httpresp_feed(&p, cases[i].head, strlen(cases[i].head), &used);
		assert_int_equal(edge_httpresp_body_size(&p), cases[i].size);
		edge_httpresp_fini(&p);
		cm_buf_fini(&h);
		cm_buf_fini(&b);
	}
	cm_buf_init(&h, 4096);
	cm_buf_init(&b, 4096);
	cm_buf_init(&moved, 4096);
	edge_httpresp_init(&p, false, &h, &b);
	assert_int_equal(
	    edge_httpresp_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc",
	                       strlen("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc"), &used),
	    EDGE_RESP_MORE);
	assert_string_equal(b.data, "abc");
	edge_httpresp_set_body(&p, &moved);
	assert_int_equal(edge_httpresp_feed(&p, "def", 3, &used), EDGE_RESP_DONE);
	assert_string_equal(moved.data, "def");
	assert_int_equal(b.len, 3);
	edge_httpresp_fini(&p);
	cm_buf_fini(&h);
	cm_buf_fini(&b);
	cm_buf_fini(&moved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_content_length),
	    cmocka_unit_test(test_stops_at_the_end),
	    cmocka_unit_test(test_chunked),
	    cmocka_unit_test(test_until_close),
	    cmocka_unit_test(test_no_body),
	    cmocka_unit_test(test_interim),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_dropped_lines),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_body_size_and_moved_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
