/*
 * migrate.c - gradual migration from the old backend (migrate.h).
 *
 * DESIGN. The settings are read once at start into a table of routes taking part (by index in
 * edge_routes()) and a sorted array of flagged users, so a decision is a table lookup, a binary
 * search and one hash of a short string: no lock, no allocation. The decision is made once per
 * request, after authentication (the user is known, a cookie renewal included) and before the
 * route's start; a request decided for the new side keeps a flag (r->may_fall_back) that the
 * upstream call consumes before it starts, so the old backend can take the request only while the
 * new side has not been reached. Where a request went is recorded in r->routed and counted when it
 * is answered, so each request counts once, under the side that answered it.
 * Reload: the share, the flagged users, the routes and the fallback are one immutable rules
 * object behind an atomic pointer; a decision loads it once. The old backend's address stays.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/metrics.h"
#include "httpproxy.h"
#include "migrate.h"

#define USER_ID_MAX 63 /* cm_jwt_claims.sub holds no more */

/* What a reload may change, immutable once built (edge_migrate_swap replaces it whole). */
struct edge_migrate_rules {
	unsigned     share; /* 0..100 */
	bool         fallback;
	bool        *takes_part; /* by index in edge_routes() */
	size_t       n_routes;
	char        *users_buf; /* EDGE_LEGACY_USERS, split in place */
	const char **users;     /* sorted */
	size_t       n_users;
};

struct edge_migrate {
	edge_httpup                  *backend; /* NULL in tests */
	_Atomic(edge_migrate_rules *) rules;
};

unsigned
edge_migrate_bucket(const char *key)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a finaliser so nearby ids spread */

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return (unsigned)(h % 100u);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Login and logout make and end the edge's session cookie: they stay on the new side. */
static bool
route_can_move(const edge_route *rt)
{
	return (rt->flags & EDGE_R_LEGACY) != 0 && strcmp(rt->name, "legacy_login") != 0 &&
	       strcmp(rt->name, "legacy_logout") != 0;
}

