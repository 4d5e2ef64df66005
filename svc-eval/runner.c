/*
 * runner.c - grading attempts as durable jobs: claim, fetch source text, reuse cached grades,
 * grade the rest in batches in parallel, store each batch as it lands, write the overall part,
 * finish, publish.
 *
 * DESIGN. An attempt is one task of the durable queue (cm/jobs.h), claimed by one runner thread
 * of one replica under a lease it renews every third of EVAL_LEASE_MS. The runner owns all
 * database work; the grading phase (batches.c) runs batches on call threads and writes each
 * batch's grades in one statement the moment it lands, only over results still pending, so
 * the attempt's results are the job's stored progress: a
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

#include "cm/log.h"
#include "cm/runners.h"
#include "cm/util.h"
#include "context.h"
#include "guard.h"
#include "grade.h"
#include "score.h"
#include "run.h"
#include "server.h"
#include "store.h"

/* Best-effort steps (progress, events): a failure is logged, never fatal. */
static void
note(cm_err err, const char *what)
{
	if (err != CM_OK)
		cm_warn("EVAL-BEST-EFFORT", "%s: %s", what, cm_strerror(err));
}

/* ---- the attempt ----------------------------------------------------------------------------- */

/* The answer the graders see: without its sentences that speak to the grader (guard.h). */
static cm_err
strip_answer(const eval_result_row *x, job_item *it)
{
	cm_buf b;
	bool   stripped = false;
	cm_err err;

	cm_buf_init(&b, strlen(x->answer) + 1);
	if ((err = eval_guard_strip(x->answer, &b, &stripped)) == CM_OK &&
	    (err = cm_buf_take(&b, &it->answer, NULL)) == CM_OK && stripped)
		cm_info("EVAL-GUARD-STRIP", "answer %d: sentences addressed to the grader left out",
		        x->idx);
	cm_buf_fini(&b);
	return err;
}

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
		if ((err = eval_context_get(ctx, x->page, x->question, x->reference,
		                            &it->context)) != CM_OK)
			goto out;
		if ((err = strip_answer(x, it)) != CM_OK)
			goto out;
		it->item = (eval_item){x->idx, x->question, x->reference, it->context, it->answer};
		if ((err = eval_cache_ref_init(&it->ref, r->svc, r->a.strictness, &it->item)) !=
		    CM_OK)
			goto out;
	}
	r->done = r->total - (int)r->nitems;
out:
	eval_context_free(ctx);
	return err;
}

typedef struct overall_call {
	run               *r;
	eval_overall_item *items;
	size_t             n;
	int                score, max;
	eval_overall       out;
	char               why[CM_MAX_ERRMSG];
	cm_err             err;
	bool               finished;
} overall_call;

static void *
overall_thread(void *arg)
{
	overall_call *oc = arg;
	cm_err err = eval_grade_overall(oc->r->svc, oc->r->a.topic, oc->score, oc->max, oc->items,
	                                oc->n, &oc->out, oc->why, sizeof(oc->why));

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
			eval_run_wait(r);
			pthread_mutex_unlock(&r->mu);
			eval_run_keep_lease(r);
			pthread_mutex_lock(&r->mu);
		}
		pthread_mutex_unlock(&r->mu);
		pthread_join(t, NULL);
		if (oc.err == CM_OK) {
			note(eval_store_put_overall(r->w->pg, r->a.id, &oc.out),
			     "eval_store_put_overall");
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
		snprintf(reason, sizeof(reason),
		         "%zu of %zu answers could not be graded (answer %zu: %.150s)", failed,
		         a->n_results, first + 1, a->results[first].error);
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
	eval_publish(r->svc, "job.eval_run_progress", r->job_id, r->a.owner, r->total, r->total,
	             NULL);
	eval_publish(r->svc, "job.done", r->job_id, r->a.owner, r->total, r->total,
	             failed > 0 ? "failed" : "succeeded");
}

static void
run_fini(run *r)
{
	for (size_t i = 0; r->items != NULL && i < r->a.n_results; i++) {
		free(r->items[i].context);
		free(r->items[i].answer);
		eval_cache_ref_fini(&r->items[i].ref);
	}
	free(r->items);
	eval_run_free_batches(r);
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
		note(eval_store_finish(r->w->pg, r->a.id, "failed", reason, &won),
		     "eval_store_finish");
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
		bool        gave_up = false;
		const char *why = err == CM_EUNAVAIL ? "documents unavailable" : "out of memory";
		if (cm_jobs_fail(w->jobs, t->job_id, 0, why, false, &gave_up) == CM_OK && gave_up) {
			bool won;
			note(eval_store_finish(w->pg, r.a.id, "failed", why, &won),
			     "eval_store_finish");
			eval_publish(s, "job.done", t->job_id, r.a.owner, r.done, r.total,
			             "failed");
		}
		goto out;
	}
	r.t_context = cm_mono_ms() - t0;
	eval_run_progress(&r);
	if (s->llm == NULL) {
		eval_run_offline(&r);
	} else {
		eval_run_use_cache(&r);
		eval_run_batches(&r, r.items, r.nitems);
		eval_run_wait_deferred(&r);
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
	        t->job_id, r.a.id, (long long)(cm_mono_ms() - t0), (long long)r.t_context, r.nitems,
	        (size_t)r.batch_base, r.calls, (long long)r.t_grades,
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

/* ---- runner threads (cm/runners.h) ----------------------------------------------------------- */

static void
runner_run(void *arg, void *state, const cm_jobs_task *t)
{
	run_task(arg, state, t);
}

static void
runner_idle(void *arg, void *state)
{
	prune(arg, state);
}

cm_err
eval_runner_run_one(eval_service *s, eval_worker *w, bool *ran)
{
	return cm_runner_run_one(w->jobs, runner_run, s, w, ran);
}

cm_err
eval_runners_start(eval_service *s)
{
	cm_runners_config c;

	memset(&c, 0, sizeof(c));
	atomic_store(&s->stopping, false);
	c.name = "eval";
	c.threads = (int)s->cfg.runners;
	c.common = &s->common;
	c.schema = s->schema;
	eval_jobs_options(s, &c.jobs);
	c.poll_ms = (int)s->cfg.poll_ms;
	c.thread_init = eval_worker_init;
	c.thread_fini = eval_worker_fini;
	c.run = runner_run;
	c.idle = runner_idle;
	c.arg = s;
	return cm_runners_start(&s->runners, &c);
}

void
eval_runners_stop(eval_service *s)
{
	atomic_store(&s->stopping, true); /* running attempts see it between their steps */
	cm_runners_stop(s->runners);
	s->runners = NULL;
}
