/*
 * httpproxy.c - the reverse proxy to the edge's HTTP upstreams on libcurl's multi interface
 * (httpproxy.h).
 *
 * DESIGN. Every event loop (loop.h) has a lane of its own: a libcurl multi handle whose sockets
 * and timer live in that loop's epoll, its connection cache and a stack of spare easy handles. A
 * request forwarded on a loop's thread (the usual case: the handler runs there) builds its
 * upstream header list (the suspended connection's headers are at hand), joins that loop's lane
 * and is sent at once; its answer comes back on the same thread, which resumes the connection:
 * no lock, no hand-off. A request forwarded from another thread (an nng thread after a cookie
 * renewal or a failed call) is posted to a loop. Nothing of curl's is shared between threads.
 * Response headers are collected first and judged at the end, because a Connection header may
 * name headers that came before it, and a failed exchange must not leak the app's headers
 * (Set-Cookie) into the edge's 502. The body goes straight into r->out, whose cap bounds it; a
 * true streamed response would need a callback response in server.c. Every upstream shares a
 * lane's multi handle: its connection cache keeps HTTPPROXY_MAX_CONNS per upstream (curl counts
 * them per host), so a slow old backend cannot take the frontend's.
 *
 * Easy handles keep the options every transfer shares (set once, when made) and get only the
 * request's own per use; a proxy of "" keeps curl from reading the *_proxy environment for every
 * transfer (the upstreams are the edge's own neighbours, never reached through a proxy).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "cm/log.h"
#include "cm/util.h"
#include "httpproxy.h"
#include "loop.h"
#include "proxyhdr.h"
#include "reload.h"
#include "proto/common.pb-c.h"

#define SPARE_EASY_MAX 64 /* idle easy handles kept for reuse */
#define URL_MAX                                                                                    \
	(EDGE_ORIGIN_MAX + sizeof(((edge_req *)0)->raw_path) +                                     \
	 sizeof(((edge_req *)0)->query_buf) + 2)

typedef struct proxy_call proxy_call;
typedef struct lane       lane;

struct proxy_call {
	proxy_call        *next, *prev; /* the lane's list of running calls */
	edge_req          *r;
	edge_httpup       *up;
	CURL              *easy;
	struct curl_slist *headers;
	char               url[URL_MAX];
	char               public_origin[EDGE_ORIGIN_MAX]; /* "" when Location is left alone */
	cm_buf             resp; /* the response's headers: "name\0value\0" records */
	bool               in_body;
	bool               toobig;
	char               err[CURL_ERROR_SIZE];
};

struct edge_httpup {
	edge_httpproxy *proxy;
	const char     *name, *what;
	char            origin[EDGE_ORIGIN_MAX]; /* "http://host:port" of its URL */
	unsigned        flags;                   /* EDGE_HTTPUP_* */
};

struct edge_httpproxy {
	edge_httpup ups[HTTPPROXY_UPSTREAMS_MAX];
	int         n_ups;
	edge       *e; /* its loops; set at start */
	bool        started;
	atomic_int  lanes; /* lanes alive: the proxy outlives them */
	atomic_bool stopping;
};

/* One loop's share of the proxy; its loop's thread alone touches it. */
struct lane {
	edge_httpproxy   *f;
	edge_loop        *loop;
	CURLM            *multi;
	proxy_call       *running;
	CURL             *spare[SPARE_EASY_MAX];
	int               n_spare;
	edge_loop_watch **watch; /* by fd: the loop's view of curl's sockets, reused */
	int               n_watch;
};

static void
call_free(proxy_call *pc)
{
	curl_slist_free_all(pc->headers);
	cm_buf_fini(&pc->resp);
	free(pc);
}

/* ---- the request, on the event-loop thread ------------------------------------------------- */

typedef struct req_walk {
	proxy_call *pc;
	cm_buf      connection; /* every Connection header's value, joined with "," */
	bool        accept, content_type, failed;
} req_walk;

