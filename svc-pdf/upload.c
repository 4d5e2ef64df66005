/*
 * upload.c - the upload pipeline (see upload.h for the steps).
 *
 * DESIGN: one function walks the steps with a single cleanup path; the pieces it calls each own
 * one concern (store.c: SQL and Redis; files.c: the volume; extract.c: mupdf; chunk.c: chunks).
 * Time: the extraction gets PDF_EXTRACT_TIMEOUT_MS or what is left of the RPC deadline minus a
 * margin for storing, whichever is less; running out of the document's own allowance is the
 * document's fault (FAILED_PRECONDITION), running out of the caller's deadline is not
 * (DEADLINE_EXCEEDED). The Redis cache holds a pdf.CachedText message; anything in it that does
 * not unpack and check out is a miss, never an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "files.h"
#include "filename.h"
#include "proto/pdf.pb-c.h"
#include "saver.h"
#include "store.h"
#include "indexer.h"
#include "upload.h"

#define PDF_CACHE_VERSION 1
#define PDF_STORE_MARGIN_MS 2000 /* kept back from the deadline for storing the result */

/* Packs t as a pdf.CachedText; *out is malloc'ed. */
static cm_err
cache_encode(const pdf_text *t, uint8_t **out, size_t *len)
{
	Pdf__CachedText c = PDF__CACHED_TEXT__INIT;
	Pdf__Metadata   m = PDF__METADATA__INIT;
	char           *v[PDF_META_COUNT];
	cm_err          err = CM_OK;

	*out = NULL;
	*len = 0;
	for (int f = 0; f < PDF_META_COUNT; f++)
		v[f] = t->meta.v[f] != NULL ? t->meta.v[f] : (char *)"";
	m.title = v[PDF_META_TITLE];
	m.author = v[PDF_META_AUTHOR];
	m.subject = v[PDF_META_SUBJECT];
	m.creator = v[PDF_META_CREATOR];
	m.producer = v[PDF_META_PRODUCER];
	m.creation_date = v[PDF_META_CREATION_DATE];
	m.modification_date = v[PDF_META_MOD_DATE];
	c.version = PDF_CACHE_VERSION;
	c.metadata = &m;
	c.n_pages = (size_t)t->npages;
	c.pages = (char **)t->page;
	c.text_length = t->text_length;
	*len = pdf__cached_text__get_packed_size(&c);
	if (*len > PDF_CACHE_MAX)
		err = CM_ETOOBIG;
	else if ((*out = malloc(*len)) == NULL)
		err = CM_ENOMEM;
	else
		pdf__cached_text__pack(&c, *out);
	return err;
}

/* Rebuilds t from a cached pdf.CachedText; false when the bytes are not a usable entry. */
static bool
cache_decode(const cm_buf *b, int64_t max_pages, pdf_text *t)
{
	Pdf__CachedText *c;
	bool             ok = false;

	c = pdf__cached_text__unpack(NULL, b->len, (const uint8_t *)b->data);
	if (c == NULL || c->version != PDF_CACHE_VERSION || c->n_pages == 0 ||
	    (int64_t)c->n_pages > max_pages)
		goto out;
	for (size_t i = 0; i < c->n_pages; i++) {
		if (pdf_text_add_page(t, c->pages[i], strlen(c->pages[i])) != CM_OK)
			goto out;
	}
	if (c->metadata != NULL) {
		const char *v[PDF_META_COUNT] = {c->metadata->title,
		                                 c->metadata->author,
		                                 c->metadata->subject,
		                                 c->metadata->creator,
		                                 c->metadata->producer,
		                                 c->metadata->creation_date,
		                                 c->metadata->modification_date};
		for (int f = 0; f < PDF_META_COUNT; f++) {
			if (pdf_text_set_meta(t, (pdf_meta_field)f, v[f]) != CM_OK)
				goto out;
		}
	}
	ok = pdf_text_finish(t) == CM_OK && t->has_text;
out:
	if (c != NULL)
		pdf__cached_text__free_unpacked(c, NULL);
	return ok;
}

/* Text from Redis when it is there and sound. */
static bool
from_cache(pdf_worker *w, const char *sha, pdf_text *t)
{
	cm_buf b;
	bool   found = false, ok = false;

	cm_buf_init(&b, PDF_CACHE_MAX);
	if (pdf_cache_get(w->redis, sha, &b, &found) == CM_OK && found) {
		ok = cache_decode(&b, w->svc->cfg.max_pages, t);
		if (!ok) {
			cm_warn("PDF-CACHE-BAD", "sha256=%s: unusable cache entry ignored", sha);
			pdf_text_fini(t);
			pdf_text_init(t, PDF_MAX_TEXT);
		}
	}
	cm_buf_fini(&b);
	return ok;
}

static void
to_cache(pdf_worker *w, const char *sha, const pdf_text *t)
{
	uint8_t *data = NULL;
	size_t   len = 0;
	cm_err   err = cache_encode(t, &data, &len);

	if (err == CM_OK && (err = pdf_cache_put(w->redis, sha, data, len)) != CM_OK)
		cm_debug("PDF-CACHE-PUT", "sha256=%s not cached: %s", sha, cm_strerror(err));
	free(data);
}

