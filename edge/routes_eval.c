/*
 * routes_eval.c - grading routes: v1 attempts, and the legacy synchronous
 * POST /api/chat/evaluate-quiz and /api/chat/evaluate-answer.
 *
 * DESIGN. The edge translates and relays; svc-eval validates, scores and grades. v1 answers
 * {"question_id","answer": option index or text} become eval.Answer (the oneof says which);
 * the legacy bodies become inline items graded against the caller's selected PDF. The legacy
 * routes answer only when every answer is graded: they submit, then poll eval.GetAttempt on a
 * timer (poll.h). An attempt with an answer that could not be graded is 503 with the reason:
 * the legacy shape has no field for "not graded", and a made-up number is never an answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "poll.h"
#include "proto/common.pb-c.h"
#include "proto/eval.pb-c.h"
#include "routes_eval.h"
#include "routes_qgen.h"

#define LEGACY_MAX_ID 128 /* a legacy question id given as a number or a string */

/* ---- JSON shapes ----------------------------------------------------------------------------- */

static json_t *
strings_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *
result_v1_json(const Eval__Result *x)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:b, s:s}", "question_id", x->question_id,
	                      "type", x->type, "status", x->status, "max_score", (int)x->max_score,
	                      "correct", x->correct, "feedback", x->feedback);

	if (o == NULL)
		return NULL;
	json_object_set_new(
	    o, "score", strcmp(x->status, "graded") == 0 ? json_integer(x->score) : json_null());
	if (x->suggestions[0] != '\0')
		json_object_set_new(o, "suggestions", json_string(x->suggestions));
	if (x->hint[0] != '\0')
		json_object_set_new(o, "hint", json_string(x->hint));
	if (x->error[0] != '\0')
		json_object_set_new(o, "error", json_string(x->error));
	return o;
}

/* ATTEMPT of api-v1.md, plus the overall lists and per-answer status. */
static json_t *
attempt_v1_json(const Eval__Attempt *a)
{
	json_t *results = json_array();
	json_t *o;

	for (size_t i = 0; i < a->n_results; i++)
		json_array_append_new(results, result_v1_json(a->results[i]));
	o = json_pack("{s:s, s:s, s:i, s:i, s:f, s:s, s:o, s:s, s:s, s:s, s:s}", "id", a->id,
	              "status", a->status, "score", (int)a->score, "max_score", (int)a->max_score,
	              "percentage", a->percentage, "grade", a->grade, "results", results,
	              "overall_feedback", a->overall_feedback, "strictness", a->strictness,
	              "created_at", a->created_at, "updated_at", a->updated_at);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "question_set_id",
	                    a->question_set_id[0] != '\0' ? json_string(a->question_set_id)
	                                                  : json_null());
	json_object_set_new(o, "job_id",
	                    a->job_id[0] != '\0' ? json_string(a->job_id) : json_null());
	json_object_set_new(o, "strengths", strings_json(a->strengths, a->n_strengths));
	json_object_set_new(o, "areas_for_improvement",
	                    strings_json(a->areas_for_improvement, a->n_areas_for_improvement));
	json_object_set_new(o, "study_suggestions",
	                    strings_json(a->study_suggestions, a->n_study_suggestions));
	if (a->error[0] != '\0')
		json_object_set_new(o, "error", json_string(a->error));
	return o;
}

/* ---- v1 ----------------------------------------------------------------------------------------
 */

/* One v1 answer: {"question_id": str, "answer": option index or text}. */
static bool
answer_from_json(edge_req *r, json_t *v, Eval__Answer *a, const char **why)
{
	json_t *id = json_object_get(v, "question_id"), *ans = json_object_get(v, "answer");

	eval__answer__init(a);
	if (!json_is_object(v) || !json_is_string(id)) {
		*why = "each answer needs a question_id (string)";
		return false;
	}
	a->question_id = cm_arena_strndup(&r->arena, json_string_value(id), json_string_length(id));
	if (json_is_integer(ans)) {
		if (json_integer_value(ans) < 0 || json_integer_value(ans) > INT32_MAX) {
			*why = "an option index is 0 or more";
			return false;
		}
		a->value_case = EVAL__ANSWER__VALUE_OPTION_INDEX;
		a->option_index = (int32_t)json_integer_value(ans);
	} else if (json_is_string(ans) || ans == NULL || json_is_null(ans)) {
		a->value_case = EVAL__ANSWER__VALUE_TEXT;
		a->text = ans != NULL && json_is_string(ans)
		              ? cm_arena_strndup(&r->arena, json_string_value(ans),
		                                 json_string_length(ans))
		              : cm_arena_strndup(&r->arena, "", 0);
	} else {
		*why = "an answer is an option index or a text";
		return false;
	}
	if (a->question_id == NULL ||
	    (a->value_case == EVAL__ANSWER__VALUE_TEXT && a->text == NULL)) {
		*why = "out of memory";
		return false;
	}
	return true;
}

