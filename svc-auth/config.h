/*
 * config.h - svc-auth's own configuration (env JWT_*, AUTH_* and LOGIN_*), beside the common keys
 * of the service skeleton (cm/service.h). Loaded once at start; read-only afterwards, shared by
 * all workers.
 */
#ifndef AUTH_CONFIG_H
#define AUTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"
#include "cm/err.h"

typedef struct auth_config {
	const char *jwt_secret;
	const char *jwt_private_key_file;
	const char *jwt_public_key_file;
	int64_t     access_ttl_s;
	int64_t     refresh_ttl_s;
	const char *login_username;
	const char *login_password;
	int64_t     pwhash_opslimit;
	int64_t     pwhash_memlimit_kib;
	int64_t     throttle_account_max;
	int64_t     throttle_addr_max;
	int64_t     throttle_account_ceiling;
	int64_t     throttle_window_s;
} auth_config;

/* The table of svc-auth's own keys, targets in *config (an auth_config); returns how many
 * entries were written to out (at most cap). For cm_service_def.config_table. */
size_t auth_config_table(void *config, cm_cfg_entry *out, size_t cap);

#endif
