/*
 * routes_auth.c - auth route adapters.
 *
 * Logins set the HttpOnly session cookie (the frontend never sends Authorization and axios sends
 * no cross-origin cookies, so the legacy app lives on the cookie). The cookie carries the access
 * token and the refresh token, so a browser session outlives one access token: the edge renews
 * it through svc-auth (session.c). Logout revokes the session and clears the cookie; the legacy
 * logout never fails. The legacy shapes are the contract's: {"access_token","token_type":
 * "bearer","message"} and {"valid":true,"message"}.
 */
#include <string.h>

#include "cm/log.h"
#include "edge.h"
#include "pbjson.h"
#include "proto/auth.pb-c.h"
#include "proto/common.pb-c.h"
#include "routes_auth.h"

static Auth__TokenPair *
unpack_pair(edge_req *r, cm_rpc_result *res)
{
	return (Auth__TokenPair *)edge_reply_unpack(r, res, &auth__token_pair__descriptor);
}

void
edge_reply_login_v1(edge_req *r, cm_rpc_result *res)
{
	Auth__TokenPair *tp = unpack_pair(r, res);

	if (tp == NULL)
		return;
	edge_session_set_cookie(r, tp->access_token, tp->refresh_token, tp->refresh_expires_in);
	edge_set_json(r, 200, edge_pb_to_json(&tp->base));
	auth__token_pair__free_unpacked(tp, NULL);
	edge_respond(r);
}

void
edge_reply_login_legacy(edge_req *r, cm_rpc_result *res)
{
	Auth__TokenPair *tp;

	if (res->status == CM__STATUS__UNAUTHENTICATED ||
	    res->status == CM__STATUS__INVALID_ARGUMENT) {
		/* One answer for every bad login, as the old frontend expects. */
		edge_fail_http(r, 401, "UNAUTHENTICATED", "Invalid credentials");
		return;
	}
	if ((tp = unpack_pair(r, res)) == NULL)
		return;
	edge_session_set_cookie(r, tp->access_token, tp->refresh_token, tp->refresh_expires_in);
	edge_set_json(r, 200,
	              json_pack("{s:s, s:s, s:s}", "access_token", tp->access_token, "token_type",
	                        "bearer", "message", "Login successful"));
	auth__token_pair__free_unpacked(tp, NULL);
	edge_respond(r);
}

void
edge_start_refresh_v1(edge_req *r)
{
	Auth__RefreshRequest rq = AUTH__REFRESH_REQUEST__INIT;
	json_t              *body;
	const char          *tok = NULL;

	if ((body = edge_body_json(r)) == NULL)
		return;
	if (json_is_string(json_object_get(body, "refresh_token")))
		tok = json_string_value(json_object_get(body, "refresh_token"));
	else if (json_object_get(body, "refresh_token") != NULL) {
		json_decref(body);
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT,
		          "field 'refresh_token' has the wrong type");
		return;
	}
	if (tok == NULL || tok[0] == '\0') {
		edge_session_read(r);
		tok = r->cookie_refresh;
	}
	if (tok == NULL || tok[0] == '\0') {
		json_decref(body);
		edge_fail(r, CM__STATUS__UNAUTHENTICATED, "refresh_token is required");
		return;
	}
	rq.refresh_token = cm_arena_strndup(&r->arena, tok, strlen(tok));
	json_decref(body);
	if (rq.refresh_token == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	edge_call(r, &rq.base);
}

void
edge_reply_refresh_v1(edge_req *r, cm_rpc_result *res)
{
	Auth__TokenPair *tp = unpack_pair(r, res);

	if (tp == NULL)
		return;
	/* A browser that logged in with the cookie keeps it current. */
	if (r->cookie_refresh != NULL)
		edge_session_set_cookie(r, tp->access_token, tp->refresh_token,
		                        tp->refresh_expires_in);
	edge_set_json(r, 200, edge_pb_to_json(&tp->base));
	auth__token_pair__free_unpacked(tp, NULL);
	edge_respond(r);
}

void
edge_start_logout(edge_req *r)
{
	Auth__LogoutRequest rq = AUTH__LOGOUT_REQUEST__INIT;
	json_t             *body = NULL;
	const char         *tok = NULL;

	if (!r->legacy) {
		if ((body = edge_body_json(r)) == NULL)
			return;
		if (json_is_string(json_object_get(body, "refresh_token")))
			tok = json_string_value(json_object_get(body, "refresh_token"));
	}
	if (tok == NULL || tok[0] == '\0')
		tok = r->cookie_refresh;
	if (tok != NULL)
		rq.refresh_token = cm_arena_strndup(&r->arena, tok, strlen(tok));
	json_decref(body);
	edge_session_set_cookie(r, NULL, NULL, 0);
	edge_call(r, &rq.base);
}

void
edge_reply_logout_v1(edge_req *r, cm_rpc_result *res)
{
	if (res->status != CM__STATUS__OK) {
		edge_fail(r, res->status, res->message);
		return;
	}
	r->status = 204;
	edge_respond(r);
}

void
edge_reply_logout_legacy(edge_req *r, cm_rpc_result *res)
{
	if (res->status != CM__STATUS__OK)
		cm_warn("EDGE-LOGOUT-FAIL", "session not revoked: %s", res->message);
	edge_set_json(r, 200, json_pack("{s:s}", "message", "Logout successful"));
	edge_respond(r);
}

void
edge_reply_verify_legacy(edge_req *r, cm_rpc_result *res)
{
	if (res->status != CM__STATUS__OK) {
		edge_fail(r, res->status,
		          res->status == CM__STATUS__UNAUTHENTICATED ? "Not authenticated"
		                                                     : res->message);
		return;
	}
	edge_set_json(r, 200, json_pack("{s:b, s:s}", "valid", 1, "message", "Session is valid"));
	edge_respond(r);
}
