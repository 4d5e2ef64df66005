/*
 * routes_qgen.c - question generation routes: v1 question sets, jobs and exports, and the
 * legacy synchronous POST /api/chat/generate-questions.
 *
 * DESIGN. The v1 routes are thin: JSON in, one svc-qgen call, JSON out in the contract's
 * shapes (built here from qgen.* messages, because the contract nests and renames fields).
 * The legacy route must answer only when the questions exist, yet nothing in the edge may block:
 * it creates the job, then polls qgen.GetJob on a timer aio (poll.h) until the job ends or
 * EDGE_GENERATE_WAIT_MS passes, then reads the set and formats QUESTIONS_STRING. Polling costs
 * one cheap RPC per interval per waiting client; it keeps the edge stateless (any edge replica,
 * any svc-qgen replica) and survives lost pub/sub events, which are only notifications.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "poll.h"
#include "routes_eval.h"
#include "routes_qgen.h"

#define LEGACY_DEFAULT_COUNT 25

/* ---- JSON shapes ----------------------------------------------------------------------------- */

static json_t *
question_json(const Qgen__Question *q, bool answers)
{
	json_t *o = json_object(), *src;
	bool    mcq = strcmp(q->type, "mcq") == 0;

	json_object_set_new(o, "id", json_string(q->id));
	json_object_set_new(o, "type", json_string(q->type));
	json_object_set_new(o, "text", json_string(q->text));
	if (mcq) {
		json_t *opts = json_array();
		for (size_t i = 0; i < q->n_options; i++)
			json_array_append_new(opts, json_string(q->options[i]));
		json_object_set_new(o, "options", opts);
	}
	if (answers) {
		if (mcq)
			json_object_set_new(o, "answer", json_integer(q->answer_index));
		else
			json_object_set_new(o, "answer", json_string(q->reference));
		if (q->explanation[0] != '\0')
			json_object_set_new(o, "explanation", json_string(q->explanation));
	}
	json_object_set_new(o, "difficulty", json_string(q->difficulty));
	src = json_pack("{s:i}", "page", (int)q->page);
	/* The passage the answer was checked against holds the answer: only with the answers. */
	if (answers && src != NULL && q->quote[0] != '\0')
		json_object_set_new(src, "quote", json_string(q->quote));
	json_object_set_new(o, "source", src);
	return o;
}

static json_t *
set_json(const Qgen__QuestionSet *s, bool answers)
{
	json_t *qs = json_array();
	json_t *o;

	for (size_t i = 0; i < s->n_questions; i++)
		json_array_append_new(qs, question_json(s->questions[i], answers));
	o = json_pack("{s:s, s:s, s:s, s:o, s:b, s:i, s:s, s:s}", "id", s->id, "document_id",
	              s->document_id, "status", s->status, "questions", qs, "cached", s->cached,
	              "count", (int)s->count, "difficulty", s->difficulty, "created_at",
	              s->created_at);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "job_id",
	                    s->job_id[0] != '\0' ? json_string(s->job_id) : json_null());
	json_object_set_new(o, "topic", s->topic[0] != '\0' ? json_string(s->topic) : json_null());
	if (s->error[0] != '\0')
		json_object_set_new(o, "error", json_string(s->error));
	return o;
}

static json_t *
job_json(const Qgen__Job *j)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:s, s:s, s:s}", "id", j->id, "kind",
	                      j->kind, "status", j->status, "progress", "done", (int)j->done,
	                      "total", (int)j->total, "result_id", j->result_id, "created_at",
	                      j->created_at, "updated_at", j->updated_at);

	if (o != NULL && j->error[0] != '\0')
		json_object_set_new(o, "error", json_string(j->error));
	return o;
}

static bool
want_answers(edge_req *r)
{
	char buf[8];

	return edge_query_param(r, "include_answers", buf, sizeof(buf)) != NULL &&
	       (strcmp(buf, "true") == 0 || strcmp(buf, "1") == 0);
}

/* ---- v1 ------------------------------------------------------------------------------------ */

