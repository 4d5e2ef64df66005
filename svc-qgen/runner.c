/*
 * runner.c - running generation jobs: claim, plan calls, run them in parallel, validate,
 * top up, store, publish.
 *
 * DESIGN. A job is one task of the durable queue (cm/jobs.h), claimed by one runner thread of
 * one replica under a lease it renews. The runner owns all database work; it starts up to
 * QGEN_PARALLEL call threads that take batch plans from a shared queue, call the model (the LLM
 * client's own limits bound the calls across replicas) and hand back validated questions. As
 * each batch comes back the runner stores it (batches table, first write of (job, idx) wins),
 * adds its questions to the set through the duplicate filter, publishes progress, and - when the
 * questions still expected (chosen + asked for by batches in flight) fall short of `count`
 * because a call failed, a model answered garbage or duplicates were dropped - plans more
 * batches at once, so a shortfall costs one call's latency rather than another round.
 *
 * A replica that dies mid-job loses only its calls in flight: its lease expires, another
 * runner claims the task, reloads the stored batches (no call is paid twice, no question comes
 * twice) and plans what is missing. Two runners finishing the same job are settled by the set's
 * status update: the first writes the questions, the second changes nothing.
 *
 * Batch idx -> (chunk, variant): chunks are visited in a spread order (evenly spaced first, so
 * the first batches cover the whole document; topic matches first when a topic is given), batch
 * idx takes order[idx % n] with variant idx / n, so repeated visits of a chunk ask for other
 * questions. Cancellation is polled every QGEN_TICK_MS: no call starts after it is seen.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "cache.h"
#include "codec.h"
#include "offline.h"
#include "prompt.h"
#include "quality.h"
#include "server.h"
#include "store.h"

/* Best-effort steps (progress, status, cleanup): a failure is logged, never fatal. */
static void
note(cm_err err, const char *what)
{
	if (err != CM_OK)
		cm_warn("QGEN-BEST-EFFORT", "%s: %s", what, cm_strerror(err));
}

#define QGEN_TICK_MS 200
#define QGEN_MAX_FAIL_STREAK 6 /* batches failing in a row: the model is down, give up */
#define QGEN_REPAIR_TRIES 2    /* calls per batch when the answer is not usable JSON */

typedef struct batch_plan {
	int       idx;
	int       chunk; /* index into run->chunks */
	int       count;
	qgen_type type;
	int       variant;
} batch_plan;

typedef struct batch_result {
	int                  idx;
	int                  asked;
	cm_err               err;
	char                 why[CM_MAX_ERRMSG];
	int                  rejected;
	qgen_qlist           qs;
	struct batch_result *next;
} batch_result;

typedef struct job_run {
	qgen_service        *svc;
	Qgen__JobParams     *params;
	const char          *job_id;
	unsigned             types;
	qgen_difficulty      difficulty;
	Pdf__ChunksResponse *chunks_resp;
	qgen_chunk          *chunks;
	size_t               nchunks;
	int                 *order;
	size_t               norder;

	pthread_mutex_t mu;
	pthread_cond_t  cv;    /* call threads: work or close; runner: results */
	batch_plan     *queue; /* pending plans (FIFO) */
	size_t          qhead, qtail, qcap;
	batch_result   *results; /* finished, not yet taken by the runner */
	int             inflight;
	bool            closed; /* no more work: threads exit */
	bool            cancel; /* stop starting calls */
	pthread_t      *threads;
	int             nthreads;
} job_run;

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

/* ---- call threads ---------------------------------------------------------------------------- */

