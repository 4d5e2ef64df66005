/*
 * redis.c - one Redis connection for one thread; a cache that may vanish at any time.
 *
 * DESIGN. Commands go through redisCommandArgv only (binary-safe, no formatting of data into
 * command text). Every command has a timeout. After any I/O error the context is freed and no
 * reconnect is tried for CM_REDIS_RETRY_MS: meanwhile every call returns CM_EUNAVAIL at once, so
 * callers skip the cache or fall back to a local limit instead of stalling. A host of "" turns
 * Redis off entirely.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "cm/limits.h"
#include "cm/log.h"
#include "cm/redis.h"
#include "cm/util.h"

struct cm_redis {
	redisContext *ctx;
	char         *host;
	int           port;
	int           timeout_ms;
	int64_t       last_fail_ms;
	bool          down_logged;
	char          errmsg[160];
};

cm_err
cm_redis_open(cm_redis **out, const char *host, int port, int timeout_ms)
{
	cm_redis *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return CM_ENOMEM;
	if (host != NULL && host[0] != '\0' && (r->host = strdup(host)) == NULL) {
		free(r);
		return CM_ENOMEM;
	}
	r->port       = port;
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : CM_REDIS_TIMEOUT_MS;
	*out          = r;
	return CM_OK;
}

void
cm_redis_close(cm_redis *r)
{
	if (r == NULL)
		return;
	if (r->ctx != NULL)
		redisFree(r->ctx);
	free(r->host);
	free(r);
}

const char *
cm_redis_errmsg(const cm_redis *r)
{
	return r->errmsg;
}

static void
fail(cm_redis *r, const char *why)
{
	cm_strlcpy(r->errmsg, why, sizeof(r->errmsg));
	if (r->ctx != NULL) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
	r->last_fail_ms = cm_mono_ms();
	if (!r->down_logged)
		cm_warn("REDIS-DOWN", "Redis %s:%d unavailable: %s (continuing without it)", r->host,
		    r->port, r->errmsg); /* not `why`: it may point into the context freed above */
	r->down_logged = true;
}

static cm_err
ensure(cm_redis *r)
{
	struct timeval tv;

	if (r->host == NULL) {
		cm_strlcpy(r->errmsg, "Redis disabled", sizeof(r->errmsg));
		return CM_EUNAVAIL;
	}
	if (r->ctx != NULL)
		return CM_OK;
	if (r->last_fail_ms != 0 && cm_mono_ms() - r->last_fail_ms < CM_REDIS_RETRY_MS)
		return CM_EUNAVAIL;
	tv.tv_sec  = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	r->ctx     = redisConnectWithTimeout(r->host, r->port, tv);
	if (r->ctx == NULL || r->ctx->err) {
		fail(r, r->ctx != NULL ? r->ctx->errstr : "out of memory");
		return CM_EUNAVAIL;
	}
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
		fail(r, "cannot set timeout");
		return CM_EUNAVAIL;
	}
	if (r->down_logged)
		cm_info("REDIS-UP", "Redis %s:%d reachable again", r->host, r->port);
	r->down_logged  = false;
	r->last_fail_ms = 0;
	return CM_OK;
}

/* Runs one command; *reply is freed by the caller with freeReplyObject. */
static cm_err
command(cm_redis *r, int argc, const char **argv, const size_t *lens, redisReply **reply)
{
	cm_err err;

	*reply = NULL;
	if ((err = ensure(r)) != CM_OK)
		return err;
	*reply = redisCommandArgv(r->ctx, argc, argv, lens);
	if (*reply == NULL) {
		fail(r, r->ctx->errstr[0] != '\0' ? r->ctx->errstr : "I/O error");
		return CM_EUNAVAIL;
	}
	if ((*reply)->type == REDIS_REPLY_ERROR) {
		cm_strlcpy(r->errmsg, (*reply)->str, sizeof(r->errmsg));
		freeReplyObject(*reply);
		*reply = NULL;
		return CM_EINTERNAL;
	}
	return CM_OK;
}

