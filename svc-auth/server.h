/*
 * server.h - svc-auth's definition for the service skeleton (cm/service.h), its shared state and
 * per-worker state.
 *
 * auth_app is built once by auth_app_init (config, signing key, throttle table, metrics) and is
 * read-only afterwards; the throttle table has its own lock. Each RPC worker gets an auth_worker
 * around the PostgreSQL and Redis connections the skeleton opened for it (borrowed, not owned).
 * Tests build both themselves and call the handlers directly.
 */
#ifndef AUTH_SERVER_H
#define AUTH_SERVER_H

#include <stddef.h>

#include "cm/jwt.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "cm/service.h"
#include "config.h"
#include "revoke.h"
#include "store.h"
#include "throttle.h"

typedef struct cm_metrics cm_metrics;

typedef struct auth_app {
	auth_config    cfg;
	cm_jwt_key    *key;
	auth_throttle *throttle;
	auth_revoker  *revoker;
	cm_metrics    *metrics;
	const char    *redis_host; /* the common keys, for the revoker's own connection */
	int64_t        redis_port;
} auth_app;

typedef struct auth_worker {
	const auth_app *app;
	cm_pg          *pg;
	cm_redis       *redis;
	/* What a batch's prefetch found (auth_prefetch_sessions): its calls' session and user ids
	 * (pointing into the batch, valid while it runs), whether each session is live, and its
	 * user. Emptied after the batch. */
	const char **pre_sids, **pre_uids;
	bool        *pre_live;
	auth_user   *pre_users;
	size_t       npre, maxpre;
} auth_worker;

/* The service: schema "auth", methods auth.Register/Login/Refresh/Logout/Me/Verify. */
extern const cm_service_def auth_service_def;

extern const cm_rpc_method auth_methods[];
extern const size_t        auth_methods_count;
extern const cm_migration  auth_migrations[];
extern const size_t        auth_migrations_count;

/* app_init / app_fini on an auth_app: loads the signing key (JWT_SECRET or the RS256 key files),
 * sets the password hashing cost, builds the throttle table and the revoker. */
CM_MUSTCHECK cm_err auth_app_init(const cm_service_env *env, void *app);
void                auth_app_fini(void *app);

/* start / stop: the revoker's retry thread (revoke.h). */
CM_MUSTCHECK cm_err auth_start(void *app);
void                auth_stop(void *app);

/* worker_init / worker_fini: an auth_worker borrowing conns' connections. */
CM_MUSTCHECK cm_err auth_worker_init(void *app, const cm_service_conns *conns, void **state);
void                auth_worker_fini(void *app, void *state);

/* The legacy shared account (LOGIN_USERNAME) becomes a user, once; run after the migrations.
 * Replicas racing here are fine. */
CM_MUSTCHECK cm_err auth_seed_legacy_user(void *app, cm_pg *pg);

#endif
