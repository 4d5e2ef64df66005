/*
 * run.h - one attempt being graded by a runner (runner.c: its life; batches.c: its grading
 * phase). Internal to svc-eval's runners: a run belongs to the runner thread that claimed the
 * attempt; its call threads touch only the fields under mu.
 */
#ifndef EVAL_RUN_H
#define EVAL_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "parse.h"
#include "server.h"
#include "store.h"

#define EVAL_TICK_MS 200 /* how often a waiting runner looks at its lease */

/* One pending open answer. */
typedef struct job_item {
	eval_item item; /* strings borrowed from the attempt row; context and answer owned here */
	char     *context;
	char     *answer; /* the answer without sentences that speak to the grader (guard.h) */
	eval_cache_ref ref;
	bool           claimed; /* this runner grades it (others with the same answer wait) */
} job_item;

typedef struct batch {
	int           idx;
	job_item    **items;
	size_t        n;
	eval_parsed   out[10];
	int           calls;
	struct batch *next; /* finished, not yet stored */
} batch;

typedef struct run {
	eval_service    *svc;
	eval_worker     *w;
	const char      *job_id;
	eval_attempt_row a;
	job_item        *items; /* [0, nitems) to grade, then [.., + ndeferred) waiting */
	size_t           nitems;
	size_t           ndeferred; /* the same answers being graded by another attempt */
	int     total, done; /* progress: answers for the model, and those no longer pending */
	batch  *batches;
	size_t  nbatches;
	int     batch_base; /* batch numbers already used (a second round continues) */
	int64_t next_renew;
	bool    lost;                /* lease lost, or stopping: leave the job to whoever has it */
	int64_t t_context, t_grades; /* ms spent on source text, on grading calls */
	int     calls;

	pthread_mutex_t mu;
	pthread_cond_t  cv;
	size_t          next;    /* next batch to start */
	batch          *landed;  /* finished batches */
	int             running; /* call threads still working */
	bool            halt;    /* start no more batches */
	pthread_t       threads[64];
	int             nthreads;
} run;

/* Renews the lease when due; sets r->lost when it is gone or the service stops. */
void eval_run_keep_lease(run *r);
/* Waits on r->cv (mu held) for at most EVAL_TICK_MS. */
void eval_run_wait(run *r);
/* Publishes job.progress (done / total). */
void eval_run_progress(run *r);
/* Writes n grades of pending results and counts them as done. */
void eval_run_store(run *r, eval_put *puts, size_t n, const char *what);
/* Grades items[0..n) with the model in batches; stores each as it lands. */
void eval_run_batches(run *r, job_item *items, size_t n);
void eval_run_free_batches(run *r);
/* Without a model: every item graded offline, in one statement. */
void eval_run_offline(run *r);
/* Stores the cache hits, claims the misses; r->items becomes: to grade, waiting, hits. */
void eval_run_use_cache(run *r);
/* Waits for the answers being graded for another attempt (grading them here if abandoned). */
void eval_run_wait_deferred(run *r);

#endif
