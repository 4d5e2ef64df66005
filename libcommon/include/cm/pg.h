/*
 * pg.h - PostgreSQL access for one thread.
 *
 * One cm_pg per worker thread (libpq connections are not shared). Opening never fails because the
 * server is down: the handle connects lazily and, after the server restarts, reconnects on the
 * next call (at most once every CM_PG_RETRY_MS, so an outage fails fast with CM_EUNAVAIL instead
 * of stalling workers). A statement is never retried after it may have reached the server.
 *
 * Only parameterised statements exist here (PQexecParams): SQL text never contains input.
 * The connection's search_path is the service's schema.
 *
 * Timeouts: every statement is bounded. Each connection starts with the process-wide statement
 * ceiling and lock_timeout (cm_pg_set_default_timeouts) as session settings; a deadline on the
 * handle (cm_pg_set_deadline) lowers the statement's bound to the time left. A statement the
 * server cancels on either bound fails with CM_ETIMEDOUT and leaves the connection usable.
 *
 * Errors: CM_EUNAVAIL (no connection), CM_ETIMEDOUT (deadline passed, statement_timeout or
 * lock_timeout: SQLSTATE 57014 / 55P03), CM_EEXIST (unique violation, SQLSTATE 23505),
 * CM_EINVAL (other integrity/data errors, class 22/23), CM_EINTERNAL (anything else). The libpq
 * message and SQLSTATE of the last failure stay on the handle (cm_pg_errmsg, cm_pg_sqlstate).
 */
#ifndef CM_PG_H
#define CM_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

typedef struct cm_pg        cm_pg;
typedef struct cm_pg_result cm_pg_result;

/* Process-wide bounds for every connection opened afterwards (cm_pg handles opened after the
 * call, and the job listener's connections), in milliseconds; 0 = PostgreSQL's own default
 * (none unless the server or role sets one). Call once at start, before opening handles; handles
 * keep the values they were opened with. Negative is 0; values are capped at INT_MAX.
 *   statement_ms: statement_timeout, the ceiling of every statement (background work - job
 *                 runners, start-up, migrations - runs under it alone).
 *   lock_ms:      lock_timeout, how long a statement waits for one lock (a row locked by another
 *                 transaction); migrations' wait for each other is exempt (the ceiling bounds it).
 * Both go to the server in the startup packet (libpq `options`, appended to any options the
 * conninfo or PGOPTIONS give), so they cost no round trip. */
void cm_pg_set_default_timeouts(int64_t statement_ms, int64_t lock_ms);

/* conninfo: a libpq connection string or URI. schema: created if missing and set as
 * search_path on every (re)connect; NULL leaves the default. Both are copied. */
CM_MUSTCHECK cm_err cm_pg_open(cm_pg **out, const char *conninfo, const char *schema);
void                cm_pg_close(cm_pg *pg);
/* A second, independent handle to the same database and schema as pg (its conninfo and schema
 * are copied; nothing else is shared): for a thread that works beside pg's owner, such as a
 * storage thread writing while the owner computes. Lazy like cm_pg_open. */
CM_MUSTCHECK cm_err cm_pg_open_like(const cm_pg *pg, cm_pg **out);

/* Sets the deadline of the statements that follow: absolute unix ms (cm_now_ms clock); 0 = none,
 * back to the ceiling. Contacts nothing; the handle's owner thread calls it (per RPC call).
 * With a deadline, each statement runs with statement_timeout = min(ceiling, time left), with
 * two allowances that save round trips: the session's value is changed (a SET before the
 * statement) only when it exceeds the time left by more than a tenth of it - so a statement may
 * end up to 10% of its time left after the deadline - or is below it by more than 25% and
 * 100 ms. Calls with similar or generous (beyond the ceiling) deadlines therefore send no SET.
 * Without a deadline the ceiling is restored exactly (one SET when coming from a deadline).
 * A deadline that has passed fails the statement (and cm_pg_commit) with CM_ETIMEDOUT before
 * anything is sent; inside a transaction it fails every later statement of it too, like a
 * statement the server cancelled, until cm_pg_rollback. */
