/*
 * cascade.h - svc-chat follows svc-pdf's deletion log (pdf.Deletions): when a document is
 * deleted, its owner's chats about it go, with their messages and turns in progress (cascade.c).
 *
 * As in svc-qgen (its cascade.h): svc-pdf records the deletion in the transaction that deletes the
 * document, and every svc-chat replica runs a follower (libcommon cm/follow.h) that applies the
 * log and moves its cursor in one transaction, so no chat outlives its document, even when
 * svc-chat was down at the time of the deletion. A chat being created while the deletion is
 * applied is deleted with the others or refused (CM_FOLLOW_LIVE_DOCUMENT in store.c).
 */
#ifndef CHAT_CASCADE_H
#define CHAT_CASCADE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/pg.h"

/* Applies one deletion with pg inside the caller's transaction (a cm_follow_apply_fn; arg is
 * the chat_service): tombstones the document, deletes the owner's chats of it. Idempotent. */
CM_MUSTCHECK cm_err chat_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id,
                                       const char *owner);

#endif
