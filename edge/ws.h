/*
 * ws.h - live events over WebSocket at GET /api/v1/ws, on the edge's own HTTP port (ws.c).
 *
 * A client authenticates at the upgrade (session cookie or ?access_token=), then sends
 * {"subscribe":"job:<id>"} for its own jobs (question sets: svc-qgen, attempts: svc-eval) or
 * {"subscribe":"chat:<id>"} for its own chats; the edge checks ownership with the service and
 * forwards the services' events (pub/sub) as {"type":"job.progress",...} / {"type":"job.done",
 * ...} / {"type":"chat.delta",...} / {"type":"chat.done",...} text frames, to the owner's sockets
 * only. Events are notifications: a job's snapshot is sent on subscribe, the truth stays in GET.
 *
 * The HTTP engine (server.c) checks the upgrade request and answers 101, then hands the raw
 * socket over (edge_ws_adopt); from there one event-loop thread (wsloop.c) frames it with wslay
 * and enforces the limits below.
 */
#ifndef EDGE_WS_H
#define EDGE_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "edge.h"

#define EDGE_WS_PATH "/api/v1/ws"
#define EDGE_WS_MAX_SUBS 64                 /* subscriptions per socket */
#define EDGE_WS_MAX_QUEUE 256               /* frames waiting to be sent per socket */
#define EDGE_WS_MAX_QUEUE_BYTES (256 << 10) /* bytes waiting to be sent per socket */
#define EDGE_WS_MAX_IN 4096                 /* bytes of one client message */
#define EDGE_WS_MAX_PER_USER 16             /* sockets per user */
#define EDGE_WS_MAX_SOCKETS 10000           /* sockets per edge */
#define EDGE_WS_IDLE_S 120                  /* silence before a socket is closed */
#define EDGE_WS_MAX_PINGS 10                /* client pings in one second */
#define EDGE_WS_CLOSE_GRACE_MS 2000         /* time to flush a close frame (and to drain) */

/* The limits of edge_ws_start_limits (edge_ws_start takes the defaults above). Every limit ends a
 * socket: a socket silent for idle_s (the edge pings every idle_s / 3, so a live client answers)
 * gets close 1001; more than pings_per_s pings in a second close 1008; a message longer than
 * max_in, close 1009; more than max_queue frames or max_queue_bytes bytes waiting to be sent
 * (the edge's frames and the pongs owed) mean the client is not reading: the socket is dropped
 * without a close frame, which could not be sent anyway. Before that, a slow reader loses its
 * oldest job.progress frames, never a job.done or a chat frame. A closing socket that cannot
 * flush its close frame within close_grace_ms is dropped; edge_ws_stop waits as long. */
typedef struct edge_ws_limits {
	int    idle_s;
	int    pings_per_s;
	size_t max_in;
	size_t max_queue;
	size_t max_queue_bytes;
	int    max_per_user;
	int    max_sockets;
	int    close_grace_ms;
} edge_ws_limits;

/* An upgraded connection handed over by the HTTP engine (server.c answered 101 Switching
 * Protocols). fd is the socket (do not close it: call release(handle) once, when done with it);
 * extra holds bytes the engine read past the handshake (the first frames, maybe). */
typedef struct edge_ws_socket {
	int         fd;
	const char *extra;
	size_t      extra_len;
	void       *handle;
	void (*release)(void *handle);
} edge_ws_socket;

/* Takes over s for user (the authenticated subject). When refuse_code is not NULL (or user is
 * NULL or empty: "UNAUTHENTICATED") the socket gets one error frame
 * {"type":"error","code":refuse_code,"message":refuse_msg} and a close (1008). Above
 * max_per_user or max_sockets sockets, the same with RESOURCE_EXHAUSTED. Never blocks; any
 * thread; s->extra is copied and the fd made non-blocking. Once the socket is done,
 * s->release(s->handle) runs exactly once, on the WebSocket loop's thread; when the hub is not
 * running (before edge_ws_start, after edge_ws_stop) it runs before this returns. */
void edge_ws_adopt(edge *e, const edge_ws_socket *s, const char *user, const char *refuse_code,
                   const char *refuse_msg);
/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2) into out (29 bytes with
 * the NUL); false when key is not a 16-byte base64 nonce. */
bool edge_ws_accept_key(const char *key, char out[29]);

/* Fills l with the defaults above. */
void edge_ws_limits_default(edge_ws_limits *l);
/* Starts the socket loop's thread and the event subscribers (EDGE_*_EVENTS_URLS; none when
 * empty) with the default limits. Opens no listener: the HTTP engine hands sockets over through
 * edge_ws_adopt. */
CM_MUSTCHECK cm_err edge_ws_start(edge *e);
/* edge_ws_start with limits l (copied). CM_EINVAL unless every limit is positive, max_queue >= 4
 * and max_queue_bytes >= 4 * EDGE_WS_MAX_IN (a quarter of each may wait in wslay's queue). */
CM_MUSTCHECK cm_err edge_ws_start_limits(edge *e, const edge_ws_limits *l);
/* Drains: closes the subscribers, sends close 1001 to every socket, waits up to close_grace_ms
 * for the close frames to leave, releases every socket, ends the loop, frees the hub. The HTTP
 * engine must have stopped calling edge_ws_adopt before (a late call must not race with this). */
void edge_ws_stop(edge *e);

/* ---- pure parts, exposed for tests ------------------------------------------------------------
 */

/* Parses a client message: *resource receives "job:<uuid>" or "chat:<uuid>" (copied into buf).
 * false with a reason when the message is not a valid subscription. */
bool edge_ws_parse_subscribe(const char *msg, size_t len, char *resource, size_t reslen,
                             const char **why);
/* The JSON frame of a job event (malloc'd), NULL on a type it does not know. */
char *edge_ws_event_json(const char *type, const char *job_id, int done, int total,
                         const char *status);
/* The JSON frame of a chat event ("chat.delta" with delta, "chat.done" with status; malloc'd),
 * NULL on a type it does not know. */
char *edge_ws_chat_json(const char *type, const char *chat_id, const char *message_id,
                        const char *delta, const char *status);
/* The access token from a request URI's ?access_token= (decoded by edge_query_get into out),
 * false when absent, empty, or longer than outlen - 1. */
bool edge_ws_query_token(const char *uri, char *out, size_t outlen);

#endif
