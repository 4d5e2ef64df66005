/*
 * frontend.h - the web frontend's own HTTP server behind the edge.
 *
 * The frontend never sends Authorization and axios sends no cross-origin cookies, so the app must
 * be served from the API's origin: every path outside /api, /healthz, /readyz and /metrics is
 * passed to EDGE_FRONTEND_URL (a Next.js server, or any static server). Empty: 404.
 *
 * A reverse proxy on libcurl's multi interface, run by one thread of its own: requests are handed
 * to it through a locked queue, and its connection cache keeps up to FRONTEND_MAX_CONNS kept-alive
 * connections to the app's server. Every end-to-end header crosses both ways (proxyhdr.h), with
 * X-Forwarded-For/-Proto/-Host and X-Request-Id added; redirects the app aims at itself come back
 * on the origin the browser used. The response body is collected (up to r->out's cap) and answered
 * with the edge's framing, request id and access log line; 502 when the app's server fails, 504
 * when it is too slow.
 */
#ifndef EDGE_FRONTEND_H
#define EDGE_FRONTEND_H

#include <stdbool.h>

#include "edge.h"

#define FRONTEND_MAX_CONNS 32      /* kept-alive connections to the app's server */
#define FRONTEND_TIMEOUT_MS 30000  /* a whole exchange with the app's server */
#define FRONTEND_CONNECT_MS 2000   /* connecting to it */
#define FRONTEND_HEADERS_MAX 65536 /* bytes of one response's headers */

typedef struct edge_frontend edge_frontend;

/* NULL url or "" disables the frontend (CM_OK, *out NULL). CM_EINVAL for a url that is not
 * http://host[:port][/prefix]. Starts the proxy thread. Call before any request can arrive. */
CM_MUSTCHECK cm_err edge_frontend_open(edge_frontend **out, const char *url);
/* Stops the thread; requests still in flight are answered 503 (the edge is stopping). */
void edge_frontend_close(edge_frontend *f);

/* Proxies the request (its body already read) and answers from the proxy thread. Consumes r. */
void edge_frontend_proxy(edge_req *r);

#endif
