/*
 * saver.c - the storage thread of one upload (see saver.h).
 *
 * DESIGN. Extraction takes one core and PostgreSQL's work on the same text (the chunks' stored
 * tsvector above all, then TOAST compression and the GIN index) another, so they overlap: the
 * caller's thread queues each page as mupdf finishes it, and this thread takes the queue in
 * batches of at least PDF_SAVE_BATCH pages, cuts the chunks that are ready (pdf_chunker: the
 * same chunks as cutting the whole document at the end), and sends the batch's pages and
 * chunks as two COPYs. At the end only the last batch, the text length, the document row and
 * the COMMIT are left after extraction. Everything runs in one transaction on the thread's own
 * connection, so a failure or an abort at any point is a ROLLBACK and nothing partial is seen.
 * The queue, the commands and the result are guarded by one mutex; the chunker, the row
 * buffers and the connection belong to the thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "config.h"
#include "cm/util.h"
#include "saver.h"
#include "store.h"

#define PDF_SAVE_BATCH 32 /* pages per batch, but for the last one */

typedef enum saver_cmd { SAVER_RUN, SAVER_END, SAVER_COMMIT, SAVER_ABORT } saver_cmd;

typedef struct saver_page {
	size_t len;
	char   text[];
} saver_page;

struct pdf_saver {
	cm_pg    *pg;
	char      sha[65];
	int64_t   size_bytes;
	int64_t   deadline_ms;
	pthread_t thread;

	pthread_mutex_t mu;
	pthread_cond_t  cv;
	/* Guarded by mu. */
	saver_page **q;
	size_t       qn, qcap;
	bool         have_head;
	int          npages;
	pdf_meta     meta; /* copies */
	saver_cmd    cmd;
	int64_t      text_length;
	const char  *owner, *filename; /* the caller's, during commit */
	cm_err       err;
	char         id[37];
	bool         existing;

	/* The thread's. */
	bool        began, inserted, ended;
	int         next_page, next_chunk, batches;
	pdf_chunker chunker;
	cm_buf      pages_rows, chunk_rows;
};

/* One batch; end: the last one. */
static cm_err
write_batch(pdf_saver *s, saver_page **v, size_t n, bool end, int64_t text_length)
{
	pdf_chunk c;
	cm_err    err = CM_OK;

	if (!s->began) {
		if ((err = cm_pg_begin(s->pg)) != CM_OK)
			return err;
		s->began = true;
		if ((err = pdf_store_blob_insert(s->pg, s->sha, s->size_bytes, s->npages, &s->meta,
		                                 &s->inserted)) != CM_OK)
			return err;
	}
	if (!s->inserted)
		return CM_OK; /* stored meanwhile (another path); its pages and chunks are there */
	cm_buf_reset(&s->pages_rows);
	cm_buf_reset(&s->chunk_rows);
	for (size_t i = 0; i < n && err == CM_OK; i++) {
		err = pdf_store_row_page(&s->pages_rows, s->sha, ++s->next_page, v[i]->text,
		                         v[i]->len);
		if (err == CM_OK)
			err = pdf_chunker_add_page(&s->chunker, v[i]->text, v[i]->len);
	}
	while (err == CM_OK && pdf_chunker_next(&s->chunker, end, &c))
		err = pdf_store_row_chunk(&s->chunk_rows, s->sha, s->next_chunk++, &c);
	if (err == CM_OK && s->pages_rows.len > 0 &&
	    (err = pdf_store_copy_pages(s->pg, &s->pages_rows)) == CM_OK)
		s->batches++;
	if (err == CM_OK && s->chunk_rows.len > 0 &&
	    (err = pdf_store_copy_chunks(s->pg, &s->chunk_rows)) == CM_OK)
		s->batches++;
	if (err == CM_OK && end)
		err = pdf_store_blob_text_length(s->pg, s->sha, text_length);
	return err;
}

static void
free_pages(saver_page **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void *
saver_main(void *arg)
{
	pdf_saver   *s = arg;
	saver_page **v;
	size_t       n;
	int64_t      text_length;
	bool         end, committed = false;
	cm_err       err;

	cm_pg_set_deadline(s->pg, s->deadline_ms);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->cmd == SAVER_RUN && s->qn < PDF_SAVE_BATCH)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->cmd == SAVER_ABORT)
			break;
		if (s->qn > 0 || (s->cmd != SAVER_RUN && !s->ended)) {
			v = s->q;
			n = s->qn;
			s->q = NULL;
			s->qn = s->qcap = 0;
			end = s->cmd != SAVER_RUN; /* no page comes after END */
			text_length = s->text_length;
			pthread_mutex_unlock(&s->mu);
			err = write_batch(s, v, n, end, text_length);
			free_pages(v, n);
			pthread_mutex_lock(&s->mu);
			s->ended = end;
			if (err != CM_OK) {
				s->err = err;
				break;
			}
			continue;
		}
		while (s->cmd == SAVER_END)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->cmd != SAVER_COMMIT)
			break;
		pthread_mutex_unlock(&s->mu);
		err = pdf_store_document(s->pg, s->owner, s->sha, s->filename, s->id, &s->existing);
		if (err == CM_OK)
			err = cm_pg_commit(s->pg);
		pthread_mutex_lock(&s->mu);
		s->err = err;
		committed = err == CM_OK;
		break;
	}
	pthread_mutex_unlock(&s->mu);
	if (s->began && !committed)
		cm_pg_rollback(s->pg);
	cm_pg_set_deadline(s->pg, 0);
	return NULL;
}

