/*
 * rpc_resolve.c - replicas found by DNS: dns+tcp://name:port entries of an upstream list.
 *
 * DESIGN. A headless Service answers a name with one address per ready pod; the port is the
 * entry's. One thread per client that has such entries resolves each of them at once, then
 * every period (a lookup may block for seconds: never on a caller's thread, never in an nng
 * callback). The new answer is compared with the replicas of that entry: an address that
 * appeared gets a replica (dialled outside the lock, inserted under it); a replica whose address
 * went is taken out of the set, so no new call picks it, and moved to a drain list that the same
 * thread walks every DRAIN_TICK_MS: it closes a replica once no call holds it, or at its drain
 * deadline (aborting what is left), and frees it once the aborted calls let go. A failed lookup
 * keeps the previous replicas: a DNS hiccup must not empty an upstream. Only this thread changes
 * the set after open, so it may compute the difference under the shared lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/util.h"
#include "dns_int.h"
#include "rpc_int.h"

#define DRAIN_TICK_MS 100

typedef struct dns_entry {
	char *host;
	char  port[8];
	int   group;
} dns_entry;

struct rpc_resolver {
	dns_entry        *entries;
	size_t            n;
	cm_rpc_resolve_fn fn;
	void             *fn_arg;
	int               period_ms, drain_ms;
	pthread_t         thread;
	bool              started, stop;
	pthread_mutex_t   mtx;
	pthread_cond_t    cv;
	replica          *draining;
};

cm_err
rpc_resolver_add(cm_rpc_client *c, const char *entry, int group, const cm_rpc_client_opts *opts)
{
	rpc_resolver *rs = c->resolver;
	char          host[DNS_HOST_MAX], port[8];
	dns_entry    *grown, *e;

	if (!dns_parse(entry, host, port)) {
		cm_error("RPC-DNS-BAD", "%s: bad entry %s (dns+tcp://name:port)", c->name, entry);
		return CM_EINVAL;
	}
	if (rs == NULL) {
		if ((rs = calloc(1, sizeof(*rs))) == NULL)
			return CM_ENOMEM;
		pthread_mutex_init(&rs->mtx, NULL);
		{
			pthread_condattr_t ca;
			pthread_condattr_init(&ca);
			pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
			pthread_cond_init(&rs->cv, &ca);
			pthread_condattr_destroy(&ca);
		}
		rs->fn = opts->resolve != NULL ? opts->resolve : dns_lookup;
		rs->fn_arg = opts->resolve_arg;
		rs->period_ms = dns_period_ms(opts->resolve_ms);
		rs->drain_ms = opts->drain_ms > 0 ? opts->drain_ms : CM_RPC_DRAIN_MS;
		c->resolver = rs;
	}
	if ((grown = realloc(rs->entries, (rs->n + 1) * sizeof(*grown))) == NULL)
		return CM_ENOMEM;
	rs->entries = grown;
	e = &rs->entries[rs->n];
	if ((e->host = strdup(host)) == NULL)
		return CM_ENOMEM;
	memcpy(e->port, port, sizeof(e->port));
	e->group = group;
	rs->n++;
	return CM_OK;
}

static void
url_of(const dns_entry *e, const char *addr, char *url, size_t n)
{
	dns_url(addr, e->port, url, n);
}

static bool
answer_has(const dns_entry *e, const cm_rpc_addrs *a, const char *url)
{
	char u[CM_RPC_MAX_ADDR + 32];

	for (size_t i = 0; i < a->n; i++) {
		url_of(e, a->addr[i], u, sizeof(u));
		if (strcmp(u, url) == 0)
			return true;
	}
	return false;
}

/* Brings the replicas of entry `e` in line with answer `a`. */
static void
sync_entry(cm_rpc_client *c, rpc_resolver *rs, const dns_entry *e, const cm_rpc_addrs *a)
{
	replica *added[CM_RPC_MAX_REPLICAS];
	size_t   n_added = 0, have;
	char     url[CM_RPC_MAX_ADDR + 32];

	pthread_rwlock_rdlock(&c->lock);
	have = c->n;
	pthread_rwlock_unlock(&c->lock);
	for (size_t i = 0; i < a->n; i++) {
		bool known = false;
		url_of(e, a->addr[i], url, sizeof(url));
		pthread_rwlock_rdlock(&c->lock);
		for (size_t k = 0; k < c->n && !known; k++)
			known = strcmp(c->reps[k]->url, url) == 0;
		pthread_rwlock_unlock(&c->lock);
		for (size_t k = 0; k < n_added && !known; k++)
			known = strcmp(added[k]->url, url) == 0;
		if (known)
			continue;
		if (have + n_added >= CM_RPC_MAX_REPLICAS) {
			cm_warn("RPC-DNS-FULL", "%s: %s not added: %d replicas at most", c->name,
			        url, CM_RPC_MAX_REPLICAS);
			break;
		}
		if ((added[n_added] = rpc_replica_open(c, url, e->group)) != NULL) {
			cm_info("RPC-DNS-ADD", "%s: replica %s appeared", c->name, url);
			n_added++;
		}
	}

	pthread_rwlock_wrlock(&c->lock);
	for (size_t k = 0; k < c->n;) {
		replica *r = c->reps[k];
		if (r->group != e->group || answer_has(e, a, r->url)) {
			k++;
			continue;
		}
		c->reps[k] = c->reps[--c->n]; /* no call can pick it from here on */
		r->drain_until_ms = cm_mono_ms() + rs->drain_ms;
		r->next_drain = rs->draining;
		rs->draining = r;
		cm_info("RPC-DNS-DRAIN", "%s: replica %s went, draining", c->name, r->url);
	}
	for (size_t k = 0; k < n_added; k++)
		c->reps[c->n++] = added[k];
	atomic_store(&c->n_live, (int)c->n);
	cm_gauge_set(c->m_replicas, (int64_t)c->n);
	pthread_rwlock_unlock(&c->lock);
}

