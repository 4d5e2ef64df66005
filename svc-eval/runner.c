/*
 * runner.c - grading attempts as durable jobs: claim, fetch source text, reuse cached grades,
 * grade the rest in batches in parallel, store each batch as it lands, write the overall part,
 * finish, publish.
 *
 * DESIGN. An attempt is one task of the durable queue (cm/jobs.h), claimed by one runner thread
 * of one replica under a lease it renews every third of EVAL_LEASE_MS. The runner owns all
 * database work; call threads (up to EVAL_PARALLEL per attempt; the LLM client bounds calls
 * across all replicas) take batches of up to EVAL_BATCH open answers, call the model and hand
 * the grades back. Each batch's grades are written in one statement the moment it lands, and
 * only over results still pending, so the attempt's results are the job's stored progress: a
 * replica that dies mid-attempt loses its calls in flight, and the one that claims the task
 * after the lease expires reloads the attempt, finds those results graded and pays only for
 * the answers still pending. The overall call starts as soon as no answer is pending; it is
 * stored once (overall_done), so a takeover after it does not pay for it again either.
 *
 * No score is invented: an answer the model would not grade (after the bounded retries of
 * grade.c) is stored as failed with the reason, and the attempt then fails with a reason
 * naming how many answers could not be graded. The first runner to finish an attempt decides
 * its status (UPDATE ... WHERE status IN ('queued','running')).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cm/log.h"
#include "cm/util.h"
#include "context.h"
#include "grade.h"
#include "offline.h"
#include "score.h"
#include "server.h"
#include "store.h"

#define EVAL_TICK_MS 200

/* Best-effort steps (progress, events): a failure is logged, never fatal. */
static void
note(cm_err err, const char *what)
{
	if (err != CM_OK)
		cm_warn("EVAL-BEST-EFFORT", "%s: %s", what, cm_strerror(err));
}

/* One pending open answer. */
typedef struct job_item {
	eval_item      item; /* strings borrowed from the attempt row, context owned here */
	char          *context;
	eval_cache_ref ref;
	bool           claimed; /* this runner grades it (others with the same answer wait) */
} job_item;

typedef struct batch {
	int          idx;
	job_item   **items;
	size_t       n;
	eval_parsed  out[10];
	int          calls;
	struct batch *next; /* finished, not yet stored */
} batch;

typedef struct run {
	eval_service     *svc;
	eval_worker      *w;
	const char       *job_id;
	eval_attempt_row  a;
	job_item         *items;    /* [0, nitems) to grade, then [.., + ndeferred) waiting */
	size_t            nitems;
	size_t            ndeferred; /* the same answers being graded by another attempt */
	int               total, done; /* progress: answers for the model, and those no longer pending */
	batch            *batches;
	size_t            nbatches;
	int               batch_base; /* batch numbers already used (a second round continues) */
	int64_t           next_renew;
	bool              lost; /* lease lost, or stopping: leave the job to whoever has it */
	int64_t           t_context, t_grades; /* ms spent on source text, on grading calls */
	int               calls;

	pthread_mutex_t mu;
	pthread_cond_t  cv;
	size_t          next;    /* next batch to start */
	batch          *landed;  /* finished batches */
	int             running; /* call threads still working */
	bool            halt;    /* start no more batches */
	pthread_t       threads[64];
	int             nthreads;
} run;

/* ---- lease --------------------------------------------------------------------------------- */

/* Renews the lease when due; sets run->lost when it is gone or the service stops. */
static void
keep_lease(run *r)
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
		cm_info("EVAL-JOB-LOST", "job %s: %s", r->job_id, held ? "cancelled" : "lease lost");
		r->lost = true;
	}
	r->next_renew = cm_mono_ms() + r->svc->cfg.lease_ms / 3;
}

static void
timed_wait(run *r)
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

static void
progress(run *r)
{
	eval_publish(r->svc, "job.progress", r->job_id, r->a.owner, r->done, r->total, NULL);
}

/* ---- storing grades -------------------------------------------------------------------------- */

static void
store_one_kind(run *r, eval_put *puts, size_t n, const char *what)
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
	store_one_kind(r, puts, b->n, "eval_store_put_grades");
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

static void
free_batches(run *r)
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
static void
run_batches(run *r, job_item *items, size_t n)
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
			timed_wait(r);
			got = r->landed;
			r->landed = NULL;
		}
		pthread_mutex_unlock(&r->mu);
		for (; got != NULL; got = got->next) {
			r->calls += got->calls;
			store_batch(r, got);
			progress(r);
			if (stop_after > 0 && ++stored >= stop_after) {
				cm_warn("EVAL-TEST-STOP", "job %s: stopping after %d batches (test)",
				        r->job_id, stored);
				r->lost = true;
			}
		}
		keep_lease(r);
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
	free_batches(r);
}

