/*
 * rpc_batch.c - concurrent batchable calls to one upstream share one message (cm/rpc.h BATCHING).
 *
 * WHY. The RPC path is CPU-bound on what each message costs, not on its bytes (issue 12's
 * profile, bench/README.md): nng 1.5.2 hands every message between threads several times on each
 * side (~13-15 context switches per call in svc-auth, ~7 on the edge). Many calls in one message
 * pay that once.
 *
 * DESIGN. Natural batching, as pipelining does it, with no timer that waits for company: an
 * admitted batchable call goes out at once, as a batch of one, while the replica it picks has
 * fewer than `inflight_max` batches in flight; otherwise it waits in the upstream's queue. When a
 * batch completes, the calls waiting (up to max_calls / max_bytes, oldest first) leave together as
 * the next batch, before the completed batch's answers are handed out, so the server works while
 * the client delivers. Under light load every call is a batch of one; under load batches grow
 * with the load.
 *
 * A batch is one req0 exchange on a fresh context, as a call is: a Request whose method is
 * CM_RPC_BATCH_METHOD and whose payload is a Batch of the calls' own packed envelopes (packed by
 * hand below: they are already packed, so each is copied once, never unpacked), answered by a
 * Response whose payload is a BatchReply. Its timeout is the latest deadline of its calls (they
 * all come with the caller's usual timeout, so within milliseconds of each other; the server
 * answers a call whose own deadline passed DEADLINE_EXCEEDED).
 *
 * Each call keeps what it has alone (rpc_client.c): admission (breaker, pending limit) before it
 * gets here; its own answer, counted for or against the replica; a retry on another replica,
 * alone, under the usual budget; its result and metrics. A batch that fails as a whole (no answer,
 * timeout, the replica's connection gone: the reaper cancels batches too) fails each call as if it
 * had failed alone. A waiting call whose deadline passes is answered DEADLINE_EXCEEDED unsent (a
 * sweep timer, armed while calls wait). A server that does not know the method answers
 * UNIMPLEMENTED: its calls, and every batchable call for BATCH_OFF_MS, go alone (a rolling
 * upgrade).
 *
 * LOCKING. b->mtx guards the queue and the batch counts (per replica and in all); it is taken
 * before c->lock (rpc_pick) and never held while a call is sent or answered. The invariant that
 * keeps the queue moving: calls wait only while at least one batch is in flight, whose completion
 * sends them (or fails them when no replica is left).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "rpc_int.h"

#define BATCH_OFF_MS 60000 /* after an UNIMPLEMENTED, batchable calls go alone this long */
#define SWEEP_MAX_MS 100   /* waiting calls' deadlines are checked at least this often */

struct rpc_batcher {
	pthread_mutex_t mtx;
	rpc_call       *head, *tail; /* waiting calls, oldest first (qnext) */
	int             inflight_max;
	size_t          max_calls, max_bytes;
	int             inflight; /* batches in flight on all replicas */
	bool            closing;
	bool            sweep_armed;
	nng_aio        *sweep;
	_Atomic int64_t off_until_ms; /* monotonic: no batching before this */
	cm_counter     *m_batches, *m_calls;
};

struct rpc_batch {
	cm_rpc_client *client;
	replica       *rep;         /* held while the batch is in flight */
	rpc_batch     *prev, *next; /* in rep->batches */
	rpc_batch     *send_next;   /* batch_done's list of batches to send */
	nng_ctx        ctx;
	bool           ctx_open;
	bool           sending;
	bool           cancelled_by_reaper;
	nng_aio       *aio;
	size_t         n;
	rpc_call      *calls[];
};

static void batch_cb(void *arg);
static void sweep_cb(void *arg);

static int
env_or(const char *name, int dflt)
{
	const char *env = getenv(name);
	int64_t     v;

	return env != NULL && cm_parse_i64(env, &v) && v >= -1 && v <= 1024 ? (int)v : dflt;
}

