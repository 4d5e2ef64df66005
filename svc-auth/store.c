/*
 * store.c - svc-auth's SQL. Times leave PostgreSQL already formatted as RFC 3339 UTC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "store.h"

#define USER_COLS                                                                                  \
	"id::text, email, name, "                                                                  \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "            \
	"password_hash"

static void
fill_user(const cm_pg_result *r, auth_user *u)
{
	cm_strlcpy(u->id, cm_pg_get(r, 0, 0), sizeof(u->id));
	cm_strlcpy(u->email, cm_pg_get(r, 0, 1), sizeof(u->email));
	cm_strlcpy(u->name, cm_pg_get(r, 0, 2), sizeof(u->name));
	cm_strlcpy(u->created_at, cm_pg_get(r, 0, 3), sizeof(u->created_at));
	cm_strlcpy(u->password_hash, cm_pg_get(r, 0, 4), sizeof(u->password_hash));
}

static cm_err
one_user(cm_pg *pg, const char *sql, int n, const char *const *p, auth_user *out)
{
	cm_pg_result *r = NULL;
	cm_err        err;

	if ((err = cm_pg_exec(pg, sql, n, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) != 1) {
		cm_pg_result_free(r);
		return CM_ENOTFOUND;
	}
	fill_user(r, out);
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
auth_store_user_create(cm_pg *pg, const char *email, const char *username, const char *name,
                       const char *hash, auth_user *out)
{
	const char *p[4] = {email, username, name, hash};

	return one_user(
	    pg,
	    "INSERT INTO users(email, username, name, password_hash) VALUES ($1, $2, $3, $4) "
	    "RETURNING " USER_COLS,
	    4, p, out);
}

cm_err
auth_store_user_seed(cm_pg *pg, const char *email, const char *username, const char *hash,
                     bool *created)
{
	cm_pg_result *r = NULL;
	const char   *p[3] = {email, username, hash};
	cm_err        err;

	*created = false;
	err = cm_pg_exec(pg,
	                 "INSERT INTO users(email, username, password_hash) VALUES ($1, $2, $3) "
	                 "ON CONFLICT DO NOTHING RETURNING id",
	                 3, p, &r);
	if (err == CM_OK)
		*created = cm_pg_nrows(r) == 1;
	cm_pg_result_free(r);
	return err;
}

cm_err
auth_store_user_by_login(cm_pg *pg, const char *login, auth_user *out)
{
	const char *p[1] = {login};

	return one_user(pg,
	                "SELECT " USER_COLS
	                " FROM users WHERE email = lower($1) OR lower(username) = lower($1) "
	                "ORDER BY (email = lower($1)) DESC LIMIT 1",
	                1, p, out);
}

cm_err
auth_store_user_by_id(cm_pg *pg, const char *id, auth_user *out)
{
	const char *p[1] = {id};

	if (!cm_uuid_valid(id))
		return CM_ENOTFOUND;
	return one_user(pg, "SELECT " USER_COLS " FROM users WHERE id = $1", 1, p, out);
}

cm_err
auth_store_session_create(cm_pg *pg, const char *user_id, int64_t ttl_s, const char *refresh_hash,
                          char session_id[37])
{
	cm_pg_result *r = NULL;
	char          ttl[24];
	const char   *p[3];
	cm_err        err;

	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
	p[0] = user_id;
	p[1] = ttl;
	p[2] = refresh_hash;
	/* One statement, so the session never exists without its first token. */
	err = cm_pg_exec(
	    pg,
	    "WITH s AS (INSERT INTO sessions(user_id, expires_at) "
	    "  VALUES ($1, now() + make_interval(secs => $2::bigint)) RETURNING id, expires_at) "
	    "INSERT INTO refresh_tokens(token_hash, session_id, expires_at) "
	    "SELECT $3, id, expires_at FROM s RETURNING session_id::text",
	    3, p, &r);
	if (err != CM_OK)
		return err;
	cm_strlcpy(session_id, cm_pg_get(r, 0, 0), 37);
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
auth_store_sessions_prune(cm_pg *pg, const char *user_id)
{
	const char *p[1] = {user_id};

	return cm_pg_exec(
	    pg,
	    "DELETE FROM sessions WHERE user_id = $1 AND "
	    "(expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day')",
	    1, p, NULL);
}

