/*
 * cache.h - the grade cache: a grade is kept by (question, strictness, model, normalised
 * answer), and an answer near-identical to a kept one reuses its grade.
 *
 * The question's key (qkey) hashes the prompt version, the question's type and text, its
 * reference answer and the source text it is graded against: the same question graded against
 * other material is another question. Lookups go to Redis by the exact key first (one GET);
 * on a miss, PostgreSQL's grade_cache rows for the question (the durable copy, newest first)
 * are compared: the same normalised answer, or one whose word-pair shingles overlap at least
 * EVAL_NEAR_PCT percent (text.h: never across a difference in negation or numbers). A hit found
 * there is written back to Redis under the new answer's key. Only model grades are kept (the
 * offline grader is cheaper than a lookup); Redis down only makes lookups slower.
 */
#ifndef EVAL_CACHE_H
#define EVAL_CACHE_H

#include <stdbool.h>

#include "server.h"
#include "types.h"

typedef struct eval_cache_ref {
	char  qkey[65];
	char *norm; /* the normalised answer (malloc'd) */
	char  redis_key[96];
} eval_cache_ref;

/* Builds the item's key parts for strictness s under the service's model. */
CM_MUSTCHECK cm_err eval_cache_ref_init(eval_cache_ref *r, const eval_service *s,
                                        eval_strictness st, const eval_item *it);
void                eval_cache_ref_fini(eval_cache_ref *r);

/* Looks the answer up; on a hit *g (zeroed by the caller) holds the grade and *near tells
 * whether it came from another, near-identical answer. Counts lookups and hits. */
void eval_cache_lookup(eval_worker *w, eval_strictness st, const eval_cache_ref *r, eval_grade *g,
                       bool *hit, bool *near);

/* Keeps a model's grade (Redis and PostgreSQL; failures are logged, never fatal). */
void eval_cache_put(eval_worker *w, eval_strictness st, const eval_cache_ref *r,
                    const eval_grade *g);

#endif
