/*
 * pool.h - a job's call pool: a queue of batch plans, up to `max` threads that each take the
 * next plan, make its call and hand the result back.
 *
 * Threads. One owner thread (the job's runner) submits, takes results, cancels and frees; the
 * call function runs on the pool's threads, one plan per thread at a time, and must be
 * thread-safe. Threads start as work comes, one per plan queued or in flight, up to max.
 *
 * Cancellation. After qgen_pool_cancel returns, no call starts: a thread about to take a plan
 * sees the flag first, and the calls in flight are told to stop (their transfers are aborted,
 * see cm_llm_req.cancel); they still come back from qgen_pool_take, with CM_ECANCELED when the
 * stop came in time. qgen_pool_free waits for them and drops their results. One batch's calls
 * (a hedged pair, hedge.h) are cancelled with qgen_pool_cancel_batch.
 */
#ifndef QGEN_POOL_H
#define QGEN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "batch.h"
#include "plan.h"

typedef struct qgen_pool qgen_pool;

/* The call: fills r (made by the pool for a submitted plan: r->plan set, nothing made). */
typedef void (*qgen_call_fn)(void *arg, qgen_batch_result *r);

/* max: threads at most (>= 1). fn and arg must outlive the pool. */
CM_MUSTCHECK cm_err qgen_pool_alloc(qgen_pool **out, int max, qgen_call_fn fn, void *arg);

/* Cancels, waits for the calls in flight, frees every result not taken. NULL is a no-op. */
void qgen_pool_free(qgen_pool *p);

/* Queues plan (copied into its result) and starts a thread when one is due. CM_ENOMEM: not
 * queued. Every plan queued comes back from qgen_pool_take unless the pool is cancelled. */
CM_MUSTCHECK cm_err qgen_pool_submit(qgen_pool *p, const qgen_batch_plan *plan);

/* The results finished since the last take, in completion order (a list through ->next that
 * the caller owns; a streamed call's pieces, batch.h, come before its result), or NULL. When none
 * is ready and plans are queued or in flight, waits up to timeout_ms for one. */
qgen_batch_result *qgen_pool_take(qgen_pool *p, int timeout_ms);

/* No call starts after this returns; plans still queued are dropped; calls in flight are told
 * to stop. */
void qgen_pool_cancel(qgen_pool *p);

/* Queues a duplicate of a batch in flight (its result has ->hedge set); as qgen_pool_submit. */
CM_MUSTCHECK cm_err qgen_pool_hedge(qgen_pool *p, const qgen_batch_plan *plan);

/* Tells every call of batch idx, queued or in flight, to stop. Each still comes back from
 * qgen_pool_take (a queued one without making its call, CM_ECANCELED). */
void qgen_pool_cancel_batch(qgen_pool *p, int idx);

/* Tells the one call of batch idx that is (or is not) its duplicate to stop: the loser of a
 * hedged pair whose winner still streams. */
void qgen_pool_cancel_call(qgen_pool *p, int idx, bool hedge);

/* A call in flight. */
typedef struct qgen_pool_call {
	int     idx, count;
	int64_t started_ms; /* monotonic */
	bool    hedge;
	int     pieces; /* streamed questions it handed over so far */
} qgen_pool_call;

/* The calls in flight now (at most cap of them, into out) and, in *queued, the plans waiting
 * for a thread. */
size_t qgen_pool_running(qgen_pool *p, qgen_pool_call *out, size_t cap, int *queued);

/* Plans queued or in flight plus results not taken yet: 0 once everything came back. */
int qgen_pool_pending(qgen_pool *p);

#endif
