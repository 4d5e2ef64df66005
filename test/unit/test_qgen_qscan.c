/*
 * test_qgen_qscan.c - the streamed-answer scanner (svc-qgen/qscan.h): each question object of
 * the "questions" array comes out whole, exactly as written, however the answer is cut into
 * deltas (every split point, byte by byte); braces and quotes inside strings, escapes, prose
 * and fences around the object, nested "questions" keys, elements that are not objects, an
 * element too large, a truncated answer, and a callback that stops the scan. What it hands out
 * reads as the whole-answer parser reads the same answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/qscan.h"
#include "../../svc-qgen/quality.h"

#define MAXOBJ 16

typedef struct seen {
	char  *obj[MAXOBJ];
	size_t n;
	size_t stop_after; /* 0: never stop */
} seen;

static bool
collect(void *arg, const char *obj, size_t len)
{
	seen *s = arg;

	assert_true(s->n < MAXOBJ);
	s->obj[s->n] = malloc(len + 1);
	assert_non_null(s->obj[s->n]);
	memcpy(s->obj[s->n], obj, len);
	s->obj[s->n][len] = '\0';
	s->n++;
	return s->stop_after == 0 || s->n < s->stop_after;
}

static void
seen_fini(seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->obj[i]);
	memset(s, 0, sizeof(*s));
}

/* Scans text cut at the given points (ascending offsets, ncuts of them). */
static void
scan_cut(const char *text, const size_t *cuts, size_t ncuts, seen *out, qgen_qscan *sc)
{
	size_t len = strlen(text), at = 0;

	qgen_qscan_init(sc, collect, out);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		(void)qgen_qscan_feed(sc, text + at, end - at);
		at = end;
	}
}

/* text must yield exactly want[0..nwant-1], whole, split at any one point, and byte by byte. */
static void
expect(const char *text, const char *const *want, size_t nwant)
{
	size_t     len = strlen(text);
	seen       s = {0};
	qgen_qscan sc;

	for (size_t cut = 0; cut <= len; cut++) {
		scan_cut(text, &cut, 1, &s, &sc);
		assert_int_equal(s.n, nwant);
		for (size_t i = 0; i < nwant; i++)
			assert_string_equal(s.obj[i], want[i]);
		qgen_qscan_fini(&sc);
		seen_fini(&s);
	}
	qgen_qscan_init(&sc, collect, &s);
	for (size_t i = 0; i < len; i++)
		(void)qgen_qscan_feed(&sc, text + i, 1);
	assert_int_equal(s.n, nwant);
	for (size_t i = 0; i < nwant; i++)
		assert_string_equal(s.obj[i], want[i]);
	assert_int_equal(sc.emitted, (int)nwant);
	qgen_qscan_fini(&sc);
	seen_fini(&s);
}

static const char Q1[] = "{\"question\": \"Which word completes this statement: \\\"a } b\\\"?\", "
                         "\"options\": [\"alpha\", \"beta\", \"gamma\", \"delta\"], "
                         "\"answer_index\": 1, \"page\": 2}";
static const char Q2[] = "{\"question\":\"What does { mean in \\\\{x\\\\}? ]\",\"options\":"
                         "[\"a brace\",\"a bracket\",\"a quote\",\"nothing\"],"
                         "\"answer_index\":0,\"meta\":{\"k\":[1,{\"x\":\"}}\"}]}}";

static void
test_plain_answer(void **state)
{
	char              text[1024];
	const char *const want[] = {Q1, Q2};

	(void)state;
	snprintf(text, sizeof(text), "{\"questions\": [%s, %s]}", Q1, Q2);
	expect(text, want, 2);
}

static void
test_prose_and_fences(void **state)
{
	char              text[1024];
	const char *const want[] = {Q1};

	(void)state;
	snprintf(text, sizeof(text),
	         "Sure! Here is the JSON {as requested}: ```json\n{ \"questions\" : [ %s ] }\n```\n"
	         "Anything else? {\"questions\": [{\"late\": 1}]}",
	         Q1);
	expect(text, want, 1); /* nothing after the array closes */
}

static void
test_other_objects_and_keys(void **state)
{
	char              text[1024];
	const char *const want[] = {"{\"b\":2}", Q1};

	(void)state;
	/* A first root object without questions, then one whose nested "questions" (and a string
	 * value "questions") must not count. */
	snprintf(text, sizeof(text),
	         "{\"note\": \"{questions}\"} then {\"meta\":{\"questions\":[{\"a\":1}]},"
	         "\"x\":\"questions\",\"questions\":[\"text\", [1, {\"c\":3}], 7, null, "
	         "{\"b\":2}, %s]}",
	         Q1);
	expect(text, want, 2);
}

