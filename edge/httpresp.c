/*
 * httpresp.c - the proxy's response parser (httpresp.h).
 *
 * DESIGN. A small state machine over whatever the socket gave: the head is gathered whole (it is
 * small and bounded) and parsed at once; the body is copied out as it comes, through the
 * framing's states. Lines inside the body (chunk sizes, their CRLF, trailers) go through the same
 * line buffer with a bound of their own. Nothing is ever read past the end of a response, so the
 * caller can tell a response followed by junk (the connection is then not reused).
 */
#include <string.h>
#include <strings.h>

#include "httpresp.h"

enum {
	S_HEAD = 0, /* gathering the head (status line and headers) */
	S_BODY,     /* Content-Length bytes, `left` of them to come */
	S_CLOSE,    /* a body that ends with the connection */
	S_CSIZE,    /* a chunk-size line */
	S_CDATA,    /* a chunk's data, `left` to come */
	S_CCRLF,    /* the CRLF after a chunk's data */
	S_TRAILER,  /* trailer lines, up to an empty one */
	S_DONE,
};

#define LINE_MAX 4096          /* one chunk-size or trailer line */
#define CHUNK_MAX (1ull << 40) /* a chunk size past this is not a size we believe */
#define NO_LENGTH UINT64_MAX

void
edge_httpresp_init(edge_httpresp *p, bool head_request, cm_buf *headers, cm_buf *body)
{
	memset(p, 0, sizeof(*p));
	p->head_request = head_request;
	p->headers = headers;
	p->body = body;
	p->clen = NO_LENGTH;
	cm_buf_init(&p->line, headers->max);
}

void
edge_httpresp_reuse(edge_httpresp *p, bool head_request, cm_buf *headers, cm_buf *body)
{
	cm_buf line = p->line;

	memset(p, 0, sizeof(*p));
	p->head_request = head_request;
	p->headers = headers;
	p->body = body;
	p->clen = NO_LENGTH;
	p->line = line;
	cm_buf_reset(&p->line);
	p->line.max = headers->max;
}

void
edge_httpresp_fini(edge_httpresp *p)
{
	cm_buf_fini(&p->line);
}

/* ---- the head ---------------------------------------------------------------------------------
 */

/* Index just past the blank line that ends a head in s[0..len), searching from `from`; 0 when
 * it is not there yet. */
static size_t
head_end(const char *s, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++)
		if (s[i] == '\n' && ((i >= 1 && s[i - 1] == '\n') ||
		                     (i >= 2 && s[i - 1] == '\r' && s[i - 2] == '\n')))
			return i + 1;
	return 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* True when the comma-separated list v (len bytes) has the token t (case-insensitive). */
static bool
list_has(const char *v, size_t len, const char *t)
{
	size_t tl = strlen(t), i = 0;

	while (i < len) {
		size_t a, b;

		while (i < len && (v[i] == ',' || is_space(v[i])))
			i++;
		a = i;
		while (i < len && v[i] != ',')
			i++;
		b = i;
		while (b > a && is_space(v[b - 1]))
			b--;
		if (b - a == tl && strncasecmp(v + a, t, tl) == 0)
			return true;
	}
	return false;
}

/* The last coding of a Transfer-Encoding value is chunked. */
static bool
last_is_chunked(const char *v, size_t len)
{
	size_t b = len, a;

	while (b > 0 && is_space(v[b - 1]))
		b--;
	a = b;
	while (a > 0 && v[a - 1] != ',')
		a--;
	while (a < b && is_space(v[a]))
		a++;
	return b - a == 7 && strncasecmp(v + a, "chunked", 7) == 0;
}

/* A Content-Length value: digits, or a list of the same digits ("42, 42"). */
static bool
parse_length(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = NO_LENGTH;
	size_t   i = 0;

	while (i < len) {
		uint64_t x = 0;
		size_t   d = 0;

		while (i < len && is_space(v[i]))
			i++;
		for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, d++) {
			if (x > (UINT64_MAX - 10) / 10)
				return false;
			x = x * 10 + (uint64_t)(v[i] - '0');
		}
		while (i < len && is_space(v[i]))
			i++;
		if (d == 0 || (i < len && v[i] != ',') || (n != NO_LENGTH && n != x))
			return false;
		n = x;
		if (i < len)
			i++; /* the comma */
	}
	if (n == NO_LENGTH)
		return false;
	*out = n;
	return true;
}

