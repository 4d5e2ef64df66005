/*
 * test_rpc_upstream.c - the RPC client as a gateway to an upstream (issue #12): a replica
 * SIGKILLed under steady load and restarted, a replica failing every call, the circuit breaker,
 * the pending limit, and replicas found by DNS (a resolver the test answers, servers on
 * 127.0.0.1-3 at one port).
 *
 * The SIGKILL test runs its replicas as child processes (this binary with --serve URL MODE), so
 * the kill is a real one: the kernel closes their connections with calls unanswered.
 */
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"
#include "worker_helper.h"

extern char **environ;

#define URL_0 "tcp://127.0.0.1:27831"
#define URL_1 "tcp://127.0.0.1:27832"
#define URL_2 "tcp://127.0.0.1:27833"
#define DNS_PORT "27834"
#define ONE_URL "tcp://127.0.0.1:27835"

enum { MODE_OK, MODE_INTERNAL, MODE_SLOW };

/* ---- the echo service: answers with its own URL as the topic ------------------------------ */

typedef struct srv {
	cm_rpc_server *s;
	const char    *url;
	atomic_int     calls;
	atomic_int     mode;
} srv;

static cm_err
h_echo(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	srv       *sv = ctx->worker_state;
	Cm__Event *out = resp;

	(void)req;
	atomic_fetch_add(&sv->calls, 1);
	if (atomic_load(&sv->mode) == MODE_INTERNAL)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "this replica is broken");
	if (atomic_load(&sv->mode) == MODE_SLOW)
		nng_msleep(300);
	out->type = cm_rpc_strdup(ctx, "echo");
	out->topic = cm_rpc_strdup(ctx, sv->url);
	return CM_OK;
}

static const cm_rpc_method methods[] = {
    {"t.Echo", &cm__event__descriptor, &cm__event__descriptor, h_echo, NULL},
};

static cm_err
w_init(void *arg, int idx, void **state)
{
	(void)idx;
	*state = arg;
	return CM_OK;
}

static void
srv_start(srv *sv, const char *url, int mode)
{
	cm_rpc_server_config cfg = {.url = url,
	                            .workers = 4,
	                            .methods = methods,
	                            .n_methods = 1,
	                            .worker_init = w_init,
	                            .arg = sv};

	sv->url = url;
	atomic_store(&sv->calls, 0);
	atomic_store(&sv->mode, mode);
	assert_int_equal(cm_rpc_server_start(&sv->s, &cfg), CM_OK);
}

/* Child process: serves until killed. */
static int
serve_main(const char *url, const char *mode)
{
	static srv           sv;
	cm_rpc_server_config cfg = {.url = url,
	                            .workers = 4,
	                            .methods = methods,
	                            .n_methods = 1,
	                            .worker_init = w_init,
	                            .arg = &sv};

	/* A test that dies or times out must not leave replicas holding the fixed ports. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sv.url = url;
	atomic_store(&sv.mode, strcmp(mode, "internal") == 0 ? MODE_INTERNAL : MODE_OK);
	if (cm_rpc_server_start(&sv.s, &cfg) != CM_OK)
		return 1;
	for (;;)
		pause();
}

static pid_t
spawn_replica(const char *url, const char *mode)
{
	char *argv[] = {(char *)"test_rpc_upstream", (char *)"--serve", (char *)url, (char *)mode,
	                NULL};
	pid_t pid;

	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
	return pid;
}

static void
kill_replica(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* ---- calls --------------------------------------------------------------------------------- */

/* One idempotent echo; the index (0-2) of the replica that answered by its URL, -1 on error. */
static int
echo_once(cm_rpc_client *c, const char *const *urls, size_t n_urls, int *status)
{
	Cm__Event        ev = CM__EVENT__INIT, *out = NULL;
	cm_rpc_result    res;
	cm_rpc_call_opts o = {
	    .method = "t.Echo", .idempotent = true, .deadline_ms = cm_now_ms() + 2000};
	int who = -1;

	ev.type = (char *)"hi";
	ev.topic = (char *)"";
	if (cm_rpc_call(c, &o, &ev.base, &cm__event__descriptor, (ProtobufCMessage **)&out, &res) ==
	    CM_OK) {
		who = (int)n_urls; /* answered by none of them: counted as such */
		for (size_t i = 0; i < n_urls; i++)
			if (strcmp(out->topic, urls[i]) == 0)
				who = (int)i;
		protobuf_c_message_free_unpacked(&out->base, NULL);
	}
	*status = res.status;
	cm_rpc_result_fini(&res);
	return who;
}

typedef struct load {
	cm_rpc_client     *c;
	const char *const *urls;
	size_t             n_urls;
	atomic_bool        stop;
	atomic_long        total, errors;
	atomic_long        by[4];
	pthread_t          threads[8];
} load;

static void *
load_main(void *arg)
{
	load *l = arg;
	int   st;

	while (!atomic_load(&l->stop)) {
		int who = echo_once(l->c, l->urls, l->n_urls, &st);
		atomic_fetch_add(&l->total, 1);
		if (who < 0)
			atomic_fetch_add(&l->errors, 1);
		else
			atomic_fetch_add(&l->by[who], 1);
	}
	return NULL;
}

static void
load_start(load *l)
{
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&l->threads[i], NULL, load_main, l), 0);
}

