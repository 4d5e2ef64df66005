/*
 * test_rpc.c - the RPC layer over real nng TCP sockets on loopback: round trips, errors,
 * malformed input, deadlines, replicas coming and going, a stop that lets a running call reply,
 * and the per-method metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "cm/buf.h"
#include "cm/metrics.h"
#include "cm/rpc.h"
#include "cm/util.h"
#include "proto/common.pb-c.h"

#define URL_A "tcp://127.0.0.1:27801"
#define URL_B "tcp://127.0.0.1:27802"

/* Echo: returns the event with type "echo:<type>" and the caller's subject as topic. */
static cm_err
h_echo(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Cm__Event *in = req;
	Cm__Event       *out = resp;
	char             buf[128];

	if (strcmp(in->type, "fail") == 0)
		return cm_rpc_fail(ctx, CM_ENOTFOUND, "no such %s", in->topic);
	if (strcmp(in->type, "sleep") == 0)
		nng_msleep(300);
	snprintf(buf, sizeof(buf), "echo:%s", in->type);
	out->type = cm_rpc_strdup(ctx, buf);
	out->topic = cm_rpc_strdup(ctx, ctx->subject);
	return CM_OK;
}

static const cm_rpc_method methods[] = {
    {"test.Echo", &cm__event__descriptor, &cm__event__descriptor, h_echo, NULL},
};

static int worker_states;

static cm_err
w_init(void *arg, int idx, void **state)
{
	(void)arg;
	__atomic_add_fetch(&worker_states, 1, __ATOMIC_SEQ_CST);
	*state = (void *)(intptr_t)(idx + 1);
	return CM_OK;
}

static cm_rpc_server *
start(const char *url)
{
	cm_rpc_server       *s = NULL;
	cm_rpc_server_config cfg = {
	    .url = url, .workers = 2, .methods = methods, .n_methods = 1, .worker_init = w_init};

	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_OK);
	return s;
}

static cm_err
echo(cm_rpc_client *c, const char *type, const char *subject, Cm__Event **out, cm_rpc_result *res)
{
	Cm__Event        ev = CM__EVENT__INIT;
	cm_rpc_call_opts o = {.method = "test.Echo", .subject = subject};

	ev.type = (char *)type;
	ev.topic = (char *)"t";
	return cm_rpc_call(c, &o, &ev.base, &cm__event__descriptor, (ProtobufCMessage **)out, res);
}

static void
test_round_trip(void **state)
{
	cm_rpc_server *s = start(URL_A);
	cm_rpc_client *c = NULL;
	Cm__Event     *out;
	cm_rpc_result  res;

	(void)state;
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A, NULL), CM_OK);
	assert_int_equal(echo(c, "hi", "user-1", &out, &res), CM_OK);
	assert_string_equal(out->type, "echo:hi");
	assert_string_equal(out->topic, "user-1");
	protobuf_c_message_free_unpacked(&out->base, NULL);
	cm_rpc_result_fini(&res);
	assert_true(worker_states >= 2);

	/* A handler error carries its status and message. */
	assert_int_equal(echo(c, "fail", "", &out, &res), CM_ENOTFOUND);
	assert_int_equal(res.status, CM__STATUS__NOT_FOUND);
	assert_string_equal(res.message, "no such t");
	assert_null(out);
	cm_rpc_result_fini(&res);

	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

static void
test_unknown_method_and_bad_payload(void **state)
{
	cm_rpc_server   *s = start(URL_A);
	cm_rpc_client   *c = NULL;
	cm_rpc_result    res;
	cm_rpc_call_opts o = {.method = "test.Nope"};
	const uint8_t    junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};

	(void)state;
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A, NULL), CM_OK);
	cm_rpc_call_raw(c, &o, NULL, 0, &res);
	assert_int_equal(res.status, CM__STATUS__UNIMPLEMENTED);
	cm_rpc_result_fini(&res);

	o.method = "test.Echo";
	cm_rpc_call_raw(c, &o, junk, sizeof(junk), &res);
	assert_int_equal(res.status, CM__STATUS__INVALID_ARGUMENT);
	cm_rpc_result_fini(&res);

	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

