/*
 * score.h - what is scored without a model: multiple choice by option index, letter or option
 * text; totals, percentage and grade letter; and the overall summary written from the scores
 * (for attempts that need no model, or when the model's summary could not be had).
 */
#ifndef EVAL_SCORE_H
#define EVAL_SCORE_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "types.h"

/* The option an answer names by its letter: "b", " B ", "B)", "(b)", "b.", "B) Paris",
 * "option B"; case and spaces ignored. -1 when the answer is no letter form, or names a letter
 * past noptions (noptions 0: A-D). A letter followed by text needs ")", "." or ":" after it, so
 * "a plant" is not option A. */
int eval_mcq_letter(const char *answer, size_t noptions);

/* The option whose text equals the answer after normalisation (text.h); a leading "A) " style
 * label on an option is ignored. -1 when none. */
int eval_mcq_option_text(const char *answer, char *const *options, size_t noptions);

/* The option an answer chose: its text first (an option may itself be a single letter), then
 * its letter. -1 when it names none. */
int eval_mcq_choice(const char *answer, char *const *options, size_t noptions);

/* Percentage with one decimal (0.0 when max is 0) and the letter: A >= 90, B >= 80, C >= 70,
 * D >= 60, else F. */
double      eval_percentage(int score, int max);
const char *eval_grade_letter(double percentage);

/* One scored answer, as the summary reads it. */
typedef struct eval_scored {
	const char *question;
	bool        mcq;
	int         score; /* 0..10 */
	bool        graded;
	int         page; /* 0 when unknown */
} eval_scored;

/* The overall feedback, strengths, areas for improvement and study suggestions, written from
 * the scores alone (*out zeroed by the caller; eval_overall_fini frees). */
CM_MUSTCHECK cm_err eval_summarize(const eval_scored *items, size_t n, eval_overall *out);

#endif