/* The extraction's pages go to the storage thread as they come. */
typedef struct to_saver {
	pdf_saver *saver;
	cm_err     err; /* the storage side's failure, if that stopped the extraction */
} to_saver;

static cm_err
page_to_saver(void *arg, const pdf_text *t, int npages, const char *text, size_t len)
{
	to_saver *ts = arg;

	return ts->err = pdf_saver_page(ts->saver, t, npages, text, len);
}

static cm_err
extract(pdf_worker *w, const pdf_upload_in *in, const char *sha, int64_t left_ms, pdf_saver *sv,
        pdf_text *t, char *why, size_t whylen)
{
	const pdf_config *cfg = &w->svc->cfg;
	pdf_limits        lim;
	pdf_xstats        st;
	to_saver          ts = {sv, CM_OK};
	pdf_page_sink     sink = {page_to_saver, &ts};
	bool              by_deadline = false;
	cm_err            err;

	lim.max_pages = cfg->max_pages;
	lim.timeout_ms = cfg->extract_timeout_ms;
	lim.max_memory = (size_t)cfg->max_memory_mb << 20;
	lim.max_text = PDF_MAX_TEXT;
	if (left_ms - PDF_STORE_MARGIN_MS < lim.timeout_ms) {
		lim.timeout_ms =
		    left_ms > 2 * PDF_STORE_MARGIN_MS ? left_ms - PDF_STORE_MARGIN_MS : left_ms / 2;
		by_deadline = true;
	}
	if (lim.timeout_ms < 1)
		lim.timeout_ms = 1;
	err = pdf_extract_to(w->x, in->data, in->len, &lim, &sink, t, why, whylen);
	pdf_xctx_stats(w->x, &st);
	cm_counter_add(w->svc->extractions, 1);
	cm_histogram_observe(w->svc->extract_seconds, (double)st.elapsed_ms / 1000.0);
	if (err == CM_OK) {
		cm_info("PDF-EXTRACT",
		        "sha256=%s bytes=%zu pages=%d chars=%" PRId64 " ms=%" PRId64
		        " peak_kb=%zu warnings=%d",
		        sha, in->len, t->npages, t->text_length, st.elapsed_ms,
		        st.peak_memory >> 10, st.warnings);
	} else if (ts.err != CM_OK) {
		why[0] = '\0'; /* the storage side failed: not the document's fault */
		cm_info("PDF-EXTRACT-STOP", "sha256=%s ms=%" PRId64 ": storage failed: %s", sha,
		        st.elapsed_ms, cm_strerror(err));
	} else {
		cm_counter_add(w->svc->failures, 1);
		if (err == CM_ETIMEDOUT && !by_deadline)
			err = CM_EPRECOND; /* the document's own time allowance: retrying will not
			                      help */
		cm_info("PDF-EXTRACT-FAIL", "sha256=%s bytes=%zu ms=%" PRId64 " peak_kb=%zu: %s",
		        sha, in->len, st.elapsed_ms, st.peak_memory >> 10, why);
	}
	return err;
}

/* Pages of a text from the cache, to the storage thread. */
static cm_err
cached_to_saver(pdf_saver *sv, const pdf_text *t)
{
	cm_err err = CM_OK;

	for (int i = 0; i < t->npages && err == CM_OK; i++)
		err = pdf_saver_page(sv, t, t->npages, t->page[i], t->page_len[i]);
	return err;
}

/* Step 2: the blob exists; a document for it (and its file, if the volume lost it). */
static cm_err
store_known(pdf_worker *w, const pdf_upload_in *in, const pdf_save *save, pdf_upload_out *out,
            char *why, size_t whylen)
{
	const char *dir = w->svc->cfg.data_dir;
	cm_err      err;

	if (!pdf_files_exists(dir, save->sha, in->len) &&
	    (err = pdf_files_write(dir, save->sha, in->data, in->len)) != CM_OK) {
		snprintf(why, whylen, "cannot store the file");
		return err; /* a file for an existing blob stays, whatever happens next */
	}
	if ((err = pdf_store_save(w->pg, save, out->id, &out->existing)) != CM_OK)
		return err;
	cm_counter_add(w->svc->skipped, 1);
	cm_info("PDF-DEDUP", "sha256=%s owner=%s source=stored: no extraction", save->sha,
	        in->owner);
	return CM_OK;
}

/* Steps 2-4, under the file's lock. Steps 3-4 store while the text comes (saver.h): the
 * transaction commits after the file is written, so a file this call wrote is removed again
 * when it does not. */
