/*
 * rpc_client.c - the req0 side of the RPC layer: replicas, balancing, deadlines, retries.
 *
 * DESIGN. A client is one upstream service. Each replica URL gets its own req0 socket with one
 * non-blocking dialer (nng reconnects by itself) and a pipe-notify callback that counts live
 * connections: a replica with no connection is never chosen, which is our active health check
 * (a killed replica is noticed as soon as its TCP connection closes). Among replicas with a
 * connection and not ejected, a call picks the less loaded of two random ones (power of two
 * choices on outstanding requests). Three consecutive failures eject a replica for a time that
 * grows with repeated ejections (passive outlier detection); if every connected replica is
 * ejected, ejection is ignored (panic mode) rather than failing everything.
 *
 * A call is a small state machine on nng's threads: send on a fresh context of the replica's
 * socket, then receive, with the aio timeout = deadline - now. REQ resend is disabled. When a
 * replica's last connection drops, its in-flight calls are cancelled from a task (never from
 * inside the pipe callback, where nng holds locks) so they fail fast instead of waiting out
 * their deadline. Failed idempotent calls are retried once on another replica while the
 * deadline allows and the retry budget (10% of calls, plus a small floor) has tokens.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"

#define EJECT_AFTER_FAILURES 3
#define EJECT_BASE_MS 2000
#define EJECT_MAX_MS 30000
#define RETRY_BUDGET_MAX 10000 /* milli-tokens: at most 10 retries banked */
#define RETRY_COST 1000
#define RETRY_EARN 100 /* each call earns 0.1 retry */
#define SYNC_CONNECT_WAIT_MS 1000

typedef struct rpc_call rpc_call;
typedef struct replica  replica;

struct replica {
	cm_rpc_client  *client;
	char           *url;
	nng_socket      sock;
	bool            sock_open;
	atomic_int      pipes;
	atomic_int      outstanding;
	atomic_int      failures;  /* consecutive */
	atomic_int      ejections; /* consecutive ejections, for back-off */
	_Atomic int64_t ejected_until_ms;
	pthread_mutex_t mtx;    /* guards calls */
	rpc_call       *calls;  /* in flight on this replica */
	nng_aio        *reaper; /* cancels in-flight calls when the last pipe goes */
};

struct cm_rpc_client {
	char       *name;
	size_t      n;
	replica    *replicas;
	cm_metrics *metrics;
	atomic_int  retry_tokens;
	atomic_uint seed;
};

enum { STAGE_SEND, STAGE_RECV };

struct rpc_call {
	cm_rpc_client *client;
	replica       *rep;
	replica       *tried; /* replica of the first attempt */
	rpc_call      *prev, *next;
	nng_ctx        ctx;
	bool           ctx_open;
	nng_aio       *aio;
	nng_msg       *request; /* kept for a retry; duplicated per attempt */
	int            stage;
	int            attempts;
	bool           idempotent;
	bool           cancelled_by_reaper;
	int64_t        deadline_ms;
	uint64_t       start_ns;
	char           method[CM_MAX_METHOD_NAME];
	cm_rpc_done_fn done;
	void          *arg;
};

/* ---- replica health ------------------------------------------------------------------------ */

static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	replica *r = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&r->pipes, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (atomic_fetch_sub(&r->pipes, 1) == 1) {
			/* Last connection gone: fail its calls fast, from a task thread. */
			nng_sleep_aio(0, r->reaper);
		}
	}
}

static void
reap_calls(void *arg)
{
	replica  *r = arg;
	rpc_call *c;

	if (nng_aio_result(r->reaper) != 0)
		return;
	pthread_mutex_lock(&r->mtx);
	for (c = r->calls; c != NULL; c = c->next) {
		c->cancelled_by_reaper = true;
		nng_aio_cancel(c->aio);
	}
	pthread_mutex_unlock(&r->mtx);
}

static void
replica_success(replica *r)
{
	atomic_store(&r->failures, 0);
	atomic_store(&r->ejections, 0);
}

