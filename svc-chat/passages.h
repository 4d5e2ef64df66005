/*
 * passages.h - the document text a question is answered from: passages of single pages.
 *
 * svc-pdf's search returns chunks, and a chunk may run over several pages (a chunk is 1.5-2.5 KB
 * cut at paragraph ends, and a page end is one). A citation names one page, so each chunk is cut
 * back into its pages before the model sees it: the chunk is a substring of the document's pages
 * joined with an empty line between them (svc-pdf/chunk.c), so page p starts in the chunk right
 * after an empty line, where the chunk's bytes equal the start of page p's own text.
 *
 * The passages of one prompt share a byte budget (CHAT_CONTEXT_BYTES) and at most
 * CHAT_MAX_PASSAGES slots; the last passage that fits is clipped at a UTF-8 boundary.
 */
#ifndef CHAT_PASSAGES_H
#define CHAT_PASSAGES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct chat_passage {
	int    page;
	char  *text; /* malloc'd, NUL-terminated, trimmed */
	size_t len;
} chat_passage;

typedef struct chat_passages {
	int          n;
	chat_passage v[CHAT_MAX_PASSAGES];
	size_t       bytes;      /* sum of the texts */
	size_t       budget;     /* at most this many bytes */
	bool         from_start; /* no chunk matched the question: the document's first pages */
} chat_passages;

void chat_passages_init(chat_passages *ps, size_t budget);
void chat_passages_fini(chat_passages *ps);

/* True when nothing more fits (budget or slots used up). */
bool chat_passages_full(const chat_passages *ps);

/* Adds text (len bytes) as a passage of page, trimmed, clipped to what is left of the budget
 * (a remainder under 200 bytes is not worth a passage). Returns CM_ENOMEM on allocation failure;
 * a passage that does not fit is silently left out. */
CM_MUSTCHECK cm_err chat_passages_add(chat_passages *ps, int page, const char *text, size_t len);

/* Where pages first+1 .. last begin in a chunk of pages [first, last]: cut[i] is the byte offset
 * of page first+1+i, found as described above; page_text[i] is that page's whole text (NULL when
 * unknown). A page that cannot be found gets the previous cut (its text stays with the page
 * before). Offsets never decrease and never exceed len. */
void chat_split_chunk(const char *chunk, size_t len, int first, int last,
                      const char *const *page_text, size_t *cut);

/* Largest n' <= n such that s[0..n') ends on a UTF-8 character boundary. */
size_t chat_utf8_floor(const char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool chat_utf8_valid(const char *s, size_t n);

#endif
