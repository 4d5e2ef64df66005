/*
 * handlers.c - the pdf.* RPC handlers: argument checks, calls into store.c / upload.c, and
 * protobuf responses built in the call's arena.
 *
 * DESIGN: each handler starts with begin() (subject and worker state), keeps one exit path, and
 * turns a store error into a status with fail(): PostgreSQL trouble is UNAVAILABLE with a
 * generic message (the detail is logged, not sent); not found is NOT_FOUND with the message the
 * legacy frontend expects where it has one. Documents are built by one function (doc_build),
 * so every method returns the same Document shape: metadata values "Unknown" when absent
 * (legacy contract), Document.title/author "" when absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/follow.h"
#include "cm/log.h"
#include "cm/util.h"
#include "config.h"
#include "cursor.h"
#include "filename.h"
#include "files.h"
#include "handlers.h"
#include "proto/common.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "search.h"
#include "server.h"
#include "store.h"
#include "upload.h"

static cm_err
begin(cm_rpc_ctx *ctx, pdf_worker **w)
{
	cm_err err = CM_OK;

	*w = ctx->worker_state;
	if (ctx->subject == NULL || ctx->subject[0] == '\0')
		err = cm_rpc_fail(ctx, CM_EAUTH, "not authenticated");
	else if (*w == NULL)
		err = cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	return err;
}

/* Status and message for a store error. */
static cm_err
fail(cm_rpc_ctx *ctx, pdf_worker *w, cm_err err, const char *notfound)
{
	switch (err) {
	case CM_OK:
		return CM_OK;
	case CM_ENOTFOUND:
		return cm_rpc_fail(ctx, err, "%s", notfound);
	case CM_EUNAVAIL:
		return cm_rpc_fail(ctx, err, "database unavailable");
	case CM_ETIMEDOUT:
		return cm_rpc_fail(ctx, err, "deadline exceeded");
	case CM_EINVAL:
		return cm_rpc_fail(ctx, err, "invalid argument");
	default:
		cm_error("PDF-STORE", "%s: %s (%s)", ctx->method != NULL ? ctx->method : "?",
		         cm_strerror(err), w != NULL ? cm_pg_errmsg(w->pg) : "");
		return cm_rpc_fail(ctx, CM_EINTERNAL, "internal error");
	}
}

static char *
dup(cm_rpc_ctx *ctx, const char *s, bool *oom)
{
	char *p = cm_rpc_strdup(ctx, s != NULL ? s : "");

	if (p == NULL)
		*oom = true;
	return p;
}

static Pdf__Document *
doc_build(cm_rpc_ctx *ctx, const pdf_doc_row *r)
{
	Pdf__Document *d = cm_rpc_alloc(ctx, sizeof(*d));
	Pdf__Metadata *m = cm_rpc_alloc(ctx, sizeof(*m));
	bool           oom = false;
	char          *v[PDF_META_COUNT];

	if (d == NULL || m == NULL)
		return NULL;
	pdf__document__init(d);
	pdf__metadata__init(m);
	for (int f = 0; f < PDF_META_COUNT; f++)
		v[f] = dup(ctx, r->meta[f] != NULL ? r->meta[f] : "Unknown", &oom);
	m->title = v[PDF_META_TITLE];
	m->author = v[PDF_META_AUTHOR];
	m->subject = v[PDF_META_SUBJECT];
	m->creator = v[PDF_META_CREATOR];
	m->producer = v[PDF_META_PRODUCER];
	m->creation_date = v[PDF_META_CREATION_DATE];
	m->modification_date = v[PDF_META_MOD_DATE];
	d->id = dup(ctx, r->id, &oom);
	d->filename = dup(ctx, r->filename, &oom);
	d->sha256 = dup(ctx, r->sha256, &oom);
	d->size_bytes = r->size_bytes;
	d->pages = r->pages;
	d->title = dup(ctx, r->meta[PDF_META_TITLE], &oom);
	d->author = dup(ctx, r->meta[PDF_META_AUTHOR], &oom);
	d->text_length = r->text_length;
	d->created_at = dup(ctx, r->created_at, &oom);
	d->metadata = m;
	return oom ? NULL : d;
}

