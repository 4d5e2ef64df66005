/*
 * qgen_types.h - the plain C question and chunk types that svc-qgen's pure modules share
 * (quality checks, the offline provider, prompts). Protobuf (proto/qgen.proto) appears only at
 * the edges of the service (store, handlers), so these modules stay easy to test and fuzz.
 *
 * Ownership: every string of a qg_question is malloc'd and owned by it; qg_question_fini frees
 * them. A qg_qlist owns its questions.
 */
#ifndef QGEN_TYPES_H
#define QGEN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

#define QG_MAX_COUNT 200        /* questions per set */
#define QG_MAX_TEXT 2000        /* bytes of a question's text */
#define QG_MAX_OPTION 500       /* bytes of one option */
#define QG_MAX_EXPLANATION 2000 /* bytes of an explanation or reference answer */
#define QG_MAX_TOPIC 200        /* bytes of a topic */
#define QG_OPTIONS 4

typedef enum qg_type { QG_MCQ = 0, QG_OPEN = 1 } qg_type;
#define QG_TYPE_MASK(t) (1u << (t))

typedef enum qg_difficulty { QG_EASY = 0, QG_MEDIUM = 1, QG_HARD = 2 } qg_difficulty;

typedef struct qg_question {
	qg_type       type;
	char         *text;
	char         *options[QG_OPTIONS]; /* mcq only; without "A) " prefixes */
	int           answer;              /* mcq: 0..3 */
	char         *reference;           /* open: reference answer; may be NULL for mcq */
	char         *explanation;         /* may be NULL */
	qg_difficulty difficulty;
	int           page; /* 1-based source page */
} qg_question;

typedef struct qg_qlist {
	qg_question *items;
	size_t       n, cap;
} qg_qlist;

/* A piece of the document's text with the pages it spans (from svc-pdf's chunks). */
typedef struct qg_chunk {
	const char *text;
	size_t      len;
	int         page_first, page_last;
} qg_chunk;

/* "mcq"/"open", "easy"/"medium"/"hard". Parsers return false on an unknown name. */
const char *qg_type_name(qg_type t);
bool        qg_type_parse(const char *s, qg_type *out);
const char *qg_difficulty_name(qg_difficulty d);
bool        qg_difficulty_parse(const char *s, qg_difficulty *out);

void qg_question_fini(qg_question *q);
/* Deep copy; CM_ENOMEM leaves *dst zeroed. */
CM_MUSTCHECK cm_err qg_question_copy(qg_question *dst, const qg_question *src);

void qg_qlist_init(qg_qlist *l);
void qg_qlist_fini(qg_qlist *l);
/* Moves *q into the list (q is zeroed on success; on CM_ENOMEM it is untouched). */
CM_MUSTCHECK cm_err qg_qlist_push(qg_qlist *l, qg_question *q);

#endif
