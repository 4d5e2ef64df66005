/*
 * rpc_client.c - the req0 side of the RPC layer: the client, its calls, deadlines, retries,
 * admission (breaker and pending limit).
 *
 * DESIGN. A client is one upstream service: a set of replicas (rpc_replica.c: sockets, health,
 * choice), static or found by DNS (rpc_resolve.c), a breaker (rpc_breaker.c) and a count of
 * pending calls. A call is admitted by the breaker and the pending limit first; a refused call
 * is answered UNAVAILABLE with a retry_after from an nng task (nothing sent), so every caller
 * handles it where it handles any other answer. An admitted call is a small state machine on
 * nng's threads: send on a fresh context of the replica's socket, then receive, with the aio
 * timeout = deadline - now. REQ resend is disabled. A call that fails on a replica (no answer, or
 * a failure status) counts against that replica; an idempotent one is retried once on another
 * replica while the deadline allows and the retry budget (10% of calls, plus a small floor) has
 * tokens. Only the final outcome feeds the breaker, so a replica whose failures retries hide does
 * not open it. A batchable call is handed to the batcher (rpc_batch.c) once admitted; its aio is
 * then allocated only if it has to go alone (a retry, a server without batching).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "dns_int.h"
#include "rpc_int.h"

#define RETRY_BUDGET_MAX 10000 /* milli-tokens: at most 10 retries banked */
#define RETRY_COST 1000
#define RETRY_EARN 100 /* each call earns 0.1 retry */
#define SYNC_CONNECT_WAIT_MS 1000

/* ---- client lifetime ----------------------------------------------------------------------- */

static int
opt_or(int v, int dflt)
{
	return v != 0 ? v : dflt;
}

static void
metrics_init(cm_rpc_client *c)
{
	char               l[160];
	cm_metrics        *m = c->metrics;
	static const char *rej = "Calls answered UNAVAILABLE without reaching a replica, by reason";

	if (m == NULL)
		return;
	snprintf(l, sizeof(l), "upstream=\"%s\"", c->name);
	c->m_errors = cm_metrics_counter(m, "upstream_errors_total",
	                                 "Calls that failed (no answer or a failure status)", l);
	c->m_retries = cm_metrics_counter(m, "upstream_retries_total",
	                                  "Idempotent calls retried on another replica", l);
	c->m_ejections = cm_metrics_counter(m, "upstream_ejections_total",
	                                    "Replicas ejected after consecutive failures", l);
	c->m_breaker = cm_metrics_gauge(m, "upstream_breaker_state",
	                                "Circuit breaker: 0 closed, 1 open, 2 half-open", l);
	c->m_pending = cm_metrics_gauge(m, "upstream_pending", "Calls in flight", l);
	c->m_replicas = cm_metrics_gauge(m, "upstream_replicas", "Replicas known", l);
	snprintf(l, sizeof(l), "upstream=\"%s\",reason=\"breaker_open\"", c->name);
	c->m_rej_breaker = cm_metrics_counter(m, "upstream_rejections_total", rej, l);
	snprintf(l, sizeof(l), "upstream=\"%s\",reason=\"pending_limit\"", c->name);
	c->m_rej_pending = cm_metrics_counter(m, "upstream_rejections_total", rej, l);
	snprintf(l, sizeof(l), "upstream=\"%s\",reason=\"no_replica\"", c->name);
	c->m_rej_noreplica = cm_metrics_counter(m, "upstream_rejections_total", rej, l);
}

cm_err
cm_rpc_client_open(cm_rpc_client **out, const char *name, const char *urls, cm_metrics *metrics)
{
	return cm_rpc_client_open_opts(out, name, urls, metrics, NULL);
}

