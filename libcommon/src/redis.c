/*
 * redis.c - one Redis connection for one thread; a cache that may vanish at any time.
 *
 * DESIGN. Commands go through redisCommandArgv only (binary-safe, no formatting of data into
 * command text). Every command has a timeout. After any I/O error the context is freed and no
 * reconnect is tried for CM_REDIS_RETRY_MS (except once at once when the server had closed an idle
 * connection: see stale()): meanwhile every call returns CM_EUNAVAIL at once, so
 * callers skip the cache or fall back to a local limit instead of stalling. A host of "" turns
 * Redis off entirely. Error replies that mean "not now" (LOADING, BUSY, MASTERDOWN, READONLY,
 * TRYAGAIN) are CM_EUNAVAIL too, on a connection that stays open; other error replies are
 * CM_EINTERNAL. Counters with a window are one Lua script (INCR, EXPIRE when new or when the
 * key somehow has no expiry, TTL), so a crash between INCR and EXPIRE cannot leave a counter
 * that never expires.
 */
#include <errno.h>
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
	cm_redis *r = NULL;
	cm_err    err = CM_OK;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (host != NULL && host[0] != '\0' && (r->host = strdup(host)) == NULL)) {
		err = CM_ENOMEM;
		goto out;
	}
	r->port = port;
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : CM_REDIS_TIMEOUT_MS;
	*out = r;
	r = NULL;
out:
	cm_redis_close(r);
	return err;
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
		cm_warn("REDIS-DOWN", "Redis %s:%d unavailable: %s (continuing without it)",
		        r->host, r->port,
		        r->errmsg); /* not `why`: it may point into the context freed above */
	r->down_logged = true;
}

static cm_err
ensure(cm_redis *r)
{
	struct timeval tv;
	cm_err         err = CM_EUNAVAIL;

	if (r->host == NULL) {
		cm_strlcpy(r->errmsg, "Redis disabled", sizeof(r->errmsg));
		goto out;
	}
	if (r->ctx != NULL) {
		err = CM_OK;
		goto out;
	}
	if (r->last_fail_ms != 0 && cm_mono_ms() - r->last_fail_ms < CM_REDIS_RETRY_MS)
		goto out; /* errmsg keeps the failure that started the wait */
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
	if (r->ctx == NULL || r->ctx->err) {
		fail(r, r->ctx != NULL ? r->ctx->errstr : "out of memory");
		goto out;
	}
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
		fail(r, "cannot set timeout");
		goto out;
	}
	if (r->down_logged)
		cm_info("REDIS-UP", "Redis %s:%d reachable again", r->host, r->port);
	r->down_logged = false;
	r->last_fail_ms = 0;
	r->errmsg[0] = '\0';
	err = CM_OK;
out:
	return err;
}

/* An error reply that means "the server cannot serve this now", not "this command is wrong". */
static bool
transient_error(const char *msg)
{
	static const char *const codes[] = {"LOADING ",  "BUSY ",     "MASTERDOWN ",
	                                    "READONLY ", "TRYAGAIN ", "CLUSTERDOWN "};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (strncmp(msg, codes[i], strlen(codes[i])) == 0)
			return true;
	}
	return false;
}

/* The connection was closed by the server before our command reached it: end of stream, or a
 * reset / broken pipe. Not a timeout: a slow server may have run the command. */
static bool
stale(const redisContext *c)
{
	/* hiredis keeps errno's text, not errno itself. */
	return c->err == REDIS_ERR_EOF ||
	       (c->err == REDIS_ERR_IO && (strcmp(c->errstr, strerror(ECONNRESET)) == 0 ||
	                                   strcmp(c->errstr, strerror(EPIPE)) == 0));
}

