/*
 * turn.h - one question and its answer (chat.Send, after the chat is known).
 *
 *   1. admission: a slot of this replica (turn_slots); then pdf.Search is sent (it runs during
 *      steps 2 and 3) and the user's slot taken (CHAT_USER_TURNS over all replicas, counted in
 *      PostgreSQL); either refusal is RESOURCE_EXHAUSTED with retry_after_s, and nothing is
 *      stored;
 *   2. the user's message is stored with the turn's row (the same statement);
 *   3. the earlier turns are read, the passages built from the search (retrieve.h), the prompt
 *      built (prompt.h);
 *   4. the answer is generated - streamed from the model, or the offline provider's - and each
 *      delta is published on "chat.<id>" (chat.delta) as it arrives;
 *   5. its citations are parsed (cite.h: pages that exist in the document), and the message is
 *      stored once, then chat.done is published.
 *
 * From step 2 on the answer is always stored, whatever happens to the caller: generation is
 * bounded by CHAT_TURN_TIMEOUT_MS from the start of the turn, not by the RPC deadline, and the
 * final statements get CHAT_STORE_TIMEOUT_MS of their own. A failure after step 2 (svc-pdf
 * unreachable, the model failing before or during its stream) stores the message as
 * "incomplete" with what was written so far and the reason; the v1 caller then gets an error
 * status (DEADLINE_EXCEEDED when the model ran out of time, NOT_FOUND when the document has
 * gone, UNAVAILABLE otherwise; the message names the reason and the stored message's id), the
 * legacy caller a Message whose content explains it plainly (logged as
 * CHAT-LEGACY-FAILURE and counted in chat_legacy_failures_total).
 */
#ifndef CHAT_TURN_H
#define CHAT_TURN_H

#include <stdbool.h>

#include "cm/buf.h"
#include "cm/rpc.h"
#include "proto/chat.pb-c.h"
#include "server.h"
#include "store.h"

/* Answers content in chat (the caller's, already checked) and fills out with the assistant's
 * message. content has passed the handler's checks (non-empty, <= CHAT_MAX_MESSAGE, UTF-8). */
CM_MUSTCHECK cm_err chat_turn(cm_rpc_ctx *ctx, chat_worker *w, const chat_row *chat,
                              const char *content, bool legacy, Chat__Message *out);

/* What the legacy routes show for an incomplete answer: the text written so far (may be ""),
 * then the reason in a sentence. */
CM_MUSTCHECK cm_err chat_explain(const char *partial, const char *why, cm_buf *out);

#endif
