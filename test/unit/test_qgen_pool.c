/*
 * test_qgen_pool.c - a job's call pool with a fake call that waits at a gate the test opens:
 * every plan comes back once with what its call made, never more calls at once than the pool's
 * threads, and no call starts after a cancel.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cm/util.h"
#include "../../svc-qgen/pool.h"

typedef struct fake {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            open; /* the gate */
	int             started, inflight, max_inflight;
} fake;

static void
fake_call(void *arg, qgen_batch_result *r)
{
	fake *f = arg;

	pthread_mutex_lock(&f->mu);
	f->started++;
	if (++f->inflight > f->max_inflight)
		f->max_inflight = f->inflight;
	pthread_cond_broadcast(&f->cv);
	while (!f->open)
		pthread_cond_wait(&f->cv, &f->mu);
	f->inflight--;
	pthread_mutex_unlock(&f->mu);
	r->err = r->plan.idx % 2 == 0 ? CM_OK : CM_EUNAVAIL; /* what the call made */
}

static void
fake_init(fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
}

static void
fake_fini(fake *f)
{
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

/* Waits (deadline 5 s) until n calls have started. */
static void
wait_started(fake *f, int n)
{
	int64_t deadline = cm_mono_ms() + 5000;

	pthread_mutex_lock(&f->mu);
	while (f->started < n && cm_mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	assert_int_equal(f->started, n);
	pthread_mutex_unlock(&f->mu);
}

static void
open_gate(fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->open = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static qgen_batch_plan
plan(int idx)
{
	qgen_batch_plan b = {.idx = idx, .chunk = 0, .count = 3, .type = QGEN_MCQ, .variant = 0};

	return b;
}

static void
test_all_back_at_most_max(void **state)
{
	fake       f;
	qgen_pool *p;
	int        seen[10] = {0}, back = 0;
	int64_t    deadline;

	(void)state;
	fake_init(&f);
	assert_int_equal(qgen_pool_alloc(&p, 3, fake_call, &f), CM_OK);
	for (int i = 0; i < 10; i++) {
		qgen_batch_plan b = plan(i);
		assert_int_equal(qgen_pool_submit(p, &b), CM_OK);
	}
	wait_started(&f, 3); /* three threads, each held at the gate */
	assert_null(qgen_pool_take(p, 0));
	open_gate(&f);
	deadline = cm_mono_ms() + 10000;
	while (back < 10 && cm_mono_ms() < deadline) {
		qgen_batch_result *r = qgen_pool_take(p, 100);
		while (r != NULL) {
			qgen_batch_result *next = r->next;
			assert_true(r->plan.idx >= 0 && r->plan.idx < 10);
			assert_int_equal(r->plan.count, 3);
			assert_int_equal(r->err, r->plan.idx % 2 == 0 ? CM_OK : CM_EUNAVAIL);
			seen[r->plan.idx]++;
			back++;
			qgen_batch_result_free(r);
			r = next;
		}
	}
	assert_int_equal(back, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(f.max_inflight, 3);
	assert_int_equal(f.started, 10);
	qgen_pool_free(p);
	fake_fini(&f);
}

static void
test_cancel_starts_nothing(void **state)
{
	fake       f;
	qgen_pool *p;

	(void)state;
	fake_init(&f);
	assert_int_equal(qgen_pool_alloc(&p, 2, fake_call, &f), CM_OK);
	for (int i = 0; i < 5; i++) {
		qgen_batch_plan b = plan(i);
		assert_int_equal(qgen_pool_submit(p, &b), CM_OK);
	}
	wait_started(&f, 2);
	qgen_pool_cancel(p);
	open_gate(&f);
	qgen_pool_free(p); /* waits for the two calls in flight, drops their results */
	assert_int_equal(f.started, 2);
	fake_fini(&f);
}

static void
test_nothing_submitted(void **state)
{
	fake       f;
	qgen_pool *p;
	int64_t    t0;

	(void)state;
	fake_init(&f);
	assert_int_equal(qgen_pool_alloc(&p, 0, fake_call, &f), CM_EINVAL);
	assert_int_equal(qgen_pool_alloc(&p, 4, fake_call, &f), CM_OK);
	t0 = cm_mono_ms();
	assert_null(qgen_pool_take(p, 2000)); /* nothing out: nothing to wait for */
	assert_true(cm_mono_ms() - t0 < 1000);
	qgen_pool_free(p);
	assert_int_equal(f.started, 0);
	fake_fini(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_back_at_most_max),
	    cmocka_unit_test(test_cancel_starts_nothing),
	    cmocka_unit_test(test_nothing_submitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
