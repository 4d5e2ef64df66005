/*
 * testpdf.h - small synthetic PDFs, written byte by byte with a correct xref table, for the
 * tests, the fuzz corpus and the bench. Not used by the service itself (the linker leaves it out
 * of svc-pdf). Besides ordinary text documents it makes the hostile shapes the extractor must
 * survive: a /Count far beyond the real pages, a page tree that contains itself, a deep chain of
 * page-tree nodes, deeply nested arrays, image-only pages, and an /Encrypt dictionary whose
 * password nobody knows.
 */
#ifndef PDF_TESTPDF_H
#define PDF_TESTPDF_H

#include <stdbool.h>

#include "cm/buf.h"
#include "cm/err.h"

typedef struct pdf_testpdf {
	int                npages;
	const char *const *pages; /* npages texts ('\n' = next line); NULL = "Page N" */
	const char        *title; /* Info entries; NULL = absent */
	const char        *author;
	const char        *subject;
	const char        *creator;
	const char        *producer;
	const char        *creation_date;
	long long          claimed_count; /* /Count of the root; 0 = npages */
	bool               image_only;    /* each page draws an image and no text */
	bool               blank;         /* pages with no content at all */
	bool               encrypted;     /* /Encrypt with an unknown user password */
	bool               self_kid;      /* the root Pages lists itself among its kids */
	int                tree_depth;    /* page-tree nodes between the root and the pages */
	int                array_depth;   /* [[[...]]] nested this deep in the catalog */
	size_t             padding;       /* about this many bytes of comment lines before the
	                                   * xref (a large upload without many pages); each line
	                                   * differs, so bytes out of place change the sha256 */
} pdf_testpdf;

/* Appends the PDF to out. */
CM_MUSTCHECK cm_err pdf_testpdf_build(const pdf_testpdf *o, cm_buf *out);

#endif