/* Random bytes on the socket get INVALID_ARGUMENT, and the server keeps serving. */
static void
test_garbage_envelope(void **state)
{
	cm_rpc_server *s = start(URL_A);
	cm_rpc_client *c = NULL;
	nng_socket     raw;
	uint8_t        junk[257];
	void          *buf = NULL;
	size_t         len = 0;
	Cm__Response  *rsp;
	Cm__Event     *out;
	cm_rpc_result  res;

	(void)state;
	assert_int_equal(nng_req0_open(&raw), 0);
	nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 3000);
	assert_int_equal(nng_dial(raw, URL_A, NULL, 0), 0);
	for (int i = 0; i < 20; i++) {
		cm_random_bytes(junk, sizeof(junk));
		/* Field 1, length-delimited, claiming 16383 bytes (varint ff 7f) of the 254 that
		 * follow: no envelope can be read from it, whatever the random rest is. */
		junk[0] = 0x0a;
		junk[1] = 0xff;
		junk[2] = 0x7f;
		assert_int_equal(nng_send(raw, junk, sizeof(junk), 0), 0);
		assert_int_equal(nng_recv(raw, &buf, &len, NNG_FLAG_ALLOC), 0);
		rsp = cm__response__unpack(NULL, len, buf);
		assert_non_null(rsp);
		assert_int_equal(rsp->status, CM__STATUS__INVALID_ARGUMENT);
		cm__response__free_unpacked(rsp, NULL);
		nng_free(buf, len);
	}
	nng_close(raw);

	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A, NULL), CM_OK);
	assert_int_equal(echo(c, "still", "", &out, &res), CM_OK);
	protobuf_c_message_free_unpacked(&out->base, NULL);
	cm_rpc_result_fini(&res);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

static void
test_deadlines(void **state)
{
	cm_rpc_server   *s = start(URL_A);
	cm_rpc_client   *c = NULL;
	cm_rpc_result    res;
	Cm__Event        ev = CM__EVENT__INIT;
	uint8_t          buf[64];
	size_t           n;
	cm_rpc_call_opts o = {.method = "test.Echo"};
	int64_t          t0;

	(void)state;
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A, NULL), CM_OK);
	ev.type = (char *)"sleep";
	n = cm__event__pack(&ev, buf);

	o.deadline_ms = cm_now_ms() - 1; /* already past */
	cm_rpc_call_raw(c, &o, buf, n, &res);
	assert_int_equal(res.status, CM__STATUS__DEADLINE_EXCEEDED);
	cm_rpc_result_fini(&res);

	t0 = cm_mono_ms();
	o.deadline_ms = cm_now_ms() + 100; /* the handler sleeps 300 ms */
	cm_rpc_call_raw(c, &o, buf, n, &res);
	assert_int_equal(res.status, CM__STATUS__DEADLINE_EXCEEDED);
	assert_true(cm_mono_ms() - t0 < 250);
	cm_rpc_result_fini(&res);

	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

/* Two replicas: calls spread over both; with one gone, calls still succeed; with none, they fail
 * fast with UNAVAILABLE. */
static void
test_replicas(void **state)
{
	cm_rpc_server *a = start(URL_A), *b = start(URL_B);
	cm_rpc_client *c = NULL;
	Cm__Event     *out;
	cm_rpc_result  res;
	int64_t        t0;

	(void)state;
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A "," URL_B, NULL), CM_OK);
	for (int i = 0; i < 200 && cm_rpc_client_healthy(c) < 2; i++)
		nng_msleep(10);
	assert_int_equal(cm_rpc_client_healthy(c), 2);

	cm_rpc_server_stop(a);
	for (int i = 0; i < 200 && cm_rpc_client_healthy(c) > 1; i++)
		nng_msleep(10);
	assert_int_equal(cm_rpc_client_healthy(c), 1);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(echo(c, "x", "", &out, &res), CM_OK);
		protobuf_c_message_free_unpacked(&out->base, NULL);
		cm_rpc_result_fini(&res);
	}

	cm_rpc_server_stop(b);
	for (int i = 0; i < 200 && cm_rpc_client_healthy(c) > 0; i++)
		nng_msleep(10);
	t0 = cm_mono_ms();
	assert_int_equal(echo(c, "x", "", &out, &res), CM_EUNAVAIL);
	assert_int_equal(res.status, CM__STATUS__UNAVAILABLE);
	assert_true(cm_mono_ms() - t0 <
	            1500); /* the blocking wait for a first connection, no more */
	cm_rpc_result_fini(&res);

	/* A replica that comes back is used again. */
	a = start(URL_A);
	for (int i = 0; i < 300 && cm_rpc_client_healthy(c) == 0; i++)
		nng_msleep(10);
	assert_int_equal(echo(c, "back", "", &out, &res), CM_OK);
	protobuf_c_message_free_unpacked(&out->base, NULL);
	cm_rpc_result_fini(&res);

	cm_rpc_client_close(c);
	cm_rpc_server_stop(a);
}

