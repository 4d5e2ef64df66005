/*
 * handlers.h - one function per RPC of svc-auth. Typed requests and responses; no nng, no SQL
 * (that is store.c). Each returns CM_OK or an error set with cm_rpc_fail.
 */
#ifndef AUTH_HANDLERS_H
#define AUTH_HANDLERS_H

#include "cm/rpc.h"

cm_err auth_h_register(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err auth_h_login(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err auth_h_refresh(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err auth_h_logout(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err auth_h_me(cm_rpc_ctx *ctx, const void *req, void *resp);
cm_err auth_h_verify(cm_rpc_ctx *ctx, const void *req, void *resp);

/* The prefetch of auth.Me and auth.Verify (cm/rpc.h): the users of a batch's sessions in one
 * query, found by current_user instead of a query each. */
void auth_prefetch_sessions(void *worker_state, const cm_rpc_ctx *calls, size_t n);

/* Exposed for tests: e-mail syntax as accepted at registration. */
bool auth_email_valid(const char *email);

#endif
