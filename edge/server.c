/*
 * server.c - the edge's HTTP face on libmicrohttpd: the handler, the stages, responses, drain.
 *
 * DESIGN. libmicrohttpd (MHD) runs one epoll loop per thread (EDGE_THREADS) and calls on_request
 * for the headers, for each piece of the body, and once at the end of the body. The request object
 * is born earlier, in on_uri (MHD's URI log callback), because that is the only place the raw
 * request target is visible: MHD splits and decodes it before the handler runs, and the frontend
 * proxy and the query parser need it as sent.
 *
 * An answer is never queued on the handler's first call: MHD then marks the connection for close
 * (measured: 13k req/s instead of 90k), and for a request with a body it could not tell the body
 * from the next request. So an early answer (stage_head) waits for the next call: a request
 * without body gets it at once, a small body (DISCARD_MAX) is read and dropped first, and a larger
 * one (or Expect: 100-continue, whose body the client has not sent) is answered at once, which
 * makes MHD close the connection without reading the rest. Leftover bytes are never parsed as a
 * request. Timeouts (idle, slow headers, a stalled body) are MHD's inactivity timeout: progress
 * resets it, so a live slow upload is not cut; per-address and global connection caps bound the
 * sockets a trickling client can hold.
 *
 * Running a request: the handler suspends the connection, then starts the work; whoever finishes
 * it (an nng thread in an RPC callback, or the handler itself) calls edge_respond, which builds the
 * MHD response and resumes the connection; MHD calls the handler again, which queues it. The
 * request object lives until MHD's completion callback, which is the one place it is freed.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "edge.h"
#include "errmap.h"
#include "frontend.h"
#include "local.h"
#include "loop.h"
#include "migrate.h"
#include "ratelimit.h"
#include "refresh.h"
#include "reload.h"
#include "routes_pdf.h"
#include "upload.h"
#include "ws.h"
#include "proto/common.pb-c.h"

#define DRAIN_QUIET_MS 500
#define DISCARD_MAX                                                                                \
	(64 * 1024) /* body bytes read and dropped to keep a connection after an early answer */

/* Every path outside the API goes to the frontend's server (frontend.h). */
static const edge_route frontend_route = {.method = "*",
                                          .pattern = "/",
                                          .flags = 0,
                                          .upstream = EDGE_UP_NONE,
                                          .start = edge_frontend_proxy,
                                          .name = "frontend"};

static const edge_route ws_route = {.method = "GET", .pattern = EDGE_WS_PATH, .name = "ws"};

static void stage_authed(edge_req *r);

/* ---- response ------------------------------------------------------------------------------ */

static bool
append_3digits(cm_buf *b, unsigned v)
{
	char d[3] = {(char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10), (char)('0' + v % 10)};

	return cm_buf_append(b, d, 3) == CM_OK;
}