/* Closes drained replicas and frees them once nothing holds them. */
static void
drain_step(rpc_resolver *rs, int64_t now)
{
	for (replica **pp = &rs->draining; *pp != NULL;) {
		replica *r = *pp;
		if (r->sock_open &&
		    (atomic_load(&r->outstanding) == 0 || now >= r->drain_until_ms)) {
			nng_close(r->sock); /* aborts calls still in flight: they let go */
			r->sock_open = false;
		}
		if (!r->sock_open && atomic_load(&r->outstanding) == 0) {
			*pp = r->next_drain;
			rpc_replica_free(r);
			continue;
		}
		pp = &r->next_drain;
	}
}

static void *
resolver_main(void *arg)
{
	cm_rpc_client *c = arg;
	rpc_resolver  *rs = c->resolver;
	int64_t        next = 0;
	cm_rpc_addrs  *a;

	if ((a = malloc(sizeof(*a))) == NULL)
		return NULL;
	pthread_mutex_lock(&rs->mtx);
	while (!rs->stop) {
		int64_t         now = cm_mono_ms(), until;
		struct timespec ts;

		pthread_mutex_unlock(&rs->mtx);
		if (now >= next) {
			for (size_t i = 0; i < rs->n; i++) {
				a->n = 0;
				if (rs->fn(rs->fn_arg, rs->entries[i].host, a) == CM_OK)
					sync_entry(c, rs, &rs->entries[i], a);
			}
			next = cm_mono_ms() + rs->period_ms;
		}
		drain_step(rs, cm_mono_ms());
		pthread_mutex_lock(&rs->mtx);
		until =
		    rs->draining != NULL && next > now + DRAIN_TICK_MS ? now + DRAIN_TICK_MS : next;
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000L;
		while (!rs->stop && cm_mono_ms() < until)
			if (pthread_cond_timedwait(&rs->cv, &rs->mtx, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&rs->mtx);
	free(a);
	return NULL;
}

cm_err
rpc_resolver_start(cm_rpc_client *c)
{
	rpc_resolver *rs = c->resolver;

	if (pthread_create(&rs->thread, NULL, resolver_main, c) != 0)
		return CM_ENOMEM;
	rs->started = true;
	return CM_OK;
}

void
rpc_resolver_stop(cm_rpc_client *c)
{
	rpc_resolver *rs = c->resolver;

	if (rs == NULL)
		return;
	if (rs->started) {
		pthread_mutex_lock(&rs->mtx);
		rs->stop = true;
		pthread_cond_signal(&rs->cv);
		pthread_mutex_unlock(&rs->mtx);
		pthread_join(rs->thread, NULL);
	}
	while (rs->draining != NULL) {
		replica *r = rs->draining;
		rs->draining = r->next_drain;
		rpc_replica_free(r);
	}
	for (size_t i = 0; i < rs->n; i++)
		free(rs->entries[i].host);
	free(rs->entries);
	pthread_cond_destroy(&rs->cv);
	pthread_mutex_destroy(&rs->mtx);
	free(rs);
	c->resolver = NULL;
}
