/*
 * rpc_int.h - private to the RPC client (rpc_client.c, rpc_replica.c, rpc_resolve.c,
 * rpc_breaker.c, rpc_batch.c) and its unit tests: the client, its replicas, the breaker, the
 * resolver and the batcher.
 *
 * LOCKING. The set of replicas (`reps`) changes only on the resolver thread (after open) and is
 * read by every call: readers take `lock` shared, the resolver takes it exclusively to insert or
 * remove. A call holds a replica by counting itself in `outstanding` (taken in rpc_pick under the
 * shared lock, dropped by rpc_replica_rele when the call no longer touches the replica), so a
 * replica removed from the set is freed only after its last call let go of it.
 */
#ifndef CM_RPC_INT_H
#define CM_RPC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "cm/metrics.h"
#include "cm/rpc.h"
#include "proto/common.pb-c.h"

/* ---- breaker (rpc_breaker.c): pure state, no I/O, the clock passed in --------------------- */

#define RPC_BREAKER_BUCKETS 10

typedef struct rpc_breaker_cfg {
	int window_ms;   /* error rate measured over this sliding window */
	int min_calls;   /* ... once it holds at least this many calls */
	int error_pct;   /* opens at this share of failed calls */
	int consecutive; /* or after this many failed calls in a row */
	int open_ms;     /* rejects everything this long, then half-open */
	int probes;      /* calls let through at once when half-open */
} rpc_breaker_cfg;

typedef struct rpc_breaker {
	rpc_breaker_cfg cfg;
	pthread_mutex_t mtx;
	atomic_int      state; /* cm_rpc_breaker_state; read without the lock on the fast path */
	int64_t         open_until_ms;
	int             probes_out;
	int             consecutive;
	struct {
		int64_t epoch; /* bucket number (now / bucket length) the counts belong to */
		int     calls, fails;
	} win[RPC_BREAKER_BUCKETS];
} rpc_breaker;

enum { RPC_ADMIT, RPC_ADMIT_PROBE, RPC_REJECT };

void rpc_breaker_init(rpc_breaker *b, const rpc_breaker_cfg *cfg);
void rpc_breaker_fini(rpc_breaker *b);
/* RPC_ADMIT, RPC_ADMIT_PROBE (the caller must report the outcome with probe = true, or give the
 * slot back), or RPC_REJECT with *retry_after_ms until a probe may pass. */
int rpc_breaker_admit(rpc_breaker *b, int64_t now_ms, int64_t *retry_after_ms);
/* Records a finished call's outcome; returns the state after it. */
int rpc_breaker_record(rpc_breaker *b, bool probe, bool failed, int64_t now_ms);
/* A probe admitted but never sent (no replica): its slot is free again. */
void rpc_breaker_unprobe(rpc_breaker *b);

/* ---- replicas (rpc_replica.c) --------------------------------------------------------------- */

typedef struct rpc_call     rpc_call;
typedef struct replica      replica;
typedef struct rpc_resolver rpc_resolver;
typedef struct rpc_batch    rpc_batch;
typedef struct rpc_batcher  rpc_batcher;

struct replica {
	cm_rpc_client  *client;
	char           *url;
	int             group; /* index of the list entry it came from */
	nng_socket      sock;
	bool            sock_open;
	atomic_int      pipes;
	atomic_int      outstanding; /* calls holding the replica (see LOCKING) */
	atomic_int      failures;    /* consecutive */
	atomic_int      ejections;   /* consecutive ejections, for back-off */
	_Atomic int64_t ejected_until_ms;
	rpc_batch      *batches;        /* in flight on this replica (guarded by mtx) */
	int             batch_inflight; /* their number (guarded by the batcher's mutex) */
	pthread_mutex_t mtx;            /* guards calls and batches */
	rpc_call       *calls;          /* in flight on this replica */
	nng_aio        *reaper;         /* cancels in-flight calls when the last pipe goes */
	atomic_bool     reaper_armed;   /* the reaper is scheduled: never start the aio twice */
	cm_counter     *m_calls;        /* attempts sent to it; NULL without a registry */
	/* Resolver thread only: draining after removal from the set. */
	int64_t  drain_until_ms;
	replica *next_drain;
};

