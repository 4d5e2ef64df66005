/*
 * throttle.c - failed-login counters in Redis with a local fallback table (see throttle.h).
 *
 * DESIGN. Each operation is one Lua script, so a check, a failure or a success costs one round
 * trip whatever the number of counters. When a Redis call fails, the same operation runs on a
 * per-process table: LOCAL_SETS sets of LOCAL_WAYS slots {key, count, start, lifetime} under one
 * mutex. Slots are chosen by SipHash with a random per-process key, so nobody can pick account
 * names that land on a victim's slot. Reading never evicts; a new key takes an empty or expired
 * way, else the way with the fewest failures (evicting can only forget a count, never invent
 * one).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "throttle.h"

#define LOCAL_SETS 1024
#define LOCAL_WAYS 4
#define KNOWN_TTL_S (30 * 86400) /* an address stays known to an account this long */
#define KEY_LEN 112

typedef struct local_slot {
	uint64_t key; /* 0 = empty */
	int64_t  count;
	int64_t  start_ms;
	int64_t  life_ms;
} local_slot;

struct auth_throttle {
	auth_throttle_limits lim;
	unsigned char        hkey[crypto_shorthash_KEYBYTES];
	pthread_mutex_t      mtx;
	local_slot           slots[LOCAL_SETS][LOCAL_WAYS];
};

/* The keys of one login attempt: [0] pair, [1] address, [2] account, [3] known mark. */
typedef struct keys {
	char        k[4][KEY_LEN];
	const char *argv[4];
	uint64_t    k64[4];
	bool        has_addr;
} keys;

enum { K_PAIR, K_ADDR, K_ACCT, K_KNOWN };

/* KEYS pair, addr, acct, known; ARGV pair max, addr max, ceiling, has address. -> {which, ttl} */
static const char check_lua[] =
    "local function over(k, max) "
    "  local n = tonumber(redis.call('GET', k) or '0') or 0 "
    "  if n < tonumber(max) then return 0 end "
    "  local t = redis.call('TTL', k) if t < 1 then t = 1 end return t end "
    "local t = over(KEYS[1], ARGV[1]) if t > 0 then return {1, t} end "
    "if ARGV[4] == '1' then t = over(KEYS[2], ARGV[2]) if t > 0 then return {2, t} end end "
    "if redis.call('EXISTS', KEYS[4]) == 0 then "
    "  t = over(KEYS[3], ARGV[3]) if t > 0 then return {3, t} end end "
    "return {0, 0}";

/* KEYS pair, addr, acct; ARGV window, has address. INCR with the window set when new. */
static const char failed_lua[] =
    "local function bump(k) local n = redis.call('INCR', k) "
    "  if n == 1 or redis.call('TTL', k) < 0 then redis.call('EXPIRE', k, ARGV[1]) end end "
    "bump(KEYS[1]) if ARGV[2] == '1' then bump(KEYS[2]) end bump(KEYS[3]) return 0";

/* KEYS pair, known; ARGV known lifetime. */
static const char succeeded_lua[] =
    "redis.call('DEL', KEYS[1]) redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) return 0";

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

/* Hex of the first 16 bytes of SHA-256(lower(account) [NUL address]). */
static void
account_hash(const char *account, const char *addr, char hex[33])
{
	crypto_hash_sha256_state st;
	unsigned char            h[crypto_hash_sha256_BYTES];
	char                     lower[256];
	size_t                   i;

	for (i = 0; account[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)account[i]);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)lower, i);
	if (addr != NULL) { /* the NUL keeps ("ab", "c") apart from ("a", "bc") */
		crypto_hash_sha256_update(&st, (const unsigned char *)"", 1);
		crypto_hash_sha256_update(&st, (const unsigned char *)addr, strlen(addr));
	}
	crypto_hash_sha256_final(&st, h);
	cm_hex(h, 16, hex);
}

static void
make_keys(const auth_throttle *t, const char *account, const char *addr, keys *ks)
{
	char pair[33], acct[33];

	if (addr == NULL)
		addr = "";
	ks->has_addr = addr[0] != '\0';
	account_hash(account, addr, pair);
	account_hash(account, NULL, acct);
	snprintf(ks->k[K_PAIR], KEY_LEN, "auth:fail:pair:%s", pair);
	snprintf(ks->k[K_ADDR], KEY_LEN, "auth:fail:addr:%.64s", addr);
	snprintf(ks->k[K_ACCT], KEY_LEN, "auth:fail:acct:%s", acct);
	snprintf(ks->k[K_KNOWN], KEY_LEN, "auth:known:%s", pair);
	for (int i = 0; i < 4; i++) {
		ks->argv[i] = ks->k[i];
		ks->k64[i] = local_key(t, ks->k[i]);
	}
}

static bool
live(const local_slot *s, int64_t now)
{
	return s->key != 0 && now - s->start_ms < s->life_ms;
}

/* The live slot of key k, or NULL. Caller holds the mutex. */
static local_slot *
local_find(auth_throttle *t, uint64_t k, int64_t now)
{
	local_slot *set = t->slots[k % LOCAL_SETS];

	for (int i = 0; i < LOCAL_WAYS; i++)
		if (set[i].key == k && live(&set[i], now))
			return &set[i];
	return NULL;
}

