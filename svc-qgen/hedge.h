/*
 * hedge.h - hedged calls: a job's answer to the slow-call tail. A wave of parallel calls lasts
 * as long as its slowest call; when a call runs well past the median of the calls that already
 * answered, a duplicate of it (the same batch: chunk, count, type, variant) is started, the first
 * usable answer of the two wins and the other is cancelled. Pure: no threads, no clock, no I/O.
 * The runner feeds it durations and token counts and asks it what to hedge; a test drives it
 * with numbers.
 *
 * When. A call is late when it has run longer than median * (100 + after_pct) / 100 and longer
 * than median + min_ms, the median over the calls of this job that answered; only while at
 * least as many calls have answered as are still running (the tail of a wave, not its
 * middle). The latest of the late calls is hedged first, one duplicate per batch.
 *
 * Budget. Hedging spends tokens: a duplicate that loses is paid for (fully when it answered,
 * and counted at a whole call's estimate when it was cancelled in flight, the most it can have
 * cost). The extra tokens of a set are capped at max_extra_pct percent of the set's expected
 * tokens (count x the tokens per question measured on the answers so far); a duplicate is
 * started only when its estimate still fits beside what was spent and what is in flight.
 */
#ifndef QGEN_HEDGE_H
#define QGEN_HEDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

typedef struct qgen_hedge_params {
	int after_pct;     /* late past the median by this many percent (QGEN_HEDGE_AFTER_PCT) */
	int min_ms;        /* and by at least this many ms (QGEN_HEDGE_MIN_MS) */
	int max_extra_pct; /* extra-token budget, % of the set's expected tokens
	                      (QGEN_HEDGE_MAX_EXTRA); 0: never hedge */
} qgen_hedge_params;

/* A call in flight, as the runner sees it. */
typedef struct qgen_hedge_call {
	int     idx;        /* its batch */
	int     count;      /* questions it asks */
	int64_t elapsed_ms; /* since it started */
	bool    hedged;     /* it has a duplicate already, or is one */
} qgen_hedge_call;

/* What a decision looks at. */
typedef struct qgen_hedge_wave {
	const int64_t         *finished_ms; /* durations of the calls that answered */
	size_t                 nfinished;
	const qgen_hedge_call *running;
	size_t                 nrunning;
	int64_t                tokens_per_question; /* measured on the answers; 0: unknown */
	int                    count;               /* questions of the set */
	int64_t                spent;               /* extra tokens spent or in flight so far */
} qgen_hedge_wave;

/* The extra-token budget of a set of count questions at tokens_per_question. */
int64_t qgen_hedge_budget(const qgen_hedge_params *hp, int count, int64_t tokens_per_question);

/* The median of n durations (n >= 1; the lower middle one when n is even). */
int64_t qgen_hedge_median(const int64_t *ms, size_t n);

/* Which running call to hedge now: an index into w->running, or -1 (none is late, the wave is
 * not in its tail, or no duplicate fits the budget). */
int qgen_hedge_pick(const qgen_hedge_params *hp, const qgen_hedge_wave *w);

/*
 * A job's hedging ledger. Every result of a hedged batch goes through qgen_hedger_result,
 * which says what to do with it; results of other batches only feed the statistics.
 */
typedef enum qgen_hedge_verdict {
	QGEN_HEDGE_USE = 0, /* an ordinary result, or the last of a pair whose other one failed:
	                       hand it to the plan as usual */
	QGEN_HEDGE_WON,     /* the first usable answer of a pair: use it and cancel the other */
	QGEN_HEDGE_DROP,    /* the loser of a pair, or a failure while the other still runs:
	                       not the plan's business; its tokens are counted as extra */
} qgen_hedge_verdict;

typedef struct qgen_hedge_pair {
	int     idx;
	int     out;     /* calls of the pair still out (2, 1, 0) */
	bool    settled; /* one answered and won */
	int     winner;  /* which: 1 the original, 2 the duplicate (0: none yet) */
	int64_t est;     /* the duplicate's token estimate, held against the budget while out */
} qgen_hedge_pair;

typedef struct qgen_hedger {
	qgen_hedge_params hp;
	int               count;
	int64_t          *finished_ms; /* durations of answered calls (cap of them kept) */
	size_t            nfinished, cap;
	int64_t           tokens, questions; /* of answered calls: tokens per question */
	qgen_hedge_pair  *pairs;
	size_t            npairs, maxpairs;
	int64_t           extra_tokens; /* spent on losers (counted as they come back) */
	int64_t           inflight_est; /* estimates of duplicates not yet settled */
	int               hedged;       /* duplicates started */
} qgen_hedger;

/* cap: calls the job may make (the plan's max_batches); count: questions of the set.
 * CM_ENOMEM. */
CM_MUSTCHECK cm_err qgen_hedger_init(qgen_hedger *h, const qgen_hedge_params *hp, int count,
                                     int cap);
void                qgen_hedger_fini(qgen_hedger *h);

/* Whether batch idx has a duplicate. */
bool qgen_hedger_has(const qgen_hedger *h, int idx);

/* The next batch to duplicate among the running calls (-1: none); see qgen_hedge_pick. */
int qgen_hedger_pick(const qgen_hedger *h, const qgen_hedge_call *running, size_t nrunning);

/* A duplicate of batch idx, asking count questions, was started. false: no room (not started
 * then). */
bool qgen_hedger_started(qgen_hedger *h, int idx, int count);

/* A call of batch idx (count questions; hedge: the duplicate) came back: ok (it answered
 * usable questions), cancelled (stopped in flight by us), its tokens (0 when unknown) and how
 * long it ran. The winner's own result after it won with a streamed question is USE. */
qgen_hedge_verdict qgen_hedger_result(qgen_hedger *h, int idx, int count, bool hedge, bool ok,
                                      bool cancelled, int64_t tokens, int64_t ms);

/* A streamed question of a call of batch idx (hedge: the duplicate's) arrived. The first of a
 * pair is WON (the other call is to be cancelled), the winner's next ones USE, the loser's
 * DROP; a batch without a duplicate: USE. The call's result still comes through
 * qgen_hedger_result. */
qgen_hedge_verdict qgen_hedger_piece(qgen_hedger *h, int idx, bool hedge);

/* A call whose answer the set did not need (it came after the set was full, or was cancelled
 * in flight when it was: spares, plan.h): counted as extra like a loser. */
void qgen_hedger_unused(qgen_hedger *h, int count, bool cancelled, int64_t tokens);

#endif
