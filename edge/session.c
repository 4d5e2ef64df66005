/*
 * session.c - credentials on the wire: Bearer tokens and the session cookie.
 *
 * The cookie is `session=<access token>~<refresh token>` (one cookie: nng 1.5.2 joins repeated
 * response headers with commas, which breaks a second Set-Cookie). It is HttpOnly, SameSite=Lax,
 * Path=/, and Secure when EDGE_COOKIE_SECURE is set. Access tokens are verified here with the
 * algorithm pinned (cm_jwt_verify); services trust the subject the edge puts in the envelope. A
 * token of a revoked session (logout, refresh-token reuse) is refused like an invalid one, as
 * soon as the revoked set (revoked.h) has it.
 *
 * Each thread that verifies (the event loops) keeps the tokens it verified in a cache of its own
 * (cm_jwt_verify_cached, TOKEN_CACHE_SLOTS of them): a client sends the same token on every
 * request, and its signature and JSON are checked once; expiry, type and revocation are checked
 * on every request all the same.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/log.h"
#include "cm/util.h"
#include "edge.h"
#include "revoked.h"

#define COOKIE_NAME "session"
#define LEEWAY_S 30
#define TOKEN_CACHE_SLOTS 1024 /* per thread, ~1.4 MB */

static pthread_key_t  cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool           cache_key_ok;

static void
cache_free(void *c)
{
	cm_jwt_cache_free(c);
}

static void
cache_key_make(void)
{
	cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

/* This thread's cache, made on its first use; NULL without memory (then no cache). */
static cm_jwt_cache *
thread_cache(void)
{
	cm_jwt_cache *c;

	(void)pthread_once(&cache_once, cache_key_make);
	if (!cache_key_ok)
		return NULL;
	if ((c = pthread_getspecific(cache_key)) == NULL &&
	    (c = cm_jwt_cache_alloc(TOKEN_CACHE_SLOTS)) != NULL &&
	    pthread_setspecific(cache_key, c) != 0) {
		cm_jwt_cache_free(c);
		c = NULL;
	}
	return c;
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

bool
edge_cookie_parse(const char *h, char **access, char **refresh)
{
	*access = *refresh = NULL;
	if (h == NULL || strlen(h) > CM_MAX_HEADER_VALUE)
		return false;
	while (*h != '\0') {
		while (*h == ' ' || *h == ';')
			h++;
		if (strncmp(h, COOKIE_NAME "=", sizeof(COOKIE_NAME)) == 0) {
			const char *v = h + sizeof(COOKIE_NAME);
			size_t      len = strcspn(v, ";");
			const char *sep = memchr(v, '~', len);
			if (len == 0 || len > CM_MAX_TOKEN * 2)
				return false;
			if (sep != NULL) {
				*access = dup_n(v, (size_t)(sep - v));
				*refresh = dup_n(sep + 1, len - (size_t)(sep - v) - 1);
			} else {
				*access = dup_n(v, len);
			}
			return *access != NULL;
		}
		if ((h = strchr(h, ';')) == NULL)
			break;
	}
	return false;
}

void
edge_session_read(edge_req *r)
{
	const char *h;

	if (r->bearer != NULL || r->cookie_access != NULL)
		return; /* already read */
	h = edge_header(r, "Authorization");
	if (h != NULL && strlen(h) <= CM_MAX_TOKEN + 7 && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		r->bearer = dup_n(h, strcspn(h, " "));
	}
	(void)edge_cookie_parse(edge_header(r, "Cookie"), &r->cookie_access, &r->cookie_refresh);
}

bool
edge_token_verify(const edge *e, const char *tok, cm_jwt_claims *claims)
{
	const char *why = NULL;

	if (tok == NULL || tok[0] == '\0')
		return false;
	if (cm_jwt_verify_cached(thread_cache(), e->jwt, tok, cm_now_ms() / 1000, LEEWAY_S,
	                         "access", claims, &why) == CM_OK) {
		if (!edge_revoked_has(e->revoked, claims->sid))
			return true;
		why = "session revoked";
	}
	memset(claims, 0, sizeof(*claims));
	cm_debug("EDGE-TOKEN-REJECTED", "access token rejected: %s", why != NULL ? why : "?");
	return false;
}

void
edge_session_verify(edge_req *r)
{
	r->authed =
	    edge_token_verify(r->e, r->bearer != NULL ? r->bearer : r->cookie_access, &r->claims);
}

void
edge_session_set_cookie(edge_req *r, const char *access, const char *refresh, int64_t max_age)
{
	const char *secure = r->e->cfg.cookie_secure ? "; Secure" : "";
	size_t      n;

	free(r->set_cookie);
	r->set_cookie = NULL;
	if (access == NULL) {
		n = 128;
		if ((r->set_cookie = malloc(n)) != NULL)
			snprintf(r->set_cookie, n,
			         COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
			         secure);
		return;
	}
	if (max_age <= 0)
		max_age = r->e->cfg.session_ttl_s;
	n = strlen(access) + (refresh != NULL ? strlen(refresh) : 0) + 128;
	if ((r->set_cookie = malloc(n)) != NULL)
		snprintf(r->set_cookie, n,
		         COOKIE_NAME "=%s%s%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
		         access, refresh != NULL ? "~" : "", refresh != NULL ? refresh : "",
		         (long long)max_age, secure);
}
