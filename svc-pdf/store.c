/*
 * store.c - all SQL and Redis keys of svc-pdf.
 *
 * DESIGN.
 * - Every statement is a constant with $n parameters (cm_pg_exec); nothing from input is ever
 *   part of SQL text. Pages and chunks of a new blob go in by COPY, in batches, while the
 *   document is still being extracted (store_blob.c, saver.c).
 * - Document queries share one column list (DOC_COLS) and one row reader, so every query that
 *   returns documents returns the same shape.
 * - Uploads and deletions of one file are serialised across replicas by a session-level
 *   advisory lock on (PDF_LOCK_CLASS, first 32 bits of the sha256), so a deletion can unlink a
 *   file only while no upload of the same bytes is between "no blob yet" and "blob saved".
 * - Keyset cursors carry created_at at microsecond precision as text ("YYYY-MM-DD
 *   HH:MM:SS.US", UTC) so comparisons are exact.
 * - Searching titles and filenames: ILIKE with the user's text as a parameter, '\', '%' and '_'
 *   escaped so they match literally.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/util.h"
#include "config.h"
#include "store.h"

#define PDF_LOCK_CLASS 1885627937 /* "pdf!" */

struct pdf_rows {
	cm_pg_result *res;
	int           nchunks; /* chunk queries: rows that carry a chunk */
};

/* Columns of a document row, in pdf_doc_row order. */
#define DOC_COLS                                                                                   \
	"d.id::text, d.sha256, d.filename, b.size_bytes, b.pages, b.text_length, "                 \
	"to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "          \
	"to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "                   \
	"b.title, b.author, b.subject, b.creator, b.producer, b.creation_date, "                   \
	"b.modification_date"
#define DOC_NCOLS 15
#define DOC_FROM " FROM documents d JOIN blobs b ON b.sha256 = d.sha256 "
#define SEL_COL ", to_char(s.selected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static cm_err
rows_wrap(cm_pg_result *res, pdf_rows **out)
{
	pdf_rows *r = calloc(1, sizeof(*r));
	cm_err    err = CM_OK;

	if (r == NULL) {
		cm_pg_result_free(res);
		err = CM_ENOMEM;
	} else {
		r->res = res;
	}
	*out = r;
	return err;
}

int
pdf_rows_count(const pdf_rows *r)
{
	return r != NULL ? cm_pg_nrows(r->res) : 0;
}

static int64_t
get_i64(const cm_pg_result *res, int row, int col)
{
	int64_t v = 0;

	if (!cm_parse_i64(cm_pg_get(res, row, col), &v))
		v = 0;
	return v;
}

void
pdf_rows_doc(const pdf_rows *r, int i, pdf_doc_row *out)
{
	const cm_pg_result *res = r->res;

	memset(out, 0, sizeof(*out));
	out->id = cm_pg_get(res, i, 0);
	out->sha256 = cm_pg_get(res, i, 1);
	out->filename = cm_pg_get(res, i, 2);
	out->size_bytes = get_i64(res, i, 3);
	out->pages = (int32_t)get_i64(res, i, 4);
	out->text_length = get_i64(res, i, 5);
	out->created_at = cm_pg_get(res, i, 6);
	out->cursor_ts = cm_pg_get(res, i, 7);
	for (int f = 0; f < PDF_META_COUNT; f++)
		out->meta[f] = cm_pg_isnull(res, i, 8 + f) ? NULL : cm_pg_get(res, i, 8 + f);
	out->selected_at = "";
	if (i < cm_pg_nrows(res) && !cm_pg_isnull(res, i, DOC_NCOLS))
		out->selected_at = cm_pg_get(res, i, DOC_NCOLS);
}

void
pdf_rows_free(pdf_rows *r)
{
	if (r == NULL)
		return;
	cm_pg_result_free(r->res);
	free(r);
}

static cm_err
query_rows(cm_pg *pg, const char *sql, int n, const char *const *params, pdf_rows **out)
{
	cm_pg_result *res = NULL;
	cm_err        err;

	*out = NULL;
	if ((err = cm_pg_exec(pg, sql, n, params, &res)) == CM_OK)
		err = rows_wrap(res, out);
	return err;
}

