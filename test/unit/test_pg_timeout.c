/*
 * test_pg_timeout.c - the rules behind PostgreSQL statement bounds (libcommon/src/pg_timeout.c):
 * which statement_timeout a statement wants, when changing the session's value is worth a
 * SET, and how the session options merge with the caller's conninfo. No server: the behaviour
 * against a real one is in integration/test_pg.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pg_int.h"

#define NONE CM_PG_TIMEOUT_NONE

static void
test_want(void **state)
{
	(void)state;
	assert_true(cm_pg_timeout_want(0, 0, 1000) == NONE);
	assert_true(cm_pg_timeout_want(5000, 0, 1000) == 5000);
	assert_true(cm_pg_timeout_want(5000, 1300, 1000) == 300);  /* the time left */
	assert_true(cm_pg_timeout_want(5000, 9000, 1000) == 5000); /* never above the ceiling */
	assert_true(cm_pg_timeout_want(0, 91000, 1000) == 90000);  /* no ceiling */
	assert_true(cm_pg_timeout_want(5000, 1000, 1000) == 0);    /* passed */
	assert_true(cm_pg_timeout_want(5000, 999, 1000) == 0);
}

static void
test_change_without_deadline_restores_the_ceiling_exactly(void **state)
{
	(void)state;
	assert_false(cm_pg_timeout_change(5000, 5000, false));
	assert_true(cm_pg_timeout_change(4900, 5000, false));
	assert_true(cm_pg_timeout_change(300, NONE, false));
	assert_false(cm_pg_timeout_change(NONE, NONE, false));
	assert_true(cm_pg_timeout_change(CM_PG_TIMEOUT_UNKNOWN, 5000, false));
}

static void
test_change_under_a_deadline(void **state)
{
	(void)state;
	assert_true(cm_pg_timeout_change(CM_PG_TIMEOUT_UNKNOWN, 5000, true));
	assert_true(cm_pg_timeout_change(NONE, 9000, true));
	assert_false(cm_pg_timeout_change(5000, 5000, true));
	/* Lower: only when the session's value is over the wanted one by more than a tenth. */
	assert_false(cm_pg_timeout_change(10000, 9091, true)); /* 909 <= 909 */
	assert_true(cm_pg_timeout_change(10000, 9090, true));  /* 910 > 909 */
	assert_true(cm_pg_timeout_change(10000, 300, true));
	/* Higher: only past 25% and 100 ms. */
	assert_false(cm_pg_timeout_change(1000, 1250, true));
	assert_true(cm_pg_timeout_change(1000, 1251, true));
	assert_false(cm_pg_timeout_change(200, 300, true)); /* 50%, but only 100 ms */
	assert_true(cm_pg_timeout_change(200, 301, true));
	assert_true(cm_pg_timeout_change(300, 10000, true));
}

static void
check_options(const char *conninfo, int64_t st, int64_t lk, const char *want)
{
	char *s = cm_pg_session_options(conninfo, st, lk);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void
test_session_options(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("PGOPTIONS"), 0);
	check_options("host=h dbname=d", 500, 200, "-c statement_timeout=500 -c lock_timeout=200");
	check_options("host=h options='-c search_path=x'", 500, 200,
	              "-c search_path=x -c statement_timeout=500 -c lock_timeout=200");
	check_options("postgresql://u@h/d?options=-c%20work_mem%3D4MB", 500, 0,
	              "-c work_mem=4MB -c statement_timeout=500");
	check_options("postgresql://u@h/d", 0, 300, "-c lock_timeout=300");
	check_options("host=h", 0, 0, "");
	check_options("host=h", -5, 5000000000LL, "-c lock_timeout=2147483647");
	check_options("mydb", 500, 0, "-c statement_timeout=500"); /* a bare database name */
	/* Without options of its own the conninfo gets PGOPTIONS', as libpq would give it. */
	assert_int_equal(setenv("PGOPTIONS", "-c geqo=off", 1), 0);
	check_options("host=h", 500, 0, "-c geqo=off -c statement_timeout=500");
	check_options("host=h options=-cgeqo=on", 500, 0, "-cgeqo=on -c statement_timeout=500");
	assert_int_equal(unsetenv("PGOPTIONS"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_want),
	    cmocka_unit_test(test_change_without_deadline_restores_the_ceiling_exactly),
	    cmocka_unit_test(test_change_under_a_deadline),
	    cmocka_unit_test(test_session_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
