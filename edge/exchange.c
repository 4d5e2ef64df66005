/*
 * exchange.c - what routes use to answer, whatever carries HTTP: errors in the route's shape, JSON
 * bodies in and out, the upstream call and its generic reply (edge.h). The engine side
 * (edge_respond, the stages) is in server.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "edge.h"
#include "errmap.h"
#include "migrate.h"
#include "pbjson.h"
#include "query.h"
#include "proto/common.pb-c.h"

void
edge_fail_http(edge_req *r, uint16_t http, const char *code, const char *message)
{
	r->status = http;
	r->content_type = "application/json";
	cm_buf_reset(&r->out);
	if (edge_error_body(&r->out, r->legacy, code, message, r->request_id) != CM_OK)
		cm_buf_reset(&r->out);
	edge_respond(r);
}

void
edge_fail(edge_req *r, int rpc_status, const char *message)
{
	uint16_t http = edge_http_status(rpc_status);

	/* The legacy frontend expects 400 where v1 says 422 ("No PDF selected", unreadable file).
	 */
	if (r->legacy && rpc_status == CM__STATUS__FAILED_PRECONDITION)
		http = 400;
	edge_fail_http(r, http, cm_status_name(rpc_status), message);
}

bool
edge_add_header(edge_req *r, const char *name, const char *value)
{
	int n = r->n_extra_headers;

	if (n >= (int)(sizeof(r->extra_headers) / sizeof(r->extra_headers[0])))
		return false;
	r->extra_headers[n][0] = cm_arena_strndup(&r->arena, name, strlen(name));
	r->extra_headers[n][1] = cm_arena_strndup(&r->arena, value, strlen(value));
	if (r->extra_headers[n][0] == NULL || r->extra_headers[n][1] == NULL)
		return false;
	r->n_extra_headers++;
	return true;
}

void
edge_set_json(edge_req *r, uint16_t status, json_t *v)
{
	char *s;

	r->status = status;
	r->content_type = "application/json";
	cm_buf_reset(&r->out);
	/* Reals with 15 significant digits, the most a double holds exactly in decimal: a value
	 * meant as 66.7 (a percentage with one decimal) is written 66.7, not jansson's default
	 * 17-digit 66.700000000000003. */
	if (v != NULL && (s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15))) != NULL) {
		if (cm_buf_appends(&r->out, s) != CM_OK)
			cm_buf_reset(&r->out);
		free(s);
	}
	json_decref(v);
}

/* ---- RPC ----------------------------------------------------------------------------------- */

/* A failed call's Retry-After (the service's, or 1 s for a busy or unavailable one), and a
 * warning for the failures that are not the client's. */
static void
note_failure(edge_req *r, const char *method, const cm_rpc_result *res)
{
	if (res->retry_after_s > 0)
		snprintf(r->retry_after, sizeof(r->retry_after), "%d", (int)res->retry_after_s);
	else if (res->status == CM__STATUS__RESOURCE_EXHAUSTED ||
	         res->status == CM__STATUS__UNAVAILABLE)
		cm_strlcpy(r->retry_after, "1", sizeof(r->retry_after));
	if (res->status == CM__STATUS__UNAVAILABLE || res->status == CM__STATUS__INTERNAL ||
	    res->status == CM__STATUS__DEADLINE_EXCEEDED)
		cm_warn("EDGE-UPSTREAM-FAIL", "%s %s: %s", method, cm_status_name(res->status),
		        res->message);
}

void
edge_fail_call(edge_req *r, const char *method, const cm_rpc_result *res)
{
	note_failure(r, method, res);
	edge_fail(r, res->status, res->message);
}

static void
rpc_done(void *arg, cm_rpc_result *res)
{
	edge_req *r = arg;

	/* Refused by the breaker or the pending limit, nothing sent: the old backend may answer
	 * (migrate.h). Any other answer means the new side saw the request. */
	if (res->refused && r->may_fall_back && edge_migrate_fall_back(r))
		return;
	r->may_fall_back = false;
	if (res->status != CM__STATUS__OK)
		note_failure(r, r->route->rpc, res);
	if (r->route->reply != NULL)
		r->route->reply(r, res);
	else
		edge_reply_generic(r, res);
}

/* A call that could not even start is answered like a failed one: the route's reply adapter
 * decides what it means (the legacy logout, for one, never fails). */
static void
call_failed(edge_req *r, int status, const char *message)
{
	cm_rpc_result res;

	cm_rpc_result_set(&res, status, message);
	rpc_done(r, &res);
}

