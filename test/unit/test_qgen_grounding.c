/*
 * test_qgen_grounding.c - is a question true to its page (svc-qgen/grounding.h): word overlap
 * and phrase matches, words not substrings, plurals, case and accents, numbers and URLs, the
 * passage window, the threshold, ambiguous distractors (and cloze stems that are not), the
 * quote, chunks chosen by the cited page, and the quote kept through storage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../svc-qgen/codec.h"
#include "../../svc-qgen/grounding.h"

static const char page[] =
    "Photosynthesis converts light energy into chemical energy.\n"
    "The Calvin cycle fixes carbon dioxide into sugars in the stroma. Rubisco is the enzyme "
    "that captures the carbon dioxide.\n\n"
    "Cellular respiration releases energy in the mitochondria, e.g. during glycolysis. "
    "The value of pi is about 3.14. A typical leaf holds 1,000 stomata per square centimetre. "
    "The package is on https://CRAN.R-project.org/package=SuppDists for download. "
    "R is a language for statistics. The café serves crème brûlée.\n";

/* An mcq whose options are a, b, c, d and whose answer is option `answer`. */
static qgen_question
mcq(const char *text, const char *a, const char *b, const char *c, const char *d, int answer)
{
	qgen_question q;

	memset(&q, 0, sizeof(q));
	q.type = QGEN_MCQ;
	q.text = (char *)text;
	q.options[0] = (char *)a;
	q.options[1] = (char *)b;
	q.options[2] = (char *)c;
	q.options[3] = (char *)d;
	q.answer = answer;
	q.page = 1;
	return q;
}

static qgen_question
open_q(const char *text, const char *reference)
{
	qgen_question q;

	memset(&q, 0, sizeof(q));
	q.type = QGEN_OPEN;
	q.text = (char *)text;
	q.reference = (char *)reference;
	q.page = 1;
	return q;
}

static qgen_ground_verdict
check(const qgen_question *q, const qgen_ground_cfg *cfg, qgen_ground_result *res)
{
	assert_int_equal(qgen_ground_text(q, page, strlen(page), cfg, res), CM_OK);
	return res->verdict;
}

/* The answer alone, with the defaults. */
static qgen_ground_verdict
answer_verdict(const char *answer)
{
	qgen_question q =
	    mcq("Which word is in the text here?", answer, "zebra", "quartz", "violin", 0);
	qgen_ground_result r;

	return check(&q, &qgen_ground_defaults, &r);
}

static void
test_word_found_with_its_sentence(void **state)
{
	qgen_question      q = mcq("Which enzyme captures the carbon dioxide?", "Rubisco", "ATP",
	                           "Chlorophyll", "Glucose", 0);
	qgen_ground_result r;

	(void)state;
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_GROUNDED);
	assert_true(r.overlap >= 1.0);
	assert_int_equal(r.distractor, -1);
	assert_string_equal(r.quote, "Rubisco is the enzyme that captures the carbon dioxide.");
}

static void
test_absent_answer_is_ungrounded(void **state)
{
	qgen_ground_result r;
	qgen_question q = mcq("Which enzyme captures the carbon dioxide?", "Nitrogenase", "Rubisco",
	                      "ATP", "Glucose", 0);

	(void)state;
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_UNGROUNDED);
	assert_string_equal(r.quote, "");
	assert_true(r.overlap == 0.0);
}

static void
test_words_not_substrings(void **state)
{
	(void)state;
	assert_int_equal(answer_verdict("cell"), QGEN_UNGROUNDED); /* only "Cellular" */
	assert_int_equal(answer_verdict("3"), QGEN_UNGROUNDED);    /* only "3.14" */
	assert_int_equal(answer_verdict("100"), QGEN_UNGROUNDED);  /* only "1,000" */
	assert_int_equal(answer_verdict("stroma"), QGEN_GROUNDED);
}

static void
test_case_plurals_accents(void **state)
{
	(void)state;
	assert_int_equal(answer_verdict("SUGAR"), QGEN_GROUNDED);         /* "sugars" */
	assert_int_equal(answer_verdict("Mitochondrias"), QGEN_GROUNDED); /* a model's plural */
	assert_int_equal(answer_verdict("cafe"), QGEN_GROUNDED);          /* "café" */
	assert_int_equal(answer_verdict("Crème Brûlée"), QGEN_GROUNDED);
	assert_int_equal(answer_verdict("creme brulee"), QGEN_GROUNDED);
}

