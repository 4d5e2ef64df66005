/*
 * test_jwt.c - token signing and verification: the algorithm is pinned, claims are checked,
 * and forged or damaged tokens are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>

#include "cm/jwt.h"
#include "cm/limits.h"
#include "cm/util.h"

#define SECRET "0123456789abcdef0123456789abcdef-test"
#define NOW 1800000000

static char *priv_pem, *pub_pem, *priv2_pem, *pub2_pem;

static char *
slurp(const char *path)
{
	FILE  *f = fopen(path, "rb");
	char  *b = calloc(1, 16384);
	size_t n;

	assert_non_null(f);
	n = fread(b, 1, 16383, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

/* Two RSA key pairs made with openssl in a temporary directory (removed again). */
static int
setup(void **state)
{
	char dir[] = "/tmp/jwtkeysXXXXXX", cmd[1024];
	int  rc;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	         "cd %s && openssl genrsa -out a.pem 2048 2>/dev/null && "
	         "openssl rsa -in a.pem -pubout -out a.pub 2>/dev/null && "
	         "openssl genrsa -out b.pem 2048 2>/dev/null && "
	         "openssl rsa -in b.pem -pubout -out b.pub 2>/dev/null",
	         dir);
	rc = system(cmd);
	if (rc == 0) {
		char p[128];
		snprintf(p, sizeof(p), "%s/a.pem", dir);
		priv_pem = slurp(p);
		snprintf(p, sizeof(p), "%s/a.pub", dir);
		pub_pem = slurp(p);
		snprintf(p, sizeof(p), "%s/b.pem", dir);
		priv2_pem = slurp(p);
		snprintf(p, sizeof(p), "%s/b.pub", dir);
		pub2_pem = slurp(p);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = -1;
	return rc == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	free(priv_pem);
	free(pub_pem);
	free(priv2_pem);
	free(pub2_pem);
	return 0;
}

static void
claims(cm_jwt_claims *c, int64_t exp)
{
	memset(c, 0, sizeof(*c));
	cm_strlcpy(c->sub, "user-1", sizeof(c->sub));
	cm_strlcpy(c->sid, "session-1", sizeof(c->sid));
	cm_strlcpy(c->typ, "access", sizeof(c->typ));
	c->iat = NOW;
	c->exp = exp;
}

