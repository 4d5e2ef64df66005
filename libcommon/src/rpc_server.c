/*
 * rpc_server.c - the rep0 side of the RPC layer.
 *
 * DESIGN. One rep0 socket, N worker threads. Each worker owns one nng context, one receive aio
 * and one send aio, plus the service's per-worker state (its PostgreSQL and Redis connections),
 * and runs a plain blocking loop: recv -> unpack envelope -> find method -> unpack payload ->
 * handler -> pack -> send. Blocking is fine here because these are our threads, not nng's (a
 * handler may block on PostgreSQL, or call another service and wait on nng itself, which would
 * deadlock nng's few task threads if handlers ran there).
 *
 * What a call costs beyond the handler, kept small because it is paid on every call (issue 12's
 * profile: svc-auth spent most of its time switching threads and waiting on locks):
 * - the worker never waits for its reply to be written: it queues the send and goes back to
 *   receiving; only the next reply waits for the previous one's send (long done by then), and a
 *   worker that stops waits for its last one;
 * - the receive has no timeout (a timed aio goes through nng's expiry queue, one more lock and
 *   thread per call); stopping cancels each worker's receive with nng_aio_stop instead, which
 *   also refuses any receive started after it, so a worker cannot miss it;
 * - the envelope and the payload unpack into the worker's arena (reset, not freed, after each
 *   call: no malloc/free per field), and the reply is packed into the request's own message;
 * - the metric series of each method and status are looked up once and kept (the registry's
 *   lookup walks every series under one mutex).
 *
 * A batch (method CM_RPC_BATCH_METHOD, cm/rpc.h BATCHING) is run by the worker that received it:
 * each of its calls goes through the same steps as a call alone (its own envelope, deadline,
 * method, hooks, metrics), one after the other, in a second arena reset after each; the replies
 * are packed one after the other into one BatchReply and sent as one message. A batch inside a
 * batch is an unknown method. The batch itself counts in rpc_requests_total{method="cm.Batch"}.
 * A method may have a prefetch (cm/rpc.h): its calls in a batch first go to it together, so
 * that one query answers what they would each have asked (auth.Me: the users of n sessions).
 *
 * Stopping therefore lets a handler that is running finish and send its reply (graceful drain),
 * and only then is the socket closed.
 *
 * Anything a peer sends is untrusted: a message that is not an envelope, an unknown method, a
 * payload that does not unpack, or a deadline already past is answered with an error status.
 * The response message lives in the per-call arena (cm_rpc_alloc) so handlers never free.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "cm/arena.h"

/* cm.Status values are 0..16 (proto/common.proto); one past the last for the series table. */
#define N_STATUS (CM__STATUS__UNAUTHENTICATED + 1)
#define BATCH_OUT_KEEP (1u << 20) /* a worker keeps a batch reply buffer up to this size */

typedef struct rpc_worker {
	cm_rpc_server *srv;
	int            index;
	pthread_t      thread;
	bool           started;
	bool           sending; /* send_aio carries a reply not yet known to be written */
	nng_ctx        ctx;
	nng_aio       *recv_aio;
	nng_aio       *send_aio;
	cm_arena       arena;      /* per-call allocations, reset after each call */
	cm_arena       call_arena; /* a batch's inner call (the batch itself is in arena) */
	cm_buf         batch_out;  /* a batch's replies, packed one after the other */
	void          *state;
} rpc_worker;

/* The metric series of one method (or of "?"), found on first use and kept: pointers into the
 * registry, which never frees a series while it lives. */
typedef struct rpc_series {
	_Atomic(cm_counter *)   requests[N_STATUS];
	_Atomic(cm_histogram *) duration;
} rpc_series;

struct cm_rpc_server {
	cm_rpc_server_config cfg;
	nng_socket           sock;
	bool                 sock_open;
	rpc_worker          *workers;
	rpc_series          *series; /* one per method, then one for "?", one for cm.Batch */
	atomic_bool          stopping;
	atomic_int           inflight;
	pthread_mutex_t      init_mu; /* workers report their start-up to cm_rpc_server_start */
	pthread_cond_t       init_cv;
	int                  init_done;
	cm_err               init_err; /* the first worker_init failure */
};

cm_err
cm_rpc_fail(cm_rpc_ctx *ctx, cm_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->message, sizeof(ctx->message), fmt, ap);
	va_end(ap);
	return err;
}

