/*
 * offline.h - grading without a model (no LLM_BASE_URL): how much of the reference answer's key
 * terms an answer covers, and how much of the answer the reference or the source page supports.
 *
 * score = round(10 * f), f = 0.7 * coverage + 0.3 * support with a reference answer; without
 * one, f = support * min(1, terms / 8) (an answer grounded in the page, and not a word or two);
 * easy multiplies f by 1.2 (at most 1), strict by 0.85. With neither a reference nor source
 * text there is nothing to compare with: the item is not graded (false, with the reason). The
 * feedback says the grade was made offline, which terms matched and which were missing.
 */
#ifndef EVAL_OFFLINE_H
#define EVAL_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"

/* The overlap figures both the offline grader and the guard use. */
typedef struct eval_overlap {
	size_t answer_terms;    /* key terms of the answer */
	size_t reference_terms; /* of the reference answer */
	size_t context_terms;   /* of the source text */
	size_t covered;         /* reference terms found in the answer */
	size_t supported;       /* answer terms found in the reference or the source */
} eval_overlap;

/* CM_ENOMEM only. */
CM_MUSTCHECK cm_err eval_overlap_of(const eval_item *it, eval_overlap *out);

/* The offline score of an answer (0..10), from its overlap; -1 when there is nothing to compare
 * with (neither reference nor source terms). */
int eval_offline_score(const eval_overlap *o, eval_strictness s);

/* Grades one answer offline into *out (zeroed by the caller). False with why set when it cannot
 * be graded (nothing to compare with, or out of memory). */
bool eval_offline_grade(const eval_item *it, eval_strictness s, eval_grade *out, char *why,
                        size_t whylen);

#endif
