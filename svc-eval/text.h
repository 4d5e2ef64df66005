/*
 * text.h - the text measures of grading: UTF-8 checks, the normalised form of an answer (the
 * grade cache's key), key terms and their overlap (the guard and the offline grader), and word
 * pair shingles (near-identical answers reuse a cached grade).
 *
 * Normalised form: ASCII letters lower-cased, apostrophes dropped inside words ("don't" ->
 * "dont"), '.' and ',' kept between digits ("3.5"), every other run of punctuation and white
 * space (ASCII, and the common Unicode spaces, quotation marks and dashes) one space, trimmed.
 * Other UTF-8 sequences are word characters, kept as they are. Two answers with the same normalised
 * form are the same answer.
 *
 * Terms: the words of the normalised form minus English stop words, with a plural 's' dropped
 * ("cells" -> "cell"), as 64-bit hashes, sorted and unique: cheap to intersect.
 */
#ifndef EVAL_TEXT_H
#define EVAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/err.h"

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without NUL bytes. */
bool eval_utf8_valid(const char *s, size_t len);

/* The largest n <= max such that s[0..n) does not end inside a UTF-8 sequence (s valid UTF-8,
 * strlen(s) may be shorter than max). */
size_t eval_utf8_clip(const char *s, size_t max);

/* Appends the normalised form of s to out. */
CM_MUSTCHECK cm_err eval_normalize(const char *s, cm_buf *out);

typedef struct eval_terms {
	uint64_t *h; /* sorted, unique */
	size_t    n;
} eval_terms;

/* The key terms of s (the first max met; out->h may be NULL when there are none); free with
 * eval_terms_fini. */
CM_MUSTCHECK cm_err eval_terms_of(const char *s, size_t max, eval_terms *out);
void                eval_terms_fini(eval_terms *t);
/* Calls fn for each key term of s in order of appearance, repeats included: the word (as in the
 * normalised form, plural 's' dropped) and its hash. fn returns false to stop. */
typedef bool (*eval_term_fn)(void *arg, const char *word, size_t len, uint64_t h);
CM_MUSTCHECK cm_err eval_terms_each(const char *s, eval_term_fn fn, void *arg);
/* True when h is one of t's terms. */
bool eval_terms_has(const eval_terms *t, uint64_t h);
/* |a ∩ b|. */
size_t eval_terms_common(const eval_terms *a, const eval_terms *b);
/* Words of s (any, stop words included) after normalisation. */
size_t eval_word_count(const char *s);

/* Similarity of two normalised answers in [0, 1]: 1 when equal; else the mean of the Jaccard
 * indexes of their word sets and of their word-pair shingles (words alone when either has one
 * word), so one word more in a dozen still looks alike while "a causes b" and "b causes a" do
 * not. 0 whenever their negations (not, no, never, dont, ...) or numbers differ, so "is" and
 * "is not" never look alike however long the rest. */
double eval_similarity(const char *norm_a, const char *norm_b);

/* True when the word (lower case) is an English stop word. */
bool eval_stopword(const char *w, size_t len);

/* Appends s as a JSON string literal (with quotes) for a prompt: JSON escapes, plus '<', '>'
 * and '&' as \u003c, \u003e, \u0026, so no delimiter can be forged from inside the string. s
 * must be valid UTF-8. */
CM_MUSTCHECK cm_err eval_append_quoted(cm_buf *out, const char *s, size_t len);

#endif