static void
test_round_trips(void **state)
{
	cm_jwt_key   *hs = NULL, *rs = NULL, *rs_pub = NULL;
	cm_jwt_claims c, out;
	char         *tok = NULL;

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&hs, SECRET, strlen(SECRET)), CM_OK);
	claims(&c, NOW + 900);
	assert_int_equal(cm_jwt_sign(hs, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(hs, tok, NOW, 0, "access", &out, NULL), CM_OK);
	assert_string_equal(out.sub, "user-1");
	assert_string_equal(out.sid, "session-1");
	assert_true(out.exp == NOW + 900);
	free(tok);

	assert_int_equal(cm_jwt_key_rs256(&rs, priv_pem, pub_pem), CM_OK);
	assert_int_equal(cm_jwt_key_rs256(&rs_pub, NULL, pub_pem), CM_OK);
	assert_string_equal(cm_jwt_key_alg(rs), "RS256");
	assert_int_equal(cm_jwt_sign(rs, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(rs_pub, tok, NOW, 0, "access", &out, NULL), CM_OK);
	{
		char *none = NULL;
		assert_int_equal(cm_jwt_sign(rs_pub, &c, &none), CM_EINVAL); /* verify-only key */
		assert_null(none);
	}
	/* An RS256 token shown to the HS256 verifier fails. */
	assert_int_equal(cm_jwt_verify(hs, tok, NOW, 0, "access", &out, NULL), CM_EAUTH);
	free(tok);

	assert_int_equal(cm_jwt_key_hs256(&hs, "short", 5) == CM_OK, 0);
	cm_jwt_key_free(hs);
	cm_jwt_key_free(rs);
	cm_jwt_key_free(rs_pub);
}

/* The per-thread cache of verified tokens answers as cm_jwt_verify would: time, type and key
 * checked again on a hit, failures and other keys never answered from memory, a slot taken by
 * another token only evicts. */
static void
test_cache(void **state)
{
	cm_jwt_key   *k = NULL, *k2 = NULL;
	cm_jwt_cache *c = cm_jwt_cache_alloc(8), *one = cm_jwt_cache_alloc(1);
	cm_jwt_claims cl, out;
	char         *tok = NULL, *early = NULL, *other = NULL, forged[1024];
	const char   *why;
	char          junk[2000];

	(void)state;
	assert_non_null(c);
	assert_non_null(one);
	assert_int_equal(cm_jwt_key_hs256(&k, SECRET, strlen(SECRET)), CM_OK);
	assert_int_equal(cm_jwt_key_hs256(&k2, SECRET, strlen(SECRET)), CM_OK);
	claims(&cl, NOW + 900);
	assert_int_equal(cm_jwt_sign(k, &cl, &tok), CM_OK);

	/* Verified once, then from memory with the same claims. */
	assert_int_equal(cm_jwt_verify_cached(c, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	assert_int_equal(cm_jwt_cache_hits(c), 0);
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(cm_jwt_verify_cached(c, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	assert_int_equal(cm_jwt_cache_hits(c), 1);
	assert_null(why);
	assert_string_equal(out.sub, "user-1");
	assert_string_equal(out.sid, "session-1");
	assert_true(out.exp == NOW + 900);

	/* What depends on the moment and the caller is checked on a hit. */
	assert_int_equal(cm_jwt_verify_cached(c, k, tok, NOW + 931, 30, "access", &out, &why),
	                 CM_EAUTH);
	assert_string_equal(why, "expired");
	assert_string_equal(out.sub, "");
	assert_int_equal(cm_jwt_verify_cached(c, k, tok, NOW + 930, 30, "access", &out, &why),
	                 CM_OK);
	assert_int_equal(cm_jwt_verify_cached(c, k, tok, NOW, 30, "refresh", &out, &why), CM_EAUTH);
	assert_string_equal(why, "wrong token type");
	assert_int_equal(cm_jwt_cache_hits(c), 4);

	claims(&cl, NOW + 900);
	cl.nbf = NOW + 600;
	assert_int_equal(cm_jwt_sign(k, &cl, &early), CM_OK);
	assert_int_equal(cm_jwt_verify_cached(c, k, early, NOW + 700, 30, "access", &out, &why),
	                 CM_OK);
	assert_int_equal(cm_jwt_verify_cached(c, k, early, NOW, 30, "access", &out, &why),
	                 CM_EAUTH);
	assert_string_equal(why, "not yet valid");
	assert_int_equal(cm_jwt_cache_hits(c), 5);

	/* Another key (the same secret) is a miss; so are a forged copy and junk, never kept. */
	assert_int_equal(cm_jwt_verify_cached(c, k2, tok, NOW, 30, "access", &out, &why), CM_OK);
	cm_strlcpy(forged, tok, sizeof(forged));
	forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
	for (int i = 0; i < 2; i++)
		assert_int_equal(cm_jwt_verify_cached(c, k, forged, NOW, 30, "access", &out, &why),
		                 CM_EAUTH);
	memset(junk, 'a', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	assert_int_equal(cm_jwt_verify_cached(c, k, junk, NOW, 30, "access", &out, &why), CM_EAUTH);
	assert_int_equal(cm_jwt_cache_hits(c), 5);

	/* One slot: a second token takes it, the first is verified again, then remembered. */
	claims(&cl, NOW + 800);
	assert_int_equal(cm_jwt_sign(k, &cl, &other), CM_OK);
	assert_int_equal(cm_jwt_verify_cached(one, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	assert_int_equal(cm_jwt_verify_cached(one, k, other, NOW, 30, "access", &out, &why), CM_OK);
	assert_true(out.exp == NOW + 800);
	assert_int_equal(cm_jwt_verify_cached(one, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	assert_true(out.exp == NOW + 900);
	assert_int_equal(cm_jwt_cache_hits(one), 0);
	assert_int_equal(cm_jwt_verify_cached(one, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	assert_int_equal(cm_jwt_cache_hits(one), 1);

	/* No cache: plain verification. */
	assert_int_equal(cm_jwt_verify_cached(NULL, k, tok, NOW, 30, "access", &out, &why), CM_OK);
	free(tok);
	free(early);
	free(other);
	cm_jwt_cache_free(c);
	cm_jwt_cache_free(one);
	cm_jwt_key_free(k);
	cm_jwt_key_free(k2);
}

static void
test_claims_checked(void **state)
{
	cm_jwt_key   *k = NULL;
	cm_jwt_claims c, out;
	char         *tok = NULL;
	const char   *why;

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&k, SECRET, strlen(SECRET)), CM_OK);
	claims(&c, NOW - 100);
	assert_int_equal(cm_jwt_sign(k, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 30, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "expired");
	assert_string_equal(out.sub, ""); /* nothing leaks out of a refused token */
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 200, "access", &out, &why), CM_OK); /* leeway */
	free(tok);

	claims(&c, NOW + 900);
	c.nbf = NOW + 600;
	assert_int_equal(cm_jwt_sign(k, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 30, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "not yet valid");
	free(tok);

	claims(&c, NOW + 900);
	cm_strlcpy(c.typ, "refresh", sizeof(c.typ));
	assert_int_equal(cm_jwt_sign(k, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 30, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "wrong token type");
	free(tok);
	cm_jwt_key_free(k);
}

static void
test_forgeries(void **state)
{
	cm_jwt_key   *k = NULL, *other = NULL, *rs_pub = NULL;
	cm_jwt_claims c, out;
	char         *tok = NULL, *big;
	jwt_t        *j = NULL;

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&k, SECRET, strlen(SECRET)), CM_OK);
	assert_int_equal(cm_jwt_key_hs256(&other, SECRET "x", strlen(SECRET) + 1), CM_OK);
	claims(&c, NOW + 900);

	/* Signed with another secret. */
	assert_int_equal(cm_jwt_sign(other, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, NULL), CM_EAUTH);
	/* Tampered payload: flip one character in the middle part. */
	{
		char *dot = strchr(tok, '.');
		dot[5] = dot[5] == 'A' ? 'B' : 'A';
		assert_int_equal(cm_jwt_verify(other, tok, NOW, 0, "access", &out, NULL), CM_EAUTH);
	}
	free(tok);

	/* alg=none, hand-made. */
	assert_int_equal(
	    cm_jwt_verify(k,
	                  "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	                  "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6"
	                  "NDEwMjQ0NDgwMH0.",
	                  NOW, 0, "access", &out, NULL),
	    CM_EAUTH);

	/* The classic key-confusion attack: HS256 with the RSA public key as the HMAC secret. */
	assert_int_equal(cm_jwt_key_rs256(&rs_pub, NULL, pub_pem), CM_OK);
	assert_int_equal(jwt_new(&j), 0);
	jwt_add_grant(j, "iss", CM_JWT_ISSUER);
	jwt_add_grant(j, "sub", "admin");
	jwt_add_grant(j, "typ", "access");
	jwt_add_grant_int(j, "exp", NOW + 900);
	jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)pub_pem, (int)strlen(pub_pem));
	tok = jwt_encode_str(j);
	jwt_free(j);
	assert_non_null(tok);
	assert_int_equal(cm_jwt_verify(rs_pub, tok, NOW, 0, "access", &out, NULL), CM_EAUTH);
	free(tok);

	/* Garbage of all sizes. */
	assert_int_equal(cm_jwt_verify(k, "", NOW, 0, NULL, &out, NULL), CM_EAUTH);
	assert_int_equal(cm_jwt_verify(k, "a.b.c", NOW, 0, NULL, &out, NULL), CM_EAUTH);
	assert_int_equal(cm_jwt_verify(k, "....", NOW, 0, NULL, &out, NULL), CM_EAUTH);
	big = malloc(5000);
	memset(big, 'A', 4999);
	big[4999] = '\0';
	big[100] = '.';
	big[200] = '.';
	assert_int_equal(cm_jwt_verify(k, big, NOW, 0, NULL, &out, NULL), CM_EAUTH);
	free(big);
	cm_jwt_key_free(k);
	cm_jwt_key_free(other);
	cm_jwt_key_free(rs_pub);
}

/* A token made with libjwt directly: grants as given, signed with alg and key. */
static char *
hand_made(jwt_alg_t alg, const void *key, size_t keylen, const char *iss, const char *sub,
          const char *typ, const char *pad, const char *exp_json)
{
	jwt_t *j = NULL;
	char  *tok;

	assert_int_equal(jwt_new(&j), 0);
	if (iss != NULL)
		assert_int_equal(jwt_add_grant(j, "iss", iss), 0);
	if (sub != NULL)
		assert_int_equal(jwt_add_grant(j, "sub", sub), 0);
	if (typ != NULL)
		assert_int_equal(jwt_add_grant(j, "typ", typ), 0);
	if (pad != NULL)
		assert_int_equal(jwt_add_grant(j, "pad", pad), 0);
	if (exp_json != NULL)
		assert_int_equal(jwt_add_grants_json(j, exp_json), 0);
	assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, (int)keylen), 0);
	tok = jwt_encode_str(j);
	jwt_free(j);
	assert_non_null(tok);
	return tok;
}

static void
test_signature_and_key_mismatch(void **state)
{
	cm_jwt_key   *hs = NULL, *rs = NULL, *rs2 = NULL;
	cm_jwt_claims c, out;
	char         *tok = NULL;
	const char   *why;

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&hs, SECRET, strlen(SECRET)), CM_OK);
	assert_int_equal(cm_jwt_key_rs256(&rs, priv_pem, pub_pem), CM_OK);
	assert_int_equal(cm_jwt_key_rs256(&rs2, priv2_pem, pub2_pem), CM_OK);
	claims(&c, NOW + 900);

	/* Tampered signature (a character in the middle: the last one may only carry padding bits).
	 */
	assert_int_equal(cm_jwt_sign(hs, &c, &tok), CM_OK);
	{
		char *sig = strrchr(tok, '.') + 1;
		sig[5] = sig[5] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(cm_jwt_verify(hs, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	free(tok);
	/* Signature removed. */
	assert_int_equal(cm_jwt_sign(hs, &c, &tok), CM_OK);
	strrchr(tok, '.')[1] = '\0';
	assert_int_equal(cm_jwt_verify(hs, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	free(tok);

	/* RS256 signed by another key pair. */
	assert_int_equal(cm_jwt_sign(rs2, &c, &tok), CM_OK);
	assert_int_equal(cm_jwt_verify(rs2, tok, NOW, 0, "access", &out, NULL), CM_OK);
	assert_int_equal(cm_jwt_verify(rs, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	free(tok);

	/* The key-confusion token is refused by the algorithm pin itself, not by luck. */
	tok = hand_made(JWT_ALG_HS256, pub_pem, strlen(pub_pem), CM_JWT_ISSUER, "admin", "access",
	                NULL, "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(rs, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "unexpected algorithm");
	assert_string_equal(out.sub, "");
	free(tok);

	/* HS512 with the right secret is still not HS256. */
	tok = hand_made(JWT_ALG_HS512, SECRET, strlen(SECRET), CM_JWT_ISSUER, "user-1", "access",
	                NULL, "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(hs, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	free(tok);

	/* Keys refused at creation. */
	{
		cm_jwt_key *k = NULL;
		assert_int_equal(cm_jwt_key_hs256(&k, SECRET, 31), CM_EINVAL);
		assert_int_equal(cm_jwt_key_hs256(&k, NULL, 40), CM_EINVAL);
		assert_int_equal(cm_jwt_key_rs256(&k, NULL, "not a pem"), CM_EINVAL);
		assert_int_equal(cm_jwt_key_rs256(&k, "not a pem", pub_pem), CM_EINVAL);
		assert_int_equal(cm_jwt_key_rs256(&k, priv_pem, NULL), CM_EINVAL);
		assert_null(k);
	}
	/* Nothing is signed without a subject. */
	memset(&c, 0, sizeof(c));
	c.exp = NOW + 900;
	assert_int_equal(cm_jwt_sign(hs, &c, &tok), CM_EINVAL);
	assert_null(tok);
	cm_jwt_key_free(hs);
	cm_jwt_key_free(rs);
	cm_jwt_key_free(rs2);
}

static void
test_claim_shapes(void **state)
{
	cm_jwt_key   *k = NULL;
	cm_jwt_claims out;
	char         *tok;
	const char   *why;
	const size_t  sl = strlen(SECRET);

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&k, SECRET, sl), CM_OK);

	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", "access", NULL,
	                "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_OK);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, NULL, &out, &why),
	                 CM_OK); /* typ not asked */
	assert_null(why);
	free(tok);

	tok = hand_made(JWT_ALG_HS256, SECRET, sl, "someone-else", "u", "access", NULL,
	                "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "wrong issuer");
	free(tok);

	tok =
	    hand_made(JWT_ALG_HS256, SECRET, sl, NULL, "u", "access", NULL, "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "wrong issuer");
	free(tok);

	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, NULL, "access", NULL,
	                "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "no subject");
	free(tok);

	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", NULL, NULL,
	                "{\"exp\":1800000900}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "wrong token type");
	free(tok);

	/* No exp at all; exp that is not an integer; exp in the far past. */
	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", "access", NULL, NULL);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "no expiry");
	free(tok);
	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", "access", NULL,
	                "{\"exp\":\"4102444800\"}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	free(tok);
	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", "access", NULL,
	                "{\"exp\":-9223372036854775807}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 60, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "expired");
	free(tok);
	/* nbf far in the future, exp at the end of time: no overflow, still not valid. */
	tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, "u", "access", NULL,
	                "{\"exp\":9223372036854775807,\"nbf\":9223372036854775807}");
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 60, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "not yet valid");
	free(tok);

	/* A subject longer than the claims can hold is refused, not truncated. */
	{
		char sub[100];
		memset(sub, 'x', sizeof(sub) - 1);
		sub[sizeof(sub) - 1] = '\0';
		tok = hand_made(JWT_ALG_HS256, SECRET, sl, CM_JWT_ISSUER, sub, "access", NULL,
		                "{\"exp\":1800000900}");
		assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
		free(tok);
	}
	cm_jwt_key_free(k);
}

static void
test_alg_none_variants(void **state)
{
	cm_jwt_key   *hs = NULL, *rs = NULL;
	cm_jwt_claims out;
	/* {"alg":"none","typ":"JWT"} / {"alg":"None"} / {"alg":"NONE"}, payload valid, with and
	 * without a signature part. */
	static const char *const toks[] = {
	    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	    "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH"
	    "0.",
	    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	    "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH"
	    "0",
	    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	    "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH"
	    "0."
	    "c2lnbmF0dXJl",
	    "eyJhbGciOiJOb25lIn0."
	    "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH"
	    "0.",
	    "eyJhbGciOiJOT05FIn0."
	    "eyJpc3MiOiJsZWFybmFwcCIsInN1YiI6InVzZXItMSIsInR5cCI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH"
	    "0.",
	};

	(void)state;
	assert_int_equal(cm_jwt_key_hs256(&hs, SECRET, strlen(SECRET)), CM_OK);
	assert_int_equal(cm_jwt_key_rs256(&rs, NULL, pub_pem), CM_OK);
	for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		assert_int_equal(cm_jwt_verify(hs, toks[i], NOW, 0, "access", &out, NULL),
		                 CM_EAUTH);
		assert_int_equal(cm_jwt_verify(rs, toks[i], NOW, 0, "access", &out, NULL),
		                 CM_EAUTH);
		assert_string_equal(out.sub, "");
	}
	cm_jwt_key_free(hs);
	cm_jwt_key_free(rs);
}

/* Tokens up to CM_MAX_TOKEN (4 KiB) are verified; longer ones are refused before decoding. */
static void
test_size_limit(void **state)
{
	cm_jwt_key   *k = NULL;
	cm_jwt_claims out;
	char         *tok = NULL, *pad = calloc(1, 4096);
	const char   *why;
	size_t        n;

	(void)state;
	assert_non_null(pad);
	assert_int_equal(cm_jwt_key_hs256(&k, SECRET, strlen(SECRET)), CM_OK);
	/* Grow the padding claim until the token is as long as allowed. */
	for (n = 2800;; n++) {
		memset(pad, 'p', n);
		pad[n] = '\0';
		tok = hand_made(JWT_ALG_HS256, SECRET, strlen(SECRET), CM_JWT_ISSUER, "u", "access",
		                pad, "{\"exp\":1800000900}");
		if (strlen(tok) > CM_MAX_TOKEN)
			break;
		free(tok);
	}
	assert_true(strlen(tok) > CM_MAX_TOKEN && strlen(tok) <= CM_MAX_TOKEN + 4);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_EAUTH);
	assert_string_equal(why, "token too long");
	free(tok);
	pad[n - 3] = '\0'; /* three bytes fewer: four base64 characters shorter */
	tok = hand_made(JWT_ALG_HS256, SECRET, strlen(SECRET), CM_JWT_ISSUER, "u", "access", pad,
	                "{\"exp\":1800000900}");
	assert_true(strlen(tok) <= CM_MAX_TOKEN && strlen(tok) > CM_MAX_TOKEN - 8);
	assert_int_equal(cm_jwt_verify(k, tok, NOW, 0, "access", &out, &why), CM_OK);
	assert_string_equal(out.sub, "u");
	/* 4 KiB of garbage with the right shape. */
	memset(pad, 'A', 4095);
	pad[4095] = '\0';
	pad[1000] = pad[2000] = '.';
	assert_int_equal(cm_jwt_verify(k, pad, NOW, 0, NULL, &out, &why), CM_EAUTH);
	free(tok);
	free(pad);
	cm_jwt_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),  cmocka_unit_test(test_claims_checked),
	    cmocka_unit_test(test_forgeries),    cmocka_unit_test(test_signature_and_key_mismatch),
	    cmocka_unit_test(test_claim_shapes), cmocka_unit_test(test_alg_none_variants),
	    cmocka_unit_test(test_size_limit),   cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
