/*
 * test_auth.c - authentication end to end: real HTTP through the edge to two svc-auth replicas,
 * PostgreSQL and Redis (ctest fixtures pgredis + stack).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include "cm/jwt.h"
#include "cm/pg.h"
#include "cm/util.h"
#include "http_client.h"
#include "../../svc-pdf/testpdf.h"

#define JSON_CT "Content-Type: application/json"

static char              email[128];
static const char *const json_hdr[] = {JSON_CT, NULL};

static void
post_json(const char *path, const char *body, http_resp *r)
{
	assert_int_equal(http_do("POST", path, json_hdr, body, strlen(body), r), 0);
}

static void
get_with(const char *path, const char *header, http_resp *r)
{
	const char *h[] = {header, NULL};
	assert_int_equal(http_do("GET", path, header != NULL ? h : NULL, NULL, 0, r), 0);
}

/* Registers a fresh user and logs in; fills access/refresh. */
static void
register_and_login(char *access, size_t alen, char *refresh, size_t rlen)
{
	char      body[512], id[37];
	http_resp r;

	cm_uuid_v4(id);
	snprintf(email, sizeof(email), "user-%s@example.com", id);
	snprintf(body, sizeof(body),
	         "{\"email\":\"%s\",\"password\":\"correct horse\",\"name\":\"Ada\"}", email);
	post_json("/api/v1/auth/register", body, &r);
	assert_int_equal(r.status, 201);
	http_resp_free(&r);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse\"}", email);
	post_json("/api/v1/auth/login", body, &r);
	assert_int_equal(r.status, 200);
	cm_strlcpy(access, js(r.json, "access_token"), alen);
	cm_strlcpy(refresh, js(r.json, "refresh_token"), rlen);
	http_resp_free(&r);
}

static void
test_register_login_me(void **state)
{
	char      body[512], hdr[4200], buf[8192], id[37];
	http_resp r;

	(void)state;
	cm_uuid_v4(id);
	snprintf(email, sizeof(email), "Reg-%s@Example.com", id);
	snprintf(body, sizeof(body),
	         "{\"email\":\"%s\",\"password\":\"correct horse\",\"name\":\"Ada\"}", email);
	post_json("/api/v1/auth/register", body, &r);
	assert_int_equal(r.status, 201);
	{
		json_t *u = json_object_get(r.json, "user");
		assert_true(cm_uuid_valid(js(u, "id")));
		assert_string_not_equal(js(u, "created_at"), "");
		assert_string_equal(js(u, "name"), "Ada");
		assert_null(json_object_get(u, "password_hash"));
	}
	http_resp_free(&r);

	/* Same email again, any case: 409 in the v1 error shape. */
	post_json("/api/v1/auth/register", body, &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "ALREADY_EXISTS");
	assert_string_not_equal(js(json_object_get(r.json, "error"), "request_id"), "");
	http_resp_free(&r);

	post_json("/api/v1/auth/register", "{\"email\":\"x@example.com\",\"password\":\"short\"}",
	          &r);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	post_json("/api/v1/auth/register",
	          "{\"email\":\"not-an-email\",\"password\":\"long enough\"}", &r);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse\"}", email);
	post_json("/api/v1/auth/login", body, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "token_type"), "Bearer");
	assert_true(json_integer_value(json_object_get(r.json, "expires_in")) > 0);
	assert_non_null(http_header(&r, "Set-Cookie", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "HttpOnly"));
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", js(r.json, "access_token"));
	http_resp_free(&r);

	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(strncmp(js(r.json, "email"), "reg-", 4), 0); /* stored lower-case */
	http_resp_free(&r);

	get_with("/api/v1/auth/me", NULL, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(js(json_object_get(r.json, "error"), "code"), "UNAUTHENTICATED");
	assert_non_null(http_header(&r, "X-Request-Id", buf, sizeof(buf)));
	http_resp_free(&r);

	/* Wrong password and unknown user: the same answer. */
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"wrong horse\"}", email);
	post_json("/api/v1/auth/login", body, &r);
	assert_int_equal(r.status, 401);
	{
		char msg1[128];
		cm_strlcpy(msg1, js(json_object_get(r.json, "error"), "message"), sizeof(msg1));
		http_resp_free(&r);
		post_json("/api/v1/auth/login",
		          "{\"email\":\"nobody-at-all@example.com\",\"password\":\"wrong horse\"}",
		          &r);
		assert_int_equal(r.status, 401);
		assert_string_equal(js(json_object_get(r.json, "error"), "message"), msg1);
	}
	http_resp_free(&r);
}