static cm_err
store_new(pdf_worker *w, const pdf_upload_in *in, const char *sha, const char *name,
          int64_t mono_deadline, pdf_upload_out *out, char *why, size_t whylen)
{
	const char *dir = w->svc->cfg.data_dir;
	pdf_text    text;
	pdf_save    save = {in->owner, name, sha};
	pdf_saver  *sv = NULL;
	bool        blob = false, wrote = false, cached = false;
	cm_err      err;

	pdf_text_init(&text, PDF_MAX_TEXT);
	if ((err = pdf_store_blob_exists(w->pg, sha, &blob)) != CM_OK)
		goto out;
	if (blob) {
		err = store_known(w, in, &save, out, why, whylen);
		goto out;
	}
	if ((err = pdf_saver_start(w->store_pg, sha, (int64_t)in->len, in->deadline_ms, &sv)) !=
	    CM_OK)
		goto out;
	cached = from_cache(w, sha, &text);
	if (cached) {
		err = cached_to_saver(sv, &text);
	} else {
		err = extract(w, in, sha, mono_deadline - cm_mono_ms(), sv, &text, why, whylen);
		out->extracted = err == CM_OK;
	}
	if (err == CM_OK)
		err = pdf_saver_end(sv, text.text_length);
	if (err != CM_OK)
		goto out;
	/* While the storage thread writes the last batch. */
	if (!cached)
		to_cache(w, sha, &text);
	if (!pdf_files_exists(dir, sha, in->len)) {
		if ((err = pdf_files_write(dir, sha, in->data, in->len)) != CM_OK) {
			snprintf(why, whylen, "cannot store the file");
			goto out;
		}
		wrote = true;
	}
	err = pdf_saver_commit(sv, in->owner, name, out->id, &out->existing, &out->store_batches);
	sv = NULL;
	if (err == CM_OK)
		pdf_indexer_wake(w->svc->indexer); /* its chunks have no vectors yet */
	if (err == CM_OK && cached) {
		cm_counter_add(w->svc->skipped, 1);
		cm_info("PDF-DEDUP", "sha256=%s owner=%s source=cache: no extraction", sha,
		        in->owner);
	}
out:
	if (sv != NULL)
		pdf_saver_abort(sv, &out->store_batches);
	if (err != CM_OK && wrote && pdf_files_remove(dir, sha) != CM_OK)
		cm_warn("PDF-FILE-ORPHAN", "sha256=%s: file left without a blob", sha);
	pdf_text_fini(&text);
	return err;
}

cm_err
pdf_upload(pdf_worker *w, const pdf_upload_in *in, pdf_upload_out *out, char *why, size_t whylen)
{
	const pdf_config *cfg = &w->svc->cfg;
	char              name[PDF_MAX_FILENAME + 1];
	pdf_rows         *rows = NULL;
	pdf_doc_row       row;
	int64_t           left_ms, mono_deadline;
	bool              locked = false;
	cm_err            err = CM_OK;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (in->len == 0) {
		snprintf(why, whylen, "empty file");
		err = CM_EINVAL;
		goto out;
	}
	if (in->len > (size_t)cfg->max_upload) {
		snprintf(why, whylen, "file too large (%zu bytes, at most %" PRId64 ")", in->len,
		         cfg->max_upload);
		err = CM_ETOOBIG;
		goto out;
	}
	if (!pdf_looks_like_pdf(in->data, in->len)) {
		snprintf(why, whylen, "not a PDF");
		err = CM_EINVAL;
		goto out;
	}
	pdf_sha256_hex(in->data, in->len, out->sha256);
	pdf_filename_sanitize(in->filename, name, sizeof(name));

	/* 1. The owner uploaded these bytes before: that document, selected again. */
	if ((err = pdf_store_doc_by_sha(w->pg, in->owner, out->sha256, &rows)) != CM_OK)
		goto out;
	if (pdf_rows_count(rows) == 1) {
		pdf_rows_doc(rows, 0, &row);
		cm_strlcpy(out->id, row.id, sizeof(out->id));
		out->existing = true;
		if ((err = pdf_store_select_id(w->pg, in->owner, out->id)) != CM_OK)
			goto out;
		cm_counter_add(w->svc->skipped, 1);
		cm_info("PDF-DEDUP", "sha256=%s owner=%s source=owner: already uploaded",
		        out->sha256, in->owner);
		goto out;
	}

	/* 2-4 under the file's lock. */
	left_ms = in->deadline_ms > 0 ? in->deadline_ms - cm_now_ms()
	                              : cfg->extract_timeout_ms + PDF_STORE_MARGIN_MS;
	mono_deadline = cm_mono_ms() + left_ms;
	if ((err = pdf_store_lock(w->pg, out->sha256, mono_deadline)) != CM_OK) {
		if (err == CM_ETIMEDOUT)
			snprintf(why, whylen, "the same file is being processed; try again");
		goto out;
	}
	locked = true;
	err = store_new(w, in, out->sha256, name, mono_deadline, out, why, whylen);
out:
	if (locked)
		pdf_store_unlock(w->pg, out->sha256);
	pdf_rows_free(rows);
	if (err == CM_EUNAVAIL && why[0] == '\0')
		snprintf(why, whylen, "storage unavailable");
	return err;
}
