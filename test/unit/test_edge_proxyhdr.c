/*
 * test_edge_proxyhdr.c - what the frontend proxy lets through (edge/proxyhdr.c): hop-by-hop and
 * Connection-named headers stay behind both ways, the proxy's own headers are its own, and only a
 * redirect the app aims at itself (its own origin or a loopback one) moves to the public origin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxyhdr.h"

#define UP "http://127.0.0.1:28090"
#define PUB "http://app.example.com"

static void
test_hop_by_hop(void **state)
{
	static const char *const hop[] = {"Connection",
	                                  "keep-alive",
	                                  "TE",
	                                  "Trailer",
	                                  "Transfer-Encoding",
	                                  "Upgrade",
	                                  "Proxy-Authorization",
	                                  "proxy-authenticate",
	                                  "Content-Length"};

	(void)state;
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
		assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, hop[i], NULL));
		assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, hop[i], NULL));
	}
	/* End-to-end headers cross, Next's navigation headers among them. */
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "RSC", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Next-Router-State-Tree", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Cookie", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Content-Type", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "Set-Cookie", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "X-Nextjs-Cache", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "Location", NULL));
	/* "Proxy-" is a prefix of names, not of every name starting with it. */
	assert_true(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "Proxyish", NULL));
}

static void
test_connection_names(void **state)
{
	(void)state;
	/* Whatever Connection lists stays behind: any case, any spacing, any position. */
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Hop", "keep-alive, x-hop"));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "X-Hop", " X-HOP ,close"));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "X-Hop", "a,\tx-hop\t"));
	/* Whole tokens only. */
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Hop", "x-hop-2, x-ho"));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Hop", ""));
}

static void
test_own_headers(void **state)
{
	(void)state;
	/* The request's framing and forwarding headers are set by the proxy, never copied. */
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Host", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Expect", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Forwarded-For", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "x-forwarded-host", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Forwarded-Proto", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "Forwarded", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "X-Request-Id", NULL));
	/* The old backend believes X-User-Id: only the edge sets it. */
	assert_false(edge_proxy_header_passes(EDGE_PROXY_REQUEST, "x-user-id", NULL));
	/* The response's Content-Type goes through r->content_type, X-Request-Id is the edge's. */
	assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "Content-Type", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "X-Request-Id", NULL));
	assert_true(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "Host", NULL));
	assert_false(edge_proxy_header_passes(EDGE_PROXY_RESPONSE, "", NULL));
}

