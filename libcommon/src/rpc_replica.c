/*
 * rpc_replica.c - one replica of an upstream: its socket, its health, and the choice among them.
 *
 * DESIGN. Each replica URL gets its own req0 socket with one non-blocking dialer (nng reconnects
 * by itself) and a pipe-notify callback that counts live connections: a replica with no
 * connection is never chosen, which is our active health check (a killed replica is noticed as
 * soon as its TCP connection closes). Among replicas with a connection and not ejected, a call
 * picks the less loaded of two random ones (power of two choices on outstanding requests). Three
 * consecutive failures eject a replica for a time that grows with repeated ejections (passive
 * outlier detection); if every connected replica is ejected, ejection is ignored (panic mode)
 * rather than failing everything. When a replica's last connection drops, its in-flight calls
 * are cancelled from a task (never from inside the pipe callback, where nng holds locks) so they
 * fail fast instead of waiting out their deadline; so are its batches (rpc_batch.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "cm/log.h"
#include "cm/util.h"
#include "rpc_int.h"

#define EJECT_AFTER_FAILURES 3
#define EJECT_BASE_MS 2000
#define EJECT_MAX_MS 30000

static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	replica *r = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&r->pipes, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (atomic_fetch_sub(&r->pipes, 1) == 1) {
			/* Last connection gone: fail its calls fast, from a task thread. Once: a
			 * pipe that comes and goes again before the reaper ran must not start
			 * the same aio twice (nng 1.5.2 would corrupt its timer list). */
			if (!atomic_exchange(&r->reaper_armed, true))
				nng_sleep_aio(0, r->reaper);
		}
	}
}

static void
reap_calls(void *arg)
{
	replica *r = arg;

	atomic_store(&r->reaper_armed, false);
	if (nng_aio_result(r->reaper) != 0)
		return;
	pthread_mutex_lock(&r->mtx);
	for (rpc_call *c = r->calls; c != NULL; c = c->next) {
		c->cancelled_by_reaper = true;
		nng_aio_cancel(c->aio);
	}
	rpc_batch_reap_locked(r);
	pthread_mutex_unlock(&r->mtx);
}

replica *
rpc_replica_open(cm_rpc_client *c, const char *url, int group)
{
	replica *r;
	int      rv;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->client = c;
	r->group = group;
	pthread_mutex_init(&r->mtx, NULL);
	if ((r->url = strdup(url)) == NULL || nng_aio_alloc(&r->reaper, reap_calls, r) != 0 ||
	    nng_req0_open(&r->sock) != 0) {
		rpc_replica_free(r);
		return NULL;
	}
	r->sock_open = true;
	if (c->metrics != NULL) {
		char l[512]; /* a replica URL in a label */
		snprintf(l, sizeof(l), "upstream=\"%s\",replica=\"%s\"", c->name, url);
		r->m_calls =
		    cm_metrics_counter(c->metrics, "upstream_replica_calls_total",
		                       "Call attempts sent to each replica (retries included)", l);
	}
	nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, CM_MAX_RPC_MSG);
	nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, 2000);
	nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, pipe_event, r);
	nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, pipe_event, r);
	if ((rv = nng_dial(r->sock, r->url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		cm_error("RPC-DIAL-FAIL", "%s: bad replica address %s: %s", c->name, r->url,
		         nng_strerror(rv));
		rpc_replica_free(r);
		return NULL;
	}
	return r;
}

void
rpc_replica_free(replica *r)
{
	if (r == NULL)
		return;
	/* The reaper first, so that the pipes the close removes cannot start it on a socket being
	 * closed (nng 1.5.2's reaper can then wait for ever, nanomsg/nng#1543); stopped, it refuses
	 * to start. */
	if (r->reaper != NULL)
		nng_aio_stop(r->reaper);
	if (r->sock_open)
		nng_close(r->sock); /* aborts in-flight calls: their callbacks run */
	nng_aio_free(r->reaper);
	pthread_mutex_destroy(&r->mtx);
	free(r->url);
	free(r);
}

void
rpc_replica_rele(replica *r)
{
	atomic_fetch_sub(&r->outstanding, 1);
}

void
rpc_replica_success(replica *r)
{
	atomic_store(&r->failures, 0);
	atomic_store(&r->ejections, 0);
}

void
rpc_replica_failure(replica *r)
{
	int f = atomic_fetch_add(&r->failures, 1) + 1;

	if (f >= EJECT_AFTER_FAILURES) {
		int     k = atomic_fetch_add(&r->ejections, 1);
		int64_t ms = (int64_t)EJECT_BASE_MS << (k < 4 ? k : 4);
		if (ms > EJECT_MAX_MS)
			ms = EJECT_MAX_MS;
		atomic_store(&r->ejected_until_ms, cm_mono_ms() + ms);
		atomic_store(&r->failures, 0);
		cm_counter_add(r->client->m_ejections, 1);
		cm_warn("RPC-EJECT", "%s replica %s ejected for %lld ms after %d failures",
		        r->client->name, r->url, (long long)ms, f);
	}
}

static unsigned
next_rand(cm_rpc_client *c)
{
	/* xorshift on a shared seed: quality is irrelevant, it only spreads choices. */
	unsigned x = atomic_load(&c->seed), y;
	do {
		y = x;
		y ^= y << 13;
		y ^= y >> 17;
		y ^= y << 5;
	} while (!atomic_compare_exchange_weak(&c->seed, &x, y));
	return y;
}

replica *
rpc_pick(cm_rpc_client *c, const replica *avoid)
{
	replica *cand[CM_RPC_MAX_REPLICAS], *r = NULL;
	size_t   n = 0;
	int64_t  now = cm_mono_ms();

	pthread_rwlock_rdlock(&c->lock);
	for (int pass = 0; pass < 3 && n == 0; pass++) {
		for (size_t i = 0; i < c->n && n < CM_RPC_MAX_REPLICAS; i++) {
			replica *x = c->reps[i];
			if (atomic_load(&x->pipes) <= 0)
				continue;
			if (pass == 0 && (x == avoid || atomic_load(&x->ejected_until_ms) > now))
				continue;
			if (pass == 1 && atomic_load(&x->ejected_until_ms) > now)
				continue; /* allow `avoid` */
			cand[n++] = x;    /* pass 2: panic mode, ejection ignored */
		}
	}
	if (n == 1) {
		r = cand[0];
	} else if (n > 1) {
		replica *a = cand[next_rand(c) % n];
		replica *b = cand[next_rand(c) % n];
		r = atomic_load(&a->outstanding) <= atomic_load(&b->outstanding) ? a : b;
	}
	if (r != NULL)
		atomic_fetch_add(&r->outstanding, 1); /* under the lock: see rpc_int.h LOCKING */
	pthread_rwlock_unlock(&c->lock);
	return r;
}
