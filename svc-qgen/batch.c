/*
 * batch.c - one generation call (batch.h).
 *
 * DESIGN. The call is made on a pool thread and only reads the job's shared, immutable state;
 * everything it produces goes into its own result. A provider that answered prose or broken
 * JSON is asked once more here (QGEN_REPAIR_TRIES), since the LLM client retries transport
 * failures only: a second sample usually parses. Grounding runs here too, on the call's thread:
 * it reads only the chunk, and a dropped question is topped up like an invalid one.
 *
 * Streaming. With QGEN_STREAM the answer arrives in deltas; qscan.h picks out each question
 * object as its closing brace arrives, and the question is read, checked and grounded right
 * there, on the call's thread, then handed to the runner as a piece (batch.h) while the model
 * writes the next one. A stream that breaks or is cut at the token limit after some questions
 * keeps them (the runner tops up the rest); one that brought none is asked again like a
 * broken whole answer. A cancelled stream is charged what it cost: its prompt and what it
 * delivered (the LLM client counts no tokens for it), estimated at 4 bytes a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "batch.h"
#include "prompt.h"
#include "qscan.h"
#include "quality.h"

#define QGEN_REPAIR_TRIES 2 /* calls per batch when the answer is not usable JSON */

/* A streamed attempt in progress. */
typedef struct stream_ctx {
	const qgen_batch_job *job;
	qgen_batch_result    *r;
	const qgen_batch_ctx *ctx;
	qgen_qscan            scan;
	size_t                bytes; /* delivered so far */
	cm_err                err;   /* CM_ENOMEM */
} stream_ctx;

/* Hands q (grounded, owned by the caller) over as a piece, and keeps it in r->qs. */
static cm_err
deliver(qgen_batch_result *r, qgen_question *q, size_t bytes)
{
	qgen_batch_result *piece = NULL;
	qgen_question      copy;
	cm_err             err;

	if (r->emit != NULL) {
		if ((piece = qgen_batch_result_alloc(&r->plan)) == NULL)
			return CM_ENOMEM;
		piece->piece = true;
		piece->hedge = r->hedge;
		piece->bytes = (int64_t)bytes;
		if ((err = qgen_question_copy(&copy, q)) != CM_OK)
			goto fail;
		if ((err = qgen_qlist_push(&piece->qs, &copy)) != CM_OK) {
			qgen_question_fini(&copy);
			goto fail;
		}
	}
	if ((err = qgen_qlist_push(&r->qs, q)) != CM_OK)
		goto fail;
	if (piece != NULL) {
		r->delivered++;
		r->emit(r->emit_ctx, r, piece);
	}
	return CM_OK;
fail:
	qgen_batch_result_free(piece);
	return err;
}

/* One question object of the stream (qscan.h): read, checked, grounded, handed over. */
static bool
on_object(void *arg, const char *obj, size_t len)
{
	stream_ctx        *sc = arg;
	qgen_batch_result *r = sc->r;
	const qgen_chunk  *ch = &sc->job->chunks[r->plan.chunk];
	qgen_qlist         one;
	qgen_question      q;
	char               why[160];

	if (qgen_parse_one(obj, len, sc->ctx, &q, why, sizeof(why)) != CM_OK) {
		r->rejected++;
		return true;
	}
	qgen_qlist_init(&one);
	if ((sc->err = qgen_qlist_push(&one, &q)) != CM_OK) {
		qgen_question_fini(&q);
		return false;
	}
	if ((sc->err = qgen_ground_list(&one, ch, 1, &sc->job->svc->ground, r->verdicts)) ==
	        CM_OK &&
	    one.n == 1)
		sc->err = deliver(r, &one.items[0], len);
	qgen_qlist_fini(&one);
	return sc->err == CM_OK && !atomic_load(&r->cancel);
}

static bool
on_delta(void *arg, const char *text, size_t len)
{
	stream_ctx *sc = arg;

	sc->bytes += len;
	return qgen_qscan_feed(&sc->scan, text, len);
}

/* A stream's outcome from what the client said and what the scanner saw. */
static void
stream_end(stream_ctx *sc, const cm_llm_req *rq, cm_llm_result *lr)
{
	qgen_batch_result *r = sc->r;

	if (r->err == CM_ECANCELED || (r->err != CM_OK && sc->bytes > 0)) {
		/* Cut off (cancelled, or broken mid-stream): its prompt and what it delivered. */
		lr->prompt_tokens = 0;
		for (size_t i = 0; i < rq->nmsgs; i++)
			lr->prompt_tokens += (int64_t)(strlen(rq->msgs[i].content) + 3) / 4;
		lr->completion_tokens = (int64_t)(sc->bytes + 3) / 4;
	}
	if (r->err == CM_ECANCELED) {
		if (sc->bytes > 0)
			cm_counter_add(sc->job->svc->streams_cut, 1);
		r->tail_tokens = (int64_t)(sc->bytes - sc->scan.last_end + 3) / 4;
		snprintf(r->why, sizeof(r->why), "canceled: its questions were not needed");
	} else if (sc->err != CM_OK) {
		r->err = sc->err;
		snprintf(r->why, sizeof(r->why), "%s", cm_strerror(r->err));
	} else if (sc->scan.emitted > 0 || (r->err == CM_OK && qgen_qscan_done(&sc->scan))) {
		if (r->err != CM_OK)
			cm_debug("QGEN-STREAM-SHORT",
			         "job %s batch %d: %s after %d questions; they are kept",
			         sc->job->job_id, r->plan.idx, cm_strerror(r->err),
			         sc->scan.emitted);
		r->err = CM_OK; /* what it wrote before it broke is usable */
	} else if (r->err == CM_OK || r->err == CM_EPROTO) {
		r->err = CM_EPROTO;
		snprintf(r->why, sizeof(r->why), "the answer has no \"questions\" array");
	} else {
		snprintf(r->why, sizeof(r->why), "%s",
		         lr->errmsg[0] != '\0' ? lr->errmsg : cm_strerror(r->err));
	}
}