/* ---- worker start-up policy and per-call hooks ------------------------------------------- */

#define URL_C "tcp://127.0.0.1:27803"

static int fini_calls;

static cm_err
w_init_second_fails(void *arg, int idx, void **state)
{
	(void)arg;
	*state = NULL;
	return idx == 1 ? CM_ENOMEM : CM_OK;
}

static void
w_fini_count(void *arg, int idx, void *state)
{
	(void)arg;
	(void)idx;
	(void)state;
	__atomic_add_fetch(&fini_calls, 1, __ATOMIC_SEQ_CST);
}

/* One worker that cannot start: the server does not start, every worker is finished, and the
 * address is free again. */
static void
test_worker_init_fails(void **state)
{
	cm_rpc_server       *s = NULL;
	cm_rpc_server_config cfg = {.url = URL_C,
	                            .workers = 3,
	                            .methods = methods,
	                            .n_methods = 1,
	                            .worker_init = w_init_second_fails,
	                            .worker_fini = w_fini_count};

	(void)state;
	fini_calls = 0;
	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_ENOMEM);
	assert_int_equal(fini_calls, 3);
	cfg.worker_init = w_init;
	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_OK);
	cm_rpc_server_stop(s);
}

static int     hook_begins, hook_ends;
static int64_t hook_deadline;

static void
h_begin(void *arg, int idx, const cm_rpc_ctx *ctx)
{
	(void)arg;
	(void)idx;
	hook_deadline = ctx->deadline_ms;
	__atomic_add_fetch(&hook_begins, 1, __ATOMIC_SEQ_CST);
}

static void
h_end(void *arg, int idx)
{
	(void)arg;
	(void)idx;
	__atomic_add_fetch(&hook_ends, 1, __ATOMIC_SEQ_CST);
}

/* call_begin sees the call's deadline before the handler runs; call_end follows every call. */
static void
test_call_hooks(void **state)
{
	cm_rpc_server       *s = NULL;
	cm_rpc_client       *c = NULL;
	Cm__Event           *out = NULL;
	cm_rpc_result        res;
	cm_rpc_server_config cfg = {.url = URL_C,
	                            .workers = 1,
	                            .methods = methods,
	                            .n_methods = 1,
	                            .worker_init = w_init,
	                            .call_begin = h_begin,
	                            .call_end = h_end};

	(void)state;
	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_OK);
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_C, NULL), CM_OK);
	assert_int_equal(echo(c, "hi", "", &out, &res), CM_OK);
	protobuf_c_message_free_unpacked(&out->base, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(echo(c, "fail", "", &out, &res), CM_ENOTFOUND);
	cm_rpc_result_fini(&res);
	assert_int_equal(hook_begins, 2);
	assert_int_equal(hook_ends, 2);
	assert_true(hook_deadline > cm_now_ms()); /* the client's default deadline, still ahead */
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);
}

/* What an asynchronous call reported to its done callback. */
static int  drain_status = -1;
static char drain_type[32];

static void
drain_done(void *arg, cm_rpc_result *res)
{
	Cm__Event *ev;

	(void)arg;
	if (res->status == CM__STATUS__OK &&
	    (ev = cm__event__unpack(NULL, res->payload_len, res->payload)) != NULL) {
		snprintf(drain_type, sizeof(drain_type), "%s", ev->type);
		cm__event__free_unpacked(ev, NULL);
	}
	__atomic_store_n(&drain_status, res->status, __ATOMIC_SEQ_CST);
}

