/*
 * types.c - names and memory of the plain question types (types.h).
 */
#include <stdlib.h>
#include <string.h>

#include "types.h"

static const char *const type_names[] = {"mcq", "open"};
static const char *const difficulty_names[] = {"easy", "medium", "hard"};

const char *
qgen_type_name(qgen_type t)
{
	return (unsigned)t < 2 ? type_names[t] : "mcq";
}

const char *
qgen_types_name(unsigned mask)
{
	bool mcq = (mask & QGEN_TYPE_MASK(QGEN_MCQ)) != 0;
	bool open = (mask & QGEN_TYPE_MASK(QGEN_OPEN)) != 0;

	return mcq && open ? "mcq,open" : open ? "open" : "mcq";
}

bool
qgen_type_parse(const char *s, qgen_type *out)
{
	for (int i = 0; i < 2; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*out = (qgen_type)i;
			return true;
		}
	}
	return false;
}

const char *
qgen_difficulty_name(qgen_difficulty d)
{
	return (unsigned)d < 3 ? difficulty_names[d] : "medium";
}

bool
qgen_difficulty_parse(const char *s, qgen_difficulty *out)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(s, difficulty_names[i]) == 0) {
			*out = (qgen_difficulty)i;
			return true;
		}
	}
	return false;
}

int
qgen_chunk_page(const qgen_chunk *c, size_t at)
{
	int page = c->page_first;

	if (c->page_at != NULL)
		while (page < c->page_last && c->page_at[page - c->page_first] <= at)
			page++;
	return page;
}

void
qgen_question_fini(qgen_question *q)
{
	if (q == NULL)
		return;
	free(q->text);
	for (int i = 0; i < QGEN_OPTIONS; i++)
		free(q->options[i]);
	free(q->reference);
	free(q->explanation);
	free(q->quote);
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
qgen_question_copy(qgen_question *dst, const qgen_question *src)
{
	bool ok = true;

	*dst = *src;
	dst->text = dup_or_null(src->text, &ok);
	for (int i = 0; i < QGEN_OPTIONS; i++)
		dst->options[i] = dup_or_null(src->options[i], &ok);
	dst->reference = dup_or_null(src->reference, &ok);
	dst->explanation = dup_or_null(src->explanation, &ok);
	dst->quote = dup_or_null(src->quote, &ok);
	if (!ok) {
		qgen_question_fini(dst);
		return CM_ENOMEM;
	}
	return CM_OK;
}

void
qgen_qlist_init(qgen_qlist *l)
{
	memset(l, 0, sizeof(*l));
}

void
qgen_qlist_fini(qgen_qlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		qgen_question_fini(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

cm_err
qgen_qlist_push(qgen_qlist *l, qgen_question *q)
{
	if (l->n == l->cap) {
		size_t         cap = l->cap == 0 ? 16 : l->cap * 2;
		qgen_question *p = realloc(l->items, cap * sizeof(*p));
		if (p == NULL)
			return CM_ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = *q;
	memset(q, 0, sizeof(*q));
	return CM_OK;
}
