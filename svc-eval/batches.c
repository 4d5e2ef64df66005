/*
 * batches.c - the grading phase of an attempt (run.h): its cached grades, its claims on answers
 * being graded elsewhere, its batches on call threads, and its lease while all that runs.
 *
 * DESIGN. Call threads (up to EVAL_PARALLEL per attempt; the LLM client bounds calls across all
 * replicas) take batches of up to EVAL_BATCH open answers, call the model (grade.c) and hand the
 * grades back; the runner's own thread, which owns the database connection, writes each batch
 * in one statement the moment it lands, over results still pending only, and renews the lease
 * in between. An answer whose very text another attempt is grading right now is claimed there
 * (Redis): this attempt waits for the grade to reach the cache instead of paying for it again,
 * and grades it itself only if that claim ends without a grade.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cm/log.h"
#include "cm/util.h"
#include "grade.h"
#include "offline.h"
#include "run.h"
#include "store.h"

/* Best-effort steps (progress, events): a failure is logged, never fatal. */
static void
note(cm_err err, const char *what)
{
	if (err != CM_OK)
		cm_warn("EVAL-BEST-EFFORT", "%s: %s", what, cm_strerror(err));
}

/* ---- lease --------------------------------------------------------------------------------- */

/* Renews the lease when due; sets run->lost when it is gone or the service stops. */
void
eval_run_keep_lease(run *r)
{
	if (atomic_load(&r->svc->stopping)) {
		r->lost = true;
		return;
	}
	if (cm_mono_ms() < r->next_renew)
		return;
	bool held = true, cancelled = false;
	if (cm_jobs_renew(r->w->jobs, r->job_id, 0, &held, &cancelled) == CM_OK &&
	    (!held || cancelled)) {
		cm_info("EVAL-JOB-LOST", "job %s: %s", r->job_id,
		        held ? "cancelled" : "lease lost");
		r->lost = true;
	}
	r->next_renew = cm_mono_ms() + r->svc->cfg.lease_ms / 3;
}

