/*
 * ratelimit.h - token buckets per client address and per user, in this edge process.
 *
 * Buckets live in a fixed table (hash of the key; a collision shares a bucket, which can only
 * make limiting stricter for the two keys) with striped locks. rate_per_s == 0 disables limiting.
 * Limits are per edge replica: with R replicas a client gets at most R times the rate.
 */
#ifndef EDGE_RATELIMIT_H
#define EDGE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct edge_limiter edge_limiter;

edge_limiter *edge_limiter_alloc(int64_t rate_per_s, int64_t burst);
void          edge_limiter_free(edge_limiter *l);

/* Takes one token from the address bucket (addr may be "" or NULL: skipped) and the user bucket
 * (user may be NULL). False when either is empty; *retry_s says when to come back. */
bool edge_limiter_take(edge_limiter *l, const char *addr, const char *user, int64_t *retry_s);

#endif
