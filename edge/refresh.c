/*
 * refresh.c - single-flight renewal of cookie sessions (see refresh.h).
 *
 * A fixed table of slots keyed by SHA-256(old refresh token, client address, User-Agent). A slot
 * is IDLE, BUSY (an RPC is out; the same client's later requests queue as waiters) or DONE (the
 * result is kept RESULT_TTL_MS when it is a new pair, FAIL_TTL_MS when it is a refusal: replaying
 * a refused token to svc-auth changes nothing, so a refusal need not hold a slot for long). Each
 * slot remembers its client address and user, which is how shares are counted. All slot state is
 * under one mutex, held only for table operations, never across an RPC or a callback into the
 * request.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/log.h"
#include "cm/util.h"
#include "proto/auth.pb-c.h"
#include "proto/common.pb-c.h"
#include "refresh.h"
#include "revoked.h"

#define RESULT_TTL_MS 30000
#define FAIL_TTL_MS 1000
#define MAX_WAITERS 64
#define LEEWAY_S 30

enum { IDLE, BUSY, DONE };

typedef struct waiter {
	edge_req *r;
	void (*next)(edge_req *r);
} waiter;

typedef struct slot {
	int           state;
	unsigned char key[32];
	char          addr[64];
	char          sub[64];
	int64_t       done_ms;
	bool          ok;
	char         *access;
	char         *refresh;
	int64_t       max_age;
	waiter        waiters[MAX_WAITERS];
	int           n_waiters;
} slot;

struct edge_refresher {
	pthread_mutex_t mtx;
	slot            slots[EDGE_RENEW_SLOTS];
};

typedef struct flight {
	edge_refresher *f;
	int             idx;
} flight;

edge_refresher *
edge_refresher_alloc(void)
{
	edge_refresher *f = calloc(1, sizeof(*f));

	if (f != NULL)
		pthread_mutex_init(&f->mtx, NULL);
	return f;
}

static void
slot_clear(slot *s)
{
	free(s->access);
	free(s->refresh);
	memset(s, 0, sizeof(*s));
}

void
edge_refresher_free(edge_refresher *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < EDGE_RENEW_SLOTS; i++)
		slot_clear(&f->slots[i]);
	pthread_mutex_destroy(&f->mtx);
	free(f);
}

/* Applies a finished renewal to one request and resumes it. */
static void
resume(edge_req *r, void (*next)(edge_req *r), bool ok, const char *access, const char *refresh,
       int64_t max_age, bool transient)
{
	if (!ok && transient) {
		/* svc-auth could not be asked: keep the cookie, the caller answers 503. */
		r->renew_unavailable = true;
		next(r);
		return;
	}
	if (ok && cm_jwt_verify(r->e->jwt, access, cm_now_ms() / 1000, LEEWAY_S, "access",
	                        &r->claims, NULL) == CM_OK) {
		r->authed = true;
		edge_session_set_cookie(r, access, refresh, max_age);
	} else {
		r->authed = false;
		edge_session_set_cookie(r, NULL, NULL,
		                        0); /* the session is over: drop the cookie */
	}
	next(r);
}

