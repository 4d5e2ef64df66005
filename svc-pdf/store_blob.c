/*
 * store_blob.c - the SQL of a new blob, streamed: its row, its pages and chunks by COPY, its
 * text length (declared in store.h; saver.c drives them on its own connection).
 *
 * DESIGN.
 * - COPY FROM STDIN in text format instead of INSERT ... unnest($n::text[]): the server parses
 *   no array literal of megabytes, and the rows are made in batches while the document is still
 *   being extracted. The statements are constants; the rows are data, escaped here ('\\', tab,
 *   newline, carriage return: the only bytes text format gives a meaning; pdf_text has removed
 *   NULs and other control characters already).
 * - The blob row goes first (pages and chunks refer to it) with the page count and metadata,
 *   which mupdf knows before the first page; the text length, known at the end, follows as an
 *   UPDATE in the same transaction, so nobody ever sees the row without it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

cm_err
pdf_store_blob_insert(cm_pg *pg, const char *sha, int64_t size_bytes, int npages,
                      const pdf_meta *meta, bool *inserted)
{
	cm_pg_result *res = NULL;
	char          size[24], pages[16];
	const char   *p[10];
	cm_err        err;

	*inserted = false;
	snprintf(size, sizeof(size), "%" PRId64, size_bytes);
	snprintf(pages, sizeof(pages), "%d", npages);
	p[0] = sha;
	p[1] = size;
	p[2] = pages;
	for (int f = 0; f < PDF_META_COUNT; f++)
		p[3 + f] = meta->v[f];
	err = cm_pg_exec(
	    pg,
	    "INSERT INTO blobs (sha256, size_bytes, pages, title, author, subject, creator,"
	    " producer, creation_date, modification_date, text_length)"
	    " VALUES ($1, $2::bigint, $3::int, $4, $5, $6, $7, $8, $9, $10, 0)"
	    " ON CONFLICT (sha256) DO NOTHING",
	    10, p, &res);
	if (err == CM_OK)
		*inserted = cm_pg_affected(res) == 1;
	cm_pg_result_free(res);
	return err;
}

cm_err
pdf_store_blob_text_length(cm_pg *pg, const char *sha, int64_t text_length)
{
	char        tlen[24];
	const char *p[] = {sha, tlen};

	snprintf(tlen, sizeof(tlen), "%" PRId64, text_length);
	return cm_pg_exec(pg, "UPDATE blobs SET text_length = $2::bigint WHERE sha256 = $1", 2, p,
	                  NULL);
}

/* s[0..n) as one text-format COPY field. */
static cm_err
copy_field(cm_buf *b, const char *s, size_t n)
{
	cm_err err = CM_OK;
	size_t i = 0, j;

	while (err == CM_OK && i < n) {
		for (j = i; j < n && s[j] != '\\' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r';
		     j++)
			;
		err = cm_buf_append(b, s + i, j - i);
		if (err == CM_OK && j < n) {
			char esc[2] = {'\\', s[j] == '\\'   ? '\\'
			                     : s[j] == '\t' ? 't'
			                     : s[j] == '\n' ? 'n'
			                                    : 'r'};
			err = cm_buf_append(b, esc, 2);
			j++;
		}
		i = j;
	}
	return err;
}

cm_err
pdf_store_row_page(cm_buf *rows, const char *sha, int page, const char *text, size_t len)
{
	cm_err err = cm_buf_printf(rows, "%s\t%d\t", sha, page);

	if (err == CM_OK)
		err = copy_field(rows, text, len);
	if (err == CM_OK)
		err = cm_buf_append(rows, "\n", 1);
	return err;
}

cm_err
pdf_store_row_chunk(cm_buf *rows, const char *sha, int idx, const pdf_chunk *c)
{
	cm_err err = cm_buf_printf(rows, "%s\t%d\t%d\t%d\t", sha, idx, c->page_first, c->page_last);

	if (err == CM_OK)
		err = copy_field(rows, c->text, c->len);
	if (err == CM_OK)
		err = cm_buf_append(rows, "\n", 1);
	return err;
}

cm_err
pdf_store_copy_pages(cm_pg *pg, const cm_buf *rows)
{
	return cm_pg_copy_in(pg, "COPY pages (sha256, page, text) FROM STDIN", rows->data,
	                     rows->len);
}

cm_err
pdf_store_copy_chunks(cm_pg *pg, const cm_buf *rows)
{
	return cm_pg_copy_in(pg,
	                     "COPY chunks (sha256, idx, page_first, page_last, text) FROM STDIN",
	                     rows->data, rows->len);
}
