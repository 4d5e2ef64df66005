/*
 * cache.c - chats by id (see cache.h).
 *
 * DESIGN: a fixed array of slots indexed by an FNV-1a hash of the id; a lookup compares the
 * whole id and the owner, so a collision is a miss, never a wrong answer. One mutex around a
 * copy of under 300 bytes is cheaper than the round trip it saves.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

typedef struct slot {
	bool     used;
	char     owner[CHAT_CACHE_OWNER + 1];
	chat_row row;
} slot;

struct chat_cache {
	pthread_mutex_t mu;
	slot            slots[CHAT_CACHE_SLOTS];
};

static size_t
index_of(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % CHAT_CACHE_SLOTS;
}

cm_err
chat_cache_alloc(chat_cache **out)
{
	chat_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return CM_ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return CM_OK;
}

void
chat_cache_free(chat_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

bool
chat_cache_get(chat_cache *c, const char *id, const char *owner, chat_row *out)
{
	slot *s = &c->slots[index_of(id)];
	bool  hit;

	pthread_mutex_lock(&c->mu);
	hit = s->used && strcmp(s->row.id, id) == 0 && strcmp(s->owner, owner) == 0;
	if (hit)
		*out = s->row;
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void
chat_cache_put(chat_cache *c, const char *owner, const chat_row *row)
{
	slot *s = &c->slots[index_of(row->id)];

	if (strlen(owner) > CHAT_CACHE_OWNER)
		return;
	pthread_mutex_lock(&c->mu);
	s->used = true;
	memcpy(s->owner, owner, strlen(owner) + 1);
	s->row = *row;
	pthread_mutex_unlock(&c->mu);
}
