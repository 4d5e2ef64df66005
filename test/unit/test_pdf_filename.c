/*
 * test_pdf_filename.c - filename.c: directories, control characters, UTF-8, length, defaults.
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-pdf/config.h"
#include "../../svc-pdf/filename.h"

static const char *
san(const char *in)
{
	static char out[PDF_MAX_FILENAME + 1];

	pdf_filename_sanitize(in, out, sizeof(out));
	return out;
}

static void
test_plain(void **state)
{
	(void)state;
	assert_string_equal(san("report.pdf"), "report.pdf");
	assert_string_equal(san("My Report (final).PDF"), "My Report (final).PDF");
	assert_string_equal(san("Übersicht – 2024.pdf"), "Übersicht – 2024.pdf");
}

static void
test_directories(void **state)
{
	(void)state;
	assert_string_equal(san("../../etc/passwd"), "passwd");
	assert_string_equal(san("/abs/path/x.pdf"), "x.pdf");
	assert_string_equal(san("C:\\Users\\me\\doc.pdf"), "doc.pdf");
	assert_string_equal(san("a/b\\c/d.pdf"), "d.pdf");
	assert_string_equal(san("dir/"), "document.pdf");
	assert_string_equal(san(".."), "document.pdf");
	assert_string_equal(san("x/.."), "document.pdf");
	assert_string_equal(san("."), "document.pdf");
}

static void
test_controls_and_bad_utf8(void **state)
{
	(void)state;
	assert_string_equal(san("a\r\nb\tc\x01\x7f.pdf"), "abc.pdf");
	assert_string_equal(san("evil\xe2\x80\xaeRTL.pdf"), "evilRTL.pdf"); /* U+202E dropped */
	assert_string_equal(san("bad\xff\xfe bytes\xc3.pdf"), "bad bytes.pdf");
	assert_string_equal(san("\xc2\x85x.pdf"), "x.pdf"); /* C1 NEL */
	assert_string_equal(san("   spaced.pdf   "), "spaced.pdf");
}

static void
test_empty(void **state)
{
	(void)state;
	assert_string_equal(san(NULL), "document.pdf");
	assert_string_equal(san(""), "document.pdf");
	assert_string_equal(san("\x01\x02\x03"), "document.pdf");
	assert_string_equal(san("   "), "document.pdf");
}

static void
test_length(void **state)
{
	char        in[2000];
	const char *out;

	(void)state;
	memset(in, 'a', sizeof(in));
	memcpy(in + sizeof(in) - 5, ".pdf", 5);
	out = san(in);
	assert_int_equal(strlen(out), PDF_MAX_FILENAME);
	assert_string_equal(out + PDF_MAX_FILENAME - 4, ".pdf");
	/* Multi-byte characters are never cut in half. */
	for (size_t i = 0; i + 2 <= 600; i += 2)
		memcpy(in + i, "\xc3\xa9", 2);
	in[600] = '\0';
	out = san(in);
	assert_true(strlen(out) <= PDF_MAX_FILENAME);
	assert_int_equal(strlen(out) % 2, 0);
	/* A small output buffer is respected too. */
	{
		char small[8];
		assert_int_equal(pdf_filename_sanitize("abcdefghij.pdf", small, sizeof(small)), 7);
		assert_string_equal(small, "abcdefg");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_directories),
	    cmocka_unit_test(test_controls_and_bad_utf8),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
