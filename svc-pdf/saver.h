/*
 * saver.h - storing a new blob while its pages are still coming: a storage thread per upload,
 * on its own PostgreSQL connection, writes the blob row, then pages and chunks in batches
 * (COPY), inside one transaction that commits only when the caller says the document is whole.
 *
 * Use: pdf_saver_start, pdf_saver_page for each page in order, pdf_saver_end after the last,
 * then pdf_saver_commit (which also makes the owner's document and selection), or
 * pdf_saver_abort at any point (ROLLBACK: nothing of the blob is ever visible). Both of the
 * last two join the thread and free the saver. The caller's thread is the only one that calls
 * these; pg is used by the storage thread alone from start until commit/abort returns.
 *
 * Errors: those of store.h. Once the storage side has failed, pdf_saver_page and
 * pdf_saver_end return its error, so the caller can stop extracting; commit returns it too.
 */
#ifndef PDF_SAVER_H
#define PDF_SAVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/pg.h"
#include "text.h"

typedef struct pdf_saver pdf_saver;

/* For the blob sha (size_bytes long), statements bounded by deadline_ms (absolute unix ms;
 * 0 = none). */
CM_MUSTCHECK cm_err pdf_saver_start(cm_pg *pg, const char *sha, int64_t size_bytes,
                                    int64_t deadline_ms, pdf_saver **out);
/* The next page's text (copied). t's metadata and npages, the document's page count, are read
 * at the first page. */
CM_MUSTCHECK cm_err pdf_saver_page(pdf_saver *s, const pdf_text *t, int npages, const char *text,
                                   size_t len);
/* No more pages: the storage thread writes what is left and the text length, and then waits
 * for commit or abort. Does not wait. */
CM_MUSTCHECK cm_err pdf_saver_end(pdf_saver *s, int64_t text_length);
/* The owner's document and selection, COMMIT; id_out and *existing as pdf_store_save. *batches
 * gets how many COPY batches were sent. Frees s. */
CM_MUSTCHECK cm_err pdf_saver_commit(pdf_saver *s, const char *owner, const char *filename,
                                     char id_out[37], bool *existing, int *batches);
/* ROLLBACK; *batches (may be NULL) as for commit. Frees s. */
void pdf_saver_abort(pdf_saver *s, int *batches);

#endif
