/*
 * handlers_export.c - qgen.Export: the caller's finished set as a GIFT, QTI or CSV file.
 *
 * DESIGN. The file is rendered here, next to the questions, so the edge only relays bytes, a
 * content type and a file name (it used to fetch the set with its answers and format it itself).
 * Checks run in the order the HTTP route always answered them: a malformed id is an unknown set
 * (404), then the format (400), then ownership (404) and readiness (422). The set is read with
 * its answers straight from the store; nothing of it leaves the service but the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/util.h"
#include "export.h"
#include "handlers.h"
#include "proto/qgen.pb-c.h"
#include "server.h"
#include "store.h"

static void *
arena_alloc(void *data, size_t n)
{
	return cm_rpc_alloc(data, n > 0 ? n : 1);
}

static void
arena_free(void *data, void *p)
{
	(void)data;
	(void)p; /* freed with the call */
}

/* Renders row's questions as format f into the response. */
static cm_err
render(cm_rpc_ctx *ctx, const qgen_set_row *row, qgen_export_format f, Qgen__ExportResponse *resp)
{
	ProtobufCAllocator  a = {arena_alloc, arena_free, ctx};
	Qgen__QuestionSet   set = QGEN__QUESTION_SET__INIT;
	Qgen__QuestionList *list;
	const char         *ctype = NULL, *ext = NULL;
	char                name[64];
	cm_buf              b;
	cm_err              err = CM_OK;

	if (row->questions == NULL ||
	    (list = qgen__question_list__unpack(&a, row->questions_len, row->questions)) == NULL)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "cannot read the questions");
	set.id = (char *)row->id;
	set.topic = (char *)row->topic;
	set.n_questions = list->n_questions;
	set.questions = list->questions;
	cm_buf_init(&b, QGEN_EXPORT_MAX);
	if (qgen_export_render(&set, f, &b, &ctype, &ext) != CM_OK) {
		err = cm_rpc_fail(ctx, CM_EINTERNAL, "cannot render the export");
		goto out;
	}
	snprintf(name, sizeof(name), "questions-%s.%s", row->id, ext);
	resp->data.len = b.len;
	resp->data.data = cm_rpc_alloc(ctx, b.len > 0 ? b.len : 1);
	resp->content_type = (char *)ctype;
	resp->file_name = cm_rpc_strdup(ctx, name);
	if (resp->data.data == NULL || resp->file_name == NULL) {
		err = cm_rpc_fail(ctx, CM_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(resp->data.data, b.data, b.len);
out:
	cm_buf_fini(&b);
	return err;
}

cm_err
qgen_handle_export(cm_rpc_ctx *ctx, const void *req, void *out)
{
	const Qgen__ExportRequest *rq = req;
	qgen_worker               *w = ctx->worker_state;
	qgen_export_format         f;
	qgen_set_row               row;
	cm_err                     err;

	if (w == NULL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "worker not ready");
	if (!cm_uuid_valid(rq->set_id))
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such question set");
	if (!qgen_export_format_parse(rq->format, &f))
		return cm_rpc_fail(ctx, CM_EINVAL, "format must be gift, qti or csv");
	if ((err = qgen_store_get_set(w->pg, rq->set_id, ctx->subject, true, &row)) != CM_OK)
		return cm_rpc_fail(ctx, err,
		                   err == CM_ENOTFOUND ? "no such question set"
		                                       : "database unavailable");
	if (strcmp(row.status, "succeeded") != 0)
		err = cm_rpc_fail(ctx, CM_EPRECOND, "the question set is not ready");
	else
		err = render(ctx, &row, f, out);
	free(row.questions);
	return err;
}
