/*
 * token.h - the tokens svc-auth hands out.
 *
 * Access tokens are JWTs (sub = user, sid = session, typ = "access"), verified by the edge.
 * Refresh tokens are 32 random bytes in base64url; only their SHA-256 (hex) is stored.
 */
#ifndef AUTH_TOKEN_H
#define AUTH_TOKEN_H

#include <stdint.h>

#include "cm/err.h"
#include "cm/jwt.h"

#define AUTH_REFRESH_LEN 43 /* base64url of 32 bytes */
#define AUTH_HASH_HEX 65    /* 64 hex digits + NUL */

/* A new refresh token and its hash. */
void auth_refresh_new(char token[AUTH_REFRESH_LEN + 1], char hash[AUTH_HASH_HEX]);
/* The hash under which a presented token would be stored. */
void auth_refresh_hash(const char *token, char hash[AUTH_HASH_HEX]);

/* A signed access token (malloc'd). */
CM_MUSTCHECK cm_err auth_access_token(const cm_jwt_key *key, const char *user_id,
                                      const char *session_id, int64_t now_s, int64_t ttl_s,
                                      char **token);

#endif
