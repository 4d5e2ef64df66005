/*
 * test_edge_routes.c - route matching, the status table and the rate limiter of the edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "edge.h"
#include "errmap.h"
#include "ratelimit.h"
#include "proto/common.pb-c.h"

static void
test_pattern(void **state)
{
	char p[EDGE_MAX_PARAMS][128];
	int  n;

	(void)state;
	assert_true(edge_pattern_match("/api/v1/auth/me", "/api/v1/auth/me", p, &n));
	assert_int_equal(n, 0);
	assert_false(edge_pattern_match("/api/v1/auth/me", "/api/v1/auth/me2", p, &n));
	assert_false(edge_pattern_match("/api/v1/auth/me", "/api/v1/auth", p, &n));
	assert_true(edge_pattern_match("/api/v1/documents/{id}/pages/{n}",
	                               "/api/v1/documents/abc/pages/7", p, &n));
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "abc");
	assert_string_equal(p[1], "7");
	assert_false(edge_pattern_match("/api/v1/documents/{id}", "/api/v1/documents/", p, &n));
	assert_false(edge_pattern_match("/api/v1/documents/{id}", "/api/v1/documents/a/b", p, &n));
}

static void
test_route_table(void **state)
{
	bool              matched;
	char              allow[64];
	const edge_route *r;

	(void)state;
	r = edge_route_match("POST", "/api/auth/login", NULL, &matched, allow, sizeof(allow));
	assert_non_null(r);
	assert_true(r->flags & EDGE_R_LEGACY);
	assert_string_equal(r->rpc, "auth.Login");
	r = edge_route_match("GET", "/api/v1/auth/me", NULL, &matched, allow, sizeof(allow));
	assert_non_null(r);
	assert_true(r->flags & EDGE_R_AUTH);
	r = edge_route_match("HEAD", "/api/v1/auth/me", NULL, &matched, allow, sizeof(allow));
	assert_non_null(r);
	r = edge_route_match("DELETE", "/api/v1/auth/me", NULL, &matched, allow, sizeof(allow));
	assert_null(r);
	assert_true(matched);
	assert_string_equal(allow, "GET");
	r = edge_route_match("GET", "/api/v1/nothing", NULL, &matched, allow, sizeof(allow));
	assert_null(r);
	assert_false(matched);
}

/* Service-only methods (deletion logs) are out of the edge's reach twice over: no route names
 * one, and no call the edge builds carries a role (services require CM_ROLE_SERVICE). */
static void
test_no_service_only_methods(void **state)
{
	const edge_route *rt;
	size_t            n;
	edge              e;
	edge_req          r;
	cm_rpc_call_opts  o;

	(void)state;
	rt = edge_routes(&n);
	assert_true(n > 20);
	for (size_t i = 0; i < n; i++) {
		const char *dot = strrchr(rt[i].rpc, '.');
		assert_non_null(dot);
		assert_string_not_equal(dot, ".Deletions");
	}
	memset(&e, 0, sizeof(e));
	e.cfg.rpc_timeout_ms = 1000;
	memset(&r, 0, sizeof(r));
	r.e = &e;
	r.authed = true;
	snprintf(r.claims.sub, sizeof(r.claims.sub), "user-1");
	edge_req_opts(&r, "qgen.GetSet", true, &o);
	assert_null(o.role);
	assert_string_equal(o.subject, "user-1");
	assert_true(o.deadline_ms > 0);
	r.authed = false;
	edge_req_opts(&r, "auth.Login", false, &o);
	assert_null(o.role);
	assert_string_equal(o.subject, "");
	edge_rpc_opts(&e, "auth.Refresh", "rid", NULL, NULL, NULL, false, &o);
	assert_null(o.role);
	assert_string_equal(o.client_addr, "");
}

