/*
 * test_qgen_hedge.c - the hedge decision and its ledger, driven with numbers only: which running
 * call is late (past the median by the margin, in the tail of a wave), the extra-token budget,
 * and what each result of a hedged pair is used for (first answer wins, the loser's tokens are
 * extra, a failure waits for the other call).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../svc-qgen/hedge.h"

static const qgen_hedge_params HP = {.after_pct = 50, .min_ms = 100, .max_extra_pct = 25};

static void
test_median(void **state)
{
	const int64_t odd[] = {500, 100, 300}, even[] = {400, 100, 300, 200};

	(void)state;
	assert_int_equal(qgen_hedge_median(odd, 3), 300);
	assert_int_equal(qgen_hedge_median(even, 4), 200); /* the lower middle */
	assert_int_equal(qgen_hedge_median(odd, 1), 500);
}

static void
test_budget(void **state)
{
	qgen_hedge_params off = HP;

	(void)state;
	assert_int_equal(qgen_hedge_budget(&HP, 25, 100), 625); /* 25% of 25 x 100 tokens */
	off.max_extra_pct = 0;
	assert_int_equal(qgen_hedge_budget(&off, 25, 100), 0);
	assert_int_equal(qgen_hedge_budget(&HP, 25, 0), 0); /* nothing measured yet */
}

/* Seven of nine calls answered in about 500 ms; two still run. */
static const int64_t FINISHED[] = {480, 500, 510, 490, 520, 505, 495};

static void
test_late_call_is_hedged(void **state)
{
	qgen_hedge_call run[] = {{.idx = 3, .count = 3, .elapsed_ms = 800},
	                         {.idx = 7, .count = 3, .elapsed_ms = 700}};
	qgen_hedge_wave w = {FINISHED, 7, run, 2, 100, 25, 0};

	(void)state;
	/* Median 500, late past 750: only batch 3. */
	assert_int_equal(qgen_hedge_pick(&HP, &w), 0);
	run[0].elapsed_ms = 740; /* neither is late yet */
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1);
	run[0].elapsed_ms = 900;
	run[1].elapsed_ms = 1000; /* both late: the latest first */
	assert_int_equal(qgen_hedge_pick(&HP, &w), 1);
	run[1].hedged = true; /* one duplicate per batch */
	assert_int_equal(qgen_hedge_pick(&HP, &w), 0);
}

static void
test_margin_in_ms(void **state)
{
	const int64_t   fast[] = {20, 20, 20};
	qgen_hedge_call run[] = {{.idx = 0, .count = 1, .elapsed_ms = 100}};
	qgen_hedge_wave w = {fast, 3, run, 1, 100, 25, 0};

	(void)state;
	/* 5x the median, but only 80 ms past it: noise, not a tail. */
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1);
	run[0].elapsed_ms = 121;
	assert_int_equal(qgen_hedge_pick(&HP, &w), 0);
}

static void
test_not_in_the_middle_of_a_wave(void **state)
{
	qgen_hedge_call run[] = {{.idx = 0, .count = 3, .elapsed_ms = 2000},
	                         {.idx = 1, .count = 3, .elapsed_ms = 2000},
	                         {.idx = 2, .count = 3, .elapsed_ms = 2000}};
	qgen_hedge_wave w = {FINISHED, 2, run, 3, 100, 25, 0};

	(void)state;
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1); /* 2 answered, 3 running */
	w.nfinished = 3;
	assert_int_equal(qgen_hedge_pick(&HP, &w), 0);
	w.nfinished = 0;
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1); /* no median */
}

static void
test_budget_limits_hedges(void **state)
{
	qgen_hedge_call run[] = {{.idx = 3, .count = 3, .elapsed_ms = 900}};
	qgen_hedge_wave w = {FINISHED, 7, run, 1, 100, 25, 0};

	(void)state;
	/* Budget 625 tokens; a duplicate of 3 questions is estimated at 300. */
	w.spent = 325;
	assert_int_equal(qgen_hedge_pick(&HP, &w), 0);
	w.spent = 326;
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1);
	w.spent = 0;
	w.tokens_per_question = 0; /* no estimate, no budget */
	assert_int_equal(qgen_hedge_pick(&HP, &w), -1);
}

/* A ledger with seven answers of 3 questions at 100 tokens a question. */
static void
ledger(qgen_hedger *h)
{
	assert_int_equal(qgen_hedger_init(h, &HP, 25, 20), CM_OK);
	for (int i = 0; i < 7; i++)
		assert_int_equal(qgen_hedger_result(h, i, 3, false, true, false, 300, FINISHED[i]),
		                 QGEN_HEDGE_USE);
}

