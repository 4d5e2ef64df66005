/*
 * pg.c - one PostgreSQL connection for one thread, that survives server restarts.
 *
 * DESIGN. The handle connects lazily (PQconnectdbParams: the caller's conninfo, key=value or URI,
 * is expanded, and connect_timeout defaults to CM_PG_CONNECT_TIMEOUT_S unless it names one). A
 * statement that fails because the connection is gone (PQstatus() == CONNECTION_BAD afterwards,
 * or a connection-class SQLSTATE) drops the connection and returns CM_EUNAVAIL; the statement is
 * never retried, since it may have reached the server. The next call reconnects, but not sooner
 * than CM_PG_RETRY_MS after the last failed attempt, so while the database is down every call
 * fails at once instead of each worker waiting on connect. "Connection lost" is logged once per
 * outage.
 *
 * A connection the server closed while we were idle (a restart) is noticed before the next
 * statement and replaced without failing it - unless a transaction was open on it: then the rest
 * of that transaction must not run in autocommit on a new connection, so every call fails with
 * CM_EUNAVAIL until the caller gives the transaction up with cm_pg_rollback (the way PostgreSQL
 * itself refuses everything in an aborted transaction).
 *
 * Timeouts (pg_timeout.c has the rules): every connection starts with the process-wide
 * statement ceiling and lock_timeout as session settings. The handle tracks the session's
 * statement_timeout (sess_timeout; inside a transaction also what SET LOCAL made it) and, under
 * a deadline, sends SET only when cm_pg_timeout_change says the value is off by enough. Inside a
 * transaction it uses SET LOCAL: a plain SET there would be undone if the transaction aborts,
 * and our tracking would be wrong; SET LOCAL ends with the transaction whatever happens, which
 * we see as the status going back to idle. (No savepoints are used: ROLLBACK TO would undo a
 * SET LOCAL unseen.) A deadline that passed fails the statement before anything is sent; inside
 * a transaction it also fails the rest of it, as the server would after a cancel.
 *
 * Every statement is PQexecParams/PQexecPrepared with text parameters; the only text we put into
 * SQL ourselves is a schema name, which comes from code and is checked to be [a-z_][a-z0-9_]*
 * (at most 63 characters) and double-quoted. Migration scripts (code, several statements) run
 * through PQexec.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/pg.h"
#include "cm/util.h"
#include "pg_int.h"

#define STMT_CACHE 64
#define IDENT_MAX 63 /* PostgreSQL's NAMEDATALEN - 1 */
#define SQL_MAX 512  /* statements built around a schema name */

/* Statements prepared on the current connection, keyed by their SQL text. */
typedef struct pg_stmt {
	uint64_t hash;
	char    *sql; /* our copy */
	char     name[16];
} pg_stmt;

struct cm_pg {
	PGconn *conn;
	pg_stmt stmts[STMT_CACHE];
	int     n_stmts;
	char   *conninfo;
	char   *schema; /* NULL: default search_path */
	int64_t last_fail_ms;
	bool    down_logged;
	bool    tx_lost;     /* a transaction died with its connection; cleared by cm_pg_rollback */
	bool    tx_timedout; /* a transaction's deadline passed; cleared by cm_pg_rollback */

	/* Bounds (pg_timeout.c), in ms. Ceiling and lock from the defaults at open; the
	 * session's values as CM_PG_TIMEOUT_*. */
	int64_t  ceiling_ms;    /* statement_timeout, no deadline (0 = none) */
	int64_t  lock_ms;       /* lock_timeout (0 = none) */
	int64_t  deadline_ms;   /* unix ms; 0 = none */
	int64_t  sess_timeout;  /* the session's statement_timeout */
	int64_t  local_timeout; /* SET LOCAL in the open transaction */
	bool     local_set;
	uint64_t timeout_sets; /* SETs sent, for tests */

	char errmsg[CM_MAX_ERRMSG];
	char sqlstate[6];
};

struct cm_pg_result {
	PGresult *res;
};

