/*
 * test_qgen_offline.c - the offline provider on real-looking text: the count asked for, valid
 * multiple choice (the blanked term is the right option, four distinct options), open questions
 * with their source sentence, pages from the chunks, variants that do not repeat, topic first,
 * too little text, accents, determinism; the job's rounds (qgen_offline_fill). On a crafted
 * manual full of URLs, e-mail addresses, code, formulas, function words, numbers and names: no
 * blank in a URL or code or on a function word, distractors of the answer's kind, no distractor
 * in more than a fifth of a 25-question set, one question per passage, open questions in
 * several forms. The tokenizer's verdicts (doc_terms.h) and the open forms (openq.h) alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/doc_terms.h"
#include "../../svc-qgen/offline.h"
#include "../../svc-qgen/openq.h"
#include "../../svc-qgen/quality.h"
#include "../integration/offline_survey.h"

static const char page1[] =
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.\n"
    "The process takes place inside the chloroplasts of plant cells and some algae.\n"
    "Chlorophyll absorbs mostly blue and red light and reflects green light back to the eye.\n"
    "The light reactions split water molecules and release oxygen as a by-product of photo-\n"
    "synthesis in the thylakoid membranes.\n";
static const char page2[] =
    "The Calvin cycle fixes carbon dioxide into sugars using the energy carried by ATP and "
    "NADPH molecules. Rubisco is the enzyme that captures carbon dioxide during the Calvin "
    "cycle in the stroma. Cellular respiration releases the energy stored in glucose inside the "
    "mitochondria of the cell. Glycolysis splits one glucose molecule into two pyruvate "
    "molecules in the cytoplasm of the cell. Mitochondria produce most of the ATP that a "
    "eukaryotic cell needs for growth and repair.\n";
static const char page3[] =
    "Enzymes lower the activation energy of chemical reactions without being consumed by them. "
    "Temperature and acidity change the shape of enzymes and therefore the speed of reactions. "
    "Diffusion moves molecules from regions of high concentration to regions of low "
    "concentration. Osmosis is the diffusion of water across a membrane that lets water but not "
    "solutes pass.\n";

static const qgen_chunk chunks[] = {
    {page1, sizeof(page1) - 1, 1, 1, NULL},
    {page2, sizeof(page2) - 1, 2, 2, NULL},
    {page3, sizeof(page3) - 1, 3, 3, NULL},
};

static void
check_mcq(const qgen_question *q)
{
	char                 why[160];
	qgen_question        copy;
	const qgen_batch_ctx ctx = {QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, 1, 3};

	assert_int_equal(q->type, QGEN_MCQ);
	assert_non_null(strstr(q->text, "_____"));
	assert_true(q->answer >= 0 && q->answer < 4);
	assert_true(q->page >= 1 && q->page <= 3);
	/* The right option is a word of the source sentence (in the explanation). */
	assert_non_null(q->explanation);
	assert_non_null(strstr(q->explanation, q->options[q->answer]));
	/* Passes the same checks as a model's question. */
	assert_int_equal(qgen_question_copy(&copy, q), CM_OK);
	assert_true(qgen_check(&copy, &ctx, why, sizeof(why)));
	qgen_question_fini(&copy);
}

static void
test_mcq_from_text(void **state)
{
	qgen_offline_req req = {8, QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, NULL, 0};
	qgen_qlist       l;
	int              pos[4] = {0};

	(void)state;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(chunks, 3, &req, &l), CM_OK);
	assert_int_equal(l.n, 8);
	for (size_t i = 0; i < l.n; i++) {
		check_mcq(&l.items[i]);
		pos[l.items[i].answer]++;
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(l.items[i].text, l.items[k].text);
	}
	/* The answer is not always in the same place. */
	assert_true(pos[0] < 8 && pos[1] < 8 && pos[2] < 8 && pos[3] < 8);
	/* Line breaks joined, hyphenation removed: no "photo- synthesis" in any question. */
	for (size_t i = 0; i < l.n; i++)
		assert_null(strstr(l.items[i].text, "photo- "));
	qgen_qlist_fini(&l);
}