static void
replica_failure(replica *r)
{
	int f = atomic_fetch_add(&r->failures, 1) + 1;

	if (f >= EJECT_AFTER_FAILURES) {
		int     k = atomic_fetch_add(&r->ejections, 1);
		int64_t ms = (int64_t)EJECT_BASE_MS << (k < 4 ? k : 4);
		if (ms > EJECT_MAX_MS)
			ms = EJECT_MAX_MS;
		atomic_store(&r->ejected_until_ms, cm_mono_ms() + ms);
		atomic_store(&r->failures, 0);
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

/* Picks a replica (not `avoid` when another is usable); NULL when none has a connection. */
static replica *
pick(cm_rpc_client *c, const replica *avoid)
{
	replica *cand[64];
	size_t   n = 0;
	int64_t  now = cm_mono_ms();

	for (int pass = 0; pass < 3 && n == 0; pass++) {
		for (size_t i = 0; i < c->n && n < 64; i++) {
			replica *r = &c->replicas[i];
			if (atomic_load(&r->pipes) <= 0)
				continue;
			if (pass == 0 && (r == avoid || atomic_load(&r->ejected_until_ms) > now))
				continue;
			if (pass == 1 && atomic_load(&r->ejected_until_ms) > now)
				continue; /* allow `avoid` */
			cand[n++] = r;    /* pass 2: panic mode, ejection ignored */
		}
	}
	if (n == 0)
		return NULL;
	if (n == 1)
		return cand[0];
	{
		replica *a = cand[next_rand(c) % n];
		replica *b = cand[next_rand(c) % n];
		return atomic_load(&a->outstanding) <= atomic_load(&b->outstanding) ? a : b;
	}
}

/* ---- client lifetime ----------------------------------------------------------------------- */

cm_err
cm_rpc_client_open(cm_rpc_client **out, const char *name, const char *urls, cm_metrics *metrics)
{
	cm_rpc_client *c = NULL;
	char          *list = NULL, *p, *save = NULL;
	size_t         n = 1;
	int            rv;

	if (urls == NULL || urls[0] == '\0')
		return CM_EINVAL;
	for (p = (char *)urls; *p != '\0'; p++)
		n += (*p == ',');
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->name = strdup(name)) == NULL ||
	    (c->replicas = calloc(n, sizeof(replica))) == NULL || (list = strdup(urls)) == NULL)
		goto nomem;
	c->metrics = metrics;
	atomic_init(&c->retry_tokens, RETRY_BUDGET_MAX / 2);
	{
		unsigned s;
		cm_random_bytes(&s, sizeof(s));
		atomic_init(&c->seed, s | 1u);
	}
	for (char *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		replica *r = &c->replicas[c->n];
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		r->client = c;
		pthread_mutex_init(&r->mtx, NULL);
		c->n++;
		if ((r->url = strdup(tok)) == NULL)
			goto nomem;
		if ((rv = nng_aio_alloc(&r->reaper, reap_calls, r)) != 0 ||
		    (rv = nng_req0_open(&r->sock)) != 0)
			goto nomem;
		r->sock_open = true;
		nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, CM_MAX_RPC_MSG);
		nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, 100);
		nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, 2000);
		nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, pipe_event, r);
		nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, pipe_event, r);
		if ((rv = nng_dial(r->sock, r->url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
			cm_error("RPC-DIAL-FAIL", "%s: bad replica address %s: %s", name, r->url,
			         nng_strerror(rv));
			free(list);
			cm_rpc_client_close(c);
			return CM_EINVAL;
		}
	}
	free(list);
	if (c->n == 0) {
		cm_rpc_client_close(c);
		return CM_EINVAL;
	}
	*out = c;
	return CM_OK;

nomem:
	free(list);
	cm_rpc_client_close(c);
	return CM_ENOMEM;
}

void
cm_rpc_client_close(cm_rpc_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->replicas != NULL && i < c->n; i++) {
		replica *r = &c->replicas[i];
		if (r->sock_open)
			nng_close(r->sock); /* aborts in-flight calls: their callbacks run */
		if (r->reaper != NULL) {
			nng_aio_stop(r->reaper);
			nng_aio_free(r->reaper);
		}
		pthread_mutex_destroy(&r->mtx);
		free(r->url);
	}
	free(c->replicas);
	free(c->name);
	free(c);
}