void *
cm_rpc_alloc(cm_rpc_ctx *ctx, size_t n)
{
	return cm_arena_alloc(ctx->arena, n);
}

char *
cm_rpc_strndup(cm_rpc_ctx *ctx, const char *s, size_t n)
{
	char *p;

	if (s == NULL)
		s = "";
	if ((p = cm_arena_alloc(ctx->arena, n + 1)) != NULL)
		memcpy(p, s, n);
	return p;
}

char *
cm_rpc_strdup(cm_rpc_ctx *ctx, const char *s)
{
	return cm_rpc_strndup(ctx, s, s != NULL ? strlen(s) : 0);
}

int64_t
cm_rpc_remaining_ms(const cm_rpc_ctx *ctx)
{
	if (ctx->deadline_ms <= 0)
		return INT64_MAX;
	return ctx->deadline_ms - cm_now_ms();
}

/* The index of the method called `name`, or n_methods (the "?" series) when there is none. */
static size_t
find_method(const cm_rpc_server *srv, const char *name)
{
	size_t i;

	for (i = 0; i < srv->cfg.n_methods; i++) {
		if (strcmp(srv->cfg.methods[i].name, name) == 0)
			break;
	}
	return i;
}

/* protobuf-c's allocator over the worker's arena: what an unpack allocates goes with the arena
 * after the call, so nothing is freed piece by piece. */
static void *
arena_pb_alloc(void *data, size_t n)
{
	return cm_arena_alloc(data, n);
}

static void
arena_pb_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

/* Packs a response envelope into msg (the request's message, emptied); false only when out of
 * memory. */
static bool
pack_response(nng_msg *msg, int status, const char *message, int32_t retry_after_s,
              const uint8_t *payload, size_t payload_len)
{
	Cm__Response rsp = CM__RESPONSE__INIT;
	size_t       n;

	rsp.status = (Cm__Status)status;
	rsp.message = (char *)(message != NULL ? message : "");
	rsp.retry_after_s = retry_after_s;
	rsp.payload.data = (uint8_t *)payload;
	rsp.payload.len = payload_len;
	n = cm__response__get_packed_size(&rsp);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, n) != 0)
		return false;
	cm__response__pack(&rsp, nng_msg_body(msg));
	return true;
}

static void
observe(cm_rpc_server *srv, size_t method_index, const char *method, int status, uint64_t start_ns)
{
	rpc_series   *ser = &srv->series[method_index];
	cm_counter   *c;
	cm_histogram *h;
	char          labels[160];

	if (srv->cfg.metrics == NULL)
		return;
	if (status < 0 || status >= N_STATUS)
		status = CM__STATUS__UNKNOWN;
	/* Two workers may both look a series up the first time; they find the same one. */
	if ((c = atomic_load_explicit(&ser->requests[status], memory_order_acquire)) == NULL) {
		snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method,
		         cm_status_name(status));
		c = cm_metrics_counter(srv->cfg.metrics, "rpc_requests_total",
		                       "RPC requests handled, by method and status", labels);
		atomic_store_explicit(&ser->requests[status], c, memory_order_release);
	}
	if ((h = atomic_load_explicit(&ser->duration, memory_order_acquire)) == NULL) {
		snprintf(labels, sizeof(labels), "method=\"%s\"", method);
		h = cm_metrics_histogram(srv->cfg.metrics, "rpc_duration_seconds",
		                         "RPC handling time, by method", labels);
		atomic_store_explicit(&ser->duration, h, memory_order_release);
	}
	cm_counter_add(c, 1);
	cm_histogram_observe(h, (double)(cm_mono_ns() - start_ns) / 1e9);
}

/* Runs one call whose envelope is unpacked: method, deadline, payload, handler, response packed
 * into `arena`. Returns the status; *out and *out_len the packed response (status OK), ctx->message
 * and ctx->retry_after_s the reason otherwise. Counts the call in its method's series. */