static void
test_open_and_mixed(void **state)
{
	qgen_offline_req req = {6, QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN), QGEN_HARD,
	                        NULL, 0};
	qgen_qlist       l;
	int              open = 0;

	(void)state;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(chunks, 3, &req, &l), CM_OK);
	assert_int_equal(l.n, 6);
	for (size_t i = 0; i < l.n; i++) {
		assert_int_equal(l.items[i].difficulty, QGEN_HARD);
		if (l.items[i].type == QGEN_OPEN) {
			open++;
			assert_non_null(l.items[i].reference);
			assert_true(strlen(l.items[i].reference) > 20);
		}
	}
	assert_true(open >= 2 && open <= 4);
	qgen_qlist_fini(&l);
}

static void
test_variants_do_not_repeat(void **state)
{
	qgen_offline_req a = {4, QGEN_TYPE_MASK(QGEN_MCQ), QGEN_EASY, NULL, 0};
	qgen_offline_req b = a;
	qgen_qlist       la, lb;

	(void)state;
	b.variant = 1;
	qgen_qlist_init(&la);
	qgen_qlist_init(&lb);
	assert_int_equal(qgen_offline_generate(chunks, 3, &a, &la), CM_OK);
	assert_int_equal(qgen_offline_generate(chunks, 3, &b, &lb), CM_OK);
	assert_true(lb.n > 0);
	for (size_t i = 0; i < la.n; i++)
		for (size_t k = 0; k < lb.n; k++)
			assert_string_not_equal(la.items[i].text, lb.items[k].text);
	qgen_qlist_fini(&la);
	qgen_qlist_fini(&lb);
}

static void
test_topic_first(void **state)
{
	qgen_offline_req req = {2, QGEN_TYPE_MASK(QGEN_OPEN), QGEN_MEDIUM, "osmosis diffusion", 0};
	qgen_qlist       l;

	(void)state;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(chunks, 3, &req, &l), CM_OK);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++) {
		assert_int_equal(l.items[i].page, 3);
		assert_true(strstr(l.items[i].reference, "iffusion") != NULL ||
		            strstr(l.items[i].reference, "Osmosis") != NULL);
	}
	qgen_qlist_fini(&l);
}

/* A passage over two pages (joined by a blank line, as svc-pdf joins them): each question cites
 * the page that holds its sentence, and without page_at the passage's first page. */
static void
test_page_of_sentence(void **state)
{
	char             text[sizeof(page2) + sizeof(page3) + 2];
	size_t           at[1] = {sizeof(page2) - 1 + 2};
	qgen_chunk       c = {text, 0, 2, 3, at};
	qgen_offline_req req = {9, QGEN_TYPE_MASK(QGEN_OPEN), QGEN_MEDIUM, NULL, 0};
	qgen_qlist       l;
	int              on[4] = {0};

	(void)state;
	snprintf(text, sizeof(text), "%s\n\n%s", page2, page3);
	c.len = strlen(text);
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(&c, 1, &req, &l), CM_OK);
	assert_true(l.n >= 4);
	for (size_t i = 0; i < l.n; i++) {
		const qgen_question *q = &l.items[i];
		assert_true(q->page == 2 || q->page == 3);
		assert_non_null(strstr(q->page == 2 ? page2 : page3, q->reference));
		on[q->page]++;
	}
	assert_true(on[2] > 0 && on[3] > 0);
	qgen_qlist_fini(&l);
	c.page_at = NULL;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(&c, 1, &req, &l), CM_OK);
	assert_true(l.n >= 4);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.items[i].page, 2);
	qgen_qlist_fini(&l);
}