static void
test_numbers(void **state)
{
	qgen_ground_result r;
	qgen_question      q = mcq("About how many stomata does a typical leaf hold per square "
	                                "centimetre?",
	                           "1000", "10", "250", "5,000", 0);

	(void)state;
	assert_int_equal(answer_verdict("3.14"), QGEN_GROUNDED); /* a sentence ends after it */
	assert_int_equal(answer_verdict("3.15"), QGEN_UNGROUNDED);
	assert_int_equal(answer_verdict("1,000"), QGEN_GROUNDED);
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_GROUNDED);
	assert_string_equal(r.quote, "A typical leaf holds 1,000 stomata per square centimetre.");
}

static void
test_urls(void **state)
{
	qgen_ground_result r;
	qgen_question      q =
	    mcq("Where can the package be downloaded from?",
	        "https://cran.r-project.org/package=SuppDists", "https://example.org/package=Other",
	        "ftp://mirror.net/pkg", "www.r-lang.com", 0);

	(void)state;
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_GROUNDED);
	assert_non_null(strstr(r.quote, "https://CRAN.R-project.org/package=SuppDists"));
	q.answer = 1; /* https, org, package are on the page, but not as this URL */
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_UNGROUNDED);
}

/* "R", "It is": no content words, so the words must stand together in the text. */
static void
test_phrase_for_answers_without_content_words(void **state)
{
	(void)state;
	assert_int_equal(answer_verdict("R"), QGEN_GROUNDED);
	assert_int_equal(answer_verdict("is the"), QGEN_GROUNDED);
	assert_int_equal(answer_verdict("the is"), QGEN_UNGROUNDED);
	assert_int_equal(answer_verdict("All of the above"), QGEN_UNGROUNDED);
	assert_int_equal(answer_verdict("!?"), QGEN_UNGROUNDED);
}

static void
test_open_threshold(void **state)
{
	qgen_ground_cfg    cfg = qgen_ground_defaults;
	qgen_ground_result r;
	/* 4 content words, 3 on the page (calvin, cycle, sugar; not "yields"): 0.75 */
	qgen_question q3 =
	    open_q("What does the Calvin cycle do?", "The Calvin cycle yields sugars.");
	/* 4 content words, 2 on the page: 0.5 */
	qgen_question q2 =
	    open_q("What does the Calvin cycle do?", "The Calvin cycle makes photons.");

	(void)state;
	assert_int_equal(check(&q3, &cfg, &r), QGEN_GROUNDED);
	assert_true(r.overlap > 0.74 && r.overlap < 0.76);
	assert_int_equal(check(&q2, &cfg, &r), QGEN_UNGROUNDED);
	assert_true(r.overlap > 0.49 && r.overlap < 0.51);
	cfg.min_overlap = 0.5;
	assert_int_equal(check(&q2, &cfg, &r), QGEN_GROUNDED);
	cfg.min_overlap = 0.8;
	assert_int_equal(check(&q3, &cfg, &r), QGEN_UNGROUNDED);
}

/* Words spread over two adjacent sentences: one passage with window 2, none with window 1. */
static void
test_window(void **state)
{
	qgen_ground_cfg    cfg = qgen_ground_defaults;
	qgen_ground_result r;
	qgen_question      q =
	    open_q("What happens in the stroma?", "Rubisco works where the Calvin cycle runs.");

	(void)state;
	cfg.min_overlap = 0.9;
	assert_int_equal(check(&q, &cfg, &r), QGEN_UNGROUNDED); /* "works", "runs" are not there */
	cfg.min_overlap = 0.5;
	cfg.window = 1;
	assert_int_equal(check(&q, &cfg, &r), QGEN_UNGROUNDED); /* 2 of 5 per sentence */
	cfg.window = 2;
	assert_int_equal(check(&q, &cfg, &r), QGEN_GROUNDED); /* 3 of 5 across both */
	assert_string_equal(r.quote, "The Calvin cycle fixes carbon dioxide into sugars in the "
	                             "stroma. Rubisco is the enzyme that captures the carbon "
	                             "dioxide.");
}

static void
test_ambiguous_distractor(void **state)
{
	static const char  text[] = "Photosynthesis produces glucose and oxygen. Plants also need "
	                            "nitrogen from the soil.";
	qgen_ground_cfg    cfg = qgen_ground_defaults;
	qgen_ground_result r;
	qgen_question      q =
	    mcq("What does photosynthesis produce?", "glucose", "oxygen", "nitrogen", "iron", 0);

	(void)state;
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &cfg, &r), CM_OK);
	assert_int_equal(r.verdict, QGEN_AMBIGUOUS);
	assert_int_equal(r.distractor, 1);
	/* "nitrogen" is on the page, but in another sentence: no evidence for it here. */
	q.options[1] = (char *)"carbon";
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &cfg, &r), CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	/* Turned off, the first question passes. */
	q.options[1] = (char *)"oxygen";
	cfg.ambiguity = false;
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &cfg, &r), CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
}