static void
test_refresh_rotation_and_reuse(void **state)
{
	char      access[4096], refresh[256], refresh2[256], body[512], hdr[4200];
	http_resp r;

	(void)state;
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh);
	post_json("/api/v1/auth/refresh", body, &r);
	assert_int_equal(r.status, 200);
	cm_strlcpy(refresh2, js(r.json, "refresh_token"), sizeof(refresh2));
	assert_string_not_equal(refresh2, refresh);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", js(r.json, "access_token"));
	http_resp_free(&r);

	/* The used token again: refused, and the whole session is revoked. */
	post_json("/api/v1/auth/refresh", body, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
	snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh2);
	post_json("/api/v1/auth/refresh", body, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	post_json("/api/v1/auth/refresh", "{\"refresh_token\":\"garbage\"}", &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
}

static void
test_logout_revokes(void **state)
{
	char      access[4096], refresh[256], body[512], hdr[4200], buf[256];
	http_resp r;

	(void)state;
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", access);
	snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh);
	{
		const char *h[] = {JSON_CT, hdr, NULL};
		assert_int_equal(http_do("POST", "/api/v1/auth/logout", h, body, strlen(body), &r),
		                 0);
	}
	assert_int_equal(r.status, 204);
	assert_non_null(http_header(&r, "Set-Cookie", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "Max-Age=0"));
	http_resp_free(&r);
	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
	post_json("/api/v1/auth/refresh", body, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
}

static void
test_legacy_login_cookie(void **state)
{
	char      cookie[8300], hdr[8400], buf[512];
	http_resp r;

	(void)state;
	post_json("/api/auth/login", "{\"username\":\"vsbec\",\"password\":\"vsbec\"}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "token_type"), "bearer");
	assert_string_equal(js(r.json, "message"), "Login successful");
	assert_string_not_equal(js(r.json, "access_token"), "");
	assert_non_null(http_header(&r, "Set-Cookie", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "HttpOnly"));
	assert_non_null(strstr(buf, "SameSite=Lax"));
	assert_non_null(http_session_cookie(&r, cookie, sizeof(cookie)));
	http_resp_free(&r);

	snprintf(hdr, sizeof(hdr), "Cookie: theme=dark; %s", cookie);
	get_with("/api/auth/verify", hdr, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.json, "valid")));
	assert_string_equal(js(r.json, "message"), "Session is valid");
	http_resp_free(&r);

	get_with("/api/auth/verify", NULL, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(js(r.json, "detail"), "Not authenticated");
	http_resp_free(&r);

	post_json("/api/auth/login", "{\"username\":\"vsbec\",\"password\":\"nope\"}", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(js(r.json, "detail"), "Invalid credentials");
	http_resp_free(&r);

	/* Logout: 200, cookie cleared, and the old cookie no longer works. */
	{
		const char *h[] = {hdr, NULL};
		assert_int_equal(http_do("POST", "/api/auth/logout", h, NULL, 0, &r), 0);
	}
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "message"), "Logout successful");
	assert_non_null(http_header(&r, "Set-Cookie", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "Max-Age=0"));
	http_resp_free(&r);
	get_with("/api/auth/verify", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	/* Logout without any session never fails. */
	assert_int_equal(http_do("POST", "/api/auth/logout", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
}

static void
test_password_hash_is_argon2id(void **state)
{
	cm_pg        *pg = NULL;
	cm_pg_result *res = NULL;
	const char   *params[1];

	(void)state;
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), NULL), CM_OK);
	params[0] = "vsbec";
	assert_int_equal(cm_pg_exec(pg,
	                            "SELECT password_hash FROM auth.users WHERE username = $1 "
	                            "UNION ALL SELECT password_hash FROM auth.users LIMIT 5",
	                            1, params, &res),
	                 CM_OK);
	assert_true(cm_pg_nrows(res) >= 1);
	for (int i = 0; i < cm_pg_nrows(res); i++)
		assert_int_equal(strncmp(cm_pg_get(res, i, 0), "$argon2id$", 10), 0);
	cm_pg_result_free(res);
	cm_pg_close(pg);
}

