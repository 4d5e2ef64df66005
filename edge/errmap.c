/*
 * errmap.c - RPC status -> HTTP status (one table) and error bodies.
 */
#include <stddef.h>

#include "errmap.h"
#include "proto/common.pb-c.h"

static const struct {
	int      rpc;
	uint16_t http;
} status_map[] = {
    {CM__STATUS__OK, 200},
    {CM__STATUS__CANCELLED, 499},
    {CM__STATUS__UNKNOWN, 500},
    {CM__STATUS__INVALID_ARGUMENT, 400},
    {CM__STATUS__DEADLINE_EXCEEDED, 504},
    {CM__STATUS__NOT_FOUND, 404},
    {CM__STATUS__ALREADY_EXISTS, 409},
    {CM__STATUS__PERMISSION_DENIED, 403},
    {CM__STATUS__RESOURCE_EXHAUSTED, 429},
    {CM__STATUS__FAILED_PRECONDITION, 422},
    {CM__STATUS__ABORTED, 409},
    {CM__STATUS__OUT_OF_RANGE, 400},
    {CM__STATUS__UNIMPLEMENTED, 501},
    {CM__STATUS__INTERNAL, 500},
    {CM__STATUS__UNAVAILABLE, 503},
    {CM__STATUS__DATA_LOSS, 500},
    {CM__STATUS__UNAUTHENTICATED, 401},
};

uint16_t
edge_http_status(int rpc_status)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++) {
		if (status_map[i].rpc == rpc_status)
			return status_map[i].http;
	}
	return 500;
}

cm_err
edge_error_body(cm_buf *out, bool legacy, const char *code, const char *message,
                const char *request_id)
{
	cm_err err;

	if (legacy) {
		if ((err = cm_buf_appends(out, "{\"detail\":\"")) != CM_OK ||
		    (err = cm_buf_append_json_str(out, message)) != CM_OK)
			return err;
		return cm_buf_appends(out, "\"}");
	}
	if ((err = cm_buf_appends(out, "{\"error\":{\"code\":\"")) != CM_OK ||
	    (err = cm_buf_append_json_str(out, code)) != CM_OK ||
	    (err = cm_buf_appends(out, "\",\"message\":\"")) != CM_OK ||
	    (err = cm_buf_append_json_str(out, message)) != CM_OK ||
	    (err = cm_buf_appends(out, "\",\"request_id\":\"")) != CM_OK ||
	    (err = cm_buf_append_json_str(out, request_id)) != CM_OK)
		return err;
	return cm_buf_appends(out, "\"}}");
}
