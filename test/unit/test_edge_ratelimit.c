/*
 * test_edge_ratelimit.c - the edge's rate limits without Redis: per-route overrides
 * (EDGE_ROUTE_LIMITS), the user scope, what is counted, and the overrides refused at start.
 * Shared limits through Redis and the fallback are in integration_edge_ratelimit.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "edge.h"
#include "ratelimit.h"
#include "../integration/worker_helper.h"

static int
admitted(edge_limiter *l, const char *route, const char *addr, const char *user, int n,
         int64_t *last_retry)
{
	int ok = 0;

	for (int i = 0; i < n; i++)
		ok += edge_limiter_take_route(l, route, addr, user, last_retry);
	return ok;
}

/* An override has its own buckets at its own rate; the other routes keep the default (off here). */
static void
test_route_override(void **state)
{
	edge_config   c = {.rate_per_s = 0, .route_limits = " v1_login = 1/2 ,legacy_login=0.5"};
	cm_metrics   *m = cm_metrics_alloc("edge_");
	edge_limiter *l = edge_limiter_alloc(&c, m);
	int64_t       retry = 0;

	(void)state;
	assert_non_null(l);
	assert_int_equal(admitted(l, "v1_login", "10.0.0.1", NULL, 5, &retry), 2);
	assert_int_equal(retry, 1);
	assert_int_equal(admitted(l, "v1_login", "10.0.0.2", NULL, 5, &retry), 2);
	/* 0.5/s: the burst is the rate rounded up, and the wait two seconds */
	assert_int_equal(admitted(l, "legacy_login", "10.0.0.1", NULL, 3, &retry), 1);
	assert_int_equal(retry, 2);
	assert_int_equal(admitted(l, "v1_me", "10.0.0.1", NULL, 100, &retry), 100);
	assert_int_equal(admitted(l, NULL, "10.0.0.1", NULL, 100, &retry), 100);
	assert_int_equal(
	    test_metric(m, "edge_ratelimit_rejected_total{route=\"v1_login\",scope=\"addr\"}"), 6);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"local\"}"), 1);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"redis\"}"), 0);
	assert_false(edge_limiter_shared(l));
	edge_limiter_free(l);
	cm_metrics_free(m);
}

/* The default applies to every route with one bucket per client: routes without an override
 * share it, and the user bucket limits a user across addresses. */
static void
test_default_and_user_scope(void **state)
{
	edge_config   c = {.rate_per_s = 1, .rate_burst = 3};
	cm_metrics   *m = cm_metrics_alloc("edge_");
	edge_limiter *l;
	int64_t       retry = 0;

	(void)state;
	c.route_limits = "v1_doc_upload=0"; /* an override of 0 turns that route's limit off */
	assert_non_null(l = edge_limiter_alloc(&c, m));
	assert_int_equal(admitted(l, "v1_me", "10.0.0.1", NULL, 2, &retry), 2);
	assert_int_equal(admitted(l, "v1_doc_list", "10.0.0.1", NULL, 2, &retry), 1);
	assert_int_equal(admitted(l, "v1_doc_upload", "10.0.0.1", NULL, 20, &retry), 20);
	/* user u from three addresses: three requests in all */
	assert_int_equal(admitted(l, "v1_me", "10.1.0.1", "u", 2, &retry), 2);
	assert_int_equal(admitted(l, "v1_me", "10.1.0.2", "u", 2, &retry), 1);
	assert_int_equal(admitted(l, "v1_me", "10.1.0.3", "u", 1, &retry), 0);
	assert_true(retry >= 1);
	assert_int_equal(
	    test_metric(m, "edge_ratelimit_rejected_total{route=\"v1_me\",scope=\"user\"}"), 2);
	assert_int_equal(
	    test_metric(m, "edge_ratelimit_rejected_total{route=\"v1_doc_list\",scope=\"addr\"}"),
	    1);
	edge_limiter_free(l);
	cm_metrics_free(m);
}

