/*
 * test_reload.c - the edge's configuration reload on SIGHUP and GET /configz (edge/reload.h).
 *
 * It talks to the stack's fourth edge (CM_TEST_EDGE_RELOAD, admin CM_TEST_EDGE_RELOAD_ADMIN,
 * test/harness/stack.sh), whose EDGE_CONFIG_FILE is STATE_DIR/edge_reload.conf: a test writes
 * the file, sends SIGHUP to the edge's pid (STATE_DIR/run/edge_reload.pid) and polls /configz
 * for the outcome (the reloads applied or refused). Every test starts from, and goes back to, an
 * empty file. Requests carry X-Forwarded-For with an address of this run (the edge trusts
 * 127.0.0.1), so the limits counted here start with this run.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <cmocka.h>

#include "cm/util.h"
#include "http_client.h"

#define LOGIN "/api/v1/auth/login"
#define WAIT_MS 15000

static char admin[128];
static char xff[64];

static void
write_file(const char *text)
{
	char  path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/edge_reload.conf", getenv("CM_TEST_STATE"));
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
send_hup(void)
{
	char  path[512], *pid;
	pid_t p;

	snprintf(path, sizeof(path), "%s/run/edge_reload.pid", getenv("CM_TEST_STATE"));
	assert_non_null(pid = cm_read_file(path, 64));
	p = (pid_t)strtol(pid, NULL, 10);
	free(pid);
	assert_true(p > 1);
	assert_int_equal(kill(p, SIGHUP), 0);
}

static json_t *
configz(void)
{
	return http_fake(admin, "GET", "/configz", NULL);
}

static json_int_t
reloads(const json_t *z, const char *what)
{
	return json_integer_value(json_object_get(json_object_get(z, "reloads"), what));
}

/* The key's entry ({"value", "source", "live", ...}) in z. */
static json_t *
key(const json_t *z, const char *name)
{
	return json_object_get(json_object_get(z, "keys"), name);
}

/* Writes text, sends SIGHUP and waits until the edge has applied (or refused) it: the /configz
 * that shows it (json_decref it). */
static json_t *
reload_with(const char *text, bool applied)
{
	const char           *counter = applied ? "applied" : "refused";
	const struct timespec pause = {0, 20 * 1000000L};
	json_t               *z = configz();
	json_int_t            before;

	assert_non_null(z);
	before = reloads(z, counter);
	json_decref(z);
	write_file(text);
	send_hup();
	for (int64_t until = cm_mono_ms() + WAIT_MS; cm_mono_ms() < until;) {
		if ((z = configz()) != NULL && reloads(z, counter) > before)
			return z;
		json_decref(z);
		nanosleep(&pause, NULL);
	}
	fail_msg("the edge did not report the reload as %s", counter);
	return NULL;
}

static long
login(http_session *s)
{
	char        h[96];
	const char *hdrs[] = {"Content-Type: application/json", h, NULL};
	http_resp   r;
	long        status;

	snprintf(h, sizeof(h), "X-Forwarded-For: %s", xff);
	assert_int_equal(http_session_do(s, "POST", LOGIN, hdrs, "{}", 2, &r), 0);
	status = r.status;
	if (status == 429) {
		char ra[16];
		assert_non_null(http_header(&r, "Retry-After", ra, sizeof(ra)));
	}
	http_resp_free(&r);
	return status;
}

static int
setup(void **state)
{
	const char *s = getenv("CM_TEST_EDGE_RELOAD"), *a = getenv("CM_TEST_EDGE_RELOAD_ADMIN");
	uint8_t     rnd[3];
	json_t     *z;

	(void)state;
	setenv("CM_TEST_EDGE", s != NULL && s[0] != '\0' ? s : "http://127.0.0.1:28083", 1);
	cm_strlcpy(admin, a != NULL && a[0] != '\0' ? a : "http://127.0.0.1:29190", sizeof(admin));
	cm_random_bytes(rnd, sizeof(rnd));
	snprintf(xff, sizeof(xff), "10.%u.%u.%u", rnd[0], rnd[1], rnd[2] | 1u);
	z = reload_with("", true);
	json_decref(z);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_decref(reload_with("", true));
	return 0;
}

