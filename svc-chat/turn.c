/*
 * turn.c - one question and its answer (see turn.h for the steps and the failure rules).
 *
 * DESIGN: a `turn` carries everything one answer needs on the worker's thread; the LLM
 * client's delta callback runs on that same thread, appends to the answer (capped at
 * CHAT_MAX_ANSWER) and publishes the delta at once, so a subscriber sees text while the model
 * is still writing. The answer's id is made before the first delta, so events and the stored
 * message share it. After the user's message is stored, every path ends in store_answer().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cite.h"
#include "cm/log.h"
#include "cm/util.h"
#include "offline.h"
#include "prompt.h"
#include "retrieve.h"
#include "turn.h"

typedef struct turn {
	chat_service   *s;
	chat_worker    *w;
	cm_rpc_ctx     *ctx;
	const chat_row *chat;
	char            turn_id[CM_UUID_LEN + 1];
	char            user_msg_id[CM_UUID_LEN + 1];
	char            msg_id[CM_UUID_LEN + 1];
	uint64_t        t0;           /* cm_mono_ns at the start */
	int64_t         gen_deadline; /* unix ms: generation ends by then */
	int64_t         user_seq;
	cm_buf          answer;
	bool            got_delta;
	bool            overflow;
	cm_err          fail; /* CM_OK, or why the answer is incomplete */
	char            why[160];
} turn;

/* ---- deltas -----------------------------------------------------------------------------------
 */

static void
delta_out(turn *t, const char *text, size_t len)
{
	if (!t->got_delta) {
		t->got_delta = true;
		cm_histogram_observe(t->s->first_delta_s, (double)(cm_mono_ns() - t->t0) / 1e9);
	}
	chat_publish(t->s, "chat.delta", t->chat->id, t->msg_id, t->ctx->subject, text, len, NULL);
}

static bool
on_delta(void *arg, const char *text, size_t len)
{
	turn *t = arg;

	if (len == 0)
		return true;
	if (cm_buf_append(&t->answer, text, len) != CM_OK) {
		t->overflow = true; /* long enough: stop the model here */
		return false;
	}
	delta_out(t, text, len);
	return true;
}

/* ---- generation ------------------------------------------------------------------------------ */

static const char *
llm_reason(cm_err err, bool got_delta)
{
	switch (err) {
	case CM_ETIMEDOUT:
		return "the language model did not finish in time";
	case CM_ELIMIT:
		return "the language model is overloaded (rate limited)";
	case CM_EPERM:
		return "the language model refused the service's key or quota";
	case CM_EINVAL:
		return "the language model rejected the request";
	case CM_EUNAVAIL:
		return got_delta ? "the language model's answer broke off"
		                 : "the language model is unavailable";
	default:
		return "the language model failed";
	}
}

static void
generate_llm(turn *t, const chat_prompt *p)
{
	cm_llm_req    rq;
	cm_llm_result res;
	cm_err        err;

	memset(&rq, 0, sizeof(rq));
	rq.msgs = p->msgs;
	rq.nmsgs = p->n;
	rq.max_tokens = (int)t->s->cfg.max_tokens;
	rq.temperature = 0.2;
	rq.on_delta = on_delta;
	rq.arg = t;
	rq.deadline_ms = t->gen_deadline;
	cm_llm_result_init(&res);
	err = cm_llm_chat(t->s->llm, &rq, &res);
	if (err == CM_ECANCELED && t->overflow)
		err = CM_OK; /* capped at CHAT_MAX_ANSWER: what is there is the answer */
	if (err == CM_OK && t->answer.len == 0) {
		err = CM_EPROTO;
		snprintf(t->why, sizeof(t->why), "the language model returned no text");
	} else if (err != CM_OK) {
		snprintf(t->why, sizeof(t->why), "%s", llm_reason(err, t->got_delta));
	}
	if (err != CM_OK) {
		t->fail = err;
		cm_warn("CHAT-LLM-FAIL",
		        "chat %s message %s: %s after %d attempt(s), %zu bytes streamed "
		        "(%s; http %d)",
		        t->chat->id, t->msg_id, cm_strerror(err), res.attempts, t->answer.len,
		        res.errmsg, res.http_status);
	}
	cm_llm_result_fini(&res);
}

