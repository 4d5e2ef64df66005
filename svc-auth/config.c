/*
 * config.c - svc-auth's own config table; defaults fit the local stack (docs/architecture.md).
 * The common keys (DATABASE_URL, REDIS_*, AUTH_RPC_URL, ...) are the skeleton's (cm/service.h).
 */
#include "config.h"

size_t
auth_config_table(void *config, cm_cfg_entry *out, size_t cap)
{
	auth_config *c = config;
	/* One entry per line reads better than what the formatter makes of this table. */
	/* clang-format off */
	const cm_cfg_entry t[] = {
		{"JWT_SECRET", CM_CFG_STR, &c->jwt_secret, NULL, CM_CFG_SECRET, 0, 0,
		    "HS256 secret, >= 32 bytes"},
		{"JWT_PRIVATE_KEY_FILE", CM_CFG_STR, &c->jwt_private_key_file, NULL, 0, 0, 0,
		    "RS256 private key (PEM)"},
		{"JWT_PUBLIC_KEY_FILE", CM_CFG_STR, &c->jwt_public_key_file, NULL, 0, 0, 0,
		    "RS256 public key (PEM)"},
		{"AUTH_ACCESS_TTL_S", CM_CFG_INT, &c->access_ttl_s, "900", 0, 30, 86400, ""},
		{"AUTH_REFRESH_TTL_S", CM_CFG_INT, &c->refresh_ttl_s, "2592000", 0, 60, 31536000, ""},
		{"LOGIN_USERNAME", CM_CFG_STR, &c->login_username, "vsbec", 0, 0, 0,
		    "legacy shared account (created when absent)"},
		{"LOGIN_PASSWORD", CM_CFG_STR, &c->login_password, "vsbec", CM_CFG_SECRET, 0, 0, ""},
		{"AUTH_PWHASH_OPSLIMIT", CM_CFG_INT, &c->pwhash_opslimit, "2", 0, 1, 64,
		    "Argon2id passes"},
		{"AUTH_PWHASH_MEMLIMIT_KIB", CM_CFG_INT, &c->pwhash_memlimit_kib, "65536", 0, 8, 4194304,
		    "Argon2id memory"},
		{"AUTH_THROTTLE_ACCOUNT_MAX", CM_CFG_INT, &c->throttle_account_max, "5", 0, 1, 1000000,
		    "failed logins per account and client address per window"},
		{"AUTH_THROTTLE_ADDR_MAX", CM_CFG_INT, &c->throttle_addr_max, "30", 0, 1, 1000000,
		    "failed logins per client address per window"},
		{"AUTH_THROTTLE_ACCOUNT_CEILING", CM_CFG_INT, &c->throttle_account_ceiling, "100", 0, 1,
		    1000000, "failed logins per account per window from addresses it does not know"},
		{"AUTH_THROTTLE_WINDOW_S", CM_CFG_INT, &c->throttle_window_s, "900", 0, 1, 86400, ""},
	};
	/* clang-format on */

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}
