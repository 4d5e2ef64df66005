/*
 * openq.c - open-question forms from a sentence's shape (openq.h).
 *
 * DESIGN. Each form is a small matcher that finds its markers ("is a", "If ...,", "because")
 * and cuts the span the question quotes: a subject, a condition, an effect. A span is refused
 * when it holds symbols of code, a comma where a subject ends, or too few/many words, so a
 * question never quotes a fragment that does not read. The wording is chosen by the caller's
 * variant among two or four per form, so a set does not repeat one template.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "openq.h"

typedef struct span {
	const char *p;
	size_t      n;
} span;

static bool
symbols(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("/\\=<>{}[]$`|_#~^*&+;@()\"", p[i]) != NULL && p[i] != '\0')
			return true;
	return false;
}

static size_t
count_words(const char *p, size_t n)
{
	size_t w = 0;
	bool   in = false;

	for (size_t i = 0; i < n; i++) {
		bool c = p[i] != ' ';
		w += c && !in;
		in = c;
	}
	return w;
}

/* Whether the first word of p[0..n) is one of list (exact). */
static bool
first_word_in(const char *p, size_t n, const char *const *list, size_t nlist)
{
	size_t w = 0;

	while (w < n && p[w] != ' ')
		w++;
	for (size_t i = 0; i < nlist; i++)
		if (strlen(list[i]) == w && memcmp(p, list[i], w) == 0)
			return true;
	return false;
}

static const char *const lead_common[] = {
    "The",  "A",    "An",  "This", "These", "Those", "Each", "Every", "Its", "Their", "Some",
    "Most", "Many", "All", "No",   "Our",   "It",    "They", "We",    "You", "Such",  "Both"};

/* A subject that reads on its own: capitalised, 1..6 words past an article, no comma, no code,
 * not a pronoun or a connective. */
static bool
subject_ok(const char *p, size_t n)
{
	static const char *const bad[] = {
	    "It",   "This",  "That",  "These",  "Those", "They",    "There",   "Here", "If",
	    "When", "Each",  "Such",  "Some",   "Both",  "All",     "Its",     "He",   "She",
	    "We",   "You",   "In",    "For",    "On",    "At",      "With",    "As",   "Then",
	    "Also", "Thus",  "Note",  "See",    "What",  "Which",   "However", "But",  "And",
	    "Or",   "Since", "After", "Before", "One",   "Another", "Other"};
	size_t w = count_words(p, n);

	if (n == 0 || !isupper((unsigned char)p[0]) || memchr(p, ',', n) != NULL || symbols(p, n) ||
	    first_word_in(p, n, bad, sizeof(bad) / sizeof(bad[0])))
		return false;
	if (first_word_in(p, n, lead_common, 3))
		w--; /* the article */
	/* A capitalised article or an all-capital word inside: a heading ran into the sentence. */
	for (size_t i = 1; i < n; i++)
		if (p[i - 1] == ' ' && ((i + 2 <= n && memcmp(p + i, "A ", 2) == 0) ||
		                        (i + 3 <= n && memcmp(p + i, "An ", 3) == 0) ||
		                        (i + 4 <= n && memcmp(p + i, "The ", 4) == 0) ||
		                        (i + 1 < n && isupper((unsigned char)p[i]) &&
		                         isupper((unsigned char)p[i + 1]))))
			return false;
	return w >= 1 && w <= 6;
}

/* Writes span sp into out with its first word lower-cased when it is a common word (an article,
 * a pronoun), not a name. */
static void
render(span sp, char *out, size_t n)
{
	snprintf(out, n, "%.*s", (int)sp.n, sp.p);
	if (first_word_in(sp.p, sp.n, lead_common, sizeof(lead_common) / sizeof(lead_common[0])))
		out[0] = (char)tolower((unsigned char)out[0]);
}

/* The sentence without its final punctuation. */
static size_t
body_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && strchr(".!?", s[n - 1]) != NULL)
		n--;
	return n;
}

