/*
 * test_config.c - table-driven config: defaults, environment, types, ranges, required entries,
 * and secrets masked both in error messages and in the start-up log (stderr captured).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/config.h"
#include "cm/log.h"

static const char *t_url;
static const char *t_secret;
static int64_t     t_workers;
static bool        t_flag;
static const char *t_empty;

static cm_cfg_entry t_table[] = {
    {"T_URL", CM_CFG_STR, &t_url, "tcp://127.0.0.1:7101", 0, 0, 0, "rpc url"},
    {"T_SECRET", CM_CFG_STR, &t_secret, NULL, CM_CFG_SECRET, 0, 0, "secret"},
    {"T_WORKERS", CM_CFG_INT, &t_workers, "4", 0, 1, 64, "workers"},
    {"T_FLAG", CM_CFG_BOOL, &t_flag, "0", 0, 0, 0, "flag"},
    {"T_EMPTY", CM_CFG_STR, &t_empty, NULL, 0, 0, 0, "no default"},
};
#define T_N (sizeof(t_table) / sizeof(t_table[0]))

static int
clear_env(void **state)
{
	unsetenv("T_URL");
	unsetenv("T_SECRET");
	unsetenv("T_WORKERS");
	unsetenv("T_FLAG");
	unsetenv("T_EMPTY");
	unsetenv("T_REQ");
	return 0;
}

static void
test_defaults(void **state)
{
	char errbuf[128] = "junk";

	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_string_equal(errbuf, "");
	assert_string_equal(t_url, "tcp://127.0.0.1:7101");
	assert_string_equal(t_secret, "");
	assert_int_equal(t_workers, 4);
	assert_false(t_flag);
	assert_non_null(t_empty);
	assert_string_equal(t_empty, "");
}

static void
test_environment_overrides(void **state)
{
	char errbuf[128];

	setenv("T_URL", "tcp://10.0.0.1:1", 1);
	setenv("T_SECRET", "s3cr3t", 1);
	setenv("T_WORKERS", "16", 1);
	setenv("T_FLAG", "yes", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_string_equal(t_url, "tcp://10.0.0.1:1");
	assert_string_equal(t_secret, "s3cr3t");
	assert_int_equal(t_workers, 16);
	assert_true(t_flag);
}

static void
test_empty_values(void **state)
{
	char errbuf[128];

	/* An empty string is a value; an empty int/bool falls back to its default. */
	setenv("T_URL", "", 1);
	setenv("T_WORKERS", "", 1);
	setenv("T_FLAG", "", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_string_equal(t_url, "");
	assert_int_equal(t_workers, 4);
	assert_false(t_flag);
}

static void
test_bool_spellings(void **state)
{
	static const char *const yes[] = {"1", "true", "TRUE", "yes", "on", "On"};
	static const char *const no[] = {"0", "false", "no", "off", "OFF"};
	char                     errbuf[128];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		setenv("T_FLAG", yes[i], 1);
		t_flag = false;
		assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
		assert_true(t_flag);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		setenv("T_FLAG", no[i], 1);
		t_flag = true;
		assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
		assert_false(t_flag);
	}
	setenv("T_FLAG", "maybe", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_non_null(strstr(errbuf, "T_FLAG"));
}

static void
test_bad_ints(void **state)
{
	static const char *const bad[] = {"abc", "4x", " 4", "0x10", "99999999999999999999"};
	char                     errbuf[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("T_WORKERS", bad[i], 1);
		errbuf[0] = '\0';
		assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_EINVAL);
		assert_non_null(strstr(errbuf, "T_WORKERS"));
	}
}

