/*
 * rpc.h - request/reply over nng with a protobuf-c envelope (proto/common.proto).
 *
 * SERVER. A service registers a table of methods {name, request descriptor, response descriptor,
 * handler}. cm_rpc_server_start() listens with one rep0 socket and starts N worker threads; each
 * worker owns its own nng context and aio, and the state returned by the service's worker_init
 * (typically its PostgreSQL and Redis connections), and loops recv -> unpack -> handle -> pack ->
 * send. Handlers run on the worker thread and may block (libpq, curl). A request whose deadline
 * has passed is answered DEADLINE_EXCEEDED without running the handler. A message that is not a
 * valid envelope, or names an unknown method, is answered with an error status, never a crash.
 *
 * Handlers see typed structs: the framework unpacks the payload with the request descriptor and
 * allocates the response (zero-initialised with the response descriptor) in a per-call arena.
 * Everything a handler points the response at must outlive the call: use cm_rpc_alloc() /
 * cm_rpc_strdup() (freed by the framework after packing) or static storage.
 *
 * CLIENT. A cm_rpc_client is one upstream service with one or more replicas (one req0 socket per
 * replica URL; NNG_OPT_REQ_RESENDTIME is infinite: retries are the caller's choice). Each call
 * picks a replica by power of two choices on outstanding requests among replicas that have a live
 * connection and are not ejected; a replica that fails repeatedly is ejected for a while (passive
 * outlier detection). Every call has a deadline; its timeout is deadline - now.
 *
 * An entry of the list may instead be `dns+tcp://name:port` (a Kubernetes headless Service): a
 * background thread resolves the name at open and every period; each address is a replica at
 * that port. Replicas that appear are dialled; those that disappear take no new calls and are
 * closed once their calls finished (or after a drain deadline). A failed resolution keeps the
 * last answer.
 *
 * Per upstream, beside the per-replica ejection: a circuit breaker (closed / open / half-open)
 * that opens when the share of failed calls over a window, or a run of failed calls, passes a
 * threshold; while open every call is answered UNAVAILABLE with a retry_after at once, without
 * reaching a replica; after the open period a few probe calls pass and a success closes it. And a
 * limit on pending calls: beyond it, UNAVAILABLE at once. Failed calls are those answered
 * UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE or DATA_LOSS, or not answered at all; a
 * replica answering one of them counts it as a failure too (so a replica that fails every call
 * is ejected), and an idempotent call is retried on another replica.
 *
 * BATCHING (rpc_batch.c). A call marked `batchable` (short, cheap calls only: the server runs a
 * batch's calls one after the other on one worker) goes out at once while its replica has fewer
 * than batch_inflight batches in flight; otherwise it waits, and the waiting calls leave together
 * as ONE message (method CM_RPC_BATCH_METHOD, proto/common.proto Batch) as soon as a batch in
 * flight completes: no added delay, the per-message cost (nng's thread hand-offs on both sides)
 * paid once for many calls. Each call keeps its own deadline (one that passes while waiting
 * fails DEADLINE_EXCEEDED unsent), status, admission, retry, and metrics; a batch that fails as a
 * whole fails each of its calls as if it had been sent alone. A server without batching answers
 * UNIMPLEMENTED: the client then sends one by one to that upstream for a while.
 */
#ifndef CM_RPC_H
#define CM_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cm/err.h"
#include "cm/limits.h"

typedef struct cm_metrics cm_metrics;

/* ---- server side ------------------------------------------------------------------------- */

typedef struct cm_rpc_ctx {
	/* From the envelope; valid for the duration of the call. Strings are never NULL. */
	const char *method;
	const char *request_id;
	int64_t     deadline_ms; /* absolute unix ms */
	const char *subject;     /* authenticated user id ("" when anonymous) */
	const char *session_id;
	const char *client_addr;
	size_t      n_roles;
	char      **roles;
	void       *worker_state; /* what the service's worker_init returned for this worker */

	/* Set by the handler when it returns an error (cm_rpc_fail). */
	char    message[CM_MAX_ERRMSG];
	int32_t retry_after_s;

	struct cm_arena *arena; /* private: per-call allocations */
} cm_rpc_ctx;

/* Handler: fills `resp` (already initialised, of the method's response type) from `req`.
 * Returns CM_OK, or an error after cm_rpc_fail() set the message. */
typedef cm_err (*cm_rpc_handler_fn)(cm_rpc_ctx *ctx, const void *req, void *resp);

/* Prefetch (optional, for batchable methods): the worker that runs a batch calls it once with the
 * calls of this method in the batch (n >= 2), before any of them runs, so that ONE round trip
 * can fetch what they all need (one query for n users instead of n queries); each ctx holds
 * its call's envelope fields and worker_state, not its payload. It keeps what it found in its
 * worker state for the handlers, which must give the same answers without it (they look it up,
 * and query alone when it is not there). Called again with calls == NULL and n == 0 to forget
 * it: after the batch, and before a call of a method without a prefetch runs in the same batch
 * (it may change what was fetched). */
typedef void (*cm_rpc_prefetch_fn)(void *worker_state, const cm_rpc_ctx *calls, size_t n);

