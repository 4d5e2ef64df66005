/*
 * cite.c - page citation markers in model output (see cite.h).
 *
 * DESIGN: a scanner over [p, end) with one-byte lookahead helpers; a marker is tried at every
 * opening bracket and either parses completely (its pages are kept) or is abandoned (nothing
 * kept), after which the scan resumes at the next byte. Each attempt stops at the first byte that
 * does not fit, and a marker attempt never reads past CITE_MARKER_MAX bytes, so the whole scan
 * is O(len * CITE_MARKER_MAX) at worst and O(len) in practice. Pages go into a bitmap-free
 * sorted set (insertion into at most cap entries) because cap is small.
 */
#include <stdbool.h>
#include <string.h>

#include "cite.h"

#define CITE_MARKER_MAX 200 /* bytes one marker may span */
#define CITE_MAX_PAGES 64   /* pages one marker may name */

typedef struct scan {
	const char *p;
	const char *end;
} scan;

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static void
skip_ws(scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
	/* a no-break space (U+00A0) counts as white space too */
	while (s->end - s->p >= 2 && (unsigned char)s->p[0] == 0xC2 &&
	       (unsigned char)s->p[1] == 0xA0)
		s->p += 2;
}

/* Consumes word (lower case ASCII) when the text has it here, not followed by a letter. */
static bool
take_word(scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s->p[i]) != word[i])
			return false;
	if ((size_t)(s->end - s->p) > n && lower((unsigned char)s->p[n]) >= 'a' &&
	    lower((unsigned char)s->p[n]) <= 'z')
		return false;
	s->p += n;
	return true;
}

/* A label: pages | page | pp | p, then an optional '.'. */
static bool
take_label(scan *s)
{
	if (!take_word(s, "pages") && !take_word(s, "page") && !take_word(s, "pp") &&
	    !take_word(s, "p"))
		return false;
	if (s->p < s->end && *s->p == '.')
		s->p++;
	return true;
}

/* 1 to 6 digits. */
static bool
take_num(scan *s, int *v)
{
	int n = 0, val = 0;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (++n > 6)
			return false;
		val = val * 10 + (*s->p - '0');
		s->p++;
	}
	*v = val;
	return n > 0;
}

/* '-', en dash (E2 80 93) or em dash (E2 80 94). */
static bool
take_dash(scan *s)
{
	if (s->p < s->end && *s->p == '-') {
		s->p++;
		return true;
	}
	if (s->end - s->p >= 3 && (unsigned char)s->p[0] == 0xE2 &&
	    (unsigned char)s->p[1] == 0x80 &&
	    ((unsigned char)s->p[2] == 0x93 || (unsigned char)s->p[2] == 0x94)) {
		s->p += 3;
		return true;
	}
	return false;
}

static bool
take_sep(scan *s)
{
	if (s->p < s->end && (*s->p == ',' || *s->p == ';' || *s->p == '&')) {
		s->p++;
		return true;
	}
	return take_word(s, "and");
}

/* Parses one marker at s->p (an opening bracket); on success the pages it names are in
 * pages[0..*n) and s->p is past its closing bracket. */
static bool
marker(scan *s, int *pages, int *n)
{
	char close = *s->p == '[' ? ']' : ')';

	*n = 0;
	s->p++;
	skip_ws(s);
	if (!take_label(s))
		return false;
	for (;;) {
		int a, b;
		skip_ws(s);
		if (!take_num(s, &a))
			return false;
		b = a;
		skip_ws(s);
		if (take_dash(s)) {
			skip_ws(s);
			if (!take_num(s, &b))
				return false;
			skip_ws(s);
		}
		if (b >= a && b - a <= CHAT_CITE_RANGE) {
			for (int v = a; v <= b && *n < CITE_MAX_PAGES; v++)
				pages[(*n)++] = v;
		} else {
			if (*n < CITE_MAX_PAGES)
				pages[(*n)++] = a;
			if (*n < CITE_MAX_PAGES)
				pages[(*n)++] = b;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return true;
		}
		if (!take_sep(s))
			return false;
		skip_ws(s);
		(void)take_label(s); /* "p. 3, p. 8" */
	}
}

/* Inserts v into the sorted set out[0..*n) of at most cap entries, keeping the smallest. */
static void
insert(int *out, int *n, int cap, int v)
{
	int i = *n;

	for (int k = 0; k < *n; k++)
		if (out[k] == v)
			return;
	if (*n == cap && (cap == 0 || v > out[cap - 1]))
		return;
	if (*n < cap)
		(*n)++;
	for (i = *n - 1; i > 0 && out[i - 1] > v; i--)
		out[i] = out[i - 1];
	out[i] = v;
}

int
chat_cite_parse(const char *text, size_t len, int npages, int *out, int cap)
{
	const char *end = text + len;
	int         n = 0;

	for (const char *p = text; p < end; p++) {
		scan s;
		int  pages[CITE_MAX_PAGES], k;
		if (*p != '[' && *p != '(')
			continue;
		s.p = p;
		s.end = end - p > CITE_MARKER_MAX ? p + CITE_MARKER_MAX : end;
		if (!marker(&s, pages, &k))
			continue;
		for (int i = 0; i < k; i++)
			if (pages[i] >= 1 && pages[i] <= npages)
				insert(out, &n, cap, pages[i]);
		p = s.p - 1;
	}
	return n;
}
