/*
 * revoke.h - telling the edges that a session has ended.
 *
 * Access tokens are verified by the edge alone, so a session revoked in PostgreSQL (logout,
 * refresh-token reuse) would keep working on most routes until its tokens expire. Each revocation
 * is therefore also written to Redis, where every edge polls for it (edge/revoked.h): the sorted
 * set auth:revoked, member = session id, score = the revocation time on Redis's own clock (one
 * clock for every writer, so an edge can read "what is new since my last poll"), trimmed after
 * keep_ms (the access lifetime plus the edge's leeway), and auth:revoked:keep = keep_ms, which
 * tells the edges how long to remember an id. Both keys expire keep_ms after the last write.
 *
 * A write that Redis cannot take is queued in the process and retried by a background thread
 * every second until it lands (bounded: the oldest ids go first when the queue overflows; their
 * tokens expire by themselves), so a revocation made while Redis is down reaches the edges when
 * it is back. Thread-safe.
 */
#ifndef AUTH_REVOKE_H
#define AUTH_REVOKE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/redis.h"

typedef struct auth_revoker auth_revoker;

CM_MUSTCHECK cm_err auth_revoker_alloc(auth_revoker **out, int64_t keep_ms);
void                auth_revoker_free(auth_revoker *rv); /* stops the thread first */

/* Writes sid on r (the caller's connection), or queues it when Redis cannot take it. NULL rv or
 * an empty sid: nothing. */
void auth_revoker_publish(auth_revoker *rv, cm_redis *r, const char *sid);

/* The retry thread, on its own connection to host:port ("" = Redis off: queued ids stay queued
 * and are dropped at stop). */
CM_MUSTCHECK cm_err auth_revoker_start(auth_revoker *rv, const char *host, int64_t port);
void                auth_revoker_stop(auth_revoker *rv);

/* Ids waiting for Redis (tests). */
size_t auth_revoker_pending(auth_revoker *rv);

#endif