/* One attempt: the model's answer parsed into r->qs; r->err and r->why say how it went. */
static void
attempt(const qgen_batch_job *job, const qgen_batch_plan *plan, const char *user,
        qgen_batch_result *r)
{
	const qgen_chunk *ch = &job->chunks[plan->chunk];
	qgen_batch_ctx    ctx = {QGEN_TYPE_MASK(plan->type), job->difficulty, ch->page_first,
	                         ch->page_last};
	cm_llm_msg        msgs[2] = {{"system", qgen_prompt_system()}, {"user", user}};
	cm_llm_req        rq;
	cm_llm_result     lr;
	stream_ctx        sc = {job, r, &ctx, {0}, 0, CM_OK};
	bool              stream = job->svc->cfg.stream;
	int64_t           t0 = cm_mono_ms();

	memset(&rq, 0, sizeof(rq));
	rq.msgs = msgs;
	rq.nmsgs = 2;
	rq.max_tokens = qgen_prompt_max_tokens(plan->count, plan->type);
	rq.temperature = 0.7;
	rq.json_mode = true;
	rq.cancel = &r->cancel;
	if (stream) {
		qgen_qscan_init(&sc.scan, on_object, &sc);
		rq.on_delta = on_delta;
		rq.arg = &sc;
	}
	cm_llm_result_init(&lr);
	cm_counter_add(job->svc->llm_calls, 1);
	r->err = cm_llm_chat(job->svc->llm, &rq, &lr);
	r->model = lr.model;
	if (stream)
		stream_end(&sc, &rq, &lr);
	r->prompt_tokens = lr.prompt_tokens;
	r->tokens += lr.prompt_tokens + lr.completion_tokens;
	cm_debug("QGEN-CALL", "job %s batch %d: %d questions, %s in %lld ms, %lld+%lld tokens",
	         job->job_id, plan->idx, plan->count, cm_strerror(r->err),
	         (long long)(cm_mono_ms() - t0), (long long)lr.prompt_tokens,
	         (long long)lr.completion_tokens);
	if (stream)
		qgen_qscan_fini(&sc.scan); /* r->err and r->why are set */
	else if (r->err == CM_ECANCELED)
		snprintf(r->why, sizeof(r->why), "canceled: a duplicate answered first");
	else if (r->err == CM_OK)
		r->err = qgen_parse_questions(lr.json, lr.json_len, &ctx, &r->qs, &r->rejected,
		                              r->why, sizeof(r->why));
	else
		snprintf(r->why, sizeof(r->why), "%s",
		         lr.errmsg[0] != '\0' ? lr.errmsg : cm_strerror(r->err));
	cm_llm_result_fini(&lr);
}

/* Keeps the questions that are true to the chunk the model read (grounding.h). */
static void
ground(const qgen_batch_job *job, qgen_batch_result *r)
{
	const qgen_chunk *ch = &job->chunks[r->plan.chunk];

	if ((r->err = qgen_ground_list(&r->qs, ch, 1, &job->svc->ground, r->verdicts)) != CM_OK) {
		snprintf(r->why, sizeof(r->why), "grounding: %s", cm_strerror(r->err));
		return;
	}
	if (r->verdicts[QGEN_UNGROUNDED] + r->verdicts[QGEN_AMBIGUOUS] > 0)
		cm_debug("QGEN-UNGROUNDED",
		         "job %s batch %d: %d questions not found on their page, %d ambiguous",
		         job->job_id, r->plan.idx, r->verdicts[QGEN_UNGROUNDED],
		         r->verdicts[QGEN_AMBIGUOUS]);
}

qgen_batch_result *
qgen_batch_result_alloc(const qgen_batch_plan *plan)
{
	qgen_batch_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->plan = *plan;
	atomic_init(&r->cancel, false);
	qgen_qlist_init(&r->qs);
	return r;
}

void
qgen_batch_result_free(qgen_batch_result *r)
{
	if (r == NULL)
		return;
	qgen_qlist_fini(&r->qs);
	free(r);
}

void
qgen_batch_call(void *arg, qgen_batch_result *r)
{
	const qgen_batch_job  *job = arg;
	const qgen_batch_plan *plan = &r->plan;
	qgen_prompt_req        pr = {plan->count, plan->type,    job->difficulty,
	                             job->topic,  plan->variant, &job->chunks[plan->chunk]};
	cm_buf                 user;

	cm_buf_init(&user, 1u << 20);
	if ((r->err = qgen_prompt_user(&pr, &user)) != CM_OK) {
		snprintf(r->why, sizeof(r->why), "prompt: %s", cm_strerror(r->err));
		goto out;
	}
	for (int i = 0; i < QGEN_REPAIR_TRIES; i++) {
		attempt(job, plan, user.data, r);
		if (r->err != CM_EPROTO || atomic_load(&r->cancel))
			break;
		cm_warn("QGEN-BAD-ANSWER", "job %s batch %d: %s; asking again", job->job_id,
		        plan->idx, r->why);
	}
	if (r->err == CM_OK && !job->svc->cfg.stream)
		ground(job, r); /* a stream's questions were grounded as they came */
out:
	cm_buf_fini(&user);
}
