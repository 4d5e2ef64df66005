/*
 * test_multipart.c - edge/multipart: boundary extraction and finding a form field in a body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/buf.h"
#include "cm/multipart.h"

#define B "XyZ123"
#define CD "Content-Disposition: form-data"

static cm_mp_part part;
static char       why[200];

static cm_err
find_n(const void *body, size_t len, const char *bd, const char *field)
{
	return cm_multipart_find(body, len, bd, field, &part, why, sizeof(why));
}

static cm_err
find(const char *body, const char *field)
{
	return find_n(body, strlen(body), B, field);
}

static void
assert_span(const void *p, size_t n, const char *want)
{
	assert_non_null(p);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

/* ---- cm_multipart_boundary ---- */

#define MFD "multipart/form-data"

static bool
bnd(const char *ct, char *out)
{
	return cm_multipart_boundary(ct, out, 71);
}

static void
test_boundary_unquoted(void **state)
{
	char out[71];

	(void)state;
	assert_true(bnd(MFD "; boundary=----WebKitFormBoundaryA1b2", out));
	assert_string_equal(out, "----WebKitFormBoundaryA1b2");
	assert_true(bnd("  Multipart/Form-Data;BOUNDARY=abc ; charset=utf-8 ", out));
	assert_string_equal(out, "abc");
	assert_true(bnd(MFD "; charset=\"x;boundary=no\"; boundary=yes", out));
	assert_string_equal(out, "yes");
}

static void
test_boundary_quoted_specials(void **state)
{
	char out[71];

	(void)state;
	assert_true(bnd(MFD "; boundary=\"a b'()+_,-./:=?z\"", out));
	assert_string_equal(out, "a b'()+_,-./:=?z");
	assert_true(bnd(MFD "; boundary=\"q\\uo\\-te\"", out));
	assert_string_equal(out, "quo-te");
	assert_true(bnd(MFD "; boundary===_Part_1==", out));
	assert_string_equal(out, "==_Part_1==");
}

static void
test_boundary_rejects(void **state)
{
	char out[71];
	char big[128];

	(void)state;
	assert_false(cm_multipart_boundary(NULL, out, sizeof(out)));
	assert_false(bnd(MFD, out));
	assert_false(bnd("multipart/mixed; boundary=abc", out));
	assert_false(bnd("application/pdf", out));
	assert_false(bnd(MFD "; boundary=", out));
	assert_false(bnd(MFD "; boundary=\"\"", out));
	assert_false(bnd(MFD "; boundary=\"ab ", out));
	assert_false(bnd(MFD "; boundary=\"ends \"", out));
	assert_false(bnd(MFD "; boundary=\"a@b\"", out));
	assert_false(bnd(MFD "; boundary = abc", out));
	assert_false(bnd(MFD "; boundary=a\rb", out));
	assert_false(bnd(MFD " junk; boundary=a", out));
	/* 71 characters */
	memset(big, 'a', sizeof(big));
	memcpy(big, MFD ";boundary=", 29);
	big[29 + 71] = '\0';
	assert_false(cm_multipart_boundary(big, out, sizeof(out)));
	big[29 + 70] = '\0';
	assert_true(cm_multipart_boundary(big, out, sizeof(out)));
	assert_int_equal(strlen(out), 70);
	assert_false(cm_multipart_boundary(big, out, 70)); /* no room for the NUL */
	assert_string_equal(out, "");
}

static void
test_boundary_twice_is_ambiguous(void **state)
{
	char out[71];

	(void)state;
	assert_false(bnd(MFD "; boundary=a; boundary=b", out));
	assert_false(bnd(MFD "; boundary=a; Boundary=\"a\"", out));
}

/* ---- cm_multipart_find ---- */

static void
test_simple_part(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"; filename=\"a.pdf\"\r\n"
	                   "Content-Type: application/pdf\r\n\r\n"
	                   "%PDF-1.4 hello\r\n--" B "--\r\n";

	(void)state;
	assert_int_equal(find(body, "file"), CM_OK);
	assert_span(part.name, part.name_len, "file");
	assert_span(part.filename, part.filename_len, "a.pdf");
	assert_span(part.content_type, part.content_type_len, "application/pdf");
	assert_span(part.data, part.len, "%PDF-1.4 hello");
}

