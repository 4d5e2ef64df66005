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

typedef struct cm_rpc_method {
	const char                       *name; /* e.g. "auth.Login" */
	const ProtobufCMessageDescriptor *req_desc;
	const ProtobufCMessageDescriptor *resp_desc;
	cm_rpc_handler_fn                 fn;
} cm_rpc_method;

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

/* `urls`: one or more replica URLs separated by commas. The client dials lazily and reconnects
 * by itself; opening never waits for a replica. `name` labels logs and metrics. */
CM_MUSTCHECK cm_err cm_rpc_client_open(cm_rpc_client **out, const char *name, const char *urls,
                                       cm_metrics *metrics);
void                cm_rpc_client_close(cm_rpc_client *c);

/* Number of replicas with at least one live connection and not ejected. */
int cm_rpc_client_healthy(cm_rpc_client *c);

typedef struct cm_rpc_call_opts {
	const char *method;
	const char *request_id;  /* may be NULL */
	int64_t     deadline_ms; /* absolute; 0 = now + CM_DEFAULT_DEADLINE_MS */
	const char *subject;     /* may be NULL */
	const char *session_id;  /* may be NULL */
	const char *client_addr; /* may be NULL */
	bool        idempotent;  /* may be retried on another replica after a timeout/UNAVAILABLE */
	const char *role;        /* NULL = none; CM_ROLE_SERVICE for a service's own call */
} cm_rpc_call_opts;

/* The outcome of a call. `status` is the cm.Status value; UNAVAILABLE when no replica answered,
 * DEADLINE_EXCEEDED when the deadline passed. `payload` is the packed response message. */
typedef struct cm_rpc_result {
	int      status;
	char     message[CM_MAX_ERRMSG];
	int32_t  retry_after_s;
	uint8_t *payload;
	size_t   payload_len;
} cm_rpc_result;

void cm_rpc_result_fini(cm_rpc_result *r);

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
 * CM_ETIMEDOUT when the deadline has already passed. */
typedef void (*cm_rpc_done_fn)(void *arg, cm_rpc_result *res);
CM_MUSTCHECK cm_err cm_rpc_call_async(cm_rpc_client *c, const cm_rpc_call_opts *opts,
                                      const void *payload, size_t len, cm_rpc_done_fn done,
                                      void *arg);

#endif
