/*
 * terms.h - the words of a search query that the fallback searches look for.
 *
 * pdf.Search first asks for chunks that hold every word of the query (plainto_tsquery). A
 * question in natural language ("What does the Calvin cycle fix?") rarely has all its words in
 * one chunk, so when that finds nothing the search falls back to chunks that hold SOME of the
 * query's key terms, ranked by how many distinct terms they hold (store.c). This file picks those
 * terms: words of 3+ bytes (2+ for numbers), lower-cased, not English stop words, at most
 * PDF_TERMS_MAX of them, deduplicated. A long word is cut to a prefix of about 70% of its length
 * (at least 4 bytes, on a UTF-8 character boundary) and matched as a prefix, a crude stemmer:
 * "photosynthesis" finds "photosynthetic", "enzymes" finds "enzyme".
 *
 * A word is a run of ASCII letters and digits and bytes >= 0x80 (UTF-8 letters stay whole);
 * everything else separates words. So a term never holds a quote, backslash, colon or any other
 * tsquery or array-literal syntax, and the texts built here are safe to pass as parameters.
 */
#ifndef PDF_TERMS_H
#define PDF_TERMS_H

#include <stddef.h>

#include "cm/err.h"

#define PDF_TERMS_MAX 16    /* terms kept of one query */
#define PDF_TERM_MAX_LEN 64 /* bytes kept of one word */

typedef struct pdf_terms {
	int  n;
	char word[PDF_TERMS_MAX][PDF_TERM_MAX_LEN + 1];   /* the whole word, lower case */
	char prefix[PDF_TERMS_MAX][PDF_TERM_MAX_LEN + 1]; /* what is matched as a prefix */
} pdf_terms;

/* Picks the terms of query (NUL-terminated, any bytes). */
void pdf_terms_parse(const char *query, pdf_terms *out);

/* The tsquery text matching any term as a prefix: 'calvin':* | 'photosynth':* ("" for none).
 * CM_ETOOBIG when outlen is too small. */
CM_MUSTCHECK cm_err pdf_terms_tsquery_any(const pdf_terms *t, char *out, size_t outlen);

/* A PostgreSQL text[] literal of one tsquery per term: {"'calvin':*","'photosynth':*"}, or of
 * the whole words when prefixes is 0: {"calvin","photosynthesis"}. CM_ETOOBIG when too small. */
CM_MUSTCHECK cm_err pdf_terms_array(const pdf_terms *t, int prefixes, char *out, size_t outlen);

#endif
