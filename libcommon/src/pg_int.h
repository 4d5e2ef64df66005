/*
 * pg_int.h - libcommon-internal helpers of pg.c for other files that hold their own libpq
 * connection (the job queue's LISTEN connection). Not part of the public headers.
 */
#ifndef CM_PG_INT_H
#define CM_PG_INT_H

#include <stdbool.h>

#include <libpq-fe.h>

/* Connects with the project's defaults (connect timeout, TCP keepalives, tcp_user_timeout) under
 * the caller's conninfo, key=value or URI. Never NULL except out of memory. */
PGconn *cm_pg_connect_raw(const char *conninfo);

/* True for [a-z_][a-z0-9_]* of at most 63 characters: safe to double-quote into SQL. */
bool cm_pg_ident_valid(const char *s);

#endif
