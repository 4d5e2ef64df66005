/*
 * submit.c - eval.Submit: check the answers, find what they answer, score what needs no
 * model, store the attempt and, when open answers remain, its job.
 *
 * DESIGN. Everything cheap happens here, synchronously: limits, UTF-8, duplicate and unknown
 * question ids, the question set (svc-qgen, with answers, as the owner: another user's set is
 * NOT_FOUND there) or the legacy document (svc-pdf: pdf.Get, or pdf.Selected), multiple choice
 * by index, letter or option text, empty answers. Open answers are stored "pending" and one
 * durable job grades them (runner.c); the attempt, its results and the job are written in one
 * transaction, under a per-owner advisory lock that makes the quota check and the insert one
 * decision. An attempt with nothing left for the model is finished here, with no job and no
 * call.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "handlers.h"
#include "score.h"
#include "server.h"
#include "text.h"

typedef struct submit {
	cm_rpc_ctx                *ctx;
	eval_worker               *w;
	const Eval__SubmitRequest *rq;
	eval_attempt_row           a;
	size_t                     pending;
	ProtobufCMessage          *upstream; /* the set or document response (freed at the end) */
} submit;

static bool
blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/* Checks one text field: at most max bytes of valid UTF-8. */
static cm_err
check_text(submit *sb, const char *what, size_t i, const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len > max)
		return cm_rpc_fail(sb->ctx, CM_EINVAL, "answer %zu: %s is longer than %zu bytes",
		                   i + 1, what, max);
	if (!eval_utf8_valid(s, len))
		return cm_rpc_fail(sb->ctx, CM_EINVAL, "answer %zu: %s is not valid UTF-8", i + 1,
		                   what);
	return CM_OK;
}

/* Question ids are unique within an attempt ("" is allowed, and never a duplicate). */
static cm_err
check_ids(submit *sb, char *const *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cm_err err;
		if ((err = check_text(sb, "question_id", i, ids[i], EVAL_MAX_ID_BYTES)) != CM_OK)
			return err;
		if (ids[i][0] == '\0')
			continue;
		for (size_t k = 0; k < i; k++)
			if (strcmp(ids[i], ids[k]) == 0)
				return cm_rpc_fail(sb->ctx, CM_EINVAL,
				                   "answer %zu: question %.64s is answered twice",
				                   i + 1, ids[i]);
	}
	return CM_OK;
}

/* Sets a result's texts (copied). False on OOM. */
static bool
set_texts(eval_result_row *r, const char *qid, const char *question, const char *reference,
          const char *answer)
{
	r->question_id = strdup(qid);
	r->question = strdup(question);
	r->reference = strdup(reference);
	r->answer = strdup(answer);
	r->feedback = strdup("");
	r->suggestions = strdup("");
	r->hint = strdup("");
	r->error = strdup("");
	r->source = strdup("");
	return r->question_id != NULL && r->question != NULL && r->reference != NULL &&
	       r->answer != NULL && r->feedback != NULL && r->suggestions != NULL &&
	       r->hint != NULL && r->error != NULL && r->source != NULL;
}

static bool
replace(char **field, const char *s)
{
	char *c = strdup(s);

	if (c == NULL)
		return false;
	free(*field);
	*field = c;
	return true;
}

/* An answer scored by rule: empty, or multiple choice. */
static bool
ruled(eval_result_row *r, int score, bool correct, const char *feedback, const char *suggestions,
      const char *hint)
{
	r->status = EVAL_GRADED;
	r->score = score;
	r->correct = correct;
	return replace(&r->feedback, feedback) && replace(&r->suggestions, suggestions) &&
	       replace(&r->hint, hint) && replace(&r->source, "rule");
}

static bool
empty_answer(eval_result_row *r)
{
	char   hint[240];
	size_t keep = eval_utf8_clip(r->reference, 200);

	snprintf(hint, sizeof(hint), "%s%.*s%s", keep > 0 ? "A good answer: " : "", (int)keep,
	         r->reference, r->reference[keep] != '\0' ? "..." : "");
	return ruled(r, 0, false, "No answer given.", "Answer every question, even partly.", hint);
}

