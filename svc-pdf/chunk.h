/*
 * chunk.h - splitting a document's pages into chunks for question generation, chat and search.
 *
 * A chunk is min..max bytes of text (PDF_CHUNK_MIN..PDF_CHUNK_MAX by default) cut at the best
 * boundary inside that window: a paragraph end (an empty line; page ends count as paragraph
 * ends), else a sentence end ('.', '!' or '?' followed by white space), else any white space,
 * else the last whole UTF-8 character. Only the document's last chunk may be shorter than min,
 * and when what is left is a little more than max it is split in two halves rather than leaving
 * a crumb. Each chunk records the pages of its first and last character (1-based).
 */
#ifndef PDF_CHUNK_H
#define PDF_CHUNK_H

#include <stddef.h>

#include "cm/err.h"

typedef struct pdf_chunk {
	int         page_first;
	int         page_last;
	const char *text; /* NUL-terminated, inside the pdf_chunks */
	size_t      len;
} pdf_chunk;

typedef struct pdf_chunks {
	size_t     n;
	pdf_chunk *v;
	char      *mem; /* private */
} pdf_chunks;

/* pages[i] (lens[i] bytes, valid UTF-8) is page i+1. min/max of 0 take the defaults.
 * On CM_OK, out holds the chunks (free with pdf_chunks_fini); an all-blank document gives none. */
CM_MUSTCHECK cm_err pdf_chunk_pages(const char *const *pages, const size_t *lens, int npages,
                                    size_t min, size_t max, pdf_chunks *out);
void                pdf_chunks_fini(pdf_chunks *c);

#endif