/* One header line (no line end): kept, dropped, or BAD. */
static edge_resp_rc
header_line(edge_httpresp *p, const char *s, size_t len, bool interim, bool *te)
{
	const char *colon, *v;
	size_t      k, vlen;
	uint64_t    n;

	/* Folded, malformed and NUL-carrying lines are dropped (a NUL makes the head BAD below). */
	if (len == 0 || is_space(s[0]) || (colon = memchr(s, ':', len)) == NULL)
		return EDGE_RESP_MORE;
	k = (size_t)(colon - s);
	if (k == 0 || memchr(s, ' ', k) != NULL || memchr(s, '\t', k) != NULL)
		return EDGE_RESP_MORE;
	v = colon + 1;
	vlen = len - k - 1;
	while (vlen > 0 && is_space(*v)) {
		v++;
		vlen--;
	}
	while (vlen > 0 && is_space(v[vlen - 1]))
		vlen--;
	if (interim)
		return EDGE_RESP_MORE;
	if (k == 14 && strncasecmp(s, "Content-Length", 14) == 0) {
		if (!parse_length(v, vlen, &n) || (p->clen != NO_LENGTH && p->clen != n))
			return EDGE_RESP_BAD;
		p->clen = n;
	} else if (k == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0) {
		*te = true;
		p->chunked = last_is_chunked(v, vlen);
	} else if (k == 10 && strncasecmp(s, "Connection", 10) == 0) {
		if (list_has(v, vlen, "close"))
			p->close = true;
		if (list_has(v, vlen, "keep-alive"))
			p->keep_alive = true; /* only read for HTTP/1.0 */
	}
	if (cm_buf_append(p->headers, s, k) != CM_OK || cm_buf_append(p->headers, "", 1) != CM_OK ||
	    cm_buf_append(p->headers, v, vlen) != CM_OK ||
	    cm_buf_append(p->headers, "", 1) != CM_OK)
		return EDGE_RESP_TOOBIG;
	return EDGE_RESP_MORE;
}

