/*
 * test_pubsub.c - events over nng pub/sub: prefix filtering and payload integrity; publishers
 * found by a dns+tcp:// name (a resolver the test answers, publishers on 127.0.0.1 and
 * 127.0.0.2 at one port), dialled when they appear and hung up when they go.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/pubsub.h"
#include "cm/util.h"

#define URL "tcp://127.0.0.1:27811"
#define DNS_PORT "27812"

/* on_event runs on an nng thread, again for each event the loop below publishes, while the test
 * reads: the payload copy is guarded, and counted only once it is whole. */
static int             got_job, got_other, got_marker;
static char            last_payload[64];
static pthread_mutex_t payload_mu = PTHREAD_MUTEX_INITIALIZER;

static void
on_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	(void)arg;
	if (strcmp(topic, "job.end") == 0 && strcmp(type, "job.marker") == 0) {
		__atomic_add_fetch(&got_marker, 1, __ATOMIC_SEQ_CST);
		return;
	}
	if (strncmp(topic, "job.", 4) == 0 && strcmp(type, "job.progress") == 0) {
		pthread_mutex_lock(&payload_mu);
		if (len < sizeof(last_payload)) {
			memcpy(last_payload, payload, len);
			last_payload[len] = '\0';
		}
		pthread_mutex_unlock(&payload_mu);
		__atomic_add_fetch(&got_job, 1, __ATOMIC_SEQ_CST);
	} else {
		__atomic_add_fetch(&got_other, 1, __ATOMIC_SEQ_CST);
	}
}