void cm_pg_set_deadline(cm_pg *pg, int64_t deadline_ms);

/* How many SETs of statement_timeout the handle has sent (for tests). */
uint64_t cm_pg_timeout_sets(const cm_pg *pg);

/* True when connected now, connecting first if needed; runs "SELECT 1". For /readyz. */
bool cm_pg_ping(cm_pg *pg);

/* Runs sql with text parameters ($1..$n; a NULL entry is SQL NULL). On CM_OK, *out (if out is
 * not NULL) holds the result, freed with cm_pg_result_free. */
CM_MUSTCHECK cm_err cm_pg_exec(cm_pg *pg, const char *sql, int nparams, const char *const *params,
                               cm_pg_result **out);

/* Runs sql, a "COPY ... FROM STDIN" (text format; code, never input), and sends data[0..len)
 * as its rows, in one statement bounded like cm_pg_exec. The caller formats the rows (text
 * format: columns separated by tabs, rows ended by '\n', '\\', tab, newline and carriage return
 * escaped). Errors as cm_pg_exec: a row the server rejects fails the whole COPY (and an open
 * transaction). */
CM_MUSTCHECK cm_err cm_pg_copy_in(cm_pg *pg, const char *sql, const void *data, size_t len);

int cm_pg_nrows(const cm_pg_result *r);
/* Text value of (row, col); "" for NULL (see cm_pg_isnull). */
const char *cm_pg_get(const cm_pg_result *r, int row, int col);
bool        cm_pg_isnull(const cm_pg_result *r, int row, int col);
/* Rows affected by INSERT/UPDATE/DELETE. */
int64_t cm_pg_affected(const cm_pg_result *r);
void    cm_pg_result_free(cm_pg_result *r);

CM_MUSTCHECK cm_err cm_pg_begin(cm_pg *pg);
CM_MUSTCHECK cm_err cm_pg_commit(cm_pg *pg);
void                cm_pg_rollback(cm_pg *pg); /* best effort; safe after any failure */

/* bytea travels as text here: "\x<hex>". cm_pg_bytea_param makes that parameter text for len
 * bytes (malloc'd; NULL on OOM); cm_pg_bytea_decode turns a bytea column's output text into a
 * malloc'd buffer (at least 1 byte allocated; CM_EPROTO when it is not hex output). */
char               *cm_pg_bytea_param(const void *p, size_t len);
CM_MUSTCHECK cm_err cm_pg_bytea_decode(const char *s, uint8_t **out, size_t *len);

const char *cm_pg_errmsg(const cm_pg *pg);   /* "" when none */
const char *cm_pg_sqlstate(const cm_pg *pg); /* "" when none */

/* ---- migrations ---------------------------------------------------------------------------- */

/* One numbered migration; arrays of these are generated from NNN_name.up.sql/.down.sql files by
 * cmake/Embed.cmake (cm_embed_migrations). Arrays are ordered by version, ascending. */
typedef struct cm_migration {
	int         version;
	const char *name;
	const char *up;
	const char *down;
} cm_migration;

/* Brings `schema` to the newest version under a transaction-scoped advisory lock (so replicas
 * starting together apply each migration once). Versions applied are recorded in
 * <schema>.schema_migrations. One transaction per run: all of it applies, or none. */
CM_MUSTCHECK cm_err cm_pg_migrate_up(cm_pg *pg, const char *schema, const cm_migration *m,
                                     size_t n);
/* Rolls `schema` back to target_version (0 = everything) by running down parts newest first. */
CM_MUSTCHECK cm_err cm_pg_migrate_down(cm_pg *pg, const char *schema, const cm_migration *m,
                                       size_t n, int target_version);
/* The newest applied version (0 when none). */
CM_MUSTCHECK cm_err cm_pg_schema_version(cm_pg *pg, const char *schema, int *version);

#endif
