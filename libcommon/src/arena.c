/*
 * arena.c - per-request bump allocator: chunks of at least CHUNK bytes, freed together.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/arena.h"

#define CHUNK 4096

struct cm_arena_chunk {
	cm_arena_chunk *next;
	size_t          used, cap;
	alignas(max_align_t) unsigned char data[];
};

void
cm_arena_init(cm_arena *a)
{
	a->head = NULL;
}

void *
cm_arena_alloc(cm_arena *a, size_t n)
{
	const size_t    align = alignof(max_align_t);
	cm_arena_chunk *c = a->head;
	size_t          need = (n + align - 1) & ~(align - 1);
	void           *p;

	if (n == 0)
		need = align;
	if (need < n)
		return NULL; /* overflow */
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > CHUNK ? need : CHUNK;
		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += need;
	memset(p, 0, need);
	return p;
}

char *
cm_arena_strndup(cm_arena *a, const char *s, size_t n)
{
	char *p;

	if (n + 1 == 0 || (p = cm_arena_alloc(a, n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	return p;
}

void
cm_arena_reset(cm_arena *a)
{
	cm_arena_chunk *c = a->head, *keep = NULL, *next;

	/* Allocation zeroes, so a kept chunk needs only its mark moved back. */
	for (; c != NULL; c = next) {
		next = c->next;
		if (keep == NULL && c->cap == CHUNK)
			keep = c;
		else
			free(c);
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	a->head = keep;
}

void
cm_arena_fini(cm_arena *a)
{
	cm_arena_chunk *c = a->head, *next;

	while (c != NULL) {
		next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}
