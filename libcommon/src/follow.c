/*
 * follow.c - the deletion-log follower (follow.h).
 *
 * DESIGN. A round reads the cursor (creating its row the first time), fetches the entries after
 * it with no transaction open (the RPC may take its whole timeout), then BEGINs, locks the cursor
 * row with SKIP LOCKED (no row: another replica is in a round, skip this one), drops fetched
 * entries at or below the locked value (another replica got there between our read and our
 * lock; the rest are exactly the log's next entries, since the log is complete and in order),
 * applies each, stores the last seq and COMMITs. Any failure rolls the round back, so the cursor
 * and the effects of the entries move together or not at all. The cursor also keeps the log's
 * id: an answer with another id (the producer's log was made anew) restarts the cursor at 0, and
 * a cursor whose id changed between our read and our lock (another replica restarted it) is left
 * for the next round.
 *
 * Between rounds the thread pauses on a cm_waker (waker.h), so stop and wake take effect at
 * once; the wait is poll_ms, none after a full batch, or the back-off after a failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/follow.h"
#include "cm/limits.h"
#include "cm/log.h"
#include "cm/util.h"
#include "cm/waker.h"
#include "proto/common.pb-c.h"

struct cm_follower {
	cm_follower_config cfg; /* strings point into the fields below */
	char               source[CM_FOLLOW_MAX_SOURCE + 1];
	char               method[CM_MAX_METHOD_NAME + 1];
	char              *database_url;
	char              *schema;
	pthread_t          thread;
	cm_waker           waker; /* between rounds */
};

/* The cursor, its row created when missing (one statement: the insert's snapshot hides the new
 * row from the SELECT, so exactly one row comes back). */
static const char SQL_CURSOR_ENSURE[] =
    "WITH ins AS (INSERT INTO follow_cursors (source) VALUES ($1)"
    "             ON CONFLICT (source) DO NOTHING RETURNING seq, log_id)"
    " SELECT seq, log_id FROM ins"
    " UNION ALL SELECT seq, log_id FROM follow_cursors WHERE source = $1";
static const char SQL_CURSOR[] = "SELECT seq, log_id FROM follow_cursors WHERE source = $1";
static const char SQL_LOCK[] =
    "SELECT seq, log_id FROM follow_cursors WHERE source = $1 FOR UPDATE SKIP LOCKED";
static const char SQL_MOVE[] = "UPDATE follow_cursors SET seq = $2::bigint, log_id = $3,"
                               " updated_at = now() WHERE source = $1";

typedef struct cursor_row {
	bool    found;
	int64_t seq;
	char    log_id[CM_FOLLOW_MAX_LOG_ID + 1];
} cursor_row;

static int
batch_of(const cm_follower_config *cfg)
{
	if (cfg->batch <= 0)
		return CM_FOLLOW_BATCH_DEFAULT;
	return cfg->batch < CM_FOLLOW_BATCH_MAX ? cfg->batch : CM_FOLLOW_BATCH_MAX;
}

