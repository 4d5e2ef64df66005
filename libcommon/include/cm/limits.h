/*
 * limits.h - the fixed limits libcommon and the edge share, in one place. Each service's own
 * limits live in its config.h (e.g. svc-pdf/config.h, svc-qgen/config.h); configurable ones have
 * their defaults and env names in the config tables (the common keys in libcommon/src/service.c).
 */
#ifndef CM_LIMITS_H
#define CM_LIMITS_H

#define CM_MAX_RPC_MSG (64u * 1024u * 1024u) /* largest envelope a socket accepts */
#define CM_MAX_JSON_BODY 65536               /* default JSON request body limit (edge): 64 KiB */
#define CM_MAX_UPLOAD_DEFAULT 52428800       /* default upload limit (edge, svc-pdf): 50 MiB */
#define CM_MAX_JSON_DEPTH 32                 /* nesting accepted in JSON bodies */
#define CM_MAX_HEADER_VALUE 8192             /* cookies, authorization */
#define CM_MAX_REQUEST_ID 64                 /* X-Request-Id kept (longer is replaced) */
#define CM_MAX_TOKEN 4096                    /* JWT / refresh token length accepted */
#define CM_MAX_EMAIL 254
#define CM_MAX_NAME 200
#define CM_MAX_PASSWORD 1024 /* longer passwords are refused (hash DoS) */
#define CM_MIN_PASSWORD 8
#define CM_UUID_LEN 36 /* textual UUID, without NUL */
#define CM_MAX_METHOD_NAME 64
#define CM_MAX_ERRMSG 256
#define CM_DEFAULT_DEADLINE_MS 10000 /* RPC deadline when the caller gives none */
#define CM_PG_CONNECT_TIMEOUT_S 2
#define CM_REDIS_TIMEOUT_MS 200
#define CM_REDIS_RETRY_MS 1000 /* wait before reconnecting a dead Redis */
#define CM_PG_RETRY_MS 250     /* wait before reconnecting a dead PostgreSQL */

/* RPC client (cm/rpc.h): defaults of cm_rpc_client_opts. */
#define CM_RPC_MAX_REPLICAS 64         /* replicas per upstream (static and resolved) */
#define CM_RPC_MAX_ADDR 48             /* a numeric IPv4/IPv6 address, NUL included */
#define CM_RPC_RESOLVE_MS 5000         /* dns+tcp:// re-resolution period (env CM_RPC_RESOLVE_MS) */
#define CM_RPC_DRAIN_MS 30000          /* a removed replica's calls get this long to finish */
#define CM_RPC_MAX_PENDING 4096        /* calls in flight per upstream */
#define CM_RPC_BREAKER_WINDOW_MS 10000 /* error rate measured over this window */
#define CM_RPC_BREAKER_MIN_CALLS 20    /* ... once it holds this many calls */
#define CM_RPC_BREAKER_ERROR_PCT 50    /* opens at this share of failed calls */
#define CM_RPC_BREAKER_CONSECUTIVE 10  /* or after this many failed calls in a row */
#define CM_RPC_BREAKER_OPEN_MS 2000    /* then rejects at once this long */
#define CM_RPC_BREAKER_PROBES 3        /* calls let through at once when half-open */
/* Batches in flight per replica (env CM_RPC_BATCH_INFLIGHT). One: the calls that come while it
 * is out leave together when it returns (before its answers are handed out), so the server is
 * never idle under load and a batch carries as many calls as came meanwhile; a second lane only
 * split them (/me at 100 connections: 45-48k req/s at 1, 37k at 2, 31k at 4; bench/README.md). */
#define CM_RPC_BATCH_INFLIGHT 1
#define CM_RPC_BATCH_MAX_CALLS 64        /* calls per batch */
#define CM_RPC_BATCH_MAX_BYTES (1 << 20) /* packed calls per batch */

/* A limit as the text a config table's default wants (plain decimal limits only):
 * CM_LIMIT_STR(CM_MAX_JSON_BODY) is "65536". */
#define CM_LIMIT_STR(x) CM_LIMIT_STR_(x)
#define CM_LIMIT_STR_(x) #x

#endif
