/*
 * codec.c - qgen_qlist <-> packed qgen.QuestionList (codec.h).
 *
 * Packing points the protobuf structs at the list's own strings (no copies); only the per-
 * question structs and ids are allocated, and freed once packed.
 */
#include <stdlib.h>
#include <string.h>

#include "cm/limits.h"
#include "cm/util.h"
#include "proto/qgen.pb-c.h"
#include "codec.h"

cm_err
qgen_pack_questions(const qgen_qlist *l, bool assign_ids, uint8_t **out, size_t *len)
{
	Qgen__QuestionList list = QGEN__QUESTION_LIST__INIT;
	Qgen__Question    *qs = NULL, **ptrs = NULL;
	char(*ids)[CM_UUID_LEN + 1] = NULL;
	uint8_t *buf = NULL;
	cm_err   err = CM_ENOMEM;

	*out = NULL;
	*len = 0;
	if (l->n > 0 && ((qs = calloc(l->n, sizeof(*qs))) == NULL ||
	                 (ptrs = calloc(l->n, sizeof(*ptrs))) == NULL ||
	                 (ids = calloc(l->n, sizeof(*ids))) == NULL))
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		const qgen_question *q = &l->items[i];
		Qgen__Question      *p = &qs[i];

		qgen__question__init(p);
		if (assign_ids)
			cm_uuid_v4(ids[i]);
		p->id = ids != NULL ? ids[i] : (char *)"";
		p->type = (char *)qgen_type_name(q->type);
		p->text = q->text != NULL ? q->text : (char *)"";
		if (q->type == QGEN_MCQ) {
			p->n_options = QGEN_OPTIONS;
			p->options = (char **)q->options;
			p->answer_index = q->answer;
		}
		p->reference = q->reference != NULL ? q->reference : (char *)"";
		p->explanation = q->explanation != NULL ? q->explanation : (char *)"";
		p->quote = q->quote != NULL ? q->quote : (char *)"";
		p->difficulty = (char *)qgen_difficulty_name(q->difficulty);
		p->page = q->page;
		ptrs[i] = p;
	}
	list.n_questions = l->n;
	list.questions = ptrs;
	*len = protobuf_c_message_get_packed_size(&list.base);
	if ((buf = malloc(*len > 0 ? *len : 1)) == NULL)
		goto out;
	protobuf_c_message_pack(&list.base, buf);
	*out = buf;
	err = CM_OK;
out:
	if (err != CM_OK)
		*len = 0;
	free(qs);
	free(ptrs);
	free(ids);
	return err;
}

/* strdup of a non-empty string, NULL for ""; *ok turns false on allocation failure. */
static char *
dup_nonempty(const char *s, bool *ok)
{
	char *d;

	if (s == NULL || s[0] == '\0')
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

cm_err
qgen_unpack_questions(const uint8_t *buf, size_t len, qgen_qlist *out)
{
	Qgen__QuestionList *list = qgen__question_list__unpack(NULL, len, buf);
	cm_err              err = CM_OK;

	if (list == NULL)
		return CM_EPROTO;
	for (size_t i = 0; i < list->n_questions && err == CM_OK; i++) {
		const Qgen__Question *p = list->questions[i];
		qgen_question         q;
		bool                  ok = true;

		memset(&q, 0, sizeof(q));
		if (!qgen_type_parse(p->type, &q.type) ||
		    (q.type == QGEN_MCQ && p->n_options != QGEN_OPTIONS)) {
			err = CM_EPROTO;
			break;
		}
		(void)qgen_difficulty_parse(p->difficulty, &q.difficulty);
		q.text = strdup(p->text);
		ok = q.text != NULL;
		for (size_t k = 0; q.type == QGEN_MCQ && k < QGEN_OPTIONS; k++)
			if ((q.options[k] = strdup(p->options[k])) == NULL)
				ok = false;
		q.answer = p->answer_index;
		q.reference = dup_nonempty(p->reference, &ok);
		q.explanation = dup_nonempty(p->explanation, &ok);
		q.quote = dup_nonempty(p->quote, &ok);
		q.page = p->page;
		if (!ok || qgen_qlist_push(out, &q) != CM_OK) {
			qgen_question_fini(&q);
			err = CM_ENOMEM;
		}
	}
	qgen__question_list__free_unpacked(list, NULL);
	return err;
}
