/*
 * batch.h - one generation call: a batch plan (plan.h) becomes a prompt, the prompt a model
 * answer, the answer validated questions (quality.h) that are true to the chunk the model
 * read (grounding.h). Nothing here touches a database or another thread's state: the call pool
 * (pool.h) runs qgen_batch_call on its threads, and the runner stores what comes back.
 */
#ifndef QGEN_BATCH_H
#define QGEN_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cm/err.h"
#include "cm/limits.h"
#include "grounding.h"
#include "plan.h"
#include "server.h"
#include "types.h"

struct qgen_batch_result;

/* Hands a streamed question (a piece, below) of call `from` to the call's owner; set by the
 * pool before the call starts, NULL when nobody takes pieces (the call then returns them all
 * in its result). Takes ownership of piece. */
typedef void (*qgen_batch_emit_fn)(void *ctx, struct qgen_batch_result *from,
                                   struct qgen_batch_result *piece);

/* One call, from its plan to what it brought. Owned by whoever holds it (the pool, then the
 * runner); free with qgen_batch_result_free.
 *
 * Streamed calls (QGEN_STREAM, the default) hand each valid, grounded question over as soon as
 * the model has written it: a piece is a result with `piece` set, the plan and hedge flag of
 * its call, and one question in qs. The call's own result still comes last, with every
 * question it handed over first in qs (`delivered` of them) and any it kept after them. */
typedef struct qgen_batch_result {
	qgen_batch_plan plan;
	cm_err          err;                /* CM_OK: qs holds the valid questions (maybe none) */
	char            why[CM_MAX_ERRMSG]; /* on failure */
	int             rejected;           /* questions the validity checks dropped */
	int             verdicts[QGEN_GROUND_NVERDICTS]; /* valid ones; all but GROUNDED dropped */
	qgen_qlist      qs;
	const char     *model;   /* the model that answered (the LLM client's string);
	                            NULL when no call reached one */
	int64_t tokens;          /* prompt + completion the provider reported, all tries */
	bool    hedge;           /* a duplicate of a batch already out (hedge.h) */
	bool    piece;           /* one streamed question of a call still running (above) */
	int64_t bytes;           /* piece: the bytes of its object in the answer */
	int     delivered;       /* the call's result: questions handed over as pieces (qs[0..]) */
	int     npieces;         /* pieces the pool passed on so far (under the pool's lock) */
	int64_t prompt_tokens;   /* of the last try: reported, or estimated when cut off */
	int64_t tail_tokens;     /* a cancelled stream: what came after its last question */
	qgen_batch_emit_fn emit; /* see above; with emit_ctx */
	void              *emit_ctx;
	atomic_bool        cancel; /* set by the pool's owner: the call stops (CM_ECANCELED) */
	int64_t            started_ms, ended_ms; /* monotonic; started_ms 0: it never started */
	struct qgen_batch_result *next;          /* the pool's list */
} qgen_batch_result;

/* What every call of one job shares; read-only while calls run. */
typedef struct qgen_batch_job {
	qgen_service     *svc; /* svc->llm must be set */
	const char       *job_id;
	const qgen_chunk *chunks; /* plan.chunk indexes these */
	qgen_difficulty   difficulty;
	const char       *topic; /* "" for none */
} qgen_batch_job;

/* A result for plan, nothing made yet (err CM_OK, no questions). NULL when out of memory. */
qgen_batch_result *qgen_batch_result_alloc(const qgen_batch_plan *plan);
void               qgen_batch_result_free(qgen_batch_result *r);

/* Makes the call of r->plan for job (a qgen_batch_job *) and fills r, asking once more when
 * the answer is not usable JSON (the LLM client already retried 429/5xx). Stops with
 * CM_ECANCELED soon after r->cancel is set (the transfer is aborted). Thread-safe. */
void qgen_batch_call(void *job, qgen_batch_result *r);

#endif
