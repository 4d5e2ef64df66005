/*
 * reload.c - the running configuration's snapshots, their reload on SIGHUP, and the retirement
 * of what a reload replaced (reload.h).
 *
 * DESIGN. A reload runs on the main thread in two phases. Prepare builds everything new on the
 * side: the file parsed, the whole table loaded over the environment, keys that cannot change
 * live put back to their running values (and noted as pending), the string values copied into
 * the snapshot, the CIDRs parsed, the limiter's table and the migration rules built, a client
 * opened for each changed upstream list (and given a moment to connect). Any failure frees what
 * was built and changes nothing. Commit then cannot fail: it swaps each atomic pointer, then
 * publishes the snapshot, and retires every replaced object with a due time one grace period
 * ahead. Retired objects wait on a list only the main thread touches; tick frees those due.
 * Grace = the longest an edge upstream call can run (its deadline) or a rate-limit decision can
 * wait on Redis, plus a margin: every reader loads its pointer right before its use, and a use
 * never outlasts that bound, so nothing retired is read once it is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/log.h"
#include "cm/util.h"
#include "migrate.h"
#include "ratelimit.h"
#include "reload_int.h"

#define GRACE_MARGIN_MS 30000
#define CONNECT_WAIT_MS 2000 /* a new upstream client's first connection, before the swap */

struct edge_retired {
	edge_retired *next;
	int64_t       due_ms; /* monotonic */
	void         *p;
	void (*free_fn)(void *);
};

/* The upstream lists a reload may change, with the field each is read from. */
static const struct {
	edge_upstream_id id;
	const char      *key;
} UPSTREAMS[] = {
    {EDGE_UP_AUTH, "EDGE_AUTH_URLS"}, {EDGE_UP_PDF, "EDGE_PDF_URLS"},
    {EDGE_UP_QGEN, "EDGE_QGEN_URLS"}, {EDGE_UP_EVAL, "EDGE_EVAL_URLS"},
    {EDGE_UP_CHAT, "EDGE_CHAT_URLS"},
};
#define N_UPSTREAMS (sizeof(UPSTREAMS) / sizeof(UPSTREAMS[0]))

static const char *
upstream_urls(const edge_config *c, edge_upstream_id id)
{
	switch (id) {
	case EDGE_UP_AUTH:
		return c->auth_urls;
	case EDGE_UP_PDF:
		return c->pdf_urls;
	case EDGE_UP_QGEN:
		return c->qgen_urls;
	case EDGE_UP_EVAL:
		return c->eval_urls;
	case EDGE_UP_CHAT:
		return c->chat_urls;
	default:
		return "";
	}
}

bool
edge_config_key_live(const edge *e, const char *key)
{
	static const char *const always[] = {
	    "EDGE_RATE_PER_S",   "EDGE_RATE_BURST",      "EDGE_ROUTE_LIMITS",
	    "EDGE_CORS_ORIGINS", "EDGE_TRUSTED_PROXIES",
	};
	static const char *const migration[] = {
	    "EDGE_LEGACY_SHARE",
	    "EDGE_LEGACY_USERS",
	    "EDGE_LEGACY_ROUTES",
	    "EDGE_LEGACY_FALLBACK",
	};

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
		if (strcmp(key, always[i]) == 0)
			return true;
	}
	for (size_t i = 0; i < N_UPSTREAMS; i++) {
		if (strcmp(key, UPSTREAMS[i].key) == 0)
			return true;
	}
	for (size_t i = 0; e->migrate != NULL && i < sizeof(migration) / sizeof(migration[0]);
	     i++) {
		if (strcmp(key, migration[i]) == 0)
			return true;
	}
	return false;
}

bool
edge_config_key_secret(const cm_cfg_entry *e)
{
	static const char *const words[] = {"SECRET", "KEY", "PASSWORD", "TOKEN"};

	if (e->flags & CM_CFG_SECRET)
		return true;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strstr(e->env, words[i]) != NULL)
			return true;
	}
	return false;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static void
live_free(void *p)
{
	edge_live *l = p;

	if (l == NULL)
		return;
	for (size_t k = 0; k < EDGE_CFG_MAX; k++)
		free(l->strs[k]);
	free(l);
}

