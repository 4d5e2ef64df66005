/*
 * test_auth.c - svc-auth on the real PostgreSQL and Redis of the pgredis fixture.
 *
 * First the handlers are called directly with real worker state (the worker's own cm_pg and
 * cm_redis, as the RPC server would give them), and the database is inspected alongside; then
 * the same service runs in-process behind a real nng server on tcp://127.0.0.1:27901 and is
 * called with cm_rpc_call. Accounts are fresh random e-mails, so runs never collide with each
 * other or with the end-to-end stack that shares the "auth" schema. Argon2id runs with small
 * parameters (2 passes, 4 MiB: a few ms) so that timing comparisons still mean something.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cm/arena.h"
#include "cm/jwt.h"
#include "cm/limits.h"
#include "cm/metrics.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "cm/util.h"
#include "handlers.h"
#include "password.h"
#include "revoked.h" /* the edge's side of revocations */
#include "proto/auth.pb-c.h"
#include "server.h"
#include "store.h"

#define SECRET "integration-secret-integration-secret-0123"
#define PW "correct horse"
#define ACCT_MAX 3
#define ADDR_MAX 6
#define CEILING 8
#define WINDOW_S 60
#define RPC_URL "tcp://127.0.0.1:27901"
#define STR_(x) #x
#define STR(x) STR_(x)

static auth_app     app;
static const char  *db_url; /* CM_TEST_PG */
static int64_t      redis_port;
static auth_worker *w;      /* a worker as the RPC server makes them */
static auth_worker  w_dead; /* the same, with Redis unreachable */
static cm_pg       *db;     /* for looking at the rows */
static char         legacy_user[40];

/* ---- helpers ------------------------------------------------------------------------------ */

static void
fresh_email(char out[128], const char *tag)
{
	char id[37];

	cm_uuid_v4(id);
	snprintf(out, 128, "%s-%s@example.com", tag, id);
}

/* One handler call: a context like the server's, with an arena for the response. */
typedef struct call {
	cm_arena   arena;
	cm_rpc_ctx ctx;
	void      *resp;
} call;

static void
call_begin(call *c, auth_worker *wk, const ProtobufCMessageDescriptor *d, const char *sub,
           const char *sid, const char *addr)
{
	memset(c, 0, sizeof(*c));
	cm_arena_init(&c->arena);
	c->ctx.arena = &c->arena;
	c->ctx.method = "test";
	c->ctx.request_id = "test";
	c->ctx.deadline_ms = cm_now_ms() + 10000;
	c->ctx.subject = sub != NULL ? sub : "";
	c->ctx.session_id = sid != NULL ? sid : "";
	c->ctx.client_addr = addr != NULL ? addr : "";
	c->ctx.worker_state = wk;
	c->resp = cm_arena_alloc(&c->arena, d->sizeof_message);
	assert_non_null(c->resp);
	d->message_init(c->resp);
}

static void
call_end(call *c)
{
	cm_arena_fini(&c->arena);
}

static cm_err
h_register(call *c, const char *email, const char *pw, const char *name)
{
	Auth__RegisterRequest rq = AUTH__REGISTER_REQUEST__INIT;

	rq.email = (char *)email;
	rq.password = (char *)pw;
	rq.name = (char *)(name != NULL ? name : "");
	call_begin(c, w, &auth__register_response__descriptor, NULL, NULL, NULL);
	return auth_h_register(&c->ctx, &rq, c->resp);
}

/* Registers a fresh account; its id into uid (may be NULL). */
static void
new_account(char email[128], char uid[37], const char *tag)
{
	call c;

	fresh_email(email, tag);
	assert_int_equal(h_register(&c, email, PW, "Test"), CM_OK);
	if (uid != NULL)
		cm_strlcpy(uid, ((Auth__RegisterResponse *)c.resp)->user->id, 37);
	call_end(&c);
}

/* What a login or refresh hands back, copied out of the arena, with the access token's claims. */
typedef struct pair {
	char          access[CM_MAX_TOKEN + 1];
	char          refresh[64];
	cm_jwt_claims claims;
	int64_t       expires_in, refresh_expires_in;
} pair;

static void
take_pair(call *c, pair *p)
{
	const Auth__TokenPair *tp = c->resp;

	assert_string_equal(tp->token_type, "Bearer");
	cm_strlcpy(p->access, tp->access_token, sizeof(p->access));
	cm_strlcpy(p->refresh, tp->refresh_token, sizeof(p->refresh));
	p->expires_in = tp->expires_in;
	p->refresh_expires_in = tp->refresh_expires_in;
	assert_int_equal(
	    cm_jwt_verify(app.key, p->access, cm_now_ms() / 1000, 0, "access", &p->claims, NULL),
	    CM_OK);
}

static cm_err
h_login_on(auth_worker *wk, const char *ident, bool by_username, const char *pw, const char *addr,
           pair *out, int32_t *retry)
{
	Auth__LoginRequest rq = AUTH__LOGIN_REQUEST__INIT;
	call               c;
	cm_err             err;

	if (by_username)
		rq.username = (char *)ident;
	else
		rq.email = (char *)ident;
	rq.password = (char *)pw;
	call_begin(&c, wk, &auth__token_pair__descriptor, NULL, NULL, addr);
	err = auth_h_login(&c.ctx, &rq, c.resp);
	if (err == CM_OK && out != NULL)
		take_pair(&c, out);
	if (err == CM_EAUTH)
		assert_string_equal(c.ctx.message, "Invalid credentials");
	if (retry != NULL)
		*retry = c.ctx.retry_after_s;
	call_end(&c);
	return err;
}

static cm_err
h_login(const char *email, const char *pw, pair *out)
{
	return h_login_on(w, email, false, pw, "", out, NULL);
}

static cm_err
h_refresh_on(auth_worker *wk, const char *token, pair *out)
{
	Auth__RefreshRequest rq = AUTH__REFRESH_REQUEST__INIT;
	call                 c;
	cm_err               err;

	rq.refresh_token = (char *)token;
	call_begin(&c, wk, &auth__token_pair__descriptor, NULL, NULL, NULL);
	err = auth_h_refresh(&c.ctx, &rq, c.resp);
	if (err == CM_OK && out != NULL)
		take_pair(&c, out);
	call_end(&c);
	return err;
}

static cm_err
h_logout(const char *token, const char *sub, const char *sid)
{
	Auth__LogoutRequest rq = AUTH__LOGOUT_REQUEST__INIT;
	call                c;
	cm_err              err;

	rq.refresh_token = (char *)token;
	call_begin(&c, w, &auth__logout_response__descriptor, sub, sid, NULL);
	err = auth_h_logout(&c.ctx, &rq, c.resp);
	call_end(&c);
	return err;
}

/* auth.Me; on CM_OK the user's e-mail into email_out (may be NULL). */
static cm_err
h_me(const char *sub, const char *sid, char *email_out)
{
	Auth__MeRequest rq = AUTH__ME_REQUEST__INIT;
	call            c;
	cm_err          err;

	call_begin(&c, w, &auth__user__descriptor, sub, sid, NULL);
	err = auth_h_me(&c.ctx, &rq, c.resp);
	if (err == CM_OK) {
		const Auth__User *u = c.resp;
		assert_string_equal(u->id, sub);
		if (email_out != NULL)
			cm_strlcpy(email_out, u->email, 128);
	}
	call_end(&c);
	return err;
}

/* One text value from a query on the test's own connection; "" when no row. */
static void
sql1(char *out, size_t n, const char *sql, const char *a, const char *b)
{
	cm_pg_result *r = NULL;
	const char   *p[2] = {a, b};

	assert_int_equal(cm_pg_exec(db, sql, b != NULL ? 2 : (a != NULL ? 1 : 0), p, &r), CM_OK);
	cm_strlcpy(out, cm_pg_nrows(r) > 0 ? cm_pg_get(r, 0, 0) : "", n);
	cm_pg_result_free(r);
}

