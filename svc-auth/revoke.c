/*
 * revoke.c - revoked session ids to Redis, with a retry queue (see revoke.h).
 *
 * DESIGN. A worker writes on its own connection, one EVAL per revocation (ZADD, trim, keep key,
 * expiries). A failure puts the id in a ring under a mutex; the retry thread drains the ring in
 * batches of up to BATCH ids per EVAL on its own connection, putting a batch back at the front
 * when Redis still cannot take it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/util.h"
#include "revoke.h"

#define KEY_SET "auth:revoked"       /* edge/revoked.c reads both */
#define KEY_KEEP "auth:revoked:keep" /* ms an id is kept after its revocation */
#define QUEUE_CAP 16384
#define BATCH 50
#define RETRY_MS 1000
#define SID_LEN 36

typedef struct rev_id {
	char s[SID_LEN + 1];
} rev_id;

struct auth_revoker {
	int64_t         keep_ms;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	rev_id         *q; /* ring of QUEUE_CAP */
	size_t          head, n;
	bool            stop, started, overflow_logged;
	char           *host;
	int             port;
	pthread_t       th;
};

/* KEYS set, keep; ARGV keep_ms, ids... */
static const char publish_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local keep = tonumber(ARGV[1]) "
    "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep) "
    "redis.call('PEXPIRE', KEYS[1], keep) "
    "redis.call('SET', KEYS[2], keep, 'PX', keep) "
    "return #ARGV - 1";

cm_err
auth_revoker_alloc(auth_revoker **out, int64_t keep_ms)
{
	auth_revoker      *rv;
	pthread_condattr_t ca;

	*out = NULL;
	if ((rv = calloc(1, sizeof(*rv))) == NULL ||
	    (rv->q = calloc(QUEUE_CAP, sizeof(rev_id))) == NULL) {
		free(rv);
		return CM_ENOMEM;
	}
	rv->keep_ms = keep_ms;
	pthread_mutex_init(&rv->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rv->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = rv;
	return CM_OK;
}

void
auth_revoker_free(auth_revoker *rv)
{
	if (rv == NULL)
		return;
	auth_revoker_stop(rv);
	pthread_cond_destroy(&rv->cv);
	pthread_mutex_destroy(&rv->mtx);
	free(rv->host);
	free(rv->q);
	free(rv);
}

static cm_err
publish(const auth_revoker *rv, cm_redis *r, const rev_id *ids, size_t n)
{
	const char *keys[2] = {KEY_SET, KEY_KEEP};
	const char *args[BATCH + 1];
	char        keep[24];
	int64_t     added;

	snprintf(keep, sizeof(keep), "%lld", (long long)rv->keep_ms);
	args[0] = keep;
	for (size_t i = 0; i < n; i++)
		args[i + 1] = ids[i].s;
	return cm_redis_eval_int(r, publish_lua, 2, keys, (int)n + 1, args, &added);
}

/* Appends ids to the ring (at the front when again: they were taken from there). */
static void
enqueue(auth_revoker *rv, const rev_id *ids, size_t n, bool again)
{
	pthread_mutex_lock(&rv->mtx);
	for (size_t i = 0; i < n; i++) {
		const rev_id *id = &ids[again ? n - 1 - i : i];
		if (rv->n == QUEUE_CAP) {
			if (again)
				break; /* newer ids came meanwhile: these are the oldest */
			rv->head = (rv->head + 1) % QUEUE_CAP; /* drop the oldest */
			rv->n--;
			if (!rv->overflow_logged)
				cm_warn("AUTH-REVOKE-QUEUE",
				        "revocation queue full: oldest ids dropped (their tokens "
				        "expire by themselves)");
			rv->overflow_logged = true;
		}
		if (again) {
			rv->head = (rv->head + QUEUE_CAP - 1) % QUEUE_CAP;
			rv->q[rv->head] = *id;
		} else {
			rv->q[(rv->head + rv->n) % QUEUE_CAP] = *id;
		}
		rv->n++;
	}
	pthread_mutex_unlock(&rv->mtx);
}

void
auth_revoker_publish(auth_revoker *rv, cm_redis *r, const char *sid)
{
	rev_id id;

	if (rv == NULL || sid == NULL || sid[0] == '\0' || strlen(sid) > SID_LEN)
		return;
	cm_strlcpy(id.s, sid, sizeof(id.s));
	if (publish(rv, r, &id, 1) == CM_OK)
		return;
	cm_warn("AUTH-REVOKE-DEFERRED", "session %s revoked; Redis unavailable, edges told later",
	        sid);
	enqueue(rv, &id, 1, false);
}

size_t
auth_revoker_pending(auth_revoker *rv)
{
	size_t n;

	pthread_mutex_lock(&rv->mtx);
	n = rv->n;
	pthread_mutex_unlock(&rv->mtx);
	return n;
}

static void *
retry_thread(void *arg)
{
	auth_revoker   *rv = arg;
	cm_redis       *r = NULL;
	rev_id          batch[BATCH];
	size_t          n;
	struct timespec until;

	if (cm_redis_open(&r, rv->host, rv->port, 0) != CM_OK)
		return NULL;
	pthread_mutex_lock(&rv->mtx);
	while (!rv->stop) {
		for (n = 0; n < BATCH && rv->n > 0; n++) {
			batch[n] = rv->q[rv->head];
			rv->head = (rv->head + 1) % QUEUE_CAP;
			rv->n--;
		}
		pthread_mutex_unlock(&rv->mtx);
		if (n > 0 && publish(rv, r, batch, n) != CM_OK) {
			enqueue(rv, batch, n, true);
			n = 0;
		} else if (n > 0) {
			cm_info("AUTH-REVOKE-SENT", "%zu deferred revocations written", n);
		}
		pthread_mutex_lock(&rv->mtx);
		if (n == BATCH && rv->n > 0)
			continue; /* more to send, and Redis takes them */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += RETRY_MS / 1000;
		if (!rv->stop)
			pthread_cond_timedwait(&rv->cv, &rv->mtx, &until);
	}
	pthread_mutex_unlock(&rv->mtx);
	cm_redis_close(r);
	return NULL;
}

cm_err
auth_revoker_start(auth_revoker *rv, const char *host, int64_t port)
{
	if (host == NULL || host[0] == '\0')
		return CM_OK;
	if ((rv->host = strdup(host)) == NULL)
		return CM_ENOMEM;
	rv->port = (int)port;
	if (pthread_create(&rv->th, NULL, retry_thread, rv) != 0)
		return CM_ENOMEM;
	rv->started = true;
	return CM_OK;
}

void
auth_revoker_stop(auth_revoker *rv)
{
	if (rv == NULL || !rv->started)
		return;
	pthread_mutex_lock(&rv->mtx);
	rv->stop = true;
	pthread_cond_signal(&rv->cv);
	pthread_mutex_unlock(&rv->mtx);
	pthread_join(rv->th, NULL);
	rv->started = false;
}
