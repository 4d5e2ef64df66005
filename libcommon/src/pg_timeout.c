/*
 * pg_timeout.c - how long a PostgreSQL statement may run (the contract is in pg.h).
 *
 * DESIGN. Two bounds, both PostgreSQL's own, so a statement that overruns is cancelled by the
 * server and the connection stays usable (no client-side cancel, which needs a second
 * connection).
 *
 * The process-wide defaults (the statement ceiling and lock_timeout) travel in the startup
 * packet as libpq's `options` ("-c statement_timeout=N -c lock_timeout=M"): no round trip, and
 * they hold from the first statement of every connection, including ones the job listener opens.
 * The caller's conninfo may be key=value or a URI and may carry options of its own (or
 * PGOPTIONS may): those are kept and ours are appended, since a later -c wins.
 *
 * A deadline lowers statement_timeout statement by statement. Changing it costs a round trip
 * (SET), so pg.c tracks the session's value and asks cm_pg_timeout_change whether a change is
 * worth it. The remaining time shrinks between any two statements, so "lower than the current
 * value" alone would mean a SET before every statement under a deadline tighter than the
 * ceiling. Instead the current value may exceed the wanted one by a tenth of it (a statement can
 * then end at most that much after its deadline), and is raised only when the wanted value is
 * more than 25% and 100 ms above it: calls with similar budgets reuse one setting, and calls
 * with generous deadlines (beyond the ceiling) never change it. Without a deadline the ceiling
 * is restored exactly.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cm/limits.h"
#include "cm/pg.h"
#include "pg_int.h"

#define TIMEOUT_MAX_MS 2147483647 /* PostgreSQL keeps timeouts in an int of milliseconds */
#define RAISE_MIN_MS 100

static _Atomic int64_t default_statement_ms;
static _Atomic int64_t default_lock_ms;

static int64_t
clamp(int64_t ms)
{
	return ms < 0 ? 0 : ms > TIMEOUT_MAX_MS ? TIMEOUT_MAX_MS : ms;
}

void
cm_pg_set_default_timeouts(int64_t statement_ms, int64_t lock_ms)
{
	atomic_store(&default_statement_ms, clamp(statement_ms));
	atomic_store(&default_lock_ms, clamp(lock_ms));
}

void
cm_pg_default_timeouts(int64_t *statement_ms, int64_t *lock_ms)
{
	*statement_ms = atomic_load(&default_statement_ms);
	*lock_ms = atomic_load(&default_lock_ms);
}

char *
cm_pg_session_options(const char *conninfo, int64_t statement_ms, int64_t lock_ms)
{
	PQconninfoOption *parsed = NULL;
	const char       *given = NULL;
	char             *errmsg = NULL, *s = NULL;
	size_t            cap, len;

	/* Explicit values only (no defaults); NULL for a bare database name, which has none. */
	parsed = PQconninfoParse(conninfo, &errmsg);
	for (PQconninfoOption *o = parsed; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "options") == 0 && o->val != NULL && o->val[0] != '\0')
			given = o->val;
	}
	if (given == NULL)
		given = getenv("PGOPTIONS"); /* what libpq would use when we pass none */
	if (given == NULL)
		given = "";
	cap = strlen(given) + 80;
	if ((s = malloc(cap)) == NULL)
		goto out;
	len = (size_t)snprintf(s, cap, "%s", given);
	if (statement_ms > 0)
		len += (size_t)snprintf(s + len, cap - len, "%s-c statement_timeout=%lld",
		                        len > 0 ? " " : "", (long long)clamp(statement_ms));
	if (lock_ms > 0)
		snprintf(s + len, cap - len, "%s-c lock_timeout=%lld", len > 0 ? " " : "",
		         (long long)clamp(lock_ms));
out:
	PQconninfoFree(parsed);
	PQfreemem(errmsg);
	return s;
}

PGconn *
cm_pg_connect_with(const char *conninfo, int64_t statement_ms, int64_t lock_ms)
{
	char    timeout[16];
	char   *options = cm_pg_session_options(conninfo, statement_ms, lock_ms);
	PGconn *conn = NULL;
	/* Entries before the expanded dbname are defaults the conninfo may override; options come
	 * after it, so ours (which already include the caller's) win. Keepalives and
	 * tcp_user_timeout make a server that vanishes without closing (a dead node, a partition)
	 * fail the statement within about 15 s instead of blocking the worker for good. */
	const char *keys[] = {"connect_timeout",
	                      "keepalives",
	                      "keepalives_idle",
	                      "keepalives_interval",
	                      "keepalives_count",
	                      "tcp_user_timeout",
	                      "dbname",
	                      "options",
	                      NULL};
	const char *vals[] = {timeout, "1", "10", "5", "2", "15000", conninfo, options, NULL};

	if (options == NULL)
		goto out;
	snprintf(timeout, sizeof(timeout), "%d", CM_PG_CONNECT_TIMEOUT_S);
	conn = PQconnectdbParams(keys, vals, 1);
out:
	free(options);
	return conn;
}

PGconn *
cm_pg_connect_raw(const char *conninfo)
{
	int64_t st, lk;

	cm_pg_default_timeouts(&st, &lk);
	return cm_pg_connect_with(conninfo, st, lk);
}

int64_t
cm_pg_timeout_want(int64_t ceiling_ms, int64_t deadline_ms, int64_t now_ms)
{
	int64_t c = ceiling_ms > 0 ? ceiling_ms : CM_PG_TIMEOUT_NONE, left;

	if (deadline_ms <= 0)
		return c;
	left = deadline_ms - now_ms;
	if (left <= 0)
		return 0;
	return left < c ? left : c;
}

bool
cm_pg_timeout_change(int64_t cur_ms, int64_t want_ms, bool deadline)
{
	if (cur_ms == CM_PG_TIMEOUT_UNKNOWN)
		return true;
	if (!deadline)
		return cur_ms != want_ms;
	if (want_ms < cur_ms)
		return cur_ms - want_ms > want_ms / 10;
	return want_ms - cur_ms > RAISE_MIN_MS && want_ms - cur_ms > cur_ms / 4;
}
