/*
 * store.h - svc-chat's SQL (schema "chat"): chats, messages, and the turns in progress.
 *
 * Every function takes the caller's connection (an RPC worker's) and is one statement or one
 * transaction of its own. Ids that come from callers must have passed cm_uuid_valid: the
 * handlers check before they ask (a malformed id is NOT_FOUND there, not a database error).
 * Errors: CM_ENOTFOUND (no such row, or not the owner's), CM_ELIMIT (turn limit), and cm_pg's.
 */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/limits.h"
#include "cm/pg.h"
#include "config.h"

typedef struct chat_row {
	char id[CM_UUID_LEN + 1];
	char document_id[CM_UUID_LEN + 1];
	int  pages;
	bool legacy;
	char created_at[40]; /* RFC 3339 UTC */
} chat_row;

/* One stored message; strings point into the rows they came from. */
typedef struct chat_msg_row {
	int64_t     seq;
	const char *id;
	const char *role; /* "user" | "assistant" */
	const char *content;
	const char *status; /* "complete" | "incomplete" */
	const char *error;
	const char *created_at;
	int         citations[CHAT_MAX_CITATIONS];
	int         ncitations;
} chat_msg_row;

typedef struct chat_msgs chat_msgs;
int                      chat_msgs_count(const chat_msgs *m);
void                     chat_msgs_get(const chat_msgs *m, int i, chat_msg_row *out);
void                     chat_msgs_free(chat_msgs *m);

/* ---- chats ------------------------------------------------------------------------------ */

/* A new (v1) chat of owner about a document of `pages` pages, with a fresh id. CM_ENOTFOUND when
 * the document's deletion has been applied (cascade.h): no chat is made for a deleted document. */
CM_MUSTCHECK cm_err chat_store_create(cm_pg *pg, const char *owner, const char *document_id,
                                      int pages, chat_row *out);
/* The owner's chat id. */
CM_MUSTCHECK cm_err chat_store_get(cm_pg *pg, const char *owner, const char *id, chat_row *out);
/* The owner's legacy chat of a document: created first when `create` (replicas may race: one
 * row wins), else CM_ENOTFOUND when there is none (or the document is deleted). */
CM_MUSTCHECK cm_err chat_store_legacy(cm_pg *pg, const char *owner, const char *document_id,
                                      int pages, bool create, chat_row *out);
/* Deletes owner's chats of a deleted document with their messages and turns in progress (the
 * cascade's work, inside its transaction); *deleted receives how many chats went. Idempotent. */
CM_MUSTCHECK cm_err chat_store_delete_document(cm_pg *pg, const char *document_id,
                                               const char *owner, int *deleted);

/* ---- messages ----------------------------------------------------------------------------- */

/* Messages of a chat after seq `after` (0: from the start), oldest first, at most limit. */
CM_MUSTCHECK cm_err chat_store_list(cm_pg *pg, const char *chat_id, int64_t after, int limit,
                                    chat_msgs **out);
/* The last n messages of a chat before seq `before`, oldest first. */
CM_MUSTCHECK cm_err chat_store_recent(cm_pg *pg, const char *chat_id, int64_t before, int n,
                                      chat_msgs **out);
/* Deletes every message of a chat; *deleted receives how many. */
CM_MUSTCHECK cm_err chat_store_clear(cm_pg *pg, const char *chat_id, int *deleted);

/* ---- turns -------------------------------------------------------------------------------- */

typedef struct chat_turn_begin {
	const char *turn_id; /* fresh UUID */
	const char *owner;
	const char *chat_id;
	const char *message_id; /* the user's message, fresh UUID */
	const char *content;
	int         user_limit; /* turns the owner may have in progress */
	int64_t     ttl_ms;     /* the turn row counts this long at most */
} chat_turn_begin;

/* In one statement (the function turn_begin), under the owner's advisory lock: drops the
 * owner's expired turns, counts the others (CM_ELIMIT when user_limit are in progress: nothing
 * is written), stores the user's message and records the turn. *seq receives that message's
 * seq (CM_ENOTFOUND when the chat has gone: nothing is written). */
CM_MUSTCHECK cm_err chat_store_turn_begin(cm_pg *pg, const chat_turn_begin *in, int64_t *seq);

typedef struct chat_answer {
	const char *turn_id;
	const char *chat_id;
	const char *message_id;
	const char *content;
	const int  *citations;
	int         ncitations;
	bool        complete;
	const char *error;        /* "" when complete */
	int         max_messages; /* kept per chat: older ones are deleted */
} chat_answer;

/* In one transaction: stores the assistant's message, ends the turn, drops the chat's messages
 * beyond max_messages (oldest first). created_at receives the message's time (RFC 3339).
 * CM_ENOTFOUND when the chat has gone meanwhile (its turn is ended all the same). */
CM_MUSTCHECK cm_err chat_store_turn_end(cm_pg *pg, const chat_answer *a, char created_at[40]);
/* Ends a turn that stores no answer (best effort: its row expires anyway). */
void chat_store_turn_drop(cm_pg *pg, const char *turn_id);

#endif