/* A cloze stem holds the sentence's other words: a distractor among them is no rival. */
static void
test_cloze_stem_is_not_ambiguous(void **state)
{
	qgen_ground_result r;
	qgen_question      q = mcq("Which word completes this statement from the text: \"The "
	                                "_____ cycle fixes carbon dioxide into sugars in the stroma.\"",
	                           "dioxide", "Calvin", "Rubisco", "stroma", 1);

	(void)state;
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_GROUNDED);
	assert_string_equal(r.quote,
	                    "The Calvin cycle fixes carbon dioxide into sugars in the stroma.");
}

/* Of the sentences holding the answer, the quote is the one the question is about. */
static void
test_quote_is_the_questions_sentence(void **state)
{
	qgen_ground_result r;
	qgen_question q = mcq("Which molecule does Rubisco capture?", "carbon dioxide", "water",
	                      "glucose", "ozone", 0);

	(void)state;
	assert_int_equal(check(&q, &qgen_ground_defaults, &r), QGEN_GROUNDED);
	assert_string_equal(r.quote, "Rubisco is the enzyme that captures the carbon dioxide.");
}

/* A long sentence: the quote is at most QGEN_QUOTE_MAX bytes, cut at words, around the answer,
 * with white space collapsed. */
static void
test_long_passage_quote(void **state)
{
	char               text[2048];
	size_t             n = 0;
	qgen_ground_result r;
	qgen_question      q =
	    mcq("Which enzyme is named?", "Rubisco", "Pepsin", "Lipase", "Amylase", 0);

	(void)state;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "word%d\n  ", i);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "then Rubisco");
	for (int i = 40; i < 80; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " word%d", i);
	snprintf(text + n, sizeof(text) - n, ".");
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_true(strlen(r.quote) <= QGEN_QUOTE_MAX);
	assert_true(strlen(r.quote) > QGEN_QUOTE_MAX / 2);
	assert_non_null(strstr(r.quote, "then Rubisco word40"));
	assert_null(strchr(r.quote, '\n'));
	assert_null(strstr(r.quote, "  "));
	assert_true(strncmp(r.quote, "word", 4) == 0); /* starts at a word */
}

/* Sentences: "e.g. during" and "Fig. 2" go on; a blank line ends one, and so does a full stop
 * before a lower-case word (manual pages start entries with command names). */