/* The slot of key k, taking a way for it when it has none. Caller holds the mutex. */
static local_slot *
local_take(auth_throttle *t, uint64_t k, int64_t now, int64_t life_ms)
{
	local_slot *set = t->slots[k % LOCAL_SETS], *s;

	if ((s = local_find(t, k, now)) != NULL)
		return s;
	s = &set[0];
	for (int i = 0; i < LOCAL_WAYS; i++) {
		if (!live(&set[i], now)) {
			s = &set[i];
			break;
		}
		if (set[i].count < s->count)
			s = &set[i];
	}
	*s = (local_slot){k, 0, now, life_ms};
	return s;
}

/* Seconds left when key k is at max, else 0. Caller holds the mutex. */
static int64_t
local_over(auth_throttle *t, uint64_t k, int64_t max, int64_t now)
{
	const local_slot *s = local_find(t, k, now);
	int64_t           left;

	if (s == NULL || s->count < max)
		return 0;
	left = (s->life_ms - (now - s->start_ms)) / 1000;
	return left > 0 ? left : 1;
}

static int64_t
local_check(auth_throttle *t, const keys *ks)
{
	int64_t now = cm_mono_ms(), left;

	pthread_mutex_lock(&t->mtx);
	left = local_over(t, ks->k64[K_PAIR], t->lim.account_max, now);
	if (left == 0 && ks->has_addr)
		left = local_over(t, ks->k64[K_ADDR], t->lim.addr_max, now);
	if (left == 0 && local_find(t, ks->k64[K_KNOWN], now) == NULL)
		left = local_over(t, ks->k64[K_ACCT], t->lim.account_ceiling, now);
	pthread_mutex_unlock(&t->mtx);
	return left;
}

cm_err
auth_throttle_check(auth_throttle *t, cm_redis *r, const char *account, const char *addr,
                    int64_t *retry_s)
{
	char        max[3][24];
	const char *args[4] = {max[0], max[1], max[2], NULL};
	keys        ks;
	cm_buf      out;
	size_t      n = 0;
	int64_t     left = 0;

	*retry_s = 0;
	make_keys(t, account, addr, &ks);
	snprintf(max[0], sizeof(max[0]), "%lld", (long long)t->lim.account_max);
	snprintf(max[1], sizeof(max[1]), "%lld", (long long)t->lim.addr_max);
	snprintf(max[2], sizeof(max[2]), "%lld", (long long)t->lim.account_ceiling);
	args[3] = ks.has_addr ? "1" : "0";
	cm_buf_init(&out, 256);
	if (cm_redis_eval_list(r, check_lua, 4, ks.argv, 4, args, &out, &n) == CM_OK && n == 2) {
		if (strtoll(out.data, NULL, 10) != 0)
			left = strtoll(out.data + strlen(out.data) + 1, NULL, 10);
	} else {
		left = local_check(t, &ks);
	}
	cm_buf_fini(&out);
	if (left <= 0)
		return CM_OK;
	*retry_s = left;
	return CM_ELIMIT;
}

void
auth_throttle_failed(auth_throttle *t, cm_redis *r, const char *account, const char *addr)
{
	char        win[24];
	const char *args[2] = {win, NULL};
	keys        ks;
	int64_t     ignored, now, life;

	make_keys(t, account, addr, &ks);
	snprintf(win, sizeof(win), "%lld", (long long)t->lim.window_s);
	args[1] = ks.has_addr ? "1" : "0";
	if (cm_redis_eval_int(r, failed_lua, 3, ks.argv, 2, args, &ignored) == CM_OK)
		return;
	now = cm_mono_ms();
	life = t->lim.window_s * 1000;
	pthread_mutex_lock(&t->mtx);
	local_take(t, ks.k64[K_PAIR], now, life)->count++;
	if (ks.has_addr)
		local_take(t, ks.k64[K_ADDR], now, life)->count++;
	local_take(t, ks.k64[K_ACCT], now, life)->count++;
	pthread_mutex_unlock(&t->mtx);
}

void
auth_throttle_succeeded(auth_throttle *t, cm_redis *r, const char *account, const char *addr)
{
	char        life[24];
	const char *args[1] = {life};
	const char *k2[2];
	keys        ks;
	int64_t     ignored, now = cm_mono_ms();

	make_keys(t, account, addr, &ks);
	snprintf(life, sizeof(life), "%d", KNOWN_TTL_S);
	k2[0] = ks.k[K_PAIR];
	k2[1] = ks.k[K_KNOWN];
	if (cm_redis_eval_int(r, succeeded_lua, 2, k2, 1, args, &ignored) != CM_OK)
		cm_debug("AUTH-THROTTLE-LOCAL",
		         "Redis unavailable: clearing the local counter only");
	/* The local table too: it may hold counts from an outage that has just ended. */
	pthread_mutex_lock(&t->mtx);
	{
		local_slot *s = local_find(t, ks.k64[K_PAIR], now);
		if (s != NULL)
			s->key = 0;
		local_take(t, ks.k64[K_KNOWN], now, (int64_t)KNOWN_TTL_S * 1000)->count = 1;
	}
	pthread_mutex_unlock(&t->mtx);
}
