/*
 * handlers.c - svc-auth's RPCs: register, login, refresh (rotation with reuse detection),
 * logout, me, verify. Every revocation is also published for the edges (revoke.h).
 *
 * Login never says which of e-mail and password was wrong, and takes about the same time either
 * way (a dummy Argon2id verification for unknown accounts). Passwords and tokens are never
 * logged. A failed dependency is CM_EUNAVAIL (the edge answers 503), never a wrong "bad
 * credentials".
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/util.h"
#include "handlers.h"
#include "password.h"
#include "proto/auth.pb-c.h"
#include "server.h"
#include "store.h"
#include "token.h"

#define BAD_LOGIN "Invalid credentials"

static auth_worker *
W(cm_rpc_ctx *ctx)
{
	return ctx->worker_state;
}

static void
count(cm_rpc_ctx *ctx, const char *name, const char *help, const char *labels)
{
	cm_counter_add(cm_metrics_counter(W(ctx)->app->metrics, name, help, labels), 1);
}

/* Maps a store error that the handler did not expect. PostgreSQL refusing the data itself
 * (class 22/23, e.g. a name that is not valid UTF-8) is the caller's input, not our failure. */
static cm_err
dependency(cm_rpc_ctx *ctx, cm_err err)
{
	if (err == CM_EUNAVAIL)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "database unavailable, try again");
	if (err == CM_EINVAL)
		return cm_rpc_fail(ctx, CM_EINVAL, "invalid input (text must be UTF-8)");
	return cm_rpc_fail(ctx, CM_EINTERNAL, "internal error");
}

bool
auth_email_valid(const char *e)
{
	const char *at = strchr(e, '@');
	size_t      n = strlen(e);

	if (n < 3 || n > CM_MAX_EMAIL || at == NULL || at == e || strchr(at + 1, '@') != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)e[i];
		if (c <= ' ' || c == 0x7f || c == '"' || c == '<' || c == '>' || c == ',' ||
		    c == ';')
			return false;
	}
	/* The domain needs a dot that is neither first nor last. */
	{
		const char *dot = strrchr(at + 1, '.');
		return dot != NULL && dot != at + 1 && dot[1] != '\0';
	}
}

static Auth__User *
user_msg(cm_rpc_ctx *ctx, const auth_user *u)
{
	Auth__User *m = cm_rpc_alloc(ctx, sizeof(*m));

	if (m == NULL)
		return NULL;
	auth__user__init(m);
	m->id = cm_rpc_strdup(ctx, u->id);
	m->email = cm_rpc_strdup(ctx, u->email);
	m->name = cm_rpc_strdup(ctx, u->name);
	m->created_at = cm_rpc_strdup(ctx, u->created_at);
	return m;
}

cm_err
auth_h_register(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Auth__RegisterRequest *rq = req;
	Auth__RegisterResponse      *out = resp;
	const auth_app              *app = W(ctx)->app;
	char                         email[CM_MAX_EMAIL + 1], hash[AUTH_HASH_MAX];
	auth_user                    u;
	size_t                       i;
	cm_err                       err;

	if (!auth_email_valid(rq->email))
		return cm_rpc_fail(ctx, CM_EINVAL, "a valid email is required");
	if (strlen(rq->password) < CM_MIN_PASSWORD)
		return cm_rpc_fail(ctx, CM_EINVAL, "password must be at least %d characters",
		                   CM_MIN_PASSWORD);
	if (strlen(rq->password) > CM_MAX_PASSWORD)
		return cm_rpc_fail(ctx, CM_EINVAL, "password is too long");
	if (strlen(rq->name) > CM_MAX_NAME)
		return cm_rpc_fail(ctx, CM_EINVAL, "name is too long");
	for (i = 0; rq->email[i] != '\0'; i++)
		email[i] = (char)tolower((unsigned char)rq->email[i]);
	email[i] = '\0';

	if ((err = auth_password_hash(rq->password, app->cfg.pwhash_opslimit,
	                              app->cfg.pwhash_memlimit_kib, hash)) != CM_OK)
		return cm_rpc_fail(ctx, CM_EUNAVAIL, "server busy, try again");
	err = auth_store_user_create(W(ctx)->pg, email, NULL, rq->name, hash, &u);
	cm_wipe(hash, sizeof(hash));
	if (err == CM_EEXIST)
		return cm_rpc_fail(ctx, CM_EEXIST, "email already registered");
	if (err != CM_OK)
		return dependency(ctx, err);
	if ((out->user = user_msg(ctx, &u)) == NULL)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "out of memory");
	count(ctx, "registrations_total", "Accounts created", "");
	cm_info("AUTH-REGISTER", "user %s registered", u.id);
	return CM_OK;
}

