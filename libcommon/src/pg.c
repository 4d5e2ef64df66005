/*
 * pg.c - one PostgreSQL connection for one thread, that survives server restarts.
 *
 * DESIGN. The handle connects lazily. A statement that fails because the connection is gone
 * (PQstatus() == CONNECTION_BAD afterwards) drops the connection and returns CM_EUNAVAIL; the
 * statement is never retried, since it may have reached the server. The next call reconnects,
 * but not sooner than CM_PG_RETRY_MS after the last failed attempt, so while the database is
 * down every call fails at once instead of each worker waiting on connect. "Connection lost" is
 * logged once per outage. Every statement is PQexecParams with text parameters; the only text we
 * put into SQL ourselves is the schema name, which comes from code and is checked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/pg.h"
#include "cm/util.h"

#define STMT_CACHE 64

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
	char    errmsg[256];
	char    sqlstate[6];
};

struct cm_pg_result {
	PGresult *res;
};

static bool
valid_ident(const char *s)
{
	if (s == NULL || !(islower((unsigned char) s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (i >= 63 || !(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) ||
		                  s[i] == '_'))
			return false;
	}
	return true;
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

static void
drop(cm_pg *pg)
{
	forget(pg);
	pg->last_fail_ms = cm_mono_ms();
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
	(void) arg;
	(void) msg;
}

/* Makes sure a usable connection exists. */
static cm_err
ensure(cm_pg *pg)
{
	PGresult *r;
	char      sql[160];

	if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK && still_alive(pg))
		return CM_OK;
	if (pg->conn != NULL)
		forget(pg); /* closed under us: reconnect now, no back-off */
	if (pg->last_fail_ms != 0 && cm_mono_ms() - pg->last_fail_ms < CM_PG_RETRY_MS) {
		set_error(pg, "database unavailable (waiting before reconnecting)", "08006");
		return CM_EUNAVAIL;
	}
	pg->conn = PQconnectdb(pg->conninfo);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		set_error(pg, pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory", "08006");
		if (!pg->down_logged)
			cm_warn("PG-CONNECT-FAIL", "cannot connect to PostgreSQL: %s", pg->errmsg);
		pg->down_logged = true;
		drop(pg);
		return CM_EUNAVAIL;
	}
	PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
	if (pg->schema != NULL) {
		snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS \"%s\"; SET search_path TO \"%s\"",
		    pg->schema, pg->schema);
		r = PQexec(pg->conn, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			/* Replicas racing to create the schema: only the search_path matters. */
			PQclear(r);
			snprintf(sql, sizeof(sql), "SET search_path TO \"%s\"", pg->schema);
			r = PQexec(pg->conn, sql);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				set_error(pg, PQerrorMessage(pg->conn), "08006");
				PQclear(r);
				drop(pg);
				return CM_EUNAVAIL;
			}
		}
		PQclear(r);
	}
	if (pg->down_logged)
		cm_info("PG-CONNECTED", "connected to PostgreSQL again");
	pg->down_logged  = false;
	pg->last_fail_ms = 0;
	return CM_OK;
}

cm_err
cm_pg_open(cm_pg **out, const char *conninfo, const char *schema)
{
	cm_pg *pg;
	size_t n;

	if (conninfo == NULL || (schema != NULL && !valid_ident(schema)))
		return CM_EINVAL;
	if ((pg = calloc(1, sizeof(*pg))) == NULL)
		return CM_ENOMEM;
	/* A connect timeout keeps a worker from hanging on an unreachable host. */
	n = strlen(conninfo) + 40;
	if ((pg->conninfo = malloc(n)) == NULL ||
	    (schema != NULL && (pg->schema = strdup(schema)) == NULL)) {
		cm_pg_close(pg);
		return CM_ENOMEM;
	}
	if (strstr(conninfo, "connect_timeout") != NULL || strstr(conninfo, "://") != NULL)
		cm_strlcpy(pg->conninfo, conninfo, n);
	else
		snprintf(pg->conninfo, n, "%s connect_timeout=%d", conninfo, CM_PG_CONNECT_TIMEOUT_S);
	*out = pg;
	return CM_OK;
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

static cm_err
map_error(cm_pg *pg, PGresult *r)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	set_error(pg, pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection", state);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		if (!pg->down_logged)
			cm_warn("PG-CONNECTION-LOST", "PostgreSQL connection lost: %s", pg->errmsg);
		pg->down_logged = true;
		drop(pg);
		return CM_EUNAVAIL;
	}
	if (state == NULL)
		return CM_EINTERNAL;
	if (strcmp(state, "23505") == 0)
		return CM_EEXIST;
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return CM_EINVAL;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "53300") == 0) {
		drop(pg);
		return CM_EUNAVAIL;
	}
	return CM_EINTERNAL;
}

