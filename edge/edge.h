/*
 * edge.h - the edge's shared types: configuration, the running edge, one HTTP exchange, routes.
 *
 * LIFECYCLE OF A REQUEST (server.c). libmicrohttpd parses requests on its event-loop threads and
 * calls our handler for the headers, for each piece of the body, and once more at its end; nothing
 * here blocks. At the headers (stage_head) the route is matched and everything that needs no
 * upstream is decided: preflight, local answers, 404/405, CSRF, authentication of the token, rate
 * limits, body limits. An answer decided there waits for the end of a small body (which is read
 * and dropped, so it is never taken for the next request) or is sent at once with the connection
 * closed. Otherwise the body is collected under the route's limit and a global memory budget
 * (an upload's is streamed to svc-pdf in pieces instead, upload.h); then the connection is
 * suspended and the request runs: cookie renewal through svc-auth when
 * needed -> the migration decision (migrate.h: a legacy route's request may go to the old backend
 * over HTTP instead, and comes back there when the new service has no replica to call) -> route's
 * start() -> async RPC -> route's reply() -> edge_respond(), which builds the
 * response, writes the access log and resumes the connection; the engine sends it. A legacy route
 * that must wait for slow work polls from its reply() on a timer aio (poll.h). A WebSocket
 * upgrade at /api/v1/ws is checked here and handed to ws.c with its socket (ws.h).
 */
#ifndef EDGE_EDGE_H
#define EDGE_EDGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "cm/arena.h"
#include "cm/buf.h"
#include "cm/jwt.h"
#include "cm/limits.h"
#include "cm/rpc.h"
#include "clientaddr.h"

typedef struct cm_metrics     cm_metrics;
typedef struct edge_limiter   edge_limiter;
typedef struct edge_refresher edge_refresher;
typedef struct edge_httpproxy edge_httpproxy;
typedef struct edge_httpup    edge_httpup;
typedef struct edge_migrate   edge_migrate;
typedef struct edge_ws        edge_ws;
typedef struct edge_revoked   edge_revoked;
typedef struct edge_loops     edge_loops;
typedef struct edge_loop      edge_loop;
struct MHD_Daemon;
struct MHD_Connection;
struct MHD_Response;

typedef struct edge_config {
	const char *log_level;
	const char *addr;
	const char *auth_urls;
	const char *pdf_urls;         /* "" = documents not served (503) */
	const char *qgen_urls;        /* "" = question generation not served (503) */
	const char *qgen_events_urls; /* svc-qgen's event publishers ("" = no live progress) */
	int64_t     generate_wait_ms; /* legacy generate-questions: how long to wait for the job */
	const char *eval_urls;        /* "" = grading not served (503) */
	const char *eval_events_urls; /* svc-eval's event publishers */
	int64_t     evaluate_wait_ms; /* legacy evaluate-quiz/answer: how long to wait for grades */
	const char *chat_urls;        /* "" = chat not served (503) */
	const char *chat_events_urls; /* svc-chat's event publishers (streamed answers) */
	int64_t     chat_timeout_ms;  /* deadline of a chat answer (EDGE_R_LONG routes) */
	const char *frontend_url;     /* "" = no frontend: non-API paths are 404 */
	const char *legacy_backend_url; /* the old backend (migrate.h); "" = no migration */
	int64_t     legacy_share;       /* percent of users whose legacy calls go there */
	const char *legacy_routes;      /* route names taking part ("" = every one that can) */
	const char *legacy_users;       /* user ids always sent there */
	bool        legacy_fallback;    /* the new service unreachable: the old backend answers */
	const char *jwt_secret;
	const char *jwt_public_key_file;
	const char *cors_origins;
	bool        cookie_secure;
	int64_t     json_body_max;
	int64_t     upload_max;
	const char *trusted_proxies; /* CIDRs whose X-Forwarded-For is believed */
	int64_t     threads;         /* event-loop threads (0 = one per core) */
	int64_t     max_connections;
	int64_t     max_connections_per_addr;
	int64_t     idle_timeout_s; /* no progress on a connection for this long: closed */
	int64_t     header_max;     /* bytes of request line + headers (431 beyond) */
	int64_t     body_budget;    /* bytes of request bodies held at once, all requests (503) */
	int64_t     ws_idle_s;      /* a WebSocket silent this long is closed */
	int64_t     access_log_flush_ms; /* access lines buffered this long at most (0: written
	                                    one by one) */
	int64_t     ws_max_sockets;
	int64_t     rate_per_s; /* every route's limit per client address and per user (0 = off) */
	int64_t     rate_burst;
	const char *route_limits;          /* overrides: "route=rate/burst,..." (ratelimit.h) */
	int64_t     rate_redis_timeout_ms; /* a shared decision waits no longer (then local) */
	int64_t     drain_s;
	int64_t     rpc_timeout_ms;
	int64_t     proxy_timeout_ms; /* an HTTP upstream's exchange (streamed: since progress) */
	int64_t     session_ttl_s;    /* Max-Age of the session cookie */
	const char *redis_host;       /* revoked sessions, shared rate limits; "" = neither */
	int64_t     redis_port;
	const char
	    *config_file; /* EDGE_CONFIG_FILE: KEY=VALUE over the environment, re-read on HUP */
	const char *admin_addr; /* /configz and /metrics; "" = none */
} edge_config;