/* Credentials that stay at the edge for an EDGE_HTTPUP_IDENTITY upstream. */
static bool
identity_kept(const proxy_call *pc, const char *name)
{
	return (pc->up->flags & EDGE_HTTPUP_IDENTITY) != 0 &&
	       (strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Cookie") == 0);
}

static void
join_connection(void *arg, const char *name, const char *value)
{
	req_walk *w = arg;

	if (strcasecmp(name, "Connection") == 0 &&
	    ((w->connection.len > 0 && cm_buf_appends(&w->connection, ",") != CM_OK) ||
	     cm_buf_appends(&w->connection, value) != CM_OK))
		w->failed = true;
}

/* Appends "name: value" to *list ("name;" for an empty value: curl's way to send one). */
static bool
add_header(struct curl_slist **list, const char *name, const char *value)
{
	char               line[8192];
	struct curl_slist *n;
	int len = value[0] != '\0' ? snprintf(line, sizeof(line), "%s: %s", name, value)
	                           : snprintf(line, sizeof(line), "%s;", name);

	if (len < 0 || (size_t)len >= sizeof(line) || (n = curl_slist_append(*list, line)) == NULL)
		return false;
	*list = n;
	return true;
}

static void
pass_request_header(void *arg, const char *name, const char *value)
{
	req_walk *w = arg;

	if (w->failed || !edge_proxy_header_passes(EDGE_PROXY_REQUEST, name, w->connection.data) ||
	    identity_kept(w->pc, name))
		return;
	w->accept |= strcasecmp(name, "Accept") == 0;
	w->content_type |= strcasecmp(name, "Content-Type") == 0;
	if (!add_header(&w->pc->headers, name, value))
		w->failed = true;
}

/* True when the socket's peer is one of EDGE_TRUSTED_PROXIES (whose X-Forwarded-Proto counts). */
static bool
peer_trusted(edge_req *r)
{
	const union MHD_ConnectionInfo *ci;
	const edge_cidrs               *trusted = edge_live_trusted(r->e); /* one snapshot */
	char                            peer[EDGE_ADDR_LEN] = "";

	if (trusted->n == 0 || r->conn == NULL ||
	    (ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) == NULL ||
	    ci->client_addr == NULL)
		return false;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET,
		          &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr,
		          peer, sizeof(peer));
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		          &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr,
		          peer, sizeof(peer));
	return peer[0] != '\0' && edge_cidrs_contain(trusted, peer);
}

/* The upstream request's headers: the client's end-to-end ones, then the proxy's own. */
static bool
build_headers(edge_req *r, proxy_call *pc, const char *scheme)
{
	req_walk    w = {.pc = pc};
	const char *host = edge_header(r, "Host");
	bool        ok;

	cm_buf_init(&w.connection, 8192);
	edge_header_each(r, join_connection, &w);
	if (!w.failed)
		edge_header_each(r, pass_request_header, &w);
	ok = !w.failed && add_header(&pc->headers, "X-Forwarded-For", r->client_addr) &&
	     add_header(&pc->headers, "X-Forwarded-Proto", scheme) &&
	     (host == NULL || add_header(&pc->headers, "X-Forwarded-Host", host)) &&
	     add_header(&pc->headers, "X-Request-Id", r->request_id) &&
	     ((pc->up->flags & EDGE_HTTPUP_IDENTITY) == 0 || !r->authed ||
	      add_header(&pc->headers, "X-User-Id", r->claims.sub)) &&
	     /* curl's own defaults, unless the client sent them: none of them is the browser's */
	     (pc->headers = curl_slist_append(pc->headers, "Expect:")) != NULL &&
	     (w.accept || (pc->headers = curl_slist_append(pc->headers, "Accept:")) != NULL) &&
	     (w.content_type ||
	      (pc->headers = curl_slist_append(pc->headers, "Content-Type:")) != NULL);
	cm_buf_fini(&w.connection);
	return ok;
}

static bool  call_start(lane *ln, proxy_call *pc);
static lane *lane_here(edge_httpproxy *f);

/* On a loop's thread: a call forwarded from elsewhere joins this loop's lane. */
static void
start_posted(void *arg)
{
	proxy_call *pc = arg;
	lane       *ln = lane_here(pc->up->proxy);

	if (ln == NULL || !call_start(ln, pc)) {
		edge_req *r = pc->r;
		call_free(pc);
		edge_fail(r, CM__STATUS__INTERNAL, "cannot start the upstream request");
	}
}

