/*
 * test_edge_migrate.c - the migration decision (migrate.h) without servers: which routes take
 * part, the share by user bucket (even, sticky, monotone in the share), flagged users, anonymous
 * callers by address, and the settings refused at start. Requests through a real edge and the
 * stand-in old backend are in e2e_migrate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "edge.h"
#include "httpproxy.h"
#include "migrate.h"

static edge_config
cfg_with(const char *url, int64_t share, const char *routes, const char *users, bool fallback)
{
	edge_config c;

	memset(&c, 0, sizeof(c));
	c.legacy_backend_url = url;
	c.legacy_share = share;
	c.legacy_routes = routes;
	c.legacy_users = users;
	c.legacy_fallback = fallback;
	return c;
}

static edge_migrate *
alloc_ok(edge_config c)
{
	edge_migrate *m = NULL;
	char          why[256];

	assert_int_equal(edge_migrate_alloc(&m, &c, NULL, why, sizeof(why)), CM_OK);
	assert_non_null(m);
	return m;
}

static const edge_route *
route(const char *name)
{
	size_t            n;
	const edge_route *rt = edge_routes(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(rt[i].name, name) == 0)
			return &rt[i];
	fail_msg("no route %s", name);
	return NULL;
}

static void
user_id(int i, char *out, size_t n)
{
	snprintf(out, n, "00000000-0000-4000-8000-%012d", i);
}

/* Buckets are even: 100,000 ids put between 900 and 1100 in every bucket (expected 1000, sd 31). */
static void
test_buckets_even(void **state)
{
	static int count[100];
	char       id[64];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		user_id(i, id, sizeof(id));
		unsigned b = edge_migrate_bucket(id);
		assert_true(b < 100);
		count[b]++;
	}
	for (int b = 0; b < 100; b++) {
		assert_in_range(count[b], 900, 1100);
	}
	/* Stable: the same key, the same bucket (every edge replica agrees). */
	assert_int_equal(edge_migrate_bucket("alice"), edge_migrate_bucket("alice"));
}

static void
test_share(void **state)
{
	edge_migrate     *m0 = alloc_ok(cfg_with("http://127.0.0.1:1", 0, "", "", false));
	edge_migrate     *m10 = alloc_ok(cfg_with("http://127.0.0.1:1", 10, "", "", false));
	edge_migrate     *m30 = alloc_ok(cfg_with("http://127.0.0.1:1", 30, "", "", false));
	edge_migrate     *m100 = alloc_ok(cfg_with("http://127.0.0.1:1", 100, "", "", false));
	const edge_route *rt = route("legacy_pdf_list");
	char              id[64];
	int               old10 = 0;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		user_id(i, id, sizeof(id));
		edge_migrate_target t10 = edge_migrate_decide(m10, rt, id, "10.0.0.1");
		assert_int_equal(edge_migrate_decide(m0, rt, id, "10.0.0.1"), EDGE_MIGRATE_NEW);
		assert_int_equal(edge_migrate_decide(m100, rt, id, "10.0.0.1"), EDGE_MIGRATE_OLD);
		/* Sticky: asked again (from another address), the same side. */
		assert_int_equal(edge_migrate_decide(m10, rt, id, "10.9.9.9"), t10);
		/* Raising the share only moves users to the old side. */
		if (t10 == EDGE_MIGRATE_OLD)
			assert_int_equal(edge_migrate_decide(m30, rt, id, NULL), EDGE_MIGRATE_OLD);
		old10 += t10 == EDGE_MIGRATE_OLD;
	}
	/* 10% of 10,000 users, sd 30. */
	assert_in_range(old10, 900, 1100);
	edge_migrate_free(m0);
	edge_migrate_free(m10);
	edge_migrate_free(m30);
	edge_migrate_free(m100);
}

