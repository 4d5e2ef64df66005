/*
 * err.c - error text and the one cm_err <-> RPC status table.
 *
 * DESIGN: a single static table, indexed by cm_err, holds each error's text and its gRPC status
 * (the numbers of cm.Status in proto/common.proto). The reverse mapping walks the same table and
 * takes the entry marked `canon` for a status, so the two directions cannot drift apart. Statuses
 * no cm_err produces (UNKNOWN, ABORTED, UNIMPLEMENTED, DATA_LOSS, anything out of range) map back
 * to CM_EINTERNAL.
 */
#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"

enum {
	ST_OK = 0,
	ST_CANCELLED = 1,
	ST_UNKNOWN = 2,
	ST_INVALID_ARGUMENT = 3,
	ST_DEADLINE_EXCEEDED = 4,
	ST_NOT_FOUND = 5,
	ST_ALREADY_EXISTS = 6,
	ST_PERMISSION_DENIED = 7,
	ST_RESOURCE_EXHAUSTED = 8,
	ST_FAILED_PRECONDITION = 9,
	ST_ABORTED = 10,
	ST_OUT_OF_RANGE = 11,
	ST_UNIMPLEMENTED = 12,
	ST_INTERNAL = 13,
	ST_UNAVAILABLE = 14,
	ST_DATA_LOSS = 15,
	ST_UNAUTHENTICATED = 16,
	ST_COUNT
};

static const struct cm_err_row {
	const char *text;
	int         status;
	bool        canon; /* the cm_err a client gets back for this status */
} cm_err_table[CM_ERR_COUNT] = {
    [CM_OK] = {"ok", ST_OK, true},
    [CM_EINVAL] = {"invalid argument", ST_INVALID_ARGUMENT, true},
    [CM_ENOMEM] = {"out of memory", ST_INTERNAL, false},
    [CM_ENOTFOUND] = {"not found", ST_NOT_FOUND, true},
    [CM_EEXIST] = {"already exists", ST_ALREADY_EXISTS, true},
    [CM_EPERM] = {"permission denied", ST_PERMISSION_DENIED, true},
    [CM_EAUTH] = {"unauthenticated", ST_UNAUTHENTICATED, true},
    [CM_ETOOBIG] = {"too big", ST_OUT_OF_RANGE, true},
    [CM_ELIMIT] = {"rate limited", ST_RESOURCE_EXHAUSTED, true},
    [CM_EUNAVAIL] = {"unavailable", ST_UNAVAILABLE, true},
    [CM_ETIMEDOUT] = {"timed out", ST_DEADLINE_EXCEEDED, true},
    [CM_EPROTO] = {"protocol error", ST_INVALID_ARGUMENT, false},
    [CM_EPRECOND] = {"failed precondition", ST_FAILED_PRECONDITION, true},
    [CM_ECANCELED] = {"canceled", ST_CANCELLED, true},
    [CM_EINTERNAL] = {"internal error", ST_INTERNAL, true},
};

static const char *const cm_status_names[ST_COUNT] = {
    [ST_OK] = "OK",
    [ST_CANCELLED] = "CANCELLED",
    [ST_UNKNOWN] = "UNKNOWN",
    [ST_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [ST_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [ST_NOT_FOUND] = "NOT_FOUND",
    [ST_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [ST_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [ST_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [ST_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [ST_ABORTED] = "ABORTED",
    [ST_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [ST_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [ST_INTERNAL] = "INTERNAL",
    [ST_UNAVAILABLE] = "UNAVAILABLE",
    [ST_DATA_LOSS] = "DATA_LOSS",
    [ST_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

static bool
cm_err_valid(cm_err err)
{
	return (int)err >= 0 && (int)err < CM_ERR_COUNT;
}

const char *
cm_strerror(cm_err err)
{
	if (!cm_err_valid(err))
		return "unknown error";
	return cm_err_table[err].text;
}

int
cm_err_to_status(cm_err err)
{
	if (!cm_err_valid(err))
		return ST_INTERNAL;
	return cm_err_table[err].status;
}

cm_err
cm_err_from_status(int status)
{
	for (int i = 0; i < CM_ERR_COUNT; i++) {
		if (cm_err_table[i].canon && cm_err_table[i].status == status)
			return (cm_err)i;
	}
	return CM_EINTERNAL;
}

const char *
cm_status_name(int status)
{
	if (status < 0 || status >= ST_COUNT)
		return "UNKNOWN";
	return cm_status_names[status];
}
