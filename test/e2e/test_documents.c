/*
 * test_documents.c - documents end to end through the edge to svc-pdf: v1 raw and multipart
 * uploads, legacy upload/select/info/metadata/list, pages, ownership, dedupe, bad uploads, and
 * uploads large enough to be streamed to svc-pdf in pieces (edge/upload.h). The PDFs are written
 * here (make_pdf), with real text, metadata and N pages, or by pdf_testpdf_build with padding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <unistd.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"
#include "raw_conn.h"
#include "../../svc-pdf/testpdf.h"

/* A valid PDF with `pages` pages; page i says "Page <i> of <title>: <unique>". */
static void
make_pdf(cm_buf *b, int pages, const char *title, const char *unique)
{
	size_t *off = calloc((size_t)(3 + 2 * pages + 2), sizeof(size_t));
	int     nobj = 3 + 2 * pages, info = nobj + 1;
	size_t  xref;

	cm_buf_init(b, 64u << 20);
	assert_int_equal(cm_buf_appends(b, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), CM_OK);
	off[1] = b->len;
	assert_int_equal(cm_buf_appends(b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"),
	                 CM_OK);
	off[2] = b->len;
	assert_int_equal(cm_buf_printf(b, "2 0 obj << /Type /Pages /Count %d /Kids [", pages),
	                 CM_OK);
	for (int i = 0; i < pages; i++)
		assert_int_equal(cm_buf_printf(b, "%d 0 R ", 4 + 2 * i), CM_OK);
	assert_int_equal(cm_buf_appends(b, "] >> endobj\n"), CM_OK);
	off[3] = b->len;
	assert_int_equal(
	    cm_buf_appends(
	        b, "3 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n"),
	    CM_OK);
	for (int i = 0; i < pages; i++) {
		char text[256];
		int  n = snprintf(text, sizeof(text),
		                  "BT /F1 12 Tf 72 720 Td (Page %d of %s: %s. Photosynthesis "
		                   "converts light.) Tj ET",
		                  i + 1, title, unique);
		off[4 + 2 * i] = b->len;
		assert_int_equal(
		    cm_buf_printf(
		        b,
		        "%d 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
		        "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >> endobj\n",
		        4 + 2 * i, 5 + 2 * i),
		    CM_OK);
		off[5 + 2 * i] = b->len;
		assert_int_equal(
		    cm_buf_printf(b, "%d 0 obj << /Length %d >> stream\n%s\nendstream endobj\n",
		                  5 + 2 * i, n, text),
		    CM_OK);
	}
	off[info] = b->len;
	assert_int_equal(cm_buf_printf(b,
	                               "%d 0 obj << /Title (%s) /Author (Test Author) >> endobj\n",
	                               info, title),
	                 CM_OK);
	xref = b->len;
	assert_int_equal(cm_buf_printf(b, "xref\n0 %d\n0000000000 65535 f \n", info + 1), CM_OK);
	for (int i = 1; i <= info; i++)
		assert_int_equal(cm_buf_printf(b, "%010zu 00000 n \n", off[i]), CM_OK);
	assert_int_equal(
	    cm_buf_printf(
	        b, "trailer << /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
	        info + 1, info, xref),
	    CM_OK);
	free(off);
}

static char user_a[4200], user_b[4200], cookie_a[8400], id_a[37];

static void
login_new_user(char *bearer, size_t n, char *cookie, size_t cn)
{
	const char *h[] = {"Content-Type: application/json", NULL};
	char        body[256], id[37];
	http_resp   r;

	cm_uuid_v4(id);
	snprintf(body, sizeof(body), "{\"email\":\"d-%s@example.com\",\"password\":\"documents!\"}",
	         id);
	assert_int_equal(http_do("POST", "/api/v1/auth/register", h, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/v1/auth/login", h, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	snprintf(bearer, n, "Authorization: Bearer %s", js(r.json, "access_token"));
	if (cookie != NULL) {
		char c[8300];
		assert_non_null(http_session_cookie(&r, c, sizeof(c)));
		snprintf(cookie, cn, "Cookie: %s", c);
	}
	http_resp_free(&r);
}

static int
setup(void **state)
{
	(void)state;
	login_new_user(user_a, sizeof(user_a), cookie_a, sizeof(cookie_a));
	assert_int_equal(http_user_id(user_a, id_a, sizeof(id_a)), 0);
	login_new_user(user_b, sizeof(user_b), NULL, 0);
	return 0;
}

static void
upload_raw(const char *auth, const cm_buf *pdf, const char *name, http_resp *r)
{
	char        path[256];
	const char *h[] = {auth, "Content-Type: application/pdf", NULL};

	snprintf(path, sizeof(path), "/api/v1/documents?filename=%s", name);
	assert_int_equal(http_do("POST", path, h, pdf->data, pdf->len, r), 0);
}

static void
test_v1_upload_pages_dedupe(void **state)
{
	cm_buf      pdf;
	http_resp   r;
	char        id[64], path[256], uniq[37];
	const char *ha[] = {user_a, NULL}, *hb[] = {user_b, NULL};

	(void)state;
	cm_uuid_v4(uniq);
	make_pdf(&pdf, 12, "Biology Notes", uniq);
	upload_raw(user_a, &pdf, "bio.pdf", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(r.json, "pages")), 12);
	assert_string_equal(js(r.json, "title"), "Biology Notes");
	assert_string_equal(js(r.json, "author"), "Test Author");
	assert_string_equal(js(r.json, "filename"), "bio.pdf");
	assert_int_equal(strlen(js(r.json, "sha256")), 64);
	assert_true(json_integer_value(json_object_get(r.json, "size_bytes")) ==
	            (json_int_t)pdf.len);
	cm_strlcpy(id, js(r.json, "id"), sizeof(id));
	http_resp_free(&r);

	snprintf(path, sizeof(path), "/api/v1/documents/%s/pages/7", id);
	assert_int_equal(http_do("GET", path, ha, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "page")), 7);
	assert_non_null(strstr(js(r.json, "text"), "Page 7 of Biology Notes"));
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/documents/%s/pages/13", id);
	assert_int_equal(http_do("GET", path, ha, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);

	/* Same user, same bytes: 200 with the same document. */
	upload_raw(user_a, &pdf, "again.pdf", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "id"), id);
	http_resp_free(&r);

	/* Another user cannot see it, and gets their own document for the same bytes. */
	snprintf(path, sizeof(path), "/api/v1/documents/%s", id);
	assert_int_equal(http_do("GET", path, hb, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
	assert_int_equal(http_do("DELETE", path, hb, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
	upload_raw(user_b, &pdf, "mine.pdf", &r);
	assert_int_equal(r.status, 201);
	assert_string_not_equal(js(r.json, "id"), id);
	http_resp_free(&r);

	/* List and delete. */
	assert_int_equal(http_do("GET", "/api/v1/documents?limit=10", ha, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(json_array_size(json_object_get(r.json, "items")) >= 1);
	http_resp_free(&r);
	assert_int_equal(http_do("DELETE", path, ha, NULL, 0, &r), 0);
	assert_int_equal(r.status, 204);
	http_resp_free(&r);
	assert_int_equal(http_do("GET", path, ha, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
	cm_buf_fini(&pdf);
}

/* The legacy route's refusals of a multipart body around pdf: a file not named .pdf (400) and no
 * field `file` (422), in the legacy words. */
static void
legacy_refusals(const cm_buf *pdf)
{
	const char *h[] = {cookie_a, "Content-Type: multipart/form-data; boundary=b0undary", NULL};
	cm_buf      body;
	http_resp   r;

	http_multipart(&body, "b0undary", "file", "notes.txt", pdf);
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 400);
	assert_string_equal(js(r.json, "detail"), "Only PDF files are allowed");
	http_resp_free(&r);
	cm_buf_fini(&body);
	http_multipart(&body, "b0undary", "document", "notes.pdf", pdf);
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 422);
	assert_string_equal(js(r.json, "detail"), "field 'file' is required");
	http_resp_free(&r);
	cm_buf_fini(&body);
}

static void
test_legacy_flow(void **state)
{
	cm_buf      pdf, body;
	http_resp   r;
	char        uniq[37], ct[128];
	const char *h[] = {cookie_a, ct, NULL};
	const char *hc[] = {cookie_a, NULL};
	const char *hj[] = {cookie_a, "Content-Type: application/json", NULL};

	(void)state;
	cm_uuid_v4(uniq);
	make_pdf(&pdf, 3, "Legacy Upload", uniq);
	http_multipart(&body, "----WebKitFormBoundaryX7", "file", "C:\\Users\\me\\..\\notes.pdf",
	               &pdf);
	snprintf(ct, sizeof(ct),
	         "Content-Type: multipart/form-data; boundary=----WebKitFormBoundaryX7");
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_not_equal(js(r.json, "message"), "");
	assert_null(strchr(js(r.json, "filename"), '\\')); /* no path survives */
	assert_null(strchr(js(r.json, "filename"), '/'));
	{
		json_t *m = json_object_get(r.json, "metadata");
		assert_string_equal(js(m, "title"), "Legacy Upload");
		assert_string_equal(js(m, "subject"), "Unknown");
		assert_int_equal(json_integer_value(json_object_get(m, "pages")), 3);
		assert_true(json_integer_value(json_object_get(m, "file_size")) ==
		            (json_int_t)pdf.len);
	}
	assert_true(json_integer_value(json_object_get(r.json, "text_length")) > 0);
	http_resp_free(&r);

	assert_int_equal(http_do("GET", "/api/pdf/info", hc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_not_equal(js(r.json, "selected_at"), "");
	assert_string_equal(js(json_object_get(r.json, "metadata"), "title"), "Legacy Upload");
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/api/pdf/metadata", hc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "author"), "Test Author");
	http_resp_free(&r);

	assert_int_equal(
	    http_do("GET", "/api/pdf/list?offset=0&limit=5&search=legacy", hc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(json_integer_value(json_object_get(r.json, "total")) >= 1);
	assert_int_equal(json_integer_value(json_object_get(r.json, "limit")), 5);
	{
		json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
		assert_non_null(it);
		assert_non_null(json_object_get(it, "file_path"));
		assert_null(strchr(js(it, "file_path"), '/'));
	}
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/api/pdf/list?limit=0", hc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 422);
	http_resp_free(&r);

	assert_int_equal(
	    http_do("POST", "/api/pdf/select", hj, "{\"filename\":\"nope.pdf\"}", 23, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(js(r.json, "detail"), "PDF file not found");
	http_resp_free(&r);
	assert_int_equal(
	    http_do("POST", "/api/pdf/select", hj, "{\"filename\":\"../../etc/passwd\"}", 31, &r),
	    0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
	cm_buf_fini(&body);

	/* Not a PDF by name; missing field; no body at all (the old backend's 422 too); doubled
	 * boundary parameter. */
	legacy_refusals(&pdf);
	assert_int_equal(http_do("POST", "/api/pdf/upload", hc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 422);
	assert_string_equal(js(r.json, "detail"), "field 'file' is required");
	http_resp_free(&r);
	http_multipart(&body, "b0undary", "document", "notes.pdf", &pdf);
	snprintf(ct, sizeof(ct),
	         "Content-Type: multipart/form-data; boundary=a; boundary=b0undary");
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	cm_buf_fini(&body);
	cm_buf_fini(&pdf);
}

static void
test_bad_uploads(void **state)
{
	http_resp   r;
	cm_buf      pdf;
	char        uniq[37];
	const char *cut;
	const char *hp[] = {user_a, "Content-Type: application/pdf", NULL};
	const char *hx[] = {user_a, "Content-Type: text/plain", NULL};

	(void)state;
	/* Bytes that are not a PDF, whatever the Content-Type says: 415 (api-v1.md lists 413, 415
	 * and 422 for POST /documents; 422 is for a PDF that cannot be read). */
	assert_int_equal(http_do("POST", "/api/v1/documents", hp, "hello, not a pdf", 16, &r), 0);
	assert_int_equal(r.status, 415);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "INVALID_ARGUMENT");
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/v1/documents", hx, "%PDF-1.4", 8, &r), 0);
	assert_int_equal(r.status, 415);
	http_resp_free(&r);
	assert_int_equal(http_do("POST", "/api/v1/documents", hp, "", 0, &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);

	/* Truncated before the page tree: nothing to repair it from, 422 with mupdf's reason. */
	cm_uuid_v4(uniq);
	make_pdf(&pdf, 4, "Truncated", uniq);
	cut = strstr(pdf.data, "2 0 obj");
	assert_non_null(cut);
	assert_int_equal(
	    http_do("POST", "/api/v1/documents", hp, pdf.data, (size_t)(cut - pdf.data), &r), 0);
	assert_int_equal(r.status, 422);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "FAILED_PRECONDITION");
	assert_non_null(strstr(js(json_object_get(r.json, "error"), "message"), "corrupt PDF"));
	http_resp_free(&r);
	/* Truncated after the last object (no xref, no trailer): mupdf rebuilds the table from the
	 * objects, and every page is there. */
	cut = strstr(pdf.data, "\nxref\n");
	assert_non_null(cut);
	assert_int_equal(
	    http_do("POST", "/api/v1/documents", hp, pdf.data, (size_t)(cut + 1 - pdf.data), &r),
	    0);
	assert_int_equal(r.status, 201);
	assert_int_equal(json_integer_value(json_object_get(r.json, "pages")), 4);
	http_resp_free(&r);
	cm_buf_fini(&pdf);

	/* Not logged in. */
	{
		const char *h[] = {"Content-Type: application/pdf", NULL};
		assert_int_equal(http_do("POST", "/api/v1/documents", h, "%PDF-", 5, &r), 0);
		assert_int_equal(r.status, 401);
		http_resp_free(&r);
		assert_int_equal(http_do("GET", "/api/pdf/info", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 401);
		assert_string_equal(js(r.json, "detail"), "Not authenticated");
		http_resp_free(&r);
	}
	/* A user with no upload yet has no selected PDF. */
	{
		const char *hb[] = {user_b, NULL};
		char        fresh[4200];
		login_new_user(fresh, sizeof(fresh), NULL, 0);
		hb[0] = fresh;
		assert_int_equal(http_do("GET", "/api/pdf/info", hb, NULL, 0, &r), 0);
		assert_int_equal(r.status, 400);
		assert_string_equal(js(r.json, "detail"), "No PDF selected");
		http_resp_free(&r);
	}
}

/* ---- uploads streamed in pieces (edge/upload.h: 1 MiB pieces) ---------------------------- */

#define PIECE (1024 * 1024)

/* A PDF of about `size` bytes: three pages of text and comment lines that all differ. */
static void
big_pdf(cm_buf *b, size_t size, const char *title)
{
	static const char *const pages[] = {"Streamed page one: mitochondria.",
	                                    "Streamed page two: ribosomes.",
	                                    "Streamed page three: chloroplasts."};
	pdf_testpdf              o = {.npages = 3, .pages = pages, .title = title};

	o.padding = size;
	cm_buf_init(b, 64u << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
}

static void
sha256_hex(const cm_buf *b, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)b->data, b->len);
	cm_hex(h, sizeof(h), out);
}

/* user_a's spools gone within ms (polled). */
static bool
spools_gone_within(int ms)
{
	int64_t until = cm_mono_ms() + ms;

	while (stack_spools(id_a) != 0) {
		if (cm_mono_ms() > until)
			return false;
		usleep(20000);
	}
	return true;
}

/* Bodies over a piece reach svc-pdf whole and in order (the document's sha256 is the file's),
 * through both routes and as a raw body; the edge sent one piece per full MiB, and no spool is
 * left behind. */
static void
test_streamed_uploads(void **state)
{
	cm_buf      pdf, body;
	http_resp   r;
	char        sha[65], ct[128], path[128];
	const char *hm[] = {user_a, ct, NULL};
	const char *hl[] = {cookie_a, ct, NULL};
	const char *hp[] = {user_a, "Content-Type: application/pdf", NULL};
	long long   before;

	(void)state;
	big_pdf(&pdf, 3500000, "Streamed Multipart");
	sha256_hex(&pdf, sha);
	http_multipart(&body, "----WebKitFormBoundaryS1", "file", "big.pdf", &pdf);
	snprintf(ct, sizeof(ct),
	         "Content-Type: multipart/form-data; boundary=----WebKitFormBoundaryS1");
	before = http_metric("edge_upload_pieces_total");
	assert_int_equal(http_do("POST", "/api/v1/documents", hm, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(js(r.json, "sha256"), sha);
	assert_true(json_integer_value(json_object_get(r.json, "size_bytes")) ==
	            (json_int_t)pdf.len);
	assert_int_equal(json_integer_value(json_object_get(r.json, "pages")), 3);
	assert_int_equal(http_metric("edge_upload_pieces_total") - before,
	                 (long long)(body.len / PIECE));
	snprintf(path, sizeof(path), "/api/v1/documents/%s/pages/3", js(r.json, "id"));
	http_resp_free(&r);
	{
		const char *ha[] = {user_a, NULL};
		assert_int_equal(http_do("GET", path, ha, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(js(r.json, "text"), "chloroplasts"));
		http_resp_free(&r);
	}
	cm_buf_fini(&body);
	cm_buf_fini(&pdf);

	/* The legacy route with the session cookie, as the old frontend sends it. */
	big_pdf(&pdf, 2500000, "Streamed Legacy");
	http_multipart(&body, "----WebKitFormBoundaryS2", "file", "legacy-big.pdf", &pdf);
	snprintf(ct, sizeof(ct),
	         "Content-Type: multipart/form-data; boundary=----WebKitFormBoundaryS2");
	assert_int_equal(http_do("POST", "/api/pdf/upload", hl, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "message"), "PDF uploaded and processed");
	assert_string_equal(js(json_object_get(r.json, "metadata"), "title"), "Streamed Legacy");
	assert_true(json_integer_value(json_object_get(json_object_get(r.json, "metadata"),
	                                               "file_size")) == (json_int_t)pdf.len);
	http_resp_free(&r);
	cm_buf_fini(&body);

	/* Exactly two pieces and nothing after them: the body's end carries an empty tail. */
	cm_buf_fini(&pdf);
	big_pdf(&pdf, 2 * PIECE, "Streamed Raw");
	pdf.len = 2 * PIECE; /* cut short of its xref: mupdf rebuilds it from the objects */
	sha256_hex(&pdf, sha);
	before = http_metric("edge_upload_pieces_total");
	assert_int_equal(
	    http_do("POST", "/api/v1/documents?filename=raw.pdf", hp, pdf.data, pdf.len, &r), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(js(r.json, "sha256"), sha);
	assert_string_equal(js(r.json, "filename"), "raw.pdf");
	assert_int_equal(http_metric("edge_upload_pieces_total") - before, 2);
	http_resp_free(&r);
	cm_buf_fini(&pdf);
	assert_true(spools_gone_within(5000));
}

/* A streamed body without an acceptable file gets the same answers as a small one; a type the
 * route does not take is refused at the headers, before any piece leaves. */
static void
test_streamed_bad_bodies(void **state)
{
	cm_buf      pdf, body;
	http_resp   r;
	char        ct[128];
	const char *h[] = {cookie_a, ct, NULL};
	const char *hv[] = {user_a, ct, NULL};
	long long   before;

	(void)state;
	big_pdf(&pdf, 1500000, "No Field");
	legacy_refusals(&pdf);
	/* The close delimiter cut off: malformed, whatever came before. */
	http_multipart(&body, "b0undary", "file", "notes.pdf", &pdf);
	snprintf(ct, sizeof(ct), "Content-Type: multipart/form-data; boundary=b0undary");
	body.len -= 8;
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	cm_buf_fini(&body);
	/* 1.5 MB that are not a PDF: v1's 415. */
	memset(pdf.data, 'x', pdf.len);
	snprintf(ct, sizeof(ct), "Content-Type: application/pdf");
	assert_int_equal(http_do("POST", "/api/v1/documents", hv, pdf.data, pdf.len, &r), 0);
	assert_int_equal(r.status, 415);
	assert_string_equal(js(json_object_get(r.json, "error"), "message"), "not a PDF");
	http_resp_free(&r);
	before = http_metric("edge_upload_pieces_total");
	snprintf(ct, sizeof(ct), "Content-Type: text/plain");
	assert_int_equal(http_do("POST", "/api/v1/documents", hv, pdf.data, pdf.len, &r), 0);
	assert_int_equal(r.status, 415);
	http_resp_free(&r);
	assert_int_equal(http_metric("edge_upload_pieces_total"), before);
	cm_buf_fini(&pdf);
	assert_true(spools_gone_within(5000));
}

/* A client that leaves half-way: its spool goes at once (pdf.UploadAbort), and its next upload
 * is served (nothing of the first holds its place). */
static void
test_streamed_upload_abandoned(void **state)
{
	cm_buf    pdf;
	http_resp r;
	char      head[8192];
	int       fd, n;

	(void)state;
	big_pdf(&pdf, 4000000, "Abandoned");
	n = snprintf(head, sizeof(head),
	             "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\n%s\r\n"
	             "Content-Type: application/pdf\r\nContent-Length: %zu\r\n\r\n",
	             user_a, pdf.len);
	assert_true((fd = raw_open(http_base())) >= 0);
	assert_true(raw_send(fd, head, (size_t)n));
	assert_true(raw_send(fd, pdf.data, 2 * PIECE + 5000));
	/* Wait until the first two pieces are on the volume, then leave. */
	for (int64_t until = cm_mono_ms() + 5000; stack_spools(id_a) == 0; usleep(10000))
		assert_true(cm_mono_ms() < until);
	raw_close(fd);
	assert_true(spools_gone_within(5000));
	{
		const char *hp[] = {user_a, "Content-Type: application/pdf", NULL};
		assert_int_equal(
		    http_do("POST", "/api/v1/documents?filename=x.pdf", hp, pdf.data, pdf.len, &r),
		    0);
		assert_int_equal(r.status, 201);
		http_resp_free(&r);
	}
	cm_buf_fini(&pdf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1_upload_pages_dedupe),
	    cmocka_unit_test(test_legacy_flow),
	    cmocka_unit_test(test_bad_uploads),
	    cmocka_unit_test(test_streamed_uploads),
	    cmocka_unit_test(test_streamed_bad_bodies),
	    cmocka_unit_test(test_streamed_upload_abandoned),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
