/*
 * batch.c - one generation call (batch.h).
 *
 * DESIGN. The call is made on a pool thread and only reads the job's shared, immutable state;
 * everything it produces goes into its own result. A provider that answered prose or broken
 * JSON is asked once more here (QGEN_REPAIR_TRIES), since the LLM client retries transport
 * failures only: a second sample usually parses. Grounding runs here too, on the call's thread:
 * it reads only the chunk, and a dropped question is topped up like an invalid one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "batch.h"
#include "prompt.h"
#include "quality.h"

#define QGEN_REPAIR_TRIES 2 /* calls per batch when the answer is not usable JSON */

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
	int64_t           t0 = cm_mono_ms();

	memset(&rq, 0, sizeof(rq));
	rq.msgs = msgs;
	rq.nmsgs = 2;
	rq.max_tokens = qgen_prompt_max_tokens(plan->count, plan->type);
	rq.temperature = 0.7;
	rq.json_mode = true;
	rq.cancel = &r->cancel;
	cm_llm_result_init(&lr);
	cm_counter_add(job->svc->llm_calls, 1);
	r->err = cm_llm_chat(job->svc->llm, &rq, &lr);
	r->model = lr.model;
	r->tokens += lr.prompt_tokens + lr.completion_tokens;
	cm_debug("QGEN-CALL", "job %s batch %d: %d questions, %s in %lld ms, %lld+%lld tokens",
	         job->job_id, plan->idx, plan->count, cm_strerror(r->err),
	         (long long)(cm_mono_ms() - t0), (long long)lr.prompt_tokens,
	         (long long)lr.completion_tokens);
	if (r->err == CM_ECANCELED)
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
	if (r->err == CM_OK)
		ground(job, r);
out:
	cm_buf_fini(&user);
}
