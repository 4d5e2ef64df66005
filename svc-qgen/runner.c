/*
 * runner.c - a generation job's life: claim, fetch the chunks, resume, run, finish or fail;
 * and the runner threads that claim jobs.
 *
 * DESIGN. A job is one task of the durable queue (cm/jobs.h), claimed by one runner thread of
 * one replica under a lease it renews. The runner owns all database work of its job. It reads
 * the document's text (chunks.h), plans the calls (plan.h) and submits them to the job's call pool
 * (pool.h: up to QGEN_PARALLEL calls at once; the LLM client's own limits bound the calls across
 * replicas). As each batch comes back the runner stores it (batches table, first write of (job,
 * idx) wins), adds its questions to the set through the duplicate filter, publishes progress, and
 * lets the plan top up a shortfall at once.
 *
 * A replica that dies mid-job loses only its calls in flight: its lease expires, another
 * runner claims the task, reloads the stored batches (no call is paid twice, no question comes
 * twice) and plans what is missing. Two runners finishing the same job are settled by the set's
 * status update: the first writes the questions, the second changes nothing.
 *
 * Every run ends in a qgen_outcome: complete (the set is written, the job completed), failed
 * (the job and its set fail in one transaction), or stopped - cancelled, lease lost, this
 * replica stopping - where whoever holds the job now decides and this runner writes nothing.
 * Cancellation is polled every QGEN_TICK_MS: no call starts after it is seen.
 *
 * Streamed calls (QGEN_STREAM) hand their questions over one by one (batch.h); each joins the
 * set as it comes, so with spare calls (QGEN_SPARE_PCT) the set is full while the slowest
 * calls still write, and those are cancelled at once. What the set did not use of a call is
 * counted as extra tokens (charge_unused), like a hedged call's loser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/runners.h"
#include "cm/util.h"
#include "proto/qgen.pb-c.h"
#include "batch.h"
#include "cache.h"
#include "chunks.h"
#include "codec.h"
#include "grounding.h"
#include "hedge.h"
#include "offline.h"
#include "plan.h"
#include "pool.h"
#include "quality.h"
#include "server.h"
#include "store.h"

#define QGEN_TICK_MS 200
#define QGEN_HEDGE_TICK_MS 20 /* how often late calls are looked for while calls run */

typedef enum qgen_outcome {
	QGEN_COMPLETE = 0, /* the set has its questions */
	QGEN_FAILED,       /* for good; the run's why says why */
	QGEN_CANCELLED,    /* by its owner, or the job failed elsewhere */
	QGEN_LEASE_LOST,   /* another runner holds the job now */
	QGEN_STOPPING,     /* this replica stops; another resumes the job after the lease */
} qgen_outcome;

static const char *const outcome_names[] = {
    [QGEN_COMPLETE] = "complete",     [QGEN_FAILED] = "failed",     [QGEN_CANCELLED] = "cancelled",
    [QGEN_LEASE_LOST] = "lease lost", [QGEN_STOPPING] = "stopping",
};

/* What a call's questions did for the set: the extra tokens of a streamed call are those the
 * set did not use (charge_unused). */
typedef struct call_use {
	int     idx;
	bool    hedge;
	int     used;    /* its streamed questions that went into the set */
	int64_t charged; /* tokens of its streamed questions counted as extra already */
} call_use;

typedef struct job_run {
	qgen_service    *svc;
	qgen_worker     *w;
	const char      *job_id;
	Qgen__JobParams *params;
	unsigned         types;
	qgen_difficulty  difficulty;
	qgen_doc         doc;
	qgen_plan        plan;
	qgen_batch_job   job;    /* what the calls read: lives until they are drained */
	qgen_pool       *pool;   /* the run's calls; drained after the run ends (drain_calls) */
	qgen_hedger      hedger; /* duplicates of late calls (hedge.h) */
	qgen_qlist       chosen;
	call_use        *uses;  /* one per streamed call that handed questions over */
	int             *ahead; /* batches whose rest a top-up was asked for (hedge_late) */
	size_t           nahead, maxahead;
	size_t           nuses, maxuses;
	int              valid;        /* valid questions the batches brought (progress) */
	bool             resumed;      /* batches of an earlier runner were loaded */
	const char      *model;        /* the one model that made `chosen`; NULL when unknown */
	bool             models_mixed; /* several models, or an earlier runner's batches */
	char             last_err[CM_MAX_ERRMSG]; /* the last batch failure */
	char             why[CM_MAX_ERRMSG];      /* why the run failed */
} job_run;

/* Best-effort steps (progress, status, cleanup): a failure is logged, never fatal. */
static void
note(cm_err err, const char *what)
{
	if (err != CM_OK)
		cm_warn("QGEN-BEST-EFFORT", "%s: %s", what, cm_strerror(err));
}

/* ---- events ---------------------------------------------------------------------------------- */

