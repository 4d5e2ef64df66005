/*
 * test_pg.c - the PostgreSQL wrapper against a real server (fixture pgredis): parameters,
 * errors, transactions, migrations up/down under concurrency, a connection lost inside a
 * transaction, connect timeouts, statement bounds (deadlines, the statement ceiling,
 * lock_timeout, the SETs they cost), and a server outage and restart.
 *
 * The whole run uses the process-wide bounds DEF_STATEMENT_MS / DEF_LOCK_MS; a test that needs
 * other ones opens its handles with open_bounded.
 *
 * Every test uses schemas unique to this run (dropped at the end). The outage test stops the
 * shared server: its teardown starts it again whatever happened, since later tests need it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/pg.h"
#include "cm/util.h"

#define DEF_STATEMENT_MS 10000
#define DEF_LOCK_MS 2000

static char schema[40];
static char long_schema[64]; /* 63 characters, the longest name PostgreSQL keeps */

static const cm_migration migs[] = {
    {1, "items",
     "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, note text);",
     "DROP TABLE items;"},
    {2, "tags",
     "CREATE TABLE tags (item int REFERENCES items(id), tag text NOT NULL);"
     "CREATE INDEX tags_tag ON tags(tag);",
     "DROP TABLE tags;"},
};

static cm_pg *
open_pg(const char *s)
{
	cm_pg *pg = NULL;
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), s), CM_OK);
	return pg;
}

/* A handle opened under other process-wide bounds (handles keep what they were opened with). */
static cm_pg *
open_bounded(const char *s, int64_t statement_ms, int64_t lock_ms)
{
	cm_pg *pg;

	cm_pg_set_default_timeouts(statement_ms, lock_ms);
	pg = open_pg(s);
	cm_pg_set_default_timeouts(DEF_STATEMENT_MS, DEF_LOCK_MS);
	return pg;
}

/* The single value of a one-row, one-column query, copied into out. */
static void
query1(cm_pg *pg, const char *sql, const char *param, char *out, size_t outlen)
{
	cm_pg_result *r = NULL;
	const char   *p[1] = {param};

	if (cm_pg_exec(pg, sql, param != NULL ? 1 : 0, param != NULL ? p : NULL, &r) != CM_OK)
		fail_msg("%s: %s", sql, cm_pg_errmsg(pg));
	assert_int_equal(cm_pg_nrows(r), 1);
	cm_strlcpy(out, cm_pg_get(r, 0, 0), outlen);
	cm_pg_result_free(r);
}

static void
harness(const char *cmd)
{
	char line[1024];
	snprintf(line, sizeof(line), "%s/pgredis.sh %s %s", getenv("CM_TEST_HARNESS"), cmd,
	         getenv("CM_TEST_STATE"));
	assert_int_equal(system(line), 0);
}

static int
setup(void **state)
{
	char id[37];

	(void)state;
	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "t_%.8s", id);
	memset(long_schema, 'l', sizeof(long_schema) - 1);
	memcpy(long_schema, schema, strlen(schema)); /* unique prefix, padded to 63 */
	long_schema[sizeof(long_schema) - 1] = '\0';
	return 0;
}

static int
teardown(void **state)
{
	cm_pg *pg = NULL;
	char   sql[200];
	int    rc = 0;

	(void)state;
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), NULL) != CM_OK)
		return -1;
	/* Names from setup(): checked identifiers, safe to put into SQL text. */
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
	if (cm_pg_exec(pg, sql, 0, NULL, NULL) != CM_OK)
		rc = -1;
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", long_schema);
	if (cm_pg_exec(pg, sql, 0, NULL, NULL) != CM_OK)
		rc = -1;
	cm_pg_close(pg);
	return rc;
}

/* Whatever the outage test did, leave the shared server running for the tests after it. */
static int
start_pg_again(void **state)
{
	char line[1024];

	(void)state;
	snprintf(line, sizeof(line), "%s/pgredis.sh start-pg %s", getenv("CM_TEST_HARNESS"),
	         getenv("CM_TEST_STATE"));
	return system(line) == 0 ? 0 : -1;
}

