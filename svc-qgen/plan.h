/*
 * plan.h - planning a generation job's model calls: how many questions each call asks for,
 * which chunk it reads, and when to ask for more. Pure: no threads, no I/O, no clock. The
 * runner tells the plan what came back and submits what it hands out, so a test can drive a
 * whole job's decisions with numbers.
 *
 * Batches. Batch idx reads chunk order[idx % norder] with variant idx / norder (a chunk read
 * again is asked for other questions). The first wave, batches 0 .. first-1 with
 * first = ceil(count / per) (more with spares), asks for the whole set: per questions each, the
 * last one the rest.
 * Top-ups take the next idx past the first wave and past every batch a previous runner of the
 * job stored, and ask for what is still missing, per at most.
 *
 * Spares. With spare_pct > 0 the first wave asks count + spare_pct % of count questions,
 * spread evenly (per_call at most each) over as many calls as that takes at per a call, within
 * the `parallel` slots the set's own calls leave free: 25 questions at 25% over 10 slots are 10
 * calls, one of 4 and nine of 3 (31 asked). Streamed, the set is full once the calls have
 * written about count / calls questions each, and the runner cancels what is still writing;
 * the spares also stand in for a failed or slow call. Their questions are in the ledger like
 * any.
 *
 * The ledger. `asked` is the questions of batches handed out and not yet returned. After each
 * round of results, what those batches cannot bring - count - chosen - asked, when a call
 * failed, a model answered garbage or duplicates were dropped - is asked for at once, so a
 * shortfall costs one call's latency rather than another round. A job plans at most
 * max_batches batches (QGEN_MAX_ROUNDS first waves, plus a few), and gives up after
 * QGEN_MAX_FAIL_STREAK failed batches in a row (the model is down) or at once when the provider
 * refused (quota, key): no plan is handed out after either.
 */
#ifndef QGEN_PLAN_H
#define QGEN_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "types.h"

#define QGEN_MAX_FAIL_STREAK 6 /* batches failing in a row: the model is down, give up */

/* One call to make. */
typedef struct qgen_batch_plan {
	int       idx;     /* batch number within the job (stored batches are keyed by it) */
	int       chunk;   /* index into the job's chunks */
	int       count;   /* questions asked */
	qgen_type type;    /* QGEN_MCQ or QGEN_OPEN (both: alternating by idx) */
	int       variant; /* visits of this chunk before this one */
} qgen_batch_plan;

typedef enum qgen_plan_state {
	QGEN_PLAN_RUNNING = 0, /* batches out, or more to hand out */
	QGEN_PLAN_COMPLETE,    /* chosen reached count */
	QGEN_PLAN_FAILING,     /* too many failures in a row, or the provider refused */
	QGEN_PLAN_EXHAUSTED,   /* short, nothing out, and no batch left to plan */
} qgen_plan_state;

typedef struct qgen_plan_params {
	int      count;      /* questions of the set, 1..QGEN_MAX_COUNT */
	unsigned types;      /* QGEN_TYPE_MASK bits (0: mcq) */
	int      parallel;   /* calls at once (QGEN_PARALLEL) */
	int      per_call;   /* most questions per call (QGEN_PER_CALL) */
	int      max_rounds; /* first waves a job may spend (QGEN_MAX_ROUNDS) */
	int      spare_pct;  /* questions asked beyond count in the first wave, % of count
	                        (QGEN_SPARE_PCT; 0: none) */
	size_t     nchunks;  /* >= 1 */
	const int *matches;  /* chunks matching the topic, best first (may be NULL); bad indexes
	                        and repeats are skipped */
	size_t nmatches;
} qgen_plan_params;

typedef struct qgen_plan {
	int      count, per, first, max_batches;
	int      wave_asks; /* questions the first wave asks in all: count, or more with spares */
	unsigned types;
	int     *order; /* chunk indexes in visiting order (norder of them) */
	size_t   norder;
	bool    *stored;   /* first-wave batches a previous runner stored (first of them) */
	int      cursor;   /* next first-wave idx to consider */
	int      next_idx; /* next top-up idx */
	int      asked;    /* questions of batches handed out, not returned */
	int      issued;   /* batches handed out by this plan */
	int      fail_streak;
} qgen_plan;

/*
 * Questions per call. A call costs TTFT + q * (tokens per question) / rate, and `parallel`
 * calls run at once, so a set takes about ceil(count / (q * parallel)) such calls back to back.
 * Up to per_call, the smallest q that still fits the set in as few waves:
 * ceil(count / parallel). 25 questions over 8 parallel calls are 7 calls of 4 (one wave, each
 * call shorter than a call of 5); 100 questions are 20 calls of 5. Always >= 1.
 */
int qgen_plan_per_call(int count, int parallel, int per_call);

/* Builds the plan, visiting order included: topic matches first (only them when there are
 * enough for the first wave), then every chunk spread evenly (every step-th chunk, then those
 * in between), so the first wave covers the whole document. CM_EINVAL on bad params,
 * CM_ENOMEM. */
CM_MUSTCHECK cm_err qgen_plan_init(qgen_plan *p, const qgen_plan_params *pp);
void                qgen_plan_fini(qgen_plan *p);

/* Batch idx of count questions as the plan defines it (chunk, variant, type); no ledger. */
qgen_batch_plan qgen_plan_batch(const qgen_plan *p, int idx, int count);

/* A batch a previous runner stored (resuming): never planned again, and top-ups go past it.
 * Call before the first qgen_plan_next. */
void qgen_plan_stored(qgen_plan *p, int idx);

/* The next batch to submit, given `chosen` questions in the set: the first wave's missing
 * batches, then top-ups while the batches out cannot complete the set. false when nothing is
 * to be asked now (call again after the next results). */
bool qgen_plan_next(qgen_plan *p, size_t chosen, qgen_batch_plan *out);

/* A top-up of n questions (per at most) asked ahead of need: the rest of a slow streamed call
 * (runner.c's hedge_late). false when the plan has no batch left or is failing. */
bool qgen_plan_extra(qgen_plan *p, int n, qgen_batch_plan *out);

/* A batch of `asked` questions came back with err: CM_OK (whatever it held), CM_EPERM (the
 * provider refused: give up), anything else (a failure in a row). */
void qgen_plan_returned(qgen_plan *p, int asked, cm_err err);

/* n questions of a batch still out arrived ahead of it (a streamed call, batch.h): they are
 * no longer asked; that batch later returns with qgen_plan_returned(count - delivered). */
void qgen_plan_delivered(qgen_plan *p, int n);

/* Where the job stands with `chosen` questions in the set. */
qgen_plan_state qgen_plan_check(const qgen_plan *p, size_t chosen);

#endif