bool
cm_pg_ident_valid(const char *s)
{
	size_t i;

	if (s == NULL || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= IDENT_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* snprintf of SQL around a (checked) schema name; false if it did not fit. */
static bool __attribute__((format(printf, 2, 3)))
sql_printf(char out[SQL_MAX], const char *fmt, ...)
{
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(out, SQL_MAX, fmt, ap);
	va_end(ap);
	return n >= 0 && n < SQL_MAX;
}

static void
set_error(cm_pg *pg, const char *msg, const char *state)
{
	size_t n;

	cm_strlcpy(pg->errmsg, msg != NULL ? msg : "", sizeof(pg->errmsg));
	n = strlen(pg->errmsg);
	while (n > 0 && (pg->errmsg[n - 1] == '\n' || pg->errmsg[n - 1] == ' '))
		pg->errmsg[--n] = '\0';
	cm_strlcpy(pg->sqlstate, state != NULL ? state : "", sizeof(pg->sqlstate));
}

static void
forget(cm_pg *pg)
{
	if (pg->conn != NULL) {
		PQfinish(pg->conn);
		pg->conn = NULL;
	}
	for (int i = 0; i < pg->n_stmts; i++)
		free(pg->stmts[i].sql);
	pg->n_stmts = 0; /* prepared statements die with their connection */
}

/* The connection is gone (or unusable): close it and start the back-off. in_tx: whether a
 * transaction was open on it. Logged once per outage. */
static void
lost(cm_pg *pg, bool in_tx)
{
	if (!pg->down_logged)
		cm_warn("PG-CONNECTION-LOST", "PostgreSQL connection lost: %s", pg->errmsg);
	pg->down_logged = true;
	pg->tx_lost = pg->tx_lost || in_tx;
	forget(pg);
	pg->last_fail_ms = cm_mono_ms();
}

static bool
tx_open(const cm_pg *pg)
{
	PGTransactionStatusType ts;

	if (pg->conn == NULL)
		return false;
	ts = PQtransactionStatus(pg->conn);
	return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

/* A connection the server closed while we were idle (a restart) shows up as EOF on the socket:
 * notice it before sending anything, so the statement goes to a fresh connection instead of
 * failing. PQconsumeInput does not block. */
static bool
still_alive(cm_pg *pg)
{
	/* The first read may return the server's goodbye message, the second the EOF. */
	for (int i = 0; i < 2; i++) {
		if (PQconsumeInput(pg->conn) != 1 || PQstatus(pg->conn) != CONNECTION_OK)
			return false;
	}
	return true;
}

static void
ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* CREATE SCHEMA IF NOT EXISTS + SET search_path on a fresh connection. */
static cm_err
set_schema(cm_pg *pg)
{
	PGresult *r = NULL;
	char      sql[SQL_MAX];
	cm_err    err = CM_OK;

	if (!sql_printf(sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"; SET search_path TO \"%s\"",
	                pg->schema, pg->schema)) {
		err = CM_EINTERNAL;
		goto out;
	}
	r = PQexec(pg->conn, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		goto out;
	/* Replicas racing to create the schema (or no right to create one): what matters is the
	 * search_path. */
	PQclear(r);
	if (!sql_printf(sql, "SET search_path TO \"%s\"", pg->schema)) {
		r = NULL;
		err = CM_EINTERNAL;
		goto out;
	}
	r = PQexec(pg->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_error(pg, PQerrorMessage(pg->conn), PQresultErrorField(r, PG_DIAG_SQLSTATE));
		err = CM_EUNAVAIL;
	}
out:
	PQclear(r);
	return err;
}

/* Makes sure a usable connection exists. */
static cm_err
ensure(cm_pg *pg)
{
	cm_err err = CM_OK;
	bool   in_tx;

	if (pg->tx_lost) {
		set_error(pg, "connection lost inside a transaction (roll it back first)", "08006");
		err = CM_EUNAVAIL;
		goto out;
	}
	if (pg->conn != NULL) {
		in_tx = tx_open(pg);
		if (PQstatus(pg->conn) == CONNECTION_OK && still_alive(pg))
			goto out;
		/* Closed under us while idle (a restart): reconnect now, no back-off - but not in
		 * the middle of a transaction. */
		set_error(pg, PQerrorMessage(pg->conn), "08006");
		forget(pg);
		if (in_tx) {
			cm_warn("PG-TX-LOST", "PostgreSQL connection lost inside a transaction: %s",
			        pg->errmsg);
			pg->tx_lost = true;
			err = CM_EUNAVAIL;
			goto out;
		}
	}
	if (pg->last_fail_ms != 0 && cm_mono_ms() - pg->last_fail_ms < CM_PG_RETRY_MS) {
		set_error(pg, "database unavailable (waiting before reconnecting)", "08006");
		err = CM_EUNAVAIL;
		goto out;
	}
	pg->conn = cm_pg_connect_with(pg->conninfo, pg->ceiling_ms, pg->lock_ms);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		set_error(pg, pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory",
		          "08001");
		if (!pg->down_logged)
			cm_warn("PG-CONNECT-FAIL", "cannot connect to PostgreSQL: %s", pg->errmsg);
		pg->down_logged = true;
		forget(pg);
		pg->last_fail_ms = cm_mono_ms();
		err = CM_EUNAVAIL;
		goto out;
	}
	PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
	if (pg->schema != NULL && (err = set_schema(pg)) != CM_OK) {
		forget(pg);
		pg->last_fail_ms = cm_mono_ms();
		goto out;
	}
	pg->sess_timeout = pg->ceiling_ms > 0 ? pg->ceiling_ms : CM_PG_TIMEOUT_NONE;
	pg->local_set = false;
	if (pg->down_logged)
		cm_info("PG-CONNECTED", "connected to PostgreSQL again");
	pg->down_logged = false;
	pg->last_fail_ms = 0;
out:
	return err;
}

cm_err
cm_pg_open(cm_pg **out, const char *conninfo, const char *schema)
{
	cm_pg *pg = NULL;
	cm_err err = CM_OK;

	*out = NULL;
	if (conninfo == NULL || (schema != NULL && !cm_pg_ident_valid(schema))) {
		err = CM_EINVAL;
		goto out;
	}
	if ((pg = calloc(1, sizeof(*pg))) == NULL || (pg->conninfo = strdup(conninfo)) == NULL ||
	    (schema != NULL && (pg->schema = strdup(schema)) == NULL)) {
		err = CM_ENOMEM;
		goto out;
	}
	cm_pg_default_timeouts(&pg->ceiling_ms, &pg->lock_ms);
	*out = pg;
	pg = NULL;
out:
	cm_pg_close(pg);
	return err;
}

cm_err
cm_pg_open_like(const cm_pg *pg, cm_pg **out)
{
	return cm_pg_open(out, pg->conninfo, pg->schema);
}

void
cm_pg_close(cm_pg *pg)
{
	if (pg == NULL)
		return;
	forget(pg);
	free(pg->conninfo);
	free(pg->schema);
	free(pg);
}

/* Maps a failed result. in_tx: a transaction was open before the statement. */
static cm_err
map_error(cm_pg *pg, PGresult *r, bool in_tx)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	cm_err      err;

	set_error(pg, pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection", state);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		if (state == NULL)
			cm_strlcpy(pg->sqlstate, "08006", sizeof(pg->sqlstate));
		lost(pg, in_tx);
		err = CM_EUNAVAIL;
	} else if (state == NULL) {
		err = CM_EINTERNAL;
	} else if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
		/* Cancelled by statement_timeout (or a cancel request) or lock_timeout: the
		 * connection stays usable; an open transaction is now aborted. */
		err = CM_ETIMEDOUT;
	} else if (strcmp(state, "23505") == 0) {
		err = CM_EEXIST;
	} else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
		err = CM_EINVAL;
	} else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	           strcmp(state, "53300") == 0) {
		/* Connection exceptions, admin/crash shutdown, too many connections. */
		lost(pg, in_tx);
		err = CM_EUNAVAIL;
	} else {
		err = CM_EINTERNAL;
	}
	return err;
}

