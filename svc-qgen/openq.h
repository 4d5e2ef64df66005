/*
 * openq.h - the forms an offline open question takes (offline.h), read off the shape of its
 * source sentence without a parser:
 *
 *   DEFINE   "X is a/an/the ...", "X are ...", "X means/refers to/consists of ..."
 *            -> "What is X, according to the text?", "Define X as the text does." ...
 *   HAPPENS  "If/When C, ..."             -> "What happens if C?"
 *   WHY      "..., so E." "E because ..." -> "Why is it that E?"
 *   COMPARE  a sentence with "than", "whereas", "unlike", "differ"... and two key terms
 *            -> "How does the text compare A with B?"
 *   ROLE     "X <verb>s ..." (a short subject, then a verb in -s) -> "What does X do ...?"
 *   ABOUT    any sentence with a key term -> "How does the text describe K?" (and variants)
 *
 * The sentence itself is the reference answer (the caller's): every form asks about something
 * the sentence states. X, C and E are cut from the sentence, so the question reads in the
 * document's words. Pure functions: no I/O, no allocation.
 */
#ifndef QGEN_OPENQ_H
#define QGEN_OPENQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum qgen_openq_form {
	QGEN_OPENQ_DEFINE = 0,
	QGEN_OPENQ_HAPPENS,
	QGEN_OPENQ_WHY,
	QGEN_OPENQ_COMPARE,
	QGEN_OPENQ_ROLE,
	QGEN_OPENQ_ABOUT,
	QGEN_OPENQ_NFORMS
} qgen_openq_form;

/* The forms sentence s supports, as bits (1u << form). key is its key term (NULL: none, then
 * no ABOUT), key2 a second, different one (NULL: no COMPARE). */
unsigned qgen_openq_forms(const char *s, const char *key, const char *key2);

/* Writes the question of form f about s into out[0..n); variant picks among a form's wordings.
 * false when the form does not apply to s or the question does not fit. */
bool qgen_openq_write(qgen_openq_form f, const char *s, const char *key, const char *key2, int page,
                      unsigned variant, char *out, size_t n);

#endif
