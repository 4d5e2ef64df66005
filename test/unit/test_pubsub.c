/*
 * test_pubsub.c - events over nng pub/sub: prefix filtering and payload integrity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "cm/pubsub.h"

#define URL "tcp://127.0.0.1:27811"

static int  got_job, got_other;
static char last_payload[64];

static void
on_event(void *arg, const char *topic, const char *type, const void *payload, size_t len)
{
	(void) arg;
	if (strncmp(topic, "job.", 4) == 0 && strcmp(type, "job.progress") == 0) {
		__atomic_add_fetch(&got_job, 1, __ATOMIC_SEQ_CST);
		if (len < sizeof(last_payload)) {
			memcpy(last_payload, payload, len);
			last_payload[len] = '\0';
		}
	} else {
		__atomic_add_fetch(&got_other, 1, __ATOMIC_SEQ_CST);
	}
}

static void
test_prefix_subscription(void **state)
{
	cm_pub *p = NULL;
	cm_sub *s = NULL;

	(void) state;
	assert_int_equal(cm_pub_open(&p, URL), CM_OK);
	assert_int_equal(cm_sub_open(&s, URL, on_event, NULL), CM_OK);
	assert_int_equal(cm_sub_subscribe(s, "job."), CM_OK);
	/* A subscriber misses what is sent before it is connected: publish until one arrives. */
	for (int i = 0; i < 200 && __atomic_load_n(&got_job, __ATOMIC_SEQ_CST) == 0; i++) {
		assert_int_equal(cm_pub_send(p, "job.42", "job.progress", "done=1,total=5", 14), CM_OK);
		assert_int_equal(cm_pub_send(p, "chat.7", "chat.delta", "x", 1), CM_OK);
		nng_msleep(10);
	}
	assert_true(got_job > 0);
	assert_string_equal(last_payload, "done=1,total=5");
	nng_msleep(50);
	assert_int_equal(got_other, 0); /* chat.* was not subscribed */
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