static void
load_stop(load *l)
{
	atomic_store(&l->stop, true);
	for (int i = 0; i < 8; i++)
		pthread_join(l->threads[i], NULL);
}

/* Polls until *v >= want; false at the deadline. */
static bool
wait_count(atomic_long *v, long want, int64_t ms)
{
	for (int64_t until = cm_mono_ms() + ms; cm_mono_ms() < until; nng_msleep(5))
		if (atomic_load(v) >= want)
			return true;
	return atomic_load(v) >= want;
}

static bool
wait_healthy(cm_rpc_client *c, int want, int64_t ms)
{
	for (int64_t until = cm_mono_ms() + ms; cm_mono_ms() < until; nng_msleep(10))
		if (cm_rpc_client_healthy(c) == want)
			return true;
	return false;
}

/* ---- must show: a replica SIGKILLed under load, then restarted ---------------------------- */

static void
test_replica_killed_under_load(void **state)
{
	const char *const urls[] = {URL_0, URL_1, URL_2};
	pid_t             pids[3];
	cm_rpc_client    *c = NULL;
	load              l = {.urls = urls, .n_urls = 3};
	long              at_kill = 0, at_restart = 0;
	bool              used = false, went_on = false, back = false;

	(void)state;
	for (int i = 0; i < 3; i++)
		pids[i] = spawn_replica(urls[i], "ok");
	assert_int_equal(cm_rpc_client_open(&c, "kill", URL_0 "," URL_1 "," URL_2, NULL), CM_OK);
	l.c = c;
	if (wait_healthy(c, 3, 5000)) {
		load_start(&l);
		used = wait_count(&l.by[1], 500, 10000); /* replica 1 takes its share */
		kill_replica(pids[1]);
		at_kill = atomic_load(&l.total);
		went_on = wait_count(&l.total, at_kill + 5000, 20000); /* load goes on without it */
		pids[1] = spawn_replica(urls[1], "ok");
		at_restart = atomic_load(&l.by[1]);
		/* Used again: reconnection (<= 2 s back-off) and any ejection it earned (2-4 s). */
		back = wait_count(&l.by[1], at_restart + 100, 15000);
		load_stop(&l);
	}
	cm_rpc_client_close(c);
	for (int i = 0; i < 3; i++)
		kill_replica(pids[i]);

	printf("# kill: %ld calls, %ld errors, by replica %ld/%ld/%ld\n", atomic_load(&l.total),
	       atomic_load(&l.errors), atomic_load(&l.by[0]), atomic_load(&l.by[1]),
	       atomic_load(&l.by[2]));
	assert_true(used);
	assert_true(went_on);
	assert_true(back);
	assert_true(atomic_load(&l.errors) * 100 < atomic_load(&l.total));
}