static void *
migrate_thread(void *arg)
{
	cm_pg *pg = NULL;
	cm_err err;

	(void)arg;
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK)
		return (void *)(intptr_t)CM_EINTERNAL;
	err = cm_pg_migrate_up(pg, schema, migs, 2);
	cm_pg_close(pg);
	return (void *)(intptr_t)err;
}

static void
test_migrations(void **state)
{
	pthread_t th[3];
	void     *rv;
	int       v;
	char      sql[200], val[32];
	cm_pg    *pg = open_pg(schema);

	(void)state;
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 0); /* nothing applied, no table yet */

	/* Replicas starting together: every one succeeds, each migration is applied once. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], &rv), 0);
		assert_int_equal((intptr_t)rv, CM_OK);
	}
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 2);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) || ':' || string_agg(name, ',' ORDER BY version) "
	         "FROM \"%s\".schema_migrations",
	         schema);
	query1(pg, sql, NULL, val, sizeof(val));
	assert_string_equal(val, "2:items,tags");
	/* Running it again changes nothing. */
	assert_int_equal(cm_pg_migrate_up(pg, schema, migs, 2), CM_OK);
	query1(pg, sql, NULL, val, sizeof(val));
	assert_string_equal(val, "2:items,tags");

	/* Down one step, then to nothing: the tables are gone. */
	assert_int_equal(cm_pg_migrate_down(pg, schema, migs, 2, 1), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 1);
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM tags", 0, NULL, NULL), CM_EINTERNAL);
	assert_string_equal(cm_pg_sqlstate(pg), "42P01");
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM items", 0, NULL, NULL), CM_OK);
	assert_int_equal(cm_pg_migrate_down(pg, schema, migs, 2, 0), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 0);
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM items", 0, NULL, NULL), CM_EINTERNAL);
	assert_string_equal(cm_pg_sqlstate(pg), "42P01");

	/* And up again. */
	assert_int_equal(cm_pg_migrate_up(pg, schema, migs, 2), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 2);
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM tags", 0, NULL, NULL), CM_OK);
	cm_pg_close(pg);
}

/* A handle without a schema (or with another one) still migrates into the named schema. */
static void
test_migrations_land_in_their_schema(void **state)
{
	cm_pg             *pg = open_pg(NULL);
	char               sql[200], val[64];
	int                v;
	const cm_migration m[] = {
	    {1, "lonely", "CREATE TABLE lonely (x int);", "DROP TABLE lonely;"}};

	(void)state;
	assert_int_equal(cm_pg_migrate_up(pg, long_schema, m, 1), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, long_schema, &v), CM_OK);
	assert_int_equal(v, 1);
	snprintf(sql, sizeof(sql), "SELECT coalesce(to_regclass('\"%s\".lonely')::text, 'missing')",
	         long_schema);
	query1(pg, sql, NULL, val, sizeof(val));
	assert_string_not_equal(val, "missing");
	query1(pg, "SELECT coalesce(to_regclass('public.lonely')::text, 'missing')", NULL, val,
	       sizeof(val));
	assert_string_equal(val, "missing");
	assert_int_equal(cm_pg_migrate_down(pg, long_schema, m, 1, 0), CM_OK);
	cm_pg_close(pg);
}

static void
test_bad_schema_names(void **state)
{
	const char *bad[] = {
	    "",       "Auth",
	    "1abc",   "a-b",
	    "a\"b",   "a b",
	    "a;drop", "x123456789012345678901234567890123456789012345678901234567890123" /* 64 */};
	cm_pg *pg = NULL;
	int    v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), bad[i]), CM_EINVAL);
	}
	pg = open_pg(schema);
	assert_int_equal(cm_pg_migrate_up(pg, "a\"b", migs, 2), CM_EINVAL);
	assert_int_equal(cm_pg_migrate_down(pg, "A", migs, 2, 0), CM_EINVAL);
	assert_int_equal(cm_pg_schema_version(pg, "", &v), CM_EINVAL);
	cm_pg_close(pg);
}

