/*
 * test_qgen_plan.c - planning a job's calls, driven with numbers only: questions per call, the
 * chunk visiting order (spread, topic first), the first wave, top-ups sized by the shortfall,
 * resuming past stored batches, alternating types, and when a job is complete, failing or out
 * of batches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/plan.h"

/* A plan for count questions over nchunks chunks with `parallel` calls at once, the service
 * defaults otherwise (5 questions a call at most, 4 rounds). */
static void
make(qgen_plan *p, int count, size_t nchunks, int parallel)
{
	qgen_plan_params pp = {.count = count,
	                       .types = QGEN_TYPE_MASK(QGEN_MCQ),
	                       .parallel = parallel,
	                       .per_call = 5,
	                       .max_rounds = 4,
	                       .nchunks = nchunks};

	assert_int_equal(qgen_plan_init(p, &pp), CM_OK);
}

static void
test_per_call(void **state)
{
	(void)state;
	assert_int_equal(qgen_plan_per_call(25, 8, 5), 4);  /* one wave of 7 calls of 4 */
	assert_int_equal(qgen_plan_per_call(100, 8, 5), 5); /* capped */
	assert_int_equal(qgen_plan_per_call(40, 8, 5), 5);
	assert_int_equal(qgen_plan_per_call(3, 8, 5), 1);
	assert_int_equal(qgen_plan_per_call(1, 8, 5), 1);
	assert_int_equal(qgen_plan_per_call(9, 0, 5), 5); /* no parallelism: as few calls */
}

static void
test_bad_params(void **state)
{
	qgen_plan        p;
	qgen_plan_params pp = {.count = 10, .parallel = 8, .per_call = 5, .max_rounds = 4};

	(void)state;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_EINVAL); /* no chunks */
	pp.nchunks = 3;
	pp.count = 0;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_EINVAL);
	pp.count = QGEN_MAX_COUNT + 1;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_EINVAL);
	pp.count = 10;
	pp.nmatches = 2; /* matches without the array */
	assert_int_equal(qgen_plan_init(&p, &pp), CM_EINVAL);
}

/* 25 questions over 20 chunks: 7 batches of 4, 4, 4, 4, 4, 4, 1, on every other chunk (the
 * first wave spreads over the document), and nothing more while they are out. */
static void
test_first_wave(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;
	const int       counts[7] = {4, 4, 4, 4, 4, 4, 1};

	(void)state;
	make(&p, 25, 20, 8);
	for (int i = 0; i < 7; i++) {
		assert_true(qgen_plan_next(&p, 0, &b));
		assert_int_equal(b.idx, i);
		assert_int_equal(b.count, counts[i]);
		assert_int_equal(b.chunk, 2 * i);
		assert_int_equal(b.variant, 0);
		assert_int_equal(b.type, QGEN_MCQ);
	}
	assert_false(qgen_plan_next(&p, 0, &b));
	assert_int_equal(qgen_plan_check(&p, 0), QGEN_PLAN_RUNNING);
	/* Every chunk comes once before any comes again, and a second visit is variant 1. */
	b = qgen_plan_batch(&p, 19, 1);
	assert_int_equal(b.chunk, 19);
	assert_int_equal(b.variant, 0);
	b = qgen_plan_batch(&p, 20, 1);
	assert_int_equal(b.chunk, 0);
	assert_int_equal(b.variant, 1);
	qgen_plan_fini(&p);
}

/* A shortfall is asked for at once, sized by what the batches out cannot bring. */
static void
test_top_up(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;

	(void)state;
	make(&p, 10, 4, 8); /* per call: 2 (10 over 8 calls), 5 batches */
	for (int i = 0; i < 5; i++)
		assert_true(qgen_plan_next(&p, 0, &b));
	assert_false(qgen_plan_next(&p, 0, &b));
	/* Batch 0 brought 2 questions, one of them a duplicate: 1 chosen, 8 still out. */
	qgen_plan_returned(&p, 2, CM_OK);
	assert_true(qgen_plan_next(&p, 1, &b));
	assert_int_equal(b.idx, 5);
	assert_int_equal(b.count, 1);
	assert_false(qgen_plan_next(&p, 1, &b));
	/* Batch 1 failed: its 2 questions are asked again, as one new batch. */
	qgen_plan_returned(&p, 2, CM_EUNAVAIL);
	assert_true(qgen_plan_next(&p, 1, &b));
	assert_int_equal(b.idx, 6);
	assert_int_equal(b.count, 2);
	assert_false(qgen_plan_next(&p, 1, &b));
	/* Complete: nothing more, whatever is still out. */
	assert_false(qgen_plan_next(&p, 10, &b));
	assert_int_equal(qgen_plan_check(&p, 10), QGEN_PLAN_COMPLETE);
	qgen_plan_fini(&p);
}

