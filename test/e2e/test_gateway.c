/*
 * test_gateway.c - the edge as a gateway, end to end (issue #12): real HTTP through an edge to
 * real svc-auth replicas on PostgreSQL and Redis, under a steady load of kept-alive clients.
 *   - One of three replicas SIGKILLed mid-load: under 1% of the requests fail, and once it is
 *     restarted the edge sends it calls again (its upstream_replica_calls_total grows).
 *   - A replica failing every call (a stand-in answering UNAVAILABLE, as svc-auth does when its
 *     database is gone) is ejected after a few failures; under 1% of the requests fail.
 *   - Migration fallback: while the breaker of a route's service is open, the route's requests are
 *     answered by the old backend; once the service is back, by the service again.
 * The edges and svc-auth replicas are test/harness/gateway.sh's (fixture gateway); the failing
 * stand-in is this binary run as `--failing URL`, a child that dies with the test.
 */
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include "cm/buf.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "http_client.h"
#include "proto/auth.pb-c.h"

extern char **environ;

#define LOAD_THREADS 4
#define EJECT_AFTER 3 /* consecutive failures (libcommon/src/rpc_replica.c) */
/* gateway.sh: the gateway edge's replicas, the port its failing replica takes, and the fallback
 * edge's only replica (svc-auth replica 4, or the stand-in). */
static const char *const replica_url[] = {"tcp://127.0.0.1:27121", "tcp://127.0.0.1:27131",
                                          "tcp://127.0.0.1:27141"};
#define FAILING_URL "tcp://127.0.0.1:27151"
#define FALLBACK_URL "tcp://127.0.0.1:27161"

static char  gateway[128], gateway_admin[128], fallback[128], fallback_admin[128];
static char  auth_hdr[4200], user_id[64];
static pid_t standin = -1;

/* ---- the failing stand-in ------------------------------------------------------------------ */

static cm_err
h_fail(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	(void)req;
	(void)resp;
	return cm_rpc_fail(ctx, CM_EUNAVAIL, "database unreachable (stand-in)");
}

static const cm_rpc_method failing_methods[] = {
    {"auth.Me", &auth__me_request__descriptor, &auth__user__descriptor, h_fail, NULL},
    {"auth.Verify", &auth__verify_request__descriptor, &auth__verify_response__descriptor, h_fail,
     NULL},
};

static int
failing_main(const char *url)
{
	cm_rpc_server       *srv = NULL;
	cm_rpc_server_config cfg = {
	    .url = url, .workers = 2, .methods = failing_methods, .n_methods = 2};

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test on a fixed port */
	if (cm_rpc_server_start(&srv, &cfg) != CM_OK)
		return 1;
	for (;;)
		pause();
}

static void
standin_start(const char *url)
{
	char *argv[] = {(char *)"test_gateway", (char *)"--failing", (char *)url, NULL};

	assert_int_equal(posix_spawn(&standin, "/proc/self/exe", NULL, NULL, argv, environ), 0);
}

static void
standin_kill(void)
{
	int st;

	if (standin <= 0)
		return;
	kill(standin, SIGKILL);
	waitpid(standin, &st, 0);
	standin = -1;
}

/* ---- harness, metrics ---------------------------------------------------------------------- */

/* gateway.sh CMD STATE BUILD [replica]; 0 when it succeeded. */
static int
gateway_sh(const char *cmd, int replica)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s/gateway.sh %s %s %s %d", getenv("CM_TEST_HARNESS"), cmd,
	         getenv("CM_TEST_STATE"), getenv("CM_TEST_BIN"), replica);
	return system(line);
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	cm_buf *b = arg;

	return cm_buf_append(b, p, size * n) == CM_OK ? size * n : 0;
}