int
cm_rpc_client_healthy(cm_rpc_client *c)
{
	int     n = 0;
	int64_t now = cm_mono_ms();

	for (size_t i = 0; i < c->n; i++) {
		if (atomic_load(&c->replicas[i].pipes) > 0 &&
		    atomic_load(&c->replicas[i].ejected_until_ms) <= now)
			n++;
	}
	return n;
}

void
cm_rpc_result_fini(cm_rpc_result *r)
{
	free(r->payload);
	r->payload = NULL;
	r->payload_len = 0;
}

/* ---- calls --------------------------------------------------------------------------------- */

static void call_cb(void *arg);

static void
result_set(cm_rpc_result *res, int status, const char *msg)
{
	memset(res, 0, sizeof(*res));
	res->status = status;
	cm_strlcpy(res->message, msg, sizeof(res->message));
}

static void
call_detach(rpc_call *call)
{
	replica *r = call->rep;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mtx);
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		r->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	pthread_mutex_unlock(&r->mtx);
	atomic_fetch_sub(&r->outstanding, 1);
	if (call->ctx_open) {
		nng_ctx_close(call->ctx);
		call->ctx_open = false;
	}
	call->rep = NULL;
}

static void
call_observe(rpc_call *call, int status)
{
	char labels[200];

	if (call->client->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "upstream=\"%s\",method=\"%s\",code=\"%s\"",
	         call->client->name, call->method, cm_status_name(status));
	cm_counter_add(cm_metrics_counter(call->client->metrics, "upstream_requests_total",
	                                  "Calls to upstream services, by method and status",
	                                  labels),
	               1);
	snprintf(labels, sizeof(labels), "upstream=\"%s\",method=\"%s\"", call->client->name,
	         call->method);
	cm_histogram_observe(cm_metrics_histogram(call->client->metrics,
	                                          "upstream_duration_seconds",
	                                          "Upstream call latency, by method", labels),
	                     (double)(cm_mono_ns() - call->start_ns) / 1e9);
}

static void
call_finish(rpc_call *call, cm_rpc_result *res)
{
	call_observe(call, res->status);
	call->done(call->arg, res);
	cm_rpc_result_fini(res);
	nng_msg_free(call->request);
	nng_aio_reap(call->aio); /* we run inside its callback: free it from nng's reaper */
	free(call);
}

/* Starts (or restarts) an attempt on a replica. Returns false when no replica is usable. */
static bool
call_attempt(rpc_call *call, const replica *avoid)
{
	replica *r;
	nng_msg *m;
	int64_t  left = call->deadline_ms - cm_now_ms();

	if (left <= 0)
		return false;
	if ((r = pick(call->client, avoid)) == NULL)
		return false;
	if (nng_ctx_open(&call->ctx, r->sock) != 0)
		return false;
	if (nng_msg_dup(&m, call->request) != 0) {
		nng_ctx_close(call->ctx);
		return false;
	}
	call->ctx_open = true;
	call->rep = r;
	call->stage = STAGE_SEND;
	call->cancelled_by_reaper = false;
	call->attempts++;
	if (call->tried == NULL)
		call->tried = r;
	atomic_fetch_add(&r->outstanding, 1);
	pthread_mutex_lock(&r->mtx);
	call->next = r->calls;
	call->prev = NULL;
	if (r->calls != NULL)
		r->calls->prev = call;
	r->calls = call;
	pthread_mutex_unlock(&r->mtx);

	nng_aio_set_timeout(call->aio, (nng_duration)left);
	nng_aio_set_msg(call->aio, m);
	nng_ctx_send(call->ctx, call->aio);
	return true;
}

