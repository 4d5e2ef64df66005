/*
 * handlers.h - svc-qgen's RPC handlers (handlers.c); ctx->worker_state is a
 * qgen_worker.
 */
#ifndef QGEN_HANDLERS_H
#define QGEN_HANDLERS_H

#include "cm/rpc.h"

cm_err qgen_handle_create(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err qgen_handle_get_job(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err qgen_handle_cancel_job(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err qgen_handle_get_set(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err qgen_handle_export(cm_rpc_ctx *ctx, const void *req, void *resp); /* handlers_export.c */

#endif
