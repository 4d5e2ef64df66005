/*
 * test_pdf_terms.c - terms.c: the key terms of a search query (stop words, short words,
 * prefixes, UTF-8, the cap) and the tsquery / text[] texts built from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-pdf/terms.h"

static void
test_question(void **state)
{
	pdf_terms t;

	(void)state;
	pdf_terms_parse("What does the Calvin cycle fix?", &t);
	assert_int_equal(t.n, 3);
	assert_string_equal(t.word[0], "calvin");
	assert_string_equal(t.prefix[0], "calvi"); /* 6 bytes: 70% is 5 */
	assert_string_equal(t.word[1], "cycle");
	assert_string_equal(t.prefix[1], "cycle");
	assert_string_equal(t.word[2], "fix");
}

static void
test_prefixes(void **state)
{
	pdf_terms t;

	(void)state;
	pdf_terms_parse("Photosynthesis ENZYMES mitochondrial", &t);
	assert_int_equal(t.n, 3);
	assert_string_equal(t.word[0], "photosynthesis");
	assert_string_equal(t.prefix[0], "photosynth");
	assert_string_equal(t.prefix[1], "enzym");
	assert_string_equal(t.prefix[2], "mitochondr");
}

static void
test_short_stop_duplicates_numbers(void **state)
{
	pdf_terms t;

	(void)state;
	pdf_terms_parse("is it an ox? the THE the 7 1984 cell cell Cell", &t);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.word[0], "1984");
	assert_string_equal(t.prefix[0], "1984"); /* numbers are never cut */
	assert_string_equal(t.word[1], "cell");
	pdf_terms_parse("what is it?", &t);
	assert_int_equal(t.n, 0);
	pdf_terms_parse("", &t);
	assert_int_equal(t.n, 0);
}

/* Quotes, backslashes, colons and tsquery operators separate words and never reach a term. */
static void
test_syntax_never_passes(void **state)
{
	pdf_terms t;
	char      q[512], a[512];

	(void)state;
	pdf_terms_parse("o'brien's \\x:* a&b|c !(d) {e,\"f\"} <-> water", &t);
	for (int i = 0; i < t.n; i++)
		assert_null(strpbrk(t.word[i], "'\\:*&|!(){},\" <>-"));
	assert_int_equal(pdf_terms_tsquery_any(&t, q, sizeof(q)), CM_OK);
	assert_int_equal(pdf_terms_array(&t, 1, a, sizeof(a)), CM_OK);
	assert_string_equal(q, "'brien':* | 'water':*");
	assert_string_equal(a, "{\"'brien':*\",\"'water':*\"}");
	assert_int_equal(pdf_terms_array(&t, 0, a, sizeof(a)), CM_OK);
	assert_string_equal(a, "{\"brien\",\"water\"}");
}

static void
test_utf8(void **state)
{
	pdf_terms t;

	(void)state;
	/* "Übersichtlichkeit" (18 bytes): the prefix ends on a character boundary */
	pdf_terms_parse("\xc3\x9c"
	                "bersichtlichkeit naïve",
	                &t);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.word[0], "\xc3\x9c"
	                               "bersichtlichkeit"); /* only ASCII is lowered */
	assert_int_equal(strlen(t.prefix[0]), 13);
	assert_string_equal(t.word[1], "naïve");
	assert_string_equal(t.prefix[1], "naïv");
	/* a cut that would split "é" (2 bytes) backs off before it */
	pdf_terms_parse("abcdéfgh", &t); /* 9 bytes: 70% -> 7, after é (bytes 4-5) */
	assert_int_equal(t.n, 1);
	assert_string_equal(t.prefix[0], "abcdéf");
	pdf_terms_parse("abcéefgh", &t); /* 9 bytes, cut at 7 */
	assert_string_equal(t.prefix[0], "abcéef");
	pdf_terms_parse("abcdeféh", &t); /* 9 bytes: byte 7 is the second byte of é */
	assert_string_equal(t.prefix[0], "abcdef");
}

static void
test_caps(void **state)
{
	pdf_terms t;
	char      q[4096], longw[200], small[16];

	(void)state;
	pdf_terms_parse("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
	                "mike november oscar papa quebec romeo sierra tango",
	                &t);
	assert_int_equal(t.n, PDF_TERMS_MAX);
	assert_string_equal(t.word[PDF_TERMS_MAX - 1], "papa");
	assert_int_equal(pdf_terms_tsquery_any(&t, q, sizeof(q)), CM_OK);
	assert_int_equal(pdf_terms_tsquery_any(&t, small, sizeof(small)), CM_ETOOBIG);
	assert_string_equal(small, "");
	assert_int_equal(pdf_terms_array(&t, 1, small, sizeof(small)), CM_ETOOBIG);
	memset(longw, 'x', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	pdf_terms_parse(longw, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(strlen(t.word[0]), PDF_TERM_MAX_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_question),
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_short_stop_duplicates_numbers),
	    cmocka_unit_test(test_syntax_never_passes),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