static void
test_preamble_epilogue_and_several_parts(void **state)
{
	const char *body = "preamble\r\n--" B " \t\r\n" CD "; name=title\r\n\r\nMy doc\r\n"
	                   "--" B "\r\ncontent-disposition: FORM-DATA; NAME=\"file\"\r\n"
	                   "X-Other: 1\r\n\r\nDATA\r\n--" B "--epilogue\r\n--" B "\r\njunk";

	(void)state;
	assert_int_equal(find(body, "title"), CM_OK);
	assert_span(part.data, part.len, "My doc");
	assert_null(part.filename);
	assert_null(part.content_type);
	assert_int_equal(find(body, "file"), CM_OK);
	assert_span(part.data, part.len, "DATA");
}

static void
test_boundary_with_spaces_and_specials(void **state)
{
	const char *bd = "a b'()+_,-./:=?z";
	char        body[256];
	int         n = snprintf(body, sizeof(body),
	                         "--%s\r\n" CD "; name=\"file\"\r\n\r\nx--y\r\n--%s--\r\n", bd, bd);

	(void)state;
	assert_int_equal(find_n(body, (size_t)n, bd, "file"), CM_OK);
	assert_span(part.data, part.len, "x--y");
}

static void
test_filename_raw_and_escaped(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"; "
	                   "filename=\"..\\\\..\\/etc/my \\\"q\\\".pdf\"\r\n\r\n"
	                   "x\r\n--" B "--";
	char        dec[64];

	(void)state;
	assert_int_equal(find(body, "file"), CM_OK);
	assert_span(part.filename, part.filename_len, "..\\\\..\\/etc/my \\\"q\\\".pdf");
	assert_true(cm_mp_unescape(part.filename, part.filename_len, dec, sizeof(dec)));
	assert_string_equal(dec, "..\\../etc/my \"q\".pdf");
	assert_false(cm_mp_unescape(part.filename, part.filename_len, dec, 5));
	assert_string_equal(dec, "");
}

static void
test_windows_path_and_utf8_filename(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"; "
	                   "filename=\"C:\\Users\\r\xc3\xa9sum\xc3\xa9.pdf\"\r\n\r\n"
	                   "x\r\n--" B "--";

	(void)state;
	assert_int_equal(find(body, "file"), CM_OK);
	assert_span(part.filename, part.filename_len, "C:\\Users\\r\xc3\xa9sum\xc3\xa9.pdf");
}

static void
test_escaped_name_matches_decoded(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"f\\ile\"\r\n\r\nx\r\n--" B "--";

	(void)state;
	assert_int_equal(find(body, "file"), CM_OK);
	assert_int_equal(find(body, "f\\ile"), CM_ENOTFOUND);
}

static void
test_missing_field(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"other\"\r\n\r\nx\r\n--" B "--";

	(void)state;
	assert_int_equal(find(body, "file"), CM_ENOTFOUND);
	assert_null(part.data);
	assert_non_null(strstr(why, "file"));
	assert_int_equal(find("--" B "--\r\n", "file"), CM_ENOTFOUND);
	assert_int_equal(find(body, "fil"), CM_ENOTFOUND);
	assert_int_equal(find(body, "otherx"), CM_ENOTFOUND);
}

static void
test_doubled_field(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"\r\n\r\nA\r\n"
	                   "--" B "\r\n" CD "; name=file\r\n\r\nB\r\n--" B "--";

	(void)state;
	assert_int_equal(find(body, "file"), CM_EEXIST);
	assert_null(part.data);
}