/* Runs a statement, prepared once per connection: a hot query skips parsing and planning on
 * every later call. The cache keys on the SQL text (a hash, then the text), so SQL built at run
 * time is safe too. Past STMT_CACHE distinct texts, statements run unprepared. */
static PGresult *
run(cm_pg *pg, const char *sql, int nparams, const char *const *params)
{
	PGresult *r;
	pg_stmt  *st = NULL;
	uint64_t  h = cm_hash_str(sql);

	for (int i = 0; i < pg->n_stmts; i++) {
		if (pg->stmts[i].hash == h && strcmp(pg->stmts[i].sql, sql) == 0) {
			st = &pg->stmts[i];
			break;
		}
	}
	if (st == NULL && pg->n_stmts < STMT_CACHE) {
		pg_stmt *n = &pg->stmts[pg->n_stmts];
		char    *copy = strdup(sql);
		if (copy == NULL)
			return PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		snprintf(n->name, sizeof(n->name), "cm%d", pg->n_stmts);
		r = PQprepare(pg->conn, n->name, sql, nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			free(copy);
			return r; /* the caller maps the error (syntax, connection) */
		}
		PQclear(r);
		n->sql = copy;
		n->hash = h;
		pg->n_stmts++;
		st = n;
	}
	if (st == NULL)
		return PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	return PQexecPrepared(pg->conn, st->name, nparams, params, NULL, NULL, 0);
}