static bool
retry_allowed(rpc_call *call)
{
	int t;

	if (!call->idempotent || call->attempts >= 2 || call->client->n < 2)
		return false;
	if (call->deadline_ms - cm_now_ms() < 5)
		return false;
	t = atomic_load(&call->client->retry_tokens);
	while (t >= RETRY_COST) {
		if (atomic_compare_exchange_weak(&call->client->retry_tokens, &t, t - RETRY_COST))
			return true;
	}
	return false;
}

static void
call_cb(void *arg)
{
	rpc_call     *call = arg;
	replica      *r = call->rep;
	int           rv = nng_aio_result(call->aio);
	cm_rpc_result res;
	nng_msg      *msg;
	Cm__Response *rsp;

	if (call->stage == STAGE_SEND && rv == 0) {
		call->stage = STAGE_RECV;
		nng_ctx_recv(call->ctx, call->aio);
		return;
	}
	if (rv != 0) {
		bool reaped = call->cancelled_by_reaper;
		if (call->stage == STAGE_SEND && (msg = nng_aio_get_msg(call->aio)) != NULL)
			nng_msg_free(msg);
		call_detach(call);
		if (rv != NNG_ECLOSED || reaped)
			replica_failure(r);
		if (rv != NNG_ECLOSED || reaped) {
			if (retry_allowed(call) && call_attempt(call, r))
				return;
		}
		if (rv == NNG_ETIMEDOUT)
			result_set(&res, CM__STATUS__DEADLINE_EXCEEDED,
			           "upstream deadline exceeded");
		else if (reaped)
			result_set(&res, CM__STATUS__UNAVAILABLE, "upstream replica went away");
		else
			result_set(&res, CM__STATUS__UNAVAILABLE, nng_strerror(rv));
		call_finish(call, &res);
		return;
	}

	msg = nng_aio_get_msg(call->aio);
	call_detach(call);
	rsp = cm__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	if (rsp == NULL) {
		replica_failure(r);
		result_set(&res, CM__STATUS__INTERNAL, "malformed response envelope");
		call_finish(call, &res);
		return;
	}
	replica_success(r);
	result_set(&res, (int)rsp->status, rsp->message);
	res.retry_after_s = rsp->retry_after_s;
	if (rsp->payload.len > 0) {
		if ((res.payload = malloc(rsp->payload.len)) == NULL) {
			result_set(&res, CM__STATUS__INTERNAL, "out of memory");
		} else {
			memcpy(res.payload, rsp->payload.data, rsp->payload.len);
			res.payload_len = rsp->payload.len;
		}
	}
	cm__response__free_unpacked(rsp, NULL);
	call_finish(call, &res);
}

static nng_msg *
pack_request(const cm_rpc_call_opts *o, int64_t deadline, const void *payload, size_t len)
{
	Cm__Request rq = CM__REQUEST__INIT;
	nng_msg    *msg = NULL;
	char       *role = (char *)o->role;
	size_t      n;

	rq.method = (char *)o->method;
	rq.request_id = (char *)(o->request_id != NULL ? o->request_id : "");
	rq.deadline_ms = deadline;
	rq.subject = (char *)(o->subject != NULL ? o->subject : "");
	rq.session_id = (char *)(o->session_id != NULL ? o->session_id : "");
	rq.client_addr = (char *)(o->client_addr != NULL ? o->client_addr : "");
	rq.payload.data = (uint8_t *)payload;
	rq.payload.len = len;
	if (role != NULL) {
		rq.roles = &role;
		rq.n_roles = 1;
	}
	n = cm__request__get_packed_size(&rq);
	if (nng_msg_alloc(&msg, n) != 0)
		return NULL;
	cm__request__pack(&rq, nng_msg_body(msg));
	return msg;
}