cm_err
pdf_store_doc_get(cm_pg *pg, const char *owner, const char *id, pdf_rows **out)
{
	const char *p[] = {id, owner};

	*out = NULL;
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND; /* before anything is acquired */
	return query_rows(
	    pg, "SELECT " DOC_COLS ", NULL" DOC_FROM "WHERE d.id = $1::uuid AND d.owner_id = $2", 2,
	    p, out);
}

cm_err
pdf_store_doc_by_sha(cm_pg *pg, const char *owner, const char *sha, pdf_rows **out)
{
	const char *p[] = {owner, sha};

	return query_rows(
	    pg, "SELECT " DOC_COLS ", NULL" DOC_FROM "WHERE d.owner_id = $1 AND d.sha256 = $2", 2,
	    p, out);
}

/* '%' || escaped || '%' for ILIKE, or NULL when s is empty. Caller frees. */
static char *
like_pattern(const char *s)
{
	size_t n = strlen(s), o = 0;
	char  *p;

	if (n == 0 || (p = malloc(2 * n + 3)) == NULL)
		return NULL;
	p[o++] = '%';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
			p[o++] = '\\';
		p[o++] = s[i];
	}
	p[o++] = '%';
	p[o] = '\0';
	return p;
}

/* The owner's documents, optionally those whose title or filename is ILIKE $2. */
#define LIST_WHERE                                                                                 \
	"WHERE d.owner_id = $1 AND ($2::text IS NULL OR b.title ILIKE $2 OR d.filename ILIKE $2)"
#define LIST_SQL                                                                                   \
	"SELECT " DOC_COLS ", NULL" DOC_FROM LIST_WHERE                                            \
	" AND ($3::timestamp IS NULL OR (d.created_at, d.id) <"                                    \
	" ($3::timestamp AT TIME ZONE 'UTC', $4::uuid))"                                           \
	" ORDER BY d.created_at DESC, d.id DESC OFFSET $5 LIMIT $6"

cm_err
pdf_store_list(cm_pg *pg, const pdf_list_query *q, pdf_rows **out, int64_t *total)
{
	cm_pg_result *res = NULL;
	char         *pat = like_pattern(q->search != NULL ? q->search : "");
	char          off[24], lim[24];
	const char   *p[6];
	cm_err        err;

	*out = NULL;
	*total = 0;
	snprintf(off, sizeof(off), "%" PRId64, q->after_ts != NULL ? 0 : q->offset);
	snprintf(lim, sizeof(lim), "%d", q->limit + 1);
	p[0] = q->owner;
	p[1] = pat;
	if ((err = cm_pg_exec(pg, "SELECT count(*)" DOC_FROM LIST_WHERE, 2, p, &res)) != CM_OK)
		goto out;
	*total = get_i64(res, 0, 0);
	cm_pg_result_free(res);
	p[2] = q->after_ts;
	p[3] = q->after_id;
	p[4] = off;
	p[5] = lim;
	err = query_rows(pg, LIST_SQL, 6, p, out);
out:
	free(pat);
	return err;
}

cm_err
pdf_store_page(cm_pg *pg, const char *owner, const char *id, int page, char **text)
{
	cm_pg_result *res = NULL;
	char          n[16];
	const char   *p[] = {id, owner, n};
	cm_err        err;

	*text = NULL;
	if (!cm_uuid_valid(id) || page < 1) {
		err = CM_ENOTFOUND;
		goto out;
	}
	snprintf(n, sizeof(n), "%d", page);
	err = cm_pg_exec(pg,
	                 "SELECT p.text FROM documents d JOIN pages p ON p.sha256 = d.sha256 AND "
	                 "p.page = $3::int"
	                 " WHERE d.id = $1::uuid AND d.owner_id = $2",
	                 3, p, &res);
	if (err != CM_OK)
		goto out;
	if (cm_pg_nrows(res) != 1)
		err = CM_ENOTFOUND;
	else if ((*text = strdup(cm_pg_get(res, 0, 0))) == NULL)
		err = CM_ENOMEM;
out:
	cm_pg_result_free(res);
	return err;
}