/* Upstream services the edge can route to. */
typedef enum edge_upstream_id {
	EDGE_UP_NONE = 0,
	EDGE_UP_AUTH,
	EDGE_UP_PDF,
	EDGE_UP_QGEN,
	EDGE_UP_EVAL,
	EDGE_UP_CHAT,
	EDGE_UP_COUNT
} edge_upstream_id;

typedef struct edge_live edge_live;

typedef struct edge {
	/* The configuration as it was at start. What a reload can change (reload.h) is read from
	 * the live snapshot or from the component that owns it, never from here. */
	edge_config          cfg;
	_Atomic(edge_live *) live;  /* the running configuration (reload.h); never NULL once set */
	edge_loops          *loops; /* the event loops and their daemons (loop.h) */
	atomic_llong         body_bytes; /* request-body bytes held now (EDGE_BODY_BUDGET) */
	/* Swapped by a reload (a changed EDGE_*_URLS): read the pointer once per call; the client
	 * it names stays open until every call that could have read it has ended (reload.c). */
	cm_rpc_client *_Atomic up[EDGE_UP_COUNT];
	cm_jwt_key            *jwt;
	cm_metrics            *metrics;
	edge_limiter          *limiter;
	edge_refresher        *refresher;
	edge_httpproxy        *http; /* HTTP upstreams (httpproxy.h); NULL when there are none */
	edge_httpup           *frontend_up; /* NULL: no frontend (404) */
	edge_migrate          *migrate;     /* NULL: no old backend */
	edge_ws               *ws;          /* WebSocket events (ws.c); NULL when not started */
	edge_revoked          *revoked;     /* revoked sessions (revoked.h); NULL when off */
	atomic_bool            draining;
	atomic_int             inflight;
} edge;

typedef struct edge_req   edge_req;
typedef struct edge_route edge_route;

typedef void (*edge_start_fn)(edge_req *r);
typedef void (*edge_reply_fn)(edge_req *r, cm_rpc_result *res);

#define EDGE_R_AUTH 0x01u       /* a valid session is required (401 otherwise) */
#define EDGE_R_AUTH_OPT 0x02u   /* authenticate when credentials are present */
#define EDGE_R_LEGACY 0x04u     /* legacy error shape {"detail"} */
#define EDGE_R_IDEMPOTENT 0x08u /* may be retried on another replica */
#define EDGE_R_UPLOAD 0x10u     /* body limit is EDGE_UPLOAD_MAX, not EDGE_JSON_BODY_MAX */
#define EDGE_R_LONG 0x20u       /* the call's deadline is EDGE_CHAT_TIMEOUT_MS (streamed answers) */
/* The call may share one RPC message with others to the same upstream (cm/rpc.h BATCHING): only
 * cheap reads the service answers in well under a millisecond, since a batch's calls run one
 * after the other on one worker. Never uploads, logins (Argon2), chat sends or long calls. */
#define EDGE_R_BATCH 0x40u

struct edge_route {
	const char                       *method;
	const char                       *pattern; /* "/api/v1/documents/{id}" */
	unsigned                          flags;
	edge_upstream_id                  upstream;
	const char                       *rpc;
	const ProtobufCMessageDescriptor *req_desc;
	const ProtobufCMessageDescriptor *resp_desc;
	uint16_t                          ok_status;
	edge_start_fn                     start; /* NULL: JSON body -> req_desc -> rpc */
	edge_reply_fn                     reply; /* NULL: resp_desc -> JSON, ok_status */
	const char                       *name;  /* label for metrics and logs */
};

#define EDGE_MAX_PARAMS 4

struct edge_req {
	edge                  *e;
	struct MHD_Connection *conn;
	edge_loop             *loop; /* whose daemon serves conn (loop.h) */
	const edge_route      *route;
	uint64_t               start_ns;
	char                   request_id[CM_MAX_REQUEST_ID + 1];
	char                   method[16];
	char                   path[512];     /* without a trailing slash, for route matching */
	char                   raw_path[512]; /* as sent (the frontend proxy forwards it) */
	const char            *query;         /* inside path_buf, after '?', or "" */
	char                   query_buf[1024];
	char                   params[EDGE_MAX_PARAMS][128];
	int                    n_params;
	bool                   legacy;
	char                   client_addr[EDGE_ADDR_LEN];
	char                   origin[256]; /* allowed Origin to echo, "" when none */

