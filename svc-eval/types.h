/*
 * types.h - svc-eval's vocabulary: question types, strictness, result status, and one answer
 * as the grader sees it (eval_item) with its grade (eval_grade).
 */
#ifndef EVAL_TYPES_H
#define EVAL_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef enum eval_type {
	EVAL_MCQ = 0,
	EVAL_OPEN,
} eval_type;

typedef enum eval_strictness {
	EVAL_EASY = 0,
	EVAL_MEDIUM,
	EVAL_STRICT,
} eval_strictness;

typedef enum eval_status {
	EVAL_GRADED = 0,
	EVAL_PENDING,
	EVAL_FAILED,
} eval_status;

/* "mcq"/"open", "easy"/"medium"/"strict", "graded"/"pending"/"failed". */
const char *eval_type_name(eval_type t);
const char *eval_strictness_name(eval_strictness s);
const char *eval_status_name(eval_status s);
/* "" parses as medium. False for anything else. */
bool eval_strictness_parse(const char *s, eval_strictness *out);

/* A grade: score 0..10 and three texts (malloc'd, never NULL once set; eval_grade_fini frees). */
typedef struct eval_grade {
	int   score;
	char *feedback;
	char *suggestions;
	char *hint;
} eval_grade;

void eval_grade_fini(eval_grade *g);
/* Sets the texts (copied; NULL is ""). Returns false on allocation failure. */
bool eval_grade_set(eval_grade *g, int score, const char *feedback, const char *suggestions,
                    const char *hint);

/* One open answer to grade: what the prompt, the guard, the cache and the offline grader read.
 * Strings are borrowed from whoever built the item. */
typedef struct eval_item {
	int         idx; /* the result's position in the attempt */
	const char *question;
	const char *reference; /* "" when none */
	const char *context;   /* source text ("" when none) */
	const char *answer;
} eval_item;

/* The overall part of an attempt: feedback and three short lists (each entry malloc'd). */
typedef struct eval_overall {
	char  *feedback;
	char  *strengths[EVAL_MAX_LIST];
	size_t n_strengths;
	char  *areas[EVAL_MAX_LIST];
	size_t n_areas;
	char  *study[EVAL_MAX_LIST];
	size_t n_study;
} eval_overall;

void eval_overall_fini(eval_overall *o);
/* Appends a copy of s (clipped to EVAL_MAX_FEEDBACK bytes) unless the list is full. False on
 * allocation failure. */
bool eval_list_add(char **list, size_t *n, const char *s);

#endif
