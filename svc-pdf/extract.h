/*
 * extract.h - text and metadata out of PDF bytes, with mupdf (extract.c is the only file that
 * includes mupdf; no mupdf type appears here).
 *
 * THREADS. One pdf_extractor per process: it owns a watchdog thread that aborts extractions
 * past their deadline, and makes mupdf contexts one at a time. Each thread that extracts owns a
 * pdf_xctx: an independent mupdf context with its own resource store, fonts and glyph cache,
 * sharing nothing (and taking no lock) with other pdf_xctx's; a pdf_xctx is never used by two
 * threads at once.
 *
 * LIMITS per document (pdf_limits): pages, wall time (checked between pages and, inside a page,
 * through mupdf's cookie abort flag set by the watchdog), bytes mupdf may allocate (a counting
 * allocator refuses past the cap; mupdf then fails cleanly), and bytes of text.
 *
 * ERRORS (why gets a short human-readable reason, fit for the client):
 *   CM_EINVAL    "not a PDF" (no %PDF- in the first 1024 bytes), "too many pages (...)"
 *   CM_EPRECOND  "encrypted PDF", "no text layer (scanned PDF?)", "corrupt PDF: <mupdf's reason>",
 *                "PDF too complex: ...", "extraction took longer than N ms"
 *   CM_ETOOBIG   "too much text (...)"
 *   CM_ENOMEM    allocation failure outside the cap
 * On error *out is left empty (pdf_text_fini is still safe).
 */
#ifndef PDF_EXTRACT_H
#define PDF_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "text.h"

typedef struct pdf_extractor pdf_extractor;
typedef struct pdf_xctx      pdf_xctx;

typedef struct pdf_limits {
	int64_t max_pages;
	int64_t timeout_ms; /* wall time for the whole document, > 0 */
	size_t  max_memory; /* bytes mupdf may hold for this document beyond what it held before */
	size_t  max_text;   /* bytes of extracted text */
} pdf_limits;

/* What the last pdf_extract on a pdf_xctx cost; for logs and tests. */
typedef struct pdf_xstats {
	int     warnings;    /* mupdf warnings (silenced) */
	size_t  peak_memory; /* most bytes held at once by this extraction */
	bool    hit_memory_cap;
	int64_t elapsed_ms;
} pdf_xstats;

CM_MUSTCHECK cm_err pdf_extractor_alloc(pdf_extractor **out);
/* After every pdf_xctx of it was freed. */
void pdf_extractor_free(pdf_extractor *e);

/* Thread-safe; the result is used by one thread at a time (each RPC worker keeps its own). */
CM_MUSTCHECK cm_err pdf_xctx_alloc(pdf_extractor *e, pdf_xctx **out);
void                pdf_xctx_free(pdf_xctx *x);

/* True when "%PDF-" occurs in the first 1024 bytes (the PDF spec's allowance for junk). */
bool pdf_looks_like_pdf(const void *data, size_t len);

/* Extracts every page's text and the Info metadata of the PDF in data[0..len) into out (which
 * must be pdf_text_init'ed, empty, with max_text as its cap; finished on success). data must
 * stay unchanged during the call. */
CM_MUSTCHECK cm_err pdf_extract(pdf_xctx *x, const void *data, size_t len, const pdf_limits *lim,
                                pdf_text *out, char *why, size_t whylen);

/* Pages as they come: pdf_extract_to calls page() after each page's text is in out, in order,
 * with the document's page count (out's metadata is complete by then) and that page's text,
 * valid during the call only. An error from it stops the extraction and is returned as is
 * (why then says "stopped by the caller"). */
typedef struct pdf_page_sink {
	cm_err (*page)(void *arg, const pdf_text *t, int npages, const char *text, size_t len);
	void *arg;
} pdf_page_sink;

/* pdf_extract, handing each page to sink (NULL: none) as soon as it is extracted. */
CM_MUSTCHECK cm_err pdf_extract_to(pdf_xctx *x, const void *data, size_t len, const pdf_limits *lim,
                                   const pdf_page_sink *sink, pdf_text *out, char *why,
                                   size_t whylen);

void pdf_xctx_stats(const pdf_xctx *x, pdf_xstats *out);

#endif
