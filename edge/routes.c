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
#include "proto/chat.pb-c.h"
#include "proto/eval.pb-c.h"
#include "proto/pdf.pb-c.h"
#include "proto/qgen.pb-c.h"
#include "routes_auth.h"
#include "routes_chat.h"
#include "routes_eval.h"
#include "routes_pdf.h"
#include "routes_qgen.h"

#define AUTH_RPC(m) EDGE_UP_AUTH, "auth." m
#define PDF_RPC(m) EDGE_UP_PDF, "pdf." m
#define QGEN_RPC(m) EDGE_UP_QGEN, "qgen." m
#define EVAL_RPC(m) EDGE_UP_EVAL, "eval." m
#define CHAT_RPC(m) EDGE_UP_CHAT, "chat." m
#define USER EDGE_R_AUTH
#define READ (EDGE_R_AUTH | EDGE_R_IDEMPOTENT)
#define LEGACY EDGE_R_LEGACY

static const edge_route routes[] = {
    /* v1 */
    {"POST", "/api/v1/auth/register", 0, AUTH_RPC("Register"), &auth__register_request__descriptor,
     &auth__register_response__descriptor, 201, NULL, NULL, "v1_register"},
    {"POST", "/api/v1/auth/login", 0, AUTH_RPC("Login"), &auth__login_request__descriptor,
     &auth__token_pair__descriptor, 200, NULL, edge_reply_login_v1, "v1_login"},
    {"POST", "/api/v1/auth/refresh", EDGE_R_AUTH_OPT, AUTH_RPC("Refresh"),
     &auth__refresh_request__descriptor, &auth__token_pair__descriptor, 200, edge_start_refresh_v1,
     edge_reply_refresh_v1, "v1_refresh"},
    {"POST", "/api/v1/auth/logout", EDGE_R_AUTH_OPT, AUTH_RPC("Logout"),
     &auth__logout_request__descriptor, &auth__logout_response__descriptor, 204, edge_start_logout,
     edge_reply_logout_v1, "v1_logout"},
    {"GET", "/api/v1/auth/me", EDGE_R_AUTH | EDGE_R_IDEMPOTENT | EDGE_R_BATCH, AUTH_RPC("Me"),
     &auth__me_request__descriptor, &auth__user__descriptor, 200, NULL, NULL, "v1_me"},

    {"POST", "/api/v1/documents", USER | EDGE_R_UPLOAD, PDF_RPC("UploadBody"),
     &pdf__upload_body_request__descriptor, &pdf__upload_body_response__descriptor, 201,
     edge_start_upload, edge_reply_upload_v1, "v1_doc_upload"},
    {"GET", "/api/v1/documents", READ, PDF_RPC("List"), &pdf__list_request__descriptor,
     &pdf__list_response__descriptor, 200, edge_start_doc_list, edge_reply_doc_list_v1,
     "v1_doc_list"},
    {"GET", "/api/v1/documents/{id}", READ, PDF_RPC("Get"), &pdf__get_request__descriptor,
     &pdf__document__descriptor, 200, edge_start_doc_id, edge_reply_document_v1, "v1_doc_get"},
    {"DELETE", "/api/v1/documents/{id}", USER, PDF_RPC("Delete"), &pdf__delete_request__descriptor,
     &pdf__delete_response__descriptor, 204, edge_start_doc_id, NULL, "v1_doc_delete"},
    {"GET", "/api/v1/documents/{id}/pages/{n}", READ, PDF_RPC("GetPage"),
     &pdf__get_page_request__descriptor, &pdf__page__descriptor, 200, edge_start_doc_page, NULL,
     "v1_doc_page"},

    {"POST", "/api/v1/documents/{id}/question-sets", USER, QGEN_RPC("Create"),
     &qgen__create_request__descriptor, &qgen__create_response__descriptor, 202,
     edge_start_qset_create, edge_reply_qset_create, "v1_qset_create"},
    {"GET", "/api/v1/jobs/{id}", READ, QGEN_RPC("GetJob"), &qgen__job_ref__descriptor,
     &qgen__job__descriptor, 200, edge_start_job, edge_reply_job, "v1_job_get"},
    {"DELETE", "/api/v1/jobs/{id}", USER, QGEN_RPC("CancelJob"), &qgen__job_ref__descriptor,
     &qgen__job__descriptor, 202, edge_start_job, edge_reply_job, "v1_job_cancel"},
    {"GET", "/api/v1/question-sets/{id}", READ, QGEN_RPC("GetSet"),
     &qgen__get_set_request__descriptor, &qgen__question_set__descriptor, 200, edge_start_qset_get,
     edge_reply_qset_get, "v1_qset_get"},
    {"GET", "/api/v1/question-sets/{id}/export", READ, QGEN_RPC("Export"),
     &qgen__export_request__descriptor, &qgen__export_response__descriptor, 200,
     edge_start_qset_export, edge_reply_qset_export, "v1_qset_export"},
    {"POST", "/api/v1/question-sets/{id}/attempts", USER, EVAL_RPC("Submit"),
     &eval__submit_request__descriptor, &eval__attempt__descriptor, 202, edge_start_attempt_create,
     edge_reply_attempt_create, "v1_attempt_create"},
    {"GET", "/api/v1/attempts/{id}", READ, EVAL_RPC("GetAttempt"), &eval__attempt_ref__descriptor,
     &eval__attempt__descriptor, 200, edge_start_attempt_get, edge_reply_attempt_get,
     "v1_attempt_get"},

    {"POST", "/api/v1/documents/{id}/chats", USER, CHAT_RPC("Create"),
     &chat__create_request__descriptor, &chat__chat__descriptor, 201, edge_start_chat_create,
     edge_reply_chat_create, "v1_chat_create"},
    {"GET", "/api/v1/chats/{id}/messages", READ, CHAT_RPC("ListMessages"),
     &chat__list_request__descriptor, &chat__message_list__descriptor, 200,
     edge_start_chat_messages, edge_reply_chat_messages, "v1_chat_messages"},
    {"POST", "/api/v1/chats/{id}/messages", USER | EDGE_R_LONG, CHAT_RPC("Send"),
     &chat__send_request__descriptor, &chat__message__descriptor, 200, edge_start_chat_send,
     edge_reply_chat_send, "v1_chat_send"},

    /* legacy */
    {"POST", "/api/auth/login", EDGE_R_LEGACY, AUTH_RPC("Login"), &auth__login_request__descriptor,
     &auth__token_pair__descriptor, 200, NULL, edge_reply_login_legacy, "legacy_login"},
    {"POST", "/api/auth/logout", EDGE_R_LEGACY | EDGE_R_AUTH_OPT, AUTH_RPC("Logout"),
     &auth__logout_request__descriptor, &auth__logout_response__descriptor, 200, edge_start_logout,
     edge_reply_logout_legacy, "legacy_logout"},
    {"GET", "/api/auth/verify", EDGE_R_LEGACY | EDGE_R_AUTH | EDGE_R_IDEMPOTENT | EDGE_R_BATCH,
     AUTH_RPC("Verify"), &auth__verify_request__descriptor, &auth__verify_response__descriptor, 200,
     NULL, edge_reply_verify_legacy, "legacy_verify"},
    {"POST", "/api/pdf/upload", LEGACY | USER | EDGE_R_UPLOAD, PDF_RPC("UploadBody"),
     &pdf__upload_body_request__descriptor, &pdf__upload_body_response__descriptor, 200,
     edge_start_upload, edge_reply_upload_legacy, "legacy_pdf_upload"},
    {"POST", "/api/pdf/select", LEGACY | USER, PDF_RPC("Select"), &pdf__select_request__descriptor,
     &pdf__selected_response__descriptor, 200, NULL, edge_reply_select_legacy, "legacy_pdf_select"},
    {"GET", "/api/pdf/info", LEGACY | READ, PDF_RPC("Selected"), &pdf__selected_request__descriptor,
     &pdf__selected_response__descriptor, 200, NULL, edge_reply_info_legacy, "legacy_pdf_info"},
    {"GET", "/api/pdf/metadata", LEGACY | READ, PDF_RPC("Selected"),
     &pdf__selected_request__descriptor, &pdf__selected_response__descriptor, 200, NULL,
     edge_reply_metadata_legacy, "legacy_pdf_metadata"},
    {"GET", "/api/pdf/list", LEGACY | READ, PDF_RPC("List"), &pdf__list_request__descriptor,
     &pdf__list_response__descriptor, 200, edge_start_doc_list, edge_reply_doc_list_legacy,
     "legacy_pdf_list"},
    {"POST", "/api/chat/generate-questions", LEGACY | USER, QGEN_RPC("Create"),
     &qgen__create_request__descriptor, &qgen__create_response__descriptor, 200,
     edge_start_legacy_generate, edge_reply_legacy_generate, "legacy_generate_questions"},
    {"POST", "/api/chat/evaluate-quiz", LEGACY | USER, EVAL_RPC("Submit"),
     &eval__submit_request__descriptor, &eval__attempt__descriptor, 200,
     edge_start_legacy_evaluate_quiz, edge_reply_legacy_evaluate, "legacy_evaluate_quiz"},
    {"POST", "/api/chat/evaluate-answer", LEGACY | USER, EVAL_RPC("Submit"),
     &eval__submit_request__descriptor, &eval__attempt__descriptor, 200,
     edge_start_legacy_evaluate_answer, edge_reply_legacy_evaluate, "legacy_evaluate_answer"},
    {"POST", "/api/chat", LEGACY | USER | EDGE_R_LONG, CHAT_RPC("Send"),
     &chat__send_request__descriptor, &chat__message__descriptor, 200, edge_start_legacy_chat,
     edge_reply_legacy_chat, "legacy_chat"},
    {"GET", "/api/chat/history", LEGACY | READ, CHAT_RPC("History"),
     &chat__history_request__descriptor, &chat__history__descriptor, 200, edge_start_legacy_history,
     edge_reply_legacy_history, "legacy_chat_history"},
    {"DELETE", "/api/chat/history", LEGACY | USER, CHAT_RPC("Clear"),
     &chat__history_request__descriptor, &chat__clear_response__descriptor, 200,
     edge_start_legacy_history, edge_reply_legacy_clear, "legacy_chat_clear"},
};

const edge_route *
edge_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

bool
edge_pattern_match(const char *pattern, const char *path, char params[][128], int *n)
{
	const char *p = pattern, *s = path;

	*n = 0;
	while (*p != '\0' && *s != '\0') {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			size_t      len = strcspn(s, "/");
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
edge_route_match(const char *method, const char *path, edge_req *r, bool *path_matched, char *allow,
                 size_t allowlen)
{
	char params[EDGE_MAX_PARAMS][128];
	int  n;

	*path_matched = false;
	allow[0] = '\0';
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