static void
sql_do(const char *sql, const char *a)
{
	const char *p[1] = {a};

	assert_int_equal(cm_pg_exec(db, sql, 1, p, NULL), CM_OK);
}

/* SHA-256 hex of a refresh token, computed here independently of token.c. */
static void
sha256_hex(const char *s, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	cm_hex(h, sizeof(h), out);
}

/* ---- setup -------------------------------------------------------------------------------- */

static void
fill_config(auth_config *c)
{
	static char port[16];

	memset(c, 0, sizeof(*c));
	cm_strlcpy(port,
	           getenv("CM_TEST_REDIS_PORT") != NULL ? getenv("CM_TEST_REDIS_PORT") : "26379",
	           sizeof(port));
	db_url = getenv("CM_TEST_PG");
	redis_port = strtol(port, NULL, 10);
	c->jwt_secret = SECRET;
	c->access_ttl_s = 900;
	c->refresh_ttl_s = 3600;
	c->login_username = legacy_user;
	c->login_password = "legacy password";
	c->pwhash_opslimit = 2;
	c->pwhash_memlimit_kib = 4096;
	c->throttle_account_max = ACCT_MAX;
	c->throttle_addr_max = ADDR_MAX;
	c->throttle_account_ceiling = CEILING;
	c->throttle_window_s = WINDOW_S;
}

/* What the skeleton does at start: the migrations, then the legacy account. */
static cm_err
prepare_database(const auth_app *a, cm_pg *pg)
{
	cm_migration migs[16];
	size_t       n = cm_service_migrations(&auth_service_def, migs, 16);
	cm_err       err;

	if ((err = cm_pg_migrate_up(pg, "auth", migs, n)) != CM_OK)
		return err;
	return auth_seed_legacy_user((void *)a, pg);
}

/* A worker as the skeleton makes them: its own connections, borrowed by auth_worker_init. */
static auth_worker *
new_worker(const auth_app *a, int index)
{
	cm_service_conns c = {NULL, NULL, NULL, index};
	void            *st = NULL;

	if (cm_pg_open(&c.pg, db_url, "auth") != CM_OK ||
	    cm_redis_open(&c.redis, "127.0.0.1", (int)redis_port, 0) != CM_OK ||
	    auth_worker_init((void *)a, &c, &st) != CM_OK)
		abort(); /* test set-up: nothing to test without it */
	return st;
}

static void
drop_worker(auth_worker *wk)
{
	cm_pg    *pg = wk->pg;
	cm_redis *redis = wk->redis;

	auth_worker_fini(NULL, wk);
	cm_redis_close(redis);
	cm_pg_close(pg);
}

static int
setup(void **state)
{
	char id[37];

	(void)state;
	if (getenv("CM_TEST_PG") == NULL)
		return -1;
	cm_uuid_v4(id);
	snprintf(legacy_user, sizeof(legacy_user), "Legacy_%.8s", id);
	fill_config(&app.cfg);
	if (cm_jwt_key_hs256(&app.key, SECRET, strlen(SECRET)) != CM_OK ||
	    (app.metrics = cm_metrics_alloc("auth_")) == NULL ||
	    (app.throttle = auth_throttle_alloc(
	         (auth_throttle_limits){ACCT_MAX, ADDR_MAX, CEILING, WINDOW_S})) == NULL ||
	    auth_revoker_alloc(&app.revoker, (app.cfg.access_ttl_s + 60) * 1000) != CM_OK ||
	    auth_password_init(app.cfg.pwhash_opslimit, app.cfg.pwhash_memlimit_kib) != CM_OK)
		return -1;
	if (cm_pg_open(&db, db_url, "auth") != CM_OK || prepare_database(&app, db) != CM_OK)
		return -1;
	w = new_worker(&app, 0);
	/* Port 1 on loopback: nothing listens, every Redis call fails at once. */
	w_dead.app = &app;
	if (cm_pg_open(&w_dead.pg, db_url, "auth") != CM_OK ||
	    cm_redis_open(&w_dead.redis, "127.0.0.1", 1, 100) != CM_OK)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	drop_worker(w);
	cm_pg_close(w_dead.pg);
	cm_redis_close(w_dead.redis);
	cm_pg_close(db);
	auth_throttle_free(app.throttle);
	auth_revoker_free(app.revoker);
	cm_metrics_free(app.metrics);
	cm_jwt_key_free(app.key);
	return 0;
}

/* ---- register ----------------------------------------------------------------------------- */