bool
cm_redis_ping(cm_redis *r)
{
	const char *argv[] = {"PING"};
	redisReply *rep;

	if (command(r, 1, argv, NULL, &rep) != CM_OK)
		return false;
	freeReplyObject(rep);
	return true;
}

cm_err
cm_redis_get(cm_redis *r, const char *key, cm_buf *out, bool *found)
{
	const char *argv[] = {"GET", key};
	redisReply *rep;
	cm_err      err;

	*found = false;
	if ((err = command(r, 2, argv, NULL, &rep)) != CM_OK)
		return err;
	if (rep->type == REDIS_REPLY_STRING) {
		*found = true;
		err    = cm_buf_append(out, rep->str, rep->len);
	}
	freeReplyObject(rep);
	return err;
}

cm_err
cm_redis_set(cm_redis *r, const char *key, const void *val, size_t len, int64_t ttl_s)
{
	char        ttl[24];
	const char *argv[] = {"SET", key, val, "EX", ttl};
	size_t      lens[] = {3, strlen(key), len, 2, 0};
	redisReply *rep;
	cm_err      err;

	snprintf(ttl, sizeof(ttl), "%lld", (long long) ttl_s);
	lens[4] = strlen(ttl);
	if ((err = command(r, ttl_s > 0 ? 5 : 3, argv, lens, &rep)) != CM_OK)
		return err;
	freeReplyObject(rep);
	return CM_OK;
}

cm_err
cm_redis_del(cm_redis *r, const char *key)
{
	const char *argv[] = {"DEL", key};
	redisReply *rep;
	cm_err      err;

	if ((err = command(r, 2, argv, NULL, &rep)) != CM_OK)
		return err;
	freeReplyObject(rep);
	return CM_OK;
}

/* One round trip: the count and the TTL, setting the expiry when the key is new. */
static const char incr_window_lua[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "local t = redis.call('TTL', KEYS[1]) "
    "if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end "
    "return {n, t}";

static cm_err
pair_reply(redisReply *rep, int64_t *a, int64_t *b)
{
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER || rep->element[1]->type != REDIS_REPLY_INTEGER)
		return CM_EPROTO;
	*a = rep->element[0]->integer;
	*b = rep->element[1]->integer;
	return CM_OK;
}

cm_err
cm_redis_incr_window(cm_redis *r, const char *key, int64_t window_s, int64_t *count, int64_t *ttl_left_s)
{
	char        win[24];
	const char *argv[] = {"EVAL", incr_window_lua, "1", key, win};
	redisReply *rep;
	cm_err      err;

	snprintf(win, sizeof(win), "%lld", (long long) (window_s > 0 ? window_s : 1));
	if ((err = command(r, 5, argv, NULL, &rep)) != CM_OK)
		return err;
	err = pair_reply(rep, count, ttl_left_s);
	freeReplyObject(rep);
	return err;
}

static const char get_counter_lua[] =
    "local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0 "
    "local t = redis.call('TTL', KEYS[1]) if t < 0 then t = 0 end return {n, t}";

cm_err
cm_redis_get_counter(cm_redis *r, const char *key, int64_t *count, int64_t *ttl_left_s)
{
	const char *argv[] = {"EVAL", get_counter_lua, "1", key};
	redisReply *rep;
	cm_err      err;

	*count = *ttl_left_s = 0;
	if ((err = command(r, 4, argv, NULL, &rep)) != CM_OK)
		return err;
	err = pair_reply(rep, count, ttl_left_s);
	freeReplyObject(rep);
	return err;
}

cm_err
cm_redis_eval_int(cm_redis *r, const char *script, int nkeys, const char *const *keys, int nargs,
    const char *const *args, int64_t *out)
{
	const char *argv[64];
	char        nk[16];
	int         argc = 0;
	redisReply *rep;
	cm_err      err;

	if (nkeys < 0 || nargs < 0 || 3 + nkeys + nargs > 64)
		return CM_EINVAL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	if ((err = command(r, argc, argv, NULL, &rep)) != CM_OK)
		return err;
	if (rep->type == REDIS_REPLY_INTEGER)
		*out = rep->integer;
	else
		err = CM_EPROTO;
	freeReplyObject(rep);
	return err;
}
