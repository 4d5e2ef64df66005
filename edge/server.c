/*
 * server.c - the edge's HTTP exchange: one nng tree handler, staged asynchronous processing.
 *
 * DESIGN. nng's HTTP server parses requests and calls http_cb on its own threads; everything here
 * must return quickly, so each stage either finishes the exchange or starts an asynchronous step
 * (reading the body with nng_http_conn_read_all, an RPC with cm_rpc_call_async) whose callback
 * runs the next stage. nng only collects bodies itself up to a fixed size and answers 400 past it,
 * so the handler is registered without body collection: we check Content-Length against the
 * route's own limit (413, and the connection is closed since the body stays unread) and read
 * exactly that many bytes ourselves. Chunked bodies are refused with 411.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "errmap.h"
#include "edge.h"
#include <nng/supplemental/util/platform.h>
#include "local.h"
#include "pbjson.h"
#include "query.h"
#include "ratelimit.h"
#include "frontend.h"
#include "refresh.h"
#include "proto/common.pb-c.h"

#define DRAIN_QUIET_MS 500

/* Every path outside the API goes to the frontend's server (frontend.h). */
static const edge_route frontend_route = {.method = "*",
                                          .pattern = "/",
                                          .flags = 0,
                                          .upstream = EDGE_UP_NONE,
                                          .start = edge_frontend_proxy,
                                          .name = "frontend"};

static void stage_auth(edge_req *r);
static void stage_authed(edge_req *r);
static void stage_body(edge_req *r);
static void stage_route(edge_req *r);

/* ---- response ------------------------------------------------------------------------------ */

static void
access_log(edge_req *r, uint16_t status, size_t bytes, double secs)
{
	cm_buf line;
	char   ts[32];

	cm_buf_init(&line, 4096);
	cm_format_time_ms(cm_now_ms(), ts);
	if (cm_buf_printf(&line, "{\"ts\":\"%s\",\"type\":\"access\",\"rid\":\"", ts) == CM_OK &&
	    cm_buf_append_json_str(&line, r->request_id) == CM_OK &&
	    cm_buf_appends(&line, "\",\"method\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->method) == CM_OK &&
	    cm_buf_appends(&line, "\",\"path\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->path) == CM_OK &&
	    cm_buf_printf(&line, "\",\"status\":%u,\"bytes\":%zu,\"dur_ms\":%.3f,\"route\":\"%s\"",
	                  status, bytes, secs * 1000.0,
	                  r->route != NULL ? r->route->name : "-") == CM_OK &&
	    cm_buf_printf(&line, ",\"upstream\":\"%s\",\"user\":\"",
	                  r->upstream_name != NULL ? r->upstream_name : "") == CM_OK &&
	    cm_buf_append_json_str(&line, r->authed ? r->claims.sub : "") == CM_OK &&
	    cm_buf_appends(&line, "\"}") == CM_OK)
		cm_log_raw_json(line.data, line.len);
	cm_buf_fini(&line);
}

static void
req_free(edge_req *r)
{
	if (r->body_aio != NULL)
		nng_aio_reap(r->body_aio);
	cm_buf_fini(&r->body);
	cm_buf_fini(&r->out);
	cm_arena_fini(&r->arena);
	free(r->set_cookie);
	free(r->cookie_access);
	free(r->cookie_refresh);
	free(r->bearer);
	free(r);
}

static void
observe(edge_req *r, uint16_t status, double secs)
{
	char labels[160];

	snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%u\"",
	         r->route != NULL ? r->route->name : "none", status);
	cm_counter_add(cm_metrics_counter(r->e->metrics, "http_requests_total",
	                                  "HTTP requests answered, by route and status", labels),
	               1);
	snprintf(labels, sizeof(labels), "route=\"%s\"",
	         r->route != NULL ? r->route->name : "none");
	cm_histogram_observe(cm_metrics_histogram(r->e->metrics, "http_request_duration_seconds",
	                                          "HTTP request latency, by route", labels),
	                     secs);
}

void
edge_respond(edge_req *r)
{
	nng_http_res *res = NULL;
	edge         *e = r->e;
	uint16_t      status = r->status != 0 ? r->status : 200;
	double        secs;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(r->http_aio, rv);
		goto done;
	}
	nng_http_res_set_status(res, status);
	if (r->out.len > 0 || status != 204) {
		nng_http_res_set_header(res, "Content-Type",
		                        r->content_type != NULL ? r->content_type
		                                                : "application/json");
	}
	nng_http_res_set_header(res, "X-Request-Id", r->request_id);
	nng_http_res_set_header(res, "Cache-Control", "no-store");
	nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff");
	if (r->origin[0] != '\0') {
		nng_http_res_set_header(res, "Access-Control-Allow-Origin", r->origin);
		nng_http_res_set_header(res, "Access-Control-Allow-Credentials", "true");
		nng_http_res_set_header(res, "Access-Control-Expose-Headers",
		                        "X-Request-Id, Retry-After");
		nng_http_res_set_header(res, "Vary", "Origin");
	}
	if (r->set_cookie != NULL)
		nng_http_res_set_header(res, "Set-Cookie", r->set_cookie);
	if (r->retry_after[0] != '\0')
		nng_http_res_set_header(res, "Retry-After", r->retry_after);
	if (r->allow[0] != '\0')
		nng_http_res_set_header(res, "Allow", r->allow);
	if (status == 401 && !r->legacy)
		nng_http_res_set_header(res, "WWW-Authenticate", "Bearer");
	for (int i = 0; i < r->n_extra_headers; i++)
		nng_http_res_set_header(res, r->extra_headers[i][0], r->extra_headers[i][1]);
	if (r->close)
		nng_http_res_set_header(res, "Connection", "close");
	if (r->out.len > 0 && nng_http_res_copy_data(res, r->out.data, r->out.len) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(r->http_aio, NNG_ENOMEM);
		goto done;
	}
	nng_aio_set_output(r->http_aio, 0, res);
	nng_aio_finish(r->http_aio, 0);
done:
	secs = (double)(cm_mono_ns() - r->start_ns) / 1e9;
	observe(r, status, secs);
	access_log(r, status, r->out.len, secs);
	req_free(r);
	atomic_fetch_sub(&e->inflight, 1);
}