typedef struct cm_rpc_method {
	const char                       *name; /* e.g. "auth.Login" */
	const ProtobufCMessageDescriptor *req_desc;
	const ProtobufCMessageDescriptor *resp_desc;
	cm_rpc_handler_fn                 fn;
	cm_rpc_prefetch_fn                prefetch; /* NULL: none */
} cm_rpc_method;

/* The method of a batch of calls (proto/common.proto Batch / BatchReply); handled by the server
 * itself, never in a service's method table. */
#define CM_RPC_BATCH_METHOD "cm.Batch"

/* The role of a service calling as itself, not for a user (cm_rpc_call_opts.role). The edge never
 * sends a role, so a method that requires this one cannot be reached from outside. */
#define CM_ROLE_SERVICE "service"

/* True when the envelope carries `role` (rpc_role.c). */
bool cm_rpc_has_role(const cm_rpc_ctx *ctx, const char *role);
/* For methods only services may call (deletion logs): CM_OK when the caller is a service acting as
 * itself (role CM_ROLE_SERVICE and no subject); else fails the call with CM_EPERM. */
CM_MUSTCHECK cm_err cm_rpc_require_service(cm_rpc_ctx *ctx);

/* Records the error message (printf-style) for the reply; returns err for `return cm_rpc_fail(..)`.
 */
