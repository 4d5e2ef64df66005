/*
 * test_redis.c - the Redis wrapper against a real server (fixture pgredis), including Redis
 * going away and coming back.
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

#include "cm/redis.h"
#include "cm/util.h"

static cm_redis *
open_redis(void)
{
	cm_redis *r = NULL;
	assert_int_equal(cm_redis_open(&r, "127.0.0.1", (int) strtol(getenv("CM_TEST_REDIS_PORT"), NULL, 10), 200), CM_OK);
	return r;
}

static void
test_commands(void **state)
{
	cm_redis   *r = open_redis();
	char        key[64], id[37];
	const char  bin[] = {'a', 0, 'b', '\r', '\n'};
	cm_buf      b;
	bool        found;
	int64_t     n, ttl, v;
	const char *keys[1];
	const char *args[1] = {"5"};

	(void) state;
	cm_uuid_v4(id);
	snprintf(key, sizeof(key), "test:%s", id);
	cm_buf_init(&b, 1024);
	assert_true(cm_redis_ping(r));
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_false(found);
	assert_int_equal(cm_redis_set(r, key, bin, sizeof(bin), 60), CM_OK);
	assert_int_equal(cm_redis_get(r, key, &b, &found), CM_OK);
	assert_true(found);
	assert_int_equal(b.len, sizeof(bin));
	assert_memory_equal(b.data, bin, sizeof(bin));
	assert_int_equal(cm_redis_del(r, key), CM_OK);

	for (int i = 1; i <= 3; i++) {
		assert_int_equal(cm_redis_incr_window(r, key, 30, &n, &ttl), CM_OK);
		assert_int_equal(n, i);
		assert_true(ttl > 0 && ttl <= 30);
	}
	assert_int_equal(cm_redis_get_counter(r, key, &n, &ttl), CM_OK);
	assert_int_equal(n, 3);
	keys[0] = key;
	assert_int_equal(cm_redis_eval_int(r, "return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, keys, 1, args, &v), CM_OK);
	assert_int_equal(v, 8);
	assert_int_equal(cm_redis_eval_int(r, "return redis.error_reply('no')", 0, NULL, 0, NULL, &v), CM_EINTERNAL);
	assert_int_equal(cm_redis_del(r, key), CM_OK);
	cm_buf_fini(&b);
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

static void
test_down_and_back(void **state)
{
	cm_redis *r = open_redis(), *off = NULL;
	int64_t   t0, n, ttl;
	bool      ok = false;

	(void) state;
	assert_true(cm_redis_ping(r));
	harness("stop-redis");
	for (int i = 0; i < 10; i++) {
		t0 = cm_mono_ms();
		assert_int_equal(cm_redis_incr_window(r, "test:down", 10, &n, &ttl), CM_EUNAVAIL);
		assert_true(cm_mono_ms() - t0 < 500);
	}
	harness("start-redis");
	for (int i = 0; i < 40 && !ok; i++) {
		ok = cm_redis_ping(r);
		if (!ok)
			usleep(100 * 1000);
	}
	assert_true(ok);
	cm_redis_close(r);

	assert_int_equal(cm_redis_open(&off, "", 6379, 100), CM_OK);
	assert_false(cm_redis_ping(off));
	assert_int_equal(cm_redis_del(off, "x"), CM_EUNAVAIL);
	cm_redis_close(off);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_down_and_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