/* The longest valid schema name is created and used as the search_path on connect. */
static void
test_long_schema_name(void **state)
{
	cm_pg *pg = open_pg(long_schema);
	char   val[80];

	(void)state;
	assert_int_equal(strlen(long_schema), 63);
	assert_int_equal(cm_pg_exec(pg, "CREATE TABLE IF NOT EXISTS here (x int)", 0, NULL, NULL),
	                 CM_OK);
	query1(pg,
	       "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	       "WHERE c.relname = 'here'",
	       NULL, val, sizeof(val));
	assert_string_equal(val, long_schema);
	cm_pg_close(pg);
}

static void
test_params_and_errors(void **state)
{
	cm_pg        *pg = open_pg(schema);
	cm_pg_result *r = NULL;
	const char   *evil = "x'); DROP TABLE items; -- \\ \"$1\" \xc3\xa9";
	const char   *p[2];
	char          val[16];

	(void)state;
	p[0] = evil;
	p[1] = NULL;
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name, note) VALUES ($1, $2)", 2, p, &r),
	                 CM_OK);
	assert_int_equal(cm_pg_affected(r), 1);
	cm_pg_result_free(r);
	r = NULL;
	assert_int_equal(cm_pg_exec(pg, "SELECT name, note FROM items WHERE name = $1", 1, p, &r),
	                 CM_OK);
	assert_int_equal(cm_pg_nrows(r), 1);
	assert_string_equal(cm_pg_get(r, 0, 0), evil);
	assert_false(cm_pg_isnull(r, 0, 0));
	assert_true(cm_pg_isnull(r, 0, 1));
	assert_string_equal(cm_pg_get(r, 0, 1), "");
	assert_string_equal(cm_pg_get(r, 5, 0), ""); /* out of range is "" and NULL, not a crash */
	assert_true(cm_pg_isnull(r, 0, 9));
	cm_pg_result_free(r);
	r = NULL;
	query1(pg, "SELECT count(*) FROM items", NULL, val, sizeof(val));
	assert_string_equal(val, "1"); /* the table survived its "DROP" */

	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ($1)", 1, p, NULL),
	                 CM_EEXIST);
	assert_string_equal(cm_pg_sqlstate(pg), "23505");
	assert_string_not_equal(cm_pg_errmsg(pg), "");
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES (NULL)", 0, NULL, NULL),
	                 CM_EINVAL);
	assert_string_equal(cm_pg_sqlstate(pg), "23502");
	assert_int_equal(cm_pg_exec(pg, "SELECT $1::int", 1, (const char *[]){"abc"}, NULL),
	                 CM_EINVAL);
	assert_string_equal(cm_pg_sqlstate(pg), "22P02");
	assert_int_equal(cm_pg_exec(pg, "SELEC nonsense", 0, NULL, NULL), CM_EINTERNAL);
	assert_string_equal(cm_pg_sqlstate(pg), "42601");
	/* Success clears the last error. */
	assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);
	assert_string_equal(cm_pg_sqlstate(pg), "");
	assert_string_equal(cm_pg_errmsg(pg), "");
	cm_pg_close(pg);
}

static void
test_transactions(void **state)
{
	cm_pg        *pg = open_pg(schema);
	cm_pg_result *r = NULL;
	char          val[16];

	(void)state;
	/* A rolled back transaction leaves nothing behind. */
	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('tx')", 0, NULL, &r),
	                 CM_OK);
	assert_int_equal(cm_pg_affected(r), 1);
	cm_pg_result_free(r);
	cm_pg_rollback(pg);
	query1(pg, "SELECT count(*) FROM items WHERE name = 'tx'", NULL, val, sizeof(val));
	assert_string_equal(val, "0");

	/* A committed one does. */
	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('tx')", 0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(cm_pg_commit(pg), CM_OK);
	query1(pg, "SELECT count(*) FROM items WHERE name = 'tx'", NULL, val, sizeof(val));
	assert_string_equal(val, "1");

	/* COMMIT of a transaction that an error aborted is a failure, not a silent rollback. */
	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('tx2')", 0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('tx')", 0, NULL, NULL),
	                 CM_EEXIST);
	assert_int_equal(cm_pg_commit(pg), CM_EINTERNAL);
	cm_pg_rollback(pg);
	query1(pg, "SELECT count(*) FROM items WHERE name = 'tx2'", NULL, val, sizeof(val));
	assert_string_equal(val, "0");

	/* Rollback without a transaction is harmless. */
	cm_pg_rollback(pg);
	assert_true(cm_pg_ping(pg));
	cm_pg_close(pg);
}