static void
test_register(void **state)
{
	char              email[128], mixed[128], lower[128], v[256];
	call              c;
	const Auth__User *u;

	(void)state;
	fresh_email(email, "Ada");
	snprintf(mixed, sizeof(mixed), "%s", email);
	mixed[strlen(mixed) - 11] = 'E'; /* ...@Example.com */
	assert_int_equal(h_register(&c, mixed, PW, "Ada Lovelace"), CM_OK);
	u = ((Auth__RegisterResponse *)c.resp)->user;
	assert_non_null(u);
	assert_true(cm_uuid_valid(u->id));
	for (size_t i = 0; i <= strlen(mixed); i++)
		lower[i] = (char)(mixed[i] >= 'A' && mixed[i] <= 'Z' ? mixed[i] + 32 : mixed[i]);
	assert_string_equal(u->email, lower);
	assert_string_equal(u->name, "Ada Lovelace");
	/* RFC 3339 UTC: 2026-11-28T16:41:27.123Z */
	assert_int_equal(strlen(u->created_at), 24);
	assert_true(u->created_at[4] == '-' && u->created_at[10] == 'T' &&
	            u->created_at[19] == '.' && u->created_at[23] == 'Z');
	/* Stored: Argon2id, never the password; no username for registered accounts. */
	sql1(v, sizeof(v), "SELECT password_hash FROM users WHERE id = $1", u->id, NULL);
	assert_int_equal(strncmp(v, "$argon2id$v=19$m=4096,t=2,p=1$", 30), 0);
	assert_null(strstr(v, PW));
	sql1(v, sizeof(v), "SELECT coalesce(username, '<null>') FROM users WHERE id = $1", u->id,
	     NULL);
	assert_string_equal(v, "<null>");
	call_end(&c);

	/* The same address in any case is taken. */
	assert_int_equal(h_register(&c, lower, "another password", ""), CM_EEXIST);
	assert_string_equal(c.ctx.message, "email already registered");
	call_end(&c);
	for (char *p = mixed; *p != '\0'; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	assert_int_equal(h_register(&c, mixed, "another password", ""), CM_EEXIST);
	call_end(&c);
}

static void
test_register_validation(void **state)
{
	char email[128], big[CM_MAX_PASSWORD + 2], name[CM_MAX_NAME + 2], longmail[300];
	call c;
	static const char *const bad[] = {"",
	                                  "plain",
	                                  "@example.com",
	                                  "a@",
	                                  "a@b",
	                                  "a@@b.com",
	                                  "a@b@c.com",
	                                  "a b@example.com",
	                                  "a@exa mple.com",
	                                  "a\t@example.com",
	                                  "a\x01@example.com",
	                                  "a\x7f@example.com",
	                                  "a@.com",
	                                  "a@example.",
	                                  "a@example.com\n",
	                                  " a@example.com"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(h_register(&c, bad[i], PW, ""), CM_EINVAL);
		call_end(&c);
	}
	/* Length of the address: 254 is fine, 255 is not. */
	memset(longmail, 'x', sizeof(longmail));
	memcpy(longmail + 254 - 12, "@example.com", 13);
	assert_int_equal(strlen(longmail), 254);
	assert_true(auth_email_valid(longmail));
	memset(longmail, 'x', sizeof(longmail));
	memcpy(longmail + 255 - 12, "@example.com", 13);
	assert_int_equal(h_register(&c, longmail, PW, ""), CM_EINVAL);
	call_end(&c);

	/* Passwords: 7 characters refused with the documented message, 8 accepted. */
	fresh_email(email, "pw");
	assert_int_equal(h_register(&c, email, "1234567", ""), CM_EINVAL);
	assert_string_equal(c.ctx.message, "password must be at least 8 characters");
	call_end(&c);
	assert_int_equal(h_register(&c, email, "", ""), CM_EINVAL);
	call_end(&c);
	memset(big, 'p', sizeof(big));
	big[CM_MAX_PASSWORD + 1] = '\0';
	assert_int_equal(h_register(&c, email, big, ""), CM_EINVAL);
	call_end(&c);
	big[CM_MAX_PASSWORD] = '\0';
	assert_int_equal(h_register(&c, email, big, ""), CM_OK);
	call_end(&c);
	assert_int_equal(h_login(email, big, NULL), CM_OK);

	/* Names: up to CM_MAX_NAME bytes; text PostgreSQL cannot store is the caller's error. */
	memset(name, 'n', sizeof(name));
	name[CM_MAX_NAME + 1] = '\0';
	fresh_email(email, "name");
	assert_int_equal(h_register(&c, email, PW, name), CM_EINVAL);
	call_end(&c);
	assert_int_equal(h_register(&c, email, PW, "\xff\xfe not UTF-8"), CM_EINVAL);
	call_end(&c);
	name[CM_MAX_NAME] = '\0';
	assert_int_equal(h_register(&c, email, PW, name), CM_OK);
	assert_string_equal(((Auth__RegisterResponse *)c.resp)->user->name, name);
	call_end(&c);
}

/* ---- login -------------------------------------------------------------------------------- */

static void
test_login(void **state)
{
	char    email[128], upper[128], uid[37], v[128], hash[65];
	pair    p, q;
	int64_t now = cm_now_ms() / 1000;

	(void)state;
	new_account(email, uid, "login");
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
	assert_int_equal(h_login(upper, PW, &p), CM_OK);
	assert_int_equal(p.expires_in, 900);
	assert_int_equal(p.refresh_expires_in, 3600);
	assert_string_equal(p.claims.sub, uid);
	assert_string_equal(p.claims.typ, "access");
	assert_true(cm_uuid_valid(p.claims.sid));
	assert_string_not_equal(p.claims.jti, "");
	assert_true(p.claims.iat >= now - 2 && p.claims.iat <= now + 2);
	assert_int_equal(p.claims.exp - p.claims.iat, 900);
	/* Refresh token: 32 random bytes, base64url. */
	assert_int_equal(strlen(p.refresh), 43);
	assert_int_equal(
	    strspn(p.refresh, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	    43);

	/* The session row is the user's and lives as long as the refresh token. */
	sql1(v, sizeof(v), "SELECT user_id::text FROM sessions WHERE id = $1", p.claims.sid, NULL);
	assert_string_equal(v, uid);
	sql1(v, sizeof(v),
	     "SELECT (expires_at BETWEEN now() + interval '3590 s' AND now() + interval '3610 "
	     "s')::text "
	     "FROM sessions WHERE id = $1",
	     p.claims.sid, NULL);
	assert_string_equal(v, "true");
	/* Only the SHA-256 of the refresh token is stored. */
	sha256_hex(p.refresh, hash);
	sql1(v, sizeof(v), "SELECT session_id::text FROM refresh_tokens WHERE token_hash = $1",
	     hash, NULL);
	assert_string_equal(v, p.claims.sid);
	sql1(v, sizeof(v), "SELECT count(*)::text FROM refresh_tokens WHERE token_hash = $1",
	     p.refresh, NULL);
	assert_string_equal(v, "0");

	/* A second login is a second session with new tokens. */
	assert_int_equal(h_login(email, PW, &q), CM_OK);
	assert_string_not_equal(q.claims.sid, p.claims.sid);
	assert_string_not_equal(q.claims.jti, p.claims.jti);
	assert_string_not_equal(q.refresh, p.refresh);

	/* Wrong password and unknown account: the same answer (checked in h_login_on). */
	assert_int_equal(h_login(email, "wrong horse", NULL), CM_EAUTH);
	assert_int_equal(h_login("nobody-at-all@example.com", PW, NULL), CM_EAUTH);
	assert_int_equal(h_login(email, "", NULL), CM_EAUTH);
	assert_int_equal(h_login("", PW, NULL), CM_EAUTH);
	assert_int_equal(h_login_on(w, "", true, PW, "", NULL, NULL), CM_EAUTH);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* An unknown account costs about what a wrong password does (the dummy Argon2id verification).
 * Every attempt uses another account so that throttling stays out of the way. */
static void
test_login_timing(void **state)
{
	enum { N = 7 };
	double   wrong[N], unknown[N], ratio;
	char     email[128];
	uint64_t t0;

	(void)state;
	for (int i = 0; i < N; i++) {
		new_account(email, NULL, "timing");
		t0 = cm_mono_ns();
		assert_int_equal(h_login(email, "a wrong guess", NULL), CM_EAUTH);
		wrong[i] = (double)(cm_mono_ns() - t0) / 1e6;
		fresh_email(email, "unknown");
		t0 = cm_mono_ns();
		assert_int_equal(h_login(email, "a wrong guess", NULL), CM_EAUTH);
		unknown[i] = (double)(cm_mono_ns() - t0) / 1e6;
	}
	qsort(wrong, N, sizeof(double), cmp_double);
	qsort(unknown, N, sizeof(double), cmp_double);
	ratio = unknown[N / 2] / wrong[N / 2];
	print_message("login, median: wrong password %.2f ms, unknown account %.2f ms\n",
	              wrong[N / 2], unknown[N / 2]);
	assert_true(ratio > 0.5 && ratio < 2.0);
}

/* ---- throttling --------------------------------------------------------------------------- */

static void
test_throttle_account(void **state)
{
	char         email[128], upper[128];
	int32_t      retry;
	auth_app     other = app;
	auth_worker *replica;

	(void)state;
	new_account(email, NULL, "throttle");
	/* Failures count per account whatever the case of the identifier. */
	for (size_t i = 0; i <= strlen(email); i++)
		upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
	assert_int_equal(h_login_on(w, email, false, "wrong 1", "", NULL, NULL), CM_EAUTH);
	assert_int_equal(h_login_on(w, upper, false, "wrong 2", "", NULL, NULL), CM_EAUTH);
	assert_int_equal(h_login_on(w, email, false, "wrong 3", "", NULL, NULL), CM_EAUTH);
	/* Now even the right password waits, with a Retry-After within the window. */
	assert_int_equal(h_login_on(w, email, false, PW, "", NULL, &retry), CM_ELIMIT);
	assert_true(retry >= 1 && retry <= WINDOW_S);

	/* Another replica (its own process-local table) sees it too: the count is in Redis. */
	other.throttle =
	    auth_throttle_alloc((auth_throttle_limits){ACCT_MAX, ADDR_MAX, CEILING, WINDOW_S});
	replica = new_worker(&other, 1);
	assert_int_equal(h_login_on(replica, email, false, PW, "", NULL, &retry), CM_ELIMIT);
	drop_worker(replica);
	auth_throttle_free(other.throttle);

	/* A success clears the account's counter. */
	new_account(email, NULL, "throttle");
	assert_int_equal(h_login(email, "wrong 1", NULL), CM_EAUTH);
	assert_int_equal(h_login(email, "wrong 2", NULL), CM_EAUTH);
	assert_int_equal(h_login(email, PW, NULL), CM_OK);
	for (int i = 0; i < ACCT_MAX; i++)
		assert_int_equal(h_login(email, "wrong again", NULL), CM_EAUTH);
	assert_int_equal(h_login(email, PW, NULL), CM_ELIMIT);
}

static void
test_throttle_address(void **state)
{
	char    email[128], victim[128], addr[64], id[37];
	int32_t retry;

	(void)state;
	cm_uuid_v4(id);
	snprintf(addr, sizeof(addr), "198.51.100.7-%.8s", id);
	new_account(victim, NULL, "addr");
	/* Guessing across many accounts from one address. */
	for (int i = 0; i < ADDR_MAX; i++) {
		fresh_email(email, "spray");
		assert_int_equal(h_login_on(w, email, false, "guess", addr, NULL, NULL), CM_EAUTH);
	}
	assert_int_equal(h_login_on(w, victim, false, PW, addr, NULL, &retry), CM_ELIMIT);
	assert_true(retry >= 1 && retry <= WINDOW_S);
	/* Others are not affected; an unknown address ("") is no one client and is not counted. */
	assert_int_equal(h_login_on(w, victim, false, PW, "198.51.100.8", NULL, NULL), CM_OK);
	assert_int_equal(h_login_on(w, victim, false, PW, "", NULL, NULL), CM_OK);
}

/* A stranger guessing the owner's password from elsewhere locks only their own address out. */
static void
test_throttle_stranger(void **state)
{
	char    email[128], owner[64], stranger[64], id[37];
	int32_t retry;

	(void)state;
	cm_uuid_v4(id);
	snprintf(owner, sizeof(owner), "192.0.2.1-%.8s", id);
	snprintf(stranger, sizeof(stranger), "203.0.113.9-%.8s", id);
	new_account(email, NULL, "stranger");
	for (int i = 0; i < ACCT_MAX; i++)
		assert_int_equal(h_login_on(w, email, false, "guess", stranger, NULL, NULL),
		                 CM_EAUTH);
	assert_int_equal(h_login_on(w, email, false, PW, stranger, NULL, &retry), CM_ELIMIT);
	assert_true(retry >= 1 && retry <= WINDOW_S);
	/* The owner, at home, gets in with the right password. */
	assert_int_equal(h_login_on(w, email, false, PW, owner, NULL, NULL), CM_OK);
	/* ... and their own mistakes count against their own address only. */
	for (int i = 0; i < ACCT_MAX; i++)
		assert_int_equal(h_login_on(w, email, false, "typo", owner, NULL, NULL), CM_EAUTH);
	assert_int_equal(h_login_on(w, email, false, PW, owner, NULL, NULL), CM_ELIMIT);
}

/* Guessing spread over many addresses meets the account's ceiling; an address that logged in to
 * the account before is exempt from it, so the owner still gets in. */
static void
test_throttle_ceiling(void **state)
{
	char    email[128], addr[64], home[64], id[37];
	int32_t retry;
	int     n = 0;

	(void)state;
	cm_uuid_v4(id);
	snprintf(home, sizeof(home), "192.0.2.50-%.8s", id);
	new_account(email, NULL, "ceiling");
	assert_int_equal(h_login_on(w, email, false, PW, home, NULL, NULL), CM_OK);
	/* ACCT_MAX - 1 guesses from each of several addresses: no pair limit is reached. */
	for (int a = 0; n < CEILING; a++) {
		snprintf(addr, sizeof(addr), "198.18.0.%d-%.8s", a, id);
		for (int i = 0; i < ACCT_MAX - 1 && n < CEILING; i++, n++)
			assert_int_equal(h_login_on(w, email, false, "guess", addr, NULL, NULL),
			                 CM_EAUTH);
	}
	snprintf(addr, sizeof(addr), "198.18.1.1-%.8s", id);
	assert_int_equal(h_login_on(w, email, false, PW, addr, NULL, &retry), CM_ELIMIT);
	assert_true(retry >= 1 && retry <= WINDOW_S);
	assert_int_equal(h_login_on(w, email, false, PW, home, NULL, NULL), CM_OK);
}

/* Redis down: logins keep working and throttling falls back to the process-local table. */
static void
test_throttle_without_redis(void **state)
{
	char    email[128], other[128];
	pair    p;
	int32_t retry;

	(void)state;
	assert_false(cm_redis_ping(w_dead.redis));
	new_account(email, NULL, "noredis");
	new_account(other, NULL, "noredis");
	assert_int_equal(h_login_on(&w_dead, email, false, PW, "", &p, NULL), CM_OK);
	assert_int_equal(h_me(p.claims.sub, p.claims.sid, NULL), CM_OK);
	assert_int_equal(h_refresh_on(&w_dead, p.refresh, &p), CM_OK);

	assert_int_equal(h_login_on(&w_dead, email, false, "wrong", "", NULL, NULL), CM_EAUTH);
	assert_int_equal(h_login_on(&w_dead, email, false, PW, "", NULL, NULL), CM_OK); /* clears */
	for (int i = 0; i < ACCT_MAX; i++)
		assert_int_equal(h_login_on(&w_dead, email, false, "wrong", "", NULL, NULL),
		                 CM_EAUTH);
	assert_int_equal(h_login_on(&w_dead, email, false, PW, "", NULL, &retry), CM_ELIMIT);
	assert_true(retry >= 1 && retry <= WINDOW_S);
	/* Interleaving other accounts does not wash the count out. */
	for (int i = 0; i < 50; i++) {
		char e[128];
		fresh_email(e, "noise");
		assert_int_equal(h_login_on(&w_dead, e, false, "x", "", NULL, NULL), CM_EAUTH);
	}
	assert_int_equal(h_login_on(&w_dead, email, false, PW, "", NULL, NULL), CM_ELIMIT);
	assert_int_equal(h_login_on(&w_dead, other, false, PW, "", NULL, NULL), CM_OK);
}

/* ---- refresh ------------------------------------------------------------------------------ */

static void
test_refresh_rotation(void **state)
{
	char email[128], v[128], hash[65];
	pair p1, p2, p3;

	(void)state;
	new_account(email, NULL, "refresh");
	assert_int_equal(h_login(email, PW, &p1), CM_OK);
	assert_int_equal(h_refresh_on(w, p1.refresh, &p2), CM_OK);
	assert_string_not_equal(p2.refresh, p1.refresh);
	assert_string_equal(p2.claims.sid, p1.claims.sid); /* same session */
	assert_string_equal(p2.claims.sub, p1.claims.sub);
	assert_string_not_equal(p2.claims.jti, p1.claims.jti);
	assert_int_equal(p2.expires_in, 900);
	sha256_hex(p1.refresh, hash);
	sql1(v, sizeof(v),
	     "SELECT (used_at IS NOT NULL)::text FROM refresh_tokens WHERE token_hash = $1", hash,
	     NULL);
	assert_string_equal(v, "true");
	assert_int_equal(h_refresh_on(w, p2.refresh, &p3), CM_OK);
	assert_int_equal(h_me(p3.claims.sub, p3.claims.sid, NULL), CM_OK);

	/* p1 again: reuse. The whole family dies, including the newest token and the session. */
	assert_int_equal(h_refresh_on(w, p1.refresh, NULL), CM_EAUTH);
	sql1(v, sizeof(v), "SELECT coalesce(revoke_reason, '') FROM sessions WHERE id = $1",
	     p1.claims.sid, NULL);
	assert_string_equal(v, "refresh token reuse");
	assert_int_equal(h_refresh_on(w, p3.refresh, NULL), CM_EAUTH);
	assert_int_equal(h_me(p3.claims.sub, p3.claims.sid, NULL), CM_EAUTH);
}

static void
test_refresh_refused(void **state)
{
	char email[128], hash[65], big[CM_MAX_TOKEN + 2];
	pair p;

	(void)state;
	new_account(email, NULL, "refused");
	assert_int_equal(h_refresh_on(w, "", NULL), CM_EAUTH);
	assert_int_equal(h_refresh_on(w, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL),
	                 CM_EAUTH);
	memset(big, 'A', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(h_refresh_on(w, big, NULL), CM_EAUTH);

	/* An access token is not a refresh token. */
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	assert_int_equal(h_refresh_on(w, p.access, NULL), CM_EAUTH);

	/* Expired refresh token: refused, but it is no theft, the session stays. */
	sha256_hex(p.refresh, hash);
	sql_do(
	    "UPDATE refresh_tokens SET expires_at = now() - interval '1 s' WHERE token_hash = $1",
	    hash);
	assert_int_equal(h_refresh_on(w, p.refresh, NULL), CM_EAUTH);
	assert_int_equal(h_me(p.claims.sub, p.claims.sid, NULL), CM_OK);

	/* Expired session. */
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	sql_do("UPDATE sessions SET expires_at = now() - interval '1 s' WHERE id = $1",
	       p.claims.sid);
	assert_int_equal(h_refresh_on(w, p.refresh, NULL), CM_EAUTH);

	/* Revoked (logged out) session. */
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	assert_int_equal(h_logout("", p.claims.sub, p.claims.sid), CM_OK);
	assert_int_equal(h_refresh_on(w, p.refresh, NULL), CM_EAUTH);
}

/* A login clears the user's sessions that ended more than a day ago (and their tokens); recent
 * ones stay, since reuse detection needs them. */
static void
test_old_sessions_pruned(void **state)
{
	char email[128], v[64], hash[65];
	pair old, recent, revoked;

	(void)state;
	new_account(email, NULL, "prune");
	assert_int_equal(h_login(email, PW, &old), CM_OK);
	assert_int_equal(h_login(email, PW, &recent), CM_OK);
	assert_int_equal(h_login(email, PW, &revoked), CM_OK);
	sql_do("UPDATE sessions SET expires_at = now() - interval '2 days' WHERE id = $1",
	       old.claims.sid);
	sql_do("UPDATE sessions SET expires_at = now() - interval '1 hour' WHERE id = $1",
	       recent.claims.sid);
	sql_do("UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE id = $1",
	       revoked.claims.sid);
	assert_int_equal(h_login(email, PW, NULL), CM_OK);
	sql1(v, sizeof(v), "SELECT count(*)::text FROM sessions WHERE id IN ($1, $2)",
	     old.claims.sid, revoked.claims.sid);
	assert_string_equal(v, "0");
	sha256_hex(old.refresh, hash);
	sql1(v, sizeof(v), "SELECT count(*)::text FROM refresh_tokens WHERE token_hash = $1", hash,
	     NULL);
	assert_string_equal(v, "0");
	sql1(v, sizeof(v), "SELECT count(*)::text FROM sessions WHERE id = $1", recent.claims.sid,
	     NULL);
	assert_string_equal(v, "1");
}

/* Several workers present the same refresh token at once: exactly one rotation wins, the rest
 * are reuse and end the session. */
enum { RACERS = 6 };

typedef struct racer {
	const char        *token;
	pthread_barrier_t *go;
	cm_err             err;
	auth_worker       *wk;
} racer;

static void *
race_refresh(void *arg)
{
	racer               *r = arg;
	Auth__RefreshRequest rq = AUTH__REFRESH_REQUEST__INIT;
	call                 c;

	rq.refresh_token = (char *)r->token;
	/* No cmocka asserts on this thread: results are checked on the main one. */
	memset(&c, 0, sizeof(c));
	cm_arena_init(&c.arena);
	c.ctx.arena = &c.arena;
	c.ctx.subject = c.ctx.session_id = c.ctx.client_addr = "";
	c.ctx.method = c.ctx.request_id = "race";
	c.ctx.worker_state = r->wk;
	c.resp = cm_arena_alloc(&c.arena, sizeof(Auth__TokenPair));
	if (c.resp == NULL) {
		r->err = CM_ENOMEM;
	} else {
		auth__token_pair__init(c.resp);
		pthread_barrier_wait(r->go);
		r->err = auth_h_refresh(&c.ctx, &rq, c.resp);
	}
	cm_arena_fini(&c.arena);
	return NULL;
}

static void
test_refresh_race(void **state)
{
	char              email[128], v[64];
	pair              p;
	racer             r[RACERS];
	pthread_t         th[RACERS];
	pthread_barrier_t go;
	int               ok = 0, refused = 0;

	(void)state;
	new_account(email, NULL, "race");
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (racer){p.refresh, &go, CM_EINTERNAL, new_worker(&app, i + 1)};
		/* Connect first, so that the race is about the statement, not the connection. */
		assert_true(cm_pg_ping(r[i].wk->pg));
	}
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_refresh, &r[i]), 0);
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].err == CM_OK;
		refused += r[i].err == CM_EAUTH;
		drop_worker(r[i].wk);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(ok, 1);
	assert_int_equal(refused, RACERS - 1);
	sql1(v, sizeof(v), "SELECT (revoked_at IS NOT NULL)::text FROM sessions WHERE id = $1",
	     p.claims.sid, NULL);
	assert_string_equal(v, "true");
}

