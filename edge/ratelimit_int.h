/*
 * ratelimit_int.h - between ratelimit.c (limits, decisions, local buckets) and ratelimit_redis.c
 * (the shared buckets). Not for other files.
 */
#ifndef EDGE_RATELIMIT_INT_H
#define EDGE_RATELIMIT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"

#define EDGE_RL_MAX_ROUTES 64 /* overrides in EDGE_ROUTE_LIMITS */

typedef enum edge_rl_scope { EDGE_RL_ADDR, EDGE_RL_USER } edge_rl_scope;

typedef struct edge_rl_limit {
	char    name[48];    /* the route; "" for the default */
	double  rate;        /* per second; 0 = off */
	int64_t burst;       /* >= 1 */
	int64_t interval_us; /* 1 s / rate: GCRA's emission interval */
	char    tag[96];     /* names the limit's buckets: "<name or *>:<rate>/<burst>" */
} edge_rl_limit;

typedef struct edge_rl_redis edge_rl_redis;

/* NULL on allocation failure. Connections are opened per thread on first use. */
edge_rl_redis *edge_rl_redis_alloc(const char *host, int port, int timeout_ms);
/* Closes every thread's connection: no thread may take any more. */
void edge_rl_redis_free(edge_rl_redis *r);

/* One decision for addr and/or user (NULL: no such bucket) under lim, in one round trip on the
 * calling thread's connection. CM_OK: *admitted, and when refused the *scope that refused and
 * *retry_s (>= 1). Anything else: Redis could not decide (down, timeout, error reply). */
CM_MUSTCHECK cm_err edge_rl_redis_take(edge_rl_redis *r, const edge_rl_limit *lim, const char *addr,
                                       const char *user, bool *admitted, edge_rl_scope *scope,
                                       int64_t *retry_s);
/* The calling thread's last Redis failure, "" when none. */
const char *edge_rl_redis_errmsg(edge_rl_redis *r);

#endif
