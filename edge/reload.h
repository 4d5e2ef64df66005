/*
 * reload.h - the edge's running configuration, and its reload on SIGHUP.
 *
 * Sources. The environment, with EDGE_CONFIG_FILE (KEY=VALUE lines, the same keys; set in the
 * environment only) over it: a key the file sets wins. The file is read at start and again on
 * every SIGHUP; the environment of a running process cannot change, so the file is how a value
 * changes without a restart.
 *
 * What a reload changes while the edge serves (no connection is closed, libmicrohttpd goes on):
 *   - rate limits: EDGE_RATE_PER_S, EDGE_RATE_BURST, EDGE_ROUTE_LIMITS (ratelimit.h);
 *   - the migration: EDGE_LEGACY_SHARE, _USERS, _ROUTES, _FALLBACK (migrate.h), when the edge
 *     started with an old backend;
 *   - EDGE_CORS_ORIGINS and EDGE_TRUSTED_PROXIES;
 *   - the upstream lists EDGE_{AUTH,PDF,QGEN,EVAL,CHAT}_URLS: a changed list gets a new RPC
 *     client, swapped in once it has a connection (or after a short wait); the old one is closed
 *     when every call that could have picked it has ended. Emptying a list needs a restart.
 * Any other key set differently is logged (EDGE-RELOAD-RESTART) and shown as pending on
 * /configz; its running value stays until the next start.
 *
 * All or nothing. The whole new configuration is read and validated first (the file's syntax
 * and keys, every value's type and range, the route limits, the migration rules, the CIDRs, the
 * upstream URLs); any problem refuses the reload (EDGE-RELOAD-REFUSED) and nothing changes.
 *
 * Readers. Each changing part is an immutable object behind an atomic pointer, loaded once per
 * use on whatever thread: the snapshot below, the limiter's table, the migration rules,
 * e->up[]. A replaced object is retired, not freed: it is freed (an RPC client closed) on the
 * main thread after a grace period longer than any use can last: the longest upstream deadline
 * (EDGE_RPC_TIMEOUT_MS, EDGE_CHAT_TIMEOUT_MS) or rate-limit round trip, plus a margin. A use
 * loads its pointer within one request stage and never keeps it across stages, so no reader
 * counts are needed on the hot path.
 */
#ifndef EDGE_RELOAD_H
#define EDGE_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/config.h"
#include "clientaddr.h"
#include "config.h"
#include "edge.h"

/* One configuration, immutable once published in e->live. */
struct edge_live {
	edge_config   cfg;                   /* the values in effect */
	cm_cfg_origin origin[EDGE_CFG_MAX];  /* where each table entry's value came from */
	bool          pending[EDGE_CFG_MAX]; /* set differently, but only a restart applies it */
	char         *strs[EDGE_CFG_MAX];    /* the string values, owned */
	edge_cidrs    trusted;               /* EDGE_TRUSTED_PROXIES, parsed */
	uint64_t      generation;            /* 1 at start, +1 per reload applied */
};

/* The running configuration, on any thread; use it within one stage, do not keep it. */
static inline const edge_live *
edge_live_get(edge *e)
{
	return atomic_load_explicit(&e->live, memory_order_acquire);
}
/* EDGE_CORS_ORIGINS and the trusted proxies now. */
const char       *edge_live_cors(edge *e);
const edge_cidrs *edge_live_trusted(edge *e);

typedef struct edge_reloader edge_reloader;

/* Publishes the first snapshot from e->cfg as loaded (origins: where each value came from, NULL
 * = the environment) and keeps e for reloads. CM_EINVAL (logged) for bad EDGE_TRUSTED_PROXIES. */
CM_MUSTCHECK cm_err edge_reloader_alloc(edge_reloader **out, edge *e, const cm_cfg_origin *origins);
/* Main thread, on SIGHUP: reads EDGE_CONFIG_FILE and the environment, validates, applies what
 * can change live. CM_OK when applied; otherwise the running configuration is unchanged and the
 * reason is logged and kept for /configz. */
cm_err edge_reload(edge_reloader *rl);
/* Main thread, every second or so: frees what was retired more than a grace period ago. */
void edge_reloader_tick(edge_reloader *rl);
/* After the HTTP engine stopped: frees everything, the current snapshot included. */
void edge_reloader_free(edge_reloader *rl);

/* The configuration in effect as JSON (GET /configz, any thread): every key with its value
 * (secrets: "***"), its source (default, env, file), whether a reload changes it and whether a
 * different value waits for a restart; the generation and the reloads applied and refused. */
CM_MUSTCHECK cm_err edge_configz_render(void *reloader, cm_buf *out);

#endif
