/*
 * test_llm_json.c - cm_llm_extract_json: finding the JSON object in model text (fences, prose,
 * braces inside strings and prose, nesting, truncation, hostile input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm/llm.h"

/* Extracts from s and compares with want (NULL: expect CM_EPROTO). */
static void
check(const char *s, const char *want)
{
	const char *start = NULL;
	size_t      len = 0;
	cm_err      err = cm_llm_extract_json(s, strlen(s), &start, &len);

	if (want == NULL) {
		assert_int_equal(err, CM_EPROTO);
		assert_null(start);
		assert_int_equal(len, 0);
		return;
	}
	assert_int_equal(err, CM_OK);
	assert_true(start >= s && start + len <= s + strlen(s));
	assert_int_equal(len, strlen(want));
	assert_memory_equal(start, want, len);
}

static void
test_plain(void **state)
{
	check("{\"a\":1}", "{\"a\":1}");
	check("  \n{\"a\": [1, 2, {\"b\": null}]}\n ", "{\"a\": [1, 2, {\"b\": null}]}");
}

static void
test_fences(void **state)
{
	check("```json\n{\"questions\":[]}\n```", "{\"questions\":[]}");
	check("```\n{\"x\":\"y\"}\n```\n", "{\"x\":\"y\"}");
	check("Here you go:\n```json\n{\"x\":1}\n```\nAnything else?", "{\"x\":1}");
}

static void
test_prose(void **state)
{
	check("Sure! Here is the JSON: {\"a\":true} Hope this helps.", "{\"a\":true}");
	/* braces in the prose before the object: balanced but not JSON, skipped whole */
	check("Sure {as requested}: {\"a\":1}", "{\"a\":1}");
	/* an unbalanced brace in the prose before it */
	check("use { to open. {\"a\":1}", "{\"a\":1}");
	/* a brace after it does not matter */
	check("{\"a\":1} and then }{", "{\"a\":1}");
}

static void
test_braces_in_strings(void **state)
{
	check("x {\"q\":\"what is {x}?\",\"e\":\"}}}\"} y",
	      "{\"q\":\"what is {x}?\",\"e\":\"}}}\"}");
	check("{\"q\":\"a \\\" } quote\"}", "{\"q\":\"a \\\" } quote\"}");
	check("{\"q\":\"backslash \\\\\",\"r\":\"}\"}", "{\"q\":\"backslash \\\\\",\"r\":\"}\"}");
}

static void
test_nested_outermost(void **state)
{
	const char *s =
	    "{\"questions\":[{\"question\":\"Q1\",\"options\":[\"a\",\"b\",\"c\",\"d\"],"
	    "\"answer_index\":2,\"meta\":{\"page\":3}}]}";

	check(s, s);
	/* an invalid outer object never yields one of its inner objects */
	check("{\"a\": {\"b\": 1},}", NULL);
}

static void
test_truncated(void **state)
{
	check("{\"questions\":[{\"question\":\"Q1\",\"options\":[\"a\",\"b\"", NULL);
	check("```json\n{\"questions\":[{\"question\":\"Q1\"}", NULL);
	check("{\"a\":\"unterminated}", NULL);
	/* a truncated outer object never yields one of its complete inner objects */
	check("{\"questions\":[{\"q\":1},{\"q\":2},{\"q\":\"thr", NULL);
	check("{\"a\":[1,2 {\"b\":2}", NULL);
}

static void
test_nothing(void **state)
{
	const char *start = (const char *)1;
	size_t      len = 1;

	check("", NULL);
	check("no json here", NULL);
	check("[1, 2, 3]", NULL); /* an array is not an object */
	check("{not json}", NULL);
	check("{}", "{}");
	check("{ }", "{ }");
	check("x { \n \"a\" : 1 } y", "{ \n \"a\" : 1 }");
	assert_int_equal(cm_llm_extract_json(NULL, 0, &start, &len), CM_EPROTO);
	assert_null(start);
	/* a length shorter than the string is respected */
	assert_int_equal(cm_llm_extract_json("{\"a\":1}", 5, &start, &len), CM_EPROTO);
}

static void
test_hostile(void **state)
{
	size_t n = 200000;
	char  *s = malloc(n + 1);

	/* no candidates at all: linear */
	assert_non_null(s);
	memset(s, '{', n);
	s[n] = '\0';
	check(s, NULL);
	/* many balanced non-JSON candidates, then the object past the cap: not found, but fast */
	for (size_t i = 0; i + 5 < n; i += 5)
		memcpy(s + i, "{\"x\"}", 5);
	memcpy(s + n - 7, "{\"a\":1}", 7);
	check(s, NULL);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_fences),
	    cmocka_unit_test(test_prose),
	    cmocka_unit_test(test_braces_in_strings),
	    cmocka_unit_test(test_nested_outermost),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_nothing),
	    cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
