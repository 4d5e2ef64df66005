/*
 * httpproxy.c - the reverse proxy to the edge's HTTP upstreams: an HTTP/1.1 client of its own on
 * the edge's event loops (httpproxy.h).
 *
 * DESIGN. Every event loop (loop.h) has a lane of its own: per upstream, a stack of idle
 * kept-alive connections (at most HTTPPROXY_MAX_CONNS kept; as many open as calls need), the
 * calls running, and the loop's timer for their deadlines. A request forwarded on a loop's thread
 * (the usual case: the handler runs there) is written into one buffer (request line, headers,
 * body), sent on an idle connection or a new non-blocking one, and its answer is read and parsed
 * as it arrives (httpresp.h: the body straight into r->out, whose cap bounds it) on the same
 * thread, which resumes the connection: no lock, no hand-off, two system calls a request on a
 * kept-alive connection. A request forwarded from another thread (an nng thread after a cookie
 * renewal or a failed call) is posted to a loop. It replaced libcurl's multi interface, whose own
 * work per transfer was most of what a proxied request cost the edge (bench/README.md).
 *
 * A kept-alive connection the upstream closed while it idled is noticed in the epoll set (it
 * stays there, read-watched) and closed; one that dies under a request before any byte of the
 * answer came is retried once on a fresh connection, as browsers and curl do. Response headers
 * are collected first and judged at the end, because a Connection header may name headers that
 * came before it, and a failed exchange must not leak the app's headers (Set-Cookie) into the
 * edge's 502. A response followed by more bytes than it framed leaves its connection closed.
 *
 * Streamed answers (should_stream: a Content-Length over STREAM_AFTER, chunks, or until the
 * close) give up that clean 502 for memory and time to first byte: once the head is in, it is
 * judged and sent (edge_respond_stream) and the body moves to a proxy_stream that the MHD
 * response owns. The parser appends to it, libmicrohttpd's callback takes from it; an empty
 * stream suspends the client's connection until the next read wakes it, a full one
 * (STREAM_HIGH) takes the upstream socket out of epoll until the client has taken enough.
 * Both sides run on the loop of the client's connection (a call posted from an nng thread goes
 * to that loop), so the stream needs no lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cm/log.h"
#include "cm/util.h"
#include "httpproxy.h"
#include "httpresp.h"
#include "loop.h"
#include "proxyhdr.h"
#include "reload.h"
#include "proto/common.pb-c.h"

#define REQUEST_HEAD_MAX 65536 /* bytes of the request line and headers sent upstream */
#define RESOLVE_EVERY_MS 10000 /* an upstream's name is looked up again after this */
#define READ_CHUNK 16384
#define SPARE_CALLS 64         /* finished calls a lane keeps, buffers and all, for the next */
#define SPARE_KEEP_BYTES 65536 /* ... unless one of their buffers grew past this */
#define TIMEOUT_MS(pc) ((pc)->up->proxy->timeout_ms) /* EDGE_PROXY_TIMEOUT_MS */
#define STREAM_AFTER 65536 /* a body framed larger, or not framed by its length, is streamed */
#define STREAM_HIGH 262144 /* a streamed body's bytes held before reading waits for the client */
#define STREAM_LOW 65536   /* ... and read again below this */
#define STREAM_BUF_MAX 1048576

typedef struct proxy_call   proxy_call;
typedef struct proxy_stream proxy_stream;
typedef struct lane         lane;
typedef struct upconn       upconn;

struct proxy_call {
	proxy_call   *next, *prev; /* the lane's list of running calls */
	edge_req     *r;           /* NULL once a streamed answer's head went out */
	edge_httpup  *up;
	upconn       *conn;
	proxy_stream *stream; /* the answer's body, when it is streamed */
	cm_buf        req;    /* the request line and headers */
	char         *body;   /* the request's body (r->body: sent from there, never copied) */
	size_t        body_len, sent;
	edge_httpresp parser;
	bool          parsing;              /* parser initialised */
	cm_buf        resp;                 /* the response's headers: "name\0value\0" records */
	int64_t       deadline, connect_by; /* monotonic ms; connect_by 0 once connected */
	bool          reused, got_bytes, retried;
	char          public_origin[EDGE_ORIGIN_MAX]; /* "" when Location is left alone */
	char          err[128];
};

struct edge_httpup {
	edge_httpproxy *proxy;
	const char     *name, *what;
	char            origin[EDGE_ORIGIN_MAX]; /* "http://host:port" of its URL */
	char            host[EDGE_ORIGIN_MAX];   /* for getaddrinfo: no brackets */
	char            port[8];
	char            host_header[EDGE_ORIGIN_MAX];
	int             index; /* in the proxy's ups */
	unsigned        flags; /* EDGE_HTTPUP_* */
};

