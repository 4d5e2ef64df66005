/*
 * cache.c - the grade cache (cache.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cache.h"
#include "cm/log.h"
#include "cm/util.h"
#include "store.h"
#include "text.h"

static void
hash_part(crypto_hash_sha256_state *st, const char *s)
{
	crypto_hash_sha256_update(st, (const unsigned char *)s,
	                          strlen(s) + 1); /* NUL: a separator */
}

cm_err
eval_cache_ref_init(eval_cache_ref *r, const eval_service *s, eval_strictness st,
                    const eval_item *it)
{
	crypto_hash_sha256_state h;
	unsigned char            d[crypto_hash_sha256_BYTES];
	char                     ver[16];
	cm_buf                   norm;
	size_t                   len;
	eval_cache_key           k;
	cm_err                   err;

	memset(r, 0, sizeof(*r));
	snprintf(ver, sizeof(ver), "v%d", EVAL_PROMPT_VERSION);
	crypto_hash_sha256_init(&h);
	hash_part(&h, ver);
	hash_part(&h, "open");
	hash_part(&h, it->question);
	hash_part(&h, it->reference);
	hash_part(&h, it->context);
	crypto_hash_sha256_final(&h, d);
	cm_hex(d, sizeof(d), r->qkey);
	cm_buf_init(&norm, strlen(it->answer) + 16);
	if ((err = eval_normalize(it->answer, &norm)) != CM_OK ||
	    (err = cm_buf_take(&norm, &r->norm, &len)) != CM_OK) {
		cm_buf_fini(&norm);
		return err;
	}
	k = (eval_cache_key){r->qkey, eval_strictness_name(st), s->model};
	eval_store_redis_key(&k, r->norm, r->redis_key);
	return CM_OK;
}

void
eval_cache_ref_fini(eval_cache_ref *r)
{
	free(r->norm);
	r->norm = NULL;
}

typedef struct best {
	const char *norm;
	double      min;
	double      sim;
	eval_grade *g;
	bool        found;
	bool        oom;
} best;

static bool
consider(void *arg, const char *norm, const eval_grade *g)
{
	best  *b = arg;
	double sim = eval_similarity(b->norm, norm);

	if (sim >= b->min && sim > b->sim) {
		if (!eval_grade_set(b->g, g->score, g->feedback, g->suggestions, g->hint)) {
			b->oom = true;
			return false;
		}
		b->sim = sim;
		b->found = true;
	}
	return sim < 1.0; /* the same answer: nothing can beat it */
}

void
eval_cache_lookup(eval_worker *w, eval_strictness st, const eval_cache_ref *r, eval_grade *g,
                  bool *hit, bool *near)
{
	eval_service  *s = w->svc;
	eval_cache_key k = {r->qkey, eval_strictness_name(st), s->model};
	best           b = {r->norm, (double)s->cfg.near_pct / 100.0, 0.0, g, false, false};

	*hit = *near = false;
	if (s->cfg.cache_ttl_s <= 0 || r->norm[0] == '\0')
		return;
	cm_counter_add(s->cache_lookups, 1);
	eval_store_redis_get(w->redis, r->redis_key, g, hit);
	if (!*hit) {
		if (eval_store_cache_scan(w->pg, &k, s->cfg.cache_ttl_s, consider, &b) != CM_OK)
			cm_debug("EVAL-CACHE-PG", "grade cache scan failed: %s",
			         cm_pg_errmsg(w->pg));
		if (b.found && !b.oom) {
			*hit = true;
			*near = b.sim < 1.0;
			eval_store_redis_put(w->redis, r->redis_key, g, s->cfg.cache_ttl_s);
		}
	}
	if (*hit) {
		cm_counter_add(s->cache_hits, 1);
		if (*near)
			cm_counter_add(s->cache_near_hits, 1);
	}
}

void
eval_cache_put(eval_worker *w, eval_strictness st, const eval_cache_ref *r, const eval_grade *g)
{
	eval_service  *s = w->svc;
	eval_cache_key k = {r->qkey, eval_strictness_name(st), s->model};

	if (s->cfg.cache_ttl_s <= 0 || r->norm[0] == '\0')
		return;
	eval_store_redis_put(w->redis, r->redis_key, g, s->cfg.cache_ttl_s);
	if (eval_store_cache_put(w->pg, &k, r->norm, g) != CM_OK)
		cm_warn("EVAL-CACHE-PUT", "grade not kept: %s", cm_pg_errmsg(w->pg));
}
