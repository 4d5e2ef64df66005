/*
 * throttle.h - login throttling per (account, client address), per address, and a ceiling per
 * account, so that a stranger cannot lock the owner out.
 *
 * Failed logins are counted in Redis over a fixed window (shared by all replicas); when Redis is
 * unavailable a per-process table takes over, so a Redis outage weakens nothing but the sharing.
 * Three counters, each refused at its limit (CM_ELIMIT with retry_after) before the password is
 * even checked:
 *   - (account, address): account_max. Guessing one account from one place stops; the owner,
 *     at another address, is not affected.
 *   - address: addr_max over all accounts (spraying many accounts from one place). An empty
 *     address (the edge could not tell) has no flood counter: it is no one client.
 *   - account: account_ceiling over all addresses (guessing spread over many places). Addresses
 *     that logged in to the account successfully within KNOWN_TTL are exempt, so the owner's
 *     usual address still gets in while the account is under a distributed attack.
 * A success clears the (account, address) counter and marks the address known for the account.
 * Keys: auth:fail:pair:<h(account, address)>, auth:fail:addr:<address>,
 * auth:fail:acct:<h(account)>, auth:known:<h(account, address)>; h = SHA-256 of the lower-cased
 * account (no e-mail addresses in Redis).
 */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/redis.h"

typedef struct auth_throttle auth_throttle;

typedef struct auth_throttle_limits {
	int64_t account_max;     /* per (account, address) */
	int64_t addr_max;        /* per address, all accounts */
	int64_t account_ceiling; /* per account, all addresses not known to it */
	int64_t window_s;
} auth_throttle_limits;

auth_throttle *auth_throttle_alloc(auth_throttle_limits limits);
void           auth_throttle_free(auth_throttle *t);

/* CM_OK when a login may be tried; CM_ELIMIT (and *retry_s) when not. addr may be NULL or "". */
cm_err auth_throttle_check(auth_throttle *t, cm_redis *r, const char *account, const char *addr,
                           int64_t *retry_s);
void   auth_throttle_failed(auth_throttle *t, cm_redis *r, const char *account, const char *addr);
void auth_throttle_succeeded(auth_throttle *t, cm_redis *r, const char *account, const char *addr);

#endif
