/*
 * handlers.h - svc-chat's RPC methods (proto/chat.proto), one function each:
 *
 *   chat.Create       CreateRequest  -> Chat         a chat about one of the caller's documents
 *   chat.Get          ChatRef        -> Chat         (the edge checks WebSocket subscriptions)
 *   chat.ListMessages ListRequest    -> MessageList  oldest first, keyset cursor
 *   chat.Send         SendRequest    -> Message      the answer, after its deltas were published
 *   chat.History      HistoryRequest -> History      legacy: the chat on the selected PDF
 *   chat.Clear        HistoryRequest -> ClearResponse legacy: empties that chat
 *
 * Every method acts for the envelope's subject (none: UNAUTHENTICATED). Another user's chat or
 * document, and a malformed id, are NOT_FOUND. Bad input: an empty or blank message, one over
 * CHAT_MAX_MESSAGE bytes, or not UTF-8 -> INVALID_ARGUMENT; limit out of 0..CHAT_LIST_MAX or a
 * bad cursor -> INVALID_ARGUMENT. Legacy calls without a selected PDF -> FAILED_PRECONDITION
 * "No PDF selected" (svc-pdf's answer, passed on). Too many answers in progress ->
 * RESOURCE_EXHAUSTED with retry_after_s. svc-pdf or PostgreSQL unreachable -> UNAVAILABLE.
 */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include "cm/rpc.h"

cm_err chat_handle_create(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err chat_handle_get(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err chat_handle_list(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err chat_handle_send(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err chat_handle_history(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err chat_handle_clear(cm_rpc_ctx *ctx, const void *req, void *resp);

#endif
