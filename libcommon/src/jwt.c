/*
 * jwt.c - JWT signing and verification over libjwt 1.10 with the algorithm pinned.
 *
 * libjwt 1.10 decodes with whatever algorithm the token's header names, as long as the key fits:
 * an HS256 token "signed" with an RSA public key as the HMAC secret verifies against that public
 * key. So verification first insists the decoded algorithm equals the key's, and then checks the
 * claims libjwt does not: iss, typ, exp and nbf (with leeway).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "cm/jwt.h"
#include "cm/limits.h"
#include "cm/util.h"

struct cm_jwt_key {
	jwt_alg_t      alg;
	unsigned char *sign_key; /* HS256 secret or RS256 private PEM; NULL for verify-only */
	size_t         sign_len;
	unsigned char *verify_key; /* HS256 secret or RS256 public PEM */
	size_t         verify_len;
};

static unsigned char *
dup_bytes(const void *p, size_t n)
{
	unsigned char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

cm_err
cm_jwt_key_hs256(cm_jwt_key **out, const void *secret, size_t len)
{
	cm_jwt_key *k;

	if (secret == NULL || len < 32)
		return CM_EINVAL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return CM_ENOMEM;
	k->alg = JWT_ALG_HS256;
	k->sign_key = dup_bytes(secret, len);
	k->verify_key = dup_bytes(secret, len);
	k->sign_len = k->verify_len = len;
	if (k->sign_key == NULL || k->verify_key == NULL) {
		cm_jwt_key_free(k);
		return CM_ENOMEM;
	}
	*out = k;
	return CM_OK;
}

cm_err
cm_jwt_key_rs256(cm_jwt_key **out, const char *private_pem, const char *public_pem)
{
	cm_jwt_key *k;

	if (public_pem == NULL || strstr(public_pem, "-----BEGIN") == NULL)
		return CM_EINVAL;
	if (private_pem != NULL && strstr(private_pem, "-----BEGIN") == NULL)
		return CM_EINVAL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return CM_ENOMEM;
	k->alg = JWT_ALG_RS256;
	k->verify_len = strlen(public_pem);
	k->verify_key = dup_bytes(public_pem, k->verify_len);
	if (private_pem != NULL) {
		k->sign_len = strlen(private_pem);
		k->sign_key = dup_bytes(private_pem, k->sign_len);
	}
	if (k->verify_key == NULL || (private_pem != NULL && k->sign_key == NULL)) {
		cm_jwt_key_free(k);
		return CM_ENOMEM;
	}
	*out = k;
	return CM_OK;
}

void
cm_jwt_key_free(cm_jwt_key *k)
{
	if (k == NULL)
		return;
	if (k->sign_key != NULL) {
		cm_wipe(k->sign_key, k->sign_len);
		free(k->sign_key);
	}
	if (k->verify_key != NULL) {
		cm_wipe(k->verify_key, k->verify_len);
		free(k->verify_key);
	}
	free(k);
}

const char *
cm_jwt_key_alg(const cm_jwt_key *k)
{
	return k->alg == JWT_ALG_RS256 ? "RS256" : "HS256";
}

cm_err
cm_jwt_sign(const cm_jwt_key *k, const cm_jwt_claims *c, char **token)
{
	jwt_t *j = NULL;
	char  *tok = NULL;
	cm_err err = CM_EINTERNAL;

	*token = NULL;
	if (k == NULL || k->sign_key == NULL || c == NULL || c->sub[0] == '\0')
		return CM_EINVAL;
	if (jwt_new(&j) != 0)
		return CM_ENOMEM;
	if (jwt_add_grant(j, "iss", CM_JWT_ISSUER) != 0 || jwt_add_grant(j, "sub", c->sub) != 0 ||
	    (c->sid[0] != '\0' && jwt_add_grant(j, "sid", c->sid) != 0) ||
	    (c->typ[0] != '\0' && jwt_add_grant(j, "typ", c->typ) != 0) ||
	    (c->jti[0] != '\0' && jwt_add_grant(j, "jti", c->jti) != 0) ||
	    jwt_add_grant_int(j, "iat", (long)c->iat) != 0 ||
	    (c->nbf != 0 && jwt_add_grant_int(j, "nbf", (long)c->nbf) != 0) ||
	    jwt_add_grant_int(j, "exp", (long)c->exp) != 0)
		goto out;
	if (jwt_set_alg(j, k->alg, k->sign_key, (int)k->sign_len) != 0)
		goto out;
	if ((tok = jwt_encode_str(j)) == NULL)
		goto out;
	*token = tok;
	err = CM_OK;
out:
	jwt_free(j);
	return err;
}

/* Copies a string grant into dst; false when absent or too long. */
static bool
grant_str(jwt_t *j, const char *name, char *dst, size_t n)
{
	const char *v = jwt_get_grant(j, name);

	if (v == NULL || strlen(v) >= n)
		return false;
	cm_strlcpy(dst, v, n);
	return true;
}

/* An integer grant; false when absent. libjwt returns 0 and sets errno for a missing one. */
static bool
grant_int(jwt_t *j, const char *name, int64_t *out)
{
	long v;

	errno = 0;
	v = jwt_get_grant_int(j, name);
	if (errno != 0)
		return false;
	*out = (int64_t)v;
	return true;
}

cm_err
cm_jwt_verify(const cm_jwt_key *k, const char *token, int64_t now_s, int64_t leeway_s,
              const char *want_typ, cm_jwt_claims *out, const char **why)
{
	jwt_t      *j = NULL;
	const char *reason;
	const char *iss;
	cm_err      err = CM_EAUTH;

	memset(out, 0, sizeof(*out));
	if (k == NULL || token == NULL || token[0] == '\0') {
		reason = "no token";
		goto out;
	}
	if (strlen(token) > CM_MAX_TOKEN) {
		reason = "token too long";
		goto out;
	}
	if (jwt_decode(&j, token, k->verify_key, (int)k->verify_len) != 0 || j == NULL) {
		reason = "bad signature or malformed token";
		goto out;
	}
	if (jwt_get_alg(j) != k->alg) {
		reason = "unexpected algorithm";
		goto out;
	}
	if ((iss = jwt_get_grant(j, "iss")) == NULL || strcmp(iss, CM_JWT_ISSUER) != 0) {
		reason = "wrong issuer";
		goto out;
	}
	if (!grant_str(j, "sub", out->sub, sizeof(out->sub)) || out->sub[0] == '\0') {
		reason = "no subject";
		goto out;
	}
	(void)grant_str(j, "sid", out->sid, sizeof(out->sid));
	(void)grant_str(j, "typ", out->typ, sizeof(out->typ));
	(void)grant_str(j, "jti", out->jti, sizeof(out->jti));
	if (want_typ != NULL && strcmp(out->typ, want_typ) != 0) {
		reason = "wrong token type";
		goto out;
	}
	if (!grant_int(j, "exp", &out->exp)) {
		reason = "no expiry";
		goto out;
	}
	/* Arithmetic on our side only: exp/nbf come from the token and may be extreme. */
	if (now_s - leeway_s > out->exp) {
		reason = "expired";
		goto out;
	}
	if (grant_int(j, "nbf", &out->nbf) && out->nbf > now_s + leeway_s) {
		reason = "not yet valid";
		goto out;
	}
	(void)grant_int(j, "iat", &out->iat);
	reason = NULL;
	err = CM_OK;
out:
	if (j != NULL)
		jwt_free(j);
	if (err != CM_OK)
		memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = reason;
	return err;
}
