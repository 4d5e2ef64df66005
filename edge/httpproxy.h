/*
 * httpproxy.h - the edge's HTTP upstreams: the web app's own server (frontend.h) and the old
 * backend that legacy routes migrate away from (migrate.h), behind one pooled reverse proxy.
 *
 * One proxy on libcurl's multi interface, run by one thread of its own, serves every HTTP
 * upstream: requests are handed to it through a locked queue, and its connection cache keeps up
 * to HTTPPROXY_MAX_CONNS kept-alive connections to each upstream. Every end-to-end header crosses
 * both ways (proxyhdr.h), with X-Forwarded-For/-Proto/-Host and X-Request-Id added; redirects an
 * upstream aims at itself come back on the origin the browser used. The response body is
 * collected (up to r->out's cap) and answered with the edge's framing, request id and access log
 * line; 502 when the upstream fails, 504 when it is too slow.
 *
 * Lifecycle: open, add every upstream, start (the thread), then forward from any thread; close
 * stops the thread. Upstreams are immutable once added and live until close.
 */
#ifndef EDGE_HTTPPROXY_H
#define EDGE_HTTPPROXY_H

#include <stdbool.h>

#include "edge.h"

#define HTTPPROXY_MAX_CONNS 32      /* kept-alive connections to each upstream */
#define HTTPPROXY_TIMEOUT_MS 30000  /* a whole exchange with an upstream */
#define HTTPPROXY_CONNECT_MS 2000   /* connecting to it */
#define HTTPPROXY_HEADERS_MAX 65536 /* bytes of one response's headers */
#define HTTPPROXY_UPSTREAMS_MAX 4

/* The upstream learns who the caller is from the edge alone: X-User-Id carries the authenticated
 * user (absent for anonymous requests); the client's Authorization and Cookie headers stay at the
 * edge (the token is the edge's business), and the upstream's Set-Cookie never reaches the
 * browser (the session cookie is the edge's). For the old backend, which keyed users by what it
 * was told. */
#define EDGE_HTTPUP_IDENTITY 0x01u

typedef struct edge_httpproxy edge_httpproxy;
typedef struct edge_httpup    edge_httpup;

CM_MUSTCHECK cm_err edge_httpproxy_open(edge_httpproxy **out);
/* Adds an upstream before start: url is http://host[:port] (a path other than "/" is refused:
 * the request's path is sent as is). name labels logs and the access log's "upstream"; what
 * names it in error messages ("the frontend server"). Strings must outlive p. CM_EINVAL for a bad
 * url, CM_EEXIST when HTTPPROXY_UPSTREAMS_MAX are there. */
CM_MUSTCHECK cm_err edge_httpproxy_add(edge_httpproxy *p, const char *name, const char *what,
                                       const char *url, unsigned flags, edge_httpup **out);
/* Starts the proxy thread. Call before any request can arrive. */
CM_MUSTCHECK cm_err edge_httpproxy_start(edge_httpproxy *p);
/* Stops the thread; requests still in flight are answered 503 (the edge is stopping). NULL: no-op.
 */
void edge_httpproxy_close(edge_httpproxy *p);

/* Proxies the request (its body already read) to up and answers from the proxy thread. Callable
 * from any thread. Consumes r. */
void edge_httpup_forward(edge_req *r, edge_httpup *up);

#endif