/* A malformed override stops the edge at start rather than leaving a route unprotected. */
static void
test_bad_overrides(void **state)
{
	const char   *bad[] = {"v1_login",
	                       "v1_login=",
	                       "v1_login=x/2",
	                       "v1_login=2/0",
	                       "v1_login=2/",
	                       "v1_login=2/3x",
	                       "no_such_route=1/2",
	                       "=1/2",
	                       "v1_login=-1/2",
	                       "v1_login=2000000",
	                       "v1_login=1/2,v1_login=2/3"};
	edge_config   c = {.rate_per_s = 1};
	edge_limiter *l;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.route_limits = bad[i];
		l = edge_limiter_alloc(&c, NULL);
		if (l != NULL)
			fail_msg("accepted EDGE_ROUTE_LIMITS=%s", bad[i]);
	}
	c.route_limits = "v1_login=2/10,legacy_login=2/10,v1_doc_upload=1/5,frontend=50,";
	assert_non_null(l = edge_limiter_alloc(&c, NULL));
	edge_limiter_free(l);
}

/* A reload's table takes over the decisions at once: a changed limit starts with full buckets of
 * its own, and the replaced table stays readable for decisions that loaded it. */
static void
test_swap(void **state)
{
	edge_config    c = {.rate_per_s = 0, .route_limits = "v1_login=0.001/2"};
	edge_limiter  *l = edge_limiter_alloc(&c, NULL);
	edge_rl_table *t, *old;
	int64_t        retry = 0;

	(void)state;
	assert_non_null(l);
	assert_int_equal(admitted(l, "v1_login", "10.0.0.1", NULL, 5, &retry), 2);
	c.route_limits = "v1_login=0.001/4";
	assert_non_null(t = edge_limiter_table_alloc(&c));
	assert_non_null(old = edge_limiter_swap(l, t));
	assert_int_equal(admitted(l, "v1_login", "10.0.0.1", NULL, 6, &retry), 4);
	/* Another route is off now, as the default is. */
	assert_int_equal(admitted(l, "v1_register", "10.0.0.1", NULL, 9, &retry), 9);
	c.route_limits = "nosuch=1";
	assert_null(edge_limiter_table_alloc(&c));
	edge_limiter_table_free(old);
	edge_limiter_free(l);
}

struct taker {
	edge_limiter *l;
	atomic_bool  *stop;
	atomic_int    decisions;
};

static void *
take_until_stopped(void *arg)
{
	struct taker *t = arg;
	int64_t       retry;

	while (!atomic_load(t->stop)) {
		(void)edge_limiter_take_route(t->l, "v1_login", "10.0.0.9", "u", &retry);
		atomic_fetch_add(&t->decisions, 1);
	}
	return NULL;
}

/* Tables swapped under decisions on other threads (the reload's case; ThreadSanitizer runs
 * this): every decision reads a whole table. Replaced tables are freed after the takers stop,
 * as reload.c frees them after a grace period. */
static void
test_swap_under_load(void **state)
{
	edge_config    c = {.rate_per_s = 0, .route_limits = "v1_login=1000/10"};
	edge_limiter  *l = edge_limiter_alloc(&c, NULL);
	edge_rl_table *old[50];
	atomic_bool    stop;
	struct taker   t[4];
	pthread_t      th[4];
	char           spec[64];

	(void)state;
	assert_non_null(l);
	atomic_init(&stop, false);
	for (int i = 0; i < 4; i++) {
		t[i].l = l;
		t[i].stop = &stop;
		atomic_init(&t[i].decisions, 0);
		assert_int_equal(pthread_create(&th[i], NULL, take_until_stopped, &t[i]), 0);
	}
	/* Every taker deciding before the swaps start. */
	for (int64_t until = cm_mono_ms() + 5000; cm_mono_ms() < until;) {
		int busy = 0;
		for (int i = 0; i < 4; i++)
			busy += atomic_load(&t[i].decisions) > 0;
		if (busy == 4)
			break;
	}
	for (int i = 0; i < 50; i++) {
		snprintf(spec, sizeof(spec), "v1_login=%d/%d", 1000 + i, 10 + i);
		c.route_limits = spec;
		assert_non_null(old[i] = edge_limiter_swap(l, edge_limiter_table_alloc(&c)));
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(atomic_load(&t[i].decisions) > 0);
	}
	for (int i = 0; i < 50; i++)
		edge_limiter_table_free(old[i]);
	edge_limiter_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_override),  cmocka_unit_test(test_default_and_user_scope),
	    cmocka_unit_test(test_bad_overrides),   cmocka_unit_test(test_swap),
	    cmocka_unit_test(test_swap_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