static int
run_call(rpc_worker *w, cm_arena *arena, const Cm__Request *rq, cm_rpc_ctx *ctx, uint8_t **out,
         size_t *out_len)
{
	cm_rpc_server       *srv = w->srv;
	uint64_t             start = cm_mono_ns();
	ProtobufCAllocator   pa = {arena_pb_alloc, arena_pb_free, arena};
	ProtobufCMessage    *req = NULL;
	ProtobufCMessage    *resp = NULL;
	const cm_rpc_method *m = NULL;
	size_t               mi;
	int                  status = CM__STATUS__OK;
	const char          *method_name = "?";
	cm_err               err;

	*out = NULL;
	*out_len = 0;
	if ((mi = find_method(srv, rq->method)) == srv->cfg.n_methods) {
		status = CM__STATUS__UNIMPLEMENTED;
		snprintf(ctx->message, sizeof(ctx->message), "unknown method");
		goto out;
	}
	m = &srv->cfg.methods[mi];
	method_name = m->name;
	if (rq->deadline_ms > 0 && cm_now_ms() >= rq->deadline_ms) {
		status = CM__STATUS__DEADLINE_EXCEEDED;
		snprintf(ctx->message, sizeof(ctx->message), "deadline passed before handling");
		goto out;
	}
	req = protobuf_c_message_unpack(m->req_desc, &pa, rq->payload.len, rq->payload.data);
	if (req == NULL) {
		status = CM__STATUS__INVALID_ARGUMENT;
		snprintf(ctx->message, sizeof(ctx->message), "malformed %s payload", m->name);
		goto out;
	}
	if ((resp = cm_arena_alloc(arena, m->resp_desc->sizeof_message)) == NULL) {
		status = CM__STATUS__INTERNAL;
		snprintf(ctx->message, sizeof(ctx->message), "out of memory");
		goto out;
	}
	m->resp_desc->message_init(resp);

	ctx->method = rq->method;
	ctx->request_id = rq->request_id;
	ctx->deadline_ms = rq->deadline_ms;
	ctx->subject = rq->subject;
	ctx->session_id = rq->session_id;
	ctx->client_addr = rq->client_addr;
	ctx->n_roles = rq->n_roles;
	ctx->roles = rq->roles;
	ctx->worker_state = w->state;

	if (srv->cfg.call_begin != NULL)
		srv->cfg.call_begin(srv->cfg.arg, w->index, ctx);
	err = m->fn(ctx, req, resp);
	if (srv->cfg.call_end != NULL)
		srv->cfg.call_end(srv->cfg.arg, w->index);
	status = cm_err_to_status(err);
	if (err == CM_OK) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		if ((*out = cm_arena_alloc(arena, n + 1)) == NULL) {
			status = CM__STATUS__INTERNAL;
			snprintf(ctx->message, sizeof(ctx->message), "out of memory");
			goto out;
		}
		protobuf_c_message_pack(resp, *out);
		*out_len = n;
	} else if (ctx->message[0] == '\0') {
		snprintf(ctx->message, sizeof(ctx->message), "%s", cm_strerror(err));
	}
	if (status == CM__STATUS__INTERNAL)
		cm_error("RPC-INTERNAL", "%s failed: %s", m->name, ctx->message);
out:
	observe(srv, mi, method_name, status, start);
	return status;
}

