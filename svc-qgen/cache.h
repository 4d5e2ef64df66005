/*
 * cache.h - the set cache: finished question lists in Redis. The only file of svc-qgen that
 * builds a Redis key or calls Redis.
 *
 * A key names everything that makes a set: the document's bytes (sha256, never its id or
 * owner, so any user's identical request hits), the request (count, types, difficulty,
 * normalised topic, pages), the prompt version, the questions per call and the model that
 * wrote the questions. Create looks up the key of the model calls go to first
 * (qgen_cache_model); a runner stores under the key of the model that actually answered, and
 * not at all when several did, so a key never names a model that was not used.
 *
 * Redis is optional: a failure is a miss (get) or a skipped write (put), logged at debug.
 */
#ifndef QGEN_CACHE_H
#define QGEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "server.h"

#define QGEN_CACHE_KEY_LEN 160 /* bytes of a key, with its NUL */

/* What a set is made of: the parts of its key. */
typedef struct qgen_cache_spec {
	const char *sha256; /* the document's */
	int         count;
	const char *types;      /* "mcq", "open" or "mcq,open" */
	const char *difficulty; /* "easy", "medium", "hard" */
	const char *topic;      /* normalised, "" for none */
	int         first_page, last_page;
	int         per_call; /* QGEN_PER_CALL */
	const char *model;    /* "offline" for the offline provider */
} qgen_cache_spec;

/* The model a new set's calls go to first: the LLM client's, or "offline" without one. */
const char *qgen_cache_model(const qgen_service *s);

/* "qgen:set:v<prompt version>:<sha256>:<sha256 of the other parts>" into out. "" when the
 * cache is off (QGEN_CACHE_TTL_S 0). */
void qgen_cache_key(const qgen_service *s, const qgen_cache_spec *spec,
                    char out[QGEN_CACHE_KEY_LEN]);

/* Reads key ("" is a miss) into out; *found false on a miss or when Redis is down. */
void qgen_cache_get(qgen_worker *w, const char *key, cm_buf *out, bool *found);

/* Stores len bytes under key for QGEN_CACHE_TTL_S; best effort ("" or the cache off: nothing). */
void qgen_cache_put(qgen_worker *w, const char *key, const void *blob, size_t len);

#endif
