/*
 * test_pg.c - the PostgreSQL wrapper against a real server (fixture pgredis): parameters,
 * errors, transactions, migrations up/down under concurrency, and a server restart.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/pg.h"
#include "cm/util.h"

static char schema[40];

static const cm_migration migs[] = {
	{1, "items", "CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, note text);",
	    "DROP TABLE items;"},
	{2, "tags", "CREATE TABLE tags (item int REFERENCES items(id), tag text NOT NULL);"
	            "CREATE INDEX tags_tag ON tags(tag);",
	    "DROP TABLE tags;"},
};

static cm_pg *
open_pg(void)
{
	cm_pg *pg = NULL;
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), schema), CM_OK);
	return pg;
}

static int
setup(void **state)
{
	char id[37];

	(void) state;
	cm_uuid_v4(id);
	snprintf(schema, sizeof(schema), "t_%.8s", id);
	for (char *p = schema; *p; p++)
		if (*p == '-')
			*p = '_';
	return 0;
}

static void *
migrate_thread(void *arg)
{
	cm_pg *pg = NULL;

	(void) arg;
	if (cm_pg_open(&pg, getenv("CM_TEST_PG"), schema) != CM_OK)
		return (void *) 1;
	cm_err err = cm_pg_migrate_up(pg, schema, migs, 2);
	cm_pg_close(pg);
	return (void *) (intptr_t) err;
}

static void
test_migrations(void **state)
{
	pthread_t th[3];
	void     *rv;
	int       v;
	cm_pg    *pg = open_pg();

	(void) state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, NULL), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], &rv);
		assert_int_equal((intptr_t) rv, CM_OK);
	}
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 2);
	assert_int_equal(cm_pg_migrate_down(pg, schema, migs, 2, 0), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 0);
	assert_int_not_equal(cm_pg_exec(pg, "SELECT 1 FROM items", 0, NULL, NULL), CM_OK);
	assert_int_equal(cm_pg_migrate_up(pg, schema, migs, 2), CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &v), CM_OK);
	assert_int_equal(v, 2);
	cm_pg_close(pg);
}

static void
test_params_and_errors(void **state)
{
	cm_pg        *pg = open_pg();
	cm_pg_result *r  = NULL;
	const char   *evil = "x'); DROP TABLE items; --";
	const char   *p[2];

	(void) state;
	p[0] = evil;
	p[1] = NULL;
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name, note) VALUES ($1, $2)", 2, p, NULL), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "SELECT name, note FROM items WHERE name = $1", 1, p, &r), CM_OK);
	assert_int_equal(cm_pg_nrows(r), 1);
	assert_string_equal(cm_pg_get(r, 0, 0), evil);
	assert_true(cm_pg_isnull(r, 0, 1));
	assert_string_equal(cm_pg_get(r, 0, 1), "");
	cm_pg_result_free(r);

	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ($1)", 1, p, NULL), CM_EEXIST);
	assert_string_equal(cm_pg_sqlstate(pg), "23505");
	assert_string_not_equal(cm_pg_errmsg(pg), "");
	assert_int_equal(cm_pg_exec(pg, "SELECT $1::int", 1, (const char *[]){"abc"}, NULL), CM_EINVAL);
	assert_int_equal(cm_pg_exec(pg, "SELEC nonsense", 0, NULL, NULL), CM_EINTERNAL);

	/* A rolled back transaction leaves nothing behind. */
	assert_int_equal(cm_pg_begin(pg), CM_OK);
	assert_int_equal(cm_pg_exec(pg, "INSERT INTO items(name) VALUES ('tx')", 0, NULL, &r), CM_OK);
	assert_int_equal(cm_pg_affected(r), 1);
	cm_pg_result_free(r);
	cm_pg_rollback(pg);
	assert_int_equal(cm_pg_exec(pg, "SELECT count(*) FROM items WHERE name = 'tx'", 0, NULL, &r), CM_OK);
	assert_string_equal(cm_pg_get(r, 0, 0), "0");
	cm_pg_result_free(r);
	cm_pg_close(pg);
}

static void
harness(const char *cmd)
{
	char line[1024];
	snprintf(line, sizeof(line), "%s/pgredis.sh %s %s", getenv("CM_TEST_HARNESS"), cmd,
	    getenv("CM_TEST_STATE"));
	assert_int_equal(system(line), 0);
}

static void
test_outage_and_reconnect(void **state)
{
	cm_pg  *pg = open_pg();
	int64_t t0;
	int     ok = 0;

	(void) state;
	assert_true(cm_pg_ping(pg));
	harness("stop-pg");
	for (int i = 0; i < 5; i++) {
		t0 = cm_mono_ms();
		assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_EUNAVAIL);
		assert_true(cm_mono_ms() - t0 < 3000);
	}
	harness("start-pg");
	/* The same handle works again once the back-off has passed; no restart of ours needed. */
	for (int i = 0; i < 50 && !ok; i++) {
		ok = cm_pg_ping(pg);
		if (!ok)
			usleep(100 * 1000);
	}
	assert_true(ok);

	/* A restart while the handle is idle costs no failed statement. */
	harness("restart-pg");
	assert_int_equal(cm_pg_exec(pg, "SELECT 1", 0, NULL, NULL), CM_OK);
	cm_pg_close(pg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrations),
		cmocka_unit_test(test_params_and_errors),
		cmocka_unit_test(test_outage_and_reconnect),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
