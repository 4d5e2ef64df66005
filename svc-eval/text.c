/*
 * text.c - UTF-8 checks, normalisation, key terms, shingles, prompt quoting (text.h).
 *
 * DESIGN. Everything works on the normalised form, built once into a buffer and split on its
 * single spaces, so every measure sees the same words. Terms and shingles are 64-bit FNV-1a
 * hashes in sorted arrays: set operations are merges, no allocation per word. A collision of
 * two different words in 2^64 only makes two answers look a little more alike.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

bool
eval_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t               i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t        n;
		uint32_t      cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

size_t
eval_utf8_clip(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n < max)
		return n;
	/* Back off continuation bytes, then the lead byte whose sequence does not fit. */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* ---- normalisation --------------------------------------------------------------------------- */

static bool
word_byte(unsigned char c)
{
	return c >= 0x80 || isalnum(c);
}

/* U+2019 RIGHT SINGLE QUOTATION MARK, the apostrophe of typographic text. */
static bool
curly_apostrophe(const unsigned char *s)
{
	return s[0] == 0xe2 && s[1] == 0x80 && s[2] == 0x99;
}

/* Bytes of a non-ASCII space or punctuation mark at s (0: none): U+00A0-U+00BF (no-break
 * space, guillemets, inverted marks), U+2000-U+206F (spaces, dashes, quotation marks,
 * ellipsis), U+3000-U+3002 (ideographic space, comma, full stop). */
static size_t
punct_len(const unsigned char *s)
{
	if (s[0] == 0xc2 && s[1] >= 0xa0 && s[1] <= 0xbf)
		return 2;
	if (s[0] == 0xe2 && (s[1] == 0x80 || (s[1] == 0x81 && s[2] >= 0x80 && s[2] <= 0xaf)) &&
	    s[2] >= 0x80 && s[2] <= 0xbf)
		return 3;
	if (s[0] == 0xe3 && s[1] == 0x80 && s[2] >= 0x80 && s[2] <= 0x82)
		return 3;
	return 0;
}

cm_err
eval_normalize(const char *str, cm_buf *out)
{
	const unsigned char *s = (const unsigned char *)str;
	bool                 need_space = false, any = false;
	cm_err               err;

	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = s[i];
		bool          prev_word = i > 0 && word_byte(s[i - 1]);

		/* An apostrophe inside a word goes: "don't" and "dont" are one answer. */
		if (prev_word && (c == '\'' || curly_apostrophe(s + i))) {
			size_t skip = c == '\'' ? 1 : 3;
			if (s[i + skip] != '\0' && word_byte(s[i + skip]) &&
			    !(s[i + skip] == 0xe2 && curly_apostrophe(s + i + skip))) {
				i += skip - 1;
				continue;
			}
		}
		if ((c == '.' || c == ',') && i > 0 && isdigit(s[i - 1]) && isdigit(s[i + 1])) {
			if ((err = cm_buf_append(out, &c, 1)) != CM_OK)
				return err;
			continue;
		}
		if (!word_byte(c) || punct_len(s + i) > 0) {
			need_space = any;
			if (c >= 0x80)
				i += punct_len(s + i) - 1; /* the whole mark */
			continue;
		}
		if (need_space && (err = cm_buf_append(out, " ", 1)) != CM_OK)
			return err;
		need_space = false;
		any = true;
		c = (unsigned char)tolower(c);
		if ((err = cm_buf_append(out, &c, 1)) != CM_OK)
			return err;
	}
	return cm_buf_append(out, "", 0); /* terminated even when empty */
}

/* ---- words ----------------------------------------------------------------------------------- */

/* Sorted for bsearch. */
static const char *const stopwords[] = {
    "a",       "about",   "above",  "after",   "again", "against", "all",  "also",    "am",
    "an",      "and",     "any",    "are",     "as",    "at",      "be",   "because", "been",
    "before",  "being",   "below",  "between", "both",  "but",     "by",   "can",     "could",
    "did",     "do",      "does",   "doing",   "down",  "during",  "each", "few",     "for",
    "from",    "further", "had",    "has",     "have",  "having",  "he",   "her",     "here",
    "hers",    "him",     "his",    "how",     "i",     "if",      "in",   "into",    "is",
    "it",      "its",     "itself", "just",    "me",    "more",    "most", "my",      "of",
    "off",     "on",      "once",   "only",    "or",    "other",   "our",  "out",     "over",
    "own",     "same",    "she",    "should",  "so",    "some",    "such", "than",    "that",
    "the",     "their",   "them",   "then",    "there", "these",   "they", "this",    "those",
    "through", "to",      "too",    "under",   "until", "up",      "very", "was",     "we",
    "were",    "what",    "when",   "where",   "which", "while",   "who",  "whom",    "why",
    "will",    "with",    "would",  "you",     "your",
};