/* The value of one series ("name{labels}") on an admin port's /metrics; 0 when not there yet. */
static long long
metric(const char *admin, const char *series)
{
	CURL       *c = curl_easy_init();
	cm_buf      b;
	char        url[256];
	const char *p, *body;
	long long   v = 0;
	size_t      n = strlen(series);

	assert_non_null(c);
	cm_buf_init(&b, 4 << 20);
	snprintf(url, sizeof(url), "%s/metrics", admin);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	assert_int_equal(cm_buf_append(&b, "", 1), CM_OK);
	body = b.data;
	for (p = body; (p = strstr(p, series)) != NULL; p += n) {
		if ((p == body || p[-1] == '\n') && p[n] == ' ') {
			v = (long long)strtod(p + n + 1, NULL);
			break;
		}
	}
	cm_buf_fini(&b);
	curl_easy_cleanup(c);
	return v;
}

static long long
replica_calls(const char *admin, const char *url)
{
	char series[200];

	snprintf(series, sizeof(series),
	         "edge_upstream_replica_calls_total{upstream=\"auth\",replica=\"%s\"}", url);
	return metric(admin, series);
}

/* ---- load ---------------------------------------------------------------------------------- */

typedef struct load {
	http_session *s[LOAD_THREADS];
	pthread_t     th[LOAD_THREADS];
	atomic_bool   stop;
	atomic_long   total, errors;
	atomic_long   last_error; /* the HTTP status of the last failure, -1 without an answer */
} load;

static void *
load_main(void *arg)
{
	load         *l = ((void **)arg)[0];
	http_session *s = ((void **)arg)[1];
	const char   *h[] = {auth_hdr, NULL};

	while (!atomic_load(&l->stop)) {
		http_resp r;
		int       rc = http_session_do(s, "GET", "/api/v1/auth/me", h, NULL, 0, &r);

		atomic_fetch_add(&l->total, 1);
		if (rc != 0 || r.status != 200) {
			atomic_fetch_add(&l->errors, 1);
			atomic_store(&l->last_error, rc != 0 ? -1 : r.status);
		}
		http_resp_free(&r);
	}
	return NULL;
}

static void *load_args[LOAD_THREADS][2];

static void
load_start(load *l)
{
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < LOAD_THREADS; i++) {
		assert_non_null(l->s[i] = http_session_open());
		load_args[i][0] = l;
		load_args[i][1] = l->s[i];
		assert_int_equal(pthread_create(&l->th[i], NULL, load_main, load_args[i]), 0);
	}
}

/* Stops the load; the connections each client opened go into connects. */
static void
load_stop(load *l, long *connects)
{
	atomic_store(&l->stop, true);
	*connects = 0;
	for (int i = 0; i < LOAD_THREADS; i++) {
		pthread_join(l->th[i], NULL);
		*connects += http_session_connects(l->s[i]);
		http_session_close(l->s[i]);
	}
}

/* Waits (at most ms) until the load has sent n more requests than `from`. */
static void
load_wait(load *l, long from, long n, int64_t ms)
{
	int64_t until = cm_mono_ms() + ms;

	while (atomic_load(&l->total) < from + n && cm_mono_ms() < until)
		usleep(10 * 1000);
	assert_true(atomic_load(&l->total) >= from + n);
}

static void
load_report(const char *what, load *l, long connects)
{
	print_message("%s: %ld requests, %ld errors (last status %ld), %ld connections\n", what,
	              atomic_load(&l->total), atomic_load(&l->errors), atomic_load(&l->last_error),
	              connects);
}

/* ---- tests --------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	http_resp r;
	long      st;

	(void)state;
	snprintf(gateway, sizeof(gateway), "%s", getenv("CM_TEST_EDGE_GATEWAY"));
	snprintf(gateway_admin, sizeof(gateway_admin), "%s", getenv("CM_TEST_EDGE_GATEWAY_ADMIN"));
	snprintf(fallback, sizeof(fallback), "%s", getenv("CM_TEST_EDGE_FALLBACK"));
	snprintf(fallback_admin, sizeof(fallback_admin), "%s",
	         getenv("CM_TEST_EDGE_FALLBACK_ADMIN"));
	setenv("CM_TEST_EDGE", gateway, 1);
	if (http_new_user("gw", "gateway password", auth_hdr, sizeof(auth_hdr)) != 0)
		return -1;
	st = http_json(auth_hdr, "GET", "/api/v1/auth/me", NULL, &r);
	if (st == 200)
		snprintf(user_id, sizeof(user_id), "%s", js(r.json, "id"));
	http_resp_free(&r);
	return st == 200 && user_id[0] != '\0' ? 0 : -1;
}

/* Whatever a test stopped runs again, whatever its assertions said. */
static int
restore(void **state)
{
	(void)state;
	standin_kill();
	setenv("CM_TEST_EDGE", gateway, 1);
	return gateway_sh("start-auth", 2) == 0 ? 0 : -1;
}

