/*
 * pg_int.h - libcommon-internal helpers of pg.c and pg_timeout.c, for other files that hold
 * their own libpq connection (the job queue's LISTEN connection) and for unit tests. Not part of
 * the public headers.
 */
#ifndef CM_PG_INT_H
#define CM_PG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Timeouts in milliseconds as pg.c tracks them: no bound at all, and "not known" (after a SET
 * that failed). */
#define CM_PG_TIMEOUT_NONE INT64_MAX
#define CM_PG_TIMEOUT_UNKNOWN (-1)

/* The process-wide defaults of cm_pg_set_default_timeouts (0 = none). */
void cm_pg_default_timeouts(int64_t *statement_ms, int64_t *lock_ms);

/* The value for libpq's `options`: the conninfo's own options (key=value or URI; else
 * PGOPTIONS), then "-c statement_timeout=N" and "-c lock_timeout=M" for the bounds that are
 * not 0. malloc'd; NULL only out of memory. */
char *cm_pg_session_options(const char *conninfo, int64_t statement_ms, int64_t lock_ms);

/* Connects with the project's defaults (connect timeout, TCP keepalives, tcp_user_timeout)
 * under the caller's conninfo, key=value or URI, and the given session timeouts. Never NULL
 * except out of memory. cm_pg_connect_raw uses the process-wide defaults. */
PGconn *cm_pg_connect_with(const char *conninfo, int64_t statement_ms, int64_t lock_ms);
PGconn *cm_pg_connect_raw(const char *conninfo);

/* The statement_timeout a statement should run with: the ceiling (0 = CM_PG_TIMEOUT_NONE)
 * without a deadline (0), else the lesser of the ceiling and the time left; 0 when the
 * deadline has passed. */
int64_t cm_pg_timeout_want(int64_t ceiling_ms, int64_t deadline_ms, int64_t now_ms);

/* Whether to send a SET to go from the session's cur_ms to want_ms (see pg_timeout.c): always
 * when cur is unknown; without a deadline whenever they differ; with one when cur is over want
 * by more than want/10, or under it by more than 25% and 100 ms. */
bool cm_pg_timeout_change(int64_t cur_ms, int64_t want_ms, bool deadline);

/* True for [a-z_][a-z0-9_]* of at most 63 characters: safe to double-quote into SQL. */
bool cm_pg_ident_valid(const char *s);

#endif