/* Copies every string value of l->cfg into l->strs and points the config at the copies. */
static cm_err
live_own_strings(edge_live *l)
{
	cm_cfg_entry t[EDGE_CFG_MAX];
	size_t       n = edge_config_table(&l->cfg, t, EDGE_CFG_MAX);

	for (size_t k = 0; k < n; k++) {
		const char **v = t[k].target;

		if (t[k].type != CM_CFG_STR)
			continue;
		if ((l->strs[k] = strdup(*v != NULL ? *v : "")) == NULL)
			return CM_ENOMEM;
		*v = l->strs[k];
	}
	return CM_OK;
}

static bool
same_value(const cm_cfg_entry *a, const cm_cfg_entry *b)
{
	switch (a->type) {
	case CM_CFG_STR:
		return strcmp(*(const char *const *)a->target, *(const char *const *)b->target) ==
		       0;
	case CM_CFG_INT:
		return *(const int64_t *)a->target == *(const int64_t *)b->target;
	case CM_CFG_BOOL:
		return *(const bool *)a->target == *(const bool *)b->target;
	}
	return false;
}

static void
copy_value(const cm_cfg_entry *dst, const cm_cfg_entry *src)
{
	switch (dst->type) {
	case CM_CFG_STR:
		*(const char **)dst->target = *(const char *const *)src->target;
		break;
	case CM_CFG_INT:
		*(int64_t *)dst->target = *(const int64_t *)src->target;
		break;
	case CM_CFG_BOOL:
		*(bool *)dst->target = *(const bool *)src->target;
		break;
	}
}

static bool
upstream_key(const char *key)
{
	for (size_t i = 0; i < N_UPSTREAMS; i++) {
		if (strcmp(key, UPSTREAMS[i].key) == 0)
			return true;
	}
	return false;
}

/* Compares the new values with the running ones: a key that cannot change live keeps its running
 * value (and origin) and is marked pending. The keys that change live go into changed, the
 * pending ones into restart (comma-separated, for the log). */
static cm_err
settle_keys(edge *e, const edge_live *cur, edge_live *nl, cm_buf *changed, cm_buf *restart)
{
	cm_cfg_entry ot[EDGE_CFG_MAX], nt[EDGE_CFG_MAX];
	size_t       n = edge_config_table((edge_config *)&cur->cfg, ot, EDGE_CFG_MAX);
	cm_err       err = CM_OK;

	(void)edge_config_table(&nl->cfg, nt, EDGE_CFG_MAX);
	for (size_t k = 0; k < n && err == CM_OK; k++) {
		bool live = edge_config_key_live(e, nt[k].env);

		if (same_value(&ot[k], &nt[k]))
			continue;
		/* An emptied upstream list would pull a client from under the routes that check
		 * it once and call it after: that change waits for a restart. */
		if (live && upstream_key(nt[k].env) &&
		    (*(const char *const *)nt[k].target)[0] == '\0')
			live = false;
		if (live) {
			err =
			    cm_buf_printf(changed, "%s%s", changed->len > 0 ? "," : "", nt[k].env);
			continue;
		}
		copy_value(&nt[k], &ot[k]);
		nl->origin[k] = cur->origin[k];
		nl->pending[k] = true;
		err = cm_buf_printf(restart, "%s%s", restart->len > 0 ? "," : "", nt[k].env);
	}
	return err;
}

/* ---- retirement ----------------------------------------------------------------------------- */

static void
retire(edge_reloader *rl, void *p, void (*free_fn)(void *))
{
	edge_retired *r;

	if (p == NULL)
		return;
	if ((r = malloc(sizeof(*r))) == NULL) {
		/* Never freed early: kept for the life of the process instead. */
		cm_warn("EDGE-RELOAD-LEAK", "cannot record a replaced object: kept until exit");
		return;
	}
	r->p = p;
	r->free_fn = free_fn;
	r->due_ms = cm_mono_ms() + rl->grace_ms;
	r->next = rl->retired;
	rl->retired = r;
}

static void
table_free(void *p)
{
	edge_limiter_table_free(p);
}

static void
rules_free(void *p)
{
	edge_migrate_rules_free(p);
}

static void
client_close(void *p)
{
	cm_rpc_client_close(p);
}