static void
test_too_little_text(void **state)
{
	qgen_chunk       tiny = {"Three words only", 16, 1, 1, NULL};
	qgen_chunk       empty = {"", 0, 1, 1, NULL};
	qgen_offline_req req = {5, QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, NULL, 0};
	qgen_qlist       l;

	(void)state;
	qgen_qlist_init(&l);
	assert_int_equal(qgen_offline_generate(&tiny, 1, &req, &l), CM_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(qgen_offline_generate(&empty, 1, &req, &l), CM_OK);
	assert_int_equal(qgen_offline_generate(NULL, 0, &req, &l), CM_OK);
	assert_int_equal(l.n, 0);
	req.count = 0;
	assert_int_equal(qgen_offline_generate(&tiny, 1, &req, &l), CM_EINVAL);
	qgen_qlist_fini(&l);
}

static void
test_accents_and_determinism(void **state)
{
	static const char fr[] =
	    "La photosynthèse transforme l'énergie lumineuse en énergie chimique dans les "
	    "feuilles. "
	    "Les chloroplastes contiennent la chlorophylle qui absorbe la lumière bleue et rouge. "
	    "Le cycle de Calvin fixe le dioxyde de carbone grâce à l'énergie de l'ATP produite. "
	    "La respiration cellulaire libère l'énergie chimique stockée dans le glucose des "
	    "cellules. "
	    "Les mitochondries produisent la plus grande partie de l'ATP nécessaire aux cellules.";
	qgen_chunk           c = {fr, sizeof(fr) - 1, 4, 4, NULL};
	qgen_offline_req     req = {3, QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, NULL, 0};
	qgen_qlist           a, b;
	char                 why[100];
	const qgen_batch_ctx ctx = {QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, 4, 4};

	(void)state;
	qgen_qlist_init(&a);
	qgen_qlist_init(&b);
	assert_int_equal(qgen_offline_generate(&c, 1, &req, &a), CM_OK);
	assert_int_equal(qgen_offline_generate(&c, 1, &req, &b), CM_OK);
	assert_true(a.n >= 1);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_string_equal(a.items[i].text, b.items[i].text);
		assert_int_equal(a.items[i].answer, b.items[i].answer);
		assert_true(
		    qgen_check(&a.items[i], &ctx, why, sizeof(why))); /* valid UTF-8 throughout */
	}
	qgen_qlist_fini(&a);
	qgen_qlist_fini(&b);
}

typedef struct rounds {
	size_t seen[8];
	int    n;
} rounds;

static void
count_round(void *arg, size_t chosen)
{
	rounds *r = arg;

	assert_true(r->n < 8);
	r->seen[r->n++] = chosen;
}

/* The job's rounds: each asks for the whole count again with the next variant, so a top-up
 * reads sentences no earlier round read (a round asking only for what was missing would read
 * a differently strided order and meet the first round's sentences again), and stops when a
 * round brings nothing new. */
static void
test_fill_rounds(void **state)
{
	qgen_offline_req req = {10, QGEN_TYPE_MASK(QGEN_OPEN), QGEN_MEDIUM, NULL, 7};
	qgen_qlist       chosen;
	rounds           r = {{0}, 0};

	(void)state;
	qgen_qlist_init(&chosen);
	qgen_offline_fill(chunks, 3, &req, 4, &chosen, count_round, &r);
	assert_int_equal(chosen.n, 10);
	assert_int_equal(r.n, 1); /* the first round reads every sentence it needs */
	assert_int_equal(r.seen[0], 10);
	/* No sentence asked about twice: every reference (the source sentence) differs. */
	for (size_t i = 0; i < chosen.n; i++)
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(chosen.items[i].reference,
			                        chosen.items[k].reference);
	qgen_qlist_fini(&chosen);

	/* More than the text holds: rounds stop at the first that adds nothing. */
	req.count = 16;
	r.n = 0;
	qgen_qlist_init(&chosen);
	qgen_offline_fill(chunks, 3, &req, 4, &chosen, count_round, &r);
	assert_true(chosen.n < 16);
	assert_true(r.n >= 2 && r.n <= 4);
	assert_int_equal(r.seen[r.n - 1], r.seen[r.n - 2]);
	qgen_qlist_fini(&chosen);
}

/* ---- a crafted manual ------------------------------------------------------------------------ */

#define MAN_PAGES 30

