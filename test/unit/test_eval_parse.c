/*
 * test_eval_parse.c - reading a model's grading replies: the lenient forms (other list names,
 * numeric ids, scores as strings or fractions, other text names), and the strict rules that
 * leave an item ungraded with its reason - missing from the reply, score out of range or not a
 * number, no feedback, garbage - so that it is asked again and never given a made-up score.
 * And the overall reply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-eval/parse.h"

static const char *const ids3[] = {"1", "2", "3"};

static cm_err
parse(const char *json, const char *const *ids, size_t n, eval_parsed *out)
{
	memset(out, 0, n * sizeof(*out));
	return eval_parse_grades(json, strlen(json), ids, n, out);
}

static void
fini(eval_parsed *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		eval_grade_fini(&p[i].grade);
}

static void
test_all_graded(void **state)
{
	eval_parsed p[3];

	(void)state;
	assert_int_equal(parse("{\"grades\":["
	                       "{\"id\":\"2\",\"score\":7,\"feedback\":\"Mostly right.\","
	                       "\"suggestion\":\"Add the enzyme.\",\"hint\":\"Rubisco.\"},"
	                       "{\"id\":1,\"score\":\"9/10\",\"feedback\":\"Good.\","
	                       "\"suggestions\":\"s\",\"correct_answer_hint\":\"h\"},"
	                       "{\"id\":\"3\",\"score\":4.6,\"feedback\":\"Partly.\"}]}",
	                       ids3, 3, p),
	                 CM_OK);
	assert_true(p[0].ok && p[1].ok && p[2].ok);
	assert_int_equal(p[0].grade.score, 9);
	assert_string_equal(p[0].grade.suggestions, "s");
	assert_string_equal(p[0].grade.hint, "h");
	assert_int_equal(p[1].grade.score, 7);
	assert_string_equal(p[1].grade.feedback, "Mostly right.");
	assert_int_equal(p[2].grade.score, 5); /* rounded */
	assert_string_equal(p[2].grade.hint, "");
	fini(p, 3);
	/* Other list names, and a bare array. */
	assert_int_equal(
	    parse("{\"results\":[{\"id\":\"1\",\"score\":0,\"feedback\":\"No.\"}]}", ids3, 1, p),
	    CM_OK);
	assert_true(p[0].ok);
	fini(p, 1);
	assert_int_equal(parse("[{\"id\":\"1\",\"score\":10,\"feedback\":\"Yes.\"}]", ids3, 1, p),
	                 CM_OK);
	assert_true(p[0].ok);
	fini(p, 1);
	/* A one-item batch answered without its id. */
	assert_int_equal(parse("{\"grades\":[{\"score\":3,\"feedback\":\"Weak.\"}]}", ids3, 1, p),
	                 CM_OK);
	assert_true(p[0].ok);
	assert_int_equal(p[0].grade.score, 3);
	fini(p, 1);
}

static void
test_missing_and_invalid(void **state)
{
	eval_parsed p[3];

	(void)state;
	assert_int_equal(parse("{\"grades\":["
	                       "{\"id\":\"1\",\"score\":11,\"feedback\":\"Great!\"},"
	                       "{\"id\":\"2\",\"score\":-1,\"feedback\":\"x\"},"
	                       "{\"id\":\"9\",\"score\":5,\"feedback\":\"not asked\"}]}",
	                       ids3, 3, p),
	                 CM_OK);
	assert_false(p[0].ok);
	assert_non_null(strstr(p[0].why, "out of range"));
	assert_false(p[1].ok);
	assert_non_null(strstr(p[1].why, "out of range"));
	assert_false(p[2].ok);
	assert_string_equal(p[2].why, "missing from the reply");
	fini(p, 3);

	assert_int_equal(parse("{\"grades\":["
	                       "{\"id\":\"1\",\"score\":\"high\",\"feedback\":\"x\"},"
	                       "{\"id\":\"2\",\"score\":6},"
	                       "{\"id\":\"3\",\"score\":null,\"feedback\":\"x\"}]}",
	                       ids3, 3, p),
	                 CM_OK);
	assert_string_equal(p[0].why, "score is not a number");
	assert_string_equal(p[1].why, "no feedback");
	assert_string_equal(p[2].why, "score is not a number");
	fini(p, 3);

	/* A duplicated id keeps its first entry. */
	assert_int_equal(parse("{\"grades\":[{\"id\":\"1\",\"score\":2,\"feedback\":\"a\"},"
	                       "{\"id\":\"1\",\"score\":10,\"feedback\":\"b\"}]}",
	                       ids3, 1, p),
	                 CM_OK);
	assert_int_equal(p[0].grade.score, 2);
	fini(p, 1);
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
	    "",
	    "Sure, they are all fine.",
	    "{\"grades\":{\"1\":7}}",
	    "{\"grades\":[1,2,3]}",
	    "{\"score\":7}",
	    "{\"grades\":[{\"id\":\"1\",\"score\":7,\"feedback\":\"cut",
	    "null",
	};
	eval_parsed p[3];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cm_err err = parse(bad[i], ids3, 3, p);
		for (size_t k = 0; k < 3; k++)
			assert_false(p[k].ok);
		/* No usable list, or no JSON at all, is garbage as a whole; a list of
		 * non-objects is a reply that graded nothing. */
		assert_int_equal(err, i == 3 ? CM_OK : CM_EPROTO);
		fini(p, 3);
	}
}

static void
test_overall(void **state)
{
	eval_overall o;
	const char  *ok = "{\"overall_feedback\":\"Good work.\",\"strengths\":[\"a\",\"b\",7],"
	                  "\"areas_for_improvement\":[\"c\"],\"study_suggestions\":[]}";

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(eval_parse_overall(ok, strlen(ok), &o), CM_OK);
	assert_string_equal(o.feedback, "Good work.");
	assert_int_equal(o.n_strengths, 2);
	assert_int_equal(o.n_areas, 1);
	assert_int_equal(o.n_study, 0);
	eval_overall_fini(&o);
	assert_int_equal(eval_parse_overall("{\"strengths\":[]}", 16, &o), CM_EPROTO);
	assert_int_equal(eval_parse_overall("{\"overall_feedback\":\"  \"}", 25, &o), CM_EPROTO);
	assert_int_equal(eval_parse_overall("nope", 4, &o), CM_EPROTO);
	assert_null(o.feedback);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_graded),
	    cmocka_unit_test(test_missing_and_invalid),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_overall),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
