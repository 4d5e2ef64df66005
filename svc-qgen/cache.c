/*
 * cache.c - the set cache in Redis (cache.h).
 *
 * DESIGN. The key's parts are hashed (sha256 of a canonical "|"-joined line) so a topic of any
 * text makes a short, safe key; the document's sha256 stays readable in front so an operator
 * can find a document's entries. The client (cm_redis) reconnects by itself; a failure is never
 * fatal here, generation simply happens.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cm/log.h"
#include "cm/redis.h"
#include "cm/util.h"
#include "cache.h"

const char *
qgen_cache_model(const qgen_service *s)
{
	return s->llm != NULL ? cm_llm_model(s->llm) : "offline";
}

void
qgen_cache_key(const qgen_service *s, const qgen_cache_spec *spec, char out[QGEN_CACHE_KEY_LEN])
{
	char          canon[512];
	unsigned char h[crypto_hash_sha256_BYTES];
	char          hex[2 * crypto_hash_sha256_BYTES + 1];

	out[0] = '\0';
	if (s->cfg.cache_ttl_s <= 0)
		return;
	snprintf(canon, sizeof(canon), "%d|%s|%s|%s|%d|%d|%s|%lld", spec->count, spec->types,
	         spec->difficulty, spec->topic, spec->first_page, spec->last_page, spec->model,
	         (long long)spec->per_call);
	crypto_hash_sha256(h, (const unsigned char *)canon, strlen(canon));
	cm_hex(h, sizeof(h), hex);
	snprintf(out, QGEN_CACHE_KEY_LEN, "qgen:set:v%d:%s:%s", QGEN_PROMPT_VERSION, spec->sha256,
	         hex);
}

void
qgen_cache_get(qgen_worker *w, const char *key, cm_buf *out, bool *found)
{
	*found = false;
	if (key[0] == '\0')
		return;
	if (cm_redis_get(w->redis, key, out, found) != CM_OK) {
		*found = false;
		cm_debug("QGEN-CACHE-DOWN", "cache lookup failed: %s", cm_redis_errmsg(w->redis));
	}
}

void
qgen_cache_put(qgen_worker *w, const char *key, const void *blob, size_t len)
{
	int64_t ttl = w->svc->cfg.cache_ttl_s;

	if (key[0] == '\0' || ttl <= 0)
		return;
	if (cm_redis_set(w->redis, key, blob, len, ttl) != CM_OK)
		cm_debug("QGEN-CACHE-DOWN", "cannot cache %s: %s", key, cm_redis_errmsg(w->redis));
}