/* Ends the backend of pg from another connection, waiting until it has exited. */
static void
kill_backend(cm_pg *pg)
{
	char   pid[16], ok[8];
	cm_pg *admin = open_pg(NULL);

	query1(pg, "SELECT pg_backend_pid()::text", NULL, pid, sizeof(pid));
	query1(admin, "SELECT pg_terminate_backend($1::int, 5000)::text", pid, ok, sizeof(ok));
	assert_string_equal(ok, "true");
	cm_pg_close(admin);
}

/* A connection lost while idle is replaced silently, but not inside a transaction: the rest
 * of that transaction must not run on a new connection in autocommit. */
static void
test_connection_lost(void **state)
{
	cm_pg *pg = open_pg(schema);
	char   val[16];

	(void)state;
	assert_true(cm_pg_ping(pg));
	kill_backend(pg);
	assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);

	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('lost1')", 0, NULL, NULL),
	                 CM_OK);
	kill_backend(pg);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('lost2')", 0, NULL, NULL),
	                 CM_EUNAVAIL);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('lost3')", 0, NULL, NULL),
	                 CM_EUNAVAIL);
	assert_int_equal(cm_pg_commit(pg), CM_EUNAVAIL);
	cm_pg_rollback(pg); /* the caller gives the transaction up: the handle works again */
	query1(pg, "SELECT count(*) FROM items WHERE name LIKE 'lost%'", NULL, val, sizeof(val));
	assert_string_equal(val, "0");
	cm_pg_close(pg);
}

/* A server that accepts TCP but never answers: connecting gives up after the connect timeout,
 * whether the conninfo is key=value or a URI, and the next call inside the back-off fails at
 * once. */
static void
test_connect_timeout(void **state)
{
	struct sockaddr_in sa;
	socklen_t          slen = sizeof(sa);
	int                fd;
	char               ci[2][160];

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	snprintf(ci[0], sizeof(ci[0]), "host=127.0.0.1 port=%d dbname=postgres user=postgres",
	         ntohs(sa.sin_port));
	snprintf(ci[1], sizeof(ci[1]), "postgresql://postgres@127.0.0.1:%d/postgres",
	         ntohs(sa.sin_port));
	alarm(30); /* without a connect timeout libpq would wait forever */
	for (int i = 0; i < 2; i++) {
		cm_pg  *pg = NULL;
		int64_t t0, t1, t2;

		assert_int_equal(cm_pg_open(&pg, ci[i], NULL), CM_OK);
		t0 = cm_mono_ms();
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_EUNAVAIL);
		t1 = cm_mono_ms();
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_EUNAVAIL);
		t2 = cm_mono_ms();
		print_message("connect timeout (%s): first call %lld ms, next call %lld ms\n",
		              i == 0 ? "key=value" : "URI", (long long)(t1 - t0),
		              (long long)(t2 - t1));
		assert_true(t1 - t0 >= 1000 && t1 - t0 < 5000);
		assert_true(t2 - t1 < 100);
		assert_string_not_equal(cm_pg_errmsg(pg), "");
		cm_pg_close(pg);
	}
	alarm(0);
	close(fd);
}

static void
test_outage_and_reconnect(void **state)
{
	cm_pg  *pg = open_pg(schema);
	int64_t t0, dt, worst = 0;
	int     ok = 0;

	(void)state;
	assert_true(cm_pg_ping(pg));
	harness("stop-pg");
	for (int i = 0; i < 5; i++) {
		t0 = cm_mono_ms();
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_EUNAVAIL);
		dt = cm_mono_ms() - t0;
		worst = dt > worst ? dt : worst;
		assert_true(dt < 3000);
		if (i == 2)
			usleep(300 *
			       1000); /* past the back-off: a real reconnect attempt, refused */
	}
	assert_false(cm_pg_ping(pg));
	print_message("server down: slowest of 5 calls %lld ms\n", (long long)worst);
	harness("start-pg");
	/* The same handle works again once the back-off has passed; no restart of ours needed. */
	t0 = cm_mono_ms();
	for (int i = 0; i < 50 && !ok; i++) {
		ok = cm_pg_ping(pg);
		if (!ok)
			usleep(50 * 1000);
	}
	assert_true(ok);
	print_message("server back: reconnected after %lld ms\n", (long long)(cm_mono_ms() - t0));
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM items", 0, NULL, NULL),
	                 CM_OK); /* schema set */

	/* A restart while the handle is idle costs no failed statement. */
	harness("restart-pg");
	assert_int_equal(cm_pg_exec(pg, "SELECT 1 FROM items", 0, NULL, NULL), CM_OK);
	cm_pg_close(pg);
}