static void
test_prefix_subscription(void **state)
{
	cm_pub *p = NULL;
	cm_sub *s = NULL;
	char    payload[sizeof(last_payload)];

	(void)state;
	assert_int_equal(cm_pub_open(&p, URL), CM_OK);
	assert_int_equal(cm_sub_open(&s, URL, on_event, NULL), CM_OK);
	assert_int_equal(cm_sub_subscribe(s, "job."), CM_OK);
	/* A subscriber misses what is sent before it is connected: publish until one arrives. */
	for (int i = 0; i < 200 && __atomic_load_n(&got_job, __ATOMIC_SEQ_CST) == 0; i++) {
		assert_int_equal(cm_pub_send(p, "job.42", "job.progress", "done=1,total=5", 14),
		                 CM_OK);
		assert_int_equal(cm_pub_send(p, "chat.7", "chat.delta", "x", 1), CM_OK);
		nng_msleep(10);
	}
	assert_true(__atomic_load_n(&got_job, __ATOMIC_SEQ_CST) > 0);
	pthread_mutex_lock(&payload_mu);
	memcpy(payload, last_payload, sizeof(payload));
	pthread_mutex_unlock(&payload_mu);
	assert_string_equal(payload, "done=1,total=5");
	/* chat.* was not subscribed. One connection delivers in order, one callback at a time: once
	 * a marker sent after a last chat.* event is in, that event would have been too. */
	assert_int_equal(cm_pub_send(p, "chat.7", "chat.delta", "x", 1), CM_OK);
	assert_int_equal(cm_pub_send(p, "job.end", "job.marker", NULL, 0), CM_OK);
	for (int64_t until = cm_mono_ms() + 5000;
	     __atomic_load_n(&got_marker, __ATOMIC_SEQ_CST) == 0 && cm_mono_ms() < until;)
		nng_msleep(5);
	assert_int_equal(__atomic_load_n(&got_marker, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(__atomic_load_n(&got_other, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(cm_pub_send(p, "", "x", NULL, 0), CM_EINVAL);
	cm_sub_close(s);
	cm_pub_close(p);
}

/* ---- discovery ----------------------------------------------------------------------------- */

static pthread_mutex_t dns_mu = PTHREAD_MUTEX_INITIALIZER;
static const char     *dns_answer[2];
static int             dns_n, dns_calls;
static int             from[2]; /* events seen from publisher 0 (127.0.0.1) and 1 (127.0.0.2) */

static cm_err
resolve(void *arg, const char *name, cm_rpc_addrs *out)
{
	(void)arg;
	if (strcmp(name, "events.test") != 0)
		return CM_EUNAVAIL; /* no answer: the test's events never arrive */
	pthread_mutex_lock(&dns_mu);
	for (int i = 0; i < dns_n; i++)
		cm_strlcpy(out->addr[out->n++], dns_answer[i], CM_RPC_MAX_ADDR);
	dns_calls++;
	pthread_mutex_unlock(&dns_mu);
	return CM_OK;
}

static void
answer(int n, const char *a, const char *b)
{
	pthread_mutex_lock(&dns_mu);
	dns_n = n;
	dns_answer[0] = a;
	dns_answer[1] = b;
	pthread_mutex_unlock(&dns_mu);
}

static int
calls(void)
{
	int n;

	pthread_mutex_lock(&dns_mu);
	n = dns_calls;
	pthread_mutex_unlock(&dns_mu);
	return n;
}

static void
on_from(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	(void)arg;
	(void)type;
	(void)payload;
	(void)len;
	__atomic_add_fetch(&from[topic[4] == '1'], 1, __ATOMIC_SEQ_CST); /* "job.0" / "job.1" */
}

/* Publishes from p until publisher i's events arrive (at most ms); true when they did. */
static bool
reaches(cm_pub *p, int i, int64_t ms)
{
	const char *topic = i == 0 ? "job.0" : "job.1";
	int         seen = __atomic_load_n(&from[i], __ATOMIC_SEQ_CST);

	for (int64_t until = cm_mono_ms() + ms; cm_mono_ms() < until;) {
		assert_int_equal(cm_pub_send(p, topic, "job.progress", NULL, 0), CM_OK);
		if (__atomic_load_n(&from[i], __ATOMIC_SEQ_CST) > seen)
			return true;
		nng_msleep(10);
	}
	return false;
}

static void
test_publishers_by_dns(void **state)
{
	cm_pub     *p0 = NULL, *p1 = NULL;
	cm_sub     *s = NULL, *bad = NULL;
	cm_sub_opts o = {.resolve_ms = 100, .resolve = resolve};
	int         c;

	(void)state;
	answer(1, "127.0.0.1", NULL);
	assert_int_equal(cm_pub_open(&p0, "tcp://127.0.0.1:" DNS_PORT), CM_OK);
	assert_int_equal(cm_pub_open(&p1, "tcp://127.0.0.2:" DNS_PORT), CM_OK);
	assert_int_equal(cm_sub_open_opts(&s, "dns+tcp://events.test:" DNS_PORT, on_from, NULL, &o),
	                 CM_OK);
	assert_int_equal(cm_sub_subscribe(s, "job."), CM_OK);
	assert_true(reaches(p0, 0, 5000));

	/* A publisher that appears under the name is dialled within a period. */
	answer(2, "127.0.0.1", "127.0.0.2");
	assert_true(reaches(p1, 1, 5000));
	assert_true(reaches(p0, 0, 5000));

	/* One that goes (its process ended, as a removed pod's does) is hung up: once the resolver
	 * has applied the answer (two lookups later), a publisher started again at its old address
	 * is never dialled - for longer than the dialer's longest reconnect wait (2 s) - while the
	 * other's events still arrive. (The publisher goes first: nng 1.5.2 can hang its reaper
	 * when a dialer is closed under a live pipe that is still sending, nanomsg/nng#1543.) */
	cm_pub_close(p0);
	p0 = NULL;
	answer(1, "127.0.0.2", NULL);
	c = calls();
	for (int64_t until = cm_mono_ms() + 5000; calls() < c + 2 && cm_mono_ms() < until;)
		nng_msleep(10);
	assert_true(calls() >= c + 2);
	assert_int_equal(cm_pub_open(&p0, "tcp://127.0.0.1:" DNS_PORT), CM_OK);
	__atomic_store_n(&from[0], 0, __ATOMIC_SEQ_CST);
	for (int64_t until = cm_mono_ms() + 2500; cm_mono_ms() < until;) {
		assert_int_equal(cm_pub_send(p0, "job.0", "job.progress", NULL, 0), CM_OK);
		nng_msleep(20);
	}
	assert_true(reaches(p1, 1, 5000));
	assert_int_equal(__atomic_load_n(&from[0], __ATOMIC_SEQ_CST), 0);

	/* A malformed entry is refused at open. */
	assert_int_equal(cm_sub_open(&bad, "dns+tcp://events.test", on_from, NULL), CM_EINVAL);
	assert_null(bad);
	cm_sub_close(s);
	cm_pub_close(p1);
	cm_pub_close(p0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_subscription),
	    cmocka_unit_test(test_publishers_by_dns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