cm_err
cm_rpc_client_open_opts(cm_rpc_client **out, const char *name, const char *urls,
                        cm_metrics *metrics, const cm_rpc_client_opts *opts)
{
	static const cm_rpc_client_opts none;
	cm_rpc_client                  *c = NULL;
	char                           *list = NULL, *save = NULL;
	cm_err                          err = CM_ENOMEM;
	int                             group = 0;
	rpc_breaker_cfg                 bc;

	if (urls == NULL || urls[0] == '\0')
		return CM_EINVAL;
	if (opts == NULL)
		opts = &none;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CM_ENOMEM;
	pthread_rwlock_init(&c->lock, NULL);
	bc = (rpc_breaker_cfg){
	    .window_ms = opt_or(opts->breaker_window_ms, CM_RPC_BREAKER_WINDOW_MS),
	    .min_calls = opt_or(opts->breaker_min_calls, CM_RPC_BREAKER_MIN_CALLS),
	    .error_pct = opt_or(opts->breaker_error_pct, CM_RPC_BREAKER_ERROR_PCT),
	    .consecutive = opt_or(opts->breaker_consecutive, CM_RPC_BREAKER_CONSECUTIVE),
	    .open_ms = opt_or(opts->breaker_open_ms, CM_RPC_BREAKER_OPEN_MS),
	    .probes = opt_or(opts->breaker_probes, CM_RPC_BREAKER_PROBES)};
	rpc_breaker_init(&c->breaker, &bc);
	c->max_pending = opt_or(opts->max_pending, CM_RPC_MAX_PENDING);
	c->metrics = metrics;
	atomic_init(&c->retry_tokens, RETRY_BUDGET_MAX / 2);
	{
		unsigned s;
		cm_random_bytes(&s, sizeof(s));
		atomic_init(&c->seed, s | 1u);
	}
	if ((c->name = strdup(name)) == NULL || (list = strdup(urls)) == NULL ||
	    (c->reps = calloc(CM_RPC_MAX_REPLICAS, sizeof(replica *))) == NULL)
		goto out;
	metrics_init(c);
	for (char *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save), group++) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (dns_is_entry(tok)) {
			if ((err = rpc_resolver_add(c, tok, group, opts)) != CM_OK)
				goto out;
			continue;
		}
		err = CM_EINVAL;
		if (c->n >= CM_RPC_MAX_REPLICAS ||
		    (c->reps[c->n] = rpc_replica_open(c, tok, group)) == NULL)
			goto out;
		c->n++;
	}
	err = CM_EINVAL;
	if (c->n == 0 && c->resolver == NULL)
		goto out;
	if ((err = rpc_batcher_open(c, opts)) != CM_OK)
		goto out;
	atomic_store(&c->n_live, (int)c->n);
	cm_gauge_set(c->m_replicas, (int64_t)c->n);
	if (c->resolver != NULL && (err = rpc_resolver_start(c)) != CM_OK)
		goto out;
	*out = c;
	c = NULL;
	err = CM_OK;
out:
	free(list);
	cm_rpc_client_close(c);
	return err;
}

void
cm_rpc_client_close(cm_rpc_client *c)
{
	if (c == NULL)
		return;
	rpc_resolver_stop(c);
	rpc_batcher_close(c);
	for (size_t i = 0; c->reps != NULL && i < c->n; i++)
		rpc_replica_free(c->reps[i]);
	rpc_batcher_free(c);
	free(c->reps);
	rpc_breaker_fini(&c->breaker);
	pthread_rwlock_destroy(&c->lock);
	free(c->name);
	free(c);
}

int
cm_rpc_client_healthy(cm_rpc_client *c)
{
	int     n = 0;
	int64_t now = cm_mono_ms();

	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->n; i++) {
		if (atomic_load(&c->reps[i]->pipes) > 0 &&
		    atomic_load(&c->reps[i]->ejected_until_ms) <= now)
			n++;
	}
	pthread_rwlock_unlock(&c->lock);
	return n;
}

int
cm_rpc_client_replicas(cm_rpc_client *c)
{
	return atomic_load(&c->n_live);
}

int
cm_rpc_client_pending(cm_rpc_client *c)
{
	return atomic_load(&c->pending);
}

int
cm_rpc_client_breaker_state(cm_rpc_client *c)
{
	return atomic_load(&c->breaker.state);
}

void
cm_rpc_result_fini(cm_rpc_result *r)
{
	free(r->payload);
	r->payload = NULL;
	r->payload_len = 0;
}

/* ---- calls --------------------------------------------------------------------------------- */