/* ---- logout, me, verify ------------------------------------------------------------------- */

static void
test_logout(void **state)
{
	char email[128], email2[128], v[64];
	pair a, b, o;

	(void)state;
	new_account(email, NULL, "logout");
	new_account(email2, NULL, "logout");

	/* By refresh token alone (the legacy cookie path): that session ends. */
	assert_int_equal(h_login(email, PW, &a), CM_OK);
	assert_int_equal(h_logout(a.refresh, "", ""), CM_OK);
	assert_int_equal(h_me(a.claims.sub, a.claims.sid, NULL), CM_EAUTH);
	assert_int_equal(h_refresh_on(w, a.refresh, NULL), CM_EAUTH);
	sql1(v, sizeof(v), "SELECT coalesce(revoke_reason, '') FROM sessions WHERE id = $1",
	     a.claims.sid, NULL);
	assert_string_equal(v, "logout");

	/* By the envelope's session. */
	assert_int_equal(h_login(email, PW, &a), CM_OK);
	assert_int_equal(h_logout("", a.claims.sub, a.claims.sid), CM_OK);
	assert_int_equal(h_me(a.claims.sub, a.claims.sid, NULL), CM_EAUTH);

	/* The refresh token names the session; the caller's other session stays. */
	assert_int_equal(h_login(email, PW, &a), CM_OK);
	assert_int_equal(h_login(email, PW, &b), CM_OK);
	assert_int_equal(h_logout(a.refresh, b.claims.sub, b.claims.sid), CM_OK);
	assert_int_equal(h_me(a.claims.sub, a.claims.sid, NULL), CM_EAUTH);
	assert_int_equal(h_me(b.claims.sub, b.claims.sid, NULL), CM_OK);

	/* Nothing matched is fine; someone else's session is not ours to end. */
	assert_int_equal(h_logout("", "", ""), CM_OK);
	assert_int_equal(h_logout("no such token", "", ""), CM_OK);
	assert_int_equal(h_logout("", "not-a-uuid", "not-a-uuid"), CM_OK);
	assert_int_equal(h_login(email2, PW, &o), CM_OK);
	assert_int_equal(h_logout("", b.claims.sub, o.claims.sid), CM_OK);
	assert_int_equal(h_me(o.claims.sub, o.claims.sid, NULL), CM_OK);
	/* Logging out twice is fine too. */
	assert_int_equal(h_logout("", b.claims.sub, b.claims.sid), CM_OK);
	assert_int_equal(h_logout("", b.claims.sub, b.claims.sid), CM_OK);
}

