/*
 * log_buffer.c - buffered raw log lines (access logs): cm_log_buffer_start (cm/log.h).
 *
 * WHY. The edge writes one access line per request; a write(2) each was a tenth of what a cheap
 * request (GET /api/v1/auth/me) cost it (bench/auth_me.sh). nginx buffers its access log the same
 * way (`access_log ... buffer=... flush=...`).
 *
 * DESIGN. Lines go into one buffer under a mutex (a copy, no syscall); a writer thread swaps it
 * for a second one every flush_ms, or as soon as it is half full, and writes it outside the lock.
 * Writes are cut at line ends into pieces of at most PIPE_BUF bytes, which a pipe (a container's
 * stdout) takes atomically, so another thread's direct log line never lands inside one of ours.
 * A line that finds the buffer full is written at once by its caller (the writer is behind, the
 * disk is slow: the request pays, nothing is lost). What a crash takes is the last flush_ms.
 */
#define _GNU_SOURCE /* memrchr */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "log_int.h"

#define BUF_CAP (256u * 1024u)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  cv;
static pthread_t       writer;
static char           *cur, *spare; /* cur fills; spare is the writer's */
static size_t          cur_len;
static bool            active, stopping;
static int             flush_ms;

/* Writes whole lines in pieces of at most PIPE_BUF bytes (a longer line goes alone). */
static void
write_lines(const char *p, size_t n)
{
	while (n > 0) {
		size_t k = n < PIPE_BUF ? n : PIPE_BUF;

		if (k < n) {
			const char *nl = memrchr(p, '\n', k);

			if (nl != NULL) {
				k = (size_t)(nl - p) + 1;
			} else {
				nl = memchr(p + k, '\n', n - k);
				k = nl != NULL ? (size_t)(nl - p) + 1 : n;
			}
		}
		cm_log_write_all(p, k);
		p += k;
		n -= k;
	}
}

static void *
writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		struct timespec until;
		char           *full;
		size_t          n;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(flush_ms % 1000) * 1000000L;
		until.tv_sec += flush_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!stopping && cur_len < BUF_CAP / 2 &&
		       pthread_cond_timedwait(&cv, &mu, &until) == 0)
			;
		if (cur_len == 0)
			continue;
		full = cur;
		n = cur_len;
		cur = spare;
		cur_len = 0;
		spare = full;
		pthread_mutex_unlock(&mu);
		write_lines(full, n);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

bool
cm_log_buffer_start(int every_ms)
{
	pthread_condattr_t ca;
	bool               ok = false;

	pthread_mutex_lock(&mu);
	if (active)
		goto out;
	if ((cur = malloc(BUF_CAP)) == NULL || (spare = malloc(BUF_CAP)) == NULL)
		goto fail;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_condattr_destroy(&ca);
	flush_ms = every_ms > 0 ? every_ms : 1;
	cur_len = 0;
	stopping = false;
	if (pthread_create(&writer, NULL, writer_main, NULL) != 0) {
		pthread_cond_destroy(&cv);
		goto fail;
	}
	active = ok = true;
	goto out;
fail:
	free(cur);
	free(spare);
	cur = spare = NULL;
out:
	pthread_mutex_unlock(&mu);
	return ok;
}

void
cm_log_buffer_stop(void)
{
	pthread_mutex_lock(&mu);
	if (!active) {
		pthread_mutex_unlock(&mu);
		return;
	}
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(writer, NULL);
	pthread_mutex_lock(&mu);
	write_lines(cur, cur_len);
	free(cur);
	free(spare);
	cur = spare = NULL;
	cur_len = 0;
	active = false;
	pthread_cond_destroy(&cv);
	pthread_mutex_unlock(&mu);
}

bool
cm_log_buffer_put(const char *json, size_t n)
{
	size_t before;

	pthread_mutex_lock(&mu);
	if (!active || n + 1 > BUF_CAP) {
		pthread_mutex_unlock(&mu);
		return false;
	}
	if (cur_len + n + 1 > BUF_CAP) { /* the writer is behind: this caller writes the buffer */
		write_lines(cur, cur_len);
		cur_len = 0;
	}
	before = cur_len;
	memcpy(cur + cur_len, json, n);
	cur[cur_len + n] = '\n';
	cur_len += n + 1;
	if (before < BUF_CAP / 2 && cur_len >= BUF_CAP / 2)
		pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	return true;
}