/* ---- statement bounds ------------------------------------------------------------------- */

/* A setting of pg's session, in its base unit (statement_timeout: ms; work_mem: kB). */
static int64_t
setting(cm_pg *pg, const char *name)
{
	char    val[32];
	int64_t v = -1;

	query1(pg, "SELECT setting FROM pg_settings WHERE name = $1", name, val, sizeof(val));
	assert_true(cm_parse_i64(val, &v));
	return v;
}

static void
backend_pid(cm_pg *pg, char out[16])
{
	query1(pg, "SELECT pg_backend_pid()::text", NULL, out, 16);
}

static void
make_bounded_table(cm_pg *pg)
{
	assert_int_equal(cm_pg_exec(pg,
	                            "CREATE TABLE IF NOT EXISTS bounded (id int PRIMARY KEY, "
	                            "v int NOT NULL)",
	                            0, NULL, NULL),
	                 CM_OK);
}

/* The server cancels a statement at the deadline; the connection stays and serves the next
 * statement, back under the ceiling. Inside a transaction, the transaction fails. */
static void
test_deadline_cancels_statement(void **state)
{
	cm_pg  *pg = open_pg(schema);
	char    pid[16], pid2[16], val[16];
	int64_t t0, dt;

	(void)state;
	make_bounded_table(pg);
	backend_pid(pg, pid);
	cm_pg_set_deadline(pg, cm_now_ms() + 300);
	t0 = cm_mono_ms();
	assert_int_equal(cm_pg_exec(pg, "SELECT pg_sleep(5)", 0, NULL, NULL), CM_ETIMEDOUT);
	dt = cm_mono_ms() - t0;
	print_message("pg_sleep(5) under a deadline 300 ms away: failed after %lld ms\n",
	              (long long)dt);
	assert_string_equal(cm_pg_sqlstate(pg), "57014");
	assert_true(dt >= 250 && dt < 1000);
	cm_pg_set_deadline(pg, 0);
	backend_pid(pg, pid2);
	assert_string_equal(pid2, pid);
	assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);

	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO bounded VALUES (100, 0)", 0, NULL, NULL),
	                 CM_OK);
	cm_pg_set_deadline(pg, cm_now_ms() + 300);
	assert_int_equal(cm_pg_exec(pg, "SELECT pg_sleep(5)", 0, NULL, NULL), CM_ETIMEDOUT);
	cm_pg_set_deadline(pg, 0);
	assert_int_not_equal(cm_pg_commit(pg), CM_OK);
	cm_pg_rollback(pg);
	query1(pg, "SELECT count(*) FROM bounded WHERE id = 100", NULL, val, sizeof(val));
	assert_string_equal(val, "0");
	backend_pid(pg, pid2);
	assert_string_equal(pid2, pid);
	cm_pg_close(pg);
}

/* A deadline that has passed fails the statement before anything is sent: the server's view of
 * the backend's last statement does not change, a handle that has not connected yet does not
 * connect, and inside a transaction the rest of it fails too. */
