/*
 * types.h - the plain C question and chunk types that svc-qgen's pure modules share
 * (quality checks, the offline provider, prompts). Protobuf (proto/qgen.proto) appears only at
 * the edges of the service (store, handlers), so these modules stay easy to test and fuzz.
 *
 * Ownership: every string of a qgen_question is malloc'd and owned by it; qgen_question_fini frees
 * them. A qgen_qlist owns its questions.
 */
#ifndef QGEN_TYPES_H
#define QGEN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

#define QGEN_MAX_COUNT 200        /* questions per set */
#define QGEN_MAX_TEXT 2000        /* bytes of a question's text */
#define QGEN_MAX_OPTION 500       /* bytes of one option */
#define QGEN_MAX_EXPLANATION 2000 /* bytes of an explanation or reference answer */
#define QGEN_MAX_TOPIC 200        /* bytes of a topic */
#define QGEN_OPTIONS 4

typedef enum qgen_type { QGEN_MCQ = 0, QGEN_OPEN = 1 } qgen_type;
#define QGEN_TYPE_MASK(t) (1u << (t))

typedef enum qgen_difficulty { QGEN_EASY = 0, QGEN_MEDIUM = 1, QGEN_HARD = 2 } qgen_difficulty;

typedef struct qgen_question {
	qgen_type       type;
	char           *text;
	char           *options[QGEN_OPTIONS]; /* mcq only; without "A) " prefixes */
	int             answer;                /* mcq: 0..3 */
	char           *reference;             /* open: reference answer; may be NULL for mcq */
	char           *explanation;           /* may be NULL */
	char           *quote;                 /* where the page says it (grounding.h); or NULL */
	qgen_difficulty difficulty;
	int             page; /* 1-based source page */
} qgen_question;

typedef struct qgen_qlist {
	qgen_question *items;
	size_t         n, cap;
} qgen_qlist;

/* A piece of the document's text with the pages it spans (from svc-pdf's chunks). */
typedef struct qgen_chunk {
	const char   *text;
	size_t        len;
	int           page_first, page_last;
	const size_t *page_at; /* where pages page_first+1..page_last start in text (ascending);
	                          NULL when not known: all of it then counts as page_first */
} qgen_chunk;

/* "mcq"/"open", "easy"/"medium"/"hard". Parsers return false on an unknown name. */
const char *qgen_type_name(qgen_type t);
bool        qgen_type_parse(const char *s, qgen_type *out);
/* A QGEN_TYPE_MASK set as sets store it: "mcq", "open" or "mcq,open" (0: "mcq"). */
const char *qgen_types_name(unsigned mask);
const char *qgen_difficulty_name(qgen_difficulty d);
bool        qgen_difficulty_parse(const char *s, qgen_difficulty *out);

/* The page of c's text at byte at (page_first when c has no page_at). */
int qgen_chunk_page(const qgen_chunk *c, size_t at);

void qgen_question_fini(qgen_question *q);
/* Deep copy; CM_ENOMEM leaves *dst zeroed. */
CM_MUSTCHECK cm_err qgen_question_copy(qgen_question *dst, const qgen_question *src);

void qgen_qlist_init(qgen_qlist *l);
void qgen_qlist_fini(qgen_qlist *l);
/* Moves *q into the list (q is zeroed on success; on CM_ENOMEM it is untouched). */
CM_MUSTCHECK cm_err qgen_qlist_push(qgen_qlist *l, qgen_question *q);

#endif