/* Three replicas under four kept-alive clients; replica 2 SIGKILLed, then restarted. */
static void
test_replica_killed_under_load(void **state)
{
	load      l;
	long      connects, t;
	long long calls[3], back;
	bool      all = false;

	(void)state;
	for (int i = 0; i < 3; i++)
		calls[i] = replica_calls(gateway_admin, replica_url[i]);
	load_start(&l);
	/* Every replica takes calls before the kill. */
	for (int64_t until = cm_mono_ms() + 10000; !all && cm_mono_ms() < until;) {
		all = true;
		for (int i = 0; i < 3; i++)
			all = all && replica_calls(gateway_admin, replica_url[i]) > calls[i];
		if (!all)
			usleep(20 * 1000);
	}
	assert_true(all);
	load_wait(&l, 0, 300, 20000);

	assert_int_equal(gateway_sh("kill-auth", 2), 0);
	t = atomic_load(&l.total);
	load_wait(&l, t, 500, 20000);

	/* Restarted (gateway.sh waits for its /readyz): the edge dials it again by itself. */
	assert_int_equal(gateway_sh("start-auth", 2), 0);
	back = replica_calls(gateway_admin, replica_url[2]);
	for (int64_t until = cm_mono_ms() + 15000;
	     replica_calls(gateway_admin, replica_url[2]) < back + 50 && cm_mono_ms() < until;)
		usleep(20 * 1000);
	assert_true(replica_calls(gateway_admin, replica_url[2]) >= back + 50);
	load_stop(&l, &connects);

	load_report("replica killed", &l, connects);
	assert_true(atomic_load(&l.total) >= 1000);
	assert_true(atomic_load(&l.errors) * 100 < atomic_load(&l.total));
}

/* A fourth replica appears that answers UNAVAILABLE to every call: ejected after EJECT_AFTER
 * failures, again after each ejection ends, and the clients barely notice (the failed calls are
 * idempotent and retried on another replica). */
static void
test_failing_replica_ejected(void **state)
{
	load      l;
	long      connects;
	long long ej0, calls0, ej, calls;
	int64_t   until;

	(void)state;
	ej0 = metric(gateway_admin, "edge_upstream_ejections_total{upstream=\"auth\"}");
	calls0 = replica_calls(gateway_admin, FAILING_URL);
	load_start(&l);
	load_wait(&l, 0, 100, 20000);
	standin_start(FAILING_URL);
	/* The edge dials it within its reconnect back-off (2 s at most) and ejects it. */
	until = cm_mono_ms() + 15000;
	while (metric(gateway_admin, "edge_upstream_ejections_total{upstream=\"auth\"}") == ej0 &&
	       cm_mono_ms() < until)
		usleep(20 * 1000);
	assert_true(metric(gateway_admin, "edge_upstream_ejections_total{upstream=\"auth\"}") >
	            ej0);
	/* Past the first ejection (2 s): it is tried again and ejected again. */
	for (until = cm_mono_ms() + 3000; cm_mono_ms() < until;)
		usleep(50 * 1000);
	load_stop(&l, &connects);

	ej = metric(gateway_admin, "edge_upstream_ejections_total{upstream=\"auth\"}") - ej0;
	calls = replica_calls(gateway_admin, FAILING_URL) - calls0;
	load_report("failing replica", &l, connects);
	print_message("failing replica: %lld calls, %lld ejections\n", calls, ej);
	assert_true(ej >= 1);
	/* A few failures per ejection: EJECT_AFTER each, plus the calls in flight when it came. */
	assert_true(calls >= EJECT_AFTER);
	assert_true(calls <= EJECT_AFTER * ej + (EJECT_AFTER - 1) + LOAD_THREADS);
	assert_true(atomic_load(&l.total) >= 500);
	assert_true(atomic_load(&l.errors) * 100 < atomic_load(&l.total));
}

