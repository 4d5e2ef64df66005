/*
 * config.h - svc-auth's configuration (env AUTH_*, LOGIN_*, and the shared DATABASE_URL,
 * REDIS_*, JWT_*, LOG_LEVEL). Loaded once at start; read-only afterwards, shared by all workers.
 */
#ifndef AUTH_CONFIG_H
#define AUTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

typedef struct auth_config {
	const char *log_level;
	const char *database_url;
	const char *redis_host;
	int64_t     redis_port;
	const char *jwt_secret;
	const char *jwt_private_key_file;
	const char *jwt_public_key_file;
	const char *rpc_url;
	const char *admin_addr;
	int64_t     workers;
	int64_t     access_ttl_s;
	int64_t     refresh_ttl_s;
	const char *login_username;
	const char *login_password;
	int64_t     pwhash_opslimit;
	int64_t     pwhash_memlimit_kib;
	int64_t     throttle_account_max;
	int64_t     throttle_addr_max;
	int64_t     throttle_window_s;
} auth_config;

CM_MUSTCHECK cm_err auth_config_load(auth_config *c, char *errbuf, size_t errlen);
void auth_config_log(auth_config *c);

#endif