/* CM_ETIMEDOUT, without a word to the server, when the deadline has passed or an earlier
 * statement of the open transaction failed that way. */
static cm_err
check_deadline(cm_pg *pg)
{
	if (pg->tx_timedout) {
		set_error(pg, "transaction failed on its deadline (roll it back first)", "57014");
		return CM_ETIMEDOUT;
	}
	if (pg->deadline_ms != 0 && cm_now_ms() >= pg->deadline_ms) {
		set_error(pg, "deadline passed before the statement was sent", "57014");
		pg->tx_timedout = tx_open(pg);
		return CM_ETIMEDOUT;
	}
	return CM_OK;
}

/* Brings the session's statement_timeout to what the next statement should run with, when it
 * is off by enough to be worth a round trip (see pg_timeout.c). */
static cm_err
bound(cm_pg *pg)
{
	PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
	PGresult               *r = NULL;
	char                    sql[64];
	int64_t                 want, cur;
	bool                    in_tx = ts != PQTRANS_IDLE;
	cm_err                  err = CM_OK;

	if (!in_tx)
		pg->local_set = false; /* a SET LOCAL ended with its transaction */
	if (ts == PQTRANS_INERROR)
		goto out; /* the statement fails anyway (25P02); a SET would too */
	want = cm_pg_timeout_want(pg->ceiling_ms, pg->deadline_ms, cm_now_ms());
	if (want == 0) {
		err = check_deadline(pg); /* passed while connecting */
		goto out;
	}
	cur = pg->local_set ? pg->local_timeout : pg->sess_timeout;
	if (!cm_pg_timeout_change(cur, want, pg->deadline_ms != 0))
		goto out;
	/* The ceiling is the session's default (set at connect), whatever it is. */
	if (want == cm_pg_timeout_want(pg->ceiling_ms, 0, 0))
		snprintf(sql, sizeof(sql), "SET %sstatement_timeout TO DEFAULT",
		         in_tx ? "LOCAL " : "");
	else
		snprintf(sql, sizeof(sql), "SET %sstatement_timeout = %lld", in_tx ? "LOCAL " : "",
		         (long long)want);
	pg->timeout_sets++;
	r = PQexec(pg->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg->sess_timeout = CM_PG_TIMEOUT_UNKNOWN;
		pg->local_set = false;
		err = map_error(pg, r, in_tx);
	} else if (in_tx) {
		pg->local_timeout = want;
		pg->local_set = true;
	} else {
		pg->sess_timeout = want;
	}
out:
	PQclear(r);
	return err;
}

