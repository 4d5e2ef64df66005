/*
 * test_pubsub.c - events over nng pub/sub: prefix filtering and payload integrity.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_subscription),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