/* Issues a token pair for a (new or rotated) session. */
static cm_err
issue(cm_rpc_ctx *ctx, const char *user_id, const char *session_id, const char *refresh,
      Auth__TokenPair *out)
{
	const auth_app *app = W(ctx)->app;
	char           *access = NULL;

	if (auth_access_token(app->key, user_id, session_id, cm_now_ms() / 1000,
	                      app->cfg.access_ttl_s, &access) != CM_OK)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "cannot sign token");
	out->access_token = cm_rpc_strdup(ctx, access);
	free(access);
	out->refresh_token = cm_rpc_strdup(ctx, refresh);
	out->token_type = (char *)"Bearer";
	out->expires_in = app->cfg.access_ttl_s;
	out->refresh_expires_in = app->cfg.refresh_ttl_s;
	if (out->access_token == NULL || out->refresh_token == NULL)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "out of memory");
	return CM_OK;
}

cm_err
auth_h_login(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Auth__LoginRequest *rq = req;
	auth_worker              *w = W(ctx);
	const char               *login = rq->email[0] != '\0' ? rq->email : rq->username;
	char                      refresh[AUTH_REFRESH_LEN + 1], rhash[AUTH_HASH_HEX], sid[37];
	auth_user                 u;
	int64_t                   retry_s;
	cm_err                    err;
	bool                      ok;

	if (login[0] == '\0' || rq->password[0] == '\0' || strlen(login) > CM_MAX_EMAIL ||
	    strlen(rq->password) > CM_MAX_PASSWORD)
		return cm_rpc_fail(ctx, CM_EAUTH, BAD_LOGIN);
	if (auth_throttle_check(w->app->throttle, w->redis, login, ctx->client_addr, &retry_s) !=
	    CM_OK) {
		ctx->retry_after_s = (int32_t)retry_s;
		count(ctx, "logins_total", "Login attempts by outcome", "outcome=\"throttled\"");
		return cm_rpc_fail(ctx, CM_ELIMIT, "too many failed logins, try again later");
	}
	err = auth_store_user_by_login(w->pg, login, &u);
	if (err != CM_OK && err != CM_ENOTFOUND)
		return dependency(ctx, err);
	if (err == CM_ENOTFOUND) {
		auth_password_burn(rq->password);
		ok = false;
	} else {
		ok = auth_password_verify(u.password_hash, rq->password);
	}
	cm_wipe(u.password_hash, sizeof(u.password_hash));
	if (!ok) {
		auth_throttle_failed(w->app->throttle, w->redis, login, ctx->client_addr);
		count(ctx, "logins_total", "Login attempts by outcome", "outcome=\"failed\"");
		return cm_rpc_fail(ctx, CM_EAUTH, BAD_LOGIN);
	}
	auth_throttle_succeeded(w->app->throttle, w->redis, login, ctx->client_addr);
	/* Housekeeping on the user's own rows: sessions over for a day go (with their tokens). */
	if ((err = auth_store_sessions_prune(w->pg, u.id)) != CM_OK)
		cm_debug("AUTH-PRUNE", "could not prune old sessions: %s", cm_strerror(err));

	auth_refresh_new(refresh, rhash);
	err = auth_store_session_create(w->pg, u.id, w->app->cfg.refresh_ttl_s, rhash, sid);
	err = err == CM_OK ? issue(ctx, u.id, sid, refresh, resp) : dependency(ctx, err);
	cm_wipe(refresh, sizeof(refresh));
	if (err == CM_OK) {
		count(ctx, "logins_total", "Login attempts by outcome", "outcome=\"ok\"");
		cm_info("AUTH-LOGIN", "user %s logged in (session %s)", u.id, sid);
	}
	return err;
}

cm_err
auth_h_refresh(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Auth__RefreshRequest *rq = req;
	auth_worker                *w = W(ctx);
	char                        old_hash[AUTH_HASH_HEX], refresh[AUTH_REFRESH_LEN + 1];
	char                        new_hash[AUTH_HASH_HEX], uid[37], sid[37];
	bool                        reused;
	cm_err                      err;

	if (rq->refresh_token[0] == '\0' || strlen(rq->refresh_token) > CM_MAX_TOKEN)
		return cm_rpc_fail(ctx, CM_EAUTH, "invalid refresh token");
	auth_refresh_hash(rq->refresh_token, old_hash);
	auth_refresh_new(refresh, new_hash);
	err = auth_store_refresh_rotate(w->pg, old_hash, new_hash, w->app->cfg.refresh_ttl_s, uid,
	                                sid, &reused);
	if (err == CM_OK) {
		err = issue(ctx, uid, sid, refresh, resp);
	} else if (err == CM_EAUTH) {
		if (reused) {
			count(ctx, "refresh_reuse_total",
			      "Reused refresh tokens (sessions revoked)", "");
			cm_warn("AUTH-REFRESH-REUSE", "refresh token reused: session %s revoked",
			        sid);
			auth_revoker_publish(w->app->revoker, w->redis, sid);
		}
		err = cm_rpc_fail(ctx, CM_EAUTH, "invalid refresh token");
	} else {
		err = dependency(ctx, err);
	}
	cm_wipe(refresh, sizeof(refresh));
	return err;
}

