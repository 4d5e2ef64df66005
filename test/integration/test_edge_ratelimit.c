/*
 * test_edge_ratelimit.c - the edge's rate limits shared through the fixture's Redis (pgredis):
 * two limiters stand for two edge processes (each has its own connections and local buckets).
 *
 * Issue #12's figure: at twice the limit for 10 s from two "edges", the admitted count is
 * rate x time + burst within 2%, and every refusal carries a Retry-After. Then the fallback:
 * with Redis stopped each limiter decides alone (and says so in its metrics), fast; once Redis is
 * back they share again. Bucket keys are new for each run (a UUID in the client address); the
 * test that stops Redis starts it again in its teardown, whatever happened.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "edge.h"
#include "ratelimit.h"
#include "worker_helper.h"

static edge_config
shared_config(int64_t rate, int64_t burst, const char *routes)
{
	edge_config c = {.rate_per_s = rate,
	                 .rate_burst = burst,
	                 .route_limits = routes,
	                 .redis_host = "127.0.0.1",
	                 .redis_port = strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10),
	                 .rate_redis_timeout_ms = 200};
	return c;
}

/* A client address no earlier run has used. */
static void
fresh_addr(char *out, size_t len, const char *what)
{
	char id[37];

	cm_uuid_v4(id);
	snprintf(out, len, "%s-%s", what, id);
}

static int
admitted(edge_limiter *l, const char *route, const char *addr, int n)
{
	int64_t retry;
	int     ok = 0;

	for (int i = 0; i < n; i++) {
		if (edge_limiter_take_route(l, route, addr, NULL, &retry))
			ok++;
		else
			assert_true(retry >= 1);
	}
	return ok;
}

/* ---- accuracy: two "edges" at twice the limit for 10 s ----------------------------------------
 */

#define RATE 100
#define BURST 50
#define SECONDS 10

typedef struct driver {
	edge_limiter   *l;
	const char     *addr;
	struct timespec start; /* CLOCK_MONOTONIC, shared by both drivers */
	int             sent, ok, refused, no_retry_after;
} driver;

/* One edge's clients at the full rate (together the two are at twice it), on a fixed schedule. */
static void *
drive(void *arg)
{
	driver         *d = arg;
	struct timespec at = d->start;
	int64_t         retry;

	for (int i = 0; i < RATE * SECONDS; i++) {
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		d->sent++;
		if (edge_limiter_take_route(d->l, NULL, d->addr, NULL, &retry)) {
			d->ok++;
		} else {
			d->refused++;
			d->no_retry_after += retry < 1;
		}
		at.tv_nsec += 1000000000L / RATE;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_nsec -= 1000000000L;
			at.tv_sec++;
		}
	}
	return NULL;
}

static void
test_accuracy_two_edges(void **state)
{
	edge_config   c = shared_config(RATE, BURST, "");
	edge_limiter *a = edge_limiter_alloc(&c, NULL), *b = edge_limiter_alloc(&c, NULL);
	char          addr[64];
	driver        da = {0}, db = {0};
	pthread_t     ta, tb;
	uint64_t      t0, t1;
	double        elapsed, expected, got;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	fresh_addr(addr, sizeof(addr), "acc");
	/* The second edge's clients arrive half a period after the first's: 200 evenly spaced
	 * requests a second. */
	clock_gettime(CLOCK_MONOTONIC, &da.start);
	da.start.tv_nsec += 50 * 1000000L;
	if (da.start.tv_nsec >= 1000000000L) {
		da.start.tv_nsec -= 1000000000L;
		da.start.tv_sec++;
	}
	db.start = da.start;
	db.start.tv_nsec += 1000000000L / RATE / 2;
	if (db.start.tv_nsec >= 1000000000L) {
		db.start.tv_nsec -= 1000000000L;
		db.start.tv_sec++;
	}
	da.l = a, db.l = b, da.addr = db.addr = addr;
	t0 = (uint64_t)da.start.tv_sec * 1000000000ull + (uint64_t)da.start.tv_nsec;
	assert_int_equal(pthread_create(&ta, NULL, drive, &da), 0);
	assert_int_equal(pthread_create(&tb, NULL, drive, &db), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	t1 = cm_mono_ns();
	elapsed = (double)(t1 - t0) / 1e9;
	expected = RATE * elapsed + BURST;
	got = da.ok + db.ok;
	print_message(
	    "two edges at %d/s each for %.2f s (limit %d/s, burst %d): admitted %d + %d = "
	    "%.0f, expected %.1f (%+.2f%%), refused %d\n",
	    RATE, elapsed, RATE, BURST, da.ok, db.ok, got, expected,
	    100.0 * (got - expected) / expected, da.refused + db.refused);
	assert_true(edge_limiter_shared(a));
	assert_true(edge_limiter_shared(b));
	assert_int_equal(da.sent + db.sent, 2 * RATE * SECONDS);
	assert_int_equal(da.no_retry_after + db.no_retry_after, 0);
	assert_true(got >= expected * 0.98 && got <= expected * 1.02);
	edge_limiter_free(a);
	edge_limiter_free(b);
}

/* ---- one bucket for both edges, per route ------------------------------------------------------
 */

/* An override is shared too, and has its own buckets: the default's are untouched by it. */
static void
test_route_override_shared(void **state)
{
	edge_config   c = shared_config(2, 4, "v1_login=1/3");
	cm_metrics   *m = cm_metrics_alloc("edge_");
	edge_limiter *a = edge_limiter_alloc(&c, NULL), *b = edge_limiter_alloc(&c, m);
	char          addr[64];
	int64_t       retry = 0;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	fresh_addr(addr, sizeof(addr), "route");
	assert_int_equal(admitted(a, "v1_login", addr, 3), 3);
	assert_false(edge_limiter_take_route(b, "v1_login", addr, NULL, &retry));
	assert_int_equal(retry, 1);
	assert_int_equal(admitted(b, "v1_me", addr, 4), 4);
	assert_int_equal(admitted(a, NULL, addr, 1), 0);
	/* a user's bucket holds across addresses and edges */
	for (int i = 0; i < 3; i++) {
		char ua[64];
		fresh_addr(ua, sizeof(ua), "user-addr");
		assert_true(edge_limiter_take_route(i % 2 ? a : b, "v1_login", ua, addr, &retry));
	}
	assert_false(edge_limiter_take_route(a, "v1_login", "another-address", addr, &retry));
	assert_int_equal(
	    test_metric(m, "edge_ratelimit_rejected_total{route=\"v1_login\",scope=\"addr\"}"), 1);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"redis\"}"), 1);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"local\"}"), 0);
	edge_limiter_free(a);
	edge_limiter_free(b);
	cm_metrics_free(m);
}