void
edge_fail_http(edge_req *r, uint16_t http, const char *code, const char *message)
{
	r->status = http;
	r->content_type = "application/json";
	cm_buf_reset(&r->out);
	if (edge_error_body(&r->out, r->legacy, code, message, r->request_id) != CM_OK)
		cm_buf_reset(&r->out);
	edge_respond(r);
}

void
edge_fail(edge_req *r, int rpc_status, const char *message)
{
	uint16_t http = edge_http_status(rpc_status);

	/* The legacy frontend expects 400 where v1 says 422 ("No PDF selected", unreadable file).
	 */
	if (r->legacy && rpc_status == CM__STATUS__FAILED_PRECONDITION)
		http = 400;
	edge_fail_http(r, http, cm_status_name(rpc_status), message);
}

bool
edge_add_header(edge_req *r, const char *name, const char *value)
{
	int n = r->n_extra_headers;

	if (n >= (int)(sizeof(r->extra_headers) / sizeof(r->extra_headers[0])))
		return false;
	r->extra_headers[n][0] = cm_arena_strndup(&r->arena, name, strlen(name));
	r->extra_headers[n][1] = cm_arena_strndup(&r->arena, value, strlen(value));
	if (r->extra_headers[n][0] == NULL || r->extra_headers[n][1] == NULL)
		return false;
	r->n_extra_headers++;
	return true;
}

void
edge_set_json(edge_req *r, uint16_t status, json_t *v)
{
	char *s;

	r->status = status;
	r->content_type = "application/json";
	cm_buf_reset(&r->out);
	/* Reals with 15 significant digits, the most a double holds exactly in decimal: a value
	 * meant as 66.7 (a percentage with one decimal) is written 66.7, not jansson's default
	 * 17-digit 66.700000000000003. */
	if (v != NULL && (s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15))) != NULL) {
		if (cm_buf_appends(&r->out, s) != CM_OK)
			cm_buf_reset(&r->out);
		free(s);
	}
	json_decref(v);
}

/* ---- RPC ----------------------------------------------------------------------------------- */