void
cm_rpc_result_set(cm_rpc_result *res, int status, const char *msg)
{
	memset(res, 0, sizeof(*res));
	res->status = status;
	cm_strlcpy(res->message, msg, sizeof(res->message));
}

/* Statuses that say the replica (or what it depends on) failed, not the request. */
static bool
status_failed(int status)
{
	return status == CM__STATUS__UNKNOWN || status == CM__STATUS__DEADLINE_EXCEEDED ||
	       status == CM__STATUS__INTERNAL || status == CM__STATUS__UNAVAILABLE ||
	       status == CM__STATUS__DATA_LOSS;
}

/* Ends the attempt's use of its socket; the replica stays held (rpc_replica_rele). */
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
breaker_report(cm_rpc_client *c, int before, int after)
{
	cm_gauge_set(c->m_breaker, after);
	if (before == after)
		return;
	if (after == CM_BREAKER_OPEN)
		cm_warn("RPC-BREAKER-OPEN", "%s: circuit open for %d ms", c->name,
		        c->breaker.cfg.open_ms);
	else if (after == CM_BREAKER_CLOSED)
		cm_info("RPC-BREAKER-CLOSED", "%s: circuit closed", c->name);
}

static void
call_free(rpc_call *call)
{
	nng_msg_free(call->request);
	if (call->aio != NULL)
		nng_aio_free(call->aio);
	free(call);
}

static void
call_finish(rpc_call *call, cm_rpc_result *res)
{
	cm_rpc_client *c = call->client;

	call_observe(call, res->status);
	if (call->admitted) {
		bool failed = status_failed(res->status);
		int  before = atomic_load(&c->breaker.state);
		breaker_report(c, before,
		               rpc_breaker_record(&c->breaker, call->probe, failed, cm_mono_ms()));
		if (failed)
			cm_counter_add(c->m_errors, 1);
		atomic_fetch_sub(&c->pending, 1);
		cm_gauge_add(c->m_pending, -1);
	}
	call->done(call->arg, res);
	cm_rpc_result_fini(res);
	nng_msg_free(call->request);
	if (call->aio != NULL)
		nng_aio_reap(call->aio); /* we may run inside its callback: nng's reaper frees it */
	free(call);
}

static void call_cb(void *arg);

/* Starts (or restarts) an attempt on a replica. Returns false when no replica is usable; true
 * once the call is in nng's hands, where it may already have finished and been freed. */
