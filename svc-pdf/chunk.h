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

#include <stdbool.h>
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

/* The same cutting, page by page, for a document whose pages arrive while it is extracted:
 * pdf_chunker_next gives each chunk as soon as no later page can change it (the window and
 * everything after it are known), and with last = true every remaining one. Fed the same pages,
 * it gives exactly the chunks of pdf_chunk_pages. It keeps the text joined so far. One owner. */
typedef struct pdf_chunker {
	size_t  min, max;
	char   *text; /* the pages joined, as in pdf_chunk_pages */
	size_t  n, cap;
	size_t *start; /* start of each page in text */
	int     npages, cap_pages;
	size_t  pos; /* where the next chunk begins */
} pdf_chunker;

/* min/max of 0 take the defaults; CM_EINVAL as pdf_chunk_pages. */
CM_MUSTCHECK cm_err pdf_chunker_init(pdf_chunker *c, size_t min, size_t max);
/* Appends page npages+1 (len bytes of valid UTF-8). */
CM_MUSTCHECK cm_err pdf_chunker_add_page(pdf_chunker *c, const char *page, size_t len);
/* The next chunk into *out (its text is not NUL-terminated and lives until the next
 * pdf_chunker_add_page); false when none is ready. */
bool pdf_chunker_next(pdf_chunker *c, bool last, pdf_chunk *out);
void pdf_chunker_fini(pdf_chunker *c);

#endif
