/*
 * refresh.h - renewing a browser session whose access token has expired.
 *
 * A request that carries the session cookie with an expired access token but a refresh token is
 * not turned away: the edge asks svc-auth to rotate the refresh token, continues the request
 * with the new access token, and sends the new cookie back. Refresh tokens are single use and a
 * reused one revokes the session, while a browser sends several requests at once when a page
 * loads: so concurrent renewals of the same cookie are coalesced into one RPC (single flight),
 * and the result is remembered for a short while for requests that arrive just after it.
 * (Per edge replica: two replicas renewing the same cookie in the same second would still
 * collide; sticky routing by cookie at the load balancer avoids that.)
 */
#ifndef EDGE_REFRESH_H
#define EDGE_REFRESH_H

#include "edge.h"

typedef struct edge_refresher edge_refresher;

edge_refresher *edge_refresher_alloc(void);
void            edge_refresher_free(edge_refresher *f);

/* Renews r's session from r->cookie_refresh, then calls next(r) with r->authed, r->claims and
 * r->set_cookie updated (or r->authed false and the cookie cleared when renewal failed). */
void edge_session_renew(edge_req *r, void (*next)(edge_req *r));

#endif
