/*
 * llm_limit.c - per-provider concurrency and rate limits shared by all replicas, with a local
 * fallback.
 *
 * DESIGN. Redis keys (prefix = LLM redis_prefix + provider name):
 *   <prefix>:sem      ZSET holder-id -> lease expiry (Redis TIME, ms). Acquire drops expired
 *                     leases, then adds one when fewer than max_concurrency remain: a holder that
 *                     crashed frees its slot when its lease (the attempt timeout plus a margin)
 *                     ends. Release is ZREM.
 *   <prefix>:r:<min>  requests in the current minute (fixed windows of Redis TIME / 60000)
 *   <prefix>:t:<min>  tokens in the current minute, added after each call
 *   <prefix>:aside    set while the provider's quota is exhausted (TTL = cool-down)
 * The scripts build the per-minute key names from Redis' own clock, so replicas with skewed
 * clocks share windows (single Redis; not cluster-safe by design). A fixed window can let up to
 * twice the rate through around a minute boundary; providers' own limits absorb that and answer
 * 429, which the client retries.
 * Waiting polls Redis every 20-60 ms (jittered) until the deadline. When a Redis call fails the
 * same limits are enforced in this process with a mutex and a condition variable, for the slot
 * and the minute alike; a slot remembers where it was taken so it is released there.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/util.h"
#include "llm_int.h"

static const char sem_acquire_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local lease = tonumber(ARGV[3]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then "
    "  redis.call('ZADD', KEYS[1], now + lease, ARGV[1]) "
    "  if redis.call('PTTL', KEYS[1]) < lease + 1000 then "
    "    redis.call('PEXPIRE', KEYS[1], lease + 1000) end "
    "  return 0 end "
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
    "local w = tonumber(first[2]) - now if w < 1 then w = 1 end return w";

static const char sem_release_lua[] = "return redis.call('ZREM', KEYS[1], ARGV[1])";

static const char rate_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local win = math.floor(now / 60000) "
    "local rk = KEYS[1] .. ':r:' .. win local tk = KEYS[1] .. ':t:' .. win "
    "local wait = 60000 - (now % 60000) "
    "local rpm = tonumber(ARGV[1]) local tpm = tonumber(ARGV[2]) "
    "if rpm > 0 and tonumber(redis.call('GET', rk) or '0') >= rpm then return wait end "
    "if tpm > 0 and tonumber(redis.call('GET', tk) or '0') >= tpm then return wait end "
    "redis.call('INCR', rk) redis.call('PEXPIRE', rk, 120000) return 0";

static const char tokens_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local tk = KEYS[1] .. ':t:' .. math.floor(now / 60000) "
    "local n = redis.call('INCRBY', tk, ARGV[1]) redis.call('PEXPIRE', tk, 120000) return n";

static void
key_of(const cm_llm *llm, const cm_llm_prov *p, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s", llm->prefix, p->name, suffix);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int64_t
jitter(int64_t lo, int64_t hi)
{
	uint32_t r;

	cm_random_bytes(&r, sizeof(r));
	return lo + (int64_t)(r % (uint32_t)(hi - lo + 1));
}

/* Rolls the local minute window forward. Caller holds p->mu. */
static void
local_window(cm_llm_prov *p, int64_t now)
{
	if (now - p->win_start_ms >= 60000) {
		p->win_start_ms = now;
		p->win_reqs = p->win_tokens = 0;
	}
}