/* A route limit set in the file takes effect on SIGHUP; a connection opened before the reload
 * keeps serving after it (the same one: the session opens no other). */
static void
test_limit_changes_live(void **state)
{
	http_session *s = http_session_open();
	json_t       *z, *k;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_not_equal(login(s), 429); /* no limit yet */
	z = reload_with("# a route limit\nEDGE_ROUTE_LIMITS = v1_login=0.001/3\n", true);
	k = key(z, "EDGE_ROUTE_LIMITS");
	assert_string_equal(js(k, "value"), "v1_login=0.001/3");
	assert_string_equal(js(k, "source"), "file");
	assert_true(json_is_true(json_object_get(k, "live")));
	json_decref(z);
	for (int i = 0; i < 3; i++)
		assert_int_not_equal(login(s), 429);
	assert_int_equal(login(s), 429);
	assert_int_equal(http_session_connects(s), 1);
	http_session_close(s);
}

/* A bad file is refused whole: nothing in it applies, /configz keeps the running values and says
 * why. */
static void
test_bad_file_refused(void **state)
{
	json_t    *z = reload_with("EDGE_ROUTE_LIMITS=v1_login=0.001/2\n", true), *before;
	json_int_t gen = json_integer_value(json_object_get(z, "generation"));

	(void)state;
	json_decref(z);
	z = reload_with("EDGE_ROUTE_LIMITS=v1_login=5/5\nEDGE_RATE_PER_S=lots\n", false);
	assert_int_equal(json_integer_value(json_object_get(z, "generation")), gen);
	assert_string_equal(js(key(z, "EDGE_ROUTE_LIMITS"), "value"), "v1_login=0.001/2");
	assert_non_null(strstr(js(json_object_get(z, "reloads"), "last_error"), "EDGE_RATE_PER_S"));
	json_decref(z);
	z = reload_with("EDGE_ROUTE_LIMITS=no_such_route=1\n", false);
	assert_string_equal(js(key(z, "EDGE_ROUTE_LIMITS"), "value"), "v1_login=0.001/2");
	json_decref(z);
	before = reload_with("EDGE_TYPO=1\n", false);
	assert_non_null(strstr(js(json_object_get(before, "reloads"), "last_error"), "EDGE_TYPO"));
	json_decref(before);
}

/* A key that cannot change live keeps its running value, marked pending; the edge serves on. */
static void
test_restart_key_pending(void **state)
{
	json_t       *z = reload_with("EDGE_ADDR=127.0.0.1:1\n", true), *k;
	http_session *s = http_session_open();

	(void)state;
	k = key(z, "EDGE_ADDR");
	assert_string_equal(js(k, "value"), "127.0.0.1:28083");
	assert_string_equal(js(k, "source"), "env");
	assert_true(json_is_true(json_object_get(k, "pending_restart")));
	json_decref(z);
	assert_int_equal(login(s), 401);
	http_session_close(s);
}

/* A changed upstream list gets a new client: calls go on through it. */
static void
test_upstream_list_swapped(void **state)
{
	json_t       *z = reload_with("EDGE_AUTH_URLS=tcp://127.0.0.1:27111\n", true);
	http_session *s = http_session_open();

	(void)state;
	assert_string_equal(js(key(z, "EDGE_AUTH_URLS"), "value"), "tcp://127.0.0.1:27111");
	json_decref(z);
	/* svc-auth answers the empty login (401), not the edge's 503 for want of a replica. */
	assert_int_equal(login(s), 401);
	http_session_close(s);
}

/* Secrets never leave the edge: JWT_SECRET shows "***", and its value is nowhere in /configz. */
static void
test_secrets_masked(void **state)
{
	char    path[512], *secret, *text;
	json_t *z = configz();

	(void)state;
	snprintf(path, sizeof(path), "%s/jwt.secret", getenv("CM_TEST_STATE"));
	assert_non_null(secret = cm_read_file(path, 4096));
	assert_non_null(z);
	assert_string_equal(js(key(z, "JWT_SECRET"), "value"), "***");
	assert_non_null(text = json_dumps(z, 0));
	assert_true(strlen(secret) >= 32);
	assert_null(strstr(text, secret));
	free(text);
	free(secret);
	json_decref(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_limit_changes_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_file_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_key_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upstream_list_swapped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_masked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
