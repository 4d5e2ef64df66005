/*
 * jobs_listen.c - wake idle workers with LISTEN/NOTIFY (see jobs.h, cm_jobs_listener).
 *
 * DESIGN. A listener owns one libpq connection that only LISTENs, so waiting never blocks a
 * connection that runs statements. Waiting is poll(2) on the connection's socket with the time
 * left, then PQconsumeInput and PQnotifies; every pending notification is drained, since one
 * claim pass serves them all. The connection is made lazily and remade after a loss, at most
 * once every CM_PG_RETRY_MS; while it is down a wait simply sleeps out its timeout, so workers
 * degrade to polling instead of failing. A wait that (re)connects returns at once as
 * "notified", because notifications sent while nobody listened are lost: the caller's claim
 * pass catches up. The channel is an identifier checked at open and quoted in LISTEN (the one
 * piece of SQL text built here); it never comes from input.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cm/jobs.h"
#include "pg_int.h"
#include "cm/limits.h"
#include "cm/log.h"
#include "cm/util.h"

struct cm_jobs_listener {
	PGconn *conn;
	char   *conninfo;
	char    channel[CM_JOBS_MAX_CHANNEL + 1];
	int64_t last_fail_ms; /* monotonic; 0 = no failure pending */
	bool    down_logged;
};

static void
ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
drop(cm_jobs_listener *l, const char *why)
{
	if (!l->down_logged)
		cm_warn("JOBS-LISTEN-DOWN", "job listener connection lost, polling instead: %s",
		        why);
	l->down_logged = true;
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = NULL;
	l->last_fail_ms = cm_mono_ms();
}

/* Connects and LISTENs. CM_OK with *fresh true when a new connection was made. */
static cm_err
ensure(cm_jobs_listener *l, bool *fresh)
{
	PGresult *r = NULL;
	char      sql[CM_JOBS_MAX_CHANNEL + 16];
	cm_err    err = CM_OK;

	*fresh = false;
	if (l->conn != NULL)
		goto out;
	if (l->last_fail_ms != 0 && cm_mono_ms() - l->last_fail_ms < CM_PG_RETRY_MS) {
		err = CM_EUNAVAIL;
		goto out;
	}
	l->conn = cm_pg_connect_raw(l->conninfo);
	if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK) {
		drop(l, l->conn != NULL ? PQerrorMessage(l->conn) : "out of memory");
		err = CM_EUNAVAIL;
		goto out;
	}
	PQsetNoticeProcessor(l->conn, ignore_notice, NULL);
	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", l->channel);
	r = PQexec(l->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		drop(l, PQerrorMessage(l->conn));
		err = CM_EUNAVAIL;
		goto out;
	}
	if (l->down_logged)
		cm_info("JOBS-LISTEN-UP", "job listener connected again");
	l->down_logged = false;
	l->last_fail_ms = 0;
	*fresh = true;
out:
	PQclear(r);
	return err;
}

cm_err
cm_jobs_listener_open(cm_jobs_listener **out, const char *conninfo, const char *channel)
{
	cm_jobs_listener *l = NULL;
	cm_err            err = CM_OK;

	*out = NULL;
	if (conninfo == NULL || !cm_pg_ident_valid(channel) ||
	    strlen(channel) > CM_JOBS_MAX_CHANNEL) {
		err = CM_EINVAL;
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	if ((l->conninfo = strdup(conninfo)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	cm_strlcpy(l->channel, channel, sizeof(l->channel));
	*out = l;
	l = NULL;
out:
	cm_jobs_listener_close(l);
	return err;
}

void
cm_jobs_listener_close(cm_jobs_listener *l)
{
	if (l == NULL)
		return;
	if (l->conn != NULL)
		PQfinish(l->conn);
	free(l->conninfo);
	free(l);
}

/* Reads what the server sent and drains notifications. False when the connection is gone. */
static bool
drain(cm_jobs_listener *l, bool *notified)
{
	PGnotify *n;

	if (PQconsumeInput(l->conn) != 1 || PQstatus(l->conn) != CONNECTION_OK) {
		drop(l, PQerrorMessage(l->conn));
		return false;
	}
	while ((n = PQnotifies(l->conn)) != NULL) {
		*notified = true;
		PQfreemem(n);
	}
	return true;
}

cm_err
cm_jobs_listener_wait(cm_jobs_listener *l, int timeout_ms, bool *notified)
{
	int64_t deadline;
	cm_err  err = CM_OK;
	bool    fresh;

	*notified = false;
	if (l == NULL || timeout_ms < 0) {
		err = CM_EINVAL;
		goto out;
	}
	deadline = cm_mono_ms() + timeout_ms;
	for (;;) {
		int64_t       left = deadline - cm_mono_ms();
		struct pollfd pfd;

		if (ensure(l, &fresh) != CM_OK) {
			/* Down: sleep until the deadline or the next reconnect attempt. */
			int64_t retry = l->last_fail_ms + CM_PG_RETRY_MS - cm_mono_ms();
			if (left <= 0)
				break;
			(void)poll(NULL, 0, (int)(retry > 0 && retry < left ? retry : left));
			continue;
		}
		if (fresh) {
			/* New connection: whatever was sent before it is lost; let the caller look.
			 */
			*notified = true;
			break;
		}
		if (!drain(l, notified))
			continue;
		if (*notified || left <= 0)
			break;
		pfd.fd = PQsocket(l->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0) {
			drop(l, "no socket");
			continue;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			drop(l, "poll failed");
			continue;
		}
	}
out:
	return err;
}