/* Copies an optional string member into the arena; "" when absent; false when not a string. */
static bool
opt_string(edge_req *r, json_t *obj, const char *key, char **out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		*out = (char *)"";
		return true;
	}
	if (!json_is_string(v))
		return false;
	*out = cm_arena_strndup(&r->arena, json_string_value(v), json_string_length(v));
	return *out != NULL;
}

void
edge_start_attempt_create(edge_req *r)
{
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	json_t             *body, *answers;
	const char         *why = NULL;

	if ((body = edge_body_json(r)) == NULL)
		return;
	answers = json_object_get(body, "answers");
	if (!json_is_array(answers) || json_array_size(answers) == 0) {
		why = "answers must be a non-empty array";
	} else if (!opt_string(r, body, "strictness", &rq.strictness)) {
		why = "strictness must be easy, medium or strict";
	} else if ((rq.answers = cm_arena_alloc(&r->arena, json_array_size(answers) *
	                                                       sizeof(*rq.answers))) == NULL) {
		why = "out of memory";
	} else {
		for (size_t i = 0; i < json_array_size(answers) && why == NULL; i++) {
			Eval__Answer *a = cm_arena_alloc(&r->arena, sizeof(*a));
			if (a == NULL)
				why = "out of memory";
			else if (answer_from_json(r, json_array_get(answers, i), a, &why))
				rq.answers[rq.n_answers++] = a;
		}
	}
	json_decref(body);
	if (why != NULL) {
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, why);
		return;
	}
	rq.question_set_id = r->params[0];
	rq.document_id = (char *)"";
	rq.topic = (char *)"";
	rq.overall = true;
	edge_call(r, &rq.base);
}

void
edge_reply_attempt_create(edge_req *r, cm_rpc_result *res)
{
	Eval__Attempt *a;
	json_t        *o;

	if ((a = (Eval__Attempt *)edge_reply_unpack(r, res, &eval__attempt__descriptor)) == NULL)
		return;
	o = json_pack("{s:s, s:s}", "attempt_id", a->id, "status", a->status);
	json_object_set_new(o, "job_id",
	                    a->job_id[0] != '\0' ? json_string(a->job_id) : json_null());
	eval__attempt__free_unpacked(a, NULL);
	edge_set_json(r, 202, o);
	edge_respond(r);
}

void
edge_start_attempt_get(edge_req *r)
{
	Eval__AttemptRef rq = EVAL__ATTEMPT_REF__INIT;

	rq.id = r->params[0];
	edge_call(r, &rq.base);
}

void
edge_reply_attempt_get(edge_req *r, cm_rpc_result *res)
{
	Eval__Attempt *a;

	if ((a = (Eval__Attempt *)edge_reply_unpack(r, res, &eval__attempt__descriptor)) == NULL)
		return;
	edge_set_json(r, 200, attempt_v1_json(a));
	eval__attempt__free_unpacked(a, NULL);
	edge_respond(r);
}

/* ---- legacy ------------------------------------------------------------------------------------
 */

typedef struct legacy_eval {
	bool quiz; /* evaluate-quiz (QUIZ_RESULT) or evaluate-answer (one result) */
	char attempt_id[CM_UUID_LEN + 1];
} legacy_eval;