/* The local limiter: CM_OK with a slot, CM_ELIMIT at the deadline. */
static cm_err
local_acquire(cm_llm_prov *p, int64_t deadline, cm_llm_slot *slot)
{
	cm_err err = CM_ELIMIT;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		int64_t         now = cm_mono_ms(), wake;
		bool            conc_ok, rate_ok;
		struct timespec ts;

		local_window(p, now);
		conc_ok = p->max_concurrency <= 0 || p->inflight < p->max_concurrency;
		rate_ok = (p->rpm <= 0 || p->win_reqs < p->rpm) &&
		          (p->tpm <= 0 || p->win_tokens < p->tpm);
		if (conc_ok && rate_ok) {
			p->inflight++;
			p->win_reqs++;
			slot->held = true;
			slot->via_redis = false;
			err = CM_OK;
			break;
		}
		if (now >= deadline)
			break;
		wake = deadline;
		if (!rate_ok && p->win_start_ms + 60000 < wake)
			wake = p->win_start_ms + 60000;
		/* The condition variable runs on CLOCK_MONOTONIC (set in cm_llm_alloc). */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((wake - now) / 1000);
		ts.tv_nsec += (long)((wake - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return err;
}

/* One try in Redis: 0 = taken, >0 = ms to wait, CM_EUNAVAIL (or another error) = use local. */
static cm_err
redis_try(cm_llm *llm, cm_llm_prov *p, cm_redis *r, int64_t lease_ms, cm_llm_slot *slot,
          int64_t *wait_ms)
{
	char        semkey[256], base[256], limit[24], lease[24], rpm[24], tpm[24];
	const char *keys[1], *args[3];
	int64_t     w = 0;
	cm_err      err = CM_OK;

	*wait_ms = 0;
	key_of(llm, p, ":sem", semkey, sizeof(semkey));
	key_of(llm, p, "", base, sizeof(base));
	if (p->max_concurrency > 0) {
		snprintf(limit, sizeof(limit), "%d", p->max_concurrency);
		snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
		keys[0] = semkey;
		args[0] = slot->id;
		args[1] = limit;
		args[2] = lease;
		if ((err = cm_redis_eval_int(r, sem_acquire_lua, 1, keys, 3, args, &w)) != CM_OK)
			goto out;
		if (w > 0) {
			*wait_ms = w;
			goto out;
		}
	}
	if (p->rpm > 0 || p->tpm > 0) {
		snprintf(rpm, sizeof(rpm), "%d", p->rpm);
		snprintf(tpm, sizeof(tpm), "%d", p->tpm);
		keys[0] = base;
		args[0] = rpm;
		args[1] = tpm;
		err = cm_redis_eval_int(r, rate_lua, 1, keys, 2, args, &w);
		if (err != CM_OK || w > 0) {
			if (p->max_concurrency > 0) {
				int64_t n;
				keys[0] = semkey;
				args[0] = slot->id;
				if (cm_redis_eval_int(r, sem_release_lua, 1, keys, 1, args, &n) !=
				    CM_OK)
					cm_debug("CM-LLM-REDIS", "slot of %s left to its lease",
					         p->name);
			}
			*wait_ms = w;
			goto out;
		}
	}
	slot->held = true;
	slot->via_redis = true;
out:
	return err;
}

cm_err
cm_llm_limit_acquire(cm_llm *llm, cm_llm_prov *p, cm_redis *r, int64_t deadline, int64_t lease_ms,
                     cm_llm_slot *slot)
{
	cm_err err = CM_OK;

	memset(slot, 0, sizeof(*slot));
	cm_uuid_v4(slot->id);
	if (p->max_concurrency <= 0 && p->rpm <= 0 && p->tpm <= 0) {
		slot->held =
		    true; /* nothing to count; via_redis false: release touches only locals */
		pthread_mutex_lock(&p->mu);
		p->inflight++;
		pthread_mutex_unlock(&p->mu);
		goto out;
	}
	for (;;) {
		int64_t wait = 0, now;

		if (redis_try(llm, p, r, lease_ms, slot, &wait) != CM_OK) {
			err = local_acquire(p, deadline,
			                    slot); /* Redis is away: this process alone */
			goto out;
		}
		if (slot->held)
			goto out;
		now = cm_mono_ms();
		if (now >= deadline) {
			err = CM_ELIMIT;
			goto out;
		}
		/* Poll: a slot is usually freed long before the earliest lease ends. */
		if (wait > 60 || wait <= 0)
			wait = jitter(20, 60);
		if (wait > deadline - now)
			wait = deadline - now;
		sleep_ms(wait);
	}
out:
	return err;
}

void
cm_llm_limit_release(cm_llm *llm, cm_llm_prov *p, cm_redis *r, cm_llm_slot *slot, int64_t tokens)
{
	char        key[256], num[24];
	const char *keys[1], *args[1];
	int64_t     n;

	if (!slot->held)
		return;
	if (slot->via_redis) {
		if (p->max_concurrency > 0) {
			key_of(llm, p, ":sem", key, sizeof(key));
			keys[0] = key;
			args[0] = slot->id;
			if (cm_redis_eval_int(r, sem_release_lua, 1, keys, 1, args, &n) != CM_OK)
				cm_debug("CM-LLM-REDIS", "slot of %s left to its lease", p->name);
		}
		if (p->tpm > 0 && tokens > 0) {
			key_of(llm, p, "", key, sizeof(key));
			snprintf(num, sizeof(num), "%lld", (long long)tokens);
			keys[0] = key;
			args[0] = num;
			if (cm_redis_eval_int(r, tokens_lua, 1, keys, 1, args, &n) != CM_OK)
				goto local_tokens;
		}
		goto out;
	}
	pthread_mutex_lock(&p->mu);
	p->inflight--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
local_tokens:
	pthread_mutex_lock(&p->mu);
	local_window(p, cm_mono_ms());
	p->win_tokens += tokens;
	pthread_mutex_unlock(&p->mu);
out:
	slot->held = false;
}

void
cm_llm_limit_set_aside(cm_llm *llm, cm_llm_prov *p, cm_redis *r)
{
	char    key[256];
	int64_t s = llm->cfg.quota_cooldown_ms / 1000, count, ttl;

	atomic_store(&p->aside_until_ms, cm_mono_ms() + llm->cfg.quota_cooldown_ms);
	key_of(llm, p, ":aside", key, sizeof(key));
	if (cm_redis_incr_window(r, key, s > 0 ? s : 1, &count, &ttl) != CM_OK)
		cm_debug("CM-LLM-REDIS", "cannot share the cool-down of provider %s", p->name);
	cm_warn("CM-LLM-QUOTA", "provider %s: quota exhausted or key refused; set aside for %d s",
	        p->name, (int)(llm->cfg.quota_cooldown_ms / 1000));
}

bool
cm_llm_limit_is_aside(cm_llm *llm, cm_llm_prov *p, cm_redis *r)
{
	char    key[256];
	int64_t count = 0, ttl = 0, now = cm_mono_ms();

	if (atomic_load(&p->aside_until_ms) > now)
		return true;
	key_of(llm, p, ":aside", key, sizeof(key));
	if (cm_redis_get_counter(r, key, &count, &ttl) == CM_OK && count > 0 && ttl > 0) {
		atomic_store(&p->aside_until_ms, now + ttl * 1000); /* another replica saw it */
		return true;
	}
	return false;
}