struct edge_httpproxy {
	edge_httpup ups[HTTPPROXY_UPSTREAMS_MAX];
	int         n_ups;
	edge       *e;          /* its loops; set at start */
	int64_t     timeout_ms; /* EDGE_PROXY_TIMEOUT_MS, read at start */
	bool        started;
	atomic_int  lanes; /* lanes alive: the proxy outlives them */
	atomic_bool stopping;
};

/* One connection to an upstream, busy with a call or idle in its lane. */
struct upconn {
	edge_loop_watch w; /* w.arg is the upconn */
	lane           *ln;
	int             up;     /* index of its upstream */
	proxy_call     *pc;     /* NULL: idle */
	upconn         *next;   /* the idle stack */
	uint32_t        events; /* registered in the loop's epoll, 0: not there */
	bool            connecting;
};

/* One loop's share of the proxy; its loop's thread alone touches it. */
struct lane {
	edge_httpproxy         *f;
	edge_loop              *loop;
	proxy_call             *running;
	upconn                 *idle[HTTPPROXY_UPSTREAMS_MAX];
	int                     n_idle[HTTPPROXY_UPSTREAMS_MAX];
	struct sockaddr_storage addr[HTTPPROXY_UPSTREAMS_MAX];
	socklen_t               addrlen[HTTPPROXY_UPSTREAMS_MAX];
	int64_t                 resolved_at[HTTPPROXY_UPSTREAMS_MAX]; /* 0: never */
	proxy_call             *spare; /* finished calls kept for reuse (next) */
	int                     n_spare;
};

/* A streamed answer's body between the upstream (the call writes, through its parser) and
 * libmicrohttpd (stream_read takes, as the client's socket takes it). Owned by the MHD response:
 * stream_done frees it, ending the call if it still runs. Only the lane's loop touches it, the
 * loop whose daemon holds the client's connection. */
struct proxy_stream {
	cm_buf                 buf; /* bytes from rd on are the client's next */
	size_t                 rd;
	proxy_call            *pc; /* NULL once the call ended */
	lane                  *ln;
	struct MHD_Connection *conn;
	edge_loop             *loop;
	bool done, failed;   /* the call ended: whole, or cut (the client's connection is closed) */
	bool client_waiting; /* its connection is suspended until more comes */
	bool paused;         /* the upstream socket is out of epoll until the client catches up */
	bool starting, gone; /* MHD gave it back before the head went out */
};

static void
call_free(proxy_call *pc)
{
	if (pc->parsing)
		edge_httpresp_fini(&pc->parser);
	cm_buf_fini(&pc->req);
	cm_buf_fini(&pc->resp);
	free(pc);
}

/* A call for r to up: one the lane (may be NULL) kept, its buffers emptied, or a new one. */
static proxy_call *
call_new(lane *ln, edge_req *r, edge_httpup *up)
{
	proxy_call *pc = NULL;

	if (ln != NULL && (pc = ln->spare) != NULL) {
		ln->spare = pc->next;
		ln->n_spare--;
		cm_buf_reset(&pc->req);
		cm_buf_reset(&pc->resp);
	} else if ((pc = calloc(1, sizeof(*pc))) != NULL) {
		cm_buf_init(&pc->req, REQUEST_HEAD_MAX);
		cm_buf_init(&pc->resp, HTTPPROXY_HEADERS_MAX);
	} else {
		return NULL;
	}
	pc->next = pc->prev = NULL;
	pc->r = r;
	pc->up = up;
	pc->conn = NULL;
	pc->stream = NULL;
	pc->body = r->body.data;
	pc->body_len = r->body.len;
	pc->sent = 0;
	pc->deadline = pc->connect_by = 0;
	pc->reused = pc->got_bytes = pc->retried = false;
	pc->public_origin[0] = pc->err[0] = '\0';
	return pc; /* parsing and the parser stay: call_start reuses its memory */
}

