/*
 * refresh.c - single-flight renewal of cookie sessions (see refresh.h).
 *
 * A fixed table of slots keyed by the SHA-256 of the old refresh token. A slot is IDLE, BUSY (an
 * RPC is out; later requests queue as waiters) or DONE (result kept for RESULT_TTL_MS). All
 * slot state is under one mutex, held only for table operations, never across an RPC or a
 * callback into the request.
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

#define SLOTS 256
#define RESULT_TTL_MS 30000
#define MAX_WAITERS 64

enum { IDLE, BUSY, DONE };

typedef struct waiter {
	edge_req *r;
	void (*next)(edge_req *r);
} waiter;

typedef struct slot {
	int           state;
	unsigned char key[32];
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
	slot            slots[SLOTS];
};

typedef struct flight {
	edge_refresher *f;
	int             idx;
	unsigned char   key[32];
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
	for (int i = 0; i < SLOTS; i++)
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
	if (ok && cm_jwt_verify(r->e->jwt, access, cm_now_ms() / 1000, 30, "access", &r->claims,
	                        NULL) == CM_OK) {
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

	/* Resume everyone outside the lock; the strings stay valid: a DONE slot is only reused
	 * after RESULT_TTL_MS, far longer than these calls take. */
	for (int i = 0; i < n; i++)
		resume(w[i].r, w[i].next, ok, s->access, s->refresh, s->max_age, transient);
	if (tp != NULL)
		auth__token_pair__free_unpacked(tp, NULL);
	free(fl);
}

/* Finds the slot for key, or claims a free/expired one. Returns -1 when the table is full of
 * busy slots. Called with the mutex held. */
static int
find_slot(edge_refresher *f, const unsigned char key[32], int64_t now, bool *found)
{
	int free_idx = -1;

	*found = false;
	for (int i = 0; i < SLOTS; i++) {
		slot *s = &f->slots[i];
		if (s->state == DONE && now - s->done_ms > RESULT_TTL_MS)
			slot_clear(s);
		if (s->state != IDLE && memcmp(s->key, key, 32) == 0) {
			*found = true;
			return i;
		}
		if (s->state == IDLE && free_idx < 0)
			free_idx = i;
	}
	return free_idx;
}

void
edge_session_renew(edge_req *r, void (*next)(edge_req *r))
{
	edge_refresher      *f = r->e->refresher;
	unsigned char        key[32];
	int64_t              now = cm_mono_ms();
	bool                 found;
	int                  idx;
	slot                *s;
	flight              *fl;
	Auth__RefreshRequest rq = AUTH__REFRESH_REQUEST__INIT;
	cm_rpc_call_opts     o;
	cm_rpc_result        res;
	uint8_t             *buf;
	size_t               len;

	crypto_hash_sha256(key, (const unsigned char *)r->cookie_refresh,
	                   strlen(r->cookie_refresh));
	if ((fl = calloc(1, sizeof(*fl))) == NULL) {
		next(r);
		return;
	}
	pthread_mutex_lock(&f->mtx);
	idx = find_slot(f, key, now, &found);
	s = idx >= 0 ? &f->slots[idx] : NULL;
	if (s == NULL || (found && s->state == BUSY && s->n_waiters >= MAX_WAITERS)) {
		/* Overloaded: carry on unauthenticated rather than queue without bound. */
		pthread_mutex_unlock(&f->mtx);
		free(fl);
		r->renew_unavailable = true;
		next(r);
		return;
	}
	if (found && s->state == DONE) {
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
	if (found) { /* BUSY: ride on the flight already out */
		s->waiters[s->n_waiters++] = (waiter){r, next};
		pthread_mutex_unlock(&f->mtx);
		free(fl);
		return;
	}
	s->state = BUSY;
	memcpy(s->key, key, 32);
	s->waiters[0] = (waiter){r, next};
	s->n_waiters = 1;
	pthread_mutex_unlock(&f->mtx);

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
