/*
 * routes_pdf.h - adapters for the document routes (v1 /documents, legacy /api/pdf/...).
 */
#ifndef EDGE_ROUTES_PDF_H
#define EDGE_ROUTES_PDF_H

#include "edge.h"

/* The upload's Content-Type: multipart/form-data with a valid boundary, or (v1 only) a raw PDF
 * body. False after answering 400/415 (r consumed). */
bool edge_upload_type_ok(edge_req *r);
void edge_start_upload(edge_req *r);
void edge_reply_upload_v1(edge_req *r, cm_rpc_result *res);
void edge_reply_upload_legacy(edge_req *r, cm_rpc_result *res);
void edge_start_doc_list(edge_req *r);
void edge_reply_doc_list_v1(edge_req *r, cm_rpc_result *res);
void edge_reply_doc_list_legacy(edge_req *r, cm_rpc_result *res);
void edge_start_doc_id(edge_req *r);
void edge_reply_document_v1(edge_req *r, cm_rpc_result *res);
void edge_start_doc_page(edge_req *r);
void edge_reply_select_legacy(edge_req *r, cm_rpc_result *res);
void edge_reply_info_legacy(edge_req *r, cm_rpc_result *res);
void edge_reply_metadata_legacy(edge_req *r, cm_rpc_result *res);

#endif
