/*
 * token.c - refresh token generation/hashing and access token issuing.
 */
#include <string.h>

#include <sodium.h>

#include "cm/util.h"
#include "token.h"

void
auth_refresh_new(char token[AUTH_REFRESH_LEN + 1], char hash[AUTH_HASH_HEX])
{
	unsigned char raw[32];

	cm_random_bytes(raw, sizeof(raw));
	cm_b64url(raw, sizeof(raw), token);
	cm_wipe(raw, sizeof(raw));
	auth_refresh_hash(token, hash);
}

void
auth_refresh_hash(const char *token, char hash[AUTH_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
	cm_hex(h, sizeof(h), hash);
}

cm_err
auth_access_token(const cm_jwt_key *key, const char *user_id, const char *session_id, int64_t now_s,
                  int64_t ttl_s, char **token)
{
	cm_jwt_claims c;

	memset(&c, 0, sizeof(c));
	cm_strlcpy(c.sub, user_id, sizeof(c.sub));
	cm_strlcpy(c.sid, session_id, sizeof(c.sid));
	cm_strlcpy(c.typ, "access", sizeof(c.typ));
	cm_uuid_v4(c.jti);
	c.iat = now_s;
	c.exp = now_s + ttl_s;
	return cm_jwt_sign(key, &c, token);
}
