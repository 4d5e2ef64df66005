/*
 * test_qgen_quality.c - parsing model answers into questions, the validity rules, duplicate and
 * near-duplicate filtering, and the spreading of answer letters (the old system's "all B").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/quality.h"

static const qgen_batch_ctx mcq_ctx = {QGEN_TYPE_MASK(QGEN_MCQ), QGEN_MEDIUM, 10, 12};
static const qgen_batch_ctx any_ctx = {QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
                                       QGEN_HARD, 1, 3};

static int
parse(const char *json, const qgen_batch_ctx *ctx, qgen_qlist *l, int *rejected)
{
	char why[200];

	qgen_qlist_init(l);
	return qgen_parse_questions(json, strlen(json), ctx, l, rejected, why, sizeof(why));
}

static void
test_parse_variants(void **state)
{
	qgen_qlist  l;
	int         rej;
	const char *json =
	    "{\"questions\":["
	    "{\"question\":\"What does the Calvin cycle fix into sugars?\",\"options\":[\"A) "
	    "Carbon "
	    "dioxide\",\"B) Oxygen\",\"C) Nitrogen\",\"D) Water\"],\"answer\":\"A\",\"page\":11},"
	    "{\"text\":\"Which organelle holds chlorophyll in plant cells?\",\"options\":[\"(A) "
	    "Mitochondrion\",\"(B) Chloroplast\",\"(C) Nucleus\",\"(D) Ribosome\"],"
	    "\"correctAnswer\":\"Chloroplast\",\"page\":99},"
	    "{\"question\":\"In C, what does the expression {x} denote in this passage?\","
	    "\"options\":[\"a block\",\"a set\",\"a struct\",\"a macro\"],\"answer_index\":3}"
	    "]}";

	(void)state;
	assert_int_equal(parse(json, &mcq_ctx, &l, &rej), CM_OK);
	assert_int_equal(rej, 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].options[0], "Carbon dioxide");
	assert_int_equal(l.items[0].answer, 0);
	assert_int_equal(l.items[0].page, 11);
	assert_string_equal(l.items[1].options[1], "Chloroplast");
	assert_int_equal(l.items[1].answer, 1);
	assert_int_equal(l.items[1].page, 10); /* outside the chunk: its first page */
	assert_string_equal(l.items[2].text,
	                    "In C, what does the expression {x} denote in this passage?");
	assert_int_equal(l.items[2].answer, 3);
	assert_int_equal(l.items[2].difficulty, QGEN_MEDIUM);
	qgen_qlist_fini(&l);
}

/* "A. Lincoln" among unlabelled options is a name; labels go only when all four are A-D. */
static void
test_labels_only_when_all_labelled(void **state)
{
	qgen_qlist  l;
	int         rej;
	const char *json =
	    "{\"questions\":[{\"question\":\"Who was president during the war?\","
	    "\"options\":[\"A. Lincoln\",\"Grant\",\"Lee\",\"Davis\"],\"answer\":0}]}";

	(void)state;
	assert_int_equal(parse(json, &mcq_ctx, &l, &rej), CM_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].options[0], "A. Lincoln");
	qgen_qlist_fini(&l);
}