/* A resumed job asks only for the first-wave batches its earlier runner did not store, and its
 * top-ups go past every stored batch. */
static void
test_resume(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;

	(void)state;
	make(&p, 20, 8, 4); /* 4 batches of 5 */
	qgen_plan_stored(&p, 0);
	qgen_plan_stored(&p, 2);
	qgen_plan_stored(&p, 6); /* a top-up of the earlier run */
	assert_true(qgen_plan_next(&p, 14, &b));
	assert_int_equal(b.idx, 1);
	assert_int_equal(b.count, 5);
	assert_true(qgen_plan_next(&p, 14, &b));
	assert_int_equal(b.idx, 3);
	assert_int_equal(b.count, 5);
	/* 14 chosen from the stored batches + 10 out: 20 expected, nothing to top up. */
	assert_false(qgen_plan_next(&p, 14, &b));
	/* Batch 1 came back empty: 5 missing, asked past the stored batch 6. */
	qgen_plan_returned(&p, 5, CM_OK);
	assert_true(qgen_plan_next(&p, 14, &b));
	assert_int_equal(b.idx, 7);
	assert_int_equal(b.count, 1);
	qgen_plan_fini(&p);
}

/* Topic matches come first; with enough of them for the first wave, only them. Bad indexes and
 * repeats are skipped. */
static void
test_topic_order(void **state)
{
	qgen_plan        p;
	const int        hits[] = {7, 3, 7, 42, -1};
	qgen_plan_params pp = {.count = 10,
	                       .parallel = 2,
	                       .per_call = 5,
	                       .max_rounds = 4,
	                       .nchunks = 10,
	                       .matches = hits,
	                       .nmatches = 5};

	(void)state;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK); /* 2 batches of 5 */
	assert_int_equal(p.norder, 2);
	assert_int_equal(qgen_plan_batch(&p, 0, 5).chunk, 7);
	assert_int_equal(qgen_plan_batch(&p, 1, 5).chunk, 3);
	assert_int_equal(qgen_plan_batch(&p, 2, 5).chunk, 7);
	assert_int_equal(qgen_plan_batch(&p, 2, 5).variant, 1);
	qgen_plan_fini(&p);
	/* Fewer matches than the first wave: them first, then the rest spread. */
	pp.count = 20; /* 4 batches */
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK);
	assert_int_equal(p.norder, 10);
	assert_int_equal(p.order[0], 7);
	assert_int_equal(p.order[1], 3);
	assert_int_equal(p.order[2], 0);
	assert_int_equal(p.order[3], 2); /* step 10 / 4 = 2 */
	qgen_plan_fini(&p);
}

static void
test_types(void **state)
{
	qgen_plan        p;
	qgen_plan_params pp = {.count = 10,
	                       .types = QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
	                       .parallel = 8,
	                       .per_call = 5,
	                       .max_rounds = 4,
	                       .nchunks = 3};

	(void)state;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(qgen_plan_batch(&p, i, 1).type, i % 2 == 0 ? QGEN_MCQ : QGEN_OPEN);
	qgen_plan_fini(&p);
	pp.types = QGEN_TYPE_MASK(QGEN_OPEN);
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK);
	assert_int_equal(qgen_plan_batch(&p, 0, 1).type, QGEN_OPEN);
	assert_int_equal(qgen_plan_batch(&p, 1, 1).type, QGEN_OPEN);
	qgen_plan_fini(&p);
}

