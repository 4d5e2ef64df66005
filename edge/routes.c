/*
 * routes.c - the declarative route table and path matching.
 *
 * A route is {method, pattern, flags, upstream, rpc method, request/response descriptors, success
 * status, start/reply adapters}. Adapters are NULL for the default JSON<->protobuf translation;
 * legacy routes and routes with cookies name small adapters (routes_auth.c). Patterns are
 * matched segment by segment; `{name}` captures one non-empty segment.
 */
#include <stdio.h>
#include <string.h>

#include "edge.h"
#include "proto/auth.pb-c.h"
#include "routes_auth.h"

#define AUTH_RPC(m) EDGE_UP_AUTH, "auth." m

static const edge_route routes[] = {
	/* v1 */
	{"POST", "/api/v1/auth/register", 0, AUTH_RPC("Register"), &auth__register_request__descriptor,
	    &auth__register_response__descriptor, 201, NULL, NULL, "v1_register"},
	{"POST", "/api/v1/auth/login", 0, AUTH_RPC("Login"), &auth__login_request__descriptor,
	    &auth__token_pair__descriptor, 200, NULL, edge_reply_login_v1, "v1_login"},
	{"POST", "/api/v1/auth/refresh", EDGE_R_AUTH_OPT, AUTH_RPC("Refresh"),
	    &auth__refresh_request__descriptor, &auth__token_pair__descriptor, 200,
	    edge_start_refresh_v1, edge_reply_refresh_v1, "v1_refresh"},
	{"POST", "/api/v1/auth/logout", EDGE_R_AUTH_OPT, AUTH_RPC("Logout"),
	    &auth__logout_request__descriptor, &auth__logout_response__descriptor, 204,
	    edge_start_logout, edge_reply_logout_v1, "v1_logout"},
	{"GET", "/api/v1/auth/me", EDGE_R_AUTH | EDGE_R_IDEMPOTENT, AUTH_RPC("Me"),
	    &auth__me_request__descriptor, &auth__user__descriptor, 200, NULL, NULL, "v1_me"},

	/* legacy */
	{"POST", "/api/auth/login", EDGE_R_LEGACY, AUTH_RPC("Login"), &auth__login_request__descriptor,
	    &auth__token_pair__descriptor, 200, NULL, edge_reply_login_legacy, "legacy_login"},
	{"POST", "/api/auth/logout", EDGE_R_LEGACY | EDGE_R_AUTH_OPT, AUTH_RPC("Logout"),
	    &auth__logout_request__descriptor, &auth__logout_response__descriptor, 200,
	    edge_start_logout, edge_reply_logout_legacy, "legacy_logout"},
	{"GET", "/api/auth/verify", EDGE_R_LEGACY | EDGE_R_AUTH | EDGE_R_IDEMPOTENT,
	    AUTH_RPC("Verify"), &auth__verify_request__descriptor, &auth__verify_response__descriptor,
	    200, NULL, edge_reply_verify_legacy, "legacy_verify"},
};

bool
edge_pattern_match(const char *pattern, const char *path, char params[][128], int *n)
{
	const char *p = pattern, *s = path;

	*n = 0;
	while (*p != '\0' && *s != '\0') {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			size_t      len  = strcspn(s, "/");
			if (pend == NULL || len == 0 || len >= 128 || *n >= EDGE_MAX_PARAMS)
				return false;
			memcpy(params[*n], s, len);
			params[*n][len] = '\0';
			(*n)++;
			p = pend + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

const edge_route *
edge_route_match(const char *method, const char *path, edge_req *r, bool *path_matched,
    char *allow, size_t allowlen)
{
	char params[EDGE_MAX_PARAMS][128];
	int  n;

	*path_matched = false;
	allow[0]      = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!edge_pattern_match(routes[i].pattern, path, params, &n))
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			if (r != NULL) {
				memcpy(r->params, params, sizeof(params));
				r->n_params = n;
			}
			return &routes[i];
		}
		*path_matched = true;
		if (strstr(allow, routes[i].method) == NULL) {
			size_t used = strlen(allow);
			snprintf(allow + used, allowlen - used, "%s%s", used > 0 ? ", " : "",
			    routes[i].method);
		}
	}
	return NULL;
}
