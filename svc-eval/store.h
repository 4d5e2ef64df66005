/*
 * store.h - svc-eval's SQL and Redis keys: attempts, their results, the grade cache. One
 * parameterised statement per function unless it says otherwise; the caller owns
 * transactions. Rows are read into malloc'd structs (eval_attempt_row_fini frees).
 */
#ifndef EVAL_STORE_H
#define EVAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/limits.h"
#include "cm/pg.h"
#include "cm/redis.h"
#include "types.h"

typedef struct eval_result_row {
	int         idx;
	char       *question_id;
	eval_type   type;
	eval_status status;
	char       *question;
	char       *reference;
	int         page;
	char       *answer;
	bool        via_model; /* pending when submitted */
	int         score;
	bool        correct;
	char       *feedback;
	char       *suggestions;
	char       *hint;
	char       *error;
	char       *source; /* "rule", "model", "cache", "offline" ("" while pending) */
} eval_result_row;

typedef struct eval_attempt_row {
	char             id[CM_UUID_LEN + 1];
	char             owner[129];
	char             set_id[CM_UUID_LEN + 1];      /* "" for legacy */
	char             document_id[CM_UUID_LEN + 1]; /* "" when none */
	char             document_sha256[65];          /* "" when unknown (v1) */
	char             job_id[CM_UUID_LEN + 1];      /* "" when none */
	char             status[16];
	eval_strictness  strictness;
	bool             want_overall;
	bool             overall_done;
	char             topic[EVAL_MAX_TOPIC + 1];
	eval_overall     overall;
	char             error[CM_MAX_ERRMSG];
	char             created_at[40];
	char             updated_at[40];
	eval_result_row *results;
	size_t           n_results;
} eval_attempt_row;

void eval_attempt_row_fini(eval_attempt_row *a);

/* Inserts the attempt and all its results (two statements; run inside the caller's
 * transaction). Strings of the rows must be valid UTF-8. CM_ENOTFOUND when the attempt names a
 * document whose deletion has been applied (cascade.h): nothing is inserted. */
CM_MUSTCHECK cm_err eval_store_insert_attempt(cm_pg *pg, const eval_attempt_row *a);
/* Deletes owner's attempts of a deleted document with their results (the cascade's work, inside
 * its transaction), calling fn(arg, job_id) first for each attempt that has a job, so the caller
 * can cancel it; *deleted receives how many attempts went. Idempotent. */
typedef void (*eval_job_fn)(void *arg, const char *job_id);
CM_MUSTCHECK cm_err eval_store_delete_document(cm_pg *pg, const char *document_id,
                                               const char *owner, eval_job_fn fn, void *arg,
                                               int *deleted);

/* Serialises submissions of one owner until the transaction ends (advisory lock), so the
 * active count below and the insert that follows it are one decision. */
CM_MUSTCHECK cm_err eval_store_lock_owner(cm_pg *pg, const char *owner);
/* Attempts of owner whose job is queued or running. */
CM_MUSTCHECK cm_err eval_store_active(cm_pg *pg, const char *owner, int *n);

/* Reads an attempt of owner (NULL: any owner); CM_ENOTFOUND otherwise. with_results loads
 * its results in idx order. *a is zeroed first. */
CM_MUSTCHECK cm_err eval_store_get_attempt(cm_pg *pg, const char *id, const char *owner,
                                           bool with_results, eval_attempt_row *a);
/* The attempt of a job, and its progress: results that needed the model (total) and those no
 * longer pending among them (done). CM_ENOTFOUND when the job has none. */
CM_MUSTCHECK cm_err eval_store_job_progress(cm_pg *pg, const char *job_id,
                                            char attempt_id[CM_UUID_LEN + 1], int *done,
                                            int *total);

/* queued -> running (other statuses stay). */
CM_MUSTCHECK cm_err eval_store_set_running(cm_pg *pg, const char *attempt_id);

/* A grade (or a failure) for one pending result. */
typedef struct eval_put {
	int         idx;
	eval_status status; /* EVAL_GRADED or EVAL_FAILED */
	int         score;
	bool        correct;
	const char *feedback, *suggestions, *hint, *error;
	const char *source;
	int         batch; /* -1: none */
} eval_put;

/* Writes n grades in one statement; rows that are no longer pending are left as they are
 * (another runner stored them first). *written (may be NULL) receives how many changed. */
CM_MUSTCHECK cm_err eval_store_put_grades(cm_pg *pg, const char *attempt_id, const eval_put *g,
                                          size_t n, int *written);

/* Stores the overall part once (later calls change nothing). */
CM_MUSTCHECK cm_err eval_store_put_overall(cm_pg *pg, const char *attempt_id,
                                           const eval_overall *o);

/* Ends an unfinished attempt with status "succeeded" or "failed" and an error text ("" for
 * none); *won is false when it had already ended. */
CM_MUSTCHECK cm_err eval_store_finish(cm_pg *pg, const char *attempt_id, const char *status,
                                      const char *error, bool *won);

/* ---- grade cache ----------------------------------------------------------------------------- */

/* One cache key's parts: the question's key (its text, reference and source, hashed by the
 * caller), the strictness and the model. */
typedef struct eval_cache_key {
	const char *qkey;
	const char *strictness;
	const char *model;
} eval_cache_key;

/* Calls fn with the cached answers to the question (newest first, at most
 * EVAL_CACHE_CANDIDATES, younger than ttl_s) until it returns false. */
typedef bool (*eval_cache_fn)(void *arg, const char *norm, const eval_grade *g);
CM_MUSTCHECK cm_err eval_store_cache_scan(cm_pg *pg, const eval_cache_key *k, int64_t ttl_s,
                                          eval_cache_fn fn, void *arg);
/* Keeps a grade for (key, normalised answer); an existing one stays. */
CM_MUSTCHECK cm_err eval_store_cache_put(cm_pg *pg, const eval_cache_key *k, const char *norm,
                                         const eval_grade *g);
/* Deletes grades older than ttl_s; *n (may be NULL) how many. */
CM_MUSTCHECK cm_err eval_store_cache_prune(cm_pg *pg, int64_t ttl_s, int64_t *n);

/* Redis: "eval:grade:v<prompt>:<sha256(qkey|strictness|model|norm)>" -> a grade as JSON. */
void eval_store_redis_key(const eval_cache_key *k, const char *norm, char out[96]);
/* Claims of answers being graded right now: "eval:grading:<the grade's Redis key>" holds the
 * grader's job id for ttl_ms. *claimed is true when this caller got it, or when Redis is down
 * (then everyone grades for themselves). *held (eval_store_claim_held) is false when the claim
 * is gone: its grader finished or gave up (or died and it expired). */
void eval_store_claim(cm_redis *r, const char *grade_key, const char *owner, int64_t ttl_ms,
                      bool *claimed);
void eval_store_claim_held(cm_redis *r, const char *grade_key, bool *held);
void eval_store_unclaim(cm_redis *r, const char *grade_key);

/* *found false on a miss, an unreadable value or Redis down (a cache, never required). */
void eval_store_redis_get(cm_redis *r, const char *key, eval_grade *g, bool *found);
void eval_store_redis_put(cm_redis *r, const char *key, const eval_grade *g, int64_t ttl_s);

#endif
