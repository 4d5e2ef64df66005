/*
 * terms.c - key terms of a search query, for the fallback searches (see terms.h).
 *
 * DESIGN: one pass over the bytes; a word ends at any byte that is not an ASCII letter or digit
 * and below 0x80. Stop words are a short English list checked with a linear scan (queries are at
 * most PDF_MAX_QUERY bytes, so at most a few hundred words). Output texts are written with
 * snprintf into the caller's buffer and fail as a whole when they do not fit.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "terms.h"

/* Words too common to say anything about a passage. */
static const char *const stop[] = {
    "about",   "above", "after",   "again", "all",     "also",     "and",      "any",   "are",
    "because", "been",  "before",  "being", "between", "both",     "but",      "can",   "could",
    "did",     "does",  "doing",   "down",  "during",  "each",     "explain",  "few",   "for",
    "from",    "had",   "has",     "have",  "having",  "her",      "here",     "hers",  "him",
    "his",     "how",   "into",    "its",   "itself",  "just",     "may",      "more",  "most",
    "much",    "must",  "not",     "now",   "off",     "once",     "only",     "other", "our",
    "out",     "over",  "own",     "same",  "she",     "should",   "some",     "such",  "tell",
    "than",    "that",  "the",     "their", "them",    "then",     "there",    "these", "they",
    "this",    "those", "through", "too",   "under",   "until",    "very",     "was",   "way",
    "were",    "what",  "when",    "where", "which",   "while",    "who",      "whom",  "why",
    "will",    "with",  "would",   "you",   "your",    "describe", "document", "text",  "please",
    "mean",    "means",
};

static bool
word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static bool
is_stop(const char *w)
{
	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (strcmp(w, stop[i]) == 0)
			return true;
	return false;
}

static bool
all_digits(const char *w)
{
	for (; *w != '\0'; w++)
		if (*w < '0' || *w > '9')
			return false;
	return true;
}

/* Adds one word (len bytes, already lower case) unless it is short, a stop word or known. */
static void
add_word(pdf_terms *t, const char *w, size_t len)
{
	char   word[PDF_TERM_MAX_LEN + 1];
	size_t plen;

	if (t->n == PDF_TERMS_MAX)
		return;
	if (len > PDF_TERM_MAX_LEN) { /* keep whole UTF-8 characters */
		len = PDF_TERM_MAX_LEN;
		while (len > 0 && ((unsigned char)w[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(word, w, len);
	word[len] = '\0';
	if (all_digits(word) ? len < 2 : len < 3)
		return;
	if (is_stop(word))
		return;
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->word[i], word) == 0)
			return;
	plen = len;
	if (len > 5 && !all_digits(word)) {
		plen = (len * 7 + 9) / 10;
		if (plen < 4)
			plen = 4;
		while (plen > 0 && ((unsigned char)word[plen] & 0xC0) == 0x80)
			plen--; /* not inside a character */
		if (plen == 0)
			plen = len;
	}
	memcpy(t->word[t->n], word, len + 1);
	memcpy(t->prefix[t->n], word, plen);
	t->prefix[t->n][plen] = '\0';
	t->n++;
}

void
pdf_terms_parse(const char *query, pdf_terms *out)
{
	char   w[PDF_TERM_MAX_LEN + 8];
	size_t n = 0, whole = 0;

	memset(out, 0, sizeof(*out));
	for (const unsigned char *p = (const unsigned char *)query;; p++) {
		if (*p != '\0' && word_byte(*p)) {
			if (n < sizeof(w) - 1)
				w[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p);
			whole++;
			continue;
		}
		if (whole > 0) {
			w[n] = '\0';
			add_word(out, w, n);
		}
		n = whole = 0;
		if (*p == '\0')
			break;
	}
}

cm_err
pdf_terms_tsquery_any(const pdf_terms *t, char *out, size_t outlen)
{
	size_t used = 0;

	if (outlen == 0)
		return CM_ETOOBIG;
	out[0] = '\0';
	for (int i = 0; i < t->n; i++) {
		int k = snprintf(out + used, outlen - used, "%s'%s':*", i > 0 ? " | " : "",
		                 t->prefix[i]);
		if (k < 0 || (size_t)k >= outlen - used) {
			out[0] = '\0';
			return CM_ETOOBIG;
		}
		used += (size_t)k;
	}
	return CM_OK;
}

cm_err
pdf_terms_array(const pdf_terms *t, int prefixes, char *out, size_t outlen)
{
	size_t used = 0;
	int    k;

	if (outlen < 3)
		return CM_ETOOBIG;
	out[used++] = '{';
	for (int i = 0; i < t->n; i++) {
		k = prefixes ? snprintf(out + used, outlen - used, "%s\"'%s':*\"", i > 0 ? "," : "",
		                        t->prefix[i])
		             : snprintf(out + used, outlen - used, "%s\"%s\"", i > 0 ? "," : "",
		                        t->word[i]);
		if (k < 0 || (size_t)k >= outlen - used) {
			out[0] = '\0';
			return CM_ETOOBIG;
		}
		used += (size_t)k;
	}
	if (used + 2 > outlen) {
		out[0] = '\0';
		return CM_ETOOBIG;
	}
	out[used++] = '}';
	out[used] = '\0';
	return CM_OK;
}