/* An anonymous caller is bucketed by its address. */
static void
test_anonymous_by_address(void **state)
{
	edge_migrate     *m = alloc_ok(cfg_with("http://127.0.0.1:1", 50, "", "", false));
	const edge_route *rt = route("legacy_pdf_list");
	char              addr[32];

	(void)state;
	for (int i = 0; i < 256; i++) {
		snprintf(addr, sizeof(addr), "10.1.2.%d", i);
		assert_int_equal(edge_migrate_decide(m, rt, NULL, addr),
		                 edge_migrate_bucket(addr) < 50 ? EDGE_MIGRATE_OLD
		                                                : EDGE_MIGRATE_NEW);
		assert_int_equal(edge_migrate_decide(m, rt, "", addr),
		                 edge_migrate_decide(m, rt, NULL, addr));
	}
	edge_migrate_free(m);
}

/* Flagged users go to the old backend whatever their bucket, on every route taking part. */
static void
test_flagged_users(void **state)
{
	edge_migrate *m = alloc_ok(cfg_with("http://127.0.0.1:1", 0, "", " u-1 ,u-3,u-2", false));

	(void)state;
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), "u-1", NULL),
	                 EDGE_MIGRATE_OLD);
	assert_int_equal(edge_migrate_decide(m, route("legacy_chat_history"), "u-2", NULL),
	                 EDGE_MIGRATE_OLD);
	assert_int_equal(edge_migrate_decide(m, route("legacy_verify"), "u-3", NULL),
	                 EDGE_MIGRATE_OLD);
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), "u-4", NULL),
	                 EDGE_MIGRATE_NEW);
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), "u-", NULL),
	                 EDGE_MIGRATE_NEW);
	/* A flagged id as an address means nothing. */
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), NULL, "u-1"),
	                 EDGE_MIGRATE_NEW);
	/* Routes that take no part stay new. */
	assert_int_equal(edge_migrate_decide(m, route("v1_me"), "u-1", NULL), EDGE_MIGRATE_NONE);
	edge_migrate_free(m);
}

/* By default every legacy route but login and logout; a list names exactly the routes. */
static void
test_routes(void **state)
{
	edge_migrate *all = alloc_ok(cfg_with("http://127.0.0.1:1", 100, "", "", false));
	edge_migrate *some = alloc_ok(
	    cfg_with("http://127.0.0.1:1", 100, "legacy_pdf_list, legacy_chat_history", "", false));
	size_t                  n;
	const edge_route       *rt = edge_routes(&n);
	static const edge_route other = {.method = "GET", .pattern = "/", .name = "frontend"};

	(void)state;
	for (size_t i = 0; i < n; i++) {
		bool moves = (rt[i].flags & EDGE_R_LEGACY) != 0 &&
		             strcmp(rt[i].name, "legacy_login") != 0 &&
		             strcmp(rt[i].name, "legacy_logout") != 0;
		bool listed = strcmp(rt[i].name, "legacy_pdf_list") == 0 ||
		              strcmp(rt[i].name, "legacy_chat_history") == 0;
		assert_int_equal(edge_migrate_decide(all, &rt[i], "u", NULL),
		                 moves ? EDGE_MIGRATE_OLD : EDGE_MIGRATE_NONE);
		assert_int_equal(edge_migrate_decide(some, &rt[i], "u", NULL),
		                 listed ? EDGE_MIGRATE_OLD : EDGE_MIGRATE_NONE);
	}
	/* A route outside the table (the frontend's) never moves. */
	assert_int_equal(edge_migrate_decide(all, &other, "u", NULL), EDGE_MIGRATE_NONE);
	assert_int_equal(edge_migrate_decide(NULL, route("legacy_pdf_list"), "u", NULL),
	                 EDGE_MIGRATE_NONE);
	edge_migrate_free(all);
	edge_migrate_free(some);
}

static void
refused(edge_config c, const char *why_has)
{
	edge_migrate *m = NULL;
	char          why[256];

	assert_int_equal(edge_migrate_alloc(&m, &c, NULL, why, sizeof(why)), CM_EINVAL);
	assert_null(m);
	assert_non_null(strstr(why, why_has));
}

