/*
 * server.h - svc-auth's shared state, per-worker state and method table.
 *
 * auth_app is built once in main.c and read-only afterwards (config, signing key); the throttle
 * table has its own lock. Each RPC worker gets an auth_worker with its own PostgreSQL and Redis
 * connections (cm_rpc_server_config.worker_init).
 */
#ifndef AUTH_SERVER_H
#define AUTH_SERVER_H

#include <stddef.h>

#include "cm/jwt.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "cm/rpc.h"
#include "config.h"
#include "throttle.h"

typedef struct cm_metrics cm_metrics;

typedef struct auth_app {
	auth_config    cfg;
	cm_jwt_key    *key;
	auth_throttle *throttle;
	cm_metrics    *metrics;
} auth_app;

typedef struct auth_worker {
	const auth_app *app;
	cm_pg          *pg;
	cm_redis       *redis;
} auth_worker;

extern const cm_rpc_method auth_methods[];
extern const size_t        auth_methods_count;

/* worker_init / worker_fini for cm_rpc_server_config; arg is the auth_app. */
void *auth_worker_init(void *arg, int index);
void auth_worker_fini(void *arg, void *state);

/* Schema and legacy account, run once at start with its own connection. */
CM_MUSTCHECK cm_err auth_prepare_database(const auth_app *app, cm_pg *pg);

#endif