static void
test_passed_deadline_sends_nothing(void **state)
{
	cm_pg             *pg = open_pg(schema), *admin = open_pg(NULL), *cold = NULL;
	char               pid[16], q[64], val[16], ci[160];
	uint64_t           t0, dt;
	struct sockaddr_in sa;
	socklen_t          slen = sizeof(sa);
	int                fd;

	(void)state;
	make_bounded_table(pg);
	backend_pid(pg, pid);
	assert_int_equal(cm_pg_exec(pg, "SELECT 'sent'", 0, NULL, NULL), CM_OK);
	query1(admin, "SELECT query FROM pg_stat_activity WHERE pid = $1::int", pid, q, sizeof(q));
	assert_string_equal(q, "SELECT 'sent'");
	cm_pg_set_deadline(pg, cm_now_ms() - 1);
	t0 = cm_mono_ns();
	assert_int_equal(cm_pg_exec(pg, "SELECT 'never sent'", 0, NULL, NULL), CM_ETIMEDOUT);
	dt = cm_mono_ns() - t0;
	print_message("passed deadline: failed after %llu us\n", (unsigned long long)(dt / 1000));
	assert_true(dt < 5000000u);
	assert_string_equal(cm_pg_sqlstate(pg), "57014");
	query1(admin, "SELECT query FROM pg_stat_activity WHERE pid = $1::int", pid, q, sizeof(q));
	assert_string_equal(q, "SELECT 'sent'");

	/* In a transaction: later statements and the commit fail as well, until the rollback. */
	cm_pg_set_deadline(pg, 0);
	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO bounded VALUES (200, 0)", 0, NULL, NULL),
	                 CM_OK);
	cm_pg_set_deadline(pg, cm_now_ms() - 1);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO bounded VALUES (201, 0)", 0, NULL, NULL),
	                 CM_ETIMEDOUT);
	cm_pg_set_deadline(pg, 0);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO bounded VALUES (202, 0)", 0, NULL, NULL),
	                 CM_ETIMEDOUT);
	assert_int_equal(cm_pg_commit(pg), CM_ETIMEDOUT);
	cm_pg_rollback(pg);
	query1(pg, "SELECT count(*) FROM bounded WHERE id >= 200", NULL, val, sizeof(val));
	assert_string_equal(val, "0");

	/* A handle that never connected: no connection is even attempted (the listener's queue
	 * stays empty; connecting here would take the whole connect timeout). */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=postgres user=postgres",
	         ntohs(sa.sin_port));
	assert_int_equal(cm_pg_open(&cold, ci, NULL), CM_OK);
	cm_pg_set_deadline(cold, cm_now_ms() - 1);
	t0 = cm_mono_ns();
	assert_int_equal(cm_pg_exec(cold, "SELECT 1", 0, NULL, NULL), CM_ETIMEDOUT);
	assert_true(cm_mono_ns() - t0 < 5000000u);
	assert_int_equal(accept(fd, NULL, NULL), -1);
	cm_pg_close(cold);
	close(fd);
	cm_pg_close(admin);
	cm_pg_close(pg);
}

/* A row locked by another transaction: the UPDATE gives up after lock_timeout (300 ms here,
 * well under the ceiling and the run's default), and the connection goes on. */
static void
test_lock_timeout(void **state)
{
	cm_pg  *a = open_bounded(schema, DEF_STATEMENT_MS, 300);
	cm_pg  *b = open_bounded(schema, DEF_STATEMENT_MS, 300);
	char    pid[16], pid2[16], val[16];
	int64_t t0, dt;

	(void)state;
	make_bounded_table(a);
	assert_int_equal(cm_pg_exec(a, "INSERT INTO bounded VALUES (300, 0)", 0, NULL, NULL),
	                 CM_OK);
	assert_int_equal(setting(b, "lock_timeout"), 300);
	backend_pid(b, pid);
	assert_int_equal(cm_pg_begin(a), CM_OK);
	assert_int_equal(cm_pg_exec(a, "UPDATE bounded SET v = 1 WHERE id = 300", 0, NULL, NULL),
	                 CM_OK);
	t0 = cm_mono_ms();
	assert_int_equal(cm_pg_exec(b, "UPDATE bounded SET v = 2 WHERE id = 300", 0, NULL, NULL),
	                 CM_ETIMEDOUT);
	dt = cm_mono_ms() - t0;
	print_message("row locked elsewhere: UPDATE failed after %lld ms\n", (long long)dt);
	assert_string_equal(cm_pg_sqlstate(b), "55P03");
	assert_true(dt >= 250 && dt < 1500);
	backend_pid(b, pid2);
	assert_string_equal(pid2, pid);
	assert_int_equal(cm_pg_commit(a), CM_OK);
	assert_int_equal(cm_pg_exec(b, "UPDATE bounded SET v = 2 WHERE id = 300", 0, NULL, NULL),
	                 CM_OK);
	query1(a, "SELECT v::text FROM bounded WHERE id = 300", NULL, val, sizeof(val));
	assert_string_equal(val, "2");
	cm_pg_close(a);
	cm_pg_close(b);
}

