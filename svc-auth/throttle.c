/*
 * throttle.c - failed-login counters in Redis with a local fallback table.
 *
 * DESIGN. Redis holds the counters all replicas share (INCR with an expiry = a fixed window).
 * When a Redis call fails, the same count goes to a per-process table: LOCAL_SETS sets of
 * LOCAL_WAYS slots {key, count, window start} under one mutex. Slots are chosen by SipHash with a
 * random per-process key, so nobody can pick account names that land on a victim's slot. Reading
 * never evicts; a new key takes an empty or expired way, else the way with the fewest failures
 * (evicting can only forget a count, never invent one).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/log.h"
#include "cm/util.h"
#include "throttle.h"

#define LOCAL_SETS 1024
#define LOCAL_WAYS 4

typedef struct local_slot {
	uint64_t key; /* 0 = empty */
	int64_t  count;
	int64_t  window_start_ms;
} local_slot;

struct auth_throttle {
	auth_throttle_limits lim;
	unsigned char        hkey[crypto_shorthash_KEYBYTES];
	pthread_mutex_t      mtx;
	local_slot           slots[LOCAL_SETS][LOCAL_WAYS];
};

auth_throttle *
auth_throttle_alloc(auth_throttle_limits limits)
{
	auth_throttle *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->lim = limits;
		cm_random_bytes(t->hkey, sizeof(t->hkey));
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

/* The local table's key for a Redis key (never 0). */
static uint64_t
local_key(const auth_throttle *t, const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t      k;

	crypto_shorthash(h, (const unsigned char *)key, strlen(key), t->hkey);
	memcpy(&k, h, sizeof(k));
	return k != 0 ? k : 1;
}

/* Redis key for an account (hashed: no e-mail addresses in Redis) and its local key. */
static void
account_key(const auth_throttle *t, const char *account, char key[96], uint64_t *k64)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char          lower[256], hex[65];
	size_t        i;

	for (i = 0; account[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)account[i]);
	lower[i] = '\0';
	crypto_hash_sha256(h, (const unsigned char *)lower, i);
	cm_hex(h, 16, hex);
	snprintf(key, 96, "auth:fail:acct:%s", hex);
	*k64 = local_key(t, key);
}

static void
addr_key(const auth_throttle *t, const char *addr, char key[96], uint64_t *k64)
{
	snprintf(key, 96, "auth:fail:addr:%.64s", addr);
	*k64 = local_key(t, key);
}

static bool
live(const auth_throttle *t, const local_slot *s, int64_t now)
{
	return s->key != 0 && now - s->window_start_ms < t->lim.window_s * 1000;
}

/* The live slot of key k, or NULL. Caller holds the mutex. */
static local_slot *
local_find(auth_throttle *t, uint64_t k, int64_t now)
{
	local_slot *set = t->slots[k % LOCAL_SETS];

	for (int i = 0; i < LOCAL_WAYS; i++)
		if (set[i].key == k && live(t, &set[i], now))
			return &set[i];
	return NULL;
}

/* The slot of key k, taking a way for it when it has none. Caller holds the mutex. */
static local_slot *
local_take(auth_throttle *t, uint64_t k, int64_t now)
{
	local_slot *set = t->slots[k % LOCAL_SETS], *s;

	if ((s = local_find(t, k, now)) != NULL)
		return s;
	s = &set[0];
	for (int i = 0; i < LOCAL_WAYS; i++) {
		if (!live(t, &set[i], now)) {
			s = &set[i];
			break;
		}
		if (set[i].count < s->count)
			s = &set[i];
	}
	s->key = k;
	s->count = 0;
	s->window_start_ms = now;
	return s;
}

/* Count and seconds left for one key, from Redis or the local table. */
static void
read_count(auth_throttle *t, cm_redis *r, const char *key, uint64_t k64, int64_t *count,
           int64_t *ttl)
{
	int64_t now = cm_mono_ms();

	if (cm_redis_get_counter(r, key, count, ttl) == CM_OK)
		return;
	pthread_mutex_lock(&t->mtx);
	{
		const local_slot *s = local_find(t, k64, now);
		*count = s != NULL ? s->count : 0;
		*ttl = s != NULL ? t->lim.window_s - (now - s->window_start_ms) / 1000 : 0;
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
	local_take(t, k64, cm_mono_ms())->count++;
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
	account_key(t, account, key, &k64);
	read_count(t, r, key, k64, &n, &ttl);
	if (n >= t->lim.account_max) {
		*retry_s = ttl > 0 ? ttl : 1;
		return CM_ELIMIT;
	}
	if (addr != NULL && addr[0] != '\0') {
		addr_key(t, addr, key, &k64);
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

	account_key(t, account, key, &k64);
	add_failure(t, r, key, k64);
	if (addr != NULL && addr[0] != '\0') {
		addr_key(t, addr, key, &k64);
		add_failure(t, r, key, k64);
	}
}

void
auth_throttle_succeeded(auth_throttle *t, cm_redis *r, const char *account)
{
	char     key[96];
	uint64_t k64;

	account_key(t, account, key, &k64);
	if (cm_redis_del(r, key) != CM_OK)
		cm_debug("AUTH-THROTTLE-LOCAL",
		         "Redis unavailable: clearing the local counter only");
	pthread_mutex_lock(&t->mtx);
	{
		local_slot *s = local_find(t, k64, cm_mono_ms());
		if (s != NULL)
			s->key = 0;
	}
	pthread_mutex_unlock(&t->mtx);
}