/* ---- the attempt ----------------------------------------------------------------------------- */

/* Builds the pending open answers with their source text. CM_EUNAVAIL when svc-pdf cannot be
 * reached. */
static cm_err
load_items(run *r)
{
	eval_context *ctx = NULL;
	cm_err        err;

	if ((r->items = calloc(r->a.n_results + 1, sizeof(job_item))) == NULL)
		return CM_ENOMEM;
	if ((err = eval_context_alloc(&ctx, r->svc, r->w->redis, r->a.owner, r->a.document_id,
	                              r->a.document_sha256)) != CM_OK)
		goto out;
	for (size_t i = 0; i < r->a.n_results; i++) {
		eval_result_row *x = &r->a.results[i];
		if (x->via_model)
			r->total++;
		if (x->status != EVAL_PENDING)
			continue;
		job_item *it = &r->items[r->nitems++];
		if ((err = eval_context_get(ctx, x->page, x->question, x->reference, &it->context)) !=
		    CM_OK)
			goto out;
		it->item = (eval_item){x->idx, x->question, x->reference, it->context, x->answer};
		if ((err = eval_cache_ref_init(&it->ref, r->svc, r->a.strictness, &it->item)) != CM_OK)
			goto out;
	}
	r->done = r->total - (int)r->nitems;
out:
	eval_context_free(ctx);
	return err;
}

