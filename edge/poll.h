/*
 * poll.h - a legacy route waiting for slow work without blocking a thread.
 *
 * The legacy routes (generate-questions, evaluate-quiz, evaluate-answer) must answer only when
 * the work is done, but the edge never blocks: such a route starts the work, then polls its state
 * with a cheap RPC on a timer aio until the work ends or the wait runs out. Polling keeps the
 * edge stateless (any edge replica, any service replica) and survives lost pub/sub events.
 *
 * Use: edge_poll_start(r, wait_ms, step, arg) from a reply adapter; `step` runs at once and then
 * after each edge_poll_again(); it issues one call with edge_poll_call(), whose `done` either
 * calls edge_poll_again() (not finished; a replica restarting between polls is not a failure),
 * or ends the exchange with edge_poll_fail() or edge_poll_end() + edge_respond(). Past wait_ms,
 * edge_poll_again() answers DEADLINE_EXCEEDED with the message given at start.
 */
#ifndef EDGE_POLL_H
#define EDGE_POLL_H

#include "edge.h"

#define EDGE_POLL_MS 200 /* between two polls of one waiting request */

typedef struct edge_poll edge_poll;
typedef void (*edge_poll_step_fn)(edge_poll *p, void *arg);

/* Starts waiting for r (allocated in r's arena); step runs at once. On failure to start, answers
 * 500 (r is consumed) and returns NULL. `too_long` is the message after wait_ms. */
edge_poll *edge_poll_start(edge_req *r, int64_t wait_ms, const char *too_long,
                           edge_poll_step_fn step, void *arg);
/* The request being answered. */
edge_req *edge_poll_req(edge_poll *p);
/* Runs the step again after EDGE_POLL_MS (or answers DEADLINE_EXCEEDED past the wait). */
void edge_poll_again(edge_poll *p);
/* One idempotent call to upstream for the waiting request; done runs on an nng thread (it gets
 * a synthesized UNAVAILABLE when no replica could be asked). */
void edge_poll_call(edge_poll *p, edge_upstream_id up, const char *method,
                    const ProtobufCMessage *msg, cm_rpc_done_fn done);
/* Stops the timer: call before answering (edge_respond) from a done callback. */
void edge_poll_end(edge_poll *p);
/* edge_poll_end + edge_fail. */
void edge_poll_fail(edge_poll *p, int rpc_status, const char *message);
/* Whether a poll result says "ask again later": the service is restarting or slow. */
bool edge_poll_transient(const cm_rpc_result *res);

#endif