static void
test_first_answer_wins(void **state)
{
	qgen_hedger     h;
	qgen_hedge_call run[] = {{.idx = 7, .count = 3, .elapsed_ms = 900},
	                         {.idx = 8, .count = 3, .elapsed_ms = 600}};

	(void)state;
	ledger(&h);
	assert_int_equal(qgen_hedger_pick(&h, run, 2), 0);
	assert_true(qgen_hedger_started(&h, 7, 3));
	assert_false(qgen_hedger_started(&h, 7, 3)); /* one duplicate per batch */
	assert_true(qgen_hedger_has(&h, 7));
	assert_int_equal(h.hedged, 1);
	assert_int_equal(h.inflight_est, 300);
	/* The duplicate answers first and wins; the original, cancelled in flight, is dropped
	 * and counted at a whole call's estimate. */
	assert_int_equal(qgen_hedger_result(&h, 7, 3, true, true, false, 300, 400), QGEN_HEDGE_WON);
	assert_int_equal(qgen_hedger_result(&h, 7, 3, false, false, true, 0, 1200),
	                 QGEN_HEDGE_DROP);
	assert_int_equal(h.extra_tokens, 300);
	assert_int_equal(h.inflight_est, 0);
	/* Batch 8 is not hedged: its result is the plan's. */
	assert_int_equal(qgen_hedger_result(&h, 8, 3, false, true, false, 300, 700),
	                 QGEN_HEDGE_USE);
	qgen_hedger_fini(&h);
}

static void
test_loser_that_answered_counts_its_tokens(void **state)
{
	qgen_hedger h;

	(void)state;
	ledger(&h);
	assert_true(qgen_hedger_started(&h, 7, 3));
	assert_int_equal(qgen_hedger_result(&h, 7, 3, false, true, false, 300, 900),
	                 QGEN_HEDGE_WON);
	assert_int_equal(qgen_hedger_result(&h, 7, 3, true, true, false, 290, 950),
	                 QGEN_HEDGE_DROP);
	assert_int_equal(h.extra_tokens, 290);
	qgen_hedger_fini(&h);
}

/* Streamed calls: the first question of a pair wins it while the winner still streams. */
static void
test_first_streamed_question_wins(void **state)
{
	qgen_hedger h;

	(void)state;
	ledger(&h);
	assert_true(qgen_hedger_started(&h, 7, 3));
	assert_int_equal(qgen_hedger_piece(&h, 7, true), QGEN_HEDGE_WON);
	assert_int_equal(qgen_hedger_piece(&h, 7, true), QGEN_HEDGE_USE);
	assert_int_equal(qgen_hedger_piece(&h, 7, false), QGEN_HEDGE_DROP); /* came too late */
	/* The original, cancelled, costs what it reported; the winner's result is the plan's. */
	assert_int_equal(qgen_hedger_result(&h, 7, 3, false, false, true, 120, 700),
	                 QGEN_HEDGE_DROP);
	assert_int_equal(h.extra_tokens, 120);
	assert_int_equal(qgen_hedger_result(&h, 7, 3, true, true, false, 300, 900), QGEN_HEDGE_USE);
	assert_int_equal(h.inflight_est, 0);
	/* A batch without a duplicate: every question is the plan's. */
	assert_int_equal(qgen_hedger_piece(&h, 8, false), QGEN_HEDGE_USE);
	qgen_hedger_fini(&h);
}

static void
test_failure_waits_for_the_other(void **state)
{
	qgen_hedger h;

	(void)state;
	ledger(&h);
	assert_true(qgen_hedger_started(&h, 7, 3));
	/* The original fails while the duplicate runs: the plan does not see it. */
	assert_int_equal(qgen_hedger_result(&h, 7, 3, false, false, false, 0, 800),
	                 QGEN_HEDGE_DROP);
	/* The duplicate answers: it is the batch's result. */
	assert_int_equal(qgen_hedger_result(&h, 7, 3, true, true, false, 300, 500), QGEN_HEDGE_WON);
	assert_int_equal(h.extra_tokens, 0);
	/* Both fail: the second failure is the plan's, once. */
	assert_true(qgen_hedger_started(&h, 9, 3));
	assert_int_equal(qgen_hedger_result(&h, 9, 3, false, false, false, 0, 800),
	                 QGEN_HEDGE_DROP);
	assert_int_equal(qgen_hedger_result(&h, 9, 3, true, false, false, 0, 900), QGEN_HEDGE_USE);
	assert_int_equal(h.inflight_est, 0);
	qgen_hedger_fini(&h);
}

static void
test_budget_spent_stops_hedging(void **state)
{
	qgen_hedger     h;
	qgen_hedge_call run[] = {{.idx = 7, .count = 3, .elapsed_ms = 900},
	                         {.idx = 8, .count = 3, .elapsed_ms = 900},
	                         {.idx = 9, .count = 3, .elapsed_ms = 900}};

	(void)state;
	ledger(&h);
	/* 625 tokens: two duplicates of 300 fit, the third does not. */
	assert_true(qgen_hedger_started(&h, 7, 3));
	run[0].hedged = true;
	assert_int_equal(qgen_hedger_pick(&h, run, 3), 1);
	assert_true(qgen_hedger_started(&h, 8, 3));
	run[1].hedged = true;
	assert_int_equal(qgen_hedger_pick(&h, run, 3), -1);
	qgen_hedger_fini(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_median),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_late_call_is_hedged),
	    cmocka_unit_test(test_margin_in_ms),
	    cmocka_unit_test(test_not_in_the_middle_of_a_wave),
	    cmocka_unit_test(test_budget_limits_hedges),
	    cmocka_unit_test(test_first_answer_wins),
	    cmocka_unit_test(test_loser_that_answered_counts_its_tokens),
	    cmocka_unit_test(test_first_streamed_question_wins),
	    cmocka_unit_test(test_failure_waits_for_the_other),
	    cmocka_unit_test(test_budget_spent_stops_hedging),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
