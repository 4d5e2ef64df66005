/*
 * upload.h - upload bodies streamed to svc-pdf as they arrive, never held whole by the edge.
 *
 * An upload route's body (EDGE_R_UPLOAD) whose caller is known at the headers (a verified access
 * token, or a browser's cookie renewed there before the body comes) and that the old backend
 * cannot take (migrate.h: it needs the body whole) is streamed: each time EDGE_UPLOAD_PIECE bytes
 * have come, they leave as one pdf.UploadPart of exactly that size (written at its offset into a
 * spool on svc-pdf's shared volume, so any replica may take it, and a retried piece writes the same
 * bytes again) while the connection is suspended, so the client is read no faster than svc-pdf
 * stores (TCP does the rest); the body's end goes with the route's pdf.UploadBody as its tail. The
 * body budget (EDGE_BODY_BUDGET) is charged at most one piece per upload. A streamed request that
 * ends without its UploadBody (the client left, an error was answered) sends pdf.UploadAbort so the
 * spool goes at once; svc-pdf also sweeps spools left idle.
 *
 * Other upload bodies are collected whole as before (still under the budget) and sent as
 * UploadBody's tail alone.
 */
#ifndef EDGE_UPLOAD_H
#define EDGE_UPLOAD_H

#include <stdbool.h>

#include "edge.h"

#define EDGE_UPLOAD_PIECE (1024 * 1024) /* bytes per pdf.UploadPart */
#define PDF_UPLOAD_ID_BYTES 16          /* random; 32 hex digits in pdf.UploadPart */

/* At the headers, once the caller is known: true when r's body is to be streamed. */
bool edge_upload_streams(const edge_req *r);
/* At the headers: true when r is an upload whose cookie must be renewed first (an expired access
 * token) and that the old backend cannot take: server.c renews it before the body comes, so the
 * body is streamed as for a caller known at once. */
bool edge_upload_renews_at_head(const edge_req *r);

/* With r's connection suspended and r->body holding at least a piece: sends its first
 * EDGE_UPLOAD_PIECE bytes (the rest moves to the front) and resumes the connection when svc-pdf
 * has them, or answers the error (consuming r). */
void edge_upload_send_piece(edge_req *r);

/* As r is freed: a streamed body that never got its UploadBody is abandoned (pdf.UploadAbort). */
void edge_upload_abandon(edge_req *r);

#endif
