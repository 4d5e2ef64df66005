/*
 * jobs.h - a durable job queue in PostgreSQL that a service embeds in its own schema.
 *
 * A job is N tasks (index 0..N-1) of one `kind` with one opaque `params` blob. Workers claim
 * runnable tasks with SELECT ... FOR UPDATE SKIP LOCKED and hold each for a short lease that they
 * renew while working. A task whose lease expires is claimed again by another worker, so delivery
 * is at-least-once and task results are written idempotently, keyed by (job, task index): the
 * first completion of a task wins and counts once; later ones change nothing. A failed attempt is
 * retried after an exponential backoff with jitter; after max_attempts the task and its job fail
 * with the reason, so a job never hangs (a task whose lease keeps expiring, because the worker
 * keeps dying on it, also fails once it has used up its attempts). When the last task succeeds
 * the job succeeds in the same statement. Progress (total, done) lives in the job row.
 *
 * Schema. cm_jobs_migration_up/down are migration texts with unqualified table names (`jobs`,
 * `tasks`): a service lists them in its own cm_migration array, and the tables land in the
 * service's schema because its connection's search_path is that schema:
 *
 *     static const cm_migration migs[] = {
 *         {1, "init", ...},
 *         {2, "jobs", cm_jobs_migration_up, cm_jobs_migration_down},
 *     };
 *
 * Statuses: job queued -> running (first claim) -> succeeded | failed | cancelled;
 * task queued -> running (claimed) -> succeeded | failed, or back to queued for a retry; when
 * its job is cancelled or fails, an open task becomes cancelled. Running workers of such a job
 * see it through cm_jobs_is_cancelled / cm_jobs_renew, and their completions are refused.
 *
 * Transactions: the calls that end a job (cancel, a fail that gives up, a claim that finds a
 * task out of attempts) are meant to run outside a caller's transaction (autocommit); inside
 * one they still work, but hold the job row until the caller commits. A service whose own rows
 * must end with the job (the status of what the job was making) passes a cm_jobs_tx_fn to
 * cm_jobs_cancel_with / cm_jobs_fail_with instead: the module opens the transaction, ends the
 * job, runs the function on the same connection, commits, and only then closes the job's
 * tasks, so the lock order below holds (job row, then the caller's rows; never task rows while
 * holding the job row).
 *
 * Wake-up. cm_jobs_create NOTIFYs the handle's channel (on commit). An idle worker waits on a
 * cm_jobs_listener (its own connection, LISTEN) for a notification or its poll interval, then
 * claims; it must claim after every wait, notified or not, because retries that come due, expired
 * leases and notifications missed while the listener reconnected are only found by polling.
 *
 * Threads. A cm_jobs wraps one cm_pg and, like it, belongs to one thread at a time: give each
 * worker thread its own cm_pg, cm_jobs and cm_jobs_listener. Distinct handles are independent.
 *
 * Errors are cm_err; on CM_EUNAVAIL / CM_EINTERNAL the libpq message is on the cm_pg
 * (cm_pg_errmsg). Nothing is retried by this module: a call that failed may or may not have
 * taken effect, which every operation here tolerates (claims expire, completion is idempotent).
 */
#ifndef CM_JOBS_H
#define CM_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/limits.h"
#include "cm/pg.h"

/* Limits of this module (candidates for cm/limits.h). */
#define CM_JOBS_MAX_TASKS 100000               /* tasks per job */
#define CM_JOBS_MAX_CLAIM 256                  /* tasks per claim call */
#define CM_JOBS_MAX_KIND 64                    /* bytes of a kind */
#define CM_JOBS_MAX_OWNER 128                  /* bytes of an owner */
#define CM_JOBS_MAX_WORKER_ID 128              /* bytes of a worker id */
#define CM_JOBS_MAX_RESULT_ID 128              /* bytes of a job's result_id */
#define CM_JOBS_MAX_CHANNEL 63                 /* bytes of a NOTIFY channel (an identifier) */
#define CM_JOBS_MAX_BLOB (16u * 1024u * 1024u) /* params and task results */

/* Defaults for zero option fields. */
#define CM_JOBS_DEFAULT_CHANNEL "cm_jobs"
#define CM_JOBS_DEFAULT_LEASE_MS 30000
#define CM_JOBS_DEFAULT_MAX_ATTEMPTS 5
#define CM_JOBS_DEFAULT_BACKOFF_BASE_MS 1000
#define CM_JOBS_DEFAULT_BACKOFF_CAP_MS 60000

/* The migration texts (several statements each, no schema names). */
extern const char cm_jobs_migration_up[];
extern const char cm_jobs_migration_down[];

typedef enum cm_job_status {
	CM_JOB_QUEUED = 0,
	CM_JOB_RUNNING,
	CM_JOB_SUCCEEDED,
	CM_JOB_FAILED,
	CM_JOB_CANCELLED,
} cm_job_status;

/* "queued", "running", ... as stored in the tables; never NULL. */
const char *cm_job_status_name(cm_job_status s);