typedef struct span {
	const char *p;
	size_t      len;
} span;

static int
cmp_word(const void *key, const void *elem)
{
	const span *k = key;
	const char *w = *(const char *const *)elem;
	size_t      wl = strlen(w);
	int         c = strncmp(k->p, w, k->len < wl ? k->len : wl);

	if (c != 0)
		return c;
	return k->len < wl ? -1 : k->len > wl ? 1 : 0;
}

bool
eval_stopword(const char *w, size_t len)
{
	span k = {w, len};

	return bsearch(&k, stopwords, sizeof(stopwords) / sizeof(stopwords[0]), sizeof(char *),
	               cmp_word) != NULL;
}

static const char *const negations[] = {
    "aint",    "arent",   "cannot",   "cant",    "couldnt", "didnt",   "doesnt", "dont",    "hadnt",
    "hasnt",   "havent",  "isnt",     "neither", "never",   "no",      "none",   "nor",     "not",
    "nothing", "nowhere", "shouldnt", "wasnt",   "werent",  "without", "wont",   "wouldnt",
};

static bool
negation(const char *w, size_t len)
{
	span k = {w, len};

	return bsearch(&k, negations, sizeof(negations) / sizeof(negations[0]), sizeof(char *),
	               cmp_word) != NULL;
}

static uint64_t
fnv(const char *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

#define FNV_BASIS 1469598103934665603ull

/* Splits a normalised string into words (spans into it); *out malloc'd. */
static cm_err
split(const char *norm, span **out, size_t *n)
{
	size_t cap = 1, k = 0;
	span  *v;

	for (const char *p = norm; *p != '\0'; p++)
		if (*p == ' ')
			cap++;
	if ((v = malloc(cap * sizeof(*v))) == NULL)
		return CM_ENOMEM;
	for (const char *p = norm; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t      len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len > 0 && k < cap)
			v[k++] = (span){p, len};
		p += len;
		if (*p == ' ')
			p++;
	}
	*out = v;
	*n = k;
	return CM_OK;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Sorts and removes duplicates; returns the new count. */
static size_t
sort_unique(uint64_t *h, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(h, n, sizeof(*h), cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (h[i] != h[k])
			h[++k] = h[i];
	return k + 1;
}

static bool
has_digit(const span *w)
{
	for (size_t i = 0; i < w->len; i++)
		if (isdigit((unsigned char)w->p[i]))
			return true;
	return false;
}

cm_err
eval_terms_each(const char *s, eval_term_fn fn, void *arg)
{
	cm_buf norm;
	span  *w = NULL;
	size_t n = 0;
	cm_err err;

	cm_buf_init(&norm, strlen(s) + 16);
	if ((err = eval_normalize(s, &norm)) != CM_OK || (err = split(norm.data, &w, &n)) != CM_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t len = w[i].len;
		if (eval_stopword(w[i].p, len) || (len < 2 && !has_digit(&w[i])))
			continue;
		/* A plural 's' goes: "cells" and "cell" are one term ("glass", "virus" stay). */
		if (len > 3 && w[i].p[len - 1] == 's' && w[i].p[len - 2] != 's' &&
		    w[i].p[len - 2] != 'u' && w[i].p[len - 2] != 'i')
			len--;
		if (!fn(arg, w[i].p, len, fnv(w[i].p, len, FNV_BASIS)))
			break;
	}
out:
	free(w);
	cm_buf_fini(&norm);
	return err;
}

typedef struct collect_ctx {
	eval_terms *t;
	size_t      cap, max;
	bool        oom;
} collect_ctx;

static bool
collect(void *arg, const char *word, size_t len, uint64_t h)
{
	collect_ctx *c = arg;

	(void)word;
	(void)len;
	if (c->t->n == c->cap) {
		size_t    cap = c->cap == 0 ? 32 : c->cap * 2;
		uint64_t *v = realloc(c->t->h, cap * sizeof(*v));
		if (v == NULL) {
			c->oom = true;
			return false;
		}
		c->t->h = v;
		c->cap = cap;
	}
	c->t->h[c->t->n++] = h;
	return c->t->n < c->max;
}

cm_err
eval_terms_of(const char *s, size_t max, eval_terms *out)
{
	collect_ctx c = {out, 0, max, false};
	cm_err      err;

	out->h = NULL;
	out->n = 0;
	if (max == 0)
		return CM_OK;
	if ((err = eval_terms_each(s, collect, &c)) == CM_OK && c.oom)
		err = CM_ENOMEM;
	if (err != CM_OK) {
		eval_terms_fini(out);
		return err;
	}
	out->n = sort_unique(out->h, out->n);
	return CM_OK;
}

bool
eval_terms_has(const eval_terms *t, uint64_t h)
{
	return t->n > 0 && bsearch(&h, t->h, t->n, sizeof(uint64_t), cmp_u64) != NULL;
}

void
eval_terms_fini(eval_terms *t)
{
	free(t->h);
	t->h = NULL;
	t->n = 0;
}

static size_t
common(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0, c = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j]) {
			c++;
			i++;
			j++;
		} else if (a[i] < b[j]) {
			i++;
		} else {
			j++;
		}
	}
	return c;
}

