/*
 * httpproxy.h - the edge's HTTP upstreams: the web app's own server (frontend.h) and the old
 * backend that legacy routes migrate away from (migrate.h), behind one pooled reverse proxy.
 *
 * One proxy, an HTTP/1.1 client of the edge's own, serves every HTTP upstream, run on the edge's
 * event loops (loop.h): each loop has a lane of its own (up to HTTPPROXY_MAX_CONNS kept-alive
 * connections kept idle for each upstream, its answers parsed by httpresp.h), so a request is
 * proxied on the thread that parsed it. Every end-to-end header crosses
 * both ways (proxyhdr.h), with X-Forwarded-For/-Proto/-Host and X-Request-Id added; redirects an
 * upstream aims at itself come back on the origin the browser used. An answer of at most 64 KiB
 * by its Content-Length is collected and answered whole with the edge's framing, request id and
 * access log line (502 when the upstream fails, 504 when it is too slow); a larger or unframed
 * one is streamed to the client as it comes (its head first; a failure after it cuts the
 * client's connection).
 *
 * Lifecycle: open, add every upstream, start (naming the edge whose loops run it), then forward
 * from any thread; the lanes stop with the loops (edge_loops_stop), then close. Upstreams are
 * immutable once added and live until close.
 */
#ifndef EDGE_HTTPPROXY_H
#define EDGE_HTTPPROXY_H

#include <stdbool.h>

#include "edge.h"

#define HTTPPROXY_MAX_CONNS 64      /* kept-alive connections to each upstream, per loop */
#define HTTPPROXY_TIMEOUT_MS 30000  /* EDGE_PROXY_TIMEOUT_MS's default */
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
/* Lets requests through, on e's loops (lanes are made by each loop as it first needs one). Call
 * before any request can arrive; until then forwarding answers 503. */
CM_MUSTCHECK cm_err edge_httpproxy_start(edge_httpproxy *p, edge *e);
/* Frees the proxy once the loops have stopped (their lanes answer what was still in flight with
 * 503, the edge is stopping). NULL: no-op. */
void edge_httpproxy_close(edge_httpproxy *p);

/* Proxies the request (its body already read) to up and answers it from a loop: the calling
 * loop's own thread, or (called from elsewhere) one it is posted to. Consumes r. */
void edge_httpup_forward(edge_req *r, edge_httpup *up);

#endif
