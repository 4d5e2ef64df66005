/*
 * ws.c - live events over WebSocket (ws.h).
 *
 * DESIGN. nng's ws stream listener on "ws://<EDGE_ADDR>/api/v1/ws" joins the edge's HTTP server
 * (same host:port, so nng shares one server and routes the upgrade path to the listener; the
 * edge's tree handler keeps every other path). Each accepted socket is a ws_conn with one receive
 * and one send aio, reference counted: one reference for the receive loop, one per send and per
 * ownership check in flight, so the last callback to finish frees it. Nothing blocks an nng
 * thread: frames wait in a bounded per-socket queue (a slow reader loses old progress frames,
 * never a job.done), ownership checks are asynchronous RPCs.
 *
 * Lock order: the hub's lock, then a socket's lock; a socket never takes the hub's lock while
 * holding its own.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/log.h"
#include "cm/pubsub.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "proto/chat.pb-c.h"
#include "proto/eval.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "query.h"
#include "ws.h"

typedef struct ws_conn ws_conn;

struct ws_conn {
	ws_conn        *next;
	edge_ws        *hub;
	nng_stream     *s;
	char            user[64];
	pthread_mutex_t mu;
	int             refs;
	bool            closed;
	bool            close_after_send; /* refused at the upgrade: say why, then close */
	nng_aio        *rx, *tx;
	char            in[EDGE_WS_MAX_IN];
	char           *queue[EDGE_WS_MAX_QUEUE];
	size_t          qh, qn;
	char           *sending;
	char            subs[EDGE_WS_MAX_SUBS][48];
	int             nsubs;
};

struct edge_ws {
	edge                *e;
	nng_stream_listener *l;
	nng_aio             *accept;
	cm_sub              *subs[3]; /* svc-qgen's and svc-eval's job events, svc-chat's deltas */
	pthread_mutex_t      mu;
	ws_conn             *conns;
	int                  nconns;
	bool                 stopping;
};

/* ---- pure parts ------------------------------------------------------------------------------ */

bool
edge_ws_parse_subscribe(const char *msg, size_t len, char *resource, size_t reslen,
                        const char **why)
{
	json_t     *v = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL);
	json_t     *r = json_is_object(v) ? json_object_get(v, "subscribe") : NULL;
	const char *s = json_is_string(r) ? json_string_value(r) : NULL;
	bool        ok = false;

	if (v == NULL)
		*why = "malformed JSON";
	else if (s == NULL)
		*why = "send {\"subscribe\":\"job:<id>\"} or {\"subscribe\":\"chat:<id>\"}";
	else if (!(strncmp(s, "job:", 4) == 0 && cm_uuid_valid(s + 4)) &&
	         !(strncmp(s, "chat:", 5) == 0 && cm_uuid_valid(s + 5)))
		*why = "unknown resource (use job:<id> or chat:<id>)";
	else if (strlen(s) + 1 > reslen)
		*why = "resource too long";
	else {
		memcpy(resource, s, strlen(s) + 1);
		ok = true;
	}
	json_decref(v);
	return ok;
}

char *
edge_ws_event_json(const char *type, const char *job_id, int done, int total, const char *status)
{
	json_t *v = NULL;
	char   *s;

	if (strcmp(type, "job.progress") == 0)
		v = json_pack("{s:s, s:s, s:i, s:i}", "type", type, "job_id", job_id, "done", done,
		              "total", total);
	else if (strcmp(type, "job.done") == 0)
		v = json_pack("{s:s, s:s, s:s}", "type", type, "job_id", job_id, "status",
		              status != NULL ? status : "");
	if (v == NULL)
		return NULL;
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

char *
edge_ws_chat_json(const char *type, const char *chat_id, const char *message_id, const char *delta,
                  const char *status)
{
	json_t *v = NULL;
	char   *s;

	if (strcmp(type, "chat.delta") == 0)
		v = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "chat_id", chat_id,
		              "message_id", message_id, "delta", delta != NULL ? delta : "");
	else if (strcmp(type, "chat.done") == 0)
		v = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "chat_id", chat_id,
		              "message_id", message_id, "status", status != NULL ? status : "");
	if (v == NULL)
		return NULL;
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