/* ---- uploads ------------------------------------------------------------------------------ */

static void
lock_key(const char *sha, char key[16])
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		char c = sha[i];
		v = (v << 4) | (uint32_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	snprintf(key, 16, "%" PRId32, (int32_t)v);
}

cm_err
pdf_store_lock(cm_pg *pg, const char *sha, int64_t deadline_ms)
{
	static const char *const sql = "SELECT pg_try_advisory_lock($1::int, $2::int)";
	char                     cls[16], key[16];
	const char              *p[] = {cls, key};
	struct timespec          ts = {0, PDF_LOCK_POLL_MS * 1000000L};
	cm_pg_result            *res;
	bool                     got = false;
	cm_err                   err;

	snprintf(cls, sizeof(cls), "%d", PDF_LOCK_CLASS);
	lock_key(sha, key);
	for (;;) {
		res = NULL;
		if ((err = cm_pg_exec(pg, sql, 2, p, &res)) != CM_OK)
			break;
		got = strcmp(cm_pg_get(res, 0, 0), "t") == 0;
		cm_pg_result_free(res);
		if (got)
			break;
		if (cm_mono_ms() + PDF_LOCK_POLL_MS >= deadline_ms) {
			err = CM_ETIMEDOUT;
			break;
		}
		nanosleep(&ts, NULL);
	}
	return err;
}

void
pdf_store_unlock(cm_pg *pg, const char *sha)
{
	char        cls[16], key[16];
	const char *p[] = {cls, key};

	snprintf(cls, sizeof(cls), "%d", PDF_LOCK_CLASS);
	lock_key(sha, key);
	if (cm_pg_exec(pg, "SELECT pg_advisory_unlock($1::int, $2::int)", 2, p, NULL) != CM_OK)
		cm_warn("PDF-UNLOCK", "advisory unlock failed (released with the session): %s",
		        cm_pg_errmsg(pg));
}

cm_err
pdf_store_blob_exists(cm_pg *pg, const char *sha, bool *exists)
{
	cm_pg_result *res = NULL;
	const char   *p[] = {sha};
	cm_err        err;

	*exists = false;
	if ((err = cm_pg_exec(pg, "SELECT 1 FROM blobs WHERE sha256 = $1", 1, p, &res)) == CM_OK) {
		*exists = cm_pg_nrows(res) == 1;
		cm_pg_result_free(res);
	}
	return err;
}

static cm_err
select_id(cm_pg *pg, const char *owner, const char *id)
{
	const char *p[] = {owner, id};

	return cm_pg_exec(
	    pg,
	    "INSERT INTO selection (owner_id, document_id, selected_at)"
	    " SELECT $1, d.id, now() FROM documents d WHERE d.id = $2::uuid AND d.owner_id = $1"
	    " ON CONFLICT (owner_id) DO UPDATE"
	    " SET document_id = EXCLUDED.document_id, selected_at = EXCLUDED.selected_at",
	    2, p, NULL);
}

cm_err
pdf_store_document(cm_pg *pg, const char *owner, const char *sha, const char *filename,
                   char id_out[37], bool *existing)
{
	cm_pg_result *res = NULL;
	char          id[37];
	const char   *p[4];
	cm_err        err;

	*existing = false;
	id_out[0] = '\0';
	cm_uuid_v4(id);
	p[0] = id;
	p[1] = owner;
	p[2] = sha;
	p[3] = filename;
	err = cm_pg_exec(
	    pg,
	    "INSERT INTO documents (id, owner_id, sha256, filename) VALUES ($1::uuid, $2, $3, $4)"
	    " ON CONFLICT (owner_id, sha256) DO NOTHING",
	    4, p, &res);
	if (err != CM_OK)
		goto out;
	*existing = cm_pg_affected(res) == 0;
	cm_pg_result_free(res);
	res = NULL;
	if (*existing) {
		p[0] = owner;
		p[1] = sha;
		err = cm_pg_exec(
		    pg, "SELECT id::text FROM documents WHERE owner_id = $1 AND sha256 = $2", 2, p,
		    &res);
		if (err != CM_OK)
			goto out;
		if (cm_pg_nrows(res) != 1) {
			err = CM_EINTERNAL;
			goto out;
		}
		cm_strlcpy(id, cm_pg_get(res, 0, 0), sizeof(id));
	}
	if ((err = select_id(pg, owner, id)) != CM_OK)
		goto out;
	cm_strlcpy(id_out, id, 37);
out:
	cm_pg_result_free(res);
	return err;
}

