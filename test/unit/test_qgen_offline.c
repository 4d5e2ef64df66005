/*
 * test_qgen_offline.c - the offline provider on real-looking text: the count asked for, valid
 * multiple choice (the blanked term is the right option, four distinct options), open questions
 * with their source sentence, pages from the chunks, variants that do not repeat, topic first,
 * too little text, accents, determinism; the job's rounds (qgen_offline_fill).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/offline.h"
#include "../../svc-qgen/quality.h"

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
    {page1, sizeof(page1) - 1, 1, 1},
    {page2, sizeof(page2) - 1, 2, 2},
    {page3, sizeof(page3) - 1, 3, 3},
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

static void
test_too_little_text(void **state)
{
	qgen_chunk       tiny = {"Three words only", 16, 1, 1};
	qgen_chunk       empty = {"", 0, 1, 1};
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
	qgen_chunk           c = {fr, sizeof(fr) - 1, 4, 4};
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
	assert_true(r.n >= 2); /* the first round alone falls short on this text */
	assert_true(r.seen[0] < 10);
	assert_int_equal(r.seen[r.n - 1], 10);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mcq_from_text),
	    cmocka_unit_test(test_open_and_mixed),
	    cmocka_unit_test(test_variants_do_not_repeat),
	    cmocka_unit_test(test_topic_first),
	    cmocka_unit_test(test_too_little_text),
	    cmocka_unit_test(test_accents_and_determinism),
	    cmocka_unit_test(test_fill_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