static void
test_parse_rejects(void **state)
{
	qgen_qlist  l;
	int         rej;
	const char *json =
	    "{\"questions\":["
	    "{\"question\":\"Three options only, which is "
	    "wrong?\",\"options\":[\"a\",\"b\",\"c\"],\"answer\":0},"
	    "{\"question\":\"Five options, which is wrong "
	    "too?\",\"options\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"answer\":0},"
	    "{\"question\":\"Duplicate options: which "
	    "one?\",\"options\":[\"Water\",\"water.\",\"Salt\",\"Sand\"],\"answer\":0},"
	    "{\"question\":\"No valid answer letter "
	    "here?\",\"options\":[\"w\",\"x\",\"y\",\"z\"],\"answer\":\"E\"},"
	    "{\"question\":\"Short?\",\"options\":[\"w\",\"x\",\"y\",\"z\"],\"answer\":1},"
	    "{\"question\":\"Answer index out of range "
	    "here?\",\"options\":[\"w\",\"x\",\"y\",\"z\"],\"answer_index\":4},"
	    "{\"question\":\"Bad \\u00ff utf is fine, bytes are "
	    "not\",\"options\":[\"w\",\"x\",\"y\",\"\"],\"answer\":1},"
	    "{\"type\":\"open\",\"question\":\"An open question is not allowed "
	    "here?\",\"answer\":\"ref\"},"
	    "7,"
	    "{\"question\":\"A good one among the bad "
	    "ones?\",\"options\":[\"w\",\"x\",\"y\",\"z\"],\"answer\":\"c\"}"
	    "]}";

	(void)state;
	assert_int_equal(parse(json, &mcq_ctx, &l, &rej), CM_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(rej, 9);
	assert_int_equal(l.items[0].answer, 2);
	qgen_qlist_fini(&l);

	assert_int_equal(parse("{\"items\":[]}", &mcq_ctx, &l, &rej), CM_EPROTO);
	assert_int_equal(parse("[1,2]", &mcq_ctx, &l, &rej), CM_EPROTO);
	assert_int_equal(parse("{\"questions\":[", &mcq_ctx, &l, &rej), CM_EPROTO);
	qgen_qlist_fini(&l);
}

static void
test_open_questions(void **state)
{
	qgen_qlist  l;
	int         rej;
	const char *json =
	    "{\"questions\":[{\"type\":\"open\",\"question\":\"Explain how light drives "
	    "photosynthesis.\",\"answer\":\"Light excites chlorophyll.\",\"page\":2},"
	    "{\"type\":\"open\",\"question\":\"Explain without a reference answer.\"}]}";

	(void)state;
	assert_int_equal(parse(json, &any_ctx, &l, &rej), CM_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(rej, 1);
	assert_int_equal(l.items[0].type, QGEN_OPEN);
	assert_string_equal(l.items[0].reference, "Light excites chlorophyll.");
	assert_int_equal(l.items[0].difficulty, QGEN_HARD);
	qgen_qlist_fini(&l);
}

static void
test_invalid_utf8_rejected(void **state)
{
	qgen_question q;
	char          why[100];

	(void)state;
	memset(&q, 0, sizeof(q));
	q.type = QGEN_MCQ;
	q.text = strdup("Which byte \xff is this question about?");
	for (int i = 0; i < 4; i++) {
		char o[8];
		snprintf(o, sizeof(o), "o%d", i);
		q.options[i] = strdup(o);
	}
	assert_false(qgen_check(&q, &mcq_ctx, why, sizeof(why)));
	free(q.text);
	q.text = strdup("  Which valid question is this one?  ");
	q.page = 11;
	assert_true(qgen_check(&q, &mcq_ctx, why, sizeof(why)));
	assert_string_equal(q.text, "Which valid question is this one?");
	qgen_question_fini(&q);
}

static void
test_duplicates(void **state)
{
	(void)state;
	assert_true(qgen_near_duplicate("What is the Calvin cycle?", "what is the calvin cycle"));
	assert_true(qgen_near_duplicate("Which gas does the Calvin cycle fix into sugars?",
	                                "Which gas does the Calvin cycle fix into the sugars"));
	assert_false(qgen_near_duplicate("Which gas does the Calvin cycle fix into sugars?",
	                                 "Which organelle contains chlorophyll pigments?"));
	char n[64];
	qgen_normalize("  Hello,   World! 42 ", n, sizeof(n));
	assert_string_equal(n, "hello world 42");
}

static void
make(qgen_question *q, const char *text, int answer)
{
	memset(q, 0, sizeof(*q));
	q->type = QGEN_MCQ;
	q->text = strdup(text);
	for (int i = 0; i < 4; i++) {
		char o[32];
		snprintf(o, sizeof(o), "%s option %d", i == answer ? "right" : "wrong", i);
		q->options[i] = strdup(o);
	}
	q->answer = answer;
	q->page = 1;
}

static void
test_select_counts_and_dedupes(void **state)
{
	qgen_qlist    chosen, cand;
	qgen_question q;

	(void)state;
	qgen_qlist_init(&chosen);
	qgen_qlist_init(&cand);
	make(&q, "What is the Calvin cycle?", 0);
	assert_int_equal(qgen_qlist_push(&cand, &q), CM_OK);
	make(&q, "What is the Calvin cycle", 1); /* duplicate */
	assert_int_equal(qgen_qlist_push(&cand, &q), CM_OK);
	make(&q, "Which organelle contains chlorophyll?", 2);
	assert_int_equal(qgen_qlist_push(&cand, &q), CM_OK);
	make(&q, "How many ATP does glycolysis yield?", 3);
	assert_int_equal(qgen_qlist_push(&cand, &q), CM_OK);
	assert_int_equal(qgen_select(&chosen, &cand, 2), 2);
	assert_int_equal(chosen.n, 2);
	assert_string_equal(chosen.items[1].text, "Which organelle contains chlorophyll?");
	/* More room: the next distinct one comes; the duplicate never does. */
	assert_int_equal(qgen_select(&chosen, &cand, 10), 1);
	assert_int_equal(chosen.n, 3);
	qgen_qlist_fini(&chosen);
	qgen_qlist_fini(&cand);
}

static void
test_spread_answers(void **state)
{
	(void)state;
	for (int n = 4; n <= 200; n += 7) {
		qgen_qlist l;
		int        counts[4] = {0};
		qgen_qlist_init(&l);
		for (int i = 0; i < n; i++) {
			qgen_question q;
			char          t[64];
			snprintf(t, sizeof(t), "Question number %d about something?", i);
			make(&q, t, 1); /* all "B" */
			assert_int_equal(qgen_qlist_push(&l, &q), CM_OK);
		}
		qgen_spread_answers(&l, 42);
		for (size_t i = 0; i < l.n; i++) {
			counts[l.items[i].answer]++;
			/* The right option moved with the key. */
			assert_non_null(strstr(l.items[i].options[l.items[i].answer], "right"));
		}
		int lo = n, hi = 0;
		for (int k = 0; k < 4; k++) {
			lo = counts[k] < lo ? counts[k] : lo;
			hi = counts[k] > hi ? counts[k] : hi;
		}
		assert_true(hi - lo <= 1);
		qgen_qlist_fini(&l);
	}
}

static void
test_spread_keeps_positional(void **state)
{
	qgen_qlist    l;
	qgen_question q;

	(void)state;
	qgen_qlist_init(&l);
	make(&q, "Which of these is right?", 3);
	free(q.options[3]);
	q.options[3] = strdup("All of the above");
	assert_int_equal(qgen_qlist_push(&l, &q), CM_OK);
	qgen_spread_answers(&l, 7);
	assert_int_equal(l.items[0].answer, 3);
	assert_string_equal(l.items[0].options[3], "All of the above");
	qgen_qlist_fini(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_variants),
	    cmocka_unit_test(test_labels_only_when_all_labelled),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_open_questions),
	    cmocka_unit_test(test_invalid_utf8_rejected),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_select_counts_and_dedupes),
	    cmocka_unit_test(test_spread_answers),
	    cmocka_unit_test(test_spread_keeps_positional),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