cm_err
cm_pg_exec(cm_pg *pg, const char *sql, int nparams, const char *const *params, cm_pg_result **out)
{
	PGresult      *r = NULL;
	ExecStatusType st;
	cm_err         err;
	bool           in_tx;

	if (out != NULL)
		*out = NULL;
	if ((err = check_deadline(pg)) != CM_OK || (err = ensure(pg)) != CM_OK)
		goto out;
	in_tx = tx_open(pg);
	if ((err = bound(pg)) != CM_OK)
		goto out;
	r = run(pg, sql, nparams, params);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err = map_error(pg, r, in_tx);
		goto out;
	}
	pg->errmsg[0] = pg->sqlstate[0] = '\0';
	if (out != NULL) {
		if ((*out = malloc(sizeof(**out))) == NULL) {
			err = CM_ENOMEM;
			goto out;
		}
		(*out)->res = r;
		r = NULL;
	}
out:
	PQclear(r);
	return err;
}

/* The data goes in pieces: PQputCopyData takes an int length, and a piece at a time keeps
 * libpq's output buffer small. */
#define COPY_PIECE ((size_t)1 << 20)

cm_err
cm_pg_copy_in(cm_pg *pg, const char *sql, const void *data, size_t len)
{
	const char *p = data;
	PGresult   *r = NULL;
	int         sent = 1;
	cm_err      err;
	bool        in_tx;

	if ((err = check_deadline(pg)) != CM_OK || (err = ensure(pg)) != CM_OK)
		goto out;
	in_tx = tx_open(pg);
	if ((err = bound(pg)) != CM_OK)
		goto out;
	r = PQexec(pg->conn, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		err = map_error(pg, r, in_tx);
		goto out;
	}
	PQclear(r);
	for (size_t off = 0; off < len && sent == 1; off += COPY_PIECE)
		sent = PQputCopyData(pg->conn, p + off,
		                     (int)(len - off < COPY_PIECE ? len - off : COPY_PIECE));
	/* On a failed send, ending with an error message makes the server abort the COPY. */
	PQputCopyEnd(pg->conn, sent == 1 ? NULL : "client could not send the data");
	r = PQgetResult(pg->conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		err = map_error(pg, r, in_tx);
	else
		pg->errmsg[0] = pg->sqlstate[0] = '\0';
	/* The connection is idle again only after the NULL result. */
	for (PGresult *more; pg->conn != NULL && (more = PQgetResult(pg->conn)) != NULL;)
		PQclear(more);
out:
	PQclear(r);
	return err;
}

bool
cm_pg_ping(cm_pg *pg)
{
	return cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL) == CM_OK;
}

int
cm_pg_nrows(const cm_pg_result *r)
{
	return r != NULL ? PQntuples(r->res) : 0;
}

const char *
cm_pg_get(const cm_pg_result *r, int row, int col)
{
	if (r == NULL || row < 0 || col < 0 || row >= PQntuples(r->res) || col >= PQnfields(r->res))
		return "";
	return PQgetvalue(r->res, row, col);
}

bool
cm_pg_isnull(const cm_pg_result *r, int row, int col)
{
	return r == NULL || row < 0 || col < 0 || row >= PQntuples(r->res) ||
	       col >= PQnfields(r->res) || PQgetisnull(r->res, row, col);
}

int64_t
cm_pg_affected(const cm_pg_result *r)
{
	int64_t n = 0;

	if (r != NULL && !cm_parse_i64(PQcmdTuples(r->res), &n))
		n = 0;
	return n;
}

void
cm_pg_result_free(cm_pg_result *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}

cm_err
cm_pg_begin(cm_pg *pg)
{
	return cm_pg_exec(pg, "BEGIN", 0, NULL, NULL);
}

