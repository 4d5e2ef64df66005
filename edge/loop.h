/*
 * loop.h - the edge's event loops: one thread per core, each running its own libmicrohttpd daemon
 * and whatever else wants that thread's epoll (the HTTP proxy's upstream sockets, httpproxy.h).
 *
 * Why not libmicrohttpd's own thread pool: its epoll sets cannot take other sockets, so the proxy
 * once ran its HTTP client (libcurl then) on a thread of its own, and every proxied request crossed
 * two threads (a wake-up and a context switch each way: measured, a quarter of the proxy's CPU).
 * Here a request proxied from a loop's handler is sent, answered and resumed on that same thread.
 *
 * The daemons share one listening socket (whichever loop accepts first serves the connection);
 * the global connection cap is split between them as libmicrohttpd splits it between its own
 * workers, and the per-address cap is counted across all of them (edge_loops_open).
 *
 * Threading: edge_loop_self is the loop of the calling thread (NULL off the loops). Watching fds
 * and the timer belong to the loop's own thread; edge_loop_post may be called from any thread.
 */
#ifndef EDGE_LOOP_H
#define EDGE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "edge.h"

struct sockaddr;
struct MHD_OptionItem;

typedef struct edge_loop edge_loop;

/* A watched fd's callback, with epoll's event bits. */
typedef void (*edge_loop_fn)(void *arg, uint32_t events);

/* What a loop keeps of a watched fd; the watcher owns it (it must outlive the watch). */
typedef struct edge_loop_watch {
	edge_loop_fn fn;
	void        *arg;
	int          fd;
} edge_loop_watch;

/* Starts `threads` loops listening on addr (NULL: listening nowhere, sockets come through
 * edge_loop_add_socket), their daemons built with flags (external epoll: no thread flag), the
 * request handler (an MHD_AccessHandlerCallback, called with e) and options (an MHD_OPTION_ARRAY
 * list; the loops add the listening socket, their share of connection_max and the per-address
 * check). per_addr_max > 0 caps one client address's sockets across every loop (two loops accepting
 * from one address at the same instant may each let one through). CM_EEXIST when the address cannot
 * be bound. */
CM_MUSTCHECK cm_err edge_loops_start(edge *e, unsigned threads, const struct sockaddr *addr,
                                     unsigned flags, void *handler,
                                     const struct MHD_OptionItem *options, unsigned connection_max,
                                     unsigned per_addr_max);
/* Serves a connected socket on the first loop (the fuzzer), as if from 127.0.0.1. */
CM_MUSTCHECK cm_err edge_loop_add_socket(edge *e, int fd);
/* Stops every loop's daemon from accepting (drain). */
void edge_loops_quiesce(edge *e);
/* Stops and joins the loops, then their daemons. Requests still running must be done. */
void edge_loops_stop(edge *e);
/* Number of loops, and loop i's daemon. */
int                edge_loops_count(const edge *e);
struct MHD_Daemon *edge_loop_daemon(edge *e, int i);

/* The calling thread's loop, NULL when it is not one. */
edge_loop *edge_loop_self(void);
/* Some loop, round robin (for work arriving on other threads). NULL when none runs. */
edge_loop *edge_loop_pick(edge *e);
/* Makes l run its daemon on its next turn: after a connection of l's was resumed or an upgraded
 * socket released (in external polling, libmicrohttpd notices neither by itself). Any thread. */
void edge_loop_daemon_due(edge_loop *l);
/* Runs fn(arg) on l's thread soon. False without memory. */
CM_MUSTCHECK bool edge_loop_post(edge_loop *l, void (*fn)(void *arg), void *arg);
/* Watches (or re-watches with other events) w->fd for events (EPOLLIN/EPOLLOUT). Loop thread. */
CM_MUSTCHECK bool edge_loop_watch_set(edge_loop *l, edge_loop_watch *w, uint32_t events);
void              edge_loop_watch_clear(edge_loop *l, edge_loop_watch *w);
/* The loop's one timer slot (the proxy's): fn(arg) at due_ms (cm_mono_ms), -1 = none. */
void edge_loop_timer_set(edge_loop *l, int64_t due_ms, void (*fn)(void *arg), void *arg);
/* A per-loop slot for one component's state (the proxy's lane) and its cleanup, run on the loop's
 * thread as it stops. */
void *edge_loop_slot(edge_loop *l);
void  edge_loop_slot_set(edge_loop *l, void *v, void (*cleanup)(void *v));

#endif
