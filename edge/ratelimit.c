/*
 * ratelimit.c - the limits of each route, the decision, and the record of which backend took it
 * (see ratelimit.h). The shared buckets are in ratelimit_redis.c, the local ones below.
 *
 * DESIGN. A limit is {rate, burst} plus a tag "<route or *>:<rate>/<burst>" that names its
 * buckets, here and in Redis: routes with an override never share buckets with the default, and
 * two edges configured differently (the test stack runs two) never share one either.
 * Local buckets live in a fixed table (FNV-1a of tag, scope and key; a collision shares a bucket,
 * which can only make limiting stricter for the two keys) with striped locks.
 * Backend reporting: any failed Redis decision makes the backend "local" at once; it becomes
 * "redis" again on a decision Redis answered once CM_REDIS_RETRY_MS passed without a failure.
 * Each thread's connection waits that long before it retries, so every thread has had its chance
 * by then and the gauges do not flap while the threads find Redis back one by one.
 * Reload: the limits are one immutable table behind an atomic pointer; a decision loads it once.
 * A changed limit has a new tag, hence new buckets (full), while unchanged limits keep theirs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "edge.h"
#include "ratelimit.h"
#include "ratelimit_int.h"

#define BUCKETS 4096
#define STRIPES 64
#define RATE_MAX 1000000.0
#define BURST_MAX 1000000

typedef struct bucket {
	double  tokens;
	int64_t last_ms;
} bucket;

/* The limits, immutable once built: a reload installs a new table (edge_limiter_swap). */
struct edge_rl_table {
	edge_rl_limit def;
	edge_rl_limit routes[EDGE_RL_MAX_ROUTES];
	int           n_routes;
};

struct edge_limiter {
	_Atomic(edge_rl_table *) table;
	edge_rl_redis           *redis; /* NULL: no Redis configured */
	cm_metrics              *metrics;
	pthread_mutex_t          backend_mu; /* with the gauges: one change at a time */
	atomic_bool              shared;
	atomic_llong             last_fail_ms;
	cm_gauge                *g_redis, *g_local;
	pthread_mutex_t          locks[STRIPES];
	bucket                   b[BUCKETS];
};

static void
limit_set(edge_rl_limit *lim, const char *name, double rate, int64_t burst)
{
	cm_strlcpy(lim->name, name, sizeof(lim->name));
	lim->rate = rate;
	lim->burst = burst > 0 ? burst : (int64_t)rate;
	if (lim->burst < rate) /* a fractional rate rounds up */
		lim->burst++;
	if (lim->burst < 1)
		lim->burst = 1;
	lim->interval_us = rate > 0 ? (int64_t)(1e6 / rate + 0.5) : 0;
	if (rate > 0 && lim->interval_us < 1)
		lim->interval_us = 1;
	snprintf(lim->tag, sizeof(lim->tag), "%s:%g/%lld", name[0] != '\0' ? name : "*", rate,
	         (long long)lim->burst);
}

/* Route names a limit may name: the table's, and the frontend proxy's (server.c). */
static bool
route_exists(const char *name)
{
	size_t            n;
	const edge_route *t = edge_routes(&n);

	for (size_t i = 0; i < n; i++) {
		if (t[i].name != NULL && strcmp(t[i].name, name) == 0)
			return true;
	}
	return strcmp(name, "frontend") == 0;
}

/* One "name=rate[/burst]" of EDGE_ROUTE_LIMITS, [s, end); a route named twice is an error. */
static bool
parse_one(edge_rl_table *l, const char *s, const char *end)
{
	char    item[128], *eq, *name, *q, *p;
	double  rate;
	int64_t burst = 0;

	if ((size_t)(end - s) >= sizeof(item) || l->n_routes == EDGE_RL_MAX_ROUTES)
		return false;
	memcpy(item, s, (size_t)(end - s));
	item[end - s] = '\0';
	if ((eq = strchr(item, '=')) == NULL)
		return false;
	*eq = '\0';
	for (name = item; *name == ' '; name++)
		;
	for (q = eq; q > name && q[-1] == ' '; q--)
		q[-1] = '\0';
	if (*name == '\0' || strlen(name) >= sizeof(l->routes[0].name) || !route_exists(name))
		return false;
	for (int i = 0; i < l->n_routes; i++) {
		if (strcmp(l->routes[i].name, name) == 0)
			return false;
	}
	rate = strtod(eq + 1, &q);
	if (q == eq + 1 || !(rate >= 0 && rate <= RATE_MAX))
		return false;
	if (*q == '/') {
		burst = strtoll(q + 1, &p, 10);
		if (p == q + 1 || burst < 1 || burst > BURST_MAX)
			return false;
		q = p;
	}
	while (*q == ' ')
		q++;
	if (*q != '\0')
		return false;
	limit_set(&l->routes[l->n_routes++], name, rate, burst);
	return true;
}