static const char *const nouns[] = {
    "buffer",  "cache",   "socket",  "parser",  "ledger",  "router",  "kernel",  "cluster",
    "schema",  "journal", "lexer",   "queue",   "bucket",  "channel", "daemon",  "filter",
    "handler", "matrix",  "packet",  "pointer", "quorum",  "replica", "segment", "shard",
    "tensor",  "vector",  "widget",  "archive", "beacon",  "cipher",  "gateway", "header",
    "library", "mirror",  "monitor", "profile", "sampler", "scanner", "spooler", "tracker"};
static const char *const names[] = {
    "Knuth",    "Hopper",    "Lovelace", "Turing", "Dijkstra", "Lamport", "Liskov",   "Ritchie",
    "Thompson", "Kernighan", "Backus",   "Hoare",  "Wirth",    "Codd",    "Torvalds", "Hamming",
    "Shannon",  "Church",    "Babbage",  "Boole",  "Pascal",   "Neumann", "Minsky",   "Perlis",
    "Floyd",    "Milner",    "Scott",    "Tarjan", "Karp",     "Rabin"};
#define NN (sizeof(nouns) / sizeof(nouns[0]))
#define NM (sizeof(names) / sizeof(names[0]))

static char       man_text[MAN_PAGES][1400];
static qgen_chunk man[MAN_PAGES];

/* Page i: a definition, a condition, a reason, a comparison, a URL, an e-mail address, code, a
 * path, a formula and a sentence of function words, around nouns, names and numbers. */
static void
make_manual(void)
{
	for (int i = 0; i < MAN_PAGES; i++) {
		const char *a = nouns[i % NN], *b = nouns[(i + 7) % NN], *c = nouns[(i + 13) % NN];
		const char *d = nouns[(i + 21) % NN];
		const char *n = names[i % NM], *m = names[(i + 11) % NM];
		snprintf(man_text[i], sizeof(man_text[i]),
		         "The %s is a small structure that holds %d records of the %s for each "
		         "request. "
		         "See https://CRAN.R-project.org/package=given_%s for the available %s "
		         "reference of the given release. "
		         "Call loadTable(x, given = TRUE) or read_%s(path) to load the %s into the "
		         "current %s quickly. "
		         "If the %s is full, the %s writes its oldest entries to the %s on disk. "
		         "Questions about the %s go to support-%s@example.org or to the file "
		         "~/docs/%s.txt on the server. "
		         "The %s was described by %s in %d and later extended by %s for the %s. "
		         "The %s restarts the %s because the %s keeps no state between two runs. "
		         "A %s is faster than a %s when the %s holds fewer than %d entries. "
		         "The ratio x = y / (k - 1) gives the share of the %s that each %s reads. "
		         "It is also given that the following available ones are used in various "
		         "ways by the others.\n",
		         a, 16 + 8 * i, b, a, b, a, a, c, a, b, d, a, a, a, b, n, 1960 + i, m, c, b,
		         c, a, a, d, c, 100 + 10 * i, a, d);
		man[i].text = man_text[i];
		man[i].len = strlen(man_text[i]);
		man[i].page_first = man[i].page_last = i + 1;
	}
}

/* The blank's position at the start of the quoted statement (its capital says nothing). */
static bool
blank_starts(const char *text)
{
	const char *q = strchr(text, '"');

	return q != NULL && strncmp(q + 1, "_____", 5) == 0;
}

static bool
capitalised(const char *s)
{
	return s[0] >= 'A' && s[0] <= 'Z';
}

