/*
 * store.c - all SQL of svc-chat.
 *
 * DESIGN.
 * - Every statement is a constant with $n parameters; nothing from input is ever SQL text.
 * - Message rows share one column list (MSG_COLS) and one reader, so every query returns the
 *   same shape; citations travel as an int[] and are read from its text form ({1,3}).
 * - The per-user turn limit is a count of `turns` rows taken under a transaction-level advisory
 *   lock on (1667785076 "chat", hashtext(owner)) by the function turn_begin (migration 001), one
 *   round trip: concurrent turns of one user, on any replica, are counted one after the other;
 *   other users never wait for each other.
 * - Times are formatted by PostgreSQL as RFC 3339 UTC with milliseconds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/follow.h"
#include "cm/util.h"
#include "store.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define CHAT_COLS "id::text, document_id::text, pages, legacy, " TS("created_at")
#define MSG_COLS "seq, id::text, role, content, citations::text, status, error, " TS("created_at")

struct chat_msgs {
	cm_pg_result *res;
};

/* ---- rows ------------------------------------------------------------------------------- */

static int64_t
get_i64(const cm_pg_result *r, int row, int col)
{
	int64_t v = 0;

	(void)cm_parse_i64(cm_pg_get(r, row, col), &v);
	return v;
}

static void
chat_read(const cm_pg_result *r, chat_row *out)
{
	memset(out, 0, sizeof(*out));
	cm_strlcpy(out->id, cm_pg_get(r, 0, 0), sizeof(out->id));
	cm_strlcpy(out->document_id, cm_pg_get(r, 0, 1), sizeof(out->document_id));
	out->pages = (int)get_i64(r, 0, 2);
	out->legacy = strcmp(cm_pg_get(r, 0, 3), "t") == 0;
	cm_strlcpy(out->created_at, cm_pg_get(r, 0, 4), sizeof(out->created_at));
}

/* Runs a query that returns one chat row (CHAT_COLS); CM_ENOTFOUND for none. */
static cm_err
chat_query(cm_pg *pg, const char *sql, int n, const char *const *p, chat_row *out)
{
	cm_pg_result *r = NULL;
	cm_err        err;

	if ((err = cm_pg_exec(pg, sql, n, p, &r)) != CM_OK)
		return err;
	if (cm_pg_nrows(r) == 0)
		err = CM_ENOTFOUND;
	else
		chat_read(r, out);
	cm_pg_result_free(r);
	return err;
}

/* "{1,3,12}" -> pages; anything else is skipped (the column only holds what we wrote). */
static int
parse_int_array(const char *s, int *out, int cap)
{
	int n = 0;

	while (*s != '\0' && n < cap) {
		if (*s >= '0' && *s <= '9') {
			long v = 0;
			while (*s >= '0' && *s <= '9') {
				if (v < 100000000)
					v = v * 10 + (*s - '0');
				s++;
			}
			out[n++] = (int)v;
		} else {
			s++;
		}
	}
	return n;
}

int
chat_msgs_count(const chat_msgs *m)
{
	return m != NULL ? cm_pg_nrows(m->res) : 0;
}

void
chat_msgs_get(const chat_msgs *m, int i, chat_msg_row *out)
{
	out->seq = get_i64(m->res, i, 0);
	out->id = cm_pg_get(m->res, i, 1);
	out->role = cm_pg_get(m->res, i, 2);
	out->content = cm_pg_get(m->res, i, 3);
	out->ncitations =
	    parse_int_array(cm_pg_get(m->res, i, 4), out->citations, CHAT_MAX_CITATIONS);
	out->status = cm_pg_get(m->res, i, 5);
	out->error = cm_pg_get(m->res, i, 6);
	out->created_at = cm_pg_get(m->res, i, 7);
}

void
chat_msgs_free(chat_msgs *m)
{
	if (m == NULL)
		return;
	cm_pg_result_free(m->res);
	free(m);
}

static cm_err
msgs_query(cm_pg *pg, const char *sql, int n, const char *const *p, chat_msgs **out)
{
	chat_msgs *m = NULL;
	cm_err     err;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return CM_ENOMEM;
	if ((err = cm_pg_exec(pg, sql, n, p, &m->res)) != CM_OK) {
		free(m);
		return err;
	}
	*out = m;
	return CM_OK;
}

/* ---- chats ------------------------------------------------------------------------------- */

