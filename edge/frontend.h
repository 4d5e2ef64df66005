/*
 * frontend.h - the web frontend's own HTTP server behind the edge.
 *
 * The frontend never sends Authorization and axios sends no cross-origin cookies, so the app must
 * be served from the API's origin: every path outside /api, /healthz, /readyz and /metrics is
 * passed to EDGE_FRONTEND_URL (a Next.js server, or any static server). Empty: 404. The proxy is
 * the edge's HTTP upstream proxy (httpproxy.h), shared with the old backend (migrate.h).
 */
#ifndef EDGE_FRONTEND_H
#define EDGE_FRONTEND_H

#include "edge.h"

/* The frontend route's start: proxies the request (its body already read) to e->frontend_up, or
 * answers 404 when there is no frontend. Consumes r. */
void edge_frontend_proxy(edge_req *r);

#endif
