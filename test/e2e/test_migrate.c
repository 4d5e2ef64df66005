/*
 * test_migrate.c - gradual migration through the edge (edge/migrate.h, issue #12): a share of
 * the users on the old backend, sticky per user; flagged users there always (an 8 MiB upload too,
 * sent whole); the user's identity passed by the edge alone; the old backend answering when the new
 * service cannot be reached.
 *
 * It talks to the stack's third edge (CM_TEST_EDGE_MIGRATE, test/harness/stack.sh):
 * EDGE_LEGACY_SHARE=10, EDGE_LEGACY_FALLBACK=1, two flagged users (FLAGGED_*), every legacy route
 * but login/logout taking part, svc-chat pointed at a port nothing listens on, and the stand-in
 * old backend (test/harness/oldbackend.py), which marks its answers with X-Served-By. Users are
 * synthetic: access tokens signed here with the stack's JWT secret, no registration needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cm/jwt.h"
#include "cm/util.h"
#include "http_client.h"
#include "migrate.h"

#define N_USERS 1000
#define PER_USER 10
#define SHARE 10 /* EDGE_LEGACY_SHARE in stack.sh */
/* EDGE_LEGACY_USERS in stack.sh */
#define FLAGGED_1 "00000000-0000-4000-9000-000000000001"
#define FLAGGED_2 "00000000-0000-4000-9000-000000000002"

static char        base[128];
static cm_jwt_key *key;

static cm_jwt_key *
test_key(void)
{
	char        secret[256] = {0}, path[512];
	FILE       *f;
	size_t      n;
	cm_jwt_key *k = NULL;

	snprintf(path, sizeof(path), "%s/jwt.secret", getenv("CM_TEST_STATE"));
	assert_non_null(f = fopen(path, "r"));
	n = fread(secret, 1, sizeof(secret) - 1, f);
	fclose(f);
	while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		secret[--n] = '\0';
	assert_int_equal(cm_jwt_key_hs256(&k, secret, n), CM_OK);
	return k;
}

static void
user_id(int i, char *out, size_t n)
{
	snprintf(out, n, "00000000-0000-4000-8000-%012d", i);
}

/* The first synthetic user from index `from` whose bucket is on the old side (old) or the new. */
static int
user_on(int from, bool old)
{
	char user[64];

	for (int u = from;; u++) {
		user_id(u, user, sizeof(user));
		if ((edge_migrate_bucket(user) < SHARE) == old)
			return u;
	}
}

/* "Authorization: Bearer <a fresh access token for user>" into out. */
static void
bearer_for(const char *user, char *out, size_t n)
{
	cm_jwt_claims c;
	char         *tok = NULL;
	int64_t       now = cm_now_ms() / 1000;

	memset(&c, 0, sizeof(c));
	cm_strlcpy(c.sub, user, sizeof(c.sub));
	cm_uuid_v4(c.sid);
	cm_uuid_v4(c.jti);
	cm_strlcpy(c.typ, "access", sizeof(c.typ));
	c.iat = now;
	c.nbf = now;
	c.exp = now + 3600;
	assert_int_equal(cm_jwt_sign(key, &c, &tok), CM_OK);
	snprintf(out, n, "Authorization: Bearer %s", tok);
	free(tok);
}

static bool
from_old(const http_resp *r)
{
	char v[64];

	return http_header(r, "X-Served-By", v, sizeof(v)) != NULL && strcmp(v, "old-backend") == 0;
}

