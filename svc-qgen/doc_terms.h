/*
 * doc_terms.h - the words of a document the offline provider may ask about (offline.h), found
 * without a part-of-speech tagger.
 *
 * A sentence is cut into tokens at spaces. A token is UNSAFE when it is, or sits in, something
 * that must never hold a blank: a URL or an e-mail address ("://", "www.", "@"), code (symbols
 * prose does not use, an identifier with _ or camelCase, a call "f(x)", a dotted name
 * "lower.tail", an option "-l", a path, text between backticks), or a formula (a token next to a
 * lone operator such as "=" or "-"). A sentence with many unsafe tokens is code as a whole.
 *
 * The rest may be terms of four kinds: a NUMBER (a year, a number with 2+ digits or a number
 * followed by a word, its unit), a NAME (a word capitalised mid-sentence everywhere the document
 * uses it; adjacent ones make one name, "Milton Friedman"), an ACRONYM ("ATP"), a WORD (4+
 * lower-case letters, not a function word or generic verb/adjective of the stop list, not an
 * adverb in -ly or a participle in -ed), and a PHRASE: two adjacent words that the document
 * repeats (3+ times), "exit status". The table counts each term's uses and the passages (chunks)
 * it appears in: a term in a large share of the passages is what the whole document is about
 * and makes a blank anyone fills.
 *
 * Everything here is pure: no I/O, no clock; the same sentences give the same table.
 */
#ifndef QGEN_DOC_TERMS_H
#define QGEN_DOC_TERMS_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/err.h"

#define QGEN_TERM_MAX 48 /* bytes of a term (a phrase of two words included) */
#define QGEN_TOK_MAX 128 /* tokens of a sentence looked at */

typedef enum qgen_term_kind {
	QGEN_TERM_WORD = 0,
	QGEN_TERM_NAME,
	QGEN_TERM_ACRONYM,
	QGEN_TERM_NUMBER,
	QGEN_TERM_PHRASE,
} qgen_term_kind;

/* Token flags. */
#define QGEN_TOK_UNSAFE 0x01u /* URL, e-mail, code or formula: never blanked */
#define QGEN_TOK_FIRST 0x02u  /* sentence-initial: its capital says nothing */
#define QGEN_TOK_CAPS 0x04u   /* starts with an ASCII capital */
#define QGEN_TOK_ALLCAPS 0x08u
#define QGEN_TOK_NUMBER 0x10u
#define QGEN_TOK_WORD 0x20u   /* letters (and inner hyphens) only */
#define QGEN_TOK_JOINED 0x40u /* no punctuation after it: it may start a phrase */

typedef struct qgen_tok {
	size_t   at, len; /* the core: surrounding punctuation and a possessive 's left out */
	unsigned flags;
} qgen_tok;

typedef struct qgen_term {
	char           text[QGEN_TERM_MAX + 1]; /* as the document writes it */
	char           key[QGEN_TERM_MAX + 1];  /* lower case */
	qgen_term_kind kind;
	int            count;   /* uses in the document */
	int            df;      /* passages it appears in */
	int            nounish; /* uses after a determiner ("the", "a", "of"...): a noun */
	bool           generic; /* in too many passages to make a fair blank */
} qgen_term;

typedef struct qgen_terms {
	qgen_term *v; /* sorted by key */
	size_t     n;
	int        passages;
} qgen_terms;

/* Whether lower (lower case) is a function word or a generic verb/adjective. */
bool qgen_stop_word(const char *lower);
/* The stop list itself (sorted; for the tests). */
const char *const *qgen_stop_list(size_t *n);

/* Cuts s into at most max tokens (QGEN_TOK_MAX); returns how many. Marks the unsafe ones. */
size_t qgen_tokenize(const char *s, qgen_tok *out, size_t max);

/* Whether the sentence is code as a whole (a third of its tokens unsafe, or symbol-dense). */
bool qgen_code_sentence(const char *s, const qgen_tok *t, size_t nt);

/* Whether token i starts a candidate, its proposed kind, its *ntok tokens and its lower-case key.
 * With phrase false, a single token; with phrase true, the longer candidate starting there (a
 * PHRASE of two words, a NAME of two or three; *ntok >= 2 says one was found). A sentence-initial
 * capitalised word is proposed as a WORD: the table decides (qgen_terms_find gives the kind). */
bool qgen_tok_candidate(const char *s, const qgen_tok *t, size_t nt, size_t i, bool phrase,
                        qgen_term_kind *kind, size_t *ntok, char key[QGEN_TERM_MAX + 1]);

/*
 * Builds the table from n sentences, sentence i in passage passage[i] (0..passages-1). A NAME is
 * kept only when the document never writes it in lower case mid-sentence; a PHRASE only when
 * repeated. CM_ENOMEM; on error t is empty. Free with qgen_terms_fini.
 */
CM_MUSTCHECK cm_err qgen_terms_build(const char *const *sentences, const int *passage, size_t n,
                                     int passages, qgen_terms *t);
void                qgen_terms_fini(qgen_terms *t);

/* The term of key, or NULL. */
const qgen_term *qgen_terms_find(const qgen_terms *t, const char *key);

#endif