void
edge_reloader_tick(edge_reloader *rl)
{
	int64_t        now = cm_mono_ms();
	edge_retired **pp = &rl->retired;

	while (*pp != NULL) {
		edge_retired *r = *pp;
		if (r->due_ms > now) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		r->free_fn(r->p);
		free(r);
	}
}

/* ---- upstreams ------------------------------------------------------------------------------ */

/* A client for every upstream list that changed, in up[] by id; then waits a little for each to
 * have a connection, so the swap does not answer 503 while they dial. */
static cm_err
open_changed_upstreams(edge *e, const edge_live *cur, const edge_live *nl, cm_rpc_client **up,
                       char *why, size_t whylen)
{
	int64_t until = cm_mono_ms() + CONNECT_WAIT_MS;
	bool    waiting;

	for (size_t i = 0; i < N_UPSTREAMS; i++) {
		edge_upstream_id id = UPSTREAMS[i].id;
		const char      *urls = upstream_urls(&nl->cfg, id);

		if (strcmp(urls, upstream_urls(&cur->cfg, id)) == 0)
			continue;
		if (cm_rpc_client_open(&up[id], edge_upstream_name(id), urls, e->metrics) !=
		    CM_OK) {
			up[id] = NULL;
			snprintf(why, whylen, "%s: bad replica list", UPSTREAMS[i].key);
			return CM_EINVAL;
		}
	}
	do {
		waiting = false;
		for (int id = 0; id < EDGE_UP_COUNT; id++)
			waiting |= up[id] != NULL && cm_rpc_client_healthy(up[id]) == 0;
		if (waiting)
			nng_msleep(20);
	} while (waiting && cm_mono_ms() < until);
	for (int id = 0; id < EDGE_UP_COUNT; id++) {
		if (up[id] != NULL && cm_rpc_client_healthy(up[id]) == 0)
			cm_warn("EDGE-RELOAD-UPSTREAM",
			        "%s: no replica of the new list connected yet; switching anyway",
			        edge_upstream_name((edge_upstream_id)id));
	}
	return CM_OK;
}

/* ---- reload --------------------------------------------------------------------------------- */

static void
note_outcome(edge_reloader *rl, bool applied, const char *why)
{
	pthread_mutex_lock(&rl->mu);
	if (applied)
		rl->applied++;
	else
		rl->refused++;
	cm_strlcpy(rl->last_error, applied ? "" : why, sizeof(rl->last_error));
	pthread_mutex_unlock(&rl->mu);
}

