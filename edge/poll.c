/*
 * poll.c - legacy routes waiting for slow work on a timer aio (poll.h).
 *
 * DESIGN. One timer aio per waiting request, reaped (never freed from its own callback) when the
 * exchange ends. The timer's callback runs on an nng thread and only starts the next RPC, so no
 * thread ever waits; an edge that stops cancels the timers, and each waiting request is answered
 * 503 "shutting down".
 */
#include <string.h>

#include <nng/nng.h>

#include "cm/util.h"
#include "poll.h"
#include "proto/common.pb-c.h"

struct edge_poll {
	edge_req         *r;
	nng_aio          *timer;
	int64_t           give_up_ms; /* monotonic */
	const char       *too_long;
	edge_poll_step_fn step;
	void             *arg;
};

static void
timer_fired(void *arg)
{
	edge_poll *p = arg;

	if (nng_aio_result(p->timer) != 0) { /* the edge is stopping */
		edge_poll_fail(p, CM__STATUS__UNAVAILABLE, "the server is shutting down");
		return;
	}
	p->step(p, p->arg);
}

edge_poll *
edge_poll_start(edge_req *r, int64_t wait_ms, const char *too_long, edge_poll_step_fn step,
                void *arg)
{
	edge_poll *p = cm_arena_alloc(&r->arena, sizeof(*p));

	if (p == NULL || nng_aio_alloc(&p->timer, timer_fired, p) != 0) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return NULL;
	}
	p->r = r;
	p->give_up_ms = cm_mono_ms() + wait_ms;
	p->too_long = too_long;
	p->step = step;
	p->arg = arg;
	step(p, arg);
	return p;
}

edge_req *
edge_poll_req(edge_poll *p)
{
	return p->r;
}

void
edge_poll_again(edge_poll *p)
{
	if (cm_mono_ms() >= p->give_up_ms) {
		edge_poll_fail(p, CM__STATUS__DEADLINE_EXCEEDED, p->too_long);
		return;
	}
	nng_sleep_aio(EDGE_POLL_MS, p->timer);
}

void
edge_poll_call(edge_poll *p, edge_upstream_id up, const char *method, const ProtobufCMessage *msg,
               cm_rpc_done_fn done)
{
	edge_req        *r = p->r;
	size_t           n = protobuf_c_message_get_packed_size(msg);
	uint8_t         *buf = cm_arena_alloc(&r->arena, n + 1);
	cm_rpc_call_opts o;
	cm_rpc_result    res;

	if (buf == NULL) {
		edge_poll_fail(p, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	edge_req_opts(r, method, true, &o);
	if (r->e->up[up] == NULL || cm_rpc_call_async(r->e->up[up], &o, buf, n, done, p) != CM_OK) {
		memset(&res, 0, sizeof(res));
		res.status = CM__STATUS__UNAVAILABLE;
		cm_strlcpy(res.message, "service temporarily unavailable", sizeof(res.message));
		done(p, &res);
	}
}

void
edge_poll_end(edge_poll *p)
{
	if (p->timer != NULL)
		nng_aio_reap(p->timer);
	p->timer = NULL;
}

void
edge_poll_fail(edge_poll *p, int rpc_status, const char *message)
{
	edge_req *r = p->r;

	edge_poll_end(p);
	edge_fail(r, rpc_status, message);
}

bool
edge_poll_transient(const cm_rpc_result *res)
{
	return res->status == CM__STATUS__UNAVAILABLE ||
	       res->status == CM__STATUS__DEADLINE_EXCEEDED;
}
