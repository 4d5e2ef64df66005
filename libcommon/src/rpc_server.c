/*
 * rpc_server.c - the rep0 side of the RPC layer.
 *
 * DESIGN. One rep0 socket, N worker threads. Each worker owns one nng context, one receive aio
 * and one send aio, plus the service's per-worker state (its PostgreSQL and Redis connections),
 * and runs a plain blocking loop: recv -> unpack envelope -> find method -> unpack payload ->
 * handler -> pack -> send. Blocking is fine here because these are our threads, not nng's.
 *
 * The receive waits at most RECV_POLL_MS so a worker notices `stopping` without anyone having to
 * cancel its aio; stopping therefore lets a handler that is running finish and send its reply
 * (graceful drain), and only then is the socket closed.
 *
 * Anything a peer sends is untrusted: a message that is not an envelope, an unknown method, a
 * payload that does not unpack, or a deadline already past is answered with an error status.
 * The response message lives in a per-call arena (cm_rpc_alloc) so handlers never free.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "cm/arena.h"

#define RECV_POLL_MS 250

typedef struct rpc_worker {
	cm_rpc_server *srv;
	int            index;
	pthread_t      thread;
	bool           started;
	nng_ctx        ctx;
	nng_aio       *recv_aio;
	nng_aio       *send_aio;
	void          *state;
} rpc_worker;

struct cm_rpc_server {
	cm_rpc_server_config cfg;
	nng_socket           sock;
	bool                 sock_open;
	rpc_worker          *workers;
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

static const cm_rpc_method *
find_method(const cm_rpc_server *srv, const char *name)
{
	for (size_t i = 0; i < srv->cfg.n_methods; i++) {
		if (strcmp(srv->cfg.methods[i].name, name) == 0)
			return &srv->cfg.methods[i];
	}
	return NULL;
}

/* Packs a response envelope into a new nng message; NULL only when out of memory. */
static nng_msg *
pack_response(int status, const char *message, int32_t retry_after_s, const uint8_t *payload,
              size_t payload_len)
{
	Cm__Response rsp = CM__RESPONSE__INIT;
	nng_msg     *msg = NULL;
	size_t       n;

	rsp.status = (Cm__Status)status;
	rsp.message = (char *)(message != NULL ? message : "");
	rsp.retry_after_s = retry_after_s;
	rsp.payload.data = (uint8_t *)payload;
	rsp.payload.len = payload_len;
	n = cm__response__get_packed_size(&rsp);
	if (nng_msg_alloc(&msg, n) != 0)
		return NULL;
	cm__response__pack(&rsp, nng_msg_body(msg));
	return msg;
}

static void
observe(cm_rpc_server *srv, const char *method, int status, uint64_t start_ns)
{
	char labels[160];

	if (srv->cfg.metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method,
	         cm_status_name(status));
	cm_counter_add(cm_metrics_counter(srv->cfg.metrics, "rpc_requests_total",
	                                  "RPC requests handled, by method and status", labels),
	               1);
	snprintf(labels, sizeof(labels), "method=\"%s\"", method);
	cm_histogram_observe(cm_metrics_histogram(srv->cfg.metrics, "rpc_duration_seconds",
	                                          "RPC handling time, by method", labels),
	                     (double)(cm_mono_ns() - start_ns) / 1e9);
}