static void
test_missing_closing_boundary(void **state)
{
	(void)state;
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n\r\ndata", "file"), CM_EINVAL);
	assert_non_null(strstr(why, "closing"));
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n\r\ndata\r\n--" B, "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n\r\ndata\r\n--" B "-", "file"),
	                 CM_EINVAL);
	assert_int_equal(
	    find("--" B "\r\n" CD "; name=\"file\"\r\n\r\ndata\r\n--" B "\r\n", "file"), CM_EINVAL);
	assert_int_equal(find("--" B, "file"), CM_EINVAL);
}

static void
test_missing_first_boundary(void **state)
{
	(void)state;
	assert_int_equal(find(CD "; name=\"file\"\r\n\r\ndata\r\n", "file"), CM_EINVAL);
	assert_non_null(strstr(why, "first boundary"));
	assert_int_equal(find("", "file"), CM_EINVAL);
	assert_int_equal(find_n(NULL, 0, B, "file"), CM_EINVAL);
	/* the boundary of another body */
	assert_int_equal(find("--Other\r\n" CD "; name=\"file\"\r\n\r\nx\r\n--Other--", "file"),
	                 CM_EINVAL);
	/* LF-only line ends: the first boundary is not at a CRLF line start */
	assert_int_equal(find("x\n--" B "\n" CD "; name=\"file\"\n\nx\n--" B "--\n", "file"),
	                 CM_EINVAL);
}

static void
test_truncated_and_malformed_headers(void **state)
{
	(void)state;
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"", "file"), CM_EINVAL);
	assert_non_null(strstr(why, "truncated"));
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n", "file"), CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n\r", "file"), CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"fi", "file"), CM_EINVAL);
	/* no blank line: the next delimiter is read as a header */
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n--" B "--", "file"), CM_EINVAL);
	/* bare LF and bare CR in headers, folding, control characters */
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\n\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_non_null(strstr(why, "LF"));
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\rX\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD ";\r\n name=\"file\"\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"fi\x01le\"\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\nContent-Disposition : form-data; name=\"file\"\r\n\r\n"
	                      "x\r\n--" B "--",
	                      "file"),
	                 CM_EINVAL);
}

static void
test_disposition_rules(void **state)
{
	(void)state;
	assert_int_equal(find("--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\n"
	                      "x\r\n--" B "--",
	                      "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; filename=\"a\"\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	assert_int_equal(
	    find("--" B "\r\n" CD "; name=\"file\"; name=\"x\"\r\n\r\nx\r\n--" B "--", "file"),
	    CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"; filename=a; filename=b\r\n\r\n"
	                      "x\r\n--" B "--",
	                      "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\n" CD "; name=\"x\"\r\n\r\n"
	                      "x\r\n--" B "--",
	                      "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"\r\nContent-Type: a\r\n"
	                      "Content-Type: b\r\n\r\nx\r\n--" B "--",
	                      "file"),
	                 CM_EINVAL);
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\" x\r\n\r\nx\r\n--" B "--", "file"),
	                 CM_EINVAL);
	/* filename* is ignored; the plain filename stays */
	assert_int_equal(find("--" B "\r\n" CD "; name=\"file\"; filename*=UTF-8''a%20b.pdf; "
	                      "filename=\"ab.pdf\";\r\n\r\nx\r\n--" B "--",
	                      "file"),
	                 CM_OK);
	assert_span(part.filename, part.filename_len, "ab.pdf");
}

