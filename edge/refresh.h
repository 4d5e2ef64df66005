/*
 * refresh.h - renewing a browser session whose access token has expired.
 *
 * A request that carries the session cookie with an expired access token but a refresh token is
 * not turned away: the edge asks svc-auth to rotate the refresh token, continues the request
 * with the new access token, and sends the new cookie back. Refresh tokens are single use and a
 * reused one revokes the session, while a browser sends several requests at once when a page
 * loads: so concurrent renewals of the same cookie BY THE SAME CLIENT (address and User-Agent)
 * are coalesced into one RPC (single flight), and the result is remembered for a short while for
 * that client's requests that arrive just after it. Another client presenting the same old cookie
 * (a thief replaying it) is not handed the new pair: its renewal goes to svc-auth, which sees the
 * reuse and revokes the session.
 * The table is bounded (EDGE_RENEW_SLOTS) and only admits cookies whose access token verifies
 * (signature, algorithm, issuer, type; it may have expired up to the cookie's lifetime ago) and
 * whose session is not revoked; a forged cookie gets no slot and the request goes on
 * unauthenticated (401 on a route that needs a session). Each client address and each user holds
 * at most EDGE_RENEW_SHARE slots at once; beyond that, or with the table full, the request gets
 * 503 with Retry-After (renew_unavailable).
 * (Per edge replica: two replicas renewing the same cookie in the same second would still
 * collide; sticky routing by cookie at the load balancer avoids that.)
 */
#ifndef EDGE_REFRESH_H
#define EDGE_REFRESH_H

#include <stdint.h>

#include "edge.h"

#define EDGE_RENEW_SLOTS 256
#define EDGE_RENEW_SHARE 8

typedef struct edge_refresher edge_refresher;

edge_refresher *edge_refresher_alloc(void);
void            edge_refresher_free(edge_refresher *f);

/* Renews r's session from r->cookie_refresh, then calls next(r) with r->authed, r->claims and
 * r->set_cookie updated (or r->authed false and the cookie cleared when renewal failed, or
 * r->renew_unavailable set when svc-auth or a slot could not be had). */
void edge_session_renew(edge_req *r, void (*next)(edge_req *r));

/* Exposed for tests: the table's admission of one renewal, without the RPC. key names the
 * (refresh token, client) pair, addr the client address ("" = unknown: no address share), sub the
 * cookie's verified user. A START leaves the slot busy (as an RPC in flight would) until the
 * refresher is freed. */
typedef enum edge_renew_claim {
	EDGE_RENEW_START, /* a new slot: this caller makes the RPC */
	EDGE_RENEW_JOIN,  /* the same client's renewal is in flight: wait for it */
	EDGE_RENEW_DONE,  /* the same client's renewal finished a moment ago: reuse its result */
	EDGE_RENEW_FULL   /* no free slot, or the address or user is over its share */
} edge_renew_claim;
edge_renew_claim edge_refresher_claim(edge_refresher *f, const unsigned char key[32],
                                      const char *addr, const char *sub, int64_t now_ms);

#endif
