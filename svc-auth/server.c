/*
 * server.c - svc-auth's definition for the service skeleton: method table, app state (signing
 * key, throttle table, revoker), its background thread, per-worker state, and the legacy account
 * seeded after the migrations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/util.h"
#include "handlers.h"
#include "password.h"
#include "proto/auth.pb-c.h"
#include "server.h"
#include "store.h"

const cm_rpc_method auth_methods[] = {
    {"auth.Register", &auth__register_request__descriptor, &auth__register_response__descriptor,
     auth_h_register, NULL},
    {"auth.Login", &auth__login_request__descriptor, &auth__token_pair__descriptor, auth_h_login,
     NULL},
    {"auth.Refresh", &auth__refresh_request__descriptor, &auth__token_pair__descriptor,
     auth_h_refresh, NULL},
    {"auth.Logout", &auth__logout_request__descriptor, &auth__logout_response__descriptor,
     auth_h_logout, NULL},
    {"auth.Me", &auth__me_request__descriptor, &auth__user__descriptor, auth_h_me,
     auth_prefetch_sessions},
    {"auth.Verify", &auth__verify_request__descriptor, &auth__verify_response__descriptor,
     auth_h_verify, auth_prefetch_sessions},
};
const size_t auth_methods_count = sizeof(auth_methods) / sizeof(auth_methods[0]);

/* The signing key: RS256 from the key files when set, else HS256 from JWT_SECRET. */
static cm_err
load_key(auth_app *app)
{
	const auth_config *c = &app->cfg;
	char              *priv = NULL, *pub = NULL;
	cm_err             err = CM_EINVAL;

	if (c->jwt_private_key_file != NULL && c->jwt_private_key_file[0] != '\0') {
		if ((priv = cm_read_file(c->jwt_private_key_file, 65536)) != NULL &&
		    (pub =
		         cm_read_file(c->jwt_public_key_file != NULL ? c->jwt_public_key_file : "",
		                      65536)) != NULL)
			err = cm_jwt_key_rs256(&app->key, priv, pub);
		if (err != CM_OK)
			cm_error("AUTH-KEY", "cannot load the RS256 key pair "
			                     "(JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE)");
	} else if (c->jwt_secret != NULL && strlen(c->jwt_secret) >= 32) {
		err = cm_jwt_key_hs256(&app->key, c->jwt_secret, strlen(c->jwt_secret));
	} else {
		cm_error("AUTH-KEY", "set JWT_SECRET (at least 32 bytes) or the RS256 key files");
	}
	if (priv != NULL) {
		cm_wipe(priv, strlen(priv));
		free(priv);
	}
	free(pub);
	return err;
}

cm_err
auth_app_init(const cm_service_env *env, void *arg)
{
	auth_app *app = arg;
	cm_err    err;

	app->cfg = *(const auth_config *)env->config;
	app->metrics = env->metrics;
	app->redis_host = env->common->redis_host;
	app->redis_port = env->common->redis_port;
	if ((err = load_key(app)) != CM_OK)
		goto out;
	err = CM_ENOMEM;
	if ((app->throttle = auth_throttle_alloc((auth_throttle_limits){
	         app->cfg.throttle_account_max, app->cfg.throttle_addr_max,
	         app->cfg.throttle_account_ceiling, app->cfg.throttle_window_s})) == NULL)
		goto out;
	/* An id matters while a token of its session can pass: the access lifetime, the edge's
	 * 30 s leeway, and a margin for clocks. */
	if ((err = auth_revoker_alloc(&app->revoker, (app->cfg.access_ttl_s + 60) * 1000)) != CM_OK)
		goto out;
	err = auth_password_init(app->cfg.pwhash_opslimit, app->cfg.pwhash_memlimit_kib);
out:
	if (err != CM_OK)
		auth_app_fini(app);
	return err;
}

void
auth_app_fini(void *arg)
{
	auth_app *app = arg;

	auth_revoker_free(app->revoker);
	auth_throttle_free(app->throttle);
	cm_jwt_key_free(app->key);
	app->revoker = NULL;
	app->throttle = NULL;
	app->key = NULL;
}

cm_err
auth_start(void *arg)
{
	auth_app *app = arg;

	return auth_revoker_start(app->revoker, app->redis_host, app->redis_port);
}

void
auth_stop(void *arg)
{
	auth_revoker_stop(((auth_app *)arg)->revoker);
}

cm_err
auth_worker_init(void *app, const cm_service_conns *conns, void **state)
{
	auth_worker *w = calloc(1, sizeof(*w));

	*state = w;
	if (w == NULL)
		return CM_ENOMEM;
	w->app = app;
	w->pg = conns->pg;
	w->redis = conns->redis;
	return CM_OK;
}

void
auth_worker_fini(void *app, void *state)
{
	auth_worker *w = state;

	(void)app;
	if (w == NULL)
		return;
	free(w->pre_sids);
	free(w->pre_uids);
	free(w->pre_live);
	free(w->pre_users);
	free(w);
}

const cm_service_def auth_service_def = {
    .name = "auth",
    .schema = "auth",
    .rpc_url_default = "tcp://127.0.0.1:7101",
    .admin_addr_default = "127.0.0.1:9101",
    .workers_default = "4",
    .config_size = sizeof(auth_config),
    .config_table = auth_config_table,
    .migrations = auth_migrations,
    .n_migrations = &auth_migrations_count,
    .methods = auth_methods,
    .n_methods = &auth_methods_count,
    .app_size = sizeof(auth_app),
    .app_init = auth_app_init,
    .app_fini = auth_app_fini,
    .prepare = auth_seed_legacy_user,
    .worker_init = auth_worker_init,
    .worker_fini = auth_worker_fini,
    .start = auth_start,
    .stop = auth_stop,
};

cm_err
auth_seed_legacy_user(void *arg, cm_pg *pg)
{
	const auth_app    *app = arg;
	const auth_config *c = &app->cfg;
	char               email[300], hash[AUTH_HASH_MAX];
	auth_user          u;
	bool               created;
	cm_err             err;

	if (c->login_username == NULL || c->login_username[0] == '\0')
		return CM_OK;
	/* The old shared account becomes a user, once; replicas racing here are fine. */
	err = auth_store_user_by_login(pg, c->login_username, &u);
	cm_wipe(u.password_hash, sizeof(u.password_hash));
	if (err == CM_OK)
		return CM_OK;
	if (strchr(c->login_username, '@') != NULL)
		cm_strlcpy(email, c->login_username, sizeof(email));
	else
		snprintf(email, sizeof(email), "%s@local", c->login_username);
	for (char *p = email; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	if ((err = auth_password_hash(c->login_password != NULL ? c->login_password : "",
	                              c->pwhash_opslimit, c->pwhash_memlimit_kib, hash)) != CM_OK)
		return err;
	err = auth_store_user_seed(pg, email, c->login_username, hash, &created);
	cm_wipe(hash, sizeof(hash));
	if (err == CM_OK && created)
		cm_info("AUTH-LEGACY-USER", "created the legacy account '%s'", c->login_username);
	return err;
}