static void
test_binary_data_near_boundaries(void **state)
{
	static const char data[] =
	    "--\r\n--\r\r\n\n--" B "\n\r\n--" B "x\0\xff\r\n-" B "\r\n--XyZ12\r\n\r\n--";
	cm_buf b;

	(void)state;
	cm_buf_init(&b, 4096);
	assert_int_equal(cm_buf_appends(&b, "--" B "\r\n" CD "; name=\"file\"\r\n\r\n"), CM_OK);
	assert_int_equal(cm_buf_append(&b, data, sizeof(data) - 1), CM_OK);
	assert_int_equal(cm_buf_appends(&b, "\r\n--" B "--\r\n"), CM_OK);
	/* "\r\n--XyZ123x" above is a full boundary followed by junk: refused, not data */
	assert_int_equal(find_n(b.data, b.len, B, "file"), CM_EINVAL);
	assert_non_null(strstr(why, "other bytes"));
	cm_buf_fini(&b);

	static const char ok[] = "--\r\n--\r\r\n\n--" B "\n-" B "\0\xff\r\n--XyZ12\r\n--XyZ12"
	                         "\r\n--";
	cm_buf_init(&b, 4096);
	assert_int_equal(cm_buf_appends(&b, "--" B "\r\n" CD "; name=\"file\"\r\n\r\n"), CM_OK);
	assert_int_equal(cm_buf_append(&b, ok, sizeof(ok) - 1), CM_OK);
	assert_int_equal(cm_buf_appends(&b, "\r\n--" B "--\r\n"), CM_OK);
	assert_int_equal(find_n(b.data, b.len, B, "file"), CM_OK);
	assert_int_equal(part.len, sizeof(ok) - 1);
	assert_memory_equal(part.data, ok, sizeof(ok) - 1);
	cm_buf_fini(&b);
}

static void
test_empty_part_data(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"; filename=\"\"\r\n\r\n\r\n--" B "--";

	(void)state;
	assert_int_equal(find(body, "file"), CM_OK);
	assert_non_null(part.data);
	assert_int_equal(part.len, 0);
	assert_non_null(part.filename);
	assert_int_equal(part.filename_len, 0);
}

static void
test_header_line_too_long(void **state)
{
	cm_buf b;
	char   pad[CM_MP_MAX_LINE + 8];
	size_t fixed = strlen("X-Pad: ");

	(void)state;
	memset(pad, 'a', sizeof(pad));
	/* exactly CM_MP_MAX_LINE bytes: accepted */
	cm_buf_init(&b, 8192);
	assert_int_equal(cm_buf_appends(&b, "--" B "\r\n" CD "; name=\"file\"\r\nX-Pad: "), CM_OK);
	assert_int_equal(cm_buf_append(&b, pad, CM_MP_MAX_LINE - fixed), CM_OK);
	assert_int_equal(cm_buf_appends(&b, "\r\n\r\nx\r\n--" B "--"), CM_OK);
	assert_int_equal(find_n(b.data, b.len, B, "file"), CM_OK);
	cm_buf_fini(&b);
	/* one more: refused */
	cm_buf_init(&b, 8192);
	assert_int_equal(cm_buf_appends(&b, "--" B "\r\n" CD "; name=\"file\"\r\nX-Pad: "), CM_OK);
	assert_int_equal(cm_buf_append(&b, pad, CM_MP_MAX_LINE - fixed + 1), CM_OK);
	assert_int_equal(cm_buf_appends(&b, "\r\n\r\nx\r\n--" B "--"), CM_OK);
	assert_int_equal(find_n(b.data, b.len, B, "file"), CM_EINVAL);
	assert_non_null(strstr(why, "too long"));
	cm_buf_fini(&b);
}

static void
test_too_many_headers(void **state)
{
	cm_buf b;

	(void)state;
	for (int n = CM_MP_MAX_HEADERS; n <= CM_MP_MAX_HEADERS + 1; n++) {
		cm_buf_init(&b, 8192);
		assert_int_equal(cm_buf_appends(&b, "--" B "\r\n" CD "; name=\"file\"\r\n"), CM_OK);
		for (int i = 1; i < n; i++)
			assert_int_equal(cm_buf_printf(&b, "X-H%d: v\r\n", i), CM_OK);
		assert_int_equal(cm_buf_appends(&b, "\r\nx\r\n--" B "--"), CM_OK);
		assert_int_equal(find_n(b.data, b.len, B, "file"),
		                 n <= CM_MP_MAX_HEADERS ? CM_OK : CM_EINVAL);
		cm_buf_fini(&b);
	}
}