/* The single document of rows (row 0) into *out; CM_ENOTFOUND when there is none. */
static cm_err
one_doc(cm_rpc_ctx *ctx, pdf_rows *rows, Pdf__Document **out, const char **selected_at)
{
	pdf_doc_row row;
	cm_err      err = CM_OK;

	if (pdf_rows_count(rows) != 1) {
		err = CM_ENOTFOUND;
	} else {
		pdf_rows_doc(rows, 0, &row);
		if ((*out = doc_build(ctx, &row)) == NULL ||
		    (selected_at != NULL &&
		     (*selected_at = cm_rpc_strdup(ctx, row.selected_at)) == NULL))
			err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	}
	return err;
}

cm_err
pdf_handler_begin(cm_rpc_ctx *ctx, pdf_worker **w)
{
	return begin(ctx, w);
}

cm_err
pdf_upload_bytes(cm_rpc_ctx *ctx, pdf_worker *w, const char *filename, const uint8_t *data,
                 size_t len, Pdf__UploadResponse *rs)
{
	pdf_rows      *rows = NULL;
	pdf_upload_in  in;
	pdf_upload_out out;
	char           why[CM_MAX_ERRMSG];
	cm_err         err;

	/* One user holds at most PDF_USER_MAX_ACTIVE workers (gate.h); the place is given back
	 * below, on the one way out. */
	if ((err = pdf_gate_enter(w->svc->gate, ctx->subject)) != CM_OK) {
		if (err == CM_ELIMIT) {
			ctx->retry_after_s = (int32_t)w->svc->cfg.retry_after_s;
			cm_counter_add(w->svc->busy_refused, 1);
			return cm_rpc_fail(ctx, err,
			                   "another upload of yours is still being processed; try "
			                   "again when it has finished");
		}
		return cm_rpc_fail(ctx, err, "out of memory");
	}
	cm_gauge_add(w->svc->uploads_active, 1);
	in.owner = ctx->subject;
	in.filename = filename;
	in.data = data;
	in.len = len;
	in.deadline_ms = ctx->deadline_ms;
	if ((err = pdf_upload(w, &in, &out, why, sizeof(why))) != CM_OK) {
		err = cm_rpc_fail(ctx, err, "%s", why[0] != '\0' ? why : cm_strerror(err));
		goto out;
	}
	if ((err = pdf_store_doc_get(w->pg, ctx->subject, out.id, &rows)) != CM_OK ||
	    (err = one_doc(ctx, rows, &rs->document, NULL)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	rs->existing = out.existing;
	rs->extracted = out.extracted;
out:
	cm_gauge_add(w->svc->uploads_active, -1);
	pdf_gate_leave(w->svc->gate, ctx->subject);
	pdf_rows_free(rows);
	return err;
}

cm_err
pdf_handle_upload(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__UploadRequest *rq = req;
	pdf_worker               *w = NULL;
	cm_err                    err;

	if ((err = begin(ctx, &w)) != CM_OK)
		return err;
	return pdf_upload_bytes(ctx, w, rq->filename, rq->content.data, rq->content.len, resp);
}

cm_err
pdf_handle_list(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__ListRequest *rq = req;
	Pdf__ListResponse      *rs = resp;
	pdf_worker             *w = NULL;
	pdf_rows               *rows = NULL;
	pdf_list_query          q;
	pdf_doc_row             row;
	char                    ts[PDF_CURSOR_TS_LEN + 1], id[37], next[PDF_CURSOR_MAX];
	int                     n;
	cm_err                  err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	memset(&q, 0, sizeof(q));
	q.owner = ctx->subject;
	q.search = rq->search != NULL ? rq->search : "";
	q.limit = rq->limit == 0 ? PDF_LIST_DEFAULT : rq->limit;
	q.offset = rq->offset;
	if (q.limit < 1 || q.limit > PDF_LIST_MAX || q.offset < 0) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "limit must be 1..%d and offset >= 0",
		                  PDF_LIST_MAX);
		goto out;
	}
	if (strlen(q.search) > PDF_MAX_QUERY) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "search text too long");
		goto out;
	}
	if (rq->cursor != NULL && rq->cursor[0] != '\0') {
		if (pdf_cursor_decode(rq->cursor, ts, id) != CM_OK) {
			err = cm_rpc_fail(ctx, CM_EINVAL, "invalid cursor");
			goto out;
		}
		q.after_ts = ts;
		q.after_id = id;
	}
	if ((err = pdf_store_list(w->pg, &q, &rows, &rs->total)) != CM_OK) {
		err = fail(ctx, w, err, "not found");
		goto out;
	}
	n = pdf_rows_count(rows);
	if (n > q.limit)
		n = q.limit;
	if (n > 0 && (rs->items = cm_rpc_alloc(ctx, (size_t)n * sizeof(*rs->items))) == NULL) {
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		pdf_rows_doc(rows, i, &row);
		if ((rs->items[i] = doc_build(ctx, &row)) == NULL) {
			err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
			goto out;
		}
		rs->n_items++;
	}
	rs->next_cursor = (char *)"";
	if (pdf_rows_count(rows) > q.limit) {
		pdf_rows_doc(rows, q.limit - 1, &row);
		if (pdf_cursor_encode(row.cursor_ts, row.id, next) != CM_OK ||
		    (rs->next_cursor = cm_rpc_strdup(ctx, next)) == NULL) {
			err = cm_rpc_fail(ctx, CM_EINTERNAL, "cannot build the next cursor");
			goto out;
		}
	}
