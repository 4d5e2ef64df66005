/*
 * upload.c - upload bodies streamed to svc-pdf in pieces (see upload.h).
 *
 * DESIGN: one piece in flight per upload, the connection suspended meanwhile: the simplest flow
 * control there is (libmicrohttpd stops reading a suspended connection) and the order of the
 * pieces needs no bookkeeping. The piece's call completes on an nng thread; it only counts the
 * bytes and resumes the connection (server.c, edge_body_resume), or answers the error, which
 * resumes it too; the loop thread then goes on reading the body, or after an answer drops the
 * rest of it (drain_body): libmicrohttpd 0.9.75 can send an answer only at the headers or once
 * the body is all in, so a piece that fails is answered when the client has sent its body
 * (bounded by EDGE_UPLOAD_MAX, and the connection stays usable).
 */
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "migrate.h"
#include "proto/common.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "routes_pdf.h"
#include "upload.h"

bool
edge_upload_streams(const edge_req *r)
{
	return (r->route->flags & EDGE_R_UPLOAD) != 0 && r->authed && !r->renew &&
	       edge_migrate_decide(r->e->migrate, r->route, r->claims.sub, r->client_addr) ==
	           EDGE_MIGRATE_NONE;
}

bool
edge_upload_renews_at_head(const edge_req *r)
{
	/* Before the renewal the user is unknown: only a route that takes no part in a migration
	 * is decided (NONE whoever the caller turns out to be). */
	return (r->route->flags & EDGE_R_UPLOAD) != 0 && r->renew &&
	       edge_migrate_decide(r->e->migrate, r->route, NULL, r->client_addr) ==
	           EDGE_MIGRATE_NONE;
}

static void
piece_done(void *arg, cm_rpc_result *res)
{
	edge_req *r = arg;

	if (res->status != CM__STATUS__OK) {
		r->drain_body = true;
		edge_fail_call(r, "pdf.UploadPart", res);
		return;
	}
	r->upload_sent += r->upload_piece_len;
	cm_counter_add(cm_metrics_counter(r->e->metrics, "upload_pieces_total",
	                                  "Pieces of upload bodies streamed to svc-pdf", NULL),
	               1);
	edge_body_resume(r);
}

/* A piece that could not even leave is answered as a failed call. */
static void
fail_unsent(edge_req *r, int status, const char *message)
{
	cm_rpc_result res;

	cm_rpc_result_set(&res, status, message);
	r->drain_body = true;
	edge_fail_call(r, "pdf.UploadPart", &res);
}

void
edge_upload_send_piece(edge_req *r)
{
	Pdf__UploadPart  rq = PDF__UPLOAD_PART__INIT;
	cm_rpc_client   *pdf = r->e->up[EDGE_UP_PDF];
	cm_rpc_call_opts o;
	uint8_t          id[PDF_UPLOAD_ID_BYTES];
	uint8_t         *buf;
	size_t           n;
	cm_err           err;

	if (r->upload_id[0] == '\0') {
		cm_random_bytes(id, sizeof(id));
		cm_hex(id, sizeof(id), r->upload_id);
	}
	if (pdf == NULL) {
		fail_unsent(r, CM__STATUS__UNAVAILABLE, "this service is not configured");
		return;
	}
	rq.upload_id = r->upload_id;
	rq.offset = r->upload_sent;
	rq.data.data = (uint8_t *)r->body.data;
	rq.data.len = EDGE_UPLOAD_PIECE; /* exactly: the number of pieces is the body's business */
	n = pdf__upload_part__get_packed_size(&rq);
	if ((buf = malloc(n)) == NULL) {
		fail_unsent(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	pdf__upload_part__pack(&rq, buf);
	/* The piece is in the call's message now; what came past it waits for the next one. */
	r->upload_piece_len = EDGE_UPLOAD_PIECE;
	r->body.len -= EDGE_UPLOAD_PIECE;
	memmove(r->body.data, r->body.data + EDGE_UPLOAD_PIECE, r->body.len);
	edge_req_opts(r, "pdf.UploadPart", true, &o);
	r->upstream_name = edge_upstream_name(EDGE_UP_PDF);
	err = cm_rpc_call_async(pdf, &o, buf, n, piece_done, r);
	free(buf); /* the call holds its own copy */
	if (err != CM_OK)
		fail_unsent(
		    r,
		    err == CM_ETIMEDOUT ? CM__STATUS__DEADLINE_EXCEEDED : CM__STATUS__UNAVAILABLE,
		    err == CM_ETIMEDOUT ? "deadline exceeded" : "service temporarily unavailable");
}

static void
abort_done(void *arg, cm_rpc_result *res)
{
	(void)arg;
	if (res->status != CM__STATUS__OK)
		cm_debug("EDGE-UPLOAD-ABORT", "pdf.UploadAbort: %s (svc-pdf sweeps it later)",
		         res->message);
}

void
edge_upload_abandon(edge_req *r)
{
	Pdf__UploadAbortRequest rq = PDF__UPLOAD_ABORT_REQUEST__INIT;
	cm_rpc_client          *pdf = r->e->up[EDGE_UP_PDF];
	cm_rpc_call_opts        o;
	uint8_t                 buf[64];
	size_t                  n;

	if (r->upload_id[0] == '\0' || r->upload_ended || pdf == NULL)
		return;
	rq.upload_id = r->upload_id;
	n = pdf__upload_abort_request__pack(&rq, buf);
	edge_req_opts(r, "pdf.UploadAbort", true, &o);
	if (cm_rpc_call_async(pdf, &o, buf, n, abort_done, NULL) != CM_OK)
		cm_debug("EDGE-UPLOAD-ABORT", "no svc-pdf replica: the spool is swept later");
}