cm_err
auth_store_refresh_rotate(cm_pg *pg, const char *old_hash, const char *new_hash, int64_t ttl_s,
                          char user_id[37], char session_id[37], bool *reused)
{
	cm_pg_result *r = NULL;
	const char   *p[3];
	char          ttl[24];
	cm_err        err;

	*reused = false;
	if ((err = cm_pg_begin(pg)) != CM_OK)
		return err;
	p[0] = old_hash;
	/* The row lock serialises two rotations of the same token. */
	err = cm_pg_exec(
	    pg,
	    "SELECT rt.session_id::text, s.user_id::text, rt.used_at IS NOT NULL, "
	    "  rt.expires_at < now() OR s.expires_at < now() OR s.revoked_at IS NOT NULL "
	    "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id "
	    "WHERE rt.token_hash = $1 FOR UPDATE OF rt",
	    1, p, &r);
	if (err != CM_OK)
		goto fail;
	if (cm_pg_nrows(r) != 1) {
		err = CM_EAUTH;
		goto fail;
	}
	cm_strlcpy(session_id, cm_pg_get(r, 0, 0), 37);
	cm_strlcpy(user_id, cm_pg_get(r, 0, 1), 37);
	if (strcmp(cm_pg_get(r, 0, 2), "t") == 0) {
		/* A used token presented again: someone else may hold the family. End it. */
		*reused = true;
		cm_pg_result_free(r);
		r = NULL;
		p[0] = session_id;
		if ((err = cm_pg_exec(pg,
		                      "UPDATE sessions SET revoked_at = now(), revoke_reason = "
		                      "'refresh token reuse' "
		                      "WHERE id = $1 AND revoked_at IS NULL",
		                      1, p, NULL)) != CM_OK ||
		    (err = cm_pg_commit(pg)) != CM_OK)
			goto fail;
		return CM_EAUTH;
	}
	if (strcmp(cm_pg_get(r, 0, 3), "t") == 0) {
		err = CM_EAUTH;
		goto fail;
	}
	cm_pg_result_free(r);
	r = NULL;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
	p[0] = old_hash;
	p[1] = new_hash;
	p[2] = ttl;
	if ((err = cm_pg_exec(pg, "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
	                      1, p, NULL)) != CM_OK)
		goto fail;
	p[0] = new_hash;
	p[1] = session_id;
	if ((err = cm_pg_exec(pg,
	                      "INSERT INTO refresh_tokens(token_hash, session_id, expires_at) "
	                      "VALUES ($1, $2, now() + make_interval(secs => $3::bigint))",
	                      3, p, NULL)) != CM_OK)
		goto fail;
	/* Sliding session: it lives as long as its newest refresh token. */
	if ((err = cm_pg_exec(
	         pg,
	         "UPDATE sessions SET expires_at = now() + make_interval(secs => $2::bigint) "
	         "WHERE id = $1",
	         2, (const char *[]){session_id, ttl}, NULL)) != CM_OK)
		goto fail;
	return cm_pg_commit(pg);
fail:
	cm_pg_result_free(r);
	cm_pg_rollback(pg);
	return err;
}

