/*
 * httpresp.h - an incremental HTTP/1.1 response parser for the edge's reverse proxy
 * (httpproxy.c): an upstream's bytes in, as they arrive, one response out.
 *
 * What it accepts (RFC 9112): a status line `HTTP/1.x DDD [reason]`, header lines up to an empty
 * line (CRLF or a bare LF), interim 1xx responses (skipped, their headers forgotten), and a body
 * framed by Transfer-Encoding: chunked (extensions ignored, trailers skipped), by Content-Length,
 * or by the connection's close; none for a HEAD request and for 204 and 304. What it refuses
 * (EDGE_RESP_BAD): another protocol, a 101, a Content-Length that is not digits or that
 * disagrees with another, a chunk size that is not hex or overflows, a chunk not followed by its
 * CRLF, a NUL in the head. Folded, malformed and NUL-carrying header lines are dropped, as the
 * proxy always did. Pure: no I/O, no clock; unit-tested and fuzzed.
 *
 * Headers land in `headers` as "name\0value\0" records (value trimmed), the body in `body`; each
 * buffer's cap bounds it (EDGE_RESP_TOOBIG), and the head (status line and headers) is bounded by
 * the headers buffer's cap too. keep_alive says whether the connection may carry another request
 * once the response is DONE: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
 * `Connection: keep-alive`, never for a body that ran until the close.
 */
#ifndef EDGE_HTTPRESP_H
#define EDGE_HTTPRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"

typedef enum edge_resp_rc {
	EDGE_RESP_MORE = 0, /* everything given was used; more is needed */
	EDGE_RESP_DONE,     /* a whole response; *used says how much of what was given it took */
	EDGE_RESP_BAD,      /* not a well-formed response */
	EDGE_RESP_TOOBIG,   /* the head or the body is larger than its buffer's cap */
} edge_resp_rc;

typedef struct edge_httpresp {
	int  status;     /* the final response's status, once its head is parsed (0 before) */
	bool keep_alive; /* see above; meaningful once DONE */

	/* private */
	bool     head_request;
	cm_buf  *headers, *body;
	cm_buf   line; /* the head, or a chunk-size / trailer line, being gathered */
	int      state;
	bool     chunked, http10, close;
	int64_t  left; /* body or chunk bytes still to come */
	uint64_t clen; /* Content-Length seen (UINT64_MAX: none) */
} edge_httpresp;

/* Starts a response to a request (head_request: it was HEAD). headers and body must be
 * initialised by the caller (their caps are the limits) and outlive the parser. */
void edge_httpresp_init(edge_httpresp *p, bool head_request, cm_buf *headers, cm_buf *body);
/* edge_httpresp_init for a parser used before (not finished), keeping its memory. */
void edge_httpresp_reuse(edge_httpresp *p, bool head_request, cm_buf *headers, cm_buf *body);
void edge_httpresp_fini(edge_httpresp *p);

/* Takes n bytes of the upstream's stream. *used gets how many were taken: all of them unless
 * DONE (bytes after a response are the caller's business: more than one response was sent). */
edge_resp_rc edge_httpresp_feed(edge_httpresp *p, const char *data, size_t n, size_t *used);

/* Once the head is parsed (status != 0): the body's size by its Content-Length, -1 when it is
 * chunked or runs until the close (or the head is not in yet). */
int64_t edge_httpresp_body_size(const edge_httpresp *p);
/* Where the body's bytes go from now on (a streamed answer gives them a buffer of its own). */
void edge_httpresp_set_body(edge_httpresp *p, cm_buf *body);
/* The upstream closed its side: DONE when the body runs until the close (and the head is
 * whole), BAD otherwise (the response was cut). */
edge_resp_rc edge_httpresp_eof(edge_httpresp *p);

#endif