cm_err
rpc_batcher_open(cm_rpc_client *c, const cm_rpc_client_opts *opts)
{
	rpc_batcher *b;
	int          k = opts->batch_inflight;
	char         l[160];

	if (k == 0)
		k = env_or("CM_RPC_BATCH_INFLIGHT", CM_RPC_BATCH_INFLIGHT);
	if (k <= 0)
		return CM_OK; /* batching off: batchable calls go alone */
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return CM_ENOMEM;
	if (nng_aio_alloc(&b->sweep, sweep_cb, c) != 0) {
		free(b);
		return CM_ENOMEM;
	}
	pthread_mutex_init(&b->mtx, NULL);
	b->inflight_max = k;
	b->max_calls =
	    (size_t)(opts->batch_max_calls > 0 ? opts->batch_max_calls : CM_RPC_BATCH_MAX_CALLS);
	b->max_bytes =
	    (size_t)(opts->batch_max_bytes > 0 ? opts->batch_max_bytes : CM_RPC_BATCH_MAX_BYTES);
	if (c->metrics != NULL) {
		snprintf(l, sizeof(l), "upstream=\"%s\"", c->name);
		b->m_batches = cm_metrics_counter(c->metrics, "upstream_batches_total",
		                                  "Batches of calls sent (a lone call is one)", l);
		b->m_calls = cm_metrics_counter(c->metrics, "upstream_batched_calls_total",
		                                "Calls sent in batches", l);
	}
	c->batcher = b;
	return CM_OK;
}

/* Under b->mtx: the whole queue, which is left empty. */
static rpc_call *
take_all_locked(rpc_batcher *b)
{
	rpc_call *all = b->head;

	b->head = b->tail = NULL;
	return all;
}

static void
end_all(rpc_call *list, int status, const char *message)
{
	while (list != NULL) {
		rpc_call *next = list->qnext;
		rpc_call_end(list, status, message);
		list = next;
	}
}

void
rpc_batcher_close(cm_rpc_client *c)
{
	rpc_batcher *b = c->batcher;
	rpc_call    *left;

	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mtx);
	b->closing = true;
	left = take_all_locked(b);
	pthread_mutex_unlock(&b->mtx);
	nng_aio_stop(b->sweep);
	/* On the closing thread, not an nng one: nothing else will answer them. */
	end_all(left, CM__STATUS__UNAVAILABLE, "upstream client closed");
}

void
rpc_batcher_free(cm_rpc_client *c)
{
	rpc_batcher *b = c->batcher;

	if (b == NULL)
		return;
	nng_aio_free(b->sweep);
	pthread_mutex_destroy(&b->mtx);
	free(b);
	c->batcher = NULL;
}

/* ---- slots, queue ---------------------------------------------------------------------------- */

/* Under b->mtx: a replica with room for one more batch, held and counted; NULL when none. */
static replica *
slot_locked(cm_rpc_client *c, rpc_batcher *b)
{
	replica *r = rpc_pick(c, NULL), *o;

	if (r == NULL)
		return NULL;
	if (r->batch_inflight >= b->inflight_max) {
		o = rpc_pick(c, r); /* the other of the two choices may have room */
		rpc_replica_rele(r);
		if (o == NULL)
			return NULL;
		if (o->batch_inflight >= b->inflight_max) {
			rpc_replica_rele(o);
			return NULL;
		}
		r = o;
	}
	r->batch_inflight++;
	b->inflight++;
	return r;
}

/* Under b->mtx: gives back a slot slot_locked took (the caller releases the replica). */
static void
unslot_locked(rpc_batcher *b, replica *r)
{
	r->batch_inflight--;
	b->inflight--;
}

static rpc_batch *
batch_new(cm_rpc_client *c, replica *r, size_t cap)
{
	rpc_batch *bt = calloc(1, sizeof(*bt) + cap * sizeof(rpc_call *));

	if (bt == NULL)
		return NULL;
	if (nng_aio_alloc(&bt->aio, batch_cb, bt) != 0) {
		free(bt);
		return NULL;
	}
	bt->client = c;
	bt->rep = r;
	return bt;
}

static void
batch_free(rpc_batch *bt, bool in_callback)
{
	if (in_callback)
		nng_aio_reap(bt->aio); /* we run inside its callback: nng's reaper frees it */
	else
		nng_aio_free(bt->aio);
	free(bt);
}

/* Under b->mtx: moves waiting calls into bt (at least one when any is left, then up to the
 * limits); those whose deadline passed go to *expired instead. */
