/*
 * throttle.c - failed-login counters in Redis with a local fallback table.
 *
 * The local table is a fixed array of slots (hash of the key, count, window start) under one
 * mutex; a collision evicts the older entry, which can only forget a count, never invent one.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/log.h"
#include "cm/util.h"
#include "throttle.h"

#define LOCAL_SLOTS 4096

typedef struct local_slot {
	uint64_t key;
	int64_t  count;
	int64_t  window_start_ms;
} local_slot;

struct auth_throttle {
	auth_throttle_limits lim;
	pthread_mutex_t      mtx;
	local_slot           slots[LOCAL_SLOTS];
};

auth_throttle *
auth_throttle_alloc(auth_throttle_limits limits)
{
	auth_throttle *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->lim = limits;
		pthread_mutex_init(&t->mtx, NULL);
	}
	return t;
}

void
auth_throttle_free(auth_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mtx);
	free(t);
}

/* Redis key and a 64-bit local key for an account (hashed: no e-mail addresses in Redis). */
static void
account_key(const char *account, char key[96], uint64_t *k64)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char          lower[256], hex[65];
	size_t        i;

	for (i = 0; account[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char) tolower((unsigned char) account[i]);
	lower[i] = '\0';
	crypto_hash_sha256(h, (const unsigned char *) lower, i);
	cm_hex(h, 16, hex);
	snprintf(key, 96, "auth:fail:acct:%s", hex);
	memcpy(k64, h, sizeof(*k64));
}

static void
addr_key(const char *addr, char key[96], uint64_t *k64)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	snprintf(key, 96, "auth:fail:addr:%.64s", addr);
	crypto_hash_sha256(h, (const unsigned char *) key, strlen(key));
	memcpy(k64, h, sizeof(*k64));
}

static local_slot *
local_get(auth_throttle *t, uint64_t k, int64_t now)
{
	local_slot *s = &t->slots[k % LOCAL_SLOTS];

	if (s->key != k || now - s->window_start_ms >= t->lim.window_s * 1000) {
		s->key             = k;
		s->count           = 0;
		s->window_start_ms = now;
	}
	return s;
}

/* Count and seconds left for one key, from Redis or the local table. */
static void
read_count(auth_throttle *t, cm_redis *r, const char *key, uint64_t k64, int64_t *count, int64_t *ttl)
{
	int64_t now = cm_mono_ms();

	if (cm_redis_get_counter(r, key, count, ttl) == CM_OK)
		return;
	pthread_mutex_lock(&t->mtx);
	{
		local_slot *s = local_get(t, k64, now);
		*count        = s->count;
		*ttl          = t->lim.window_s - (now - s->window_start_ms) / 1000;
	}
	pthread_mutex_unlock(&t->mtx);
}

static void
add_failure(auth_throttle *t, cm_redis *r, const char *key, uint64_t k64)
{
	int64_t n, ttl;

	if (cm_redis_incr_window(r, key, t->lim.window_s, &n, &ttl) == CM_OK)
		return;
	pthread_mutex_lock(&t->mtx);
	local_get(t, k64, cm_mono_ms())->count++;
	pthread_mutex_unlock(&t->mtx);
}

cm_err
auth_throttle_check(auth_throttle *t, cm_redis *r, const char *account, const char *addr,
    int64_t *retry_s)
{
	char     key[96];
	uint64_t k64;
	int64_t  n, ttl;

	*retry_s = 0;
	account_key(account, key, &k64);
	read_count(t, r, key, k64, &n, &ttl);
	if (n >= t->lim.account_max) {
		*retry_s = ttl > 0 ? ttl : 1;
		return CM_ELIMIT;
	}
	if (addr != NULL && addr[0] != '\0') {
		addr_key(addr, key, &k64);
		read_count(t, r, key, k64, &n, &ttl);
		if (n >= t->lim.addr_max) {
			*retry_s = ttl > 0 ? ttl : 1;
			return CM_ELIMIT;
		}
	}
	return CM_OK;
}

void
auth_throttle_failed(auth_throttle *t, cm_redis *r, const char *account, const char *addr)
{
	char     key[96];
	uint64_t k64;

	account_key(account, key, &k64);
	add_failure(t, r, key, k64);
	if (addr != NULL && addr[0] != '\0') {
		addr_key(addr, key, &k64);
		add_failure(t, r, key, k64);
	}
}

void
auth_throttle_succeeded(auth_throttle *t, cm_redis *r, const char *account)
{
	char     key[96];
	uint64_t k64;

	account_key(account, key, &k64);
	if (cm_redis_del(r, key) != CM_OK)
		cm_debug("AUTH-THROTTLE-LOCAL", "Redis unavailable: clearing the local counter only");
	pthread_mutex_lock(&t->mtx);
	{
		local_slot *s = &t->slots[k64 % LOCAL_SLOTS];
		if (s->key == k64)
			s->count = 0;
	}
	pthread_mutex_unlock(&t->mtx);
}