static uint64_t
sql_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t) *s) * 1099511628211ull;
	return h;
}

/* Runs a statement, prepared once per connection: a hot query skips parsing and planning on
 * every later call. The cache keys on the SQL text (a hash, then the text), so SQL built at run
 * time is safe too. Past STMT_CACHE distinct texts, statements run unprepared. */
static PGresult *
run(cm_pg *pg, const char *sql, int nparams, const char *const *params)
{
	PGresult *r;
	pg_stmt  *st = NULL;
	uint64_t  h  = sql_hash(sql);

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
		n->sql  = copy;
		n->hash = h;
		pg->n_stmts++;
		st = n;
	}
	if (st == NULL)
		return PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	return PQexecPrepared(pg->conn, st->name, nparams, params, NULL, NULL, 0);
}

cm_err
cm_pg_exec(cm_pg *pg, const char *sql, int nparams, const char *const *params, cm_pg_result **out)
{
	PGresult      *r;
	ExecStatusType st;
	cm_err         err;

	if (out != NULL)
		*out = NULL;
	if ((err = ensure(pg)) != CM_OK)
		return err;
	r  = run(pg, sql, nparams, params);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err = map_error(pg, r);
		PQclear(r);
		return err;
	}
	pg->errmsg[0] = pg->sqlstate[0] = '\0';
	if (out == NULL) {
		PQclear(r);
		return CM_OK;
	}
	if ((*out = malloc(sizeof(**out))) == NULL) {
		PQclear(r);
		return CM_ENOMEM;
	}
	(*out)->res = r;
	return CM_OK;
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
	if (r == NULL || row >= PQntuples(r->res) || col >= PQnfields(r->res))
		return "";
	return PQgetvalue(r->res, row, col);
}

bool
cm_pg_isnull(const cm_pg_result *r, int row, int col)
{
	return r == NULL || row >= PQntuples(r->res) || col >= PQnfields(r->res) ||
	       PQgetisnull(r->res, row, col);
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

cm_err
cm_pg_commit(cm_pg *pg)
{
	return cm_pg_exec(pg, "COMMIT", 0, NULL, NULL);
}

void
cm_pg_rollback(cm_pg *pg)
{
	PGresult *r;

	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK)
		return;
	r = PQexec(pg->conn, "ROLLBACK");
	PQclear(r);
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
	PGresult *r = PQexec(pg->conn, sql);
	cm_err    err = CM_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		err = map_error(pg, r);
	PQclear(r);
	return err;
}

static cm_err
migrate_lock(cm_pg *pg, const char *schema)
{
	char        sql[512];
	const char *p[1] = {schema};
	cm_err      err;

	if ((err = cm_pg_begin(pg)) != CM_OK)
		return err;
	if ((err = cm_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, p, NULL)) != CM_OK)
		goto fail;
	snprintf(sql, sizeof(sql),
	    "CREATE SCHEMA IF NOT EXISTS \"%s\"; CREATE TABLE IF NOT EXISTS \"%s\".schema_migrations "
	    "(version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	    schema, schema);
	if ((err = exec_script(pg, sql)) != CM_OK)
		goto fail;
	return CM_OK;
fail:
	cm_pg_rollback(pg);
	return err;
}