/* An edge's revoked set (edge/revoked.h) on the fixture's Redis, polling already. */
static edge_revoked *
edge_set(void)
{
	edge_revoked *v = NULL;
	int64_t       deadline = cm_mono_ms() + 5000;

	assert_int_equal(edge_revoked_start(&v, "127.0.0.1", redis_port), CM_OK);
	assert_non_null(v);
	while (edge_revoked_polls(v) == 0 && cm_mono_ms() < deadline)
		usleep(10000);
	assert_true(edge_revoked_polls(v) > 0);
	return v;
}

/* Whether the edge's set has sid within ms (polled with a deadline). */
static bool
edge_sees(edge_revoked *v, const char *sid, int64_t ms)
{
	int64_t deadline = cm_mono_ms() + ms;

	while (!edge_revoked_has(v, sid)) {
		if (cm_mono_ms() > deadline)
			return false;
		usleep(10000);
	}
	return true;
}

/* Every way a session ends reaches the edges within a second; live sessions never do. */
static void
test_revocation_published(void **state)
{
	char          email[128];
	pair          a, b, c, live;
	edge_revoked *v = edge_set();

	(void)state;
	new_account(email, NULL, "revoke");
	assert_int_equal(h_login(email, PW, &a), CM_OK);
	assert_int_equal(h_login(email, PW, &b), CM_OK);
	assert_int_equal(h_login(email, PW, &c), CM_OK);
	assert_int_equal(h_login(email, PW, &live), CM_OK);
	assert_false(edge_revoked_has(v, a.claims.sid));

	assert_int_equal(h_logout(a.refresh, "", ""), CM_OK); /* by refresh token */
	assert_true(edge_sees(v, a.claims.sid, 1000));
	assert_int_equal(h_logout("", b.claims.sub, b.claims.sid), CM_OK); /* by envelope */
	assert_true(edge_sees(v, b.claims.sid, 1000));
	/* Refresh-token reuse revokes the session: that too. */
	{
		pair next;
		assert_int_equal(h_refresh_on(w, c.refresh, &next), CM_OK);
		assert_int_equal(h_refresh_on(w, c.refresh, NULL), CM_EAUTH);
		assert_true(edge_sees(v, c.claims.sid, 1000));
	}
	assert_false(edge_revoked_has(v, live.claims.sid));
	/* The edge is told how long to keep an id: the access lifetime and a margin. */
	{
		cm_buf      out;
		bool        found = false;
		const char *keys[1] = {"auth:revoked:keep"};
		int64_t     keep = 0;
		cm_buf_init(&out, 64);
		assert_int_equal(cm_redis_get(w->redis, keys[0], &out, &found), CM_OK);
		assert_true(found);
		keep = strtoll(out.data, NULL, 10);
		cm_buf_fini(&out);
		assert_int_equal(keep, (app.cfg.access_ttl_s + 60) * 1000);
	}
	edge_revoked_stop(v);
}

