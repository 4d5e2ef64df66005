/*
 * quality.c - from model text to valid questions, and from candidates to a set
 * (quality.h).
 *
 * DESIGN. Lenient about names, strict about content. Models rename fields ("text" for
 * "question"), prefix options with their letters, give the answer as a letter, an index or the
 * option's text: all are accepted and normalised here, once, so the rest of the service sees one
 * shape. What is checked is what a student would notice: a question too short to mean anything,
 * two options that are the same, no or several correct answers, invalid text. One bad question
 * never sinks its batch: it is dropped and counted, and the runner tops up.
 *
 * Duplicates: exact ones by normalised text (case, punctuation and spacing ignored), near ones by
 * Jaccard similarity of the sets of content words (stop words and 1-2 letter words ignored), so
 * "What is the Calvin cycle?" and "What's the Calvin cycle for?" do not both make the set.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "quality.h"

#define QGEN_MIN_TEXT 10
#define QGEN_MAX_WORDS 128

/* ---- strings --------------------------------------------------------------------------------- */

static bool
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != 0) {
		int n;
		if (*p < 0x80)
			n = 0;
		else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return false;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* Trims white space at both ends, in place. */
static void
trim(char *s)
{
	size_t n = strlen(s), a = 0;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	while (a < n && isspace((unsigned char)s[a]))
		a++;
	memmove(s, s + a, n - a);
	s[n - a] = '\0';
}

/* "A) x", "A. x", "(A) x", "a) x", "A: x", "A - x" -> "x". */
static const char *
strip_letter(const char *s)
{
	const char *p = s;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '(' && strchr("ABCDabcd", p[1]) != NULL && p[1] != '\0' && p[2] == ')')
		p += 3;
	else if (p[0] != '\0' && strchr("ABCDabcd", p[0]) != NULL &&
	         (p[1] == ')' || p[1] == '.' || p[1] == ':') && (p[2] == ' ' || p[2] == '\t'))
		p += 2;
	else if (p[0] != '\0' && strchr("ABCD", p[0]) != NULL && p[1] == ' ' && p[2] == '-' &&
	         p[3] == ' ')
		p += 3;
	else
		return s;
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

void
qgen_normalize(const char *s, char *out, size_t outlen)
{
	size_t n = 0;
	bool   space = false;

	if (outlen == 0)
		return;
	for (; *s != '\0' && n + 2 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80 || isalnum(c)) {
			if (space && n > 0)
				out[n++] = ' ';
			space = false;
			out[n++] = (char)(c < 0x80 ? tolower(c) : c);
		} else {
			space = true;
		}
	}
	out[n] = '\0';
}

/* The letter a labelled option starts with ('A'..'D', upper case), or 0 when strip_letter finds
 * no label. */
static char
label_letter(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '(')
		s++;
	return strip_letter(s) == s && *s != '\0' ? 0 : (char)toupper((unsigned char)*s);
}

/* ---- near duplicates ----------------------------------------------------------------------- */

static const char *const stop_words[] = {
    "the",      "and",       "for",  "are",       "but",       "not",  "you",       "all",
    "any",      "can",       "her",  "was",       "one",       "our",  "out",       "has",
    "his",      "how",       "its",  "who",       "did",       "does", "what",      "which",
    "when",     "where",     "why",  "with",      "that",      "this", "these",     "those",
    "from",     "into",      "than", "then",      "they",      "them", "their",     "there",
    "about",    "according", "text", "following", "statement", "true", "false",     "is",
    "of",       "to",        "in",   "on",        "at",        "by",   "an",        "or",
    "as",       "be",        "it",   "do",        "according", "word", "completes", "passage",
    "document", "described", "whats"};

static bool
stop_word(const char *w)
{
	if (strlen(w) <= 2)
		return true;
	for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++)
		if (strcmp(w, stop_words[i]) == 0)
			return true;
	return false;
}

/* Splits a normalised string into its distinct content words (pointers into buf). */
static size_t
content_words(char *buf, const char **words, size_t max)
{
	size_t n = 0;

	char *save = NULL; /* strtok_r: runners select concurrently, strtok's state is global */

	for (char *tok = strtok_r(buf, " ", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, " ", &save)) {
		bool dup = false;
		if (stop_word(tok))
			continue;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(words[i], tok) == 0;
		if (!dup)
			words[n++] = tok;
	}
	return n;
}