static bool
call_attempt(rpc_call *call, const replica *avoid)
{
	replica *r;
	nng_msg *m;
	int64_t  left = call->deadline_ms - cm_now_ms();

	if (call->aio == NULL && nng_aio_alloc(&call->aio, call_cb, call) != 0)
		return false; /* a batchable call going alone: its aio comes now */
	if (left <= 0)
		return false;
	if ((r = rpc_pick(call->client, avoid)) == NULL)
		return false;
	if (nng_ctx_open(&call->ctx, r->sock) != 0) {
		rpc_replica_rele(r);
		return false;
	}
	if (nng_msg_dup(&m, call->request) != 0) {
		nng_ctx_close(call->ctx);
		rpc_replica_rele(r);
		return false;
	}
	call->ctx_open = true;
	call->rep = r;
	call->stage = RPC_STAGE_SEND;
	call->cancelled_by_reaper = false;
	call->attempts++;
	cm_counter_add(r->m_calls, 1);
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

	if (!call->idempotent || call->attempts >= 2 || atomic_load(&call->client->n_live) < 2)
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

/* After a failed attempt on `r` (still held): a retry elsewhere when allowed. Once
 * call_attempt has started the retry, the call belongs to nng: it may finish and be freed on
 * another thread before call_attempt returns, so nothing of it is read after (the client outlives
 * its calls). */
static bool
call_retry(rpc_call *call, replica *r)
{
	cm_rpc_client *c = call->client;

	if (!retry_allowed(call) || !call_attempt(call, r))
		return false;
	cm_counter_add(c->m_retries, 1);
	return true;
}

void
rpc_call_failed(rpc_call *call, replica *r, int rv, bool reaped)
{
	cm_rpc_result res;

	/* ECLOSED without the reaper: the client is closing, nothing to count or retry. */
	if (rv != NNG_ECLOSED || reaped) {
		rpc_replica_failure(r);
		if (call_retry(call, r))
			return;
	}
	if (rv == NNG_ETIMEDOUT)
		cm_rpc_result_set(&res, CM__STATUS__DEADLINE_EXCEEDED,
		                  "upstream deadline exceeded");
	else if (reaped)
		cm_rpc_result_set(&res, CM__STATUS__UNAVAILABLE, "upstream replica went away");
	else
		cm_rpc_result_set(&res, CM__STATUS__UNAVAILABLE, nng_strerror(rv));
	call_finish(call, &res);
}

static void
call_failed_attempt(rpc_call *call, replica *r, int rv)
{
	bool     reaped = call->cancelled_by_reaper;
	nng_msg *msg;

	if (call->stage == RPC_STAGE_SEND && (msg = nng_aio_get_msg(call->aio)) != NULL)
		nng_msg_free(msg);
	call_detach(call);
	rpc_call_failed(call, r, rv, reaped);
	rpc_replica_rele(r);
}

void
rpc_call_end(rpc_call *call, int status, const char *message)
{
	cm_rpc_result res;

	cm_rpc_result_set(&res, status, message);
	call_finish(call, &res);
}

bool
rpc_call_send_alone(rpc_call *call)
{
	call->attempts = 0;
	return call_attempt(call, NULL);
}

void
rpc_call_answered(rpc_call *call, replica *r, const Cm__Response *rsp)
{
	cm_rpc_result res;

	if (status_failed((int)rsp->status)) {
		rpc_replica_failure(r);
		if (call_retry(call, r))
			return;
	} else {
		rpc_replica_success(r);
	}
	cm_rpc_result_set(&res, (int)rsp->status, rsp->message);
	res.retry_after_s = rsp->retry_after_s;
	if (rsp->payload.len > 0) {
		if ((res.payload = malloc(rsp->payload.len)) == NULL) {
			cm_rpc_result_set(&res, CM__STATUS__INTERNAL, "out of memory");
		} else {
			memcpy(res.payload, rsp->payload.data, rsp->payload.len);
			res.payload_len = rsp->payload.len;
		}
	}
	call_finish(call, &res);
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

	if (call->stage == RPC_STAGE_REJECT) {
		cm_rpc_result_set(&res, call->reject_status, call->reject_msg);
		res.retry_after_s = call->reject_retry_s;
		res.refused = true;
		call_finish(call, &res);
		return;
	}
	if (call->stage == RPC_STAGE_SEND && rv == 0) {
		call->stage = RPC_STAGE_RECV;
		nng_ctx_recv(call->ctx, call->aio);
		return;
	}
	if (rv != 0) {
		call_failed_attempt(call, r, rv);
		return;
	}

	msg = nng_aio_get_msg(call->aio);
	call_detach(call);
	rsp = cm__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	if (rsp == NULL) {
		rpc_replica_failure(r);
		rpc_replica_rele(r);
		cm_rpc_result_set(&res, CM__STATUS__INTERNAL, "malformed response envelope");
		call_finish(call, &res);
		return;
	}
	rpc_call_answered(call, r, rsp);
	rpc_replica_rele(r);
	cm__response__free_unpacked(rsp, NULL);
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

/* Breaker and pending limit. False when the call is refused: its answer is set for the
 * callback (RPC_STAGE_REJECT). */
static bool
call_admit(rpc_call *call)
{
	cm_rpc_client *c = call->client;
	int64_t        wait_ms = 0;
	int            before = atomic_load(&c->breaker.state);
	int            verdict = rpc_breaker_admit(&c->breaker, cm_mono_ms(), &wait_ms);

	if (before != atomic_load(&c->breaker.state))
		breaker_report(c, before, atomic_load(&c->breaker.state));
	if (verdict == RPC_REJECT) {
		call->reject_msg = "circuit open: upstream failing, try again later";
		call->reject_retry_s = (int32_t)((wait_ms + 999) / 1000);
		cm_counter_add(c->m_rej_breaker, 1);
		goto reject;
	}
	call->probe = verdict == RPC_ADMIT_PROBE;
	if (c->max_pending > 0 && atomic_fetch_add(&c->pending, 1) >= c->max_pending) {
		atomic_fetch_sub(&c->pending, 1);
		if (call->probe)
			rpc_breaker_unprobe(&c->breaker);
		call->reject_msg = "too many calls pending on this upstream";
		call->reject_retry_s = 1;
		cm_counter_add(c->m_rej_pending, 1);
		goto reject;
	}
	if (c->max_pending <= 0)
		atomic_fetch_add(&c->pending, 1);
	cm_gauge_add(c->m_pending, 1);
	call->admitted = true;
	return true;
reject:
	call->stage = RPC_STAGE_REJECT;
	call->reject_status = CM__STATUS__UNAVAILABLE;
	if (call->reject_retry_s < 1)
		call->reject_retry_s = 1;
	return false;
}

/* An admitted call that never started gives back what admission took. */
static void
call_unadmit(rpc_call *call)
{
	cm_rpc_client *c = call->client;

	if (call->probe)
		rpc_breaker_unprobe(&c->breaker);
	atomic_fetch_sub(&c->pending, 1);
	cm_gauge_add(c->m_pending, -1);
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
	if (!(opts->batchable && c->batcher != NULL) &&
	    nng_aio_alloc(&call->aio, call_cb, call) != 0) {
		free(call);
		return CM_ENOMEM;
	}
	if ((call->request = pack_request(opts, call->deadline_ms, payload, len)) == NULL) {
		call_free(call);
		return CM_ENOMEM;
	}
	if (call->deadline_ms <= cm_now_ms()) {
		call_free(call);
		return CM_ETIMEDOUT;
	}
	if (!call_admit(call)) {
		if (call->aio == NULL && nng_aio_alloc(&call->aio, call_cb, call) != 0) {
			call_free(call);
			return CM_ENOMEM;
		}
		nng_sleep_aio(0, call->aio); /* answered from an nng thread, like any call */
		return CM_OK;
	}
	/* Earn retry budget: 10% of calls may be retried. */
	t = atomic_fetch_add(&c->retry_tokens, RETRY_EARN);
	if (t + RETRY_EARN > RETRY_BUDGET_MAX)
		atomic_fetch_sub(&c->retry_tokens, RETRY_EARN);

	if (opts->batchable && c->batcher != NULL && rpc_batch_submit(c, call))
		return CM_OK;
	if (!call_attempt(call, NULL)) {
		call_unadmit(call);
		cm_counter_add(c->m_rej_noreplica, 1);
		call_free(call);
		return CM_EUNAVAIL;
	}
	return CM_OK;
}

/* ---- blocking calls ------------------------------------------------------------------------ */

static bool
connected(cm_rpc_client *c)
{
	bool any = false;

	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->n && !any; i++)
		any = atomic_load(&c->reps[i]->pipes) > 0;
	pthread_rwlock_unlock(&c->lock);
	return any;
}

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
	/* A blocking caller (a service starting, a test) may wait briefly for a first connection
	 * (not for an ejection to end: with every replica ejected, panic mode calls them). */
	for (int64_t until = cm_mono_ms() + SYNC_CONNECT_WAIT_MS;
	     !connected(c) && cm_mono_ms() < until && cm_now_ms() < o.deadline_ms;)
		nng_msleep(10);

	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.done = false;
	w.res = res;
	err = cm_rpc_call_async(c, &o, payload, len, sync_done, &w);
	if (err != CM_OK) {
		cm_rpc_result_set(res, cm_err_to_status(err),
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
		cm_rpc_result_set(res, CM__STATUS__INTERNAL, "out of memory");
		return CM_ENOMEM;
	}
	protobuf_c_message_pack(req, buf);
	cm_rpc_call_raw(c, opts, buf, n, res);
	free(buf);
	if (res->status != CM__STATUS__OK)
		return cm_err_from_status(res->status);
	*resp_out = protobuf_c_message_unpack(resp_desc, NULL, res->payload_len, res->payload);
	if (*resp_out == NULL) {
		cm_rpc_result_set(res, CM__STATUS__INTERNAL, "malformed response payload");
		return CM_EPROTO;
	}
	return CM_OK;
}
