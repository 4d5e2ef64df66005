/*
 * test_pbjson.c - JSON <-> protobuf translation of the edge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbjson.h"
#include "proto/auth.pb-c.h"
#include "proto/common.pb-c.h"

static cm_err
convert(const ProtobufCMessageDescriptor *d, const char *text, cm_arena *a, ProtobufCMessage **m,
        char *why)
{
	json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL);
	cm_err  err;

	assert_non_null(v);
	err = edge_json_to_pb(d, v, a, m, why, 200);
	json_decref(v);
	return err;
}

static void
test_strings_and_unknown_fields(void **state)
{
	cm_arena            a;
	ProtobufCMessage   *m;
	Auth__LoginRequest *lr;
	char                why[200];

	(void)state;
	cm_arena_init(&a);
	assert_int_equal(
	    convert(&auth__login_request__descriptor,
	            "{\"username\":\"vsbec\",\"password\":\"p\\u00e9{}\",\"extra\":[1,2]}", &a, &m,
	            why),
	    CM_OK);
	lr = (Auth__LoginRequest *)m;
	assert_string_equal(lr->username, "vsbec");
	assert_string_equal(lr->password, "p\xc3\xa9{}");
	assert_string_equal(lr->email, ""); /* absent: proto3 default */
	cm_arena_fini(&a);
}

static void
test_wrong_types_are_named(void **state)
{
	cm_arena          a;
	ProtobufCMessage *m;
	char              why[200];

	(void)state;
	cm_arena_init(&a);
	assert_int_equal(
	    convert(&auth__login_request__descriptor, "{\"password\":12}", &a, &m, why), CM_EINVAL);
	assert_non_null(strstr(why, "password"));
	assert_int_equal(
	    convert(&auth__login_request__descriptor, "{\"password\":\"a\\u0000b\"}", &a, &m, why),
	    CM_EINVAL);
	assert_int_equal(
	    convert(&auth__register_response__descriptor, "{\"user\":\"x\"}", &a, &m, why),
	    CM_EINVAL);
	assert_non_null(strstr(why, "user"));
	assert_int_equal(convert(&cm__request__descriptor, "{\"roles\":\"admin\"}", &a, &m, why),
	                 CM_EINVAL);
	assert_int_equal(convert(&cm__request__descriptor, "{\"deadline_ms\":1.5}", &a, &m, why),
	                 CM_EINVAL);
	assert_int_equal(
	    convert(&cm__response__descriptor, "{\"retry_after_s\":4294967296}", &a, &m, why),
	    CM_EINVAL);
	assert_non_null(strstr(why, "range"));
	assert_int_equal(convert(&cm__response__descriptor, "{\"status\":\"NOPE\"}", &a, &m, why),
	                 CM_EINVAL);
	cm_arena_fini(&a);
}

static void
test_nesting_repeated_enum(void **state)
{
	cm_arena          a;
	ProtobufCMessage *m;
	Cm__Request      *rq;
	Cm__Response     *rs;
	char              why[200];

	(void)state;
	cm_arena_init(&a);
	assert_int_equal(convert(&cm__request__descriptor,
	                         "{\"roles\":[\"a\",\"b\"],\"deadline_ms\":1700000000000}", &a, &m,
	                         why),
	                 CM_OK);
	rq = (Cm__Request *)m;
	assert_int_equal(rq->n_roles, 2);
	assert_string_equal(rq->roles[1], "b");
	assert_true(rq->deadline_ms == 1700000000000LL);
	assert_int_equal(
	    convert(&cm__response__descriptor, "{\"status\":\"not_found\"}", &a, &m, why), CM_OK);
	rs = (Cm__Response *)m;
	assert_int_equal(rs->status, CM__STATUS__NOT_FOUND);
	assert_int_equal(convert(&auth__register_response__descriptor,
	                         "{\"user\":{\"email\":\"a@b.c\"}}", &a, &m, why),
	                 CM_OK);
	assert_string_equal(((Auth__RegisterResponse *)m)->user->email, "a@b.c");
	/* A body that is not an object. */
	{
		json_t *arr = json_array();
		assert_int_equal(edge_json_to_pb(&cm__request__descriptor, arr, &a, &m, why, 200),
		                 CM_EINVAL);
		json_decref(arr);
	}
	cm_arena_fini(&a);
}

static void
test_to_json(void **state)
{
	Auth__User             u = AUTH__USER__INIT;
	Auth__RegisterResponse rr = AUTH__REGISTER_RESPONSE__INIT;
	Cm__Response           rs = CM__RESPONSE__INIT;
	json_t                *v;
	char                  *s;

	(void)state;
	u.id = (char *)"u1";
	u.email = (char *)"a\"b@c.d";
	rr.user = &u;
	v = edge_pb_to_json(&rr.base);
	s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"user\":{\"created_at\":\"\",\"email\":\"a\\\"b@c.d\",\"id\":"
	                       "\"u1\",\"name\":\"\"}}");
	free(s);
	json_decref(v);

	rs.status = CM__STATUS__UNAVAILABLE;
	v = edge_pb_to_json(&rs.base);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "unavailable");
	assert_null(json_object_get(v, "payload")); /* bytes are not exposed */
	json_decref(v);

	rr.user = NULL;
	v = edge_pb_to_json(&rr.base);
	assert_true(json_is_null(json_object_get(v, "user")));
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strings_and_unknown_fields),
	    cmocka_unit_test(test_wrong_types_are_named),
	    cmocka_unit_test(test_nesting_repeated_enum),
	    cmocka_unit_test(test_to_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
