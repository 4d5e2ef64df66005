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
#include "cm/util.h"

#define SECRET "0123456789abcdef0123456789abcdef-test"
#define NOW    1800000000

static char *priv_pem, *pub_pem;

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

static int
setup(void **state)
{
	char dir[] = "/tmp/jwtkeysXXXXXX", cmd[512], p1[128], p2[128];

	(void) state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(p1, sizeof(p1), "%s/priv.pem", dir);
	snprintf(p2, sizeof(p2), "%s/pub.pem", dir);
	snprintf(cmd, sizeof(cmd),
	    "openssl genrsa -out %s 2048 2>/dev/null && openssl rsa -in %s -pubout -out %s 2>/dev/null",
	    p1, p1, p2);
	if (system(cmd) != 0)
		return -1;
	priv_pem = slurp(p1);
	pub_pem  = slurp(p2);
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

	(void) state;
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

static void
test_claims_checked(void **state)
{
	cm_jwt_key   *k = NULL;
	cm_jwt_claims c, out;
	char         *tok = NULL;
	const char   *why;

	(void) state;
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
	jwt_t        *j   = NULL;

	(void) state;
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
	assert_int_equal(cm_jwt_verify(k,
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
	jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *) pub_pem, (int) strlen(pub_pem));
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
	big[100]  = '.';
	big[200]  = '.';
	assert_int_equal(cm_jwt_verify(k, big, NOW, 0, NULL, &out, NULL), CM_EAUTH);
	free(big);
	cm_jwt_key_free(k);
	cm_jwt_key_free(other);
	cm_jwt_key_free(rs_pub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_claims_checked),
		cmocka_unit_test(test_forgeries),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