/* Parses the gathered head (p->line, ending with its blank line). MORE: a 1xx, skipped. */
static edge_resp_rc
parse_head(edge_httpresp *p)
{
	const char  *s = p->line.data, *end = s + p->line.len, *nl;
	size_t       len;
	int          status;
	bool         interim, te = false;
	edge_resp_rc rc;

	if (memchr(s, '\0', p->line.len) != NULL)
		return EDGE_RESP_BAD;
	nl = memchr(s, '\n', p->line.len);
	len = (size_t)(nl - s);
	if (len > 0 && s[len - 1] == '\r')
		len--;
	/* HTTP/1.x DDD[ reason] */
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
	    s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
	    s[11] > '9' || (len > 12 && s[12] != ' '))
		return EDGE_RESP_BAD;
	status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (status == 101)
		return EDGE_RESP_BAD; /* nothing asked to switch protocols */
	interim = status < 200;
	p->http10 = s[7] == '0';
	p->keep_alive = p->close = p->chunked = false;
	p->clen = NO_LENGTH;
	cm_buf_reset(p->headers);
	for (s = nl + 1; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		len = (size_t)(nl - s);
		if (len > 0 && s[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if ((rc = header_line(p, s, len, interim, &te)) != EDGE_RESP_MORE)
			return rc;
	}
	cm_buf_reset(&p->line);
	if (interim) {
		cm_buf_reset(p->headers);
		return EDGE_RESP_MORE;
	}
	p->status = status;
	if (p->http10 && !p->keep_alive)
		p->close = true;
	if (te && p->clen != NO_LENGTH)
		p->close = true; /* both framings: believe chunked, never reuse the connection */
	if (p->head_request || status == 204 || status == 304) {
		p->state = S_DONE;
	} else if (te) {
		if (p->chunked) {
			p->state = S_CSIZE;
		} else {
			p->state = S_CLOSE;
			p->close = true;
		}
	} else if (p->clen != NO_LENGTH) {
		p->left = (int64_t)(p->clen > (uint64_t)INT64_MAX ? INT64_MAX : p->clen);
		p->state = p->left > 0 ? S_BODY : S_DONE;
	} else {
		p->state = S_CLOSE;
		p->close = true;
	}
	return EDGE_RESP_MORE;
}

/* ---- the body ---------------------------------------------------------------------------------
 */

/* Gathers a line into p->line; true (and *took) once its '\n' came. */
static bool
gather_line(edge_httpresp *p, const char *d, size_t n, size_t *took, edge_resp_rc *rc)
{
	const char *nl = memchr(d, '\n', n);
	size_t      k = nl != NULL ? (size_t)(nl - d) + 1 : n;

	*took = k;
	if (p->line.len + k > LINE_MAX || cm_buf_append(&p->line, d, k) != CM_OK) {
		*rc = EDGE_RESP_BAD;
		return false;
	}
	return nl != NULL;
}

/* The gathered line without its line end. */
static size_t
line_len(const edge_httpresp *p)
{
	size_t len = p->line.len;

	if (len > 0 && p->line.data[len - 1] == '\n')
		len--;
	if (len > 0 && p->line.data[len - 1] == '\r')
		len--;
	return len;
}

/* A chunk-size line: hex digits, then nothing, white space or an extension. */
static bool
parse_chunk_size(const char *s, size_t len, int64_t *out)
{
	uint64_t n = 0;
	size_t   i = 0;

	for (; i < len; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			break;
		n = n * 16 + (uint64_t)d;
		if (n > CHUNK_MAX)
			return false;
	}
	if (i == 0)
		return false;
	while (i < len && is_space(s[i]))
		i++;
	if (i < len && s[i] != ';')
		return false;
	*out = (int64_t)n;
	return true;
}

static edge_resp_rc
take_body(edge_httpresp *p, const char *d, size_t n)
{
	if (n > 0 && cm_buf_append(p->body, d, n) != CM_OK)
		return EDGE_RESP_TOOBIG;
	return EDGE_RESP_MORE;
}

static edge_resp_rc
done(edge_httpresp *p)
{
	p->state = S_DONE;
	p->keep_alive = !p->close;
	return EDGE_RESP_DONE;
}

edge_resp_rc
edge_httpresp_feed(edge_httpresp *p, const char *data, size_t n, size_t *used)
{
	size_t       i = 0;
	edge_resp_rc rc = EDGE_RESP_MORE;

	*used = 0;
	while (rc == EDGE_RESP_MORE && (i < n || p->state == S_DONE)) {
		const char *d = data + i;
		size_t      k = n - i, took = 0, old, e;
		int64_t     size;

		switch (p->state) {
		case S_HEAD:
			old = p->line.len;
			if (k > p->line.max - old)
				k = p->line.max - old;
			if (cm_buf_append(&p->line, d, k) != CM_OK)
				return EDGE_RESP_TOOBIG;
			if ((e = head_end(p->line.data, p->line.len, old >= 2 ? old - 2 : 0)) ==
			    0) {
				if (p->line.len >= p->line.max)
					return EDGE_RESP_TOOBIG;
				i += k;
				break;
			}
			i += e - old;
			p->line.len = e;
			rc = parse_head(p);
			break;
		case S_BODY:
			took = k < (uint64_t)p->left ? k : (size_t)p->left;
			rc = take_body(p, d, took);
			p->left -= (int64_t)took;
			i += took;
			if (rc == EDGE_RESP_MORE && p->left == 0)
				rc = done(p);
			break;
		case S_CLOSE:
			rc = take_body(p, d, k);
			i += k;
			break;
		case S_CSIZE:
			if (gather_line(p, d, k, &took, &rc)) {
				if (!parse_chunk_size(p->line.data, line_len(p), &size))
					return EDGE_RESP_BAD;
				cm_buf_reset(&p->line);
				p->left = size;
				p->state = size > 0 ? S_CDATA : S_TRAILER;
			}
			i += took;
			break;
		case S_CDATA:
			took = k < (uint64_t)p->left ? k : (size_t)p->left;
			rc = take_body(p, d, took);
			p->left -= (int64_t)took;
			i += took;
			if (p->left == 0)
				p->state = S_CCRLF;
			break;
		case S_CCRLF:
			if (gather_line(p, d, k, &took, &rc)) {
				if (line_len(p) != 0)
					return EDGE_RESP_BAD;
				cm_buf_reset(&p->line);
				p->state = S_CSIZE;
			} else if (rc == EDGE_RESP_MORE &&
			           (p->line.len > 1 || p->line.data[0] != '\r')) {
				return EDGE_RESP_BAD; /* only CR may come before the LF */
			}
			i += took;
			break;
		case S_TRAILER:
			if (gather_line(p, d, k, &took, &rc)) {
				bool last = line_len(p) == 0;
				cm_buf_reset(&p->line);
				if (last)
					rc = done(p);
			}
			i += took;
			break;
		case S_DONE:
			*used = i;
			return done(p);
		}
	}
	*used = i;
	return rc;
}

edge_resp_rc
edge_httpresp_eof(edge_httpresp *p)
{
	if (p->state == S_DONE || p->state == S_CLOSE)
		return done(p);
	return EDGE_RESP_BAD;
}

int64_t
edge_httpresp_body_size(const edge_httpresp *p)
{
	if (p->status == 0 || p->chunked || p->state == S_CLOSE)
		return -1;
	return p->clen != NO_LENGTH && p->clen <= (uint64_t)INT64_MAX ? (int64_t)p->clen : -1;
}

void
edge_httpresp_set_body(edge_httpresp *p, cm_buf *body)
{
	p->body = body;
}