/* Redis down at logout: the id waits in svc-auth and reaches the edges once Redis answers. */
static void
test_revocation_deferred(void **state)
{
	char          email[128];
	pair          a;
	call          c;
	edge_revoked *v = edge_set();
	int64_t       deadline;

	(void)state;
	new_account(email, NULL, "revoke");
	assert_int_equal(h_login(email, PW, &a), CM_OK);
	{
		Auth__LogoutRequest rq = AUTH__LOGOUT_REQUEST__INIT;
		rq.refresh_token = a.refresh;
		call_begin(&c, &w_dead, &auth__logout_response__descriptor, NULL, NULL, NULL);
		assert_int_equal(auth_h_logout(&c.ctx, &rq, c.resp), CM_OK);
		call_end(&c);
	}
	assert_int_equal(auth_revoker_pending(app.revoker), 1);
	/* Two more polls of the edge: Redis has not got it, so neither has the edge. */
	{
		uint64_t polls = edge_revoked_polls(v) + 2;
		deadline = cm_mono_ms() + 5000;
		while (edge_revoked_polls(v) < polls && cm_mono_ms() < deadline)
			usleep(10000);
		assert_true(edge_revoked_polls(v) >= polls);
	}
	assert_false(edge_revoked_has(v, a.claims.sid));
	/* The retry thread, with a Redis that answers. */
	assert_int_equal(auth_revoker_start(app.revoker, "127.0.0.1", redis_port), CM_OK);
	assert_true(edge_sees(v, a.claims.sid, 3000));
	deadline = cm_mono_ms() + 3000;
	while (auth_revoker_pending(app.revoker) > 0 && cm_mono_ms() < deadline)
		usleep(10000);
	assert_int_equal(auth_revoker_pending(app.revoker), 0);
	auth_revoker_stop(app.revoker);
	edge_revoked_stop(v);
}

static void
test_me_and_verify(void **state)
{
	char                        email[128], email2[128], got[128], uid[37], rid[37];
	pair                        p, o;
	call                        c;
	Auth__VerifyRequest         vrq = AUTH__VERIFY_REQUEST__INIT;
	const Auth__VerifyResponse *vr;

	(void)state;
	new_account(email, uid, "me");
	new_account(email2, NULL, "me");
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	assert_int_equal(h_login(email2, PW, &o), CM_OK);
	assert_int_equal(h_me(uid, p.claims.sid, got), CM_OK);
	assert_string_equal(got, email);

	call_begin(&c, w, &auth__verify_response__descriptor, uid, p.claims.sid, NULL);
	assert_int_equal(auth_h_verify(&c.ctx, &vrq, c.resp), CM_OK);
	vr = c.resp;
	assert_true(vr->valid);
	assert_non_null(vr->user);
	assert_string_equal(vr->user->id, uid);
	assert_string_equal(vr->user->email, email);
	assert_string_equal(vr->user->name, "Test");
	assert_int_equal(strlen(vr->user->created_at), 24);
	call_end(&c);

	/* Refused: anonymous, no session, junk, unknown session, crossed user and session. */
	cm_uuid_v4(rid);
	assert_int_equal(h_me("", p.claims.sid, NULL), CM_EAUTH);
	assert_int_equal(h_me(uid, "", NULL), CM_EAUTH);
	assert_int_equal(h_me(uid, "'; DROP TABLE users; --", NULL), CM_EAUTH);
	assert_int_equal(h_me(uid, rid, NULL), CM_EAUTH);
	assert_int_equal(h_me(uid, o.claims.sid, NULL), CM_EAUTH);
	assert_int_equal(h_me(o.claims.sub, p.claims.sid, NULL), CM_EAUTH);

	/* Expired session. */
	sql_do("UPDATE sessions SET expires_at = now() - interval '1 s' WHERE id = $1",
	       p.claims.sid);
	assert_int_equal(h_me(uid, p.claims.sid, NULL), CM_EAUTH);
	call_begin(&c, w, &auth__verify_response__descriptor, uid, p.claims.sid, NULL);
	assert_int_equal(auth_h_verify(&c.ctx, &vrq, c.resp), CM_EAUTH);
	assert_false(((Auth__VerifyResponse *)c.resp)->valid);
	call_end(&c);
}

/* A batch's prefetch (auth_prefetch_sessions, one query for all its calls) answers as the calls
 * alone would: two live sessions, a crossed user and session, an unknown, a junk and a revoked
 * one. While it holds, Me answers from it (a session expired after the prefetch is still seen
 * live: the snapshot of the batch's start); once forgotten, from PostgreSQL again. */
static void
test_me_prefetched(void **state)
{
	enum { N = 6 };
	char        email[128], email2[128], email3[128], got[128], uid[37], uid3[37], rid[37];
	pair        p, o, r;
	cm_rpc_ctx  calls[N];
	const char *subs[N], *sids[N];
	cm_err      want[N] = {CM_OK, CM_OK, CM_EAUTH, CM_EAUTH, CM_EAUTH, CM_EAUTH};

	(void)state;
	new_account(email, uid, "pre");
	new_account(email2, NULL, "pre");
	new_account(email3, uid3, "pre");
	assert_int_equal(h_login(email, PW, &p), CM_OK);
	assert_int_equal(h_login(email2, PW, &o), CM_OK);
	assert_int_equal(h_login(email3, PW, &r), CM_OK);
	assert_int_equal(h_logout("", uid3, r.claims.sid), CM_OK);
	cm_uuid_v4(rid);
	subs[0] = uid, sids[0] = p.claims.sid;
	subs[1] = o.claims.sub, sids[1] = o.claims.sid;
	subs[2] = uid, sids[2] = o.claims.sid;
	subs[3] = uid, sids[3] = rid;
	subs[4] = uid, sids[4] = "'; DROP TABLE users; --";
	subs[5] = uid3, sids[5] = r.claims.sid;
	for (int i = 0; i < N; i++)
		calls[i] =
		    (cm_rpc_ctx){.subject = subs[i], .session_id = sids[i], .worker_state = w};
	auth_prefetch_sessions(w, calls, N);
	assert_int_equal(w->npre, N);
	sql_do("UPDATE sessions SET expires_at = now() - interval '1 s' WHERE id = $1",
	       p.claims.sid);
	for (int i = 0; i < N; i++)
		assert_int_equal(h_me(subs[i], sids[i], i < 2 ? got : NULL), want[i]);
	assert_string_equal(got, email2);
	assert_int_equal(h_me(uid, p.claims.sid, got), CM_OK);
	assert_string_equal(got, email);

	auth_prefetch_sessions(w, NULL, 0);
	assert_int_equal(w->npre, 0);
	assert_int_equal(h_me(uid, p.claims.sid, NULL), CM_EAUTH);
	assert_int_equal(h_me(o.claims.sub, o.claims.sid, NULL), CM_OK);
}

