/*
 * test_edge_http.c - the edge's HTTP behaviour with bad and odd input: malformed JSON, wrong
 * types, oversized and chunked bodies, unknown routes and methods, request ids, CORS, health.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/util.h"
#include "http_client.h"

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

static long
post(const char *path, const char *body, size_t len, http_resp *r)
{
	assert_int_equal(http_do("POST", path, json_hdr, body, len, r), 0);
	return r->status;
}

static void
test_malformed_bodies(void **state)
{
	http_resp r;
	char     *big;
	size_t    n = 70 * 1024;

	(void)state;
	assert_int_equal(post("/api/v1/auth/login", "{\"email\":", strlen("{\"email\":"), &r), 400);
	assert_non_null(strstr(js(json_object_get(r.json, "error"), "message"), "malformed JSON"));
	http_resp_free(&r);
	assert_int_equal(post("/api/v1/auth/login", "[1,2]", strlen("[1,2]"), &r), 400);
	http_resp_free(&r);
	assert_int_equal(post("/api/v1/auth/login", "{\"email\":[],\"password\":1}",
	                      strlen("{\"email\":[],\"password\":1}"), &r),
	                 400);
	assert_non_null(strstr(js(json_object_get(r.json, "error"), "message"), "email"));
	http_resp_free(&r);
	assert_int_equal(
	    post("/api/v1/auth/login", "{\"a\":1,\"a\":2}", strlen("{\"a\":1,\"a\":2}"), &r), 400);
	http_resp_free(&r);
	/* Legacy routes answer in their own shape. */
	assert_int_equal(post("/api/auth/login", "not json", strlen("not json"), &r), 400);
	assert_non_null(strstr(js(r.json, "detail"), "malformed JSON"));
	http_resp_free(&r);

	/* Deep nesting is refused, not recursed into. */
	{
		char   deep[4200];
		size_t i = 0;
		deep[i++] = '{';
		memcpy(deep + i, "\"email\":", 8);
		i += 8;
		for (int k = 0; k < 2000; k++)
			deep[i++] = '[';
		for (int k = 0; k < 2000; k++)
			deep[i++] = ']';
		deep[i++] = '}';
		assert_int_equal(post("/api/v1/auth/login", deep, i, &r), 400);
		http_resp_free(&r);
	}

	/* Over the JSON body limit: 413, and nothing was read into a service. */
	big = malloc(n);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(post("/api/v1/auth/register", big, n, &r), 413);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "OUT_OF_RANGE");
	http_resp_free(&r);
	free(big);
}

static void
test_framing(void **state)
{
	char       reply[4096], req[1024], id[40], body[160];
	const char badlen[] =
	    "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n";
	int n, len;

	(void)state;
	/* A chunked body is decoded and reaches the service: the account it registers exists. */
	cm_uuid_v4(id);
	len =
	    snprintf(body, sizeof(body),
	             "{\"email\":\"chunked-%s@example.com\",\"password\":\"chunked-pass-1\"}", id);
	n = snprintf(req, sizeof(req),
	             "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
	             "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
	             "%x\r\n%.*s\r\n%x\r\n%s\r\n0\r\n\r\n",
	             10, 10, body, len - 10, body + 10);
	assert_int_equal(http_raw(req, (size_t)n, reply, sizeof(reply)), 201);
	assert_non_null(strstr(reply, "X-Request-Id"));
	assert_non_null(strstr(reply, id));
	assert_int_equal(http_raw(badlen, sizeof(badlen) - 1, reply, sizeof(reply)), 400);
}

static void
test_routes_and_methods(void **state)
{
	http_resp r;
	char      buf[128];

	(void)state;
	assert_int_equal(http_do("GET", "/api/v1/nope", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "NOT_FOUND");
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/api/nope", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	assert_non_null(json_object_get(r.json, "detail"));
	http_resp_free(&r);
	assert_int_equal(http_do("DELETE", "/api/v1/auth/login", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 405);
	assert_non_null(http_header(&r, "Allow", buf, sizeof(buf)));
	assert_string_equal(buf, "POST");
	http_resp_free(&r);
	/* A trailing slash is accepted (the legacy frontend uses both forms). */
	assert_int_equal(http_do("POST", "/api/auth/logout/", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
}

static void
test_request_id_and_cors(void **state)
{
	http_resp   r;
	char        buf[256];
	const char *h1[] = {"X-Request-Id: my-trace-123", NULL};
	const char *h2[] = {"X-Request-Id: bad id with spaces", NULL};
	const char *pre[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
	                     "Access-Control-Request-Headers: content-type", NULL};
	const char *evil[] = {"Origin: http://evil.example", "Access-Control-Request-Method: POST",
	                      NULL};

	(void)state;
	assert_int_equal(http_do("GET", "/healthz", h1, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(http_header(&r, "X-Request-Id", buf, sizeof(buf)), "my-trace-123");
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/healthz", h2, NULL, 0, &r), 0);
	assert_string_not_equal(http_header(&r, "X-Request-Id", buf, sizeof(buf)),
	                        "bad id with spaces");
	http_resp_free(&r);

	assert_int_equal(http_do("OPTIONS", "/api/auth/login", pre, NULL, 0, &r), 0);
	assert_int_equal(r.status, 204);
	assert_string_equal(http_header(&r, "Access-Control-Allow-Origin", buf, sizeof(buf)),
	                    "http://localhost:3000");
	assert_string_equal(http_header(&r, "Access-Control-Allow-Credentials", buf, sizeof(buf)),
	                    "true");
	http_resp_free(&r);
	assert_int_equal(http_do("OPTIONS", "/api/auth/login", evil, NULL, 0, &r), 0);
	assert_null(http_header(&r, "Access-Control-Allow-Origin", buf, sizeof(buf)));
	http_resp_free(&r);
}

static void
test_operations(void **state)
{
	http_resp r;

	(void)state;
	assert_int_equal(http_do("GET", "/readyz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "edge_http_requests_total"));
	assert_non_null(strstr(r.body, "process_resident_memory_bytes"));
	http_resp_free(&r);
	assert_int_equal(http_do("GET", "/api/v1/openapi.json", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "openapi"), "3.0.3");
	http_resp_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malformed_bodies),   cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_routes_and_methods), cmocka_unit_test(test_request_id_and_cors),
	    cmocka_unit_test(test_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