cm_err
pdf_store_save(cm_pg *pg, const pdf_save *s, char id_out[37], bool *existing)
{
	bool   in_tx = false;
	cm_err err;

	*existing = false;
	id_out[0] = '\0';
	if ((err = cm_pg_begin(pg)) != CM_OK)
		goto out;
	in_tx = true;
	if ((err = pdf_store_document(pg, s->owner, s->sha, s->filename, id_out, existing)) !=
	    CM_OK)
		goto out;
	if ((err = cm_pg_commit(pg)) != CM_OK)
		goto out;
	in_tx = false;
out:
	if (err != CM_OK) {
		if (in_tx)
			cm_pg_rollback(pg);
		id_out[0] = '\0';
	}
	return err;
}

cm_err
pdf_store_select_id(cm_pg *pg, const char *owner, const char *id)
{
	return select_id(pg, owner, id);
}

/* ---- deletion ----------------------------------------------------------------------------- */

cm_err
pdf_store_doc_sha(cm_pg *pg, const char *owner, const char *id, char sha_out[65])
{
	cm_pg_result *res = NULL;
	const char   *p[] = {id, owner};
	cm_err        err;

	sha_out[0] = '\0';
	if (!cm_uuid_valid(id)) {
		err = CM_ENOTFOUND;
		goto out;
	}
	err = cm_pg_exec(pg, "SELECT sha256 FROM documents WHERE id = $1::uuid AND owner_id = $2",
	                 2, p, &res);
	if (err != CM_OK)
		goto out;
	if (cm_pg_nrows(res) != 1)
		err = CM_ENOTFOUND;
	else
		cm_strlcpy(sha_out, cm_pg_get(res, 0, 0), 65);
out:
	cm_pg_result_free(res);
	return err;
}

cm_err
pdf_store_delete(cm_pg *pg, const char *owner, const char *id, const char *sha, bool *blob_gone)
{
	cm_pg_result *res = NULL;
	const char   *p[] = {id, owner, sha};
	bool          in_tx = false;
	cm_err        err;

	*blob_gone = false;
	if ((err = cm_pg_begin(pg)) != CM_OK)
		goto out;
	in_tx = true;
	err = cm_pg_exec(
	    pg, "DELETE FROM documents WHERE id = $1::uuid AND owner_id = $2 AND sha256 = $3", 3, p,
	    &res);
	if (err != CM_OK)
		goto out;
	if (cm_pg_affected(res) != 1) {
		err = CM_ENOTFOUND;
		goto out;
	}
	cm_pg_result_free(res);
	res = NULL;
	err = cm_pg_exec(pg,
	                 "DELETE FROM blobs b WHERE b.sha256 = $1"
	                 " AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.sha256 = $1)",
	                 1, p + 2, &res);
	if (err != CM_OK)
		goto out;
	*blob_gone = cm_pg_affected(res) == 1;
	cm_pg_result_free(res);
	res = NULL;
	/* Last, so the log's lock is held only until the commit: deletions take their numbers one
	 * at a time and commit in that order (migrations/002_deletions.up.sql). */
	if ((err = cm_pg_exec(pg, "LOCK TABLE deletions IN SHARE ROW EXCLUSIVE MODE", 0, NULL,
	                      NULL)) != CM_OK ||
	    (err = cm_pg_exec(pg,
	                      "INSERT INTO deletions (document_id, owner_id) VALUES ($1::uuid, $2)",
	                      2, p, NULL)) != CM_OK)
		goto out;
	if ((err = cm_pg_commit(pg)) != CM_OK)
		goto out;
	in_tx = false;
out:
	if (err != CM_OK && in_tx) {
		cm_pg_rollback(pg);
		*blob_gone = false;
	}
	cm_pg_result_free(res);
	return err;
}