static void
call_payload(edge_req *r, const void *payload, size_t len)
{
	const edge_route *rt = r->route;
	cm_rpc_call_opts  o;
	cm_err            err;

	edge_req_opts(r, rt->rpc, (rt->flags & EDGE_R_IDEMPOTENT) != 0, &o);
	o.batchable = (rt->flags & EDGE_R_BATCH) != 0;
	if ((rt->flags & EDGE_R_LONG) != 0)
		o.deadline_ms = cm_now_ms() + r->e->cfg.chat_timeout_ms;
	r->upstream_name = edge_upstream_name(rt->upstream);
	/* No replica reached: the old backend may answer instead (migrate.h). */
	if (r->e->up[rt->upstream] == NULL) {
		if (!edge_migrate_fall_back(r))
			call_failed(r, CM__STATUS__UNAVAILABLE, "this service is not configured");
		return;
	}
	/* r->may_fall_back stays set for rpc_done, which clears it unless the call was refused
	 * unsent; once started, r may be answered (and freed) at any moment, so nothing here
	 * touches it after a started call. */
	err = cm_rpc_call_async(r->e->up[rt->upstream], &o, payload, len, rpc_done, r);
	if (err == CM_ETIMEDOUT) {
		call_failed(r, CM__STATUS__DEADLINE_EXCEEDED, "deadline exceeded");
	} else if (err != CM_OK) {
		/* The call never started: no replica to send it to. */
		if (err == CM_EUNAVAIL && edge_migrate_fall_back(r))
			return;
		cm_warn("EDGE-NO-UPSTREAM", "%s: no replica available", rt->rpc);
		call_failed(r, CM__STATUS__UNAVAILABLE, "service temporarily unavailable");
	}
}

void
edge_call(edge_req *r, const ProtobufCMessage *msg)
{
	size_t   n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	if ((buf = cm_arena_alloc(&r->arena, n + 1)) == NULL) {
		edge_fail(r, CM__STATUS__INTERNAL, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	call_payload(r, buf, n);
}

ProtobufCMessage *
edge_reply_unpack(edge_req *r, cm_rpc_result *res, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m;

	if (res->status != CM__STATUS__OK) {
		edge_fail(r, res->status, res->message);
		return NULL;
	}
	if ((m = protobuf_c_message_unpack(d, NULL, res->payload_len, res->payload)) == NULL)
		edge_fail(r, CM__STATUS__INTERNAL, "malformed upstream response");
	return m;
}

void
edge_reply_generic(edge_req *r, cm_rpc_result *res)
{
	ProtobufCMessage *m;

	if (res->status == CM__STATUS__OK && r->route->ok_status == 204) {
		r->status = 204;
		edge_respond(r);
		return;
	}
	if ((m = edge_reply_unpack(r, res, r->route->resp_desc)) == NULL)
		return;
	edge_set_json(r, r->route->ok_status ? r->route->ok_status : 200, edge_pb_to_json(m));
	protobuf_c_message_free_unpacked(m, NULL);
	edge_respond(r);
}

json_t *
edge_body_json(edge_req *r)
{
	json_error_t jerr;
	json_t      *v;
	char         msg[200];

	if (r->body.len == 0)
		return json_object();
	v = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		snprintf(msg, sizeof(msg), "malformed JSON: %s", jerr.text);
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, msg);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		edge_fail(r, CM__STATUS__INVALID_ARGUMENT, "request body must be a JSON object");
		return NULL;
	}
	return v;
}

ProtobufCMessage *
edge_body_pb(edge_req *r)
{
	json_t           *body;
	ProtobufCMessage *msg = NULL;
	char              why[200] = "";
	cm_err            err;

	if ((body = edge_body_json(r)) == NULL)
		return NULL;
	err = edge_json_to_pb(r->route->req_desc, body, &r->arena, &msg, why, sizeof(why));
	json_decref(body);
	if (err != CM_OK) {
		edge_fail(r, cm_err_to_status(err), why[0] != '\0' ? why : cm_strerror(err));
		return NULL;
	}
	return msg;
}

void
edge_start_generic(edge_req *r)
{
	static const uint8_t none[1];
	ProtobufCMessage    *msg;

	/* No body (GET /api/v1/auth/me and the like): the request message would have every field
	 * at its default, which packs to nothing in proto3, so it is sent as such without a JSON
	 * object or a protobuf message built first. */
	if (r->body.len == 0) {
		call_payload(r, none, 0);
		return;
	}
	if ((msg = edge_body_pb(r)) != NULL)
		edge_call(r, msg);
}

const char *
edge_query_param(edge_req *r, const char *name, char *buf, size_t buflen)
{
	return edge_query_get(r->query, name, buf, buflen) >= 0 ? buf : NULL;
}
