/*
 * throttle.h - login throttling per account and per client address.
 *
 * Failed logins are counted in Redis over a fixed window (shared by all replicas); when Redis is
 * unavailable a per-process table takes over, so a Redis outage weakens nothing but the sharing.
 * An account or address at its limit is refused (CM_ELIMIT with retry_after) before the password
 * is even checked, so guessing cannot continue. A success clears the account's counter. An empty
 * address (the edge could not tell) is not counted: it is no one client.
 * Keys: auth:fail:acct:<sha256(lower(account))>, auth:fail:addr:<address>.
 */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/redis.h"

typedef struct auth_throttle auth_throttle;

typedef struct auth_throttle_limits {
	int64_t account_max;
	int64_t addr_max;
	int64_t window_s;
} auth_throttle_limits;

auth_throttle *auth_throttle_alloc(auth_throttle_limits limits);
void           auth_throttle_free(auth_throttle *t);

/* CM_OK when a login may be tried; CM_ELIMIT (and *retry_s) when not. */
cm_err auth_throttle_check(auth_throttle *t, cm_redis *r, const char *account, const char *addr,
                           int64_t *retry_s);
void   auth_throttle_failed(auth_throttle *t, cm_redis *r, const char *account, const char *addr);
void   auth_throttle_succeeded(auth_throttle *t, cm_redis *r, const char *account);

#endif
