/*
 * test_rpc_batch.c - batching of concurrent calls (cm/rpc.h BATCHING, rpc_batch.c) over real nng
 * TCP sockets on loopback: concurrent calls coalesce, each call keeps its own answer and error, a
 * deadline that passes while a call waits, a replica SIGKILLed with a batch in flight (its calls
 * retried or failed exactly as calls sent alone), a server that does not know cm.Batch, and a
 * method's prefetch (one call for all its calls in a batch, forgotten before another method's).
 *
 * A client with batch_inflight = 1 makes batches predictable: while one batch is in flight every
 * new call waits, and the waiting calls leave together when it completes. A "sleep" call holds
 * the one slot for as long as the test needs.
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
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"

extern char **environ;

#define URL_A "tcp://127.0.0.1:27841"
#define URL_B "tcp://127.0.0.1:27842"
#define URL_OLD "tcp://127.0.0.1:27843"

/* ---- the echo service ------------------------------------------------------------------------ */

static const char *served_url = ""; /* the topic of every answer: who answered */
static atomic_int  marks;           /* calls of type "mark" the handler ran */
static int         sleep_ms = 300;  /* a "sleep" call's length */

/* Echo: type "echo:<type>", topic the serving URL; "fail" fails NOT_FOUND, "sleep" sleeps. */
static cm_err
h_echo(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Cm__Event *in = req;
	Cm__Event       *out = resp;
	char             buf[128];

	if (strcmp(in->type, "fail") == 0)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such %s", in->topic);
	if (strcmp(in->type, "sleep") == 0)
		nng_msleep(sleep_ms);
	if (strcmp(in->type, "mark") == 0)
		atomic_fetch_add(&marks, 1);
	snprintf(buf, sizeof(buf), "echo:%s", in->type);
	out->type = cm_rpc_strdup(ctx, buf);
	out->topic = cm_rpc_strdup(ctx, served_url);
	return CM_OK;
}

/* test.Pre: a method with a prefetch. The prefetch records each batch's subjects; the handler
 * answers "pre:<subject>" when its subject was prefetched, "alone:<subject>" otherwise. One
 * batch is in flight at a time (batch_inflight 1), so plain globals do. */
static char pre_subjects[16][16];
static int  npre, prefetch_calls, prefetch_sizes[8], forgets;

static void
pre_fetch(void *state, const cm_rpc_ctx *calls, size_t n)
{
	(void)state;
	if (n == 0) {
		forgets++;
		npre = 0;
		return;
	}
	if (prefetch_calls < 8)
		prefetch_sizes[prefetch_calls] = (int)n;
	prefetch_calls++;
	for (size_t i = 0; i < n && npre < 16; i++)
		cm_strlcpy(pre_subjects[npre++], calls[i].subject, sizeof(pre_subjects[0]));
}

static cm_err
h_pre(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	Cm__Event *out = resp;
	char       buf[64];
	bool       found = false;

	(void)req;
	for (int i = 0; i < npre; i++)
		found = found || strcmp(pre_subjects[i], ctx->subject) == 0;
	snprintf(buf, sizeof(buf), "%s:%s", found ? "pre" : "alone", ctx->subject);
	out->type = cm_rpc_strdup(ctx, buf);
	return CM_OK;
}

static const cm_rpc_method methods[] = {
    {"test.Echo", &cm__event__descriptor, &cm__event__descriptor, h_echo, NULL},
    {"test.Pre", &cm__event__descriptor, &cm__event__descriptor, h_pre, pre_fetch},
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static cm_rpc_server *
start(const char *url, cm_metrics *m)
{
	cm_rpc_server       *s = NULL;
	cm_rpc_server_config cfg = {
	    .url = url, .workers = 4, .methods = methods, .n_methods = N_METHODS, .metrics = m};

	served_url = url;
	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_OK);
	return s;
}

