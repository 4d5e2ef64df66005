/*
 * ratelimit.c - striped token buckets keyed by FNV-1a of "a:<addr>" or "u:<user>".
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm/util.h"
#include "ratelimit.h"

#define BUCKETS 4096
#define STRIPES 64

typedef struct bucket {
	double  tokens;
	int64_t last_ms;
} bucket;

struct edge_limiter {
	double          rate, burst;
	pthread_mutex_t locks[STRIPES];
	bucket          b[BUCKETS];
};

edge_limiter *
edge_limiter_alloc(int64_t rate_per_s, int64_t burst)
{
	edge_limiter *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->rate = (double)rate_per_s;
	l->burst = (double)(burst > 0 ? burst : rate_per_s);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&l->locks[i], NULL);
	return l;
}

void
edge_limiter_free(edge_limiter *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&l->locks[i]);
	free(l);
}

static uint32_t
hash_key(char kind, const char *s)
{
	uint32_t h = 2166136261u;

	h = (h ^ (uint8_t)kind) * 16777619u;
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool
take_one(edge_limiter *l, uint32_t h, int64_t now, int64_t *retry_s)
{
	bucket          *b = &l->b[h % BUCKETS];
	pthread_mutex_t *mu = &l->locks[h % STRIPES];
	bool             ok;

	pthread_mutex_lock(mu);
	if (b->last_ms == 0) {
		b->tokens = l->burst;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) * l->rate / 1000.0;
	if (b->tokens > l->burst)
		b->tokens = l->burst;
	b->last_ms = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*retry_s = (int64_t)((1.0 - b->tokens) / l->rate) + 1;
	pthread_mutex_unlock(mu);
	return ok;
}

bool
edge_limiter_take(edge_limiter *l, const char *addr, const char *user, int64_t *retry_s)
{
	int64_t now = cm_mono_ms();

	*retry_s = 0;
	if (l == NULL || l->rate <= 0)
		return true;
	if (addr != NULL && addr[0] != '\0' && !take_one(l, hash_key('a', addr), now, retry_s))
		return false;
	if (user != NULL && user[0] != '\0' && !take_one(l, hash_key('u', user), now, retry_s))
		return false;
	return true;
}