static void
test_sentences(void **state)
{
	static const char  man[] = "previous-history (C-p) Fetch the previous command from the "
	                           "list, moving back in the list. next-history (C-n) Fetch the "
	                           "next command, moving forward as Fig. 2 shows.";
	qgen_ground_cfg    cfg = qgen_ground_defaults;
	qgen_ground_result r;
	qgen_question      q = open_q("Where is energy released?",
	                              "Energy is released in the mitochondria during glycolysis.");
	qgen_question      cloze = mcq("Which word completes: \"previous-history (C-p) Fetch the "
	                                    "previous command from the list, moving _____ in the list.\"",
	                               "back", "forward", "next", "history", 0);

	(void)state;
	cfg.window = 1;
	assert_int_equal(check(&q, &cfg, &r), QGEN_GROUNDED);
	assert_string_equal(r.quote, "Cellular respiration releases energy in the mitochondria, "
	                             "e.g. during glycolysis.");
	/* "forward" is in the next entry, not in the answer's sentence */
	assert_int_equal(qgen_ground_text(&cloze, man, strlen(man), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_string_equal(r.quote, "previous-history (C-p) Fetch the previous command from the "
	                             "list, moving back in the list.");
	cloze.answer = 1; /* "forward": its sentence runs on past "Fig. 2" */
	cloze.options[0] = (char *)"sideways";
	cloze.options[2] = (char *)"later";
	assert_int_equal(qgen_ground_text(&cloze, man, strlen(man), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_string_equal(r.quote, "next-history (C-n) Fetch the next command, moving forward as "
	                             "Fig. 2 shows.");
}

/* A word broken at a line end is whole again, in the check and in the quote; an answer written
 * with the hyphen is found as the joined word too. */
static void
test_line_break_hyphen(void **state)
{
	static const char  text[] = "An interface sup-\nplied by the kernel. The list is non-\r\n"
	                            "  empty here. Minus -\n5 is a number.";
	qgen_ground_result r;
	qgen_question      q = mcq("Which word completes: \"An interface _____ by the kernel.\"",
	                           "supplied", "written", "owned", "made", 0);

	(void)state;
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_string_equal(r.quote, "An interface supplied by the kernel.");
	q.options[0] = (char *)"non-empty";
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_string_equal(r.quote, "The list is nonempty here.");
	q.options[0] = (char *)"sup";
	assert_int_equal(qgen_ground_text(&q, text, strlen(text), &qgen_ground_defaults, &r),
	                 CM_OK);
	assert_int_equal(r.verdict, QGEN_UNGROUNDED);
}

/* By chunk: the cited page's chunks only; the quote set on the question. */
static void
test_question_against_its_page(void **state)
{
	static const char   p1[] = "Rubisco captures carbon dioxide in the stroma.";
	static const char   p2[] = "Glycolysis splits glucose in the cytoplasm.";
	const qgen_chunk    chunks[] = {{p1, sizeof(p1) - 1, 1, 1, NULL},
	                                {p2, sizeof(p2) - 1, 2, 3, NULL}};
	qgen_question       q = mcq("Which enzyme captures carbon dioxide?", "Rubisco", "Pepsin",
	                            "Lipase", "Amylase", 0);
	qgen_question       copy;
	qgen_ground_verdict v;

	(void)state;
	assert_int_equal(qgen_question_copy(&copy, &q), CM_OK);
	copy.page = 3; /* the answer is on page 1 */
	assert_int_equal(qgen_ground_question(&copy, chunks, 2, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_UNGROUNDED);
	assert_null(copy.quote);
	copy.page = 1;
	assert_int_equal(qgen_ground_question(&copy, chunks, 2, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_GROUNDED);
	assert_string_equal(copy.quote, p1);
	copy.page = 9; /* no chunk has it: all are looked at */
	assert_int_equal(qgen_ground_question(&copy, chunks, 2, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_GROUNDED);
	qgen_question_fini(&copy);
}

/* A chunk of pages 4-6 (page_at known): a question citing the chunk's first page for a sentence
 * on page 5 is re-cited to 5; one citing a page its sentence touches keeps it (the sentence
 * starts on 5 and ends on 6, cited 6); one whose answer is a common word found in another
 * sentence, not the question's own, keeps its page; without page_at nothing moves. */
static void
test_cited_page_follows_the_sentence(void **state)
{
	static const char text[] =
	    "Enzymes speed up reactions in every cell. "                      /* page 4 */
	    "Rubisco captures carbon dioxide in the stroma of chloroplasts. " /* page 5 */
	    "The Calvin cycle then turns it into sugars over several "        /* 5, ends on 6 */
	    "steps that need energy. Mitochondria release that energy.";      /* page 6 */
	size_t              at[2];
	qgen_chunk          c = {text, sizeof(text) - 1, 4, 6, at};
	qgen_ground_verdict v;
	qgen_question q = mcq("Which enzyme captures carbon dioxide in the stroma of chloroplasts?",
	                      "Rubisco", "Pepsin", "Lipase", "Amylase", 0);
	qgen_question calvin =
	    mcq("Which cycle turns carbon dioxide into sugars over several steps?", "Calvin",
	        "Krebs", "Cori", "Urea", 0);
	qgen_question loose = mcq("What do the mitochondria of a liver need for transport?",
	                          "energy", "water", "salt", "light", 0);

	(void)state;
	at[0] = (size_t)(strstr(text, "Rubisco") - text);
	at[1] = (size_t)(strstr(text, "steps that") - text);
	q.page = 4;
	assert_int_equal(qgen_ground_question(&q, &c, 1, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_GROUNDED);
	assert_int_equal(q.page, 5);
	calvin.page = 6;
	assert_int_equal(qgen_ground_question(&calvin, &c, 1, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_GROUNDED);
	assert_int_equal(calvin.page, 6);
	calvin.page = 4;
	assert_int_equal(qgen_ground_question(&calvin, &c, 1, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(calvin.page, 5);
	loose.page = 4;
	assert_int_equal(qgen_ground_question(&loose, &c, 1, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(v, QGEN_GROUNDED);
	assert_int_equal(loose.page, 4);
	c.page_at = NULL;
	q.page = 4;
	assert_int_equal(qgen_ground_question(&q, &c, 1, &qgen_ground_defaults, &v), CM_OK);
	assert_int_equal(q.page, 4);
	free(q.quote);
	free(calvin.quote);
	free(loose.quote);
}

static cm_err
push_copy(qgen_qlist *l, qgen_question q)
{
	qgen_question c;
	cm_err        err = qgen_question_copy(&c, &q);

	if (err == CM_OK && (err = qgen_qlist_push(l, &c)) != CM_OK)
		qgen_question_fini(&c);
	return err;
}

/* The list keeps the grounded ones in order and counts the rest; the quote survives packing. */
static void
test_list_and_storage(void **state)
{
	const qgen_chunk chunk = {page, sizeof(page) - 1, 1, 1, NULL};
	qgen_qlist       l, back;
	int              counts[QGEN_GROUND_NVERDICTS] = {0};
	uint8_t         *blob = NULL;
	size_t           len = 0;

	(void)state;
	qgen_qlist_init(&l);
	qgen_qlist_init(&back);
	assert_int_equal(push_copy(&l, mcq("Which enzyme captures the carbon dioxide?", "Rubisco",
	                                   "ATP", "NADPH", "Glucose", 0)),
	                 CM_OK);
	assert_int_equal(push_copy(&l, mcq("Which enzyme captures the carbon dioxide?",
	                                   "Nitrogenase", "ATP", "NADPH", "Glucose", 0)),
	                 CM_OK);
	assert_int_equal(push_copy(&l, mcq("What does the Calvin cycle fix into sugars?",
	                                   "carbon dioxide", "stroma", "water", "light", 0)),
	                 CM_OK);
	assert_int_equal(push_copy(&l, open_q("What does the Calvin cycle fix?",
	                                      "It fixes carbon dioxide into sugars.")),
	                 CM_OK);
	assert_int_equal(qgen_ground_list(&l, &chunk, 1, &qgen_ground_defaults, counts), CM_OK);
	assert_int_equal(counts[QGEN_GROUNDED], 2);
	assert_int_equal(counts[QGEN_UNGROUNDED], 1);
	assert_int_equal(counts[QGEN_AMBIGUOUS], 1); /* "stroma" is in the same sentence */
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].options[0], "Rubisco");
	assert_int_equal(l.items[1].type, QGEN_OPEN);
	assert_string_equal(l.items[1].quote,
	                    "The Calvin cycle fixes carbon dioxide into sugars in the stroma.");

	assert_int_equal(qgen_pack_questions(&l, true, &blob, &len), CM_OK);
	assert_int_equal(qgen_unpack_questions(blob, len, &back), CM_OK);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.items[0].quote, l.items[0].quote);
	assert_string_equal(back.items[1].quote, l.items[1].quote);
	free(blob);
	qgen_qlist_fini(&back);
	qgen_qlist_fini(&l);
	assert_string_equal(qgen_ground_verdict_name(QGEN_AMBIGUOUS), "ambiguous_distractor");
	assert_string_equal(qgen_ground_verdict_name(QGEN_UNGROUNDED), "ungrounded");
}

static void
test_nothing_to_check(void **state)
{
	qgen_ground_result r;
	qgen_question      q = open_q("What does the text say?", NULL);

	(void)state;
	assert_int_equal(qgen_ground_text(&q, page, strlen(page), &qgen_ground_defaults, &r),
	                 CM_EINVAL);
	assert_int_equal(r.verdict, QGEN_UNGROUNDED);
	q.reference = (char *)"Rubisco";
	assert_int_equal(qgen_ground_text(&q, "", 0, &qgen_ground_defaults, &r), CM_OK);
	assert_int_equal(r.verdict, QGEN_UNGROUNDED);
	/* Invalid UTF-8 in the page: the quote stays valid text. */
	assert_int_equal(
	    qgen_ground_text(&q, "Rubisco \xff\xfe works.", 17, &qgen_ground_defaults, &r), CM_OK);
	assert_int_equal(r.verdict, QGEN_GROUNDED);
	assert_string_equal(r.quote, "Rubisco works.");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_word_found_with_its_sentence),
	    cmocka_unit_test(test_absent_answer_is_ungrounded),
	    cmocka_unit_test(test_words_not_substrings),
	    cmocka_unit_test(test_case_plurals_accents),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_phrase_for_answers_without_content_words),
	    cmocka_unit_test(test_open_threshold),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_ambiguous_distractor),
	    cmocka_unit_test(test_cloze_stem_is_not_ambiguous),
	    cmocka_unit_test(test_quote_is_the_questions_sentence),
	    cmocka_unit_test(test_long_passage_quote),
	    cmocka_unit_test(test_sentences),
	    cmocka_unit_test(test_line_break_hyphen),
	    cmocka_unit_test(test_question_against_its_page),
	    cmocka_unit_test(test_cited_page_follows_the_sentence),
	    cmocka_unit_test(test_list_and_storage),
	    cmocka_unit_test(test_nothing_to_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