/* The edge's counter edge_routing_total{route,target}, 0 when not there yet. */
static long long
routed(const char *route, const char *target)
{
	http_resp   r;
	char        series[160];
	const char *p;
	long long   v = 0;

	snprintf(series, sizeof(series), "edge_routing_total{route=\"%s\",target=\"%s\"} ", route,
	         target);
	assert_int_equal(http_do("GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	if ((p = strstr(r.body, series)) != NULL)
		v = strtoll(p + strlen(series), NULL, 10);
	http_resp_free(&r);
	return v;
}

static int
setup(void **state)
{
	const char *s = getenv("CM_TEST_EDGE_MIGRATE");
	char        user[64] = "", auth[1024];
	http_resp   r;
	bool        ready = false;

	(void)state;
	cm_strlcpy(base, s != NULL && s[0] != '\0' ? s : "http://127.0.0.1:28082", sizeof(base));
	setenv("CM_TEST_EDGE", base, 1);
	key = test_key();
	/* The edge starts before it has dialled svc-pdf; until then a user of the new side would
	 * be answered by the fallback. Wait for the new side to answer one of them. */
	user_id(user_on(N_USERS, false), user, sizeof(user));
	bearer_for(user, auth, sizeof(auth));
	for (int64_t until = cm_mono_ms() + 30000; !ready && cm_mono_ms() < until;) {
		const char     *h[] = {auth, NULL};
		struct timespec pause = {0, 50 * 1000000L};

		if (http_do("GET", "/api/pdf/list", h, NULL, 0, &r) == 0) {
			ready = r.status == 200 && !from_old(&r);
			http_resp_free(&r);
		}
		if (!ready)
			nanosleep(&pause, NULL);
	}
	assert_true(ready);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	cm_jwt_key_free(key);
	return 0;
}

/* 10,000 requests of 1,000 users, each user's ten spread over ten rounds: 10% +- 2% answered by
 * the old backend, every user's ten on one side, every answer a 200, and the edge's counters and
 * the old backend's own count agree. */
static void
test_share_sticky_per_user(void **state)
{
	static char   auth[N_USERS][1024];
	static int    old_of[N_USERS];
	http_session *s = http_session_open();
	long long     old0 = routed("legacy_pdf_list", "old");
	long long     new0 = routed("legacy_pdf_list", "new");
	int           old = 0, users_old = 0;
	char          user[64], v[64];

	(void)state;
	assert_non_null(s);
	for (int u = 0; u < N_USERS; u++) {
		user_id(u, user, sizeof(user));
		bearer_for(user, auth[u], sizeof(auth[u]));
	}
	for (int round = 0; round < PER_USER; round++) {
		for (int u = 0; u < N_USERS; u++) {
			const char *h[] = {auth[u], NULL};
			http_resp   r;

			assert_int_equal(
			    http_session_do(s, "GET", "/api/pdf/list?limit=5", h, NULL, 0, &r), 0);
			assert_int_equal(r.status, 200);
			assert_non_null(r.json);
			assert_int_equal(json_integer_value(json_object_get(r.json, "limit")), 5);
			if (from_old(&r)) {
				user_id(u, user, sizeof(user));
				assert_non_null(http_header(&r, "X-Old-User", v, sizeof(v)));
				assert_string_equal(v, user);
				old_of[u]++;
				old++;
			}
			http_resp_free(&r);
		}
	}
	http_session_close(s);
	for (int u = 0; u < N_USERS; u++) {
		/* Sticky: all ten on one side. */
		if (old_of[u] != 0 && old_of[u] != PER_USER)
			fail_msg("user %d: %d of %d requests on the old backend", u, old_of[u],
			         PER_USER);
		users_old += old_of[u] == PER_USER;
	}
	print_message("old backend: %d of %d requests (%d of %d users)\n", old, N_USERS * PER_USER,
	              users_old, N_USERS);
	assert_in_range(old, (SHARE - 2) * N_USERS * PER_USER / 100,
	                (SHARE + 2) * N_USERS * PER_USER / 100);
	assert_int_equal(routed("legacy_pdf_list", "old") - old0, old);
	assert_int_equal(routed("legacy_pdf_list", "new") - new0, N_USERS * PER_USER - old);
}

/* The old backend hears who the user is from the edge alone: a client's X-User-Id is dropped, its
 * token and cookies stay at the edge, and the old backend's cookie never reaches the browser. */
static void
test_identity_from_the_edge(void **state)
{
	char      user[64], auth[1024], v[64];
	http_resp r;
	int       u;

	(void)state;
	user_id(u = user_on(0, true), user, sizeof(user));
	bearer_for(user, auth, sizeof(auth));
	{
		const char *h[] = {auth, "X-User-Id: " FLAGGED_1, "Cookie: session=x; theme=dark",
		                   NULL};
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
	}
	assert_int_equal(r.status, 200);
	assert_true(from_old(&r));
	assert_string_equal(js(r.json, "message"), "Session is valid");
	assert_non_null(http_header(&r, "X-Old-User", v, sizeof(v)));
	assert_string_equal(v, user);
	assert_non_null(http_header(&r, "X-Old-Saw-Authorization", v, sizeof(v)));
	assert_string_equal(v, "no");
	assert_non_null(http_header(&r, "X-Old-Saw-Cookie", v, sizeof(v)));
	assert_string_equal(v, "no");
	assert_null(http_header(&r, "Set-Cookie", v, sizeof(v)));
	assert_non_null(http_header(&r, "X-Request-Id", v, sizeof(v)));
	http_resp_free(&r);

	/* A user of the new side naming a flagged user in X-User-Id stays on the new side. */
	user_id(user_on(u + 1, false), user, sizeof(user));
	bearer_for(user, auth, sizeof(auth));
	{
		const char *h[] = {auth, "X-User-Id: " FLAGGED_1, NULL};
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
	}
	assert_false(from_old(&r));
	http_resp_free(&r);

	/* Without a session the edge answers 401 itself: the old backend never sees the caller. */
	assert_int_equal(http_do("GET", "/api/auth/verify", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	assert_false(from_old(&r));
	assert_string_equal(js(r.json, "detail"), "Not authenticated");
	http_resp_free(&r);
}

/* Flagged users go to the old backend on every route taking part, though their buckets are on
 * the new side. */
static void
test_flagged_users(void **state)
{
	static const char *flagged[] = {FLAGGED_1, FLAGGED_2};
	static const char *paths[] = {"/api/auth/verify", "/api/pdf/list", "/api/pdf/info"};
	char               auth[1024], v[64];
	http_resp          r;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		assert_true(edge_migrate_bucket(flagged[i]) >= SHARE);
		bearer_for(flagged[i], auth, sizeof(auth));
		for (size_t k = 0; k < 3; k++) {
			const char *h[] = {auth, NULL};
			assert_int_equal(http_do("GET", paths[k], h, NULL, 0, &r), 0);
			assert_true(from_old(&r));
			assert_non_null(http_header(&r, "X-Old-User", v, sizeof(v)));
			assert_string_equal(v, flagged[i]);
			/* The old backend's own answer, in the legacy shape. */
			if (k == 2) {
				assert_int_equal(r.status, 400);
				assert_string_equal(js(r.json, "detail"), "No PDF selected");
			} else {
				assert_int_equal(r.status, 200);
			}
			http_resp_free(&r);
		}
	}
}

/* A flagged user's upload goes to the old backend whole and in order: 8 MiB is more than a
 * loopback socket takes in one send, so the edge's proxy sends it in pieces as the old backend
 * reads (the resume after EAGAIN), from the request's own buffer. */
static void
test_flagged_upload_sent_whole(void **state)
{
	enum { N = 8 * 1024 * 1024 };
	char      auth[1024], v[64];
	char     *body = malloc(N);
	http_resp r;
	json_t   *j;

	(void)state;
	assert_non_null(body);
	for (size_t i = 0; i < N; i++)
		body[i] = (char)(i % 251);
	bearer_for(FLAGGED_1, auth, sizeof(auth));
	{
		const char *h[] = {auth, "Content-Type: multipart/form-data; boundary=x", NULL};
		assert_int_equal(http_do("POST", "/api/pdf/upload", h, body, N, &r), 0);
	}
	assert_true(from_old(&r));
	assert_non_null(http_header(&r, "X-Old-User", v, sizeof(v)));
	assert_string_equal(v, FLAGGED_1);
	assert_int_equal(r.status, 200);
	assert_non_null(j = r.json);
	assert_int_equal(json_integer_value(json_object_get(j, "received")), N);
	assert_true(json_is_true(json_object_get(j, "intact")));
	http_resp_free(&r);
	free(body);
}

/* svc-chat cannot be reached from this edge: the legacy chat routes of a user on the new side
 * are answered by the old backend, not 503, and counted as fallbacks; a v1 chat route (which
 * takes no part) on the same dead service is a 503. */
static void
test_fallback_when_the_new_service_is_down(void **state)
{
	char      user[64], auth[1024];
	http_resp r;
	long long hist0 = routed("legacy_chat_history", "old_fallback");
	long long chat0 = routed("legacy_chat", "old_fallback");
	long long clear0 = routed("legacy_chat_clear", "old_fallback");

	(void)state;
	user_id(user_on(0, false), user, sizeof(user));
	bearer_for(user, auth, sizeof(auth));
	const char *h[] = {auth, NULL};
	const char *hj[] = {auth, "Content-Type: application/json", NULL};

	for (int i = 0; i < 5; i++) {
		assert_int_equal(http_do("GET", "/api/chat/history", h, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_true(from_old(&r));
		assert_true(json_is_array(json_object_get(r.json, "history")));
		http_resp_free(&r);
	}
	assert_int_equal(http_do("DELETE", "/api/chat/history", h, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(from_old(&r));
	assert_string_equal(js(r.json, "message"), "Chat history cleared");
	http_resp_free(&r);
	/* A body crosses too: the old backend's own 400 for a user without a selected PDF. */
	assert_int_equal(http_do("POST", "/api/chat", hj, "{\"message\":\"hi\"}", 16, &r), 0);
	assert_int_equal(r.status, 400);
	assert_true(from_old(&r));
	assert_string_equal(js(r.json, "detail"), "No PDF selected");
	http_resp_free(&r);

	assert_int_equal(routed("legacy_chat_history", "old_fallback") - hist0, 5);
	assert_int_equal(routed("legacy_chat_clear", "old_fallback") - clear0, 1);
	assert_int_equal(routed("legacy_chat", "old_fallback") - chat0, 1);

	/* The same dead service behind a route that takes no part: 503, from the edge. */
	assert_int_equal(http_do("GET",
	                         "/api/v1/chats/00000000-0000-4000-8000-000000000000/messages", h,
	                         NULL, 0, &r),
	                 0);
	assert_int_equal(r.status, 503);
	assert_false(from_old(&r));
	http_resp_free(&r);
}

/* The frontend's pages go through the same proxy as the old backend, untouched by the
 * migration. */
static void
test_frontend_beside_the_old_backend(void **state)
{
	http_resp r;

	(void)state;
	assert_int_equal(http_do("GET", "/", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "frontend-marker"));
	assert_false(from_old(&r));
	http_resp_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share_sticky_per_user),
	    cmocka_unit_test(test_identity_from_the_edge),
	    cmocka_unit_test(test_flagged_users),
	    cmocka_unit_test(test_flagged_upload_sent_whole),
	    cmocka_unit_test(test_fallback_when_the_new_service_is_down),
	    cmocka_unit_test(test_frontend_beside_the_old_backend),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