/* The offline provider's answer, published a paragraph at a time like a stream. */
static void
generate_offline(turn *t, const chat_passages *ps, const char *question)
{
	const char *p, *end;

	if (chat_offline_answer(ps, question, &t->answer) != CM_OK) {
		t->fail = CM_ENOMEM;
		snprintf(t->why, sizeof(t->why), "the answer could not be built");
		return;
	}
	while (t->answer.len > 0 && t->answer.data[t->answer.len - 1] == '\n')
		t->answer.data[--t->answer.len] = '\0';
	for (p = t->answer.data, end = p + t->answer.len; p < end;) {
		const char *nl = strstr(p, "\n\n");
		const char *next = nl != NULL ? nl + 2 : end;
		delta_out(t, p, (size_t)(next - p));
		p = next;
	}
}

/* ---- the steps ----------------------------------------------------------------------------- */

/* Earlier messages (before the user's new one) as prompt history; *h is malloc'd. */
static size_t
history(turn *t, chat_hist **h, chat_msgs **rows)
{
	int    want = 2 * (int)t->s->cfg.history_turns + 2, n;
	size_t k = 0;

	*h = NULL;
	*rows = NULL;
	if (want <= 2)
		return 0;
	if (chat_store_recent(t->w->pg, t->chat->id, t->user_seq, want, rows) != CM_OK) {
		cm_warn("CHAT-HISTORY",
		        "chat %s: earlier turns unavailable (%s); answering without "
		        "them",
		        t->chat->id, cm_pg_errmsg(t->w->pg));
		return 0;
	}
	n = chat_msgs_count(*rows);
	if (n == 0 || (*h = calloc((size_t)n, sizeof(**h))) == NULL)
		return 0;
	for (int i = 0; i < n; i++) {
		chat_msg_row m;
		chat_msgs_get(*rows, i, &m);
		(*h)[k].role = m.role;
		(*h)[k].content = m.content;
		(*h)[k].complete = strcmp(m.status, "complete") == 0;
		k++;
	}
	return k;
}

/* search: the passages' pdf.Search, sent before the turn was admitted (freed here). */
static void
answer(turn *t, const char *question, chat_search *search)
{
	chat_passages ps;
	chat_prompt   p;
	chat_hist    *h = NULL;
	chat_msgs    *rows = NULL;
	size_t        nh;
	uint64_t      t0;
	cm_err        err;

	chat_passages_init(&ps, (size_t)t->s->cfg.context_bytes);
	nh = history(t, &h,
	             &rows); /* under the caller's deadline: without it we answer all the same */
	t0 = cm_mono_ns();
	err = chat_retrieve_finish(search, &ps, t->why, sizeof(t->why));
	cm_histogram_observe(t->s->retrieve_s, (double)(cm_mono_ns() - t0) / 1e9);
	if (err != CM_OK) {
		t->fail = err;
		goto out;
	}
	if (t->s->llm == NULL) {
		generate_offline(t, &ps, question);
		goto out;
	}
	if ((err = chat_prompt_build(&p, h, nh, (int)t->s->cfg.history_turns, &ps, question)) !=
	    CM_OK) {
		t->fail = err;
		snprintf(t->why, sizeof(t->why), "the question could not be prepared");
		goto out;
	}
	cm_histogram_observe(t->s->prepare_s, (double)(cm_mono_ns() - t->t0) / 1e9);
	generate_llm(t, &p);
	chat_prompt_fini(&p);
out:
	free(h);
	chat_msgs_free(rows);
	chat_passages_fini(&ps);
}

