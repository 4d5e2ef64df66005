/*
 * test_err.c - the cm_err <-> RPC status table: exact numbers, round trip, names, text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cm/err.h"

static void
test_to_status_numbers(void **state)
{
	/* The numbers of cm.Status in proto/common.proto (gRPC canonical codes). */
	assert_int_equal(cm_err_to_status(CM_OK), 0);
	assert_int_equal(cm_err_to_status(CM_EINVAL), 3);
	assert_int_equal(cm_err_to_status(CM_ENOTFOUND), 5);
	assert_int_equal(cm_err_to_status(CM_EEXIST), 6);
	assert_int_equal(cm_err_to_status(CM_EPERM), 7);
	assert_int_equal(cm_err_to_status(CM_EAUTH), 16);
	assert_int_equal(cm_err_to_status(CM_ETOOBIG), 11);
	assert_int_equal(cm_err_to_status(CM_ELIMIT), 8);
	assert_int_equal(cm_err_to_status(CM_EUNAVAIL), 14);
	assert_int_equal(cm_err_to_status(CM_ETIMEDOUT), 4);
	assert_int_equal(cm_err_to_status(CM_EPROTO), 3);
	assert_int_equal(cm_err_to_status(CM_EPRECOND), 9);
	assert_int_equal(cm_err_to_status(CM_ECANCELED), 1);
	assert_int_equal(cm_err_to_status(CM_ENOMEM), 13);
	assert_int_equal(cm_err_to_status(CM_EINTERNAL), 13);
	assert_int_equal(cm_err_to_status((cm_err)999), 13);
	assert_int_equal(cm_err_to_status((cm_err)-1), 13);
}

static void
test_round_trip(void **state)
{
	for (int e = 0; e < CM_ERR_COUNT; e++) {
		cm_err back = cm_err_from_status(cm_err_to_status((cm_err)e));
		if (e == CM_ENOMEM)
			assert_int_equal(back, CM_EINTERNAL);
		else if (e == CM_EPROTO)
			assert_int_equal(back, CM_EINVAL);
		else
			assert_int_equal(back, e);
	}
	/* And the other way for every status an error maps to. */
	for (int s = 0; s <= 16; s++) {
		cm_err e = cm_err_from_status(s);
		if (s == 2 || s == 10 || s == 12 || s == 15)
			assert_int_equal(e, CM_EINTERNAL); /* no cm_err produces these */
		else
			assert_int_equal(cm_err_to_status(e), s);
	}
	assert_int_equal(cm_err_from_status(-5), CM_EINTERNAL);
	assert_int_equal(cm_err_from_status(17), CM_EINTERNAL);
}

static void
test_status_names(void **state)
{
	assert_string_equal(cm_status_name(0), "OK");
	assert_string_equal(cm_status_name(1), "CANCELLED");
	assert_string_equal(cm_status_name(3), "INVALID_ARGUMENT");
	assert_string_equal(cm_status_name(4), "DEADLINE_EXCEEDED");
	assert_string_equal(cm_status_name(8), "RESOURCE_EXHAUSTED");
	assert_string_equal(cm_status_name(11), "OUT_OF_RANGE");
	assert_string_equal(cm_status_name(13), "INTERNAL");
	assert_string_equal(cm_status_name(14), "UNAVAILABLE");
	assert_string_equal(cm_status_name(16), "UNAUTHENTICATED");
	assert_string_equal(cm_status_name(17), "UNKNOWN");
	assert_string_equal(cm_status_name(-1), "UNKNOWN");
	for (int s = 0; s <= 16; s++)
		assert_non_null(cm_status_name(s));
}

static void
test_strerror(void **state)
{
	assert_string_equal(cm_strerror(CM_OK), "ok");
	assert_string_equal(cm_strerror(CM_ENOTFOUND), "not found");
	for (int e = 0; e < CM_ERR_COUNT; e++) {
		const char *t = cm_strerror((cm_err)e);
		assert_non_null(t);
		assert_true(strlen(t) > 0);
		for (int f = 0; f < e; f++)
			assert_string_not_equal(t, cm_strerror((cm_err)f));
	}
	assert_non_null(cm_strerror(CM_ERR_COUNT));
	assert_non_null(cm_strerror((cm_err)-3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_to_status_numbers),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