static void
test_range(void **state)
{
	char errbuf[128];

	setenv("T_WORKERS", "0", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_non_null(strstr(errbuf, "range"));
	setenv("T_WORKERS", "65", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_EINVAL);
	setenv("T_WORKERS", "64", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(t_workers, 64);
	setenv("T_WORKERS", "1", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(t_workers, 1);
	/* NULL errbuf is allowed. */
	setenv("T_WORKERS", "1000", 1);
	assert_int_equal(cm_config_load(t_table, T_N, NULL, 0), CM_EINVAL);
}

static void
test_no_range_when_zero(void **state)
{
	int64_t      v = 0;
	cm_cfg_entry e[] = {{"T_WORKERS", CM_CFG_INT, &v, "-5", 0, 0, 0, NULL}};
	char         errbuf[64];

	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(v, -5);
	setenv("T_WORKERS", "-9000000000", 1);
	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_OK);
	assert_true(v == -9000000000LL);
}

static void
test_bad_default_is_reported(void **state)
{
	int64_t      v = 0;
	cm_cfg_entry e[] = {{"T_WORKERS", CM_CFG_INT, &v, "500", 0, 1, 10, NULL}};
	char         errbuf[64];

	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_non_null(strstr(errbuf, "default"));
}

static void
test_required(void **state)
{
	const char  *v = NULL;
	cm_cfg_entry e[] = {{"T_REQ", CM_CFG_STR, &v, "ignored", CM_CFG_REQUIRED, 0, 0, NULL}};
	char         errbuf[64];

	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_non_null(strstr(errbuf, "T_REQ"));
	setenv("T_REQ", "", 1);
	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_EINVAL);
	setenv("T_REQ", "here", 1);
	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_OK);
	assert_string_equal(v, "here");
}