/* The bounds reach the session whatever form the conninfo has, next to its own options. */
static void
test_bounds_with_every_conninfo_form(void **state)
{
	char ci[2][256];

	(void)state;
	snprintf(ci[0], sizeof(ci[0]), "%s options='-c work_mem=5MB'", getenv("CM_TEST_PG"));
	snprintf(ci[1], sizeof(ci[1]),
	         "postgresql://postgres@127.0.0.1:%s/postgres?options=-c%%20work_mem%%3D5MB",
	         getenv("CM_TEST_PG_PORT"));
	cm_pg_set_default_timeouts(4000, 300);
	for (int i = 0; i < 2; i++) {
		cm_pg *pg = NULL;

		assert_int_equal(cm_pg_open(&pg, ci[i], NULL), CM_OK);
		assert_int_equal(setting(pg, "statement_timeout"), 4000);
		assert_int_equal(setting(pg, "lock_timeout"), 300);
		assert_int_equal(setting(pg, "work_mem"), 5 * 1024);
		assert_int_equal(cm_pg_timeout_sets(pg), 0); /* it came with the connection */
		cm_pg_close(pg);
	}
	cm_pg_set_default_timeouts(DEF_STATEMENT_MS, DEF_LOCK_MS);
}

/* Deadlines cost a SET only when they move the bound by enough: none for deadlines beyond the
 * ceiling, one for a run of calls with the same tighter budget, one to go back. */
static void
test_deadline_sets(void **state)
{
	cm_pg  *pg = open_pg(schema);
	int64_t v;

	(void)state;
	assert_true(cm_pg_ping(pg));
	assert_int_equal(cm_pg_timeout_sets(pg), 0);
	for (int i = 0; i < 20; i++) {
		cm_pg_set_deadline(pg, cm_now_ms() + 60000);
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);
	}
	assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);
	assert_int_equal(cm_pg_timeout_sets(pg), 0);

	for (int i = 0; i < 20; i++) {
		cm_pg_set_deadline(pg, cm_now_ms() + 2000);
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);
	}
	v = setting(pg, "statement_timeout");
	assert_true(v > 1800 && v <= 2000);
	assert_int_equal(cm_pg_timeout_sets(pg), 1);

	cm_pg_set_deadline(pg, cm_now_ms() + 60000); /* far above: back to the ceiling */
	assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);
	assert_int_equal(cm_pg_timeout_sets(pg), 2);
	cm_pg_set_deadline(pg, 0);
	assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);
	assert_int_equal(cm_pg_timeout_sets(pg), 2);

	cm_pg_set_deadline(pg, cm_now_ms() + 2000);
	assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);
	cm_pg_set_deadline(pg, 0); /* no deadline: exactly the ceiling again */
	assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);
	assert_int_equal(cm_pg_timeout_sets(pg), 4);
	cm_pg_close(pg);
}

/* Inside a transaction the bound is SET LOCAL: it ends with the transaction, committed or not,
 * and the handle knows without asking. */
static void
test_deadline_in_transaction_is_local(void **state)
{
	cm_pg  *pg = open_pg(schema);
	int64_t v;

	(void)state;
	assert_true(cm_pg_ping(pg));
	for (int commit = 0; commit < 2; commit++) {
		uint64_t n = cm_pg_timeout_sets(pg);

		assert_int_equal(cm_pg_begin(pg), CM_OK);
		cm_pg_set_deadline(pg, cm_now_ms() + 1000);
		v = setting(pg, "statement_timeout");
		assert_true(v > 900 && v <= 1000);
		assert_int_equal(cm_pg_timeout_sets(pg), n + 1);
		if (commit)
			assert_int_equal(cm_pg_commit(pg), CM_OK);
		else
			cm_pg_rollback(pg);
		cm_pg_set_deadline(pg, 0);
		assert_int_equal(setting(pg, "statement_timeout"), DEF_STATEMENT_MS);
		assert_int_equal(cm_pg_timeout_sets(pg), n + 1);
	}
	cm_pg_close(pg);
}

