/*
 * test_redis.c - the Redis wrapper against a real server (fixture pgredis): commands with
 * binary keys and values, windowed counters, scripts, Redis hanging, going away and coming back,
 * and Redis turned off.
 *
 * Keys carry a prefix unique to this run. Tests that stop or freeze the shared server start or
 * resume it in their teardown, whatever happened.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/limits.h"
#include "cm/redis.h"
#include "cm/util.h"

static char prefix[64];

static cm_redis *
open_redis(void)
{
	cm_redis *r = NULL;
	assert_int_equal(cm_redis_open(&r, "127.0.0.1",
	                               (int)strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10), 200),
	                 CM_OK);
	return r;
}

static void
make_key(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s%s", prefix, name);
}

static int
setup(void **state)
{
	char id[37];

	(void)state;
	cm_uuid_v4(id);
	snprintf(prefix, sizeof(prefix), "cmtest:%s:", id);
	return 0;
}

static int64_t
ttl_of(cm_redis *r, const char *key)
{
	const char *keys[1] = {key};
	int64_t     ttl = 0;

	assert_int_equal(
	    cm_redis_eval_int(r, "return redis.call('TTL', KEYS[1])", 1, keys, 0, NULL, &ttl),
	    CM_OK);
	return ttl;
}

static void
test_get_set_del(void **state)
{
	cm_redis  *r = open_redis();
	char       key[128];
	const char bin[] = {'a', 0, 'b', '\r', '\n', '$', '\xff'};
	cm_buf     b;
	bool       found = true;

	(void)state;
	/* A key with bytes that would break a formatted command: CR LF, RESP markers, spaces,
	 * a format directive and a non-UTF-8 byte. */
	make_key(key, sizeof(key), "k \r\n*1\r\n$4\r\nPING %s \x01\xfe");
	cm_buf_init(&b, 1024);
	assert_true(cm_redis_ping(r));
	assert_string_equal(cm_redis_errmsg(r), "");
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_false(found);
	assert_int_equal(b.len, 0);

	assert_int_equal(cm_redis_set(r, key, bin, sizeof(bin), 60), CM_OK);
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_true(found);
	assert_int_equal(b.len, sizeof(bin));
	assert_memory_equal(b.data, bin, sizeof(bin));
	assert_in_range(ttl_of(r, key), 1, 60);

	/* No expiry when ttl is 0; an empty value is found, and empty. */
	assert_int_equal(cm_redis_set(r, key, "", 0, 0), CM_OK);
	assert_int_equal(ttl_of(r, key), -1);
	cm_buf_reset(&b);
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_true(found);
	assert_int_equal(b.len, 0);

	/* A value over the buffer's cap is refused, not truncated. */
	{
		char big[2048];
		memset(big, 'x', sizeof(big));
		assert_int_equal(cm_redis_set(r, key, big, sizeof(big), 60), CM_OK);
		assert_int_equal(cm_redis_get(r, key, &b, &found), CM_ETOOBIG);
	}

	assert_int_equal(cm_redis_del(r, key), CM_OK);
	assert_int_equal(cm_redis_del(r, key), CM_OK); /* deleting nothing is fine */
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_false(found);
	cm_buf_fini(&b);
	cm_redis_close(r);
}

