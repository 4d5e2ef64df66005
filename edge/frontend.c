/*
 * frontend.c - every path outside the API goes to the web app's own server (frontend.h).
 */
#include "frontend.h"
#include "httpproxy.h"

void
edge_frontend_proxy(edge_req *r)
{
	if (r->e->frontend_up == NULL) {
		edge_fail_http(r, 404, "NOT_FOUND", "no such route");
		return;
	}
	edge_httpup_forward(r, r->e->frontend_up);
}
