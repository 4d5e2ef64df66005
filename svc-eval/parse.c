/*
 * parse.c - grading and overall replies (parse.h), with jansson.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "text.h"

/* The list of grades in a reply, or NULL. */
static json_t *
grades_of(json_t *root)
{
	static const char *const keys[] = {"grades", "results", "items", "evaluations"};

	if (json_is_array(root))
		return root;
	if (!json_is_object(root))
		return NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *a = json_object_get(root, keys[i]);
		if (json_is_array(a))
			return a;
	}
	return NULL;
}

/* The entry's id as text ("" when it has none usable). */
static void
id_of(json_t *e, char *out, size_t outlen)
{
	json_t *id = json_object_get(e, "id");

	out[0] = '\0';
	if (id == NULL)
		id = json_object_get(e, "question_id");
	if (json_is_string(id))
		snprintf(out, outlen, "%s", json_string_value(id));
	else if (json_is_integer(id))
		snprintf(out, outlen, "%lld", (long long)json_integer_value(id));
}

/* Reads a score; false with why set when it is not a number 0..10. */
static bool
score_of(json_t *v, int *score, char *why, size_t whylen)
{
	double d;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || i > 10) {
			snprintf(why, whylen, "score %lld out of range 0-10", (long long)i);
			return false;
		}
		*score = (int)i;
		return true;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char       *end = NULL;
		while (isspace((unsigned char)*s))
			s++;
		d = strtod(s, &end);
		if (end == s) {
			snprintf(why, whylen, "score is not a number");
			return false;
		}
		while (isspace((unsigned char)*end))
			end++;
		if (strncmp(end, "/10", 3) == 0)
			end += 3;
		while (isspace((unsigned char)*end))
			end++;
		if (*end != '\0') {
			snprintf(why, whylen, "score is not a number");
			return false;
		}
	} else {
		snprintf(why, whylen, v == NULL ? "no score" : "score is not a number");
		return false;
	}
	if (!isfinite(d) || d < 0.0 || d > 10.0) {
		snprintf(why, whylen, "score %.3g out of range 0-10", isfinite(d) ? d : 0.0);
		return false;
	}
	*score = (int)lround(d);
	return true;
}

/* The first string among the keys ("" when none). */
static const char *
text_of(json_t *e, const char *k1, const char *k2)
{
	json_t *v = json_object_get(e, k1);

	if (!json_is_string(v) && k2 != NULL)
		v = json_object_get(e, k2);
	return json_is_string(v) ? json_string_value(v) : "";
}

static bool
blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/* A copy clipped to EVAL_MAX_FEEDBACK bytes (jansson strings are valid UTF-8). */
static char *
clip(const char *s)
{
	return strndup(s, eval_utf8_clip(s, EVAL_MAX_FEEDBACK));
}

static void
read_entry(json_t *e, eval_parsed *p)
{
	int   score = 0;
	char *f = NULL, *s = NULL, *h = NULL;

	if (!score_of(json_object_get(e, "score"), &score, p->why, sizeof(p->why)))
		return;
	if (blank(text_of(e, "feedback", NULL))) {
		snprintf(p->why, sizeof(p->why), "no feedback");
		return;
	}
	f = clip(text_of(e, "feedback", NULL));
	s = clip(text_of(e, "suggestion", "suggestions"));
	h = clip(text_of(e, "hint", "correct_answer_hint"));
	if (f == NULL || s == NULL || h == NULL) {
		snprintf(p->why, sizeof(p->why), "out of memory");
		free(f);
		free(s);
		free(h);
		return;
	}
	eval_grade_fini(&p->grade);
	p->grade.score = score;
	p->grade.feedback = f;
	p->grade.suggestions = s;
	p->grade.hint = h;
	p->ok = true;
	p->why[0] = '\0';
}

cm_err
eval_parse_grades(const char *json, size_t len, const char *const *ids, size_t n, eval_parsed *out)
{
	json_error_t jerr;
	json_t      *root = json_loadb(json, len, 0, &jerr);
	json_t      *list = grades_of(root);
	bool        *seen = NULL;
	cm_err       err = CM_OK;

	for (size_t i = 0; i < n; i++) {
		out[i].ok = false;
		snprintf(out[i].why, sizeof(out[i].why), "%s",
		         list != NULL ? "missing from the reply" : "the reply held no grades");
	}
	if (list == NULL) {
		err = CM_EPROTO;
		goto out;
	}
	if (n > 0 && (seen = calloc(n, sizeof(bool))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < json_array_size(list); k++) {
		json_t *e = json_array_get(list, k);
		char    id[64];

		if (!json_is_object(e))
			continue;
		id_of(e, id, sizeof(id));
		/* A one-item batch answered without its id is still that item's grade. */
		if (id[0] == '\0' && n == 1 && json_array_size(list) == 1)
			snprintf(id, sizeof(id), "%s", ids[0]);
		for (size_t i = 0; i < n; i++) {
			if (seen[i] || strcmp(id, ids[i]) != 0)
				continue;
			seen[i] = true;
			read_entry(e, &out[i]);
			break;
		}
	}
out:
	free(seen);
	json_decref(root);
	return err;
}

/* Appends the strings of an array (others skipped). */
static bool
read_list(json_t *o, const char *key, const char *alt, char **list, size_t *n)
{
	json_t *a = json_object_get(o, key);

	if (!json_is_array(a) && alt != NULL)
		a = json_object_get(o, alt);
	for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
		json_t *v = json_array_get(a, i);
		if (json_is_string(v) && !blank(json_string_value(v)) &&
		    !eval_list_add(list, n, json_string_value(v)))
			return false;
	}
	return true;
}

cm_err
eval_parse_overall(const char *json, size_t len, eval_overall *out)
{
	json_error_t jerr;
	json_t      *root = json_loadb(json, len, 0, &jerr);
	const char  *fb;
	cm_err       err = CM_OK;

	if (!json_is_object(root)) {
		err = CM_EPROTO;
		goto out;
	}
	fb = text_of(root, "overall_feedback", "feedback");
	if (blank(fb)) {
		err = CM_EPROTO;
		goto out;
	}
	if ((out->feedback = clip(fb)) == NULL ||
	    !read_list(root, "strengths", NULL, out->strengths, &out->n_strengths) ||
	    !read_list(root, "areas_for_improvement", "areas", out->areas, &out->n_areas) ||
	    !read_list(root, "study_suggestions", "suggestions", out->study, &out->n_study))
		err = CM_ENOMEM;
out:
	json_decref(root);
	if (err != CM_OK)
		eval_overall_fini(out);
	return err;
}