/* QGEN_MAX_FAIL_STREAK failures in a row end the job; a success in between resets the count;
 * nothing is handed out once it is failing. */
static void
test_fail_streak(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;

	(void)state;
	make(&p, 5, 3, 8); /* 5 batches of 1 */
	for (int i = 0; i < QGEN_MAX_FAIL_STREAK - 1; i++) {
		while (qgen_plan_next(&p, 0, &b))
			;
		qgen_plan_returned(&p, 1, CM_ETIMEDOUT);
		assert_int_equal(qgen_plan_check(&p, 0), QGEN_PLAN_RUNNING);
	}
	qgen_plan_returned(&p, 1, CM_OK);
	qgen_plan_returned(&p, 1, CM_ELIMIT);
	assert_int_equal(qgen_plan_check(&p, 0), QGEN_PLAN_RUNNING);
	for (int i = 0; i < QGEN_MAX_FAIL_STREAK - 1; i++)
		qgen_plan_returned(&p, 1, CM_EUNAVAIL);
	assert_int_equal(qgen_plan_check(&p, 0), QGEN_PLAN_FAILING);
	assert_false(qgen_plan_next(&p, 0, &b));
	qgen_plan_fini(&p);
}

/* The provider refusing (quota, key) ends the job at once. */
static void
test_refused(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;

	(void)state;
	make(&p, 5, 3, 8);
	assert_true(qgen_plan_next(&p, 0, &b));
	qgen_plan_returned(&p, b.count, CM_EPERM);
	assert_int_equal(qgen_plan_check(&p, 0), QGEN_PLAN_FAILING);
	assert_false(qgen_plan_next(&p, 0, &b));
	qgen_plan_fini(&p);
}

/* Calls that keep answering nothing usable: the job plans first * rounds + 4 batches, then,
 * with nothing out, it is out of batches - never before the last one is back. */
static void
test_exhausted(void **state)
{
	qgen_plan       p;
	qgen_batch_plan b;
	int             issued = 0;

	(void)state;
	make(&p, 10, 4, 8); /* 5 batches of 2: at most 5 * 4 + 4 = 24 */
	for (;;) {
		bool any = false;
		while (qgen_plan_next(&p, 3, &b)) {
			issued++;
			any = true;
		}
		if (!any)
			break;
		assert_int_equal(qgen_plan_check(&p, 3), QGEN_PLAN_RUNNING);
		/* Everything out comes back with no question, and no failure. */
		qgen_plan_returned(&p, p.asked, CM_OK);
	}
	assert_int_equal(issued, 24);
	assert_int_equal(qgen_plan_check(&p, 3), QGEN_PLAN_EXHAUSTED);
	qgen_plan_fini(&p);
}

/* The first wave of pp's plan: `first` batches, those before idx `split` asking `big`
 * questions, the others `small`; returns the questions asked. */
static int
first_wave(const qgen_plan_params *pp, int first, int split, int big, int small)
{
	qgen_plan       p;
	qgen_batch_plan b;
	int             asked = 0;

	assert_int_equal(qgen_plan_init(&p, pp), CM_OK);
	assert_int_equal(p.first, first);
	while (qgen_plan_next(&p, 0, &b)) {
		assert_int_equal(b.count, b.idx < split ? big : small);
		asked += b.count;
	}
	qgen_plan_fini(&p);
	return asked;
}

/* Spares: 25 questions over 10 slots are 9 calls of 3; at QGEN_SPARE_PCT 25 (6 questions) the
 * wave asks 31, spread over the 10 slots: one call of 4 and nine of 3. The set is complete
 * before the last calls answer, and the spares also stand in for a failed call. */