static void
test_origin(void **state)
{
	char o[EDGE_ORIGIN_MAX];

	(void)state;
	assert_true(edge_proxy_origin("http://127.0.0.1:28090", o, sizeof(o)));
	assert_string_equal(o, UP);
	assert_true(edge_proxy_origin("HTTP://Front.Local/", o, sizeof(o)));
	assert_string_equal(o, "http://front.local:80");
	assert_true(edge_proxy_origin("https://[::1]:3000/x?y", o, sizeof(o)));
	assert_string_equal(o, "https://[::1]:3000");
	assert_true(edge_proxy_origin("https://h:", o, sizeof(o)));
	assert_string_equal(o, "https://h:443");
	assert_false(edge_proxy_origin("ftp://h/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://u@h/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http:///x", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://h:99999/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://h:0/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://h:8x/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://[::1/", o, sizeof(o)));
	assert_false(edge_proxy_origin("http://127.0.0.1:28090", o, 10)); /* no room */
}

static const char *
rewrite(const char *loc, char *out, size_t n)
{
	return edge_proxy_rewrite_location(loc, UP, PUB, out, n) ? out : NULL;
}

static void
test_rewrite_own_and_loopback(void **state)
{
	char out[256];

	(void)state;
	/* Where `next start` believes it lives. */
	assert_string_equal(rewrite("http://localhost:3100/login?next=/x", out, sizeof(out)),
	                    PUB "/login?next=/x");
	assert_string_equal(rewrite("http://127.0.0.1:3000/a#f", out, sizeof(out)), PUB "/a#f");
	assert_string_equal(rewrite("http://[::1]:3000?q=1", out, sizeof(out)), PUB "?q=1");
	assert_string_equal(rewrite("HTTP://LOCALHOST/", out, sizeof(out)), PUB "/");
	assert_string_equal(rewrite("http://localhost:3100", out, sizeof(out)), PUB);
	/* EDGE_FRONTEND_URL's own origin, spelled any equivalent way. */
	assert_string_equal(rewrite("http://127.0.0.1:28090/self", out, sizeof(out)), PUB "/self");
	assert_non_null(edge_proxy_rewrite_location("http://front:80/p", "http://front:80", PUB,
	                                            out, sizeof(out)));
	assert_string_equal(out, PUB "/p");
	assert_non_null(edge_proxy_rewrite_location("http://FRONT/p", "http://front:80", PUB, out,
	                                            sizeof(out)));
	assert_string_equal(out, PUB "/p");
}

static void
test_rewrite_leaves_others(void **state)
{
	char out[256];

	(void)state;
	/* Relative references and other sites pass unchanged. */
	assert_null(rewrite("/login", out, sizeof(out)));
	assert_null(rewrite("login?x", out, sizeof(out)));
	assert_null(rewrite("//localhost:3100/x", out, sizeof(out)));
	assert_null(rewrite("https://example.com/away", out, sizeof(out)));
	assert_null(rewrite("http://10.0.0.5:28090/x", out, sizeof(out)));
	/* Hosts that only start like a loopback one, or hide another host behind userinfo. */
	assert_null(rewrite("http://localhost.evil.com/x", out, sizeof(out)));
	assert_null(rewrite("http://localhost:3100.evil.com/x", out, sizeof(out)));
	assert_null(rewrite("http://localhost:3100@evil.com/x", out, sizeof(out)));
	assert_null(rewrite("http://127.0.0.1.nip.io/x", out, sizeof(out)));
	assert_null(rewrite("http://localhost:3100\\@evil.com/x", out, sizeof(out)));
	/* A loopback origin is the app's only over plain http. */
	assert_null(rewrite("https://localhost:3100/x", out, sizeof(out)));
	assert_null(rewrite("", out, sizeof(out)));
	assert_null(rewrite(NULL, out, sizeof(out)));
	/* No room: the value is left as it was rather than cut. */
	assert_null(rewrite("http://localhost:3100/a-long-path", out, 24));
}

static void
test_public_origin(void **state)
{
	char o[EDGE_ORIGIN_MAX];

	(void)state;
	assert_string_equal(edge_proxy_scheme(NULL, false), "http");
	/* X-Forwarded-Proto counts only from a trusted proxy, and only its first word. */
	assert_string_equal(edge_proxy_scheme("https", false), "http");
	assert_string_equal(edge_proxy_scheme("https", true), "https");
	assert_string_equal(edge_proxy_scheme(" HTTPS, http", true), "https");
	assert_string_equal(edge_proxy_scheme("http, https", true), "http");
	assert_string_equal(edge_proxy_scheme("httpsx", true), "http");
	assert_true(edge_proxy_public_origin("https", "app.example.com:8443", o, sizeof(o)));
	assert_string_equal(o, "https://app.example.com:8443");
	assert_true(edge_proxy_public_origin("http", "[::1]:28080", o, sizeof(o)));
	assert_string_equal(o, "http://[::1]:28080");
	/* A Host that is not a plain host[:port] is never echoed into a Location. */
	assert_false(edge_proxy_public_origin("http", NULL, o, sizeof(o)));
	assert_false(edge_proxy_public_origin("http", "", o, sizeof(o)));
	assert_false(edge_proxy_public_origin("http", "evil.com/x", o, sizeof(o)));
	assert_false(edge_proxy_public_origin("http", "a@b", o, sizeof(o)));
	assert_false(edge_proxy_public_origin("http", "a b", o, sizeof(o)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hop_by_hop),
	    cmocka_unit_test(test_connection_names),
	    cmocka_unit_test(test_own_headers),
	    cmocka_unit_test(test_origin),
	    cmocka_unit_test(test_rewrite_own_and_loopback),
	    cmocka_unit_test(test_rewrite_leaves_others),
	    cmocka_unit_test(test_public_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
