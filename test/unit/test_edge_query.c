/*
 * test_edge_query.c - the edge's one query-string parser (edge/query.c): lookup by exact name,
 * decoding, cutting, and the end of the query at '#'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

static void
test_lookup(void **state)
{
	char b[32];

	(void)state;
	assert_int_equal(edge_query_get("a=1&format=gift&b=2", "format", b, sizeof(b)), 4);
	assert_string_equal(b, "gift");
	assert_int_equal(edge_query_get("format=qti", "format", b, sizeof(b)), 3);
	assert_string_equal(b, "qti");
	/* Names match whole: a longer name, a prefix, a parameter without '=' do not count. */
	assert_int_equal(edge_query_get("my_format=x&formats=y&format", "format", b, sizeof(b)),
	                 -1);
	assert_string_equal(b, "");
	/* The first occurrence wins; an empty value is present. */
	assert_int_equal(edge_query_get("x=1&x=2", "x", b, sizeof(b)), 1);
	assert_string_equal(b, "1");
	assert_int_equal(edge_query_get("x=&y=2", "x", b, sizeof(b)), 0);
	assert_string_equal(b, "");
	assert_int_equal(edge_query_get("", "x", b, sizeof(b)), -1);
	assert_int_equal(edge_query_get(NULL, "x", b, sizeof(b)), -1);
	/* A fragment ends the query. */
	assert_int_equal(edge_query_get("t=abc#frag&u=1", "t", b, sizeof(b)), 3);
	assert_string_equal(b, "abc");
	assert_int_equal(edge_query_get("t=abc#u=1", "u", b, sizeof(b)), -1);
}

static void
test_decoding(void **state)
{
	char b[32];

	(void)state;
	assert_int_equal(edge_query_get("q=a+b%20c%2Fd%e2%82%ac", "q", b, sizeof(b)), 10);
	assert_string_equal(b, "a b c/d\xe2\x82\xac");
	/* Malformed escapes and %00 stay as written (no NUL inside a value). */
	assert_int_equal(edge_query_get("q=%zz%4%00%", "q", b, sizeof(b)), 9);
	assert_string_equal(b, "%zz%4%00%");
	assert_int_equal(edge_query_get("q=%2", "q", b, sizeof(b)), 2);
	assert_string_equal(b, "%2");
}

static void
test_cut(void **state)
{
	char b[5];

	(void)state;
	/* The whole length is returned; the copy is cut and terminated. */
	assert_int_equal(edge_query_get("s=0123456789&t=1", "s", b, sizeof(b)), 10);
	assert_string_equal(b, "0123");
	assert_int_equal(edge_query_get("s=%41%42%43%44%45", "s", b, sizeof(b)), 5);
	assert_string_equal(b, "ABCD");
	assert_int_equal(edge_query_get("s=abcd", "s", b, sizeof(b)), 4);
	assert_string_equal(b, "abcd");
	assert_int_equal(edge_query_get("s=abc", "s", b, 0), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_decoding),
	    cmocka_unit_test(test_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
