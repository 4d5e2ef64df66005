/*
 * local.h - requests the edge answers itself: /healthz, /readyz, /metrics, /api/v1/openapi.json.
 */
#ifndef EDGE_LOCAL_H
#define EDGE_LOCAL_H

#include <stdbool.h>

#include "edge.h"

/* Answers (and consumes r) when the path is a local one; false otherwise. */
bool edge_local_handle(edge_req *r);

/* The readiness verdict: every upstream has a healthy replica and we are not draining. */
bool edge_ready(edge *e, char *why, size_t whylen);

#endif