/* ---- must show: a replica failing every call is ejected ------------------------------------ */

static void
test_failing_replica_ejected(void **state)
{
	const char *const urls[] = {URL_0, URL_1, URL_2};
	pid_t             pids[3];
	cm_rpc_client    *c = NULL;
	cm_metrics       *m = cm_metrics_alloc("");
	load              l = {.urls = urls, .n_urls = 3};
	long              retries, ejections;
	bool              loaded = false;

	(void)state;
	pids[0] = spawn_replica(urls[0], "ok");
	pids[1] = spawn_replica(urls[1], "internal");
	pids[2] = spawn_replica(urls[2], "ok");
	assert_int_equal(cm_rpc_client_open(&c, "bad", URL_0 "," URL_1 "," URL_2, m), CM_OK);
	l.c = c;
	if (wait_healthy(c, 3, 5000)) {
		load_start(&l);
		loaded = wait_count(&l.total, 20000, 30000);
		load_stop(&l);
	}
	cm_rpc_client_close(c);
	for (int i = 0; i < 3; i++)
		kill_replica(pids[i]);
	retries = test_metric(m, "upstream_retries_total{upstream=\"bad\"}");
	ejections = test_metric(m, "upstream_ejections_total{upstream=\"bad\"}");
	cm_metrics_free(m);

	printf("# bad replica: %ld calls, %ld errors, %ld retries, %ld ejections\n",
	       atomic_load(&l.total), atomic_load(&l.errors), retries, ejections);
	assert_true(loaded);
	assert_true(atomic_load(&l.errors) * 100 < atomic_load(&l.total));
	assert_true(ejections >= 1);
	/* Every call it took was retried: without ejection that would be a third of them. */
	assert_true(retries * 20 < atomic_load(&l.total));
}

/* ---- breaker and pending limit ------------------------------------------------------------ */

static void
test_breaker_opens_and_recovers(void **state)
{
	static srv         sv;
	cm_rpc_client     *c = NULL;
	cm_rpc_client_opts o = {
	    .breaker_consecutive = 5, .breaker_min_calls = 1000, .breaker_open_ms = 500};
	const char *const urls[] = {ONE_URL};
	int               st, calls;
	int64_t           t0;
	bool              closed = false;

	(void)state;
	srv_start(&sv, ONE_URL, MODE_INTERNAL);
	assert_int_equal(cm_rpc_client_open_opts(&c, "brk", ONE_URL, NULL, &o), CM_OK);
	assert_true(wait_healthy(c, 1, 5000));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(echo_once(c, urls, 1, &st), -1);
		assert_int_equal(st, CM__STATUS__INTERNAL);
	}
	assert_int_equal(cm_rpc_client_breaker_state(c), CM_BREAKER_OPEN);

	/* Open: answered at once, UNAVAILABLE with a retry_after, nothing reaches the replica. */
	calls = atomic_load(&sv.calls);
	{
		cm_rpc_result    res;
		cm_rpc_call_opts co = {.method = "t.Echo"};
		t0 = cm_mono_ms();
		cm_rpc_call_raw(c, &co, NULL, 0, &res);
		assert_true(cm_mono_ms() - t0 < 100);
		assert_int_equal(res.status, CM__STATUS__UNAVAILABLE);
		assert_int_equal(res.retry_after_s, 1);
		cm_rpc_result_fini(&res);
	}
	assert_int_equal(atomic_load(&sv.calls), calls);

	/* Healed: after the open period a probe passes and its success closes the breaker. */
	atomic_store(&sv.mode, MODE_OK);
	for (int64_t until = cm_mono_ms() + 3000; !closed && cm_mono_ms() < until; nng_msleep(20))
		closed = echo_once(c, urls, 1, &st) == 0;
	assert_true(closed);
	assert_int_equal(cm_rpc_client_breaker_state(c), CM_BREAKER_CLOSED);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(sv.s);
}