static void
test_too_many_parts(void **state)
{
	cm_buf b;

	(void)state;
	for (int n = CM_MP_MAX_PARTS; n <= CM_MP_MAX_PARTS + 1; n++) {
		cm_buf_init(&b, 8192);
		for (int i = 0; i < n; i++)
			assert_int_equal(
			    cm_buf_printf(&b, "--" B "\r\n" CD "; name=\"f%d\"\r\n\r\n%d\r\n", i,
			                  i),
			    CM_OK);
		assert_int_equal(cm_buf_appends(&b, "--" B "--\r\n"), CM_OK);
		assert_int_equal(find_n(b.data, b.len, B, "f3"),
		                 n <= CM_MP_MAX_PARTS ? CM_OK : CM_EINVAL);
		if (n > CM_MP_MAX_PARTS)
			assert_non_null(strstr(why, "too many parts"));
		else
			assert_span(part.data, part.len, "3");
		cm_buf_fini(&b);
	}
}

static void
test_bad_arguments(void **state)
{
	const char *body = "--" B "\r\n" CD "; name=\"file\"\r\n\r\nx\r\n--" B "--";

	(void)state;
	assert_int_equal(find_n(body, strlen(body), "", "file"), CM_EINVAL);
	assert_int_equal(find_n(body, strlen(body), "a\r\nb", "file"), CM_EINVAL);
	assert_int_equal(find_n(body, strlen(body), NULL, "file"), CM_EINVAL);
	assert_int_equal(find_n(body, strlen(body), B, NULL), CM_EINVAL);
	assert_int_equal(
	    cm_multipart_find((const uint8_t *)body, strlen(body), B, "file", NULL, NULL, 0),
	    CM_EINVAL);
	assert_int_equal(
	    cm_multipart_find((const uint8_t *)body, strlen(body), B, "file", &part, NULL, 0),
	    CM_OK);
}

/* A large body with an adversarial payload: many "\r\n--" + boundary prefixes. Linear time. */
static void
test_large_adversarial_body(void **state)
{
	static const char chunk[] = "\r\n--XyZ12\r\n--XyZ12";
	size_t            n = 8u * 1024u * 1024u, off, hdr;
	uint8_t          *body = malloc(n + 64);
	const char       *h = "--" B "\r\n" CD "; name=\"file\"\r\n\r\n";

	(void)state;
	assert_non_null(body);
	hdr = strlen(h);
	memcpy(body, h, hdr);
	for (off = hdr; off + sizeof(chunk) - 1 <= n; off += sizeof(chunk) - 1)
		memcpy(body + off, chunk, sizeof(chunk) - 1);
	memcpy(body + off, "\r\n--" B "--", 4 + strlen(B) + 2);
	off += 4 + strlen(B) + 2;
	assert_int_equal(find_n(body, off, B, "file"), CM_OK);
	assert_int_equal(part.len, off - hdr - (4 + strlen(B) + 2));
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boundary_unquoted),
	    cmocka_unit_test(test_boundary_quoted_specials),
	    cmocka_unit_test(test_boundary_rejects),
	    cmocka_unit_test(test_boundary_twice_is_ambiguous),
	    cmocka_unit_test(test_simple_part),
	    cmocka_unit_test(test_preamble_epilogue_and_several_parts),
	    cmocka_unit_test(test_boundary_with_spaces_and_specials),
	    cmocka_unit_test(test_filename_raw_and_escaped),
	    cmocka_unit_test(test_windows_path_and_utf8_filename),
	    cmocka_unit_test(test_escaped_name_matches_decoded),
	    cmocka_unit_test(test_missing_field),
	    cmocka_unit_test(test_doubled_field),
	    cmocka_unit_test(test_missing_closing_boundary),
	    cmocka_unit_test(test_missing_first_boundary),
	    cmocka_unit_test(test_truncated_and_malformed_headers),
	    cmocka_unit_test(test_disposition_rules),
	    cmocka_unit_test(test_binary_data_near_boundaries),
	    cmocka_unit_test(test_empty_part_data),
	    cmocka_unit_test(test_header_line_too_long),
	    cmocka_unit_test(test_too_many_headers),
	    cmocka_unit_test(test_too_many_parts),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_large_adversarial_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