/* Marks the routes named in list ("" = every route that can move). */
static cm_err
parse_routes(edge_migrate_rules *m, const char *list, char *why, size_t whylen)
{
	const edge_route *routes = edge_routes(&m->n_routes);
	const char       *p = list;

	if ((m->takes_part = calloc(m->n_routes, sizeof(bool))) == NULL)
		return CM_ENOMEM;
	if (list[0] == '\0') {
		for (size_t i = 0; i < m->n_routes; i++)
			m->takes_part[i] = route_can_move(&routes[i]);
		return CM_OK;
	}
	while (p != NULL) {
		const char *end = strchr(p, ',');
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);
		bool        found = false;

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		for (size_t i = 0; i < m->n_routes && len > 0; i++) {
			if (strlen(routes[i].name) != len || strncmp(routes[i].name, p, len) != 0)
				continue;
			if (!route_can_move(&routes[i])) {
				snprintf(why, whylen,
				         "EDGE_LEGACY_ROUTES: %s cannot move (a legacy route other "
				         "than legacy_login and legacy_logout)",
				         routes[i].name);
				return CM_EINVAL;
			}
			m->takes_part[i] = found = true;
		}
		if (!found) {
			snprintf(why, whylen, "EDGE_LEGACY_ROUTES: no route named \"%.*s\"",
			         (int)(len < 64 ? len : 64), p);
			return CM_EINVAL;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return CM_OK;
}

static cm_err
parse_users(edge_migrate_rules *m, const char *list, char *why, size_t whylen)
{
	size_t n = 1;
	char  *p;

	if (list[0] == '\0')
		return CM_OK;
	for (const char *c = list; *c != '\0'; c++)
		n += *c == ',';
	if ((m->users_buf = strdup(list)) == NULL ||
	    (m->users = calloc(n, sizeof(*m->users))) == NULL)
		return CM_ENOMEM;
	for (p = m->users_buf; p != NULL;) {
		char *end = strchr(p, ',');
		char *last;

		if (end != NULL)
			*end = '\0';
		while (*p == ' ')
			p++;
		for (last = p + strlen(p); last > p && last[-1] == ' ';)
			*--last = '\0';
		if (p[0] == '\0' || strlen(p) > USER_ID_MAX) {
			snprintf(why, whylen, "EDGE_LEGACY_USERS: an empty or too long user id");
			return CM_EINVAL;
		}
		m->users[m->n_users++] = p;
		p = end != NULL ? end + 1 : NULL;
	}
	qsort(m->users, m->n_users, sizeof(*m->users), cmp_str);
	return CM_OK;
}

cm_err
edge_migrate_rules_alloc(edge_migrate_rules **out, const edge_config *cfg, char *why, size_t whylen)
{
	edge_migrate_rules *m;
	cm_err              err;

	*out = NULL;
	why[0] = '\0';
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return CM_ENOMEM;
	m->share = (unsigned)cfg->legacy_share;
	m->fallback = cfg->legacy_fallback;
	if ((err = parse_routes(m, cfg->legacy_routes, why, whylen)) != CM_OK ||
	    (err = parse_users(m, cfg->legacy_users, why, whylen)) != CM_OK) {
		edge_migrate_rules_free(m);
		return err;
	}
	*out = m;
	return CM_OK;
}

void
edge_migrate_rules_free(edge_migrate_rules *m)
{
	if (m == NULL)
		return;
	free(m->takes_part);
	free(m->users);
	free(m->users_buf);
	free(m);
}

edge_migrate_rules *
edge_migrate_swap(edge_migrate *m, edge_migrate_rules *rules)
{
	return atomic_exchange(&m->rules, rules);
}

cm_err
edge_migrate_alloc(edge_migrate **out, const edge_config *cfg, edge_httpproxy *proxy, char *why,
                   size_t whylen)
{
	edge_migrate       *m;
	edge_migrate_rules *rules = NULL;
	cm_err              err;

	*out = NULL;
	why[0] = '\0';
	if (cfg->legacy_backend_url[0] == '\0') {
		if (cfg->legacy_share == 0 && cfg->legacy_users[0] == '\0' &&
		    cfg->legacy_routes[0] == '\0' && !cfg->legacy_fallback)
			return CM_OK;
		snprintf(why, whylen, "EDGE_LEGACY_* set without EDGE_LEGACY_BACKEND_URL");
		return CM_EINVAL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return CM_ENOMEM;
	if ((err = edge_migrate_rules_alloc(&rules, cfg, why, whylen)) != CM_OK)
		goto out;
	atomic_init(&m->rules, rules);
	if (proxy != NULL && (err = edge_httpproxy_add(
	                          proxy, "old_backend", "the old backend", cfg->legacy_backend_url,
	                          EDGE_HTTPUP_IDENTITY, &m->backend)) != CM_OK) {
		snprintf(why, whylen, "bad EDGE_LEGACY_BACKEND_URL (http://host:port): %s",
		         cfg->legacy_backend_url);
		goto out;
	}
	*out = m;
	m = NULL;
out:
	edge_migrate_free(m);
	return err;
}

void
edge_migrate_free(edge_migrate *m)
{
	if (m == NULL)
		return;
	edge_migrate_rules_free(atomic_load(&m->rules));
	free(m);
}

/* The decision under one set of rules. */
static edge_migrate_target
decide(const edge_migrate_rules *m, const edge_route *rt, const char *user, const char *client_addr)
{
	size_t            n;
	const edge_route *routes = edge_routes(&n);
	const char       *key;

	if (m == NULL || rt < routes || rt >= routes + n || !m->takes_part[rt - routes])
		return EDGE_MIGRATE_NONE;
	if (user != NULL && user[0] != '\0') {
		if (m->n_users > 0 &&
		    bsearch(&user, m->users, m->n_users, sizeof(*m->users), cmp_str) != NULL)
			return EDGE_MIGRATE_OLD;
		key = user;
	} else {
		key = client_addr != NULL ? client_addr : "";
	}
	return edge_migrate_bucket(key) < m->share ? EDGE_MIGRATE_OLD : EDGE_MIGRATE_NEW;
}

edge_migrate_target
edge_migrate_decide(const edge_migrate *m, const edge_route *rt, const char *user,
                    const char *client_addr)
{
	if (m == NULL)
		return EDGE_MIGRATE_NONE;
	return decide(atomic_load_explicit(&((edge_migrate *)m)->rules, memory_order_acquire), rt,
	              user, client_addr);
}

static void
send_old(edge_req *r, const char *routed)
{
	r->routed = routed;
	r->may_fall_back = false;
	edge_httpup_forward(r, r->e->migrate->backend);
}

bool
edge_migrate_route(edge_req *r)
{
	edge_migrate       *m = r->e->migrate;
	edge_migrate_rules *rules;

	if (m == NULL || m->backend == NULL)
		return false;
	/* One load: the share and the fallback of one decision come from the same rules. */
	rules = atomic_load_explicit(&m->rules, memory_order_acquire);
	switch (decide(rules, r->route, r->authed ? r->claims.sub : NULL, r->client_addr)) {
	case EDGE_MIGRATE_NONE:
		return false;
	case EDGE_MIGRATE_OLD:
		send_old(r, "old");
		return true;
	case EDGE_MIGRATE_NEW:
		break;
	}
	r->routed = "new";
	/* The breaker is asked by the call itself: while it is open the call is refused unsent
	 * and falls back (exchange.c), and once its open time is over the call is what turns it
	 * half-open, so probes reach the new side and it can close again. Deciding here from its
	 * state alone would keep it open for ever: no call would ever reach it. */
	r->may_fall_back = rules->fallback;
	return false;
}

bool
edge_migrate_fall_back(edge_req *r)
{
	if (!r->may_fall_back)
		return false;
	/* Nothing the route's start prepared belongs to the old backend's answer. */
	r->status = 0;
	r->content_type = NULL;
	cm_buf_reset(&r->out);
	send_old(r, "old_fallback");
	return true;
}

void
edge_migrate_observe(edge_req *r)
{
	char labels[160];

	if (r->routed == NULL || r->route == NULL)
		return;
	snprintf(labels, sizeof(labels), "route=\"%s\",target=\"%s\"", r->route->name, r->routed);
	cm_counter_add(cm_metrics_counter(r->e->metrics, "routing_total",
	                                  "Requests of legacy routes taking part in the migration, "
	                                  "by the side that answered (new, old, old_fallback)",
	                                  labels),
	               1);
}