/* COMMIT of a transaction that an earlier error aborted "succeeds" with the tag ROLLBACK:
 * that is a failure for the caller. */
cm_err
cm_pg_commit(cm_pg *pg)
{
	cm_pg_result *r = NULL;
	cm_err        err;

	if ((err = cm_pg_exec(pg, "COMMIT", 0, NULL, &r)) != CM_OK)
		goto out;
	if (strcmp(PQcmdStatus(r->res), "COMMIT") != 0) {
		set_error(pg, "transaction was aborted by an earlier error and rolled back",
		          "25P02");
		err = CM_EINTERNAL;
	}
out:
	cm_pg_result_free(r);
	return err;
}

void
cm_pg_rollback(cm_pg *pg)
{
	PGresult *r;

	pg->tx_lost = false;
	pg->tx_timedout = false;
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK)
		return;
	r = PQexec(pg->conn, "ROLLBACK");
	PQclear(r);
}

void
cm_pg_set_deadline(cm_pg *pg, int64_t deadline_ms)
{
	pg->deadline_ms = deadline_ms > 0 ? deadline_ms : 0;
}

uint64_t
cm_pg_timeout_sets(const cm_pg *pg)
{
	return pg->timeout_sets;
}

const char *
cm_pg_errmsg(const cm_pg *pg)
{
	return pg->errmsg;
}

const char *
cm_pg_sqlstate(const cm_pg *pg)
{
	return pg->sqlstate;
}

/* ---- migrations ---------------------------------------------------------------------------- */

/* Runs migration text (several statements, from code, never input) on the open transaction. */
static cm_err
exec_script(cm_pg *pg, const char *sql)
{
	PGresult *r = NULL;
	cm_err    err = CM_OK;

	if (sql == NULL) {
		set_error(pg, "migration has no SQL", NULL);
		err = CM_EINVAL;
		goto out;
	}
	r = PQexec(pg->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		err = map_error(pg, r, true);
out:
	PQclear(r);
	return err;
}

/* Opens the migration transaction: the advisory lock for `schema`, the schema and its
 * schema_migrations table, and `schema` as the search_path of this transaction only, so that
 * migration SQL lands there whatever the handle's own schema is. */
static cm_err
migrate_begin(cm_pg *pg, const char *schema)
{
	char        sql[SQL_MAX];
	const char *p[1] = {schema};
	cm_err      err;

	if ((err = cm_pg_begin(pg)) != CM_OK)
		goto out;
	/* Waiting for another replica's migrations is bounded by the statement ceiling, not by
	 * lock_timeout (meant for row locks: a long migration would fail the replicas that wait).
	 */
	if ((err = exec_script(pg, "SET LOCAL lock_timeout = 0")) != CM_OK ||
	    (err = cm_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, p, NULL)) !=
	        CM_OK ||
	    (err = exec_script(pg, "SET LOCAL lock_timeout TO DEFAULT")) != CM_OK)
		goto out;
	if (!sql_printf(
	        sql,
	        "CREATE SCHEMA IF NOT EXISTS \"%s\"; SET LOCAL search_path TO \"%s\"; "
	        "CREATE TABLE IF NOT EXISTS \"%s\".schema_migrations (version int PRIMARY KEY, "
	        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	        schema, schema, schema)) {
		err = CM_EINTERNAL;
		goto out;
	}
	err = exec_script(pg, sql);
out:
	if (err != CM_OK)
		cm_pg_rollback(pg);
	return err;
}