cm_err
chat_store_create(cm_pg *pg, const char *owner, const char *document_id, int pages, chat_row *out)
{
	char        id[37], np[16];
	const char *p[] = {id, owner, document_id, np};

	cm_uuid_v4(id);
	snprintf(np, sizeof(np), "%d", pages);
	return chat_query(
	    pg,
	    CM_FOLLOW_LIVE_DOCUMENT(
	        3) "INSERT INTO chats (id, owner_id, document_id, pages)"
	           " SELECT $1::uuid, $2, $3::uuid, $4::int FROM d WHERE d.deleted_at IS NULL"
	           " RETURNING " CHAT_COLS,
	    4, p, out);
}

cm_err
chat_store_get(cm_pg *pg, const char *owner, const char *id, chat_row *out)
{
	const char *p[] = {id, owner};

	return chat_query(
	    pg, "SELECT " CHAT_COLS " FROM chats WHERE id = $1::uuid AND owner_id = $2", 2, p, out);
}

cm_err
chat_store_legacy(cm_pg *pg, const char *owner, const char *document_id, int pages, bool create,
                  chat_row *out)
{
	char        id[37], np[16];
	const char *p[] = {owner, document_id, id, np};
	cm_err      err;

	err = chat_query(pg,
	                 "SELECT " CHAT_COLS
	                 " FROM chats WHERE owner_id = $1 AND document_id = $2::uuid"
	                 " AND legacy",
	                 2, p, out);
	if (err != CM_ENOTFOUND || !create)
		return err;
	cm_uuid_v4(id);
	snprintf(np, sizeof(np), "%d", pages);
	/* The partial unique index decides between racing replicas; the loser reads the winner. */
	err = chat_query(
	    pg,
	    CM_FOLLOW_LIVE_DOCUMENT(2) "INSERT INTO chats (id, owner_id, document_id, pages,"
	                               " legacy) SELECT $3::uuid, $1, $2::uuid, $4::int, true FROM "
	                               "d WHERE d.deleted_at IS"
	                               " NULL ON CONFLICT (owner_id, document_id) WHERE legacy DO "
	                               "NOTHING RETURNING " CHAT_COLS,
	    4, p, out);
	if (err == CM_ENOTFOUND)
		err = chat_query(pg,
		                 "SELECT " CHAT_COLS " FROM chats WHERE owner_id = $1 AND"
		                 " document_id = $2::uuid AND legacy",
		                 2, p, out);
	return err;
}

cm_err
chat_store_delete_document(cm_pg *pg, const char *document_id, const char *owner, int *deleted)
{
	const char   *p[] = {document_id, owner};
	cm_pg_result *r = NULL;
	cm_err        err;

	*deleted = 0;
	/* Turns in progress in those chats go too (they have no foreign key: a turn row outlives
	 * nothing, but it counts against its owner's limit until it expires); messages cascade. */
	if ((err = cm_pg_exec(pg,
	                      "WITH gone AS (DELETE FROM chats WHERE document_id = $1::uuid AND"
	                      " owner_id = $2 RETURNING id),"
	                      " t AS (DELETE FROM turns WHERE chat_id IN (SELECT id FROM gone))"
	                      " SELECT count(*) FROM gone",
	                      2, p, &r)) != CM_OK)
		return err;
	*deleted = (int)get_i64(r, 0, 0);
	cm_pg_result_free(r);
	return CM_OK;
}

/* ---- messages ---------------------------------------------------------------------------- */

cm_err
chat_store_list(cm_pg *pg, const char *chat_id, int64_t after, int limit, chat_msgs **out)
{
	char        a[24], l[16];
	const char *p[] = {chat_id, a, l};

	snprintf(a, sizeof(a), "%" PRId64, after);
	snprintf(l, sizeof(l), "%d", limit);
	return msgs_query(pg,
	                  "SELECT " MSG_COLS " FROM messages WHERE chat_id = $1::uuid AND seq >"
	                  " $2::bigint ORDER BY seq LIMIT $3::int",
	                  3, p, out);
}

cm_err
chat_store_recent(cm_pg *pg, const char *chat_id, int64_t before, int n, chat_msgs **out)
{
	char        b[24], l[16];
	const char *p[] = {chat_id, b, l};

	snprintf(b, sizeof(b), "%" PRId64, before);
	snprintf(l, sizeof(l), "%d", n);
	return msgs_query(pg,
	                  "SELECT * FROM (SELECT " MSG_COLS
	                  " FROM messages WHERE chat_id = $1::uuid"
	                  " AND seq < $2::bigint ORDER BY seq DESC LIMIT $3::int) m ORDER BY seq",
	                  3, p, out);
}

