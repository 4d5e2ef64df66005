/*
 * test_pdf_chunk.c - chunk.c: sizes within the window, boundary preference (paragraph, sentence,
 * white space, character), page numbers, UTF-8 safety, degenerate input; the page-by-page
 * chunker gives the same chunks as the whole document.
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-pdf/chunk.h"
#include "../../svc-pdf/text.h"

static void
chunk(const char *const *pages, int n, size_t min, size_t max, pdf_chunks *out)
{
	size_t lens[16];

	for (int i = 0; i < n; i++)
		lens[i] = strlen(pages[i]);
	assert_int_equal(pdf_chunk_pages(pages, lens, n, min, max, out), CM_OK);
}

/* A string of n bytes made of sentences "Word word word. " with a paragraph break every para. */
static char *
prose(size_t n, size_t para)
{
	char  *s = malloc(n + 1);
	size_t i = 0;

	assert_non_null(s);
	while (i < n) {
		const char *piece =
		    (para > 0 && i > 0 && i % para < 16) ? "\n\n" : "Lorem ipsum dolor. ";
		size_t k = strlen(piece);
		if (i + k > n)
			k = n - i;
		memcpy(s + i, piece, k);
		i += k;
	}
	s[n] = '\0';
	return s;
}

static void
test_empty_and_blank(void **state)
{
	const char *pages[] = {"", "   \n\n  ", ""};
	pdf_chunks  c;

	(void)state;
	chunk(pages, 3, 0, 0, &c);
	assert_int_equal(c.n, 0);
	pdf_chunks_fini(&c);
	assert_int_equal(pdf_chunk_pages(NULL, NULL, 0, 0, 0, &c), CM_OK);
	assert_int_equal(c.n, 0);
	pdf_chunks_fini(&c);
	assert_int_equal(pdf_chunk_pages(pages, (size_t[]){0, 0, 0}, 3, 100, 50, &c), CM_EINVAL);
}

static void
test_small_document_one_chunk(void **state)
{
	const char *pages[] = {"First page.", "", "Third page text."};
	pdf_chunks  c;

	(void)state;
	chunk(pages, 3, 0, 0, &c);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.v[0].text, "First page.\n\nThird page text.");
	assert_int_equal(c.v[0].page_first, 1);
	assert_int_equal(c.v[0].page_last, 3);
	pdf_chunks_fini(&c);
}

static void
test_sizes_and_coverage(void **state)
{
	char       *doc = prose(50000, 700);
	const char *pages[] = {doc};
	pdf_chunks  c;
	size_t      total = 0;

	(void)state;
	chunk(pages, 1, 1500, 2500, &c);
	assert_true(c.n >= 20 && c.n <= 34);
	for (size_t i = 0; i < c.n; i++) {
		assert_true(c.v[i].len <= 2500);
		if (i + 1 < c.n)
			assert_true(c.v[i].len >= 1500 - 20);
		assert_int_equal(strlen(c.v[i].text), c.v[i].len);
		/* Cut at paragraph ends: no chunk ends inside a sentence. */
		if (i + 1 < c.n)
			assert_true(c.v[i].text[c.v[i].len - 1] == '.');
		total += c.v[i].len;
	}
	/* Only white space between chunks was dropped. */
	assert_true(total >= 50000 - 2 * 16 * (50000 / 700 + 1) - 2 * c.n);
	pdf_chunks_fini(&c);
	free(doc);
}

static void
test_prefers_paragraph_then_sentence(void **state)
{
	/* 60 bytes of sentences, then a paragraph break at 70, then more sentences. */
	const char *pages[] = {
	    "Aaaa aaaa. Bbbb bbbb. Cccc cccc. Dddd dddd. Eeee eeee. Ffff ffff.\n\n"
	    "Gggg gggg. Hhhh hhhh. Iiii iiii. Jjjj jjjj. Kkkk kkkk. Llll llll."};
	const char *nopara[] = {"Aaaa aaaa. Bbbb bbbb. Cccc cccc. Dddd dddd. Eeee eeee. Ffff ffff "
	                        "Gggg gggg Hhhh hhhh Iiii iiii Jjjj jjjj Kkkk kkkk Llll llll."};
	pdf_chunks  c;

	(void)state;
	chunk(pages, 1, 40, 90, &c);
	assert_true(c.n >= 2);
	assert_string_equal(c.v[0].text,
	                    "Aaaa aaaa. Bbbb bbbb. Cccc cccc. Dddd dddd. Eeee eeee. Ffff ffff.");
	pdf_chunks_fini(&c);
	chunk(nopara, 1, 40, 90, &c);
	assert_true(c.n >= 2);
	assert_string_equal(c.v[0].text, "Aaaa aaaa. Bbbb bbbb. Cccc cccc. Dddd dddd. Eeee eeee.");
	pdf_chunks_fini(&c);
}

