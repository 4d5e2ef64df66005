/*
 * pool.c - a job's call pool (pool.h).
 *
 * DESIGN. One mutex and one condition variable: threads wait on it for work or the end, the
 * owner for results; every change broadcasts, which is cheap at a handful of threads. A result
 * is allocated at submit and travels queue -> a thread -> the done list -> the owner, so a
 * submitted plan can never be lost to a failed allocation on a call thread (the ledger in
 * plan.c counts on every plan coming back). A streamed call's pieces (batch.h) join the done
 * list as they come, before their call's result. Threads are started lazily by the owner (submit,
 * take): a job whose set comes from stored batches never starts one.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "cm/util.h"
#include "pool.h"

struct qgen_pool {
	qgen_call_fn        fn;
	void               *arg;
	pthread_mutex_t     mu;
	pthread_cond_t      cv;
	qgen_batch_result  *queue, *queue_tail; /* submitted, not started (FIFO) */
	qgen_batch_result  *done, *done_tail;   /* finished, not taken */
	qgen_batch_result **running;            /* the call of each thread slot, or NULL */
	int                 queued, inflight, ndone;
	bool                cancel; /* no call starts; threads exit */
	pthread_t          *threads;
	int                 nthreads, max;
};

static void
append(qgen_batch_result **head, qgen_batch_result **tail, qgen_batch_result *r)
{
	r->next = NULL;
	if (*tail != NULL)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static void
drop_all(qgen_batch_result *r)
{
	while (r != NULL) {
		qgen_batch_result *next = r->next;
		qgen_batch_result_free(r);
		r = next;
	}
}

/* A streamed question of a call in flight (batch.h): to the done list at once. */
static void
pool_emit(void *ctx, qgen_batch_result *from, qgen_batch_result *piece)
{
	qgen_pool *p = ctx;

	pthread_mutex_lock(&p->mu);
	from->npieces++;
	piece->started_ms = from->started_ms;
	p->ndone++;
	append(&p->done, &p->done_tail, piece);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void *
call_thread(void *arg)
{
	qgen_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		qgen_batch_result *r;
		int                slot;

		while (!p->cancel && p->queue == NULL)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->cancel)
			break;
		r = p->queue;
		if ((p->queue = r->next) == NULL)
			p->queue_tail = NULL;
		p->queued--;
		p->inflight++;
		for (slot = 0; p->running[slot] != NULL; slot++) /* inflight <= max: one is free */
			;
		p->running[slot] = r;
		if (!atomic_load(&r->cancel))
			r->started_ms = cm_mono_ms(); /* under mu: qgen_pool_running reads it */
		r->emit = pool_emit;
		r->emit_ctx = p;
		pthread_mutex_unlock(&p->mu);
		if (r->started_ms == 0) {
			r->err = CM_ECANCELED; /* cancelled while queued: no call */
		} else {
			p->fn(p->arg, r);
			r->ended_ms = cm_mono_ms();
		}
		pthread_mutex_lock(&p->mu);
		p->running[slot] = NULL;
		p->inflight--;
		p->ndone++;
		append(&p->done, &p->done_tail, r);
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* One thread per plan queued or in flight, up to max (mu held). A thread that cannot start
 * now is tried again at the next submit or take. */
static void
spawn_due(qgen_pool *p)
{
	while (!p->cancel && p->nthreads < p->max && p->nthreads < p->queued + p->inflight) {
		if (pthread_create(&p->threads[p->nthreads], NULL, call_thread, p) != 0)
			break;
		p->nthreads++;
	}
}

cm_err
qgen_pool_alloc(qgen_pool **out, int max, qgen_call_fn fn, void *arg)
{
	qgen_pool *p;

	*out = NULL;
	if (max < 1 || fn == NULL)
		return CM_EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return CM_ENOMEM;
	if ((p->threads = calloc((size_t)max, sizeof(pthread_t))) == NULL ||
	    (p->running = calloc((size_t)max, sizeof(qgen_batch_result *))) == NULL) {
		free(p->threads);
		free(p);
		return CM_ENOMEM;
	}
	p->fn = fn;
	p->arg = arg;
	p->max = max;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	*out = p;
	return CM_OK;
}

void
qgen_pool_free(qgen_pool *p)
{
	if (p == NULL)
		return;
	qgen_pool_cancel(p);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	drop_all(p->done);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p->running);
	free(p);
}

static cm_err
queue_plan(qgen_pool *p, const qgen_batch_plan *plan, bool hedge)
{
	qgen_batch_result *r = qgen_batch_result_alloc(plan);

	if (r == NULL)
		return CM_ENOMEM;
	r->hedge = hedge;
	pthread_mutex_lock(&p->mu);
	append(&p->queue, &p->queue_tail, r);
	p->queued++;
	spawn_due(p);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return CM_OK;
}

cm_err
qgen_pool_submit(qgen_pool *p, const qgen_batch_plan *plan)
{
	return queue_plan(p, plan, false);
}

cm_err
qgen_pool_hedge(qgen_pool *p, const qgen_batch_plan *plan)
{
	return queue_plan(p, plan, true);
}

qgen_batch_result *
qgen_pool_take(qgen_pool *p, int timeout_ms)
{
	qgen_batch_result *got;

	pthread_mutex_lock(&p->mu);
	spawn_due(p);
	if (p->done == NULL && p->queued + p->inflight > 0 && timeout_ms > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	got = p->done;
	p->done = p->done_tail = NULL;
	p->ndone = 0;
	pthread_mutex_unlock(&p->mu);
	return got;
}

void
qgen_pool_cancel(qgen_pool *p)
{
	qgen_batch_result *dropped;

	pthread_mutex_lock(&p->mu);
	p->cancel = true;
	dropped = p->queue;
	p->queue = p->queue_tail = NULL;
	p->queued = 0;
	for (int i = 0; i < p->max; i++)
		if (p->running[i] != NULL)
			atomic_store(&p->running[i]->cancel, true);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	drop_all(dropped);
}

void
qgen_pool_cancel_batch(qgen_pool *p, int idx)
{
	pthread_mutex_lock(&p->mu);
	for (qgen_batch_result *r = p->queue; r != NULL; r = r->next)
		if (r->plan.idx == idx)
			atomic_store(&r->cancel, true);
	for (int i = 0; i < p->max; i++)
		if (p->running[i] != NULL && p->running[i]->plan.idx == idx)
			atomic_store(&p->running[i]->cancel, true);
	pthread_mutex_unlock(&p->mu);
}

void
qgen_pool_cancel_call(qgen_pool *p, int idx, bool hedge)
{
	pthread_mutex_lock(&p->mu);
	for (qgen_batch_result *r = p->queue; r != NULL; r = r->next)
		if (r->plan.idx == idx && r->hedge == hedge)
			atomic_store(&r->cancel, true);
	for (int i = 0; i < p->max; i++)
		if (p->running[i] != NULL && p->running[i]->plan.idx == idx &&
		    p->running[i]->hedge == hedge)
			atomic_store(&p->running[i]->cancel, true);
	pthread_mutex_unlock(&p->mu);
}

size_t
qgen_pool_running(qgen_pool *p, qgen_pool_call *out, size_t cap, int *queued)
{
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->max && n < cap; i++) {
		const qgen_batch_result *r = p->running[i];

		if (r == NULL || r->started_ms == 0)
			continue; /* taken, not started yet: its clock has not begun */
		out[n++] = (qgen_pool_call){r->plan.idx, r->plan.count, r->started_ms, r->hedge,
		                            r->npieces};
	}
	*queued = p->queued;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int
qgen_pool_pending(qgen_pool *p)
{
	int n;

	pthread_mutex_lock(&p->mu);
	n = p->queued + p->inflight + p->ndone;
	pthread_mutex_unlock(&p->mu);
	return n;
}