bool
edge_ws_query_token(const char *uri, char *out, size_t outlen)
{
	const char *q = uri != NULL ? strchr(uri, '?') : NULL;
	ssize_t     n = q != NULL ? edge_query_get(q + 1, "access_token", out, outlen) : -1;

	/* A cut token would only fail verification later: refuse it here. */
	return n > 0 && (size_t)n < outlen;
}

static char *
frame_error(const char *code, const char *message)
{
	json_t *v = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
	char   *s = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	return s;
}

/* ---- one socket ------------------------------------------------------------------------------ */

static void conn_send_next(ws_conn *c);

static void
conn_release(ws_conn *c)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (!last)
		return;
	for (size_t i = 0; i < c->qn; i++)
		free(c->queue[(c->qh + i) % EDGE_WS_MAX_QUEUE]);
	free(c->sending);
	nng_aio_reap(c->rx);
	nng_aio_reap(c->tx);
	nng_stream_free(c->s);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Marks the socket closed and takes it out of the hub (its references end it). */
static void
conn_close(ws_conn *c)
{
	edge_ws *h = c->hub;
	bool     was;

	pthread_mutex_lock(&c->mu);
	was = c->closed;
	c->closed = true;
	pthread_mutex_unlock(&c->mu);
	if (was)
		return;
	nng_stream_close(c->s);
	pthread_mutex_lock(&h->mu);
	for (ws_conn **p = &h->conns; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			h->nconns--;
			break;
		}
	}
	pthread_mutex_unlock(&h->mu);
}

/* Queues a frame (taken over). A full queue drops its oldest progress frame; job.done and
 * errors are never dropped in favour of progress. Called with c->mu held. */
static void
enqueue_locked(ws_conn *c, char *frame)
{
	if (frame == NULL)
		return;
	if (c->closed) {
		free(frame);
		return;
	}
	if (c->qn == EDGE_WS_MAX_QUEUE) {
		size_t victim = SIZE_MAX;
		for (size_t i = 0; i < c->qn && victim == SIZE_MAX; i++)
			if (strstr(c->queue[(c->qh + i) % EDGE_WS_MAX_QUEUE], "\"job.progress\"") !=
			    NULL)
				victim = i;
		if (victim == SIZE_MAX) {
			free(frame); /* nothing to give up: the client is not reading at all */
			return;
		}
		free(c->queue[(c->qh + victim) % EDGE_WS_MAX_QUEUE]);
		for (size_t i = victim; i + 1 < c->qn; i++)
			c->queue[(c->qh + i) % EDGE_WS_MAX_QUEUE] =
			    c->queue[(c->qh + i + 1) % EDGE_WS_MAX_QUEUE];
		c->qn--;
	}
	c->queue[(c->qh + c->qn) % EDGE_WS_MAX_QUEUE] = frame;
	c->qn++;
	if (c->sending == NULL)
		conn_send_next(c);
}

static void
enqueue(ws_conn *c, char *frame)
{
	pthread_mutex_lock(&c->mu);
	enqueue_locked(c, frame);
	pthread_mutex_unlock(&c->mu);
}

/* Starts sending the next frame (c->mu held, nothing in flight). */
static void
conn_send_next(ws_conn *c)
{
	nng_iov iov;

	if (c->qn == 0 || c->closed)
		return;
	c->sending = c->queue[c->qh];
	c->qh = (c->qh + 1) % EDGE_WS_MAX_QUEUE;
	c->qn--;
	c->refs++;
	iov.iov_buf = c->sending;
	iov.iov_len = strlen(c->sending);
	nng_aio_set_iov(c->tx, 1, &iov);
	nng_stream_send(c->s, c->tx);
}

