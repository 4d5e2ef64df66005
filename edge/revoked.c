/*
 * revoked.c - the revoked-session set and its poller (see revoked.h).
 *
 * DESIGN. The set is an open-addressing hash table of {session id, monotonic expiry}, replaced
 * whole: the poller builds the next table from the live entries of the current one plus what it
 * read, and swaps the pointer under a write lock only when something changed (entries arrived or
 * expired), so readers hold the read lock for one lookup and never wait on Redis.
 * One poll is one EVAL: Redis's time, the keep time, and the members scored from `since` on (at
 * most BATCH). `since` is the previous poll's Redis time minus OVERLAP_MS: scripts run one at a
 * time and stamp with Redis's own clock, so every write after a poll scores at least that poll's
 * time; the overlap only absorbs small clock steps, and reading an id twice changes nothing. A
 * full batch is followed at once by the next one, from the last score read.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/redis.h"
#include "cm/util.h"
#include "revoked.h"

#define KEY_SET "auth:revoked"       /* svc-auth/revoke.c writes both */
#define KEY_KEEP "auth:revoked:keep" /* ms an id is kept after its revocation */
#define BATCH 2000
#define OVERLAP_MS 1000
#define DEFAULT_KEEP_MS (16 * 60 * 1000) /* when the keep key is gone: 15 min + leeway */
#define MAX_ENTRIES (1u << 20)
#define SID_MAX 36 /* a UUID */

typedef struct entry {
	char    sid[SID_MAX + 1]; /* "" = empty */
	int64_t exp_ms;           /* cm_mono_ms() after which it no longer matters */
} entry;

typedef struct table {
	size_t cap; /* power of two */
	size_t n;
	entry  e[];
} table;

struct edge_revoked {
	char                 *host;
	int                   port;
	pthread_t             th;
	bool                  started;
	pthread_mutex_t       mtx; /* with cv: the stop flag */
	pthread_cond_t        cv;
	bool                  stop;
	pthread_rwlock_t      lock; /* guards cur */
	table                *cur;
	atomic_uint_least64_t polls;
	bool                  full_logged;
};

/* KEYS set, keep; ARGV since, batch -> {now, keep, member, score, member, score, ...} */
static const char poll_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local keep = tonumber(redis.call('GET', KEYS[2]) or '0') or 0 "
    "local r = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, "
    "  ARGV[2]) "
    "table.insert(r, 1, keep) table.insert(r, 1, now) return r";

static table *
table_alloc(size_t want)
{
	size_t cap = 64;
	table *t;

	while (cap < want * 2)
		cap *= 2;
	if ((t = calloc(1, sizeof(*t) + cap * sizeof(entry))) != NULL)
		t->cap = cap;
	return t;
}

