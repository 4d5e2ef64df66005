/*
 * body.c - the pdf.UploadPart / UploadBody / UploadAbort handlers and the PDF picked out of an
 * upload body (body.h, spool.h).
 *
 * DESIGN: a piece is written where it belongs and answered at once (a worker is held for a disk
 * write, not for the client's upload); the body's end assembles it in memory (spool + tail),
 * removes the spool whatever happens next, picks the file out and runs pdf.Upload's work on it
 * (pdf_upload_bytes: the user's place in the gate, the pipeline). Abandoned spools are swept
 * from here too, at most once a minute per replica, by whichever worker passes.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "cm/log.h"
#include "cm/multipart.h"
#include "cm/util.h"
#include "extract.h"
#include "handlers.h"
#include "proto/pdf.pb-c.h"
#include "server.h"
#include "spool.h"

#define SWEEP_EVERY_MS 60000

static bool
ends_in_pdf(const char *name, size_t len)
{
	return name != NULL && len >= 4 && strncasecmp(name + len - 4, ".pdf", 4) == 0;
}

int
pdf_body_pick(const uint8_t *body, size_t len, const char *content_type, bool require_pdf_name,
              pdf_body_file *out, char *detail, size_t detaillen)
{
	char       boundary[CM_MP_MAX_BOUNDARY + 1];
	cm_mp_part part;
	cm_err     err;

	memset(out, 0, sizeof(*out));
	detail[0] = '\0';
	if (len == 0)
		return PDF__UPLOAD_BODY_RESPONSE__VERDICT__EMPTY;
	if (content_type != NULL && strncasecmp(content_type, "multipart/form-data", 19) == 0) {
		if (!cm_multipart_boundary(content_type, boundary, sizeof(boundary))) {
			cm_strlcpy(detail, "multipart body without a valid boundary", detaillen);
			return PDF__UPLOAD_BODY_RESPONSE__VERDICT__MALFORMED;
		}
		err = cm_multipart_find(body, len, boundary, "file", &part, detail, detaillen);
		if (err == CM_ENOTFOUND)
			return PDF__UPLOAD_BODY_RESPONSE__VERDICT__NO_FILE_FIELD;
		if (err != CM_OK)
			return PDF__UPLOAD_BODY_RESPONSE__VERDICT__MALFORMED;
		if (require_pdf_name && !ends_in_pdf(part.filename, part.filename_len))
			return PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF_NAME;
		out->filename = part.filename;
		out->filename_len = part.filename_len;
		out->data = part.data;
		out->len = part.len;
	} else {
		out->data = body;
		out->len = len;
	}
	if (out->len > 0 && !pdf_looks_like_pdf(out->data, out->len)) {
		memset(out, 0, sizeof(*out));
		cm_strlcpy(detail, "not a PDF", detaillen);
		return PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF;
	}
	return PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED;
}

static void
sweep_maybe(pdf_service *s)
{
	int64_t now = cm_mono_ms(), last = atomic_load(&s->spool_swept_ms);

	if (now - last >= SWEEP_EVERY_MS &&
	    atomic_compare_exchange_strong(&s->spool_swept_ms, &last, now))
		(void)pdf_spool_sweep(s->cfg.data_dir, PDF_SPOOL_IDLE_S);
}

static int64_t
body_max(const pdf_worker *w)
{
	return w->svc->cfg.max_upload + PDF_BODY_SLACK;
}

cm_err
pdf_handle_upload_part(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__UploadPart *rq = req;
	pdf_worker            *w = NULL;
	const pdf_config      *cfg;
	cm_err                 err;

	(void)resp;
	if ((err = pdf_handler_begin(ctx, &w)) != CM_OK)
		return err;
	cfg = &w->svc->cfg;
	if (rq->offset == 0)
		sweep_maybe(w->svc);
	/* A new upload body: the user's share of the volume, and room left on it. */
	if (!pdf_spool_exists(cfg->data_dir, ctx->subject, rq->upload_id)) {
		if (cfg->user_max_spools > 0 &&
		    pdf_spool_count(cfg->data_dir, ctx->subject) >= cfg->user_max_spools) {
			ctx->retry_after_s = (int32_t)cfg->retry_after_s;
			return cm_rpc_fail(
			    ctx, CM_ELIMIT,
			    "too many uploads of yours are arriving at once; try again "
			    "when one has finished");
		}
		if (!pdf_spool_room(cfg->data_dir, cfg->spool_min_free_mb)) {
			cm_warn("PDF-SPOOL-FULL", "%s: under %lld MB free: upload refused",
			        cfg->data_dir, (long long)cfg->spool_min_free_mb);
			ctx->retry_after_s = (int32_t)cfg->retry_after_s;
			return cm_rpc_fail(ctx, CM_EUNAVAIL,
			                   "no room for uploads now; try again later");
		}
	}
	err = pdf_spool_write(cfg->data_dir, ctx->subject, rq->upload_id, rq->offset, rq->data.data,
	                      rq->data.len, body_max(w));
	switch (err) {
	case CM_OK:
		return CM_OK;
	case CM_EINVAL:
		return cm_rpc_fail(ctx, err, "invalid upload id");
	case CM_ETOOBIG:
		return cm_rpc_fail(ctx, err, "upload body too large (at most %lld bytes)",
		                   (long long)body_max(w));
	default:
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "cannot store the upload; try again");
	}
}