/* Without a deadline the ceiling bounds every statement. */
static void
test_ceiling(void **state)
{
	cm_pg  *pg = open_bounded(schema, 300, DEF_LOCK_MS);
	int64_t t0, dt;

	(void)state;
	assert_true(cm_pg_ping(pg));
	t0 = cm_mono_ms();
	assert_int_equal(cm_pg_exec(pg, "SELECT pg_sleep(5)", 0, NULL, NULL), CM_ETIMEDOUT);
	dt = cm_mono_ms() - t0;
	print_message("pg_sleep(5) under a 300 ms ceiling: failed after %lld ms\n", (long long)dt);
	assert_string_equal(cm_pg_sqlstate(pg), "57014");
	assert_true(dt >= 250 && dt < 1000);
	assert_true(cm_pg_ping(pg));
	assert_int_equal(cm_pg_timeout_sets(pg), 0);
	cm_pg_close(pg);
}

static void *
migrate_handle_thread(void *arg)
{
	return (void *)(intptr_t)cm_pg_migrate_up(arg, schema, migs, 2);
}

/* Replicas wait for each other's migrations beyond lock_timeout (the ceiling bounds that). */
static void
test_migrations_wait_beyond_lock_timeout(void **state)
{
	cm_pg      *holder = open_pg(NULL), *admin = open_pg(NULL);
	cm_pg      *waiter = open_bounded(schema, DEF_STATEMENT_MS, 200);
	const char *p[1] = {schema};
	pthread_t   th;
	void       *rv;
	char        n[16] = "0";
	int64_t     until;

	(void)state;
	assert_int_equal(cm_pg_begin(holder), CM_OK);
	assert_int_equal(
	    cm_pg_exec(holder, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, p, NULL), CM_OK);
	assert_int_equal(pthread_create(&th, NULL, migrate_handle_thread, waiter), 0);
	until = cm_mono_ms() + 5000;
	while (strcmp(n, "1") != 0 && cm_mono_ms() < until)
		query1(admin,
		       "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
		       NULL, n, sizeof(n));
	assert_string_equal(n, "1");
	/* Still waiting at four times its lock_timeout. */
	until = cm_mono_ms() + 800;
	while (cm_mono_ms() < until) {
		query1(admin,
		       "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
		       NULL, n, sizeof(n));
		assert_string_equal(n, "1");
	}
	cm_pg_rollback(holder);
	assert_int_equal(pthread_join(th, &rv), 0);
	assert_int_equal((intptr_t)rv, CM_OK);
	cm_pg_close(waiter);
	cm_pg_close(admin);
	cm_pg_close(holder);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations),
	    cmocka_unit_test(test_bad_schema_names),
	    cmocka_unit_test(test_long_schema_name),
	    cmocka_unit_test(test_migrations_land_in_their_schema),
	    cmocka_unit_test(test_params_and_errors),
	    cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_connection_lost),
	    cmocka_unit_test(test_connect_timeout),
	    cmocka_unit_test(test_deadline_cancels_statement),
	    cmocka_unit_test(test_passed_deadline_sends_nothing),
	    cmocka_unit_test(test_lock_timeout),
	    cmocka_unit_test(test_bounds_with_every_conninfo_form),
	    cmocka_unit_test(test_deadline_sets),
	    cmocka_unit_test(test_deadline_in_transaction_is_local),
	    cmocka_unit_test(test_ceiling),
	    cmocka_unit_test(test_migrations_wait_beyond_lock_timeout),
	    cmocka_unit_test_teardown(test_outage_and_reconnect, start_pg_again),
	};
	cm_pg_set_default_timeouts(DEF_STATEMENT_MS, DEF_LOCK_MS);
	return cmocka_run_group_tests(tests, setup, teardown);
}