static bool
from_old(const http_resp *r)
{
	char v[64];

	return http_header(r, "X-Served-By", v, sizeof(v)) != NULL && strcmp(v, "old-backend") == 0;
}

static long long
routed(const char *target)
{
	char series[160];

	snprintf(series, sizeof(series),
	         "edge_routing_total{route=\"legacy_verify\",target=\"%s\"}", target);
	return metric(fallback_admin, series);
}

#define BREAKER "edge_upstream_breaker_state{upstream=\"auth\"}"
#define REFUSED "edge_upstream_rejections_total{upstream=\"auth\",reason=\"breaker_open\"}"

/* The fallback edge migrates legacy_verify with EDGE_LEGACY_FALLBACK=1 (share 0: every user on
 * the new side). svc-auth's only replica fails every call until its breaker opens: the route is
 * then answered by the old backend, at once, without a call; svc-auth back, by svc-auth again. */
static void
test_fallback_while_breaker_open(void **state)
{
	const char *h[] = {auth_hdr, NULL};
	http_resp   r;
	long long   refused0, old0, new0;
	char        v[64];
	bool        back = false;

	(void)state;
	setenv("CM_TEST_EDGE", fallback, 1);
	standin_start(FALLBACK_URL);
	/* Until the breaker opens the answers vary: the old backend's while the stand-in is not
	 * dialled yet (no replica), 503 once it answers. */
	for (int64_t until = cm_mono_ms() + 15000;
	     metric(fallback_admin, BREAKER) != CM_BREAKER_OPEN && cm_mono_ms() < until;) {
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
		http_resp_free(&r);
	}
	assert_int_equal(metric(fallback_admin, BREAKER), CM_BREAKER_OPEN);

	/* Open (for 2 s): each request is refused unsent and answered by the old backend. */
	refused0 = metric(fallback_admin, REFUSED);
	old0 = routed("old_fallback");
	for (int i = 0; i < 10; i++) {
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_true(from_old(&r));
		assert_non_null(http_header(&r, "X-Old-User", v, sizeof(v)));
		assert_string_equal(v, user_id);
		http_resp_free(&r);
	}
	assert_int_equal(metric(fallback_admin, REFUSED) - refused0, 10);
	assert_int_equal(routed("old_fallback") - old0, 10);

	/* The service back: the stand-in goes, svc-auth takes its port. Once the breaker's open
	 * time is over a request is its probe, reaches svc-auth and closes it. */
	standin_kill();
	assert_int_equal(gateway_sh("start-auth", 4), 0);
	for (int64_t until = cm_mono_ms() + 20000; !back && cm_mono_ms() < until;) {
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
		back = r.status == 200 && !from_old(&r);
		http_resp_free(&r);
		if (!back)
			usleep(20 * 1000);
	}
	assert_true(back);
	assert_int_equal(metric(fallback_admin, BREAKER), CM_BREAKER_CLOSED);
	new0 = routed("new");
	for (int i = 0; i < 10; i++) {
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_false(from_old(&r));
		assert_true(json_is_true(json_object_get(r.json, "valid")));
		http_resp_free(&r);
	}
	assert_int_equal(routed("new") - new0, 10);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_replica_killed_under_load, restore),
	    cmocka_unit_test_teardown(test_failing_replica_ejected, restore),
	    cmocka_unit_test_teardown(test_fallback_while_breaker_open, restore),
	};

	if (argc == 3 && strcmp(argv[1], "--failing") == 0)
		return failing_main(argv[2]);
	curl_global_init(CURL_GLOBAL_ALL);
	return cmocka_run_group_tests(tests, setup, NULL);
}
