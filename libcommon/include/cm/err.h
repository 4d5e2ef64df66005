/*
 * err.h - the one error enum of the project.
 *
 * Every libcommon and service function that can fail returns cm_err (0 = CM_OK) and hands results
 * back through out-pointers. Library-specific detail (libpq's message, hiredis' errstr) stays on
 * the object that produced it. cm_err maps to an RPC status in exactly one table
 * (cm_err_to_status); the edge maps RPC status to HTTP in exactly one table (edge/errmap.c).
 */
#ifndef CM_ERR_H
#define CM_ERR_H

#define CM_MUSTCHECK __attribute__((warn_unused_result))

typedef enum cm_err {
	CM_OK = 0,
	CM_EINVAL,    /* bad input from the caller */
	CM_ENOMEM,    /* allocation failed */
	CM_ENOTFOUND, /* no such thing (or not the caller's: never tell which) */
	CM_EEXIST,    /* already exists */
	CM_EPERM,     /* authenticated, but not allowed */
	CM_EAUTH,     /* not authenticated / bad credentials / bad token */
	CM_ETOOBIG,   /* over a configured limit (capped buffers, body sizes) */
	CM_ELIMIT,    /* rate limited / throttled: try later */
	CM_EUNAVAIL,  /* a dependency (PostgreSQL, Redis, upstream) is unreachable */
	CM_ETIMEDOUT, /* deadline passed */
	CM_EPROTO,    /* a peer sent something malformed */
	CM_EPRECOND,  /* the request is valid but the state does not allow it */
	CM_ECANCELED, /* cancelled */
	CM_EINTERNAL, /* a bug or an unexpected failure */
	CM_ERR_COUNT
} cm_err;

/* Short, stable, human-readable text; never NULL. */
const char *cm_strerror(cm_err err);

/* The RPC status (cm.Status numeric value, gRPC canonical) for an error. CM_OK -> 0. */
int cm_err_to_status(cm_err err);

/* The inverse, for clients: an RPC status to the nearest cm_err. */
cm_err cm_err_from_status(int status);

/* The canonical name of an RPC status ("INVALID_ARGUMENT"), for JSON error bodies. */
const char *cm_status_name(int status);

#endif
