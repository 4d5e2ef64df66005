/*
 * store.h - all of svc-auth's SQL (schema "auth"). Every statement is parameterised.
 *
 * Errors: CM_EUNAVAIL when PostgreSQL is unreachable, CM_EEXIST for a taken e-mail/username,
 * CM_ENOTFOUND for no such user, CM_EAUTH for a token or session that is not (or no longer)
 * valid, CM_EINTERNAL otherwise.
 */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/pg.h"

typedef struct auth_user {
	char id[37];
	char email[256];
	char name[256];
	char created_at[40];
	char password_hash[160];
} auth_user;

CM_MUSTCHECK cm_err auth_store_user_create(cm_pg *pg, const char *email, const char *username,
                                           const char *name, const char *hash, auth_user *out);
/* The legacy account at start-up: INSERT ... ON CONFLICT DO NOTHING, so replicas starting
 * together are fine. *created tells whether this call made it. */
CM_MUSTCHECK cm_err auth_store_user_seed(cm_pg *pg, const char *email, const char *username,
                                         const char *hash, bool *created);
/* By e-mail or username, case-insensitively. */
CM_MUSTCHECK cm_err auth_store_user_by_login(cm_pg *pg, const char *login, auth_user *out);
CM_MUSTCHECK cm_err auth_store_user_by_id(cm_pg *pg, const char *id, auth_user *out);

/* A new session for the user with its first refresh token (stored as hash). */
CM_MUSTCHECK cm_err auth_store_session_create(cm_pg *pg, const char *user_id, int64_t ttl_s,
                                              const char *refresh_hash, char session_id[37]);

/* Deletes the user's sessions (and, by cascade, their refresh tokens) that expired or were
 * revoked more than a day ago: the rows reuse detection needs are kept while they matter. */
CM_MUSTCHECK cm_err auth_store_sessions_prune(cm_pg *pg, const char *user_id);

/* Marks old_hash used and stores new_hash in the same session, atomically. A token that was
 * already used revokes its whole session (CM_EAUTH, *reused = true). */
CM_MUSTCHECK cm_err auth_store_refresh_rotate(cm_pg *pg, const char *old_hash, const char *new_hash,
                                              int64_t ttl_s, char user_id[37], char session_id[37],
                                              bool *reused);

/* Revokes the session of a refresh token / a session id (of that user). OK when nothing matched;
 * revoked gets the id of the session this call revoked, "" when none. */
CM_MUSTCHECK cm_err auth_store_revoke_by_refresh(cm_pg *pg, const char *refresh_hash,
                                                 char revoked[37]);
CM_MUSTCHECK cm_err auth_store_revoke_session(cm_pg *pg, const char *session_id,
                                              const char *user_id, char revoked[37]);

/* The user of a live session (one round trip): CM_EAUTH when the session does not exist, is not
 * the user's, is revoked or has expired. auth_store_session_users below is the same for many. */
CM_MUSTCHECK cm_err auth_store_session_user(cm_pg *pg, const char *session_id, const char *user_id,
                                            auth_user *out);

/* auth_store_session_user for n (session_ids[i], user_ids[i]) pairs in one statement: live[i]
 * and out[i] for each (live false as the one-pair version's CM_EAUTH; a pair of which either
 * is not a UUID is not live). An error leaves live[] all false. */
CM_MUSTCHECK cm_err auth_store_session_users(cm_pg *pg, const char *const *session_ids,
                                             const char *const *user_ids, size_t n, bool *live,
                                             auth_user *out);

#endif
