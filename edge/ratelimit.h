/*
 * ratelimit.h - rate limits per client address and per user, per route, shared by every edge
 * replica through Redis, with buckets in this process when Redis is away.
 *
 * Limits. EDGE_RATE_PER_S / EDGE_RATE_BURST apply to every route, all of them drawing on one
 * bucket per address and one per user. EDGE_ROUTE_LIMITS overrides single routes with their own
 * buckets: "v1_login=2/10,v1_doc_upload=0.5/5" (edge_route.name = rate per second / burst; burst
 * may be left out: then it is the rate, rounded up; a rate of 0 turns the route's limit off).
 * A request is admitted when both its buckets (address, user) have room; addr "" or NULL and
 * user NULL are not limited.
 *
 * Shared. With EDGE_REDIS_HOST set, a decision is one EVAL on Redis (GCRA, Redis's clock), over
 * a connection of the calling thread (opened on its first decision, closed by edge_limiter_free;
 * timeout EDGE_RATE_REDIS_TIMEOUT_MS). R edge replicas then admit the rate once, not R times.
 * When Redis cannot answer, the decision is taken on this process's buckets (each replica then
 * admits the rate), the edge_ratelimit_backend{backend="redis"|"local"} gauges say which is in
 * use, and the change is logged (EDGE-RATE-LOCAL / EDGE-RATE-REDIS). A route whose limit is off
 * costs no Redis call. Rejections count in edge_ratelimit_rejected_total{route,scope}.
 *
 * Reload (SIGHUP, reload.c): the limits are an immutable table that edge_limiter_swap replaces
 * while decisions go on; a decision reads one table from start to end. Redis settings stay.
 *
 * Threads: take is safe from any number of threads; free only once none takes any more.
 */
#ifndef EDGE_RATELIMIT_H
#define EDGE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct edge_limiter  edge_limiter;
typedef struct edge_rl_table edge_rl_table;
typedef struct edge_config   edge_config;
typedef struct cm_metrics    cm_metrics;

/* Reads rate_per_s, rate_burst, route_limits, redis_host/port and rate_redis_timeout_ms from c
 * (nothing of c is kept). metrics may be NULL. NULL when EDGE_ROUTE_LIMITS is malformed or names
 * a route that does not exist (logged: EDGE-RATE-CONFIG), or on allocation failure. */
edge_limiter *edge_limiter_alloc(const edge_config *c, cm_metrics *metrics);
void          edge_limiter_free(edge_limiter *l);

/* The limits of c (rate_per_s, rate_burst, route_limits) as a table for edge_limiter_swap. NULL
 * when EDGE_ROUTE_LIMITS is malformed or names an unknown route (logged: EDGE-RATE-CONFIG). */
edge_rl_table *edge_limiter_table_alloc(const edge_config *c);
void           edge_limiter_table_free(edge_rl_table *t);
/* Installs t (taking it) and returns the table it replaces, which decisions that started before
 * may still read: free it only after a grace period longer than any decision (one Redis round
 * trip, EDGE_RATE_REDIS_TIMEOUT_MS). */
edge_rl_table *edge_limiter_swap(edge_limiter *l, edge_rl_table *t);

/* Admits one request of the route (NULL: one with no override, counted as route "-") from addr
 * and user, taking from both buckets. False when either is empty: *retry_s (>= 1) says when to
 * come back. Blocks for at most one Redis round trip. */
bool edge_limiter_take_route(edge_limiter *l, const char *route, const char *addr, const char *user,
                             int64_t *retry_s);
/* edge_limiter_take_route without a route: the default limit. */
bool edge_limiter_take(edge_limiter *l, const char *addr, const char *user, int64_t *retry_s);

/* The decisions' backend now: true while Redis answers them (for tests and /metrics). */
bool edge_limiter_shared(edge_limiter *l);

#endif
