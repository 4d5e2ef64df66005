/*
 * rpc_role.c - roles in the envelope (rpc.h): which calls come from a service acting as itself.
 *
 * The edge is the only writer of subject and roles for outside callers, and it never writes a
 * role (edge/call.c); services set CM_ROLE_SERVICE on their own calls. So "role service, no
 * subject" marks a service-to-service call, and a method that requires it is out of the edge's
 * reach even if a route named it by mistake.
 */
#include <string.h>

#include "cm/rpc.h"

bool
cm_rpc_has_role(const cm_rpc_ctx *ctx, const char *role)
{
	for (size_t i = 0; i < ctx->n_roles; i++)
		if (ctx->roles[i] != NULL && strcmp(ctx->roles[i], role) == 0)
			return true;
	return false;
}

cm_err
cm_rpc_require_service(cm_rpc_ctx *ctx)
{
	if (ctx->subject != NULL && ctx->subject[0] != '\0')
		return cm_rpc_fail(ctx, CM_EPERM, "only services may call %s", ctx->method);
	if (!cm_rpc_has_role(ctx, CM_ROLE_SERVICE))
		return cm_rpc_fail(ctx, CM_EPERM, "only services may call %s", ctx->method);
	return CM_OK;
}
