/*
 * offline_int.h - what the two halves of the offline provider share (not part of its contract,
 * which is offline.h): offline.c reads the text into sentences, orders them and runs the
 * rounds; offline_pick.c chooses a sentence's blank, its distractors and an open question's
 * form. One qgen_off_gen lives for one qgen_offline_generate call, on one thread.
 */
#ifndef QGEN_OFFLINE_INT_H
#define QGEN_OFFLINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doc_terms.h"
#include "offline.h"
#include "openq.h"

#define OFF_MAX_SENTENCE 600
#define OFF_MAX_BLANKS 32
#define OFF_BLANK "_____"
/* A text of fewer passages gives too little evidence of which words are nouns (offline_pick.c). */
#define OFF_SHORT 8

typedef struct qgen_off_sentence {
	char  *text; /* NUL-terminated copy */
	int    page, passage;
	bool   topic, usable, used;
	double rank; /* the best blank's score, plus one when an open form beyond ABOUT fits */
} qgen_off_sentence;

/* A blank candidate of one sentence. */
typedef struct qgen_off_blank {
	const qgen_term *term;
	size_t           at, len; /* bytes of the sentence it covers */
	double           score;
} qgen_off_blank;

/* Uses of a string across the set (distractors, answers). */
typedef struct qgen_off_usage {
	char (*key)[QGEN_TERM_MAX + 1];
	int   *uses;
	size_t n, cap;
} qgen_off_usage;

/* What one generation works with. */
typedef struct qgen_off_gen {
	const qgen_offline_req *req;
	qgen_off_sentence      *ss;
	size_t                  ns;
	qgen_terms              terms;
	qgen_off_usage          dis, ans;
	int                     cap;                         /* most uses of one distractor */
	int                     forms[QGEN_OPENQ_NFORMS];    /* open forms used */
	int                     kinds[QGEN_TERM_PHRASE + 1]; /* answers of each kind */
} qgen_off_gen;

uint64_t qgen_off_hash(const char *s);
/* out gets n bytes of s in ASCII lower case, NUL-terminated (n + 1 bytes). */
void qgen_off_lower(const char *s, size_t n, char *out);

/* Counts a use of text (case-folded) in u. CM_ENOMEM. */
CM_MUSTCHECK cm_err qgen_off_usage_add(qgen_off_usage *u, const char *text);
void                qgen_off_usage_fini(qgen_off_usage *u);

/* Sentence s's blank candidates, best first (none for code); at most max. */
size_t qgen_off_blanks(const qgen_off_gen *g, const char *s, qgen_off_blank *out, size_t max);

/* A multiple-choice or open question from sentence s, appended to out; *made false when s
 * yields none. They count what they use (distractors, answers, forms) in g. CM_ENOMEM. */
CM_MUSTCHECK cm_err qgen_off_mcq(qgen_off_gen *g, const qgen_off_sentence *s, qgen_qlist *out,
                                 bool *made);
CM_MUSTCHECK cm_err qgen_off_open(qgen_off_gen *g, const qgen_off_sentence *s, qgen_qlist *out,
                                  bool *made);

/* For an open question at sentence i: the unused sentence of its passage whose open form is
 * the least used so far (i on ties). */
size_t qgen_off_open_sentence(const qgen_off_gen *g, size_t i);

#endif