static void
test_refused_at_start(void **state)
{
	edge_migrate *m = NULL;
	edge_config   off = cfg_with("", 0, "", "", false);
	char          why[256];

	(void)state;
	assert_int_equal(edge_migrate_alloc(&m, &off, NULL, why, sizeof(why)), CM_OK);
	assert_null(m);
	/* Settings that would do nothing without an old backend. */
	refused(cfg_with("", 10, "", "", false), "EDGE_LEGACY_BACKEND_URL");
	refused(cfg_with("", 0, "", "u-1", false), "EDGE_LEGACY_BACKEND_URL");
	refused(cfg_with("", 0, "", "", true), "EDGE_LEGACY_BACKEND_URL");
	/* Names that are not routes, not legacy, or the session's own. */
	refused(cfg_with("http://127.0.0.1:1", 10, "legacy_pdf_lis", "", false), "legacy_pdf_lis");
	refused(cfg_with("http://127.0.0.1:1", 10, "v1_me", "", false), "v1_me");
	refused(cfg_with("http://127.0.0.1:1", 10, "legacy_login", "", false), "legacy_login");
	refused(cfg_with("http://127.0.0.1:1", 10, "legacy_pdf_list,", "", false), "no route");
	refused(cfg_with("http://127.0.0.1:1", 10, "", "u-1,,u-2", false), "EDGE_LEGACY_USERS");
	refused(cfg_with("http://127.0.0.1:1", 10, "",
	                 "0123456789012345678901234567890123456789012345678901234567890123", false),
	        "EDGE_LEGACY_USERS");
	/* The old backend's URL is checked as it joins the proxy: an origin, http only. */
	{
		edge_httpproxy *p = NULL;
		edge_config     bad = cfg_with("http://127.0.0.1:1/prefix", 10, "", "", false);
		edge_config     good = cfg_with("http://127.0.0.1:1", 10, "", "", false);

		assert_int_equal(edge_httpproxy_open(&p), CM_OK);
		assert_int_equal(edge_migrate_alloc(&m, &bad, p, why, sizeof(why)), CM_EINVAL);
		assert_non_null(strstr(why, "EDGE_LEGACY_BACKEND_URL"));
		bad.legacy_backend_url = "https://127.0.0.1:1";
		assert_int_equal(edge_migrate_alloc(&m, &bad, p, why, sizeof(why)), CM_EINVAL);
		assert_int_equal(edge_migrate_alloc(&m, &good, p, why, sizeof(why)), CM_OK);
		assert_non_null(m);
		edge_migrate_free(m);
		edge_httpproxy_close(p);
	}
}

/* New rules take over the next decision; the old backend stays; bad rules are refused. */
static void
test_swap_rules(void **state)
{
	edge_migrate       *m = alloc_ok(cfg_with("http://127.0.0.1:1", 0, "", "", false));
	edge_migrate_rules *rules = NULL, *old;
	edge_config         c = cfg_with("http://127.0.0.1:1", 100, "", "", false);
	char                why[256];

	(void)state;
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), "u1", NULL),
	                 EDGE_MIGRATE_NEW);
	assert_int_equal(edge_migrate_rules_alloc(&rules, &c, why, sizeof(why)), CM_OK);
	assert_non_null(old = edge_migrate_swap(m, rules));
	assert_int_equal(edge_migrate_decide(m, route("legacy_pdf_list"), "u1", NULL),
	                 EDGE_MIGRATE_OLD);
	c.legacy_routes = "legacy_login";
	assert_int_equal(edge_migrate_rules_alloc(&rules, &c, why, sizeof(why)), CM_EINVAL);
	assert_non_null(strstr(why, "cannot move"));
	edge_migrate_rules_free(old);
	edge_migrate_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets_even),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_anonymous_by_address),
	    cmocka_unit_test(test_flagged_users),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_refused_at_start),
	    cmocka_unit_test(test_swap_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