static batch_result *
call_model(job_run *run, const batch_plan *plan)
{
	qgen_service   *s = run->svc;
	batch_result   *res = calloc(1, sizeof(*res));
	qgen_chunk     *ch = &run->chunks[plan->chunk];
	qgen_batch_ctx  ctx = {QGEN_TYPE_MASK(plan->type), run->difficulty, ch->page_first,
	                       ch->page_last};
	qgen_prompt_req pr = {plan->count,        plan->type,    run->difficulty,
	                      run->params->topic, plan->variant, ch};
	cm_buf          user;

	if (res == NULL)
		return NULL;
	res->idx = plan->idx;
	res->asked = plan->count;
	qgen_qlist_init(&res->qs);
	cm_buf_init(&user, 1u << 20);
	if ((res->err = qgen_prompt_user(&pr, &user)) != CM_OK) {
		snprintf(res->why, sizeof(res->why), "prompt: %s", cm_strerror(res->err));
		goto out;
	}
	for (int attempt = 0; attempt < QGEN_REPAIR_TRIES; attempt++) {
		cm_llm_msg    msgs[2] = {{"system", qgen_prompt_system()}, {"user", user.data}};
		cm_llm_req    rq;
		cm_llm_result lr;

		memset(&rq, 0, sizeof(rq));
		rq.msgs = msgs;
		rq.nmsgs = 2;
		rq.max_tokens = qgen_prompt_max_tokens(plan->count, plan->type);
		rq.temperature = 0.7;
		rq.json_mode = true;
		cm_llm_result_init(&lr);
		cm_counter_add(s->llm_calls, 1);
		int64_t t0 = cm_mono_ms();
		res->err = cm_llm_chat(s->llm, &rq, &lr);
		cm_debug("QGEN-CALL",
		         "job %s batch %d: %d questions, %s in %lld ms, %lld+%lld tokens",
		         run->job_id, plan->idx, plan->count, cm_strerror(res->err),
		         (long long)(cm_mono_ms() - t0), (long long)lr.prompt_tokens,
		         (long long)lr.completion_tokens);
		if (res->err == CM_OK) {
			res->err = qgen_parse_questions(lr.json, lr.json_len, &ctx, &res->qs,
			                                &res->rejected, res->why, sizeof(res->why));
		} else {
			snprintf(res->why, sizeof(res->why), "%s",
			         lr.errmsg[0] != '\0' ? lr.errmsg : cm_strerror(res->err));
		}
		cm_llm_result_fini(&lr);
		/* Only an unusable answer is asked again here; the client already retried 429/5xx.
		 */
		if (res->err != CM_EPROTO)
			break;
		cm_warn("QGEN-BAD-ANSWER", "job %s batch %d: %s; asking again", run->job_id,
		        plan->idx, res->why);
	}
out:
	cm_buf_fini(&user);
	return res;
}

static void *
call_thread(void *arg)
{
	job_run *run = arg;

	pthread_mutex_lock(&run->mu);
	for (;;) {
		batch_plan    plan;
		batch_result *res;

		while (!run->closed && !run->cancel && run->qhead == run->qtail)
			pthread_cond_wait(&run->cv, &run->mu);
		if (run->closed || run->cancel)
			break;
		plan = run->queue[run->qhead++ % run->qcap];
		run->inflight++;
		pthread_mutex_unlock(&run->mu);
		res = call_model(run, &plan);
		pthread_mutex_lock(&run->mu);
		run->inflight--;
		if (res != NULL) {
			res->next = run->results;
			run->results = res;
		}
		pthread_cond_broadcast(&run->cv);
	}
	pthread_mutex_unlock(&run->mu);
	return NULL;
}

/* Queues a plan (runner thread, mu held). */
static cm_err
enqueue(job_run *run, const batch_plan *plan)
{
	if (run->qtail - run->qhead == run->qcap) {
		size_t      cap = run->qcap == 0 ? 64 : run->qcap * 2;
		batch_plan *q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return CM_ENOMEM;
		for (size_t i = run->qhead; i < run->qtail; i++)
			q[i - run->qhead] = run->queue[i % run->qcap];
		run->qtail -= run->qhead;
		run->qhead = 0;
		free(run->queue);
		run->queue = q;
		run->qcap = cap;
	}
	run->queue[run->qtail++ % run->qcap] = *plan;
	pthread_cond_broadcast(&run->cv);
	return CM_OK;
}

/* ---- planning ------------------------------------------------------------------------------- */

/*
 * Questions per call. A call costs TTFT + q * (tokens per question) / rate, and C calls run at
 * once, so a set takes about ceil(count / (q * C)) such calls back to back. Up to QGEN_PER_CALL
 * (5), the smallest q that still fits the set in as few waves: ceil(count / QGEN_PARALLEL). 25
 * questions over 8 parallel calls are 7 calls of 4 (one wave, each call shorter than a call of
 * 5); 100 questions are 20 calls of 5.
 */