cm_err
cm_pg_schema_version(cm_pg *pg, const char *schema, int *version)
{
	cm_pg_result *r = NULL;
	char          sql[512];
	cm_err        err;
	int64_t       v = 0;

	*version = 0;
	if (!valid_ident(schema))
		return CM_EINVAL;
	snprintf(sql, sizeof(sql),
	    "SELECT coalesce(max(version), 0) FROM \"%s\".schema_migrations", schema);
	if ((err = cm_pg_exec(pg, sql, 0, NULL, &r)) != CM_OK) {
		/* No table yet means nothing applied. */
		if (strcmp(cm_pg_sqlstate(pg), "42P01") == 0 || strcmp(cm_pg_sqlstate(pg), "3F000") == 0)
			return CM_OK;
		return err;
	}
	if (!cm_parse_i64(cm_pg_get(r, 0, 0), &v))
		v = 0;
	*version = (int) v;
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
cm_pg_migrate_up(cm_pg *pg, const char *schema, const cm_migration *m, size_t n)
{
	cm_err err;
	int    current = 0;
	char   sql[512], ver[16];

	if (!valid_ident(schema))
		return CM_EINVAL;
	if ((err = migrate_lock(pg, schema)) != CM_OK)
		return err;
	if ((err = cm_pg_schema_version(pg, schema, &current)) != CM_OK)
		goto fail;
	snprintf(sql, sizeof(sql), "INSERT INTO \"%s\".schema_migrations(version, name) VALUES ($1, $2)",
	    schema);
	for (size_t i = 0; i < n; i++) {
		const char *p[2];
		if (m[i].version <= current)
			continue;
		if ((err = exec_script(pg, m[i].up)) != CM_OK) {
			cm_error("PG-MIGRATE-FAIL", "%s migration %d (%s) failed: %s", schema,
			    m[i].version, m[i].name, pg->errmsg);
			goto fail;
		}
		snprintf(ver, sizeof(ver), "%d", m[i].version);
		p[0] = ver;
		p[1] = m[i].name;
		if ((err = cm_pg_exec(pg, sql, 2, p, NULL)) != CM_OK)
			goto fail;
		cm_info("PG-MIGRATE", "%s: applied migration %d (%s)", schema, m[i].version, m[i].name);
	}
	return cm_pg_commit(pg);
fail:
	cm_pg_rollback(pg);
	return err;
}

cm_err
cm_pg_migrate_down(cm_pg *pg, const char *schema, const cm_migration *m, size_t n, int target)
{
	cm_err err;
	int    current = 0;
	char   sql[512], ver[16];

	if (!valid_ident(schema))
		return CM_EINVAL;
	if ((err = migrate_lock(pg, schema)) != CM_OK)
		return err;
	if ((err = cm_pg_schema_version(pg, schema, &current)) != CM_OK)
		goto fail;
	snprintf(sql, sizeof(sql), "DELETE FROM \"%s\".schema_migrations WHERE version = $1", schema);
	for (size_t i = n; i-- > 0;) {
		const char *p[1];
		if (m[i].version > current || m[i].version <= target)
			continue;
		if ((err = exec_script(pg, m[i].down)) != CM_OK) {
			cm_error("PG-MIGRATE-FAIL", "%s rollback of %d (%s) failed: %s", schema,
			    m[i].version, m[i].name, pg->errmsg);
			goto fail;
		}
		snprintf(ver, sizeof(ver), "%d", m[i].version);
		p[0] = ver;
		if ((err = cm_pg_exec(pg, sql, 1, p, NULL)) != CM_OK)
			goto fail;
		cm_info("PG-MIGRATE", "%s: rolled back migration %d (%s)", schema, m[i].version,
		    m[i].name);
	}
	return cm_pg_commit(pg);
fail:
	cm_pg_rollback(pg);
	return err;
}