/* Child process: serves until killed (the SIGKILL test). */
static int
serve_main(const char *url)
{
	cm_rpc_server       *s;
	cm_rpc_server_config cfg = {
	    .url = url, .workers = 4, .methods = methods, .n_methods = N_METHODS};

	/* A test that dies must not leave a replica holding the fixed port. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	served_url = url;
	sleep_ms = 1000;
	if (cm_rpc_server_start(&s, &cfg) != CM_OK)
		return 1;
	for (;;)
		pause();
}

static cm_rpc_client *
client(const char *urls, cm_metrics *m)
{
	cm_rpc_client     *c = NULL;
	cm_rpc_client_opts o = {.batch_inflight = 1};

	assert_int_equal(cm_rpc_client_open_opts(&c, "t", urls, m, &o), CM_OK);
	for (int i = 0; i < 300 && cm_rpc_client_healthy(c) < 1; i++)
		nng_msleep(10);
	assert_int_equal(cm_rpc_client_healthy(c), 1);
	return c;
}

/* ---- asynchronous calls and their outcomes --------------------------------------------------- */

typedef struct outcome {
	atomic_bool done;
	int         status;
	char        message[CM_MAX_ERRMSG];
	char        type[64];
	char        topic[64];
	int64_t     at_ms; /* when the answer came (monotonic) */
} outcome;

static void
on_done(void *arg, cm_rpc_result *res)
{
	outcome   *o = arg;
	Cm__Event *ev;

	o->status = res->status;
	cm_strlcpy(o->message, res->message, sizeof(o->message));
	if (res->status == CM__STATUS__OK &&
	    (ev = cm__event__unpack(NULL, res->payload_len, res->payload)) != NULL) {
		cm_strlcpy(o->type, ev->type, sizeof(o->type));
		cm_strlcpy(o->topic, ev->topic, sizeof(o->topic));
		cm__event__free_unpacked(ev, NULL);
	}
	o->at_ms = cm_mono_ms();
	atomic_store(&o->done, true);
}

/* Starts a batchable test.Echo of `type`. */
static void
call(cm_rpc_client *c, const char *type, bool idempotent, int64_t deadline_ms, outcome *o)
{
	Cm__Event        ev = CM__EVENT__INIT;
	uint8_t          buf[128];
	size_t           n;
	cm_rpc_call_opts opts = {.method = "test.Echo",
	                         .deadline_ms = deadline_ms,
	                         .idempotent = idempotent,
	                         .batchable = true};

	memset(o, 0, sizeof(*o));
	ev.type = (char *)type;
	ev.topic = (char *)"t";
	n = cm__event__pack(&ev, buf);
	assert_int_equal(cm_rpc_call_async(c, &opts, buf, n, on_done, o), CM_OK);
}

/* Starts a batchable test.Pre for `subject`. */
static void
call_pre(cm_rpc_client *c, const char *subject, outcome *o)
{
	cm_rpc_call_opts opts = {.method = "test.Pre", .subject = subject, .batchable = true};

	memset(o, 0, sizeof(*o));
	assert_int_equal(cm_rpc_call_async(c, &opts, NULL, 0, on_done, o), CM_OK);
}

static void
wait_done(outcome *o)
{
	for (int i = 0; i < 1000 && !atomic_load(&o->done); i++)
		nng_msleep(5);
	assert_true(atomic_load(&o->done));
}

/* The value of one series in the registry's text, -1 when it is not there. */
static long long
metric(cm_metrics *m, const char *series)
{
	cm_buf      text;
	const char *p;
	long long   v = -1;
	char        key[200];

	snprintf(key, sizeof(key), "\n%s ", series);
	cm_buf_init(&text, 1 << 20);
	assert_int_equal(cm_metrics_render(m, &text), CM_OK);
	if ((p = strstr(text.data, key)) != NULL)
		v = strtoll(p + strlen(key), NULL, 10);
	cm_buf_fini(&text);
	return v;
}

#define BATCHES "upstream_batches_total{upstream=\"t\"}"
#define BATCHED "upstream_batched_calls_total{upstream=\"t\"}"

/* ---- tests ----------------------------------------------------------------------------------- */

/* 40 calls started together, one slot: the first goes alone, the rest wait and leave in a few
 * batches; every call gets its own answer. */
static void
test_concurrent_calls_coalesce(void **state)
{
	enum { N = 40 };
	cm_metrics    *m = cm_metrics_alloc("");
	cm_rpc_server *s = start(URL_A, NULL);
	cm_rpc_client *c = client(URL_A, m);
	static outcome o[N];
	char           type[16];

	(void)state;
	sleep_ms = 100;
	call(c, "sleep", true, 0, &o[0]);
	for (int i = 1; i < N; i++) {
		snprintf(type, sizeof(type), "n%d", i);
		call(c, type, true, 0, &o[i]);
	}
	for (int i = 0; i < N; i++) {
		wait_done(&o[i]);
		assert_int_equal(o[i].status, CM__STATUS__OK);
		snprintf(type, sizeof(type), "echo:n%d", i);
		assert_string_equal(o[i].type, i == 0 ? "echo:sleep" : type);
	}
	assert_int_equal(metric(m, BATCHED), N);
	/* The sleeper alone, then the 39 that waited behind it together (64 calls fit in one). */
	assert_int_equal(metric(m, BATCHES), 2);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
	cm_metrics_free(m);
}

/* In one batch: an answer, a handler error, another answer; each call sees its own. An unknown
 * method inside a batch is that call's UNIMPLEMENTED and does not turn batching off. */
static void
test_per_call_errors(void **state)
{
	cm_metrics      *m = cm_metrics_alloc("");
	cm_rpc_server   *s = start(URL_A, m);
	cm_rpc_client   *c = client(URL_A, m);
	outcome          sl, a, f, b, u;
	cm_rpc_call_opts nope = {.method = "test.Nope", .batchable = true};

	(void)state;
	sleep_ms = 200;
	call(c, "sleep", true, 0, &sl);
	call(c, "a", true, 0, &a);
	call(c, "fail", true, 0, &f);
	memset(&u, 0, sizeof(u));
	assert_int_equal(cm_rpc_call_async(c, &nope, NULL, 0, on_done, &u), CM_OK);
	call(c, "b", true, 0, &b);
	wait_done(&sl);
	wait_done(&a);
	wait_done(&f);
	wait_done(&u);
	wait_done(&b);
	assert_int_equal(metric(m, BATCHES), 2);
	assert_int_equal(a.status, CM__STATUS__OK);
	assert_string_equal(a.type, "echo:a");
	assert_int_equal(f.status, CM__STATUS__NOT_FOUND);
	assert_string_equal(f.message, "no such t");
	assert_int_equal(u.status, CM__STATUS__UNIMPLEMENTED);
	assert_int_equal(b.status, CM__STATUS__OK);
	assert_string_equal(b.type, "echo:b");
	/* The server ran each inner call as a call, and the batches as cm.Batch. */
	assert_int_equal(metric(m, "rpc_requests_total{method=\"test.Echo\",code=\"NOT_FOUND\"}"),
	                 1);
	assert_int_equal(metric(m, "rpc_requests_total{method=\"test.Echo\",code=\"OK\"}"), 3);
	assert_int_equal(metric(m, "rpc_requests_total{method=\"cm.Batch\",code=\"OK\"}"), 2);

	/* Still batching: one more call is one more batch. */
	call(c, "again", true, 0, &a);
	wait_done(&a);
	assert_int_equal(a.status, CM__STATUS__OK);
	assert_int_equal(metric(m, BATCHES), 3);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
	cm_metrics_free(m);
}

/* A batch of test.Pre for s1, s2, s3, a test.Echo, and test.Pre for s4: the prefetch gets the
 * four Pre calls at once before any runs; the Echo makes the server forget it, so s4 runs
 * alone. A Pre call alone in its batch gets no prefetch. */
static void
test_prefetch(void **state)
{
	cm_rpc_server *s = start(URL_A, NULL);
	cm_rpc_client *c = client(URL_A, NULL);
	outcome        sl, p[4], e, one;
	const char    *subjects[4] = {"s1", "s2", "s3", "s4"};
	char           want[32];

	(void)state;
	prefetch_calls = forgets = npre = 0;
	sleep_ms = 200;
	call(c, "sleep", true, 0, &sl);
	for (int i = 0; i < 3; i++)
		call_pre(c, subjects[i], &p[i]);
	call(c, "between", true, 0, &e);
	call_pre(c, subjects[3], &p[3]);
	wait_done(&sl);
	wait_done(&e);
	for (int i = 0; i < 4; i++) {
		wait_done(&p[i]);
		assert_int_equal(p[i].status, CM__STATUS__OK);
		snprintf(want, sizeof(want), "%s:%s", i < 3 ? "pre" : "alone", subjects[i]);
		assert_string_equal(p[i].type, want);
	}
	assert_int_equal(e.status, CM__STATUS__OK);
	assert_int_equal(prefetch_calls, 1);
	assert_int_equal(prefetch_sizes[0], 4);
	assert_int_equal(forgets, 1); /* before the Echo; nothing held after the batch */

	call_pre(c, "lone", &one);
	wait_done(&one);
	assert_string_equal(one.type, "alone:lone");
	assert_int_equal(prefetch_calls, 1);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

/* A call waiting behind a 400 ms batch with a 60 ms deadline is answered DEADLINE_EXCEEDED near
 * its deadline, not when the batch completes, and is never sent. */
static void
test_deadline_while_waiting(void **state)
{
	cm_metrics    *m = cm_metrics_alloc("");
	cm_rpc_server *s = start(URL_A, NULL);
	cm_rpc_client *c = client(URL_A, m);
	outcome        sl, late, ok;
	int64_t        t0;

	(void)state;
	sleep_ms = 400;
	atomic_store(&marks, 0);
	call(c, "sleep", true, 0, &sl);
	t0 = cm_mono_ms();
	call(c, "mark", true, cm_now_ms() + 60, &late);
	call(c, "ok", true, 0, &ok);
	wait_done(&late);
	assert_int_equal(late.status, CM__STATUS__DEADLINE_EXCEEDED);
	assert_true(late.at_ms - t0 >= 50); /* its deadline is on the wall clock: a little slack */
	assert_true(late.at_ms - t0 < 300); /* the sweep, not the sleeper's end */
	assert_false(atomic_load(&sl.done));
	wait_done(&sl);
	wait_done(&ok);
	assert_int_equal(ok.status, CM__STATUS__OK);
	assert_int_equal(atomic_load(&marks), 0);
	assert_int_equal(metric(m, BATCHED), 2); /* the sleeper and "ok", not "mark" */
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
	cm_metrics_free(m);
}

/* A replica killed with a batch in flight: the batch's idempotent calls are retried on the other
 * replica, the other one fails UNAVAILABLE, as each would alone. */
static void
test_replica_killed_with_batch_in_flight(void **state)
{
	char          *argv[] = {(char *)"test_rpc_batch", (char *)"--serve", (char *)URL_A, NULL};
	cm_metrics    *m = cm_metrics_alloc("");
	cm_rpc_client *c;
	cm_rpc_server *b = NULL;
	outcome        first, i1, i2, once;
	pid_t          pid;
	int            st;

	(void)state;
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
	c = client(URL_A "," URL_B, m);    /* B is not up yet: everything goes to A */
	call(c, "sleep", true, 0, &first); /* 1 s on A, holding the slot */
	call(c, "sleep", true, 0, &i1);
	call(c, "sleep", true, 0, &i2);
	call(c, "sleep", false, 0, &once);
	wait_done(&first); /* its batch done: the three left together, to A */
	assert_int_equal(first.status, CM__STATUS__OK);
	assert_int_equal(metric(m, BATCHES), 2);
	assert_false(atomic_load(&i1.done));

	sleep_ms = 1;
	b = start(URL_B, NULL);
	for (int i = 0; i < 300 && cm_rpc_client_healthy(c) < 2; i++)
		nng_msleep(10);
	assert_int_equal(cm_rpc_client_healthy(c), 2);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);

	wait_done(&i1);
	wait_done(&i2);
	wait_done(&once);
	assert_int_equal(i1.status, CM__STATUS__OK);
	assert_string_equal(i1.topic, URL_B);
	assert_int_equal(i2.status, CM__STATUS__OK);
	assert_string_equal(i2.topic, URL_B);
	assert_int_equal(once.status, CM__STATUS__UNAVAILABLE); /* not retried: not idempotent */
	assert_int_equal(metric(m, "upstream_retries_total{upstream=\"t\"}"), 2);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(b);
	cm_metrics_free(m);
}

/* ---- a server from before batching: cm.Batch is an unknown method ---------------------------- */

typedef struct old_server {
	nng_socket sock;
	pthread_t  thread;
	atomic_int batches, singles;
} old_server;

static void *
old_main(void *arg)
{
	old_server *o = arg;
	void       *buf;
	size_t      len;

	while (nng_recv(o->sock, &buf, &len, NNG_FLAG_ALLOC) == 0) {
		Cm__Request *rq = cm__request__unpack(NULL, len, buf);
		Cm__Response rsp = CM__RESPONSE__INIT;
		Cm__Event    ev = CM__EVENT__INIT;
		uint8_t      payload[128], out[256];

		nng_free(buf, len);
		if (rq == NULL)
			break; /* only our client talks to it */
		if (strcmp(rq->method, CM_RPC_BATCH_METHOD) == 0) {
			atomic_fetch_add(&o->batches, 1);
			rsp.status = CM__STATUS__UNIMPLEMENTED;
			rsp.message = (char *)"unknown method";
		} else {
			atomic_fetch_add(&o->singles, 1);
			ev.type = (char *)"old";
			ev.topic = (char *)"old";
			rsp.payload.data = payload;
			rsp.payload.len = cm__event__pack(&ev, payload);
		}
		cm__request__free_unpacked(rq, NULL);
		if (nng_send(o->sock, out, cm__response__pack(&rsp, out), 0) != 0)
			break;
	}
	return NULL;
}

static void
test_server_without_batches(void **state)
{
	cm_metrics    *m = cm_metrics_alloc("");
	cm_rpc_client *c;
	old_server     old = {0};
	outcome        o[3];

	(void)state;
	assert_int_equal(nng_rep0_open(&old.sock), 0);
	assert_int_equal(nng_listen(old.sock, URL_OLD, NULL, 0), 0);
	assert_int_equal(pthread_create(&old.thread, NULL, old_main, &old), 0);
	c = client(URL_OLD, m);

	call(c, "x", false, 0, &o[0]);
	wait_done(&o[0]);
	assert_int_equal(o[0].status, CM__STATUS__OK);
	assert_string_equal(o[0].type, "old");
	assert_int_equal(atomic_load(&old.batches), 1);
	assert_int_equal(atomic_load(&old.singles), 1);
	/* From then on the calls go alone: no second batch. */
	call(c, "y", false, 0, &o[1]);
	call(c, "z", false, 0, &o[2]);
	wait_done(&o[1]);
	wait_done(&o[2]);
	assert_int_equal(o[1].status, CM__STATUS__OK);
	assert_int_equal(o[2].status, CM__STATUS__OK);
	assert_int_equal(atomic_load(&old.batches), 1);
	assert_int_equal(atomic_load(&old.singles), 3);
	assert_int_equal(metric(m, BATCHES), 1);
	/* Not a failure of the replica nor of the upstream. */
	assert_int_equal(metric(m, "upstream_errors_total{upstream=\"t\"}"), 0);

	cm_rpc_client_close(c);
	nng_close(old.sock);
	pthread_join(old.thread, NULL);
	cm_metrics_free(m);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_calls_coalesce),
	    cmocka_unit_test(test_per_call_errors),
	    cmocka_unit_test(test_prefetch),
	    cmocka_unit_test(test_deadline_while_waiting),
	    cmocka_unit_test(test_server_without_batches),
	    cmocka_unit_test(test_replica_killed_with_batch_in_flight),
	};

	if (argc == 3 && strcmp(argv[1], "--serve") == 0)
		return serve_main(argv[2]);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