/* Runs a cursor query (seq, log_id) for source; out->found tells whether a row came back. */
static cm_err
query_cursor(cm_pg *pg, const char *sql, const char *source, cursor_row *out)
{
	const char   *p[1] = {source};
	cm_pg_result *r = NULL;
	cm_err        err;

	memset(out, 0, sizeof(*out));
	if ((err = cm_pg_exec(pg, sql, 1, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) > 0) {
		out->found = true;
		if (!cm_parse_i64(cm_pg_get(r, 0, 0), &out->seq))
			err = CM_EPROTO;
		cm_strlcpy(out->log_id, cm_pg_get(r, 0, 1), sizeof(out->log_id));
	}
	cm_pg_result_free(r);
	return err;
}

cm_err
cm_follow_cursor(cm_pg *pg, const char *source, int64_t *seq)
{
	cursor_row c;
	cm_err     err = query_cursor(pg, SQL_CURSOR, source, &c);

	*seq = c.seq;
	return err;
}

/* Asks the producer for the entries after `after`. The response is checked: a log id that fits,
 * ascending seq, all above `after` (a producer that broke this would make the cursor skip or
 * repeat). */
static cm_err
fetch(const cm_follower_config *cfg, int64_t after, Cm__DeletionsResponse **out, char *why,
      size_t whylen)
{
	Cm__DeletionsRequest rq = CM__DELETIONS_REQUEST__INIT;
	cm_rpc_call_opts     o = {0};
	cm_rpc_result        res;
	ProtobufCMessage    *m = NULL;
	int64_t              prev = after;
	cm_err               err;

	*out = NULL;
	rq.after_seq = after;
	rq.limit = batch_of(cfg);
	o.method = cfg->method;
	o.request_id = cm_log_request_id();
	o.deadline_ms =
	    cm_now_ms() + (cfg->rpc_timeout_ms > 0 ? cfg->rpc_timeout_ms : CM_DEFAULT_DEADLINE_MS);
	o.idempotent = true;
	o.role = CM_ROLE_SERVICE;
	err = cm_rpc_call(cfg->client, &o, &rq.base, &cm__deletions_response__descriptor, &m, &res);
	if (err != CM_OK)
		snprintf(why, whylen, "%s: %.200s", cfg->method, res.message);
	cm_rpc_result_fini(&res);
	if (err != CM_OK)
		return err;
	*out = (Cm__DeletionsResponse *)m;
	if (strlen((*out)->log_id) > CM_FOLLOW_MAX_LOG_ID) {
		snprintf(why, whylen, "%s: log id too long", cfg->method);
		return CM_EPROTO;
	}
	for (size_t i = 0; i < (*out)->n_deletions; i++) {
		if ((*out)->deletions[i]->seq <= prev) {
			snprintf(why, whylen, "%s: seq %" PRId64 " after %" PRId64, cfg->method,
			         (*out)->deletions[i]->seq, prev);
			return CM_EPROTO;
		}
		prev = (*out)->deletions[i]->seq;
	}
	return CM_OK;
}

static void
free_resp(Cm__DeletionsResponse **resp)
{
	if (*resp != NULL)
		protobuf_c_message_free_unpacked(&(*resp)->base, NULL);
	*resp = NULL;
}

/* One round (see DESIGN). *fetched: entries the producer returned; *applied: entries applied. */
static cm_err
round_(const cm_follower_config *cfg, cm_pg *pg, int *fetched, int *applied, char *why,
       size_t whylen)
{
	Cm__DeletionsResponse *resp = NULL;
	cursor_row             cur, locked;
	int64_t                base, last;
	char                   seq[24];
	const char            *p[3] = {cfg->source, seq, NULL};
	bool                   reset, in_tx = false;
	int                    n = 0;
	cm_err                 err;

	*fetched = *applied = 0;
	why[0] = '\0';
	if ((err = query_cursor(pg, SQL_CURSOR_ENSURE, cfg->source, &cur)) != CM_OK ||
	    (err = fetch(cfg, cur.seq, &resp, why, whylen)) != CM_OK)
		goto out;
	/* Another log id: the log was made anew and its seq started over, so start over too. */
	reset = cur.log_id[0] != '\0' && strcmp(resp->log_id, cur.log_id) != 0;
	if (reset) {
		cm_warn("CM-FOLLOW-RESET",
		        "%s: the log was made anew (id %s, was %s); following it "
		        "from its start",
		        cfg->source, resp->log_id, cur.log_id);
		free_resp(&resp);
		if ((err = fetch(cfg, 0, &resp, why, whylen)) != CM_OK)
			goto out;
	}
	*fetched = (int)resp->n_deletions;
	if (resp->n_deletions == 0 && strcmp(resp->log_id, cur.log_id) == 0)
		goto out; /* nothing new */
	if ((err = cm_pg_begin(pg)) != CM_OK)
		goto out;
	in_tx = true;
	/* Not found: another replica holds the cursor. Another log id than we read: it moved to a
	 * new log meanwhile. Either way, nothing to do in this round. */
	if ((err = query_cursor(pg, SQL_LOCK, cfg->source, &locked)) != CM_OK || !locked.found ||
	    strcmp(locked.log_id, cur.log_id) != 0)
		goto out;
	base = reset ? 0 : locked.seq;
	last = base;
	for (size_t i = 0; i < resp->n_deletions; i++) {
		const Cm__Deletion *d = resp->deletions[i];
		if (d->seq <= base)
			continue;
		if ((err = cfg->apply(cfg->arg, pg, d->seq, d->id, d->owner)) != CM_OK) {
			snprintf(why, whylen, "applying seq %" PRId64 " (%.40s): %.150s", d->seq,
			         d->id, cm_pg_errmsg(pg));
			goto out;
		}
		last = d->seq;
		n++;
	}
	if (last != locked.seq || strcmp(resp->log_id, locked.log_id) != 0) {
		snprintf(seq, sizeof(seq), "%" PRId64, last);
		p[2] = resp->log_id;
		if ((err = cm_pg_exec(pg, SQL_MOVE, 3, p, NULL)) != CM_OK)
			goto out;
	}
	if ((err = cm_pg_commit(pg)) != CM_OK)
		goto out;
	in_tx = false;
	*applied = n;
out:
	if (in_tx)
		cm_pg_rollback(pg);
	if (err != CM_OK && why[0] == '\0')
		snprintf(why, whylen, "%s", cm_pg_errmsg(pg));
	free_resp(&resp);
	return err;
}

cm_err
cm_follow_round(const cm_follower_config *cfg, cm_pg *pg, int *applied)
{
	char why[CM_MAX_ERRMSG];
	int  fetched;

	return round_(cfg, pg, &fetched, applied, why, sizeof(why));
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void *
run(void *arg)
{
	cm_follower *f = arg;
	cm_pg       *pg = NULL;
	char         rid[CM_UUID_LEN + 1], why[CM_MAX_ERRMSG];
	int64_t      backoff = 0, wait;
	int          failures = 0; /* rounds failed in a row */

	do {
		int    fetched = 0, applied = 0;
		cm_err err;

		cm_uuid_v4(rid);
		cm_log_set_request_id(rid);
		if (pg == NULL && (err = cm_pg_open(&pg, f->database_url, f->schema)) != CM_OK)
			snprintf(why, sizeof(why), "cannot open a connection");
		else
			err = round_(&f->cfg, pg, &fetched, &applied, why, sizeof(why));
		if (err != CM_OK) {
			backoff = backoff == 0 ? f->cfg.poll_ms : backoff * 2;
			if (backoff > CM_FOLLOW_BACKOFF_MAX_MS)
				backoff = CM_FOLLOW_BACKOFF_MAX_MS;
			/* One miss is not news (the producer not connected yet at start). */
			if (++failures == 2)
				cm_warn("CM-FOLLOW-FAIL", "%s: %s (%s); retrying with back-off",
				        f->source, cm_strerror(err), why);
			else if (failures == 1)
				cm_debug("CM-FOLLOW-MISS", "%s: %s (%s)", f->source,
				         cm_strerror(err), why);
			wait = backoff;
		} else {
			if (failures >= 2)
				cm_info("CM-FOLLOW-OK", "%s: following again", f->source);
			if (applied > 0)
				cm_debug("CM-FOLLOW-APPLIED", "%s: %d entries", f->source, applied);
			failures = 0;
			backoff = 0;
			wait = fetched >= batch_of(&f->cfg) ? 0 : f->cfg.poll_ms;
		}
		cm_log_set_request_id(NULL);
	} while (cm_waker_pause(&f->waker, wait));
	cm_pg_close(pg);
	return NULL;
}

static void
follower_free(cm_follower *f)
{
	if (f == NULL)
		return;
	free(f->database_url);
	free(f->schema);
	free(f);
}

cm_err
cm_follower_start(cm_follower **out, const cm_follower_config *cfg)
{
	cm_follower *f = NULL;
	bool         sync_made = false;
	cm_err       err = CM_EINVAL;

	*out = NULL;
	if (cfg == NULL || cfg->source == NULL || cfg->client == NULL || cfg->method == NULL ||
	    cfg->database_url == NULL || cfg->apply == NULL || cfg->poll_ms <= 0 ||
	    strlen(cfg->source) > CM_FOLLOW_MAX_SOURCE || strlen(cfg->method) > CM_MAX_METHOD_NAME)
		goto out;
	err = CM_ENOMEM;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->database_url = strdup(cfg->database_url)) == NULL ||
	    (cfg->schema != NULL && (f->schema = strdup(cfg->schema)) == NULL))
		goto out;
	f->cfg = *cfg;
	cm_strlcpy(f->source, cfg->source, sizeof(f->source));
	cm_strlcpy(f->method, cfg->method, sizeof(f->method));
	f->cfg.source = f->source;
	f->cfg.method = f->method;
	f->cfg.database_url = f->database_url;
	f->cfg.schema = f->schema;
	if (cm_waker_init(&f->waker) != CM_OK)
		goto out;
	sync_made = true;
	if (pthread_create(&f->thread, NULL, run, f) != 0) {
		err = CM_EINTERNAL;
		goto out;
	}
	*out = f;
	f = NULL;
	err = CM_OK;
out:
	if (f != NULL && sync_made)
		cm_waker_fini(&f->waker);
	follower_free(f);
	return err;
}

void
cm_follower_wake(cm_follower *f)
{
	if (f == NULL)
		return;
	cm_waker_wake(&f->waker);
}

void
cm_follower_stop(cm_follower *f)
{
	if (f == NULL)
		return;
	cm_waker_stop(&f->waker);
	pthread_join(f->thread, NULL);
	cm_waker_fini(&f->waker);
	follower_free(f);
}