/* DEFINE: the subject before "is a" and its kind: 0 "is", 1 "means", 2 "consists of", 3 "are". */
static bool
define_parts(const char *s, span *subj, int *how)
{
	static const struct {
		const char *m;
		int         how;
	} marks[] = {{" is a ", 0},          {" is an ", 0},       {" is the ", 0},
	             {" is one of ", 0},     {" are the ", 3},     {" are a ", 3},
	             {" means ", 1},         {" refers to ", 1},   {" denotes ", 1},
	             {" is defined as ", 1}, {" consists of ", 2}, {" consist of ", 2}};
	const char *best = NULL;

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		const char *p = strstr(s, marks[i].m);
		if (p != NULL && (best == NULL || p < best)) {
			best = p;
			*how = marks[i].how;
		}
	}
	if (best == NULL)
		return false;
	subj->p = s;
	subj->n = (size_t)(best - s);
	return subject_ok(subj->p, subj->n);
}

static bool
happens_parts(const char *s, span *cond, const char **marker)
{
	static const char *const marks[] = {"If ", "When ", "Whenever "};
	const char              *comma = strchr(s, ',');

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		size_t k = strlen(marks[i]);
		if (strncmp(s, marks[i], k) != 0 || comma == NULL)
			continue;
		cond->p = s + k;
		cond->n = (size_t)(comma - cond->p);
		*marker = i == 0 ? "if" : "when";
		return count_words(cond->p, cond->n) >= 2 && count_words(cond->p, cond->n) <= 20 &&
		       !symbols(cond->p, cond->n);
	}
	return false;
}

/* WHY: the effect a sentence gives a reason for. */
static bool
why_parts(const char *s, span *effect)
{
	static const char *const after[] = {", so ", ", therefore ", ", which is why ", ", hence ",
	                                    "; therefore "};
	static const char *const before[] = {" because ", " since ", " due to ", " in order to ",
	                                     " so that "};
	size_t                   end = body_len(s);

	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
		const char *p = strstr(s, after[i]);
		if (p == NULL)
			continue;
		effect->p = p + strlen(after[i]);
		effect->n = end > (size_t)(effect->p - s) ? end - (size_t)(effect->p - s) : 0;
		return islower((unsigned char)effect->p[0]) &&
		       count_words(effect->p, effect->n) >= 3 && !symbols(effect->p, effect->n);
	}
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
		const char *p = strstr(s, before[i]);
		if (p == NULL || p == s)
			continue;
		effect->p = s;
		effect->n = (size_t)(p - s);
		while (effect->n > 0 && effect->p[effect->n - 1] == ',')
			effect->n--;
		return isupper((unsigned char)s[0]) && strncmp(s, "If ", 3) != 0 &&
		       count_words(effect->p, effect->n) >= 3 && !symbols(effect->p, effect->n);
	}
	return false;
}

static bool
compare_applies(const char *s, const char *key, const char *key2)
{
	static const char *const marks[] = {
	    " than ",        " whereas ",       " unlike ",      "Unlike ",       " differs from ",
	    " differ from ", " compared with ", " compared to ", " in contrast ", " instead of "};

	if (key == NULL || key2 == NULL || strcasecmp(key, key2) == 0)
		return false;
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(s, marks[i]) != NULL)
			return true;
	return false;
}

/* ROLE: a short subject, a verb in -s, then an object that starts like one ("the", "a"...). */
static bool
role_parts(const char *s, span *subj)
{
	static const char *const not_verbs[] = {"does", "has",    "was",     "is",       "this",
	                                        "its",  "his",    "thus",    "always",   "perhaps",
	                                        "less", "unless", "whereas", "sometimes"};
	static const char *const objects[] = {
	    "the",  "a",     "an",    "its", "their", "that", "how",  "whether", "what",  "which",
	    "each", "all",   "any",   "no",  "some",  "one",  "two",  "three",   "every", "both",
	    "this", "these", "those", "his", "her",   "our",  "your", "it",      "them"};
	size_t i = 0, words = 0;

	while (s[i] != '\0' && words < 6) {
		size_t a = i, b;
		while (s[i] != '\0' && s[i] != ' ')
			i++;
		b = i;
		while (s[i] == ' ')
			i++;
		words++;
		if (words == 1 || b - a < 4 || !islower((unsigned char)s[a]) || s[b - 1] != 's' ||
		    s[b - 2] == 's' || s[b - 2] == 'u' || s[b - 2] == 'i' || s[b - 2] == '\'')
			continue;
		if (first_word_in(s + a, b - a, not_verbs,
		                  sizeof(not_verbs) / sizeof(not_verbs[0])))
			return false;
		subj->p = s;
		subj->n = a > 0 ? a - 1 : 0;
		return first_word_in(s + i, strlen(s + i), objects,
		                     sizeof(objects) / sizeof(objects[0])) &&
		       subject_ok(subj->p, subj->n);
	}
	return false;
}

