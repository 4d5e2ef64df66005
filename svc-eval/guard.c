/*
 * guard.c - capping grades the rubric cannot justify (guard.h).
 */
#include <stdio.h>
#include <string.h>

#include "cm/buf.h"
#include "guard.h"
#include "offline.h"
#include "text.h"

/* Phrases of an answer that talks to the grader, in normalised form (text.h), matched as whole
 * words. */
static const char *const injections[] = {
    "ignore the",
    "ignore all",
    "ignore previous",
    "ignore your",
    "ignore any",
    "ignore these",
    "disregard the",
    "disregard all",
    "disregard your",
    "award me",
    "award this",
    "award the",
    "award 10",
    "award full",
    "award a",
    "full marks",
    "full score",
    "full points",
    "maximum score",
    "perfect score",
    "10 10",
    "10 out of 10",
    "score of 10",
    "give me full",
    "give me 10",
    "give me a perfect",
    "give this answer",
    "grade this answer",
    "system prompt",
    "you are a",
    "as the grader",
    "dear grader",
    "the rubric",
    "new instructions",
    "previous instructions",
    "must score",
    "mark this answer",
};

/* The unambiguous ones: a sentence holding one of these speaks to the grader, never about the
 * document, so it is taken out of the answer before anyone grades it (eval_guard_strip). */
static const char *const directives[] = {
    "ignore all",        "ignore previous",   "ignore your",
    "disregard all",     "disregard your",    "award me",
    "award this",        "award 10",          "award full",
    "full marks",        "full score",        "full points",
    "maximum score",     "perfect score",     "10 10",
    "10 out of 10",      "score of 10",       "give me full",
    "give me 10",        "give me a perfect", "give this answer",
    "grade this answer", "system prompt",     "as the grader",
    "dear grader",       "new instructions",  "previous instructions",
    "must score",        "mark this answer",
};

/* Whole-word occurrence of phrase in the normalised text. */
static bool
contains_words(const char *norm, const char *phrase)
{
	size_t n = strlen(phrase);

	for (const char *p = norm; (p = strstr(p, phrase)) != NULL; p++) {
		bool start = p == norm || p[-1] == ' ';
		bool end = p[n] == '\0' || p[n] == ' ';
		if (start && end)
			return true;
	}
	return false;
}

bool
eval_guard_injection(const char *answer)
{
	cm_buf norm;
	bool   hit = false;

	cm_buf_init(&norm, strlen(answer) + 16);
	if (eval_normalize(answer, &norm) == CM_OK) {
		for (size_t i = 0; i < sizeof(injections) / sizeof(injections[0]) && !hit; i++)
			hit = contains_words(norm.data, injections[i]);
	}
	cm_buf_fini(&norm);
	return hit;
}

/* Whether one sentence (raw text, len bytes) holds a directive. */
static bool
sentence_directs(const char *s, size_t len)
{
	cm_buf raw, norm;
	bool   hit = false;

	cm_buf_init(&raw, len + 1);
	cm_buf_init(&norm, len + 16);
	if (cm_buf_append(&raw, s, len) == CM_OK && eval_normalize(raw.data, &norm) == CM_OK) {
		for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]) && !hit; i++)
			hit = contains_words(norm.data, directives[i]);
	}
	cm_buf_fini(&norm);
	cm_buf_fini(&raw);
	return hit;
}

cm_err
eval_guard_strip(const char *answer, cm_buf *out, bool *stripped)
{
	const char *p = answer;
	cm_err      err = CM_OK;

	*stripped = false;
	while (*p != '\0' && err == CM_OK) {
		size_t n = strcspn(p, ".!?\n");
		if (p[n] != '\0')
			n++; /* the sentence keeps its end mark */
		if (sentence_directs(p, n))
			*stripped = true;
		else
			err = cm_buf_append(out, p, n);
		p += n;
	}
	if (err == CM_OK)
		err = cm_buf_append(out, "", 0); /* a string, also when everything went */
	return err;
}

int
eval_guard(const eval_item *it, int score, char *why, size_t whylen)
{
	eval_overlap o;
	int          cap;

	why[0] = '\0';
	if (score <= 0 || eval_overlap_of(it, &o) != CM_OK)
		return score;
	cap = eval_offline_score(&o, EVAL_MEDIUM);
	if (cap < 0)
		cap = 0; /* nothing to compare with: no claim can be checked, nothing is earned by
		            it */
	if (o.answer_terms == 0) {
		snprintf(why, whylen, "the answer has no content");
		return 0;
	}
	if (eval_guard_injection(it->answer) && score > cap) {
		snprintf(why, whylen, "the answer addresses the grader instead of the question");
		return cap;
	}
	if (score >= 8 && score > cap) {
		double support = (double)o.supported / (double)o.answer_terms;
		double coverage =
		    o.reference_terms > 0 ? (double)o.covered / (double)o.reference_terms : support;
		if (o.supported == 0 || (support < 0.2 && coverage < 0.2)) {
			snprintf(
			    why, whylen,
			    "the answer shares almost nothing with the reference answer and the "
			    "source text");
			return cap;
		}
	}
	return score;
}
