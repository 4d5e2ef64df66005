/*
 * quality.h - turning what a model wrote into valid questions, and a set of exactly `count`
 * good ones out of the candidates.
 *
 * Nothing here calls a model or touches a database: the runner feeds it text and lists, so every
 * rule is unit-tested and the parser is fuzzed (test/fuzz/fuzz_qgen_parse.c).
 *
 * Rules for one question (qgen_check):
 *   - text: 10..QGEN_MAX_TEXT bytes after trimming, valid UTF-8;
 *   - mcq: exactly 4 options, each 1..QGEN_MAX_OPTION bytes, pairwise distinct after
 *     normalisation (case, white space, punctuation), none equal to the question text, one
 *     answer index 0..3;
 *   - open: a non-empty reference answer;
 *   - page inside the chunk's page range (a page outside it is replaced by the chunk's first
 *     page, not rejected: models often miscount pages);
 *   - type among the allowed ones.
 *
 * Duplicates within a set (qgen_select): the same normalised text, or near-duplicates: word
 * sets with Jaccard similarity >= QGEN_NEAR_DUP (stop words ignored).
 */
#ifndef QGEN_QUALITY_H
#define QGEN_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define QGEN_NEAR_DUP 0.8

/* What one batch asked for: used to check and complete the model's questions. */
typedef struct qgen_batch_ctx {
	unsigned        types;      /* QGEN_TYPE_MASK bits allowed */
	qgen_difficulty difficulty; /* stamped on every question */
	int             page_first; /* the chunk's pages */
	int             page_last;
} qgen_batch_ctx;

/*
 * Parses a model's JSON object {"questions":[...]} (the object itself, as cm_llm_extract_json
 * found it). Each element may use "question" or "text"; "options" as strings, with or without
 * letter prefixes ("A) ", "A. ", "(A) ", "a) "), which are stripped; the answer as "answer_index"
 * (0..3), or "answer"/"correct_answer"/"correctAnswer" as a letter "A".."D", an index, or the
 * text of one option; "explanation"; "page"; "type" ("mcq"/"open", default mcq when there are
 * options, open otherwise) and for open questions "reference"/"answer" as the reference text.
 * Valid questions are appended to out; invalid ones are dropped and counted in *rejected.
 * CM_EPROTO when the object has no "questions" array (why says so); CM_ENOMEM.
 */
CM_MUSTCHECK cm_err qgen_parse_questions(const char *json, size_t len, const qgen_batch_ctx *ctx,
                                         qgen_qlist *out, int *rejected, char *why, size_t whylen);

/* One element of that array (an object, as qgen_qscan hands it over, qscan.h), read and checked
 * the same way: CM_OK with the question in *out (the caller owns it), CM_EPROTO when it does not
 * parse or is invalid (*out zeroed; why says why when it is a check that failed). */
CM_MUSTCHECK cm_err qgen_parse_one(const char *json, size_t len, const qgen_batch_ctx *ctx,
                                   qgen_question *out, char *why, size_t whylen);

/* Checks (and normalises in place: trims strings, fixes the page) one question. false with a
 * reason in why when it is invalid. */
bool qgen_check(qgen_question *q, const qgen_batch_ctx *ctx, char *why, size_t whylen);

/* Lower case, letters and digits only, single spaces: the key for exact duplicates. out has
 * room for outlen bytes (always terminated). */
void qgen_normalize(const char *s, char *out, size_t outlen);

/* True when a and b are the same question by QGEN_NEAR_DUP's rule. */
bool qgen_near_duplicate(const char *a, const char *b);

/*
 * Appends to `chosen` candidates (in order) that are not duplicates of anything already in
 * `chosen` nor of each other, until chosen has `count` questions. Candidates taken are moved
 * out of `cand` (their slots are zeroed). Returns how many were added.
 */
size_t qgen_select(qgen_qlist *chosen, qgen_qlist *cand, size_t count);

/*
 * Spreads the correct answers of the mcq questions evenly over A-D (the counts of any two
 * letters differ by at most one, over the questions whose options can move) by permuting
 * options; the letter order is a deterministic function of seed. Questions whose options refer
 * to positions ("all of the above", "both A and B", "none of these") are left as they are.
 */
void qgen_spread_answers(qgen_qlist *l, uint64_t seed);

#endif
