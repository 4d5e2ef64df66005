/*
 * test_edge_refresh.c - the renewal table's admission (edge/refresh.c): one slot per (refresh
 * token, client), a bounded share per client address and per user, a bounded table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refresh.h"

static void
key_of(int i, unsigned char key[32])
{
	memset(key, 0, 32);
	memcpy(key, &i, sizeof(i));
}

static edge_renew_claim
claim(edge_refresher *f, int k, const char *addr, const char *sub)
{
	unsigned char key[32];

	key_of(k, key);
	return edge_refresher_claim(f, key, addr, sub, 1000);
}

/* One address holds EDGE_RENEW_SHARE slots at most; others are not affected by it. */
static void
test_share_per_address(void **state)
{
	edge_refresher *f = edge_refresher_alloc();
	char            sub[32];

	(void)state;
	for (int i = 0; i < EDGE_RENEW_SHARE; i++) {
		snprintf(sub, sizeof(sub), "user-%d", i);
		assert_int_equal(claim(f, i, "203.0.113.9", sub), EDGE_RENEW_START);
	}
	assert_int_equal(claim(f, 100, "203.0.113.9", "user-new"), EDGE_RENEW_FULL);
	assert_int_equal(claim(f, 101, "198.51.100.1", "user-new"), EDGE_RENEW_START);
	/* The same client's renewal already out: it rides on it, whatever the share. */
	assert_int_equal(claim(f, 3, "203.0.113.9", "user-3"), EDGE_RENEW_JOIN);
	edge_refresher_free(f);
}

/* One user holds EDGE_RENEW_SHARE slots at most, from however many addresses. */
static void
test_share_per_user(void **state)
{
	edge_refresher *f = edge_refresher_alloc();
	char            addr[32];

	(void)state;
	for (int i = 0; i < EDGE_RENEW_SHARE; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i);
		assert_int_equal(claim(f, i, addr, "user-x"), EDGE_RENEW_START);
	}
	assert_int_equal(claim(f, 100, "192.0.2.200", "user-x"), EDGE_RENEW_FULL);
	assert_int_equal(claim(f, 101, "192.0.2.200", "user-y"), EDGE_RENEW_START);
	edge_refresher_free(f);
}

/* An unknown address ("") is no one client: no address share, the user's share still holds. */
static void
test_unknown_address(void **state)
{
	edge_refresher *f = edge_refresher_alloc();
	char            sub[32];

	(void)state;
	for (int i = 0; i < 2 * EDGE_RENEW_SHARE; i++) {
		snprintf(sub, sizeof(sub), "user-%d", i);
		assert_int_equal(claim(f, i, "", sub), EDGE_RENEW_START);
	}
	edge_refresher_free(f);
}

/* The table is bounded: once every slot is busy, a new renewal gets none. */
static void
test_table_full(void **state)
{
	edge_refresher *f = edge_refresher_alloc();
	char            addr[32], sub[32];

	(void)state;
	for (int i = 0; i < EDGE_RENEW_SLOTS; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		snprintf(sub, sizeof(sub), "user-%d", i);
		assert_int_equal(claim(f, i, addr, sub), EDGE_RENEW_START);
	}
	assert_int_equal(claim(f, 9999, "10.9.9.9", "user-z"), EDGE_RENEW_FULL);
	edge_refresher_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share_per_address),
	    cmocka_unit_test(test_share_per_user),
	    cmocka_unit_test(test_unknown_address),
	    cmocka_unit_test(test_table_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
