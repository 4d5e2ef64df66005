/*
 * handlers.h - one function per pdf.* RPC (proto/pdf.proto), typed request and response.
 *
 * Every handler acts for ctx->subject (the owner); an empty subject is CM_EAUTH. Another owner's
 * document is CM_ENOTFOUND, exactly like a missing one. ctx->worker_state is a pdf_worker
 * (server.h); without one the call is CM_EUNAVAIL. Responses are built in the call's arena.
 *
 *   pdf.Upload    UploadRequest   -> UploadResponse   (see upload.h; selects the document)
 *   pdf.UploadPart, pdf.UploadBody, pdf.UploadAbort: an HTTP upload body in pieces (body.c)
 *   pdf.List      ListRequest     -> ListResponse     newest first; keyset cursor or offset
 *   pdf.Get       GetRequest      -> Document
 *   pdf.GetPage   GetPageRequest  -> Page             1..pages, else CM_ENOTFOUND
 *   pdf.Delete    DeleteRequest   -> DeleteResponse   the file goes with its last reference
 *   pdf.Select    SelectRequest   -> SelectedResponse newest document with that filename
 *   pdf.Selected  SelectedRequest -> SelectedResponse CM_EPRECOND "No PDF selected"
 *   pdf.Chunks    ChunksRequest   -> ChunksResponse   chunks overlapping a page range
 *   pdf.Search    SearchRequest   -> ChunksResponse   full-text search with fallbacks (search.h)
 *   pdf.Deletions cm.DeletionsRequest -> cm.DeletionsResponse  the deletion log, for services
 *                 only (cm_rpc_require_service: no subject, role CM_ROLE_SERVICE; else CM_EPERM)
 */
#ifndef PDF_HANDLERS_H
#define PDF_HANDLERS_H

#include "cm/rpc.h"
#include "proto/pdf.pb-c.h"
#include "server.h"

/* begin() of every handler: the worker, or the call failed (no subject, no worker). */
CM_MUSTCHECK cm_err pdf_handler_begin(cm_rpc_ctx *ctx, pdf_worker **w);
/* pdf.Upload's work for data/len (also pdf.UploadBody's): the user's place in the gate, the
 * pipeline (upload.h), the document into rs. */
CM_MUSTCHECK cm_err pdf_upload_bytes(cm_rpc_ctx *ctx, pdf_worker *w, const char *filename,
                                     const uint8_t *data, size_t len, Pdf__UploadResponse *rs);
cm_err              pdf_handle_upload(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_list(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_get(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_get_page(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_delete(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_select(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_selected(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_chunks(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_search(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_deletions(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_upload_part(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_upload_body(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err              pdf_handle_upload_abort(cm_rpc_ctx *ctx, const void *req, void *resp);

#endif