static void
test_manual_mcq_set(void **state)
{
	qgen_offline_req req = {25, QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, NULL, 0};
	qgen_qlist       l;
	survey           sv;
	const char      *opts[4 * 25];
	int              ans[25];

	(void)state;
	make_manual();
	qgen_qlist_init(&l);
	qgen_offline_fill(man, MAN_PAGES, &req, 4, &l, NULL, NULL);
	assert_int_equal(l.n, 25);
	memset(&sv, 0, sizeof(sv));
	for (size_t i = 0; i < l.n; i++) {
		const qgen_question *q = &l.items[i];
		const char          *a = q->options[q->answer];
		bool                 num = strpbrk(a, "0123456789") != NULL;
		assert_int_equal(q->type, QGEN_MCQ);
		survey_mcq(&sv, q->text, (const char *const *)q->options, q->answer);
		/* Distractors of the answer's kind: numbers with numbers, names with names. */
		for (int k = 0; k < 4; k++) {
			assert_int_equal(strpbrk(q->options[k], "0123456789") != NULL, num);
			if (!num && !blank_starts(q->text))
				assert_int_equal(capitalised(q->options[k]), capitalised(a));
		}
		/* One question per passage: 25 of 30 pages, none twice. */
		for (size_t k = 0; k < i; k++)
			assert_int_not_equal(q->page, l.items[k].page);
		for (int k = 0; k < 4; k++)
			opts[4 * i + (size_t)k] = q->options[k];
		ans[i] = q->answer;
	}
	survey_distractors(&sv, opts, ans, (int)l.n);
	survey_print(&sv, "crafted manual", stderr);
	assert_int_equal(sv.in_url, 0);
	assert_int_equal(sv.in_code, 0);
	assert_int_equal(sv.function_word, 0);
	assert_true(sv.number > 0 && sv.name > 0 && sv.term > 0); /* every kind gets its turn */
	assert_true(sv.top_distractor_uses <= 25 / 5);            /* at most a fifth of the set */
	qgen_qlist_fini(&l);
}

/* The form of an open question, by its opening words (openq.h's wordings). */
static int
form_of(const char *t)
{
	if (strncmp(t, "What is the role", 16) == 0 || strstr(t, " do, according") != NULL)
		return QGEN_OPENQ_ROLE;
	if (strncmp(t, "Define ", 7) == 0 || strncmp(t, "What is ", 8) == 0 ||
	    strncmp(t, "What are ", 9) == 0 || strstr(t, " mean in this text") != NULL)
		return QGEN_OPENQ_DEFINE;
	if (strstr(t, "what happens") != NULL || strncmp(t, "What happens", 12) == 0)
		return QGEN_OPENQ_HAPPENS;
	if (strstr(t, "why is it that") != NULL || strncmp(t, "Why ", 4) == 0)
		return QGEN_OPENQ_WHY;
	if (strstr(t, " compare ") != NULL || strncmp(t, "What difference", 15) == 0)
		return QGEN_OPENQ_COMPARE;
	return QGEN_OPENQ_ABOUT;
}

static void
test_manual_open_forms(void **state)
{
	qgen_offline_req req = {12, QGEN_TYPE_MASK(QGEN_OPEN), QGEN_MEDIUM, NULL, 0};
	qgen_qlist       l;
	int              forms[QGEN_OPENQ_NFORMS] = {0}, distinct = 0;

	(void)state;
	make_manual();
	qgen_qlist_init(&l);
	qgen_offline_fill(man, MAN_PAGES, &req, 4, &l, NULL, NULL);
	assert_int_equal(l.n, 12);
	for (size_t i = 0; i < l.n; i++) {
		const qgen_question *q = &l.items[i];
		assert_null(strstr(q->text, "in your own words"));
		assert_non_null(q->reference);
		/* The reference is the sentence, from the cited page. */
		assert_non_null(strstr(man_text[q->page - 1], q->reference));
		forms[form_of(q->text)]++;
	}
	for (int f = 0; f < QGEN_OPENQ_NFORMS; f++)
		distinct += forms[f] > 0;
	/* define, what happens, why and compare all fit these pages: each is used */
	assert_true(forms[QGEN_OPENQ_DEFINE] > 0 && forms[QGEN_OPENQ_HAPPENS] > 0 &&
	            forms[QGEN_OPENQ_WHY] > 0 && forms[QGEN_OPENQ_COMPARE] > 0);
	assert_true(distinct >= 4);
	qgen_qlist_fini(&l);
}

