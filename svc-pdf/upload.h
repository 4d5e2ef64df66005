/*
 * upload.h - the upload pipeline: validate, hash, dedupe, extract (or reuse), store, select.
 *
 * For one owner and one file (by sha256):
 *   1. the owner has it already            -> that document, selected again (existing)
 *   2. another owner has it (blob row)     -> a new document row, no extraction
 *   3. Redis has its text (another replica extracted it, or it was deleted and came back)
 *                                          -> stored from the cache, no extraction
 *   4. otherwise                           -> extracted with mupdf, cached in Redis, stored
 * Steps 2-4 run under a per-file lock (pdf_store_lock) so concurrent uploads of the same bytes
 * on any replica extract once, and a deletion never unlinks a file an upload is about to use.
 * In steps 3-4 the pages and chunks are written while the text comes (saver.h), in one
 * transaction on the worker's second connection that commits only once the text is whole.
 * The file is written content-addressed (<data dir>/<sha256>.pdf) before that commit; if the
 * commit fails, a file this call created is removed again.
 */
#ifndef PDF_UPLOAD_H
#define PDF_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "server.h"

typedef struct pdf_upload_in {
	const char    *owner;
	const char    *filename; /* as the client sent it; sanitised here */
	const uint8_t *data;
	size_t         len;
	int64_t        deadline_ms; /* absolute unix ms; 0 = none */
} pdf_upload_in;

typedef struct pdf_upload_out {
	char id[37];
	char sha256[65];
	bool existing;      /* the owner had uploaded these bytes before */
	bool extracted;     /* mupdf ran for this call */
	int  store_batches; /* COPY batches of pages and chunks sent (committed or not) */
} pdf_upload_out;

/* Errors as in extract.h, plus CM_ETOOBIG (over PDF_MAX_UPLOAD), CM_EINVAL ("empty file"),
 * CM_ETIMEDOUT (deadline), CM_EUNAVAIL (PostgreSQL or the data volume). why gets the reason. */
CM_MUSTCHECK cm_err pdf_upload(pdf_worker *w, const pdf_upload_in *in, pdf_upload_out *out,
                               char *why, size_t whylen);

#endif