/* A legacy question id as sent (the frontend sends numbers or strings). */
static char *
legacy_id(edge_req *r, json_t *v)
{
	char buf[LEGACY_MAX_ID];

	if (json_is_string(v))
		return cm_arena_strndup(&r->arena, json_string_value(v), json_string_length(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return cm_arena_strndup(&r->arena, buf, strlen(buf));
	}
	return cm_arena_strndup(&r->arena, "", 0);
}

/* One legacy question: {"question_id","question","user_answer","correct_answer"?,
 * "question_type"?,"options"?}. */
static bool
item_from_json(edge_req *r, json_t *v, Eval__InlineItem *it, const char **why)
{
	json_t *opts;

	eval__inline_item__init(it);
	if (!json_is_object(v)) {
		*why = "each answer is an object";
		return false;
	}
	it->question_id = legacy_id(r, json_object_get(v, "question_id"));
	if (it->question_id == NULL || !opt_string(r, v, "question", &it->question) ||
	    !opt_string(r, v, "user_answer", &it->user_answer) ||
	    !opt_string(r, v, "correct_answer", &it->correct_answer) ||
	    !opt_string(r, v, "question_type", &it->question_type)) {
		*why = "question, user_answer, correct_answer and question_type are strings";
		return false;
	}
	opts = json_object_get(v, "options");
	if (opts != NULL && !json_is_null(opts)) {
		if (!json_is_array(opts) ||
		    (it->options = cm_arena_alloc(&r->arena, (json_array_size(opts) + 1) *
		                                                 sizeof(char *))) == NULL) {
			*why = "options must be an array of strings";
			return false;
		}
		for (size_t k = 0; k < json_array_size(opts); k++) {
			json_t *o = json_array_get(opts, k);
			if (!json_is_string(o)) {
				*why = "options must be an array of strings";
				return false;
			}
			it->options[it->n_options++] = cm_arena_strndup(
			    &r->arena, json_string_value(o), json_string_length(o));
		}
	}
	return true;
}

/* Builds the inline items of either legacy body into rq. */
static const char *
legacy_items(edge_req *r, json_t *body, bool quiz, Eval__SubmitRequest *rq)
{
	json_t     *list = quiz ? json_object_get(body, "answers") : NULL;
	size_t      n = quiz ? json_array_size(list) : 1;
	const char *why = NULL;

	if (quiz && (!json_is_array(list) || n == 0))
		return "answers must be a non-empty array";
	if ((rq->items = cm_arena_alloc(&r->arena, n * sizeof(*rq->items))) == NULL)
		return "out of memory";
	for (size_t i = 0; i < n; i++) {
		Eval__InlineItem *it = cm_arena_alloc(&r->arena, sizeof(*it));
		if (it == NULL)
			return "out of memory";
		if (!item_from_json(r, quiz ? json_array_get(list, i) : body, it, &why))
			return why;
		rq->items[rq->n_items++] = it;
	}
	return NULL;
}

static void
start_legacy(edge_req *r, bool quiz)
{
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	legacy_eval        *g;
	json_t             *body;
	const char         *why;

	if ((g = cm_arena_alloc(&r->arena, sizeof(*g))) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	g->quiz = quiz;
	r->route_state = g;
	if ((body = edge_body_json(r)) == NULL)
		return;
	why = legacy_items(r, body, quiz, &rq);
	if (why == NULL && (!opt_string(r, body, "evaluation_level", &rq.strictness) ||
	                    !opt_string(r, body, "topic", &rq.topic)))
		why = "evaluation_level and topic are strings";
	json_decref(body);
	if (why != NULL) {
		edge_fail_http(r, 422, "INVALID_ARGUMENT", why);
		return;
	}
	rq.question_set_id = (char *)"";
	rq.document_id = (char *)"";
	rq.use_selected = true;
	rq.overall = quiz;
	edge_call(r, &rq.base);
}

void
edge_start_legacy_evaluate_quiz(edge_req *r)
{
	start_legacy(r, true);
}

void
edge_start_legacy_evaluate_answer(edge_req *r)
{
	start_legacy(r, false);
}

static json_t *
result_legacy_json(const Eval__Result *x)
{
	return json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "question_id", x->question_id, "score",
	                 (int)x->score, "max_score", (int)x->max_score, "feedback", x->feedback,
	                 "suggestions", x->suggestions, "correct_answer_hint", x->hint);
}

/* QUIZ_RESULT of legacy-api.md. */
static json_t *
quiz_result_json(const Eval__Attempt *a)
{
	json_t *results = json_array();
	json_t *o;

	for (size_t i = 0; i < a->n_results; i++)
		json_array_append_new(results, result_legacy_json(a->results[i]));
	o = json_pack("{s:i, s:i, s:f, s:s, s:o, s:s}", "overall_score", (int)a->score, "max_score",
	              (int)a->max_score, "percentage", a->percentage, "grade", a->grade,
	              "individual_results", results, "overall_feedback", a->overall_feedback);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "study_suggestions",
	                    strings_json(a->study_suggestions, a->n_study_suggestions));
	json_object_set_new(o, "strengths", strings_json(a->strengths, a->n_strengths));
	json_object_set_new(o, "areas_for_improvement",
	                    strings_json(a->areas_for_improvement, a->n_areas_for_improvement));
	return o;
}

/* The attempt is over: every answer graded -> the legacy shape; anything else -> 503 with the
 * reason (never a made-up score). Ends the exchange. */
