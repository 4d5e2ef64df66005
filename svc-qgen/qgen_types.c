/*
 * qgen_types.c - names and memory of the plain question types (qgen_types.h).
 */
#include <stdlib.h>
#include <string.h>

#include "qgen_types.h"

static const char *const type_names[] = {"mcq", "open"};
static const char *const difficulty_names[] = {"easy", "medium", "hard"};

const char *
qg_type_name(qg_type t)
{
	return (unsigned)t < 2 ? type_names[t] : "mcq";
}

bool
qg_type_parse(const char *s, qg_type *out)
{
	for (int i = 0; i < 2; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*out = (qg_type)i;
			return true;
		}
	}
	return false;
}

const char *
qg_difficulty_name(qg_difficulty d)
{
	return (unsigned)d < 3 ? difficulty_names[d] : "medium";
}

bool
qg_difficulty_parse(const char *s, qg_difficulty *out)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(s, difficulty_names[i]) == 0) {
			*out = (qg_difficulty)i;
			return true;
		}
	}
	return false;
}

void
qg_question_fini(qg_question *q)
{
	if (q == NULL)
		return;
	free(q->text);
	for (int i = 0; i < QG_OPTIONS; i++)
		free(q->options[i]);
	free(q->reference);
	free(q->explanation);
	memset(q, 0, sizeof(*q));
}

/* strdup that keeps NULL as NULL; *ok turns false on allocation failure. */
static char *
dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

cm_err
qg_question_copy(qg_question *dst, const qg_question *src)
{
	bool ok = true;

	*dst = *src;
	dst->text = dup_or_null(src->text, &ok);
	for (int i = 0; i < QG_OPTIONS; i++)
		dst->options[i] = dup_or_null(src->options[i], &ok);
	dst->reference = dup_or_null(src->reference, &ok);
	dst->explanation = dup_or_null(src->explanation, &ok);
	if (!ok) {
		qg_question_fini(dst);
		return CM_ENOMEM;
	}
	return CM_OK;
}

void
qg_qlist_init(qg_qlist *l)
{
	memset(l, 0, sizeof(*l));
}

void
qg_qlist_fini(qg_qlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		qg_question_fini(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

cm_err
qg_qlist_push(qg_qlist *l, qg_question *q)
{
	if (l->n == l->cap) {
		size_t       cap = l->cap == 0 ? 16 : l->cap * 2;
		qg_question *p = realloc(l->items, cap * sizeof(*p));
		if (p == NULL)
			return CM_ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = *q;
	memset(q, 0, sizeof(*q));
	return CM_OK;
}
