/*
 * routes_chat.c - chat routes: v1 chats and messages, and the legacy per-user chat on the
 * selected PDF (POST /api/chat, GET and DELETE /api/chat/history).
 *
 * DESIGN. svc-chat retrieves, prompts, streams and stores; the edge translates. chat.Send
 * answers when the assistant's message is complete (its deltas reach the browser meanwhile over
 * the WebSocket, chat:<id>), so its routes carry EDGE_R_LONG: the call's deadline is
 * EDGE_CHAT_TIMEOUT_MS, not the short default. A legacy chat whose model failed still answers 200
 * with a plain explanation (svc-chat writes it, logs and counts it), as the contract asks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/util.h"
#include "proto/chat.pb-c.h"
#include "proto/common.pb-c.h"
#include "routes_chat.h"

/* ---- JSON shapes ----------------------------------------------------------------------------- */

static json_t *
message_json(const Chat__Message *m)
{
	json_t *cites = json_array();
	json_t *o;

	for (size_t i = 0; i < m->n_citations; i++)
		json_array_append_new(cites,
		                      json_pack("{s:i}", "page", (int)m->citations[i]->page));
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", m->id, "role", m->role, "content",
	              m->content, "citations", cites, "status", m->status, "created_at",
	              m->created_at);
	if (o != NULL && m->error[0] != '\0')
		json_object_set_new(o, "error", json_string(m->error));
	return o;
}

/* The legacy routes' "no selected PDF" is 400 (legacy-api.md), whatever the service calls it. */
static bool
legacy_no_pdf(edge_req *r, const cm_rpc_result *res)
{
	if (res->status != CM__STATUS__FAILED_PRECONDITION && res->status != CM__STATUS__NOT_FOUND)
		return false;
	edge_fail_http(r, 400, "FAILED_PRECONDITION", "No PDF selected");
	return true;
}

/* The request body's string member `key` (required), copied into the arena; NULL after
 * answering 400/422 (r consumed). */
static char *
body_string(edge_req *r, const char *key, uint16_t http_status)
{
	json_t *body, *v;
	char   *s = NULL;
	char    why[96];

	if ((body = edge_body_json(r)) == NULL)
		return NULL;
	v = json_object_get(body, key);
	if (json_is_string(v))
		s = cm_arena_strndup(&r->arena, json_string_value(v), json_string_length(v));
	json_decref(body);
	if (s == NULL) {
		snprintf(why, sizeof(why), "%s must be a string", key);
		edge_fail_http(r, http_status, "INVALID_ARGUMENT", why);
	}
	return s;
}

/* ---- v1 ----------------------------------------------------------------------------------------
 */

void
edge_start_chat_create(edge_req *r)
{
	Chat__CreateRequest rq = CHAT__CREATE_REQUEST__INIT;

	rq.document_id = r->params[0];
	edge_call(r, &rq.base);
}

void
edge_reply_chat_create(edge_req *r, cm_rpc_result *res)
{
	Chat__Chat *c;

	if ((c = (Chat__Chat *)edge_reply_unpack(r, res, &chat__chat__descriptor)) == NULL)
		return;
	edge_set_json(r, 201,
	              json_pack("{s:s, s:s, s:s}", "chat_id", c->id, "document_id", c->document_id,
	                        "created_at", c->created_at));
	chat__chat__free_unpacked(c, NULL);
	edge_respond(r);
}

void
edge_start_chat_messages(edge_req *r)
{
	Chat__ListRequest rq = CHAT__LIST_REQUEST__INIT;
	char              limit[16], cursor[128];
	int64_t           n = 0;

	rq.chat_id = r->params[0];
	if (edge_query_param(r, "limit", limit, sizeof(limit)) != NULL &&
	    (!cm_parse_i64(limit, &n) || n < 1 || n > 100)) {
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, "limit must be from 1 to 100");
		return;
	}
	rq.limit = (int32_t)n;
	rq.cursor = cm_arena_strndup(&r->arena, "", 0);
	if (edge_query_param(r, "cursor", cursor, sizeof(cursor)) != NULL)
		rq.cursor = cm_arena_strndup(&r->arena, cursor, strlen(cursor));
	if (rq.cursor == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	edge_call(r, &rq.base);
}

