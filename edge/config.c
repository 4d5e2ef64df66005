/*
 * config.c - the edge's config table. Defaults are for the local stack (docs/architecture.md).
 * The same table reads the environment at start and EDGE_CONFIG_FILE over it (at start and on
 * SIGHUP: reload.c).
 */
#include <stdio.h>
#include <string.h>

#include "cm/config.h"
#include "cm/limits.h"
#include "config.h"

#define TABLE(c)                                                                                   \
	{                                                                                          \
		{"LOG_LEVEL", CM_CFG_STR, &(c)->log_level,        "info", 0,                       \
		 0,           0,          "debug|info|warn|error"},                                \
		    {"EDGE_ADDR", CM_CFG_STR, &(c)->addr, "127.0.0.1:8080",                        \
		     0,           0,          0,          "host:port to serve"},                   \
		    {"EDGE_AUTH_URLS",                                                             \
		     CM_CFG_STR,                                                                   \
		     &(c)->auth_urls,                                                              \
		     "tcp://127.0.0.1:7101",                                                       \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-auth replicas, comma-separated"},                                        \
		    {"EDGE_FRONTEND_URL",                                                          \
		     CM_CFG_STR,                                                                   \
		     &(c)->frontend_url,                                                           \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "the web app's HTTP server for non-API paths (empty: 404)"},                  \
		    {"EDGE_LEGACY_BACKEND_URL",                                                    \
		     CM_CFG_STR,                                                                   \
		     &(c)->legacy_backend_url,                                                     \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "the old backend legacy routes migrate from, http://host:port (empty: "       \
		     "none)"},                                                                     \
		    {"EDGE_LEGACY_SHARE",                                                          \
		     CM_CFG_INT,                                                                   \
		     &(c)->legacy_share,                                                           \
		     "0",                                                                          \
		     0,                                                                            \
		     0,                                                                            \
		     100,                                                                          \
		     "percent of users whose legacy calls go to the old backend (sticky per "      \
		     "user)"},                                                                     \
		    {"EDGE_LEGACY_ROUTES",                                                         \
		     CM_CFG_STR,                                                                   \
		     &(c)->legacy_routes,                                                          \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "legacy route names taking part, comma-separated (empty: all but "            \
		     "login/logout)"},                                                             \
		    {"EDGE_LEGACY_USERS",                                                          \
		     CM_CFG_STR,                                                                   \
		     &(c)->legacy_users,                                                           \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "user ids always sent to the old backend, comma-separated"},                  \
		    {"EDGE_LEGACY_FALLBACK",                                                       \
		     CM_CFG_BOOL,                                                                  \
		     &(c)->legacy_fallback,                                                        \
		     "0",                                                                          \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "1: the new service unreachable, the old backend answers instead"},           \
		    {"EDGE_PDF_URLS",                                                              \
		     CM_CFG_STR,                                                                   \
		     &(c)->pdf_urls,                                                               \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-pdf replicas, comma-separated (empty: documents off)"},                  \
		    {"EDGE_QGEN_URLS",                                                             \
		     CM_CFG_STR,                                                                   \
		     &(c)->qgen_urls,                                                              \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-qgen replicas, comma-separated (empty: question generation off)"},       \
		    {"EDGE_QGEN_EVENTS_URLS",                                                      \
		     CM_CFG_STR,                                                                   \
		     &(c)->qgen_events_urls,                                                       \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-qgen event publishers, comma-separated (empty: no live progress)"},      \
		    {"EDGE_GENERATE_WAIT_MS",                                                      \
		     CM_CFG_INT,                                                                   \
		     &(c)->generate_wait_ms,                                                       \
		     "300000",                                                                     \
		     0,                                                                            \
		     1000,                                                                         \
		     3600000,                                                                      \
		     "legacy generate-questions: longest wait for the job"},                       \
		    {"EDGE_EVAL_URLS",                                                             \
		     CM_CFG_STR,                                                                   \
		     &(c)->eval_urls,                                                              \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-eval replicas, comma-separated (empty: grading off)"},                   \
		    {"EDGE_EVAL_EVENTS_URLS",                                                      \
		     CM_CFG_STR,                                                                   \
		     &(c)->eval_events_urls,                                                       \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-eval event publishers, comma-separated"},                                \
		    {"EDGE_EVALUATE_WAIT_MS",                                                      \
		     CM_CFG_INT,                                                                   \
		     &(c)->evaluate_wait_ms,                                                       \
		     "300000",                                                                     \
		     0,                                                                            \
		     1000,                                                                         \
		     3600000,                                                                      \
		     "legacy evaluate-quiz/answer: longest wait for the grades"},                  \
		    {"EDGE_CHAT_URLS",                                                             \
		     CM_CFG_STR,                                                                   \
		     &(c)->chat_urls,                                                              \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-chat replicas, comma-separated (empty: chat off)"},                      \
		    {"EDGE_CHAT_EVENTS_URLS",                                                      \
		     CM_CFG_STR,                                                                   \
		     &(c)->chat_events_urls,                                                       \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "svc-chat event publishers, comma-separated (streamed answers)"},             \
		    {"EDGE_CHAT_TIMEOUT_MS",                                                       \
		     CM_CFG_INT,                                                                   \
		     &(c)->chat_timeout_ms,                                                        \
		     "120000",                                                                     \
		     0,                                                                            \
		     1000,                                                                         \
		     3600000,                                                                      \
		     "deadline of one chat answer"},                                               \
		    {"JWT_SECRET",                                                                 \
		     CM_CFG_STR,                                                                   \
		     &(c)->jwt_secret,                                                             \
		     NULL,                                                                         \
		     CM_CFG_SECRET,                                                                \
		     0,                                                                            \
		     0,                                                                            \
		     "HS256 secret (>= 32 bytes)"},                                                \
		    {"JWT_PUBLIC_KEY_FILE",                                                        \
		     CM_CFG_STR,                                                                   \
		     &(c)->jwt_public_key_file,                                                    \
		     NULL,                                                                         \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "RS256 public key (PEM); used instead of JWT_SECRET when set"},               \
		    {"EDGE_CORS_ORIGINS",                                                          \
		     CM_CFG_STR,                                                                   \
		     &(c)->cors_origins,                                                           \
		     "http://localhost:3000",                                                      \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "allowed origins, comma-separated"},                                          \
		    {"EDGE_COOKIE_SECURE",                                                         \
		     CM_CFG_BOOL,                                                                  \
		     &(c)->cookie_secure,                                                          \
		     "0",                                                                          \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "mark the session cookie Secure (behind TLS)"},                               \
		    {"EDGE_JSON_BODY_MAX",                                                         \
		     CM_CFG_INT,                                                                   \
		     &(c)->json_body_max,                                                          \
		     CM_LIMIT_STR(CM_MAX_JSON_BODY),                                               \
		     0,                                                                            \
		     16,                                                                           \
		     16777216,                                                                     \
		     "largest JSON body"},                                                         \
		    {"EDGE_UPLOAD_MAX",                                                            \
		     CM_CFG_INT,                                                                   \
		     &(c)->upload_max,                                                             \
		     CM_LIMIT_STR(CM_MAX_UPLOAD_DEFAULT),                                          \
		     0,                                                                            \
		     1024,                                                                         \
		     1073741824,                                                                   \
		     "largest upload"},                                                            \
		    {"EDGE_TRUSTED_PROXIES",                                                       \
		     CM_CFG_STR,                                                                   \
		     &(c)->trusted_proxies,                                                        \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "CIDRs of proxies whose X-Forwarded-For is believed"},                        \
		    {"EDGE_THREADS",                                                               \
		     CM_CFG_INT,                                                                   \
		     &(c)->threads,                                                                \
		     "0",                                                                          \
		     0,                                                                            \
		     0,                                                                            \
		     256,                                                                          \
		     "HTTP event-loop threads (0 = one per core)"},                                \
		    {"EDGE_MAX_CONNECTIONS",                                                       \
		     CM_CFG_INT,                                                                   \
		     &(c)->max_connections,                                                        \
		     "10000",                                                                      \
		     0,                                                                            \
		     1,                                                                            \
		     1000000,                                                                      \
		     "open client connections"},                                                   \
		    {"EDGE_MAX_CONNECTIONS_PER_ADDR",                                              \
		     CM_CFG_INT,                                                                   \
		     &(c)->max_connections_per_addr,                                               \
		     "256",                                                                        \
		     0,                                                                            \
		     0,                                                                            \
		     1000000,                                                                      \
		     "open connections per client address (0 = no cap)"},                          \
		    {"EDGE_IDLE_TIMEOUT_S",                                                        \
		     CM_CFG_INT,                                                                   \
		     &(c)->idle_timeout_s,                                                         \
		     "15",                                                                         \
		     0,                                                                            \
		     1,                                                                            \
		     3600,                                                                         \
		     "seconds without progress before a connection is closed"},                    \
		    {"EDGE_HEADER_MAX",                                                            \
		     CM_CFG_INT,                                                                   \
		     &(c)->header_max,                                                             \
		     "8192",                                                                       \
		     0,                                                                            \
		     4096,                                                                         \
		     1048576,                                                                      \
		     "bytes of request line and headers (431 beyond)"},                            \
		    {"EDGE_BODY_BUDGET",                                                           \
		     CM_CFG_INT,                                                                   \
		     &(c)->body_budget,                                                            \
		     "268435456",                                                                  \
		     0,                                                                            \
		     65536,                                                                        \
		     17179869184,                                                                  \
		     "bytes of request bodies held at once (503 beyond)"},                         \
		    {"EDGE_ACCESS_LOG_FLUSH_MS",                                                   \
		     CM_CFG_INT,                                                                   \
		     &(c)->access_log_flush_ms,                                                    \
		     "100",                                                                        \
		     0,                                                                            \
		     0,                                                                            \
		     10000,                                                                        \
		     "access log lines are buffered and written at least this often (0: each at "  \
		     "once)"},                                                                     \
		    {"EDGE_WS_IDLE_S",                                                             \
		     CM_CFG_INT,                                                                   \
		     &(c)->ws_idle_s,                                                              \
		     "120",                                                                        \
		     0,                                                                            \
		     3,                                                                            \
		     86400,                                                                        \
		     "seconds a WebSocket may send nothing (pinged every third of it)"},           \
		    {"EDGE_WS_MAX_SOCKETS",                                                        \
		     CM_CFG_INT,                                                                   \
		     &(c)->ws_max_sockets,                                                         \
		     "10000",                                                                      \
		     0,                                                                            \
		     1,                                                                            \
		     1000000,                                                                      \
		     "WebSocket connections per edge"},                                            \
		    {"EDGE_RATE_PER_S",                                                            \
		     CM_CFG_INT,                                                                   \
		     &(c)->rate_per_s,                                                             \
		     "100",                                                                        \
		     0,                                                                            \
		     0,                                                                            \
		     1000000,                                                                      \
		     "requests/s per client address and per user (0 = off)"},                      \
		    {"EDGE_RATE_BURST", CM_CFG_INT,   &(c)->rate_burst, "200", 0, 0,               \
		     1000000,           "bucket size"},                                            \
		    {"EDGE_ROUTE_LIMITS",                                                          \
		     CM_CFG_STR,                                                                   \
		     &(c)->route_limits,                                                           \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "per-route overrides: route=rate/burst, comma-separated (ratelimit.h)"},      \
		    {"EDGE_RATE_REDIS_TIMEOUT_MS",                                                 \
		     CM_CFG_INT,                                                                   \
		     &(c)->rate_redis_timeout_ms,                                                  \
		     "50",                                                                         \
		     0,                                                                            \
		     1,                                                                            \
		     10000,                                                                        \
		     "longest wait for a shared rate-limit decision (then local buckets)"},        \
		    {"EDGE_DRAIN_S",                                                               \
		     CM_CFG_INT,                                                                   \
		     &(c)->drain_s,                                                                \
		     "10",                                                                         \
		     0,                                                                            \
		     0,                                                                            \
		     600,                                                                          \
		     "seconds to finish in-flight requests on SIGTERM"},                           \
		    {"EDGE_RPC_TIMEOUT_MS",                                                        \
		     CM_CFG_INT,                                                                   \
		     &(c)->rpc_timeout_ms,                                                         \
		     "10000",                                                                      \
		     0,                                                                            \
		     10,                                                                           \
		     600000,                                                                       \
		     "deadline of an upstream call"},                                              \
		    {"EDGE_PROXY_TIMEOUT_MS",                                                      \
		     CM_CFG_INT,                                                                   \
		     &(c)->proxy_timeout_ms,                                                       \
		     "30000",                                                                      \
		     0,                                                                            \
		     100,                                                                          \
		     3600000,                                                                      \
		     "an HTTP upstream's answer (streamed: between its pieces)"},                  \
		    {"EDGE_SESSION_TTL_S",                                                         \
		     CM_CFG_INT,                                                                   \
		     &(c)->session_ttl_s,                                                          \
		     "2592000",                                                                    \
		     0,                                                                            \
		     60,                                                                           \
		     31536000,                                                                     \
		     "session cookie lifetime when svc-auth gives none"},                          \
		    {"EDGE_REDIS_HOST",                                                            \
		     CM_CFG_STR,                                                                   \
		     &(c)->redis_host,                                                             \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "Redis with svc-auth's revoked sessions and the shared rate limits (empty: "  \
		     "logout ends at token expiry, limits per edge process)"},                     \
		    {"EDGE_REDIS_PORT", CM_CFG_INT, &(c)->redis_port, "6379", 0, 1, 65535, ""},    \
		    {"EDGE_CONFIG_FILE",                                                           \
		     CM_CFG_STR,                                                                   \
		     &(c)->config_file,                                                            \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "KEY=VALUE file over the environment, re-read on SIGHUP (empty: none)"},      \
		    {"EDGE_ADMIN_ADDR",                                                            \
		     CM_CFG_STR,                                                                   \
		     &(c)->admin_addr,                                                             \
		     "",                                                                           \
		     0,                                                                            \
		     0,                                                                            \
		     0,                                                                            \
		     "host:port of /configz and /metrics (empty: none)"},                          \
	}

size_t
edge_config_table(edge_config *c, cm_cfg_entry *out, size_t cap)
{
	cm_cfg_entry t[] = TABLE(c);

	return cm_config_copy(out, cap, t, sizeof(t) / sizeof(t[0]));
}

cm_err
edge_config_load_file(edge_config *c, const cm_cfg_file *file, cm_cfg_origin *origins, char *errbuf,
                      size_t errlen)
{
	cm_cfg_entry t[] = TABLE(c);

	_Static_assert(sizeof(t) / sizeof(t[0]) <= EDGE_CFG_MAX, "EDGE_CFG_MAX too small");
	if (cm_cfg_file_get(file, "EDGE_CONFIG_FILE") != NULL) {
		snprintf(errbuf, errlen, "EDGE_CONFIG_FILE: set in the environment only");
		return CM_EINVAL;
	}
	return cm_config_load_layered(t, sizeof(t) / sizeof(t[0]), file, origins, errbuf, errlen);
}

cm_err
edge_config_load(edge_config *c, char *errbuf, size_t errlen)
{
	cm_cfg_entry t[] = TABLE(c);

	return cm_config_load(t, sizeof(t) / sizeof(t[0]), errbuf, errlen);
}

void
edge_config_log(edge_config *c, const cm_cfg_origin *origins)
{
	cm_cfg_entry t[] = TABLE(c);

	cm_config_log_origins(t, sizeof(t) / sizeof(t[0]), origins);
}