/* Stopping while a handler runs lets it finish and its reply reach the caller. */
static void
test_stop_drains(void **state)
{
	cm_rpc_server   *s = start(URL_A);
	cm_rpc_client   *c = NULL;
	Cm__Event        ev = CM__EVENT__INIT;
	cm_rpc_call_opts o = {.method = "test.Echo"};
	uint8_t          buf[64];
	size_t           n;
	int64_t          until;

	(void)state;
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_A, NULL), CM_OK);
	ev.type = (char *)"sleep"; /* the handler takes 300 ms */
	ev.topic = (char *)"t";
	n = cm__event__pack(&ev, buf);
	/* The client dials lazily: wait for its connection, then for the call to be in hand. */
	for (until = cm_now_ms() + 5000; cm_rpc_client_healthy(c) == 0 && cm_now_ms() < until;)
		nng_msleep(5);
	assert_int_equal(cm_rpc_call_async(c, &o, buf, n, drain_done, NULL), CM_OK);
	for (until = cm_now_ms() + 5000; cm_rpc_server_inflight(s) == 0 && cm_now_ms() < until;)
		nng_msleep(1);
	assert_int_equal(cm_rpc_server_inflight(s), 1);
	cm_rpc_server_stop(s);
	for (until = cm_now_ms() + 5000;
	     __atomic_load_n(&drain_status, __ATOMIC_SEQ_CST) < 0 && cm_now_ms() < until;)
		nng_msleep(5);
	assert_int_equal(drain_status, CM__STATUS__OK);
	assert_string_equal(drain_type, "echo:sleep");
	cm_rpc_client_close(c);
}

/* rpc_requests_total counts per method and status, every call, "?" for an unknown method. */
static void
test_metrics(void **state)
{
	cm_metrics          *m = cm_metrics_alloc("t_");
	cm_rpc_server       *s = NULL;
	cm_rpc_client       *c = NULL;
	Cm__Event           *out = NULL;
	cm_rpc_result        res;
	cm_rpc_call_opts     o = {.method = "test.Nope"};
	cm_buf               text;
	cm_rpc_server_config cfg = {.url = URL_C,
	                            .workers = 2,
	                            .methods = methods,
	                            .n_methods = 1,
	                            .worker_init = w_init,
	                            .metrics = m};

	(void)state;
	assert_non_null(m);
	assert_int_equal(cm_rpc_server_start(&s, &cfg), CM_OK);
	assert_int_equal(cm_rpc_client_open(&c, "t", URL_C, NULL), CM_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(echo(c, "hi", "", &out, &res), CM_OK);
		protobuf_c_message_free_unpacked(&out->base, NULL);
		cm_rpc_result_fini(&res);
	}
	assert_int_equal(echo(c, "fail", "", &out, &res), CM_ENOTFOUND);
	cm_rpc_result_fini(&res);
	cm_rpc_call_raw(c, &o, NULL, 0, &res);
	assert_int_equal(res.status, CM__STATUS__UNIMPLEMENTED);
	cm_rpc_result_fini(&res);
	cm_rpc_client_close(c);
	cm_rpc_server_stop(s);

	cm_buf_init(&text, 1 << 20);
	assert_int_equal(cm_metrics_render(m, &text), CM_OK);
	assert_non_null(
	    strstr(text.data, "t_rpc_requests_total{method=\"test.Echo\",code=\"OK\"} 3\n"));
	assert_non_null(
	    strstr(text.data, "t_rpc_requests_total{method=\"test.Echo\",code=\"NOT_FOUND\"} 1\n"));
	assert_non_null(
	    strstr(text.data, "t_rpc_requests_total{method=\"?\",code=\"UNIMPLEMENTED\"} 1\n"));
	assert_non_null(
	    strstr(text.data, "t_rpc_duration_seconds_count{method=\"test.Echo\"} 4\n"));
	cm_buf_fini(&text);
	cm_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_unknown_method_and_bad_payload),
	    cmocka_unit_test(test_garbage_envelope),
	    cmocka_unit_test(test_deadlines),
	    cmocka_unit_test(test_replicas),
	    cmocka_unit_test(test_worker_init_fails),
	    cmocka_unit_test(test_call_hooks),
	    cmocka_unit_test(test_stop_drains),
	    cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
