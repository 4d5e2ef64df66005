/*
 * jwt_cache.c - verified tokens kept per thread (cm/jwt.h: cm_jwt_verify_cached).
 *
 * DESIGN. A direct-mapped table: slot = cm_hash(token) % slots. A hit needs the same key and the
 * same bytes; the claims it holds are those cm_jwt_verify returned, so the answer is the one a
 * fresh verification would give except for the checks that depend on the moment, which are
 * repeated here exactly as jwt.c makes them. A failure is never kept (a forged token costs its
 * verification every time, as before), and a verified token replaces whatever held its slot.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cm/jwt.h"
#include "cm/util.h"

typedef struct entry {
	const cm_jwt_key *key; /* NULL: empty */
	size_t            len;
	cm_jwt_claims     claims;
	char              token[CM_JWT_CACHE_TOKEN_MAX];
} entry;

struct cm_jwt_cache {
	size_t   n;
	entry   *slot;
	uint64_t hits;
};

cm_jwt_cache *
cm_jwt_cache_alloc(size_t slots)
{
	cm_jwt_cache *c = calloc(1, sizeof(*c));

	if (c == NULL || slots == 0 || (c->slot = calloc(slots, sizeof(entry))) == NULL) {
		free(c);
		return NULL;
	}
	c->n = slots;
	return c;
}

void
cm_jwt_cache_free(cm_jwt_cache *c)
{
	if (c == NULL)
		return;
	free(c->slot);
	free(c);
}

uint64_t
cm_jwt_cache_hits(const cm_jwt_cache *c)
{
	return c != NULL ? c->hits : 0;
}

/* Equal bytes, in time that depends on n only. */
static bool
same_bytes(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

cm_err
cm_jwt_verify_cached(cm_jwt_cache *c, const cm_jwt_key *k, const char *token, int64_t now_s,
                     int64_t leeway_s, const char *want_typ, cm_jwt_claims *out, const char **why)
{
	size_t len;
	entry *e;
	cm_err err;

	if (c == NULL || k == NULL || token == NULL ||
	    (len = strnlen(token, CM_JWT_CACHE_TOKEN_MAX)) == CM_JWT_CACHE_TOKEN_MAX || len == 0)
		return cm_jwt_verify(k, token, now_s, leeway_s, want_typ, out, why);
	e = &c->slot[cm_hash(token, len) % c->n];
	if (e->key == k && e->len == len && same_bytes(e->token, token, len)) {
		const char *reason = NULL;

		c->hits++;
		/* jwt.c's checks that depend on the moment and on the caller, in its order. */
		if (want_typ != NULL && strcmp(e->claims.typ, want_typ) != 0)
			reason = "wrong token type";
		else if (now_s - leeway_s > e->claims.exp)
			reason = "expired";
		else if (e->claims.nbf > now_s + leeway_s)
			reason = "not yet valid";
		if (why != NULL)
			*why = reason;
		if (reason != NULL) {
			memset(out, 0, sizeof(*out));
			return CM_EAUTH;
		}
		*out = e->claims;
		return CM_OK;
	}
	if ((err = cm_jwt_verify(k, token, now_s, leeway_s, want_typ, out, why)) == CM_OK) {
		e->key = k;
		e->len = len;
		e->claims = *out;
		memcpy(e->token, token, len);
	}
	return err;
}