static void
test_counters_and_scripts(void **state)
{
	cm_redis   *r = open_redis();
	char        key[128];
	int64_t     n = -1, ttl = -1, v = 0;
	const char *keys[1];
	const char *args[1] = {"5"};
	const char *many[62];

	(void)state;
	make_key(key, sizeof(key), "counter");
	assert_int_equal(cm_redis_get_counter(r, key, &n, &ttl), CM_OK);
	assert_int_equal(n, 0); /* absent: 0 and 0 */
	assert_int_equal(ttl, 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(cm_redis_incr_window(r, key, 30, &n, &ttl), CM_OK);
		assert_int_equal(n, i);
		assert_in_range(ttl, 1, 30);
	}
	assert_int_equal(cm_redis_get_counter(r, key, &n, &ttl), CM_OK);
	assert_int_equal(n, 3);
	assert_in_range(ttl, 1, 30);

	/* The window is set when the key is new, not pushed back by later increments. */
	assert_int_equal(cm_redis_incr_window(r, key, 1000, &n, &ttl), CM_OK);
	assert_int_equal(n, 4);
	assert_in_range(ttl, 1, 30);

	/* A counter that somehow has no expiry gets one. */
	assert_int_equal(cm_redis_set(r, key, "7", 1, 0), CM_OK);
	assert_int_equal(cm_redis_incr_window(r, key, 20, &n, &ttl), CM_OK);
	assert_int_equal(n, 8);
	assert_in_range(ttl, 1, 20);
	assert_in_range(ttl_of(r, key), 1, 20);

	/* Not a number: an error reply, reported as such. */
	assert_int_equal(cm_redis_set(r, key, "abc", 3, 0), CM_OK);
	assert_int_equal(cm_redis_incr_window(r, key, 20, &n, &ttl), CM_EINTERNAL);
	assert_string_not_equal(cm_redis_errmsg(r), "");
	assert_true(cm_redis_ping(r)); /* an error reply leaves the connection usable */

	keys[0] = key;
	assert_int_equal(cm_redis_set(r, key, "3", 1, 0), CM_OK);
	assert_int_equal(cm_redis_eval_int(r, "return redis.call('INCRBY', KEYS[1], ARGV[1])", 1,
	                                   keys, 1, args, &v),
	                 CM_OK);
	assert_int_equal(v, 8);
	assert_int_equal(cm_redis_eval_int(r, "return -42", 0, NULL, 0, NULL, &v), CM_OK);
	assert_int_equal(v, -42);
	assert_int_equal(
	    cm_redis_eval_int(r, "return redis.error_reply('no')", 0, NULL, 0, NULL, &v),
	    CM_EINTERNAL);
	assert_non_null(strstr(cm_redis_errmsg(r), "no")); /* "no", or "ERR no" on Redis 7 */
	assert_int_equal(cm_redis_eval_int(r, "return 'text'", 0, NULL, 0, NULL, &v), CM_EPROTO);
	for (int i = 0; i < 62; i++)
		many[i] = "x";
	assert_int_equal(cm_redis_eval_int(r, "return 1", 0, NULL, 62, many, &v), CM_EINVAL);
	assert_int_equal(cm_redis_eval_int(r, "return #ARGV", 0, NULL, 61, many, &v), CM_OK);
	assert_int_equal(v, 61);
	assert_int_equal(cm_redis_eval_int(r, "return 1", -1, NULL, 0, NULL, &v), CM_EINVAL);
	assert_int_equal(cm_redis_del(r, key), CM_OK);
	cm_redis_close(r);
}

static void
harness(const char *cmd)
{
	char line[1024];
	snprintf(line, sizeof(line), "%s/pgredis.sh %s %s", getenv("CM_TEST_HARNESS"), cmd,
	         getenv("CM_TEST_STATE"));
	assert_int_equal(system(line), 0);
}

static pid_t
redis_pid(void)
{
	char  path[1024], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/redis/redis.pid", getenv("CM_TEST_STATE"));
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return (pid_t)strtol(buf, NULL, 10);
}