cm_err
pdf_store_deletions_log_id(cm_pg *pg, char id_out[37])
{
	cm_pg_result *res = NULL;
	cm_err        err;

	if ((err = cm_pg_exec(pg, "SELECT id::text FROM deletions_log", 0, NULL, &res)) != CM_OK)
		return err;
	if (cm_pg_nrows(res) != 1)
		err = CM_EINTERNAL;
	else
		cm_strlcpy(id_out, cm_pg_get(res, 0, 0), 37);
	cm_pg_result_free(res);
	return err;
}

cm_err
pdf_store_deletions(cm_pg *pg, int64_t after, int limit, pdf_deletion_fn fn, void *arg)
{
	char          a[24], l[16];
	const char   *p[] = {a, l};
	cm_pg_result *res = NULL;
	cm_err        err;

	snprintf(a, sizeof(a), "%" PRId64, after);
	snprintf(l, sizeof(l), "%d", limit);
	if ((err = cm_pg_exec(pg,
	                      "SELECT seq, document_id::text, owner_id FROM deletions"
	                      " WHERE seq > $1::bigint ORDER BY seq LIMIT $2::int",
	                      2, p, &res)) != CM_OK)
		return err;
	for (int i = 0; i < cm_pg_nrows(res) && err == CM_OK; i++) {
		int64_t seq;
		if (!cm_parse_i64(cm_pg_get(res, i, 0), &seq))
			err = CM_EPROTO;
		else
			err = fn(arg, seq, cm_pg_get(res, i, 1), cm_pg_get(res, i, 2));
	}
	cm_pg_result_free(res);
	return err;
}

/* ---- selection ---------------------------------------------------------------------------- */

static cm_err
selected_rows(cm_pg *pg, const char *owner, pdf_rows **out)
{
	const char *p[] = {owner};

	return query_rows(
	    pg,
	    "SELECT " DOC_COLS SEL_COL DOC_FROM
	    "JOIN selection s ON s.document_id = d.id WHERE s.owner_id = $1 AND d.owner_id = $1",
	    1, p, out);
}

cm_err
pdf_store_select_by_name(cm_pg *pg, const char *owner, const char *filename, pdf_rows **out)
{
	cm_pg_result *res = NULL;
	const char   *p[] = {owner, filename};
	cm_err        err;

	*out = NULL;
	err = cm_pg_exec(
	    pg,
	    "INSERT INTO selection (owner_id, document_id, selected_at)"
	    " SELECT $1, d.id, now() FROM documents d WHERE d.owner_id = $1 AND d.filename = $2"
	    " ORDER BY d.created_at DESC, d.id DESC LIMIT 1"
	    " ON CONFLICT (owner_id) DO UPDATE"
	    " SET document_id = EXCLUDED.document_id, selected_at = EXCLUDED.selected_at",
	    2, p, &res);
	if (err == CM_OK && cm_pg_affected(res) != 1)
		err = CM_ENOTFOUND;
	cm_pg_result_free(res);
	if (err == CM_OK && (err = selected_rows(pg, owner, out)) == CM_OK &&
	    pdf_rows_count(*out) != 1) {
		pdf_rows_free(*out);
		*out = NULL;
		err = CM_ENOTFOUND; /* deleted in between */
	}
	return err;
}

cm_err
pdf_store_selected(cm_pg *pg, const char *owner, pdf_rows **out)
{
	return selected_rows(pg, owner, out);
}

/* ---- chunks ------------------------------------------------------------------------------- */