static void
test_account_throttling(void **state)
{
	char      access[4096], refresh[256], body[512], buf[32];
	http_resp r;
	int       limited = 0;

	(void)state;
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"wrong guess\"}", email);
	for (int i = 0; i < 8; i++) {
		post_json("/api/v1/auth/login", body, &r);
		if (r.status == 429) {
			limited++;
			assert_non_null(http_header(&r, "Retry-After", buf, sizeof(buf)));
			assert_true(strtol(buf, NULL, 10) > 0);
		} else {
			assert_int_equal(r.status, 401);
		}
		http_resp_free(&r);
	}
	assert_true(limited >= 2);
	/* Even the right password waits now: the account is locked for the window. */
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse\"}", email);
	post_json("/api/v1/auth/login", body, &r);
	assert_int_equal(r.status, 429);
	http_resp_free(&r);
}

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

/* A session cookie ("session=<access>~<refresh>") as a browser has it once its access token
 * has expired: the same user and session, the access token re-signed to have expired two
 * minutes ago, the refresh token as it was. */
static void
expire_access(cm_jwt_key *k, const char *cookie, char *out, size_t n)
{
	const char   *tilde = strchr(cookie, '~');
	cm_jwt_claims c;
	char          access[4096], *tok = NULL;
	size_t        alen;
	int64_t       now = cm_now_ms() / 1000;

	assert_non_null(tilde);
	assert_true(strncmp(cookie, "session=", 8) == 0);
	alen = (size_t)(tilde - cookie) - 8;
	assert_true(alen < sizeof(access));
	memcpy(access, cookie + 8, alen);
	access[alen] = '\0';
	assert_int_equal(cm_jwt_verify(k, access, now, 30, "access", &c, NULL), CM_OK);
	c.iat = now - 1000;
	c.exp = now - 120;
	assert_int_equal(cm_jwt_sign(k, &c, &tok), CM_OK);
	snprintf(out, n, "session=%s%s", tok, tilde);
	free(tok);
}

typedef struct renew_arg {
	const char *hdr;
	long        status;
	char        cookie[8300];
} renew_arg;

static void *
renew_thread(void *p)
{
	renew_arg  *a = p;
	const char *h[] = {a->hdr, NULL};
	http_resp   r;

	if (http_do("GET", "/api/auth/verify", h, NULL, 0, &r) == 0) {
		a->status = r.status;
		if (http_session_cookie(&r, a->cookie, sizeof(a->cookie)) == NULL)
			a->cookie[0] = '\0';
		http_resp_free(&r);
	}
	return NULL;
}

/* A browser session outlives its access token: an expired access token plus a live refresh token
 * in the cookie is renewed by the edge, once, even when several requests race. */
