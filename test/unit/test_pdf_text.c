/*
 * test_pdf_text.c - text.c (page building, cleaning, UTF-8 helpers) and cursor.c.
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-pdf/config.h"
#include "../../svc-pdf/cursor.h"
#include "../../svc-pdf/text.h"

static void
test_pages_cleaned(void **state)
{
	pdf_text t;
	int32_t  runes[] = {' ',      'H', 'i',  ' ',  ' ',  0,   0x07, 'x', 0xd800,
	                    0x110000, ' ', '\n', '\n', '\n', 'y', '\t', ' '};

	(void)state;
	pdf_text_init(&t, 1 << 20);
	assert_int_equal(pdf_text_begin_page(&t), CM_OK);
	for (size_t i = 0; i < sizeof(runes) / sizeof(runes[0]); i++)
		assert_int_equal(pdf_text_put_rune(&t, runes[i]), CM_OK);
	assert_int_equal(pdf_text_end_page(&t), CM_OK);
	assert_int_equal(pdf_text_add_page(&t, "ok\xff\xfe text\x00", 10), CM_OK);
	assert_int_equal(pdf_text_add_page(&t, "  \n ", 4), CM_OK);
	assert_int_equal(pdf_text_finish(&t), CM_OK);
	assert_int_equal(t.npages, 3);
	assert_string_equal(t.page[0], "Hi x\xef\xbf\xbd\xef\xbf\xbd\n\ny");
	assert_string_equal(t.page[1], "ok text");
	assert_string_equal(t.page[2], "");
	assert_int_equal(t.page_len[2], 0);
	assert_int_equal(t.text_length, 9 + 7);
	assert_true(t.has_text);
	pdf_text_fini(&t);
}

static void
test_cap(void **state)
{
	pdf_text t;

	(void)state;
	pdf_text_init(&t, 8);
	assert_int_equal(pdf_text_add_page(&t, "0123456789", 10), CM_ETOOBIG);
	pdf_text_fini(&t);
}

static void
test_meta(void **state)
{
	pdf_text t;
	char     big[3000];

	(void)state;
	pdf_text_init(&t, 1 << 20);
	assert_int_equal(pdf_text_set_meta(&t, PDF_META_TITLE, "  A\tTitle\r\n x "), CM_OK);
	assert_string_equal(t.meta.v[PDF_META_TITLE], "A Title x");
	assert_int_equal(pdf_text_set_meta(&t, PDF_META_AUTHOR, " \x01 "), CM_OK);
	assert_null(t.meta.v[PDF_META_AUTHOR]);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(pdf_text_set_meta(&t, PDF_META_SUBJECT, big), CM_OK);
	assert_true(strlen(t.meta.v[PDF_META_SUBJECT]) <= PDF_MAX_META);
	pdf_text_fini(&t);
}

static void
test_utf8(void **state)
{
	int32_t cp = 0;

	(void)state;
	assert_int_equal(pdf_utf8_decode((const unsigned char *)"\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
	assert_int_equal(pdf_utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp),
	                 0); /* overlong */
	assert_int_equal(pdf_utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0);
	assert_int_equal(pdf_utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
	assert_int_equal(pdf_utf8_decode((const unsigned char *)"\xe2\x82", 2, &cp), 0);
	assert_int_equal(pdf_utf8_floor("ab\xe2\x82\xac", 4), 2);
	assert_int_equal(pdf_utf8_floor("ab\xe2\x82\xac", 5), 5);
	assert_int_equal(pdf_utf8_floor("ab\xe2\x82\xac", 3), 2);
	assert_int_equal(pdf_utf8_count("a\xe2\x82\xac"
	                                "b",
	                                5),
	                 3);
}

static void
test_cursor(void **state)
{
	char        enc[PDF_CURSOR_MAX], ts[PDF_CURSOR_TS_LEN + 1], id[37];
	const char *uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";

	(void)state;
	assert_int_equal(pdf_cursor_encode("2026-01-02 03:04:05.123456", uuid, enc), CM_OK);
	assert_int_equal(pdf_cursor_decode(enc, ts, id), CM_OK);
	assert_string_equal(ts, "2026-01-02 03:04:05.123456");
	assert_string_equal(id, uuid);
	assert_int_equal(pdf_cursor_encode("2026-01-02 03:04:05", uuid, enc), CM_EINVAL);
	assert_int_equal(pdf_cursor_encode("2026-01-02 03:04:05.123456", "nope", enc), CM_EINVAL);
	assert_int_equal(pdf_cursor_decode("", ts, id), CM_EINVAL);
	assert_int_equal(pdf_cursor_decode("!!!!", ts, id), CM_EINVAL);
	assert_int_equal(pdf_cursor_decode("djF8eA", ts, id), CM_EINVAL); /* "v1|x" */
	/* Tampering with any character breaks the shape check. */
	assert_int_equal(pdf_cursor_encode("2026-01-02 03:04:05.123456", uuid, enc), CM_OK);
	enc[5] = enc[5] == 'A' ? 'B' : 'A';
	assert_int_equal(pdf_cursor_decode(enc, ts, id), CM_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pages_cleaned), cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_meta),          cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_cursor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
