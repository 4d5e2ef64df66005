/*
 * config.c - svc-auth's config table; defaults fit the local stack (docs/architecture.md).
 */
#include "cm/config.h"
#include "config.h"

#define TABLE(c)                                                                                   \
	{                                                                                          \
		{"LOG_LEVEL", CM_CFG_STR, &(c)->log_level, "info", 0, 0, 0, "debug|info|warn|error"}, \
		{"DATABASE_URL", CM_CFG_STR, &(c)->database_url,                                   \
		    "host=127.0.0.1 port=5432 dbname=postgres user=postgres", CM_CFG_SECRET, 0, 0, \
		    "libpq connection string"},                                                    \
		{"REDIS_HOST", CM_CFG_STR, &(c)->redis_host, "127.0.0.1", 0, 0, 0, "empty: no Redis"}, \
		{"REDIS_PORT", CM_CFG_INT, &(c)->redis_port, "6379", 0, 1, 65535, ""},              \
		{"JWT_SECRET", CM_CFG_STR, &(c)->jwt_secret, NULL, CM_CFG_SECRET, 0, 0,             \
		    "HS256 secret, >= 32 bytes"},                                                  \
		{"JWT_PRIVATE_KEY_FILE", CM_CFG_STR, &(c)->jwt_private_key_file, NULL, 0, 0, 0,     \
		    "RS256 private key (PEM)"},                                                    \
		{"JWT_PUBLIC_KEY_FILE", CM_CFG_STR, &(c)->jwt_public_key_file, NULL, 0, 0, 0,       \
		    "RS256 public key (PEM)"},                                                     \
		{"AUTH_RPC_URL", CM_CFG_STR, &(c)->rpc_url, "tcp://127.0.0.1:7101", 0, 0, 0, ""},   \
		{"AUTH_ADMIN_ADDR", CM_CFG_STR, &(c)->admin_addr, "127.0.0.1:9101", 0, 0, 0, ""},   \
		{"AUTH_WORKERS", CM_CFG_INT, &(c)->workers, "4", 0, 1, 256, "RPC worker threads"},  \
		{"AUTH_ACCESS_TTL_S", CM_CFG_INT, &(c)->access_ttl_s, "900", 0, 30, 86400, ""},     \
		{"AUTH_REFRESH_TTL_S", CM_CFG_INT, &(c)->refresh_ttl_s, "2592000", 0, 60, 31536000, ""}, \
		{"LOGIN_USERNAME", CM_CFG_STR, &(c)->login_username, "vsbec", 0, 0, 0,              \
		    "legacy shared account (created when absent)"},                                \
		{"LOGIN_PASSWORD", CM_CFG_STR, &(c)->login_password, "vsbec", CM_CFG_SECRET, 0, 0, ""}, \
		{"AUTH_PWHASH_OPSLIMIT", CM_CFG_INT, &(c)->pwhash_opslimit, "2", 0, 1, 64, "Argon2id passes"}, \
		{"AUTH_PWHASH_MEMLIMIT_KIB", CM_CFG_INT, &(c)->pwhash_memlimit_kib, "65536", 0, 8, 4194304, \
		    "Argon2id memory"},                                                            \
		{"AUTH_THROTTLE_ACCOUNT_MAX", CM_CFG_INT, &(c)->throttle_account_max, "5", 0, 1, 1000000, \
		    "failed logins per account per window"},                                       \
		{"AUTH_THROTTLE_ADDR_MAX", CM_CFG_INT, &(c)->throttle_addr_max, "30", 0, 1, 1000000, \
		    "failed logins per client address per window"},                                \
		{"AUTH_THROTTLE_WINDOW_S", CM_CFG_INT, &(c)->throttle_window_s, "900", 0, 1, 86400, ""}, \
	}

cm_err
auth_config_load(auth_config *c, char *errbuf, size_t errlen)
{
	cm_cfg_entry t[] = TABLE(c);

	return cm_config_load(t, sizeof(t) / sizeof(t[0]), errbuf, errlen);
}

void
auth_config_log(auth_config *c)
{
	cm_cfg_entry t[] = TABLE(c);

	cm_config_log(t, sizeof(t) / sizeof(t[0]));
}