static bool
parse_routes(edge_rl_table *l, const char *spec)
{
	const char *s = spec, *end;

	while (s != NULL && *s != '\0') {
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		if (end > s && !parse_one(l, s, end)) {
			cm_error("EDGE-RATE-CONFIG",
			         "bad EDGE_ROUTE_LIMITS item \"%.*s\" (want route=rate/burst, a "
			         "route of "
			         "edge/routes.c, rate 0..1000000, burst 1..1000000)",
			         (int)(end - s), s);
			return false;
		}
		s = *end == ',' ? end + 1 : end;
	}
	return true;
}

static void
set_backend_gauges(edge_limiter *l, bool shared)
{
	cm_gauge_set(l->g_redis, shared ? 1 : 0);
	cm_gauge_set(l->g_local, shared ? 0 : 1);
}

edge_rl_table *
edge_limiter_table_alloc(const edge_config *c)
{
	edge_rl_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	limit_set(&t->def, "", (double)c->rate_per_s, c->rate_burst);
	if (!parse_routes(t, c->route_limits)) {
		free(t);
		return NULL;
	}
	return t;
}

void
edge_limiter_table_free(edge_rl_table *t)
{
	free(t);
}

edge_rl_table *
edge_limiter_swap(edge_limiter *l, edge_rl_table *t)
{
	return atomic_exchange(&l->table, t);
}

edge_limiter *
edge_limiter_alloc(const edge_config *c, cm_metrics *metrics)
{
	edge_limiter  *l = calloc(1, sizeof(*l));
	edge_rl_table *t;

	if (l == NULL)
		return NULL;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&l->locks[i], NULL);
	pthread_mutex_init(&l->backend_mu, NULL);
	if ((t = edge_limiter_table_alloc(c)) == NULL)
		goto fail;
	atomic_init(&l->table, t);
	if (c->redis_host != NULL && c->redis_host[0] != '\0' &&
	    (l->redis = edge_rl_redis_alloc(c->redis_host, (int)c->redis_port,
	                                    (int)c->rate_redis_timeout_ms)) == NULL)
		goto fail;
	l->metrics = metrics;
	l->g_redis = cm_metrics_gauge(metrics, "ratelimit_backend",
	                              "1 for the backend taking rate-limit decisions now",
	                              "backend=\"redis\"");
	l->g_local = cm_metrics_gauge(metrics, "ratelimit_backend",
	                              "1 for the backend taking rate-limit decisions now",
	                              "backend=\"local\"");
	atomic_store(&l->shared, l->redis != NULL);
	set_backend_gauges(l, l->redis != NULL);
	return l;
fail:
	edge_limiter_free(l);
	return NULL;
}

void
edge_limiter_free(edge_limiter *l)
{
	if (l == NULL)
		return;
	edge_rl_redis_free(l->redis);
	edge_limiter_table_free(atomic_load(&l->table));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&l->locks[i]);
	pthread_mutex_destroy(&l->backend_mu);
	free(l);
}

bool
edge_limiter_shared(edge_limiter *l)
{
	return l != NULL && atomic_load(&l->shared);
}

static void
note_backend(edge_limiter *l, bool redis_ok)
{
	int64_t now = cm_mono_ms();

	if (redis_ok &&
	    (atomic_load(&l->shared) || now - atomic_load(&l->last_fail_ms) <= CM_REDIS_RETRY_MS))
		return;
	if (!redis_ok)
		atomic_store(&l->last_fail_ms, now);
	if (atomic_load(&l->shared) == redis_ok)
		return;
	pthread_mutex_lock(&l->backend_mu);
	if (atomic_load(&l->shared) != redis_ok) {
		atomic_store(&l->shared, redis_ok);
		set_backend_gauges(l, redis_ok);
		if (redis_ok)
			cm_info("EDGE-RATE-REDIS", "rate limits shared through Redis again");
		else
			cm_warn("EDGE-RATE-LOCAL",
			        "Redis cannot take rate-limit decisions (%s): limits are per edge "
			        "process until it is back",
			        edge_rl_redis_errmsg(l->redis));
	}
	pthread_mutex_unlock(&l->backend_mu);
}