/* Whatever a test did to the shared server, leave it running for the tests after it. */
static int
redis_back(void **state)
{
	char  line[1024];
	pid_t pid = redis_pid();

	(void)state;
	if (pid > 0)
		(void)kill(pid, SIGCONT);
	snprintf(line, sizeof(line), "%s/pgredis.sh start-redis %s", getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"));
	return system(line) == 0 ? 0 : -1;
}

/* A server that hangs costs one command timeout, then nothing until the retry interval. */
static void
test_hung_server(void **state)
{
	cm_redis *r = open_redis();
	char      key[128];
	pid_t     pid = redis_pid();
	int64_t   t0, first, n, ttl;
	bool      ok = false;

	(void)state;
	make_key(key, sizeof(key), "hung");
	assert_true(pid > 0);
	assert_true(cm_redis_ping(r));
	assert_int_equal(kill(pid, SIGSTOP), 0);
	t0 = cm_mono_ms();
	assert_int_equal(cm_redis_incr_window(r, key, 10, &n, &ttl), CM_EUNAVAIL);
	first = cm_mono_ms() - t0;
	t0 = cm_mono_ms();
	assert_int_equal(cm_redis_incr_window(r, key, 10, &n, &ttl), CM_EUNAVAIL);
	print_message("hung server: first call %lld ms (timeout 200), next %lld ms\n",
	              (long long)first, (long long)(cm_mono_ms() - t0));
	assert_in_range(first, 150, 600);
	assert_true(cm_mono_ms() - t0 < 50);
	assert_int_equal(kill(pid, SIGCONT), 0);
	/* Usable again once the handle's retry interval has passed: polled. */
	for (int64_t until = cm_mono_ms() + CM_REDIS_RETRY_MS + 3000;
	     !ok && cm_mono_ms() < until;) {
		ok = cm_redis_ping(r);
		if (!ok)
			usleep(50 * 1000);
	}
	assert_true(ok);
	assert_int_equal(cm_redis_del(r, key), CM_OK);
	cm_redis_close(r);
}

static void
test_down_and_back(void **state)
{
	cm_redis *r = open_redis(), *fresh = NULL;
	char      key[128];
	int64_t   t0, dt, worst = 0, down_at, n, ttl;
	bool      ok = false;

	(void)state;
	make_key(key, sizeof(key), "down");
	assert_true(cm_redis_ping(r));
	harness("stop-redis");
	down_at = cm_mono_ms(); /* the handle's failure, which starts its wait, comes after this */
	for (int i = 0; i < 10; i++) {
		t0 = cm_mono_ms();
		assert_int_equal(cm_redis_incr_window(r, key, 10, &n, &ttl), CM_EUNAVAIL);
		dt = cm_mono_ms() - t0;
		worst = dt > worst ? dt : worst;
		assert_true(dt < 500);
	}
	assert_string_not_equal(cm_redis_errmsg(r), "");
	/* A handle that never had a connection fails as fast: connection refused. */
	assert_int_equal(cm_redis_open(&fresh, "127.0.0.1",
	                               (int)strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10), 200),
	                 CM_OK);
	t0 = cm_mono_ms();
	assert_false(cm_redis_ping(fresh));
	dt = cm_mono_ms() - t0;
	worst = dt > worst ? dt : worst;
	assert_true(dt < 500);
	cm_redis_close(fresh);
	print_message("redis down: slowest of 11 calls %lld ms\n", (long long)worst);

	/* Back, but the handle keeps waiting out the retry interval after its last failure. */
	harness("start-redis");
	if (cm_mono_ms() - down_at < CM_REDIS_RETRY_MS - 200)
		assert_false(cm_redis_ping(r));
	for (int i = 0; i < 40 && !ok; i++) {
		ok = cm_redis_ping(r);
		if (!ok)
			usleep(50 * 1000);
	}
	assert_true(ok);
	print_message("redis back: usable %lld ms after it went down (retry interval %d)\n",
	              (long long)(cm_mono_ms() - down_at), CM_REDIS_RETRY_MS);
	assert_true(cm_mono_ms() - down_at >= CM_REDIS_RETRY_MS);
	assert_int_equal(cm_redis_incr_window(r, key, 10, &n, &ttl), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(cm_redis_del(r, key), CM_OK);
	cm_redis_close(r);
}

/* A server restarted while the handle sat idle costs nothing: the first call after it finds the
 * connection closed, opens a fresh one and runs (each thread's first call used to be a miss, and a
 * login counter split between replicas' local tables). */
static void
test_restarted_while_idle(void **state)
{
	cm_redis *r = open_redis();
	char      key[128];
	int64_t   n, ttl;

	(void)state;
	make_key(key, sizeof(key), "restart");
	assert_true(cm_redis_ping(r));
	harness("stop-redis");
	harness("start-redis");
	assert_int_equal(cm_redis_incr_window(r, key, 10, &n, &ttl), CM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(cm_redis_del(r, key), CM_OK);
	cm_redis_close(r);
}

static void
test_disabled(void **state)
{
	const char *hosts[] = {"", NULL};
	cm_redis   *off = NULL;
	cm_buf      b;
	bool        found = true;
	int64_t     n, ttl, v;

	(void)state;
	cm_buf_init(&b, 64);
	for (int i = 0; i < 2; i++) {
		/* Even on the port of a live server: no host means no Redis. */
		assert_int_equal(cm_redis_open(&off, hosts[i],
		                               (int)strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10),
		                               100),
		                 CM_OK);
		assert_false(cm_redis_ping(off));
		assert_int_equal(cm_redis_get(off, "x", &b, &found), CM_EUNAVAIL);
		assert_false(found);
		assert_int_equal(cm_redis_set(off, "x", "1", 1, 0), CM_EUNAVAIL);
		assert_int_equal(cm_redis_del(off, "x"), CM_EUNAVAIL);
		assert_int_equal(cm_redis_incr_window(off, "x", 10, &n, &ttl), CM_EUNAVAIL);
		assert_int_equal(cm_redis_get_counter(off, "x", &n, &ttl), CM_EUNAVAIL);
		assert_int_equal(cm_redis_eval_int(off, "return 1", 0, NULL, 0, NULL, &v),
		                 CM_EUNAVAIL);
		assert_string_equal(cm_redis_errmsg(off), "Redis disabled");
		cm_redis_close(off);
		off = NULL;
	}
	cm_buf_fini(&b);
	cm_redis_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_set_del),
	    cmocka_unit_test(test_counters_and_scripts),
	    cmocka_unit_test_teardown(test_hung_server, redis_back),
	    cmocka_unit_test_teardown(test_down_and_back, redis_back),
	    cmocka_unit_test_teardown(test_restarted_while_idle, redis_back),
	    cmocka_unit_test(test_disabled),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