cm_err
cm_pg_schema_version(cm_pg *pg, const char *schema, int *version)
{
	cm_pg_result *r = NULL;
	char          sql[SQL_MAX];
	cm_err        err;
	int64_t       v = 0;

	*version = 0;
	if (!cm_pg_ident_valid(schema)) {
		err = CM_EINVAL;
		goto out;
	}
	if (!sql_printf(sql, "SELECT coalesce(max(version), 0) FROM \"%s\".schema_migrations",
	                schema)) {
		err = CM_EINTERNAL;
		goto out;
	}
	if ((err = cm_pg_exec(pg, sql, 0, NULL, &r)) != CM_OK) {
		/* No schema or table yet means nothing applied. */
		if (strcmp(cm_pg_sqlstate(pg), "42P01") == 0 ||
		    strcmp(cm_pg_sqlstate(pg), "3F000") == 0)
			err = CM_OK;
		goto out;
	}
	if (!cm_parse_i64(cm_pg_get(r, 0, 0), &v))
		v = 0;
	*version = (int)v;
out:
	cm_pg_result_free(r);
	return err;
}

/* Both directions: one transaction under the lock, applying ups (up) or downs (!up) of the
 * migrations between the current version and the target, and recording each. */
static cm_err
migrate(cm_pg *pg, const char *schema, const cm_migration *m, size_t n, bool up, int target)
{
	cm_err err;
	int    current = 0;
	bool   in_tx = false;
	char   sql[SQL_MAX], ver[16];

	if (!cm_pg_ident_valid(schema)) {
		err = CM_EINVAL;
		goto out;
	}
	if ((err = migrate_begin(pg, schema)) != CM_OK)
		goto out;
	in_tx = true;
	if ((err = cm_pg_schema_version(pg, schema, &current)) != CM_OK)
		goto out;
	if (!(up ? sql_printf(sql,
	                      "INSERT INTO \"%s\".schema_migrations(version, name) VALUES ($1, $2)",
	                      schema)
	         : sql_printf(sql, "DELETE FROM \"%s\".schema_migrations WHERE version = $1",
	                      schema))) {
		err = CM_EINTERNAL;
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		const cm_migration *mi = up ? &m[k] : &m[n - 1 - k]; /* down: newest first */
		const char         *p[2];

		if (up ? mi->version <= current : (mi->version > current || mi->version <= target))
			continue;
		if ((err = exec_script(pg, up ? mi->up : mi->down)) != CM_OK) {
			cm_error("PG-MIGRATE-FAIL", "%s: %s of migration %d (%s) failed: %s",
			         schema, up ? "applying" : "rolling back", mi->version, mi->name,
			         pg->errmsg);
			goto out;
		}
		snprintf(ver, sizeof(ver), "%d", mi->version);
		p[0] = ver;
		p[1] = mi->name;
		if ((err = cm_pg_exec(pg, sql, up ? 2 : 1, p, NULL)) != CM_OK)
			goto out;
		cm_info("PG-MIGRATE", "%s: %s migration %d (%s)", schema,
		        up ? "applied" : "rolled back", mi->version, mi->name);
	}
	err = cm_pg_commit(pg);
	in_tx = err != CM_OK;
out:
	if (in_tx)
		cm_pg_rollback(pg);
	return err;
}

cm_err
cm_pg_migrate_up(cm_pg *pg, const char *schema, const cm_migration *m, size_t n)
{
	return migrate(pg, schema, m, n, true, 0);
}

cm_err
cm_pg_migrate_down(cm_pg *pg, const char *schema, const cm_migration *m, size_t n, int target)
{
	return migrate(pg, schema, m, n, false, target);
}

char *
cm_pg_bytea_param(const void *p, size_t len)
{
	char *s;

	if (len > (SIZE_MAX - 3) / 2 || (s = malloc(2 * len + 3)) == NULL)
		return NULL;
	s[0] = '\\';
	s[1] = 'x';
	cm_hex(p != NULL ? p : "", len, s + 2);
	return s;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

cm_err
cm_pg_bytea_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t   n = strlen(s), i;
	uint8_t *b;

	*out = NULL;
	*len = 0;
	if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2 != 0)
		return CM_EPROTO; /* bytea_output must be 'hex' (the default) */
	n = (n - 2) / 2;
	if ((b = malloc(n > 0 ? n : 1)) == NULL)
		return CM_ENOMEM;
	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(b);
			return CM_EPROTO;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = b;
	*len = n;
	return CM_OK;
}
