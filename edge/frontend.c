/*
 * frontend.c - a small asynchronous reverse proxy for the frontend's HTTP server.
 *
 * One nng HTTP client transaction per request (nng 1.5.2 has no connection pool; frontend assets
 * are few and cacheable). Only end-to-end headers the browser and the app server need are passed
 * in each direction; hop-by-hop headers are not. The response body is read whole (nng handles
 * chunked responses) and answered with our own framing, request id and access log line.
 */
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "frontend.h"
#include "proto/common.pb-c.h"

struct edge_frontend {
	nng_url         *url;
	nng_http_client *client;
};

typedef struct proxy_call {
	edge_req     *r;
	nng_http_req *req;
	nng_http_res *res;
	nng_aio      *aio;
} proxy_call;

static const char *const request_headers[] = {
    "Accept",     "Accept-Language", "Cookie", "Content-Type", "If-None-Match", "If-Modified-Since",
    "User-Agent", "Range",           NULL};
static const char *const response_headers[] = {
    "Cache-Control", "ETag", "Last-Modified", "Location", "Content-Language", "Vary", NULL};

cm_err
edge_frontend_open(edge_frontend **out, const char *url)
{
	edge_frontend *f;

	*out = NULL;
	if (url == NULL || url[0] == '\0')
		return CM_OK;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return CM_ENOMEM;
	if (nng_url_parse(&f->url, url) != 0 || strcmp(f->url->u_scheme, "http") != 0 ||
	    nng_http_client_alloc(&f->client, f->url) != 0) {
		edge_frontend_close(f);
		return CM_EINVAL;
	}
	*out = f;
	return CM_OK;
}

void
edge_frontend_close(edge_frontend *f)
{
	if (f == NULL)
		return;
	if (f->client != NULL)
		nng_http_client_free(f->client);
	if (f->url != NULL)
		nng_url_free(f->url);
	free(f);
}

static void
proxy_free(proxy_call *pc)
{
	if (pc->req != NULL)
		nng_http_req_free(pc->req);
	if (pc->res != NULL)
		nng_http_res_free(pc->res);
	nng_aio_reap(pc->aio);
	free(pc);
}

static void
proxy_done(void *arg)
{
	proxy_call *pc = arg;
	edge_req   *r = pc->r;
	void       *body;
	size_t      len;
	const char *v;

	if (nng_aio_result(pc->aio) != 0) {
		cm_warn("EDGE-FRONTEND-FAIL", "frontend request failed: %s",
		        nng_strerror(nng_aio_result(pc->aio)));
		proxy_free(pc);
		edge_fail_http(r, 502, "UNAVAILABLE", "the frontend server is unavailable");
		return;
	}
	r->status = nng_http_res_get_status(pc->res);
	if ((v = nng_http_res_get_header(pc->res, "Content-Type")) != NULL &&
	    (r->content_type = cm_arena_strndup(&r->arena, v, strlen(v))) == NULL)
		r->content_type = "application/octet-stream";
	for (int i = 0; response_headers[i] != NULL; i++) {
		if ((v = nng_http_res_get_header(pc->res, response_headers[i])) != NULL)
			(void)edge_add_header(r, response_headers[i], v);
	}
	nng_http_res_get_data(pc->res, &body, &len);
	if (len > 0 && cm_buf_append(&r->out, body, len) != CM_OK) {
		proxy_free(pc);
		edge_fail_http(r, 502, "UNAVAILABLE", "frontend response too large");
		return;
	}
	proxy_free(pc);
	edge_respond(r);
}

void
edge_frontend_proxy(edge_req *r)
{
	edge_frontend *f = r->e->frontend;
	proxy_call    *pc = NULL;
	char           uri[sizeof(r->path) + sizeof(r->query_buf) + 2];
	const char    *v;

	if (f == NULL) {
		edge_fail_http(r, 404, "NOT_FOUND", "no such route");
		return;
	}
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		goto nomem;
	pc->r = r;
	snprintf(uri, sizeof(uri), "%s%s%s", r->raw_path, r->query[0] != '\0' ? "?" : "", r->query);
	if (nng_http_req_alloc(&pc->req, f->url) != 0 || nng_http_res_alloc(&pc->res) != 0 ||
	    nng_aio_alloc(&pc->aio, proxy_done, pc) != 0 ||
	    nng_http_req_set_method(pc->req, r->method) != 0 ||
	    nng_http_req_set_uri(pc->req, uri) != 0)
		goto nomem;
	for (int i = 0; request_headers[i] != NULL; i++) {
		if ((v = edge_header(r, request_headers[i])) != NULL &&
		    nng_http_req_set_header(pc->req, request_headers[i], v) != 0)
			goto nomem;
	}
	nng_http_req_set_header(pc->req, "X-Request-Id", r->request_id);
	if (r->body.len > 0 && nng_http_req_copy_data(pc->req, r->body.data, r->body.len) != 0)
		goto nomem;
	nng_aio_set_timeout(pc->aio, 30000);
	nng_http_client_transact(f->client, pc->req, pc->res, pc->aio);
	return;
nomem:
	if (pc != NULL) {
		if (pc->aio == NULL) {
			if (pc->req != NULL)
				nng_http_req_free(pc->req);
			if (pc->res != NULL)
				nng_http_res_free(pc->res);
			free(pc);
		} else {
			proxy_free(pc);
		}
	}
	edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
}