int
qgen_batch_size(const qgen_service *s, int count)
{
	int q = (count + (int)s->cfg.parallel - 1) / (int)s->cfg.parallel;

	if (q > (int)s->cfg.per_call)
		q = (int)s->cfg.per_call;
	return q < 1 ? 1 : q;
}

/* Chunks in visiting order: topic matches first, then the rest evenly spread (every
 * step-th chunk, then the ones in between), so the first `first_batches` cover the document. */
static cm_err
build_order(job_run *run, const int *matches, size_t nmatches, int first_batches)
{
	size_t n = run->nchunks, k = 0;
	size_t step = first_batches > 0 ? n / (size_t)first_batches : 1;
	bool  *used;

	if (step == 0)
		step = 1;
	if ((run->order = malloc(n * sizeof(int))) == NULL || (used = calloc(n, 1)) == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < nmatches; i++) {
		if (matches[i] >= 0 && (size_t)matches[i] < n && !used[matches[i]]) {
			used[matches[i]] = true;
			run->order[k++] = matches[i];
		}
	}
	/* Enough topic material for the first batches: stay on topic. */
	if (k < (size_t)first_batches || k == 0) {
		for (size_t o = 0; o < step; o++)
			for (size_t i = o; i < n; i += step)
				if (!used[i]) {
					used[i] = true;
					run->order[k++] = (int)i;
				}
	}
	free(used);
	run->norder = k;
	return CM_OK;
}

static batch_plan
plan_for(const job_run *run, int idx, int count)
{
	batch_plan p;
	bool       both = run->types == (QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN));

	p.idx = idx;
	p.chunk = run->order[(size_t)idx % run->norder];
	p.variant = (int)((size_t)idx / run->norder);
	p.count = count;
	if (both)
		p.type = idx % 2 == 0 ? QGEN_MCQ : QGEN_OPEN;
	else
		p.type = (run->types & QGEN_TYPE_MASK(QGEN_OPEN)) != 0 ? QGEN_OPEN : QGEN_MCQ;
	return p;
}

/* ---- the job -------------------------------------------------------------------------------- */

/* Fetches the document's chunks (and topic ranking) from svc-pdf as the owner. */
static cm_err
fetch_chunks(job_run *run, int **matches, size_t *nmatches, char *why, size_t whylen)
{
	qgen_service      *s = run->svc;
	Pdf__ChunksRequest rq = PDF__CHUNKS_REQUEST__INIT;
	cm_rpc_call_opts   o = {0};
	cm_rpc_result      res;
	ProtobufCMessage  *resp = NULL;
	cm_err             err;

	*matches = NULL;
	*nmatches = 0;
	rq.id = run->params->document_id;
	rq.first_page = run->params->first_page;
	rq.last_page = run->params->last_page;
	o.method = "pdf.Chunks";
	o.subject = run->params->owner;
	o.deadline_ms = cm_now_ms() + QGEN_PDF_TIMEOUT_MS;
	o.idempotent = true;
	err = cm_rpc_call(s->pdf, &o, &rq.base, &pdf__chunks_response__descriptor, &resp, &res);
	if (err != CM_OK) {
		snprintf(why, whylen, "%s",
		         err == CM_ENOTFOUND ? "the document no longer exists" : res.message);
		cm_rpc_result_fini(&res);
		return err;
	}
	cm_rpc_result_fini(&res);
	run->chunks_resp = (Pdf__ChunksResponse *)resp;
	if (run->chunks_resp->n_chunks == 0) {
		snprintf(why, whylen, "the document has no text in the pages asked for");
		return CM_EPRECOND;
	}
	run->nchunks = run->chunks_resp->n_chunks;
	if (run->nchunks > QGEN_MAX_CHUNKS)
		run->nchunks = QGEN_MAX_CHUNKS;
	if ((run->chunks = calloc(run->nchunks, sizeof(qgen_chunk))) == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < run->nchunks; i++) {
		const Pdf__Chunk *c = run->chunks_resp->chunks[i];
		run->chunks[i].text = c->text;
		run->chunks[i].len = strlen(c->text);
		run->chunks[i].page_first = c->page_first;
		run->chunks[i].page_last = c->page_last;
	}

	if (run->params->topic[0] != '\0') {
		Pdf__SearchRequest sq = PDF__SEARCH_REQUEST__INIT;
		ProtobufCMessage  *sresp = NULL;

		sq.id = run->params->document_id;
		sq.query = run->params->topic;
		sq.limit = QGEN_MAX_SEARCH;
		o.method = "pdf.Search";
		if (cm_rpc_call(s->pdf, &o, &sq.base, &pdf__chunks_response__descriptor, &sresp,
		                &res) == CM_OK) {
			Pdf__ChunksResponse *sr = (Pdf__ChunksResponse *)sresp;
			if (sr->n_chunks > 0 &&
			    (*matches = calloc(sr->n_chunks, sizeof(int))) != NULL) {
				/* Search hits are chunk indexes of the whole document; ours may be
				 * a page range: map by index. */
				for (size_t i = 0; i < sr->n_chunks; i++) {
					for (size_t k = 0; k < run->nchunks; k++) {
						if (run->chunks_resp->chunks[k]->index ==
						    sr->chunks[i]->index) {
							(*matches)[(*nmatches)++] = (int)k;
							break;
						}
					}
				}
			}
			protobuf_c_message_free_unpacked(sresp, NULL);
		}
		cm_rpc_result_fini(
		    &res); /* no topic ranking is not a failure: the prompt still asks */
	}
	return CM_OK;
}

