/*
 * types.c - names and parsing of svc-eval's enums, grade helpers (types.h).
 */
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "types.h"

const char *
eval_type_name(eval_type t)
{
	return t == EVAL_MCQ ? "mcq" : "open";
}

const char *
eval_strictness_name(eval_strictness s)
{
	switch (s) {
	case EVAL_EASY:
		return "easy";
	case EVAL_STRICT:
		return "strict";
	default:
		return "medium";
	}
}

const char *
eval_status_name(eval_status s)
{
	switch (s) {
	case EVAL_PENDING:
		return "pending";
	case EVAL_FAILED:
		return "failed";
	default:
		return "graded";
	}
}

bool
eval_strictness_parse(const char *s, eval_strictness *out)
{
	if (s == NULL || s[0] == '\0' || strcmp(s, "medium") == 0)
		*out = EVAL_MEDIUM;
	else if (strcmp(s, "easy") == 0)
		*out = EVAL_EASY;
	else if (strcmp(s, "strict") == 0)
		*out = EVAL_STRICT;
	else
		return false;
	return true;
}

void
eval_grade_fini(eval_grade *g)
{
	free(g->feedback);
	free(g->suggestions);
	free(g->hint);
	g->feedback = g->suggestions = g->hint = NULL;
}

bool
eval_grade_set(eval_grade *g, int score, const char *feedback, const char *suggestions,
               const char *hint)
{
	char *f = strdup(feedback != NULL ? feedback : "");
	char *s = strdup(suggestions != NULL ? suggestions : "");
	char *h = strdup(hint != NULL ? hint : "");

	if (f == NULL || s == NULL || h == NULL) {
		free(f);
		free(s);
		free(h);
		return false;
	}
	eval_grade_fini(g);
	g->score = score;
	g->feedback = f;
	g->suggestions = s;
	g->hint = h;
	return true;
}

void
eval_overall_fini(eval_overall *o)
{
	free(o->feedback);
	for (size_t i = 0; i < o->n_strengths; i++)
		free(o->strengths[i]);
	for (size_t i = 0; i < o->n_areas; i++)
		free(o->areas[i]);
	for (size_t i = 0; i < o->n_study; i++)
		free(o->study[i]);
	memset(o, 0, sizeof(*o));
}

bool
eval_list_add(char **list, size_t *n, const char *s)
{
	if (*n >= EVAL_MAX_LIST)
		return true;
	if ((list[*n] = strndup(s, eval_utf8_clip(s, EVAL_MAX_FEEDBACK))) == NULL)
		return false;
	(*n)++;
	return true;
}