cm_err
auth_h_logout(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	const Auth__LogoutRequest *rq = req;
	auth_worker               *w = W(ctx);
	char                       hash[AUTH_HASH_HEX], revoked[37] = "";
	cm_err                     err = CM_OK;

	(void)resp;
	/* The session named by the refresh token, or else the caller's own (proto/auth.proto). */
	if (rq->refresh_token[0] != '\0') {
		if (strlen(rq->refresh_token) <= CM_MAX_TOKEN) {
			auth_refresh_hash(rq->refresh_token, hash);
			err = auth_store_revoke_by_refresh(w->pg, hash, revoked);
		}
	} else if (ctx->session_id[0] != '\0') {
		err = auth_store_revoke_session(w->pg, ctx->session_id, ctx->subject, revoked);
	}
	if (err != CM_OK)
		return dependency(ctx, err);
	/* Its access tokens are refused at the edges from now on, not when they expire. */
	auth_revoker_publish(w->app->revoker, w->redis, revoked);
	return CM_OK;
}

/* Room for n more prefetched sessions; false when out of memory. */
static bool
prefetch_room(auth_worker *w, size_t n)
{
	size_t       cap = w->npre + n;
	const char **sids, **uids;
	bool        *live;
	auth_user   *users;

	if (cap <= w->maxpre)
		return true;
	if ((sids = realloc(w->pre_sids, cap * sizeof(*sids))) != NULL)
		w->pre_sids = sids;
	if ((uids = realloc(w->pre_uids, cap * sizeof(*uids))) != NULL)
		w->pre_uids = uids;
	if ((live = realloc(w->pre_live, cap * sizeof(*live))) != NULL)
		w->pre_live = live;
	if ((users = realloc(w->pre_users, cap * sizeof(*users))) != NULL)
		w->pre_users = users;
	if (sids == NULL || uids == NULL || live == NULL || users == NULL)
		return false;
	w->maxpre = cap;
	return true;
}

void
auth_prefetch_sessions(void *worker_state, const cm_rpc_ctx *calls, size_t n)
{
	auth_worker *w = worker_state;
	size_t       at = w->npre;

	if (n == 0) {
		w->npre = 0;
		return;
	}
	if (!prefetch_room(w, n))
		return; /* each call queries alone */
	for (size_t i = 0; i < n; i++) {
		w->pre_sids[at + i] = calls[i].session_id;
		w->pre_uids[at + i] = calls[i].subject;
	}
	/* On an error nothing is kept: each call then queries alone and reports it. */
	if (auth_store_session_users(w->pg, w->pre_sids + at, w->pre_uids + at, n, w->pre_live + at,
	                             w->pre_users + at) == CM_OK)
		w->npre = at + n;
}

/* What the batch's prefetch found for (session, user): NULL when it did not look. */
static const auth_user *
prefetched(const auth_worker *w, const char *session_id, const char *user_id, bool *live)
{
	for (size_t i = 0; i < w->npre; i++)
		if (strcmp(w->pre_sids[i], session_id) == 0 &&
		    strcmp(w->pre_uids[i], user_id) == 0) {
			*live = w->pre_live[i];
			return &w->pre_users[i];
		}
	return NULL;
}

/* The caller's user, when the session of the envelope is live (a revoked session ends here,
 * even while its access token has not expired). */
static cm_err
current_user(cm_rpc_ctx *ctx, auth_user *u)
{
	const auth_user *pre;
	bool             live = false;
	cm_err           err;

	if (ctx->subject[0] == '\0')
		return cm_rpc_fail(ctx, CM_EAUTH, "not authenticated");
	if ((pre = prefetched(W(ctx), ctx->session_id, ctx->subject, &live)) != NULL) {
		if (!live)
			return cm_rpc_fail(ctx, CM_EAUTH, "session expired or revoked");
		*u = *pre;
		return CM_OK;
	}
	err = auth_store_session_user(W(ctx)->pg, ctx->session_id, ctx->subject, u);
	if (err == CM_EAUTH)
		return cm_rpc_fail(ctx, CM_EAUTH, "session expired or revoked");
	if (err != CM_OK)
		return dependency(ctx, err);
	return CM_OK;
}

cm_err
auth_h_me(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	Auth__User *out = resp;
	auth_user   u;
	cm_err      err;

	(void)req;
	if ((err = current_user(ctx, &u)) != CM_OK)
		return err;
	out->id = cm_rpc_strdup(ctx, u.id);
	out->email = cm_rpc_strdup(ctx, u.email);
	out->name = cm_rpc_strdup(ctx, u.name);
	out->created_at = cm_rpc_strdup(ctx, u.created_at);
	return CM_OK;
}

cm_err
auth_h_verify(cm_rpc_ctx *ctx, const void *req, void *resp)
{
	Auth__VerifyResponse *out = resp;
	auth_user             u;
	cm_err                err;

	(void)req;
	if ((err = current_user(ctx, &u)) != CM_OK)
		return err;
	out->valid = 1;
	if ((out->user = user_msg(ctx, &u)) == NULL)
		return cm_rpc_fail(ctx, CM_EINTERNAL, "out of memory");
	return CM_OK;
}