typedef struct cm_jobs cm_jobs;

/* Every field may be zero/NULL for its default. Strings are copied by cm_jobs_open. */
typedef struct cm_jobs_options {
	/* Names this worker in lease_owner; NULL: a random UUID. One id per cm_jobs. */
	const char *worker_id;
	/* NOTIFY/LISTEN channel: [a-z_][a-z0-9_]*. Channels are per database, not per schema,
	 * so use one per service ("qgen_jobs"); NULL: CM_JOBS_DEFAULT_CHANNEL. */
	const char *channel;
	int         lease_ms;        /* lease per claim and per renewal (>= 100) */
	int         max_attempts;    /* claims of a task before it fails for good (>= 1) */
	int         backoff_base_ms; /* retry n waits in [d/2, d], d = min(cap, base * 2^(n-1)) */
	int         backoff_cap_ms;
	/* Fair claims between owners: queued tasks are handed out by turn, a task's turn being its
	 * place in its owner's queue (1 for the owner's oldest runnable task) plus the owner's
	 * tasks running now, ties oldest first. An owner with 200 queued tasks then delays another
	 * owner's first task by at most one task per worker, instead of by all 200. The price: each
	 * claim ranks every runnable queued task (no index walk), so use it with a per-owner quota
	 * that keeps the queue short. false: oldest first. Expired leases go first either way. */
	bool fair;
} cm_jobs_options;

/* pg is borrowed (not owned) and must outlive the handle; opt may be NULL. CM_EINVAL on a bad
 * option. Opening does not touch the database. */
CM_MUSTCHECK cm_err cm_jobs_open(cm_jobs **out, cm_pg *pg, const cm_jobs_options *opt);
void                cm_jobs_close(cm_jobs *j);
const char         *cm_jobs_worker_id(const cm_jobs *j);

/* ---- producers ------------------------------------------------------------------------------ */

/* Creates a job with ntasks tasks (0..CM_JOBS_MAX_TASKS; 0 makes a job that has already
 * succeeded) and notifies the channel, in one statement: all or nothing. When the caller has a
 * transaction open on the cm_pg, the job joins it and the notification goes out on commit.
 * params (may be NULL when params_len is 0) is copied. job_id receives the new id. */
CM_MUSTCHECK cm_err cm_jobs_create(cm_jobs *j, const char *kind, const char *owner,
                                   const void *params, size_t params_len, int ntasks,
                                   char job_id[CM_UUID_LEN + 1]);

/* Cancels a queued or running job. owner NULL skips the owner check; a job of another owner is
 * CM_ENOTFOUND. Cancelling a cancelled job is CM_OK; a succeeded or failed one CM_EPRECOND. */
CM_MUSTCHECK cm_err cm_jobs_cancel(cm_jobs *j, const char *job_id, const char *owner);

/* The caller's part of the transaction that ends a job: changes to its own rows through pg
 * (the handle's connection, a transaction open). Anything but CM_OK rolls the job's end back
 * too, and is returned. */
typedef cm_err (*cm_jobs_tx_fn)(void *arg, cm_pg *pg);

/* cm_jobs_cancel with fn (may be NULL: plain cm_jobs_cancel) run in the same transaction when
 * the job is, or already was, cancelled: both change or neither. Not inside a caller's
 * transaction. */
CM_MUSTCHECK cm_err cm_jobs_cancel_with(cm_jobs *j, const char *job_id, const char *owner,
                                        cm_jobs_tx_fn fn, void *arg);

typedef struct cm_jobs_info {
	char          id[CM_UUID_LEN + 1];
	char          kind[CM_JOBS_MAX_KIND + 1];
	char          owner[CM_JOBS_MAX_OWNER + 1];
	cm_job_status status;
	int           total;
	int           done; /* tasks succeeded */
	bool          cancel_requested;
	char          error[CM_MAX_ERRMSG];                 /* "" unless failed */
	char          result_id[CM_JOBS_MAX_RESULT_ID + 1]; /* "" when unset */
	int64_t       created_ms;                           /* unix ms */
	int64_t       updated_ms;
} cm_jobs_info;

/* Reads a job's status and progress. owner NULL skips the owner check (workers); a job of
 * another owner is CM_ENOTFOUND. */
CM_MUSTCHECK cm_err cm_jobs_get(cm_jobs *j, const char *job_id, const char *owner,
                                cm_jobs_info *out);

/* Records what the job produced (e.g. the id of a stored question set). */
CM_MUSTCHECK cm_err cm_jobs_set_result_id(cm_jobs *j, const char *job_id, const char *result_id);

/* A task's result: on CM_OK *out is malloc'd (free it; non-NULL even when *len is 0).
 * CM_ENOTFOUND when there is no such task or it has not succeeded. */
CM_MUSTCHECK cm_err cm_jobs_result(cm_jobs *j, const char *job_id, int idx, uint8_t **out,
                                   size_t *len);