unsigned
qgen_openq_forms(const char *s, const char *key, const char *key2)
{
	unsigned    m = 0;
	span        sp;
	int         how;
	const char *marker;

	if (define_parts(s, &sp, &how))
		m |= 1u << QGEN_OPENQ_DEFINE;
	if (happens_parts(s, &sp, &marker))
		m |= 1u << QGEN_OPENQ_HAPPENS;
	if (why_parts(s, &sp))
		m |= 1u << QGEN_OPENQ_WHY;
	if (compare_applies(s, key, key2))
		m |= 1u << QGEN_OPENQ_COMPARE;
	if (role_parts(s, &sp))
		m |= 1u << QGEN_OPENQ_ROLE;
	if (key != NULL && key[0] != '\0')
		m |= 1u << QGEN_OPENQ_ABOUT;
	return m;
}

bool
qgen_openq_write(qgen_openq_form f, const char *s, const char *key, const char *key2, int page,
                 unsigned variant, char *out, size_t n)
{
	char        x[512];
	span        sp;
	int         how = 0, w = -1;
	const char *marker = "if";

	switch (f) {
	case QGEN_OPENQ_DEFINE:
		if (!define_parts(s, &sp, &how))
			return false;
		render(sp, x, sizeof(x));
		if (how == 1)
			w = snprintf(out, n, "What does %s mean in this text?", x);
		else if (how == 2)
			w = snprintf(out, n, "What does %s consist of, according to the text?", x);
		else if (variant % 2 == 0)
			w = snprintf(out, n, "What %s %s, according to the text?",
			             how == 3 ? "are" : "is", x);
		else
			w = snprintf(out, n, "Define %s as the text does.", x);
		break;
	case QGEN_OPENQ_HAPPENS:
		if (!happens_parts(s, &sp, &marker))
			return false;
		if (variant % 2 == 0)
			w = snprintf(out, n, "What happens %s %.*s?", marker, (int)sp.n, sp.p);
		else
			w = snprintf(out, n, "According to the text, what happens %s %.*s?", marker,
			             (int)sp.n, sp.p);
		break;
	case QGEN_OPENQ_WHY:
		if (!why_parts(s, &sp))
			return false;
		render(sp, x, sizeof(x));
		if (variant % 2 == 0)
			w = snprintf(out, n, "Why is it that %s?", x);
		else
			w = snprintf(out, n, "According to the text, why is it that %s?", x);
		break;
	case QGEN_OPENQ_COMPARE:
		if (!compare_applies(s, key, key2))
			return false;
		if (variant % 2 == 0)
			w = snprintf(out, n, "How does the text compare %s with %s?", key, key2);
		else
			w = snprintf(out, n,
			             "What difference between %s and %s does the text point out?",
			             key, key2);
		break;
	case QGEN_OPENQ_ROLE:
		if (!role_parts(s, &sp))
			return false;
		render(sp, x, sizeof(x));
		if (variant % 2 == 0)
			w = snprintf(out, n, "What does %s do, according to the text?", x);
		else
			w = snprintf(out, n, "What is the role of %s, as the text describes it?",
			             x);
		break;
	case QGEN_OPENQ_ABOUT:
		if (key == NULL || key[0] == '\0')
			return false;
		switch (variant % 4) {
		case 0:
			w = snprintf(out, n, "How does the text describe %s?", key);
			break;
		case 1:
			w = snprintf(out, n, "What does the text say about %s?", key);
			break;
		case 2:
			w = snprintf(out, n, "What does page %d tell you about %s?", page, key);
			break;
		default:
			w = snprintf(out, n, "Explain what the text says about %s.", key);
			break;
		}
		break;
	default:
		return false;
	}
	return w > 0 && (size_t)w < n;
}
