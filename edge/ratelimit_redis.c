/*
 * ratelimit_redis.c - rate-limit buckets in Redis, shared by every edge replica.
 *
 * DESIGN. A bucket is one key holding GCRA's theoretical arrival time (TAT, microseconds of
 * Redis's clock): a request is admitted when TAT' = max(TAT, now) + T lies no further than
 * burst * T ahead of now (T = 1 s / rate), which admits `burst` at once and then `rate` per
 * second, as a token bucket would. One EVAL decides for the address and the user buckets
 * together: both are read, and both advanced only when both admit, so a refused request costs
 * no bucket anything. The key expires when its TAT is reached (the bucket is full again then).
 * Redis's clock, not ours, so replicas whose clocks differ agree; TIME before writes needs
 * Redis >= 5 (scripts replicate their effects).
 * Connections: one per thread (cm_redis is not thread-safe; a decision must not queue behind
 * another thread's), found through a pthread key and kept in a list so free closes them all.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/redis.h"
#include "ratelimit_int.h"

#define KEY_PREFIX "edge:rl:"

typedef struct conn {
	cm_redis    *r;
	struct conn *next;
} conn;

struct edge_rl_redis {
	char           *host;
	int             port;
	int             timeout_ms;
	pthread_key_t   key; /* this thread's conn */
	pthread_mutex_t mu;  /* guards conns */
	conn           *conns;
};

/* KEYS the buckets (1 or 2), ARGV interval_us, burst -> 0 admitted, else the wait in ms * 4 +
 * the index of the key that refused (the wait of the key that refuses longest). */
static const char gcra_lua[] = "local t = redis.call('TIME') "
                               "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
                               "local T = tonumber(ARGV[1]) "
                               "local tol = T * tonumber(ARGV[2]) "
                               "local tats, wait, who = {}, 0, 0 "
                               "for i = 1, #KEYS do "
                               "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0 "
                               "  if tat < now then tat = now end "
                               "  tats[i] = tat + T "
                               "  local w = tats[i] - now - tol "
                               "  if w > wait then wait = w who = i end "
                               "end "
                               "if who > 0 then return math.ceil(wait / 1000) * 4 + who end "
                               "for i = 1, #KEYS do "
                               "  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', "
                               "    math.ceil((tats[i] - now) / 1000)) "
                               "end "
                               "return 0";

edge_rl_redis *
edge_rl_redis_alloc(const char *host, int port, int timeout_ms)
{
	edge_rl_redis *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if ((r->host = strdup(host)) == NULL || pthread_key_create(&r->key, NULL) != 0) {
		free(r->host);
		free(r);
		return NULL;
	}
	r->port = port;
	r->timeout_ms = timeout_ms;
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void
edge_rl_redis_free(edge_rl_redis *r)
{
	conn *c, *next;

	if (r == NULL)
		return;
	for (c = r->conns; c != NULL; c = next) {
		next = c->next;
		cm_redis_close(c->r);
		free(c);
	}
	pthread_key_delete(r->key);
	pthread_mutex_destroy(&r->mu);
	free(r->host);
	free(r);
}

/* The calling thread's connection, opened on its first decision; NULL without memory. */
static cm_redis *
thread_conn(edge_rl_redis *r)
{
	conn *c = pthread_getspecific(r->key);

	if (c != NULL)
		return c->r;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (cm_redis_open(&c->r, r->host, r->port, r->timeout_ms) != CM_OK ||
	    pthread_setspecific(r->key, c) != 0) {
		cm_redis_close(c->r);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	c->next = r->conns;
	r->conns = c;
	pthread_mutex_unlock(&r->mu);
	return c->r;
}

const char *
edge_rl_redis_errmsg(edge_rl_redis *r)
{
	conn *c = r != NULL ? pthread_getspecific(r->key) : NULL;

	return c != NULL ? cm_redis_errmsg(c->r) : "";
}

cm_err
edge_rl_redis_take(edge_rl_redis *r, const edge_rl_limit *lim, const char *addr, const char *user,
                   bool *admitted, edge_rl_scope *scope, int64_t *retry_s)
{
	/* A key cut short by its buffer shares a bucket with its prefix: stricter, never looser. */
	char          kaddr[256], kuser[320], interval[24], burst[24];
	const char   *keys[2], *args[2] = {interval, burst};
	edge_rl_scope scopes[2];
	int           nkeys = 0;
	cm_redis     *c = thread_conn(r);
	int64_t       v, who, wait_ms;
	cm_err        err;

	*admitted = true;
	if (c == NULL)
		return CM_ENOMEM;
	if (addr != NULL) {
		snprintf(kaddr, sizeof(kaddr), KEY_PREFIX "%s:a:%s", lim->tag, addr);
		scopes[nkeys] = EDGE_RL_ADDR;
		keys[nkeys++] = kaddr;
	}
	if (user != NULL) {
		snprintf(kuser, sizeof(kuser), KEY_PREFIX "%s:u:%s", lim->tag, user);
		scopes[nkeys] = EDGE_RL_USER;
		keys[nkeys++] = kuser;
	}
	if (nkeys == 0)
		return CM_OK;
	snprintf(interval, sizeof(interval), "%lld", (long long)lim->interval_us);
	snprintf(burst, sizeof(burst), "%lld", (long long)lim->burst);
	if ((err = cm_redis_eval_int(c, gcra_lua, nkeys, keys, 2, args, &v)) != CM_OK)
		return err;
	if (v == 0)
		return CM_OK;
	who = v % 4;
	wait_ms = v / 4;
	if (who < 1 || who > nkeys || wait_ms < 0)
		return CM_EPROTO;
	*admitted = false;
	*scope = scopes[who - 1];
	*retry_s = (wait_ms + 999) / 1000;
	if (*retry_s < 1)
		*retry_s = 1;
	return CM_OK;
}