static void
access_log(edge_req *r, uint16_t status, size_t bytes, double secs)
{
	unsigned long long us = (unsigned long long)(secs * 1e6);
	cm_buf             line;
	char               ts[32];

	/* One line per request: built without printf, in one allocation the allocator's per-thread
	 * cache serves (a usual line is 300 - 400 bytes). */
	cm_buf_init(&line, 4096);
	cm_format_time_ms(cm_now_ms(), ts);
	if (cm_buf_reserve(&line, 960) == CM_OK && cm_buf_appends(&line, "{\"ts\":\"") == CM_OK &&
	    cm_buf_appends(&line, ts) == CM_OK &&
	    cm_buf_appends(&line, "\",\"type\":\"access\",\"rid\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->request_id) == CM_OK &&
	    cm_buf_appends(&line, "\",\"method\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->method) == CM_OK &&
	    cm_buf_appends(&line, "\",\"path\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->path) == CM_OK &&
	    cm_buf_appends(&line, "\",\"status\":") == CM_OK &&
	    cm_buf_append_u64(&line, status) == CM_OK &&
	    cm_buf_appends(&line, ",\"bytes\":") == CM_OK &&
	    cm_buf_append_u64(&line, bytes) == CM_OK &&
	    /* dur_ms with three decimals from whole microseconds */
	    cm_buf_appends(&line, ",\"dur_ms\":") == CM_OK &&
	    cm_buf_append_u64(&line, us / 1000) == CM_OK && cm_buf_append(&line, ".", 1) == CM_OK &&
	    append_3digits(&line, (unsigned)(us % 1000)) &&
	    cm_buf_appends(&line, ",\"route\":\"") == CM_OK &&
	    cm_buf_appends(&line, r->route != NULL ? r->route->name : "-") == CM_OK &&
	    cm_buf_appends(&line, "\",\"upstream\":\"") == CM_OK &&
	    cm_buf_appends(&line, r->upstream_name != NULL ? r->upstream_name : "") == CM_OK &&
	    cm_buf_appends(&line, "\",\"client\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->client_addr) == CM_OK &&
	    cm_buf_appends(&line, "\",\"user\":\"") == CM_OK &&
	    cm_buf_append_json_str(&line, r->authed ? r->claims.sub : "") == CM_OK &&
	    cm_buf_appends(&line, "\"}") == CM_OK)
		cm_log_raw_json(line.data, line.len);
	cm_buf_fini(&line);
}

/* A thread's last series looked up per (route, status): the registry's lookup formats labels
 * and walks its series under one mutex, and a route answers the same status most of the time.
 * Series live as long as the registry, which lives as long as the edge. */
#define SERIES_CACHE 64

typedef struct series_slot {
	const void   *route; /* r->route (NULL for no route) */
	uint16_t      status;
	cm_metrics   *metrics;
	cm_counter   *requests;
	cm_histogram *duration;
} series_slot;

static void
observe(edge_req *r, uint16_t status, double secs)
{
	static _Thread_local series_slot cache[SERIES_CACHE];
	series_slot *s = &cache[(((uintptr_t)r->route >> 4) ^ status) % SERIES_CACHE];
	char         labels[160];

	if (s->requests == NULL || s->route != (const void *)r->route || s->status != status ||
	    s->metrics != r->e->metrics) {
		snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%u\"",
		         r->route != NULL ? r->route->name : "none", status);
		s->requests =
		    cm_metrics_counter(r->e->metrics, "http_requests_total",
		                       "HTTP requests answered, by route and status", labels);
		snprintf(labels, sizeof(labels), "route=\"%s\"",
		         r->route != NULL ? r->route->name : "none");
		s->duration = cm_metrics_histogram(r->e->metrics, "http_request_duration_seconds",
		                                   "HTTP request latency, by route", labels);
		s->route = r->route;
		s->status = status;
		s->metrics = r->e->metrics;
	}
	cm_counter_add(s->requests, 1);
	cm_histogram_observe(s->duration, secs);
	edge_migrate_observe(r); /* edge_routing_total: which side answered (migrate.h) */
}

static void
set_header(struct MHD_Response *res, const char *name, const char *value)
{
	(void)MHD_add_response_header(res, name, value);
}

static bool
has_extra_header(const edge_req *r, const char *name)
{
	for (int i = 0; i < r->n_extra_headers; i++)
		if (strcasecmp(r->extra_headers[i][0], name) == 0)
			return true;
	return false;
}

/* The edge's headers on res, the response to r with status: framing is MHD's, the rest ours. */
static struct MHD_Response *
add_headers(edge_req *r, struct MHD_Response *res, uint16_t status, bool has_body)
{
	if (has_body || (status != 204 && status != 304))
		set_header(res, "Content-Type",
		           r->content_type != NULL ? r->content_type : "application/json");
	set_header(res, "X-Request-Id", r->request_id);
	/* API answers are never cached; a proxied page keeps its own caching headers. */
	if (!has_extra_header(r, "Cache-Control"))
		set_header(res, "Cache-Control", "no-store");
	set_header(res, "X-Content-Type-Options", "nosniff");
	if (r->origin[0] != '\0') {
		set_header(res, "Access-Control-Allow-Origin", r->origin);
		set_header(res, "Access-Control-Allow-Credentials", "true");
		set_header(res, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
		set_header(res, "Vary", "Origin");
	}
	if (r->set_cookie != NULL)
		set_header(res, "Set-Cookie", r->set_cookie);
	if (r->retry_after[0] != '\0')
		set_header(res, "Retry-After", r->retry_after);
	if (r->allow[0] != '\0')
		set_header(res, "Allow", r->allow);
	if (status == 401 && !r->legacy)
		set_header(res, "WWW-Authenticate", "Bearer");
	for (int i = 0; i < r->n_extra_headers; i++)
		set_header(res, r->extra_headers[i][0], r->extra_headers[i][1]);
	if (r->close)
		set_header(res, "Connection", "close");
	return res;
}

/* The finished response for r (its body taken from r->out), or NULL without memory. */
static struct MHD_Response *
build_response(edge_req *r, uint16_t status)
{
	struct MHD_Response *res;
	char                *body = NULL;
	size_t               len = 0;

	if (r->out.len > 0 && cm_buf_take(&r->out, &body, &len) != CM_OK)
		return NULL;
	res = len > 0 ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
	              : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (res == NULL) {
		free(body);
		return NULL;
	}
	return add_headers(r, res, status, len > 0);
}

/* A load balancer's or Prometheus's successful poll: counted in the metrics, not logged (every
 * few seconds per replica, it would drown the log; nginx setups say `access_log off` for them). */
static bool
quiet_probe(const edge_req *r, uint16_t status)
{
	return status < 400 && r->route == NULL && strcmp(r->method, "GET") == 0 &&
	       (strcmp(r->path, "/healthz") == 0 || strcmp(r->path, "/readyz") == 0 ||
	        strcmp(r->path, "/metrics") == 0);
}

/* Gives r's suspended connection back to its loop (any thread); r may be gone on return. */
static void
resume(edge_req *r)
{
	edge_loop *l = r->loop;

	MHD_resume_connection(r->conn);
	edge_loop_daemon_due(l);
}

/* The response is built: measured, logged, and handed to the engine with the connection. */
static void
respond_built(edge_req *r, uint16_t status, size_t bytes)
{
	double secs = (double)(cm_mono_ns() - r->start_ns) / 1e9;

	observe(r, status, secs);
	if (!quiet_probe(r, status))
		access_log(r, status, bytes, secs);
	/* From here r belongs to the engine: a suspended connection goes back to its loop, whose
	 * next call of on_request queues the response (or closes, without one: r->suspended stays
	 * set to tell it). */
	if (r->suspended)
		resume(r);
}

void
edge_body_resume(edge_req *r)
{
	r->suspended = false;
	resume(r);
}

void
edge_respond(edge_req *r)
{
	uint16_t status = r->status != 0 ? r->status : 200;
	size_t   bytes = r->out.len;

	r->status = status;
	r->response = build_response(r, status);
	respond_built(r, status, bytes);
}

void
edge_respond_stream(edge_req *r, uint64_t size, edge_body_read read, void *cls, edge_body_done done)
{
	uint16_t status = r->status != 0 ? r->status : 200;

	r->status = status;
	r->response = MHD_create_response_from_callback(size, 32 * 1024, read, cls, done);
	if (r->response == NULL)
		done(cls); /* MHD never took it: the connection closes without an answer */
	else
		r->response = add_headers(r, r->response, status, true);
	respond_built(r, status, size == EDGE_BODY_SIZE_UNKNOWN ? 0 : (size_t)size);
}

const char *
edge_header(edge_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct header_walk {
	void (*fn)(void *arg, const char *name, const char *value);
	void *arg;
} header_walk;

static enum MHD_Result
header_visit(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	header_walk *w = cls;

	(void)kind;
	w->fn(w->arg, key, value != NULL ? value : "");
	return MHD_YES;
}

void
edge_header_each(edge_req *r, void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	header_walk w = {fn, arg};

	(void)MHD_get_connection_values(r->conn, MHD_HEADER_KIND, header_visit, &w);
}

/* ---- request bookkeeping ------------------------------------------------------------------- */

static void
body_release(edge_req *r)
{
	if (r->body_reserved > 0)
		atomic_fetch_sub(&r->e->body_bytes, (long long)r->body_reserved);
	r->body_reserved = 0;
}

/* Charges n more body bytes to the global budget; false when it is spent. */
static bool
body_reserve(edge_req *r, size_t n)
{
	long long after = atomic_fetch_add(&r->e->body_bytes, (long long)n) + (long long)n;

	if (after > r->e->cfg.body_budget) {
		atomic_fetch_sub(&r->e->body_bytes, (long long)n);
		return false;
	}
	r->body_reserved += n;
	return true;
}

/* The body bytes r holds at once, of a body of len: a streamed one's piece (plus what one read
 * of the engine may add past it), anything else's whole. */
static size_t
body_held_max(const edge_req *r, size_t len)
{
	size_t piece = EDGE_UPLOAD_PIECE + DISCARD_MAX;

	return (r->body_streamed || r->renew_at_head) && len > piece ? piece : len;
}

static void
req_free(edge_req *r)
{
	edge_upload_abandon(r);
	body_release(r);
	if (r->response != NULL)
		MHD_destroy_response(r->response);
	free(r->ws_handoff);
	cm_buf_fini(&r->body);
	cm_buf_fini(&r->out);
	cm_arena_fini(&r->arena);
	free(r->set_cookie);
	free(r->cookie_access);
	free(r->cookie_refresh);
	free(r->bearer);
	free(r);
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

/* Splits the raw target into path (one trailing slash dropped) and query. False when too long. */
static bool
split_target(edge_req *r, const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t      n = q != NULL ? (size_t)(q - uri) : strlen(uri);

	r->query = r->query_buf;
	if (n >= sizeof(r->path) || (q != NULL && strlen(q + 1) >= sizeof(r->query_buf))) {
		cm_strlcpy(r->path, "(too long)", sizeof(r->path));
		return false;
	}
	memcpy(r->path, uri, n);
	r->path[n] = '\0';
	memcpy(r->raw_path, r->path, n + 1);
	/* One trailing slash is not significant: the legacy frontend posts to both /api/chat and
	 * /api/chat/. */
	if (n > 1 && r->path[n - 1] == '/')
		r->path[n - 1] = '\0';
	cm_strlcpy(r->query_buf, q != NULL ? q + 1 : "", sizeof(r->query_buf));
	return true;
}

/* MHD's URI callback: the request is born here, with its target as sent. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	edge     *e = cls;
	edge_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	atomic_fetch_add(&e->inflight, 1);
	r->e = e;
	r->conn = conn;
	r->loop = edge_loop_self();
	r->start_ns = cm_mono_ns();
	cm_buf_init(&r->body, 0);
	cm_buf_init(&r->out, 1u << 24);
	cm_arena_init(&r->arena);
	if (!split_target(r, uri))
		r->status = 414; /* answered in stage_head, once the method is known */
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	edge     *e = cls;
	edge_req *r = *con_cls;

	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	*con_cls = NULL;
	if (!r->upgraded)
		atomic_fetch_sub(&e->inflight, 1);
	req_free(r);
}

/* ---- stages -------------------------------------------------------------------------------- */

static bool
list_has(const char *list, const char *item)
{
	const char *p = list;
	size_t      n = strlen(item);

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t      len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if ((len == 1 && *p == '*') || (len == n && strncasecmp(p, item, n) == 0))
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* The edge's own origin: the scheme and Host the request came to. */
static bool
same_origin(edge_req *r, const char *origin)
{
	const char *host = edge_header(r, "Host");
	const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
	                   : strncmp(origin, "https://", 8) == 0 ? origin + 8
	                                                         : NULL;

	return host != NULL && rest != NULL && strcasecmp(rest, host) == 0;
}

/* The origin part ("scheme://host[:port]") of a Referer, into out. */
static bool
referer_origin(const char *referer, char *out, size_t outlen)
{
	const char *p = strstr(referer, "://");
	size_t      n;

	if (p == NULL)
		return false;
	n = (size_t)(p + 3 - referer) + strcspn(p + 3, "/?#");
	if (n >= outlen)
		return false;
	memcpy(out, referer, n);
	out[n] = '\0';
	return true;
}

/* A state-changing request that would authenticate by cookie must come from a page of ours or of
 * an allowed origin: a browser sends Origin (Referer at worst) on every cross-site POST, so one
 * naming another site is a forgery. Requests that carry neither come from programs, not pages,
 * and a bearer token is never sent by a browser on its own. */
static bool
csrf_ok(edge_req *r)
{
	const char *origin, *referer;
	char        buf[256];

	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
	    edge_header(r, "Authorization") != NULL)
		return true;
	if ((origin = edge_header(r, "Origin")) == NULL) {
		if ((referer = edge_header(r, "Referer")) == NULL)
			return true;
		if (!referer_origin(referer, buf, sizeof(buf)))
			return false;
		origin = buf;
	}
	return strcmp(origin, "null") != 0 &&
	       (same_origin(r, origin) || list_has(edge_live_cors(r->e), origin));
}

static void
preflight(edge_req *r)
{
	const char *hdrs = edge_header(r, "Access-Control-Request-Headers");

	r->status = 204;
	if (r->origin[0] != '\0') {
		(void)edge_add_header(r, "Access-Control-Allow-Methods",
		                      "GET, POST, PUT, PATCH, DELETE, OPTIONS");
		(void)edge_add_header(r, "Access-Control-Allow-Headers",
		                      hdrs != NULL && strlen(hdrs) < 512
		                          ? hdrs
		                          : "Authorization, Content-Type, X-Request-Id");
		(void)edge_add_header(r, "Access-Control-Max-Age", "600");
	}
	edge_respond(r);
}

static void
client_address(edge_req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char peer[EDGE_ADDR_LEN];

	edge_peer_text(ci != NULL ? ci->client_addr : NULL, peer);
	edge_client_addr(edge_live_trusted(r->e), peer, edge_header(r, "X-Forwarded-For"),
	                 r->client_addr, sizeof(r->client_addr));
}

/* ---- WebSocket upgrade ------------------------------------------------------------------------
 */

typedef struct ws_handoff {
	edge                             *e;
	edge_loop                        *loop; /* whose daemon holds the socket */
	struct MHD_UpgradeResponseHandle *urh;
	char                              user[64];
	const char                       *refuse_code; /* static strings */
	const char                       *refuse_msg;
} ws_handoff;

static void
ws_release(void *handle)
{
	ws_handoff *h = handle;
	edge_loop  *l = h->loop; /* h goes with its request once the socket is closed */

	(void)MHD_upgrade_action(h->urh, MHD_UPGRADE_ACTION_CLOSE);
	edge_loop_daemon_due(l);
}

static void
on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
            size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	edge_req      *r = con_cls;
	ws_handoff    *h = r->ws_handoff;
	edge_ws_socket s = {.fd = sock,
	                    .extra = extra_in,
	                    .extra_len = extra_in_size,
	                    .handle = h,
	                    .release = ws_release};

	(void)cls;
	(void)conn;
	h->urh = urh;
	/* MHD keeps r (con_cls) until the socket is released, then completes it: a socket is not a
	 * request in flight, and drain must not wait for it. */
	r->upgraded = true;
	atomic_fetch_sub(&h->e->inflight, 1);
	edge_ws_adopt(h->e, &s, h->user, h->refuse_code, h->refuse_msg);
}

static bool
header_has_token(edge_req *r, const char *name, const char *token)
{
	const char *v = edge_header(r, name);
	char        buf[256];

	if (v == NULL || strlen(v) >= sizeof(buf))
		return false;
	cm_strlcpy(buf, v, sizeof(buf));
	return list_has(buf, token);
}

/* Who opens the socket: ?access_token= or the session cookie's access token. */
static bool
ws_authenticate(edge_req *r, cm_jwt_claims *claims)
{
	char  uri[sizeof(r->query_buf) + 2];
	char  tok[CM_MAX_TOKEN + 1];
	char *access = NULL, *refresh = NULL;
	bool  ok = false;

	snprintf(uri, sizeof(uri), "?%s", r->query);
	if (edge_ws_query_token(uri, tok, sizeof(tok)))
		ok = edge_token_verify(r->e, tok, claims);
	if (!ok && edge_cookie_parse(edge_header(r, "Cookie"), &access, &refresh))
		ok = edge_token_verify(r->e, access, claims);
	free(access);
	free(refresh);
	return ok;
}

/* GET /api/v1/ws: checks the handshake and prepares the 101 answer. Any Host is fine (the edge
 * does not know every name it is reached by); Origin, when a browser sends one, must be ours or
 * allowed, or any page could open a socket with the user's cookie. */
static void
ws_upgrade(edge_req *r)
{
	const char   *origin = edge_header(r, "Origin");
	const char   *key = edge_header(r, "Sec-WebSocket-Key");
	const char   *version = edge_header(r, "Sec-WebSocket-Version");
	char          accept[29];
	cm_jwt_claims claims;
	ws_handoff   *h;

	r->route = &ws_route;
	if (atomic_load(&r->e->draining)) {
		cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
		r->close = true;
		edge_fail_http(r, 503, "UNAVAILABLE", "this edge is shutting down");
		return;
	}
	if (strcmp(r->method, "GET") != 0) {
		cm_strlcpy(r->allow, "GET", sizeof(r->allow));
		edge_fail_http(r, 405, "UNIMPLEMENTED", "method not allowed");
		return;
	}
	if (!header_has_token(r, "Upgrade", "websocket") ||
	    !header_has_token(r, "Connection", "upgrade")) {
		(void)edge_add_header(r, "Upgrade", "websocket");
		edge_fail_http(r, 426, "FAILED_PRECONDITION", "this is a WebSocket endpoint");
		return;
	}
	if (version == NULL || strcmp(version, "13") != 0) {
		(void)edge_add_header(r, "Sec-WebSocket-Version", "13");
		edge_fail_http(r, 426, "FAILED_PRECONDITION", "WebSocket version 13 only");
		return;
	}
	if (key == NULL || !edge_ws_accept_key(key, accept)) {
		edge_fail_http(r, 400, "INVALID_ARGUMENT", "bad Sec-WebSocket-Key");
		return;
	}
	if (origin != NULL && !same_origin(r, origin) && !list_has(edge_live_cors(r->e), origin)) {
		edge_fail_http(r, 403, "PERMISSION_DENIED", "origin not allowed");
		return;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (r->response = MHD_create_response_for_upgrade(on_upgraded, NULL)) == NULL) {
		free(h);
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	h->e = r->e;
	h->loop = r->loop;
	if (ws_authenticate(r, &claims)) {
		cm_strlcpy(h->user, claims.sub, sizeof(h->user));
	} else {
		/* The socket opens and says why it closes: a browser's WebSocket API shows no HTTP
		 * status. */
		h->refuse_code = "UNAUTHENTICATED";
		h->refuse_msg = "log in first (session cookie or ?access_token=)";
	}
	r->ws_handoff = h;
	set_header(r->response, "Upgrade", "websocket");
	set_header(r->response, "Sec-WebSocket-Accept", accept);
	set_header(r->response, "X-Request-Id", r->request_id);
	r->status = 101;
	observe(r, 101, (double)(cm_mono_ns() - r->start_ns) / 1e9);
	access_log(r, 101, 0, (double)(cm_mono_ns() - r->start_ns) / 1e9);
}

static void
count_header(void *arg, const char *name, const char *value)
{
	*(size_t *)arg += strlen(name) + strlen(value) + 4;
}

/* Bytes of the request's headers as sent (near enough: name, ": ", value, CRLF). */
static size_t
header_bytes(edge_req *r)
{
	size_t n = strlen(r->raw_path) + strlen(r->query) + 16;

	edge_header_each(r, count_header, &n);
	return n;
}

/* The headers are in: decide everything that needs no upstream and no body. */
static void
stage_head(edge_req *r, const char *method)
{
	edge       *e = r->e;
	const char *rid, *origin, *te, *cl;
	bool        path_matched = false;
	int64_t     len = 0, retry_s;
	char        msg[128];

	cm_strlcpy(r->method, method, sizeof(r->method));
	if ((rid = edge_header(r, "X-Request-Id")) != NULL && valid_request_id(rid))
		cm_strlcpy(r->request_id, rid, sizeof(r->request_id));
	else
		cm_uuid_v4_fast(r->request_id); /* unique, not secret */
	client_address(r);
	if (header_bytes(r) > (size_t)e->cfg.header_max) {
		r->close = true;
		edge_fail_http(r, 431, "INVALID_ARGUMENT", "request headers too large");
		return;
	}
	te = edge_header(r, "Transfer-Encoding");
	cl = edge_header(r, "Content-Length");
	r->has_body = te != NULL || (cl != NULL && strcmp(cl, "0") != 0);
	if (cl != NULL && te == NULL) {
		if (!cm_parse_i64(cl, &len) || len < 0) {
			r->close = true;
			edge_fail_http(r, 400, "INVALID_ARGUMENT", "invalid Content-Length");
			return;
		}
		r->content_length = (size_t)len;
	}
	if (r->status == 414) {
		r->status = 0;
		edge_fail_http(r, 414, "INVALID_ARGUMENT", "request URI too long");
		return;
	}
	r->legacy = strncmp(r->path, "/api/", 5) == 0 && strncmp(r->path, "/api/v1/", 8) != 0 &&
	            strcmp(r->path, "/api/v1") != 0;
	if ((origin = edge_header(r, "Origin")) != NULL && strlen(origin) < sizeof(r->origin) &&
	    list_has(edge_live_cors(e), origin))
		cm_strlcpy(r->origin, origin, sizeof(r->origin));

	if (strcmp(r->method, "OPTIONS") == 0) {
		preflight(r);
		return;
	}
	if (strcmp(r->path, EDGE_WS_PATH) == 0) {
		ws_upgrade(r);
		return;
	}
	if (edge_local_handle(r))
		return;
	r->route =
	    edge_route_match(r->method, r->path, r, &path_matched, r->allow, sizeof(r->allow));
	if (r->route == NULL && strcmp(r->path, "/api") != 0 && strncmp(r->path, "/api/", 5) != 0)
		r->route =
		    &frontend_route; /* the web app's own server (same origin, for the cookie) */
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
	if (!csrf_ok(r)) {
		edge_fail_http(r, 403, "PERMISSION_DENIED", "cross-site request refused");
		return;
	}

	if (r->route->flags & (EDGE_R_AUTH | EDGE_R_AUTH_OPT)) {
		edge_session_read(r);
		edge_session_verify(r);
		/* A browser session whose access token expired is renewed once the body is in
		 * (refresh.h); everything else about the caller is known now. */
		r->renew = !r->authed && r->bearer == NULL && r->cookie_refresh != NULL &&
		           r->cookie_refresh[0] != '\0' && r->route->rpc != NULL &&
		           strcmp(r->route->rpc, "auth.Logout") != 0;
		if (!r->authed && !r->renew && (r->route->flags & EDGE_R_AUTH)) {
			edge_fail(r, CM__STATUS__UNAUTHENTICATED,
			          r->legacy ? "Not authenticated"
			                    : "missing or invalid access token");
			return;
		}
	}
	if (!r->renew && !edge_limiter_take_route(e->limiter, r->route->name, r->client_addr,
	                                          r->authed ? r->claims.sub : NULL, &retry_s)) {
		snprintf(r->retry_after, sizeof(r->retry_after), "%lld", (long long)retry_s);
		edge_fail(r, CM__STATUS__RESOURCE_EXHAUSTED, "too many requests");
		return;
	}

	r->body_max = (r->route->flags & EDGE_R_UPLOAD) ? (size_t)e->cfg.upload_max
	                                                : (size_t)e->cfg.json_body_max;
	/* An upload's Content-Type is judged before its body comes (a streamed one leaves in
	 * pieces at once); one without a body is the route's to refuse ("field 'file' is
	 * required"), whatever its type, as before. */
	if ((r->route->flags & EDGE_R_UPLOAD) != 0 && r->has_body && !edge_upload_type_ok(r))
		return;
	r->body_streamed = edge_upload_streams(r);
	r->renew_at_head = edge_upload_renews_at_head(r);
	cm_buf_init(&r->body, r->body_max);
	if (cl != NULL && te == NULL) {
		if ((size_t)len > r->body_max) {
			snprintf(msg, sizeof(msg), "request body too large (limit %zu bytes)",
			         r->body_max);
			edge_fail_http(r, 413, "OUT_OF_RANGE", msg);
			return;
		}
		if (len > 0 && !body_reserve(r, body_held_max(r, (size_t)len))) {
			cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
			edge_fail_http(r, 503, "UNAVAILABLE",
			               "too many uploads in progress; try again");
			return;
		}
	}
}

/* A piece of the body. False when the request must be answered now (413, 503). */
static bool
body_piece(edge_req *r, const char *data, size_t n)
{
	char msg[128];

	if (r->upload_sent + r->body.len + n > r->body_max) {
		snprintf(msg, sizeof(msg), "request body too large (limit %zu bytes)", r->body_max);
		edge_fail_http(r, 413, "OUT_OF_RANGE", msg);
		return false;
	}
	/* A chunked body is charged as it grows; a Content-Length one was charged whole. */
	if (r->body.len + n > r->body_reserved &&
	    !body_reserve(r, r->body.len + n - r->body_reserved)) {
		cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
		edge_fail_http(r, 503, "UNAVAILABLE", "too many uploads in progress; try again");
		return false;
	}
	if (r->body.data == NULL && r->content_length > 0) {
		/* Sized once from Content-Length (<= the route's limit; a streamed body's piece),
		 * not doubled as it grows. */
		size_t cap = body_held_max(r, r->content_length) + 1;
		if ((r->body.data = malloc(cap)) == NULL) {
			edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
			return false;
		}
		r->body.cap = cap;
	}
	if (cm_buf_append(&r->body, data, n) != CM_OK) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return false;
	}
	return true;
}

static void
stage_route(edge_req *r)
{
	/* The caller is known (authenticated, renewed, rate-limited) and the body is in: a legacy
	 * route taking part in the migration may go to the old backend instead (migrate.h). */
	if (edge_migrate_route(r))
		return;
	if (r->route->start != NULL)
		r->route->start(r);
	else
		edge_start_generic(r);
}

/* After a cookie renewal: the caller as the route needs it (401, or 503 when svc-auth could not
 * be asked) and within the rate limit it was not counted against before (429). False after
 * answering. */
static bool
renewed_caller_ok(edge_req *r)
{
	int64_t retry_s;

	r->renew = false;
	if (!r->authed && (r->route->flags & EDGE_R_AUTH)) {
		if (r->renew_unavailable) {
			cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
			edge_fail(r, CM__STATUS__UNAVAILABLE, "session service unavailable");
			return false;
		}
		edge_fail(r, CM__STATUS__UNAUTHENTICATED,
		          r->legacy ? "Not authenticated" : "missing or invalid access token");
		return false;
	}
	if (!edge_limiter_take_route(r->e->limiter, r->route->name, r->client_addr,
	                             r->authed ? r->claims.sub : NULL, &retry_s)) {
		snprintf(r->retry_after, sizeof(r->retry_after), "%lld", (long long)retry_s);
		edge_fail(r, CM__STATUS__RESOURCE_EXHAUSTED, "too many requests");
		return false;
	}
	return true;
}

static void
stage_authed(edge_req *r)
{
	if (!r->renew) {
		stage_route(r);
		return;
	}
	if (renewed_caller_ok(r))
		stage_route(r);
}

/* An upload's session renewed at its headers (upload.h): the caller known, its body may come
 * (streamed); the engine calls the handler once more for the headers when resumed. */
static void
head_renewed(edge_req *r)
{
	if (!renewed_caller_ok(r))
		return;
	r->body_streamed = true;
	r->head_renewed = true;
	edge_body_resume(r);
}

/* The body is in: run the request, with the connection suspended until edge_respond. */
static void
stage_run(edge_req *r)
{
	r->body.len = r->body.data != NULL ? r->body.len : 0;
	if (r->renew)
		edge_session_renew(r, stage_authed);
	else
		stage_authed(r);
}

static enum MHD_Result
queue(edge_req *r)
{
	enum MHD_Result rv;

	r->answered = true;
	if (r->response == NULL)
		return MHD_NO; /* no memory for an answer: close */
	rv = MHD_queue_response(r->conn, r->status, r->response);
	MHD_destroy_response(r->response);
	r->response = NULL;
	return rv;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	edge_req *r = *con_cls;
	size_t    n = *upload_data_size;

	(void)cls;
	(void)url;
	(void)version;
	if (r == NULL)
		return MHD_NO; /* on_uri had no memory */
	if (r->answered)
		return MHD_NO;
	if (r->method[0] == '\0') { /* the headers */
		stage_head(r, method);
		/* Answer now only when the body cannot be dropped cheaply: then MHD closes the
		 * connection instead of reading it. */
		if (r->response != NULL && r->has_body &&
		    (r->close || r->content_length > DISCARD_MAX ||
		     edge_header(r, "Expect") != NULL)) {
			set_header(r->response, "Connection", "close");
			return queue(r);
		}
		if (r->response == NULL && r->renew_at_head) {
			/* The session first, then the body (streamed as the renewed caller's). */
			r->suspended = true;
			MHD_suspend_connection(r->conn);
			edge_session_renew(r, head_renewed);
		}
		return MHD_YES;
	}
	if (r->head_renewed && n == 0) { /* the headers again, after the renewal at them */
		r->head_renewed = false;
		return MHD_YES;
	}
	(void)conn;
	if (n > 0) {
		*upload_data_size = 0;
		if (r->response != NULL) { /* answered early: the body is read and dropped */
			r->discarded += n;
			if (r->discarded <= DISCARD_MAX || r->drain_body)
				return MHD_YES;
			/* Too much to drop (a chunked body): answer and close, the rest unread. */
			if (r->response != NULL)
				set_header(r->response, "Connection", "close");
			return queue(r);
		}
		if (!body_piece(r, upload_data, n))
			return queue(r);
		if (r->body_streamed && r->body.len >= EDGE_UPLOAD_PIECE) {
			/* Read no more until svc-pdf has this piece (upload.h). */
			r->suspended = true;
			MHD_suspend_connection(r->conn);
			edge_upload_send_piece(r);
		}
		return MHD_YES;
	}
	if (r->response != NULL)
		return queue(r);
	if (r->suspended)
		return MHD_NO; /* resumed without an answer (no memory): close */
	r->suspended = true;
	MHD_suspend_connection(r->conn);
	stage_run(r);
	return MHD_YES;
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* MHD's messages (malformed requests, limits hit) at debug level: a client's mistakes are not
 * the edge's warnings. */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char   msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	cm_debug("EDGE-HTTP", "%s", msg);
}

/* EDGE_ADDR ("host:port", "[v6]:port") as a socket address for MHD. */
static cm_err
listen_addr(const char *addr, struct sockaddr_storage *ss)
{
	struct addrinfo hints, *ai = NULL;
	char            host[256];
	const char     *colon = strrchr(addr, ':');
	size_t          hl;

	if (colon == NULL || colon == addr || (hl = (size_t)(colon - addr)) >= sizeof(host))
		return CM_EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &ai) != 0 || ai == NULL)
		return CM_EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return CM_OK;
}

cm_err
edge_start(edge *e)
{
	struct sockaddr_storage ss;
	long                    cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned                threads = e->cfg.threads > 0 ? (unsigned)e->cfg.threads
	                                  : cores > 0        ? (unsigned)cores
	                                                     : 1;
	unsigned                flags =
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opt[] = {
	    {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, e},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, e},
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, e},
	    {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)e->cfg.idle_timeout_s, NULL},
	    /* Room for headers half again our limit, so up to there the 431 is ours, in JSON. Not
	     * more: MHD clears the whole pool for every request (measured: an 80 KiB pool cost
	     * 12% of /healthz's CPU). */
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)(e->cfg.header_max * 3 / 2 + 8192),
	     NULL},
	    {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
	    {MHD_OPTION_END, 0, NULL}};
	cm_err err;

	memset(&ss, 0, sizeof(ss));
	if (e->cfg.addr[0] != '\0' && listen_addr(e->cfg.addr, &ss) != CM_OK) {
		cm_error("EDGE-LISTEN-FAIL", "bad address %s", e->cfg.addr);
		return CM_EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Listening nowhere: sockets come through edge_serve_socket (the fuzzer). */
	err = edge_loops_start(e, threads,
	                       e->cfg.addr[0] != '\0' ? (const struct sockaddr *)&ss : NULL, flags,
	                       (void *)on_request, opt, (unsigned)e->cfg.max_connections,
	                       (unsigned)e->cfg.max_connections_per_addr);
	if (err != CM_OK) {
		cm_error("EDGE-LISTEN-FAIL", "cannot listen on %s", e->cfg.addr);
		return err;
	}
	cm_info("EDGE-LISTEN", "serving HTTP on %s (%u threads)", e->cfg.addr, threads);
	return CM_OK;
}

cm_err
edge_serve_socket(edge *e, int fd)
{
	return edge_loop_add_socket(e, fd);
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
	if (atomic_load(&e->inflight) > 0) {
		/* Requests still wait on upstreams whose callbacks would touch them: stop taking
		 * connections and leave the rest to the process's exit. */
		cm_warn("EDGE-DRAIN", "%d requests unfinished at the drain deadline",
		        atomic_load(&e->inflight));
		edge_loops_quiesce(e);
		return;
	}
	edge_loops_stop(e);
}