static void
renew_done(void *arg, cm_rpc_result *res)
{
	flight          *fl = arg;
	edge_refresher  *f = fl->f;
	slot            *s;
	Auth__TokenPair *tp = NULL;
	waiter           w[MAX_WAITERS];
	int              n;
	bool             ok, transient;

	if (res->status == CM__STATUS__OK)
		tp = auth__token_pair__unpack(NULL, res->payload_len, res->payload);
	ok = tp != NULL;
	transient = res->status == CM__STATUS__UNAVAILABLE ||
	            res->status == CM__STATUS__DEADLINE_EXCEEDED ||
	            res->status == CM__STATUS__INTERNAL;
	if (!ok)
		cm_info("EDGE-SESSION-RENEW", "session renewal refused: %s", res->message);

	pthread_mutex_lock(&f->mtx);
	s = &f->slots[fl->idx];
	/* The slot is ours while BUSY: nobody else evicts a BUSY slot. */
	s->state = transient ? IDLE : DONE;
	s->done_ms = cm_mono_ms();
	s->ok = ok;
	if (ok) {
		s->access = strdup(tp->access_token);
		s->refresh = strdup(tp->refresh_token);
		s->max_age = tp->refresh_expires_in;
		if (s->access == NULL || s->refresh == NULL)
			s->ok = ok = false;
	}
	n = s->n_waiters;
	memcpy(w, s->waiters, sizeof(waiter) * (size_t)n);
	s->n_waiters = 0;
	pthread_mutex_unlock(&f->mtx);

	/* Resume everyone outside the lock; the strings stay valid: a DONE slot with a pair is
	 * only reused after RESULT_TTL_MS, far longer than these calls take (a refusal has no
	 * strings to keep). */
	for (int i = 0; i < n; i++)
		resume(w[i].r, w[i].next, ok, s->access, s->refresh, s->max_age, transient);
	if (tp != NULL)
		auth__token_pair__free_unpacked(tp, NULL);
	free(fl);
}

static bool
expired(const slot *s, int64_t now)
{
	return s->state == DONE && now - s->done_ms > (s->ok ? RESULT_TTL_MS : FAIL_TTL_MS);
}

/* Finds the slot for key, or claims a free one for (addr, sub) and makes it BUSY. *idx is the
 * slot (-1 with FULL). Called with the mutex held. */
static edge_renew_claim
claim(edge_refresher *f, const unsigned char key[32], const char *addr, const char *sub,
      int64_t now, int *idx)
{
	int free_idx = -1, by_addr = 0, by_sub = 0;

	*idx = -1;
	for (int i = 0; i < EDGE_RENEW_SLOTS; i++) {
		slot *s = &f->slots[i];
		if (expired(s, now))
			slot_clear(s);
		if (s->state == IDLE) {
			if (free_idx < 0)
				free_idx = i;
			continue;
		}
		if (memcmp(s->key, key, 32) == 0) {
			*idx = i;
			return s->state == BUSY ? EDGE_RENEW_JOIN : EDGE_RENEW_DONE;
		}
		by_addr += addr[0] != '\0' && strcmp(s->addr, addr) == 0;
		by_sub += strcmp(s->sub, sub) == 0;
	}
	if (free_idx < 0 || by_addr >= EDGE_RENEW_SHARE || by_sub >= EDGE_RENEW_SHARE)
		return EDGE_RENEW_FULL;
	slot_clear(&f->slots[free_idx]);
	f->slots[free_idx].state = BUSY;
	memcpy(f->slots[free_idx].key, key, 32);
	cm_strlcpy(f->slots[free_idx].addr, addr, sizeof(f->slots[free_idx].addr));
	cm_strlcpy(f->slots[free_idx].sub, sub, sizeof(f->slots[free_idx].sub));
	*idx = free_idx;
	return EDGE_RENEW_START;
}

edge_renew_claim
edge_refresher_claim(edge_refresher *f, const unsigned char key[32], const char *addr,
                     const char *sub, int64_t now_ms)
{
	edge_renew_claim c;
	int              idx;

	pthread_mutex_lock(&f->mtx);
	c = claim(f, key, addr, sub, now_ms, &idx);
	pthread_mutex_unlock(&f->mtx);
	return c;
}

/* The slot key: the old refresh token and who presents it. NULs keep the fields apart. */
static void
renew_key(edge_req *r, unsigned char key[32])
{
	crypto_hash_sha256_state st;
	const char              *ua = edge_header(r, "User-Agent");

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)r->cookie_refresh,
	                          strlen(r->cookie_refresh) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)r->client_addr,
	                          strlen(r->client_addr) + 1);
	if (ua != NULL)
		crypto_hash_sha256_update(&st, (const unsigned char *)ua, strlen(ua));
	crypto_hash_sha256_final(&st, key);
}