static void
rpc_done(void *arg, cm_rpc_result *res)
{
	edge_req *r = arg;

	if (res->status != CM__STATUS__OK) {
		if (res->retry_after_s > 0)
			snprintf(r->retry_after, sizeof(r->retry_after), "%d",
			         (int)res->retry_after_s);
		else if (res->status == CM__STATUS__RESOURCE_EXHAUSTED ||
		         res->status == CM__STATUS__UNAVAILABLE)
			cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
		if (res->status == CM__STATUS__UNAVAILABLE || res->status == CM__STATUS__INTERNAL ||
		    res->status == CM__STATUS__DEADLINE_EXCEEDED)
			cm_warn("EDGE-UPSTREAM-FAIL", "%s %s: %s", r->route->rpc,
			        cm_status_name(res->status), res->message);
	}
	if (r->route->reply != NULL)
		r->route->reply(r, res);
	else
		edge_reply_generic(r, res);
}

/* A call that could not even start is answered like a failed one: the route's reply adapter
 * decides what it means (the legacy logout, for one, never fails). */
static void
call_failed(edge_req *r, int status, const char *message)
{
	cm_rpc_result res;

	memset(&res, 0, sizeof(res));
	res.status = status;
	cm_strlcpy(res.message, message, sizeof(res.message));
	rpc_done(r, &res);
}

static void
call_payload(edge_req *r, const void *payload, size_t len)
{
	const edge_route *rt = r->route;
	cm_rpc_call_opts  o;
	cm_err            err;

	edge_req_opts(r, rt->rpc, (rt->flags & EDGE_R_IDEMPOTENT) != 0, &o);
	if ((rt->flags & EDGE_R_LONG) != 0)
		o.deadline_ms = cm_now_ms() + r->e->cfg.chat_timeout_ms;
	r->upstream_name = edge_upstream_name(rt->upstream);
	if (r->e->up[rt->upstream] == NULL) {
		call_failed(r, CM__STATUS__UNAVAILABLE, "this service is not configured");
		return;
	}
	err = cm_rpc_call_async(r->e->up[rt->upstream], &o, payload, len, rpc_done, r);
	if (err == CM_ETIMEDOUT) {
		call_failed(r, CM__STATUS__DEADLINE_EXCEEDED, "deadline exceeded");
	} else if (err != CM_OK) {
		cm_warn("EDGE-NO-UPSTREAM", "%s: no replica available", rt->rpc);
		call_failed(r, CM__STATUS__UNAVAILABLE, "service temporarily unavailable");
	}
}

void
edge_call(edge_req *r, const ProtobufCMessage *msg)
{
	size_t   n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	if ((buf = cm_arena_alloc(&r->arena, n + 1)) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	call_payload(r, buf, n);
}

ProtobufCMessage *
edge_reply_unpack(edge_req *r, cm_rpc_result *res, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m;

	if (res->status != CM__STATUS__OK) {
		edge_fail(r, res->status, res->message);
		return NULL;
	}
	if ((m = protobuf_c_message_unpack(d, NULL, res->payload_len, res->payload)) == NULL)
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
	return m;
}

void
edge_reply_generic(edge_req *r, cm_rpc_result *res)
{
	ProtobufCMessage *m;

	if (res->status == CM__STATUS__OK && r->route->ok_status == 204) {
		r->status = 204;
		edge_respond(r);
		return;
	}
	if ((m = edge_reply_unpack(r, res, r->route->resp_desc)) == NULL)
		return;
	edge_set_json(r, r->route->ok_status ? r->route->ok_status : 200, edge_pb_to_json(m));
	protobuf_c_message_free_unpacked(m, NULL);
	edge_respond(r);
}

json_t *
edge_body_json(edge_req *r)
{
	json_error_t jerr;
	json_t      *v;
	char         msg[200];

	if (r->body.len == 0)
		return json_object();
	v = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		snprintf(msg, sizeof(msg), "malformed JSON: %s", jerr.text);
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, msg);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, "request body must be a JSON object");
		return NULL;
	}
	return v;
}

ProtobufCMessage *
edge_body_pb(edge_req *r)
{
	json_t           *body;
	ProtobufCMessage *msg = NULL;
	char              why[200] = "";
	cm_err            err;

	if ((body = edge_body_json(r)) == NULL)
		return NULL;
	err = edge_json_to_pb(r->route->req_desc, body, &r->arena, &msg, why, sizeof(why));
	json_decref(body);
	if (err != CM_OK) {
		edge_fail(r, cm_err_to_status(err), why[0] != '\0' ? why : cm_strerror(err));
		return NULL;
	}
	return msg;
}