void
edge_httpup_forward(edge_req *r, edge_httpup *up)
{
	edge_httpproxy *f = up->proxy;
	proxy_call     *pc;
	const char     *scheme;
	edge_loop      *l;
	lane           *ln;
	int             n;

	r->upstream_name = up->name;
	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	pc->r = r;
	pc->up = up;
	cm_buf_init(&pc->resp, HTTPPROXY_HEADERS_MAX);
	scheme = edge_proxy_scheme(edge_header(r, "X-Forwarded-Proto"), peer_trusted(r));
	if (!edge_proxy_public_origin(scheme, edge_header(r, "Host"), pc->public_origin,
	                              sizeof(pc->public_origin)))
		pc->public_origin[0] = '\0';
	n = snprintf(pc->url, sizeof(pc->url), "%s%s%s%s", up->origin, r->raw_path,
	             r->query[0] != '\0' ? "?" : "", r->query);
	if (n < 0 || (size_t)n >= sizeof(pc->url) || !build_headers(r, pc, scheme)) {
		call_free(pc);
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	if (!f->started || atomic_load(&f->stopping)) {
		call_free(pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
		return;
	}
	if ((ln = lane_here(f)) != NULL) {
		if (!call_start(ln, pc)) {
			call_free(pc);
			edge_fail(r, CM__STATUS__INTERNAL, "cannot start the upstream request");
		}
		return;
	}
	if ((l = edge_loop_pick(f->e)) == NULL || !edge_loop_post(l, start_posted, pc)) {
		call_free(pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
	}
}

/* ---- the exchange, on the lane's loop ------------------------------------------------------ */

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	proxy_call *pc = arg;
	size_t      len = size * n, k;
	const char *colon, *v;
	size_t      vlen;

	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		cm_buf_reset(&pc->resp); /* a status line: what a 1xx said does not count */
		return size * n;
	}
	/* Blank, folded, malformed and NUL-carrying lines are dropped, and so are trailers. */
	if (pc->in_body || len == 0 || p[0] == ' ' || p[0] == '\t' ||
	    memchr(p, '\0', len) != NULL || (colon = memchr(p, ':', len)) == NULL)
		return size * n;
	k = (size_t)(colon - p);
	v = colon + 1;
	vlen = len - k - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (cm_buf_append(&pc->resp, p, k) != CM_OK || cm_buf_append(&pc->resp, "", 1) != CM_OK ||
	    cm_buf_append(&pc->resp, v, vlen) != CM_OK ||
	    cm_buf_append(&pc->resp, "", 1) != CM_OK) {
		pc->toobig = true;
		return 0;
	}
	return size * n;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	proxy_call *pc = arg;

	pc->in_body = true;
	if (cm_buf_append(&pc->r->out, p, size * n) != CM_OK) {
		pc->toobig = true;
		return 0;
	}
	return size * n;
}

/* A new easy handle with the options every transfer shares. */
static int on_close_socket(void *clientp, curl_socket_t s);

static CURL *
easy_new(lane *ln)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, ln);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* the path as the browser sent it */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HTTPPROXY_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)HTTPPROXY_CONNECT_MS);
	return e;
}

static CURL *
easy_take(lane *ln)
{
	return ln->n_spare > 0 ? ln->spare[--ln->n_spare] : easy_new(ln);
}

static void
easy_give(lane *ln, CURL *e)
{
	if (e == NULL)
		return;
	if (ln->n_spare < SPARE_EASY_MAX)
		ln->spare[ln->n_spare++] = e;
	else
		curl_easy_cleanup(e);
}

static bool
has_body(const edge_req *r)
{
	return r->body.len > 0 || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
	       strcmp(r->method, "PATCH") == 0;
}

static void lane_check_done(lane *ln);

/* Sets up pc's transfer, adds it to the lane's multi handle and sends what can be sent now. */
static bool
call_start(lane *ln, proxy_call *pc)
{
	edge_req *r = pc->r;
	CURL     *e;
	int       running;

	if ((pc->easy = e = easy_take(ln)) == NULL)
		return false;
	curl_easy_setopt(e, CURLOPT_URL, pc->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, pc->headers);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, pc);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pc);
	curl_easy_setopt(e, CURLOPT_PRIVATE, pc);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, pc->err);
	/* What the handle's last use set: back to a plain GET first. */
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (has_body(r)) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.len > 0 ? r->body.data : "");
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (curl_multi_add_handle(ln->multi, e) != CURLM_OK) {
		easy_give(ln, e);
		pc->easy = NULL;
		return false;
	}
	pc->prev = NULL;
	pc->next = ln->running;
	if (ln->running != NULL)
		ln->running->prev = pc;
	ln->running = pc;
	/* The new transfer is due at once (curl's timer says 0): start it without a loop turn. */
	(void)curl_multi_socket_action(ln->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	lane_check_done(ln);
	return true;
}