static void
test_cookie_session_renewal(void **state)
{
	char        cookie[8300], stale[8600], hdr[8700];
	cm_jwt_key *k = test_key();
	http_resp   r;
	pthread_t   th[6];
	renew_arg   args[6];

	(void)state;
	post_json("/api/auth/login", "{\"username\":\"vsbec\",\"password\":\"vsbec\"}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, cookie, sizeof(cookie)));
	http_resp_free(&r);

	/* Same user and session, but the access token expired a minute ago. */
	expire_access(k, cookie, stale, sizeof(stale));
	snprintf(hdr, sizeof(hdr), "Cookie: %s", stale);

	for (int i = 0; i < 6; i++) {
		args[i].hdr = hdr;
		args[i].status = 0;
		assert_int_equal(pthread_create(&th[i], NULL, renew_thread, &args[i]), 0);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(args[i].status, 200);
		assert_string_not_equal(args[i].cookie, ""); /* each got the renewed cookie */
		assert_string_not_equal(args[i].cookie, stale);
	}
	/* The renewed cookie works on its own. */
	snprintf(hdr, sizeof(hdr), "Cookie: %s", args[0].cookie);
	get_with("/api/auth/verify", hdr, &r);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	cm_jwt_key_free(k);
}

/* A browser whose access token expired uploads: its cookie is renewed at the headers, before the
 * body comes, so the body is streamed in pieces like any other (edge/upload.h): the pieces are
 * counted, the file arrives whole, and the answer carries the renewed cookie. A cookie that does
 * not renew gets its 401 before any piece leaves. */
static void
test_upload_renewed_at_head(void **state)
{
	char        mail[128], body_json[256], cookie[8300], stale[8600], hdr[8700], got[8300];
	char        unique[37];
	cm_jwt_key *k = test_key();
	pdf_testpdf o = {.npages = 2, .padding = 2500000};
	cm_buf      pdf, body;
	http_resp   r;
	long long   before;
	const char *h[] = {
	    hdr, "Content-Type: multipart/form-data; boundary=----WebKitFormBoundaryR", NULL};

	(void)state;
	assert_int_equal(http_register("renewup", "renew at the head", mail, sizeof(mail)), 0);
	snprintf(body_json, sizeof(body_json),
	         "{\"email\":\"%s\",\"password\":\"renew at the head\"}", mail);
	post_json("/api/v1/auth/login", body_json, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, cookie, sizeof(cookie)));
	http_resp_free(&r);
	expire_access(k, cookie, stale, sizeof(stale));
	snprintf(hdr, sizeof(hdr), "Cookie: %s", stale);

	cm_uuid_v4(unique);
	o.title = unique;
	cm_buf_init(&pdf, 8u << 20);
	assert_int_equal(pdf_testpdf_build(&o, &pdf), CM_OK);
	http_multipart(&body, "----WebKitFormBoundaryR", "file", "renewed.pdf", &pdf);
	before = http_metric("edge_upload_pieces_total");
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(js(r.json, "message"), "PDF uploaded and processed");
	assert_true(json_integer_value(json_object_get(json_object_get(r.json, "metadata"),
	                                               "file_size")) == (json_int_t)pdf.len);
	assert_non_null(http_session_cookie(&r, got, sizeof(got)));
	assert_string_not_equal(got, stale);
	http_resp_free(&r);
	assert_int_equal(http_metric("edge_upload_pieces_total") - before,
	                 (long long)(body.len / (1024 * 1024)));
	/* A refresh token that does not renew: 401 before any of the body is taken. */
	{
		char *tilde = strchr(stale, '~');
		assert_non_null(tilde);
		snprintf(hdr, sizeof(hdr), "Cookie: %.*s~not-a-refresh-token", (int)(tilde - stale),
		         stale);
	}
	before = http_metric("edge_upload_pieces_total");
	assert_int_equal(http_do("POST", "/api/pdf/upload", h, body.data, body.len, &r), 0);
	assert_int_equal(r.status, 401);
	assert_string_equal(js(r.json, "detail"), "Not authenticated");
	http_resp_free(&r);
	assert_int_equal(http_metric("edge_upload_pieces_total"), before);
	cm_buf_fini(&body);
	cm_buf_fini(&pdf);
	cm_jwt_key_free(k);
}

/* The status of GET path with one header line, polled until it is want or ms have passed. */
static long
poll_status(const char *path, const char *header, long want, int64_t ms)
{
	int64_t   deadline = cm_mono_ms() + ms;
	http_resp r;
	long      st;

	for (;;) {
		get_with(path, header, &r);
		st = r.status;
		http_resp_free(&r);
		if (st == want || cm_mono_ms() > deadline)
			return st;
	}
}

/* After logout the access token is refused on every route, not only on /me, within a second. */
static void
test_logout_ends_access_everywhere(void **state)
{
	char      access[4096], refresh[256], body[512], hdr[4200];
	http_resp r;

	(void)state;
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", access);
	get_with("/api/v1/documents", hdr, &r);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh);
	{
		const char *h[] = {JSON_CT, hdr, NULL};
		assert_int_equal(http_do("POST", "/api/v1/auth/logout", h, body, strlen(body), &r),
		                 0);
	}
	assert_int_equal(r.status, 204);
	http_resp_free(&r);
	assert_int_equal(poll_status("/api/v1/documents", hdr, 401, 1000), 401);
}

/* The session cookie with its access token expired a minute ago (same user and session). */
static void
stale_cookie(char *out, size_t n)
{
	char        cookie[8300];
	cm_jwt_key *k = test_key();
	http_resp   r;

	snprintf(cookie, sizeof(cookie), "{\"email\":\"%s\",\"password\":\"correct horse\"}",
	         email);
	post_json("/api/auth/login", cookie, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, cookie, sizeof(cookie)));
	http_resp_free(&r);
	expire_access(k, cookie, out, n);
	cm_jwt_key_free(k);
}

/* A thief replaying the old cookie inside the coalescing window is not handed the new pair: the
 * replay reaches svc-auth, which sees the reuse and ends the session for both. */