static void
tx_done(void *arg)
{
	ws_conn *c = arg;
	bool     failed = nng_aio_result(c->tx) != 0, close_now = false;

	pthread_mutex_lock(&c->mu);
	free(c->sending);
	c->sending = NULL;
	if (!failed)
		conn_send_next(c);
	close_now = failed || (c->close_after_send && c->sending == NULL && c->qn == 0);
	pthread_mutex_unlock(&c->mu);
	if (close_now)
		conn_close(c);
	conn_release(c);
}

/* ---- subscriptions --------------------------------------------------------------------------- */

/* One ownership check in flight: job:<id> asks svc-qgen, then svc-eval (their Job messages are
 * wire-compatible); chat:<id> asks svc-chat. */
typedef struct sub_check {
	ws_conn         *c;
	char             resource[48];
	edge_upstream_id up;
} sub_check;

static void check_next(sub_check *k);

/* Adds the subscription (once) and its confirmation; with c->mu held. */
static void
subscribe_locked(ws_conn *c, const char *resource)
{
	json_t *v = json_pack("{s:s, s:s}", "type", "subscribed", "resource", resource);
	bool    have = false;

	for (int i = 0; i < c->nsubs && !have; i++)
		have = strcmp(c->subs[i], resource) == 0;
	if (!have && c->nsubs < EDGE_WS_MAX_SUBS)
		cm_strlcpy(c->subs[c->nsubs++], resource, sizeof(c->subs[0]));
	enqueue_locked(c, v != NULL ? json_dumps(v, JSON_COMPACT) : NULL);
	json_decref(v);
}

static void
job_subscribed(ws_conn *c, const char *resource, const Qgen__Job *j)
{
	bool finished = strcmp(j->status, "succeeded") == 0 || strcmp(j->status, "failed") == 0 ||
	                strcmp(j->status, "cancelled") == 0;

	pthread_mutex_lock(&c->mu);
	subscribe_locked(c, resource);
	/* Events sent before the subscription are lost: a snapshot stands in for them. */
	enqueue_locked(c, edge_ws_event_json("job.progress", j->id, j->done, j->total, NULL));
	if (finished)
		enqueue_locked(c, edge_ws_event_json("job.done", j->id, 0, 0, j->status));
	pthread_mutex_unlock(&c->mu);
}

static void
sub_checked(void *arg, cm_rpc_result *res)
{
	sub_check *k = arg;
	ws_conn   *c = k->c;
	bool       job = strncmp(k->resource, "job:", 4) == 0;
	Qgen__Job *j;

	if (res->status == CM__STATUS__NOT_FOUND && job && k->up == EDGE_UP_QGEN &&
	    c->hub->e->up[EDGE_UP_EVAL] != NULL) {
		k->up = EDGE_UP_EVAL; /* not a question-set job: maybe a grading job */
		check_next(k);
		return;
	}
	if (res->status != CM__STATUS__OK) {
		enqueue(c, frame_error(cm_status_name(res->status),
		                       res->status != CM__STATUS__NOT_FOUND ? res->message
		                       : job                                ? "no such job"
		                                                            : "no such chat"));
	} else if (!job) {
		pthread_mutex_lock(&c->mu);
		subscribe_locked(c, k->resource);
		pthread_mutex_unlock(&c->mu);
	} else if ((j = qgen__job__unpack(NULL, res->payload_len, res->payload)) == NULL) {
		enqueue(c, frame_error("INTERNAL", "malformed upstream response"));
	} else {
		job_subscribed(c, k->resource, j);
		qgen__job__free_unpacked(j, NULL);
	}
	free(k);
	conn_release(c);
}

