/*
 * wsconn.h - what the WebSocket hub (ws.c: adoption, subscriptions, events) and the socket loop
 * (wsloop.c: framing, limits, the fds) share. Private to those two files.
 *
 * THREADS. One loop thread owns every socket's fd, its wslay context and every field marked
 * "loop" below. Other threads (the HTTP engine's in edge_ws_adopt, nng's for pub/sub events and
 * RPC replies) reach a socket only through ws_enqueue*() and the fields under c->mu; queueing a
 * frame puts the socket on the hub's ready list and wakes the loop through an eventfd.
 *
 * LIFETIME. A socket is reference counted: one reference for the loop (from adoption to the
 * release of its fd), one per ready-list entry, one per ownership check in flight. Once the loop
 * is done with it, c->closed is set (under c->mu) and nothing queues or wakes through it any more,
 * so a late RPC reply touches only the socket, never the hub, which edge_ws_stop frees.
 *
 * Lock order: h->mu, then c->mu, then h->readymu.
 */
#ifndef EDGE_WSCONN_H
#define EDGE_WSCONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cm/pubsub.h"
#include "ws.h"

typedef struct ws_conn ws_conn;

/* A frame waiting in a socket's queue (the JSON text). */
typedef struct ws_frame {
	struct ws_frame *next;
	size_t           len;
	bool             progress; /* a job.progress frame: a slow reader may lose it */
	char             data[];
} ws_frame;

struct ws_conn {
	/* set at adoption, then read-only */
	edge_ws       *hub; /* only while !closed */
	edge          *e;
	edge_ws_socket s; /* extra is not kept: see in */
	char           user[64];
	bool           refused;
	uint16_t       refuse_close; /* close code after the refusal's error frame */
	atomic_int     refs;

	ws_conn *next; /* h->conns, under h->mu */

	ws_conn *ready_next; /* h->ready, under h->readymu */
	bool     ready;

	pthread_mutex_t mu;
	bool            closed;   /* the loop is done with it: queue nothing */
	bool            overflow; /* queued past the limits: the loop drops the socket */
	ws_frame       *qhead, *qtail;
	size_t          qn, qbytes;
	char            subs[EDGE_WS_MAX_SUBS][48];
	int             nsubs;

	/* loop */
	struct wslay_event_context *ws;
	char                       *in; /* the engine's extra bytes, read before the fd */
	size_t                      in_len, in_off;
	size_t                      rx_budget;     /* bytes this turn may still read from the fd */
	ws_conn                    *lnext, *lprev; /* the loop's live list, then its dead list */
	bool                        registered, finished, closing, close_queued;
	uint16_t                    close_code;
	const char                 *close_reason; /* a string literal */
	uint32_t                    events;
	int64_t                     last_rx_ms, last_ping_ms, close_by_ms;
	int64_t                     ping_window_ms;
	int                         pings;
	uint16_t                    policy_close; /* a limit hit inside wslay's callbacks */
};

struct edge_ws {
	edge          *e;
	edge_ws_limits lim;
	cm_sub        *subs[3]; /* svc-qgen's and svc-eval's job events, svc-chat's deltas */

	pthread_mutex_t mu;
	ws_conn        *conns; /* every adopted socket not yet finished */
	int             nconns;
	bool            stopping;

	pthread_mutex_t readymu;
	ws_conn        *ready;

	int        epfd, efd;
	pthread_t  thread;
	bool       running;
	atomic_int stop;

	ws_conn *live, *dead; /* loop: sockets it serves, sockets finished this turn */
};

/* ---- wsloop.c ---- */
/* Allocates a socket for s (extra copied, fd made non-blocking, wslay context made) with one
 * reference; NULL when out of memory (s is not released). */
ws_conn *ws_conn_alloc(edge_ws *h, const edge_ws_socket *s);
/* Drops a reference; the last frees the socket (its fd was released by the loop, or by
 * ws_conn_abandon). */
void ws_conn_release(ws_conn *c);
/* For a socket the loop never saw: releases its fd and its reference. */
void ws_conn_abandon(ws_conn *c);
/* Queues frame (malloc'd JSON text, taken over; NULL is ignored) and wakes the loop. A full queue
 * first gives up its oldest job.progress frame; past the limits the socket is marked overflow.
 * ws_enqueue_locked is for callers holding c->mu. */
void ws_enqueue(ws_conn *c, char *frame);
void ws_enqueue_locked(ws_conn *c, char *frame);
/* Puts c on the ready list (c->mu held): the loop registers a new socket, sends queued frames. */
void ws_wake_locked(ws_conn *c);
/* Starts and stops (drain, release every socket, join) the loop's thread. */
cm_err ws_loop_start(edge_ws *h);
void   ws_loop_stop(edge_ws *h);

/* ---- ws.c ---- */
/* A client's text message (on the loop's thread). */
void ws_on_message(ws_conn *c, const char *msg, size_t len);
/* Takes a finished socket out of the hub's list. */
void ws_hub_forget(edge_ws *h, ws_conn *c);

#endif
