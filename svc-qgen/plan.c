/*
 * plan.c - planning a job's model calls (plan.h).
 *
 * DESIGN. Everything a job decides about calls lives here as arithmetic on a small ledger, so
 * the runner is left with the mechanics (threads, storage, lease) and the decisions are unit
 * tested. The first wave is fixed by the set (batch idx always asks the same question of the
 * same chunk, so a resumed job asks again exactly what its dead runner had not stored); top-ups
 * are sized by the shortfall, never by a guess of what the batches out will bring.
 */
#include <stdlib.h>

#include "plan.h"

int
qgen_plan_per_call(int count, int parallel, int per_call)
{
	int q;

	if (parallel < 1)
		parallel = 1;
	q = (count + parallel - 1) / parallel;
	if (q > per_call)
		q = per_call;
	return q < 1 ? 1 : q;
}

/* Chunks in visiting order: topic matches first, then the rest evenly spread (every step-th
 * chunk, then the ones in between), so the first `first` batches cover the document. */
static cm_err
build_order(qgen_plan *p, const qgen_plan_params *pp)
{
	size_t n = pp->nchunks, k = 0;
	size_t step = n / (size_t)p->first;
	bool  *used;

	if (step == 0)
		step = 1;
	if ((p->order = malloc(n * sizeof(int))) == NULL || (used = calloc(n, 1)) == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < pp->nmatches; i++) {
		int m = pp->matches[i];
		if (m >= 0 && (size_t)m < n && !used[m]) {
			used[m] = true;
			p->order[k++] = m;
		}
	}
	/* Enough topic material for the first wave: stay on topic. */
	if (k < (size_t)p->first || k == 0) {
		for (size_t o = 0; o < step; o++)
			for (size_t i = o; i < n; i += step)
				if (!used[i]) {
					used[i] = true;
					p->order[k++] = (int)i;
				}
	}
	free(used);
	p->norder = k;
	return CM_OK;
}

cm_err
qgen_plan_init(qgen_plan *p, const qgen_plan_params *pp)
{
	cm_err err;

	*p = (qgen_plan){0};
	if (pp->count < 1 || pp->count > QGEN_MAX_COUNT || pp->nchunks == 0 || pp->max_rounds < 1 ||
	    pp->per_call < 1 || (pp->nmatches > 0 && pp->matches == NULL))
		return CM_EINVAL;
	p->count = pp->count;
	p->types = pp->types != 0 ? pp->types : QGEN_TYPE_MASK(QGEN_MCQ);
	p->per = qgen_plan_per_call(pp->count, pp->parallel, pp->per_call);
	p->first = (pp->count + p->per - 1) / p->per;
	p->wave_asks = pp->count;
	if (pp->spare_pct > 0 && pp->count * pp->spare_pct / 100 > 0) {
		int asks = pp->count + pp->count * pp->spare_pct / 100;
		int calls = (asks + p->per - 1) / p->per;
		int slots = pp->parallel > p->first ? pp->parallel : p->first;

		/* As many calls as the spares need at per each, within the slots the set's own
		 * calls leave free; the questions spread evenly over them, per_call at most. */
		if (calls > slots)
			calls = slots;
		if (calls < p->first)
			calls = p->first;
		if (asks > calls * pp->per_call)
			asks = calls * pp->per_call;
		p->first = calls;
		p->wave_asks = asks;
	}
	p->max_batches = p->first * pp->max_rounds + 4;
	p->next_idx = p->first;
	if ((err = build_order(p, pp)) != CM_OK ||
	    (p->stored = calloc((size_t)p->first, sizeof(bool))) == NULL) {
		qgen_plan_fini(p);
		return err != CM_OK ? err : CM_ENOMEM;
	}
	return CM_OK;
}

void
qgen_plan_fini(qgen_plan *p)
{
	free(p->order);
	free(p->stored);
	*p = (qgen_plan){0};
}

qgen_batch_plan
qgen_plan_batch(const qgen_plan *p, int idx, int count)
{
	qgen_batch_plan b;
	bool            both = p->types == (QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN));

	b.idx = idx;
	b.chunk = p->order[(size_t)idx % p->norder];
	b.variant = (int)((size_t)idx / p->norder);
	b.count = count;
	if (both)
		b.type = idx % 2 == 0 ? QGEN_MCQ : QGEN_OPEN;
	else
		b.type = (p->types & QGEN_TYPE_MASK(QGEN_OPEN)) != 0 ? QGEN_OPEN : QGEN_MCQ;
	return b;
}

void
qgen_plan_stored(qgen_plan *p, int idx)
{
	if (idx < 0)
		return;
	if (idx < p->first)
		p->stored[idx] = true;
	if (idx + 1 > p->next_idx)
		p->next_idx = idx + 1;
}

/* Questions first-wave batch idx asks: per each and the last the rest, or, with spares, the
 * wave's questions spread evenly (the first calls one more). */
static int
first_ask(const qgen_plan *p, int idx)
{
	int left = p->count - idx * p->per;

	if (p->wave_asks == p->count)
		return left < p->per ? left : p->per;
	return p->wave_asks / p->first + (idx < p->wave_asks % p->first ? 1 : 0);
}

static void
hand_out(qgen_plan *p, int idx, int n, qgen_batch_plan *out)
{
	*out = qgen_plan_batch(p, idx, n);
	p->asked += n;
	p->issued++;
}

bool
qgen_plan_next(qgen_plan *p, size_t chosen, qgen_batch_plan *out)
{
	int want;

	if (chosen >= (size_t)p->count || p->fail_streak >= QGEN_MAX_FAIL_STREAK)
		return false;
	while (p->cursor < p->first) {
		int idx = p->cursor++;

		if (!p->stored[idx]) {
			hand_out(p, idx, first_ask(p, idx), out);
			return true;
		}
	}
	/* Top up at once what the batches out cannot bring. */
	want = p->count - (int)chosen - p->asked;
	if (want <= 0 || p->issued >= p->max_batches)
		return false;
	hand_out(p, p->next_idx++, want < p->per ? want : p->per, out);
	return true;
}

bool
qgen_plan_extra(qgen_plan *p, int n, qgen_batch_plan *out)
{
	if (n < 1 || p->issued >= p->max_batches || p->fail_streak >= QGEN_MAX_FAIL_STREAK)
		return false;
	hand_out(p, p->next_idx++, n < p->per ? n : p->per, out);
	return true;
}

void
qgen_plan_returned(qgen_plan *p, int asked, cm_err err)
{
	p->asked -= asked;
	if (p->asked < 0)
		p->asked = 0;
	if (err == CM_OK)
		p->fail_streak = 0;
	else if (err == CM_EPERM)
		p->fail_streak = QGEN_MAX_FAIL_STREAK;
	else if (p->fail_streak < QGEN_MAX_FAIL_STREAK)
		p->fail_streak++;
}

void
qgen_plan_delivered(qgen_plan *p, int n)
{
	p->asked -= n;
	if (p->asked < 0)
		p->asked = 0;
}

qgen_plan_state
qgen_plan_check(const qgen_plan *p, size_t chosen)
{
	if (chosen >= (size_t)p->count)
		return QGEN_PLAN_COMPLETE;
	if (p->fail_streak >= QGEN_MAX_FAIL_STREAK)
		return QGEN_PLAN_FAILING;
	if (p->asked == 0 && p->cursor >= p->first && p->issued >= p->max_batches)
		return QGEN_PLAN_EXHAUSTED;
	return QGEN_PLAN_RUNNING;
}