void
qgen_publish(qgen_service *s, const char *type, const char *job_id, const char *owner, int done,
             int total, const char *status)
{
	Qgen__JobEvent ev = QGEN__JOB_EVENT__INIT;
	char           topic[64];
	uint8_t        buf[512];
	size_t         n;

	if (s->pub == NULL)
		return;
	ev.job_id = (char *)job_id;
	ev.owner = (char *)owner;
	ev.done = done;
	ev.total = total;
	ev.status = (char *)(status != NULL ? status : "");
	if ((n = protobuf_c_message_get_packed_size(&ev.base)) > sizeof(buf))
		return;
	protobuf_c_message_pack(&ev.base, buf);
	snprintf(topic, sizeof(topic), "job.%s", job_id);
	(void)cm_pub_send(s->pub, topic, type, buf, n);
}

/* Progress of the set (done capped at count): stored for GetJob, published for WebSockets. */
static void
report_progress(job_run *run, int done)
{
	int count = run->params->count;

	if (done > count)
		done = count;
	note(qgen_store_set_progress(run->w->pg, run->params->set_id, done),
	     "qgen_store_set_progress");
	qgen_publish(run->svc, "job.progress", run->job_id, run->params->owner, done, count, NULL);
}

/* ---- ending a run ---------------------------------------------------------------------------- */

/* The model that made the set, as far as this run knows: NULL (unknown) once a second one, an
 * unnamed one or an earlier runner's batches come in. */
static void
note_model(job_run *run, const char *model)
{
	if (run->models_mixed)
		return;
	if (model == NULL || (run->model != NULL && strcmp(run->model, model) != 0)) {
		run->models_mixed = true;
		run->model = NULL;
		return;
	}
	run->model = model;
}

/* Caches the finished set under the key of the model that made it: never a key that names a
 * model that was not used. */
static void
cache_set(job_run *run, const uint8_t *blob, size_t len)
{
	const Qgen__JobParams *jp = run->params;
	char                   key[QGEN_CACHE_KEY_LEN];
	qgen_cache_spec        spec = {.sha256 = jp->sha256,
	                               .count = jp->count,
	                               .types = qgen_types_name(run->types),
	                               .difficulty = jp->difficulty,
	                               .topic = jp->topic,
	                               .first_page = jp->first_page,
	                               .last_page = jp->last_page,
	                               .per_call = (int)run->svc->cfg.per_call,
	                               .model = run->model};

	if (jp->cache_key[0] == '\0')
		return; /* the cache was off when the set was asked for */
	if (run->model == NULL) {
		cm_debug("QGEN-CACHE-SKIP",
		         "set %s: made by more than one model, or partly by an "
		         "earlier runner: not cached",
		         jp->set_id);
		return;
	}
	qgen_cache_key(run->svc, &spec, key);
	qgen_cache_put(run->w, key, blob, len);
}

/* Orders the chosen questions by page (stable), so a set reads in document order. */
static void
sort_by_page(qgen_qlist *l)
{
	/* Insertion sort: stable (qsort is not), and n <= QGEN_MAX_COUNT. */
	for (size_t i = 1; i < l->n; i++) {
		qgen_question q = l->items[i];
		size_t        j = i;
		while (j > 0 && l->items[j - 1].page > q.page) {
			l->items[j] = l->items[j - 1];
			j--;
		}
		l->items[j] = q;
	}
}