static void
test_manual_deterministic(void **state)
{
	qgen_offline_req req = {10, QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
	                        QGEN_MEDIUM, NULL, 0};
	qgen_qlist       a, b;

	(void)state;
	make_manual();
	qgen_qlist_init(&a);
	qgen_qlist_init(&b);
	qgen_offline_fill(man, MAN_PAGES, &req, 4, &a, NULL, NULL);
	qgen_offline_fill(man, MAN_PAGES, &req, 4, &b, NULL, NULL);
	assert_int_equal(a.n, 10);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_string_equal(a.items[i].text, b.items[i].text);
		assert_int_equal(a.items[i].answer, b.items[i].answer);
		for (int k = 0; a.items[i].type == QGEN_MCQ && k < 4; k++)
			assert_string_equal(a.items[i].options[k], b.items[i].options[k]);
	}
	qgen_qlist_fini(&a);
	qgen_qlist_fini(&b);
}

/* ---- the pieces ------------------------------------------------------------------------------ */

/* Whether the token of s that starts with word is unsafe. */
static bool
unsafe_tok(const char *s, const char *word)
{
	qgen_tok t[QGEN_TOK_MAX];
	size_t   n = qgen_tokenize(s, t, QGEN_TOK_MAX);
	size_t   at = (size_t)(strstr(s, word) - s);

	for (size_t i = 0; i < n; i++)
		if (t[i].at >= at && t[i].at <= at + 2) /* the core, past stripped punctuation */
			return (t[i].flags & QGEN_TOK_UNSAFE) != 0;
	fail_msg("no token at %s", word);
	return false;
}

static void
test_tokens(void **state)
{
	const char *s = "See https://CRAN.R-project.org/package=SuppDists or mail bob@example.org, "
	                "call rnorm(n, mean = 0) with lower.tail and loadTable, read ~/R/fits.csv, "
	                "pass --login or -l, use `set -e` here, and r - 1 degrees of freedom for "
	                "Kendall's tau in 1904 with 64 points.";
	qgen_tok    t[QGEN_TOK_MAX];
	size_t      n = qgen_tokenize(s, t, QGEN_TOK_MAX);
	char        key[QGEN_TERM_MAX + 1];
	qgen_term_kind kind;
	size_t         ntok;

	(void)state;
	assert_true(n > 20);
	assert_true(unsafe_tok(s, "https"));     /* URL */
	assert_true(unsafe_tok(s, "bob@"));      /* e-mail */
	assert_true(unsafe_tok(s, "rnorm"));     /* a call ... */
	assert_true(unsafe_tok(s, "mean"));      /* ... and its arguments */
	assert_true(unsafe_tok(s, "lower.t"));   /* dotted identifier */
	assert_true(unsafe_tok(s, "loadTable")); /* camelCase */
	assert_true(unsafe_tok(s, "~/R"));       /* path */
	assert_true(unsafe_tok(s, "--login"));   /* options */
	assert_true(unsafe_tok(s, "-l,"));
	assert_true(unsafe_tok(s, "-e`"));                                 /* inside backticks */
	assert_true(unsafe_tok(s, "r - 1") && unsafe_tok(s, "1 degrees")); /* formula */
	assert_false(unsafe_tok(s, "freedom"));
	assert_false(unsafe_tok(s, "Kendall"));
	assert_false(unsafe_tok(s, "points"));
	/* Candidates: a possessive name, a year, a number with its unit; never a stop word. */
	for (size_t i = 0; i < n; i++) {
		if (!qgen_tok_candidate(s, t, n, i, false, &kind, &ntok, key))
			continue;
		assert_false(qgen_stop_word(key));
		if (strcmp(key, "kendall") == 0)
			assert_int_equal(kind, QGEN_TERM_NAME);
		if (strcmp(key, "1904") == 0 || strcmp(key, "64") == 0)
			assert_int_equal(kind, QGEN_TERM_NUMBER);
		assert_null(strstr(key, "suppdists"));
		assert_null(strstr(key, "example"));
	}
	/* A format string is code; a plural acronym is not. A capital after code starts a
	 * clause (a prototype run into its description), not a name; a name stops at a quote. */
	assert_true(unsafe_tok("Dates as YYMMDDhhmmss here.", "YYMMDD"));
	assert_false(unsafe_tok("Read the PDFs here.", "PDFs"));
	{
		const char *proto = "see asn1_parser2array Creates a file";
		const char *quoted = "sections Entitled \xE2\x80\x9C"
		                     "Endorsements\xE2\x80\x9D go";
		n = qgen_tokenize(proto, t, QGEN_TOK_MAX);
		for (size_t i = 0; i < n; i++)
			if (strncmp(proto + t[i].at, "Creates", 7) == 0)
				assert_false(
				    qgen_tok_candidate(proto, t, n, i, false, &kind, &ntok, key) &&
				    kind == QGEN_TERM_NAME);
		n = qgen_tokenize(quoted, t, QGEN_TOK_MAX);
		assert_true(qgen_tok_candidate(quoted, t, n, 1, true, &kind, &ntok, key));
		assert_int_equal(kind, QGEN_TERM_NAME);
		assert_int_equal(ntok, 1);
		assert_string_equal(key, "entitled");
	}
	assert_true(qgen_code_sentence(
	    "x <- c(1, 2); y[x > 0] <- {z}; f(x) == $y", t,
	    qgen_tokenize("x <- c(1, 2); y[x > 0] <- {z}; f(x) == $y", t, QGEN_TOK_MAX)));
}

