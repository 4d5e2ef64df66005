/*
 * test_password.c - Argon2id hashing of svc-auth (password.c): format, parameters, salts,
 * verification of right, wrong and damaged input, and the dummy verification that makes an
 * unknown account cost as much as a wrong password. Low parameters keep it fast, except where
 * a timing comparison needs work large enough to measure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/limits.h"
#include "cm/util.h"
#include "password.h"

/* libsodium's minimums: 1 pass, 8 KiB. */
#define OPS 1
#define MEM 8

static void
test_format_and_verify(void **state)
{
	char hash[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_password_hash("correct horse", OPS, MEM, hash), CM_OK);
	assert_int_equal(strncmp(hash, "$argon2id$v=19$m=8,t=1,p=1$", 27), 0);
	assert_null(strstr(hash, "correct horse"));
	assert_true(auth_password_verify(hash, "correct horse"));
	assert_false(auth_password_verify(hash, "correct horsE"));
	assert_false(auth_password_verify(hash, "correct horse "));
	assert_false(auth_password_verify(hash, ""));
}

static void
test_parameters_raised_to_minimums(void **state)
{
	char hash[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_password_hash("pw", 0, 0, hash), CM_OK);
	assert_int_equal(strncmp(hash, "$argon2id$v=19$m=8,t=1,p=1$", 27), 0);
	assert_int_equal(auth_password_hash("pw", 3, 64, hash), CM_OK);
	assert_int_equal(strncmp(hash, "$argon2id$v=19$m=64,t=3,p=1$", 28), 0);
	assert_true(auth_password_verify(hash, "pw"));
}

static void
test_salts_differ(void **state)
{
	char a[AUTH_HASH_MAX], b[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_password_hash("same password", OPS, MEM, a), CM_OK);
	assert_int_equal(auth_password_hash("same password", OPS, MEM, b), CM_OK);
	assert_string_not_equal(a, b);
	assert_true(auth_password_verify(a, "same password"));
	assert_true(auth_password_verify(b, "same password"));
}

static void
test_edge_passwords(void **state)
{
	char  hash[AUTH_HASH_MAX];
	char *longest = malloc(CM_MAX_PASSWORD + 1);

	(void)state;
	assert_non_null(longest);
	memset(longest, 'p', CM_MAX_PASSWORD);
	longest[CM_MAX_PASSWORD] = '\0';
	assert_int_equal(auth_password_hash(longest, OPS, MEM, hash), CM_OK);
	assert_true(auth_password_verify(hash, longest));
	longest[CM_MAX_PASSWORD - 1] = 'q';
	assert_false(auth_password_verify(hash, longest));
	free(longest);

	assert_int_equal(auth_password_hash("", OPS, MEM, hash), CM_OK);
	assert_true(auth_password_verify(hash, ""));
	assert_false(auth_password_verify(hash, "x"));

	/* UTF-8 passwords are bytes like any other. */
	assert_int_equal(auth_password_hash("pässwörd-密码", OPS, MEM, hash), CM_OK);
	assert_true(auth_password_verify(hash, "pässwörd-密码"));
	assert_false(auth_password_verify(hash, "passwort-密码"));
}

static void
test_damaged_hashes_refused(void **state)
{
	char hash[AUTH_HASH_MAX], bad[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_password_hash("correct horse", OPS, MEM, hash), CM_OK);
	assert_false(auth_password_verify(NULL, "correct horse"));
	assert_false(auth_password_verify("", "correct horse"));
	assert_false(auth_password_verify("correct horse", "correct horse")); /* plaintext "hash" */
	assert_false(auth_password_verify("$argon2id$", "correct horse"));
	assert_false(auth_password_verify("$argon2i$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
	                                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                                  "correct horse"));
	/* One character of the digest changed. */
	cm_strlcpy(bad, hash, sizeof(bad));
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	assert_false(auth_password_verify(bad, "correct horse"));
	/* Truncated. */
	bad[strlen(hash) - 10] = '\0';
	assert_false(auth_password_verify(bad, "correct horse"));
}

static double
seconds_of(void (*fn)(const char *), const char *arg)
{
	uint64_t t0 = cm_mono_ns();

	fn(arg);
	return (double)(cm_mono_ns() - t0) / 1e9;
}

static char timing_hash[AUTH_HASH_MAX];

static void
verify_wrong(const char *pw)
{
	assert_false(auth_password_verify(timing_hash, pw));
}

static void
burn(const char *pw)
{
	auth_password_burn(pw);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The dummy verification for an unknown account costs what a real one does. Parameters large
 * enough (4 MiB, 2 passes: a few ms) that the work dominates the noise; medians of 7. */
static void
test_burn_costs_a_verification(void **state)
{
	double v[7], b[7], ratio;

	(void)state;
	assert_int_equal(auth_password_init(2, 4096), CM_OK);
	assert_int_equal(auth_password_hash("the real one", 2, 4096, timing_hash), CM_OK);
	for (int i = 0; i < 7; i++) {
		v[i] = seconds_of(verify_wrong, "a wrong guess");
		b[i] = seconds_of(burn, "a wrong guess");
	}
	qsort(v, 7, sizeof(v[0]), cmp_double);
	qsort(b, 7, sizeof(b[0]), cmp_double);
	ratio = b[3] / v[3];
	print_message("verify %.2f ms, dummy %.2f ms (median)\n", v[3] * 1e3, b[3] * 1e3);
	assert_true(ratio > 0.5 && ratio < 2.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_and_verify),
	    cmocka_unit_test(test_parameters_raised_to_minimums),
	    cmocka_unit_test(test_salts_differ),
	    cmocka_unit_test(test_edge_passwords),
	    cmocka_unit_test(test_damaged_hashes_refused),
	    cmocka_unit_test(test_burn_costs_a_verification),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
