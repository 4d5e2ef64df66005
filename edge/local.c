/*
 * local.c - health, readiness, metrics and the OpenAPI document, answered without an upstream.
 *
 * Readiness reads only in-memory state (live connections per upstream, the draining flag), so it
 * is cheap enough to answer on nng's thread.
 */
#include <stdio.h>
#include <string.h>

#include "cm/metrics.h"
#include "local.h"
#include "openapi.h"

static const char *const up_names[EDGE_UP_COUNT] = {"", "auth", "pdf", "qgen", "eval", "chat"};

const char *
edge_upstream_name(edge_upstream_id id)
{
	return id < EDGE_UP_COUNT ? up_names[id] : "";
}

bool
edge_ready(edge *e, char *why, size_t whylen)
{
	if (atomic_load(&e->draining)) {
		snprintf(why, whylen, "draining");
		return false;
	}
	for (int i = 1; i < EDGE_UP_COUNT; i++) {
		if (e->up[i] != NULL && cm_rpc_client_healthy(e->up[i]) == 0) {
			snprintf(why, whylen, "no healthy %s replica", up_names[i]);
			return false;
		}
	}
	snprintf(why, whylen, "ok");
	return true;
}

static void
text(edge_req *r, uint16_t status, const char *ctype, const char *body)
{
	r->status = status;
	r->content_type = ctype;
	if (cm_buf_appends(&r->out, body) != CM_OK)
		cm_buf_reset(&r->out);
	edge_respond(r);
}

bool
edge_local_handle(edge_req *r)
{
	char why[128], body[200];

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return false;
	if (strcmp(r->path, "/healthz") == 0) {
		text(r, 200, "application/json", "{\"status\":\"ok\"}");
		return true;
	}
	if (strcmp(r->path, "/readyz") == 0) {
		bool ok = edge_ready(r->e, why, sizeof(why));
		snprintf(body, sizeof(body), "{\"status\":\"%s\",\"reason\":\"%s\"}",
		         ok ? "ok" : "unavailable", why);
		text(r, ok ? 200 : 503, "application/json", body);
		return true;
	}
	if (strcmp(r->path, "/metrics") == 0) {
		r->status = 200;
		r->content_type = "text/plain; version=0.0.4";
		cm_gauge_set(cm_metrics_gauge(r->e->metrics, "http_inflight_requests",
		                              "HTTP requests being handled", ""),
		             atomic_load(&r->e->inflight));
		cm_gauge_set(cm_metrics_gauge(r->e->metrics, "request_body_bytes",
		                              "Request-body bytes held now (EDGE_BODY_BUDGET)", ""),
		             (int64_t)atomic_load(&r->e->body_bytes));
		if (cm_metrics_render(r->e->metrics, &r->out) != CM_OK)
			cm_buf_reset(&r->out);
		edge_respond(r);
		return true;
	}
	if (strcmp(r->path, "/api/v1/openapi.json") == 0) {
		text(r, 200, "application/json", edge_openapi_json);
		return true;
	}
	return false;
}
