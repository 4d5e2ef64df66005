/*
 * store.h - svc-qgen's SQL: question sets and the batches of running jobs. One
 * parameterised statement per function, and the caller owns transactions - except where a
 * job and its set end together (cancel, fail): those functions run the job queue's call and
 * the set's update in one transaction of their own.
 */
#ifndef QGEN_STORE_H
#define QGEN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/jobs.h"
#include "cm/limits.h"
#include "cm/pg.h"
#include "types.h"

typedef struct qgen_set_row {
	char     id[CM_UUID_LEN + 1];
	char     owner[129];
	char     document_id[CM_UUID_LEN + 1];
	char     sha256[65];
	char     job_id[CM_UUID_LEN + 1]; /* "" when none (a cached set) */
	char     status[16];
	int      count;
	char     types[16]; /* "mcq", "open" or "mcq,open" */
	char     difficulty[8];
	char     topic[QGEN_MAX_TOPIC + 1];
	int      first_page, last_page;
	bool     cached;
	int      progress;
	char     error[CM_MAX_ERRMSG];
	char     created_at[40];
	uint8_t *questions; /* packed qgen.QuestionList; malloc'd by qgen_store_get_set, or NULL */
	size_t   questions_len;
} qgen_set_row;

/* Inserts a set (row->id, owner, document, sha256, job_id or "", status, count, types,
 * difficulty, topic, pages, cached, questions when given). CM_ENOTFOUND when the document has
 * been deleted (cm_follow_tombstone, cm/follow.h): no set is ever created for a deleted document.
 */
CM_MUSTCHECK cm_err qgen_store_insert_set(cm_pg *pg, const qgen_set_row *row);

/* Takes owner's quota lock until the transaction ends (advisory, transaction-level), so that
 * counting the owner's open sets and inserting a new one are one decision: parallel creates of
 * one owner, on any replica, queue here one after the other. Inside a transaction only. */
CM_MUSTCHECK cm_err qgen_store_lock_owner(cm_pg *pg, const char *owner);
/* owner's sets whose job is queued or running, and the questions they ask for. */
CM_MUSTCHECK cm_err qgen_store_active(cm_pg *pg, const char *owner, int *sets, int *questions);

/* Reads a set of owner (NULL: any owner); CM_ENOTFOUND otherwise. with_questions loads the blob
 * (free row->questions). */
CM_MUSTCHECK cm_err qgen_store_get_set(cm_pg *pg, const char *id, const char *owner,
                                       bool with_questions, qgen_set_row *row);
/* The set of a job (progress and status); CM_ENOTFOUND when none. */
CM_MUSTCHECK cm_err qgen_store_get_set_by_job(cm_pg *pg, const char *job_id, qgen_set_row *row);

/* Moves an unfinished set to status (running/failed/cancelled) with an error text ("" for none);
 * a finished set is left alone. */
CM_MUSTCHECK cm_err qgen_store_set_status(cm_pg *pg, const char *set_id, const char *status,
                                          const char *error);
/* Cancels job_id (of owner; NULL: any owner) and moves its set to "cancelled" with reason, in
 * one transaction on the job queue's connection (jobs): both change or neither. set (may be
 * NULL) receives the set as it was read in that transaction (set->id "" when the job has
 * none). Errors as cm_jobs_cancel's: CM_ENOTFOUND, CM_EPRECOND (the job has finished). */
CM_MUSTCHECK cm_err qgen_store_cancel_job(cm_jobs *jobs, const char *job_id, const char *owner,
                                          const char *reason, qgen_set_row *set);
/* Reports a failed attempt of job_id's task 0 (cm_jobs_fail); when the job fails for good
 * (*gave_up, may be NULL), set_id fails with reason in the same transaction. */
CM_MUSTCHECK cm_err qgen_store_fail_job(cm_jobs *jobs, const char *job_id, const char *set_id,
                                        const char *reason, bool permanent, bool *gave_up);
/* Records progress (valid questions so far) of an unfinished set. */
CM_MUSTCHECK cm_err qgen_store_set_progress(cm_pg *pg, const char *set_id, int done);
/* Writes the questions and marks the set succeeded, once: *won is false when it had already
 * finished (another replica's copy of the job got there first, or it was cancelled). */
CM_MUSTCHECK cm_err qgen_store_finish_set(cm_pg *pg, const char *set_id, const void *blob,
                                          size_t len, bool *won);

/* Keeps one call's validated questions; the first write of (job, idx) wins. */
CM_MUSTCHECK cm_err qgen_store_put_batch(cm_pg *pg, const char *job_id, int idx, const void *blob,
                                         size_t len);
/* Calls fn for every stored batch of the job, in idx order. fn's blob is valid during the call. */
typedef cm_err (*qgen_batch_fn)(void *arg, int idx, const uint8_t *blob, size_t len);
CM_MUSTCHECK cm_err qgen_store_batches(cm_pg *pg, const char *job_id, qgen_batch_fn fn, void *arg);
/* Deletes owner's sets of a document (with their jobs' batches); fn (may be NULL) is called with
 * each deleted set's job id ("" for a cached set) before the rows go. *n receives the count. */
typedef void (*qgen_job_fn)(void *arg, const char *job_id);
CM_MUSTCHECK cm_err qgen_store_delete_document(cm_pg *pg, const char *document_id,
                                               const char *owner, qgen_job_fn fn, void *arg,
                                               int *n);

/* Drops a finished job's batches (they are only needed while it runs). */
CM_MUSTCHECK cm_err qgen_store_drop_batches(cm_pg *pg, const char *job_id);

#endif