/* Sends k's ownership check to k->up as the socket's user; the reply goes to sub_checked. */
static void
check_next(sub_check *k)
{
	ws_conn         *c = k->c;
	edge            *e = c->hub->e;
	bool             job = strncmp(k->resource, "job:", 4) == 0;
	Qgen__JobRef     jref = QGEN__JOB_REF__INIT; /* eval.JobRef is the same message */
	Chat__ChatRef    cref = CHAT__CHAT_REF__INIT;
	uint8_t          buf[128];
	size_t           n;
	cm_rpc_call_opts o;
	char             rid[CM_UUID_LEN + 1];
	const char      *method = k->up == EDGE_UP_QGEN   ? "qgen.GetJob"
	                          : k->up == EDGE_UP_EVAL ? "eval.GetJob"
	                                                  : "chat.Get";

	jref.id = k->resource + 4;
	cref.id = k->resource + 5;
	n = job ? protobuf_c_message_get_packed_size(&jref.base)
	        : protobuf_c_message_get_packed_size(&cref.base);
	protobuf_c_message_pack(job ? &jref.base : &cref.base, buf);
	cm_uuid_v4(rid);
	edge_rpc_opts(e, method, rid, c->user, NULL, NULL, true, &o);
	if (e->up[k->up] == NULL ||
	    cm_rpc_call_async(e->up[k->up], &o, buf, n, sub_checked, k) != CM_OK) {
		enqueue(c, frame_error("UNAVAILABLE", "event service unavailable; try again"));
		free(k);
		conn_release(c);
	}
}

static void
handle_message(ws_conn *c, const char *msg, size_t len)
{
	edge       *e = c->hub->e;
	char        resource[48];
	const char *why = NULL;
	sub_check  *k;
	bool        job;

	if (!edge_ws_parse_subscribe(msg, len, resource, sizeof(resource), &why)) {
		enqueue(c, frame_error("INVALID_ARGUMENT", why));
		return;
	}
	pthread_mutex_lock(&c->mu);
	bool full = c->nsubs >= EDGE_WS_MAX_SUBS;
	pthread_mutex_unlock(&c->mu);
	if (full) {
		enqueue(c,
		        frame_error("RESOURCE_EXHAUSTED", "too many subscriptions on this socket"));
		return;
	}
	job = strncmp(resource, "job:", 4) == 0;
	if ((job && e->up[EDGE_UP_QGEN] == NULL && e->up[EDGE_UP_EVAL] == NULL) ||
	    (!job && e->up[EDGE_UP_CHAT] == NULL) || (k = calloc(1, sizeof(*k))) == NULL) {
		enqueue(c, frame_error("UNAVAILABLE", job ? "job events are not available"
		                                          : "chat events are not available"));
		return;
	}
	k->c = c;
	cm_strlcpy(k->resource, resource, sizeof(k->resource));
	k->up = !job ? EDGE_UP_CHAT : e->up[EDGE_UP_QGEN] != NULL ? EDGE_UP_QGEN : EDGE_UP_EVAL;
	pthread_mutex_lock(&c->mu);
	c->refs++;
	pthread_mutex_unlock(&c->mu);
	check_next(k);
}

static void
rx_done(void *arg)
{
	ws_conn *c = arg;
	nng_iov  iov;

	if (nng_aio_result(c->rx) != 0) {
		conn_close(c);
		conn_release(c); /* the receive loop's reference */
		return;
	}
	handle_message(c, c->in, nng_aio_count(c->rx));
	iov.iov_buf = c->in;
	iov.iov_len = sizeof(c->in);
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_stream_recv(c->s, c->rx);
}

/* Who is at the other end: the access token from ?access_token= or the session cookie. */
static bool
authenticate(edge *e, nng_stream *s, cm_jwt_claims *claims)
{
	char *uri = NULL, *cookie = NULL, *access = NULL, *refresh = NULL;
	char  tok[CM_MAX_TOKEN + 1];
	bool  ok = false;

	if (nng_stream_get_string(s, NNG_OPT_WS_REQUEST_URI, &uri) == 0 &&
	    edge_ws_query_token(uri, tok, sizeof(tok)))
		ok = edge_token_verify(e, tok, claims);
	if (!ok && nng_stream_get_string(s, NNG_OPT_WS_REQUEST_HEADER "Cookie", &cookie) == 0 &&
	    edge_cookie_parse(cookie, &access, &refresh))
		ok = edge_token_verify(e, access, claims);
	nng_strfree(uri);
	nng_strfree(cookie);
	free(access);
	free(refresh);
	return ok;
}