static void
test_status_table(void **state)
{
	(void)state;
	assert_int_equal(edge_http_status(CM__STATUS__OK), 200);
	assert_int_equal(edge_http_status(CM__STATUS__INVALID_ARGUMENT), 400);
	assert_int_equal(edge_http_status(CM__STATUS__UNAUTHENTICATED), 401);
	assert_int_equal(edge_http_status(CM__STATUS__PERMISSION_DENIED), 403);
	assert_int_equal(edge_http_status(CM__STATUS__NOT_FOUND), 404);
	assert_int_equal(edge_http_status(CM__STATUS__ALREADY_EXISTS), 409);
	assert_int_equal(edge_http_status(CM__STATUS__FAILED_PRECONDITION), 422);
	assert_int_equal(edge_http_status(CM__STATUS__RESOURCE_EXHAUSTED), 429);
	assert_int_equal(edge_http_status(CM__STATUS__UNAVAILABLE), 503);
	assert_int_equal(edge_http_status(CM__STATUS__DEADLINE_EXCEEDED), 504);
	assert_int_equal(edge_http_status(999), 500);
}

static void
test_error_bodies(void **state)
{
	cm_buf b;

	(void)state;
	cm_buf_init(&b, 4096);
	assert_int_equal(
	    edge_error_body(&b, true, "UNAUTHENTICATED", "Not \"authenticated\"", "r1"), CM_OK);
	assert_string_equal(b.data, "{\"detail\":\"Not \\\"authenticated\\\"\"}");
	cm_buf_reset(&b);
	assert_int_equal(edge_error_body(&b, false, "NOT_FOUND", "no such route", "r2"), CM_OK);
	assert_string_equal(b.data, "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no such "
	                            "route\",\"request_id\":\"r2\"}}");
	cm_buf_fini(&b);
}

static void
test_rate_limit(void **state)
{
	edge_config   c = {.rate_per_s = 1, .rate_burst = 3, .route_limits = ""};
	edge_limiter *l = edge_limiter_alloc(&c, NULL);
	int64_t       retry;
	int           ok = 0;

	(void)state;
	assert_non_null(l);
	for (int i = 0; i < 10; i++)
		ok += edge_limiter_take(l, "10.0.0.1", NULL, &retry);
	assert_int_equal(ok, 3); /* the burst, then empty */
	assert_true(retry >= 1);
	assert_true(edge_limiter_take(l, "10.0.0.2", NULL, &retry)); /* another client */
	assert_true(edge_limiter_take(l, "", NULL, &retry));         /* unknown: not limited */
	edge_limiter_free(l);

	c.rate_per_s = c.rate_burst = 0; /* disabled */
	l = edge_limiter_alloc(&c, NULL);
	assert_non_null(l);
	for (int i = 0; i < 100; i++)
		assert_true(edge_limiter_take(l, "10.0.0.1", "u", &retry));
	edge_limiter_free(l);
}

static void
test_cookie_parse(void **state)
{
	char *a, *r;

	(void)state;
	assert_true(edge_cookie_parse("theme=dark; session=abc.def.ghi~refresh123; x=1", &a, &r));
	assert_string_equal(a, "abc.def.ghi");
	assert_string_equal(r, "refresh123");
	free(a);
	free(r);
	assert_true(edge_cookie_parse("session=only.access", &a, &r));
	assert_string_equal(a, "only.access");
	assert_null(r);
	free(a);
	/* A cookie whose name merely ends in "session" is not ours. */
	assert_false(edge_cookie_parse("mysession=abc; other=1", &a, &r));
	assert_null(a);
	assert_false(edge_cookie_parse("session=", &a, &r));
	assert_false(edge_cookie_parse(NULL, &a, &r));
	assert_false(edge_cookie_parse("", &a, &r));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pattern),
	    cmocka_unit_test(test_route_table),
	    cmocka_unit_test(test_no_service_only_methods),
	    cmocka_unit_test(test_status_table),
	    cmocka_unit_test(test_error_bodies),
	    cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_cookie_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