/* The cookie's access token may have expired (that is why it renews), up to the cookie's own
 * lifetime ago; everything else about it must hold, and its session must not be revoked. */
static bool
renewable(edge_req *r, cm_jwt_claims *c)
{
	const edge *e = r->e;
	const char *why = NULL;

	if (r->cookie_access == NULL ||
	    cm_jwt_verify(e->jwt, r->cookie_access, cm_now_ms() / 1000,
	                  e->cfg.session_ttl_s + LEEWAY_S, "access", c, &why) != CM_OK) {
		cm_debug("EDGE-RENEW-REFUSED", "no renewal for this cookie: %s",
		         why != NULL ? why : "no access token");
		return false;
	}
	return !edge_revoked_has(e->revoked, c->sid);
}

void
edge_session_renew(edge_req *r, void (*next)(edge_req *r))
{
	edge_refresher      *f = r->e->refresher;
	unsigned char        key[32];
	cm_jwt_claims        c;
	edge_renew_claim     how;
	int                  idx;
	slot                *s;
	flight              *fl;
	Auth__RefreshRequest rq = AUTH__REFRESH_REQUEST__INIT;
	cm_rpc_call_opts     o;
	cm_rpc_result        res;
	uint8_t             *buf;
	size_t               len;

	if (!renewable(r, &c)) {
		resume(r, next, false, NULL, NULL, 0, false); /* 401, and the cookie goes */
		return;
	}
	renew_key(r, key);
	if ((fl = calloc(1, sizeof(*fl))) == NULL) {
		next(r);
		return;
	}
	pthread_mutex_lock(&f->mtx);
	how = claim(f, key, r->client_addr, c.sub, cm_mono_ms(), &idx);
	s = idx >= 0 ? &f->slots[idx] : NULL;
	if (how == EDGE_RENEW_FULL || (how == EDGE_RENEW_JOIN && s->n_waiters >= MAX_WAITERS)) {
		/* Overloaded: carry on without renewing (503) rather than queue without bound. */
		pthread_mutex_unlock(&f->mtx);
		free(fl);
		r->renew_unavailable = true;
		next(r);
		return;
	}
	if (how == EDGE_RENEW_DONE) {
		bool    ok = s->ok;
		char   *a = ok ? strdup(s->access) : NULL;
		char   *rt = ok ? strdup(s->refresh) : NULL;
		int64_t max_age = s->max_age;
		pthread_mutex_unlock(&f->mtx);
		free(fl);
		resume(r, next, ok && a != NULL && rt != NULL, a, rt, max_age, false);
		free(a);
		free(rt);
		return;
	}
	s->waiters[s->n_waiters++] = (waiter){r, next};
	pthread_mutex_unlock(&f->mtx);
	if (how == EDGE_RENEW_JOIN) { /* ride on the flight already out */
		free(fl);
		return;
	}

	fl->f = f;
	fl->idx = idx;
	rq.refresh_token = r->cookie_refresh;
	len = auth__refresh_request__get_packed_size(&rq);
	if ((buf = cm_arena_alloc(&r->arena, len + 1)) != NULL) {
		auth__refresh_request__pack(&rq, buf);
		/* As nobody: the cookie's access token has expired, the refresh token is the proof.
		 */
		edge_rpc_opts(r->e, "auth.Refresh", r->request_id, NULL, NULL, r->client_addr,
		              false, &o);
		if (cm_rpc_call_async(r->e->up[EDGE_UP_AUTH], &o, buf, len, renew_done, fl) ==
		    CM_OK)
			return;
	}
	/* Could not start: fail the flight for everyone queued on it. */
	memset(&res, 0, sizeof(res));
	res.status = CM__STATUS__UNAVAILABLE;
	cm_strlcpy(res.message, "renewal could not start", sizeof(res.message));
	renew_done(fl, &res);
}
