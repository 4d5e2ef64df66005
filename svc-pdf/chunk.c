/*
 * chunk.c - cutting a document into chunks that keep their page numbers.
 *
 * DESIGN: the pages are joined into one string with an empty line between pages (so a page end
 * is a paragraph end), remembering where each page starts. A single forward pass then picks each
 * cut inside the window [pos+min, pos+max], searching backwards from the window's end for the
 * best boundary kind first (paragraph, sentence, white space, character). Boundaries are found
 * in a first pass and copied into one block with a NUL after each chunk in a second, so the
 * chunks cost two allocations. A chunk's pages come from a binary search over the page starts.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "config.h"
#include "text.h"

typedef struct span {
	size_t s, e;
} span;

static bool
is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* The best cut in (lo, hi] of text (n bytes); text[0..hi) exists, hi < n. */
static size_t
find_cut(const char *text, size_t n, size_t lo, size_t hi)
{
	size_t j;

	for (j = hi; j > lo; j--) { /* paragraph: cut after an empty line */
		if (j >= 2 && text[j - 1] == '\n' && text[j - 2] == '\n')
			return j;
	}
	for (j = hi; j > lo; j--) { /* sentence: after . ! ? followed by white space */
		char c = text[j - 1];
		if ((c == '.' || c == '!' || c == '?') && j < n && is_ws(text[j]))
			return j;
	}
	for (j = hi; j > lo; j--) { /* any white space */
		if (is_ws(text[j]))
			return j;
	}
	j = pdf_utf8_floor(text, hi); /* a whole character */
	return j > lo ? j : hi;
}

/* The 1-based page of byte offset off: the last page starting at or before it. */
static int
page_of(const size_t *start, int npages, size_t off)
{
	int lo = 0, hi = npages; /* answer in [lo, hi) */

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;
		if (start[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo + 1;
}

cm_err
pdf_chunk_pages(const char *const *pages, const size_t *lens, int npages, size_t min, size_t max,
                pdf_chunks *out)
{
	char   *text = NULL;
	size_t *start = NULL;
	span   *spans = NULL;
	size_t  n = 0, total = 0, nspans = 0, cap = 0, pos, end, o;
	cm_err  err = CM_ENOMEM;

	memset(out, 0, sizeof(*out));
	if (min == 0)
		min = PDF_CHUNK_MIN;
	if (max == 0)
		max = PDF_CHUNK_MAX;
	if (max < min || max < 8 || npages < 0) {
		err = CM_EINVAL;
		goto out;
	}
	for (int i = 0; i < npages; i++)
		total += lens[i] + 2;
	if ((text = malloc(total + 1)) == NULL ||
	    (start = calloc((size_t)npages + 1, sizeof(*start))) == NULL)
		goto out;
	for (int i = 0; i < npages; i++) {
		start[i] = n;
		memcpy(text + n, pages[i], lens[i]);
		n += lens[i];
		if (lens[i] > 0) {
			memcpy(text + n, "\n\n", 2);
			n += 2;
		}
	}
	text[n] = '\0';

	pos = 0;
	while (pos < n && is_ws(text[pos]))
		pos++;
	while (pos < n) {
		size_t rest = n - pos, lo, hi, s, e;
		if (rest <= max) {
			end = n;
		} else {
			if (rest < max + min) { /* split what is left into halves */
				lo = pos + rest / 2 - (max - min) / 2;
				hi = pos + rest / 2 + (max - min) / 2;
			} else {
				lo = pos + min;
				hi = pos + max;
			}
			end = find_cut(text, n, lo, hi);
		}
		s = pos;
		e = end;
		while (e > s && is_ws(text[e - 1]))
			e--;
		if (e > s) {
			if (nspans == cap) {
				span *v;
				cap = cap == 0 ? 16 : cap * 2;
				if ((v = realloc(spans, cap * sizeof(*v))) == NULL)
					goto out;
				spans = v;
			}
			spans[nspans].s = s;
			spans[nspans].e = e;
			nspans++;
		}
		pos = end;
		while (pos < n && is_ws(text[pos]))
			pos++;
	}

	total = 0;
	for (size_t i = 0; i < nspans; i++)
		total += spans[i].e - spans[i].s + 1;
	if (nspans > 0 && ((out->mem = malloc(total)) == NULL ||
	                   (out->v = calloc(nspans, sizeof(*out->v))) == NULL))
		goto out;
	o = 0;
	for (size_t i = 0; i < nspans; i++) {
		size_t len = spans[i].e - spans[i].s;
		memcpy(out->mem + o, text + spans[i].s, len);
		out->mem[o + len] = '\0';
		out->v[i].text = out->mem + o;
		out->v[i].len = len;
		out->v[i].page_first = page_of(start, npages, spans[i].s);
		out->v[i].page_last = page_of(start, npages, spans[i].e - 1);
		o += len + 1;
	}
	out->n = nspans;
	err = CM_OK;
out:
	if (err != CM_OK)
		pdf_chunks_fini(out);
	free(spans);
	free(start);
	free(text);
	return err;
}

void
pdf_chunks_fini(pdf_chunks *c)
{
	free(c->v);
	free(c->mem);
	memset(c, 0, sizeof(*c));
}