static void
take_locked(rpc_batcher *b, rpc_batch *bt, rpc_call **expired)
{
	int64_t now = cm_now_ms();
	size_t  bytes = 0;

	while (b->head != NULL && bt->n < b->max_calls) {
		rpc_call *call = b->head;
		size_t    len = nng_msg_len(call->request);

		if (call->deadline_ms > now && bt->n > 0 && bytes + len > b->max_bytes)
			break;
		if ((b->head = call->qnext) == NULL)
			b->tail = NULL;
		if (call->deadline_ms <= now) {
			call->qnext = *expired;
			*expired = call;
			continue;
		}
		call->qnext = NULL;
		bt->calls[bt->n++] = call;
		bytes += len;
	}
}

/* ---- sending --------------------------------------------------------------------------------- */

static size_t
varint_len(uint64_t v)
{
	size_t n = 1;

	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* The batch's request: cm.Request{method = 1, deadline_ms = 3, payload = 6} whose payload is
 * cm.Batch{repeated calls = 1}, each call's envelope as rpc_client.c packed it. */
static nng_msg *
batch_pack(const rpc_batch *bt, int64_t *deadline)
{
	const char *method = CM_RPC_BATCH_METHOD;
	size_t      ml = strlen(method), payload = 0, total;
	int64_t     dl = 0;
	nng_msg    *msg;
	uint8_t    *p;

	for (size_t i = 0; i < bt->n; i++) {
		size_t len = nng_msg_len(bt->calls[i]->request);
		payload += 1 + varint_len(len) + len;
		if (bt->calls[i]->deadline_ms > dl)
			dl = bt->calls[i]->deadline_ms;
	}
	total = 1 + varint_len(ml) + ml + 1 + varint_len((uint64_t)dl) + 1 + varint_len(payload) +
	        payload;
	if (nng_msg_alloc(&msg, total) != 0)
		return NULL;
	p = nng_msg_body(msg);
	*p++ = 0x0a;
	p = put_varint(p, ml);
	memcpy(p, method, ml);
	p += ml;
	*p++ = 0x18;
	p = put_varint(p, (uint64_t)dl);
	*p++ = 0x32;
	p = put_varint(p, payload);
	for (size_t i = 0; i < bt->n; i++) {
		size_t len = nng_msg_len(bt->calls[i]->request);
		*p++ = 0x0a;
		p = put_varint(p, len);
		memcpy(p, nng_msg_body(bt->calls[i]->request), len);
		p += len;
	}
	*deadline = dl;
	return msg;
}

static void batch_done(cm_rpc_client *c, replica *r);

/* Sends bt on its replica (slot and hold taken). A batch that cannot even start fails each of
 * its calls as a call that could not be sent does. */
static void
batch_send(rpc_batch *bt)
{
	cm_rpc_client *c = bt->client;
	replica       *r = bt->rep;
	nng_msg       *msg;
	int64_t        deadline = 0, left;
	int            rv;

	for (size_t i = 0; i < bt->n; i++)
		bt->calls[i]->attempts++;
	if ((msg = batch_pack(bt, &deadline)) == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	if ((rv = nng_ctx_open(&bt->ctx, r->sock)) != 0) {
		nng_msg_free(msg);
		goto fail;
	}
	bt->ctx_open = true;
	bt->sending = true;
	pthread_mutex_lock(&r->mtx);
	bt->next = r->batches;
	if (r->batches != NULL)
		r->batches->prev = bt;
	r->batches = bt;
	pthread_mutex_unlock(&r->mtx);
	cm_counter_add(c->batcher->m_batches, 1);
	cm_counter_add(c->batcher->m_calls, bt->n);
	cm_counter_add(r->m_calls, bt->n); /* upstream_replica_calls_total: each call an attempt */
	left = deadline - cm_now_ms();
	nng_aio_set_timeout(bt->aio, (nng_duration)(left > 0 ? left : 1));
	nng_aio_set_msg(bt->aio, msg);
	nng_ctx_send(bt->ctx, bt->aio);
	return;
fail:
	batch_done(c, r);
	for (size_t i = 0; i < bt->n; i++)
		rpc_call_failed(bt->calls[i], r, rv, false);
	rpc_replica_rele(r);
	batch_free(bt, false);
}

bool
rpc_batch_submit(cm_rpc_client *c, rpc_call *call)
{
	rpc_batcher *b = c->batcher;
	rpc_batch   *bt;
	replica     *r = NULL;
	int64_t      delay = 0;
	bool         arm = false;

	if (atomic_load(&b->off_until_ms) > cm_mono_ms())
		return false;
	pthread_mutex_lock(&b->mtx);
	if (b->closing) {
		pthread_mutex_unlock(&b->mtx);
		return false;
	}
	if (b->head == NULL && (r = slot_locked(c, b)) != NULL) {
		pthread_mutex_unlock(&b->mtx);
		if ((bt = batch_new(c, r, 1)) == NULL) {
			pthread_mutex_lock(&b->mtx);
			unslot_locked(b, r);
			pthread_mutex_unlock(&b->mtx);
			rpc_replica_rele(r);
			return false;
		}
		bt->calls[bt->n++] = call;
		batch_send(bt);
		return true;
	}
	if (b->inflight == 0) {
		/* No replica at all: the caller's own path says so (CM_EUNAVAIL). */
		pthread_mutex_unlock(&b->mtx);
		return false;
	}
	call->qnext = NULL;
	if (b->tail != NULL)
		b->tail->qnext = call;
	else
		b->head = call;
	b->tail = call;
	if (!b->sweep_armed) {
		b->sweep_armed = arm = true;
		delay = call->deadline_ms - cm_now_ms();
	}
	pthread_mutex_unlock(&b->mtx);
	if (arm)
		nng_sleep_aio((nng_duration)(delay < 1              ? 1
		                             : delay > SWEEP_MAX_MS ? SWEEP_MAX_MS
		                                                    : delay),
		              b->sweep);
	return true;
}

/* A batch on r finished: its slot is free. The calls waiting leave in the next batches now (or
 * alone, when batching just turned off; or fail, when no replica is left). */
static void
batch_done(cm_rpc_client *c, replica *r)
{
	rpc_batcher *b = c->batcher;
	rpc_batch   *out = NULL, *bt;
	rpc_call    *expired = NULL, *alone = NULL, *unsent = NULL;

	pthread_mutex_lock(&b->mtx);
	unslot_locked(b, r);
	if (atomic_load(&b->off_until_ms) > cm_mono_ms())
		alone = take_all_locked(b);
	while (b->head != NULL && !b->closing) {
		replica *t = slot_locked(c, b);
		if (t == NULL) {
			if (b->inflight == 0)
				unsent = take_all_locked(b);
			break;
		}
		if ((bt = batch_new(c, t, b->max_calls)) == NULL) {
			unslot_locked(b, t);
			rpc_replica_rele(t);
			if (b->inflight == 0)
				unsent = take_all_locked(b);
			break;
		}
		take_locked(b, bt, &expired);
		if (bt->n == 0) { /* every one had expired */
			unslot_locked(b, t);
			rpc_replica_rele(t);
			batch_free(bt, false);
			continue;
		}
		bt->send_next = out;
		out = bt;
	}
	pthread_mutex_unlock(&b->mtx);

	while ((bt = out) != NULL) {
		out = bt->send_next;
		batch_send(bt);
	}
	end_all(expired, CM__STATUS__DEADLINE_EXCEEDED, "deadline passed while waiting to be sent");
	end_all(unsent, CM__STATUS__UNAVAILABLE, "no upstream replica is connected");
	while (alone != NULL) {
		rpc_call *next = alone->qnext;
		if (!rpc_call_send_alone(alone))
			rpc_call_end(alone, CM__STATUS__UNAVAILABLE,
			             "no upstream replica is connected");
		alone = next;
	}
}

/* ---- answers --------------------------------------------------------------------------------- */

static void
batch_detach(rpc_batch *bt)
{
	replica *r = bt->rep;

	pthread_mutex_lock(&r->mtx);
	if (bt->prev != NULL)
		bt->prev->next = bt->next;
	else
		r->batches = bt->next;
	if (bt->next != NULL)
		bt->next->prev = bt->prev;
	bt->prev = bt->next = NULL;
	pthread_mutex_unlock(&r->mtx);
	if (bt->ctx_open) {
		nng_ctx_close(bt->ctx);
		bt->ctx_open = false;
	}
}

void
rpc_batch_reap_locked(replica *r)
{
	for (rpc_batch *bt = r->batches; bt != NULL; bt = bt->next) {
		bt->cancelled_by_reaper = true;
		nng_aio_cancel(bt->aio);
	}
}

/* The server does not know batches: this upstream's calls go alone for a while. */
static void
batch_turn_off(cm_rpc_client *c, const rpc_batch *bt)
{
	int64_t now = cm_mono_ms();

	if (atomic_exchange(&c->batcher->off_until_ms, now + BATCH_OFF_MS) <= now)
		cm_warn("RPC-BATCH-OFF",
		        "%s replica %s does not take batches: calls go alone for %d s", c->name,
		        bt->rep->url, BATCH_OFF_MS / 1000);
}

static void
batch_cb(void *arg)
{
	rpc_batch      *bt = arg;
	cm_rpc_client  *c = bt->client;
	replica        *r = bt->rep;
	int             rv = nng_aio_result(bt->aio);
	nng_msg        *msg;
	Cm__Response   *rsp = NULL;
	Cm__BatchReply *reply = NULL;

	if (bt->sending && rv == 0) {
		bt->sending = false;
		nng_ctx_recv(bt->ctx, bt->aio);
		return;
	}
	if (rv != 0) {
		if (bt->sending && (msg = nng_aio_get_msg(bt->aio)) != NULL)
			nng_msg_free(msg);
	} else {
		msg = nng_aio_get_msg(bt->aio);
		rsp = cm__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
		nng_msg_free(msg);
		if (rsp != NULL && rsp->status == CM__STATUS__OK)
			reply = cm__batch_reply__unpack(NULL, rsp->payload.len, rsp->payload.data);
		else if (rsp != NULL && rsp->status == CM__STATUS__UNIMPLEMENTED)
			batch_turn_off(c, bt);
	}
	batch_detach(bt);
	/* The next batch leaves before these answers are handed out. */
	batch_done(c, r);

	for (size_t i = 0; i < bt->n; i++) {
		rpc_call *call = bt->calls[i];
		if (rv != 0) {
			rpc_call_failed(call, r, rv, bt->cancelled_by_reaper);
		} else if (rsp == NULL) {
			rpc_replica_failure(r);
			rpc_call_end(call, CM__STATUS__INTERNAL, "malformed response envelope");
		} else if (rsp->status == CM__STATUS__UNIMPLEMENTED) {
			if (!rpc_call_send_alone(call))
				rpc_call_end(call, CM__STATUS__UNAVAILABLE,
				             "no upstream replica is connected");
		} else if (rsp->status != CM__STATUS__OK) {
			rpc_call_answered(call, r, rsp); /* the batch's answer is each call's */
		} else if (reply == NULL || reply->n_replies != bt->n) {
			rpc_replica_failure(r);
			rpc_call_end(call, CM__STATUS__INTERNAL, "malformed batch reply");
		} else {
			rpc_call_answered(call, r, reply->replies[i]);
		}
	}
	if (reply != NULL)
		cm__batch_reply__free_unpacked(reply, NULL);
	if (rsp != NULL)
		cm__response__free_unpacked(rsp, NULL);
	rpc_replica_rele(r);
	batch_free(bt, true);
}

/* ---- waiting calls' deadlines -----------------------------------------------------------------
 */

static void
sweep_cb(void *arg)
{
	cm_rpc_client *c = arg;
	rpc_batcher   *b = c->batcher;
	rpc_call      *expired = NULL, **pp, *prev = NULL;
	int64_t        now = cm_now_ms(), next = INT64_MAX;
	bool           arm = false;

	pthread_mutex_lock(&b->mtx);
	b->sweep_armed = false;
	if (nng_aio_result(b->sweep) != 0) { /* stopped: the client is closing */
		pthread_mutex_unlock(&b->mtx);
		return;
	}
	for (pp = &b->head; *pp != NULL;) {
		rpc_call *call = *pp;
		if (call->deadline_ms <= now) {
			*pp = call->qnext;
			call->qnext = expired;
			expired = call;
			continue;
		}
		if (call->deadline_ms < next)
			next = call->deadline_ms;
		prev = call;
		pp = &call->qnext;
	}
	b->tail = prev;
	if (b->head != NULL && !b->closing)
		b->sweep_armed = arm = true;
	pthread_mutex_unlock(&b->mtx);
	end_all(expired, CM__STATUS__DEADLINE_EXCEEDED, "deadline passed while waiting to be sent");
	if (arm)
		nng_sleep_aio((nng_duration)(next - now < 1              ? 1
		                             : next - now > SWEEP_MAX_MS ? SWEEP_MAX_MS
		                                                         : next - now),
		              b->sweep);
}