/* svc-qgen checks every value (proto/qgen.proto CreateRequest); the body's fields are the
 * message's, so the default translation reads it. The document is the path's. */
void
edge_start_qset_create(edge_req *r)
{
	Qgen__CreateRequest *rq;

	if (!cm_uuid_valid(r->params[0])) {
		edge_fail(r, CM__STATUS__NOT_FOUND, "no such document");
		return;
	}
	if ((rq = (Qgen__CreateRequest *)edge_body_pb(r)) == NULL)
		return;
	rq->document_id = r->params[0];
	rq->use_selected = false;
	edge_call(r, &rq->base);
}

void
edge_reply_qset_create(edge_req *r, cm_rpc_result *res)
{
	Qgen__CreateResponse *c;

	if ((c = (Qgen__CreateResponse *)edge_reply_unpack(
	         r, res, &qgen__create_response__descriptor)) == NULL)
		return;
	if (c->cached && c->set != NULL)
		edge_set_json(r, 200, set_json(c->set, want_answers(r)));
	else
		edge_set_json(r, 202,
		              json_pack("{s:s, s:s, s:s}", "question_set_id", c->question_set_id,
		                        "job_id", c->job_id, "status", c->status));
	qgen__create_response__free_unpacked(c, NULL);
	edge_respond(r);
}

void
edge_start_job(edge_req *r)
{
	Qgen__JobRef rq = QGEN__JOB_REF__INIT;

	if (!cm_uuid_valid(r->params[0])) {
		edge_fail(r, CM__STATUS__NOT_FOUND, "no such job");
		return;
	}
	rq.id = r->params[0];
	edge_call(r, &rq.base);
}

void
edge_reply_job(edge_req *r, cm_rpc_result *res)
{
	Qgen__Job *j;

	/* Not a question-set job: it may be a grading job (GET only: eval jobs are not cancelled).
	 */
	if (res->status == CM__STATUS__NOT_FOUND && strcmp(r->route->method, "GET") == 0 &&
	    edge_eval_job_lookup(r))
		return;
	if ((j = (Qgen__Job *)edge_reply_unpack(r, res, &qgen__job__descriptor)) == NULL)
		return;
	edge_set_json(r, r->route->ok_status, job_json(j));
	qgen__job__free_unpacked(j, NULL);
	edge_respond(r);
}

void
edge_start_qset_get(edge_req *r)
{
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;

	if (!cm_uuid_valid(r->params[0])) {
		edge_fail(r, CM__STATUS__NOT_FOUND, "no such question set");
		return;
	}
	rq.id = r->params[0];
	rq.include_answers = want_answers(r);
	edge_call(r, &rq.base);
}

void
edge_reply_qset_get(edge_req *r, cm_rpc_result *res)
{
	Qgen__QuestionSet *s;

	if ((s = (Qgen__QuestionSet *)edge_reply_unpack(r, res, &qgen__question_set__descriptor)) ==
	    NULL)
		return;
	edge_set_json(r, 200, set_json(s, want_answers(r)));
	qgen__question_set__free_unpacked(s, NULL);
	edge_respond(r);
}

/* The export is svc-qgen's (qgen.Export checks the id, the format, the owner and the set's state);
 * the edge relays the file. */
void
edge_start_qset_export(edge_req *r)
{
	Qgen__ExportRequest rq = QGEN__EXPORT_REQUEST__INIT;
	char                fmt[16];

	rq.set_id = r->params[0];
	/* Absent is "", and a value cut to fit names no format either: both are svc-qgen's 400. */
	rq.format = edge_query_param(r, "format", fmt, sizeof(fmt)) != NULL ? fmt : (char *)"";
	edge_call(r, &rq.base);
}

/* A header value we write ourselves: printable ASCII without quotes or backslashes. */
static bool
header_safe(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return false;
	return true;
}