typedef struct load_ctx {
	qgen_qlist *chosen;
	size_t      count;
	int         max_idx;
	bool       *have; /* idx < have_n already stored */
	size_t      have_n;
} load_ctx;

static cm_err
load_batch(void *arg, int idx, const uint8_t *blob, size_t len)
{
	load_ctx  *lc = arg;
	qgen_qlist qs;
	cm_err     err;

	qgen_qlist_init(&qs);
	if ((err = qgen_unpack_questions(blob, len, &qs)) == CM_OK) {
		(void)qgen_select(lc->chosen, &qs, lc->count);
		if (idx > lc->max_idx)
			lc->max_idx = idx;
		if ((size_t)idx < lc->have_n)
			lc->have[idx] = true;
	}
	qgen_qlist_fini(&qs);
	return err == CM_EPROTO ? CM_OK : err; /* a bad stored batch is just asked again */
}

/* Orders the chosen questions by page (stable), so a set reads in document order. */
static int
cmp_page(const void *a, const void *b)
{
	const qgen_question *x = a, *y = b;

	if (x->page != y->page)
		return x->page < y->page ? -1 : 1;
	return 0;
}

static void
sort_by_page(qgen_qlist *l)
{
	/* Insertion sort: stable (qsort is not), and n <= QGEN_MAX_COUNT. */
	for (size_t i = 1; i < l->n; i++) {
		qgen_question q = l->items[i];
		size_t        j = i;
		while (j > 0 && cmp_page(&l->items[j - 1], &q) > 0) {
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
finish(job_run *run, qgen_worker *w, qgen_qlist *chosen)
{
	qgen_service *s = run->svc;
	uint8_t      *blob = NULL;
	size_t        len = 0;
	bool          won = false, won_job = false;
	cm_err        err;

	sort_by_page(chosen);
	qgen_spread_answers(chosen, seed_of(run->params->set_id));
	if ((err = qgen_pack_questions(chosen, true, &blob, &len)) != CM_OK)
		return err;
	if ((err = qgen_store_finish_set(w->pg, run->params->set_id, blob, len, &won)) != CM_OK)
		goto out;
	if ((err = cm_jobs_set_result_id(w->jobs, run->job_id, run->params->set_id)) != CM_OK)
		goto out;
	err = cm_jobs_complete(w->jobs, run->job_id, 0, NULL, 0, &won_job);
	if (err != CM_OK && err != CM_ECANCELED && err != CM_EPRECOND)
		goto out;
	err = CM_OK;
	if (won)
		qgen_cache_put(w, run->params->cache_key, blob, len);
	note(qgen_store_drop_batches(w->pg, run->job_id), "qgen_store_drop_batches");
	if (won_job) {
		cm_counter_add(s->jobs_succeeded, 1);
		qgen_publish(s, "job.progress", run->job_id, run->params->owner, run->params->count,
		             run->params->count, NULL);
		qgen_publish(s, "job.done", run->job_id, run->params->owner, run->params->count,
		             run->params->count, "succeeded");
	}
out:
	free(blob);
	return err;
}

/* Fails the job for good with reason, and the set with it. */
static void
fail_job(job_run *run, qgen_worker *w, const char *reason)
{
	bool gave_up = false;

	cm_warn("QGEN-JOB-FAIL", "job %s: %s", run->job_id, reason);
	if (cm_jobs_fail(w->jobs, run->job_id, 0, reason, true, &gave_up) != CM_OK)
		return; /* lease lost or database down: whoever holds the job decides */
	note(qgen_store_set_status(w->pg, run->params->set_id, "failed", reason),
	     "qgen_store_set_status");
	cm_counter_add(run->svc->jobs_failed, 1);
	qgen_publish(run->svc, "job.done", run->job_id, run->params->owner, 0, run->params->count,
	             "failed");
}

static void
stop_threads(job_run *run)
{
	pthread_mutex_lock(&run->mu);
	run->closed = true;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
	for (int i = 0; i < run->nthreads; i++)
		pthread_join(run->threads[i], NULL);
	run->nthreads = 0;
	while (run->results != NULL) {
		batch_result *r = run->results;
		run->results = r->next;
		qgen_qlist_fini(&r->qs);
		free(r);
	}
}

static void
offline_progress(void *arg, size_t chosen)
{
	job_run     *run = ((void **)arg)[0];
	qgen_worker *w = ((void **)arg)[1];

	note(qgen_store_set_progress(w->pg, run->params->set_id, (int)chosen),
	     "qgen_store_set_progress");
	qgen_publish(run->svc, "job.progress", run->job_id, run->params->owner, (int)chosen,
	             run->params->count, NULL);
}

/* The offline provider: no calls, rounds of extractive questions over the whole range. */
static void
run_offline(job_run *run, qgen_worker *w, qgen_qlist *chosen)
{
	qgen_offline_req req = {run->params->count, run->types, run->difficulty, run->params->topic,
	                        0};
	void            *arg[2] = {run, w};

	qgen_offline_fill(run->chunks, run->nchunks, &req, (int)run->svc->cfg.max_rounds, chosen,
	                  offline_progress, arg);
}

/* Runs the model path until the set is complete, the job is cancelled or lost, or it fails.
 * Returns true when `chosen` is complete. */
static bool
run_model(job_run *run, qgen_worker *w, qgen_qlist *chosen, int next_idx, const bool *have,
          size_t have_n, char *why, size_t whylen)
{
	qgen_service *s = run->svc;
	size_t        count = (size_t)run->params->count;
	int           per = qgen_batch_size(s, (int)count);
	int           max_batches;
	int           asked = 0; /* questions asked of batches queued or in flight */
	int           issued = 0, fail_streak = 0, valid_sum = (int)chosen->n;
	char          last_err[CM_MAX_ERRMSG] = "";
	int64_t       next_renew = cm_mono_ms() + s->cfg.lease_ms / 3, next_check = 0;
	bool          ok = false;

	max_batches = ((int)count + per - 1) / per * (int)s->cfg.max_rounds + 4;
	run->nthreads = 0;
	if ((run->threads = calloc((size_t)s->cfg.parallel, sizeof(pthread_t))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	pthread_mutex_lock(&run->mu);
	/* The first plan: batches 0..B-1, minus those a previous runner already stored. */
	for (int idx = 0; (size_t)idx * (size_t)per < count; idx++) {
		int n = (int)count - idx * per < per ? (int)count - idx * per : per;
		if ((size_t)idx < have_n && have[idx])
			continue;
		batch_plan p = plan_for(run, idx, n);
		if (enqueue(run, &p) != CM_OK)
			break;
		asked += n;
		issued++;
	}
	pthread_mutex_unlock(&run->mu);

	for (;;) {
		batch_result *got;
		int           want;

		pthread_mutex_lock(&run->mu);
		/* Threads: one per queued or in-flight batch, up to QGEN_PARALLEL. */
		while (run->nthreads < s->cfg.parallel &&
		       (size_t)run->nthreads < (run->qtail - run->qhead) + (size_t)run->inflight) {
			if (pthread_create(&run->threads[run->nthreads], NULL, call_thread, run) !=
			    0)
				break;
			run->nthreads++;
		}
		if (run->results == NULL && (run->inflight > 0 || run->qhead != run->qtail)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += QGEN_TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&run->cv, &run->mu, &ts);
		}
		got = run->results;
		run->results = NULL;
		pthread_mutex_unlock(&run->mu);

		/* Results, in completion order. */
		while (got != NULL) {
			batch_result *r = got;
			got = r->next;
			asked -= r->asked;
			cm_counter_add(s->questions_rejected, (uint64_t)r->rejected);
			if (r->err == CM_OK) {
				uint8_t *blob = NULL;
				size_t   len = 0;
				fail_streak = 0;
				valid_sum += (int)r->qs.n;
				if (qgen_pack_questions(&r->qs, false, &blob, &len) == CM_OK)
					note(qgen_store_put_batch(w->pg, run->job_id, r->idx, blob,
					                          len),
					     "qgen_store_put_batch");
				free(blob);
				(void)qgen_select(chosen, &r->qs, count);
			} else {
				cm_counter_add(s->batches_failed, 1);
				fail_streak++;
				cm_warn("QGEN-BATCH-FAIL", "job %s batch %d: %s: %s", run->job_id,
				        r->idx, cm_strerror(r->err), r->why);
				snprintf(last_err, sizeof(last_err), "the model failed: %.200s",
				         r->why);
				if (r->err == CM_EPERM) {
					snprintf(last_err, sizeof(last_err),
					         "the LLM provider refused the requests (quota "
					         "exhausted or API key "
					         "invalid): %.150s",
					         r->why);
					fail_streak = QGEN_MAX_FAIL_STREAK;
				}
			}
			qgen_qlist_fini(&r->qs);
			free(r);
			note(qgen_store_set_progress(w->pg, run->params->set_id,
			                             valid_sum < (int)count ? valid_sum
			                                                    : (int)count),
			     "qgen_store_set_progress");
			qgen_publish(s, "job.progress", run->job_id, run->params->owner,
			             valid_sum < (int)count ? valid_sum : (int)count, (int)count,
			             NULL);
		}
		if (chosen->n >= count) {
			ok = true;
			break;
		}
		if (fail_streak >= QGEN_MAX_FAIL_STREAK) {
			snprintf(why, whylen, "%s", last_err);
			break;
		}
		if (atomic_load(&s->stopping)) {
			snprintf(why, whylen,
			         "stopping"); /* another replica resumes after the lease */
			break;
		}

		/* Top up at once what the batches in flight cannot bring. */
		want = (int)count - (int)chosen->n - asked;
		pthread_mutex_lock(&run->mu);
		while (want > 0 && issued < max_batches) {
			int        n = want < per ? want : per;
			batch_plan p = plan_for(run, next_idx++, n);
			if (enqueue(run, &p) != CM_OK)
				break;
			asked += n;
			want -= n;
			issued++;
		}
		bool idle = run->inflight == 0 && run->qhead == run->qtail && run->results == NULL;
		pthread_mutex_unlock(&run->mu);
		if (idle) {
			snprintf(
			    why, whylen,
			    "only %zu of %zu valid, distinct questions could be made from this "
			    "document%s%s",
			    chosen->n, count, last_err[0] != '\0' ? "; " : "", last_err);
			break;
		}

		/* Lease and cancellation. */
		if (cm_mono_ms() >= next_renew) {
			bool held = true, cancelled = false;
			if (cm_jobs_renew(w->jobs, run->job_id, 0, &held, &cancelled) == CM_OK &&
			    (!held || cancelled)) {
				snprintf(why, whylen, "%s", held ? "cancelled" : "lease lost");
				break;
			}
			next_renew = cm_mono_ms() + s->cfg.lease_ms / 3;
		}
		if (cm_mono_ms() >= next_check) {
			bool cancelled = false;
			if (cm_jobs_is_cancelled(w->jobs, run->job_id, &cancelled) == CM_OK &&
			    cancelled) {
				snprintf(why, whylen, "cancelled");
				break;
			}
			next_check = cm_mono_ms() + QGEN_TICK_MS;
		}
	}
	pthread_mutex_lock(&run->mu);
	run->cancel = true; /* nothing new starts; calls in flight finish and are dropped */
	pthread_mutex_unlock(&run->mu);
	stop_threads(run);
	free(run->threads);
	run->threads = NULL;
	return ok;
}

static void
run_fini(job_run *run)
{
	free(run->queue);
	free(run->order);
	free(run->chunks);
	if (run->chunks_resp != NULL)
		pdf__chunks_response__free_unpacked(run->chunks_resp, NULL);
	if (run->params != NULL)
		qgen__job_params__free_unpacked(run->params, NULL);
	pthread_mutex_destroy(&run->mu);
	pthread_cond_destroy(&run->cv);
}

/* Runs one claimed task to its end (or until the job is lost or cancelled). */
static void
run_task(qgen_service *s, qgen_worker *w, const cm_jobs_task *t)
{
	job_run    run;
	qgen_qlist chosen;
	load_ctx   lc;
	int       *matches = NULL;
	size_t     nmatches = 0;
	char       why[CM_MAX_ERRMSG] = "";
	int64_t    t0 = cm_mono_ms();
	cm_err     err;
	int        first_batches;

	memset(&run, 0, sizeof(run));
	memset(&lc, 0, sizeof(lc));
	pthread_mutex_init(&run.mu, NULL);
	pthread_cond_init(&run.cv, NULL);
	qgen_qlist_init(&chosen);
	run.svc = s;
	run.job_id = t->job_id;
	if ((run.params = qgen__job_params__unpack(NULL, t->params_len, t->params)) == NULL) {
		bool gave_up;
		note(cm_jobs_fail(w->jobs, t->job_id, 0, "unreadable job parameters", true,
		                  &gave_up),
		     "cm_jobs_fail");
		goto out;
	}
	for (size_t i = 0; i < run.params->n_types; i++) {
		qgen_type ty;
		if (qgen_type_parse(run.params->types[i], &ty))
			run.types |= QGEN_TYPE_MASK(ty);
	}
	if (run.types == 0)
		run.types = QGEN_TYPE_MASK(QGEN_MCQ);
	(void)qgen_difficulty_parse(run.params->difficulty, &run.difficulty);
	cm_info("QGEN-JOB-START", "job %s: %d questions (attempt %d)", t->job_id, run.params->count,
	        t->attempt);
	note(qgen_store_set_status(w->pg, run.params->set_id, "running", ""),
	     "qgen_store_set_status");

	if ((err = fetch_chunks(&run, &matches, &nmatches, why, sizeof(why))) != CM_OK) {
		if (err == CM_ENOTFOUND || err == CM_EPRECOND) {
			fail_job(&run, w, why);
		} else {
			bool gave_up = false;
			/* svc-pdf unreachable: retried with backoff by the queue. */
			if (cm_jobs_fail(w->jobs, t->job_id, 0, why, false, &gave_up) == CM_OK &&
			    gave_up) {
				note(
				    qgen_store_set_status(w->pg, run.params->set_id, "failed", why),
				    "qgen_store_set_status");
				qgen_publish(s, "job.done", t->job_id, run.params->owner, 0,
				             run.params->count, "failed");
			}
		}
		goto out;
	}
	first_batches = (run.params->count + qgen_batch_size(s, run.params->count) - 1) /
	                qgen_batch_size(s, run.params->count);
	if (build_order(&run, matches, nmatches, first_batches) != CM_OK || run.norder == 0) {
		fail_job(&run, w, "out of memory");
		goto out;
	}

	/* What a previous runner of this job already paid for. */
	lc.chosen = &chosen;
	lc.count = (size_t)run.params->count;
	lc.max_idx = -1;
	lc.have_n = (size_t)first_batches;
	if ((lc.have = calloc(lc.have_n, 1)) == NULL ||
	    qgen_store_batches(w->pg, t->job_id, load_batch, &lc) != CM_OK) {
		bool gave_up;
		note(cm_jobs_fail(w->jobs, t->job_id, 0, "cannot read stored batches", false,
		                  &gave_up),
		     "cm_jobs_fail");
		goto out;
	}
	if (lc.max_idx >= 0)
		cm_info("QGEN-JOB-RESUME", "job %s: resuming with %zu questions from earlier calls",
		        t->job_id, chosen.n);

	if (s->llm == NULL) {
		run_offline(&run, w, &chosen);
		if (chosen.n < (size_t)run.params->count)
			snprintf(why, sizeof(why),
			         "only %zu of %d questions could be made from this document's text "
			         "without "
			         "a model (configure LLM_BASE_URL for more)",
			         chosen.n, run.params->count);
	} else if (chosen.n < (size_t)run.params->count) {
		int next = lc.max_idx + 1 > first_batches ? lc.max_idx + 1 : first_batches;
		(void)run_model(&run, w, &chosen, next, lc.have, lc.have_n, why, sizeof(why));
	}

	if (chosen.n >= (size_t)run.params->count) {
		if ((err = finish(&run, w, &chosen)) != CM_OK) {
			bool gave_up;
			cm_warn("QGEN-FINISH-FAIL", "job %s: %s", t->job_id, cm_strerror(err));
			note(cm_jobs_fail(w->jobs, t->job_id, 0, "cannot store the questions",
			                  false, &gave_up),
			     "cm_jobs_fail");
		}
	} else if (strcmp(why, "cancelled") == 0 || strcmp(why, "lease lost") == 0 ||
	           strcmp(why, "stopping") == 0) {
		cm_info("QGEN-JOB-STOP", "job %s: %s", t->job_id, why);
	} else {
		fail_job(&run, w, why);
	}
	cm_histogram_observe(s->job_seconds, (double)(cm_mono_ms() - t0) / 1000.0);
	cm_info("QGEN-JOB-END", "job %s: %zu/%d questions in %lld ms", t->job_id, chosen.n,
	        run.params->count, (long long)(cm_mono_ms() - t0));
out:
	free(lc.have);
	free(matches);
	qgen_qlist_fini(&chosen);
	run_fini(&run);
}

/* ---- runner threads ------------------------------------------------------------------------- */

cm_err
qgen_runner_run_one(qgen_service *s, qgen_worker *w, bool *ran)
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
	qgen_service     *s = arg;
	qgen_worker      *w = NULL;
	cm_jobs_listener *l = NULL;

	if (qgen_worker_alloc(s, &w) != CM_OK ||
	    cm_jobs_listener_open(&l, s->common.database_url, QGEN_CHANNEL) != CM_OK) {
		cm_error("QGEN-RUNNER-INIT", "a runner could not start");
		goto out;
	}
	while (!atomic_load(&s->stopping)) {
		bool ran = false, notified;
		if (qgen_runner_run_one(s, w, &ran) != CM_OK || !ran)
			note(cm_jobs_listener_wait(
			         l, (int)s->cfg.poll_ms < 500 ? (int)s->cfg.poll_ms : 500,
			         &notified),
			     "cm_jobs_listener_wait");
	}
out:
	cm_jobs_listener_close(l);
	qgen_worker_free(w);
	return NULL;
}

cm_err
qgen_runners_start(qgen_service *s)
{
	atomic_store(&s->stopping, false);
	if ((s->runners = calloc((size_t)s->cfg.runners, sizeof(pthread_t))) == NULL)
		return CM_ENOMEM;
	for (int i = 0; i < s->cfg.runners; i++) {
		if (pthread_create(&s->runners[i], NULL, runner_main, s) != 0) {
			qgen_runners_stop(s);
			return CM_EINTERNAL;
		}
		s->nrunners++;
	}
	return CM_OK;
}

void
qgen_runners_stop(qgen_service *s)
{
	atomic_store(&s->stopping, true);
	for (int i = 0; i < s->nrunners; i++)
		pthread_join(s->runners[i], NULL);
	free(s->runners);
	s->runners = NULL;
	s->nrunners = 0;
}
