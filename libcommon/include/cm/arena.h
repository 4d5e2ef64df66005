/*
 * arena.h - a bump allocator for one request: many small allocations, one free.
 *
 * Memory is zeroed and aligned to max_align_t. Used for RPC responses (handlers never free what
 * they put in a response) and by the edge for protobuf messages built from JSON. Not thread-safe.
 */
#ifndef CM_ARENA_H
#define CM_ARENA_H

#include <stddef.h>

typedef struct cm_arena_chunk cm_arena_chunk;

typedef struct cm_arena {
	cm_arena_chunk *head;
} cm_arena;

void cm_arena_init(cm_arena *a);
/* NULL on allocation failure or overflow. */
void *cm_arena_alloc(cm_arena *a, size_t n);
char *cm_arena_strndup(cm_arena *a, const char *s, size_t n);
/* Forgets every allocation but keeps one chunk of the usual size for the next request (an RPC
 * worker reuses its arena call after call instead of a malloc/free per call). */
void cm_arena_reset(cm_arena *a);
void cm_arena_fini(cm_arena *a);

#endif