/* Scores a multiple-choice answer: chosen (-1: none of the options) against right. */
static bool
score_mcq(eval_result_row *r, int chosen, int right, char *const *options, size_t n, bool labelled,
          const char *explanation, int page)
{
	char right_text[1200], fb[2400], sug[96];

	if (labelled || n == 0)
		snprintf(right_text, sizeof(right_text), "%s",
		         n > 0 ? options[right] : (char[]){(char)('A' + right), '\0'});
	else
		snprintf(right_text, sizeof(right_text), "%c) %s", 'A' + right, options[right]);
	if (chosen == right) {
		snprintf(fb, sizeof(fb), "Correct.%s%s", explanation[0] != '\0' ? " " : "",
		         explanation);
		return ruled(r, 10, true, fb, "", right_text);
	}
	snprintf(fb, sizeof(fb), "%s The correct answer is %s.%s%s",
	         chosen < 0 ? "Your answer is not one of the options." : "Incorrect.", right_text,
	         explanation[0] != '\0' ? " " : "", explanation);
	if (page > 0)
		snprintf(sug, sizeof(sug), "Review page %d of the document.", page);
	else
		snprintf(sug, sizeof(sug),
		         "Review the part of the document this question is about.");
	return ruled(r, 0, false, fb, sug, right_text);
}

static int64_t
upstream_deadline(const cm_rpc_ctx *ctx)
{
	int64_t d = cm_now_ms() + EVAL_UPSTREAM_TIMEOUT_MS;

	return ctx->deadline_ms > 0 && ctx->deadline_ms < d ? ctx->deadline_ms : d;
}

/* ---- v1: answers to a question set ----------------------------------------------------------- */

static cm_err
fetch_set(submit *sb, Qgen__QuestionSet **set)
{
	Qgen__GetSetRequest gq = QGEN__GET_SET_REQUEST__INIT;
	cm_rpc_call_opts    o = {0};
	cm_rpc_result       res;
	cm_err              err;

	*set = NULL;
	if (!cm_uuid_valid(sb->rq->question_set_id))
		return cm_rpc_fail(sb->ctx, CM_ENOTFOUND, "no such question set");
	gq.id = sb->rq->question_set_id;
	gq.include_answers = true;
	o.method = "qgen.GetSet";
	o.request_id = sb->ctx->request_id;
	o.subject = sb->ctx->subject;
	o.deadline_ms = upstream_deadline(sb->ctx);
	o.idempotent = true;
	err = cm_rpc_call(sb->w->svc->qgen, &o, &gq.base, &qgen__question_set__descriptor,
	                  &sb->upstream, &res);
	if (err == CM_ENOTFOUND)
		cm_rpc_fail(sb->ctx, err, "no such question set");
	else if (err != CM_OK)
		cm_rpc_fail(sb->ctx, CM_EUNAVAIL, "question sets unavailable: %s", res.message);
	cm_rpc_result_fini(&res);
	if (err != CM_OK)
		return err;
	*set = (Qgen__QuestionSet *)sb->upstream;
	if (strcmp((*set)->status, "succeeded") != 0)
		return cm_rpc_fail(sb->ctx, CM_EPRECOND, "the question set is not ready (%s)",
		                   (*set)->status);
	return CM_OK;
}