struct cm_rpc_client {
	char            *name;
	cm_metrics      *metrics;
	pthread_rwlock_t lock; /* guards reps and n */
	replica        **reps;
	size_t           n;
	atomic_int       n_live; /* n, readable without the lock */
	atomic_int       retry_tokens;
	atomic_uint      seed;
	atomic_int       pending; /* calls admitted and not finished */
	int              max_pending;
	rpc_breaker      breaker;
	rpc_resolver    *resolver; /* NULL when every entry is a static URL */
	rpc_batcher     *batcher;  /* NULL when batching is off */
	/* Per-upstream metrics, looked up once (NULL without a registry). */
	cm_counter *m_errors, *m_retries, *m_ejections;
	cm_counter *m_rej_breaker, *m_rej_pending, *m_rej_noreplica;
	cm_gauge   *m_breaker, *m_pending, *m_replicas;
};

/* A call in flight: a small state machine on nng's threads (rpc_client.c). */
enum { RPC_STAGE_SEND, RPC_STAGE_RECV, RPC_STAGE_REJECT };

struct rpc_call {
	cm_rpc_client *client;
	replica       *rep;         /* held while an attempt runs */
	rpc_call      *prev, *next; /* in rep->calls */
	nng_ctx        ctx;
	bool           ctx_open;
	nng_aio       *aio;
	nng_msg       *request; /* kept for a retry; duplicated per attempt */
	int            stage;
	int            attempts;
	bool           idempotent;
	bool           probe;    /* admitted by a half-open breaker */
	bool           admitted; /* counted in pending and by the breaker */
	bool           cancelled_by_reaper;
	int64_t        deadline_ms;
	uint64_t       start_ns;
	int            reject_status; /* RPC_STAGE_REJECT: the answer given without a call */
	int32_t        reject_retry_s;
	const char    *reject_msg;
	char           method[CM_MAX_METHOD_NAME];
	cm_rpc_done_fn done;
	void          *arg;
	rpc_call      *qnext; /* waiting to be batched (rpc_batch.c) */
};

/* For rpc_batch.c: the outcomes of a call that was part of a batch on `r` (held by the batch),
 * each exactly as for a call sent alone (failure accounting, retry elsewhere, result, done). */
void rpc_call_answered(rpc_call *call, replica *r, const Cm__Response *rsp);
void rpc_call_failed(rpc_call *call, replica *r, int rv, bool reaped);
/* Finishes a call that was never sent (or whose batch could not be) with `status`. */
void rpc_call_end(rpc_call *call, int status, const char *message);
/* Sends a call alone (a batch the server did not know): false when no replica is usable. */
bool rpc_call_send_alone(rpc_call *call);

/* Opens a replica's socket and starts dialling `url` (non-blocking). NULL on a bad address or
 * no memory (logged). */
replica *rpc_replica_open(cm_rpc_client *c, const char *url, int group);
/* Closes the socket (aborting its calls: their callbacks run) and frees; the caller made sure
 * no call holds it any more, or is closing the whole client. */
void rpc_replica_free(replica *r);
/* Drops the hold rpc_pick took. */
void rpc_replica_rele(replica *r);
void rpc_replica_success(replica *r);
void rpc_replica_failure(replica *r);
/* Picks a replica other than `avoid` when another is usable and holds it (rpc_replica_rele);
 * NULL when none has a connection. */
replica *rpc_pick(cm_rpc_client *c, const replica *avoid);

/* ---- batching (rpc_batch.c) ------------------------------------------------------------- */

/* Sets c->batcher from the options (NULL when batching is off). CM_ENOMEM only. */
CM_MUSTCHECK cm_err rpc_batcher_open(cm_rpc_client *c, const cm_rpc_client_opts *opts);
/* Fails the calls still waiting (UNAVAILABLE) and refuses new ones; before the replicas close. */
void rpc_batcher_close(cm_rpc_client *c);
/* Frees the batcher, once every replica is closed. */
void rpc_batcher_free(cm_rpc_client *c);
/* Takes an admitted batchable call: sent now in a batch, or waiting for one. False when batching
 * is off for now (the caller sends it alone). */
bool rpc_batch_submit(cm_rpc_client *c, rpc_call *call);
/* The reaper (rpc_replica.c, under r->mtx): cancels the batches in flight on r. */
void rpc_batch_reap_locked(replica *r);

/* ---- discovery (rpc_resolve.c) ------------------------------------------------------------- */

/* Parses a "dns+tcp://name:port" entry of group `group` into the resolver (allocated on first
 * use). CM_EINVAL on a malformed entry. */
CM_MUSTCHECK cm_err rpc_resolver_add(cm_rpc_client *c, const char *entry, int group,
                                     const cm_rpc_client_opts *opts);
/* Starts the thread that resolves every entry at once and then every period. */
CM_MUSTCHECK cm_err rpc_resolver_start(cm_rpc_client *c);
/* Stops and joins the thread, frees draining replicas (their calls are aborted). */
void rpc_resolver_stop(cm_rpc_client *c);

#endif