void
edge_reply_chat_messages(edge_req *r, cm_rpc_result *res)
{
	Chat__MessageList *l;
	json_t            *items = json_array(), *o;

	if ((l = (Chat__MessageList *)edge_reply_unpack(r, res, &chat__message_list__descriptor)) ==
	    NULL) {
		json_decref(items);
		return;
	}
	for (size_t i = 0; i < l->n_messages; i++)
		json_array_append_new(items, message_json(l->messages[i]));
	o = json_pack("{s:o}", "items", items);
	json_object_set_new(o, "next_cursor",
	                    l->next_cursor[0] != '\0' ? json_string(l->next_cursor) : json_null());
	chat__message_list__free_unpacked(l, NULL);
	edge_set_json(r, 200, o);
	edge_respond(r);
}

void
edge_start_chat_send(edge_req *r)
{
	Chat__SendRequest rq = CHAT__SEND_REQUEST__INIT;

	if ((rq.content = body_string(r, "content", 400)) == NULL)
		return;
	rq.chat_id = r->params[0];
	edge_call(r, &rq.base);
}

void
edge_reply_chat_send(edge_req *r, cm_rpc_result *res)
{
	Chat__Message *m;

	if ((m = (Chat__Message *)edge_reply_unpack(r, res, &chat__message__descriptor)) == NULL)
		return;
	edge_set_json(r, 200, message_json(m));
	chat__message__free_unpacked(m, NULL);
	edge_respond(r);
}

/* ---- legacy ------------------------------------------------------------------------------------
 */

void
edge_start_legacy_chat(edge_req *r)
{
	Chat__SendRequest rq = CHAT__SEND_REQUEST__INIT;

	if ((rq.content = body_string(r, "message", 422)) == NULL)
		return;
	rq.chat_id = (char *)"";
	rq.use_selected = true;
	rq.legacy = true;
	edge_call(r, &rq.base);
}

void
edge_reply_legacy_chat(edge_req *r, cm_rpc_result *res)
{
	Chat__Message *m;

	if (legacy_no_pdf(r, res))
		return;
	if ((m = (Chat__Message *)edge_reply_unpack(r, res, &chat__message__descriptor)) == NULL)
		return;
	edge_set_json(r, 200,
	              json_pack("{s:s, s:s}", "response", m->content, "timestamp", m->created_at));
	chat__message__free_unpacked(m, NULL);
	edge_respond(r);
}

void
edge_start_legacy_history(edge_req *r)
{
	Chat__HistoryRequest rq = CHAT__HISTORY_REQUEST__INIT;

	rq.use_selected = true;
	edge_call(r, &rq.base);
}

void
edge_reply_legacy_history(edge_req *r, cm_rpc_result *res)
{
	Chat__History *h;
	json_t        *turns = json_array();

	if (legacy_no_pdf(r, res) ||
	    (h = (Chat__History *)edge_reply_unpack(r, res, &chat__history__descriptor)) == NULL) {
		json_decref(turns);
		return;
	}
	for (size_t i = 0; i < h->n_turns; i++)
		json_array_append_new(turns, json_pack("{s:s, s:s, s:s}", "user", h->turns[i]->user,
		                                       "assistant", h->turns[i]->assistant,
		                                       "timestamp", h->turns[i]->timestamp));
	chat__history__free_unpacked(h, NULL);
	edge_set_json(r, 200, json_pack("{s:o}", "history", turns));
	edge_respond(r);
}

void
edge_reply_legacy_clear(edge_req *r, cm_rpc_result *res)
{
	Chat__ClearResponse *c;

	if (legacy_no_pdf(r, res) || (c = (Chat__ClearResponse *)edge_reply_unpack(
	                                  r, res, &chat__clear_response__descriptor)) == NULL)
		return;
	chat__clear_response__free_unpacked(c, NULL);
	edge_set_json(r, 200, json_pack("{s:s}", "message", "Chat history cleared"));
	edge_respond(r);
}