static cm_err
build_v1(submit *sb)
{
	const Eval__SubmitRequest *rq = sb->rq;
	Qgen__QuestionSet         *set = NULL;
	char                     **ids = NULL;
	bool                      *answered = NULL;
	size_t                     n = 0;
	cm_err                     err;

	if ((err = fetch_set(sb, &set)) != CM_OK)
		return err;
	snprintf(sb->a.set_id, sizeof(sb->a.set_id), "%s", set->id);
	snprintf(sb->a.document_id, sizeof(sb->a.document_id), "%s", set->document_id);
	if ((ids = calloc(rq->n_answers + 1, sizeof(char *))) == NULL ||
	    (answered = calloc(set->n_questions + 1, sizeof(bool))) == NULL ||
	    (sb->a.results =
	         calloc(rq->n_answers + set->n_questions + 1, sizeof(eval_result_row))) == NULL) {
		err = cm_rpc_fail(sb->ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rq->n_answers; i++)
		ids[i] = rq->answers[i]->question_id;
	if ((err = check_ids(sb, ids, rq->n_answers)) != CM_OK)
		goto out;
	for (size_t i = 0; i < rq->n_answers; i++) {
		const Eval__Answer *an = rq->answers[i];
		size_t              k = 0;
		char                num[16] = "";
		const char         *text = "";

		while (k < set->n_questions && strcmp(set->questions[k]->id, an->question_id) != 0)
			k++;
		if (k == set->n_questions) {
			err = cm_rpc_fail(sb->ctx, CM_EINVAL,
			                  "answer %zu: question %.64s is not in this set", i + 1,
			                  an->question_id);
			goto out;
		}
		answered[k] = true;
		if (an->value_case == EVAL__ANSWER__VALUE_TEXT) {
			text = an->text;
			if ((err = check_text(sb, "answer", i, text, EVAL_MAX_ANSWER_BYTES)) !=
			    CM_OK)
				goto out;
		}
		const Qgen__Question *q = set->questions[k];
		eval_result_row      *r = &sb->a.results[n++];
		bool                  mcq = strcmp(q->type, "mcq") == 0;
		r->idx = (int)i;
		r->type = mcq ? EVAL_MCQ : EVAL_OPEN;
		r->page = q->page;
		if (mcq && an->value_case == EVAL__ANSWER__VALUE_OPTION_INDEX &&
		    (an->option_index < 0 || (size_t)an->option_index >= q->n_options)) {
			err = cm_rpc_fail(
			    sb->ctx, CM_EINVAL, "answer %zu: option index %d is out of range 0-%zu",
			    i + 1, an->option_index, q->n_options > 0 ? q->n_options - 1 : 0);
			goto out;
		}
		if (!mcq && an->value_case == EVAL__ANSWER__VALUE_OPTION_INDEX) {
			snprintf(num, sizeof(num), "%d", an->option_index); /* "answer": 42 */
			text = num;
		}
		if (!set_texts(r, an->question_id, q->text, mcq ? "" : q->reference, text))
			goto oom;
		bool empty = an->value_case == EVAL__ANSWER__VALUE__NOT_SET ||
		             (an->value_case == EVAL__ANSWER__VALUE_TEXT && blank(text));
		if (mcq) {
			int  chosen = an->value_case == EVAL__ANSWER__VALUE_OPTION_INDEX
			                  ? an->option_index
			                  : eval_mcq_choice(text, q->options, q->n_options);
			bool ok = empty ? empty_answer(r)
			                : score_mcq(r, chosen, q->answer_index, q->options,
			                            q->n_options, false, q->explanation, q->page);
			if (!ok)
				goto oom;
		} else if (empty) {
			if (!empty_answer(r))
				goto oom;
		} else {
			r->status = EVAL_PENDING;
			r->via_model = true;
			sb->pending++;
		}
	}
	/* A question left out counts as an unanswered one: 0 of 10, no call. */
	for (size_t k = 0; k < set->n_questions; k++) {
		const Qgen__Question *q = set->questions[k];
		eval_result_row      *r;

		if (answered[k])
			continue;
		r = &sb->a.results[n];
		r->idx = (int)n++;
		r->type = strcmp(q->type, "mcq") == 0 ? EVAL_MCQ : EVAL_OPEN;
		r->page = q->page;
		if (!set_texts(r, q->id, q->text, r->type == EVAL_MCQ ? "" : q->reference, "") ||
		    !empty_answer(r))
			goto oom;
	}
	goto out;
oom:
	err = cm_rpc_fail(sb->ctx, CM_ENOMEM, "out of memory");
out:
	sb->a.n_results = n;
	free(ids);
	free(answered);
	return err;
}

/* ---- legacy: inline items graded against the caller's document ------------------------------- */

static cm_err
find_document(submit *sb)
{
	cm_rpc_call_opts o = {0};
	cm_rpc_result    res;
	cm_err           err;
	const char      *id = NULL, *sha = "";

	o.request_id = sb->ctx->request_id;
	o.subject = sb->ctx->subject;
	o.deadline_ms = upstream_deadline(sb->ctx);
	o.idempotent = true;
	if (sb->rq->document_id[0] != '\0') {
		Pdf__GetRequest gq = PDF__GET_REQUEST__INIT;
		if (!cm_uuid_valid(sb->rq->document_id))
			return cm_rpc_fail(sb->ctx, CM_ENOTFOUND, "no such document");
		gq.id = sb->rq->document_id;
		o.method = "pdf.Get";
		err = cm_rpc_call(sb->w->svc->pdf, &o, &gq.base, &pdf__document__descriptor,
		                  &sb->upstream, &res);
		if (err == CM_OK) {
			id = ((Pdf__Document *)sb->upstream)->id;
			sha = ((Pdf__Document *)sb->upstream)->sha256;
		}
	} else {
		Pdf__SelectedRequest sq = PDF__SELECTED_REQUEST__INIT;
		o.method = "pdf.Selected";
		err = cm_rpc_call(sb->w->svc->pdf, &o, &sq.base,
		                  &pdf__selected_response__descriptor, &sb->upstream, &res);
		if (err == CM_OK) {
			Pdf__SelectedResponse *sr = (Pdf__SelectedResponse *)sb->upstream;
			if (sr->document == NULL)
				err = CM_EPRECOND;
			else {
				id = sr->document->id;
				sha = sr->document->sha256;
			}
		}
	}
	if (err == CM_OK) {
		snprintf(sb->a.document_id, sizeof(sb->a.document_id), "%s", id);
		snprintf(sb->a.document_sha256, sizeof(sb->a.document_sha256), "%s", sha);
	} else if (err == CM_ENOTFOUND)
		cm_rpc_fail(sb->ctx, err, "no such document");
	else if (err == CM_EPRECOND)
		cm_rpc_fail(sb->ctx, err, "No PDF selected");
	else
		cm_rpc_fail(sb->ctx, CM_EUNAVAIL, "documents unavailable: %s", res.message);
	cm_rpc_result_fini(&res);
	return err == CM_OK ? CM_OK : err == CM_ENOTFOUND || err == CM_EPRECOND ? err : CM_EUNAVAIL;
}

static cm_err
check_item(submit *sb, size_t i, const Eval__InlineItem *it)
{
	cm_err err;

	if (blank(it->question))
		return cm_rpc_fail(sb->ctx, CM_EINVAL, "answer %zu: the question is empty", i + 1);
	if (strcmp(it->question_type, "") != 0 && strcmp(it->question_type, "mcq") != 0 &&
	    strcmp(it->question_type, "open") != 0)
		return cm_rpc_fail(sb->ctx, CM_EINVAL,
		                   "answer %zu: question_type must be mcq or open", i + 1);
	if (it->n_options > EVAL_MAX_OPTIONS)
		return cm_rpc_fail(sb->ctx, CM_EINVAL, "answer %zu: more than %d options", i + 1,
		                   EVAL_MAX_OPTIONS);
	if ((err = check_text(sb, "question", i, it->question, EVAL_MAX_QUESTION_BYTES)) != CM_OK ||
	    (err = check_text(sb, "answer", i, it->user_answer, EVAL_MAX_ANSWER_BYTES)) != CM_OK ||
	    (err = check_text(sb, "correct_answer", i, it->correct_answer,
	                      EVAL_MAX_QUESTION_BYTES)) != CM_OK)
		return err;
	for (size_t k = 0; k < it->n_options; k++)
		if ((err = check_text(sb, "option", i, it->options[k], EVAL_MAX_OPTION_BYTES)) !=
		    CM_OK)
			return err;
	return CM_OK;
}

/* An MCQ whose key cannot be read is graded as an open question that lists its options. */
static cm_err
question_with_options(const Eval__InlineItem *it, cm_buf *out)
{
	cm_err err;

	if ((err = cm_buf_appends(out, it->question)) != CM_OK)
		return err;
	for (size_t k = 0; k < it->n_options; k++)
		if ((err = cm_buf_printf(out, "%s%s", k == 0 ? "\nOptions: " : "; ",
		                         it->options[k])) != CM_OK)
			return err;
	return CM_OK;
}

static cm_err
build_legacy(submit *sb)
{
	const Eval__SubmitRequest *rq = sb->rq;
	char                     **ids = NULL;
	cm_buf                     q;
	cm_err                     err;

	cm_buf_init(&q,
	            EVAL_MAX_QUESTION_BYTES + EVAL_MAX_OPTIONS * (EVAL_MAX_OPTION_BYTES + 2) + 16);
	if ((ids = calloc(rq->n_items + 1, sizeof(char *))) == NULL ||
	    (sb->a.results = calloc(rq->n_items + 1, sizeof(eval_result_row))) == NULL) {
		err = cm_rpc_fail(sb->ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rq->n_items; i++) {
		ids[i] = rq->items[i]->question_id;
		if ((err = check_item(sb, i, rq->items[i])) != CM_OK)
			goto out;
	}
	if ((err = check_ids(sb, ids, rq->n_items)) != CM_OK || (err = find_document(sb)) != CM_OK)
		goto out;
	for (size_t i = 0; i < rq->n_items; i++) {
		const Eval__InlineItem *it = rq->items[i];
		eval_result_row        *r = &sb->a.results[sb->a.n_results++];
		int  right = eval_mcq_choice(it->correct_answer, it->options, it->n_options);
		bool mcq = right >= 0 && (strcmp(it->question_type, "mcq") == 0 ||
		                          (it->question_type[0] == '\0' && it->n_options > 0));
		bool keyless = !mcq && strcmp(it->question_type, "mcq") == 0;
		bool ok;

		r->idx = (int)i;
		r->type = mcq ? EVAL_MCQ : EVAL_OPEN;
		cm_buf_reset(&q);
		if ((err = keyless ? question_with_options(it, &q)
		                   : cm_buf_appends(&q, it->question)) != CM_OK)
			goto oom;
		if (!set_texts(r, it->question_id, q.data, mcq || keyless ? "" : it->correct_answer,
		               it->user_answer))
			goto oom;
		if (blank(it->user_answer))
			ok = empty_answer(r);
		else if (mcq)
			ok = score_mcq(r,
			               eval_mcq_choice(it->user_answer, it->options, it->n_options),
			               right, it->options, it->n_options, true, "", 0);
		else {
			r->status = EVAL_PENDING;
			r->via_model = true;
			sb->pending++;
			ok = true;
		}
		if (!ok)
			goto oom;
	}
	err = CM_OK;
	goto out;
oom:
	err = cm_rpc_fail(sb->ctx, CM_ENOMEM, "out of memory");
out:
	cm_buf_fini(&q);
	free(ids);
	return err;
}

/* ---- the attempt ----------------------------------------------------------------------------- */

static void
count_answers(submit *sb)
{
	eval_service *s = sb->w->svc;

	for (size_t i = 0; i < sb->a.n_results; i++)
		cm_counter_add(sb->a.results[i].type == EVAL_MCQ ? s->answers_mcq : s->answers_open,
		               1);
}

/* The summary of an attempt finished here (scores only). */
static cm_err
summarize(submit *sb)
{
	eval_scored *sc = calloc(sb->a.n_results + 1, sizeof(*sc));
	cm_err       err;

	if (sc == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < sb->a.n_results; i++) {
		const eval_result_row *r = &sb->a.results[i];
		sc[i] = (eval_scored){r->question, r->type == EVAL_MCQ, r->score, true, r->page};
	}
	err = eval_summarize(sc, sb->a.n_results, &sb->a.overall);
	free(sc);
	return err;
}

/* Inserts the attempt (and its job when answers are pending) in one transaction. */
static cm_err
store(submit *sb)
{
	eval_service *s = sb->w->svc;
	eval_worker  *w = sb->w;
	int           active = 0;
	cm_err        err;

	if ((err = cm_pg_begin(w->pg)) != CM_OK)
		goto fail;
	if (sb->pending > 0) {
		char job[CM_UUID_LEN + 1];
		if ((err = eval_store_lock_owner(w->pg, sb->a.owner)) != CM_OK ||
		    (err = eval_store_active(w->pg, sb->a.owner, &active)) != CM_OK)
			goto fail;
		if (active >= s->cfg.user_active_max) {
			cm_pg_rollback(w->pg);
			cm_counter_add(s->quota_refused, 1);
			sb->ctx->retry_after_s = (int32_t)s->cfg.retry_after_s;
			return cm_rpc_fail(
			    sb->ctx, CM_ELIMIT,
			    "%d attempts are being graded already; try again shortly", active);
		}
		if ((err = cm_jobs_create(w->jobs, EVAL_JOB_KIND, sb->a.owner, sb->a.id,
		                          strlen(sb->a.id), 1, job)) != CM_OK ||
		    (err = cm_jobs_set_result_id(w->jobs, job, sb->a.id)) != CM_OK)
			goto fail;
		snprintf(sb->a.job_id, sizeof(sb->a.job_id), "%s", job);
	}
	if ((err = eval_store_insert_attempt(w->pg, &sb->a)) != CM_OK ||
	    (err = cm_pg_commit(w->pg)) != CM_OK)
		goto fail;
	return CM_OK;
fail:
	cm_pg_rollback(w->pg);
	if (err == CM_ENOTFOUND) /* the document's deletion was applied since svc-pdf answered */
		return cm_rpc_fail(sb->ctx, CM_ENOTFOUND, "no such document");
	cm_warn("EVAL-SUBMIT-STORE", "cannot store an attempt: %s (%s)", cm_strerror(err),
	        cm_pg_errmsg(w->pg));
	return cm_rpc_fail(sb->ctx, err == CM_EUNAVAIL || err == CM_ETIMEDOUT ? err : CM_EINTERNAL,
	                   "cannot store the attempt: %s", cm_strerror(err));
}

cm_err
eval_handle_submit(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Eval__SubmitRequest *rq = req;
	submit                     sb;
	eval_service              *s;
	eval_attempt_row           back;
	bool                       v1 = rq->question_set_id[0] != '\0' || rq->n_answers > 0;
	size_t                     n = v1 ? rq->n_answers : rq->n_items;
	cm_err                     err;

	memset(&sb, 0, sizeof(sb));
	memset(&back, 0, sizeof(back));
	sb.ctx = ctx;
	sb.w = ctx->worker_state;
	sb.rq = rq;
	if (sb.w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	s = sb.w->svc;
	if (ctx->subject[0] == '\0' || strlen(ctx->subject) >= sizeof(sb.a.owner))
		return cm_rpc_fail(ctx, CM_EAUTH, "not authenticated");
	if (v1 && rq->n_items > 0)
		return cm_rpc_fail(ctx, CM_EINVAL,
		                   "give answers to a question set or inline items, not both");
	if (n == 0)
		return cm_rpc_fail(ctx, CM_EINVAL, "no answers");
	if (n > EVAL_MAX_ANSWERS)
		return cm_rpc_fail(ctx, CM_EINVAL, "at most %d answers per attempt (got %zu)",
		                   EVAL_MAX_ANSWERS, n);
	if (!eval_strictness_parse(rq->strictness, &sb.a.strictness))
		return cm_rpc_fail(ctx, CM_EINVAL, "strictness must be easy, medium or strict");
	if (strlen(rq->topic) > EVAL_MAX_TOPIC || !eval_utf8_valid(rq->topic, strlen(rq->topic)))
		return cm_rpc_fail(ctx, CM_EINVAL, "topic must be at most %d bytes of UTF-8",
		                   EVAL_MAX_TOPIC);

	cm_uuid_v4(sb.a.id);
	snprintf(sb.a.owner, sizeof(sb.a.owner), "%s", ctx->subject);
	snprintf(sb.a.topic, sizeof(sb.a.topic), "%s", rq->topic);
	sb.a.want_overall = rq->overall;
	if ((err = v1 ? build_v1(&sb) : build_legacy(&sb)) != CM_OK)
		goto out;
	if (sb.pending == 0) {
		snprintf(sb.a.status, sizeof(sb.a.status), "succeeded");
		if (rq->overall) {
			if ((err = summarize(&sb)) != CM_OK) {
				err = cm_rpc_fail(ctx, err, "out of memory");
				goto out;
			}
			sb.a.overall_done = true;
		}
	} else {
		snprintf(sb.a.status, sizeof(sb.a.status), "queued");
	}
	if ((err = store(&sb)) != CM_OK)
		goto out;
	cm_counter_add(s->attempts, 1);
	count_answers(&sb);
	cm_info("EVAL-SUBMIT", "attempt %s (%s): %zu answers, %zu for the model, job %s", sb.a.id,
	        v1 ? "v1" : "legacy", sb.a.n_results, sb.pending,
	        sb.a.job_id[0] != '\0' ? sb.a.job_id : "none");
	if ((err = eval_store_get_attempt(sb.w->pg, sb.a.id, NULL, true, &back)) != CM_OK) {
		err = cm_rpc_fail(ctx, err == CM_EUNAVAIL ? err : CM_EINTERNAL,
		                  "the attempt was stored but cannot be read back");
		goto out;
	}
	if ((err = eval_fill_attempt(ctx, &back, resp)) != CM_OK)
		err = cm_rpc_fail(ctx, err, "out of memory");
out:
	eval_attempt_row_fini(&back);
	eval_attempt_row_fini(&sb.a);
	if (sb.upstream != NULL)
		protobuf_c_message_free_unpacked(sb.upstream, NULL);
	return err;
}