size_t
eval_terms_common(const eval_terms *a, const eval_terms *b)
{
	return common(a->h, a->n, b->h, b->n);
}

size_t
eval_word_count(const char *s)
{
	size_t n = 0;
	bool   in = false;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		bool w = word_byte(*p);
		if (w && !in)
			n++;
		in = w;
	}
	return n;
}

/* ---- similarity ------------------------------------------------------------------------------ */

/* The hashes of a's negations and numbers, in order of the sorted hashes (a multiset). */
static size_t
guards(const span *w, size_t n, uint64_t *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (negation(w[i].p, w[i].len) || has_digit(&w[i]))
			out[k++] = fnv(w[i].p, w[i].len, FNV_BASIS);
	qsort(out, k, sizeof(*out), cmp_u64);
	return k;
}

/* Word pairs (or single words when short) as sorted unique hashes. */
static size_t
shingles(const span *w, size_t n, bool pairs, uint64_t *out)
{
	size_t k = 0;

	if (!pairs) {
		for (size_t i = 0; i < n; i++)
			out[k++] = fnv(w[i].p, w[i].len, FNV_BASIS);
	} else {
		for (size_t i = 0; i + 1 < n; i++)
			out[k++] = fnv(w[i + 1].p, w[i + 1].len,
			               fnv(" ", 1, fnv(w[i].p, w[i].len, FNV_BASIS)));
	}
	return sort_unique(out, k);
}

double
eval_similarity(const char *a, const char *b)
{
	span     *wa = NULL, *wb = NULL;
	uint64_t *ha = NULL, *hb = NULL;
	size_t    na = 0, nb = 0;
	double    sim = 0.0;

	if (strcmp(a, b) == 0)
		return 1.0;
	if (split(a, &wa, &na) != CM_OK || split(b, &wb, &nb) != CM_OK || na == 0 || nb == 0)
		goto out;
	if ((ha = malloc(na * sizeof(*ha))) == NULL || (hb = malloc(nb * sizeof(*hb))) == NULL)
		goto out;
	{
		size_t ga = guards(wa, na, ha), gb = guards(wb, nb, hb);
		if (ga != gb || memcmp(ha, hb, ga * sizeof(*ha)) != 0)
			goto out; /* "is" / "is not", "3" / "4": never alike */
	}
	{
		size_t sa = shingles(wa, na, false, ha), sb = shingles(wb, nb, false, hb);
		size_t c = common(ha, sa, hb, sb);
		sim = (double)c / (double)(sa + sb - c);
		if (na > 1 && nb > 1) {
			/* Words alone ignore order ("a causes b"): average with word pairs. */
			sa = shingles(wa, na, true, ha);
			sb = shingles(wb, nb, true, hb);
			c = common(ha, sa, hb, sb);
			sim = (sim + (double)c / (double)(sa + sb - c)) / 2.0;
		}
	}
out:
	free(ha);
	free(hb);
	free(wa);
	free(wb);
	return sim;
}

/* ---- prompt quoting -------------------------------------------------------------------------- */

cm_err
eval_append_quoted(cm_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	cm_err            err;
	size_t            run = 0;

	if ((err = cm_buf_append(out, "\"", 1)) != CM_OK)
		return err;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char          esc[7];
		size_t        elen = 0;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			elen = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			elen = 2;
		} else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (elen == 0)
			continue;
		if ((err = cm_buf_append(out, s + run, i - run)) != CM_OK ||
		    (err = cm_buf_append(out, esc, elen)) != CM_OK)
			return err;
		run = i + 1;
	}
	if ((err = cm_buf_append(out, s + run, len - run)) != CM_OK)
		return err;
	return cm_buf_append(out, "\"", 1);
}
