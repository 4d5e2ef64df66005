/*
 * hedge.c - hedged calls (hedge.h).
 *
 * DESIGN. The decision is a function of numbers (durations, tokens, a budget) so that it is
 * unit tested without a model or a clock; the runner owns the threads and the pool. A
 * duplicate is the same batch again rather than another chunk: the slow tail of a provider
 * (queueing, a busy replica) is not in the prompt, and a set must not get questions from two
 * answers to one batch, which the pair's single winner guarantees. The median is taken over
 * every answer of the job, not only the current wave's: top-up waves are short and their few
 * answers alone say little. With streamed calls the first question of a pair settles it: the
 * winner goes on streaming, the loser is cancelled, and the winner's own result, when it ends,
 * is an ordinary one.
 */
#include <stdlib.h>
#include <string.h>

#include "hedge.h"

int64_t
qgen_hedge_budget(const qgen_hedge_params *hp, int count, int64_t tokens_per_question)
{
	if (hp->max_extra_pct <= 0 || count <= 0 || tokens_per_question <= 0)
		return 0;
	return (int64_t)count * tokens_per_question * hp->max_extra_pct / 100;
}

static int
cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t
qgen_hedge_median(const int64_t *ms, size_t n)
{
	int64_t  small[64];
	int64_t *v = n <= 64 ? small : malloc(n * sizeof(int64_t));
	int64_t  m;

	if (n == 0)
		return 0;
	if (v == NULL) /* out of memory: any sample is a usable guess */
		return ms[n / 2];
	memcpy(v, ms, n * sizeof(int64_t));
	qsort(v, n, sizeof(int64_t), cmp_ms);
	m = v[(n - 1) / 2];
	if (v != small)
		free(v);
	return m;
}

int
qgen_hedge_pick(const qgen_hedge_params *hp, const qgen_hedge_wave *w)
{
	int64_t budget = qgen_hedge_budget(hp, w->count, w->tokens_per_question);
	int64_t median, late;
	int     best = -1;

	if (budget <= 0 || w->nfinished == 0 || w->nrunning == 0 || w->nfinished < w->nrunning)
		return -1; /* no budget, no median yet, or the middle of a wave */
	median = qgen_hedge_median(w->finished_ms, w->nfinished);
	late = median * (100 + hp->after_pct) / 100;
	if (late < median + hp->min_ms)
		late = median + hp->min_ms;
	for (size_t i = 0; i < w->nrunning; i++) {
		const qgen_hedge_call *c = &w->running[i];
		int64_t                cost = (int64_t)c->count * w->tokens_per_question;

		if (c->hedged || c->elapsed_ms <= late || w->spent + cost > budget)
			continue;
		if (best < 0 || c->elapsed_ms > w->running[best].elapsed_ms)
			best = (int)i;
	}
	return best;
}

cm_err
qgen_hedger_init(qgen_hedger *h, const qgen_hedge_params *hp, int count, int cap)
{
	*h = (qgen_hedger){0};
	h->hp = *hp;
	h->count = count;
	h->cap = cap > 0 ? (size_t)cap * 2 : 2; /* every call and a duplicate of each at most */
	h->maxpairs = h->cap;
	if ((h->finished_ms = calloc(h->cap, sizeof(int64_t))) == NULL ||
	    (h->pairs = calloc(h->maxpairs, sizeof(qgen_hedge_pair))) == NULL) {
		qgen_hedger_fini(h);
		return CM_ENOMEM;
	}
	return CM_OK;
}

void
qgen_hedger_fini(qgen_hedger *h)
{
	free(h->finished_ms);
	free(h->pairs);
	*h = (qgen_hedger){0};
}

static int64_t
tokens_per_question(const qgen_hedger *h)
{
	return h->questions > 0 ? (h->tokens + h->questions - 1) / h->questions : 0;
}

static qgen_hedge_pair *
find(const qgen_hedger *h, int idx)
{
	for (size_t i = 0; i < h->npairs; i++)
		if (h->pairs[i].idx == idx)
			return &h->pairs[i];
	return NULL;
}

bool
qgen_hedger_has(const qgen_hedger *h, int idx)
{
	return find(h, idx) != NULL;
}

int
qgen_hedger_pick(const qgen_hedger *h, const qgen_hedge_call *running, size_t nrunning)
{
	qgen_hedge_wave w = {h->finished_ms,
	                     h->nfinished,
	                     running,
	                     nrunning,
	                     tokens_per_question(h),
	                     h->count,
	                     h->extra_tokens + h->inflight_est};

	return qgen_hedge_pick(&h->hp, &w);
}

bool
qgen_hedger_started(qgen_hedger *h, int idx, int count)
{
	qgen_hedge_pair *p;

	if (find(h, idx) != NULL || h->npairs >= h->maxpairs)
		return false;
	p = &h->pairs[h->npairs++];
	p->idx = idx;
	p->out = 2;
	p->settled = false;
	p->est = (int64_t)count * tokens_per_question(h);
	h->inflight_est += p->est;
	h->hedged++;
	return true;
}

void
qgen_hedger_unused(qgen_hedger *h, int count, bool cancelled, int64_t tokens)
{
	if (tokens > 0)
		h->extra_tokens += tokens;
	else if (cancelled)
		h->extra_tokens += (int64_t)count * tokens_per_question(h);
}

qgen_hedge_verdict
qgen_hedger_piece(qgen_hedger *h, int idx, bool hedge)
{
	qgen_hedge_pair *p = find(h, idx);
	int              who = hedge ? 2 : 1;

	if (p == NULL || p->out == 0)
		return QGEN_HEDGE_USE;
	if (!p->settled) {
		p->settled = true;
		p->winner = who;
		return QGEN_HEDGE_WON;
	}
	return p->winner == who ? QGEN_HEDGE_USE : QGEN_HEDGE_DROP;
}

qgen_hedge_verdict
qgen_hedger_result(qgen_hedger *h, int idx, int count, bool hedge, bool ok, bool cancelled,
                   int64_t tokens, int64_t ms)
{
	qgen_hedge_pair   *p = find(h, idx);
	int                who = hedge ? 2 : 1;
	qgen_hedge_verdict v;

	if (ok && count > 0) {
		if (h->nfinished < h->cap)
			h->finished_ms[h->nfinished++] = ms;
		h->tokens += tokens;
		h->questions += count;
	}
	if (p == NULL || p->out == 0)
		return QGEN_HEDGE_USE;
	p->out--;
	if (p->settled && p->winner == who) {
		v = QGEN_HEDGE_USE; /* a stream that won with its first question, now ended */
	} else if (p->settled || (!ok && p->out > 0)) {
		/* Paid for and not used: what it reported, or a whole call when we cut it off. */
		qgen_hedger_unused(h, count, cancelled, tokens);
		v = QGEN_HEDGE_DROP;
	} else if (ok) {
		p->settled = true;
		p->winner = who;
		v = QGEN_HEDGE_WON;
	} else {
		v = QGEN_HEDGE_USE; /* both failed: the plan counts the failure once */
	}
	if (p->out == 0) {
		h->inflight_est -= p->est;
		if (h->inflight_est < 0)
			h->inflight_est = 0;
	}
	return v;
}