static void
test_spares(void **state)
{
	qgen_plan        p;
	qgen_batch_plan  b;
	qgen_plan_params pp = {.count = 25,
	                       .parallel = 10,
	                       .per_call = 5,
	                       .max_rounds = 4,
	                       .spare_pct = 25,
	                       .nchunks = 40};
	int              asked = 0;

	(void)state;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK);
	assert_int_equal(p.first, 10);
	for (int i = 0; i < 10; i++) {
		assert_true(qgen_plan_next(&p, 0, &b));
		assert_int_equal(b.idx, i);
		assert_int_equal(b.count, i == 0 ? 4 : 3);
		asked += b.count;
	}
	assert_int_equal(asked, 31);
	assert_false(qgen_plan_next(&p, 0, &b)); /* 31 out cover 25 */
	/* One call fails: 28 still out, no top-up. */
	qgen_plan_returned(&p, 3, CM_EUNAVAIL);
	assert_false(qgen_plan_next(&p, 0, &b));
	/* Eight answer with 3: 24; a streamed question of the last call completes the set. */
	for (int i = 0; i < 8; i++)
		qgen_plan_returned(&p, 3, CM_OK);
	assert_int_equal(qgen_plan_check(&p, 24), QGEN_PLAN_RUNNING);
	qgen_plan_delivered(&p, 1);
	assert_int_equal(qgen_plan_check(&p, 25), QGEN_PLAN_COMPLETE);
	qgen_plan_fini(&p);
	/* 50%: 37 over the 10 slots, 4 for the first seven, 3 for the last three. */
	pp.spare_pct = 50;
	assert_int_equal(first_wave(&pp, 10, 7, 4, 3), 37);
	/* 5%: one question more, in the set's own 9 calls (8 of 3, 1 of 2). */
	pp.spare_pct = 5;
	assert_int_equal(first_wave(&pp, 9, 8, 3, 2), 26);
	/* 3%: no whole question: the set's own calls, 8 of 3 and the last of 1. */
	pp.spare_pct = 3;
	assert_int_equal(first_wave(&pp, 9, 8, 3, 1), 25);
	/* Without free slots the spares go into the set's own calls: 31 over 9 calls. */
	pp.spare_pct = 25;
	pp.parallel = 9;
	assert_int_equal(first_wave(&pp, 9, 4, 4, 3), 31);
	/* ... and never past per_call: 100 questions are 20 calls of 5 at most, whatever the %. */
	pp.count = 100;
	pp.parallel = 10;
	assert_int_equal(first_wave(&pp, 20, 20, 5, 5), 100);
}

/* A streamed question no longer counts as asked: a shortfall is topped up at once. */
static void
test_delivered(void **state)
{
	qgen_plan        p;
	qgen_batch_plan  b;
	qgen_plan_params pp = {
	    .count = 6, .parallel = 2, .per_call = 3, .max_rounds = 4, .nchunks = 4};

	(void)state;
	assert_int_equal(qgen_plan_init(&p, &pp), CM_OK);
	assert_true(qgen_plan_next(&p, 0, &b));
	assert_true(qgen_plan_next(&p, 0, &b));
	assert_false(qgen_plan_next(&p, 0, &b));
	/* Two questions of the first call arrive; the set took one (the other a duplicate): 1
	 * chosen + 4 asked, one short, asked for while the call still writes. */
	qgen_plan_delivered(&p, 2);
	assert_true(qgen_plan_next(&p, 1, &b));
	assert_int_equal(b.count, 1);
	assert_false(qgen_plan_next(&p, 1, &b));
	qgen_plan_returned(&p, 3 - 2, CM_OK);   /* the call ends without its third */
	assert_true(qgen_plan_next(&p, 1, &b)); /* 1 + 4 out: one more */
	assert_int_equal(b.count, 1);
	/* The rest of a slow call asked ahead: a new batch, per questions at most. */
	assert_true(qgen_plan_extra(&p, 5, &b));
	assert_int_equal(b.count, 3);
	assert_int_equal(b.idx, 4);
	assert_false(qgen_plan_extra(&p, 0, &b));
	qgen_plan_fini(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_per_call),   cmocka_unit_test(test_bad_params),
	    cmocka_unit_test(test_first_wave), cmocka_unit_test(test_top_up),
	    cmocka_unit_test(test_resume),     cmocka_unit_test(test_topic_order),
	    cmocka_unit_test(test_types),      cmocka_unit_test(test_fail_streak),
	    cmocka_unit_test(test_refused),    cmocka_unit_test(test_exhausted),
	    cmocka_unit_test(test_spares),     cmocka_unit_test(test_delivered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
