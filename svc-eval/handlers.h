/*
 * handlers.h - svc-eval's RPC methods (proto/eval.proto). Each acts for ctx->subject; another
 * user's attempt or job is NOT_FOUND.
 */
#ifndef EVAL_HANDLERS_H
#define EVAL_HANDLERS_H

#include "cm/rpc.h"
#include "proto/eval.pb-c.h"
#include "store.h"

cm_err eval_handle_submit(cm_rpc_ctx *ctx, const void *req, void *resp);      /* submit.c */
cm_err eval_handle_get_attempt(cm_rpc_ctx *ctx, const void *req, void *resp); /* handlers.c */
cm_err eval_handle_get_job(cm_rpc_ctx *ctx, const void *req, void *resp);     /* handlers.c */

/* Fills an Attempt response (already initialised) from a stored attempt with its results,
 * strings copied into the call's arena. A queued or running attempt whose job has ended
 * without it (failed for good, or cancelled) is answered as failed with the job's reason. */
CM_MUSTCHECK cm_err eval_fill_attempt(cm_rpc_ctx *ctx, const eval_attempt_row *a,
                                      Eval__Attempt *out);

#endif