/* ---- start-up: legacy account, migrations --------------------------------------------------- */

static void
test_legacy_account(void **state)
{
	char v[256], lower[40];
	pair p;
	int  i;

	(void)state;
	for (i = 0; legacy_user[i] != '\0'; i++)
		lower[i] =
		    (char)(legacy_user[i] >= 'A' && legacy_user[i] <= 'Z' ? legacy_user[i] + 32
		                                                          : legacy_user[i]);
	lower[i] = '\0';
	sql1(v, sizeof(v), "SELECT email FROM users WHERE username = $1", legacy_user, NULL);
	assert_int_equal(strncmp(v, lower, strlen(lower)), 0);
	assert_string_equal(v + strlen(lower), "@local");

	/* By username, in any case, and by its e-mail. */
	assert_int_equal(h_login_on(w, legacy_user, true, "legacy password", "", &p, NULL), CM_OK);
	assert_int_equal(h_login_on(w, lower, true, "legacy password", "", NULL, NULL), CM_OK);
	assert_int_equal(h_login_on(w, v, false, "legacy password", "", NULL, NULL), CM_OK);
	assert_int_equal(h_login_on(w, legacy_user, true, "vsbec", "", NULL, NULL), CM_EAUTH);

	/* Starting again changes nothing. */
	assert_int_equal(prepare_database(&app, db), CM_OK);
	sql1(v, sizeof(v), "SELECT count(*)::text FROM users WHERE lower(username) = lower($1)",
	     legacy_user, NULL);
	assert_string_equal(v, "1");
}

typedef struct starter {
	const auth_app    *app;
	pthread_barrier_t *go;
	cm_err             err;
} starter;

static void *
start_replica(void *arg)
{
	starter *s = arg;
	cm_pg   *pg = NULL;

	s->err = cm_pg_open(&pg, db_url, "auth");
	pthread_barrier_wait(s->go);
	if (s->err == CM_OK)
		s->err = prepare_database(s->app, pg);
	cm_pg_close(pg);
	return NULL;
}

/* Replicas starting together: each prepares the database, one account results. An username
 * with '@' is its own e-mail (lower-cased). */