typedef struct async_res {
	atomic_int status; /* -1 until done */
	atomic_int retry_after_s;
} async_res;

static void
async_done(void *arg, cm_rpc_result *res)
{
	async_res *a = arg;

	atomic_store(&a->retry_after_s, res->retry_after_s);
	atomic_store(&a->status, res->status);
}

static bool
wait_done(async_res *a, int64_t ms)
{
	for (int64_t until = cm_mono_ms() + ms; cm_mono_ms() < until; nng_msleep(2))
		if (atomic_load(&a->status) >= 0)
			return true;
	return false;
}

static void
test_pending_limit(void **state)
{
	static srv         sv;
	cm_rpc_client     *c = NULL;
	cm_rpc_client_opts o = {.max_pending = 2};
	cm_rpc_call_opts   co = {.method = "t.Echo"};
	async_res          a[4];
	int64_t            t0;

	(void)state;
	for (int i = 0; i < 4; i++)
		atomic_init(&a[i].status, -1);
	srv_start(&sv, ONE_URL, MODE_SLOW);
	assert_int_equal(cm_rpc_client_open_opts(&c, "pend", ONE_URL, NULL, &o), CM_OK);
	assert_true(wait_healthy(c, 1, 5000));
	assert_int_equal(cm_rpc_call_async(c, &co, NULL, 0, async_done, &a[0]), CM_OK);
	assert_int_equal(cm_rpc_call_async(c, &co, NULL, 0, async_done, &a[1]), CM_OK);
	assert_int_equal(cm_rpc_client_pending(c), 2);

	/* A third while two are pending: UNAVAILABLE at once, never sent. */
	t0 = cm_mono_ms();
	assert_int_equal(cm_rpc_call_async(c, &co, NULL, 0, async_done, &a[2]), CM_OK);
	assert_true(wait_done(&a[2], 1000));
	assert_true(cm_mono_ms() - t0 < 100);
	assert_int_equal(atomic_load(&a[2].status), CM__STATUS__UNAVAILABLE);
	assert_int_equal(atomic_load(&a[2].retry_after_s), 1);

	/* Once they finish, calls pass again. */
	assert_true(wait_done(&a[0], 3000) && wait_done(&a[1], 3000));
	assert_int_equal(atomic_load(&a[0].status), CM__STATUS__OK);
	assert_int_equal(atomic_load(&sv.calls), 2);
	assert_int_equal(cm_rpc_call_async(c, &co, NULL, 0, async_done, &a[3]), CM_OK);
	assert_true(wait_done(&a[3], 3000));
	assert_int_equal(atomic_load(&a[3].status), CM__STATUS__OK);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(sv.s);
}

/* ---- DNS discovery --------------------------------------------------------------------------- */

typedef struct fake_dns {
	pthread_mutex_t mtx;
	const char     *addrs[3];
	size_t          n;
	bool            fail;
	atomic_int      lookups;
} fake_dns;

static cm_err
fake_resolve(void *arg, const char *name, cm_rpc_addrs *out)
{
	fake_dns *d = arg;
	cm_err    err = CM_OK;

	atomic_fetch_add(&d->lookups, 1);
	if (strcmp(name, "echo.test") != 0)
		return CM_ENOTFOUND;
	pthread_mutex_lock(&d->mtx);
	if (d->fail)
		err = CM_EUNAVAIL;
	for (size_t i = 0; err == CM_OK && i < d->n; i++)
		cm_strlcpy(out->addr[out->n++], d->addrs[i], CM_RPC_MAX_ADDR);
	pthread_mutex_unlock(&d->mtx);
	return err;
}

static void
dns_set(fake_dns *d, const char *a, const char *b, bool fail)
{
	pthread_mutex_lock(&d->mtx);
	d->addrs[0] = a;
	d->addrs[1] = b;
	d->n = 2;
	d->fail = fail;
	pthread_mutex_unlock(&d->mtx);
}