static void
test_hard_cut_keeps_utf8(void **state)
{
	/* No white space at all, 3-byte characters: cuts must fall between characters. */
	char        s[3 * 1000 + 1];
	const char *pages[] = {s};
	pdf_chunks  c;

	(void)state;
	for (int i = 0; i < 1000; i++)
		memcpy(s + 3 * i, "\xe2\x82\xac", 3); /* EUR sign */
	s[3000] = '\0';
	chunk(pages, 1, 100, 200, &c);
	assert_true(c.n >= 15);
	for (size_t i = 0; i < c.n; i++) {
		assert_int_equal(c.v[i].len % 3, 0);
		assert_true(c.v[i].len <= 200);
		assert_int_equal((unsigned char)c.v[i].text[0], 0xe2);
	}
	pdf_chunks_fini(&c);
}

static void
test_pages_of_chunks(void **state)
{
	char       *p1 = prose(3000, 0), *p2 = prose(500, 0), *p3 = prose(3000, 0);
	const char *pages[] = {p1, p2, "", p3};
	pdf_chunks  c;

	(void)state;
	chunk(pages, 4, 1500, 2500, &c);
	assert_true(c.n >= 3);
	assert_int_equal(c.v[0].page_first, 1);
	assert_int_equal(c.v[c.n - 1].page_last, 4);
	for (size_t i = 0; i < c.n; i++) {
		assert_true(c.v[i].page_first <= c.v[i].page_last);
		assert_true(c.v[i].page_first != 3 && c.v[i].page_last != 3); /* page 3 is empty */
		if (i > 0)
			assert_true(c.v[i].page_first >= c.v[i - 1].page_last);
	}
	/* Some chunk spans the page 1/2 or 2/4 boundary. */
	{
		bool spans = false;
		for (size_t i = 0; i < c.n; i++)
			spans = spans || c.v[i].page_first != c.v[i].page_last;
		assert_true(spans);
	}
	pdf_chunks_fini(&c);
	free(p1);
	free(p2);
	free(p3);
}

static void
test_no_crumb_at_the_end(void **state)
{
	char       *doc = prose(2600, 0); /* just over max: two halves, not 2500 + 100 */
	const char *pages[] = {doc};
	pdf_chunks  c;

	(void)state;
	chunk(pages, 1, 1500, 2500, &c);
	assert_int_equal(c.n, 2);
	assert_true(c.v[1].len >= 800);
	pdf_chunks_fini(&c);
	free(doc);
}

/* Pages of varied lengths (blank, short, longer than a chunk, prose with paragraphs), fed one
 * at a time with the chunks taken whenever ready, against pdf_chunk_pages on the whole. */
static void
test_chunker_same_as_whole(void **state)
{
	static const size_t lens[] = {0, 300, 7000, 40, 0, 0, 2600, 150, 9000, 10, 4100, 0, 1};
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	const char *pages[N];
	char       *texts[N];
	size_t      plen[N];
	pdf_chunks  whole;
	pdf_chunker c;
	pdf_chunk   ch;
	size_t      got = 0, early = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		texts[i] = prose(lens[i], (size_t)(i % 3) * 700);
		pages[i] = texts[i];
		plen[i] = lens[i];
	}
	assert_int_equal(pdf_chunk_pages(pages, plen, N, 500, 900, &whole), CM_OK);
	assert_true(whole.n > 20);
	assert_int_equal(pdf_chunker_init(&c, 500, 900), CM_OK);
	for (int i = 0; i <= N; i++) {
		if (i < N)
			assert_int_equal(pdf_chunker_add_page(&c, pages[i], plen[i]), CM_OK);
		while (pdf_chunker_next(&c, i == N, &ch)) {
			assert_true(got < whole.n);
			assert_int_equal(ch.len, whole.v[got].len);
			assert_memory_equal(ch.text, whole.v[got].text, ch.len);
			assert_int_equal(ch.page_first, whole.v[got].page_first);
			assert_int_equal(ch.page_last, whole.v[got].page_last);
			got++;
			if (i < N)
				early++;
		}
	}
	assert_int_equal(got, whole.n);
	assert_true(early > whole.n / 2); /* most came before the last page */
	pdf_chunker_fini(&c);
	pdf_chunks_fini(&whole);
	for (int i = 0; i < N; i++)
		free(texts[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_and_blank),
	    cmocka_unit_test(test_small_document_one_chunk),
	    cmocka_unit_test(test_sizes_and_coverage),
	    cmocka_unit_test(test_prefers_paragraph_then_sentence),
	    cmocka_unit_test(test_hard_cut_keeps_utf8),
	    cmocka_unit_test(test_pages_of_chunks),
	    cmocka_unit_test(test_no_crumb_at_the_end),
	    cmocka_unit_test(test_chunker_same_as_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