static void
test_replicas_start_together(void **state)
{
	enum { N = 4 };
	auth_app          a = app;
	starter           s[N];
	pthread_t         th[N];
	pthread_barrier_t go;
	char              user[64], id[37], v[128];

	(void)state;
	cm_uuid_v4(id);
	snprintf(user, sizeof(user), "Boss-%.8s@Example.com", id);
	a.cfg.login_username = user;
	a.cfg.login_password = "boss password";
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		s[i] = (starter){&a, &go, CM_EINTERNAL};
		assert_int_equal(pthread_create(&th[i], NULL, start_replica, &s[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(s[i].err, CM_OK);
	}
	pthread_barrier_destroy(&go);
	sql1(v, sizeof(v),
	     "SELECT count(*)::text || ' ' || min(email) FROM users WHERE username = $1", user,
	     NULL);
	for (char *c = user; *c != '\0'; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	assert_int_equal(strncmp(v, "1 ", 2), 0);
	assert_string_equal(v + 2, user);
	assert_int_equal(h_login_on(w, user, true, "boss password", "", NULL, NULL), CM_OK);
	assert_int_equal(h_login_on(w, user, false, "boss password", "", NULL, NULL), CM_OK);
}

/* The embedded migrations go up, down to nothing and up again, in a scratch schema. */
static void
test_migrations_down_up(void **state)
{
	char   schema[40], id[37], v[64], sql[128];
	cm_pg *pg = NULL;
	int    version;

	(void)state;
	cm_uuid_v4(id);
	/* Hex only: safe as an identifier. Short: pg.c's migration lock statement has a 200-byte
	 * buffer, so schema names longer than 13 characters do not fit (reported). */
	snprintf(schema, sizeof(schema), "am_%.8s", id);
	assert_int_equal(cm_pg_open(&pg, getenv("CM_TEST_PG"), schema), CM_OK);
	assert_true(auth_migrations_count >= 1);
	assert_int_equal(cm_pg_migrate_up(pg, schema, auth_migrations, auth_migrations_count),
	                 CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &version), CM_OK);
	assert_int_equal(version, auth_migrations[auth_migrations_count - 1].version);
	sql1(v, sizeof(v),
	     "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = $1 AND "
	     "table_name IN ('users', 'sessions', 'refresh_tokens')",
	     schema, NULL);
	assert_string_equal(v, "3");
	assert_int_equal(cm_pg_migrate_down(pg, schema, auth_migrations, auth_migrations_count, 0),
	                 CM_OK);
	sql1(v, sizeof(v),
	     "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = $1 AND "
	     "table_name IN ('users', 'sessions', 'refresh_tokens')",
	     schema, NULL);
	assert_string_equal(v, "0");
	assert_int_equal(cm_pg_migrate_up(pg, schema, auth_migrations, auth_migrations_count),
	                 CM_OK);
	assert_int_equal(cm_pg_schema_version(pg, schema, &version), CM_OK);
	assert_int_equal(version, auth_migrations[auth_migrations_count - 1].version);
	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
	if (cm_pg_exec(pg, sql, 0, NULL, NULL) != CM_OK)
		fail_msg("%s: %s", sql, cm_pg_errmsg(pg));
	cm_pg_close(pg);
}

/* ---- over real RPC ------------------------------------------------------------------------ */

static cm_err
rpc(cm_rpc_client *cl, const char *method, const char *sub, const char *sid, const char *addr,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
    cm_rpc_result *res)
{
	cm_rpc_call_opts o = {0};

	o.method = method;
	o.request_id = "itest";
	o.subject = sub;
	o.session_id = sid;
	o.client_addr = addr;
	return cm_rpc_call(cl, &o, req, d, out, res);
}

static void
test_over_rpc(void **state)
{
	cm_service           *svc = NULL;
	auth_app             *sapp = NULL;
	cm_rpc_client        *cl = NULL;
	char                  port[16];
	cm_rpc_result         res;
	char                  email[128], access[CM_MAX_TOKEN + 1], refresh[64];
	cm_jwt_claims         cl_claims;
	Auth__RegisterRequest reg = AUTH__REGISTER_REQUEST__INIT;
	Auth__LoginRequest    lg = AUTH__LOGIN_REQUEST__INIT;
	Auth__RefreshRequest  rf = AUTH__REFRESH_REQUEST__INIT;
	Auth__LogoutRequest   lo = AUTH__LOGOUT_REQUEST__INIT;
	Auth__MeRequest       me = AUTH__ME_REQUEST__INIT;
	Auth__VerifyRequest   vf = AUTH__VERIFY_REQUEST__INIT;
	ProtobufCMessage     *out = NULL;
	cm_buf                metrics;

	(void)state;
	/* The real service, as its main.c runs it: the skeleton reads the environment. */
	snprintf(port, sizeof(port), "%lld", (long long)redis_port);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db_url, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", port, 1);
	setenv("AUTH_RPC_URL", RPC_URL, 1);
	setenv("AUTH_ADMIN_ADDR", "127.0.0.1:29901", 1);
	setenv("AUTH_WORKERS", "2", 1);
	setenv("JWT_SECRET", SECRET, 1);
	setenv("LOGIN_USERNAME", legacy_user, 1);
	setenv("LOGIN_PASSWORD", "legacy password", 1);
	setenv("AUTH_PWHASH_OPSLIMIT", "2", 1);
	setenv("AUTH_PWHASH_MEMLIMIT_KIB", "4096", 1);
	setenv("AUTH_THROTTLE_ACCOUNT_MAX", STR(ACCT_MAX), 1);
	setenv("AUTH_THROTTLE_ADDR_MAX", STR(ADDR_MAX), 1);
	setenv("AUTH_THROTTLE_WINDOW_S", STR(WINDOW_S), 1);
	assert_int_equal(cm_service_start(&auth_service_def, &svc, (void **)&sapp), CM_OK);
	assert_int_equal(cm_rpc_client_open(&cl, "auth", RPC_URL, NULL), CM_OK);
	for (int64_t until = cm_mono_ms() + 3000;
	     cm_mono_ms() < until && cm_rpc_client_healthy(cl) < 1;)
		usleep(10000);
	assert_int_equal(cm_rpc_client_healthy(cl), 1);

	/* Register, and register again. */
	fresh_email(email, "rpc");
	reg.email = email;
	reg.password = (char *)PW;
	reg.name = (char *)"Over RPC";
	assert_int_equal(rpc(cl, "auth.Register", NULL, NULL, NULL, &reg.base,
	                     &auth__register_response__descriptor, &out, &res),
	                 CM_OK);
	assert_string_equal(((Auth__RegisterResponse *)out)->user->email, email);
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(rpc(cl, "auth.Register", NULL, NULL, NULL, &reg.base,
	                     &auth__register_response__descriptor, &out, &res),
	                 CM_EEXIST);
	assert_string_equal(res.message, "email already registered");
	cm_rpc_result_fini(&res);

	/* Login: wrong, then right. */
	lg.email = email;
	lg.password = (char *)"wrong horse";
	assert_int_equal(rpc(cl, "auth.Login", NULL, NULL, "192.0.2.1", &lg.base,
	                     &auth__token_pair__descriptor, &out, &res),
	                 CM_EAUTH);
	assert_int_equal(res.status, 16); /* UNAUTHENTICATED */
	assert_string_equal(res.message, "Invalid credentials");
	cm_rpc_result_fini(&res);
	lg.password = (char *)PW;
	{
		uint64_t t0 = cm_mono_ns();
		assert_int_equal(rpc(cl, "auth.Login", NULL, NULL, "192.0.2.1", &lg.base,
		                     &auth__token_pair__descriptor, &out, &res),
		                 CM_OK);
		print_message("auth.Login over RPC: %.2f ms (Argon2id t=2, m=4 MiB)\n",
		              (double)(cm_mono_ns() - t0) / 1e6);
	}
	cm_strlcpy(access, ((Auth__TokenPair *)out)->access_token, sizeof(access));
	cm_strlcpy(refresh, ((Auth__TokenPair *)out)->refresh_token, sizeof(refresh));
	assert_int_equal(((Auth__TokenPair *)out)->expires_in, 900);
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(
	    cm_jwt_verify(app.key, access, cm_now_ms() / 1000, 30, "access", &cl_claims, NULL),
	    CM_OK);

	/* Me and Verify with the envelope's subject and session, as the edge sets them. */
	assert_int_equal(rpc(cl, "auth.Me", cl_claims.sub, cl_claims.sid, NULL, &me.base,
	                     &auth__user__descriptor, &out, &res),
	                 CM_OK);
	assert_string_equal(((Auth__User *)out)->id, cl_claims.sub);
	assert_string_equal(((Auth__User *)out)->name, "Over RPC");
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(rpc(cl, "auth.Verify", cl_claims.sub, cl_claims.sid, NULL, &vf.base,
	                     &auth__verify_response__descriptor, &out, &res),
	                 CM_OK);
	assert_true(((Auth__VerifyResponse *)out)->valid);
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(
	    rpc(cl, "auth.Me", NULL, NULL, NULL, &me.base, &auth__user__descriptor, &out, &res),
	    CM_EAUTH);
	cm_rpc_result_fini(&res);

	/* Refresh rotates; Logout by the new refresh token ends the session. */
	rf.refresh_token = refresh;
	assert_int_equal(rpc(cl, "auth.Refresh", NULL, NULL, NULL, &rf.base,
	                     &auth__token_pair__descriptor, &out, &res),
	                 CM_OK);
	cm_strlcpy(refresh, ((Auth__TokenPair *)out)->refresh_token, sizeof(refresh));
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	lo.refresh_token = refresh;
	assert_int_equal(rpc(cl, "auth.Logout", NULL, NULL, NULL, &lo.base,
	                     &auth__logout_response__descriptor, &out, &res),
	                 CM_OK);
	protobuf_c_message_free_unpacked(out, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(rpc(cl, "auth.Me", cl_claims.sub, cl_claims.sid, NULL, &me.base,
	                     &auth__user__descriptor, &out, &res),
	                 CM_EAUTH);
	cm_rpc_result_fini(&res);

	/* Throttled: RESOURCE_EXHAUSTED with retry_after_s in the envelope. */
	lg.password = (char *)"wrong";
	for (int i = 0; i < ACCT_MAX; i++) {
		assert_int_equal(rpc(cl, "auth.Login", NULL, NULL, NULL, &lg.base,
		                     &auth__token_pair__descriptor, &out, &res),
		                 CM_EAUTH);
		cm_rpc_result_fini(&res);
	}
	assert_int_equal(rpc(cl, "auth.Login", NULL, NULL, NULL, &lg.base,
	                     &auth__token_pair__descriptor, &out, &res),
	                 CM_ELIMIT);
	assert_int_equal(res.status, 8); /* RESOURCE_EXHAUSTED */
	assert_true(res.retry_after_s >= 1 && res.retry_after_s <= WINDOW_S);
	cm_rpc_result_fini(&res);

	/* The method table is exactly the six methods. */
	assert_int_equal(auth_methods_count, 6);
	assert_int_equal(rpc(cl, "auth.Nope", NULL, NULL, NULL, &me.base, &auth__user__descriptor,
	                     &out, &res) == CM_OK,
	                 0);
	cm_rpc_result_fini(&res);

	/* Outcomes are counted. */
	cm_buf_init(&metrics, 1 << 20);
	assert_int_equal(cm_metrics_render(sapp->metrics, &metrics), CM_OK);
	assert_non_null(strstr(metrics.data, "auth_logins_total{outcome=\"ok\"}"));
	assert_non_null(strstr(metrics.data, "auth_logins_total{outcome=\"failed\"}"));
	assert_non_null(strstr(metrics.data, "auth_logins_total{outcome=\"throttled\"}"));
	/* and so are calls, per method, by the skeleton's RPC server; and Redis is reported. */
	assert_non_null(strstr(metrics.data, "auth_rpc_requests_total{method=\"auth.Refresh\""));
	assert_non_null(strstr(metrics.data, "auth_redis_up"));
	cm_buf_fini(&metrics);

	cm_rpc_client_close(cl);
	cm_service_stop(svc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_register),
	    cmocka_unit_test(test_register_validation),
	    cmocka_unit_test(test_login),
	    cmocka_unit_test(test_login_timing),
	    cmocka_unit_test(test_throttle_account),
	    cmocka_unit_test(test_throttle_address),
	    cmocka_unit_test(test_throttle_stranger),
	    cmocka_unit_test(test_throttle_ceiling),
	    cmocka_unit_test(test_throttle_without_redis),
	    cmocka_unit_test(test_refresh_rotation),
	    cmocka_unit_test(test_refresh_refused),
	    cmocka_unit_test(test_refresh_race),
	    cmocka_unit_test(test_old_sessions_pruned),
	    cmocka_unit_test(test_logout),
	    cmocka_unit_test(test_revocation_published),
	    cmocka_unit_test(test_revocation_deferred),
	    cmocka_unit_test(test_me_and_verify),
	    cmocka_unit_test(test_me_prefetched),
	    cmocka_unit_test(test_legacy_account),
	    cmocka_unit_test(test_replicas_start_together),
	    cmocka_unit_test(test_migrations_down_up),
	    cmocka_unit_test(test_over_rpc),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
