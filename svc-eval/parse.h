/*
 * parse.h - reading a model's grading and overall replies (prompt.h gives the shapes).
 *
 * Lenient about form, strict about content. The grades may sit under "grades", "results" or
 * "items" (or be the whole reply when it is one array); an id may be a string or a number; the
 * texts may be named "suggestion"/"suggestions" and "hint"/"correct_answer_hint". But a score
 * must be a number 0-10 (a string holding one is accepted; a fraction is rounded) and feedback a
 * non-empty string: anything else leaves the item ungraded with the reason, so the caller asks
 * again for exactly those items and never invents a score. Ids not asked for are ignored; an
 * id given twice keeps its first entry. Texts are clipped to EVAL_MAX_FEEDBACK bytes.
 */
#ifndef EVAL_PARSE_H
#define EVAL_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "types.h"

typedef struct eval_parsed {
	bool       ok;      /* grade holds a valid grade */
	eval_grade grade;   /* free with eval_grade_fini (also when !ok: may be partly set) */
	char       why[96]; /* !ok: "missing from the reply", "score 12 out of range", ... */
} eval_parsed;

/* Parses a grading reply (json[0..len), not necessarily terminated) for the n ids asked.
 * out[i] (zeroed by the caller) answers ids[i]. CM_OK when the reply had a list of grades
 * (items may still be !ok); CM_EPROTO when it held nothing usable (every out[i].why says so). */
CM_MUSTCHECK cm_err eval_parse_grades(const char *json, size_t len, const char *const *ids,
                                      size_t n, eval_parsed *out);

/* Parses an overall reply into *out (zeroed by the caller; eval_overall_fini frees).
 * CM_EPROTO without a non-empty overall_feedback; lists that are missing stay empty. */
CM_MUSTCHECK cm_err eval_parse_overall(const char *json, size_t len, eval_overall *out);

#endif
