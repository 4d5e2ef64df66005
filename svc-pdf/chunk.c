/*
 * chunk.c - cutting a document into chunks that keep their page numbers.
 *
 * DESIGN: the pages are joined into one string with an empty line between pages (so a page end
 * is a paragraph end), remembering where each page starts. A single forward pass then picks each
 * cut inside the window [pos+min, pos+max], searching backwards from the window's end for the
 * best boundary kind first (paragraph, sentence, white space, character). Boundaries are found
 * in a first pass and copied into one block with a NUL after each chunk in a second. A chunk's
 * pages come from a binary search over the page starts. The pass is a pdf_chunker fed page by
 * page, so svc-pdf can store chunks while a document is still being extracted (saver.c); a cut
 * is made only once everything it depends on is known, so the chunks are the same either way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "config.h"
#include "text.h"

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
pdf_chunker_init(pdf_chunker *c, size_t min, size_t max)
{
	memset(c, 0, sizeof(*c));
	c->min = min == 0 ? PDF_CHUNK_MIN : min;
	c->max = max == 0 ? PDF_CHUNK_MAX : max;
	return c->max < c->min || c->max < 8 ? CM_EINVAL : CM_OK;
}

void
pdf_chunker_fini(pdf_chunker *c)
{
	free(c->text);
	free(c->start);
	memset(c, 0, sizeof(*c));
}

cm_err
pdf_chunker_add_page(pdf_chunker *c, const char *page, size_t len)
{
	size_t need;

	if (c->npages == INT32_MAX || len > SIZE_MAX - 3 - c->n)
		return CM_ETOOBIG;
	if (c->npages == c->cap_pages) {
		int     cap = c->cap_pages == 0 ? 64 : c->cap_pages * 2;
		size_t *v = realloc(c->start, (size_t)cap * sizeof(*v));
		if (v == NULL)
			return CM_ENOMEM;
		c->start = v;
		c->cap_pages = cap;
	}
	need = c->n + len + 3;
	if (need > c->cap) {
		size_t cap = c->cap == 0 ? 64 * 1024 : c->cap;
		char  *t;
		while (cap < need)
			cap *= 2;
		if ((t = realloc(c->text, cap)) == NULL)
			return CM_ENOMEM;
		c->text = t;
		c->cap = cap;
	}
	c->start[c->npages++] = c->n;
	memcpy(c->text + c->n, page, len);
	c->n += len;
	if (len > 0) {
		memcpy(c->text + c->n, "\n\n", 2);
		c->n += 2;
	}
	c->text[c->n] = '\0';
	return CM_OK;
}

/* Before the last page, a chunk is cut only when at least max + min bytes follow pos: then the
 * whole document would be cut there the same way (its rest can only be longer, and find_cut
 * looks no further than pos + max). */
bool
pdf_chunker_next(pdf_chunker *c, bool last, pdf_chunk *out)
{
	const char *text = c->text;
	size_t      n = c->n, min = c->min, max = c->max;

	for (;;) {
		size_t rest, lo, hi, s, e, end;

		while (c->pos < n && is_ws(text[c->pos]))
			c->pos++;
		if (c->pos >= n)
			return false;
		rest = n - c->pos;
		if (!last && rest < max + min)
			return false;
		if (rest <= max) {
			end = n;
		} else {
			if (rest < max + min) { /* split what is left into halves */
				lo = c->pos + rest / 2 - (max - min) / 2;
				hi = c->pos + rest / 2 + (max - min) / 2;
			} else {
				lo = c->pos + min;
				hi = c->pos + max;
			}
			end = find_cut(text, n, lo, hi);
		}
		s = c->pos;
		e = end;
		while (e > s && is_ws(text[e - 1]))
			e--;
		c->pos = end;
		if (e > s) {
			out->text = text + s;
			out->len = e - s;
			out->page_first = page_of(c->start, c->npages, s);
			out->page_last = page_of(c->start, c->npages, e - 1);
			return true;
		}
	}
}

cm_err
pdf_chunk_pages(const char *const *pages, const size_t *lens, int npages, size_t min, size_t max,
                pdf_chunks *out)
{
	pdf_chunker c;
	pdf_chunk   ch;
	pdf_chunk  *v = NULL;
	size_t      total = 0, nv = 0, cap = 0, o = 0;
	cm_err      err;

	memset(out, 0, sizeof(*out));
	if ((err = pdf_chunker_init(&c, min, max)) != CM_OK || npages < 0) {
		err = CM_EINVAL;
		goto out;
	}
	for (int i = 0; i < npages && err == CM_OK; i++)
		err = pdf_chunker_add_page(&c, pages[i], lens[i]);
	if (err != CM_OK)
		goto out;
	err = CM_ENOMEM;
	while (pdf_chunker_next(&c, true, &ch)) {
		if (nv == cap) {
			pdf_chunk *nvv;
			cap = cap == 0 ? 16 : cap * 2;
			if ((nvv = realloc(v, cap * sizeof(*nvv))) == NULL)
				goto out;
			v = nvv;
		}
		v[nv++] = ch;
		total += ch.len + 1;
	}
	/* One block for the texts, a NUL after each. */
	if (nv > 0 && (out->mem = malloc(total)) == NULL)
		goto out;
	for (size_t i = 0; i < nv; i++) {
		memcpy(out->mem + o, v[i].text, v[i].len);
		out->mem[o + v[i].len] = '\0';
		v[i].text = out->mem + o;
		o += v[i].len + 1;
	}
	out->v = v;
	out->n = nv;
	v = NULL;
	err = CM_OK;
out:
	if (err != CM_OK)
		pdf_chunks_fini(out);
	free(v);
	pdf_chunker_fini(&c);
	return err;
}

void
pdf_chunks_fini(pdf_chunks *c)
{
	free(c->v);
	free(c->mem);
	memset(c, 0, sizeof(*c));
}
