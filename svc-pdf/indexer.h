/*
 * indexer.h - the chunks' full-text vectors, computed after their upload has answered.
 *
 * An upload stores its chunks without a tsvector (migrations/004): computing to_tsvector over a
 * 2,000-page document took PostgreSQL ~0.45 s of the upload, beside the extraction on a 2-core
 * machine. Search does not wait for it: a chunk without a vector is matched by computing one on
 * the fly (store.c, PDF_CHUNK_TSV), the same result, only slower, for the second or so until the
 * indexer has passed. Every svc-pdf replica runs one indexer thread with its own connection: it
 * is woken when an upload commits and sweeps every PDF_INDEX_SWEEP_MS anyway (a replica that
 * died before indexing leaves its chunks to whichever replica sweeps next). It fills the vectors
 * in batches of PDF_INDEX_BATCH chunks, each its own short transaction, taking rows with FOR
 * UPDATE SKIP LOCKED so that replicas never wait on, nor repeat, each other's work.
 */
#ifndef PDF_INDEXER_H
#define PDF_INDEXER_H

#include "cm/err.h"
#include "cm/metrics.h"
#include "cm/pg.h"

#define PDF_INDEX_BATCH 64        /* chunks per statement (~0.3 MB of text) */
#define PDF_INDEX_SWEEP_MS 5000   /* a pass even when nobody woke the indexer */
#define PDF_INDEX_BACKOFF_MS 1000 /* after a failure (PostgreSQL unreachable) */

typedef struct pdf_indexer pdf_indexer;

/* Starts the thread with its own connection to database_url (schema as search_path); the
 * counter (chunks indexed) may be NULL. The connection is made by the thread: start does not
 * wait for PostgreSQL. */
CM_MUSTCHECK cm_err pdf_indexer_start(pdf_indexer **out, const char *database_url,
                                      const char *schema, cm_counter *indexed);
/* Runs a pass soon (an upload has committed chunks). Thread-safe, never blocks for long; NULL is
 * fine. */
void pdf_indexer_wake(pdf_indexer *ix);
/* Stops and joins the thread (a batch in progress finishes first), frees. NULL is fine. */
void pdf_indexer_stop(pdf_indexer *ix);

/* One batch on the caller's connection: fills up to `batch` chunks' vectors in one statement;
 * *n receives how many (0: none left that no one else holds). */
CM_MUSTCHECK cm_err pdf_index_batch(cm_pg *pg, int batch, int *n);

#endif
