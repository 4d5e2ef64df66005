/*
 * fuzz_edge_httpresp.c - libFuzzer driver for the proxy's response parser (edge/httpresp.c),
 * which reads what an upstream server sends. The first byte picks a split point and whether the
 * request was HEAD; the rest is the stream, fed whole and then in two pieces. Checks: nothing is
 * taken past what was given, the body never passes its cap, and the two feeds agree on whether a
 * response completed and what its body is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpresp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds s[0..n) as s[0..cut) then the rest; DONE/MORE/BAD/TOOBIG, the body into body. */
static edge_resp_rc
feed(const char *s, size_t n, size_t cut, bool head, cm_buf *body, size_t *taken)
{
	cm_buf        h;
	edge_httpresp p;
	size_t        used = 0, more = 0;
	edge_resp_rc  rc;

	cm_buf_init(&h, 2048);
	edge_httpresp_init(&p, head, &h, body);
	rc = edge_httpresp_feed(&p, s, cut, &used);
	if (used > cut)
		abort();
	if (rc == EDGE_RESP_MORE) {
		rc = edge_httpresp_feed(&p, s + cut, n - cut, &more);
		if (more > n - cut)
			abort();
	}
	if (rc == EDGE_RESP_MORE)
		rc = edge_httpresp_eof(&p);
	*taken = used + more;
	edge_httpresp_fini(&p);
	cm_buf_fini(&h);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cm_buf       a, b;
	size_t       n, cut, ta, tb;
	bool         head;
	edge_resp_rc ra, rb;

	if (size < 1 || size > 65536)
		return 0;
	head = (data[0] & 0x80) != 0;
	n = size - 1;
	cut = n > 0 ? (data[0] & 0x7f) % (n + 1) : 0;
	cm_buf_init(&a, 1024);
	cm_buf_init(&b, 1024);
	ra = feed((const char *)data + 1, n, n, head, &a, &ta);
	rb = feed((const char *)data + 1, n, cut, head, &b, &tb);
	if (a.len > 1024 || b.len > 1024)
		abort();
	if ((ra == EDGE_RESP_DONE) != (rb == EDGE_RESP_DONE))
		abort();
	if (ra == EDGE_RESP_DONE &&
	    (ta != tb || a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0)))
		abort();
	cm_buf_fini(&a);
	cm_buf_fini(&b);
	return 0;
}
