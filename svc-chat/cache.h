/*
 * cache.h - the chats this replica has seen, by id, so that chat.Send finds its chat without a
 * round trip to PostgreSQL.
 *
 * What is cached never changes: a chat's owner, document, page count, legacy flag and creation
 * time are fixed when it is created. Only its existence can change (its document deleted): a
 * cached chat that has gone is caught by the turn's first statement, which stores the question
 * only when the chat row exists (store.h, chat_store_turn_begin), so the cache never lets a
 * turn into a chat that is not there. Direct-mapped (a new entry replaces whatever hashed to
 * its slot), one mutex; thread-safe. Owners longer than CHAT_CACHE_OWNER bytes are not cached.
 */
#ifndef CHAT_CACHE_H
#define CHAT_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "store.h"

#define CHAT_CACHE_SLOTS 4096
#define CHAT_CACHE_OWNER 128

typedef struct chat_cache chat_cache;

CM_MUSTCHECK cm_err chat_cache_alloc(chat_cache **out);
void                chat_cache_free(chat_cache *c);

/* The chat `id` when it is cached as owner's; false otherwise (also for another owner's). */
bool chat_cache_get(chat_cache *c, const char *id, const char *owner, chat_row *out);
void chat_cache_put(chat_cache *c, const char *owner, const chat_row *row);

#endif