bool
qgen_near_duplicate(const char *a, const char *b)
{
	char        na[QGEN_MAX_TEXT + 1], nb[QGEN_MAX_TEXT + 1];
	const char *wa[QGEN_MAX_WORDS], *wb[QGEN_MAX_WORDS];
	size_t      ca, cb, common = 0;

	qgen_normalize(a, na, sizeof(na));
	qgen_normalize(b, nb, sizeof(nb));
	if (strcmp(na, nb) == 0)
		return true;
	ca = content_words(na, wa, QGEN_MAX_WORDS);
	cb = content_words(nb, wb, QGEN_MAX_WORDS);
	if (ca == 0 || cb == 0)
		return false;
	for (size_t i = 0; i < ca; i++)
		for (size_t k = 0; k < cb; k++)
			if (strcmp(wa[i], wb[k]) == 0) {
				common++;
				break;
			}
	return (double)common / (double)(ca + cb - common) >= QGEN_NEAR_DUP;
}

/* ---- one question ---------------------------------------------------------------------------- */

bool
qgen_check(qgen_question *q, const qgen_batch_ctx *ctx, char *why, size_t whylen)
{
	char norm[QGEN_OPTIONS][QGEN_MAX_OPTION + 1], ntext[QGEN_MAX_TEXT + 1];

	if ((ctx->types & QGEN_TYPE_MASK(q->type)) == 0) {
		snprintf(why, whylen, "a %s question was not asked for", qgen_type_name(q->type));
		return false;
	}
	if (q->text == NULL || !utf8_valid(q->text)) {
		snprintf(why, whylen, "question text missing or not UTF-8");
		return false;
	}
	trim(q->text);
	if (strlen(q->text) < QGEN_MIN_TEXT || strlen(q->text) > QGEN_MAX_TEXT) {
		snprintf(why, whylen, "question text of %zu bytes", strlen(q->text));
		return false;
	}
	if (q->explanation != NULL) {
		if (!utf8_valid(q->explanation) || strlen(q->explanation) > QGEN_MAX_EXPLANATION) {
			free(q->explanation); /* optional: drop it rather than the question */
			q->explanation = NULL;
		} else {
			trim(q->explanation);
		}
	}
	if (q->type == QGEN_MCQ) {
		qgen_normalize(q->text, ntext, sizeof(ntext));
		for (int i = 0; i < QGEN_OPTIONS; i++) {
			if (q->options[i] == NULL || !utf8_valid(q->options[i])) {
				snprintf(why, whylen, "option %d missing or not UTF-8", i + 1);
				return false;
			}
			trim(q->options[i]);
			if (q->options[i][0] == '\0' || strlen(q->options[i]) > QGEN_MAX_OPTION) {
				snprintf(why, whylen, "option %d empty or too long", i + 1);
				return false;
			}
			qgen_normalize(q->options[i], norm[i], sizeof(norm[i]));
			if (norm[i][0] == '\0' || strcmp(norm[i], ntext) == 0) {
				snprintf(why, whylen, "option %d is empty or repeats the question",
				         i + 1);
				return false;
			}
			for (int k = 0; k < i; k++)
				if (strcmp(norm[i], norm[k]) == 0) {
					snprintf(why, whylen, "options %d and %d are the same",
					         k + 1, i + 1);
					return false;
				}
		}
		if (q->answer < 0 || q->answer >= QGEN_OPTIONS) {
			snprintf(why, whylen, "no valid answer");
			return false;
		}
	} else {
		if (q->reference == NULL || !utf8_valid(q->reference)) {
			snprintf(why, whylen, "open question without a reference answer");
			return false;
		}
		trim(q->reference);
		if (q->reference[0] == '\0' || strlen(q->reference) > QGEN_MAX_EXPLANATION) {
			snprintf(why, whylen, "reference answer empty or too long");
			return false;
		}
	}
	if (q->page < ctx->page_first || q->page > ctx->page_last)
		q->page =
		    ctx->page_first; /* models miscount pages: keep the question, fix the page */
	q->difficulty = ctx->difficulty;
	return true;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static const char *
str_member(json_t *o, const char *const *names)
{
	for (; *names != NULL; names++) {
		json_t *v = json_object_get(o, *names);
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* The answer of an mcq from the many ways models write it; -1 when none is usable. */
static int
parse_answer(json_t *o, const qgen_question *q)
{
	static const char *const keys[] = {"answer_index",  "answer",  "correct_answer",
	                                   "correctAnswer", "correct", NULL};

	for (const char *const *k = keys; *k != NULL; k++) {
		json_t *v = json_object_get(o, *k);
		if (json_is_integer(v)) {
			json_int_t i = json_integer_value(v);
			return i >= 0 && i < QGEN_OPTIONS ? (int)i : -1;
		}
		if (json_is_string(v)) {
			char        buf[QGEN_MAX_OPTION + 1], nopt[QGEN_MAX_OPTION + 1];
			const char *s = json_string_value(v);
			size_t      n;
			while (isspace((unsigned char)*s))
				s++;
			n = strlen(s);
			/* "B", "b", "B)", "(B)", "B." */
			if ((n == 1 || (n == 2 && strchr(").:", s[1]) != NULL)) &&
			    strchr("ABCDabcd", s[0]) != NULL)
				return toupper((unsigned char)s[0]) - 'A';
			if (n == 3 && s[0] == '(' && s[2] == ')' &&
			    strchr("ABCDabcd", s[1]) != NULL)
				return toupper((unsigned char)s[1]) - 'A';
			if (n == 1 && s[0] >= '0' && s[0] <= '3')
				return s[0] - '0';
			/* The text of one option (with or without its letter). */
			qgen_normalize(strip_letter(s), buf, sizeof(buf));
			for (int i = 0; i < QGEN_OPTIONS; i++) {
				if (q->options[i] == NULL)
					continue;
				qgen_normalize(q->options[i], nopt, sizeof(nopt));
				if (buf[0] != '\0' && strcmp(buf, nopt) == 0)
					return i;
			}
			return -1;
		}
	}
	return -1;
}

/* One element of "questions" into q (zeroed first). false when it cannot be read at all. */
static bool
read_question(json_t *o, qgen_question *q)
{
	static const char *const text_keys[] = {"question", "text", "prompt", "stem", NULL};
	static const char *const expl_keys[] = {"explanation", "rationale", "reason", NULL};
	static const char *const ref_keys[] = {
	    "reference", "answer", "model_answer", "reference_answer", "expected_answer", NULL};
	json_t     *opts = json_object_get(o, "options"), *tv = json_object_get(o, "type");
	const char *type = json_is_string(tv) ? json_string_value(tv) : NULL;
	json_t     *pv = json_object_get(o, "page");

	memset(q, 0, sizeof(*q));
	if (!json_is_object(o))
		return false;
	if (type != NULL) {
		if (strcmp(type, "multiple_choice") == 0 || strcmp(type, "multiple-choice") == 0)
			type = "mcq";
		if (!qgen_type_parse(type, &q->type))
			return false;
	} else {
		q->type = json_is_array(opts) ? QGEN_MCQ : QGEN_OPEN;
	}
	q->text = dup_or_null(str_member(o, text_keys));
	q->explanation = dup_or_null(str_member(o, expl_keys));
	q->page = json_is_integer(pv) ? (int)json_integer_value(pv) : 0;
	if (q->type == QGEN_MCQ) {
		if (!json_is_array(opts) || json_array_size(opts) != QGEN_OPTIONS)
			return false;
		/* Labels go only when all four are there, A to D in order: "A. Lincoln" alone is a
		 * name, not a label. */
		bool labelled = true;
		for (int i = 0; i < QGEN_OPTIONS; i++) {
			json_t *v = json_array_get(opts, (size_t)i);
			if (!json_is_string(v))
				return false;
			labelled = labelled && label_letter(json_string_value(v)) == 'A' + i;
		}
		for (int i = 0; i < QGEN_OPTIONS; i++) {
			const char *v = json_string_value(json_array_get(opts, (size_t)i));
			q->options[i] = strdup(labelled ? strip_letter(v) : v);
		}
		q->answer = parse_answer(o, q);
	} else {
		q->reference = dup_or_null(str_member(o, ref_keys));
	}
	return true;
}

cm_err
qgen_parse_questions(const char *json, size_t len, const qgen_batch_ctx *ctx, qgen_qlist *out,
                     int *rejected, char *why, size_t whylen)
{
	json_t *root, *arr, *el;
	size_t  i;
	char    reason[160];
	cm_err  err = CM_OK;

	*rejected = 0;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if ((root = json_loadb(json, len, 0, NULL)) == NULL || !json_is_object(root)) {
		json_decref(root);
		snprintf(why, whylen, "the answer is not a JSON object");
		return CM_EPROTO;
	}
	arr = json_object_get(root, "questions");
	if (!json_is_array(arr)) {
		json_decref(root);
		snprintf(why, whylen, "the answer has no \"questions\" array");
		return CM_EPROTO;
	}
	json_array_foreach(arr, i, el)
	{
		qgen_question q;
		bool          ok = read_question(el, &q);
		if (ok && !qgen_check(&q, ctx, reason, sizeof(reason)))
			ok = false;
		if (!ok) {
			(*rejected)++;
			qgen_question_fini(&q);
			continue;
		}
		if ((err = qgen_qlist_push(out, &q)) != CM_OK) {
			qgen_question_fini(&q);
			break;
		}
	}
	json_decref(root);
	return err;
}

cm_err
qgen_parse_one(const char *json, size_t len, const qgen_batch_ctx *ctx, qgen_question *out,
               char *why, size_t whylen)
{
	json_t *el = json_loadb(json, len, 0, NULL);
	cm_err  err = CM_OK;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(el)) {
		snprintf(why, whylen, "a question is not a JSON object");
		err = CM_EPROTO;
	} else if (!read_question(el, out) || !qgen_check(out, ctx, why, whylen)) {
		qgen_question_fini(out);
		memset(out, 0, sizeof(*out));
		err = CM_EPROTO;
	}
	json_decref(el);
	return err;
}

/* ---- the set --------------------------------------------------------------------------------- */

static bool
duplicate_of_any(const qgen_qlist *l, const char *text)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].text != NULL && qgen_near_duplicate(l->items[i].text, text))
			return true;
	return false;
}

