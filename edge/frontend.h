/*
 * frontend.h - the legacy web frontend's own HTTP server behind the edge.
 *
 * The frontend never sends Authorization and axios sends no cross-origin cookies, so the app must
 * be served from the API's origin: every path outside /api, /healthz, /readyz and /metrics is
 * passed to EDGE_FRONTEND_URL (a Next.js server, or any static server). Empty: 404.
 */
#ifndef EDGE_FRONTEND_H
#define EDGE_FRONTEND_H

#include <stdbool.h>

#include "edge.h"

typedef struct edge_frontend edge_frontend;

/* NULL url or "" disables the frontend. */
CM_MUSTCHECK cm_err edge_frontend_open(edge_frontend **out, const char *url);
void                edge_frontend_close(edge_frontend *f);

/* Proxies the request (GET/HEAD/POST... with a body already read) and answers. Consumes r. */
void edge_frontend_proxy(edge_req *r);

#endif
