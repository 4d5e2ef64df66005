/*
 * passages.c - page passages of a prompt (see passages.h).
 *
 * DESIGN: texts are copied (one malloc each) so the RPC responses they came from can be freed
 * at once; the budget is counted in bytes of passage text, not of the prompt around it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "passages.h"

#define PASSAGE_MIN 200 /* a clipped remainder smaller than this is left out */
#define MATCH_PREFIX 64 /* bytes of a page's start compared with the chunk */

static bool
ws(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

size_t
chat_utf8_floor(const char *s, size_t n)
{
	size_t k = n;

	/* back over continuation bytes to the lead byte, then decide whether its character fits */
	while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
		k--;
	if (k == 0)
		return 0;
	{
		unsigned char lead = (unsigned char)s[k - 1];
		size_t        need = lead < 0x80    ? 1
		                     : lead >= 0xF0 ? 4
		                     : lead >= 0xE0 ? 3
		                     : lead >= 0xC0 ? 2
		                                    : 1;
		return n - (k - 1) >= need ? n : k - 1;
	}
}

bool
chat_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		size_t        k;
		uint32_t      v;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			v = c & 0x1Fu;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			v = c & 0x0Fu;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			v = c & 0x07u;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= k)
			return false;
		for (size_t i = 1; i <= k; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			v = (v << 6) | (p[i] & 0x3Fu);
		}
		if ((k == 2 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
		    (k == 3 && (v < 0x10000 || v > 0x10FFFF)))
			return false;
		p += k + 1;
	}
	return true;
}

void
chat_passages_init(chat_passages *ps, size_t budget)
{
	memset(ps, 0, sizeof(*ps));
	ps->budget = budget;
}

void
chat_passages_fini(chat_passages *ps)
{
	for (int i = 0; i < ps->n; i++)
		free(ps->v[i].text);
	memset(ps, 0, sizeof(*ps));
}

bool
chat_passages_full(const chat_passages *ps)
{
	return ps->n == CHAT_MAX_PASSAGES || ps->budget - ps->bytes < PASSAGE_MIN;
}

cm_err
chat_passages_add(chat_passages *ps, int page, const char *text, size_t len)
{
	size_t left;
	char  *copy;

	while (len > 0 && ws(text[0])) {
		text++;
		len--;
	}
	while (len > 0 && ws(text[len - 1]))
		len--;
	if (len == 0 || chat_passages_full(ps))
		return CM_OK;
	left = ps->budget - ps->bytes;
	if (len > left) {
		len = chat_utf8_floor(text, left);
		while (len > 0 && !ws(text[len - 1]) && left - len < 80)
			len--; /* end at a word when one ends near */
		while (len > 0 && ws(text[len - 1]))
			len--;
		if (len < PASSAGE_MIN)
			return CM_OK;
	}
	if ((copy = malloc(len + 1)) == NULL)
		return CM_ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	ps->v[ps->n].page = page;
	ps->v[ps->n].text = copy;
	ps->v[ps->n].len = len;
	ps->n++;
	ps->bytes += len;
	return CM_OK;
}

/* True when page text pt starts at chunk[pos] (compared over what both have, up to
 * MATCH_PREFIX bytes). */
static bool
starts_here(const char *chunk, size_t len, size_t pos, const char *pt)
{
	size_t n = strlen(pt);

	if (n > MATCH_PREFIX)
		n = MATCH_PREFIX;
	if (n > len - pos)
		n = len - pos;
	return n > 0 && memcmp(chunk + pos, pt, n) == 0;
}

void
chat_split_chunk(const char *chunk, size_t len, int first, int last, const char *const *page_text,
                 size_t *cut)
{
	size_t from = 0;

	for (int i = 0; i < last - first; i++) {
		const char *pt = page_text != NULL ? page_text[i] : NULL;
		size_t      at = from;
		if (pt != NULL && pt[0] != '\0') {
			for (size_t pos = from + 2; pos < len; pos++) {
				if (chunk[pos - 1] == '\n' && chunk[pos - 2] == '\n' &&
				    starts_here(chunk, len, pos, pt)) {
					at = pos;
					break;
				}
			}
		}
		cut[i] = at;
		from = at;
	}
}
