/*
 * test_rpc_breaker.c - the upstream circuit breaker as a state machine on a given clock: opening
 * on the error rate and on a run of failures, refusing while open, probing when half-open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rpc_int.h"

#define T0 1000000000 /* any clock value: the window is keyed on it */

static const rpc_breaker_cfg cfg = {.window_ms = 10000,
                                    .min_calls = 20,
                                    .error_pct = 50,
                                    .consecutive = 10,
                                    .open_ms = 2000,
                                    .probes = 2};

static void
record_n(rpc_breaker *b, int n, bool failed, int64_t now)
{
	for (int i = 0; i < n; i++)
		(void)rpc_breaker_record(b, false, failed, now);
}

/* Half of 20 calls failed, interleaved (never 10 in a row): it opens on the rate, not before. */
static void
test_opens_on_error_rate(void **state)
{
	rpc_breaker b;
	int64_t     wait = 0;

	(void)state;
	rpc_breaker_init(&b, &cfg);
	for (int i = 0; i < 19; i++)
		(void)rpc_breaker_record(&b, false, i % 2 == 0, T0 + i);
	assert_int_equal(atomic_load(&b.state),
	                 CM_BREAKER_CLOSED); /* 10 of 19: under the minimum */
	assert_int_equal(rpc_breaker_record(&b, false, true, T0 + 19), CM_BREAKER_OPEN);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 500, &wait), RPC_REJECT);
	assert_true(wait > 1400 && wait <= 2000);
	rpc_breaker_fini(&b);
}

/* A low error rate never opens it; failures that left the window no longer count. */
static void
test_low_rate_and_old_failures(void **state)
{
	rpc_breaker b;

	(void)state;
	rpc_breaker_init(&b, &cfg);
	for (int i = 0; i < 100; i++)
		(void)rpc_breaker_record(&b, false, i % 3 == 0, T0 + i);
	assert_int_equal(atomic_load(&b.state), CM_BREAKER_CLOSED);

	rpc_breaker_fini(&b);

	/* 9 failures of 18 calls, under the minimum; 11 s later they have left the window, so a
	 * failure and a success (which would make 10 of 20 with them) do not open it. */
	rpc_breaker_init(&b, &cfg);
	for (int i = 0; i < 18; i++)
		(void)rpc_breaker_record(&b, false, i % 2 == 0, T0);
	(void)rpc_breaker_record(&b, false, false, T0 + 11000);
	assert_int_equal(rpc_breaker_record(&b, false, true, T0 + 11000), CM_BREAKER_CLOSED);
	/* New calls alone reach it: 10 failures of 20. */
	for (int i = 0; i < 17; i++)
		(void)rpc_breaker_record(&b, false, i % 2 == 1, T0 + 11000);
	assert_int_equal(atomic_load(&b.state), CM_BREAKER_CLOSED);
	assert_int_equal(rpc_breaker_record(&b, false, true, T0 + 11000), CM_BREAKER_OPEN);
	rpc_breaker_fini(&b);
}

/* Ten failures in a row open it even with little traffic. */
static void
test_opens_on_consecutive(void **state)
{
	rpc_breaker b;

	(void)state;
	rpc_breaker_init(&b, &cfg);
	record_n(&b, 9, true, T0);
	(void)rpc_breaker_record(&b, false, false, T0);
	record_n(&b, 9, true, T0);
	assert_int_equal(atomic_load(&b.state), CM_BREAKER_CLOSED);
	assert_int_equal(rpc_breaker_record(&b, false, true, T0), CM_BREAKER_OPEN);
	rpc_breaker_fini(&b);
}

/* After the open period: `probes` calls pass, the rest is refused; a probe's success closes it. */
static void
test_half_open_success_closes(void **state)
{
	rpc_breaker b;
	int64_t     wait = 0;

	(void)state;
	rpc_breaker_init(&b, &cfg);
	record_n(&b, 10, true, T0);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 1999, &wait), RPC_REJECT);
	assert_int_equal(wait, 1);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2000, &wait), RPC_ADMIT_PROBE);
	assert_int_equal(atomic_load(&b.state), CM_BREAKER_HALF_OPEN);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2001, &wait), RPC_ADMIT_PROBE);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2002, &wait), RPC_REJECT);
	/* A probe that was never sent gives its slot back. */
	rpc_breaker_unprobe(&b);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2003, &wait), RPC_ADMIT_PROBE);
	/* A late outcome of a call admitted before it opened decides nothing. */
	assert_int_equal(rpc_breaker_record(&b, false, false, T0 + 2004), CM_BREAKER_HALF_OPEN);
	assert_int_equal(rpc_breaker_record(&b, true, false, T0 + 2005), CM_BREAKER_CLOSED);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2006, &wait), RPC_ADMIT);
	/* Closed with a fresh window: nine failures do not reopen it. */
	record_n(&b, 9, true, T0 + 2007);
	assert_int_equal(atomic_load(&b.state), CM_BREAKER_CLOSED);
	rpc_breaker_fini(&b);
}

/* A probe's failure opens it again for a full period. */
static void
test_half_open_failure_reopens(void **state)
{
	rpc_breaker b;
	int64_t     wait = 0;

	(void)state;
	rpc_breaker_init(&b, &cfg);
	record_n(&b, 10, true, T0);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 2500, &wait), RPC_ADMIT_PROBE);
	assert_int_equal(rpc_breaker_record(&b, true, true, T0 + 2600), CM_BREAKER_OPEN);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 4500, &wait), RPC_REJECT);
	assert_int_equal(wait, 100);
	assert_int_equal(rpc_breaker_admit(&b, T0 + 4600, &wait), RPC_ADMIT_PROBE);
	rpc_breaker_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_opens_on_error_rate),
	    cmocka_unit_test(test_low_rate_and_old_failures),
	    cmocka_unit_test(test_opens_on_consecutive),
	    cmocka_unit_test(test_half_open_success_closes),
	    cmocka_unit_test(test_half_open_failure_reopens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
