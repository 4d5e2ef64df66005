/*
 * ws.h - live events over WebSocket at GET /api/v1/ws, on the edge's own HTTP port (ws.c).
 *
 * A client authenticates at the upgrade (session cookie or ?access_token=), then sends
 * {"subscribe":"job:<id>"} for its own jobs (question sets: svc-qgen, attempts: svc-eval) or
 * {"subscribe":"chat:<id>"} for its own chats; the edge checks ownership with the service and
 * forwards the services' events (pub/sub) as {"type":"job.progress",...} / {"type":"job.done",
 * ...} / {"type":"chat.delta",...} / {"type":"chat.done",...} text frames, to the owner's sockets
 * only. Events are notifications: a job's snapshot is sent on subscribe, the truth stays in GET.
 */
#ifndef EDGE_WS_H
#define EDGE_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "edge.h"

#define EDGE_WS_PATH "/api/v1/ws"
#define EDGE_WS_MAX_SUBS 64       /* subscriptions per socket */
#define EDGE_WS_MAX_QUEUE 256     /* frames waiting to be sent per socket */
#define EDGE_WS_MAX_IN 4096       /* bytes of one client message */
#define EDGE_WS_MAX_PER_USER 16   /* sockets per user */
#define EDGE_WS_MAX_SOCKETS 10000 /* sockets per edge */

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

/* Takes over s for user (the authenticated subject). When refuse_code is not NULL the socket gets
 * one error frame {"type":"error","code":refuse_code,"message":refuse_msg} and a close. Never
 * blocks; s->extra is copied. */
void edge_ws_adopt(edge *e, const edge_ws_socket *s, const char *user, const char *refuse_code,
                   const char *refuse_msg);
/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2) into out (29 bytes with
 * the NUL); false when key is not a 16-byte base64 nonce. */
bool edge_ws_accept_key(const char *key, char out[29]);

/* Starts the listener (after edge_start: it shares the HTTP server) and the event subscriber
 * (when EDGE_QGEN_EVENTS_URLS is set). */
CM_MUSTCHECK cm_err edge_ws_start(edge *e);
/* Closes every socket and the subscriber; before the HTTP server stops. */
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
