/*
 * jwt.h - JSON Web Tokens with the algorithm pinned.
 *
 * A key is made for one algorithm (HS256 from a secret, or RS256 from a PEM key pair or just the
 * public key for verifiers). Verification rejects a token whose header names any other algorithm
 * (libjwt 1.10 would accept an HS256 token signed with an RSA public key as the secret),
 * `alg=none`, a bad signature, a wrong issuer or type, and checks `exp` and `nbf` itself
 * (libjwt 1.10 does not). Keys are immutable after creation and may be shared between threads.
 */
#ifndef CM_JWT_H
#define CM_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

typedef struct cm_jwt_key cm_jwt_key;

#define CM_JWT_ISSUER "learnapp"

/* HS256 with a secret of at least 32 bytes (copied, wiped on free). */
CM_MUSTCHECK cm_err cm_jwt_key_hs256(cm_jwt_key **out, const void *secret, size_t len);
/* RS256: private_pem may be NULL for a verify-only key. PEM text is copied. */
CM_MUSTCHECK cm_err cm_jwt_key_rs256(cm_jwt_key **out, const char *private_pem,
                                     const char *public_pem);
void                cm_jwt_key_free(cm_jwt_key *k);
/* "HS256" / "RS256" */
const char *cm_jwt_key_alg(const cm_jwt_key *k);

typedef struct cm_jwt_claims {
	char    sub[64]; /* user id */
	char    sid[64]; /* session id */
	char    typ[16]; /* "access" */
	char    jti[64];
	int64_t iat;
	int64_t nbf;
	int64_t exp;
} cm_jwt_claims;

/* Signs claims (iss = CM_JWT_ISSUER). *token is malloc'd; caller frees. */
CM_MUSTCHECK cm_err cm_jwt_sign(const cm_jwt_key *k, const cm_jwt_claims *c, char **token);

/* Verifies token at time now_s (unix seconds) with leeway_s of clock skew allowed; on CM_OK *out
 * holds the claims. Every failure is CM_EAUTH; `why` (may be NULL) gets a short reason for logs. */
CM_MUSTCHECK cm_err cm_jwt_verify(const cm_jwt_key *k, const char *token, int64_t now_s,
                                  int64_t leeway_s, const char *want_typ, cm_jwt_claims *out,
                                  const char **why);

/*
 * A cache of verified tokens, for ONE thread (no locking): cm_jwt_verify_cached answers a token
 * this cache saw verified before from memory, checking again only what may have changed since -
 * the time (exp and nbf, with the leeway) and the type asked for - so a client that sends the same
 * token on every request pays the signature and the JSON once (5.8 us a token on this machine,
 * most of what the edge spends authenticating a request). Only successes are kept, keyed by the
 * key and the token's every byte (compared in constant time); `slots` direct-mapped entries, so
 * a flood of new tokens only evicts. Tokens longer than CM_JWT_CACHE_TOKEN_MAX go uncached.
 */
#define CM_JWT_CACHE_TOKEN_MAX 1024
typedef struct cm_jwt_cache cm_jwt_cache;

cm_jwt_cache *cm_jwt_cache_alloc(size_t slots); /* NULL when out of memory */
void          cm_jwt_cache_free(cm_jwt_cache *c);
uint64_t      cm_jwt_cache_hits(const cm_jwt_cache *c); /* answers given from memory */
/* cm_jwt_verify, through c (NULL: no cache). */
CM_MUSTCHECK cm_err cm_jwt_verify_cached(cm_jwt_cache *c, const cm_jwt_key *k, const char *token,
                                         int64_t now_s, int64_t leeway_s, const char *want_typ,
                                         cm_jwt_claims *out, const char **why);

#endif