void
edge_reply_qset_export(edge_req *r, cm_rpc_result *res)
{
	Qgen__ExportResponse *x;
	char                  disp[160];
	const char           *ctype;

	if ((x = (Qgen__ExportResponse *)edge_reply_unpack(
	         r, res, &qgen__export_response__descriptor)) == NULL)
		return;
	if (!header_safe(x->content_type) || !header_safe(x->file_name) ||
	    (size_t)snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", x->file_name) >=
	        sizeof(disp)) {
		qgen__export_response__free_unpacked(x, NULL);
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
		return;
	}
	cm_buf_reset(&r->out);
	ctype = cm_arena_strndup(&r->arena, x->content_type, strlen(x->content_type));
	if (ctype == NULL || cm_buf_append(&r->out, x->data.data, x->data.len) != CM_OK ||
	    !edge_add_header(r, "Content-Disposition", disp)) {
		qgen__export_response__free_unpacked(x, NULL);
		edge_fail(r, CM__STATUS__INTERNAL, "cannot relay the export");
		return;
	}
	qgen__export_response__free_unpacked(x, NULL);
	r->status = 200;
	r->content_type = ctype;
	edge_respond(r);
}

/* ---- legacy generate-questions --------------------------------------------------------------- */

typedef struct legacy_gen {
	char job_id[CM_UUID_LEN + 1];
	char set_id[CM_UUID_LEN + 1];
	bool quiz;
} legacy_gen;

/* QUESTIONS_STRING: one JSON document (jansson escapes braces and quotes inside questions, so
 * the frontend's first-'{'-to-last-'}' slice is exactly this document). Ends the exchange. */
