/*
 * ws.c - live events over WebSocket (ws.h): the hub. Sockets, framing and limits are wsloop.c's.
 *
 * DESIGN. The HTTP engine hands over each upgraded socket (edge_ws_adopt); the hub counts it
 * against the caps, files it under its user and gives it to the loop. A client's message arrives
 * on the loop's thread (ws_on_message); a subscription starts an asynchronous ownership check
 * with the service (an RPC holding a reference to the socket), whose reply queues the
 * confirmation and a job's snapshot. The services' events (pub/sub, on nng's threads) are queued
 * on every socket of their owner subscribed to the resource. Nothing here blocks or touches a
 * socket's fd: frames go through the socket's queue (wsconn.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/pubsub.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "proto/chat.pb-c.h"
#include "proto/eval.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "query.h"
#include "wsconn.h"

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
	ws_enqueue_locked(c, v != NULL ? json_dumps(v, JSON_COMPACT) : NULL);
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
	ws_enqueue_locked(c, edge_ws_event_json("job.progress", j->id, j->done, j->total, NULL));
	if (finished)
		ws_enqueue_locked(c, edge_ws_event_json("job.done", j->id, 0, 0, j->status));
	pthread_mutex_unlock(&c->mu);
}

static void
sub_checked(void *arg, cm_rpc_result *res)
{
	sub_check *k = arg;
	ws_conn   *c = k->c;
	bool       job = strncmp(k->resource, "job:", 4) == 0;
	Qgen__Job *j;
	bool       gone;

	pthread_mutex_lock(&c->mu);
	gone = c->closed;
	pthread_mutex_unlock(&c->mu);
	if (gone) {
		free(k);
		ws_conn_release(c);
		return;
	}
	if (res->status == CM__STATUS__NOT_FOUND && job && k->up == EDGE_UP_QGEN &&
	    c->e->up[EDGE_UP_EVAL] != NULL) {
		k->up = EDGE_UP_EVAL; /* not a question-set job: maybe a grading job */
		check_next(k);
		return;
	}
	if (res->status != CM__STATUS__OK) {
		ws_enqueue(c, frame_error(cm_status_name(res->status),
		                          res->status != CM__STATUS__NOT_FOUND ? res->message
		                          : job                                ? "no such job"
		                                                               : "no such chat"));
	} else if (!job) {
		pthread_mutex_lock(&c->mu);
		subscribe_locked(c, k->resource);
		pthread_mutex_unlock(&c->mu);
	} else if ((j = qgen__job__unpack(NULL, res->payload_len, res->payload)) == NULL) {
		ws_enqueue(c, frame_error("INTERNAL", "malformed upstream response"));
	} else {
		job_subscribed(c, k->resource, j);
		qgen__job__free_unpacked(j, NULL);
	}
	free(k);
	ws_conn_release(c);
}

/* Sends k's ownership check to k->up as the socket's user; the reply goes to sub_checked. */
static void
check_next(sub_check *k)
{
	ws_conn         *c = k->c;
	edge            *e = c->e;
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
		ws_enqueue(c, frame_error("UNAVAILABLE", "event service unavailable; try again"));
		free(k);
		ws_conn_release(c);
	}
}

void
ws_on_message(ws_conn *c, const char *msg, size_t len)
{
	edge       *e = c->e;
	char        resource[48];
	const char *why = NULL;
	sub_check  *k;
	bool        job;

	if (!edge_ws_parse_subscribe(msg, len, resource, sizeof(resource), &why)) {
		ws_enqueue(c, frame_error("INVALID_ARGUMENT", why));
		return;
	}
	pthread_mutex_lock(&c->mu);
	bool full = c->nsubs >= EDGE_WS_MAX_SUBS;
	pthread_mutex_unlock(&c->mu);
	if (full) {
		ws_enqueue(
		    c, frame_error("RESOURCE_EXHAUSTED", "too many subscriptions on this socket"));
		return;
	}
	job = strncmp(resource, "job:", 4) == 0;
	if ((job && e->up[EDGE_UP_QGEN] == NULL && e->up[EDGE_UP_EVAL] == NULL) ||
	    (!job && e->up[EDGE_UP_CHAT] == NULL) || (k = calloc(1, sizeof(*k))) == NULL) {
		ws_enqueue(c, frame_error("UNAVAILABLE", job ? "job events are not available"
		                                             : "chat events are not available"));
		return;
	}
	k->c = c;
	cm_strlcpy(k->resource, resource, sizeof(k->resource));
	k->up = !job ? EDGE_UP_CHAT : e->up[EDGE_UP_QGEN] != NULL ? EDGE_UP_QGEN : EDGE_UP_EVAL;
	atomic_fetch_add(&c->refs, 1); /* the check's */
	check_next(k);
}

/* ---- adoption ------------------------------------------------------------------------------ */