/* Copies the collected response headers that cross onto r; Location and Content-Location are
 * turned to the public origin when the app aimed them at itself. */
static void
apply_headers(proxy_call *pc)
{
	edge_req   *r = pc->r;
	cm_buf      conn;
	const char *p, *end = pc->resp.data + pc->resp.len;
	char        rewritten[sizeof(pc->url) + EDGE_ORIGIN_MAX];
	int         dropped = 0;

	cm_buf_init(&conn, HTTPPROXY_HEADERS_MAX);
	for (p = pc->resp.data; p != NULL && p < end; p += strlen(p) + 1, p += strlen(p) + 1) {
		if (strcasecmp(p, "Connection") == 0 &&
		    ((conn.len > 0 && cm_buf_appends(&conn, ",") != CM_OK) ||
		     cm_buf_appends(&conn, p + strlen(p) + 1) != CM_OK))
			break; /* cannot be longer than the headers themselves */
	}
	for (p = pc->resp.data; p != NULL && p < end; p += strlen(p) + 1, p += strlen(p) + 1) {
		const char *v = p + strlen(p) + 1;

		if (strcasecmp(p, "Content-Type") == 0 && r->content_type == NULL) {
			r->content_type = cm_arena_strndup(&r->arena, v, strlen(v));
			continue;
		}
		if (!edge_proxy_header_passes(EDGE_PROXY_RESPONSE, p, conn.data) ||
		    ((pc->up->flags & EDGE_HTTPUP_IDENTITY) != 0 &&
		     strcasecmp(p, "Set-Cookie") == 0))
			continue;
		if (pc->public_origin[0] != '\0' &&
		    (strcasecmp(p, "Location") == 0 || strcasecmp(p, "Content-Location") == 0) &&
		    edge_proxy_rewrite_location(v, pc->up->origin, pc->public_origin, rewritten,
		                                sizeof(rewritten)))
			v = rewritten;
		if (!edge_add_header(r, p, v))
			dropped++;
	}
	cm_buf_fini(&conn);
	if (dropped > 0)
		cm_warn("EDGE-PROXY-HEADERS",
		        "rid=%s: %d response headers of %s from %s dropped (no room)",
		        r->request_id, dropped, r->raw_path, pc->up->name);
}

/* Ends a finished (or abandoned: rc CURLE_ABORTED_BY_CALLBACK) transfer and answers. */
static void
call_finish(lane *ln, proxy_call *pc, CURLcode rc)
{
	edge_req *r = pc->r;
	long      status = 0;
	char      msg[128];

	curl_multi_remove_handle(ln->multi, pc->easy);
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		ln->running = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	if (rc == CURLE_OK)
		curl_easy_getinfo(pc->easy, CURLINFO_RESPONSE_CODE, &status);
	easy_give(ln, pc->easy);
	pc->easy = NULL;
	if (rc == CURLE_OK && status >= 200 && status <= 599) {
		r->status = (uint16_t)status;
		apply_headers(pc);
		if (r->content_type == NULL)
			r->content_type = "application/octet-stream";
		call_free(pc);
		edge_respond(r);
		return;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		call_free(pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
		return;
	}
	/* Messages name the upstream ("the old backend is unavailable"). */
	if (pc->toobig) {
		cm_warn("EDGE-PROXY-BIG", "rid=%s: %s's answer to %s is too large", r->request_id,
		        pc->up->name, r->raw_path);
		snprintf(msg, sizeof(msg), "%s sent a response too large", pc->up->what);
		call_free(pc);
		edge_fail_http(r, 502, "UNAVAILABLE", msg);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		cm_warn("EDGE-PROXY-SLOW", "rid=%s: %s: %s", r->request_id, pc->up->name, pc->err);
		snprintf(msg, sizeof(msg), "%s did not answer in time", pc->up->what);
		call_free(pc);
		edge_fail_http(r, 504, "DEADLINE_EXCEEDED", msg);
	} else {
		cm_warn("EDGE-PROXY-FAIL", "rid=%s: %s: %s (status %ld)", r->request_id,
		        pc->up->name, pc->err[0] != '\0' ? pc->err : curl_easy_strerror(rc),
		        status);
		snprintf(msg, sizeof(msg), "%s is unavailable", pc->up->what);
		call_free(pc);
		edge_fail_http(r, 502, "UNAVAILABLE", msg);
	}
}

static void
lane_check_done(lane *ln)
{
	CURLMsg *m;
	int      left;

	while ((m = curl_multi_info_read(ln->multi, &left)) != NULL) {
		proxy_call *pc = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&pc);
		call_finish(ln, pc, m->data.result);
	}
}

