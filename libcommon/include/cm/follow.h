/*
 * follow.h - a service applies another service's deletion log to its own data, at least once.
 *
 * The producer (svc-pdf for documents) records each deletion in its own schema in the
 * transaction that deletes, with a sequence number that grows in commit order, and serves the log
 * as "<service>.Deletions" (cm.DeletionsRequest -> cm.DeletionsResponse, proto/common.proto) to
 * services only (CM_ROLE_SERVICE). A consumer (svc-qgen, svc-eval, svc-chat) runs a
 * cm_follower: a thread that asks for the entries after its cursor and, for each, calls the
 * consumer's apply callback and then moves the cursor, all in ONE transaction of the consumer's
 * database. So a crash, a PostgreSQL outage or an unreachable producer loses nothing: the entries
 * are asked for again. An entry is applied twice only when a round's outcome was unknown (the
 * connection dropped during COMMIT), but apply must be idempotent ("delete what belongs to id"
 * is).
 *
 * Schema. The consumer's schema holds the cursors (follow_cursors) and the tombstones of deleted
 * documents (known_documents), created by cm_follow_migration_up (below) as one of its migrations.
 * One row per followed log (cfg.source), created on first use. log_id is the identity the
 * producer sends with its log (cm.DeletionsResponse.log_id): when it changes, the log was made
 * anew and its seq started over, so the follower starts over from 0 (CM-FOLLOW-RESET) instead of
 * waiting, silently, for the new seq to pass its old cursor.
 *
 * Replicas. Every replica of the consumer runs a follower of the same source. A round reads
 * the cursor, fetches, then locks the cursor row (FOR UPDATE SKIP LOCKED): while one replica
 * applies a batch the others skip the round, and a replica that finds the cursor moved since
 * it fetched applies only the entries past it.
 *
 * Timing. A round runs every poll_ms, at once after a full batch (catching up), sooner when
 * cm_follower_wake() is called (e.g. from an event), and after a failure with a doubling
 * back-off up to CM_FOLLOW_BACKOFF_MAX_MS. Failing is logged once, at the second round in a row
 * that fails (CM-FOLLOW-FAIL; a single miss, such as the producer not yet connected at start, is
 * only debug), and once when it ends (CM-FOLLOW-OK).
 *
 * Threads. The follower owns its thread and its PostgreSQL connection (cfg.schema is its
 * search_path); apply runs on that thread with that connection, inside the round's transaction
 * (apply must not commit). The RPC client is shared and not owned.
 */
#ifndef CM_FOLLOW_H
#define CM_FOLLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/pg.h"
#include "cm/rpc.h"

#define CM_FOLLOW_BATCH_DEFAULT 100
#define CM_FOLLOW_BATCH_MAX 1000       /* entries per Deletions call (the producer's cap too) */
#define CM_FOLLOW_BACKOFF_MAX_MS 30000 /* longest wait after failures */
#define CM_FOLLOW_MAX_SOURCE 64        /* bytes of a source name */
#define CM_FOLLOW_MAX_LOG_ID 64        /* bytes of a log id */

/* Applies one deletion (id and owner as the producer recorded them) with pg, inside the round's
 * transaction. CM_OK, or an error: the round rolls back and is retried later. */
typedef cm_err (*cm_follow_apply_fn)(void *arg, cm_pg *pg, int64_t seq, const char *id,
                                     const char *owner);

typedef struct cm_follower_config {
	const char        *source; /* cursor name and log label, e.g. "pdf.Deletions" */
	cm_rpc_client     *client; /* the producer (not owned) */
	const char        *method; /* e.g. "pdf.Deletions" */
	int64_t            rpc_timeout_ms;
	const char        *database_url; /* the consumer's database */
	const char        *schema;       /* the consumer's schema (holds follow_cursors) */
	int64_t            poll_ms;
	int                batch; /* entries per round; 0 = CM_FOLLOW_BATCH_DEFAULT */
	cm_follow_apply_fn apply;
	void              *arg;
} cm_follower_config;

typedef struct cm_follower cm_follower;

/* Starts the thread (cfg and its strings are copied; client and arg must outlive the follower).
 * Nothing is fetched before the thread runs; start does not wait for the producer. */
CM_MUSTCHECK cm_err cm_follower_start(cm_follower **out, const cm_follower_config *cfg);
/* Runs a round soon. Thread-safe; never blocks for long (it may be called from nng callbacks). */
void cm_follower_wake(cm_follower *f);
/* Stops and joins the thread (a round in progress finishes or rolls back first), frees. NULL is
 * fine. */
void cm_follower_stop(cm_follower *f);

/* One round on the caller's thread with the caller's connection (tests, tools): fetches after
 * the cursor, applies and moves the cursor in one transaction. *applied receives how many entries
 * were applied (0 when there were none, or when another replica held the cursor). */
CM_MUSTCHECK cm_err cm_follow_round(const cm_follower_config *cfg, cm_pg *pg, int *applied);

/* The cursor of source (0 when it has none yet). */
CM_MUSTCHECK cm_err cm_follow_cursor(cm_pg *pg, const char *source, int64_t *seq);

/* svc-pdf's log of deleted documents, as every consumer follows it: cfg filled for the
 * producer client pdf ("pdf.Deletions", CM_FOLLOW_PDF_POLL_MS, CM_FOLLOW_PDF_TIMEOUT_MS), the
 * consumer's database and schema, and apply(arg). */
#define CM_FOLLOW_PDF_SOURCE "pdf.Deletions" /* the log's method, and its cursor's name */
#define CM_FOLLOW_PDF_POLL_MS 1000           /* how often the log is asked for news */
#define CM_FOLLOW_PDF_TIMEOUT_MS 5000        /* one Deletions call */
void cm_follow_pdf_deletions(cm_follower_config *cfg, cm_rpc_client *pdf, const char *database_url,
                             const char *schema, cm_follow_apply_fn apply, void *arg);

/* ---- the consumer's tables (follow_schema.c) ----------------------------------------------
 * cm_follow_migration_up/down create and drop follow_cursors and known_documents (the
 * tombstones of deleted documents); a service lists them as one of its migrations
 * (cm_service_def.follow_version). svc-qgen, the first consumer, has the same tables in its own
 * migration 003. */
extern const char cm_follow_migration_up[];
extern const char cm_follow_migration_down[];

#define CM_FOLLOW_TOMBSTONE_S (24 * 3600) /* seconds a deleted document is remembered */

/* The head of a statement that creates something for document $n only while it is not deleted:
 * it takes (upserts and locks) the document's row as `d`; follow it with
 * "INSERT INTO t (...) SELECT ... FROM d WHERE d.deleted_at IS NULL". A deletion being applied
 * makes it wait, then insert nothing. */
#define CM_FOLLOW_LIVE_DOCUMENT(n)                                                                 \
	"WITH d AS (INSERT INTO known_documents (document_id) VALUES ($" #n "::uuid)"              \
	"  ON CONFLICT (document_id) DO UPDATE SET deleted_at = known_documents.deleted_at"        \
	"  RETURNING deleted_at) "

/* Marks document_id deleted (an apply callback's first step, inside the round's transaction):
 * from its commit on, no CM_FOLLOW_LIVE_DOCUMENT statement creates anything for it. An id that
 * is not a uuid is ignored. */
CM_MUSTCHECK cm_err cm_follow_tombstone(cm_pg *pg, const char *document_id);
/* Drops tombstones older than max_age_s seconds. */
CM_MUSTCHECK cm_err cm_follow_prune_tombstones(cm_pg *pg, int64_t max_age_s);

#endif