cm_err
edge_reload(edge_reloader *rl)
{
	edge               *e = rl->e;
	const edge_live    *cur = edge_live_get(e);
	cm_cfg_file        *file = NULL;
	edge_live          *nl = NULL;
	edge_rl_table      *limits = NULL;
	edge_migrate_rules *rules = NULL;
	cm_rpc_client      *up[EDGE_UP_COUNT] = {0};
	cm_buf              changed, restart;
	char                why[256] = "";
	cm_err              err;

	cm_buf_init(&changed, 4096);
	cm_buf_init(&restart, 4096);
	/* Prepare: everything new on the side. */
	if (e->cfg.config_file[0] != '\0' &&
	    (err = cm_cfg_file_read(&file, e->cfg.config_file, why, sizeof(why))) != CM_OK)
		goto out;
	if ((nl = calloc(1, sizeof(*nl))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	if ((err = edge_config_load_file(&nl->cfg, file, nl->origin, why, sizeof(why))) != CM_OK ||
	    (err = settle_keys(e, cur, nl, &changed, &restart)) != CM_OK ||
	    (err = live_own_strings(nl)) != CM_OK)
		goto out;
	if (edge_cidrs_parse(nl->cfg.trusted_proxies, &nl->trusted) != CM_OK) {
		snprintf(why, sizeof(why), "EDGE_TRUSTED_PROXIES: not a list of CIDRs");
		err = CM_EINVAL;
		goto out;
	}
	if (e->limiter != NULL && (limits = edge_limiter_table_alloc(&nl->cfg)) == NULL) {
		snprintf(why, sizeof(why),
		         "EDGE_ROUTE_LIMITS: not route=rate/burst of known routes");
		err = CM_EINVAL;
		goto out;
	}
	if (e->migrate != NULL &&
	    (err = edge_migrate_rules_alloc(&rules, &nl->cfg, why, sizeof(why))) != CM_OK)
		goto out;
	if ((err = open_changed_upstreams(e, cur, nl, up, why, sizeof(why))) != CM_OK)
		goto out;
	nl->generation = cur->generation + 1;

	/* Commit: nothing below fails. */
	if (limits != NULL)
		retire(rl, edge_limiter_swap(e->limiter, limits), table_free);
	if (rules != NULL)
		retire(rl, edge_migrate_swap(e->migrate, rules), rules_free);
	limits = NULL;
	rules = NULL;
	for (int id = 0; id < EDGE_UP_COUNT; id++) {
		if (up[id] != NULL)
			retire(rl, atomic_exchange(&e->up[id], up[id]), client_close);
		up[id] = NULL;
	}
	atomic_store_explicit(&e->live, nl, memory_order_release);
	retire(rl, (void *)cur, live_free);
	cm_info("EDGE-RELOAD", "configuration %llu applied; changed live: %s",
	        (unsigned long long)nl->generation, changed.len > 0 ? changed.data : "nothing");
	if (restart.len > 0)
		cm_warn("EDGE-RELOAD-RESTART",
		        "set differently, applied at the next start only: %s", restart.data);
	nl = NULL;
	err = CM_OK;
out:
	if (err != CM_OK) {
		if (why[0] == '\0')
			cm_strlcpy(why, cm_strerror(err), sizeof(why));
		cm_error("EDGE-RELOAD-REFUSED", "%s: the running configuration stays", why);
	}
	note_outcome(rl, err == CM_OK, why); /* after the publish: configz.c relies on it */
	for (int id = 0; id < EDGE_UP_COUNT; id++)
		cm_rpc_client_close(up[id]);
	edge_migrate_rules_free(rules);
	edge_limiter_table_free(limits);
	live_free(nl);
	cm_cfg_file_free(file);
	cm_buf_fini(&changed);
	cm_buf_fini(&restart);
	return err;
}

/* ---- lifetime ------------------------------------------------------------------------------- */

cm_err
edge_reloader_alloc(edge_reloader **out, edge *e, const cm_cfg_origin *origins)
{
	edge_reloader *rl = NULL;
	edge_live     *l = NULL;
	int64_t        longest = e->cfg.rpc_timeout_ms;
	cm_err         err = CM_ENOMEM;

	*out = NULL;
	if ((rl = calloc(1, sizeof(*rl))) == NULL || (l = calloc(1, sizeof(*l))) == NULL)
		goto out;
	l->cfg = e->cfg;
	for (size_t k = 0; k < EDGE_CFG_MAX; k++)
		l->origin[k] = origins != NULL ? origins[k] : CM_CFG_FROM_ENV;
	l->generation = 1;
	if ((err = live_own_strings(l)) != CM_OK)
		goto out;
	if (edge_cidrs_parse(l->cfg.trusted_proxies, &l->trusted) != CM_OK) {
		cm_error("EDGE-CONFIG", "bad EDGE_TRUSTED_PROXIES (CIDRs): %s",
		         l->cfg.trusted_proxies);
		err = CM_EINVAL;
		goto out;
	}
	if (e->cfg.chat_timeout_ms > longest)
		longest = e->cfg.chat_timeout_ms;
	if (e->cfg.rate_redis_timeout_ms > longest)
		longest = e->cfg.rate_redis_timeout_ms;
	rl->grace_ms = longest + GRACE_MARGIN_MS;
	rl->e = e;
	pthread_mutex_init(&rl->mu, NULL);
	atomic_store_explicit(&e->live, l, memory_order_release);
	*out = rl;
	rl = NULL;
	l = NULL;
out:
	live_free(l);
	free(rl);
	return err;
}

void
edge_reloader_free(edge_reloader *rl)
{
	if (rl == NULL)
		return;
	while (rl->retired != NULL) {
		edge_retired *r = rl->retired;
		rl->retired = r->next;
		r->free_fn(r->p);
		free(r);
	}
	live_free(atomic_exchange(&rl->e->live, NULL));
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

const char *
edge_live_cors(edge *e)
{
	return edge_live_get(e)->cfg.cors_origins;
}

const edge_cidrs *
edge_live_trusted(edge *e)
{
	return &edge_live_get(e)->trusted;
}