/* Calls until server `sv` took one; the time that took, -1 at the deadline. */
static int64_t
calls_until_taken(cm_rpc_client *c, srv *sv, int64_t ms)
{
	const char *const urls[] = {"x"};
	int64_t           t0 = cm_mono_ms();
	int               st;

	while (cm_mono_ms() - t0 < ms) {
		(void)echo_once(c, urls, 1, &st);
		if (atomic_load(&sv->calls) > 0)
			return cm_mono_ms() - t0;
		nng_msleep(5);
	}
	return -1;
}

static void
test_dns_discovery(void **state)
{
	static srv         s1, s2, s3;
	static fake_dns    d = {.mtx = PTHREAD_MUTEX_INITIALIZER};
	cm_rpc_client     *c = NULL;
	cm_rpc_client_opts o = {.resolve_ms = 300, .resolve = fake_resolve, .resolve_arg = &d};
	const char *const  urls[] = {"x"};
	int64_t            took;
	int                st, before;

	(void)state;
	srv_start(&s1, "tcp://127.0.0.1:" DNS_PORT, MODE_OK);
	srv_start(&s2, "tcp://127.0.0.2:" DNS_PORT, MODE_OK);
	srv_start(&s3, "tcp://127.0.0.3:" DNS_PORT, MODE_OK);
	dns_set(&d, "127.0.0.1", "127.0.0.2", false);
	assert_int_equal(
	    cm_rpc_client_open_opts(&c, "dns", "dns+tcp://echo.test:" DNS_PORT, NULL, &o), CM_OK);
	assert_true(wait_healthy(c, 2, 5000));
	assert_int_equal(cm_rpc_client_replicas(c), 2);
	for (int i = 0; i < 100; i++)
		assert_int_equal(echo_once(c, urls, 1, &st), 1); /* answered by a replica */
	assert_true(atomic_load(&s1.calls) > 0 && atomic_load(&s2.calls) > 0);
	assert_int_equal(atomic_load(&s3.calls), 0);

	/* A replica added to the answer takes calls within one period (plus its dial). */
	dns_set(&d, "127.0.0.3", "127.0.0.1", false);
	took = calls_until_taken(c, &s3, 5000);
	printf("# new replica took its first call after %lld ms (period 300)\n", (long long)took);
	assert_true(took >= 0 && took < 300 + 500);

	/* The one that left the answer (127.0.0.2) gets no new calls. */
	assert_int_equal(cm_rpc_client_replicas(c), 2);
	before = atomic_load(&s2.calls);
	for (int i = 0; i < 200; i++)
		assert_int_equal(echo_once(c, urls, 1, &st), 1);
	assert_int_equal(atomic_load(&s2.calls), before);

	/* A failed lookup keeps what the last answer gave. */
	dns_set(&d, "127.0.0.3", "127.0.0.1", true);
	{
		int seen = atomic_load(&d.lookups);
		for (int64_t until = cm_mono_ms() + 3000;
		     atomic_load(&d.lookups) < seen + 2 && cm_mono_ms() < until;)
			nng_msleep(10);
		assert_true(atomic_load(&d.lookups) >= seen + 2);
	}
	assert_int_equal(cm_rpc_client_replicas(c), 2);
	assert_int_equal(cm_rpc_client_healthy(c), 2);

	cm_rpc_client_close(c);
	cm_rpc_server_stop(s1.s);
	cm_rpc_server_stop(s2.s);
	cm_rpc_server_stop(s3.s);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dns_discovery),
	    cmocka_unit_test(test_breaker_opens_and_recovers),
	    cmocka_unit_test(test_pending_limit),
	    cmocka_unit_test(test_replica_killed_under_load),
	    cmocka_unit_test(test_failing_replica_ejected),
	};

	if (argc == 4 && strcmp(argv[1], "--serve") == 0)
		return serve_main(argv[2], argv[3]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