/* Handles one request message (consumed) and returns the reply message (NULL: out of memory). */
static nng_msg *
handle(rpc_worker *w, nng_msg *in)
{
	cm_rpc_server       *srv = w->srv;
	uint64_t             start = cm_mono_ns();
	Cm__Request         *rq = NULL;
	ProtobufCMessage    *req = NULL;
	ProtobufCMessage    *resp = NULL;
	const cm_rpc_method *m = NULL;
	cm_arena             arena;
	cm_rpc_ctx           ctx;
	uint8_t             *out_payload = NULL;
	size_t               out_len = 0;
	int                  status = CM__STATUS__OK;
	const char          *method_name = "?";
	nng_msg             *reply;
	cm_err               err;

	cm_arena_init(&arena);
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = &arena;

	rq = cm__request__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
	nng_msg_free(in);
	if (rq == NULL) {
		status = CM__STATUS__INVALID_ARGUMENT;
		snprintf(ctx.message, sizeof(ctx.message), "malformed request envelope");
		cm_warn("RPC-BAD-ENVELOPE", "dropped a message that is not a request envelope");
		goto out;
	}
	method_name = rq->method;
	cm_log_set_request_id(rq->request_id);
	if ((m = find_method(srv, rq->method)) == NULL) {
		status = CM__STATUS__UNIMPLEMENTED;
		method_name = "?";
		snprintf(ctx.message, sizeof(ctx.message), "unknown method");
		goto out;
	}
	if (rq->deadline_ms > 0 && cm_now_ms() >= rq->deadline_ms) {
		status = CM__STATUS__DEADLINE_EXCEEDED;
		snprintf(ctx.message, sizeof(ctx.message), "deadline passed before handling");
		goto out;
	}
	req = protobuf_c_message_unpack(m->req_desc, NULL, rq->payload.len, rq->payload.data);
	if (req == NULL) {
		status = CM__STATUS__INVALID_ARGUMENT;
		snprintf(ctx.message, sizeof(ctx.message), "malformed %s payload", m->name);
		goto out;
	}
	if ((resp = cm_arena_alloc(&arena, m->resp_desc->sizeof_message)) == NULL) {
		status = CM__STATUS__INTERNAL;
		snprintf(ctx.message, sizeof(ctx.message), "out of memory");
		goto out;
	}
	m->resp_desc->message_init(resp);

	ctx.method = rq->method;
	ctx.request_id = rq->request_id;
	ctx.deadline_ms = rq->deadline_ms;
	ctx.subject = rq->subject;
	ctx.session_id = rq->session_id;
	ctx.client_addr = rq->client_addr;
	ctx.n_roles = rq->n_roles;
	ctx.roles = rq->roles;
	ctx.worker_state = w->state;

	if (srv->cfg.call_begin != NULL)
		srv->cfg.call_begin(srv->cfg.arg, w->index, &ctx);
	err = m->fn(&ctx, req, resp);
	if (srv->cfg.call_end != NULL)
		srv->cfg.call_end(srv->cfg.arg, w->index);
	status = cm_err_to_status(err);
	if (err == CM_OK) {
		out_len = protobuf_c_message_get_packed_size(resp);
		if ((out_payload = cm_arena_alloc(&arena, out_len + 1)) == NULL) {
			status = CM__STATUS__INTERNAL;
			snprintf(ctx.message, sizeof(ctx.message), "out of memory");
			out_len = 0;
			goto out;
		}
		protobuf_c_message_pack(resp, out_payload);
	} else if (ctx.message[0] == '\0') {
		snprintf(ctx.message, sizeof(ctx.message), "%s", cm_strerror(err));
	}
	if (status == CM__STATUS__INTERNAL)
		cm_error("RPC-INTERNAL", "%s failed: %s", m->name, ctx.message);

out:
	reply = pack_response(status, ctx.message, ctx.retry_after_s, out_payload, out_len);
	observe(srv, method_name, status, start);
	if (req != NULL)
		protobuf_c_message_free_unpacked(req, NULL);
	if (rq != NULL)
		cm__request__free_unpacked(rq, NULL);
	cm_arena_fini(&arena);
	cm_log_set_request_id(NULL);
	return reply;
}

static void *
worker_main(void *arg)
{
	rpc_worker    *w = arg;
	cm_rpc_server *srv = w->srv;
	nng_msg       *in, *reply;
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
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		in = nng_aio_get_msg(w->recv_aio);
		atomic_fetch_add(&srv->inflight, 1);
		reply = handle(w, in);
		if (reply != NULL) {
			nng_aio_set_msg(w->send_aio, reply);
			nng_ctx_send(w->ctx, w->send_aio);
			nng_aio_wait(w->send_aio);
			if (nng_aio_result(w->send_aio) != 0)
				nng_msg_free(reply);
		}
		atomic_fetch_sub(&srv->inflight, 1);
	}

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
	if ((srv->workers = calloc((size_t)cfg->workers, sizeof(rpc_worker))) == NULL) {
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
		if ((rv = nng_ctx_open(&w->ctx, srv->sock)) != 0 ||
		    (rv = nng_aio_alloc(&w->recv_aio, NULL, NULL)) != 0 ||
		    (rv = nng_aio_alloc(&w->send_aio, NULL, NULL)) != 0)
			goto fail;
		nng_aio_set_timeout(w->recv_aio, RECV_POLL_MS);
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
	}
	free(srv->workers);
	pthread_cond_destroy(&srv->init_cv);
	pthread_mutex_destroy(&srv->init_mu);
	free(srv);
}

int
cm_rpc_server_inflight(cm_rpc_server *srv)
{
	return atomic_load(&srv->inflight);
}
