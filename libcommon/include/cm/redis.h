/*
 * redis.h - Redis for one thread: a cache and a coordinator, never the only copy of anything.
 *
 * One cm_redis per thread. Opening never fails because Redis is down. Every command has a timeout
 * (CM_REDIS_TIMEOUT_MS by default); after a failure the handle waits CM_REDIS_RETRY_MS before it
 * tries to reconnect, so while Redis is down every call fails at once with CM_EUNAVAIL and
 * callers degrade (skip the cache, use a local limit) instead of stalling.
 * No hiredis type is visible here.
 */
#ifndef CM_REDIS_H
#define CM_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/err.h"

typedef struct cm_redis cm_redis;

/* host may be NULL or "" to disable Redis entirely (every call then returns CM_EUNAVAIL). */
CM_MUSTCHECK cm_err cm_redis_open(cm_redis **out, const char *host, int port, int timeout_ms);
void                cm_redis_close(cm_redis *r);

bool        cm_redis_ping(cm_redis *r);
const char *cm_redis_errmsg(const cm_redis *r); /* last failure, "" when none */

/* GET: *found false when the key does not exist; the value is appended to out. */
CM_MUSTCHECK cm_err cm_redis_get(cm_redis *r, const char *key, cm_buf *out, bool *found);
/* SET with an expiry in seconds (0 = none). */
CM_MUSTCHECK cm_err cm_redis_set(cm_redis *r, const char *key, const void *val, size_t len,
                                 int64_t ttl_s);
CM_MUSTCHECK cm_err cm_redis_del(cm_redis *r, const char *key);
/* INCR, and set the expiry when the key is new; gives the new count and the key's TTL left. */
CM_MUSTCHECK cm_err cm_redis_incr_window(cm_redis *r, const char *key, int64_t window_s,
                                         int64_t *count, int64_t *ttl_left_s);
/* Reads a counter and its TTL without changing it (0 and 0 when absent). */
CM_MUSTCHECK cm_err cm_redis_get_counter(cm_redis *r, const char *key, int64_t *count,
                                         int64_t *ttl_left_s);

/* EVAL of a Lua script whose reply is an integer. keys/args are C strings. */
CM_MUSTCHECK cm_err cm_redis_eval_int(cm_redis *r, const char *script, int nkeys,
                                      const char *const *keys, int nargs, const char *const *args,
                                      int64_t *out);
/* EVAL of a Lua script whose reply is a flat array of integers and strings (a Lua table of
 * numbers and strings; nil/false elements come back as ""). Each element is appended to out as
 * text with its terminating NUL, in order, and *n counts them (capped by out's cap: CM_ETOOBIG). */
CM_MUSTCHECK cm_err cm_redis_eval_list(cm_redis *r, const char *script, int nkeys,
                                       const char *const *keys, int nargs, const char *const *args,
                                       cm_buf *out, size_t *n);

#endif