	/* authentication */
	bool          authed;
	cm_jwt_claims claims;
	char         *cookie_access; /* from the session cookie, NULL when none */
	char         *cookie_refresh;
	char         *bearer;
	bool          renew_unavailable; /* cookie renewal could not reach svc-auth */

	/* request body */
	cm_buf body;
	size_t content_length;
	size_t body_max;      /* the route's limit */
	size_t body_reserved; /* charged to e->body_bytes */
	bool   has_body;      /* Content-Length > 0 or chunked */
	size_t discarded;     /* body bytes dropped after an early answer */
	bool   renew;         /* cookie renewal runs once the body is in */
	/* an upload body streamed to svc-pdf in pieces (upload.h) */
	bool     body_streamed;
	char     upload_id[33];    /* "" until the first piece leaves */
	uint64_t upload_sent;      /* bytes of the pieces svc-pdf has */
	size_t   upload_piece_len; /* the piece in flight */
	bool     upload_ended;     /* pdf.UploadBody sent: the spool is svc-pdf's to remove */
	bool     renew_at_head;    /* an upload's cookie renewed before its body comes */
	bool     head_renewed;     /* ... done: the engine calls for the headers once more */
	bool     drain_body;       /* answered half-way: the rest is read and dropped, whatever
	                            * its size, and the answer goes out at its end */

	/* response */
	uint16_t    status;
	cm_buf      out;
	const char *content_type;
	char       *set_cookie; /* malloc'd, NULL when none */
	char        retry_after[16];
	char        allow[64];
	bool        close;
	const char *upstream_name;
	const char *extra_headers[24][2]; /* more response headers (arena strings) */
	int         n_extra_headers;

	/* engine state (server.c) */
	struct MHD_Response *response;  /* built by edge_respond, queued by the handler */
	bool                 suspended; /* running: edge_respond resumes the connection */
	bool                 queue_now; /* answer at the headers, closing (body left unread) */
	bool                 answered;
	void                *ws_handoff; /* an accepted WebSocket upgrade (server.c) */
	bool                 upgraded;   /* the socket went to ws.c */

	/* gradual migration (migrate.h) */
	const char *routed; /* "new", "old" or "old_fallback"; NULL: the route takes no part */
	bool may_fall_back; /* "new" with EDGE_LEGACY_FALLBACK, no upstream call started yet */

	cm_arena arena;       /* protobuf messages built from JSON */
	void    *route_state; /* a route's own data from start() to reply() (in arena) */
};

/* Name of an upstream, for logs and metrics. */
const char *edge_upstream_name(edge_upstream_id id);

/* ---- server.c ------------------------------------------------------------------------------ */
/* Listens on EDGE_ADDR; "" listens nowhere (sockets come through edge_serve_socket). */
CM_MUSTCHECK cm_err edge_start(edge *e);
/* Serves one connected socket as if accepted from 127.0.0.1 (the fuzzer); the engine closes it. */
CM_MUSTCHECK cm_err edge_serve_socket(edge *e, int fd);
void                edge_drain_and_stop(edge *e);

/* Finishes the exchange with r->status, r->out, r->content_type. Consumes r. */
void edge_respond(edge_req *r);
/* A streamed body, as libmicrohttpd pulls it (the same types as its MHD_ContentReaderCallback
 * and MHD_ContentReaderFreeCallback): read writes up to max bytes into buf and says how many,
 * 0 for none yet (after suspending the connection: MHD would call again at once), or MHD's
 * end-of-stream / end-with-error values; done runs when the response is destroyed. */
typedef ssize_t (*edge_body_read)(void *cls, uint64_t pos, char *buf, size_t max);
typedef void (*edge_body_done)(void *cls);
#define EDGE_BODY_SIZE_UNKNOWN UINT64_MAX /* MHD_SIZE_UNKNOWN: sent chunked */

/* Resumes r's connection, suspended while a piece of its body was sent on (upload.h), to read
 * the rest. Any thread. */
void edge_body_resume(edge_req *r);
/* Finishes the exchange with r->status and a body pulled by read(cls, ...) as the client takes
 * it, size bytes (or EDGE_BODY_SIZE_UNKNOWN); done(cls) runs once, when the response is
 * destroyed, sent or not, or at once when there is no memory for it. Called on r's loop, whose
 * thread alone calls read. Consumes r. The access line is written now, its bytes size (0 when
 * unknown). */
void edge_respond_stream(edge_req *r, uint64_t size, edge_body_read read, void *cls,
                         edge_body_done done);