void
eval_run_wait(run *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += EVAL_TICK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

void
eval_run_progress(run *r)
{
	eval_publish(r->svc, "job.eval_run_progress", r->job_id, r->a.owner, r->done, r->total,
	             NULL);
}

/* ---- storing grades -------------------------------------------------------------------------- */

void
eval_run_store(run *r, eval_put *puts, size_t n, const char *what)
{
	int written = 0;

	if (n == 0)
		return;
	note(eval_store_put_grades(r->w->pg, r->a.id, puts, n, &written), what);
	r->done += (int)n;
	if (r->done > r->total)
		r->done = r->total;
}

/* Stores a landed batch: grades, failures, cache. */
static void
store_batch(run *r, batch *b)
{
	eval_put puts[10];

	for (size_t i = 0; i < b->n; i++) {
		eval_parsed *p = &b->out[i];
		puts[i] = (eval_put){b->items[i]->item.idx,
		                     p->ok ? EVAL_GRADED : EVAL_FAILED,
		                     p->ok ? p->grade.score : 0,
		                     p->ok && p->grade.score >= 6,
		                     p->ok ? p->grade.feedback : "",
		                     p->ok ? p->grade.suggestions : "",
		                     p->ok ? p->grade.hint : "",
		                     p->ok ? "" : p->why,
		                     "model",
		                     b->idx};
	}
	eval_run_store(r, puts, b->n, "eval_store_put_grades");
	for (size_t i = 0; i < b->n; i++) {
		if (b->out[i].ok)
			eval_cache_put(r->w, r->a.strictness, &b->items[i]->ref, &b->out[i].grade);
		/* After the cache has the grade: whoever waits for it finds it. */
		if (b->items[i]->claimed) {
			eval_store_unclaim(r->w->redis, b->items[i]->ref.redis_key);
			b->items[i]->claimed = false;
		}
	}
}

/* ---- call threads ---------------------------------------------------------------------------- */

static void *
call_thread(void *arg)
{
	run *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->halt && r->next < r->nbatches) {
		batch           *b = &r->batches[r->next++];
		const eval_item *items[10];

		pthread_mutex_unlock(&r->mu);
		for (size_t i = 0; i < b->n; i++)
			items[i] = &b->items[i]->item;
		eval_grade_batch(r->svc, r->a.strictness, items, b->n, b->out, &b->calls);
		pthread_mutex_lock(&r->mu);
		b->next = r->landed;
		r->landed = b;
		pthread_cond_broadcast(&r->cv);
	}
	r->running--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

void
eval_run_free_batches(run *r)
{
	for (size_t b = 0; r->batches != NULL && b < r->nbatches; b++) {
		for (size_t i = 0; i < r->batches[b].n; i++)
			eval_grade_fini(&r->batches[b].out[i].grade);
		free(r->batches[b].items);
	}
	free(r->batches);
	r->batches = NULL;
	r->nbatches = 0;
}

/* Grades items[0..n) in batches: call threads grade, this thread stores what lands and keeps
 * the lease. */
void
eval_run_batches(run *r, job_item *items, size_t n)
{
	size_t per = (size_t)r->svc->cfg.batch;
	int    stored = 0, stop_after = atomic_load(&r->svc->test_stop_after_batches);
	int    want = (int)r->svc->cfg.parallel;

	r->next = 0;
	r->halt = false;
	r->nbatches = (n + per - 1) / per;
	if (r->nbatches == 0)
		return;
	if ((r->batches = calloc(r->nbatches, sizeof(batch))) == NULL) {
		r->nbatches = 0;
		r->lost = true; /* out of memory: let the queue retry */
		return;
	}
	for (size_t b = 0; b < r->nbatches; b++) {
		r->batches[b].idx = r->batch_base + (int)b;
		r->batches[b].n = b + 1 < r->nbatches ? per : n - b * per;
		if ((r->batches[b].items = calloc(r->batches[b].n, sizeof(job_item *))) == NULL) {
			r->lost = true;
			goto out;
		}
		for (size_t i = 0; i < r->batches[b].n; i++)
			r->batches[b].items[i] = &items[b * per + i];
	}
	r->batch_base += (int)r->nbatches;
	if (want > (int)r->nbatches)
		want = (int)r->nbatches;
	if (want > (int)(sizeof(r->threads) / sizeof(r->threads[0])))
		want = (int)(sizeof(r->threads) / sizeof(r->threads[0]));
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < want; i++) {
		if (pthread_create(&r->threads[r->nthreads], NULL, call_thread, r) != 0)
			break;
		r->nthreads++;
		r->running++;
	}
	if (r->nthreads == 0) {
		pthread_mutex_unlock(&r->mu);
		r->lost = true;
		goto out;
	}
	for (;;) {
		batch *got = r->landed;
		r->landed = NULL;
		if (got == NULL && r->running == 0)
			break;
		if (got == NULL) {
			eval_run_wait(r);
			got = r->landed;
			r->landed = NULL;
		}
		pthread_mutex_unlock(&r->mu);
		for (; got != NULL; got = got->next) {
			r->calls += got->calls;
			store_batch(r, got);
			eval_run_progress(r);
			if (stop_after > 0 && ++stored >= stop_after) {
				cm_warn("EVAL-TEST-STOP",
				        "job %s: stopping after %d batches (test)", r->job_id,
				        stored);
				r->lost = true;
			}
		}
		eval_run_keep_lease(r);
		pthread_mutex_lock(&r->mu);
		if (r->lost)
			r->halt = true; /* calls in flight finish; their grades are still stored */
	}
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	r->nthreads = 0;
out:
	/* Claims of answers never graded here (stopped, out of memory) go: waiters grade them. */
	for (size_t i = 0; i < n; i++)
		if (items[i].claimed) {
			eval_store_unclaim(r->w->redis, items[i].ref.redis_key);
			items[i].claimed = false;
		}
	eval_run_free_batches(r);
}

/* ---- offline and cache ---------------------------------------------------------------------- */

/* Offline: every pending answer graded here, in one statement. */
void
eval_run_offline(run *r)
{
	eval_put   *puts = calloc(r->nitems + 1, sizeof(eval_put));
	eval_grade *g = calloc(r->nitems + 1, sizeof(eval_grade));
	char(*why)[CM_MAX_ERRMSG] = calloc(r->nitems + 1, sizeof(*why));

	if (puts == NULL || g == NULL || why == NULL) {
		r->lost = true;
		goto out;
	}
	for (size_t i = 0; i < r->nitems; i++) {
		bool ok = eval_offline_grade(&r->items[i].item, r->a.strictness, &g[i], why[i],
		                             sizeof(why[i]));
		puts[i] = (eval_put){r->items[i].item.idx,
		                     ok ? EVAL_GRADED : EVAL_FAILED,
		                     ok ? g[i].score : 0,
		                     ok && g[i].score >= 6,
		                     g[i].feedback,
		                     g[i].suggestions,
		                     g[i].hint,
		                     ok ? "" : why[i],
		                     "offline",
		                     -1};
	}
	eval_run_store(r, puts, r->nitems, "eval_store_put_grades");
out:
	for (size_t i = 0; g != NULL && i < r->nitems; i++)
		eval_grade_fini(&g[i]);
	free(puts);
	free(g);
	free(why);
}

/* Cache hits are stored at once. A miss whose very answer another attempt is grading right now
 * (a class submitting together) waits for that grade instead of paying for it again; the rest
 * are claimed and graded here. r->items is reordered: to grade, then waiting, then the hits. */
