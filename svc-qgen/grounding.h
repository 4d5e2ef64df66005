/*
 * grounding.h - is a question true to its page? The correct answer must be found in the text
 * the question cites, and no distractor may be found there as well as the answer.
 *
 * Pure: no I/O, no globals, reentrant. Every provider's questions go through it (the model's in
 * batch.c, the offline provider's in runner.c), and what passes carries its evidence: the
 * passage it was checked against (qgen_question.quote, `source.quote` in v1 and the exports).
 *
 * Words. Text and answer are split into words the same way: letters and digits (any non-ASCII
 * letter too), lower case, Latin diacritics folded ("é" -> "e"), a plural s dropped ("sugars"
 * -> "sugar"); a number keeps its decimal point and loses its thousands commas ("1,000" ->
 * "1000", "3.14" stays one word); punctuation splits ("r-project.org" -> r, project, org), so a
 * URL's parts are words like any other. Content words are the words that are neither stop words
 * nor single letters (single digits are content).
 *
 * Sentences end at '.', '!' or '?' followed by white space (but not the full stop of a single
 * letter, "e.g.", "J. Smith", or of an abbreviation, "etc.", "Fig."), or at a blank line. A
 * passage is 1..window consecutive sentences.
 *
 * The answer (mcq: the correct option; open: the reference answer) is supported when a
 * passage holds at least min_overlap of its distinct content words (at most
 * QGEN_GROUND_MAX_WORDS of them are looked at). An answer without content words ("It",
 * "R", "all of the above"), and an answer written without spaces that holds several words (a
 * URL, "r-project.org", "x86-64"), must instead appear as a phrase: all its words, in order,
 * adjacent.
 * The passage chosen is the one with the most answer words; among those the shortest, then the
 * one sharing most content words with the question (the sentence the question is about).
 *
 * Ambiguity (mcq, when enabled): a distractor is checked on its own words - those not in the
 * question and not in the correct option, since a cloze stem holds its sentence's other words
 * and they are no evidence for the distractor. When the chosen passage holds as large a share
 * of them as of the answer's (and at least min_overlap), the passage supports the distractor as
 * well as the answer: the question is ambiguous.
 */
#ifndef QGEN_GROUNDING_H
#define QGEN_GROUNDING_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"
#include "types.h"

#define QGEN_QUOTE_MAX 300       /* bytes of a question's source.quote */
#define QGEN_GROUND_MAX_WORDS 64 /* distinct content words of an answer that are looked for */
#define QGEN_GROUND_MAX_WINDOW 5 /* most sentences a passage may span (QGEN_GROUND_WINDOW) */

typedef struct qgen_ground_cfg {
	double min_overlap; /* 0..1: share of the answer's content words a passage must hold */
	int    window;      /* 1..QGEN_GROUND_MAX_WINDOW sentences per passage */
	bool   ambiguity;   /* reject an mcq whose distractor the passage supports as well */
} qgen_ground_cfg;

/* The defaults that QGEN_GROUND_* start from: 0.6, 2 sentences, ambiguity checked. */
extern const qgen_ground_cfg qgen_ground_defaults;

typedef enum qgen_ground_verdict {
	QGEN_GROUNDED = 0,
	QGEN_UNGROUNDED, /* no passage holds enough of the answer */
	QGEN_AMBIGUOUS,  /* a distractor is as supported as the answer, in the same passage */
	QGEN_GROUND_NVERDICTS
} qgen_ground_verdict;

/* "grounded", "ungrounded", "ambiguous_distractor": the metric label (reason=...). */
const char *qgen_ground_verdict_name(qgen_ground_verdict v);

typedef struct qgen_ground_result {
	qgen_ground_verdict verdict;
	double              overlap;    /* the best passage's share of the answer's content words */
	int                 distractor; /* QGEN_AMBIGUOUS: the option; else -1 */
	char quote[QGEN_QUOTE_MAX + 1]; /* the best passage, white space collapsed, clipped around
	                                   the answer's words ("" when no word was found) */
	/* Grounded: where, in the text, the first of the answer's words is, and where the sentence
	 * that holds it starts and ends (byte offsets). */
	size_t at, sent_start, sent_end;
	double stem_share; /* of the question's own content words, the share in that sentence */
} qgen_ground_result;

/*
 * Checks q (an mcq with its answer, or an open question with a reference) against text[0..len).
 * res is always filled. CM_EINVAL for a question without an answer to check, CM_ENOMEM.
 */
CM_MUSTCHECK cm_err qgen_ground_text(const qgen_question *q, const char *text, size_t len,
                                     const qgen_ground_cfg *cfg, qgen_ground_result *res);

/*
 * Checks q against every chunk whose pages include q->page (its cited page; all chunks when
 * none does) and keeps the best verdict (grounded, then ambiguous, then ungrounded). Grounded:
 * q->quote is set (replacing any earlier one), and when the chunk knows where its pages start
 * (page_at), the sentence found is the question's own (it holds cfg->min_overlap of the
 * question's content words) and it is on none of q->page, q->page becomes the page of the
 * answer: a model cites the page its prompt names, the chunk's first, while the sentence may be
 * on a later one. CM_ENOMEM.
 */
CM_MUSTCHECK cm_err qgen_ground_question(qgen_question *q, const qgen_chunk *chunks, size_t n,
                                         const qgen_ground_cfg *cfg, qgen_ground_verdict *v);

/*
 * Keeps the grounded questions of l (in order, each with its quote) and frees the others,
 * adding them to counts[verdict] (counts[QGEN_GROUNDED] gets the kept ones). A question that
 * cannot be checked (no answer) counts as ungrounded. On CM_ENOMEM the questions not yet
 * checked are dropped too (uncounted): nothing unchecked is ever kept.
 */
CM_MUSTCHECK cm_err qgen_ground_list(qgen_qlist *l, const qgen_chunk *chunks, size_t n,
                                     const qgen_ground_cfg *cfg, int counts[QGEN_GROUND_NVERDICTS]);

#endif