/* Runs one command; on CM_OK *reply is freed by the caller with freeReplyObject. */
static cm_err
command(cm_redis *r, int argc, const char **argv, const size_t *lens, redisReply **reply)
{
	redisReply *rep = NULL;
	cm_err      err;

	*reply = NULL;
	if ((err = ensure(r)) != CM_OK)
		goto out;
	rep = redisCommandArgv(r->ctx, argc, argv, lens);
	if (rep == NULL && stale(r->ctx)) {
		/* The server closed this connection while it sat idle (a restart, a timeout): the
		 * command never ran. One fresh connection, once, instead of a cache miss or a split
		 * counter on every thread's first call after Redis comes back. */
		redisFree(r->ctx);
		r->ctx = NULL;
		if ((err = ensure(r)) != CM_OK)
			goto out;
		rep = redisCommandArgv(r->ctx, argc, argv, lens);
	}
	if (rep == NULL) {
		/* I/O error or timeout: the connection is out of step, never reuse it. */
		fail(r, r->ctx->errstr[0] != '\0' ? r->ctx->errstr : "I/O error");
		err = CM_EUNAVAIL;
		goto out;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		cm_strlcpy(r->errmsg, rep->str != NULL ? rep->str : "error reply",
		           sizeof(r->errmsg));
		err = transient_error(r->errmsg) ? CM_EUNAVAIL : CM_EINTERNAL;
		goto out;
	}
	*reply = rep;
	rep = NULL;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return err;
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
		err = cm_buf_append(out, rep->str, rep->len);
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

	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
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
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		return CM_EPROTO;
	*a = rep->element[0]->integer;
	*b = rep->element[1]->integer;
	return CM_OK;
}

cm_err
cm_redis_incr_window(cm_redis *r, const char *key, int64_t window_s, int64_t *count,
                     int64_t *ttl_left_s)
{
	char        win[24];
	const char *argv[] = {"EVAL", incr_window_lua, "1", key, win};
	redisReply *rep;
	cm_err      err;

	snprintf(win, sizeof(win), "%lld", (long long)(window_s > 0 ? window_s : 1));
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

/* Runs EVAL script with its keys and args; on CM_OK *reply is the caller's to free. */
static cm_err
eval(cm_redis *r, const char *script, int nkeys, const char *const *keys, int nargs,
     const char *const *args, redisReply **reply)
{
	const char *argv[64];
	char        nk[16];
	int         argc = 0;

	*reply = NULL;
	if (script == NULL || nkeys < 0 || nargs < 0 || nkeys > 61 || nargs > 61 - nkeys)
		return CM_EINVAL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	return command(r, argc, argv, NULL, reply);
}

cm_err
cm_redis_eval_int(cm_redis *r, const char *script, int nkeys, const char *const *keys, int nargs,
                  const char *const *args, int64_t *out)
{
	redisReply *rep;
	cm_err      err;

	*out = 0;
	if ((err = eval(r, script, nkeys, keys, nargs, args, &rep)) != CM_OK)
		return err;
	if (rep->type == REDIS_REPLY_INTEGER)
		*out = rep->integer;
	else
		err = CM_EPROTO;
	freeReplyObject(rep);
	return err;
}

cm_err
cm_redis_eval_list(cm_redis *r, const char *script, int nkeys, const char *const *keys, int nargs,
                   const char *const *args, cm_buf *out, size_t *n)
{
	redisReply *rep;
	char        num[24];
	cm_err      err;

	*n = 0;
	if ((err = eval(r, script, nkeys, keys, nargs, args, &rep)) != CM_OK)
		return err;
	if (rep->type != REDIS_REPLY_ARRAY)
		err = CM_EPROTO;
	for (size_t i = 0; err == CM_OK && i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		if (e->type == REDIS_REPLY_INTEGER) {
			snprintf(num, sizeof(num), "%lld", (long long)e->integer);
			err = cm_buf_append(out, num, strlen(num) + 1);
		} else if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
			if ((err = cm_buf_append(out, e->str, e->len)) == CM_OK)
				err = cm_buf_append(out, "", 1);
		} else if (e->type == REDIS_REPLY_NIL) {
			err = cm_buf_append(out, "", 1);
		} else {
			err = CM_EPROTO;
		}
		if (err == CM_OK)
			(*n)++;
	}
	freeReplyObject(rep);
	return err;
}