void
eval_run_use_cache(run *r)
{
	eval_put   *puts = calloc(r->nitems + 1, sizeof(eval_put));
	eval_grade *g = calloc(r->nitems + 1, sizeof(eval_grade));
	job_item   *sorted = calloc(r->nitems + 1, sizeof(job_item));
	char       *kind = calloc(r->nitems + 1, 1); /* 0 grade, 1 wait, 2 hit */
	size_t      hits = 0, k = 0;
	int64_t     claim_ms = 2 * r->svc->cfg.lease_ms;

	if (puts == NULL || g == NULL || sorted == NULL || kind == NULL)
		goto out;
	for (size_t i = 0; i < r->nitems; i++) {
		job_item *it = &r->items[i];
		bool      hit = false, near = false;
		eval_cache_lookup(r->w, r->a.strictness, &it->ref, &g[hits], &hit, &near);
		if (hit) {
			puts[hits] = (eval_put){it->item.idx,     EVAL_GRADED,
			                        g[hits].score,    g[hits].score >= 6,
			                        g[hits].feedback, g[hits].suggestions,
			                        g[hits].hint,     "",
			                        "cache",          -1};
			hits++;
			kind[i] = 2;
			continue;
		}
		it->claimed = true;
		if (r->svc->cfg.cache_ttl_s > 0 && it->ref.norm[0] != '\0') {
			eval_store_claim(r->w->redis, it->ref.redis_key, r->job_id, claim_ms,
			                 &it->claimed);
			/* Its grader may have finished between the lookup and the claim. */
			if (it->claimed) {
				eval_store_redis_get(r->w->redis, it->ref.redis_key, &g[hits],
				                     &hit);
				if (hit) {
					eval_store_unclaim(r->w->redis, it->ref.redis_key);
					it->claimed = false;
					cm_counter_add(r->svc->cache_hits, 1);
					puts[hits] =
					    (eval_put){it->item.idx,     EVAL_GRADED,
					               g[hits].score,    g[hits].score >= 6,
					               g[hits].feedback, g[hits].suggestions,
					               g[hits].hint,     "",
					               "cache",          -1};
					hits++;
					kind[i] = 2;
					continue;
				}
			}
		}
		kind[i] = it->claimed ? 0 : 1;
	}
	if (hits > 0) {
		eval_run_store(r, puts, hits, "eval_store_put_grades (cache)");
		eval_run_progress(r);
	}
	for (char want = 0; want <= 2; want++)
		for (size_t i = 0; i < r->nitems; i++)
			if (kind[i] == want)
				sorted[k++] = r->items[i];
	memcpy(r->items, sorted, r->nitems * sizeof(job_item));
	r->ndeferred = 0;
	for (size_t i = 0; i < r->nitems; i++)
		r->ndeferred += kind[i] == 1;
	/* The hits stay past the others (for freeing); only the others are graded. */
	r->nitems -= hits + r->ndeferred;
	if (r->ndeferred > 0)
		cm_counter_add(r->svc->inflight_waits, r->ndeferred);
out:
	for (size_t i = 0; g != NULL && i < hits; i++)
		eval_grade_fini(&g[i]);
	free(puts);
	free(g);
	free(sorted);
	free(kind);
}

/* Waits for the answers another attempt is grading: each comes from the cache when its grader
 * stored it; one whose grader gave up (or died: its claim expired) without a grade is graded
 * here after all. */
void
eval_run_wait_deferred(run *r)
{
	job_item *w = r->items + r->nitems; /* w[0, left): still waiting */
	size_t    left = r->ndeferred;

	while (left > 0 && !r->lost) {
		size_t orphans = 0; /* gathered at w[0, orphans) */
		for (size_t i = 0; i < left;) {
			eval_grade g = {0};
			bool       found = false, held = true;
			job_item   t;

			eval_store_redis_get(r->w->redis, w[i].ref.redis_key, &g, &found);
			if (!found)
				eval_store_claim_held(r->w->redis, w[i].ref.redis_key, &held);
			if (found) {
				eval_put p = {
				    w[i].item.idx, EVAL_GRADED, g.score, g.score >= 6, g.feedback,
				    g.suggestions, g.hint,      "",      "cache",      -1};
				eval_run_store(r, &p, 1, "eval_store_put_grades (waited)");
				cm_counter_add(r->svc->cache_hits, 1);
				eval_run_progress(r);
				/* Done: to the end of the waiting range, which shrinks. */
				t = w[i];
				w[i] = w[left - 1];
				w[left - 1] = t;
				left--;
			} else if (!held) {
				/* Its grader gave up or died: to the front, graded here below. */
				t = w[i];
				w[i] = w[orphans];
				w[orphans] = t;
				orphans++;
				i++;
			} else {
				i++;
			}
			eval_grade_fini(&g);
		}
		if (orphans > 0) {
			for (size_t i = 0; i < orphans; i++)
				w[i].claimed = false;
			eval_run_batches(r, w, orphans);
			w += orphans;
			left -= orphans;
		}
		if (left > 0) {
			struct timespec ts = {0, 25 * 1000000L};
			nanosleep(&ts, NULL);
			eval_run_keep_lease(r);
		}
	}
}
