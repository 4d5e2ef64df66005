/*
 * routes_pdf.c - document routes: uploads (raw application/pdf or multipart field `file`),
 * listing with v1 cursors or legacy offsets, pages, deletion, and the legacy "selected PDF".
 *
 * An upload's body reaches svc-pdf as pdf.UploadBody: its tail (the whole body when it was
 * collected, the rest after the pieces streamed before, upload.h). svc-pdf picks the file out
 * (multipart field `file` or the raw body) and does everything else: hashing, storing,
 * extraction; its verdict on a body without an acceptable PDF is worded here, per route. The
 * Content-Type is judged here too, at the headers, before any of the body comes. The legacy shapes
 * are the contract's METADATA / list item objects, built here from pdf.Document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/util.h"
#include "cm/multipart.h"
#include "pbjson.h"
#include "proto/common.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "routes_pdf.h"

bool
edge_upload_type_ok(edge_req *r)
{
	const char *ct = edge_header(r, "Content-Type");
	char        boundary[CM_MP_MAX_BOUNDARY + 1];

	if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		if (cm_multipart_boundary(ct, boundary, sizeof(boundary)))
			return true;
		edge_fail_http(r, 400, "INVALID_ARGUMENT",
		               "multipart body without a valid boundary");
		return false;
	}
	if (ct == NULL || strncasecmp(ct, "application/pdf", 15) == 0 ||
	    strncasecmp(ct, "application/octet-stream", 24) == 0) {
		if (!r->legacy)
			return true;
		edge_fail_http(r, 400, "INVALID_ARGUMENT", "Only PDF files are allowed");
		return false;
	}
	edge_fail_http(r, r->legacy ? 400 : 415, "INVALID_ARGUMENT",
	               r->legacy ? "Only PDF files are allowed"
	                         : "send application/pdf or multipart/form-data with field 'file'");
	return false;
}

void
edge_start_upload(edge_req *r)
{
	Pdf__UploadBodyRequest rq = PDF__UPLOAD_BODY_REQUEST__INIT;
	const char            *ct = edge_header(r, "Content-Type");
	char                   name[256];

	rq.size = r->upload_sent + r->body.len;
	if (rq.size == 0) {
		edge_fail_http(r, r->legacy ? 422 : 400, "INVALID_ARGUMENT",
		               r->legacy ? "field 'file' is required" : "empty upload");
		return;
	}
	/* The Content-Type was judged at the headers (server.c). */
	rq.upload_id = r->upload_id;
	rq.tail.data = (uint8_t *)r->body.data;
	rq.tail.len = r->body.len;
	rq.content_type = (char *)(ct != NULL ? ct : "");
	rq.filename = (char *)"";
	if (edge_query_param(r, "filename", name, sizeof(name)) != NULL &&
	    (rq.filename = cm_arena_strndup(&r->arena, name, strlen(name))) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	rq.require_pdf_name = r->legacy;
	r->upload_ended = true; /* from here svc-pdf removes the spool, whatever happens */
	edge_call(r, &rq.base);
}

/* The legacy METADATA object. */
static json_t *
legacy_metadata(const Pdf__Document *d)
{
	const Pdf__Metadata *m = d->metadata;
	const char          *unk = "Unknown";

#define OR_UNKNOWN(x) ((m != NULL && (x) != NULL && (x)[0] != '\0') ? (x) : unk)
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I}", "title",
	                 OR_UNKNOWN(m != NULL ? m->title : NULL), "author",
	                 OR_UNKNOWN(m != NULL ? m->author : NULL), "subject",
	                 OR_UNKNOWN(m != NULL ? m->subject : NULL), "creator",
	                 OR_UNKNOWN(m != NULL ? m->creator : NULL), "producer",
	                 OR_UNKNOWN(m != NULL ? m->producer : NULL), "creation_date",
	                 OR_UNKNOWN(m != NULL ? m->creation_date : NULL), "modification_date",
	                 OR_UNKNOWN(m != NULL ? m->modification_date : NULL), "pages",
	                 (int)d->pages, "file_size", (json_int_t)d->size_bytes);
#undef OR_UNKNOWN
}

/* The v1 DOCUMENT object (the contract's fields; metadata is an addition). */
static json_t *
v1_document(const Pdf__Document *d)
{
	return edge_pb_to_json(&d->base);
}

