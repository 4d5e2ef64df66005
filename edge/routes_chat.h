/*
 * routes_chat.h - adapters of the chat routes (routes_chat.c).
 */
#ifndef EDGE_ROUTES_CHAT_H
#define EDGE_ROUTES_CHAT_H

#include "edge.h"

/* v1: POST /api/v1/documents/{id}/chats, GET and POST /api/v1/chats/{id}/messages. */
void edge_start_chat_create(edge_req *r);
void edge_reply_chat_create(edge_req *r, cm_rpc_result *res);
void edge_start_chat_messages(edge_req *r);
void edge_reply_chat_messages(edge_req *r, cm_rpc_result *res);
void edge_start_chat_send(edge_req *r);
void edge_reply_chat_send(edge_req *r, cm_rpc_result *res);

/* legacy: POST /api/chat (and /api/chat/), GET and DELETE /api/chat/history. */
void edge_start_legacy_chat(edge_req *r);
void edge_reply_legacy_chat(edge_req *r, cm_rpc_result *res);
void edge_start_legacy_history(edge_req *r);
void edge_reply_legacy_history(edge_req *r, cm_rpc_result *res);
void edge_reply_legacy_clear(edge_req *r, cm_rpc_result *res);

#endif
