/*
 * test_buf.c - cm_buf: growth, the cap, NUL termination, printf, JSON escaping, take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/buf.h"

static void
test_append_grows_and_terminates(void **state)
{
	cm_buf b;
	char   chunk[100];

	cm_buf_init(&b, 1 << 20);
	assert_null(b.data);
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 50; i++)
		assert_int_equal(cm_buf_append(&b, chunk, sizeof(chunk)), CM_OK);
	assert_int_equal(b.len, 5000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strlen(b.data), 5000);
	cm_buf_fini(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_cap_is_enforced_and_buffer_unchanged(void **state)
{
	cm_buf b;

	cm_buf_init(&b, 10);
	assert_int_equal(cm_buf_appends(&b, "0123456789"), CM_OK);
	assert_int_equal(b.len, 10);
	assert_int_equal(cm_buf_appends(&b, "x"), CM_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(cm_buf_append(&b, "", 0), CM_OK);
	assert_int_equal(cm_buf_printf(&b, "%d", 7), CM_ETOOBIG);
	assert_string_equal(b.data, "0123456789");
	cm_buf_fini(&b);

	cm_buf_init(&b, 4);
	assert_int_equal(cm_buf_appends(&b, "abcde"), CM_ETOOBIG);
	assert_int_equal(b.len, 0);
	cm_buf_fini(&b);
}

static void
test_huge_append_does_not_overflow(void **state)
{
	cm_buf b;

	cm_buf_init(&b, SIZE_MAX);
	assert_int_equal(cm_buf_appends(&b, "ab"), CM_OK);
	assert_int_equal(cm_buf_append(&b, "x", SIZE_MAX), CM_ETOOBIG);
	assert_string_equal(b.data, "ab");
	cm_buf_fini(&b);
}

static void
test_printf(void **state)
{
	cm_buf b;
	char   big[3000];

	cm_buf_init(&b, 1 << 16);
	assert_int_equal(cm_buf_printf(&b, "a=%d s=%s", 42, "hi"), CM_OK);
	assert_string_equal(b.data, "a=42 s=hi");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* Longer than the first capacity: exercises the grow-and-retry path. */
	assert_int_equal(cm_buf_printf(&b, "[%s]", big), CM_OK);
	assert_int_equal(b.len, 9 + 2 + 2999);
	assert_int_equal(b.data[9], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	cm_buf_fini(&b);
}

static void
test_printf_exact_cap(void **state)
{
	cm_buf b;

	cm_buf_init(&b, 5);
	assert_int_equal(cm_buf_printf(&b, "%s", "12345"), CM_OK);
	assert_string_equal(b.data, "12345");
	cm_buf_reset(&b);
	assert_int_equal(cm_buf_printf(&b, "%s", "123456"), CM_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	cm_buf_fini(&b);
}

static void
check_json(const char *in, const char *want)
{
	cm_buf b;

	cm_buf_init(&b, 4096);
	assert_int_equal(cm_buf_append_json_str(&b, in), CM_OK);
	assert_string_equal(b.data != NULL ? b.data : "", want);
	cm_buf_fini(&b);
}

static void
test_append_u64(void **state)
{
	cm_buf b;

	(void)state;
	cm_buf_init(&b, 64);
	assert_int_equal(cm_buf_append_u64(&b, 0), CM_OK);
	assert_int_equal(cm_buf_appends(&b, ","), CM_OK);
	assert_int_equal(cm_buf_append_u64(&b, 7), CM_OK);
	assert_int_equal(cm_buf_appends(&b, ","), CM_OK);
	assert_int_equal(cm_buf_append_u64(&b, 1000), CM_OK);
	assert_int_equal(cm_buf_appends(&b, ","), CM_OK);
	assert_int_equal(cm_buf_append_u64(&b, 18446744073709551615ULL), CM_OK);
	assert_string_equal(b.data, "0,7,1000,18446744073709551615");
	cm_buf_fini(&b);
	cm_buf_init(&b, 3); /* all or nothing at the cap */
	assert_int_equal(cm_buf_append_u64(&b, 12), CM_OK);
	assert_int_equal(cm_buf_append_u64(&b, 345), CM_ETOOBIG);
	assert_string_equal(b.data, "12");
	cm_buf_fini(&b);
}

static void
test_json_escape(void **state)
{
	check_json("plain", "plain");
	check_json("", "");
	check_json("a\"b\\c", "a\\\"b\\\\c");
	check_json("l1\nl2\r\t\b\f", "l1\\nl2\\r\\t\\b\\f");
	check_json("\x01\x1f", "\\u0001\\u001f");
	check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	check_json("bad\xff end", "bad\\ufffd end");
	check_json("trunc\xe2\x82", "trunc\\ufffd\\ufffd");
	check_json("\xc0\xaf", "\\ufffd\\ufffd");            /* overlong */
	check_json("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"); /* surrogate */
	check_json("/<>", "/<>");
}

static void
test_json_escape_cap_all_or_nothing(void **state)
{
	cm_buf b;

	cm_buf_init(&b, 8);
	assert_int_equal(cm_buf_appends(&b, "ab"), CM_OK);
	assert_int_equal(cm_buf_append_json_str(&b, "cd\n\n\n"), CM_ETOOBIG);
	assert_string_equal(b.data, "ab");
	assert_int_equal(b.len, 2);
	cm_buf_fini(&b);
}

static void
test_take(void **state)
{
	cm_buf b;
	char  *p = NULL;
	size_t n = 99;

	cm_buf_init(&b, 100);
	assert_int_equal(cm_buf_take(&b, &p, &n), CM_OK);
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(n, 0);
	free(p);

	assert_int_equal(cm_buf_appends(&b, "hello"), CM_OK);
	assert_int_equal(cm_buf_take(&b, &p, &n), CM_OK);
	assert_string_equal(p, "hello");
	assert_int_equal(n, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* Still usable with the same cap. */
	assert_int_equal(cm_buf_appends(&b, "again"), CM_OK);
	assert_string_equal(b.data, "again");
	free(p);
	cm_buf_fini(&b);
}

static void
test_reset_keeps_memory(void **state)
{
	cm_buf b;
	char  *before;

	cm_buf_init(&b, 100);
	assert_int_equal(cm_buf_appends(&b, "hello"), CM_OK);
	before = b.data;
	cm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, before);
	assert_string_equal(b.data, "");
	assert_int_equal(cm_buf_appends(&b, "x"), CM_OK);
	assert_string_equal(b.data, "x");
	cm_buf_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_grows_and_terminates),
	    cmocka_unit_test(test_cap_is_enforced_and_buffer_unchanged),
	    cmocka_unit_test(test_huge_append_does_not_overflow),
	    cmocka_unit_test(test_printf),
	    cmocka_unit_test(test_printf_exact_cap),
	    cmocka_unit_test(test_append_u64),
	    cmocka_unit_test(test_json_escape),
	    cmocka_unit_test(test_json_escape_cap_all_or_nothing),
	    cmocka_unit_test(test_take),
	    cmocka_unit_test(test_reset_keeps_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