void
edge_start_generic(edge_req *r)
{
	ProtobufCMessage *msg;

	if ((msg = edge_body_pb(r)) != NULL)
		edge_call(r, msg);
}

/* ---- stages -------------------------------------------------------------------------------- */

static bool
origin_allowed(const edge *e, const char *origin)
{
	const char *p = e->cfg.cors_origins;
	size_t      n = strlen(origin);

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		if ((len == 1 && *p == '*') || (len == n && strncmp(p, origin, n) == 0))
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

static void
preflight(edge_req *r)
{
	nng_http_res *res;
	const char   *hdrs = nng_http_req_get_header(r->req, "Access-Control-Request-Headers");

	r->status = 204;
	if (r->origin[0] == '\0' || nng_http_res_alloc(&res) != 0) {
		edge_respond(r);
		return;
	}
	nng_http_res_set_status(res, 204);
	nng_http_res_set_header(res, "Access-Control-Allow-Origin", r->origin);
	nng_http_res_set_header(res, "Access-Control-Allow-Credentials", "true");
	nng_http_res_set_header(res, "Access-Control-Allow-Methods",
	                        "GET, POST, PUT, PATCH, DELETE, OPTIONS");
	nng_http_res_set_header(res, "Access-Control-Allow-Headers",
	                        hdrs != NULL && strlen(hdrs) < 512
	                            ? hdrs
	                            : "Authorization, Content-Type, X-Request-Id");
	nng_http_res_set_header(res, "Access-Control-Max-Age", "600");
	nng_http_res_set_header(res, "Vary", "Origin");
	nng_http_res_set_header(res, "X-Request-Id", r->request_id);
	nng_aio_set_output(r->http_aio, 0, res);
	nng_aio_finish(r->http_aio, 0);
	{
		edge *e = r->e;
		observe(r, 204, (double)(cm_mono_ns() - r->start_ns) / 1e9);
		access_log(r, 204, 0, (double)(cm_mono_ns() - r->start_ns) / 1e9);
		req_free(r);
		atomic_fetch_sub(&e->inflight, 1);
	}
}

static bool
valid_request_id(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (n >= CM_MAX_REQUEST_ID ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return n > 0;
}

static void
client_address(edge_req *r)
{
	const char *xff;
	size_t      n;

	r->client_addr[0] = '\0';
	if (!r->e->cfg.trust_proxy)
		return; /* nng 1.5.2's HTTP server does not expose the peer address */
	if ((xff = nng_http_req_get_header(r->req, "X-Forwarded-For")) == NULL)
		return;
	while (*xff == ' ')
		xff++;
	n = strcspn(xff, ", ");
	if (n == 0 || n >= sizeof(r->client_addr))
		return;
	memcpy(r->client_addr, xff, n);
	r->client_addr[n] = '\0';
}

static void
http_cb(nng_aio *aio)
{
	edge       *e = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	edge_req   *r;
	const char *uri, *rid, *origin, *q;
	bool        path_matched = false;
	size_t      n;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	atomic_fetch_add(&e->inflight, 1);
	r->e = e;
	r->http_aio = aio;
	r->req = nng_aio_get_input(aio, 0);
	r->conn = nng_aio_get_input(aio, 2);
	r->start_ns = cm_mono_ns();
	cm_buf_init(&r->body, 0);
	cm_buf_init(&r->out, 1u << 24);
	cm_arena_init(&r->arena);
	cm_strlcpy(r->method, nng_http_req_get_method(r->req), sizeof(r->method));

	if ((rid = nng_http_req_get_header(r->req, "X-Request-Id")) != NULL &&
	    valid_request_id(rid))
		cm_strlcpy(r->request_id, rid, sizeof(r->request_id));
	else
		cm_uuid_v4(r->request_id);

	uri = nng_http_req_get_uri(r->req);
	q = strchr(uri, '?');
	n = q != NULL ? (size_t)(q - uri) : strlen(uri);
	if (n >= sizeof(r->path) || (q != NULL && strlen(q + 1) >= sizeof(r->query_buf))) {
		cm_strlcpy(r->path, "(too long)", sizeof(r->path));
		r->legacy = false;
		edge_fail_http(r, 414, "INVALID_ARGUMENT", "request URI too long");
		return;
	}
	memcpy(r->path, uri, n);
	r->path[n] = '\0';
	memcpy(r->raw_path, r->path, n + 1);
	/* One trailing slash is not significant: the legacy frontend posts to both /api/chat and
	 * /api/chat/. */
	if (n > 1 && r->path[n - 1] == '/')
		r->path[n - 1] = '\0';
	cm_strlcpy(r->query_buf, q != NULL ? q + 1 : "", sizeof(r->query_buf));
	r->query = r->query_buf;
	r->legacy = strncmp(r->path, "/api/", 5) == 0 && strncmp(r->path, "/api/v1/", 8) != 0 &&
	            strcmp(r->path, "/api/v1") != 0;

	if ((origin = nng_http_req_get_header(r->req, "Origin")) != NULL &&
	    strlen(origin) < sizeof(r->origin) && origin_allowed(e, origin))
		cm_strlcpy(r->origin, origin, sizeof(r->origin));
	client_address(r);

	if (strcmp(r->method, "OPTIONS") == 0) {
		preflight(r);
		return;
	}
	if (edge_local_handle(r))
		return;

	r->route =
	    edge_route_match(r->method, r->path, r, &path_matched, r->allow, sizeof(r->allow));
	if (r->route == NULL && strcmp(r->path, "/api") != 0 && strncmp(r->path, "/api/", 5) != 0) {
		/* Not the API: the web app's own server answers (same origin, for the cookie). */
		r->route = &frontend_route;
	}
	if (r->route == NULL) {
		if (path_matched)
			edge_fail_http(r, 405, "UNIMPLEMENTED", "method not allowed");
		else
			edge_fail_http(r, 404, "NOT_FOUND",
			               r->legacy ? "Not Found" : "no such route");
		return;
	}
	/* While draining we still serve (the load balancer needs a moment to see /readyz fail),
	 * but close each connection so keep-alive clients move to another replica. */
	if (atomic_load(&e->draining))
		r->close = true;
	stage_auth(r);
}

static void
stage_auth(edge_req *r)
{
	const edge_route *rt = r->route;

	if (rt->flags & (EDGE_R_AUTH | EDGE_R_AUTH_OPT)) {
		edge_session_read(r);
		edge_session_verify(r);
		/* A browser session whose access token expired is renewed on the way (refresh.h).
		 */
		if (!r->authed && r->bearer == NULL && r->cookie_refresh != NULL &&
		    r->cookie_refresh[0] != '\0' && strcmp(rt->rpc, "auth.Logout") != 0) {
			edge_session_renew(r, stage_authed);
			return;
		}
	}
	stage_authed(r);
}

static void
stage_authed(edge_req *r)
{
	const edge_route *rt = r->route;
	int64_t           retry_s;

	if (!r->authed && (rt->flags & EDGE_R_AUTH)) {
		if (r->renew_unavailable) {
			cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
			edge_fail(r, CM__STATUS__UNAVAILABLE, "session service unavailable");
			return;
		}
		edge_fail(r, CM__STATUS__UNAUTHENTICATED,
		          r->legacy ? "Not authenticated" : "missing or invalid access token");
		return;
	}
	if (!edge_limiter_take(r->e->limiter, r->client_addr, r->authed ? r->claims.sub : NULL,
	                       &retry_s)) {
		snprintf(r->retry_after, sizeof(r->retry_after), "%lld", (long long)retry_s);
		edge_fail(r, CM__STATUS__RESOURCE_EXHAUSTED, "too many requests");
		return;
	}
	stage_body(r);
}

static void
body_read_done(void *arg)
{
	edge_req *r = arg;

	if (nng_aio_result(r->body_aio) != 0) {
		r->close = true;
		edge_fail_http(r, 400, "INVALID_ARGUMENT", "request body incomplete");
		return;
	}
	r->body.len = r->content_length;
	r->body.data[r->body.len] = '\0';
	stage_route(r);
}

static void
stage_body(edge_req *r)
{
	const char *te = nng_http_req_get_header(r->req, "Transfer-Encoding");
	const char *cl = nng_http_req_get_header(r->req, "Content-Length");
	size_t      max = (r->route->flags & EDGE_R_UPLOAD) ? (size_t)r->e->cfg.upload_max
	                                                    : (size_t)r->e->cfg.json_body_max;
	int64_t     len = 0;
	nng_iov     iov;
	char        msg[128];

	if (te != NULL) {
		/* nng would hand us an empty body for chunked uploads: refuse them plainly. */
		r->close = true;
		edge_fail_http(r, 411, "INVALID_ARGUMENT",
		               "chunked request bodies are not supported; send Content-Length");
		return;
	}
	if (cl != NULL && (!cm_parse_i64(cl, &len) || len < 0)) {
		r->close = true;
		edge_fail_http(r, 400, "INVALID_ARGUMENT", "invalid Content-Length");
		return;
	}
	if ((size_t)len > max) {
		r->close = true; /* the body stays unread: this connection cannot be reused */
		snprintf(msg, sizeof(msg), "request body too large (limit %zu bytes)", max);
		edge_fail_http(r, 413, "OUT_OF_RANGE", msg);
		return;
	}
	if (len == 0) {
		stage_route(r);
		return;
	}
	/* The body is stored whole: the buffer is sized once from Content-Length (<= max). */
	cm_buf_init(&r->body, (size_t)len);
	if ((r->body.data = malloc((size_t)len + 1)) == NULL ||
	    nng_aio_alloc(&r->body_aio, body_read_done, r) != 0) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	r->body.cap = (size_t)len + 1;
	r->content_length = (size_t)len;
	iov.iov_buf = r->body.data;
	iov.iov_len = (size_t)len;
	nng_aio_set_iov(r->body_aio, 1, &iov);
	nng_aio_set_timeout(r->body_aio, 30000);
	nng_http_conn_read_all(r->conn, r->body_aio);
}

static void
stage_route(edge_req *r)
{
	if (r->route->start != NULL)
		r->route->start(r);
	else
		edge_start_generic(r);
}

const char *
edge_header(edge_req *r, const char *name)
{
	return nng_http_req_get_header(r->req, name);
}

const char *
edge_query_param(edge_req *r, const char *name, char *buf, size_t buflen)
{
	return edge_query_get(r->query, name, buf, buflen) >= 0 ? buf : NULL;
}

/* ---- start and stop ------------------------------------------------------------------------ */

cm_err
edge_start(edge *e)
{
	nng_http_handler *h = NULL;
	char              url[300];
	int               rv;

	snprintf(url, sizeof(url), "http://%s", e->cfg.addr);
	if ((rv = nng_url_parse(&e->url, url)) != 0 ||
	    (rv = nng_http_server_hold(&e->http, e->url)) != 0) {
		cm_error("EDGE-LISTEN-FAIL", "bad address %s: %s", e->cfg.addr, nng_strerror(rv));
		return CM_EINVAL;
	}
	if ((rv = nng_http_handler_alloc(&h, "/", http_cb)) != 0 ||
	    (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(h)) != 0 ||
	    (rv = nng_http_handler_collect_body(h, false, 0)) != 0 ||
	    (rv = nng_http_handler_set_data(h, e, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(e->http, h)) != 0) {
		cm_error("EDGE-HANDLER-FAIL", "cannot install handler: %s", nng_strerror(rv));
		if (h != NULL)
			nng_http_handler_free(h);
		return CM_EINTERNAL;
	}
	if ((rv = nng_http_server_start(e->http)) != 0) {
		cm_error("EDGE-LISTEN-FAIL", "cannot listen on %s: %s", e->cfg.addr,
		         nng_strerror(rv));
		return CM_EEXIST;
	}
	cm_info("EDGE-LISTEN", "serving HTTP on %s", e->cfg.addr);
	return CM_OK;
}

void
edge_drain_and_stop(edge *e)
{
	int64_t until = cm_mono_ms() + e->cfg.drain_s * 1000;

	int64_t quiet_since = 0;

	atomic_store(&e->draining, true);
	cm_info("EDGE-DRAIN", "draining %d in-flight requests", atomic_load(&e->inflight));
	/* Stop once nothing has been in flight for DRAIN_QUIET_MS, or at the drain deadline. */
	while (cm_mono_ms() < until) {
		if (atomic_load(&e->inflight) > 0)
			quiet_since = 0;
		else if (quiet_since == 0)
			quiet_since = cm_mono_ms();
		else if (cm_mono_ms() - quiet_since >= DRAIN_QUIET_MS)
			break;
		nng_msleep(20);
	}
	nng_http_server_stop(e->http);
	nng_http_server_release(e->http);
	nng_url_free(e->url);
}