static void
test_secret_not_in_error(void **state)
{
	int64_t      v = 0;
	cm_cfg_entry e[] = {{"T_SECRET", CM_CFG_INT, &v, NULL, CM_CFG_SECRET, 0, 0, NULL}};
	char         errbuf[128];

	setenv("T_SECRET", "topsecretvalue", 1);
	assert_int_equal(cm_config_load(e, 1, errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_null(strstr(errbuf, "topsecretvalue"));
	assert_non_null(strstr(errbuf, "T_SECRET"));
}

/* ---- cm_config_log: capture stderr through a pipe drained by a thread ---------------------- */

static int       cap_saved = -1;
static int       cap_pipe[2];
static pthread_t cap_thread;
static char      cap_out[65536];
static size_t    cap_len;

static void *
cap_reader(void *arg)
{
	ssize_t n;

	cap_len = 0;
	while ((n = read(cap_pipe[0], cap_out + cap_len, sizeof(cap_out) - 1 - cap_len)) > 0)
		cap_len += (size_t)n;
	cap_out[cap_len] = '\0';
	return NULL;
}

static void
test_log_masks_secrets(void **state)
{
	char errbuf[128];

	setenv("T_SECRET", "hunter2-super-secret", 1);
	setenv("T_WORKERS", "8", 1);
	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	cm_log_init("test", CM_LOG_INFO);

	assert_int_equal(pipe(cap_pipe), 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(dup2(cap_pipe[1], STDERR_FILENO) >= 0);
	assert_int_equal(pthread_create(&cap_thread, NULL, cap_reader, NULL), 0);
	cm_config_log(t_table, T_N);
	assert_true(dup2(cap_saved, STDERR_FILENO) >= 0);
	close(cap_saved);
	close(cap_pipe[1]);
	pthread_join(cap_thread, NULL);
	close(cap_pipe[0]);

	assert_null(strstr(cap_out, "hunter2"));
	assert_non_null(strstr(cap_out, "T_SECRET=***"));
	assert_non_null(strstr(cap_out, "T_WORKERS=8"));
	assert_non_null(strstr(cap_out, "T_URL=tcp://127.0.0.1:7101 (default)"));
	assert_non_null(strstr(cap_out, "T_FLAG=false"));
	assert_non_null(strstr(cap_out, "\"id\":\"CM-CONFIG\""));
	/* One line per entry. */
	{
		int lines = 0;
		for (size_t i = 0; i < cap_len; i++)
			lines += cap_out[i] == '\n';
		assert_int_equal(lines, (int)T_N);
	}
}

static void
test_log_unset_secret_is_empty(void **state)
{
	char errbuf[128];

	assert_int_equal(cm_config_load(t_table, T_N, errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(pipe(cap_pipe), 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(dup2(cap_pipe[1], STDERR_FILENO) >= 0);
	assert_int_equal(pthread_create(&cap_thread, NULL, cap_reader, NULL), 0);
	cm_config_log(t_table, T_N);
	assert_true(dup2(cap_saved, STDERR_FILENO) >= 0);
	close(cap_saved);
	close(cap_pipe[1]);
	pthread_join(cap_thread, NULL);
	close(cap_pipe[0]);
	assert_non_null(strstr(cap_out, "T_SECRET= (default)"));
	assert_null(strstr(cap_out, "***"));
}

/* A file's key wins over the environment, which wins over the default; origins say which. */
static void
test_file_over_environment(void **state)
{
	cm_cfg_file  *f = NULL;
	cm_cfg_origin o[T_N];
	char          errbuf[128];

	(void)state;
	setenv("T_URL", "tcp://env:1", 1);
	setenv("T_WORKERS", "8", 1);
	assert_int_equal(cm_cfg_file_parse(&f,
	                                   "# a comment\n\n  T_WORKERS = 16 \r\nT_SECRET=s3cret\n"
	                                   "T_FLAG=yes\n",
	                                   errbuf, sizeof(errbuf)),
	                 CM_OK);
	assert_int_equal(cm_config_load_layered(t_table, T_N, f, o, errbuf, sizeof(errbuf)), CM_OK);
	assert_string_equal(t_url, "tcp://env:1");
	assert_int_equal(o[0], CM_CFG_FROM_ENV);
	assert_string_equal(t_secret, "s3cret");
	assert_int_equal(o[1], CM_CFG_FROM_FILE);
	assert_int_equal(t_workers, 16);
	assert_int_equal(o[2], CM_CFG_FROM_FILE);
	assert_true(t_flag);
	assert_string_equal(t_empty, "");
	assert_int_equal(o[4], CM_CFG_FROM_DEFAULT);
	assert_string_equal(cm_cfg_origin_name(o[2]), "file");
	cm_cfg_file_free(f);
}

/* The file's values are checked like the environment's, and a key the table lacks is an error. */
static void
test_file_errors(void **state)
{
	cm_cfg_file *f = NULL;
	char         errbuf[128];

	(void)state;
	assert_int_equal(cm_cfg_file_parse(&f, "T_URL\n", errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_string_equal(errbuf, "line 1: not KEY=VALUE");
	assert_int_equal(cm_cfg_file_parse(&f, "\nT-URL=x\n", errbuf, sizeof(errbuf)), CM_EINVAL);
	assert_string_equal(errbuf, "line 2: bad key");
	assert_int_equal(cm_cfg_file_parse(&f, "T_URL=a\nT_URL=b\n", errbuf, sizeof(errbuf)),
	                 CM_EINVAL);
	assert_string_equal(errbuf, "line 2: T_URL given twice");
	assert_null(f);

	assert_int_equal(cm_cfg_file_parse(&f, "T_TYPO=1\n", errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(cm_config_load_layered(t_table, T_N, f, NULL, errbuf, sizeof(errbuf)),
	                 CM_EINVAL);
	assert_string_equal(errbuf, "T_TYPO: not a configuration key");
	cm_cfg_file_free(f);

	assert_int_equal(
	    cm_cfg_file_parse(&f, "T_WORKERS=65\nT_SECRET=x\n", errbuf, sizeof(errbuf)), CM_OK);
	assert_int_equal(cm_config_load_layered(t_table, T_N, f, NULL, errbuf, sizeof(errbuf)),
	                 CM_EINVAL);
	assert_string_equal(errbuf, "T_WORKERS: 65 out of range [1, 64] (file)");
	cm_cfg_file_free(f);

	assert_int_equal(cm_cfg_file_read(&f, "/nonexistent/edge.conf", errbuf, sizeof(errbuf)),
	                 CM_ENOTFOUND);
	assert_null(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_defaults, clear_env),
	    cmocka_unit_test_setup(test_environment_overrides, clear_env),
	    cmocka_unit_test_setup(test_empty_values, clear_env),
	    cmocka_unit_test_setup(test_bool_spellings, clear_env),
	    cmocka_unit_test_setup(test_bad_ints, clear_env),
	    cmocka_unit_test_setup(test_range, clear_env),
	    cmocka_unit_test_setup(test_no_range_when_zero, clear_env),
	    cmocka_unit_test_setup(test_bad_default_is_reported, clear_env),
	    cmocka_unit_test_setup(test_required, clear_env),
	    cmocka_unit_test_setup(test_secret_not_in_error, clear_env),
	    cmocka_unit_test_setup(test_log_masks_secrets, clear_env),
	    cmocka_unit_test_setup(test_log_unset_secret_is_empty, clear_env),
	    cmocka_unit_test_setup(test_file_over_environment, clear_env),
	    cmocka_unit_test_setup(test_file_errors, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