void
edge_ws_adopt(edge *e, const edge_ws_socket *s, const char *user, const char *refuse_code,
              const char *refuse_msg)
{
	edge_ws *h = e->ws;
	ws_conn *c = h != NULL ? ws_conn_alloc(h, s) : NULL;
	int      same_user = 0;

	if (c == NULL) {
		s->release(s->handle);
		return;
	}
	if (refuse_code == NULL && (user == NULL || user[0] == '\0')) {
		refuse_code = "UNAUTHENTICATED";
		refuse_msg = "log in first (session cookie or ?access_token=)";
	}
	if (refuse_code == NULL)
		cm_strlcpy(c->user, user, sizeof(c->user));
	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		ws_conn_abandon(c);
		return;
	}
	for (ws_conn *o = h->conns; o != NULL && refuse_code == NULL; o = o->next)
		same_user += !o->refused && strcmp(o->user, c->user) == 0;
	if (refuse_code == NULL &&
	    (h->nconns >= h->lim.max_sockets || same_user >= h->lim.max_per_user)) {
		refuse_code = "RESOURCE_EXHAUSTED";
		refuse_msg = "too many open sockets";
	}
	c->next = h->conns;
	h->conns = c;
	h->nconns++;
	pthread_mutex_lock(&c->mu);
	if (refuse_code != NULL) {
		c->refused = true;
		c->refuse_close = 1008; /* policy violation */
		c->user[0] = '\0';
		ws_enqueue_locked(c,
		                  frame_error(refuse_code, refuse_msg != NULL ? refuse_msg : ""));
	}
	ws_wake_locked(c); /* the loop takes it from the ready list */
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&h->mu);
}

void
ws_hub_forget(edge_ws *h, ws_conn *c)
{
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
				ws_enqueue_locked(c, strdup(frame));
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
	if (urls == NULL || urls[0] == '\0')
		return;
	if (cm_sub_open(&h->subs[i], urls, fn, h) != CM_OK ||
	    cm_sub_subscribe(h->subs[i], prefix) != CM_OK)
		cm_warn("EDGE-WS-EVENTS", "cannot subscribe to %s: no live events from there",
		        urls);
}

/* ---- start and stop -------------------------------------------------------------------------- */

void
edge_ws_limits_default(edge_ws_limits *l)
{
	l->idle_s = EDGE_WS_IDLE_S;
	l->pings_per_s = EDGE_WS_MAX_PINGS;
	l->max_in = EDGE_WS_MAX_IN;
	l->max_queue = EDGE_WS_MAX_QUEUE;
	l->max_queue_bytes = EDGE_WS_MAX_QUEUE_BYTES;
	l->max_per_user = EDGE_WS_MAX_PER_USER;
	l->max_sockets = EDGE_WS_MAX_SOCKETS;
	l->close_grace_ms = EDGE_WS_CLOSE_GRACE_MS;
}

cm_err
edge_ws_start(edge *e)
{
	edge_ws_limits l;

	edge_ws_limits_default(&l);
	return edge_ws_start_limits(e, &l);
}

cm_err
edge_ws_start_limits(edge *e, const edge_ws_limits *l)
{
	edge_ws *h;

	if (l->idle_s < 1 || l->pings_per_s < 1 || l->max_in < 1 || l->max_queue < 4 ||
	    l->max_queue_bytes < 4 * (size_t)EDGE_WS_MAX_IN || l->max_per_user < 1 ||
	    l->max_sockets < 1 || l->close_grace_ms < 1)
		return CM_EINVAL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return CM_ENOMEM;
	h->e = e;
	h->lim = *l;
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->readymu, NULL);
	if (ws_loop_start(h) != CM_OK) {
		pthread_mutex_destroy(&h->readymu);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return CM_EINTERNAL;
	}
	e->ws = h; /* before the subscribers: their events look here */
	subscribe_events(h, 0, e->cfg.qgen_events_urls, "job.", on_job_event);
	subscribe_events(h, 1, e->cfg.eval_events_urls, "job.", on_job_event);
	subscribe_events(h, 2, e->cfg.chat_events_urls, "chat.", on_chat_event);
	cm_info("EDGE-WS", "WebSocket events on %s (idle %d s)", EDGE_WS_PATH, l->idle_s);
	return CM_OK;
}

void
edge_ws_stop(edge *e)
{
	edge_ws *h = e->ws;

	if (h == NULL)
		return;
	for (int i = 0; i < 3; i++)
		cm_sub_close(h->subs[i]); /* no event is being forwarded past this */
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_mutex_unlock(&h->mu);
	ws_loop_stop(h); /* close 1001 to all, every fd released */
	e->ws = NULL;
	/* Sockets still referenced by an ownership check in flight no longer touch the hub. */
	pthread_mutex_destroy(&h->readymu);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
