/*
 * offline_survey.h - figures about a set of generated questions, for the offline provider's
 * quality checks: where each multiple-choice blank falls (inside a URL, an e-mail address or
 * code; on a function or generic word; on a number, a name or another term), how often the most
 * used distractor recurs across the set, and how many forms the open questions take. It reads
 * only the questions' strings, so it judges any provider's output; its word list is its own
 * (not the generator's), so the generator cannot pass by agreeing with itself.
 */
#ifndef TEST_OFFLINE_SURVEY_H
#define TEST_OFFLINE_SURVEY_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SURVEY_MAX 256

typedef struct survey {
	int  mcq, open;
	int  in_url, in_code, function_word, number, name, term; /* blank classes (mcq) */
	int  top_distractor_uses;                                /* questions using it */
	char top_distractor[64];
	int  open_forms; /* distinct first three words of the open questions */
	char forms[SURVEY_MAX][48];
} survey;

/* English function words and the generic verbs/adjectives a blank must never fall on. */
static const char *const survey_function_words[] = {
    "a",          "about",    "above",     "after",     "again",   "all",       "also",
    "although",   "an",       "and",       "another",   "any",     "are",       "around",
    "as",         "at",       "available", "based",     "be",      "because",   "been",
    "before",     "being",    "below",     "between",   "both",    "but",       "by",
    "can",        "cannot",   "certain",   "could",     "default", "described", "different",
    "does",       "done",     "each",      "either",    "else",    "enough",    "even",
    "every",      "example",  "except",    "following", "for",     "from",      "further",
    "general",    "given",    "good",      "had",       "has",     "have",      "here",
    "however",    "if",       "in",        "including", "into",    "is",        "it",
    "its",        "itself",   "just",      "like",      "made",    "make",      "many",
    "may",        "might",    "more",      "most",      "much",    "must",      "need",
    "needed",     "new",      "next",      "no",        "not",     "now",       "of",
    "often",      "on",       "only",      "or",        "other",   "otherwise", "over",
    "particular", "possible", "provided",  "rather",    "really",  "same",      "see",
    "should",     "shown",    "similar",   "since",     "so",      "some",      "specified",
    "such",       "than",     "that",      "the",       "their",   "them",      "then",
    "there",      "these",    "they",      "this",      "those",   "though",    "through",
    "thus",       "to",       "under",     "until",     "upon",    "use",       "used",
    "uses",       "using",    "usually",   "various",   "very",    "was",       "were",
    "what",       "when",     "where",     "whether",   "which",   "while",     "who",
    "whose",      "will",     "with",      "within",    "without", "would",     "yet",
    "you",        "your",     "means",     "allows",    "called",  "takes",     "gives",
    "returns",    "instead",  "already",   "always",    "never",   "several",   "whole",
};

static __attribute__((unused)) bool
survey_is_function_word(const char *w)
{
	char   lower[64];
	size_t n = strlen(w);

	if (n >= sizeof(lower))
		return false;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)w[i]);
	for (size_t i = 0; i < sizeof(survey_function_words) / sizeof(survey_function_words[0]);
	     i++)
		if (strcmp(lower, survey_function_words[i]) == 0)
			return true;
	return false;
}

/* Whether a whitespace-delimited token (surrounding punctuation stripped) is code: symbols a
 * word of prose does not hold, an identifier with _ or camelCase, a call, an option, a path. */
static __attribute__((unused)) bool
survey_token_is_code(const char *t, size_t n)
{
	while (n > 0 && strchr(".,;:!?\"'()", t[n - 1]) != NULL)
		n--;
	while (n > 0 && strchr("\"'(", t[0]) != NULL) {
		t++;
		n--;
	}
	if (n >= 2 && t[0] == '-' && (t[1] == '-' || isalpha((unsigned char)t[1])))
		return true; /* an option: -l, --login */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (strchr("/\\=<>{}[]$`|_#~^*&+;", c) != NULL)
			return true;
		if (c == '(' || c == ')')
			return true; /* f(x), rnorm() */
		if (i > 0 && islower((unsigned char)t[i - 1]) && isupper(c))
			return true; /* camelCase */
		if (c == '.' && i > 0 && i + 1 < n && isalpha((unsigned char)t[i - 1]) &&
		    isalpha((unsigned char)t[i + 1]))
			return true; /* file.txt, R.version */
	}
	return false;
}

