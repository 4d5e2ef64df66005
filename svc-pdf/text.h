/*
 * text.h - a document's extracted text and metadata, and the UTF-8 hygiene every string needs
 * before it reaches PostgreSQL (which rejects NUL bytes and invalid UTF-8).
 *
 * A pdf_text is built page by page (extract.c feeds code points from mupdf; upload.c feeds whole
 * pages from the Redis cache) into one capped buffer; pdf_text_finish() then fixes the page
 * pointers. Every page is valid UTF-8 without control characters other than '\n' and '\t',
 * lines end in '\n', paragraphs are separated by an empty line, and trailing white space is
 * trimmed. Not thread-safe; one owner.
 */
#ifndef PDF_TEXT_H
#define PDF_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/err.h"

/* Metadata fields, in the order of pdf_meta's members. */
typedef enum pdf_meta_field {
	PDF_META_TITLE = 0,
	PDF_META_AUTHOR,
	PDF_META_SUBJECT,
	PDF_META_CREATOR,
	PDF_META_PRODUCER,
	PDF_META_CREATION_DATE,
	PDF_META_MOD_DATE,
	PDF_META_COUNT
} pdf_meta_field;

/* Each value is a cleaned, non-empty string owned by the pdf_text, or NULL when absent. */
typedef struct pdf_meta {
	char *v[PDF_META_COUNT];
} pdf_meta;

typedef struct pdf_text {
	/* Valid after pdf_text_finish(). */
	int          npages;
	const char **page; /* npages NUL-terminated strings inside `buf` */
	size_t      *page_len;
	int64_t      text_length; /* Unicode characters over all pages */
	bool         has_text;    /* some page has a character that is not white space */
	pdf_meta     meta;

	/* Private. */
	cm_buf  buf;
	size_t *off; /* start of each page in buf */
	size_t  cap_pages;
	size_t  page_start;
	bool    in_page;
} pdf_text;

/* max_text caps the bytes of all pages together (CM_ETOOBIG past it). */
void pdf_text_init(pdf_text *t, size_t max_text);
void pdf_text_fini(pdf_text *t);

CM_MUSTCHECK cm_err pdf_text_begin_page(pdf_text *t);
/* Appends one code point; NUL and control characters are dropped, surrogates and values past
 * U+10FFFF become U+FFFD. */
CM_MUSTCHECK cm_err pdf_text_put_rune(pdf_text *t, int32_t c);
/* Ends a line: trailing blanks of the line are dropped. */
CM_MUSTCHECK cm_err pdf_text_newline(pdf_text *t);
CM_MUSTCHECK cm_err pdf_text_end_page(pdf_text *t);
/* A whole page from UTF-8 bytes (cleaned like runes; invalid sequences are dropped). */
CM_MUSTCHECK cm_err pdf_text_add_page(pdf_text *t, const char *s, size_t n);
CM_MUSTCHECK cm_err pdf_text_finish(pdf_text *t);
/* The page pdf_text_end_page (or pdf_text_add_page) just ended, while more are being added:
 * *n bytes at *s (NUL-terminated), inside the buffer, valid until the next append. */
void pdf_text_last_page(const pdf_text *t, const char **s, size_t *n);

/* Sets a metadata value from UTF-8 text, cleaned (control characters dropped, white space
 * trimmed, at most PDF_MAX_META bytes); empty text leaves it absent. */
CM_MUSTCHECK cm_err pdf_text_set_meta(pdf_text *t, pdf_meta_field f, const char *s);

/* ---- UTF-8 helpers (also used by filename.c and chunk.c) ----------------------------------- */

/* Decodes one well-formed UTF-8 sequence at s (n bytes available). Returns its length (1-4) and
 * the code point, or 0 when the bytes there are not a valid sequence (overlong, surrogate, past
 * U+10FFFF, truncated). */
size_t pdf_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
/* Encodes cp (must be valid) into out; returns its length. */
size_t pdf_utf8_encode(int32_t cp, char out[4]);
/* The largest length <= n that does not cut a UTF-8 sequence of s in two. */
size_t pdf_utf8_floor(const char *s, size_t n);
/* Code points in s[0..n). */
int64_t pdf_utf8_count(const char *s, size_t n);

#endif