static void
accept_one(edge_ws *h, nng_stream *s)
{
	ws_conn      *c = calloc(1, sizeof(*c));
	cm_jwt_claims claims;
	const char   *refuse = NULL, *code = "UNAUTHENTICATED";
	nng_iov       iov;
	int           same_user = 0;

	if (c == NULL || nng_aio_alloc(&c->rx, rx_done, c) != 0 ||
	    nng_aio_alloc(&c->tx, tx_done, c) != 0) {
		if (c != NULL) {
			nng_aio_free(c->rx);
			free(c);
		}
		nng_stream_free(s);
		return;
	}
	c->hub = h;
	c->s = s;
	c->refs = 1;
	pthread_mutex_init(&c->mu, NULL);
	if (!authenticate(h->e, s, &claims))
		refuse = "log in first (session cookie or ?access_token=)";
	else
		cm_strlcpy(c->user, claims.sub, sizeof(c->user));

	pthread_mutex_lock(&h->mu);
	for (ws_conn *o = h->conns; o != NULL && refuse == NULL; o = o->next)
		same_user += strcmp(o->user, c->user) == 0;
	if (refuse == NULL &&
	    (h->nconns >= EDGE_WS_MAX_SOCKETS || same_user >= EDGE_WS_MAX_PER_USER)) {
		refuse = "too many open sockets";
		code = "RESOURCE_EXHAUSTED";
	}
	c->next = h->conns;
	h->conns = c;
	h->nconns++;
	pthread_mutex_unlock(&h->mu);

	if (refuse != NULL) {
		pthread_mutex_lock(&c->mu);
		c->close_after_send = true;
		enqueue_locked(c, frame_error(code, refuse));
		pthread_mutex_unlock(&c->mu);
	}
	iov.iov_buf = c->in;
	iov.iov_len = sizeof(c->in);
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_stream_recv(c->s, c->rx);
}

static void
accept_done(void *arg)
{
	edge_ws *h = arg;
	bool     stopping;

	if (nng_aio_result(h->accept) == 0)
		accept_one(h, nng_aio_get_output(h->accept, 0));
	pthread_mutex_lock(&h->mu);
	stopping = h->stopping;
	pthread_mutex_unlock(&h->mu);
	if (!stopping)
		nng_stream_listener_accept(h->l, h->accept);
}

/* ---- events ---------------------------------------------------------------------------------- */

/* Queues frame (a copy) on every socket of owner subscribed to resource. */
static void
forward(edge_ws *h, const char *owner, const char *resource, const char *frame)
{
	pthread_mutex_lock(&h->mu);
	for (ws_conn *c = h->conns; c != NULL && frame != NULL; c = c->next) {
		if (strcmp(c->user, owner) != 0) /* only the owner's sockets, whatever they ask */
			continue;
		pthread_mutex_lock(&c->mu);
		for (int i = 0; i < c->nsubs; i++) {
			if (strcmp(c->subs[i], resource) == 0) {
				enqueue_locked(c, strdup(frame));
				break;
			}
		}
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

/* svc-qgen's and svc-eval's job events (eval.JobEvent is the same message as qgen.JobEvent). */
static void
on_job_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	Qgen__JobEvent *ev;
	char            resource[48];
	char           *frame;

	(void)topic;
	if ((ev = qgen__job_event__unpack(NULL, len, payload)) == NULL)
		return;
	frame = edge_ws_event_json(type, ev->job_id, ev->done, ev->total, ev->status);
	snprintf(resource, sizeof(resource), "job:%s", ev->job_id);
	forward(arg, ev->owner, resource, frame);
	free(frame);
	qgen__job_event__free_unpacked(ev, NULL);
}

/* svc-chat's streamed answers. */
static void
on_chat_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	Chat__ChatEvent *ev;
	char             resource[48];
	char            *frame;

	(void)topic;
	if ((ev = chat__chat_event__unpack(NULL, len, payload)) == NULL)
		return;
	frame = edge_ws_chat_json(type, ev->chat_id, ev->message_id, ev->delta, ev->status);
	snprintf(resource, sizeof(resource), "chat:%s", ev->chat_id);
	forward(arg, ev->owner, resource, frame);
	free(frame);
	chat__chat_event__free_unpacked(ev, NULL);
}