size_t
qgen_select(qgen_qlist *chosen, qgen_qlist *cand, size_t count)
{
	size_t added = 0;

	for (size_t i = 0; i < cand->n && chosen->n < count; i++) {
		qgen_question *q = &cand->items[i];
		if (q->text == NULL || duplicate_of_any(chosen, q->text))
			continue;
		if (qgen_qlist_push(chosen, q) != CM_OK)
			break;
		added++;
	}
	return added;
}

/* Options that only make sense in their place ("all of the above", "both A and B"). */
static bool
positional(const qgen_question *q)
{
	static const char *const marks[] = {
	    "of the above", "all of these", "none of these", "both a and", "both b and",
	    "both c and",   "a and b",      "b and c",       "a and c",    "a b and c"};

	for (int i = 0; i < QGEN_OPTIONS; i++) {
		char n[QGEN_MAX_OPTION + 1];
		if (q->options[i] == NULL)
			return true;
		qgen_normalize(q->options[i], n, sizeof(n));
		for (size_t k = 0; k < sizeof(marks) / sizeof(marks[0]); k++)
			if (strstr(n, marks[k]) != NULL)
				return true;
	}
	return false;
}

static uint64_t
next_rand(uint64_t *s)
{
	/* splitmix64: deterministic, good enough to shuffle letters */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
qgen_spread_answers(qgen_qlist *l, uint64_t seed)
{
	int      order[QGEN_OPTIONS] = {0, 1, 2, 3};
	uint64_t s = seed;
	size_t   k = 0;

	for (size_t i = 0; i < l->n; i++) {
		qgen_question *q = &l->items[i];
		int            target;
		char          *tmp;

		if (q->type != QGEN_MCQ || positional(q) || q->answer < 0 ||
		    q->answer >= QGEN_OPTIONS)
			continue;
		/* Every block of four movable questions gets each letter once, in a shuffled order.
		 */
		if (k % QGEN_OPTIONS == 0) {
			for (int a = QGEN_OPTIONS - 1; a > 0; a--) {
				int b = (int)(next_rand(&s) % (uint64_t)(a + 1));
				int t = order[a];
				order[a] = order[b];
				order[b] = t;
			}
		}
		target = order[k % QGEN_OPTIONS];
		k++;
		if (target == q->answer)
			continue;
		tmp = q->options[target];
		q->options[target] = q->options[q->answer];
		q->options[q->answer] = tmp;
		q->answer = target;
	}
}
