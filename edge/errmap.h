/*
 * errmap.h - the one table from RPC status to HTTP status, and the two error body shapes.
 *
 * v1 routes answer {"error":{"code","message","request_id"}}; legacy /api routes answer
 * {"detail": message}, which is what the existing frontend shows.
 */
#ifndef EDGE_ERRMAP_H
#define EDGE_ERRMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/err.h"

/* HTTP status for an RPC status (cm.Status value). */
uint16_t edge_http_status(int rpc_status);

/* Appends the error body for the shape; `code` is a status name such as "INVALID_ARGUMENT". */
CM_MUSTCHECK cm_err edge_error_body(cm_buf *out, bool legacy, const char *code, const char *message,
                                    const char *request_id);

#endif