static void
test_truncated_and_garbage(void **state)
{
	char              text[1024];
	const char *const want[] = {Q1};
	seen              s = {0};
	qgen_qscan        sc;
	uint32_t          x = 12345;
	char              junk[4096];

	(void)state;
	/* Cut at the token limit in the middle of the second question. */
	snprintf(text, sizeof(text), "{\"questions\":[%s, {\"question\": \"half a que", Q1);
	expect(text, want, 1);
	scan_cut(text, NULL, 0, &s, &sc);
	assert_int_equal(sc.last_end, strlen("{\"questions\":[") + strlen(Q1));
	assert_false(qgen_qscan_done(&sc));
	qgen_qscan_fini(&sc);
	seen_fini(&s);
	/* Noise: nothing comes out of bytes without the shape, and nothing breaks. */
	for (size_t i = 0; i < sizeof(junk); i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = "{}[]\"\\:, qa"[(x >> 16) % 11];
	}
	qgen_qscan_init(&sc, collect, &s);
	(void)qgen_qscan_feed(&sc, junk, sizeof(junk));
	assert_true(s.n <= MAXOBJ);
	qgen_qscan_fini(&sc);
	seen_fini(&s);
	{ /* an element closed by the wrong bracket is not an object */
		const char *const b2[] = {"{\"b\":2}"};
		expect("{\"questions\":[{\"a\":1], {\"b\":2}]}", b2, 1);
	}
	expect("no JSON here at all", NULL, 0);
	expect("{\"questions\": {\"not\": \"an array\"}}", NULL, 0);
}

static void
test_element_too_large(void **state)
{
	size_t            big = QGEN_QSCAN_MAX_OBJ + 100, n = 0;
	char             *text = malloc(big + 256);
	const char *const want[] = {"{\"ok\":1}"};
	seen              s = {0};
	qgen_qscan        sc;

	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text, 64, "{\"questions\":[{\"question\":\"");
	memset(text + n, 'x', big);
	n += big;
	memcpy(text + n, "\"},{\"ok\":1}]}", 14);
	scan_cut(text, NULL, 0, &s, &sc);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.obj[0], want[0]);
	assert_int_equal(sc.skipped, 1);
	assert_true(qgen_qscan_done(&sc));
	qgen_qscan_fini(&sc);
	seen_fini(&s);
	free(text);
}

static void
test_callback_stops(void **state)
{
	char       text[1024];
	seen       s = {.stop_after = 1};
	qgen_qscan sc;

	(void)state;
	snprintf(text, sizeof(text), "{\"questions\": [%s, %s]}", Q1, Q2);
	qgen_qscan_init(&sc, collect, &s);
	assert_false(qgen_qscan_feed(&sc, text, strlen(text)));
	assert_false(qgen_qscan_feed(&sc, text, strlen(text)));
	assert_int_equal(s.n, 1);
	qgen_qscan_fini(&sc);
	seen_fini(&s);
}

/* The questions read one by one are those the whole-answer parser reads. */
static void
test_same_as_whole_answer(void **state)
{
	const qgen_batch_ctx ctx = {QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
	                            QGEN_MEDIUM, 1, 9};
	char                 text[2048], why[160];
	qgen_qlist           whole;
	seen                 s = {0};
	qgen_qscan           sc;
	int                  rejected = 0;
	size_t               k = 0;

	(void)state;
	snprintf(text, sizeof(text),
	         "{\"questions\": [%s, {\"question\": \"too short\", \"options\": []}, %s, "
	         "{\"type\": \"open\", \"question\": \"Explain what the text says about x.\", "
	         "\"answer\": \"It says y.\", \"page\": 40}]}",
	         Q1, Q2);
	qgen_qlist_init(&whole);
	assert_int_equal(
	    qgen_parse_questions(text, strlen(text), &ctx, &whole, &rejected, why, sizeof(why)),
	    CM_OK);
	assert_int_equal(whole.n, 3);
	assert_int_equal(rejected, 1);
	scan_cut(text, NULL, 0, &s, &sc);
	assert_int_equal(s.n, 4);
	for (size_t i = 0; i < s.n; i++) {
		qgen_question q;

		if (qgen_parse_one(s.obj[i], strlen(s.obj[i]), &ctx, &q, why, sizeof(why)) !=
		    CM_OK) {
			assert_int_equal(i, 1); /* the invalid one */
			continue;
		}
		assert_true(k < whole.n);
		assert_string_equal(q.text, whole.items[k].text);
		assert_int_equal(q.answer, whole.items[k].answer);
		assert_int_equal(q.page, whole.items[k].page);
		assert_int_equal(q.type, whole.items[k].type);
		k++;
		qgen_question_fini(&q);
	}
	assert_int_equal(k, 3);
	qgen_qscan_fini(&sc);
	seen_fini(&s);
	qgen_qlist_fini(&whole);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_answer),
	    cmocka_unit_test(test_prose_and_fences),
	    cmocka_unit_test(test_other_objects_and_keys),
	    cmocka_unit_test(test_truncated_and_garbage),
	    cmocka_unit_test(test_element_too_large),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_same_as_whole_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
