/*
 * handlers.c - the chat.* RPC handlers: checks, the caller's chat, and responses in the call's
 * arena. chat.Send's answer itself is turn.c.
 *
 * DESIGN: each handler starts with begin() (subject and worker state) and turns store errors
 * into statuses with fail(): PostgreSQL trouble is UNAVAILABLE with a generic message (the
 * detail is logged). The legacy calls find "the caller's chat on the selected PDF" through one
 * function, legacy_chat(), which asks svc-pdf as the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cm/log.h"
#include "cm/util.h"
#include "handlers.h"
#include "passages.h"
#include "proto/chat.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "server.h"
#include "store.h"
#include "turn.h"

#define CHAT_LEGACY_HISTORY 200 /* messages shown by chat.History (the newest) */

static cm_err
begin(cm_rpc_ctx *ctx, chat_worker **w)
{
	*w = ctx->worker_state;
	if (ctx->subject == NULL || ctx->subject[0] == '\0')
		return cm_rpc_fail(ctx, CM_EAUTH, "not authenticated");
	if (*w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	return CM_OK;
}

static cm_err
fail(cm_rpc_ctx *ctx, chat_worker *w, cm_err err, const char *notfound)
{
	switch (err) {
	case CM_OK:
		return CM_OK;
	case CM_ENOTFOUND:
		return cm_rpc_fail(ctx, err, "%s", notfound);
	case CM_EUNAVAIL:
		return cm_rpc_fail(ctx, err, "chat storage unavailable");
	case CM_ETIMEDOUT:
		return cm_rpc_fail(ctx, err, "deadline exceeded");
	default:
		cm_error("CHAT-STORE", "%s: %s (%s)", ctx->method, cm_strerror(err),
		         w != NULL ? cm_pg_errmsg(w->pg) : "");
		return cm_rpc_fail(ctx, CM_EINTERNAL, "internal error");
	}
}

static cm_err
chat_reply(cm_rpc_ctx *ctx, const chat_row *row, Chat__Chat *out)
{
	out->id = cm_rpc_strdup(ctx, row->id);
	out->document_id = cm_rpc_strdup(ctx, row->document_id);
	out->created_at = cm_rpc_strdup(ctx, row->created_at);
	out->legacy = row->legacy;
	if (out->id == NULL || out->document_id == NULL || out->created_at == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	return CM_OK;
}

/* The caller's chat `id` (NOT_FOUND when malformed, missing or another user's); from the
 * cache when cached_ok (chat.Send: its first statement checks the chat still exists). */
static cm_err
own_chat(cm_rpc_ctx *ctx, chat_worker *w, const char *id, bool cached_ok, chat_row *row)
{
	cm_err err;

	if (id == NULL || !cm_uuid_valid(id))
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such chat");
	if (cached_ok && chat_cache_get(w->svc->chats, id, ctx->subject, row))
		return CM_OK;
	if ((err = chat_store_get(w->pg, ctx->subject, id, row)) == CM_OK)
		chat_cache_put(w->svc->chats, ctx->subject, row);
	return fail(ctx, w, err, "no such chat");
}

/* A document of the caller's from svc-pdf: by id (pdf.Get) or the selected one (pdf.Selected).
 * *pages receives its page count. */
static cm_err
document(cm_rpc_ctx *ctx, chat_service *s, const char *id, char doc_id[CM_UUID_LEN + 1], int *pages)
{
	cm_rpc_call_opts  o;
	cm_rpc_result     res;
	ProtobufCMessage *resp = NULL;
	Pdf__Document    *doc = NULL;
	cm_err            err;

	memset(&o, 0, sizeof(o));
	o.subject = ctx->subject;
	o.request_id = ctx->request_id;
	o.deadline_ms = cm_now_ms() + CHAT_PDF_TIMEOUT_MS;
	if (ctx->deadline_ms > 0 && ctx->deadline_ms < o.deadline_ms)
		o.deadline_ms = ctx->deadline_ms;
	o.idempotent = true;
	if (id == NULL) {
		Pdf__SelectedRequest rq = PDF__SELECTED_REQUEST__INIT;
		o.method = "pdf.Selected";
		err = cm_rpc_call(s->pdf, &o, &rq.base, &pdf__selected_response__descriptor, &resp,
		                  &res);
		if (err == CM_OK && (doc = ((Pdf__SelectedResponse *)resp)->document) == NULL)
			err = CM_EPRECOND;
	} else {
		Pdf__GetRequest rq = PDF__GET_REQUEST__INIT;
		if (!cm_uuid_valid(id))
			return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such document");
		rq.id = (char *)id;
		o.method = "pdf.Get";
		err = cm_rpc_call(s->pdf, &o, &rq.base, &pdf__document__descriptor, &resp, &res);
		doc = (Pdf__Document *)resp;
	}
	if (err == CM_OK) {
		cm_strlcpy(doc_id, doc->id, CM_UUID_LEN + 1);
		*pages = doc->pages;
	} else if (err == CM_EPRECOND) {
		err = cm_rpc_fail(ctx, err, "No PDF selected");
	} else if (err == CM_ENOTFOUND) {
		err = cm_rpc_fail(ctx, err, "no such document");
	} else {
		cm_warn("CHAT-PDF", "%s: %s (%s)", o.method, cm_strerror(err), res.message);
		err = cm_rpc_fail(ctx, CM_EUNAVAIL, "documents unavailable");
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	cm_rpc_result_fini(&res);
	return err;
}

/* The caller's legacy chat on the selected PDF; created when `create`, else NOT_FOUND when the
 * caller has none (a PDF is selected: FAILED_PRECONDITION otherwise). */
static cm_err
legacy_chat(cm_rpc_ctx *ctx, chat_worker *w, bool create, chat_row *row)
{
	char   doc[CM_UUID_LEN + 1];
	int    pages = 0;
	cm_err err;

	if ((err = document(ctx, w->svc, NULL, doc, &pages)) != CM_OK)
		return err;
	err = chat_store_legacy(w->pg, ctx->subject, doc, pages, create, row);
	if (err == CM_ENOTFOUND && !create)
		return err; /* no message: the caller decides */
	return fail(ctx, w, err, "no such chat");
}

/* ---- methods ----------------------------------------------------------------------------- */

cm_err
chat_handle_create(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__CreateRequest *rq = req;
	chat_worker               *w;
	chat_row                   row;
	char                       doc[CM_UUID_LEN + 1];
	int                        pages = 0;
	cm_err                     err;

	if ((err = begin(ctx, &w)) != CM_OK)
		return err;
	if ((err = document(ctx, w->svc, rq->document_id != NULL ? rq->document_id : "", doc,
	                    &pages)) != CM_OK)
		return err;
	if ((err = chat_store_create(w->pg, ctx->subject, doc, pages, &row)) != CM_OK)
		return fail(ctx, w, err, "no such document");
	chat_cache_put(w->svc->chats, ctx->subject, &row);
	return chat_reply(ctx, &row, resp);
}

cm_err
chat_handle_get(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__ChatRef *rq = req;
	chat_worker         *w;
	chat_row             row;
	cm_err               err;

	if ((err = begin(ctx, &w)) != CM_OK ||
	    (err = own_chat(ctx, w, rq->id, false, &row)) != CM_OK)
		return err;
	return chat_reply(ctx, &row, resp);
}

/* One stored message into the response arena. */
static Chat__Message *
message(cm_rpc_ctx *ctx, const char *chat_id, const chat_msg_row *m)
{
	Chat__Message *out = cm_rpc_alloc(ctx, sizeof(*out));

	if (out == NULL)
		return NULL;
	chat__message__init(out);
	out->id = cm_rpc_strdup(ctx, m->id);
	out->chat_id = cm_rpc_strdup(ctx, chat_id);
	out->role = cm_rpc_strdup(ctx, m->role);
	out->content = cm_rpc_strdup(ctx, m->content);
	out->status = cm_rpc_strdup(ctx, m->status);
	out->error = cm_rpc_strdup(ctx, m->error);
	out->created_at = cm_rpc_strdup(ctx, m->created_at);
	if (m->ncitations > 0) {
		out->citations = cm_rpc_alloc(ctx, (size_t)m->ncitations * sizeof(*out->citations));
		if (out->citations == NULL)
			return NULL;
		for (int i = 0; i < m->ncitations; i++) {
			Chat__Citation *c = cm_rpc_alloc(ctx, sizeof(*c));
			if (c == NULL)
				return NULL;
			chat__citation__init(c);
			c->page = m->citations[i];
			out->citations[i] = c;
		}
		out->n_citations = (size_t)m->ncitations;
	}
	if (out->id == NULL || out->chat_id == NULL || out->role == NULL || out->content == NULL ||
	    out->status == NULL || out->error == NULL || out->created_at == NULL)
		return NULL;
	return out;
}

cm_err
chat_handle_list(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__ListRequest *rq = req;
	Chat__MessageList       *out = resp;
	chat_worker             *w;
	chat_row                 row;
	chat_msgs               *rows = NULL;
	int64_t                  after = 0;
	int                      limit = rq->limit == 0 ? CHAT_LIST_DEFAULT : rq->limit, n;
	cm_err                   err;

	if ((err = begin(ctx, &w)) != CM_OK)
		return err;
	if (limit < 1 || limit > CHAT_LIST_MAX)
		return cm_rpc_fail(ctx, CM_EINVAL, "limit must be 1..%d", CHAT_LIST_MAX);
	if (rq->cursor != NULL && rq->cursor[0] != '\0' &&
	    (!cm_parse_i64(rq->cursor, &after) || after < 0))
		return cm_rpc_fail(ctx, CM_EINVAL, "bad cursor");
	if ((err = own_chat(ctx, w, rq->chat_id, false, &row)) != CM_OK)
		return err;
	if ((err = chat_store_list(w->pg, row.id, after, limit + 1, &rows)) != CM_OK)
		return fail(ctx, w, err, "no such chat");
	n = chat_msgs_count(rows);
	if (n > limit) {
		chat_msg_row last;
		char         cur[24];
		chat_msgs_get(rows, limit - 1, &last);
		snprintf(cur, sizeof(cur), "%lld", (long long)last.seq);
		out->next_cursor = cm_rpc_strdup(ctx, cur);
		n = limit;
	}
	if (n > 0 &&
	    (out->messages = cm_rpc_alloc(ctx, (size_t)n * sizeof(*out->messages))) == NULL)
		err = CM_ENOMEM;
	for (int i = 0; i < n && err == CM_OK; i++) {
		chat_msg_row m;
		chat_msgs_get(rows, i, &m);
		if ((out->messages[i] = message(ctx, row.id, &m)) == NULL)
			err = CM_ENOMEM;
	}
	out->n_messages = err == CM_OK ? (size_t)n : 0;
	chat_msgs_free(rows);
	if (err == CM_OK && out->next_cursor == NULL)
		out->next_cursor = (char *)"";
	if (err != CM_OK || out->next_cursor == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	return CM_OK;
}

/* INVALID_ARGUMENT unless the message has something to ask, fits and is UTF-8. */
static cm_err
check_content(cm_rpc_ctx *ctx, const char *content)
{
	size_t n = content != NULL ? strlen(content) : 0;
	bool   blank = true;

	for (size_t i = 0; i < n && blank; i++)
		blank = content[i] == ' ' || content[i] == '\t' || content[i] == '\n' ||
		        content[i] == '\r';
	if (blank)
		return cm_rpc_fail(ctx, CM_EINVAL, "the message is empty");
	if (n > CHAT_MAX_MESSAGE)
		return cm_rpc_fail(ctx, CM_EINVAL, "the message is too long (at most %d bytes)",
		                   CHAT_MAX_MESSAGE);
	if (!chat_utf8_valid(content, n))
		return cm_rpc_fail(ctx, CM_EINVAL, "the message is not valid UTF-8");
	return CM_OK;
}

cm_err
chat_handle_send(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__SendRequest *rq = req;
	chat_worker             *w;
	chat_row                 row;
	cm_err                   err;

	if ((err = begin(ctx, &w)) != CM_OK || (err = check_content(ctx, rq->content)) != CM_OK)
		return err;
	if (rq->use_selected)
		err = legacy_chat(ctx, w, true, &row);
	else
		err = own_chat(ctx, w, rq->chat_id, true, &row);
	if (err != CM_OK)
		return err;
	return chat_turn(ctx, w, &row, rq->content, rq->legacy, resp);
}

/* Pairs the messages into turns {user, assistant, timestamp}: an answer joins the question
 * before it; an incomplete answer shows its explanation. */
static cm_err
turns_reply(cm_rpc_ctx *ctx, chat_msgs *rows, Chat__History *out)
{
	int n = chat_msgs_count(rows), k = -1;

	if (n == 0)
		return CM_OK;
	if ((out->turns = cm_rpc_alloc(ctx, (size_t)n * sizeof(*out->turns))) == NULL)
		return CM_ENOMEM;
	for (int i = 0; i < n; i++) {
		chat_msg_row m;
		Chat__Turn  *t;
		chat_msgs_get(rows, i, &m);
		if (strcmp(m.role, "user") == 0 || k < 0 || out->turns[k]->assistant[0] != '\0') {
			if ((t = cm_rpc_alloc(ctx, sizeof(*t))) == NULL)
				return CM_ENOMEM;
			chat__turn__init(t);
			out->turns[++k] = t;
			t->user = (char *)"";
			t->assistant = (char *)"";
		}
		t = out->turns[k];
		t->timestamp = cm_rpc_strdup(ctx, m.created_at);
		if (strcmp(m.role, "user") == 0) {
			t->user = cm_rpc_strdup(ctx, m.content);
		} else if (strcmp(m.status, "complete") == 0) {
			t->assistant = cm_rpc_strdup(ctx, m.content);
		} else {
			cm_buf b;
			cm_buf_init(&b, CHAT_MAX_ANSWER + 1024);
			t->assistant = chat_explain(m.content, m.error, &b) == CM_OK
			                   ? cm_rpc_strndup(ctx, b.data, b.len)
			                   : NULL;
			cm_buf_fini(&b);
		}
		if (t->user == NULL || t->assistant == NULL || t->timestamp == NULL)
			return CM_ENOMEM;
	}
	out->n_turns = (size_t)k + 1;
	return CM_OK;
}

cm_err
chat_handle_history(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__HistoryRequest *rq = req;
	chat_worker                *w;
	chat_row                    row;
	chat_msgs                  *rows = NULL;
	cm_err                      err;

	if ((err = begin(ctx, &w)) != CM_OK)
		return err;
	if (!rq->use_selected)
		return cm_rpc_fail(ctx, CM_EINVAL,
		                   "use_selected is required (v1: chat.ListMessages)");
	if ((err = legacy_chat(ctx, w, false, &row)) == CM_ENOTFOUND)
		return CM_OK; /* never chatted about this PDF: no turns */
	if (err != CM_OK)
		return err;
	/* The newest CHAT_LEGACY_HISTORY messages, oldest first. */
	if ((err = chat_store_recent(w->pg, row.id, INT64_MAX, CHAT_LEGACY_HISTORY, &rows)) !=
	    CM_OK)
		return fail(ctx, w, err, "no such chat");
	err = turns_reply(ctx, rows, resp);
	chat_msgs_free(rows);
	return err == CM_OK ? CM_OK : cm_rpc_fail(ctx, err, "out of memory");
}

cm_err
chat_handle_clear(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Chat__HistoryRequest *rq = req;
	Chat__ClearResponse        *out = resp;
	chat_worker                *w;
	chat_row                    row;
	int                         n = 0;
	cm_err                      err;

	if ((err = begin(ctx, &w)) != CM_OK)
		return err;
	if (!rq->use_selected)
		return cm_rpc_fail(ctx, CM_EINVAL, "use_selected is required");
	if ((err = legacy_chat(ctx, w, false, &row)) == CM_ENOTFOUND)
		return CM_OK; /* nothing to clear */
	if (err != CM_OK)
		return err;
	if ((err = chat_store_clear(w->pg, row.id, &n)) != CM_OK)
		return fail(ctx, w, err, "no such chat");
	out->deleted = n;
	return CM_OK;
}
