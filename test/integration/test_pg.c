/*
 * test_pg.c - the PostgreSQL wrapper against a real server (fixture pgredis): parameters,
 * errors, transactions, migrations up/down under concurrency, a connection lost inside a
 * transaction, connect timeouts, and a server outage and restart.
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
	    cmocka_unit_test_teardown(test_outage_and_reconnect, start_pg_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