static void
legacy_answer(edge_req *r, bool quiz, const Qgen__QuestionSet *s)
{
	json_t *qs = json_array();
	char   *text;
	char    ts[32];

	for (size_t i = 0; i < s->n_questions; i++) {
		const Qgen__Question *q = s->questions[i];
		if (!quiz) {
			json_array_append_new(qs, json_string(q->text));
			continue;
		}
		json_t *opts = json_array();
		for (size_t k = 0; k < q->n_options; k++) {
			size_t n = strlen(q->options[k]) + 4;
			char  *o = malloc(n);
			if (o != NULL)
				snprintf(o, n, "%c) %s", (char)('A' + k), q->options[k]);
			json_array_append_new(opts, json_string(o != NULL ? o : ""));
			free(o);
		}
		char letter[2] = {
		    (char)('A' +
		           (q->answer_index >= 0 && q->answer_index < 4 ? q->answer_index : 0)),
		    '\0'};
		json_array_append_new(qs, json_pack("{s:s, s:o, s:s, s:s, s:i}", "question",
		                                    q->text, "options", opts, "correctAnswer",
		                                    letter, "explanation", q->explanation, "page",
		                                    (int)q->page));
	}
	json_t *doc = json_pack("{s:o}", "questions", qs);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	cm_format_time_ms(cm_now_ms(), ts);
	if (text == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	edge_set_json(r, 200, json_pack("{s:s, s:s}", "response", text, "timestamp", ts));
	free(text);
	edge_respond(r);
}

static void
got_set(void *arg, cm_rpc_result *res)
{
	edge_poll         *p = arg;
	edge_req          *r = edge_poll_req(p);
	const legacy_gen  *g = r->route_state;
	Qgen__QuestionSet *s;

	if (res->status != CM__STATUS__OK) {
		edge_poll_fail(p, res->status, res->message);
		return;
	}
	if ((s = qgen__question_set__unpack(NULL, res->payload_len, res->payload)) == NULL) {
		edge_poll_fail(p, CM__STATUS__INTERNAL, "malformed upstream response");
		return;
	}
	edge_poll_end(p);
	legacy_answer(r, g->quiz, s);
	qgen__question_set__free_unpacked(s, NULL);
}

static void
got_job(void *arg, cm_rpc_result *res)
{
	edge_poll          *p = arg;
	const legacy_gen   *g = edge_poll_req(p)->route_state;
	Qgen__GetSetRequest rq = QGEN__GET_SET_REQUEST__INIT;
	Qgen__Job          *j;
	char                msg[CM_MAX_ERRMSG + 64];

	if (edge_poll_transient(res)) { /* a replica restarting between polls */
		edge_poll_again(p);
		return;
	}
	if (res->status != CM__STATUS__OK) {
		edge_poll_fail(p, res->status, res->message);
		return;
	}
	if ((j = qgen__job__unpack(NULL, res->payload_len, res->payload)) == NULL) {
		edge_poll_fail(p, CM__STATUS__INTERNAL, "malformed upstream response");
		return;
	}
	if (strcmp(j->status, "succeeded") == 0) {
		rq.id = (char *)g->set_id;
		rq.include_answers = true;
		edge_poll_call(p, EDGE_UP_QGEN, "qgen.GetSet", &rq.base, got_set);
	} else if (strcmp(j->status, "failed") == 0 || strcmp(j->status, "cancelled") == 0) {
		snprintf(msg, sizeof(msg), "Question generation failed: %s",
		         j->error[0] != '\0' ? j->error : j->status);
		cm_warn("EDGE-LEGACY-GEN-FAIL", "job %s: %s", g->job_id, msg);
		edge_poll_fail(p, CM__STATUS__UNAVAILABLE, msg);
	} else {
		edge_poll_again(p);
	}
	qgen__job__free_unpacked(j, NULL);
}

static void
poll_job(edge_poll *p, void *arg)
{
	const legacy_gen *g = arg;
	Qgen__JobRef      rq = QGEN__JOB_REF__INIT;

	rq.id = (char *)g->job_id;
	edge_poll_call(p, EDGE_UP_QGEN, "qgen.GetJob", &rq.base, got_job);
}

void
edge_start_legacy_generate(edge_req *r)
{
	Qgen__CreateRequest rq = QGEN__CREATE_REQUEST__INIT;
	json_t             *body, *v;
	char               *types[1];
	legacy_gen         *g;

	if ((g = cm_arena_alloc(&r->arena, sizeof(*g))) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	r->route_state = g;
	if ((body = edge_body_json(r)) == NULL)
		return;
	rq.use_selected = true;
	rq.document_id = (char *)"";
	rq.difficulty = (char *)"medium";
	rq.topic = (char *)"";
	rq.count = LEGACY_DEFAULT_COUNT;
	/* Only the type is checked here: the range is svc-qgen's (its message names it). */
	if ((v = json_object_get(body, "count")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
		    json_integer_value(v) > INT32_MAX) {
			json_decref(body);
			edge_fail(r, CM__STATUS__INVALID_ARGUMENT, "count must be an integer");
			return;
		}
		rq.count = (int32_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "topic")) != NULL && json_is_string(v))
		rq.topic = cm_arena_strndup(&r->arena, json_string_value(v), json_string_length(v));
	/* "quiz" is multiple choice; anything else is practice: open questions shown as strings. */
	g->quiz = (v = json_object_get(body, "mode")) != NULL && json_is_string(v) &&
	          strcmp(json_string_value(v), "quiz") == 0;
	json_decref(body);
	types[0] = (char *)(g->quiz ? "mcq" : "open");
	rq.types = types;
	rq.n_types = 1;
	if (rq.topic == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	edge_call(r, &rq.base);
}

void
edge_reply_legacy_generate(edge_req *r, cm_rpc_result *res)
{
	Qgen__CreateResponse *c;
	legacy_gen           *g = r->route_state;

	if (res->status == CM__STATUS__NOT_FOUND) {
		edge_fail_http(r, 400, "FAILED_PRECONDITION",
		               "No PDF selected. Upload or select a PDF first.");
		return;
	}
	if ((c = (Qgen__CreateResponse *)edge_reply_unpack(
	         r, res, &qgen__create_response__descriptor)) == NULL)
		return;
	cm_strlcpy(g->job_id, c->job_id, sizeof(g->job_id));
	cm_strlcpy(g->set_id, c->question_set_id, sizeof(g->set_id));
	if (c->cached && c->set != NULL) {
		legacy_answer(r, g->quiz, c->set);
		qgen__create_response__free_unpacked(c, NULL);
		return;
	}
	qgen__create_response__free_unpacked(c, NULL);
	(void)edge_poll_start(
	    r, r->e->cfg.generate_wait_ms,
	    "Question generation is taking too long; it continues in the background", poll_job, g);
}