/* Stores the answer as it stands (*stored: whether that worked); fills out. */
static cm_err
store_answer(turn *t, bool legacy, Chat__Message *out, bool *stored)
{
	int         cites[CHAT_MAX_CITATIONS];
	int         ncites = 0;
	char        created[40];
	const char *content = t->answer.data != NULL ? t->answer.data : "";
	chat_answer a;
	cm_buf      shown;
	cm_err      err;

	if (t->answer.len > 0)
		ncites = chat_cite_parse(content, t->answer.len, t->chat->pages, cites,
		                         CHAT_MAX_CITATIONS);
	memset(&a, 0, sizeof(a));
	a.turn_id = t->turn_id;
	a.chat_id = t->chat->id;
	a.message_id = t->msg_id;
	a.content = content;
	a.citations = cites;
	a.ncitations = ncites;
	a.complete = t->fail == CM_OK;
	a.error = t->fail == CM_OK ? "" : t->why;
	a.max_messages = (int)t->s->cfg.max_messages;
	/* Our own bound: the caller may have given up long ago. */
	cm_pg_set_deadline(t->w->pg, cm_now_ms() + CHAT_STORE_TIMEOUT_MS);
	err = chat_store_turn_end(t->w->pg, &a, created);
	*stored =
	    err == CM_OK || err == CM_ENOTFOUND; /* ENOTFOUND: the turn ended, the chat gone */
	chat_publish(t->s, "chat.done", t->chat->id, t->msg_id, t->ctx->subject, NULL, 0,
	             err == CM_OK && a.complete ? "complete" : "incomplete");
	if (err == CM_ENOTFOUND)
		return cm_rpc_fail(t->ctx, err, "no such chat");
	if (err != CM_OK) {
		cm_error("CHAT-STORE-FAIL",
		         "chat %s message %s: the answer could not be stored: %s (%s)", t->chat->id,
		         t->msg_id, cm_strerror(err), cm_pg_errmsg(t->w->pg));
		return cm_rpc_fail(t->ctx, CM_EUNAVAIL, "the answer could not be stored");
	}
	cm_counter_add(a.complete ? t->s->turns_complete : t->s->turns_incomplete, 1);
	cm_histogram_observe(t->s->turn_s, (double)(cm_mono_ns() - t->t0) / 1e9);

	out->id = cm_rpc_strdup(t->ctx, t->msg_id);
	out->chat_id = cm_rpc_strdup(t->ctx, t->chat->id);
	out->role = (char *)"assistant";
	out->status = (char *)(a.complete ? "complete" : "incomplete");
	out->error = cm_rpc_strdup(t->ctx, a.error);
	out->created_at = cm_rpc_strdup(t->ctx, created);
	if (a.complete || !legacy) {
		out->content = cm_rpc_strdup(t->ctx, content);
	} else {
		cm_buf_init(&shown, CHAT_MAX_ANSWER + 1024);
		out->content = chat_explain(content, t->why, &shown) == CM_OK
		                   ? cm_rpc_strndup(t->ctx, shown.data, shown.len)
		                   : NULL;
		cm_buf_fini(&shown);
	}
	if (ncites > 0 && (out->citations = cm_rpc_alloc(
	                       t->ctx, (size_t)ncites * sizeof(*out->citations))) != NULL) {
		for (int i = 0; i < ncites; i++) {
			Chat__Citation *c = cm_rpc_alloc(t->ctx, sizeof(*c));
			if (c == NULL)
				return cm_rpc_fail(t->ctx, CM_ENOMEM, "out of memory");
			chat__citation__init(c);
			c->page = cites[i];
			out->citations[i] = c;
		}
		out->n_citations = (size_t)ncites;
	}
	if (out->id == NULL || out->chat_id == NULL || out->error == NULL ||
	    out->created_at == NULL || out->content == NULL ||
	    (ncites > 0 && out->citations == NULL))
		return cm_rpc_fail(t->ctx, CM_ENOMEM, "out of memory");
	if (a.complete)
		return CM_OK;
	if (legacy) {
		cm_counter_add(t->s->legacy_failures, 1);
		cm_warn("CHAT-LEGACY-FAILURE",
		        "chat %s message %s: answered 200 with an explanation: %s", t->chat->id,
		        t->msg_id, t->why);
		return CM_OK;
	}
	return cm_rpc_fail(
	    t->ctx, t->fail == CM_ETIMEDOUT || t->fail == CM_ENOTFOUND ? t->fail : CM_EUNAVAIL,
	    "the answer is incomplete: %s (message %s)", t->why, t->msg_id);
}

