/*
 * test_frontend_flow.c - the original web frontend's session replayed through the edge on ONE
 * kept-alive connection, as Chromium sends it from the app's own origin (Origin and Referer on
 * every POST, axios's Accept): verify before login, login, upload, select, info, generate a quiz
 * and a practice set, logout, verify again. Between them come requests the edge answers before
 * reading their body (unknown route, wrong method, a preflight, /healthz with a body): each
 * body is dropped and the next request on the connection is answered, never the body. This is the
 * sequence that turned the frontend's logout into a 505 on nng's HTTP server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"

#define ORIGIN "http://127.0.0.1:28080"

static const char *const page_headers[] = {"Accept: application/json, text/plain, */*",
                                           "Content-Type: application/json", "Origin: " ORIGIN,
                                           "Referer: " ORIGIN "/chat", NULL};

static long
send_json(http_session *s, const char *method, const char *path, const char *body, http_resp *r)
{
	if (http_session_do(s, method, path, page_headers, body, body != NULL ? strlen(body) : 0,
	                    r) != 0)
		return -1;
	return r->status;
}

/* A request the edge answers before its body; the body is a request of its own. */
static void
early(http_session *s, const char *method, const char *path, long status)
{
	const char smuggled[] = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
	http_resp  r;

	assert_int_equal(
	    http_session_do(s, method, path, page_headers, smuggled, sizeof(smuggled) - 1, &r), 0);
	assert_int_equal(r.status, status);
	http_resp_free(&r);
}

static char *
read_pdf(size_t *len)
{
	char   path[1024], cmd[2300];
	cm_buf b;
	char  *data = NULL;
	FILE  *f;

	snprintf(path, sizeof(path), "%s/flow-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	if (access(path, R_OK) != 0 && system(cmd) != 0)
		return NULL;
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	cm_buf_init(&b, 64u << 20);
	for (;;) {
		char   chunk[65536];
		size_t n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0 || cm_buf_append(&b, chunk, n) != CM_OK)
			break;
	}
	fclose(f);
	if (cm_buf_take(&b, &data, len) != CM_OK)
		data = NULL;
	cm_buf_fini(&b);
	return data;
}

static void
test_frontend_session_on_one_connection(void **state)
{
	http_session *s = http_session_open();
	http_resp     r;
	char          email[160], body[512];
	size_t        len = 0;
	char         *pdf = read_pdf(&len);
	json_t       *doc;

	(void)state;
	assert_non_null(s);
	assert_non_null(pdf);
	assert_int_equal(http_register("flow", "flow-pass-123", email, sizeof(email)), 0);

	/* The app's first call: am I logged in? */
	assert_int_equal(send_json(s, "GET", "/api/auth/verify", NULL, &r), 401);
	http_resp_free(&r);
	early(s, "POST", "/api/auth/verify", 405);

	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"flow-pass-123\"}", email);
	assert_int_equal(send_json(s, "POST", "/api/auth/login", body, &r), 200);
	assert_string_equal(js(r.json, "token_type"), "bearer");
	http_resp_free(&r);
	assert_int_equal(send_json(s, "GET", "/api/auth/verify", NULL, &r), 200);
	assert_true(json_is_true(json_object_get(r.json, "valid")));
	http_resp_free(&r);

	assert_int_equal(http_session_upload(s, "/api/pdf/upload", "file", "manual.pdf",
	                                     "application/pdf", pdf, len, &r),
	                 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "filename"), "manual.pdf");
	http_resp_free(&r);
	early(s, "POST", "/api/nope", 404);
	early(s, "OPTIONS", "/api/pdf/select", 204);

	assert_int_equal(
	    send_json(s, "POST", "/api/pdf/select", "{\"filename\":\"manual.pdf\"}", &r), 200);
	http_resp_free(&r);
	early(s, "DELETE", "/api/pdf/select", 405);
	assert_int_equal(send_json(s, "GET", "/api/pdf/info", NULL, &r), 200);
	assert_string_equal(js(r.json, "filename"), "manual.pdf");
	http_resp_free(&r);

	assert_int_equal(send_json(s, "POST", "/api/chat/generate-questions",
	                           "{\"count\":5,\"mode\":\"quiz\"}", &r),
	                 200);
	doc = json_loads(strchr(js(r.json, "response"), '{'), JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(doc);
	assert_int_equal(json_array_size(json_object_get(doc, "questions")), 5);
	json_decref(doc);
	http_resp_free(&r);
	early(s, "GET", "/healthz", 200);
	assert_int_equal(send_json(s, "POST", "/api/chat/generate-questions",
	                           "{\"count\":3,\"mode\":\"practice\"}", &r),
	                 200);
	doc = json_loads(strchr(js(r.json, "response"), '{'), JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(doc);
	assert_int_equal(json_array_size(json_object_get(doc, "questions")), 3);
	json_decref(doc);
	http_resp_free(&r);

	/* Logout clears the cookie and ends the session: verify is 401 again. */
	assert_int_equal(send_json(s, "POST", "/api/auth/logout", NULL, &r), 200);
	assert_string_equal(js(r.json, "message"), "Logout successful");
	http_resp_free(&r);
	assert_int_equal(send_json(s, "GET", "/api/auth/verify", NULL, &r), 401);
	http_resp_free(&r);

	/* All of it on the connection the first request opened. */
	assert_int_equal(http_session_connects(s), 1);
	http_session_close(s);
	free(pdf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frontend_session_on_one_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