/* Appends one field-1 length-delimited record header (tag, varint length) to b. */
static cm_err
put_record_header(cm_buf *b, size_t len)
{
	uint8_t h[1 + 10];
	size_t  n = 0;

	h[n++] = 0x0a; /* field 1, wire type 2 */
	do {
		h[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
		len >>= 7;
	} while (len > 0);
	return cm_buf_append(b, h, n);
}

/* ---- prefetch (cm_rpc_method.prefetch) ---------------------------------------------------- */

#define PREFETCH_MAX 64 /* methods of a table whose prefetch a batch can use */

/* Forgets what the batch's prefetches hold (held[mi]: method mi's prefetch was called). */
static void
prefetch_forget(rpc_worker *w, bool *held)
{
	const cm_rpc_server *srv = w->srv;

	for (size_t mi = 0; mi < srv->cfg.n_methods && mi < PREFETCH_MAX; mi++)
		if (held[mi]) {
			srv->cfg.methods[mi].prefetch(w->state, NULL, 0);
			held[mi] = false;
		}
}

/* Before a batch's calls run: each method with a prefetch and at least two calls in the batch
 * whose deadline has not passed gets them, as contexts built from their envelopes (in the
 * worker arena, which holds the batch until its reply is packed). mis[i] is call i's method
 * index (n_methods when unknown). */
static void
prefetch_start(rpc_worker *w, const Cm__Batch *batch, const size_t *mis, bool *held)
{
	const cm_rpc_server *srv = w->srv;
	int64_t              now = cm_now_ms();

	for (size_t mi = 0; mi < srv->cfg.n_methods && mi < PREFETCH_MAX; mi++) {
		const cm_rpc_method *m = &srv->cfg.methods[mi];
		cm_rpc_ctx          *calls;
		size_t               n = 0;

		if (m->prefetch == NULL)
			continue;
		for (size_t i = 0; i < batch->n_calls; i++)
			n += mis[i] == mi;
		if (n < 2 || (calls = cm_arena_alloc(&w->arena, n * sizeof(*calls))) == NULL)
			continue;
		n = 0;
		for (size_t i = 0; i < batch->n_calls; i++) {
			const Cm__Request *rq = batch->calls[i];

			if (mis[i] != mi || (rq->deadline_ms > 0 && now >= rq->deadline_ms))
				continue;
			calls[n++] = (cm_rpc_ctx){.method = rq->method,
			                          .request_id = rq->request_id,
			                          .deadline_ms = rq->deadline_ms,
			                          .subject = rq->subject,
			                          .session_id = rq->session_id,
			                          .client_addr = rq->client_addr,
			                          .n_roles = rq->n_roles,
			                          .roles = rq->roles,
			                          .worker_state = w->state};
		}
		if (n >= 2) {
			m->prefetch(w->state, calls, n);
			held[mi] = true;
		}
	}
}

/* cm.Batch: every inner call runs as a single call would, in order, each in the worker's call
 * arena reset after it (the Batch itself lives in the worker arena until the reply is packed).
 * The replies are packed one after the other into w->batch_out as a BatchReply's repeated field.
 * Methods with a prefetch get theirs first (what it holds is forgotten before a call of a method
 * without one, and after the batch). False only when out of memory. */
static bool
handle_batch(rpc_worker *w, nng_msg *msg, const Cm__Request *outer)
{
	cm_rpc_server     *srv = w->srv;
	uint64_t           start = cm_mono_ns();
	ProtobufCAllocator pa = {arena_pb_alloc, arena_pb_free, &w->arena};
	Cm__Batch         *batch;
	cm_buf            *b = &w->batch_out;
	bool               ok = false;
	bool               held[PREFETCH_MAX] = {false};
	size_t            *mis;

	batch = cm__batch__unpack(&pa, outer->payload.len, outer->payload.data);
	if (batch == NULL) {
		observe(srv, srv->cfg.n_methods + 1, CM_RPC_BATCH_METHOD,
		        CM__STATUS__INVALID_ARGUMENT, start);
		return pack_response(msg, CM__STATUS__INVALID_ARGUMENT,
		                     "malformed cm.Batch payload", 0, NULL, 0);
	}
	if ((mis = cm_arena_alloc(&w->arena, (batch->n_calls + 1) * sizeof(*mis))) == NULL)
		return false;
	for (size_t i = 0; i < batch->n_calls; i++)
		mis[i] = find_method(srv, batch->calls[i]->method);
	prefetch_start(w, batch, mis, held);
	cm_buf_reset(b);
	for (size_t i = 0; i < batch->n_calls; i++) {
		Cm__Response rsp = CM__RESPONSE__INIT;
		cm_rpc_ctx   ctx;
		uint8_t     *out, *packed;
		size_t       out_len, n;

		if (mis[i] == srv->cfg.n_methods || srv->cfg.methods[mis[i]].prefetch == NULL)
			prefetch_forget(w, held);
		memset(&ctx, 0, sizeof(ctx));
		ctx.arena = &w->call_arena;
		cm_log_set_request_id(batch->calls[i]->request_id);
		rsp.status =
		    (Cm__Status)run_call(w, &w->call_arena, batch->calls[i], &ctx, &out, &out_len);
		rsp.message = ctx.message;
		rsp.retry_after_s = ctx.retry_after_s;
		rsp.payload.data = out;
		rsp.payload.len = out_len;
		n = cm__response__get_packed_size(&rsp);
		if ((packed = cm_arena_alloc(&w->call_arena, n + 1)) == NULL ||
		    put_record_header(b, n) != CM_OK)
			goto out;
		cm__response__pack(&rsp, packed);
		if (cm_buf_append(b, packed, n) != CM_OK)
			goto out;
		cm_arena_reset(&w->call_arena);
	}
	ok = pack_response(msg, CM__STATUS__OK, NULL, 0, (const uint8_t *)b->data, b->len);
	observe(srv, srv->cfg.n_methods + 1, CM_RPC_BATCH_METHOD, CM__STATUS__OK, start);
out:
	prefetch_forget(w, held);
	if (b->cap > BATCH_OUT_KEEP) { /* an unusually large reply: give the memory back */
		cm_buf_fini(b);
		cm_buf_init(b, CM_MAX_RPC_MSG);
	}
	cm_arena_reset(&w->call_arena);
	cm_log_set_request_id(NULL);
	return ok;
}

/* Handles one request message and turns it into the reply; false when the reply could not be
 * built (out of memory): the message is then the caller's to free. */
static bool
handle(rpc_worker *w, nng_msg *msg)
{
	cm_rpc_server     *srv = w->srv;
	ProtobufCAllocator pa = {arena_pb_alloc, arena_pb_free, &w->arena};
	Cm__Request       *rq = NULL;
	cm_rpc_ctx         ctx;
	uint8_t           *out_payload = NULL;
	size_t             out_len = 0;
	int                status;
	bool               ok;

	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = &w->arena;

	/* Unpacking copies what it keeps (strings, bytes) into the arena: the message is free to
	 * carry the reply from here on. */
	rq = cm__request__unpack(&pa, nng_msg_len(msg), nng_msg_body(msg));
	if (rq == NULL) {
		status = CM__STATUS__INVALID_ARGUMENT;
		snprintf(ctx.message, sizeof(ctx.message), "malformed request envelope");
		cm_warn("RPC-BAD-ENVELOPE", "dropped a message that is not a request envelope");
		observe(srv, srv->cfg.n_methods, "?", status, cm_mono_ns());
	} else if (strcmp(rq->method, CM_RPC_BATCH_METHOD) == 0) {
		ok = handle_batch(w, msg, rq);
		cm_arena_reset(&w->arena);
		return ok;
	} else {
		cm_log_set_request_id(rq->request_id);
		status = run_call(w, &w->arena, rq, &ctx, &out_payload, &out_len);
	}
	ok = pack_response(msg, status, ctx.message, ctx.retry_after_s, out_payload, out_len);
	/* rq and req live in the arena; a handler's allocations too. */
	cm_arena_reset(&w->arena);
	cm_log_set_request_id(NULL);
	return ok;
}

/* Waits for the reply still being written, if any; a reply that could not be (the peer went,
 * the send timed out) is dropped: the caller sees its own timeout. */
static void
send_wait(rpc_worker *w)
{
	if (!w->sending)
		return;
	nng_aio_wait(w->send_aio);
	if (nng_aio_result(w->send_aio) != 0)
		nng_msg_free(nng_aio_get_msg(w->send_aio));
	w->sending = false;
}

static void *
worker_main(void *arg)
{
	rpc_worker    *w = arg;
	cm_rpc_server *srv = w->srv;
	nng_msg       *msg;
	int            rv;
	cm_err         init = CM_OK;

	if (srv->cfg.worker_init != NULL)
		init = srv->cfg.worker_init(srv->cfg.arg, w->index, &w->state);
	/* cm_rpc_server_start waits for every worker's verdict; a failed one makes it stop all. */
	pthread_mutex_lock(&srv->init_mu);
	srv->init_done++;
	if (init != CM_OK && srv->init_err == CM_OK)
		srv->init_err = init;
	pthread_cond_broadcast(&srv->init_cv);
	pthread_mutex_unlock(&srv->init_mu);

	while (init == CM_OK && !atomic_load(&srv->stopping)) {
		nng_ctx_recv(w->ctx, w->recv_aio);
		nng_aio_wait(w->recv_aio);
		rv = nng_aio_result(w->recv_aio);
		if (rv != 0) {
			/* ECANCELED: cm_rpc_server_stop; ECLOSED: the socket went. */
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				break;
			continue;
		}
		msg = nng_aio_get_msg(w->recv_aio);
		atomic_fetch_add(&srv->inflight, 1);
		if (handle(w, msg)) {
			send_wait(w);
			nng_aio_set_msg(w->send_aio, msg);
			nng_ctx_send(w->ctx, w->send_aio);
			w->sending = true;
		} else {
			nng_msg_free(msg);
		}
		atomic_fetch_sub(&srv->inflight, 1);
	}
	send_wait(w);

	if (srv->cfg.worker_fini != NULL)
		srv->cfg.worker_fini(srv->cfg.arg, w->index, w->state);
	return NULL;
}

cm_err
cm_rpc_server_start(cm_rpc_server **out, const cm_rpc_server_config *cfg)
{
	cm_rpc_server *srv = NULL;
	int            rv;
	cm_err         err = CM_EINTERNAL;

	if (cfg == NULL || cfg->url == NULL || cfg->workers < 1 || cfg->methods == NULL)
		return CM_EINVAL;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return CM_ENOMEM;
	srv->cfg = *cfg;
	atomic_init(&srv->stopping, false);
	atomic_init(&srv->inflight, 0);
	pthread_mutex_init(&srv->init_mu, NULL);
	pthread_cond_init(&srv->init_cv, NULL);
	if ((srv->workers = calloc((size_t)cfg->workers, sizeof(rpc_worker))) == NULL ||
	    (srv->series = calloc(cfg->n_methods + 2, sizeof(rpc_series))) == NULL) {
		err = CM_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&srv->sock)) != 0)
		goto fail;
	srv->sock_open = true;
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, CM_MAX_RPC_MSG);
	for (int i = 0; i < cfg->workers; i++) {
		rpc_worker *w = &srv->workers[i];
		w->srv = srv;
		w->index = i;
		cm_arena_init(&w->arena);
		cm_arena_init(&w->call_arena);
		cm_buf_init(&w->batch_out, CM_MAX_RPC_MSG);
		if ((rv = nng_ctx_open(&w->ctx, srv->sock)) != 0 ||
		    (rv = nng_aio_alloc(&w->recv_aio, NULL, NULL)) != 0 ||
		    (rv = nng_aio_alloc(&w->send_aio, NULL, NULL)) != 0)
			goto fail;
		nng_aio_set_timeout(w->send_aio, CM_DEFAULT_DEADLINE_MS);
	}
	if ((rv = nng_listen(srv->sock, cfg->url, NULL, 0)) != 0) {
		cm_error("RPC-LISTEN-FAIL", "cannot listen on %s: %s", cfg->url, nng_strerror(rv));
		err = rv == NNG_EADDRINUSE ? CM_EEXIST : CM_EINVAL;
		goto fail;
	}
	for (int i = 0; i < cfg->workers; i++) {
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) !=
		    0)
			goto fail;
		srv->workers[i].started = true;
	}
	/* Serve only with every worker ready (the policy of cm/service.h): wait for all verdicts.
	 */
	pthread_mutex_lock(&srv->init_mu);
	while (srv->init_done < cfg->workers)
		pthread_cond_wait(&srv->init_cv, &srv->init_mu);
	err = srv->init_err;
	pthread_mutex_unlock(&srv->init_mu);
	if (err != CM_OK) {
		cm_error("RPC-WORKER-INIT", "a worker could not start (%s): not serving on %s",
		         cm_strerror(err), cfg->url);
		goto fail;
	}
	cm_info("RPC-LISTEN", "serving %zu methods on %s with %d workers", cfg->n_methods, cfg->url,
	        cfg->workers);
	*out = srv;
	return CM_OK;