static uint32_t
hash_key(const char *tag, char scope, const char *s)
{
	uint32_t h = 2166136261u;

	for (; *tag != '\0'; tag++)
		h = (h ^ (uint8_t)*tag) * 16777619u;
	h = (h ^ (uint8_t)scope) * 16777619u;
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool
local_one(edge_limiter *l, const edge_rl_limit *lim, char scope, const char *key, int64_t now,
          int64_t *retry_s)
{
	uint32_t         h = hash_key(lim->tag, scope, key);
	bucket          *b = &l->b[h % BUCKETS];
	pthread_mutex_t *mu = &l->locks[h % STRIPES];
	double           burst = (double)lim->burst;
	bool             ok;

	pthread_mutex_lock(mu);
	if (b->last_ms == 0) {
		b->tokens = burst;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) * lim->rate / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*retry_s = (int64_t)((1.0 - b->tokens) / lim->rate); /* rounded up below */
	if (!ok && (double)*retry_s < (1.0 - b->tokens) / lim->rate)
		(*retry_s)++;
	pthread_mutex_unlock(mu);
	return ok;
}

static bool
local_take(edge_limiter *l, const edge_rl_limit *lim, const char *addr, const char *user,
           edge_rl_scope *scope, int64_t *retry_s)
{
	int64_t now = cm_mono_ms();

	if (addr != NULL && !local_one(l, lim, 'a', addr, now, retry_s)) {
		*scope = EDGE_RL_ADDR;
		return false;
	}
	if (user != NULL && !local_one(l, lim, 'u', user, now, retry_s)) {
		*scope = EDGE_RL_USER;
		return false;
	}
	return true;
}

static const edge_rl_limit *
limit_of(const edge_rl_table *l, const char *route)
{
	for (int i = 0; route != NULL && i < l->n_routes; i++) {
		if (strcmp(l->routes[i].name, route) == 0)
			return &l->routes[i];
	}
	return &l->def;
}

static void
count_rejection(edge_limiter *l, const char *route, edge_rl_scope scope)
{
	char labels[128];

	if (l->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "route=\"%s\",scope=\"%s\"", route != NULL ? route : "-",
	         scope == EDGE_RL_USER ? "user" : "addr");
	cm_counter_add(cm_metrics_counter(l->metrics, "ratelimit_rejected_total",
	                                  "requests refused by a rate limit (429)", labels),
	               1);
}

bool
edge_limiter_take_route(edge_limiter *l, const char *route, const char *addr, const char *user,
                        int64_t *retry_s)
{
	const edge_rl_limit *lim;
	edge_rl_scope        scope = EDGE_RL_ADDR;
	bool                 ok = true;

	*retry_s = 0;
	if (l == NULL)
		return true;
	/* One load: this decision uses one table to its end, even across a reload (the old table
	 * is freed only after a grace period longer than any decision: reload.c). */
	lim = limit_of(atomic_load_explicit(&l->table, memory_order_acquire), route);
	if (addr != NULL && addr[0] == '\0')
		addr = NULL;
	if (user != NULL && user[0] == '\0')
		user = NULL;
	if (lim->rate <= 0 || (addr == NULL && user == NULL))
		return true;
	if (l->redis != NULL &&
	    edge_rl_redis_take(l->redis, lim, addr, user, &ok, &scope, retry_s) == CM_OK) {
		note_backend(l, true);
	} else {
		if (l->redis != NULL)
			note_backend(l, false);
		ok = local_take(l, lim, addr, user, &scope, retry_s);
	}
	if (!ok) {
		if (*retry_s < 1)
			*retry_s = 1;
		count_rejection(l, route, scope);
	}
	return ok;
}

bool
edge_limiter_take(edge_limiter *l, const char *addr, const char *user, int64_t *retry_s)
{
	return edge_limiter_take_route(l, NULL, addr, user, retry_s);
}