static void
saver_free(pdf_saver *s)
{
	free_pages(s->q, s->qn);
	for (int f = 0; f < PDF_META_COUNT; f++)
		free(s->meta.v[f]);
	pdf_chunker_fini(&s->chunker);
	cm_buf_fini(&s->pages_rows);
	cm_buf_fini(&s->chunk_rows);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

cm_err
pdf_saver_start(cm_pg *pg, const char *sha, int64_t size_bytes, int64_t deadline_ms,
                pdf_saver **out)
{
	pdf_saver *s;
	cm_err     err;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CM_ENOMEM;
	s->pg = pg;
	cm_strlcpy(s->sha, sha, sizeof(s->sha));
	s->size_bytes = size_bytes;
	s->deadline_ms = deadline_ms;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	cm_buf_init(&s->pages_rows, (size_t)2 * PDF_MAX_TEXT + 1024);
	cm_buf_init(&s->chunk_rows, (size_t)2 * PDF_MAX_TEXT + 1024);
	if ((err = pdf_chunker_init(&s->chunker, 0, 0)) != CM_OK)
		goto out;
	if (pthread_create(&s->thread, NULL, saver_main, s) != 0) {
		err = CM_EINTERNAL;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	if (s != NULL)
		saver_free(s);
	return err;
}

/* The document's head, at its first page. */
static cm_err
take_head(pdf_saver *s, const pdf_text *t, int npages)
{
	for (int f = 0; f < PDF_META_COUNT; f++) {
		if (t->meta.v[f] != NULL && (s->meta.v[f] = strdup(t->meta.v[f])) == NULL)
			return CM_ENOMEM;
	}
	s->npages = npages;
	s->have_head = true;
	return CM_OK;
}

cm_err
pdf_saver_page(pdf_saver *s, const pdf_text *t, int npages, const char *text, size_t len)
{
	saver_page *p = NULL;
	cm_err      err;

	pthread_mutex_lock(&s->mu);
	if ((err = s->err) != CM_OK || s->cmd != SAVER_RUN)
		goto out;
	if (!s->have_head && (err = take_head(s, t, npages)) != CM_OK)
		goto out;
	if (s->qn == s->qcap) {
		size_t       cap = s->qcap == 0 ? 64 : s->qcap * 2;
		saver_page **q = realloc(s->q, cap * sizeof(*q));
		if (q == NULL) {
			err = CM_ENOMEM;
			goto out;
		}
		s->q = q;
		s->qcap = cap;
	}
	if ((p = malloc(sizeof(*p) + len + 1)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	p->len = len;
	memcpy(p->text, text, len);
	p->text[len] = '\0';
	s->q[s->qn++] = p;
	if (s->qn == PDF_SAVE_BATCH)
		pthread_cond_signal(&s->cv);
out:
	pthread_mutex_unlock(&s->mu);
	return err;
}

/* Sets the command and wakes the thread. */
static void
command(pdf_saver *s, saver_cmd cmd)
{
	pthread_mutex_lock(&s->mu);
	s->cmd = cmd;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

cm_err
pdf_saver_end(pdf_saver *s, int64_t text_length)
{
	cm_err err;

	pthread_mutex_lock(&s->mu);
	if ((err = s->err) == CM_OK && !s->have_head)
		err = CM_EINTERNAL; /* no page at all: nothing to store */
	if (err == CM_OK) {
		s->text_length = text_length;
		s->cmd = SAVER_END;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

cm_err
pdf_saver_commit(pdf_saver *s, const char *owner, const char *filename, char id_out[37],
                 bool *existing, int *batches)
{
	cm_err err;

	*existing = false;
	id_out[0] = '\0';
	pthread_mutex_lock(&s->mu);
	s->owner = owner;
	s->filename = filename;
	pthread_mutex_unlock(&s->mu);
	command(s, s->cmd == SAVER_RUN ? SAVER_ABORT : SAVER_COMMIT); /* commit needs an end */
	pthread_join(s->thread, NULL);
	err = s->err;
	if (err == CM_OK && s->cmd != SAVER_COMMIT)
		err = CM_EINTERNAL;
	if (err == CM_OK) {
		cm_strlcpy(id_out, s->id, 37);
		*existing = s->existing;
	}
	*batches = s->batches;
	saver_free(s);
	return err;
}

void
pdf_saver_abort(pdf_saver *s, int *batches)
{
	command(s, SAVER_ABORT);
	pthread_join(s->thread, NULL);
	if (batches != NULL)
		*batches = s->batches;
	saver_free(s);
}