/* ---- the lane's sockets and timer in its loop ---------------------------------------------- */

/* The loop's view of one of curl's sockets. It stays in the epoll set while its connection idles
 * in curl's cache (curl says "remove" after every transfer and "watch" again for the next: two
 * epoll_ctl calls a request otherwise); an event curl did not ask for takes it out then, and a
 * close (curl's close-socket callback) forgets it, since the kernel drops a closed fd itself. */
typedef struct sock_watch {
	edge_loop_watch w; /* w.arg is the sock_watch */
	lane           *ln;
	uint32_t        in_set; /* the events registered in the loop's epoll, 0: not there */
	bool            wanted; /* curl watches it now */
} sock_watch;

static void
on_sock_event(void *arg, uint32_t events)
{
	sock_watch *sw = arg;
	lane       *ln = sw->ln;
	int         running, flags = 0;

	if (!sw->wanted) { /* an idle connection closed or spoke: curl finds out on its next use */
		edge_loop_watch_clear(ln->loop, &sw->w);
		sw->in_set = 0;
		return;
	}
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	(void)curl_multi_socket_action(ln->multi, sw->w.fd, flags, &running);
	lane_check_done(ln);
}

/* The watcher of fd s, made on first use (kept by fd and reused). */
static sock_watch *
watch_of(lane *ln, curl_socket_t s)
{
	sock_watch *sw;

	if (s >= ln->n_watch) {
		int               n = s + 64;
		edge_loop_watch **grown = realloc(ln->watch, (size_t)n * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		memset(grown + ln->n_watch, 0, (size_t)(n - ln->n_watch) * sizeof(*grown));
		ln->watch = grown;
		ln->n_watch = n;
	}
	if ((sw = (sock_watch *)ln->watch[s]) == NULL) {
		if ((sw = calloc(1, sizeof(*sw))) == NULL)
			return NULL;
		sw->w.fn = on_sock_event;
		sw->w.arg = sw;
		sw->w.fd = s;
		sw->ln = ln;
		ln->watch[s] = &sw->w;
	}
	return sw;
}

/* curl's socket callback: what to watch on s. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	lane       *ln = userp;
	sock_watch *sw;
	uint32_t    events = 0;

	(void)easy;
	(void)socketp;
	if (s < 0 || (sw = watch_of(ln, s)) == NULL)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		sw->wanted = false;
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	sw->wanted = true;
	if (sw->in_set == events)
		return 0;
	if (!edge_loop_watch_set(ln->loop, &sw->w, events))
		return -1;
	sw->in_set = events;
	return 0;
}

/* curl's close-socket callback: the kernel takes a closed fd out of every epoll set. */
static int
on_close_socket(void *clientp, curl_socket_t s)
{
	lane *ln = clientp;

	if (s >= 0 && s < ln->n_watch && ln->watch[s] != NULL) {
		((sock_watch *)ln->watch[s])->in_set = 0;
		((sock_watch *)ln->watch[s])->wanted = false;
	}
	return close(s);
}

static void
on_lane_timer(void *arg)
{
	lane *ln = arg;
	int   running;

	(void)curl_multi_socket_action(ln->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	lane_check_done(ln);
}

/* curl's timer callback: run on_lane_timer in timeout_ms (-1: no timer). */
static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	lane *ln = userp;

	(void)multi;
	edge_loop_timer_set(ln->loop, timeout_ms < 0 ? -1 : cm_mono_ms() + timeout_ms,
	                    on_lane_timer, ln);
	return 0;
}

/* The loop stops: calls still running are answered 503, then the lane goes. */
static void
lane_free(void *v)
{
	lane           *ln = v;
	edge_httpproxy *f = ln->f;

	while (ln->running != NULL)
		call_finish(ln, ln->running, CURLE_ABORTED_BY_CALLBACK);
	while (ln->n_spare > 0)
		curl_easy_cleanup(ln->spare[--ln->n_spare]);
	if (ln->multi != NULL)
		curl_multi_cleanup(ln->multi);
	for (int i = 0; i < ln->n_watch; i++)
		free(ln->watch[i]);
	free(ln->watch);
	free(ln);
	atomic_fetch_sub(&f->lanes, 1);
}

/* The calling loop's lane, made on first use; NULL off the loops or without memory. */
static lane *
lane_here(edge_httpproxy *f)
{
	edge_loop *l = edge_loop_self();
	lane      *ln;

	if (l == NULL)
		return NULL;
	if ((ln = edge_loop_slot(l)) != NULL)
		return ln;
	if ((ln = calloc(1, sizeof(*ln))) == NULL)
		return NULL;
	ln->f = f;
	ln->loop = l;
	atomic_fetch_add(&f->lanes, 1);
	if ((ln->multi = curl_multi_init()) == NULL ||
	    curl_multi_setopt(ln->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	                      (long)HTTPPROXY_MAX_CONNS) != CURLM_OK ||
	    /* The cache holds each upstream's share; curl closes the oldest idle one beyond it. */
	    curl_multi_setopt(ln->multi, CURLMOPT_MAXCONNECTS,
	                      (long)HTTPPROXY_MAX_CONNS * (f->n_ups > 0 ? f->n_ups : 1)) !=
	        CURLM_OK ||
	    curl_multi_setopt(ln->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(ln->multi, CURLMOPT_SOCKETDATA, ln) != CURLM_OK ||
	    curl_multi_setopt(ln->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    curl_multi_setopt(ln->multi, CURLMOPT_TIMERDATA, ln) != CURLM_OK) {
		lane_free(ln);
		return NULL;
	}
	edge_loop_slot_set(l, ln, lane_free);
	return ln;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

cm_err
edge_httpproxy_open(edge_httpproxy **out)
{
	edge_httpproxy *f;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return CM_EINTERNAL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		curl_global_cleanup();
		return CM_ENOMEM;
	}
	*out = f;
	return CM_OK;
}

cm_err
edge_httpproxy_add(edge_httpproxy *f, const char *name, const char *what, const char *url,
                   unsigned flags, edge_httpup **out)
{
	edge_httpup *up;
	const char  *path;

	*out = NULL;
	if (f->started || f->n_ups >= HTTPPROXY_UPSTREAMS_MAX)
		return CM_EEXIST;
	/* The upstream is the whole site: a path in the URL would be a prefix nothing here adds. */
	if (url == NULL || strncmp(url, "http://", 7) != 0 ||
	    ((path = strchr(url + 7, '/')) != NULL && strcmp(path, "/") != 0) ||
	    strpbrk(url + 7, "?#") != NULL)
		return CM_EINVAL;
	up = &f->ups[f->n_ups];
	if (!edge_proxy_origin(url, up->origin, sizeof(up->origin)))
		return CM_EINVAL;
	up->proxy = f;
	up->name = name;
	up->what = what;
	up->flags = flags;
	f->n_ups++;
	*out = up;
	return CM_OK;
}

cm_err
edge_httpproxy_start(edge_httpproxy *f, edge *e)
{
	f->e = e;
	f->started = true;
	return CM_OK;
}

void
edge_httpproxy_close(edge_httpproxy *f)
{
	if (f == NULL)
		return;
	atomic_store(&f->stopping, true);
	/* Lanes go with their loops (edge_loops_stop). Loops left running by a drain that timed
	 * out still hold theirs: the proxy is left to the process's exit with them. */
	if (atomic_load(&f->lanes) > 0)
		return;
	free(f);
	curl_global_cleanup();
}
