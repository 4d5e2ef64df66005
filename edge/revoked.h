/*
 * revoked.h - the sessions svc-auth has revoked, as a local set the request path reads without
 * any I/O.
 *
 * An access token is a signed statement that lives AUTH_ACCESS_TTL_S; logging out (or refresh-
 * token reuse, which revokes the session) cannot unsign it. svc-auth therefore writes each revoked
 * session id to Redis (sorted set auth:revoked, scored by the revocation time on Redis's clock,
 * trimmed after auth:revoked:keep milliseconds: the access lifetime plus the edge's leeway; see
 * svc-auth/revoke.h). A background thread here reads what was added since its last read in one
 * round trip every EDGE_REVOKED_POLL_MS and keeps each id until its keep time has passed, so a
 * revoked session's tokens are refused on every route within about half a second.
 *
 * While Redis is unreachable the set keeps what it had (entries still expire on time) and the
 * thread keeps trying; revocations made meanwhile reach the edge when Redis is back (svc-auth
 * retries its writes), at worst when the tokens expire by themselves.
 * Thread-safe: edge_revoked_has may be called from any thread at any time between start and stop.
 */
#ifndef EDGE_REVOKED_H
#define EDGE_REVOKED_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"

#define EDGE_REVOKED_POLL_MS 500

typedef struct edge_revoked edge_revoked;

/* Starts the poller on Redis host:port. An empty or NULL host turns the check off: *out is NULL
 * and CM_OK is returned (every session counts as not revoked). */
CM_MUSTCHECK cm_err edge_revoked_start(edge_revoked **out, const char *host, int64_t port);
/* Stops the poller and frees the set; NULL is fine. */
void edge_revoked_stop(edge_revoked *v);

/* Whether session sid has been revoked (false for NULL v, NULL or empty sid). Never blocks on
 * I/O: a read lock around a hash lookup. */
bool edge_revoked_has(edge_revoked *v, const char *sid);

/* Polls that reached Redis so far (tests wait on it). */
uint64_t edge_revoked_polls(edge_revoked *v);

#endif
