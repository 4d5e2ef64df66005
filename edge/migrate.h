/*
 * migrate.h - gradual migration from the old backend: which legacy requests it still answers.
 *
 * The legacy /api routes are served by the new services; the old backend (the monolith they
 * replace, EDGE_LEGACY_BACKEND_URL, spoken to over HTTP through httpproxy.h) can take a share of
 * them while the move is under way:
 *   - EDGE_LEGACY_SHARE percent of the users: a user's id (the authenticated subject; the client
 *     address for an anonymous request) is hashed into a bucket 0..99 and goes to the old backend
 *     when the bucket is below the share. Sticky: a user stays on one side for as long as the share
 *     is unchanged, on every edge replica (the hash is fixed, unseeded), and raising the share only
 *     moves users from the new side to the old one (lowering it, the other way).
 *   - EDGE_LEGACY_USERS: flagged user ids always go there.
 *   - EDGE_LEGACY_FALLBACK=1: a request decided for the new side whose call reaches no replica
 *     (none connected and not ejected, the service not configured, or the call refused unsent by
 *     the service's circuit breaker while it is open or by its pending limit) is answered by the
 *     old backend instead of 503. Only before any upstream call of the request reached a replica:
 *     one that did may have done its work, and is not repeated (so a half-open breaker's probe
 *     that fails is the client's error).
 *   - EDGE_LEGACY_ROUTES: the route names taking part; empty = every legacy route but
 *     legacy_login and legacy_logout, which make and end the edge's own session cookie (the old
 *     backend has none to give) and cannot be named.
 * The old backend learns the user from X-User-Id, set by the edge alone (EDGE_HTTPUP_IDENTITY).
 * Each answered request that took part is counted once in
 * edge_routing_total{route,target="new"|"old"|"old_fallback"}.
 */
#ifndef EDGE_MIGRATE_H
#define EDGE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "edge.h"

typedef enum edge_migrate_target {
	EDGE_MIGRATE_NONE = 0, /* the route takes no part */
	EDGE_MIGRATE_NEW,
	EDGE_MIGRATE_OLD,
} edge_migrate_target;

/* Reads the EDGE_LEGACY_* keys of cfg. *out is NULL when EDGE_LEGACY_BACKEND_URL is empty (and
 * then any other EDGE_LEGACY_* setting is an error: it would silently do nothing). With proxy
 * non-NULL the old backend is added to it as an upstream (before edge_httpproxy_start); NULL
 * (tests) decides without one. CM_EINVAL with why filled for a bad URL, an unknown or
 * non-legacy route name, an empty or too long user id. */
CM_MUSTCHECK cm_err edge_migrate_alloc(edge_migrate **out, const edge_config *cfg,
                                       edge_httpproxy *proxy, char *why, size_t whylen);
void                edge_migrate_free(edge_migrate *m);

/* Reload (SIGHUP, reload.c): EDGE_LEGACY_SHARE, _USERS, _ROUTES and _FALLBACK as rules to install
 * while requests go on (the backend's URL needs a restart). CM_EINVAL with why as for
 * edge_migrate_alloc. */
typedef struct edge_migrate_rules edge_migrate_rules;
CM_MUSTCHECK cm_err edge_migrate_rules_alloc(edge_migrate_rules **out, const edge_config *cfg,
                                             char *why, size_t whylen);
void                edge_migrate_rules_free(edge_migrate_rules *rules);
/* Installs rules (taking them) and returns those replaced: a decision that started before may
 * still read them, so free them only after a grace period. */
edge_migrate_rules *edge_migrate_swap(edge_migrate *m, edge_migrate_rules *rules);

/* The bucket 0..99 of a user key (stable across processes and builds). */
unsigned edge_migrate_bucket(const char *key);

/* Where a request of route rt (a pointer into edge_routes()) goes, for user (NULL or "" when
 * anonymous) from client_addr. Pure; m NULL: EDGE_MIGRATE_NONE. */
edge_migrate_target edge_migrate_decide(const edge_migrate *m, const edge_route *rt,
                                        const char *user, const char *client_addr);

/* server.c, after authentication and before the route's start: decides for r, and when r goes to
 * the old backend forwards it there and returns true (r is consumed). */
bool edge_migrate_route(edge_req *r);
/* exchange.c, when an upstream call of r reached no replica (none to call, or refused unsent):
 * true when the old backend takes r instead (r is consumed); false leaves r to the caller's 503.
 * Called on the event loop or on an nng thread (a refused call's answer). */
bool edge_migrate_fall_back(edge_req *r);
/* server.c, as r is answered: counts where it went (nothing when it took no part). */
void edge_migrate_observe(edge_req *r);

#endif