/* Error response with the route's shape; status is a cm.Status. Consumes r. */
void edge_fail(edge_req *r, int rpc_status, const char *message);
/* Error with an explicit HTTP status and code name (413, 411, 415...). Consumes r. */
void edge_fail_http(edge_req *r, uint16_t http, const char *code, const char *message);
/* ---- call.c -------------------------------------------------------------------------------- */
/* Fills o for an upstream call: method, request id, a deadline EDGE_RPC_TIMEOUT_MS from now, the
 * caller (subject, session: NULL or "" for anonymous), the client address. Never sets a role:
 * nothing the edge sends can pass for a service's own call (CM_ROLE_SERVICE, cm/rpc.h). */
void edge_rpc_opts(const edge *e, const char *method, const char *request_id, const char *subject,
                   const char *session_id, const char *client_addr, bool idempotent,
                   cm_rpc_call_opts *o);
/* edge_rpc_opts for a call made for r: its request id, its authenticated caller, its client. */
void edge_req_opts(const edge_req *r, const char *method, bool idempotent, cm_rpc_call_opts *o);

/* Answers a failed upstream call of r that is not the route's own (method names it in the log):
 * its status and message, with Retry-After as for the route's calls. Consumes r. */
void edge_fail_call(edge_req *r, const char *method, const cm_rpc_result *res);
/* Starts the route's RPC with a packed-from-message payload; reply goes to route->reply. */
void edge_call(edge_req *r, const ProtobufCMessage *msg);
/* For reply adapters: on an OK result, the unpacked response of type d (free it with
 * protobuf_c_message_free_unpacked); otherwise answers the error (consuming r) and returns NULL. */
ProtobufCMessage *edge_reply_unpack(edge_req *r, cm_rpc_result *res,
                                    const ProtobufCMessageDescriptor *d);
/* The route's default reply: payload -> resp_desc -> JSON with ok_status. */
void edge_reply_generic(edge_req *r, cm_rpc_result *res);
/* The route's default start: JSON body -> req_desc -> edge_call. */
void edge_start_generic(edge_req *r);
/* The body translated to the route's req_desc (pbjson.h: types only, values are the service's to
 * check), in r's arena. NULL after answering 400 (r is consumed). */
ProtobufCMessage *edge_body_pb(edge_req *r);
/* Parses the body as a JSON object (NULL body -> empty object). On failure answers 400 and
 * returns NULL (r is consumed). */
json_t *edge_body_json(edge_req *r);
/* Value of a request header (name matched case-insensitively), NULL when absent; valid while r
 * lives. */
const char *edge_header(edge_req *r, const char *name);
/* Calls fn for every request header, in the order received. */
void edge_header_each(edge_req *r, void (*fn)(void *arg, const char *name, const char *value),
                      void     *arg);
/* Adds a response header (copied into the request's arena); false when there is no room. */
bool edge_add_header(edge_req *r, const char *name, const char *value);
/* Sets a JSON response from a jansson value (stolen). */
void edge_set_json(edge_req *r, uint16_t status, json_t *v);
/* Value of a query parameter (decoded into buf, cut to buflen - 1: see query.h), NULL when
 * absent. */
const char *edge_query_param(edge_req *r, const char *name, char *buf, size_t buflen);

/* ---- routes.c ------------------------------------------------------------------------------ */
/* Finds the route for method+path, filling params. *path_matched is set when the path exists
 * under another method (405). */
const edge_route *edge_route_match(const char *method, const char *path, edge_req *r,
                                   bool *path_matched, char *allow, size_t allowlen);
/* The whole table (tests check what it can reach). */
const edge_route *edge_routes(size_t *n);
/* Exposed for tests: matches one pattern against a path, capturing {params}. */
bool edge_pattern_match(const char *pattern, const char *path, char params[][128], int *n);

/* ---- session.c (cookies and tokens) -------------------------------------------------------- */
/* Finds the session cookie in a Cookie header: malloc'd access and refresh parts (refresh may be
 * NULL). False when there is none or it is malformed. */
bool edge_cookie_parse(const char *header, char **access, char **refresh);
/* Reads Authorization and Cookie headers into r (bearer, cookie_access, cookie_refresh). */
void edge_session_read(edge_req *r);
/* Verifies an access token (signature, algorithm, issuer, type, expiry, session not revoked)
 * into claims. */
bool edge_token_verify(const edge *e, const char *tok, cm_jwt_claims *claims);
/* Verifies the access token in r (bearer first); fills r->claims and r->authed. */
void edge_session_verify(edge_req *r);
/* Session cookie for a token pair (malloc'd into r->set_cookie); clear when tokens are NULL. */
void edge_session_set_cookie(edge_req *r, const char *access, const char *refresh, int64_t max_age);

#endif