static void
test_stop_list(void **state)
{
	size_t                   n;
	const char *const       *v = qgen_stop_list(&n);
	static const char *const generic[] = {"given", "available", "following", "using",
	                                      "based", "various",   "the",       "which"};

	(void)state;
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(v[i - 1], v[i]) < 0); /* sorted: bsearch finds every word */
	for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
		assert_true(qgen_stop_word(generic[i]));
	assert_false(qgen_stop_word("kernel"));
}

static void
test_open_forms_alone(void **state)
{
	char out[256];

	(void)state;
	assert_true(qgen_openq_write(QGEN_OPENQ_DEFINE, "A pipeline is a sequence of commands.",
	                             NULL, NULL, 1, 0, out, sizeof(out)));
	assert_string_equal(out, "What is a pipeline, according to the text?");
	assert_true(qgen_openq_write(QGEN_OPENQ_HAPPENS,
	                             "If the cache is full, the oldest entry is dropped.", NULL,
	                             NULL, 1, 0, out, sizeof(out)));
	assert_string_equal(out, "What happens if the cache is full?");
	assert_true(qgen_openq_write(QGEN_OPENQ_WHY,
	                             "The daemon restarts the socket because it keeps no state.",
	                             NULL, NULL, 1, 0, out, sizeof(out)));
	assert_string_equal(out, "Why is it that the daemon restarts the socket?");
	assert_true(qgen_openq_write(QGEN_OPENQ_COMPARE, "A queue is faster than a ledger here.",
	                             "queue", "ledger", 1, 0, out, sizeof(out)));
	assert_string_equal(out, "How does the text compare queue with ledger?");
	/* A heading run into the sentence, a pronoun, code: no definition. */
	assert_false(
	    qgen_openq_forms("Simple Commands A simple command is a list of words.", NULL, NULL) &
	    (1u << QGEN_OPENQ_DEFINE));
	assert_false(qgen_openq_forms("It is a sequence of commands and words.", NULL, NULL) &
	             (1u << QGEN_OPENQ_DEFINE));
	assert_false(qgen_openq_forms("The f(x) call is a sequence of commands.", NULL, NULL) &
	             (1u << QGEN_OPENQ_DEFINE));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mcq_from_text),
	    cmocka_unit_test(test_open_and_mixed),
	    cmocka_unit_test(test_variants_do_not_repeat),
	    cmocka_unit_test(test_topic_first),
	    cmocka_unit_test(test_page_of_sentence),
	    cmocka_unit_test(test_too_little_text),
	    cmocka_unit_test(test_accents_and_determinism),
	    cmocka_unit_test(test_fill_rounds),
	    cmocka_unit_test(test_manual_mcq_set),
	    cmocka_unit_test(test_manual_open_forms),
	    cmocka_unit_test(test_manual_deterministic),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_stop_list),
	    cmocka_unit_test(test_open_forms_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
