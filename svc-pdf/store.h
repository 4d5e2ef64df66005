/*
 * store.h - every SQL statement and Redis key of svc-pdf.
 *
 * Schema "pdf" (migrations/): blobs (one row per distinct file, by sha256, with what was
 * extracted), pages and chunks of a blob, documents (an owner's reference to a blob, unique per
 * owner and sha256) and selection (the legacy "selected PDF" per owner). Callers pass an owner id
 * with every document query: another owner's document is simply not found.
 *
 * Results come back as pdf_rows (an opaque result set) read with the accessor for the query
 * that made them; strings returned by accessors live until pdf_rows_free.
 *
 * Redis holds extracted text by sha256 ("pdf:text:v1:<sha256>", expiring); it is a cache only:
 * every Redis failure is reported as CM_EUNAVAIL and callers go on without it.
 *
 * Errors: CM_EUNAVAIL (PostgreSQL down), CM_ENOTFOUND, CM_EINVAL (bad cursor/id), CM_ETIMEDOUT
 * (lock wait past the deadline), CM_EINTERNAL. Not thread-safe: one store per worker's cm_pg.
 */
#ifndef PDF_STORE_H
#define PDF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "text.h"

typedef struct pdf_rows pdf_rows;

/* A document joined with its blob. Metadata values are NULL when absent. */
typedef struct pdf_doc_row {
	const char *id;
	const char *sha256;
	const char *filename;
	int64_t     size_bytes;
	int32_t     pages;
	int64_t     text_length;
	const char *created_at; /* RFC 3339 UTC, milliseconds */
	const char *cursor_ts;  /* created_at with microseconds, for keyset cursors */
	const char *meta[PDF_META_COUNT];
	const char *selected_at; /* pdf_store_selected / pdf_store_select_by_name only, else "" */
} pdf_doc_row;

int  pdf_rows_count(const pdf_rows *r);
void pdf_rows_doc(const pdf_rows *r, int i, pdf_doc_row *out);
void pdf_rows_free(pdf_rows *r);

/* ---- documents ------------------------------------------------------------------------------ */

/* The owner's document with that id (a textual UUID; anything else is not found). */
CM_MUSTCHECK cm_err pdf_store_doc_get(cm_pg *pg, const char *owner, const char *id, pdf_rows **out);
/* The owner's document of that file, if any (0 or 1 row). */
CM_MUSTCHECK cm_err pdf_store_doc_by_sha(cm_pg *pg, const char *owner, const char *sha,
                                         pdf_rows **out);

typedef struct pdf_list_query {
	const char *owner;
	const char *search;   /* "" = all; else case-insensitive substring of title or filename */
	const char *after_ts; /* keyset: rows older than (after_ts, after_id); NULL = none */
	const char *after_id;
	int64_t     offset; /* legacy paging when no keyset */
	int         limit;  /* rows wanted; one more is fetched to know whether more exist */
} pdf_list_query;

/* Newest first. *total counts every match (ignoring paging). */
CM_MUSTCHECK cm_err pdf_store_list(cm_pg *pg, const pdf_list_query *q, pdf_rows **out,
                                   int64_t *total);

/* Page n's text of the owner's document: CM_ENOTFOUND when there is no such document or page.
 * *text is malloc'ed. */
CM_MUSTCHECK cm_err pdf_store_page(cm_pg *pg, const char *owner, const char *id, int page,
                                   char **text);

/* ---- uploads ---------------------------------------------------------------------------- */

/* Serialises work on one file across replicas (a session advisory lock keyed by the sha256),
 * waiting until deadline_ms (monotonic). Always pair with pdf_store_unlock. */
CM_MUSTCHECK cm_err pdf_store_lock(cm_pg *pg, const char *sha, int64_t deadline_ms);
void                pdf_store_unlock(cm_pg *pg, const char *sha);

CM_MUSTCHECK cm_err pdf_store_blob_exists(cm_pg *pg, const char *sha, bool *exists);

typedef struct pdf_save {
	const char *owner;
	const char *filename; /* sanitised */
	const char *sha;
} pdf_save;

/* For a blob that exists: in one transaction, the owner's document (kept if the owner has this
 * file already: *existing) and the selection. id_out receives the document id. */
CM_MUSTCHECK cm_err pdf_store_save(cm_pg *pg, const pdf_save *s, char id_out[37], bool *existing);
/* The same two steps inside the caller's transaction (after pdf_store_blob_insert). */
CM_MUSTCHECK cm_err pdf_store_document(cm_pg *pg, const char *owner, const char *sha,
                                       const char *filename, char id_out[37], bool *existing);

/* A new blob, streamed (store_blob.c; saver.c calls these on its own connection, inside one
 * transaction it began): the blob row first (*inserted false when it exists already: then its
 * pages and chunks are there too), then pages and chunks in batches of COPY rows, then the text
 * length, which is known only at the end. */
CM_MUSTCHECK cm_err pdf_store_blob_insert(cm_pg *pg, const char *sha, int64_t size_bytes,
                                          int npages, const pdf_meta *meta, bool *inserted);
CM_MUSTCHECK cm_err pdf_store_blob_text_length(cm_pg *pg, const char *sha, int64_t text_length);
/* Append one COPY row to rows (text format, escaped). */
CM_MUSTCHECK cm_err pdf_store_row_page(cm_buf *rows, const char *sha, int page, const char *text,
                                       size_t len);