cm_err cm_rpc_fail(cm_rpc_ctx *ctx, cm_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Per-call arena allocations, zeroed, freed after the reply is sent. Abort-free: NULL on OOM. */
void *cm_rpc_alloc(cm_rpc_ctx *ctx, size_t n);
char *cm_rpc_strdup(cm_rpc_ctx *ctx, const char *s);
char *cm_rpc_strndup(cm_rpc_ctx *ctx, const char *s, size_t n);

/* Milliseconds left before the call's deadline (may be <= 0). */
int64_t cm_rpc_remaining_ms(const cm_rpc_ctx *ctx);

typedef struct cm_rpc_server_config {
	const char          *url;     /* e.g. "tcp://127.0.0.1:7101" */
	int                  workers; /* >= 1 */
	const cm_rpc_method *methods;
	size_t               n_methods;
	/* Called once on each worker thread before it serves; sets the worker's state (may be
	 * NULL). cm_rpc_server_start waits for every worker's worker_init and fails, stopping all,
	 * when any returned an error. worker_fini is called on the same thread when the server
	 * stops, for every worker whose worker_init ran (also a failed one: state as it set it). */
	cm_err (*worker_init)(void *arg, int worker_index, void **state);
	void (*worker_fini)(void *arg, int worker_index, void *state);
	/* Optional, on the worker thread around each handler call (e.g. bound the worker's
	 * database statements by ctx->deadline_ms). Must not fail. */
	void (*call_begin)(void *arg, int worker_index, const cm_rpc_ctx *ctx);
	void (*call_end)(void *arg, int worker_index);
	void       *arg;
	cm_metrics *metrics; /* optional: rpc_requests_total / rpc_duration_seconds per method */
} cm_rpc_server_config;

typedef struct cm_rpc_server cm_rpc_server;

CM_MUSTCHECK cm_err cm_rpc_server_start(cm_rpc_server **out, const cm_rpc_server_config *cfg);
/* Stops receiving, lets in-flight handlers finish and reply, joins the workers, frees. */
void cm_rpc_server_stop(cm_rpc_server *srv);
/* Requests being handled right now (for draining and metrics). */
int cm_rpc_server_inflight(cm_rpc_server *srv);

/* ---- client side ------------------------------------------------------------------------- */

typedef struct cm_rpc_client cm_rpc_client;

/* The answer of a name lookup: numeric addresses ("10.0.0.7", "fd00::7"). */
typedef struct cm_rpc_addrs {
	size_t n;
	char   addr[CM_RPC_MAX_REPLICAS][CM_RPC_MAX_ADDR];
} cm_rpc_addrs;

/* Resolves `name` into *out (out->n = 0 on entry). Runs on the client's resolver thread, may
 * block. An error keeps the replicas of the previous answer. */
typedef cm_err (*cm_rpc_resolve_fn)(void *arg, const char *name, cm_rpc_addrs *out);

/* Options of a client; a field left 0 takes its default from cm/limits.h (CM_RPC_*). */
typedef struct cm_rpc_client_opts {
	int resolve_ms;  /* dns+tcp:// period; 0 = env CM_RPC_RESOLVE_MS or 5000 */
	int drain_ms;    /* a removed replica is closed after this at the latest */
	int max_pending; /* calls in flight per upstream; < 0 = no limit */
	int breaker_window_ms;
	int breaker_min_calls;
	int breaker_error_pct;   /* > 100 = never opens on the error rate */
	int breaker_consecutive; /* < 0 = never opens on a run of failures */
	int breaker_open_ms;
	int breaker_probes;
	int batch_inflight;                /* batches in flight per replica before calls wait to be
	                                    * batched; 0 = env CM_RPC_BATCH_INFLIGHT or 1; < 0 = no
	                                    * batching (batchable calls go one by one) */
	int               batch_max_calls; /* calls per batch; 0 = CM_RPC_BATCH_MAX_CALLS */
	int               batch_max_bytes; /* packed calls per batch; 0 = CM_RPC_BATCH_MAX_BYTES */
	cm_rpc_resolve_fn resolve;         /* NULL = getaddrinfo; tests give their own answers */
	void             *resolve_arg;
} cm_rpc_client_opts;

/* `urls`: one or more entries separated by commas, each a replica URL (tcp://host:port) or
 * dns+tcp://name:port. The client dials lazily and reconnects by itself; opening never waits
 * for a replica (nor for a name's first resolution). `name` labels logs and metrics:
 * upstream_requests_total{upstream,method,code}, upstream_duration_seconds{upstream,method},
 * upstream_errors_total, upstream_retries_total, upstream_ejections_total,
 * upstream_rejections_total{reason: breaker_open, pending_limit, no_replica},
 * upstream_breaker_state (cm_rpc_breaker_state), upstream_pending, upstream_replicas,
 * upstream_batches_total and upstream_batched_calls_total (their ratio: calls per batch). */
CM_MUSTCHECK cm_err cm_rpc_client_open(cm_rpc_client **out, const char *name, const char *urls,
                                       cm_metrics *metrics);
/* The same with options (NULL = defaults). */
CM_MUSTCHECK cm_err cm_rpc_client_open_opts(cm_rpc_client **out, const char *name, const char *urls,
                                            cm_metrics *metrics, const cm_rpc_client_opts *opts);
void                cm_rpc_client_close(cm_rpc_client *c);

/* Number of replicas with at least one live connection and not ejected. */
int cm_rpc_client_healthy(cm_rpc_client *c);
/* Number of replicas known (static and resolved, draining ones excluded). */
int cm_rpc_client_replicas(cm_rpc_client *c);
/* Calls in flight. */
int cm_rpc_client_pending(cm_rpc_client *c);

typedef enum cm_rpc_breaker_state {
	CM_BREAKER_CLOSED = 0,
	CM_BREAKER_OPEN = 1,
	CM_BREAKER_HALF_OPEN = 2,
} cm_rpc_breaker_state;

/* The upstream's breaker state, for reports and fallbacks. */
int cm_rpc_client_breaker_state(cm_rpc_client *c);

typedef struct cm_rpc_call_opts {
	const char *method;
	const char *request_id;  /* may be NULL */
	int64_t     deadline_ms; /* absolute; 0 = now + CM_DEFAULT_DEADLINE_MS */
	const char *subject;     /* may be NULL */
	const char *session_id;  /* may be NULL */
	const char *client_addr; /* may be NULL */
	bool        idempotent;  /* may be retried on another replica after a timeout/UNAVAILABLE */
	const char *role;        /* NULL = none; CM_ROLE_SERVICE for a service's own call */
	bool        batchable;   /* may share one message with other calls (see BATCHING): only
	                          * for calls the server answers quickly */
} cm_rpc_call_opts;

/* The outcome of a call. `status` is the cm.Status value; UNAVAILABLE when no replica answered,
 * DEADLINE_EXCEEDED when the deadline passed. `payload` is the packed response message.
 * `refused`: the breaker or the pending limit answered (UNAVAILABLE) and nothing was sent, so a
 * caller may take the request elsewhere (the edge's fallback to the old backend). */
typedef struct cm_rpc_result {
	int      status;
	char     message[CM_MAX_ERRMSG];
	int32_t  retry_after_s;
	bool     refused;
	uint8_t *payload;
	size_t   payload_len;
} cm_rpc_result;

void cm_rpc_result_fini(cm_rpc_result *r);
/* A result made by the caller (a call that never started): status, message, nothing else. */
void cm_rpc_result_set(cm_rpc_result *res, int status, const char *message);

/* Blocking call with an already packed request payload. Always fills *res (fini it after). */
void cm_rpc_call_raw(cm_rpc_client *c, const cm_rpc_call_opts *opts, const void *payload,
                     size_t len, cm_rpc_result *res);

/* Blocking typed call: packs req, and on OK unpacks the response into *resp_out (free it with
 * protobuf_c_message_free_unpacked(*resp_out, NULL)). Returns the status as cm_err. */
cm_err cm_rpc_call(cm_rpc_client *c, const cm_rpc_call_opts *opts, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
                   cm_rpc_result *res);

/* Asynchronous call for event-driven callers (the edge). `done` runs exactly once on an nng
 * thread: it must not block. The result is valid only during `done`. Returns CM_OK when the call
 * was started; otherwise `done` is not called: CM_EUNAVAIL when no replica is connected,
 * CM_ETIMEDOUT when the deadline has already passed. A call the breaker or the pending limit
 * refuses is started: `done` receives UNAVAILABLE with retry_after_s and `refused` (nothing was
 * sent). */
typedef void (*cm_rpc_done_fn)(void *arg, cm_rpc_result *res);
CM_MUSTCHECK cm_err cm_rpc_call_async(cm_rpc_client *c, const cm_rpc_call_opts *opts,
                                      const void *payload, size_t len, cm_rpc_done_fn done,
                                      void *arg);

#endif