/* ---- workers -------------------------------------------------------------------------------- */

/* A claimed task. params is malloc'd and owned by the task: release with cm_jobs_tasks_fini. */
typedef struct cm_jobs_task {
	char     job_id[CM_UUID_LEN + 1];
	int      idx;
	int      attempt; /* 1 on the first claim */
	char     kind[CM_JOBS_MAX_KIND + 1];
	uint8_t *params; /* NULL when the job has none */
	size_t   params_len;
} cm_jobs_task;

/* Claims up to max (1..CM_JOBS_MAX_CLAIM) runnable tasks for this worker: queued ones whose
 * retry time has come and running ones whose lease expired, of jobs that are neither cancelled
 * nor finished, oldest first (or by owners' turns: cm_jobs_options.fair). Each claim counts as
 * an attempt; an expired task that has used its attempts fails (with its job) instead of being
 * handed out. *n may be 0. Never blocks on other workers (SKIP LOCKED). On failure *n is 0 and
 * nothing needs freeing. */
CM_MUSTCHECK cm_err cm_jobs_claim(cm_jobs *j, cm_jobs_task *tasks, int max, int *n);
void                cm_jobs_tasks_fini(cm_jobs_task *tasks, int n);

/* Extends this worker's lease on one task by lease_ms. *held is false when the lease was lost
 * (another worker claimed the task, or it finished); *cancelled (may be NULL) is true when the
 * job was cancelled or has failed, so the work is wasted. Either way the worker should stop. */
CM_MUSTCHECK cm_err cm_jobs_renew(cm_jobs *j, const char *job_id, int idx, bool *held,
                                  bool *cancelled);
/* Extends every lease this worker holds; *n (may be NULL) receives how many. */
CM_MUSTCHECK cm_err cm_jobs_renew_all(cm_jobs *j, int *n);

/* True when the job's result is no longer wanted: cancelled, failed, or gone. Cheap (one
 * primary-key read): check it between expensive steps. */
CM_MUSTCHECK cm_err cm_jobs_is_cancelled(cm_jobs *j, const char *job_id, bool *cancelled);

/* Records a task's result (len bytes, may be 0; copied). The first completion of a task wins,
 * whether from the lease holder or from a worker that lost its lease but finished anyway:
 * *won is true when this call recorded the result and counted it in `done`, false when the task
 * had already succeeded (the first result is kept). The job succeeds in the same statement when
 * this was its last task. CM_ECANCELED: the job was cancelled; CM_EPRECOND: the job or the
 * task has failed; CM_ENOTFOUND: no such task. won may be NULL. */
CM_MUSTCHECK cm_err cm_jobs_complete(cm_jobs *j, const char *job_id, int idx, const void *result,
                                     size_t len, bool *won);

/* Reports a failed attempt by the lease holder. reason (copied, truncated to CM_MAX_ERRMSG) is
 * kept on the task; the task is retried after the backoff unless it has used max_attempts or
 * `permanent` is set, in which case the task and its job fail with the reason (*gave_up true;
 * may be NULL). CM_EPRECOND when this worker no longer holds the lease (nothing changes: the
 * current holder owns the task). */
CM_MUSTCHECK cm_err cm_jobs_fail(cm_jobs *j, const char *job_id, int idx, const char *reason,
                                 bool permanent, bool *gave_up);

/* cm_jobs_fail with fn (may be NULL) run in the same transaction when the job fails for good
 * (*gave_up): the job and the caller's rows fail together or not at all. Not inside a caller's
 * transaction. */
CM_MUSTCHECK cm_err cm_jobs_fail_with(cm_jobs *j, const char *job_id, int idx, const char *reason,
                                      bool permanent, bool *gave_up, cm_jobs_tx_fn fn, void *arg);

/* ---- wake-up -------------------------------------------------------------------------------- */

typedef struct cm_jobs_listener cm_jobs_listener;

/* A dedicated connection that LISTENs on channel (an identifier, see cm_jobs_options). conninfo
 * and channel are copied. Connects lazily, like cm_pg: opening fails only on bad arguments. */
CM_MUSTCHECK cm_err cm_jobs_listener_open(cm_jobs_listener **out, const char *conninfo,
                                          const char *channel);
void                cm_jobs_listener_close(cm_jobs_listener *l);

/* Waits up to timeout_ms (>= 0) for a notification on the channel; returns early when one
 * arrives (all pending ones are consumed). *notified tells which. A wait that makes the
 * connection (the first one, and any after a loss) returns at once with *notified true, since
 * notifications sent while nobody listened are lost. When the connection is down it reconnects
 * (at most every CM_PG_RETRY_MS) and otherwise just sleeps out the timeout, so a worker degrades
 * to polling; the call still returns CM_OK. Only CM_EINVAL is an error. A (re)connect may take
 * up to the connect timeout beyond timeout_ms. */
CM_MUSTCHECK cm_err cm_jobs_listener_wait(cm_jobs_listener *l, int timeout_ms, bool *notified);

#endif