cm_err
chat_store_clear(cm_pg *pg, const char *chat_id, int *deleted)
{
	const char   *p[] = {chat_id};
	cm_pg_result *r = NULL;
	cm_err        err;

	*deleted = 0;
	if ((err = cm_pg_exec(pg, "DELETE FROM messages WHERE chat_id = $1::uuid", 1, p, &r)) ==
	    CM_OK)
		*deleted = (int)cm_pg_affected(r);
	cm_pg_result_free(r);
	return err;
}

/* ---- turns ------------------------------------------------------------------------------- */

cm_err
chat_store_turn_begin(cm_pg *pg, const chat_turn_begin *in, int64_t *seq)
{
	char          ttl[24], lim[16];
	const char   *p[] = {in->turn_id, in->owner,      in->chat_id, ttl,
	                     lim,         in->message_id, in->content};
	cm_pg_result *r = NULL;
	cm_err        err;

	*seq = 0;
	snprintf(ttl, sizeof(ttl), "%" PRId64, in->ttl_ms);
	snprintf(lim, sizeof(lim), "%d", in->user_limit);
	/* One statement, its own transaction: the function (migration 001) takes the owner's lock,
	 * counts and inserts. */
	if ((err = cm_pg_exec(
	         pg,
	         "SELECT turn_begin($1::uuid, $2, $3::uuid, $4::bigint, $5::int, $6::uuid,"
	         " $7)",
	         7, p, &r)) != CM_OK)
		return err;
	if (cm_pg_isnull(r, 0, 0))
		err = CM_ENOTFOUND;
	else if ((*seq = get_i64(r, 0, 0)) < 0)
		err = CM_ELIMIT;
	if (err != CM_OK)
		*seq = 0;
	cm_pg_result_free(r);
	return err;
}

/* "{1,3}" for the citations parameter. */
static void
int_array(const int *v, int n, char *out, size_t outlen)
{
	size_t used = 0;

	out[used++] = '{';
	for (int i = 0; i < n && used + 16 < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%d", i > 0 ? "," : "", v[i]);
	out[used++] = '}';
	out[used] = '\0';
}

cm_err
chat_store_turn_end(cm_pg *pg, const chat_answer *a, char created_at[40])
{
	char          cites[CHAT_MAX_CITATIONS * 12 + 4], keep[16];
	const char   *mp[] = {a->message_id,
	                      a->chat_id,
	                      a->content,
	                      cites,
                            a->complete ? "complete" : "incomplete",
                            a->error != NULL ? a->error : ""};
	const char   *tp[] = {a->turn_id};
	const char   *pp[] = {a->chat_id, keep};
	cm_pg_result *r = NULL;
	cm_err        err;

	created_at[0] = '\0';
	int_array(a->citations, a->ncitations, cites, sizeof(cites));
	snprintf(keep, sizeof(keep), "%d", a->max_messages);
	if ((err = cm_pg_begin(pg)) != CM_OK)
		return err;
	if ((err = cm_pg_exec(pg, "DELETE FROM turns WHERE id = $1::uuid", 1, tp, NULL)) != CM_OK ||
	    (err = cm_pg_exec(pg,
	                      "INSERT INTO messages (id, chat_id, role, content, citations, status,"
	                      " error) SELECT $1::uuid, c.id, 'assistant', $3, $4::int[], $5, $6"
	                      " FROM chats c WHERE c.id = $2::uuid RETURNING " TS("created_at"),
	                      6, mp, &r)) != CM_OK)
		goto out;
	if (cm_pg_nrows(r) == 1) {
		cm_strlcpy(created_at, cm_pg_get(r, 0, 0), 40);
		err = cm_pg_exec(
		    pg,
		    "DELETE FROM messages WHERE chat_id = $1::uuid AND seq <= (SELECT seq"
		    " FROM messages WHERE chat_id = $1::uuid ORDER BY seq DESC OFFSET"
		    " $2::int LIMIT 1)",
		    2, pp, NULL);
		if (err != CM_OK)
			goto out;
	}
	if ((err = cm_pg_commit(pg)) == CM_OK && created_at[0] == '\0')
		err = CM_ENOTFOUND; /* the turn is ended; the chat is gone */
out:
	cm_pg_result_free(r);
	if (err != CM_OK && err != CM_ENOTFOUND)
		cm_pg_rollback(pg);
	return err;
}

void
chat_store_turn_drop(cm_pg *pg, const char *turn_id)
{
	const char *p[] = {turn_id};

	if (cm_pg_exec(pg, "DELETE FROM turns WHERE id = $1::uuid", 1, p, NULL) != CM_OK)
		return; /* the row expires by itself */
}