/* Done with pc: kept by the lane (may be NULL) for the next call, or freed. */
static void
call_release(lane *ln, proxy_call *pc)
{
	if (ln == NULL || ln->n_spare >= SPARE_CALLS || pc->req.cap > SPARE_KEEP_BYTES ||
	    pc->resp.cap > SPARE_KEEP_BYTES ||
	    (pc->parsing && pc->parser.line.cap > SPARE_KEEP_BYTES)) {
		call_free(pc);
		return;
	}
	pc->r = NULL;
	pc->next = ln->spare;
	ln->spare = pc;
	ln->n_spare++;
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

/* Appends "name: value\r\n" to the request. */
static bool
add_header(cm_buf *req, const char *name, const char *value)
{
	return cm_buf_appends(req, name) == CM_OK && cm_buf_append(req, ": ", 2) == CM_OK &&
	       cm_buf_appends(req, value) == CM_OK && cm_buf_append(req, "\r\n", 2) == CM_OK;
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
	if (!add_header(&w->pc->req, name, value))
		w->failed = true;
}

/* True when the socket's peer is one of EDGE_TRUSTED_PROXIES (whose X-Forwarded-Proto counts). */
static bool
peer_trusted(edge_req *r)
{
	const union MHD_ConnectionInfo *ci;
	const edge_cidrs               *trusted = edge_live_trusted(r->e); /* one snapshot */
	char                            peer[EDGE_ADDR_LEN];

	if (trusted->n == 0 || r->conn == NULL ||
	    (ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) == NULL ||
	    ci->client_addr == NULL)
		return false;
	edge_peer_text(ci->client_addr, peer);
	return peer[0] != '\0' && edge_cidrs_contain(trusted, peer);
}

static bool
has_body(const edge_req *r)
{
	return r->body.len > 0 || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
	       strcmp(r->method, "PATCH") == 0;
}

/* The upstream request: its line, Host, the client's end-to-end headers, the proxy's own, the
 * framing, the body. */
static bool
build_request(edge_req *r, proxy_call *pc, const char *scheme)
{
	req_walk    w = {.pc = pc};
	const char *host = edge_header(r, "Host");
	char        len[32];
	bool        ok;

	cm_buf_init(&w.connection, 8192);
	ok = cm_buf_appends(&pc->req, r->method) == CM_OK &&
	     cm_buf_append(&pc->req, " ", 1) == CM_OK &&
	     cm_buf_appends(&pc->req, r->raw_path) == CM_OK &&
	     (r->query[0] == '\0' || (cm_buf_append(&pc->req, "?", 1) == CM_OK &&
	                              cm_buf_appends(&pc->req, r->query) == CM_OK)) &&
	     cm_buf_appends(&pc->req, " HTTP/1.1\r\n") == CM_OK &&
	     add_header(&pc->req, "Host", pc->up->host_header);
	if (ok)
		edge_header_each(r, join_connection, &w);
	if (ok && !w.failed)
		edge_header_each(r, pass_request_header, &w);
	if (has_body(r))
		snprintf(len, sizeof(len), "%zu", r->body.len);
	ok = ok && !w.failed && add_header(&pc->req, "X-Forwarded-For", r->client_addr) &&
	     add_header(&pc->req, "X-Forwarded-Proto", scheme) &&
	     (host == NULL || add_header(&pc->req, "X-Forwarded-Host", host)) &&
	     add_header(&pc->req, "X-Request-Id", r->request_id) &&
	     ((pc->up->flags & EDGE_HTTPUP_IDENTITY) == 0 || !r->authed ||
	      add_header(&pc->req, "X-User-Id", r->claims.sub)) &&
	     (!has_body(r) || add_header(&pc->req, "Content-Length", len)) &&
	     cm_buf_append(&pc->req, "\r\n", 2) == CM_OK;
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
		call_release(ln, pc);
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

	r->upstream_name = up->name;
	ln = f->started && !atomic_load(&f->stopping) ? lane_here(f) : NULL;
	if ((pc = call_new(ln, r, up)) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	scheme = edge_proxy_scheme(edge_header(r, "X-Forwarded-Proto"), peer_trusted(r));
	if (!edge_proxy_public_origin(scheme, edge_header(r, "Host"), pc->public_origin,
	                              sizeof(pc->public_origin)))
		pc->public_origin[0] = '\0';
	if (!build_request(r, pc, scheme)) {
		call_release(ln, pc);
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	if (!f->started || atomic_load(&f->stopping)) {
		call_release(ln, pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
		return;
	}
	if (ln != NULL) {
		if (!call_start(ln, pc)) {
			call_release(ln, pc);
			edge_fail(r, CM__STATUS__INTERNAL, "cannot start the upstream request");
		}
		return;
	}
	/* To the loop of r's connection: a streamed answer is read there (the pick is for requests
	 * born off the loops, which have none). */
	l = r->loop != NULL ? r->loop : edge_loop_pick(f->e);
	if (l == NULL || !edge_loop_post(l, start_posted, pc)) {
		call_free(pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
	}
}

/* ---- connections ---------------------------------------------------------------------------- */

static void on_conn_event(void *arg, uint32_t events);

static bool
conn_watch(upconn *c, uint32_t events)
{
	if (c->events == events)
		return true;
	if (!edge_loop_watch_set(c->ln->loop, &c->w, events))
		return false;
	c->events = events;
	return true;
}

static void
conn_close(upconn *c)
{
	if (c->events != 0)
		edge_loop_watch_clear(c->ln->loop, &c->w);
	close(c->w.fd);
	free(c);
}

/* The upstream's address, looked up again every RESOLVE_EVERY_MS (a failed lookup keeps the
 * last one). The lookup blocks this loop: it happens only when a connection is opened. */
static bool
resolve(lane *ln, const edge_httpup *up)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int64_t          now = cm_mono_ms();
	int              i = up->index;

	if (ln->resolved_at[i] != 0 && now - ln->resolved_at[i] < RESOLVE_EVERY_MS)
		return true;
	if (getaddrinfo(up->host, up->port, &hints, &ai) == 0 && ai != NULL &&
	    ai->ai_addrlen <= sizeof(ln->addr[i])) {
		memcpy(&ln->addr[i], ai->ai_addr, ai->ai_addrlen);
		ln->addrlen[i] = ai->ai_addrlen;
		ln->resolved_at[i] = now;
	}
	if (ai != NULL)
		freeaddrinfo(ai);
	return ln->addrlen[i] > 0;
}

/* A new connection to up, connecting; NULL with errno set. */
static upconn *
conn_open(lane *ln, const edge_httpup *up)
{
	upconn *c;
	int     fd, one = 1, i = up->index;

	if (!resolve(ln, up)) {
		errno = EHOSTUNREACH;
		return NULL;
	}
	if ((fd = socket(ln->addr[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&ln->addr[i], ln->addrlen[i]) != 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->w = (edge_loop_watch){on_conn_event, c, fd};
	c->ln = ln;
	c->up = i;
	c->connecting = true;
	return c;
}

/* ---- the calls ------------------------------------------------------------------------------- */

static void lane_arm(lane *ln);

static void
unlink_call(lane *ln, proxy_call *pc)
{
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		ln->running = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	pc->next = pc->prev = NULL;
}

/* Copies the collected response headers that cross onto r; Location and Content-Location are
 * turned to the public origin when the app aimed them at itself. */
static void
apply_headers(proxy_call *pc)
{
	edge_req   *r = pc->r;
	cm_buf      conn;
	const char *p, *end = pc->resp.data + pc->resp.len;
	char rewritten[sizeof(((edge_req *)0)->raw_path) + sizeof(((edge_req *)0)->query_buf) +
	               2 * EDGE_ORIGIN_MAX];
	int  dropped = 0;

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

/* A HEAD answer's body: never asked for (MHD sends none for HEAD), it only carries the size. */
static ssize_t
head_body(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)cls;
	(void)pos;
	(void)out;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static void
head_done(void *cls)
{
	(void)cls;
}

/* Ends pc (its connection already closed or back in the idle stack) with the upstream's answer. */
static void
call_answer(lane *ln, proxy_call *pc)
{
	edge_req *r = pc->r;
	int64_t   size = edge_httpresp_body_size(&pc->parser);
	int       status = pc->parser.status;

	unlink_call(ln, pc);
	lane_arm(ln);
	r->status = (uint16_t)status;
	apply_headers(pc);
	if (r->content_type == NULL)
		r->content_type = "application/octet-stream";
	call_release(ln, pc);
	/* HEAD: the framing the app announced for GET (its Content-Length, or chunked), not the
	 * empty body's "Content-Length: 0" (download managers size files by HEAD). */
	if (strcmp(r->method, "HEAD") == 0 && status >= 200 && status != 204 && status != 304)
		edge_respond_stream(r, size >= 0 ? (uint64_t)size : EDGE_BODY_SIZE_UNKNOWN,
		                    head_body, NULL, head_done);
	else
		edge_respond(r);
}

static void stream_end(lane *ln, proxy_call *pc, bool whole);

typedef enum call_outcome {
	CALL_FAILED,   /* 502: the upstream failed or said something unreadable */
	CALL_TOOBIG,   /* 502: its answer is larger than the edge holds */
	CALL_TIMEDOUT, /* 504 */
	CALL_STOPPING, /* 503: the loop stops */
} call_outcome;

/* Ends pc without an answer: its connection is closed and the client gets the edge's error. */
static void
call_fail(lane *ln, proxy_call *pc, call_outcome why)
{
	edge_req *r = pc->r;
	char      msg[128];

	if (pc->conn != NULL) {
		conn_close(pc->conn);
		pc->conn = NULL;
	}
	unlink_call(ln, pc);
	lane_arm(ln);
	if (pc->stream != NULL) { /* the head went out: all the client can learn is the cut */
		cm_warn("EDGE-PROXY-CUT", "%s's streamed answer ended early: %s", pc->up->name,
		        why == CALL_TIMEDOUT   ? "no progress in time"
		        : why == CALL_STOPPING ? "the edge is stopping"
		        : pc->err[0] != '\0'   ? pc->err
		                               : "failed");
		stream_end(ln, pc, false);
		return;
	}
	cm_buf_reset(&r->out); /* what a cut answer brought is not the error's body */
	switch (why) {
	case CALL_STOPPING:
		call_release(ln, pc);
		edge_fail_http(r, 503, "UNAVAILABLE", "the edge is stopping");
		return;
	case CALL_TOOBIG:
		cm_warn("EDGE-PROXY-BIG", "rid=%s: %s's answer to %s is too large", r->request_id,
		        pc->up->name, r->raw_path);
		snprintf(msg, sizeof(msg), "%s sent a response too large", pc->up->what);
		call_release(ln, pc);
		edge_fail_http(r, 502, "UNAVAILABLE", msg);
		return;
	case CALL_TIMEDOUT:
		cm_warn("EDGE-PROXY-SLOW", "rid=%s: %s: %s", r->request_id, pc->up->name,
		        pc->connect_by != 0 ? "connect timed out" : "no answer in time");
		snprintf(msg, sizeof(msg), "%s did not answer in time", pc->up->what);
		call_release(ln, pc);
		edge_fail_http(r, 504, "DEADLINE_EXCEEDED", msg);
		return;
	case CALL_FAILED:
		break;
	}
	cm_warn("EDGE-PROXY-FAIL", "rid=%s: %s: %s", r->request_id, pc->up->name,
	        pc->err[0] != '\0' ? pc->err : "failed");
	snprintf(msg, sizeof(msg), "%s is unavailable", pc->up->what);
	call_release(ln, pc);
	edge_fail_http(r, 502, "UNAVAILABLE", msg);
}

static bool conn_send(upconn *c);

/* Bytes of the request sent upstream: the head in pc->req, then the client's body as it is. */
static size_t
request_len(const proxy_call *pc)
{
	return pc->req.len + pc->body_len;
}

/* ---- streamed answers ------------------------------------------------------------------------ */

/* The client's connection waits for bytes: they came, or the call ended. */
static void
stream_wake(proxy_stream *s)
{
	if (!s->client_waiting)
		return;
	s->client_waiting = false;
	MHD_resume_connection(s->conn);
	edge_loop_daemon_due(s->loop);
}

/* The call under a stream ended (its connection closed or back in the idle stack, the call out of
 * the running list): the stream keeps what it has for the client, and whether it was whole. */
static void
stream_end(lane *ln, proxy_call *pc, bool whole)
{
	proxy_stream *s = pc->stream;

	pc->stream = NULL;
	s->pc = NULL;
	s->done = whole;
	s->failed = !whole;
	call_release(ln, pc);
	stream_wake(s);
}

/* MHD wants up to max bytes of the body for the client. */
static ssize_t
stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	proxy_stream *s = cls;
	size_t        avail = s->buf.len - s->rd;

	(void)pos;
	if (avail > 0) {
		size_t n = avail < max ? avail : max;

		memcpy(out, s->buf.data + s->rd, n);
		s->rd += n;
		if (s->rd == s->buf.len) {
			s->rd = 0;
			cm_buf_reset(&s->buf);
		}
		if (s->pc != NULL) {
			s->pc->deadline = cm_mono_ms() + TIMEOUT_MS(s->pc); /* progress */
			/* The client caught up: the upstream's socket back in epoll
			 * (level-triggered: what waits in it is read on the loop's next round). */
			if (s->paused && s->buf.len - s->rd < STREAM_LOW && s->pc->conn != NULL &&
			    conn_watch(s->pc->conn, EPOLLIN))
				s->paused = false;
		}
		return (ssize_t)n;
	}
	if (s->failed)
		return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes: the client sees the cut */
	if (s->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing yet: MHD would call again at once, so the connection sleeps until stream_wake. */
	s->client_waiting = true;
	MHD_suspend_connection(s->conn);
	return 0;
}

/* Ends a streamed call whose client is gone: its connection is mid-answer, never reusable. */
static void
stream_call_drop(lane *ln, proxy_call *pc)
{
	if (pc->conn != NULL)
		conn_close(pc->conn);
	pc->conn = NULL;
	unlink_call(ln, pc);
	lane_arm(ln);
	pc->stream = NULL;
	call_release(ln, pc);
}

/* MHD is done with the response (sent, or the client went): a call still running is ended. */
static void
stream_done(void *cls)
{
	proxy_stream *s = cls;

	if (s->starting) { /* from inside stream_start: it cleans up */
		s->gone = true;
		return;
	}
	if (s->pc != NULL)
		stream_call_drop(s->ln, s->pc);
	cm_buf_fini(&s->buf);
	free(s);
}

/* The head is in and the body is large or of unknown length: the answer's head goes out now and
 * its body follows as it comes, at most STREAM_HIGH bytes of it held. False when pc ended. */
static bool
stream_start(lane *ln, proxy_call *pc)
{
	edge_req     *r = pc->r;
	proxy_stream *s = calloc(1, sizeof(*s));
	int64_t       size = edge_httpresp_body_size(&pc->parser);

	if (s == NULL)
		return true; /* collected as usual */
	s->buf = r->out;     /* what came with the head */
	s->buf.max = STREAM_BUF_MAX;
	cm_buf_init(&r->out, 0);
	edge_httpresp_set_body(&pc->parser, &s->buf);
	s->pc = pc;
	s->ln = ln;
	s->conn = r->conn;
	s->loop = r->loop;
	pc->stream = s;
	r->status = (uint16_t)pc->parser.status;
	apply_headers(pc);
	if (r->content_type == NULL)
		r->content_type = "application/octet-stream";
	pc->r = NULL;
	pc->deadline = cm_mono_ms() + TIMEOUT_MS(pc);
	s->starting = true;
	edge_respond_stream(r, size >= 0 ? (uint64_t)size : EDGE_BODY_SIZE_UNKNOWN, stream_read, s,
	                    stream_done);
	s->starting = false;
	if (!s->gone)
		return true;
	/* No memory for the response: r is gone (its connection closes without an answer), and so
	 * is the call, its connection mid-answer. */
	cm_buf_fini(&s->buf);
	free(s);
	stream_call_drop(ln, pc);
	return false;
}

/* Whether the answer now coming on pc is streamed rather than collected. */
static bool
should_stream(const lane *ln, const proxy_call *pc)
{
	int64_t size;

	if (pc->stream != NULL || pc->r == NULL || pc->parser.status == 0 ||
	    pc->sent < request_len(pc) || ln->loop != pc->r->loop)
		return false;
	size = edge_httpresp_body_size(&pc->parser);
	return size < 0 || size > STREAM_AFTER;
}

/* Puts pc on connection c (idle or new) and starts sending. */
static void
call_attach(lane *ln, proxy_call *pc, upconn *c, bool reused)
{
	pc->conn = c;
	pc->reused = reused;
	pc->sent = 0;
	c->pc = pc;
	pc->connect_by = c->connecting ? cm_mono_ms() + HTTPPROXY_CONNECT_MS : 0;
	lane_arm(ln);
	if (c->connecting) {
		if (!conn_watch(c, EPOLLOUT)) {
			snprintf(pc->err, sizeof(pc->err), "cannot watch the connection");
			call_fail(ln, pc, CALL_FAILED);
		}
		return;
	}
	(void)conn_send(c);
}

/* A connection failed under pc (err: errno): tried again once on a fresh connection when it was
 * a kept-alive one that died before any byte of the answer (the upstream closed it as it idled),
 * else 502. */
static void
call_conn_failed(lane *ln, proxy_call *pc, int err)
{
	upconn *c;

	if (pc->conn != NULL) {
		conn_close(pc->conn);
		pc->conn = NULL;
	}
	if (pc->reused && !pc->got_bytes && !pc->retried) {
		pc->retried = true;
		if ((c = conn_open(ln, pc->up)) != NULL) {
			call_attach(ln, pc, c, false);
			return;
		}
		err = errno;
	}
	snprintf(pc->err, sizeof(pc->err), "%s", strerror(err));
	call_fail(ln, pc, CALL_FAILED);
}

/* Sends what is left of the request; false when pc ended (failed). */
static bool
conn_send(upconn *c)
{
	proxy_call *pc = c->pc;

	while (pc->sent < request_len(pc)) {
		/* The head from its buffer, the body from the request's own (never copied). */
		struct iovec  iov[2];
		struct msghdr mh = {.msg_iov = iov};
		ssize_t       n;

		if (pc->sent < pc->req.len) {
			iov[mh.msg_iovlen++] =
			    (struct iovec){pc->req.data + pc->sent, pc->req.len - pc->sent};
			iov[mh.msg_iovlen++] = (struct iovec){pc->body, pc->body_len};
		} else {
			size_t off = pc->sent - pc->req.len;
			iov[mh.msg_iovlen++] = (struct iovec){pc->body + off, pc->body_len - off};
		}
		n = sendmsg(c->w.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			pc->sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn_watch(c, EPOLLIN | EPOLLOUT))
				return true;
			errno = ENOMEM;
		}
		call_conn_failed(c->ln, pc, n < 0 ? errno : EPIPE);
		return false;
	}
	if (!conn_watch(c, EPOLLIN)) {
		call_conn_failed(c->ln, pc, ENOMEM);
		return false;
	}
	return true;
}

/* The answer is whole: the connection goes back to the idle stack when it may carry another
 * request (and there is room), else it is closed; then the client gets the answer. */
static void
call_done(lane *ln, proxy_call *pc, bool reusable)
{
	upconn *c = pc->conn;

	pc->conn = NULL;
	c->pc = NULL;
	if (reusable && !atomic_load(&ln->f->stopping) && ln->n_idle[c->up] < HTTPPROXY_MAX_CONNS &&
	    conn_watch(c, EPOLLIN)) {
		c->next = ln->idle[c->up];
		ln->idle[c->up] = c;
		ln->n_idle[c->up]++;
	} else {
		conn_close(c);
	}
	if (pc->stream != NULL) {
		unlink_call(ln, pc);
		lane_arm(ln);
		stream_end(ln, pc, true);
		return;
	}
	call_answer(ln, pc);
}

/* Whether a stream has room for another read, after dropping what the client took; when not,
 * the upstream's socket leaves epoll until stream_read drains it (TCP then slows the app). */
static bool
stream_room(upconn *c, proxy_stream *s)
{
	if (s->rd >= STREAM_HIGH / 2) {
		memmove(s->buf.data, s->buf.data + s->rd, s->buf.len - s->rd);
		s->buf.len -= s->rd;
		s->buf.data[s->buf.len] = '\0';
		s->rd = 0;
	}
	if (s->buf.len - s->rd < STREAM_HIGH)
		return true;
	edge_loop_watch_clear(c->ln->loop, &c->w);
	c->events = 0;
	s->paused = true;
	return false;
}

/* Reads what the upstream sent and feeds the call's parser. */
static void
conn_recv(upconn *c)
{
	proxy_call *pc = c->pc;
	char        buf[READ_CHUNK];

	for (;;) {
		ssize_t      n;
		size_t       used;
		edge_resp_rc rc;

		if (pc->stream != NULL && !stream_room(c, pc->stream))
			return;
		n = recv(c->w.fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			call_conn_failed(c->ln, pc, errno);
			return;
		}
		if (n == 0) {
			if (pc->got_bytes && edge_httpresp_eof(&pc->parser) == EDGE_RESP_DONE) {
				call_done(c->ln, pc, false);
				return;
			}
			if (pc->got_bytes)
				snprintf(pc->err, sizeof(pc->err), "the answer was cut short");
			call_conn_failed(c->ln, pc, ECONNRESET);
			return;
		}
		pc->got_bytes = true;
		rc = edge_httpresp_feed(&pc->parser, buf, (size_t)n, &used);
		if (rc == EDGE_RESP_DONE) {
			/* Bytes past the answer: the upstream is out of step, never reuse it. */
			call_done(c->ln, pc, pc->parser.keep_alive && used == (size_t)n);
			return;
		}
		if (rc == EDGE_RESP_TOOBIG) {
			call_fail(c->ln, pc, CALL_TOOBIG);
			return;
		}
		if (rc == EDGE_RESP_BAD) {
			snprintf(pc->err, sizeof(pc->err), "a malformed answer");
			call_fail(c->ln, pc, CALL_FAILED);
			return;
		}
		if (pc->stream != NULL) {
			pc->deadline = cm_mono_ms() + TIMEOUT_MS(pc); /* progress */
			stream_wake(pc->stream);
		} else if (should_stream(c->ln, pc) && !stream_start(c->ln, pc)) {
			return;
		}
	}
}

/* Takes c out of its upstream's idle stack. */
static void
idle_remove(lane *ln, upconn *c)
{
	for (upconn **p = &ln->idle[c->up]; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			ln->n_idle[c->up]--;
			return;
		}
}

static void
on_conn_event(void *arg, uint32_t events)
{
	upconn     *c = arg;
	proxy_call *pc = c->pc;

	if (pc == NULL) { /* an idle connection closed, or spoke out of turn: done with it */
		idle_remove(c->ln, c);
		conn_close(c);
		return;
	}
	if (c->connecting) {
		int       err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->w.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			call_conn_failed(c->ln, pc, err);
			return;
		}
		c->connecting = false;
		pc->connect_by = 0;
		lane_arm(c->ln);
		(void)conn_send(c);
		return;
	}
	if ((events & EPOLLOUT) && pc->sent < request_len(pc) && !conn_send(c))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_recv(c);
}

/* Sets pc off on a kept-alive connection, or a new one. */
static bool
call_start(lane *ln, proxy_call *pc)
{
	edge_req *r = pc->r;
	int       i = pc->up->index;
	upconn   *c;
	bool      reused = false;

	if (pc->parsing)
		edge_httpresp_reuse(&pc->parser, strcmp(r->method, "HEAD") == 0, &pc->resp,
		                    &r->out);
	else
		edge_httpresp_init(&pc->parser, strcmp(r->method, "HEAD") == 0, &pc->resp, &r->out);
	pc->parsing = true;
	pc->deadline = cm_mono_ms() + TIMEOUT_MS(pc);
	pc->prev = NULL;
	pc->next = ln->running;
	if (ln->running != NULL)
		ln->running->prev = pc;
	ln->running = pc;
	if ((c = ln->idle[i]) != NULL) {
		ln->idle[i] = c->next;
		ln->n_idle[i]--;
		reused = true;
	} else if ((c = conn_open(ln, pc->up)) == NULL) {
		snprintf(pc->err, sizeof(pc->err), "%s", strerror(errno));
		call_fail(ln, pc, CALL_FAILED);
		return true;
	}
	call_attach(ln, pc, c, reused);
	return true;
}

/* ---- the lane's timer ------------------------------------------------------------------------ */

static int64_t
due_of(const proxy_call *pc)
{
	return pc->connect_by != 0 && pc->connect_by < pc->deadline ? pc->connect_by : pc->deadline;
}

static void
on_lane_timer(void *arg)
{
	lane       *ln = arg;
	int64_t     now = cm_mono_ms();
	proxy_call *pc, *next;

	for (pc = ln->running; pc != NULL; pc = next) {
		next = pc->next;
		if (due_of(pc) <= now)
			call_fail(ln, pc, CALL_TIMEDOUT); /* re-arms */
	}
	lane_arm(ln);
}

/* The loop's timer at the nearest deadline of the running calls (none: off). */
static void
lane_arm(lane *ln)
{
	int64_t due = -1;

	for (const proxy_call *pc = ln->running; pc != NULL; pc = pc->next)
		if (due < 0 || due_of(pc) < due)
			due = due_of(pc);
	edge_loop_timer_set(ln->loop, due, on_lane_timer, ln);
}

/* The loop stops: calls still running are answered 503, idle connections closed, then the lane
 * goes. */
static void
lane_free(void *v)
{
	lane           *ln = v;
	edge_httpproxy *f = ln->f;

	while (ln->running != NULL)
		call_fail(ln, ln->running, CALL_STOPPING);
	for (int i = 0; i < HTTPPROXY_UPSTREAMS_MAX; i++)
		while (ln->idle[i] != NULL) {
			upconn *c = ln->idle[i];
			ln->idle[i] = c->next;
			conn_close(c);
		}
	while (ln->spare != NULL) {
		proxy_call *pc = ln->spare;
		ln->spare = pc->next;
		call_free(pc);
	}
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
	edge_loop_slot_set(l, ln, lane_free);
	return ln;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

cm_err
edge_httpproxy_open(edge_httpproxy **out)
{
	edge_httpproxy *f;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return CM_ENOMEM;
	f->timeout_ms = HTTPPROXY_TIMEOUT_MS;
	*out = f;
	return CM_OK;
}

/* host and port of up->origin ("http://host:port", "[v6]" bracketed), and the Host header it
 * sends ("host:port", or "host" on port 80). */
static bool
split_origin(edge_httpup *up)
{
	const char *h = up->origin + 7, *colon = strrchr(h, ':');
	size_t      hl;
	int         n;

	if (strncmp(up->origin, "http://", 7) != 0 || colon == NULL || colon == h ||
	    strlen(colon + 1) >= sizeof(up->port))
		return false;
	hl = (size_t)(colon - h);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		memcpy(up->host, h + 1, hl - 2);
		up->host[hl - 2] = '\0';
	} else {
		memcpy(up->host, h, hl);
		up->host[hl] = '\0';
	}
	cm_strlcpy(up->port, colon + 1, sizeof(up->port));
	n = strcmp(up->port, "80") == 0
	        ? snprintf(up->host_header, sizeof(up->host_header), "%.*s", (int)hl, h)
	        : snprintf(up->host_header, sizeof(up->host_header), "%s", h);
	return n > 0 && (size_t)n < sizeof(up->host_header);
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
	if (!split_origin(up))
		return CM_EINVAL;
	up->proxy = f;
	up->name = name;
	up->what = what;
	up->flags = flags;
	up->index = f->n_ups;
	f->n_ups++;
	*out = up;
	return CM_OK;
}

cm_err
edge_httpproxy_start(edge_httpproxy *f, edge *e)
{
	f->e = e;
	if (e->cfg.proxy_timeout_ms > 0)
		f->timeout_ms = e->cfg.proxy_timeout_ms;
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
}
