/*
 * measure.h - the quality report's figures for one question set (bench/quality.sh), computed
 * from the set as svc-qgen returned it (answers included) and the text svc-pdf stored for each
 * page. Nothing here calls the services or reuses their checks: a rule the generator got wrong
 * must show here, not be agreed with. The blank classes and the distractor count are
 * test/integration/offline_survey.h's (its own word list, shared with the offline test).
 *
 * The rules:
 *   valid       a question is schema-valid when its type is mcq or open, its text has >= 10
 *               bytes, its page is inside the document; mcq: 4 non-empty options, pairwise
 *               different after normalisation, answer index 0..3; open: a non-empty reference.
 *   grounded    text normalised: lower case ASCII letters and digits (other bytes >= 0x80 kept
 *               but for Unicode punctuation and the minus sign), everything else one space, a
 *               word broken by a hyphen at a line end joined.
 *               mcq: the correct option is a whole-word phrase of the cited page, and when the
 *               stem has a blank "_____", the blank's context (up to 3 words either side inside
 *               the quoted sentence) with the correct option put back is a phrase of the cited
 *               page (its end may run over into the next page's first 400 bytes). open: >= 80%
 *               of the reference's content words (3+ characters, not a function word) are
 *               words of the cited page (and that much of the next).
 *   duplicates  a question whose content-word set has a Jaccard similarity >= 0.7 with an
 *               earlier question's of the set; the rate is those over the questions.
 *   distractor  the distractor used by the most mcq questions of the set, as a share of them.
 *   keys        how many correct answers sit at A, B, C and D; the largest share of one.
 *   pages       distinct cited pages over the document's pages.
 */
#ifndef QR_MEASURE_H
#define QR_MEASURE_H

#include <stddef.h>

#include "proto/qgen.pb-c.h"

#define QR_DUP_JACCARD 0.7   /* near-duplicate questions */
#define QR_OPEN_GROUNDED 0.8 /* share of a reference's content words found on its page */
#define QR_CONTEXT_WORDS 3   /* words either side of a blank checked with the answer */
#define QR_NEXT_PAGE_BYTES 400

/* One document's pages, normalised once (qr_pages_init); owned, free with qr_pages_fini. */
typedef struct qr_pages {
	int    npages;
	char **norm; /* npages normalised texts, each " word word ... " (spaces at both ends) */
} qr_pages;

typedef struct qr_figures {
	int  asked, got, valid;
	int  mcq, open;
	int  grounded;   /* questions grounded by the rule above */
	int  duplicates; /* near-duplicates of an earlier question */
	int  top_distractor_uses;
	char top_distractor[64];
	int  keys[4];
	int  in_url, in_code, function_word, number, name, term, other; /* mcq blank classes */
	int  open_forms;
	int  pages_cited, doc_pages;
} qr_figures;

/* Takes ownership of nothing: copies and normalises texts[0..npages). -1 when out of memory. */
int  qr_pages_init(qr_pages *p, const char *const *texts, int npages);
void qr_pages_fini(qr_pages *p);

/* Normalises s into out (room for outlen bytes, always terminated): see "grounded" above, with
 * one space at each end so that a phrase is found as " a b " in " ... a b ... ". */
void qr_normalize(const char *s, char *out, size_t outlen);

/* The figures of qs, a set asked for `asked` questions of the document whose pages p holds; -1
 * when out of memory. Not thread-safe (static scratch buffers: the report is one thread). */
int qr_measure(const Qgen__QuestionSet *qs, int asked, const qr_pages *p, qr_figures *f);

/* Percentages (0 when the base is 0). */
double qr_pct(int part, int whole);
int    qr_key_max_share(const qr_figures *f); /* % of the mcq answers at the busiest letter */

#endif