/* The upload's result, or NULL after answering the error or the verdict on the body. */
static Pdf__UploadBodyResponse *
unpack_upload(edge_req *r, cm_rpc_result *res)
{
	Pdf__UploadBodyResponse *u;
	const char              *detail;

	if ((u = (Pdf__UploadBodyResponse *)edge_reply_unpack(
	         r, res, &pdf__upload_body_response__descriptor)) == NULL)
		return NULL;
	detail = u->detail != NULL && u->detail[0] != '\0' ? u->detail : "malformed upload";
	switch (u->verdict) {
	case PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED:
		if (u->upload != NULL && u->upload->document != NULL)
			return u;
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
		break;
	case PDF__UPLOAD_BODY_RESPONSE__VERDICT__EMPTY:
		edge_fail_http(r, r->legacy ? 422 : 400, "INVALID_ARGUMENT",
		               r->legacy ? "field 'file' is required" : "empty upload");
		break;
	case PDF__UPLOAD_BODY_RESPONSE__VERDICT__NO_FILE_FIELD:
		edge_fail_http(r, 422, "INVALID_ARGUMENT", "field 'file' is required");
		break;
	case PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF_NAME:
		edge_fail_http(r, 400, "INVALID_ARGUMENT", "Only PDF files are allowed");
		break;
	case PDF__UPLOAD_BODY_RESPONSE__VERDICT__NOT_PDF:
		/* v1 answers bytes that are not a PDF as a media type (415); the legacy route
		 * as svc-pdf's refusal of them (400). */
		if (r->legacy)
			edge_fail(r, CM__STATUS__INVALID_ARGUMENT, "not a PDF");
		else
			edge_fail_http(r, 415, "INVALID_ARGUMENT", "not a PDF");
		break;
	default: /* MALFORMED, and any verdict newer than this edge */
		edge_fail_http(r, 400, "INVALID_ARGUMENT", detail);
		break;
	}
	pdf__upload_body_response__free_unpacked(u, NULL);
	return NULL;
}

void
edge_reply_upload_v1(edge_req *r, cm_rpc_result *res)
{
	Pdf__UploadBodyResponse *b;
	Pdf__UploadResponse     *u;

	if ((b = unpack_upload(r, res)) == NULL)
		return;
	u = b->upload;
	edge_set_json(r, u->existing ? 200 : 201, v1_document(u->document));
	pdf__upload_body_response__free_unpacked(b, NULL);
	edge_respond(r);
}

void
edge_reply_upload_legacy(edge_req *r, cm_rpc_result *res)
{
	Pdf__UploadBodyResponse *b;
	Pdf__UploadResponse     *u;

	if ((b = unpack_upload(r, res)) == NULL)
		return;
	u = b->upload;
	edge_set_json(r, 200,
	              json_pack("{s:s, s:s, s:o, s:I}", "message",
	                        u->existing ? "PDF already uploaded; selected it"
	                                    : "PDF uploaded and processed",
	                        "filename", u->document->filename, "metadata",
	                        legacy_metadata(u->document), "text_length",
	                        (json_int_t)u->document->text_length));
	pdf__upload_body_response__free_unpacked(b, NULL);
	edge_respond(r);
}

static bool
query_int(edge_req *r, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	char buf[32];

	*out = def;
	if (edge_query_param(r, name, buf, sizeof(buf)) == NULL)
		return true;
	return cm_parse_i64(buf, out) && *out >= min && *out <= max;
}

void
edge_start_doc_list(edge_req *r)
{
	Pdf__ListRequest rq = PDF__LIST_REQUEST__INIT;
	int64_t          limit, offset;
	char             buf[512];

	if (!query_int(r, "limit", 20, 1, 100, &limit) ||
	    !query_int(r, "offset", 0, 0, INT32_MAX, &offset)) {
		edge_fail_http(r, r->legacy ? 422 : 400, "INVALID_ARGUMENT",
		               "limit must be 1..100 and offset >= 0");
		return;
	}
	rq.limit = (int32_t)limit;
	rq.offset = (int32_t)offset;
	rq.cursor = (char *)"";
	rq.search = (char *)"";
	if (!r->legacy && edge_query_param(r, "cursor", buf, sizeof(buf)) != NULL)
		rq.cursor = cm_arena_strndup(&r->arena, buf, strlen(buf));
	if (edge_query_param(r, "search", buf, sizeof(buf)) != NULL)
		rq.search = cm_arena_strndup(&r->arena, buf, strlen(buf));
	if (rq.cursor == NULL || rq.search == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	edge_call(r, &rq.base);
}

void
edge_reply_doc_list_v1(edge_req *r, cm_rpc_result *res)
{
	Pdf__ListResponse *l;
	json_t            *items;

	if ((l = (Pdf__ListResponse *)edge_reply_unpack(r, res, &pdf__list_response__descriptor)) ==
	    NULL)
		return;
	items = json_array();
	for (size_t i = 0; i < l->n_items; i++)
		json_array_append_new(items, v1_document(l->items[i]));
	edge_set_json(
	    r, 200,
	    json_pack("{s:o, s:o}", "items", items, "next_cursor",
	              l->next_cursor[0] != '\0' ? json_string(l->next_cursor) : json_null()));
	pdf__list_response__free_unpacked(l, NULL);
	edge_respond(r);
}

void
edge_reply_doc_list_legacy(edge_req *r, cm_rpc_result *res)
{
	Pdf__ListResponse *l;
	json_t            *items;
	int64_t            limit, offset;

	if ((l = (Pdf__ListResponse *)edge_reply_unpack(r, res, &pdf__list_response__descriptor)) ==
	    NULL)
		return;
	(void)query_int(r, "limit", 20, 1, 100, &limit);
	(void)query_int(r, "offset", 0, 0, INT32_MAX, &offset);
	items = json_array();
	for (size_t i = 0; i < l->n_items; i++) {
		const Pdf__Document *d = l->items[i];
		json_array_append_new(
		    items,
		    json_pack("{s:s, s:s, s:s, s:i, s:I, s:s}", "filename", d->filename, "title",
		              d->title[0] != '\0' ? d->title : "Unknown", "author",
		              d->author[0] != '\0' ? d->author : "Unknown", "pages", (int)d->pages,
		              "file_size", (json_int_t)d->size_bytes, "file_path", d->filename));
	}
	edge_set_json(r, 200,
	              json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
	                        (json_int_t)l->total, "offset", (json_int_t)offset, "limit",
	                        (json_int_t)limit));
	pdf__list_response__free_unpacked(l, NULL);
	edge_respond(r);
}