/* ---- Redis stopped and started -----------------------------------------------------------------
 */

static void
harness(const char *cmd)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s/pgredis.sh %s %s", getenv("CM_TEST_HARNESS"), cmd,
	         getenv("CM_TEST_STATE"));
	assert_int_equal(system(line), 0);
}

static int
redis_back(void **state)
{
	char line[1024];

	(void)state;
	snprintf(line, sizeof(line), "%s/pgredis.sh start-redis %s", getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"));
	return system(line) == 0 ? 0 : -1;
}

static void
test_fallback_when_redis_down(void **state)
{
	edge_config   c = shared_config(1, 3, "");
	cm_metrics   *m = cm_metrics_alloc("edge_");
	edge_limiter *a = edge_limiter_alloc(&c, m), *b = edge_limiter_alloc(&c, NULL);
	char          addr[64];
	int64_t       t0, worst = 0, retry;
	bool          shared = false;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	fresh_addr(addr, sizeof(addr), "before");
	assert_int_equal(admitted(a, NULL, addr, 3), 3);
	assert_int_equal(admitted(b, NULL, addr, 1), 0); /* one bucket for both */

	harness("stop-redis");
	fresh_addr(addr, sizeof(addr), "down");
	for (int i = 0; i < 4; i++) {
		t0 = cm_mono_ms();
		if (edge_limiter_take_route(a, NULL, addr, NULL, &retry))
			assert_true(i < 3);
		else
			assert_true(i == 3 && retry >= 1);
		worst = cm_mono_ms() - t0 > worst ? cm_mono_ms() - t0 : worst;
	}
	assert_int_equal(admitted(b, NULL, addr, 4), 3); /* each edge its own buckets */
	print_message("Redis down: slowest decision %lld ms\n", (long long)worst);
	assert_true(worst < 100);
	assert_false(edge_limiter_shared(a));
	assert_false(edge_limiter_shared(b));
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"local\"}"), 1);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"redis\"}"), 0);

	harness("start-redis");
	for (int64_t until = cm_mono_ms() + 10000; !shared && cm_mono_ms() < until;) {
		fresh_addr(addr, sizeof(addr), "probe");
		(void)edge_limiter_take_route(a, NULL, addr, NULL, &retry);
		(void)edge_limiter_take_route(b, NULL, addr, NULL, &retry);
		shared = edge_limiter_shared(a) && edge_limiter_shared(b);
		if (!shared)
			usleep(50 * 1000);
	}
	assert_true(shared);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"redis\"}"), 1);
	assert_int_equal(test_metric(m, "edge_ratelimit_backend{backend=\"local\"}"), 0);
	fresh_addr(addr, sizeof(addr), "after");
	assert_int_equal(admitted(a, NULL, addr, 3), 3);
	assert_int_equal(admitted(b, NULL, addr, 1), 0);
	edge_limiter_free(a);
	edge_limiter_free(b);
	cm_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_override_shared),
	    cmocka_unit_test_teardown(test_fallback_when_redis_down, redis_back),
	    cmocka_unit_test(test_accuracy_two_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
