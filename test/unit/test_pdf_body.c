/*
 * test_pdf_body.c - body.c's pdf_body_pick: the PDF an upload body holds (multipart field `file`
 * or the raw body) and the verdict for one that holds none, which the edge words per route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-pdf/body.h"
#include "proto/pdf.pb-c.h"

#define CT "multipart/form-data; boundary=XyZ"
#define PDF "%PDF-1.4 fake"

static int
pick(const char *body, const char *ct, bool require_name, pdf_body_file *f, char *detail)
{
	return pdf_body_pick((const uint8_t *)body, strlen(body), ct, require_name, f, detail, 160);
}

static void
test_multipart_file(void **state)
{
	pdf_body_file f;
	char          detail[160];
	const char   *b =
	    "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	    "filename=\"Notes.PDF\"\r\nContent-Type: application/pdf\r\n\r\n" PDF "\r\n--XyZ--\r\n";

	(void)state;
	assert_int_equal(pick(b, CT, true, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
	assert_int_equal(f.len, strlen(PDF));
	assert_memory_equal(f.data, PDF, f.len);
	assert_int_equal(f.filename_len, 9);
	assert_memory_equal(f.filename, "Notes.PDF", 9);
}

static void
test_verdicts(void **state)
{
	pdf_body_file f;
	char          detail[160];

	(void)state;
	assert_int_equal(pdf_body_pick((const uint8_t *)"", 0, CT, false, &f, detail, 160),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__EMPTY);
	assert_int_equal(pick("--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; "
	                      "filename=\"a.pdf\"\r\n\r\n" PDF "\r\n--XyZ--\r\n",
	                      CT, false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__NO_FILE_FIELD);
	/* No close delimiter: malformed, with the parser's reason. */
	assert_int_equal(pick("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	                      "filename=\"a.pdf\"\r\n\r\n" PDF "\r\n",
	                      CT, false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__MALFORMED);
	assert_true(detail[0] != '\0');
	assert_int_equal(pick("--XyZ--\r\n", "multipart/form-data", false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__MALFORMED);
	assert_string_equal(detail, "multipart body without a valid boundary");
	/* The name rule only when asked (the legacy route). */
	{
		const char *b = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
		                "filename=\"a.txt\"\r\n\r\n" PDF "\r\n--XyZ--\r\n";
		assert_int_equal(pick(b, CT, true, &f, detail),
		                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF_NAME);
		assert_int_equal(pick(b, CT, false, &f, detail),
		                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
	}
	/* Bytes that are not a PDF, in a part or raw; an empty part is the pipeline's to refuse. */
	assert_int_equal(pick("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	                      "filename=\"a.pdf\"\r\n\r\nhello\r\n--XyZ--\r\n",
	                      CT, false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF);
	assert_string_equal(detail, "not a PDF");
	assert_int_equal(pick("hello, not a pdf", "application/pdf", false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF);
	assert_int_equal(pick("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	                      "filename=\"a.pdf\"\r\n\r\n\r\n--XyZ--\r\n",
	                      CT, false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
	assert_int_equal(f.len, 0);
}

static void
test_raw_body(void **state)
{
	pdf_body_file f;
	char          detail[160];

	(void)state;
	assert_int_equal(pick(PDF, "application/pdf", true, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
	assert_null(f.filename);
	assert_int_equal(f.len, strlen(PDF));
	assert_int_equal(pick(PDF, NULL, false, &f, detail),
	                 PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_multipart_file),
	    cmocka_unit_test(test_verdicts),
	    cmocka_unit_test(test_raw_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
