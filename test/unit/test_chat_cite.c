/*
 * test_chat_cite.c - cite.c: the marker forms a model writes, pages outside the document,
 * ranges, duplicates, the cap, and text that only looks like a marker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-chat/cite.h"

static int pages[64];

static int
parse(const char *text, int npages, int cap)
{
	memset(pages, 0, sizeof(pages));
	return chat_cite_parse(text, strlen(text), npages, pages, cap);
}

static void
test_forms(void **state)
{
	(void)state;
	assert_int_equal(parse("The cycle fixes carbon [p. 3].", 10, 32), 1);
	assert_int_equal(pages[0], 3);
	assert_int_equal(parse("x (P.7) y [page 2] z [Pages 4 and 9] w [p.5; p. 1]", 10, 32), 6);
	assert_int_equal(pages[0], 1);
	assert_int_equal(pages[1], 2);
	assert_int_equal(pages[2], 4);
	assert_int_equal(pages[3], 5);
	assert_int_equal(pages[4], 7);
	assert_int_equal(pages[5], 9);
	assert_int_equal(parse("[ pp. 4 , 6 & 8 ]", 10, 32), 3);
	assert_int_equal(parse("non-breaking [p.\xc2\xa0"
	                       "6]",
	                       10, 32),
	                 1);
	assert_int_equal(pages[0], 6);
}

static void
test_ranges(void **state)
{
	(void)state;
	assert_int_equal(parse("[pp. 4-6]", 10, 32), 3);
	assert_int_equal(pages[0], 4);
	assert_int_equal(pages[2], 6);
	assert_int_equal(parse("[pp. 2\xe2\x80\x93"
	                       "3]",
	                       10, 32),
	                 2); /* en dash */
	/* a range longer than CHAT_CITE_RANGE: its two ends */
	assert_int_equal(parse("[pp. 1-100]", 200, 32), 2);
	assert_int_equal(pages[0], 1);
	assert_int_equal(pages[1], 100);
	/* backwards: both ends, in order */
	assert_int_equal(parse("[pp. 9-3]", 10, 32), 2);
	assert_int_equal(pages[0], 3);
	assert_int_equal(pages[1], 9);
}

/* Pages must exist in the document; each page once; the cap keeps the smallest. */
static void
test_document_pages_and_cap(void **state)
{
	(void)state;
	assert_int_equal(parse("[p. 0] [p. 4] [p. 5] [p. 999999] [p. 4]", 4, 32), 1);
	assert_int_equal(pages[0], 4);
	assert_int_equal(parse("[p. 3]", 0, 32), 0);
	assert_int_equal(parse("[p. 9] [p. 2] [p. 7] [p. 1]", 10, 2), 2);
	assert_int_equal(pages[0], 1);
	assert_int_equal(pages[1], 2);
	assert_int_equal(parse("[p. 1234567]", 2000000, 32), 0); /* over 6 digits: no marker */
}

static void
test_not_markers(void **state)
{
	(void)state;
	assert_int_equal(parse("[3] (see p. 3) [p. three] [p 3 (pp. 4] [p. 5) [page]", 10, 32), 0);
	assert_int_equal(parse("[price 3] [p.-3] [paper 2] [pagination 2]", 10, 32), 0);
	assert_int_equal(parse("[p. 2, ]", 10, 32), 0);
	assert_int_equal(parse("", 10, 32), 0);
	/* an unterminated marker does not hide the next one */
	assert_int_equal(parse("[p. 2 [p. 8]", 10, 32), 1);
	assert_int_equal(pages[0], 8);
}

/* Only len bytes are read: a marker cut by the length is not one. */
static void
test_length_bound(void **state)
{
	const char *t = "[p. 3] [p. 4]";

	(void)state;
	assert_int_equal(chat_cite_parse(t, 6, 10, pages, 32), 1);
	assert_int_equal(chat_cite_parse(t, 5, 10, pages, 32), 0);
	assert_int_equal(chat_cite_parse(t, 12, 10, pages, 32), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forms),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_document_pages_and_cap),
	    cmocka_unit_test(test_not_markers),
	    cmocka_unit_test(test_length_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