/* Runs an UPDATE ... RETURNING id::text; the id into revoked, "" when no row changed. */
static cm_err
revoke(cm_pg *pg, const char *sql, int n, const char *const *p, char revoked[37])
{
	cm_pg_result *r = NULL;
	cm_err        err;

	revoked[0] = '\0';
	if ((err = cm_pg_exec(pg, sql, n, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 1)
		cm_strlcpy(revoked, cm_pg_get(r, 0, 0), 37);
	cm_pg_result_free(r);
	return CM_OK;
}

cm_err
auth_store_revoke_by_refresh(cm_pg *pg, const char *refresh_hash, char revoked[37])
{
	const char *p[1] = {refresh_hash};

	return revoke(pg,
	              "UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout' "
	              "WHERE revoked_at IS NULL AND id = (SELECT session_id FROM "
	              "refresh_tokens WHERE token_hash = $1) RETURNING id::text",
	              1, p, revoked);
}

cm_err
auth_store_revoke_session(cm_pg *pg, const char *session_id, const char *user_id, char revoked[37])
{
	const char *p[2] = {session_id, user_id};

	revoked[0] = '\0';
	if (!cm_uuid_valid(session_id) || !cm_uuid_valid(user_id))
		return CM_OK;
	return revoke(pg,
	              "UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout' "
	              "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id::text",
	              2, p, revoked);
}

cm_err
auth_store_session_user(cm_pg *pg, const char *session_id, const char *user_id, auth_user *out)
{
	const char *p[2] = {session_id, user_id};
	cm_err      err;

	if (!cm_uuid_valid(session_id) || !cm_uuid_valid(user_id))
		return CM_EAUTH;
	err = one_user(
	    pg,
	    "SELECT u.id::text, u.email, u.name, "
	    "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '' "
	    "FROM sessions s JOIN users u ON u.id = s.user_id "
	    "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()",
	    2, p, out);
	return err == CM_ENOTFOUND ? CM_EAUTH : err;
}

/* Appends "{a,b,...}" items: UUIDs only (checked by the caller), so nothing needs quoting. */
static cm_err
uuid_array_add(cm_buf *b, const char *id)
{
	cm_err err = b->len > 1 ? cm_buf_append(b, ",", 1) : CM_OK;

	return err != CM_OK ? err : cm_buf_appends(b, id);
}

cm_err
auth_store_session_users(cm_pg *pg, const char *const *session_ids, const char *const *user_ids,
                         size_t n, bool *live, auth_user *out)
{
	cm_buf        sids, uids;
	size_t       *at = calloc(n + 1, sizeof(*at)); /* the k-th pair asked is pair at[k] */
	size_t        k = 0;
	cm_pg_result *r = NULL;
	cm_err        err = CM_ENOMEM;

	memset(live, 0, n * sizeof(*live));
	cm_buf_init(&sids, 64 + n * 37);
	cm_buf_init(&uids, 64 + n * 37);
	if (at == NULL || cm_buf_append(&sids, "{", 1) != CM_OK ||
	    cm_buf_append(&uids, "{", 1) != CM_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!cm_uuid_valid(session_ids[i]) || !cm_uuid_valid(user_ids[i]))
			continue;
		if (uuid_array_add(&sids, session_ids[i]) != CM_OK ||
		    uuid_array_add(&uids, user_ids[i]) != CM_OK)
			goto out;
		at[k++] = i;
	}
	if (k == 0) {
		err = CM_OK;
		goto out;
	}
	if (cm_buf_append(&sids, "}", 2) != CM_OK || cm_buf_append(&uids, "}", 2) != CM_OK)
		goto out;
	{
		const char *p[2] = {sids.data, uids.data};

		err = cm_pg_exec(
		    pg,
		    "SELECT k.i, u.id::text, u.email, u.name, "
		    "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
		    "FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(sid, uid, i) "
		    "JOIN sessions s ON s.id = k.sid AND s.user_id = k.uid "
		    "JOIN users u ON u.id = s.user_id "
		    "WHERE s.revoked_at IS NULL AND s.expires_at > now()",
		    2, p, &r);
	}
	if (err != CM_OK)
		goto out;
	for (int row = 0; row < cm_pg_nrows(r); row++) {
		long       ord = strtol(cm_pg_get(r, row, 0), NULL, 10);
		auth_user *u;

		if (ord < 1 || (size_t)ord > k)
			continue;
		u = &out[at[ord - 1]];
		cm_strlcpy(u->id, cm_pg_get(r, row, 1), sizeof(u->id));
		cm_strlcpy(u->email, cm_pg_get(r, row, 2), sizeof(u->email));
		cm_strlcpy(u->name, cm_pg_get(r, row, 3), sizeof(u->name));
		cm_strlcpy(u->created_at, cm_pg_get(r, row, 4), sizeof(u->created_at));
		u->password_hash[0] = '\0';
		live[at[ord - 1]] = true;
	}
	cm_pg_result_free(r);
out:
	cm_buf_fini(&sids);
	cm_buf_fini(&uids);
	free(at);
	return err;
}