static uint64_t
seed_of(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* Writes the finished set, completes the job, fills the cache. */
static cm_err
finish(job_run *run)
{
	qgen_service *s = run->svc;
	qgen_worker  *w = run->w;
	const char   *set_id = run->params->set_id;
	int           count = run->params->count;
	uint8_t      *blob = NULL;
	size_t        len = 0;
	bool          won = false, won_job = false;
	cm_err        err;

	sort_by_page(&run->chosen);
	qgen_spread_answers(&run->chosen, seed_of(set_id));
	if ((err = qgen_pack_questions(&run->chosen, true, &blob, &len)) != CM_OK)
		return err;
	if ((err = qgen_store_finish_set(w->pg, set_id, blob, len, &won)) != CM_OK ||
	    (err = cm_jobs_set_result_id(w->jobs, run->job_id, set_id)) != CM_OK)
		goto out;
	err = cm_jobs_complete(w->jobs, run->job_id, 0, NULL, 0, &won_job);
	if (err != CM_OK && err != CM_ECANCELED && err != CM_EPRECOND)
		goto out;
	err = CM_OK;
	if (won)
		cache_set(run, blob, len);
	note(qgen_store_drop_batches(w->pg, run->job_id), "qgen_store_drop_batches");
	if (won_job) {
		cm_counter_add(s->jobs_succeeded, 1);
		qgen_publish(s, "job.progress", run->job_id, run->params->owner, count, count,
		             NULL);
		qgen_publish(s, "job.done", run->job_id, run->params->owner, count, count,
		             "succeeded");
	}
out:
	free(blob);
	return err;
}

/* A failed attempt. A permanent one fails the job and its set at once; another is retried by
 * the queue with backoff until it runs out of attempts, and then the set fails with the job.
 * Either way the job and the set change in one transaction. */
static void
end_failed(job_run *run, const char *reason, bool permanent)
{
	bool gave_up = false;

	cm_warn("QGEN-JOB-FAIL", "job %s: %s%s", run->job_id, reason,
	        permanent ? "" : " (retried later)");
	if (qgen_store_fail_job(run->w->jobs, run->job_id, run->params->set_id, reason, permanent,
	                        &gave_up) != CM_OK ||
	    !gave_up)
		return; /* a retry comes, or the lease is lost or the database down: whoever holds
		           the job decides */
	cm_counter_add(run->svc->jobs_failed, 1);
	qgen_publish(run->svc, "job.done", run->job_id, run->params->owner, 0, run->params->count,
	             "failed");
}

static void
end_run(job_run *run, qgen_outcome o)
{
	cm_err err;

	switch (o) {
	case QGEN_COMPLETE:
		if ((err = finish(run)) != CM_OK) {
			cm_warn("QGEN-FINISH-FAIL", "job %s: %s", run->job_id, cm_strerror(err));
			end_failed(run, "cannot store the questions", false);
		}
		break;
	case QGEN_FAILED:
		end_failed(run, run->why, true);
		break;
	case QGEN_CANCELLED:
	case QGEN_LEASE_LOST:
	case QGEN_STOPPING:
		cm_info("QGEN-JOB-STOP", "job %s: %s", run->job_id, outcome_names[o]);
		break;
	}
}

/* ---- the offline provider ------------------------------------------------------------------- */

static void
offline_progress(void *arg, size_t chosen)
{
	report_progress(arg, (int)chosen);
}

/* Replaces offline questions the grounding dropped: qgen_offline_fill checks its rounds the
 * way a model's answers are checked, but does not ground them. Variants are read again from
 * the first: what is already chosen comes back as a duplicate, what was dropped is dropped
 * again, and the first question not read before fills the gap. These re-reads are not counted
 * in the metrics (the first grounding of the set counted the drops). */
static cm_err
refill_offline(job_run *run, const qgen_offline_req *req)
{
	const qgen_batch_ctx ctx = {req->types, req->difficulty, 1, INT32_MAX};
	size_t               count = (size_t)run->params->count;
	cm_err               err = CM_OK;

	for (int variant = 0;
	     err == CM_OK && run->chosen.n < count && variant < 2 * (int)run->svc->cfg.max_rounds;
	     variant++) {
		qgen_offline_req rq = *req;
		qgen_qlist       cand;
		int              counts[QGEN_GROUND_NVERDICTS] = {0};
		size_t           kept = 0;
		char             why[CM_MAX_ERRMSG];

		rq.variant = variant;
		qgen_qlist_init(&cand);
		if ((err = qgen_offline_generate(run->doc.chunks, run->doc.nchunks, &rq, &cand)) ==
		    CM_OK) {
			for (size_t i = 0; i < cand.n; i++) {
				if (qgen_check(&cand.items[i], &ctx, why, sizeof(why)))
					cand.items[kept++] = cand.items[i];
				else
					qgen_question_fini(&cand.items[i]);
			}
			cand.n = kept;
			err = qgen_ground_list(&cand, run->doc.chunks, run->doc.nchunks,
			                       &run->svc->ground, counts);
		}
		if (err == CM_OK)
			(void)qgen_select(&run->chosen, &cand, count);
		qgen_qlist_fini(&cand);
	}
	return err;
}

/* No calls: rounds of extractive questions over the whole range (qgen_offline_fill), grounded
 * like any provider's (and given their quotes); what fails is replaced (refill_offline). */
static qgen_outcome
run_offline(job_run *run)
{
	qgen_offline_req req = {run->params->count, run->types, run->difficulty, run->params->topic,
	                        0};
	int              counts[QGEN_GROUND_NVERDICTS] = {0};

	note_model(run, "offline");
	qgen_offline_fill(run->doc.chunks, run->doc.nchunks, &req, (int)run->svc->cfg.max_rounds,
	                  &run->chosen, offline_progress, run);
	if (qgen_ground_list(&run->chosen, run->doc.chunks, run->doc.nchunks, &run->svc->ground,
	                     counts) != CM_OK ||
	    refill_offline(run, &req) != CM_OK) {
		snprintf(run->why, sizeof(run->why), "out of memory");
		return QGEN_FAILED;
	}
	for (int v = QGEN_UNGROUNDED; v < QGEN_GROUND_NVERDICTS; v++)
		cm_counter_add(run->svc->rejected[v], (uint64_t)counts[v]);
	if (counts[QGEN_UNGROUNDED] + counts[QGEN_AMBIGUOUS] > 0)
		cm_info("QGEN-OFFLINE-UNGROUNDED",
		        "job %s: %d offline questions not found on their page, %d ambiguous; "
		        "replaced from further sentences",
		        run->job_id, counts[QGEN_UNGROUNDED], counts[QGEN_AMBIGUOUS]);
	if (run->chosen.n >= (size_t)run->params->count)
		return QGEN_COMPLETE;
	snprintf(run->why, sizeof(run->why),
	         "only %zu of %d questions could be made from this document's text without a "
	         "model (configure LLM_BASE_URL for more)",
	         run->chosen.n, run->params->count);
	return QGEN_FAILED;
}

/* ---- the model path ------------------------------------------------------------------------- */

/* Keeps a batch that came back: stored for a runner that may resume the job, its questions
 * offered to the set. */
static void
keep_batch(job_run *run, qgen_batch_result *r)
{
	uint8_t   *blob = NULL;
	size_t     len = 0;
	bool       full = run->chosen.n >= (size_t)run->params->count;
	size_t     from = (size_t)r->delivered; /* offered to the set as they streamed in */
	qgen_qlist rest = {r->qs.items + from, r->qs.n - from, r->qs.n - from};

	run->valid += (int)rest.n;
	note_model(run, r->model);
	if (qgen_pack_questions(&r->qs, false, &blob, &len) == CM_OK)
		note(qgen_store_put_batch(run->w->pg, run->job_id, r->plan.idx, blob, len),
		     "qgen_store_put_batch");
	free(blob);
	if (full && !run->svc->cfg.stream) /* a spare that came after the set was full */
		qgen_hedger_unused(&run->hedger, r->plan.count, false, r->tokens);
	(void)qgen_select(&run->chosen, &rest, (size_t)run->params->count);
}

/* The use record of call (idx, hedge); NULL when there is no room (then nothing is recorded:
 * its extra tokens are counted as if none of its questions was used). */
static call_use *
use_of(job_run *run, int idx, bool hedge)
{
	for (size_t i = 0; i < run->nuses; i++)
		if (run->uses[i].idx == idx && run->uses[i].hedge == hedge)
			return &run->uses[i];
	if (run->nuses == run->maxuses) {
		size_t    cap = run->maxuses > 0 ? run->maxuses * 2 : 32;
		call_use *u = realloc(run->uses, cap * sizeof(*u));
		if (u == NULL)
			return NULL;
		run->uses = u;
		run->maxuses = cap;
	}
	run->uses[run->nuses] = (call_use){idx, hedge, 0, 0};
	return &run->uses[run->nuses++];
}

/* The tokens of a streamed call the set did not need, when its result comes (the loser of a
 * hedged pair is charged by the hedger): a call none of whose questions went into the set
 * costs all it cost; one that gave some costs what it wrote after its last question when it
 * was cut off. Without streaming, as before: a whole answer not needed, or a whole call's
 * estimate when it was cut off. */
static void
charge_unused(job_run *run, const qgen_batch_result *r)
{
	bool      cut = r->err == CM_ECANCELED && r->started_ms > 0;
	call_use *u;
	int64_t   t;

	if (!run->svc->cfg.stream) {
		qgen_hedger_unused(&run->hedger, r->plan.count, cut,
		                   r->err == CM_OK ? r->tokens : 0);
		return;
	}
	u = use_of(run, r->plan.idx, r->hedge);
	if (u != NULL && u->used > 0)
		t = cut ? r->tail_tokens : 0;
	else
		t = r->tokens - (u != NULL ? u->charged : 0);
	if (t > 0)
		qgen_hedger_unused(&run->hedger, 0, false, t);
}

/* A streamed question (batch.h). While the run goes on it joins the set like any; after the
 * run (ended) it is only counted. One that the set does not take costs its tokens. */
static void
take_piece(job_run *run, qgen_batch_result *r, bool ended)
{
	qgen_hedge_verdict v = qgen_hedger_piece(&run->hedger, r->plan.idx, r->hedge);
	int64_t            tokens = (r->bytes + 3) / 4;
	call_use          *u;
	size_t             added = 0;

	if (v == QGEN_HEDGE_DROP)
		return; /* the pair's loser: its result is charged whole */
	if (v == QGEN_HEDGE_WON) {
		qgen_pool_cancel_call(run->pool, r->plan.idx, !r->hedge);
		cm_debug("QGEN-HEDGE-WON", "job %s batch %d: the %s streamed first", run->job_id,
		         r->plan.idx, r->hedge ? "duplicate" : "original");
	}
	if (!ended) {
		qgen_plan_delivered(&run->plan, 1);
		run->valid++;
		/* The model its call asks first: a call's provider is known only when it ends;
		 * one that failed over and was then cancelled goes unnoticed here. */
		note_model(run, cm_llm_model(run->svc->llm));
		added = qgen_select(&run->chosen, &r->qs, (size_t)run->params->count);
		cm_debug("QGEN-PIECE", "job %s batch %d%s: a question, %s; the set holds %zu of %d",
		         run->job_id, r->plan.idx, r->hedge ? " (duplicate)" : "",
		         added > 0 ? "taken" : "not taken", run->chosen.n, run->params->count);
	}
	if ((u = use_of(run, r->plan.idx, r->hedge)) != NULL) {
		if (added > 0)
			u->used++;
		else
			u->charged += tokens;
	}
	if (added == 0) /* a duplicate, or the set was full */
		qgen_hedger_unused(&run->hedger, 0, false, tokens);
}

static void
batch_failed(job_run *run, const qgen_batch_result *r)
{
	cm_counter_add(run->svc->batches_failed, 1);
	cm_warn("QGEN-BATCH-FAIL", "job %s batch %d: %s: %s", run->job_id, r->plan.idx,
	        cm_strerror(r->err), r->why);
	if (r->err == CM_EPERM)
		snprintf(run->last_err, sizeof(run->last_err),
		         "the LLM provider refused the requests (quota exhausted or API key "
		         "invalid): %.150s",
		         r->why);
	else
		snprintf(run->last_err, sizeof(run->last_err), "the model failed: %.200s", r->why);
}

/* What the hedging ledger makes of a result: DROP when the plan must not see it. Cancels the
 * other call of a pair whose first answer this is. */
static qgen_hedge_verdict
hedge_verdict(job_run *run, const qgen_batch_result *r)
{
	int64_t            ms = r->started_ms > 0 ? r->ended_ms - r->started_ms : 0;
	qgen_hedge_verdict v =
	    qgen_hedger_result(&run->hedger, r->plan.idx, r->plan.count, r->hedge, r->err == CM_OK,
	                       r->err == CM_ECANCELED && r->started_ms > 0, r->tokens, ms);

	if (v == QGEN_HEDGE_WON) {
		qgen_pool_cancel_batch(run->pool, r->plan.idx);
		cm_debug("QGEN-HEDGE-WON", "job %s batch %d: the %s answered first in %lld ms",
		         run->job_id, r->plan.idx, r->hedge ? "duplicate" : "original",
		         (long long)ms);
	}
	return v;
}

/* Results and streamed questions, in the order they came; the list is consumed. */
static void
take_results(job_run *run, qgen_batch_result *got)
{
	int valid0 = run->valid;

	while (got != NULL) {
		qgen_batch_result *r = got;

		got = r->next;
		if (r->piece) {
			take_piece(run, r, false);
			qgen_batch_result_free(r);
			continue;
		}
		if (hedge_verdict(run, r) == QGEN_HEDGE_DROP) {
			qgen_batch_result_free(r);
			continue;
		}
		qgen_plan_returned(&run->plan, r->plan.count - r->delivered, r->err);
		cm_counter_add(run->svc->rejected_invalid, (uint64_t)r->rejected);
		for (int v = QGEN_UNGROUNDED; v < QGEN_GROUND_NVERDICTS; v++)
			cm_counter_add(run->svc->rejected[v], (uint64_t)r->verdicts[v]);
		if (r->err == CM_OK)
			keep_batch(run, r);
		else
			batch_failed(run, r);
		if (run->svc->cfg.stream)
			charge_unused(run, r);
		qgen_batch_result_free(r);
	}
	if (run->valid != valid0)
		report_progress(run, run->valid);
}

/* Submits every batch the plan hands out now. */
static void
submit_due(job_run *run, qgen_pool *pool)
{
	qgen_batch_plan b;

	while (qgen_plan_next(&run->plan, run->chosen.n, &b)) {
		if (qgen_pool_submit(pool, &b) != CM_OK) {
			qgen_plan_returned(&run->plan, b.count, CM_ENOMEM);
			snprintf(run->last_err, sizeof(run->last_err), "out of memory");
			break;
		}
	}
}

static bool
asked_ahead(const job_run *run, int idx)
{
	for (size_t i = 0; i < run->nahead; i++)
		if (run->ahead[i] == idx)
			return true;
	return false;
}

/* A late call that streams questions already is slow, not stuck: a duplicate would write the
 * same questions again, so the rest of its questions is asked of a new batch (another chunk)
 * instead, and whichever brings them first fills the set; the other is cancelled with the
 * rest when the set is full, and its unused part is counted as extra (charge_unused). */
static void
ask_ahead(job_run *run, const qgen_pool_call *c)
{
	qgen_batch_plan b;

	if (run->nahead == run->maxahead) {
		size_t cap = run->maxahead > 0 ? run->maxahead * 2 : 16;
		int   *a = realloc(run->ahead, cap * sizeof(*a));
		if (a == NULL)
			return;
		run->ahead = a;
		run->maxahead = cap;
	}
	if (!qgen_plan_extra(&run->plan, c->count - c->pieces, &b))
		return;
	if (qgen_pool_submit(run->pool, &b) != CM_OK) {
		qgen_plan_returned(&run->plan, b.count, CM_ENOMEM);
		return;
	}
	run->ahead[run->nahead++] = c->idx;
	run->hedger.hedged++;
	cm_counter_add(run->svc->hedged_calls, 1);
	cm_info("QGEN-HEDGE",
	        "job %s batch %d: %d of %d questions in after %lld ms, past the median of %zu "
	        "answers: batch %d asks for the rest",
	        run->job_id, c->idx, c->pieces, c->count, (long long)(cm_mono_ms() - c->started_ms),
	        run->hedger.nfinished, b.idx);
}

/* Starts a duplicate of the latest late call, when one is due (hedge.h): only while every call
 * the plan wants has a thread, within QGEN_PARALLEL, the provider's limits (the duplicate goes
 * through the same LLM client) and the extra-token budget. */
static void
hedge_late(job_run *run)
{
	qgen_pool_call  calls[64];
	qgen_hedge_call hc[64];
	int             queued = 0, pick;
	size_t          n = qgen_pool_running(run->pool, calls, 64, &queued);
	int64_t         now = cm_mono_ms();
	qgen_batch_plan b;

	if (run->hedger.hp.max_extra_pct <= 0 || queued > 0 || n == 0 ||
	    (int64_t)n >= run->svc->cfg.parallel)
		return;
	/* A call that streams questions already: its rest only (ask_ahead). */
	for (size_t i = 0; i < n; i++)
		hc[i] = (qgen_hedge_call){calls[i].idx, calls[i].count - calls[i].pieces,
		                          now - calls[i].started_ms,
		                          calls[i].hedge || calls[i].pieces >= calls[i].count ||
		                              asked_ahead(run, calls[i].idx) ||
		                              qgen_hedger_has(&run->hedger, calls[i].idx)};
	if ((pick = qgen_hedger_pick(&run->hedger, hc, n)) < 0)
		return;
	if (calls[pick].pieces > 0) {
		if (hc[pick].count > 0)
			ask_ahead(run, &calls[pick]);
		return;
	}
	b = qgen_plan_batch(&run->plan, hc[pick].idx, hc[pick].count);
	if (!qgen_hedger_started(&run->hedger, b.idx, b.count))
		return;
	if (qgen_pool_hedge(run->pool, &b) != CM_OK) {
		/* Out of memory: the pair never forms; the original's result settles it. */
		(void)qgen_hedger_result(&run->hedger, b.idx, b.count, true, false, false, 0, 0);
		return;
	}
	cm_counter_add(run->svc->hedged_calls, 1);
	cm_info("QGEN-HEDGE",
	        "job %s batch %d: running %lld ms, past the median of %zu answers: "
	        "a duplicate started",
	        run->job_id, b.idx, (long long)hc[pick].elapsed_ms, run->hedger.nfinished);
}

/* True when the plan says the run is over: complete, failing, or out of batches. */
static bool
plan_ended(job_run *run, qgen_outcome *o)
{
	size_t count = (size_t)run->params->count;

	switch (qgen_plan_check(&run->plan, run->chosen.n)) {
	case QGEN_PLAN_RUNNING:
		return false;
	case QGEN_PLAN_COMPLETE:
		*o = QGEN_COMPLETE;
		return true;
	case QGEN_PLAN_FAILING:
		snprintf(run->why, sizeof(run->why), "%s", run->last_err);
		break;
	case QGEN_PLAN_EXHAUSTED:
		snprintf(run->why, sizeof(run->why),
		         "only %zu of %zu valid, distinct questions could be made from this "
		         "document%s%.170s",
		         run->chosen.n, count, run->last_err[0] != '\0' ? "; " : "", run->last_err);
		break;
	}
	*o = QGEN_FAILED;
	return true;
}

typedef struct job_watch {
	int64_t next_renew, next_check; /* monotonic ms */
} job_watch;

/* True when the run must stop: this replica stops, the lease is lost, or the job was
 * cancelled. Renews the lease every third of it; checks cancellation every QGEN_TICK_MS. */
static bool
stopped(job_run *run, job_watch *wt, qgen_outcome *o)
{
	bool held = true, cancelled = false;

	if (atomic_load(&run->svc->stopping)) {
		*o = QGEN_STOPPING;
		return true;
	}
	if (cm_mono_ms() >= wt->next_renew) {
		if (cm_jobs_renew(run->w->jobs, run->job_id, 0, &held, &cancelled) == CM_OK &&
		    (!held || cancelled)) {
			*o = held ? QGEN_CANCELLED : QGEN_LEASE_LOST;
			return true;
		}
		wt->next_renew = cm_mono_ms() + run->svc->cfg.lease_ms / 3;
	}
	if (cm_mono_ms() >= wt->next_check) {
		if (cm_jobs_is_cancelled(run->w->jobs, run->job_id, &cancelled) == CM_OK &&
		    cancelled) {
			*o = QGEN_CANCELLED;
			return true;
		}
		wt->next_check = cm_mono_ms() + QGEN_TICK_MS;
	}
	return false;
}

/* Calls until the plan says the set is complete or cannot be, or the run is stopped. The
 * calls still out are left to drain_calls, after the set is written. */
static qgen_outcome
run_model(job_run *run)
{
	qgen_service     *s = run->svc;
	qgen_hedge_params hp = {(int)s->cfg.hedge_after_pct, (int)s->cfg.hedge_min_ms,
	                        (int)s->cfg.hedge_max_extra};
	job_watch         wt = {cm_mono_ms() + s->cfg.lease_ms / 3, 0};
	qgen_outcome      o = QGEN_FAILED;

	run->job =
	    (qgen_batch_job){s, run->job_id, run->doc.chunks, run->difficulty, run->params->topic};
	if (qgen_hedger_init(&run->hedger, &hp, run->params->count, run->plan.max_batches) !=
	        CM_OK ||
	    qgen_pool_alloc(&run->pool, (int)s->cfg.parallel, qgen_batch_call, &run->job) !=
	        CM_OK) {
		snprintf(run->why, sizeof(run->why), "out of memory");
		return QGEN_FAILED;
	}
	run->valid = (int)run->chosen.n;
	submit_due(run, run->pool);
	for (;;) {
		take_results(run,
		             qgen_pool_take(run->pool, hp.max_extra_pct > 0 ? QGEN_HEDGE_TICK_MS
		                                                            : QGEN_TICK_MS));
		if (plan_ended(run, &o) || stopped(run, &wt, &o)) {
			qgen_pool_cancel(run->pool); /* now: the calls still writing cost tokens */
			break;
		}
		submit_due(run, run->pool);
		hedge_late(run);
	}
	return o;
}

/* After the run: the calls still out are cancelled (their transfers aborted) and waited for,
 * the tokens hedging cost are counted. Runs after the set is written, so a job never waits
 * for a call whose answer it no longer needs. */
static void
drain_calls(job_run *run)
{
	qgen_hedger *h = &run->hedger;

	if (run->pool == NULL)
		return;
	qgen_pool_cancel(run->pool);
	while (qgen_pool_pending(run->pool) > 0) {
		qgen_batch_result *got = qgen_pool_take(run->pool, QGEN_TICK_MS);

		while (got != NULL) {
			qgen_batch_result *r = got;

			got = r->next;
			if (r->piece)
				take_piece(run, r, true);
			else if (hedge_verdict(run, r) !=
			         QGEN_HEDGE_DROP) /* a loser is counted already */
				charge_unused(run, r);
			qgen_batch_result_free(r);
		}
	}
	qgen_pool_free(run->pool);
	run->pool = NULL;
	cm_counter_add(run->svc->extra_tokens, (uint64_t)h->extra_tokens);
	if (h->hedged > 0)
		cm_info("QGEN-HEDGE-END",
		        "job %s: %d duplicate call(s), %lld extra tokens of a "
		        "budget of %lld",
		        run->job_id, h->hedged, (long long)h->extra_tokens,
		        (long long)qgen_hedge_budget(
		            &h->hp, h->count,
		            h->questions > 0 ? (h->tokens + h->questions - 1) / h->questions : 0));
}

/* ---- the job -------------------------------------------------------------------------------- */

/* What an earlier runner of this job stored: its questions join the set, its batches are not
 * asked again. */
static cm_err
load_batch(void *arg, int idx, const uint8_t *blob, size_t len)
{
	job_run   *run = arg;
	qgen_qlist qs;
	cm_err     err;

	qgen_qlist_init(&qs);
	if ((err = qgen_unpack_questions(blob, len, &qs)) == CM_OK) {
		(void)qgen_select(&run->chosen, &qs, (size_t)run->params->count);
		qgen_plan_stored(&run->plan, idx);
		run->resumed = true;
		note_model(run, NULL); /* its model is not recorded */
	}
	qgen_qlist_fini(&qs);
	return err == CM_EPROTO ? CM_OK : err; /* a bad stored batch is just asked again */
}

/* The job's parameters; false (the job failed for good) when they are unreadable. */
static bool
read_params(job_run *run, const cm_jobs_task *t)
{
	bool gave_up;

	if ((run->params = qgen__job_params__unpack(NULL, t->params_len, t->params)) == NULL) {
		note(cm_jobs_fail(run->w->jobs, t->job_id, 0, "unreadable job parameters", true,
		                  &gave_up),
		     "cm_jobs_fail");
		return false;
	}
	for (size_t i = 0; i < run->params->n_types; i++) {
		qgen_type ty;
		if (qgen_type_parse(run->params->types[i], &ty))
			run->types |= QGEN_TYPE_MASK(ty);
	}
	if (run->types == 0)
		run->types = QGEN_TYPE_MASK(QGEN_MCQ);
	(void)qgen_difficulty_parse(run->params->difficulty, &run->difficulty);
	return true;
}

/* Chunks, plan, and what an earlier runner stored. false when the run cannot start (then the
 * job has failed, or will be retried). */
static bool
prepare(job_run *run)
{
	qgen_service    *s = run->svc;
	qgen_plan_params pp = {.count = run->params->count,
	                       .types = run->types,
	                       .parallel = (int)s->cfg.parallel,
	                       .per_call = (int)s->cfg.per_call,
	                       .max_rounds = (int)s->cfg.max_rounds,
	                       .spare_pct = (int)s->cfg.spare_pct};
	cm_err           err;

	if ((err = qgen_doc_fetch(s, run->params, &run->doc, run->why, sizeof(run->why))) !=
	    CM_OK) {
		/* The document gone or without text fails for good; svc-pdf down is retried. */
		end_failed(run, run->why, err == CM_ENOTFOUND || err == CM_EPRECOND);
		return false;
	}
	pp.nchunks = run->doc.nchunks;
	pp.matches = run->doc.matches;
	pp.nmatches = run->doc.nmatches;
	if ((err = qgen_plan_init(&run->plan, &pp)) != CM_OK) {
		snprintf(run->why, sizeof(run->why), "cannot plan the calls: %s", cm_strerror(err));
		end_failed(run, run->why, true);
		return false;
	}
	if (qgen_store_batches(run->w->pg, run->job_id, load_batch, run) != CM_OK) {
		end_failed(run, "cannot read stored batches", false);
		return false;
	}
	if (run->resumed)
		cm_info("QGEN-JOB-RESUME", "job %s: resuming with %zu questions from earlier calls",
		        run->job_id, run->chosen.n);
	return true;
}

static void
run_fini(job_run *run)
{
	drain_calls(run);
	qgen_hedger_fini(&run->hedger);
	free(run->uses);
	free(run->ahead);
	qgen_plan_fini(&run->plan);
	qgen_qlist_fini(&run->chosen);
	qgen_doc_fini(&run->doc);
	if (run->params != NULL)
		qgen__job_params__free_unpacked(run->params, NULL);
}

/* Runs one claimed task to its end (or until the job is lost, cancelled or this replica
 * stops). */
static void
run_task(qgen_service *s, qgen_worker *w, const cm_jobs_task *t)
{
	job_run      run;
	qgen_outcome o;
	int64_t      t0 = cm_mono_ms();

	memset(&run, 0, sizeof(run));
	run.svc = s;
	run.w = w;
	run.job_id = t->job_id;
	qgen_qlist_init(&run.chosen);
	if (!read_params(&run, t))
		goto out;
	cm_info("QGEN-JOB-START", "job %s: %d questions (attempt %d)", t->job_id, run.params->count,
	        t->attempt);
	note(qgen_store_set_status(w->pg, run.params->set_id, "running", ""),
	     "qgen_store_set_status");
	if (!prepare(&run))
		goto out;
	if (s->llm == NULL)
		o = run_offline(&run);
	else if (run.chosen.n < (size_t)run.params->count)
		o = run_model(&run);
	else
		o = QGEN_COMPLETE; /* an earlier runner stored every batch it needed */
	end_run(&run, o);
	cm_histogram_observe(s->job_seconds, (double)(cm_mono_ms() - t0) / 1000.0);
	cm_info("QGEN-JOB-END", "job %s: %s, %zu/%d questions in %lld ms", t->job_id,
	        outcome_names[o], run.chosen.n, run.params->count, (long long)(cm_mono_ms() - t0));
	/* run_fini drains the calls still out: after the set is written and timed. */
out:
	run_fini(&run);
}

/* ---- runner threads (cm/runners.h) ----------------------------------------------------------- */

static void
runner_run(void *arg, void *state, const cm_jobs_task *t)
{
	run_task(arg, state, t);
}

cm_err
qgen_runner_run_one(qgen_service *s, qgen_worker *w, bool *ran)
{
	return cm_runner_run_one(w->jobs, runner_run, s, w, ran);
}

cm_err
qgen_runners_start(qgen_service *s)
{
	cm_runners_config c;

	memset(&c, 0, sizeof(c));
	atomic_store(&s->stopping, false);
	c.name = "qgen";
	c.threads = (int)s->cfg.runners;
	c.common = &s->common;
	c.schema = s->schema;
	qgen_jobs_options(s, &c.jobs);
	c.poll_ms = (int)s->cfg.poll_ms;
	c.thread_init = qgen_worker_init;
	c.thread_fini = qgen_worker_fini;
	c.run = runner_run;
	c.arg = s;
	return cm_runners_start(&s->runners, &c);
}

void
qgen_runners_stop(qgen_service *s)
{
	atomic_store(&s->stopping, true); /* running jobs see it between their steps */
	cm_runners_stop(s->runners);
	s->runners = NULL;
}
