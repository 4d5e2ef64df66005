/*
 * test_eval_score.c - what svc-eval scores without a model: multiple-choice answers by letter
 * (case and spaces ignored, "a plant" is no letter) and by option text, percentages with one
 * decimal, grade letters at their boundaries, and the summary written from scores.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-eval/score.h"

static void
test_letters(void **state)
{
	(void)state;
	assert_int_equal(eval_mcq_letter("b", 4), 1);
	assert_int_equal(eval_mcq_letter("  B  ", 4), 1);
	assert_int_equal(eval_mcq_letter("B)", 4), 1);
	assert_int_equal(eval_mcq_letter("(c)", 4), 2);
	assert_int_equal(eval_mcq_letter("d.", 4), 3);
	assert_int_equal(eval_mcq_letter("A) Paris", 4), 0);
	assert_int_equal(eval_mcq_letter("option C", 4), 2);
	assert_int_equal(eval_mcq_letter("Answer: d", 4), 3);
	assert_int_equal(eval_mcq_letter("a plant", 4), -1); /* a word, not a letter */
	assert_int_equal(eval_mcq_letter("bee", 4), -1);
	assert_int_equal(eval_mcq_letter("E", 4), -1); /* past the options */
	assert_int_equal(eval_mcq_letter("E", 6), 4);
	assert_int_equal(eval_mcq_letter("e", 0), -1); /* no options: A-D */
	assert_int_equal(eval_mcq_letter("", 4), -1);
	assert_int_equal(eval_mcq_letter("7", 4), -1);
}

static void
test_option_text(void **state)
{
	char *v1[] = {"Calvin", "light", "Carbon dioxide", "Chlorophyll"};
	char *legacy[] = {"A) Paris", "B) Lyon", "C) Nice", "D) Lille"};
	char *letters[] = {"B", "A", "C", "D"}; /* options that are themselves letters */

	(void)state;
	assert_int_equal(eval_mcq_option_text("carbon  DIOXIDE.", v1, 4), 2);
	assert_int_equal(eval_mcq_option_text("nitrogen", v1, 4), -1);
	assert_int_equal(eval_mcq_option_text("lyon", legacy, 4), 1);
	assert_int_equal(eval_mcq_option_text("C) Nice", legacy, 4), 2);
	assert_int_equal(eval_mcq_choice("b", legacy, 4), 1);
	assert_int_equal(eval_mcq_choice("Lille", legacy, 4), 3);
	assert_int_equal(eval_mcq_choice("Calvin", v1, 4), 0);
	assert_int_equal(eval_mcq_choice("d", v1, 4), 3);
	/* The option's own text wins over a letter reading. */
	assert_int_equal(eval_mcq_choice("A", letters, 4), 1);
	assert_int_equal(eval_mcq_choice("", v1, 4), -1);
}

static void
test_totals(void **state)
{
	(void)state;
	assert_true(eval_percentage(0, 0) == 0.0);
	assert_true(eval_percentage(7, 10) == 70.0);
	assert_true(eval_percentage(2, 30) == 6.7); /* 6.666 -> 6.7 */
	assert_true(eval_percentage(1, 30) == 3.3);
	assert_true(eval_percentage(179, 200) == 89.5);
	assert_string_equal(eval_grade_letter(90.0), "A");
	assert_string_equal(eval_grade_letter(89.9), "B");
	assert_string_equal(eval_grade_letter(80.0), "B");
	assert_string_equal(eval_grade_letter(70.0), "C");
	assert_string_equal(eval_grade_letter(60.0), "D");
	assert_string_equal(eval_grade_letter(59.9), "F");
	assert_string_equal(eval_grade_letter(0.0), "F");
}

static void
test_summary(void **state)
{
	eval_scored items[] = {
	    {"What fixes carbon?", true, 10, true, 3},
	    {"Which organelle?", true, 0, true, 5},
	    {"Explain osmosis.", false, 4, true, 5},
	    {"Explain diffusion.", false, 9, true, 6},
	};
	eval_overall o;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(eval_summarize(items, 4, &o), CM_OK);
	assert_non_null(strstr(o.feedback, "23 of 40"));
	assert_non_null(strstr(o.feedback, "57.5%"));
	assert_non_null(strstr(o.feedback, "grade F"));
	assert_non_null(strstr(o.feedback, "1 of 2 multiple-choice"));
	assert_int_equal(o.n_strengths, 2);
	assert_int_equal(o.n_areas, 2);
	assert_int_equal(o.n_study, 1); /* both weak answers are on page 5 */
	assert_string_equal(o.study[0], "Re-read page 5 of the document.");
	eval_overall_fini(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_letters),
	    cmocka_unit_test(test_option_text),
	    cmocka_unit_test(test_totals),
	    cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
