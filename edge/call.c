/*
 * call.c - the options of every upstream call the edge makes (edge.h: edge_rpc_opts).
 *
 * DESIGN. One place decides what an edge call carries: the deadline (EDGE_RPC_TIMEOUT_MS from
 * now), the caller as the token named it, the client address for throttling, and never a role.
 * Services trust the envelope's subject and roles because only the edge faces the outside; a
 * call from the edge must therefore never look like a service acting as itself
 * (CM_ROLE_SERVICE, which internal methods such as pdf.Deletions require).
 */
#include "cm/util.h"
#include "edge.h"

void
edge_rpc_opts(const edge *e, const char *method, const char *request_id, const char *subject,
              const char *session_id, const char *client_addr, bool idempotent, cm_rpc_call_opts *o)
{
	*o = (cm_rpc_call_opts){0};
	o->method = method;
	o->request_id = request_id;
	o->deadline_ms = cm_now_ms() + e->cfg.rpc_timeout_ms;
	o->subject = subject != NULL ? subject : "";
	o->session_id = session_id != NULL ? session_id : "";
	o->client_addr = client_addr != NULL ? client_addr : "";
	o->idempotent = idempotent;
}

void
edge_req_opts(const edge_req *r, const char *method, bool idempotent, cm_rpc_call_opts *o)
{
	edge_rpc_opts(r->e, method, r->request_id, r->authed ? r->claims.sub : NULL,
	              r->authed ? r->claims.sid : NULL, r->client_addr, idempotent, o);
}
