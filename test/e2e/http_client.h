/*
 * http_client.h - a small blocking HTTP client (libcurl) for end-to-end tests against the edge.
 */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "cm/buf.h"

typedef struct http_resp {
	long    status;
	char   *body; /* NUL-terminated */
	size_t  len;
	json_t *json; /* parsed body, NULL when not JSON */
	char    headers[16384];
	double  seconds; /* total time */
} http_resp;

/* Base URL from CM_TEST_EDGE (default http://127.0.0.1:28080). */
const char *http_base(void);

/* Sends method path (relative to the base) with extra headers (NULL-terminated list of
 * "Name: value"), and an optional body. Returns 0 when an HTTP answer arrived. */
int http_do(const char *method, const char *path, const char *const *headers, const char *body,
            size_t len, http_resp *out);
/* A browser-like client: one libcurl handle for every request, so they share one kept-alive
 * connection (as long as the server keeps it open) and a cookie jar (cookies the responses set
 * are sent back, as a browser does for same-origin calls). */
typedef struct http_session http_session;

http_session *http_session_open(void);
/* http_do on the session. */
int http_session_do(http_session *s, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t len, http_resp *out);
/* POST path as multipart/form-data: one file field, as a browser's FormData sends it. */
int http_session_upload(http_session *s, const char *path, const char *field, const char *filename,
                        const char *type, const void *data, size_t len, http_resp *out);
/* Connections the session has opened so far (1 when every request reused the first). */
long http_session_connects(const http_session *s);
void http_session_close(http_session *s);

/* The same with a raw request written on a socket (for chunked bodies, bad framing). Returns the
 * status line's code or -1. */
int http_raw(const char *request, size_t len, char *reply, size_t replylen);

/* Value of a response header (case-insensitive name), copied into buf; NULL when absent. */
const char *http_header(const http_resp *r, const char *name, char *buf, size_t n);
/* The value of the session cookie from Set-Cookie ("session=..."), or NULL. */
const char *http_session_cookie(const http_resp *r, char *buf, size_t n);
void        http_resp_free(http_resp *r);

/* JSON string member, or "" */
const char *js(const json_t *obj, const char *key);

/* A JSON request to a helper server beside the stack (the fake LLM's /_control, /_stats,
 * /_reset): base "http://127.0.0.1:28500", path "/_stats"; body NULL for none. Returns the parsed
 * answer (json_decref it) or NULL. */
json_t *http_fake(const char *base, const char *method, const char *path, const char *body);

/* A JSON request with an optional "Authorization: ..." header line (NULL: none). The status, or
 * -1 when there was no answer. */
long http_json(const char *auth, const char *method, const char *path, const char *body,
               http_resp *r);
/* Registers a new user "<tag>-<uuid>@example.com" with password; its e-mail into email. 0, or -1
 * when registering did not answer 201. */
int http_register(const char *tag, const char *password, char *email, size_t n);
/* Registers and logs in a new user: "Authorization: Bearer <access token>" into bearer. 0 or -1. */
int http_new_user(const char *tag, const char *password, char *bearer, size_t n);

/* A multipart/form-data body with one file part: field, filename, the pdf's bytes, as a browser's
 * FormData sends it (cm_buf_fini it). */
void http_multipart(cm_buf *body, const char *boundary, const char *field, const char *filename,
                    const cm_buf *pdf);
/* The value of one series (a metric without labels) on the edge's /metrics; 0 when absent, -1
 * without an answer. http_metric_at asks the edge at base ("http://127.0.0.1:28081"). */
long long http_metric(const char *series);
long long http_metric_at(const char *base, const char *series);

/* Upload spools of user `owner` (its id) on the stack's svc-pdf volume now
 * (CM_TEST_STATE/pdfs/spool/<owner>-<upload id>: bodies streamed in pieces, edge/upload.h); 0
 * when the directory is not there. Per user: another test's leftovers do not count. */
int stack_spools(const char *owner);
/* The id of the user whose "Authorization: Bearer ..." header line auth is (GET /auth/me) into
 * id (37 bytes). 0 or -1. */
int http_user_id(const char *auth, char *id, size_t n);

#endif