/* Rows: sha256, idx, page_first, page_last, text; idx NULL when the document has no match. */
static cm_err
chunk_rows(cm_pg *pg, const char *sql, int n, const char *const *p, pdf_rows **out,
           const char **sha)
{
	cm_err err;

	*sha = NULL;
	if ((err = query_rows(pg, sql, n, p, out)) != CM_OK)
		goto out;
	if (pdf_rows_count(*out) == 0) {
		pdf_rows_free(*out);
		*out = NULL;
		err = CM_ENOTFOUND;
		goto out;
	}
	*sha = cm_pg_get((*out)->res, 0, 0);
	(*out)->nchunks = cm_pg_isnull((*out)->res, 0, 1) ? 0 : pdf_rows_count(*out);
out:
	return err;
}

cm_err
pdf_store_chunks(cm_pg *pg, const char *owner, const char *id, int first, int last, pdf_rows **out,
                 const char **sha)
{
	char        f[16], l[16];
	const char *p[] = {id, owner, f, l};

	*out = NULL;
	*sha = NULL;
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND; /* before anything is acquired */
	snprintf(f, sizeof(f), "%d", first > 0 ? first : 1);
	snprintf(l, sizeof(l), "%d", last > 0 ? last : INT32_MAX);
	return chunk_rows(
	    pg,
	    "SELECT d.sha256, c.idx, c.page_first, c.page_last, c.text FROM documents d"
	    " LEFT JOIN chunks c ON c.sha256 = d.sha256 AND c.page_last >= $3::int"
	    " AND c.page_first <= $4::int"
	    " WHERE d.id = $1::uuid AND d.owner_id = $2 ORDER BY c.idx",
	    4, p, out, sha);
}

/* A chunk's full-text vector, and whether it matches tsquery q: the stored one, or, until the
 * indexer has passed (indexer.h), one computed on the fly - the same answer, so a document is
 * searchable the moment its upload commits. The OR keeps the GIN index usable for the stored. */
#define CHUNK_TSV "coalesce(ch.tsv, to_tsvector('simple', ch.text))"
#define CHUNK_MATCH(q)                                                                             \
	"(ch.tsv @@ " q " OR (ch.tsv IS NULL AND to_tsvector('simple', ch.text) @@ " q "))"

cm_err
pdf_store_search(cm_pg *pg, const char *owner, const char *id, const char *query, int limit,
                 pdf_rows **out, const char **sha)
{
	char        l[16];
	const char *p[] = {id, owner, query, l};

	*out = NULL;
	*sha = NULL;
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND; /* before anything is acquired */
	snprintf(l, sizeof(l), "%d", limit);
	return chunk_rows(
	    pg,
	    "SELECT d.sha256, c.idx, c.page_first, c.page_last, c.text FROM documents d"
	    " LEFT JOIN LATERAL (SELECT ch.idx, ch.page_first, ch.page_last, ch.text,"
	    " ts_rank(" CHUNK_TSV ", q) AS rank FROM chunks ch, plainto_tsquery('simple', $3) q"
	    " WHERE ch.sha256 = d.sha256 AND " CHUNK_MATCH(
	        "q") " ORDER BY rank DESC, ch.idx"
	             " LIMIT $4::int)"
	             " c ON true WHERE d.id = $1::uuid AND d.owner_id = $2 ORDER BY c.rank DESC, "
	             "c.idx",
	    4, p, out, sha);
}

/* The fallbacks of pdf.Search (search.c). Same row shape as pdf_store_search. */
cm_err
pdf_store_search_some(cm_pg *pg, const char *owner, const char *id, const char *any,
                      const char *each, int limit, pdf_rows **out, const char **sha)
{
	char        l[16];
	const char *p[] = {id, owner, any, each, l};

	*out = NULL;
	*sha = NULL;
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND;
	snprintf(l, sizeof(l), "%d", limit);
	return chunk_rows(
	    pg,
	    "WITH tq AS (SELECT to_tsquery('simple', t) AS q FROM unnest($4::text[]) t)"
	    " SELECT d.sha256, c.idx, c.page_first, c.page_last, c.text FROM documents d"
	    " LEFT JOIN LATERAL (SELECT ch.idx, ch.page_first, ch.page_last, ch.text,"
	    " (SELECT count(*) FROM tq WHERE " CHUNK_TSV " @@ tq.q) AS hits,"
	    " ts_rank(" CHUNK_TSV ", q) AS rank FROM chunks ch, to_tsquery('simple', $3) q"
	    " WHERE ch.sha256 = d.sha256 AND " CHUNK_MATCH(
	        "q") " ORDER BY hits DESC, rank DESC, ch.idx LIMIT $5::int) c ON true"
	             " WHERE d.id = $1::uuid AND d.owner_id = $2 ORDER BY c.hits DESC, c.rank "
	             "DESC, c.idx",
	    5, p, out, sha);
}