/* Subscribes slot i to the publishers at urls ("" = none) for topics starting with prefix. */
static void
subscribe_events(edge_ws *h, int i, const char *urls, const char *prefix, cm_sub_fn fn)
{
	if (urls[0] == '\0')
		return;
	if (cm_sub_open(&h->subs[i], urls, fn, h) != CM_OK ||
	    cm_sub_subscribe(h->subs[i], prefix) != CM_OK)
		cm_warn("EDGE-WS-EVENTS", "cannot subscribe to %s: no live events from there",
		        urls);
}

/* ---- start and stop -------------------------------------------------------------------------- */

cm_err
edge_ws_start(edge *e)
{
	edge_ws *h = calloc(1, sizeof(*h));
	char     url[300];
	int      rv;

	if (h == NULL)
		return CM_ENOMEM;
	h->e = e;
	pthread_mutex_init(&h->mu, NULL);
	snprintf(url, sizeof(url), "ws://%s%s", e->cfg.addr, EDGE_WS_PATH);
	if ((rv = nng_stream_listener_alloc(&h->l, url)) != 0 ||
	    (rv = nng_stream_listener_set_bool(h->l, NNG_OPT_WS_SEND_TEXT, true)) != 0 ||
	    (rv = nng_stream_listener_set_bool(h->l, NNG_OPT_WS_RECV_TEXT, true)) != 0 ||
	    (rv = nng_stream_listener_set_size(h->l, NNG_OPT_WS_RECVMAXFRAME, EDGE_WS_MAX_IN)) !=
	        0 ||
	    (rv = nng_aio_alloc(&h->accept, accept_done, h)) != 0 ||
	    (rv = nng_stream_listener_listen(h->l)) != 0) {
		cm_error("EDGE-WS-FAIL", "cannot serve WebSocket on %s: %s", url, nng_strerror(rv));
		nng_aio_free(h->accept);
		nng_stream_listener_free(h->l);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return CM_EINTERNAL;
	}
	subscribe_events(h, 0, e->cfg.qgen_events_urls, "job.", on_job_event);
	subscribe_events(h, 1, e->cfg.eval_events_urls, "job.", on_job_event);
	subscribe_events(h, 2, e->cfg.chat_events_urls, "chat.", on_chat_event);
	nng_stream_listener_accept(h->l, h->accept);
	e->ws = h;
	cm_info("EDGE-WS", "WebSocket events on %s", url);
	return CM_OK;
}

void
edge_ws_stop(edge *e)
{
	edge_ws *h = e->ws;
	int64_t  until = cm_mono_ms() + 2000;

	if (h == NULL)
		return;
	for (int i = 0; i < 3; i++)
		cm_sub_close(h->subs[i]);
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	for (ws_conn *c = h->conns; c != NULL; c = c->next)
		nng_stream_close(c->s); /* their receive fails, and they leave the hub */
	pthread_mutex_unlock(&h->mu);
	nng_stream_listener_close(h->l);
	nng_aio_stop(h->accept);
	for (;;) {
		pthread_mutex_lock(&h->mu);
		int left = h->nconns;
		pthread_mutex_unlock(&h->mu);
		if (left == 0 || cm_mono_ms() >= until)
			break;
		nng_msleep(10);
	}
	nng_aio_free(h->accept);
	nng_stream_listener_free(h->l);
	e->ws = NULL;
	/* The hub stays allocated if a socket outlived the wait: a late callback must not touch
	 * freed memory, and the process is exiting anyway. */
	if (h->nconns == 0) {
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
}
