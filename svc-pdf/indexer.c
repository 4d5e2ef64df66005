/*
 * indexer.c - the chunks' full-text vectors, after the upload (indexer.h).
 *
 * DESIGN. One thread, one connection (opened by the thread, reopened after a failure), a cm_waker
 * between passes. A pass runs batches until one finds nothing to do; each batch is one
 * autocommitted UPDATE over at most PDF_INDEX_BATCH chunks picked with FOR UPDATE SKIP LOCKED
 * through the partial index of the chunks without a vector, so a batch is short, a failure
 * loses at most one batch's work (it is simply done again), and replicas share the backlog
 * instead of queueing behind each other's row locks. Chunks of an upload still in its
 * transaction are invisible to the pass: the upload wakes the indexer once it has committed.
 * Failing is logged once (PDF-INDEX-FAIL), and once when it works again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/waker.h"
#include "indexer.h"

struct pdf_indexer {
	char       *database_url;
	char       *schema;
	cm_counter *indexed;
	pthread_t   thread;
	cm_waker    waker;
};

cm_err
pdf_index_batch(cm_pg *pg, int batch, int *n)
{
	char          b[16];
	const char   *p[1] = {b};
	cm_pg_result *r = NULL;
	cm_err        err;

	*n = 0;
	snprintf(b, sizeof(b), "%d", batch);
	if ((err = cm_pg_exec(pg,
	                      "UPDATE chunks c SET tsv = to_tsvector('simple', c.text)"
	                      " FROM (SELECT sha256, idx FROM chunks WHERE tsv IS NULL"
	                      " LIMIT $1::int FOR UPDATE SKIP LOCKED) x"
	                      " WHERE c.sha256 = x.sha256 AND c.idx = x.idx",
	                      1, p, &r)) != CM_OK)
		return err;
	*n = (int)cm_pg_affected(r);
	cm_pg_result_free(r);
	return CM_OK;
}

/* One pass: batches until none is left. */
static cm_err
pass(pdf_indexer *ix, cm_pg *pg)
{
	int    n;
	cm_err err;

	do {
		if ((err = pdf_index_batch(pg, PDF_INDEX_BATCH, &n)) != CM_OK)
			return err;
		if (ix->indexed != NULL)
			cm_counter_add(ix->indexed, (uint64_t)n);
	} while (n > 0);
	return CM_OK;
}

static void *
run(void *arg)
{
	pdf_indexer *ix = arg;
	cm_pg       *pg = NULL;
	bool         failing = false;
	int64_t      wait;

	do {
		cm_err err = CM_OK;

		if (pg == NULL)
			err = cm_pg_open(&pg, ix->database_url, ix->schema);
		if (err == CM_OK)
			err = pass(ix, pg);
		if (err != CM_OK) {
			if (!failing)
				cm_warn("PDF-INDEX-FAIL", "indexing chunks: %s (%s); retrying",
				        cm_strerror(err),
				        pg != NULL ? cm_pg_errmsg(pg) : "no connection");
			failing = true;
			cm_pg_close(pg); /* a fresh connection next time */
			pg = NULL;
			wait = PDF_INDEX_BACKOFF_MS;
		} else {
			if (failing)
				cm_info("PDF-INDEX-OK", "indexing chunks again");
			failing = false;
			wait = PDF_INDEX_SWEEP_MS;
		}
	} while (cm_waker_pause(&ix->waker, wait));
	cm_pg_close(pg);
	return NULL;
}

static void
indexer_free(pdf_indexer *ix)
{
	if (ix == NULL)
		return;
	free(ix->database_url);
	free(ix->schema);
	free(ix);
}

cm_err
pdf_indexer_start(pdf_indexer **out, const char *database_url, const char *schema,
                  cm_counter *indexed)
{
	pdf_indexer *ix = NULL;
	bool         waker_made = false;
	cm_err       err = CM_ENOMEM;

	*out = NULL;
	if ((ix = calloc(1, sizeof(*ix))) == NULL ||
	    (ix->database_url = strdup(database_url)) == NULL ||
	    (schema != NULL && (ix->schema = strdup(schema)) == NULL) ||
	    (err = cm_waker_init(&ix->waker)) != CM_OK)
		goto out;
	waker_made = true;
	ix->indexed = indexed;
	if (pthread_create(&ix->thread, NULL, run, ix) != 0) {
		err = CM_EINTERNAL;
		goto out;
	}
	*out = ix;
	ix = NULL;
	err = CM_OK;
out:
	if (ix != NULL && waker_made)
		cm_waker_fini(&ix->waker);
	indexer_free(ix);
	return err;
}

void
pdf_indexer_wake(pdf_indexer *ix)
{
	if (ix != NULL)
		cm_waker_wake(&ix->waker);
}

void
pdf_indexer_stop(pdf_indexer *ix)
{
	if (ix == NULL)
		return;
	cm_waker_stop(&ix->waker);
	pthread_join(ix->thread, NULL);
	cm_waker_fini(&ix->waker);
	indexer_free(ix);
}