fail:
	cm_rpc_server_stop(srv);
	return err;
}

void
cm_rpc_server_stop(cm_rpc_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stopping, true);
	/* A worker waiting for a request wakes with ECANCELED; one that is handling one replies,
	 * then finds its next receive refused at once. */
	for (int i = 0; srv->workers != NULL && i < srv->cfg.workers; i++) {
		if (srv->workers[i].recv_aio != NULL)
			nng_aio_stop(srv->workers[i].recv_aio);
	}
	for (int i = 0; srv->workers != NULL && i < srv->cfg.workers; i++) {
		if (srv->workers[i].started)
			pthread_join(srv->workers[i].thread, NULL);
	}
	if (srv->sock_open)
		nng_close(srv->sock);
	for (int i = 0; srv->workers != NULL && i < srv->cfg.workers; i++) {
		if (srv->workers[i].recv_aio != NULL)
			nng_aio_free(srv->workers[i].recv_aio);
		if (srv->workers[i].send_aio != NULL)
			nng_aio_free(srv->workers[i].send_aio);
		cm_arena_fini(&srv->workers[i].arena);
		cm_arena_fini(&srv->workers[i].call_arena);
		cm_buf_fini(&srv->workers[i].batch_out);
	}
	free(srv->workers);
	free(srv->series);
	pthread_cond_destroy(&srv->init_cv);
	pthread_mutex_destroy(&srv->init_mu);
	free(srv);
}

int
cm_rpc_server_inflight(cm_rpc_server *srv)
{
	return atomic_load(&srv->inflight);
}