static __attribute__((unused)) bool
survey_token_is_url(const char *t, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++)
		if (memcmp(t + i, "://", 3) == 0)
			return true;
	for (size_t i = 0; i + 4 <= n; i++)
		if (memcmp(t + i, "www.", 4) == 0)
			return true;
	return memchr(t, '@', n) != NULL;
}

/* Adds one multiple-choice question: text holds "_____" where options[answer] was. */
static __attribute__((unused)) void
survey_mcq(survey *s, const char *text, const char *const options[4], int answer)
{
	const char *b = strstr(text, "_____");
	const char *ans = options[answer];
	char        tok[512];
	size_t      a, z, n = 0;

	s->mcq++;
	if (b == NULL)
		return;
	/* The token around the blank, the answer put back. */
	for (a = (size_t)(b - text);
	     a > 0 && !isspace((unsigned char)text[a - 1]) && text[a - 1] != '"'; a--)
		;
	for (z = (size_t)(b - text) + 5; text[z] != '\0' && !isspace((unsigned char)text[z]) &&
	                                 !(text[z] == '"' && text[z + 1] == '\0');
	     z++)
		;
	n = (size_t)snprintf(tok, sizeof(tok), "%.*s%s%.*s", (int)(b - text - (ptrdiff_t)a),
	                     text + a, ans, (int)(z - (size_t)(b - text) - 5), b + 5);
	if (n >= sizeof(tok))
		n = sizeof(tok) - 1;
	if (survey_token_is_url(tok, n))
		s->in_url++;
	else if (survey_token_is_code(tok, n) || survey_token_is_code(ans, strlen(ans)))
		s->in_code++;
	else if (survey_is_function_word(ans))
		s->function_word++;
	else if (strpbrk(ans, "0123456789") != NULL)
		s->number++;
	else if (isupper((unsigned char)ans[0]))
		s->name++;
	else
		s->term++;
}

static __attribute__((unused)) void
survey_open(survey *s, const char *text)
{
	char   form[48];
	size_t n = 0;
	int    words = 0;

	s->open++;
	for (const char *p = text; *p != '\0' && n + 1 < sizeof(form); p++) {
		if (*p == ' ' && ++words == 3)
			break;
		form[n++] = *p;
	}
	form[n] = '\0';
	for (int i = 0; i < s->open_forms; i++)
		if (strcmp(s->forms[i], form) == 0)
			return;
	if (s->open_forms < SURVEY_MAX)
		memcpy(s->forms[s->open_forms++], form, sizeof(form));
}

/* The distractor used by the most questions (options other than the answer, case-folded). */
static __attribute__((unused)) void
survey_distractors(survey *s, const char *const *opts, const int *answers, int nq)
{
	s->top_distractor_uses = 0;
	s->top_distractor[0] = '\0';
	for (int i = 0; i < nq; i++)
		for (int k = 0; k < 4; k++) {
			int uses = 0;
			if (k == answers[i])
				continue;
			for (int j = 0; j < nq; j++)
				for (int m = 0; m < 4; m++)
					if (m != answers[j] &&
					    strcasecmp(opts[4 * j + m], opts[4 * i + k]) == 0) {
						uses++;
						break;
					}
			if (uses > s->top_distractor_uses) {
				s->top_distractor_uses = uses;
				snprintf(s->top_distractor, sizeof(s->top_distractor), "%s",
				         opts[4 * i + k]);
			}
		}
}

static __attribute__((unused)) void
survey_print(const survey *s, const char *label, FILE *f)
{
	fprintf(f,
	        "%s: %d mcq (blanks: %d in URLs, %d in code, %d function words, %d numbers, %d "
	        "names, %d terms), top distractor \"%s\" in %d of %d; %d open in %d forms\n",
	        label, s->mcq, s->in_url, s->in_code, s->function_word, s->number, s->name, s->term,
	        s->top_distractor, s->top_distractor_uses, s->mcq, s->open, s->open_forms);
}

#endif