out:
	pdf_rows_free(rows);
	return err;
}

cm_err
pdf_handle_get(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__GetRequest *rq = req;
	Pdf__Document         *rs = resp;
	Pdf__Document         *d = NULL;
	pdf_worker            *w = NULL;
	pdf_rows              *rows = NULL;
	cm_err                 err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if ((err = pdf_store_doc_get(w->pg, ctx->subject, rq->id, &rows)) != CM_OK ||
	    (err = one_doc(ctx, rows, &d, NULL)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	*rs = *d; /* the response message itself is the framework's; copy the built fields in */
out:
	pdf_rows_free(rows);
	return err;
}

cm_err
pdf_handle_get_page(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__GetPageRequest *rq = req;
	Pdf__Page                 *rs = resp;
	pdf_worker                *w = NULL;
	char                      *text = NULL;
	cm_err                     err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if ((err = pdf_store_page(w->pg, ctx->subject, rq->id, rq->page, &text)) != CM_OK) {
		err = fail(ctx, w, err, "page not found");
		goto out;
	}
	rs->page = rq->page;
	if ((rs->text = cm_rpc_strdup(ctx, text)) == NULL)
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
out:
	free(text);
	return err;
}

cm_err
pdf_handle_delete(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__DeleteRequest *rq = req;
	pdf_worker               *w = NULL;
	char                      sha[65];
	bool                      locked = false, gone = false;
	int64_t                   left;
	cm_err                    err;

	(void)resp;
	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if ((err = pdf_store_doc_sha(w->pg, ctx->subject, rq->id, sha)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	/* Under the file's lock, so no upload of the same bytes reuses what is removed here. */
	left = ctx->deadline_ms > 0 ? ctx->deadline_ms - cm_now_ms() : CM_DEFAULT_DEADLINE_MS;
	if ((err = pdf_store_lock(w->pg, sha, cm_mono_ms() + left)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	locked = true;
	if ((err = pdf_store_delete(w->pg, ctx->subject, rq->id, sha, &gone)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	/* After the commit: the blob row is gone, so nothing refers to the file or the text. */
	if (gone) {
		if (pdf_files_remove(w->svc->cfg.data_dir, sha) != CM_OK)
			cm_warn("PDF-FILE-ORPHAN", "sha256=%s: file left after its blob", sha);
		if (pdf_cache_del(w->redis, sha) != CM_OK)
			cm_debug("PDF-CACHE-DEL", "sha256=%s: cache entry expires by itself", sha);
	}
	cm_info("PDF-DELETE", "document=%s owner=%s sha256=%s blob_removed=%d", rq->id,
	        ctx->subject, sha, gone);
out:
	if (locked)
		pdf_store_unlock(w->pg, sha);
	return err;
}

/* ---- pdf.Deletions (services only) ---------------------------------------------------------- */

typedef struct deletions_out {
	cm_rpc_ctx            *ctx;
	Cm__DeletionsResponse *rs;
	size_t                 cap;
} deletions_out;

static cm_err
add_deletion(void *arg, int64_t seq, const char *document_id, const char *owner)
{
	deletions_out *o = arg;
	Cm__Deletion  *d = cm_rpc_alloc(o->ctx, sizeof(*d));

	if (d == NULL || o->rs->n_deletions >= o->cap)
		return CM_ENOMEM;
	cm__deletion__init(d);
	d->seq = seq;
	d->id = cm_rpc_strdup(o->ctx, document_id);
	d->owner = cm_rpc_strdup(o->ctx, owner);
	if (d->id == NULL || d->owner == NULL)
		return CM_ENOMEM;
	o->rs->deletions[o->rs->n_deletions++] = d;
	return CM_OK;
}

cm_err
pdf_handle_deletions(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Cm__DeletionsRequest *rq = req;
	pdf_worker                 *w = ctx->worker_state;
	deletions_out               o = {ctx, resp, 0};
	cm_err                      err;

	if ((err = cm_rpc_require_service(ctx)) != CM_OK)
		return err;
	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if (rq->limit < 0 || rq->limit > CM_FOLLOW_BATCH_MAX || rq->after_seq < 0)
		return cm_rpc_fail(ctx, CM_EINVAL, "limit must be 0..%d and after_seq >= 0",
		                   CM_FOLLOW_BATCH_MAX);
	o.cap = rq->limit > 0 ? (size_t)rq->limit : CM_FOLLOW_BATCH_DEFAULT;
	if ((o.rs->deletions = cm_rpc_alloc(ctx, o.cap * sizeof(Cm__Deletion *))) == NULL ||
	    (o.rs->log_id = cm_rpc_alloc(ctx, CM_UUID_LEN + 1)) == NULL)
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	if ((err = pdf_store_deletions_log_id(w->pg, o.rs->log_id)) == CM_OK)
		err = pdf_store_deletions(w->pg, rq->after_seq, (int)o.cap, add_deletion, &o);
	return fail(ctx, w, err, "");
}

/* Fills a SelectedResponse from selection rows. */
static cm_err
selected_reply(cm_rpc_ctx *ctx, pdf_rows *rows, Pdf__SelectedResponse *rs)
{
	const char *at = NULL;
	cm_err      err;

	if ((err = one_doc(ctx, rows, &rs->document, &at)) == CM_OK)
		rs->selected_at = (char *)at;
	return err;
}

cm_err
pdf_handle_select(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__SelectRequest *rq = req;
	pdf_worker               *w = NULL;
	pdf_rows                 *rows = NULL;
	char                      name[PDF_MAX_FILENAME + 1];
	cm_err                    err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if (rq->filename == NULL || rq->filename[0] == '\0') {
		err = cm_rpc_fail(ctx, CM_EINVAL, "filename is required");
		goto out;
	}
	pdf_filename_sanitize(rq->filename, name, sizeof(name));
	if ((err = pdf_store_select_by_name(w->pg, ctx->subject, name, &rows)) != CM_OK ||
	    (err = selected_reply(ctx, rows, resp)) != CM_OK)
		err = fail(ctx, w, err, "PDF file not found");
out:
	pdf_rows_free(rows);
	return err;
}

cm_err
pdf_handle_selected(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	pdf_worker *w = NULL;
	pdf_rows   *rows = NULL;
	cm_err      err;

	(void)req;
	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if ((err = pdf_store_selected(w->pg, ctx->subject, &rows)) != CM_OK) {
		err = fail(ctx, w, err, "No PDF selected");
		goto out;
	}
	if (pdf_rows_count(rows) == 0) {
		err = cm_rpc_fail(ctx, CM_EPRECOND, "No PDF selected");
		goto out;
	}
	err = selected_reply(ctx, rows, resp);
out:
	pdf_rows_free(rows);
	return err;
}

/* Fills a ChunksResponse from chunk rows. */
static cm_err
chunks_reply(cm_rpc_ctx *ctx, pdf_rows *rows, const char *sha, Pdf__ChunksResponse *rs)
{
	int           n = pdf_rows_nchunks(rows);
	bool          oom = false;
	pdf_chunk_row row;

	rs->sha256 = dup(ctx, sha, &oom);
	if (n > 0 && (rs->chunks = cm_rpc_alloc(ctx, (size_t)n * sizeof(*rs->chunks))) == NULL)
		oom = true;
	for (int i = 0; i < n && !oom; i++) {
		Pdf__Chunk *c = cm_rpc_alloc(ctx, sizeof(*c));
		if (c == NULL) {
			oom = true;
			break;
		}
		pdf__chunk__init(c);
		pdf_rows_chunk(rows, i, &row);
		c->index = row.index;
		c->page_first = row.page_first;
		c->page_last = row.page_last;
		c->text = dup(ctx, row.text, &oom);
		rs->chunks[rs->n_chunks++] = c;
	}
	return oom ? cm_rpc_fail(ctx, CM_ENOMEM, "out of memory") : CM_OK;
}

/* Chunk.page_heads for the chunks of rs that span pages (at most PDF_HEADS_SPAN): one query for
 * every page needed. */
static cm_err
add_page_heads(cm_rpc_ctx *ctx, pdf_worker *w, Pdf__ChunksResponse *rs)
{
	cm_buf    list;
	pdf_rows *rows = NULL;
	bool      any = false, oom = false;
	cm_err    err = CM_OK;

	cm_buf_init(&list, 64u * 1024u);
	err = cm_buf_appends(&list, "{");
	for (size_t i = 0; i < rs->n_chunks && err == CM_OK; i++) {
		const Pdf__Chunk *c = rs->chunks[i];
		if (c->page_last <= c->page_first || c->page_last - c->page_first > PDF_HEADS_SPAN)
			continue;
		for (int p = c->page_first + 1; p <= c->page_last && err == CM_OK; p++) {
			err = cm_buf_printf(&list, "%s%d", any ? "," : "", p);
			any = true;
		}
	}
	if (err == CM_OK)
		err = cm_buf_appends(&list, "}");
	if (err != CM_OK || !any)
		goto out;
	if ((err = pdf_store_page_heads(w->pg, rs->sha256, list.data, &rows)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	for (size_t i = 0; i < rs->n_chunks && !oom; i++) {
		Pdf__Chunk *c = rs->chunks[i];
		int         span = c->page_last - c->page_first;
		if (span <= 0 || span > PDF_HEADS_SPAN)
			continue;
		if ((c->page_heads = cm_rpc_alloc(ctx, (size_t)span * sizeof(char *))) == NULL) {
			oom = true;
			break;
		}
		for (int k = 0; k < span; k++)
			c->page_heads[k] = (char *)"";
		for (int r = 0; r < pdf_rows_count(rows) && !oom; r++) {
			int         page;
			const char *head;
			pdf_rows_head(rows, r, &page, &head);
			if (page > c->page_first && page <= c->page_last)
				c->page_heads[page - c->page_first - 1] = dup(ctx, head, &oom);
		}
		c->n_page_heads = (size_t)span;
	}
	if (oom)
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
out:
	if (err == CM_ENOMEM || err == CM_ETOOBIG)
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	pdf_rows_free(rows);
	cm_buf_fini(&list);
	return err;
}

cm_err
pdf_handle_chunks(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__ChunksRequest *rq = req;
	pdf_worker               *w = NULL;
	pdf_rows                 *rows = NULL;
	const char               *sha = NULL;
	cm_err                    err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if (rq->first_page < 0 || rq->last_page < 0 ||
	    (rq->last_page > 0 && rq->last_page < rq->first_page)) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "bad page range");
		goto out;
	}
	if ((err = pdf_store_chunks(w->pg, ctx->subject, rq->id, rq->first_page, rq->last_page,
	                            &rows, &sha)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	err = chunks_reply(ctx, rows, sha, resp);
	if (err == CM_OK && rq->page_heads)
		err = add_page_heads(ctx, w, resp);
out:
	pdf_rows_free(rows);
	return err;
}

cm_err
pdf_handle_search(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__SearchRequest *rq = req;
	pdf_worker               *w = NULL;
	pdf_rows                 *rows = NULL;
	const char               *sha = NULL;
	const char               *match = "";
	int                       limit = rq->limit == 0 ? PDF_SEARCH_DEFAULT : rq->limit;
	cm_err                    err;

	if ((err = begin(ctx, &w)) != CM_OK)
		goto out;
	if (rq->query == NULL || rq->query[0] == '\0' || strlen(rq->query) > PDF_MAX_QUERY) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "query must be 1..%d bytes", PDF_MAX_QUERY);
		goto out;
	}
	if (limit < 1 || limit > PDF_SEARCH_MAX) {
		err = cm_rpc_fail(ctx, CM_EINVAL, "limit must be 1..%d", PDF_SEARCH_MAX);
		goto out;
	}
	if ((err = pdf_search(w->pg, ctx->subject, rq->id, rq->query, limit, rq->fallback, &rows,
	                      &sha, &match)) != CM_OK) {
		err = fail(ctx, w, err, "document not found");
		goto out;
	}
	if ((err = chunks_reply(ctx, rows, sha, resp)) == CM_OK)
		((Pdf__ChunksResponse *)resp)->match = (char *)match; /* static text */
	if (err == CM_OK && rq->page_heads)
		err = add_page_heads(ctx, w, resp);
out:
	pdf_rows_free(rows);
	return err;
}
