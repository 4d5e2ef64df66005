/*
 * handlers.c - eval.GetAttempt and eval.GetJob, and the Attempt response both they and Submit
 * answer with (submit.c has Submit).
 *
 * DESIGN. The totals are computed from the results each time, never stored: the per-answer rows
 * are the truth, so a partly graded attempt reads right at every moment. Responses point into
 * the per-call arena.
 */
#include <stdio.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "handlers.h"
#include "score.h"
#include "server.h"

/* Copies a list into the arena; false on OOM. */
static bool
fill_list(cm_rpc_ctx *ctx, char *const *v, size_t n, char ***out, size_t *nout)
{
	*nout = 0;
	if (n == 0)
		return true;
	if ((*out = cm_rpc_alloc(ctx, n * sizeof(char *))) == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (((*out)[i] = cm_rpc_strdup(ctx, v[i])) == NULL)
			return false;
	*nout = n;
	return true;
}

static cm_err
fill_result(cm_rpc_ctx *ctx, const eval_result_row *r, Eval__Result *x)
{
	eval__result__init(x);
	x->question_id = cm_rpc_strdup(ctx, r->question_id);
	x->type = (char *)eval_type_name(r->type);
	x->status = (char *)eval_status_name(r->status);
	x->score = r->status == EVAL_GRADED ? r->score : 0;
	x->max_score = 10;
	x->correct = r->type == EVAL_MCQ ? r->correct : r->status == EVAL_GRADED && r->score >= 6;
	x->feedback = cm_rpc_strdup(ctx, r->feedback);
	x->suggestions = cm_rpc_strdup(ctx, r->suggestions);
	x->hint = cm_rpc_strdup(ctx, r->hint);
	x->error = cm_rpc_strdup(ctx, r->error);
	if (x->question_id == NULL || x->feedback == NULL || x->suggestions == NULL ||
	    x->hint == NULL || x->error == NULL)
		return CM_ENOMEM;
	return CM_OK;
}

cm_err
eval_fill_attempt(cm_rpc_ctx *ctx, const eval_attempt_row *a, Eval__Attempt *out)
{
	eval_worker *w = ctx->worker_state;
	const char  *status = a->status;
	const char  *error = a->error;
	int          score = 0;

	/* A job that ended without its attempt: the runner died for good or it was cancelled. */
	if (a->job_id[0] != '\0' &&
	    (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)) {
		cm_jobs_info info;
		if (cm_jobs_get(w->jobs, a->job_id, NULL, &info) == CM_OK &&
		    (info.status == CM_JOB_FAILED || info.status == CM_JOB_CANCELLED)) {
			status = "failed";
			error = cm_rpc_strdup(ctx, info.error[0] != '\0' ? info.error
			                                                 : "grading was stopped");
		}
	}
	out->id = cm_rpc_strdup(ctx, a->id);
	out->question_set_id = cm_rpc_strdup(ctx, a->set_id);
	out->document_id = cm_rpc_strdup(ctx, a->document_id);
	out->job_id = cm_rpc_strdup(ctx, a->job_id);
	out->status = cm_rpc_strdup(ctx, status);
	out->error = error != NULL ? cm_rpc_strdup(ctx, error) : NULL;
	out->strictness = (char *)eval_strictness_name(a->strictness);
	out->created_at = cm_rpc_strdup(ctx, a->created_at);
	out->updated_at = cm_rpc_strdup(ctx, a->updated_at);
	out->overall_feedback =
	    cm_rpc_strdup(ctx, a->overall.feedback != NULL ? a->overall.feedback : "");
	if (out->id == NULL || out->question_set_id == NULL || out->document_id == NULL ||
	    out->job_id == NULL || out->status == NULL || out->error == NULL ||
	    out->created_at == NULL || out->updated_at == NULL || out->overall_feedback == NULL ||
	    !fill_list(ctx, a->overall.strengths, a->overall.n_strengths, &out->strengths,
	               &out->n_strengths) ||
	    !fill_list(ctx, a->overall.areas, a->overall.n_areas, &out->areas_for_improvement,
	               &out->n_areas_for_improvement) ||
	    !fill_list(ctx, a->overall.study, a->overall.n_study, &out->study_suggestions,
	               &out->n_study_suggestions))
		return CM_ENOMEM;
	if (a->n_results > 0 &&
	    (out->results = cm_rpc_alloc(ctx, a->n_results * sizeof(*out->results))) == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < a->n_results; i++) {
		Eval__Result *x = cm_rpc_alloc(ctx, sizeof(*x));
		if (x == NULL || fill_result(ctx, &a->results[i], x) != CM_OK)
			return CM_ENOMEM;
		out->results[out->n_results++] = x;
		score += x->score;
	}
	out->score = score;
	out->max_score = 10 * (int)a->n_results;
	out->percentage = eval_percentage(out->score, out->max_score);
	out->grade = (char *)eval_grade_letter(out->percentage);
	return CM_OK;
}

cm_err
eval_handle_get_attempt(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Eval__AttemptRef *rq = req;
	eval_worker            *w = ctx->worker_state;
	eval_attempt_row        a;
	cm_err                  err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if ((err = eval_store_get_attempt(w->pg, rq->id, ctx->subject, true, &a)) != CM_OK)
		return cm_rpc_fail(
		    ctx, err == CM_ENOTFOUND || err == CM_EUNAVAIL ? err : CM_EINTERNAL,
		    err == CM_ENOTFOUND ? "no such attempt" : "database unavailable");
	err = eval_fill_attempt(ctx, &a, resp);
	eval_attempt_row_fini(&a);
	return err != CM_OK ? cm_rpc_fail(ctx, err, "out of memory") : CM_OK;
}

cm_err
eval_handle_get_job(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Eval__JobRef *rq = req;
	Eval__Job          *job = resp;
	eval_worker        *w = ctx->worker_state;
	cm_jobs_info        info;
	char                attempt[CM_UUID_LEN + 1], created[32], updated[32];
	int                 done = 0, total = 0;
	cm_err              err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if (!cm_uuid_valid(rq->id))
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such job");
	if ((err = cm_jobs_get(w->jobs, rq->id, ctx->subject, &info)) != CM_OK)
		return cm_rpc_fail(ctx, err == CM_ENOTFOUND ? err : CM_EUNAVAIL,
		                   err == CM_ENOTFOUND ? "no such job" : "database unavailable");
	if ((err = eval_store_job_progress(w->pg, rq->id, attempt, &done, &total)) != CM_OK)
		return cm_rpc_fail(ctx, err == CM_ENOTFOUND ? CM_EINTERNAL : err,
		                   "the job's attempt is missing");
	cm_format_time_ms(info.created_ms, created);
	cm_format_time_ms(info.updated_ms, updated);
	job->id = cm_rpc_strdup(ctx, info.id);
	job->kind = cm_rpc_strdup(ctx, info.kind);
	job->status = (char *)cm_job_status_name(info.status);
	job->done = done;
	job->total = total;
	job->result_id = cm_rpc_strdup(ctx, attempt);
	job->error = cm_rpc_strdup(ctx, info.error);
	job->created_at = cm_rpc_strdup(ctx, created);
	job->updated_at = cm_rpc_strdup(ctx, updated);
	if (job->id == NULL || job->kind == NULL || job->result_id == NULL || job->error == NULL ||
	    job->created_at == NULL || job->updated_at == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	return CM_OK;
}