void
edge_start_doc_id(edge_req *r)
{
	Pdf__GetRequest rq = PDF__GET_REQUEST__INIT; /* same shape as DeleteRequest */

	if (!cm_uuid_valid(r->params[0])) {
		edge_fail(r, CM__STATUS__NOT_FOUND, "no such document");
		return;
	}
	rq.id = r->params[0];
	if (r->route->req_desc == &pdf__delete_request__descriptor) {
		Pdf__DeleteRequest d = PDF__DELETE_REQUEST__INIT;
		d.id = r->params[0];
		edge_call(r, &d.base);
		return;
	}
	edge_call(r, &rq.base);
}

void
edge_reply_document_v1(edge_req *r, cm_rpc_result *res)
{
	Pdf__Document *d;

	if ((d = (Pdf__Document *)edge_reply_unpack(r, res, &pdf__document__descriptor)) == NULL)
		return;
	edge_set_json(r, 200, v1_document(d));
	pdf__document__free_unpacked(d, NULL);
	edge_respond(r);
}

void
edge_start_doc_page(edge_req *r)
{
	Pdf__GetPageRequest rq = PDF__GET_PAGE_REQUEST__INIT;
	int64_t             n;

	if (!cm_uuid_valid(r->params[0]) || !cm_parse_i64(r->params[1], &n) || n < 1 ||
	    n > INT32_MAX) {
		edge_fail(r, CM__STATUS__NOT_FOUND, "no such page");
		return;
	}
	rq.id = r->params[0];
	rq.page = (int32_t)n;
	edge_call(r, &rq.base);
}

static Pdf__SelectedResponse *unpack_selected(edge_req *r, cm_rpc_result *res);

/* {"message","filename","metadata","text_length"} for select. */
void
edge_reply_select_legacy(edge_req *r, cm_rpc_result *res)
{
	Pdf__SelectedResponse *s;

	if (res->status == CM__STATUS__NOT_FOUND) {
		edge_fail(r, res->status, "PDF file not found");
		return;
	}
	if ((s = unpack_selected(r, res)) == NULL)
		return;
	edge_set_json(r, 200,
	              json_pack("{s:s, s:s, s:o, s:I}", "message", "PDF selected", "filename",
	                        s->document->filename, "metadata", legacy_metadata(s->document),
	                        "text_length", (json_int_t)s->document->text_length));
	pdf__selected_response__free_unpacked(s, NULL);
	edge_respond(r);
}

static Pdf__SelectedResponse *
unpack_selected(edge_req *r, cm_rpc_result *res)
{
	Pdf__SelectedResponse *s;

	if ((s = (Pdf__SelectedResponse *)edge_reply_unpack(
	         r, res, &pdf__selected_response__descriptor)) == NULL)
		return NULL;
	if (s->document == NULL) {
		pdf__selected_response__free_unpacked(s, NULL);
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
		return NULL;
	}
	return s;
}

void
edge_reply_info_legacy(edge_req *r, cm_rpc_result *res)
{
	Pdf__SelectedResponse *s = unpack_selected(r, res);

	if (s == NULL)
		return;
	edge_set_json(r, 200,
	              json_pack("{s:s, s:s, s:I, s:o}", "filename", s->document->filename,
	                        "selected_at", s->selected_at, "text_length",
	                        (json_int_t)s->document->text_length, "metadata",
	                        legacy_metadata(s->document)));
	pdf__selected_response__free_unpacked(s, NULL);
	edge_respond(r);
}

void
edge_reply_metadata_legacy(edge_req *r, cm_rpc_result *res)
{
	Pdf__SelectedResponse *s = unpack_selected(r, res);

	if (s == NULL)
		return;
	edge_set_json(r, 200, legacy_metadata(s->document));
	pdf__selected_response__free_unpacked(s, NULL);
	edge_respond(r);
}