cm_err
pdf_handle_upload_abort(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__UploadAbortRequest *rq = req;
	pdf_worker                    *w = NULL;
	cm_err                         err;

	(void)resp;
	if ((err = pdf_handler_begin(ctx, &w)) != CM_OK)
		return err;
	pdf_spool_remove(w->svc->cfg.data_dir, ctx->subject, rq->upload_id);
	return CM_OK;
}

/* The whole body into *out (malloc'd when it came in pieces, else the tail itself). */
static cm_err
assemble(cm_rpc_ctx *ctx, pdf_worker *w, const Pdf__UploadBodyRequest *rq, uint8_t **owned,
         const uint8_t **out)
{
	const char *dir = w->svc->cfg.data_dir;
	size_t      spooled;
	cm_err      err;

	*owned = NULL;
	if (rq->size > (uint64_t)body_max(w))
		return cm_rpc_fail(ctx, CM_ETOOBIG, "file too large (at most %lld bytes)",
		                   (long long)w->svc->cfg.max_upload);
	if (rq->tail.len > rq->size)
		return cm_rpc_fail(ctx, CM_EINVAL, "body size below its tail");
	if (rq->upload_id[0] == '\0') {
		if (rq->tail.len != rq->size)
			return cm_rpc_fail(ctx, CM_EINVAL, "body size is not its tail's");
		*out = rq->tail.data;
		return CM_OK;
	}
	spooled = (size_t)(rq->size - rq->tail.len);
	if ((*owned = malloc(rq->size > 0 ? (size_t)rq->size : 1)) == NULL) {
		pdf_spool_remove(dir, ctx->subject, rq->upload_id);
		return cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
	}
	err = pdf_spool_read(dir, ctx->subject, rq->upload_id, *owned, spooled);
	pdf_spool_remove(dir, ctx->subject, rq->upload_id);
	if (err == CM_EINVAL)
		cm_warn("PDF-SPOOL-SHORT", "upload %s of %s: the spool is not %zu bytes",
		        rq->upload_id, ctx->subject, spooled);
	if (err != CM_OK)
		/* A piece lost between the edge and the volume: not the client's doing. */
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "the upload arrived incomplete; try again");
	if (rq->tail.len > 0)
		memcpy(*owned + spooled, rq->tail.data, rq->tail.len);
	*out = *owned;
	return CM_OK;
}

cm_err
pdf_handle_upload_body(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Pdf__UploadBodyRequest *rq = req;
	Pdf__UploadBodyResponse      *rs = resp;
	Pdf__UploadResponse          *up;
	pdf_worker                   *w = NULL;
	uint8_t                      *owned = NULL;
	const uint8_t                *body = NULL;
	pdf_body_file                 file;
	char                          detail[CM_MAX_ERRMSG];
	const char                   *name;
	cm_err                        err;

	if ((err = pdf_handler_begin(ctx, &w)) != CM_OK)
		return err;
	sweep_maybe(w->svc);
	if ((err = assemble(ctx, w, rq, &owned, &body)) != CM_OK)
		goto out;
	rs->verdict = pdf_body_pick(body, (size_t)rq->size, rq->content_type, rq->require_pdf_name,
	                            &file, detail, sizeof(detail));
	if (rs->verdict != PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED) {
		if ((rs->detail = cm_rpc_strdup(ctx, detail)) == NULL)
			err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	name = file.filename != NULL ? cm_rpc_strndup(ctx, file.filename, file.filename_len)
	                             : rq->filename;
	if (name == NULL || (up = cm_rpc_alloc(ctx, sizeof(*up))) == NULL) {
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	pdf__upload_response__init(up);
	rs->upload = up;
	err = pdf_upload_bytes(ctx, w, name, file.data, file.len, up);
out:
	free(owned);
	return err;
}