/* Offline: every pending answer graded here, in one statement. */
static void
grade_offline(run *r)
{
	eval_put   *puts = calloc(r->nitems + 1, sizeof(eval_put));
	eval_grade *g = calloc(r->nitems + 1, sizeof(eval_grade));
	char      (*why)[CM_MAX_ERRMSG] = calloc(r->nitems + 1, sizeof(*why));

	if (puts == NULL || g == NULL || why == NULL) {
		r->lost = true;
		goto out;
	}
	for (size_t i = 0; i < r->nitems; i++) {
		bool ok = eval_offline_grade(&r->items[i].item, r->a.strictness, &g[i], why[i],
		                             sizeof(why[i]));
		puts[i] = (eval_put){r->items[i].item.idx, ok ? EVAL_GRADED : EVAL_FAILED,
		                     ok ? g[i].score : 0, ok && g[i].score >= 6,
		                     g[i].feedback, g[i].suggestions, g[i].hint,
		                     ok ? "" : why[i], "offline", -1};
	}
	store_one_kind(r, puts, r->nitems, "eval_store_put_grades");
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
static void
use_cache(run *r)
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
			puts[hits] = (eval_put){it->item.idx, EVAL_GRADED, g[hits].score,
			                        g[hits].score >= 6, g[hits].feedback,
			                        g[hits].suggestions, g[hits].hint, "", "cache", -1};
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
				eval_store_redis_get(r->w->redis, it->ref.redis_key, &g[hits], &hit);
				if (hit) {
					eval_store_unclaim(r->w->redis, it->ref.redis_key);
					it->claimed = false;
					cm_counter_add(r->svc->cache_hits, 1);
					puts[hits] = (eval_put){it->item.idx, EVAL_GRADED, g[hits].score,
					                        g[hits].score >= 6, g[hits].feedback,
					                        g[hits].suggestions, g[hits].hint, "",
					                        "cache", -1};
					hits++;
					kind[i] = 2;
					continue;
				}
			}
		}
		kind[i] = it->claimed ? 0 : 1;
	}
	if (hits > 0) {
		store_one_kind(r, puts, hits, "eval_store_put_grades (cache)");
		progress(r);
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
static void
wait_deferred(run *r)
{
	job_item *w = r->items + r->nitems;
	size_t    left = r->ndeferred;

	while (left > 0 && !r->lost) {
		size_t orphans = 0;
		for (size_t i = 0; i < left;) {
			eval_grade g = {0};
			bool       found = false, held = true;
			eval_store_redis_get(r->w->redis, w[i].ref.redis_key, &g, &found);
			if (!found)
				eval_store_claim_held(r->w->redis, w[i].ref.redis_key, &held);
			if (found) {
				eval_put p = {w[i].item.idx, EVAL_GRADED, g.score, g.score >= 6, g.feedback,
				              g.suggestions, g.hint, "", "cache", -1};
				store_one_kind(r, &p, 1, "eval_store_put_grades (waited)");
				cm_counter_add(r->svc->cache_hits, 1);
				progress(r);
			}
			eval_grade_fini(&g);
			if (found || !held) {
				job_item t = w[i];
				w[i] = w[left - 1];
				w[left - 1] = t;
				left--;
				orphans += !found;
				continue;
			}
			i++;
		}
		/* The orphans now sit at w[left .. left + orphans): graded here. */
		if (orphans > 0) {
			job_item *o = w + left;
			for (size_t i = 0; i < orphans; i++)
				o[i].claimed = false;
			run_batches(r, o, orphans);
		}
		if (left > 0) {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
			keep_lease(r);
		}
	}
}

typedef struct overall_call {
	run              *r;
	eval_overall_item *items;
	size_t            n;
	int               score, max;
	eval_overall      out;
	char              why[CM_MAX_ERRMSG];
	cm_err            err;
	bool              finished;
} overall_call;

static void *
overall_thread(void *arg)
{
	overall_call *oc = arg;
	cm_err        err = eval_grade_overall(oc->r->svc, oc->r->a.topic, oc->score, oc->max,
	                                       oc->items, oc->n, &oc->out, oc->why, sizeof(oc->why));

	pthread_mutex_lock(&oc->r->mu);
	oc->err = err;
	oc->finished = true;
	pthread_cond_broadcast(&oc->r->cv);
	pthread_mutex_unlock(&oc->r->mu);
	return NULL;
}

/* Writes the overall part: the model's when asked for and an open answer was graded by it (and
 * none failed), else the summary of the scores. The attempt is reloaded: another runner may
 * have graded some of it. */
static void
write_overall(run *r, const eval_attempt_row *a)
{
	overall_call oc;
	eval_scored *sc = calloc(a->n_results + 1, sizeof(*sc));
	bool         open = false, failed = false;
	pthread_t    t;

	memset(&oc, 0, sizeof(oc));
	oc.r = r;
	if (sc == NULL || (oc.items = calloc(a->n_results + 1, sizeof(*oc.items))) == NULL)
		goto out;
	for (size_t i = 0; i < a->n_results; i++) {
		const eval_result_row *x = &a->results[i];
		bool                   graded = x->status == EVAL_GRADED;
		sc[i] = (eval_scored){x->question, x->type == EVAL_MCQ, x->score, graded, x->page};
		oc.score += graded ? x->score : 0;
		open = open || (x->type == EVAL_OPEN && x->via_model && graded);
		failed = failed || x->status == EVAL_FAILED;
		if (oc.n < EVAL_OVERALL_MAX_ITEMS && graded)
			oc.items[oc.n++] = (eval_overall_item){x->question, eval_type_name(x->type),
			                                       x->score, x->feedback};
	}
	oc.max = 10 * (int)a->n_results;
	/* No call for an attempt that fails anyway (an answer could not be graded). */
	if (open && !failed && r->svc->llm != NULL &&
	    pthread_create(&t, NULL, overall_thread, &oc) == 0) {
		/* The call runs on its own thread so that this one keeps the lease. */
		pthread_mutex_lock(&r->mu);
		while (!oc.finished) {
			timed_wait(r);
			pthread_mutex_unlock(&r->mu);
			keep_lease(r);
			pthread_mutex_lock(&r->mu);
		}
		pthread_mutex_unlock(&r->mu);
		pthread_join(t, NULL);
		if (oc.err == CM_OK) {
			note(eval_store_put_overall(r->w->pg, r->a.id, &oc.out), "eval_store_put_overall");
			goto out;
		}
		cm_warn("EVAL-OVERALL-FAIL", "attempt %s: %s; the summary of the scores stands in",
		        r->a.id, oc.why);
		eval_overall_fini(&oc.out);
	}
	if (eval_summarize(sc, a->n_results, &oc.out) == CM_OK)
		note(eval_store_put_overall(r->w->pg, r->a.id, &oc.out), "eval_store_put_overall");
out:
	eval_overall_fini(&oc.out);
	free(oc.items);
	free(sc);
}

/* Ends the attempt and its job: failed when any answer could not be graded. */
static void
finish(run *r, const eval_attempt_row *a)
{
	char   reason[CM_MAX_ERRMSG] = "";
	size_t failed = 0, first = 0;
	bool   won = false, gave_up = false;
	cm_err err;

	for (size_t i = 0; i < a->n_results; i++)
		if (a->results[i].status == EVAL_FAILED && failed++ == 0)
			first = i;
	if (failed > 0)
		snprintf(reason, sizeof(reason), "%zu of %zu answers could not be graded (answer %zu: %.150s)",
		         failed, a->n_results, first + 1, a->results[first].error);
	if ((err = eval_store_finish(r->w->pg, r->a.id, failed > 0 ? "failed" : "succeeded", reason,
	                             &won)) != CM_OK) {
		note(err, "eval_store_finish");
		return; /* the lease expires and another runner finishes it */
	}
	if (failed > 0)
		err = cm_jobs_fail(r->w->jobs, r->job_id, 0, reason, true, &gave_up);
	else
		err = cm_jobs_complete(r->w->jobs, r->job_id, 0, r->a.id, strlen(r->a.id), NULL);
	if (err != CM_OK && err != CM_EPRECOND)
		note(err, "completing the job");
	if (!won)
		return;
	cm_counter_add(failed > 0 ? r->svc->jobs_failed : r->svc->jobs_succeeded, 1);
	if (failed > 0)
		cm_warn("EVAL-ATTEMPT-FAIL", "attempt %s: %s", r->a.id, reason);
	eval_publish(r->svc, "job.progress", r->job_id, r->a.owner, r->total, r->total, NULL);
	eval_publish(r->svc, "job.done", r->job_id, r->a.owner, r->total, r->total,
	             failed > 0 ? "failed" : "succeeded");
}

static void
run_fini(run *r)
{
	for (size_t i = 0; r->items != NULL && i < r->a.n_results; i++) {
		free(r->items[i].context);
		eval_cache_ref_fini(&r->items[i].ref);
	}
	free(r->items);
	free_batches(r);
	eval_attempt_row_fini(&r->a);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

/* Fails the job for good (and the attempt with it). */
static void
give_up(run *r, const char *reason)
{
	bool won = false, gave_up = false;

	if (cm_jobs_fail(r->w->jobs, r->job_id, 0, reason, true, &gave_up) != CM_OK)
		return;
	if (r->a.id[0] != '\0')
		note(eval_store_finish(r->w->pg, r->a.id, "failed", reason, &won), "eval_store_finish");
	cm_counter_add(r->svc->jobs_failed, 1);
	eval_publish(r->svc, "job.done", r->job_id, r->a.owner, r->done, r->total, "failed");
}

static void
run_task(eval_service *s, eval_worker *w, const cm_jobs_task *t)
{
	run              r;
	eval_attempt_row after;
	char             id[CM_UUID_LEN + 1] = "";
	int64_t          t0 = cm_mono_ms();
	cm_err           err;

	memset(&r, 0, sizeof(r));
	memset(&after, 0, sizeof(after));
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.svc = s;
	r.w = w;
	r.job_id = t->job_id;
	r.next_renew = cm_mono_ms() + s->cfg.lease_ms / 3;
	if (t->params_len == CM_UUID_LEN)
		memcpy(id, t->params, CM_UUID_LEN);
	if ((err = eval_store_get_attempt(w->pg, id, NULL, true, &r.a)) != CM_OK) {
		if (err == CM_ENOTFOUND) {
			give_up(&r, "the attempt no longer exists");
		} else {
			bool g;
			note(cm_jobs_fail(w->jobs, t->job_id, 0, "database unavailable", false, &g),
			     "cm_jobs_fail");
		}
		goto out;
	}
	if (strcmp(r.a.status, "succeeded") == 0 || strcmp(r.a.status, "failed") == 0) {
		/* Finished by a runner that died before completing the job. */
		note(cm_jobs_complete(w->jobs, t->job_id, 0, r.a.id, strlen(r.a.id), NULL),
		     "cm_jobs_complete");
		goto out;
	}
	cm_info("EVAL-JOB-START", "job %s: attempt %s (claim %d)", t->job_id, r.a.id, t->attempt);
	note(eval_store_set_running(w->pg, r.a.id), "eval_store_set_running");

	if ((err = load_items(&r)) != CM_OK) {
		bool gave_up = false;
		const char *why = err == CM_EUNAVAIL ? "documents unavailable" : "out of memory";
		if (cm_jobs_fail(w->jobs, t->job_id, 0, why, false, &gave_up) == CM_OK && gave_up) {
			bool won;
			note(eval_store_finish(w->pg, r.a.id, "failed", why, &won), "eval_store_finish");
			eval_publish(s, "job.done", t->job_id, r.a.owner, r.done, r.total, "failed");
		}
		goto out;
	}
	r.t_context = cm_mono_ms() - t0;
	progress(&r);
	if (s->llm == NULL) {
		grade_offline(&r);
	} else {
		use_cache(&r);
		run_batches(&r, r.items, r.nitems);
		wait_deferred(&r);
	}
	r.t_grades = cm_mono_ms() - t0 - r.t_context;
	if (r.lost)
		goto stopped;
	if ((err = eval_store_get_attempt(w->pg, r.a.id, NULL, true, &after)) != CM_OK) {
		bool g;
		note(cm_jobs_fail(w->jobs, t->job_id, 0, "database unavailable", false, &g),
		     "cm_jobs_fail");
		goto out;
	}
	for (size_t i = 0; i < after.n_results; i++)
		if (after.results[i].status == EVAL_PENDING) {
			bool g;
			/* Not all stored (a write failed): the queue runs the task again. */
			note(cm_jobs_fail(w->jobs, t->job_id, 0, "grades not stored", false, &g),
			     "cm_jobs_fail");
			goto out;
		}
	if (after.want_overall && !after.overall_done)
		write_overall(&r, &after);
	if (r.lost)
		goto stopped;
	finish(&r, &after);
	cm_histogram_observe(s->job_seconds, (double)(cm_mono_ms() - t0) / 1000.0);
	cm_info("EVAL-JOB-END",
	        "job %s: attempt %s in %lld ms (source text %lld ms, %zu answers for the model in "
	        "%zu batches, %d calls, %lld ms; overall %lld ms)",
	        t->job_id, r.a.id, (long long)(cm_mono_ms() - t0), (long long)r.t_context,
	        r.nitems, (size_t)r.batch_base, r.calls, (long long)r.t_grades,
	        (long long)(cm_mono_ms() - t0 - r.t_context - r.t_grades));
	goto out;
stopped:
	cm_info("EVAL-JOB-STOP", "job %s: stopped; another runner resumes it", t->job_id);
out:
	eval_attempt_row_fini(&after);
	run_fini(&r);
}

/* ---- runner threads -------------------------------------------------------------------------- */

/* Drops cached grades past their lifetime, at most every ten minutes per worker. */
static void
prune(eval_service *s, eval_worker *w)
{
	int64_t n = 0;

	if (s->cfg.cache_ttl_s <= 0 || cm_mono_ms() < w->next_prune_ms)
		return;
	w->next_prune_ms = cm_mono_ms() + 600000;
	if (eval_store_cache_prune(w->pg, s->cfg.cache_ttl_s, &n) == CM_OK && n > 0)
		cm_info("EVAL-CACHE-PRUNE", "%lld cached grades expired", (long long)n);
}

cm_err
eval_runner_run_one(eval_service *s, eval_worker *w, bool *ran)
{
	cm_jobs_task t;
	int          n = 0;
	cm_err       err;

	*ran = false;
	if ((err = cm_jobs_claim(w->jobs, &t, 1, &n)) != CM_OK || n == 0)
		return err;
	*ran = true;
	run_task(s, w, &t);
	cm_jobs_tasks_fini(&t, n);
	return CM_OK;
}

static void *
runner_main(void *arg)
{
	eval_service     *s = arg;
	eval_worker      *w = NULL;
	cm_jobs_listener *l = NULL;

	if (eval_worker_alloc(s, &w) != CM_OK ||
	    cm_jobs_listener_open(&l, s->common.database_url, EVAL_CHANNEL) != CM_OK) {
		cm_error("EVAL-RUNNER-INIT", "a runner could not start");
		goto out;
	}
	w->next_prune_ms = cm_mono_ms() + 60000;
	while (!atomic_load(&s->stopping)) {
		bool ran = false, notified;
		if (eval_runner_run_one(s, w, &ran) != CM_OK || !ran) {
			prune(s, w);
			note(cm_jobs_listener_wait(l, (int)s->cfg.poll_ms < 500 ? (int)s->cfg.poll_ms : 500,
			                           &notified),
			     "cm_jobs_listener_wait");
		}
	}
out:
	cm_jobs_listener_close(l);
	eval_worker_free(w);
	return NULL;
}

cm_err
eval_runners_start(eval_service *s)
{
	atomic_store(&s->stopping, false);
	if ((s->runners = calloc((size_t)s->cfg.runners, sizeof(pthread_t))) == NULL)
		return CM_ENOMEM;
	for (int i = 0; i < s->cfg.runners; i++) {
		if (pthread_create(&s->runners[i], NULL, runner_main, s) != 0) {
			eval_runners_stop(s);
			return CM_EINTERNAL;
		}
		s->nrunners++;
	}
	return CM_OK;
}

void
eval_runners_stop(eval_service *s)
{
	atomic_store(&s->stopping, true);
	for (int i = 0; i < s->nrunners; i++)
		pthread_join(s->runners[i], NULL);
	free(s->runners);
	s->runners = NULL;
	s->nrunners = 0;
}