static entry *
table_slot(table *t, const char *sid)
{
	size_t i = (size_t)cm_hash_str(sid) & (t->cap - 1);

	while (t->e[i].sid[0] != '\0' && strcmp(t->e[i].sid, sid) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->e[i];
}

/* Adds or extends sid; the table has room (cap >= 2 n). */
static void
table_put(table *t, const char *sid, int64_t exp_ms)
{
	entry *e = table_slot(t, sid);

	if (e->sid[0] == '\0') {
		cm_strlcpy(e->sid, sid, sizeof(e->sid));
		t->n++;
	}
	if (exp_ms > e->exp_ms)
		e->exp_ms = exp_ms;
}

bool
edge_revoked_has(edge_revoked *v, const char *sid)
{
	const entry *e;
	bool         found = false;

	if (v == NULL || sid == NULL || sid[0] == '\0' || strlen(sid) > SID_MAX)
		return false;
	pthread_rwlock_rdlock(&v->lock);
	if (v->cur != NULL) {
		e = table_slot(v->cur, sid);
		found = e->sid[0] != '\0' && e->exp_ms > cm_mono_ms();
	}
	pthread_rwlock_unlock(&v->lock);
	return found;
}

uint64_t
edge_revoked_polls(edge_revoked *v)
{
	return v != NULL ? atomic_load(&v->polls) : 0;
}

/* Next table: the live entries of cur plus the n pairs (member, score) in items. NULL when
 * nothing changed (or no memory: the current table stays). */
static table *
merge(edge_revoked *v, const char *items, size_t n, int64_t redis_now, int64_t keep)
{
	const table *cur = v->cur;
	int64_t      now = cm_mono_ms();
	size_t       live = 0, dead = 0;
	const char  *p;
	table       *t;

	for (size_t i = 0; cur != NULL && i < cur->cap; i++) {
		if (cur->e[i].sid[0] == '\0')
			continue;
		if (cur->e[i].exp_ms > now)
			live++;
		else
			dead++;
	}
	if (dead == 0 && n == 0)
		return NULL;
	if (live + n > MAX_ENTRIES) {
		if (!v->full_logged)
			cm_warn("EDGE-REVOKED-FULL",
			        "more than %u revoked sessions: newest ignored", MAX_ENTRIES);
		v->full_logged = true;
		n = live < MAX_ENTRIES ? MAX_ENTRIES - live : 0;
	}
	if ((t = table_alloc(live + n)) == NULL)
		return NULL;
	for (size_t i = 0; cur != NULL && i < cur->cap; i++) {
		if (cur->e[i].sid[0] != '\0' && cur->e[i].exp_ms > now)
			table_put(t, cur->e[i].sid, cur->e[i].exp_ms);
	}
	for (p = items; n > 0; n--) {
		const char *sid = p, *score = p + strlen(p) + 1;
		int64_t     exp = now + (strtoll(score, NULL, 10) + keep - redis_now);
		p = score + strlen(score) + 1;
		if (sid[0] != '\0' && strlen(sid) <= SID_MAX && exp > now)
			table_put(t, sid, exp);
	}
	return t;
}

/* One round trip; *more when the batch was full. False when Redis could not answer. */
static bool
poll_once(edge_revoked *v, cm_redis *redis, cm_buf *out, int64_t *since, bool *more)
{
	char        since_s[24], batch_s[16];
	const char *keys[2] = {KEY_SET, KEY_KEEP}, *args[2] = {since_s, batch_s};
	const char *p, *last = NULL;
	int64_t     redis_now, keep;
	size_t      n = 0, pairs;
	table      *next, *old;

	*more = false;
	snprintf(since_s, sizeof(since_s), "%lld", (long long)*since);
	snprintf(batch_s, sizeof(batch_s), "%d", BATCH);
	cm_buf_reset(out);
	if (cm_redis_eval_list(redis, poll_lua, 2, keys, 2, args, out, &n) != CM_OK || n < 2 ||
	    n % 2 != 0)
		return false;
	p = out->data;
	redis_now = strtoll(p, NULL, 10);
	p += strlen(p) + 1;
	keep = strtoll(p, NULL, 10);
	p += strlen(p) + 1;
	if (keep <= 0)
		keep = DEFAULT_KEEP_MS;
	pairs = (n - 2) / 2;
	if ((next = merge(v, p, pairs, redis_now, keep)) != NULL) {
		pthread_rwlock_wrlock(&v->lock);
		old = v->cur;
		v->cur = next;
		pthread_rwlock_unlock(&v->lock);
		free(old);
	}
	if (pairs == BATCH) { /* resume from the last score read */
		for (size_t i = 0; i < pairs; i++) {
			p += strlen(p) + 1;
			last = p;
			p += strlen(p) + 1;
		}
		*since = strtoll(last, NULL, 10);
		*more = true;
	} else {
		*since = redis_now - OVERLAP_MS;
	}
	atomic_fetch_add(&v->polls, 1);
	return true;
}

static void *
poller(void *arg)
{
	edge_revoked   *v = arg;
	cm_redis       *redis = NULL;
	cm_buf          out;
	int64_t         since = 0;
	bool            more = false, stop = false;
	struct timespec until;

	cm_buf_init(&out, 4u << 20);
	if (cm_redis_open(&redis, v->host, v->port, 0) != CM_OK) {
		cm_error("EDGE-REVOKED", "cannot open Redis: revocations are not seen");
		return NULL;
	}
	while (!stop) {
		(void)poll_once(v, redis, &out, &since, &more);
		pthread_mutex_lock(&v->mtx);
		if (!more && !v->stop) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += (long)EDGE_REVOKED_POLL_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&v->cv, &v->mtx, &until);
		}
		stop = v->stop;
		pthread_mutex_unlock(&v->mtx);
	}
	cm_redis_close(redis);
	cm_buf_fini(&out);
	return NULL;
}

cm_err
edge_revoked_start(edge_revoked **out, const char *host, int64_t port)
{
	edge_revoked      *v;
	pthread_condattr_t ca;

	*out = NULL;
	if (host == NULL || host[0] == '\0')
		return CM_OK;
	if ((v = calloc(1, sizeof(*v))) == NULL || (v->host = strdup(host)) == NULL) {
		free(v);
		return CM_ENOMEM;
	}
	v->port = (int)port;
	pthread_mutex_init(&v->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&v->lock, NULL);
	if (pthread_create(&v->th, NULL, poller, v) != 0) {
		edge_revoked_stop(v);
		return CM_ENOMEM;
	}
	v->started = true;
	*out = v;
	return CM_OK;
}

void
edge_revoked_stop(edge_revoked *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&v->mtx);
	v->stop = true;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mtx);
	if (v->started)
		pthread_join(v->th, NULL);
	pthread_rwlock_destroy(&v->lock);
	pthread_cond_destroy(&v->cv);
	pthread_mutex_destroy(&v->mtx);
	free(v->cur);
	free(v->host);
	free(v);
}