cm_err
cm_rpc_call_async(cm_rpc_client *c, const cm_rpc_call_opts *opts, const void *payload, size_t len,
                  cm_rpc_done_fn done, void *arg)
{
	rpc_call *call;
	int       t;

	if (c == NULL || opts == NULL || opts->method == NULL || done == NULL)
		return CM_EINVAL;
	if ((call = calloc(1, sizeof(*call))) == NULL)
		return CM_ENOMEM;
	call->client = c;
	call->done = done;
	call->arg = arg;
	call->idempotent = opts->idempotent;
	call->start_ns = cm_mono_ns();
	call->deadline_ms =
	    opts->deadline_ms > 0 ? opts->deadline_ms : cm_now_ms() + CM_DEFAULT_DEADLINE_MS;
	cm_strlcpy(call->method, opts->method, sizeof(call->method));
	if (nng_aio_alloc(&call->aio, call_cb, call) != 0) {
		free(call);
		return CM_ENOMEM;
	}
	if ((call->request = pack_request(opts, call->deadline_ms, payload, len)) == NULL) {
		nng_aio_free(call->aio);
		free(call);
		return CM_ENOMEM;
	}
	/* Earn retry budget: 10% of calls may be retried. */
	t = atomic_fetch_add(&c->retry_tokens, RETRY_EARN);
	if (t + RETRY_EARN > RETRY_BUDGET_MAX)
		atomic_fetch_sub(&c->retry_tokens, RETRY_EARN);

	if (call->deadline_ms <= cm_now_ms()) {
		nng_msg_free(call->request);
		nng_aio_free(call->aio);
		free(call);
		return CM_ETIMEDOUT;
	}
	if (!call_attempt(call, NULL)) {
		nng_msg_free(call->request);
		nng_aio_free(call->aio);
		free(call);
		return CM_EUNAVAIL;
	}
	return CM_OK;
}

/* ---- blocking calls ------------------------------------------------------------------------ */

typedef struct sync_wait {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	cm_rpc_result  *res;
} sync_wait;

static void
sync_done(void *arg, cm_rpc_result *res)
{
	sync_wait *w = arg;

	pthread_mutex_lock(&w->mtx);
	*w->res = *res;
	res->payload = NULL; /* ownership moves to the waiter */
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

void
cm_rpc_call_raw(cm_rpc_client *c, const cm_rpc_call_opts *opts, const void *payload, size_t len,
                cm_rpc_result *res)
{
	sync_wait        w;
	cm_rpc_call_opts o = *opts;
	cm_err           err;

	if (o.deadline_ms <= 0)
		o.deadline_ms = cm_now_ms() + CM_DEFAULT_DEADLINE_MS;
	/* A blocking caller (a service starting, a test) may wait briefly for a first connection.
	 */
	for (int64_t until = cm_mono_ms() + SYNC_CONNECT_WAIT_MS;
	     cm_rpc_client_healthy(c) == 0 && cm_mono_ms() < until && cm_now_ms() < o.deadline_ms;)
		nng_msleep(10);

	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.done = false;
	w.res = res;
	err = cm_rpc_call_async(c, &o, payload, len, sync_done, &w);
	if (err != CM_OK) {
		result_set(res, cm_err_to_status(err),
		           err == CM_EUNAVAIL    ? "no upstream replica is connected"
		           : err == CM_ETIMEDOUT ? "deadline passed before the call"
		                                 : cm_strerror(err));
	} else {
		pthread_mutex_lock(&w.mtx);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mtx);
		pthread_mutex_unlock(&w.mtx);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
}

cm_err
cm_rpc_call(cm_rpc_client *c, const cm_rpc_call_opts *opts, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
            cm_rpc_result *res)
{
	uint8_t *buf;
	size_t   n = protobuf_c_message_get_packed_size(req);

	*resp_out = NULL;
	if ((buf = malloc(n + 1)) == NULL) {
		result_set(res, CM__STATUS__INTERNAL, "out of memory");
		return CM_ENOMEM;
	}
	protobuf_c_message_pack(req, buf);
	cm_rpc_call_raw(c, opts, buf, n, res);
	free(buf);
	if (res->status != CM__STATUS__OK)
		return cm_err_from_status(res->status);
	*resp_out = protobuf_c_message_unpack(resp_desc, NULL, res->payload_len, res->payload);
	if (*resp_out == NULL) {
		result_set(res, CM__STATUS__INTERNAL, "malformed response payload");
		return CM_EPROTO;
	}
	return CM_OK;
}
