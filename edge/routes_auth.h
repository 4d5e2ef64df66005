/*
 * routes_auth.h - adapters for the auth routes: session cookies and the legacy shapes.
 */
#ifndef EDGE_ROUTES_AUTH_H
#define EDGE_ROUTES_AUTH_H

#include "edge.h"

void edge_reply_login_v1(edge_req *r, cm_rpc_result *res);
void edge_reply_login_legacy(edge_req *r, cm_rpc_result *res);
void edge_start_refresh_v1(edge_req *r);
void edge_reply_refresh_v1(edge_req *r, cm_rpc_result *res);
void edge_start_logout(edge_req *r);
void edge_reply_logout_v1(edge_req *r, cm_rpc_result *res);
void edge_reply_logout_legacy(edge_req *r, cm_rpc_result *res);
void edge_reply_verify_legacy(edge_req *r, cm_rpc_result *res);

#endif
