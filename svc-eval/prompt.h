/*
 * prompt.h - the versioned prompts of grading (EVAL_PROMPT_VERSION): one call grades a batch of
 * open answers, one more writes an attempt's overall feedback.
 *
 * The user message starts with machine-readable lines that test/fakellm recognises and a model
 * reads naturally ("TASK: grade", "STRICTNESS: ...", "ITEMS: n"), then "DATA:" and one JSON
 * document. Every text that came from outside - the student's answer, and also the question,
 * the reference answer and the page, which a user of the legacy route or a PDF's author wrote
 * - is a JSON string there, escaped so it cannot end its string or forge a line or a tag
 * (eval_append_quoted): answers are data, never instructions, and the system message says so.
 *
 * Grading reply: {"grades":[{"id":"<id>","score":0-10,"feedback":str,"suggestion":str,
 * "hint":str}]} with one entry per item. Overall reply: {"overall_feedback":str,
 * "strengths":[str],"areas_for_improvement":[str],"study_suggestions":[str]}.
 */
#ifndef EVAL_PROMPT_H
#define EVAL_PROMPT_H

#include <stddef.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "types.h"

/* The system message of a grading call for the given strictness (static text). */
const char *eval_prompt_grade_system(eval_strictness s);
/* The user message for n items; item i is asked under id ids[i]. */
CM_MUSTCHECK cm_err eval_prompt_grade_user(eval_strictness s, const eval_item *const *items,
                                           char *const *ids, size_t n, cm_buf *out);
/* Output tokens to allow for n grades. */
int eval_prompt_grade_max_tokens(size_t n);

/* One graded answer as the overall prompt shows it. */
typedef struct eval_overall_item {
	const char *question;
	const char *type;
	int         score;
	const char *feedback;
} eval_overall_item;

const char         *eval_prompt_overall_system(void);
CM_MUSTCHECK cm_err eval_prompt_overall_user(const char *topic, int score, int max,
                                             const eval_overall_item *items, size_t n, cm_buf *out);
int                 eval_prompt_overall_max_tokens(void);

#endif