CM_MUSTCHECK cm_err pdf_store_row_chunk(cm_buf *rows, const char *sha, int idx, const pdf_chunk *c);
/* Send the rows made by the functions above. */
CM_MUSTCHECK cm_err pdf_store_copy_pages(cm_pg *pg, const cm_buf *rows);
CM_MUSTCHECK cm_err pdf_store_copy_chunks(cm_pg *pg, const cm_buf *rows);

/* Selects one of the owner's documents by id. */
CM_MUSTCHECK cm_err pdf_store_select_id(cm_pg *pg, const char *owner, const char *id);

/* ---- deletion ------------------------------------------------------------------------------ */

/* The sha256 of the owner's document (CM_ENOTFOUND when none). */
CM_MUSTCHECK cm_err pdf_store_doc_sha(cm_pg *pg, const char *owner, const char *id,
                                      char sha_out[65]);
/* In one transaction: deletes the owner's document (its selection goes with it) and, when no
 * document refers to the blob any more, the blob with its pages and chunks (*blob_gone), and
 * records the deletion in the log (pdf_store_deletions). */
CM_MUSTCHECK cm_err pdf_store_delete(cm_pg *pg, const char *owner, const char *id, const char *sha,
                                     bool *blob_gone);
/* Calls fn for each logged deletion with seq > after, ascending, at most limit; fn's strings are
 * valid during the call, and an error from fn stops the walk and is returned. */
typedef cm_err (*pdf_deletion_fn)(void *arg, int64_t seq, const char *document_id,
                                  const char *owner);
CM_MUSTCHECK cm_err pdf_store_deletions(cm_pg *pg, int64_t after, int limit, pdf_deletion_fn fn,
                                        void *arg);
/* The log's identity (a UUID made with the log: another one means it was made anew). */
CM_MUSTCHECK cm_err pdf_store_deletions_log_id(cm_pg *pg, char id_out[37]);

/* ---- selection ---------------------------------------------------------------------------- */

/* Selects the owner's newest document named filename and returns it (with selected_at);
 * CM_ENOTFOUND when the owner has none by that name. */
CM_MUSTCHECK cm_err pdf_store_select_by_name(cm_pg *pg, const char *owner, const char *filename,
                                             pdf_rows **out);
/* The owner's selected document (0 or 1 row, with selected_at). */
CM_MUSTCHECK cm_err pdf_store_selected(cm_pg *pg, const char *owner, pdf_rows **out);

/* ---- chunks ------------------------------------------------------------------------------- */

typedef struct pdf_chunk_row {
	int32_t     index;
	int32_t     page_first;
	int32_t     page_last;
	const char *text;
} pdf_chunk_row;

/* Chunks of the owner's document overlapping pages [first, last] (0 = open end), in order.
 * CM_ENOTFOUND when there is no such document. *sha points into *out. */
CM_MUSTCHECK cm_err pdf_store_chunks(cm_pg *pg, const char *owner, const char *id, int first,
                                     int last, pdf_rows **out, const char **sha);
/* Chunks matching plainto_tsquery('simple', query), best first, at most limit. */
CM_MUSTCHECK cm_err pdf_store_search(cm_pg *pg, const char *owner, const char *id,
                                     const char *query, int limit, pdf_rows **out,
                                     const char **sha);
/* pdf.Search's fallbacks (search.c, terms.h). search_some: chunks matching the tsquery `any`
 * (terms OR'ed as prefixes), ranked by how many of the per-term tsqueries in the text[] literal
 * `each` they match, then ts_rank. search_similar: chunks where some word of the text[] literal
 * `words` has a pg_trgm word_similarity >= PDF_TRGM_MIN, ranked by the sum of those; CM_EPRECOND
 * when pg_trgm is not installed. Both: best first, at most limit, CM_ENOTFOUND without the
 * document. */
CM_MUSTCHECK cm_err pdf_store_search_some(cm_pg *pg, const char *owner, const char *id,
                                          const char *any, const char *each, int limit,
                                          pdf_rows **out, const char **sha);
CM_MUSTCHECK cm_err pdf_store_search_similar(cm_pg *pg, const char *owner, const char *id,
                                             const char *words, int limit, pdf_rows **out,
                                             const char **sha);
/* The first PDF_HEAD_CHARS characters of the pages listed in `pages` (a text int[] literal,
 * e.g. {2,3,7}) of a blob; read with pdf_rows_count / pdf_rows_head. */
CM_MUSTCHECK cm_err pdf_store_page_heads(cm_pg *pg, const char *sha, const char *pages,
                                         pdf_rows **out);
void                pdf_rows_head(const pdf_rows *r, int i, int *page, const char **head);
/* Rows of pdf_store_chunks / pdf_store_search: how many chunks, and chunk i. */
int  pdf_rows_nchunks(const pdf_rows *r);
void pdf_rows_chunk(const pdf_rows *r, int i, pdf_chunk_row *out);

/* ---- Redis text cache ----------------------------------------------------------------------- */

CM_MUSTCHECK cm_err pdf_cache_get(cm_redis *rd, const char *sha, cm_buf *out, bool *found);
CM_MUSTCHECK cm_err pdf_cache_put(cm_redis *rd, const char *sha, const void *data, size_t len);
CM_MUSTCHECK cm_err pdf_cache_del(cm_redis *rd, const char *sha);

#endif
