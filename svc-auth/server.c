/*
 * server.c - svc-auth's method table, per-worker connections, and database preparation.
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

extern const cm_migration auth_migrations[];
extern const size_t       auth_migrations_count;

const cm_rpc_method auth_methods[] = {
	{"auth.Register", &auth__register_request__descriptor, &auth__register_response__descriptor,
	    auth_h_register},
	{"auth.Login", &auth__login_request__descriptor, &auth__token_pair__descriptor, auth_h_login},
	{"auth.Refresh", &auth__refresh_request__descriptor, &auth__token_pair__descriptor,
	    auth_h_refresh},
	{"auth.Logout", &auth__logout_request__descriptor, &auth__logout_response__descriptor,
	    auth_h_logout},
	{"auth.Me", &auth__me_request__descriptor, &auth__user__descriptor, auth_h_me},
	{"auth.Verify", &auth__verify_request__descriptor, &auth__verify_response__descriptor,
	    auth_h_verify},
};
const size_t auth_methods_count = sizeof(auth_methods) / sizeof(auth_methods[0]);

void *
auth_worker_init(void *arg, int index)
{
	const auth_app *app = arg;
	auth_worker    *w   = calloc(1, sizeof(*w));

	(void) index;
	if (w == NULL)
		abort(); /* start-up allocation: nothing sensible to do without it */
	w->app = app;
	if (cm_pg_open(&w->pg, app->cfg.database_url, "auth") != CM_OK ||
	    cm_redis_open(&w->redis, app->cfg.redis_host, (int) app->cfg.redis_port, 0) != CM_OK)
		abort();
	return w;
}

void
auth_worker_fini(void *arg, void *state)
{
	auth_worker *w = state;

	(void) arg;
	if (w == NULL)
		return;
	cm_pg_close(w->pg);
	cm_redis_close(w->redis);
	free(w);
}

cm_err
auth_prepare_database(const auth_app *app, cm_pg *pg)
{
	const auth_config *c = &app->cfg;
	char               email[300], hash[AUTH_HASH_MAX];
	auth_user          u;
	bool               created;
	cm_err             err;

	if ((err = cm_pg_migrate_up(pg, "auth", auth_migrations, auth_migrations_count)) != CM_OK)
		return err;
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
		*p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	if ((err = auth_password_hash(c->login_password != NULL ? c->login_password : "",
	         c->pwhash_opslimit, c->pwhash_memlimit_kib, hash)) != CM_OK)
		return err;
	err = auth_store_user_seed(pg, email, c->login_username, hash, &created);
	cm_wipe(hash, sizeof(hash));
	if (err == CM_OK && created)
		cm_info("AUTH-LEGACY-USER", "created the legacy account '%s'", c->login_username);
	return err;
}
