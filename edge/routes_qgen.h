/*
 * routes_qgen.h - adapters of the question generation routes (routes_qgen.c).
 */
#ifndef EDGE_ROUTES_QGEN_H
#define EDGE_ROUTES_QGEN_H

#include "edge.h"

void edge_start_qset_create(edge_req *r);
void edge_reply_qset_create(edge_req *r, cm_rpc_result *res);
void edge_start_job(edge_req *r);
void edge_reply_job(edge_req *r, cm_rpc_result *res);
void edge_start_qset_get(edge_req *r);
void edge_reply_qset_get(edge_req *r, cm_rpc_result *res);
void edge_start_qset_export(edge_req *r);
void edge_reply_qset_export(edge_req *r, cm_rpc_result *res);
void edge_start_legacy_generate(edge_req *r);
void edge_reply_legacy_generate(edge_req *r, cm_rpc_result *res);

#endif