cm_err
chat_turn(cm_rpc_ctx *ctx, chat_worker *w, const chat_row *chat, const char *content, bool legacy,
          Chat__Message *out)
{
	chat_service   *s = w->svc;
	turn            t;
	chat_turn_begin b;
	chat_caller     who = {ctx->subject, ctx->request_id};
	chat_search    *search = NULL;
	bool            stored = false;
	cm_err          err;

	memset(&t, 0, sizeof(t));
	t.s = s;
	t.w = w;
	t.ctx = ctx;
	t.chat = chat;
	t.t0 = cm_mono_ns();
	cm_buf_init(&t.answer, CHAT_MAX_ANSWER);
	if (atomic_fetch_add(&s->turns_now, 1) >= s->turn_slots) {
		cm_counter_add(s->turns_refused, 1);
		ctx->retry_after_s = CHAT_RETRY_AFTER_S;
		err =
		    cm_rpc_fail(ctx, CM_ELIMIT, "too many answers in progress; try again shortly");
		goto out;
	}
	cm_uuid_v4(t.turn_id);
	cm_uuid_v4(t.user_msg_id);
	cm_uuid_v4(t.msg_id);
	memset(&b, 0, sizeof(b));
	b.turn_id = t.turn_id;
	b.owner = ctx->subject;
	b.chat_id = chat->id;
	b.message_id = t.user_msg_id;
	b.content = content;
	b.user_limit = (int)s->cfg.user_turns;
	b.ttl_ms = s->cfg.turn_timeout_ms + CHAT_TURN_GRACE_S * 1000;
	/* The passages are searched for while the turn is admitted and the history read. */
	if ((err = chat_search_start(s, &who, chat->document_id, content, &search)) != CM_OK) {
		err = cm_rpc_fail(ctx, err, "out of memory");
		goto out;
	}
	if ((err = chat_store_turn_begin(w->pg, &b, &t.user_seq)) != CM_OK) {
		chat_search_abandon(search);
		if (err == CM_ELIMIT) {
			cm_counter_add(s->turns_refused, 1);
			ctx->retry_after_s = CHAT_RETRY_AFTER_S;
			err = cm_rpc_fail(ctx, err,
			                  "you already have %d answers in progress; wait for "
			                  "one to finish",
			                  (int)s->cfg.user_turns);
		} else if (err == CM_ENOTFOUND) {
			err = cm_rpc_fail(ctx, err, "no such chat");
		} else {
			cm_warn("CHAT-STORE", "turn begin: %s (%s)", cm_strerror(err),
			        cm_pg_errmsg(w->pg));
			err = cm_rpc_fail(ctx, CM_EUNAVAIL, "chat storage unavailable");
		}
		goto out;
	}
	/* Stored from here on, whatever the caller does. */
	t.gen_deadline = cm_now_ms() + s->cfg.turn_timeout_ms;
	answer(&t, content, search);
	err = store_answer(&t, legacy, out, &stored);
	if (!stored)
		chat_store_turn_drop(w->pg,
		                     t.turn_id); /* else it blocks the user until it expires */
out:
	atomic_fetch_sub(&s->turns_now, 1);
	cm_buf_fini(&t.answer);
	return err;
}

cm_err
chat_explain(const char *partial, const char *why, cm_buf *out)
{
	cm_err err = CM_OK;

	if (partial != NULL && partial[0] != '\0') {
		if ((err = cm_buf_appends(out, partial)) == CM_OK)
			err = cm_buf_printf(
			    out, "\n\n(This answer is incomplete: %s. Please ask again.)", why);
		return err;
	}
	return cm_buf_printf(out,
	                     "Sorry, I could not answer your question: %s. Please try again "
	                     "in a moment.",
	                     why);
}