static void
test_cookie_replay_by_other_client(void **state)
{
	char      access[4096], refresh[256], stale[8600], hdr[8700], renewed[8300];
	char      renewed_hdr[8400];
	http_resp r;

	(void)state;
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	stale_cookie(stale, sizeof(stale));
	snprintf(hdr, sizeof(hdr), "Cookie: %s", stale);
	{
		const char *h[] = {hdr, "User-Agent: owner-browser/1.0", NULL};
		assert_int_equal(http_do("GET", "/api/auth/verify", h, NULL, 0, &r), 0);
	}
	assert_int_equal(r.status, 200);
	assert_non_null(http_session_cookie(&r, renewed, sizeof(renewed)));
	http_resp_free(&r);
	snprintf(renewed_hdr, sizeof(renewed_hdr), "Cookie: %s", renewed);
	get_with("/api/v1/documents", renewed_hdr, &r);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);

	/* Someone else with the old cookie, a moment later. */
	{
		const char *h[] = {hdr, "User-Agent: thief/0.1", NULL};
		assert_int_equal(http_do("GET", "/api/v1/documents", h, NULL, 0, &r), 0);
	}
	assert_int_equal(r.status, 401);
	http_resp_free(&r);
	/* The owner's renewed cookie is over too: the session is revoked. */
	assert_int_equal(poll_status("/api/v1/documents", renewed_hdr, 401, 1000), 401);
}

/* Cookies whose access token does not verify take no renewal slot: 300 of them leave the table
 * free for a real user's renewal. */
static void
test_forged_cookies_take_no_slot(void **state)
{
	char      access[4096], refresh[256], stale[8600], hdr[8700], rnd[33];
	http_resp r;

	(void)state;
	for (int i = 0; i < 300; i++) {
		unsigned char b[16];
		cm_random_bytes(b, sizeof(b));
		cm_hex(b, sizeof(b), rnd);
		snprintf(hdr, sizeof(hdr), "Cookie: session=x~%s", rnd);
		get_with("/api/auth/verify", hdr, &r);
		assert_int_equal(r.status, 401);
		http_resp_free(&r);
	}
	register_and_login(access, sizeof(access), refresh, sizeof(refresh));
	stale_cookie(stale, sizeof(stale));
	snprintf(hdr, sizeof(hdr), "Cookie: %s", stale);
	get_with("/api/auth/verify", hdr, &r);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
}

/* Tokens the edge must refuse. */
static void
test_forged_tokens(void **state)
{
	char          hdr[4200], *tok = NULL;
	cm_jwt_key   *good = NULL, *other = NULL;
	cm_jwt_claims c = {0};
	http_resp     r;
	int64_t       now = cm_now_ms() / 1000;

	(void)state;
	good = test_key();
	assert_int_equal(cm_jwt_key_hs256(&other, "another-secret-that-is-long-enough-000", 38),
	                 CM_OK);

	cm_strlcpy(c.sub, "00000000-0000-4000-8000-000000000000", sizeof(c.sub));
	cm_strlcpy(c.sid, "00000000-0000-4000-8000-000000000001", sizeof(c.sid));
	cm_strlcpy(c.typ, "access", sizeof(c.typ));
	c.iat = now - 100;
	c.exp = now - 60; /* expired beyond the leeway */
	assert_int_equal(cm_jwt_sign(good, &c, &tok), CM_OK);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
	free(tok);
	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	c.exp = now + 600;
	assert_int_equal(cm_jwt_sign(other, &c, &tok), CM_OK);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
	free(tok);
	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	/* alg=none: header {"alg":"none","typ":"JWT"} */
	get_with("/api/v1/auth/me",
	         "Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	         "eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDAiLCJ0eXAiOiJhY2Nlc3MiL"
	         "CJleHAiOjQxMDI0NDQ4MDB9.",
	         &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	/* A valid signature for a session that does not exist. */
	assert_int_equal(cm_jwt_sign(good, &c, &tok), CM_OK);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
	free(tok);
	get_with("/api/v1/auth/me", hdr, &r);
	assert_int_equal(r.status, 401);
	http_resp_free(&r);

	cm_jwt_key_free(good);
	cm_jwt_key_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register_login_me),
	    cmocka_unit_test(test_refresh_rotation_and_reuse),
	    cmocka_unit_test(test_logout_revokes),
	    cmocka_unit_test(test_legacy_login_cookie),
	    cmocka_unit_test(test_password_hash_is_argon2id),
	    cmocka_unit_test(test_account_throttling),
	    cmocka_unit_test(test_cookie_session_renewal),
	    cmocka_unit_test(test_upload_renewed_at_head),
	    cmocka_unit_test(test_forged_tokens),
	    cmocka_unit_test(test_logout_ends_access_everywhere),
	    cmocka_unit_test(test_cookie_replay_by_other_client),
	    cmocka_unit_test(test_forged_cookies_take_no_slot),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