static void
legacy_answer(edge_poll *p, const legacy_eval *g, const Eval__Attempt *a)
{
	edge_req *r = edge_poll_req(p);
	char      why[CM_MAX_ERRMSG + 64];

	for (size_t i = 0; i < a->n_results; i++) {
		const Eval__Result *x = a->results[i];
		if (strcmp(x->status, "graded") != 0) {
			snprintf(why, sizeof(why), "Grading failed for question %s: %s",
			         x->question_id, x->error[0] != '\0' ? x->error : "not graded");
			cm_warn("EDGE-LEGACY-EVAL-FAIL", "attempt %s: %s", a->id, why);
			edge_poll_fail(p, CM__STATUS__UNAVAILABLE, why);
			return;
		}
	}
	if (strcmp(a->status, "succeeded") != 0) {
		snprintf(why, sizeof(why), "Grading failed: %s",
		         a->error[0] != '\0' ? a->error : a->status);
		cm_warn("EDGE-LEGACY-EVAL-FAIL", "attempt %s: %s", a->id, why);
		edge_poll_fail(p, CM__STATUS__UNAVAILABLE, why);
		return;
	}
	edge_poll_end(p);
	if (g->quiz)
		edge_set_json(r, 200, quiz_result_json(a));
	else if (a->n_results == 1)
		edge_set_json(r, 200, result_legacy_json(a->results[0]));
	else {
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
		return;
	}
	edge_respond(r);
}

static bool
attempt_running(const Eval__Attempt *a)
{
	return strcmp(a->status, "queued") == 0 || strcmp(a->status, "running") == 0;
}

static void
got_attempt(void *arg, cm_rpc_result *res)
{
	edge_poll         *p = arg;
	const legacy_eval *g = edge_poll_req(p)->route_state;
	Eval__Attempt     *a;

	if (edge_poll_transient(res)) { /* a replica restarting between polls */
		edge_poll_again(p);
		return;
	}
	if (res->status != CM__STATUS__OK) {
		edge_poll_fail(p, res->status, res->message);
		return;
	}
	if ((a = eval__attempt__unpack(NULL, res->payload_len, res->payload)) == NULL) {
		edge_poll_fail(p, CM__STATUS__INTERNAL, "malformed upstream response");
		return;
	}
	if (attempt_running(a))
		edge_poll_again(p);
	else
		legacy_answer(p, g, a);
	eval__attempt__free_unpacked(a, NULL);
}

static void
poll_attempt(edge_poll *p, void *arg)
{
	const legacy_eval *g = arg;
	Eval__AttemptRef   rq = EVAL__ATTEMPT_REF__INIT;

	rq.id = (char *)g->attempt_id;
	edge_poll_call(p, EDGE_UP_EVAL, "eval.GetAttempt", &rq.base, got_attempt);
}

void
edge_reply_legacy_evaluate(edge_req *r, cm_rpc_result *res)
{
	legacy_eval   *g = r->route_state;
	Eval__Attempt *a;

	if (res->status == CM__STATUS__FAILED_PRECONDITION ||
	    res->status == CM__STATUS__NOT_FOUND) {
		edge_fail_http(r, 400, "FAILED_PRECONDITION", "No PDF selected");
		return;
	}
	if ((a = (Eval__Attempt *)edge_reply_unpack(r, res, &eval__attempt__descriptor)) == NULL)
		return;
	cm_strlcpy(g->attempt_id, a->id, sizeof(g->attempt_id));
	eval__attempt__free_unpacked(a, NULL);
	(void)edge_poll_start(r, r->e->cfg.evaluate_wait_ms,
	                      "Grading is taking too long; it continues in the background",
	                      poll_attempt, g);
}

/* ---- jobs
 * ---------------------------------------------------------------------------------------- */

static const char eval_job_tried = 1; /* r->route_state: the eval lookup was made */

static void
eval_job_done(void *arg, cm_rpc_result *res)
{
	edge_reply_job(arg, res);
}

bool
edge_eval_job_lookup(edge_req *r)
{
	Eval__JobRef     rq = EVAL__JOB_REF__INIT;
	cm_rpc_call_opts o;
	size_t           n;
	uint8_t         *buf;

	if (r->route_state == &eval_job_tried || r->e->up[EDGE_UP_EVAL] == NULL)
		return false;
	r->route_state = (void *)&eval_job_tried;
	rq.id = r->params[0];
	n = protobuf_c_message_get_packed_size(&rq.base);
	if ((buf = cm_arena_alloc(&r->arena, n + 1)) == NULL)
		return false;
	protobuf_c_message_pack(&rq.base, buf);
	edge_req_opts(r, "eval.GetJob", true, &o);
	return cm_rpc_call_async(r->e->up[EDGE_UP_EVAL], &o, buf, n, eval_job_done, r) == CM_OK;
}