cm_err
pdf_store_search_similar(cm_pg *pg, const char *owner, const char *id, const char *words, int limit,
                         pdf_rows **out, const char **sha)
{
	char        l[16];
	const char *p[] = {id, owner, words, l, PDF_TRGM_MIN};
	cm_err      err;

	*out = NULL;
	*sha = NULL;
	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND;
	snprintf(l, sizeof(l), "%d", limit);
	err = chunk_rows(
	    pg,
	    "SELECT d.sha256, c.idx, c.page_first, c.page_last, c.text FROM documents d"
	    " LEFT JOIN LATERAL (SELECT ch.idx, ch.page_first, ch.page_last, ch.text, s.score"
	    " FROM chunks ch, LATERAL (SELECT sum(x.ws) AS score FROM (SELECT"
	    " public.word_similarity(w, ch.text) AS ws FROM unnest($3::text[]) w) x"
	    " WHERE x.ws >= $5::real) s WHERE ch.sha256 = d.sha256 AND s.score IS NOT NULL"
	    " ORDER BY s.score DESC, ch.idx LIMIT $4::int) c ON true"
	    " WHERE d.id = $1::uuid AND d.owner_id = $2 ORDER BY c.score DESC, c.idx",
	    5, p, out, sha);
	if (err == CM_EINTERNAL && strcmp(cm_pg_sqlstate(pg), "42883") == 0)
		err = CM_EPRECOND; /* undefined function: pg_trgm is not installed */
	return err;
}

cm_err
pdf_store_page_heads(cm_pg *pg, const char *sha, const char *pages, pdf_rows **out)
{
	const char *p[] = {sha, pages, PDF_HEAD_CHARS};

	return query_rows(pg,
	                  "SELECT page, left(text, $3::int) FROM pages WHERE sha256 = $1 AND page ="
	                  " ANY($2::int[]) ORDER BY page",
	                  3, p, out);
}

void
pdf_rows_head(const pdf_rows *r, int i, int *page, const char **head)
{
	*page = (int)get_i64(r->res, i, 0);
	*head = cm_pg_get(r->res, i, 1);
}

int
pdf_rows_nchunks(const pdf_rows *r)
{
	return r != NULL ? r->nchunks : 0;
}

void
pdf_rows_chunk(const pdf_rows *r, int i, pdf_chunk_row *out)
{
	out->index = (int32_t)get_i64(r->res, i, 1);
	out->page_first = (int32_t)get_i64(r->res, i, 2);
	out->page_last = (int32_t)get_i64(r->res, i, 3);
	out->text = cm_pg_get(r->res, i, 4);
}

/* ---- Redis text cache -------------------------------------------------------------------- */

static void
cache_key(const char *sha, char key[96])
{
	snprintf(key, 96, "pdf:text:v1:%s", sha);
}

cm_err
pdf_cache_get(cm_redis *rd, const char *sha, cm_buf *out, bool *found)
{
	char key[96];

	cache_key(sha, key);
	return cm_redis_get(rd, key, out, found);
}

cm_err
pdf_cache_put(cm_redis *rd, const char *sha, const void *data, size_t len)
{
	char key[96];

	cache_key(sha, key);
	return cm_redis_set(rd, key, data, len, PDF_CACHE_TTL_S);
}

cm_err
pdf_cache_del(cm_redis *rd, const char *sha)
{
	char key[96];

	cache_key(sha, key);
	return cm_redis_del(rd, key);
}
