/*
 * offline_pick.c - a sentence's blank, its distractors and an open question's form, for the
 * offline provider (offline.c has the design; offline_int.h the shared types).
 *
 * DESIGN. Blanks: a sentence's candidates (doc_terms.h) are scored by kind, recurrence and noun
 * evidence, minus half a point per answer of that kind already in the set, so kinds take turns.
 * Distractors: a linear pass over the term table keeps the three nearest terms of the answer's
 * kind (frequency, length, plural; for numbers shape and magnitude), skipping words of the
 * sentence, forms of the answer and terms already used by a fifth of the set; every use so far
 * adds to a term's distance, and a hash of (sentence, term) breaks ties, so questions reach
 * different terms. Open: the least used form the sentence supports (openq.h).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/util.h"
#include "offline_int.h"

uint64_t
qgen_off_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

void
qgen_off_lower(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (char)((unsigned char)s[i] < 0x80 ? tolower((unsigned char)s[i]) : s[i]);
	out[n] = '\0';
}

/* ---- usage ----------------------------------------------------------------------------------- */

static int *
usage_slot(qgen_off_usage *u, const char *text, bool add)
{
	char key[QGEN_TERM_MAX + 1];

	qgen_off_lower(text, strnlen(text, QGEN_TERM_MAX), key);
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->key[i], key) == 0)
			return &u->uses[i];
	if (!add)
		return NULL;
	if (u->n == u->cap) {
		size_t c = u->cap == 0 ? 64 : u->cap * 2;
		char(*k)[QGEN_TERM_MAX + 1] = realloc(u->key, c * sizeof(*k));
		if (k == NULL)
			return NULL;
		u->key = k;
		int *v = realloc(u->uses, c * sizeof(*v));
		if (v == NULL)
			return NULL;
		u->uses = v;
		u->cap = c;
	}
	memcpy(u->key[u->n], key, sizeof(key));
	u->uses[u->n] = 0;
	return &u->uses[u->n++];
}

static int
usage_of(qgen_off_usage *u, const char *text)
{
	int *p = usage_slot(u, text, false);

	return p != NULL ? *p : 0;
}

cm_err
qgen_off_usage_add(qgen_off_usage *u, const char *text)
{
	int *p = usage_slot(u, text, true);

	if (p == NULL)
		return CM_ENOMEM;
	(*p)++;
	return CM_OK;
}

void
qgen_off_usage_fini(qgen_off_usage *u)
{
	free(u->key);
	free(u->uses);
	memset(u, 0, sizeof(*u));
}

/* ---- blanks ---------------------------------------------------------------------------------- */

/* How many times key occurs in lower (a sentence in lower case), as a substring. */
static int
occurrences(const char *lower, const char *key)
{
	int         n = 0;
	size_t      k = strlen(key);
	const char *p = lower;

	while (k > 0 && (p = strstr(p, key)) != NULL) {
		n++;
		p += k;
	}
	return n;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Ends like an English plural or a verb in -s. */
static bool
plural(const char *key)
{
	return ends_with(key, "s") && !ends_with(key, "ss") && !ends_with(key, "us") &&
	       !ends_with(key, "is");
}

/* A WORD that never follows a determiner ("the", "a", "its"...) in the document: most likely a
 * verb or an adjective ("executes", "prevent", "double"), not a noun to ask about. A short text
 * (under OFF_SHORT passages) gives too little evidence: there only words shaped like verbs
 * (-s but not -ss/-us/-is) without that evidence are left out. */
static bool
verbish(const qgen_off_gen *g, const qgen_term *t)
{
	if (t->kind != QGEN_TERM_WORD || t->nounish > 0)
		return false;
	return g->terms.passages >= OFF_SHORT || plural(t->key);
}

/* Whether t may stand as an answer or a distractor at all: not generic, not a verb, and for a
 * phrase, neither of its words a verb ("executes commands", "command terminates"). */
static bool
askable(const qgen_off_gen *g, const qgen_term *t)
{
	if (t->generic || verbish(g, t))
		return false;
	if (t->kind == QGEN_TERM_PHRASE) {
		char             w[QGEN_TERM_MAX + 1];
		const char      *sp = strchr(t->key, ' ');
		size_t           n = sp != NULL ? (size_t)(sp - t->key) : strlen(t->key);
		const qgen_term *a, *b;
		memcpy(w, t->key, n);
		w[n] = '\0';
		a = qgen_terms_find(&g->terms, w);
		b = sp != NULL ? qgen_terms_find(&g->terms, sp + 1) : NULL;
		return (a == NULL || !verbish(g, a)) && (b == NULL || !verbish(g, b));
	}
	return true;
}

static double
blank_score(const qgen_term *t)
{
	double s;

	switch (t->kind) {
	case QGEN_TERM_NAME:
	case QGEN_TERM_PHRASE:
		s = 4;
		break;
	case QGEN_TERM_NUMBER:
		s = 3.5;
		break;
	case QGEN_TERM_ACRONYM:
		s = 3;
		break;
	default:
		s = 2;
		break;
	}
	s += t->count >= 2 ? 1 : 0;
	s += t->nounish > 0 ? 1 : 0;
	s += strlen(t->key) >= 7 ? 0.5 : 0;
	s += t->df >= 2 ? 0.5 : 0;
	return s;
}

static int
cmp_blank(const void *a, const void *b)
{
	const qgen_off_blank *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->at < y->at ? -1 : (x->at > y->at ? 1 : 0);
}

/* The sentence's blank candidates, best first; returns how many (at most max). */
size_t
qgen_off_blanks(const qgen_off_gen *g, const char *s, qgen_off_blank *out, size_t max)
{
	qgen_tok t[QGEN_TOK_MAX];
	size_t   nt = qgen_tokenize(s, t, QGEN_TOK_MAX), n = 0;
	char     lower[OFF_MAX_SENTENCE + 1];

	if (qgen_code_sentence(s, t, nt))
		return 0;
	qgen_off_lower(s, strlen(s), lower);
	for (size_t i = 0; i < nt && n < max; i++)
		for (int phrase = 0; phrase < 2 && n < max; phrase++) {
			char             key[QGEN_TERM_MAX + 1];
			qgen_term_kind   kind;
			size_t           ntok;
			const qgen_term *term;
			if (!qgen_tok_candidate(s, t, nt, i, phrase != 0, &kind, &ntok, key) ||
			    (phrase != 0 && ntok < 2))
				continue;
			term = qgen_terms_find(&g->terms, key);
			if (term == NULL || !askable(g, term) || occurrences(lower, key) != 1)
				continue;
			out[n].term = term;
			out[n].at = t[i].at;
			out[n].len = t[i + ntok - 1].at + t[i + ntok - 1].len - t[i].at;
			out[n].score = blank_score(term);
			n++;
		}
	qsort(out, n, sizeof(*out), cmp_blank);
	return n;
}

/* ---- distractors ----------------------------------------------------------------------------- */

/* A number's shape: 0 integer, 1 year, 2 decimal, 3 percent. */
static int
number_shape(const char *n)
{
	size_t len = strlen(n);

	if (strchr(n, '%') != NULL)
		return 3;
	if (strchr(n, '.') != NULL)
		return 2;
	if (len == 4 && (n[0] == '1' || n[0] == '2'))
		return 1;
	return 0;
}

/* Whether candidate c is too close to the answer a (one a form of the other) to be wrong. */
static bool
related(const char *c, const char *a)
{
	size_t lc = strlen(c), la = strlen(a), k = lc < la ? lc : la;

	if (k > 5)
		k = 5;
	return strncmp(c, a, k) == 0 || strstr(c, a) != NULL || strstr(a, c) != NULL;
}

/* How far candidate c is from answer a for a blank of sentence hash h (lower is better). */
static double
distance(const qgen_off_gen *g, const qgen_term *c, const qgen_term *a, uint64_t h)
{
	double d = 0;
	double jitter = (double)((h ^ qgen_off_hash(c->key)) % 1000) / 1000.0;
	int    ld = (int)strlen(c->key) - (int)strlen(a->key);

	if (a->kind == QGEN_TERM_NUMBER) {
		double x = strtod(c->key, NULL), y = strtod(a->key, NULL);
		d += number_shape(c->key) != number_shape(a->key) ? 6 : 0;
		d += x > 0 && y > 0 ? 2 * fabs(log10(x) - log10(y)) : 2;
	} else {
		d += 2 * fabs(log((double)c->count) - log((double)a->count));
		d += 0.25 * abs(ld);
		d += plural(c->key) != plural(a->key) ? 1.5 : 0;
	}
	d += 2.0 * usage_of((qgen_off_usage *)&g->dis, c->text); /* spread: the least used first */
	return d + 1.5 * jitter;
}

/* Synthesised numbers near the answer, when the document has too few of its shape. */
static int
synth_numbers(const char *answer, const char *lower, uint64_t h, char out[][QGEN_TERM_MAX + 1],
              int have, int want)
{
	static const double mul[] = {2, 0.5, 10, 1.5, 3, 0.25};
	static const int    years[] = {-7, 5, -16, 11, 23, -3};
	double              v = strtod(answer, NULL);
	int                 got = have, shape = number_shape(answer);

	for (int i = 0; i < 6 && got < want; i++) {
		char   buf[QGEN_TERM_MAX + 1];
		int    k = (int)((h + (uint64_t)i) % 6);
		double x = shape == 1 ? v + years[k] : v * mul[k];
		if (shape == 2)
			snprintf(
			    buf, sizeof(buf), "%.*f",
			    (int)strlen(strchr(answer, '.') != NULL ? strchr(answer, '.') + 1 : ""),
			    x);
		else
			snprintf(buf, sizeof(buf), "%ld%s", (long)llround(x),
			         shape == 3 ? "%" : "");
		if (x <= 0 || strcmp(buf, answer) == 0 || strstr(lower, buf) != NULL)
			continue;
		bool dup = false;
		for (int j = 0; j < got; j++)
			dup |= strcmp(out[j], buf) == 0;
		if (!dup) {
			cm_strlcpy(out[got], buf, sizeof(out[got]));
			got++;
		}
	}
	return got;
}

/* Three distractors for answer a in the sentence (lower: in lower case). */
static int
pick_distractors(const qgen_off_gen *g, const qgen_term *a, const char *lower, uint64_t h,
                 char out[3][QGEN_TERM_MAX + 1])
{
	const qgen_term *best[3] = {NULL, NULL, NULL};
	double           bd[3] = {0, 0, 0};
	int              got = 0;

	for (size_t i = 0; i < g->terms.n; i++) {
		const qgen_term *c = &g->terms.v[i];
		double           d;
		if (c->kind != a->kind || c == a || !askable(g, c) ||
		    usage_of((qgen_off_usage *)&g->dis, c->text) >= g->cap ||
		    strstr(lower, c->key) != NULL || related(c->key, a->key))
			continue;
		d = distance(g, c, a, h);
		for (int k = 0; k < 3; k++)
			if (best[k] == NULL || d < bd[k]) {
				for (int m = 2; m > k; m--) {
					best[m] = best[m - 1];
					bd[m] = bd[m - 1];
				}
				best[k] = c;
				bd[k] = d;
				break;
			}
	}
	for (int k = 0; k < 3; k++)
		if (best[k] != NULL) {
			bool dup = false;
			for (int j = 0; j < got; j++)
				dup |= strcasecmp(out[j], best[k]->text) == 0;
			if (!dup) {
				cm_strlcpy(out[got], best[k]->text, sizeof(out[0]));
				got++;
			}
		}
	if (got < 3 && a->kind == QGEN_TERM_NUMBER)
		got = synth_numbers(a->key, lower, h, out, got, 3);
	return got;
}

/* ---- questions ------------------------------------------------------------------------------- */

cm_err
qgen_off_mcq(qgen_off_gen *g, const qgen_off_sentence *s, qgen_qlist *out, bool *made)
{
	qgen_off_blank b[OFF_MAX_BLANKS];
	size_t         nb = qgen_off_blanks(g, s->text, b, OFF_MAX_BLANKS);
	char           lower[OFF_MAX_SENTENCE + 1], d[3][QGEN_TERM_MAX + 1];
	uint64_t       h = qgen_off_hash(s->text);
	qgen_question  q;
	size_t         i, tl;
	int            pos;
	const char    *what;
	cm_err         err = CM_OK;

	*made = false;
	qgen_off_lower(s->text, strlen(s->text), lower);
	/* Kinds take turns: each answer of a kind already in the set costs its kind half a point,
	 * so a manual full of names or phrases still gets numbers and plain terms. */
	for (size_t k = 0; k < nb; k++)
		b[k].score -= 0.5 * g->kinds[b[k].term->kind];
	qsort(b, nb, sizeof(*b), cmp_blank);
	for (i = 0; i < nb; i++)
		if (usage_of(&g->ans, b[i].term->text) < g->cap &&
		    pick_distractors(g, b[i].term, lower, h, d) == 3)
			break;
	if (i == nb)
		return CM_OK;
	if (b[i].at == 0 && isupper((unsigned char)s->text[0]))
		for (int k = 0; k < 3; k++) /* a blank that starts the sentence: all capitalised */
			d[k][0] = (char)toupper((unsigned char)d[k][0]);
	what = b[i].term->kind == QGEN_TERM_NUMBER ? "number"
	       : b[i].term->kind == QGEN_TERM_NAME ? "name"
	                                           : "term";
	memset(&q, 0, sizeof(q));
	q.type = QGEN_MCQ;
	q.difficulty = g->req->difficulty;
	q.page = s->page;
	tl = strlen(s->text) + 96;
	if ((q.text = malloc(tl)) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	snprintf(q.text, tl,
	         "Which %s completes this statement from the text: \"%.*s" OFF_BLANK "%s\"", what,
	         (int)b[i].at, s->text, s->text + b[i].at + b[i].len);
	pos = (int)(h % QGEN_OPTIONS);
	for (int k = 0, j = 0; k < QGEN_OPTIONS; k++)
		q.options[k] = k == pos ? strndup(s->text + b[i].at, b[i].len) : strdup(d[j++]);
	q.answer = pos;
	tl = strlen(s->text) + 32;
	if ((q.explanation = malloc(tl)) != NULL)
		snprintf(q.explanation, tl, "The text says: \"%s\"", s->text);
	for (int k = 0; k < QGEN_OPTIONS; k++)
		if (q.options[k] == NULL)
			err = CM_ENOMEM;
	if (err == CM_OK)
		err = qgen_qlist_push(out, &q);
	if (err != CM_OK)
		goto out;
	*made = true;
	for (int k = 0; k < 3 && err == CM_OK; k++)
		err = qgen_off_usage_add(&g->dis, d[k]);
	if (err == CM_OK)
		err = qgen_off_usage_add(&g->ans, b[i].term->text);
	g->kinds[b[i].term->kind]++;
	return err;
out:
	qgen_question_fini(&q);
	return err;
}

/* The open form to use for s: the least used one it supports, ABOUT only when nothing else
 * fits (it counts as two uses ahead). QGEN_OPENQ_NFORMS when none. */
static qgen_openq_form
choose_form(const qgen_off_gen *g, unsigned forms)
{
	qgen_openq_form best = QGEN_OPENQ_NFORMS;
	int             bu = 0;

	for (int f = 0; f < QGEN_OPENQ_NFORMS; f++) {
		int u = g->forms[f] + (f == QGEN_OPENQ_ABOUT ? 2 : 0);
		if ((forms & (1u << f)) != 0 && (best == QGEN_OPENQ_NFORMS || u < bu)) {
			best = (qgen_openq_form)f;
			bu = u;
		}
	}
	return best;
}

/* The sentence's two best key terms as written (for ABOUT and COMPARE); "" when none. */
static void
key_terms(const qgen_off_gen *g, const qgen_off_sentence *s, char k1[QGEN_TERM_MAX + 1],
          char k2[QGEN_TERM_MAX + 1])
{
	qgen_off_blank b[OFF_MAX_BLANKS];
	size_t         nb = qgen_off_blanks(g, s->text, b, OFF_MAX_BLANKS);

	k1[0] = k2[0] = '\0';
	for (size_t i = 0; i < nb; i++) {
		char  *dst = k1[0] == '\0' ? k1 : k2;
		size_t n = b[i].len < QGEN_TERM_MAX ? b[i].len : QGEN_TERM_MAX;
		if (dst == k2 &&
		    (b[i].term == b[0].term || related(b[i].term->key, b[0].term->key)))
			continue;
		memcpy(dst, s->text + b[i].at, n);
		dst[n] = '\0';
		if (dst == k2)
			break;
	}
}

/* The least used form sentence s supports and that form's uses (INT_MAX when none). */
static int
form_cost(const qgen_off_gen *g, const qgen_off_sentence *s, qgen_openq_form *f)
{
	char k1[QGEN_TERM_MAX + 1], k2[QGEN_TERM_MAX + 1];

	key_terms(g, s, k1, k2);
	*f = choose_form(
	    g, qgen_openq_forms(s->text, k1[0] != '\0' ? k1 : NULL, k2[0] != '\0' ? k2 : NULL));
	if (*f == QGEN_OPENQ_NFORMS)
		return INT32_MAX;
	return g->forms[*f] + (*f == QGEN_OPENQ_ABOUT ? 2 : 0);
}

/* For an open question at sentence i: the unused sentence of the same passage whose form is the
 * least used so far (i itself on ties), so that a set varies its forms rather than asking each
 * passage's best sentence in the same form. */
size_t
qgen_off_open_sentence(const qgen_off_gen *g, size_t i)
{
	qgen_openq_form f;
	size_t          best = i, a = i, b = i;
	int             bc = form_cost(g, &g->ss[i], &f);

	while (a > 0 && g->ss[a - 1].passage == g->ss[i].passage)
		a--;
	while (b + 1 < g->ns && g->ss[b + 1].passage == g->ss[i].passage)
		b++;
	for (size_t k = a; k <= b; k++) {
		int c;
		if (k == i || !g->ss[k].usable || g->ss[k].used)
			continue;
		if ((c = form_cost(g, &g->ss[k], &f)) < bc) {
			best = k;
			bc = c;
		}
	}
	return best;
}

cm_err
qgen_off_open(qgen_off_gen *g, const qgen_off_sentence *s, qgen_qlist *out, bool *made)
{
	char            k1[QGEN_TERM_MAX + 1], k2[QGEN_TERM_MAX + 1], text[QGEN_MAX_TEXT];
	unsigned        forms;
	qgen_openq_form f;
	qgen_question   q;
	unsigned        variant = (unsigned)(qgen_off_hash(s->text) % 4);

	*made = false;
	key_terms(g, s, k1, k2);
	forms = qgen_openq_forms(s->text, k1[0] != '\0' ? k1 : NULL, k2[0] != '\0' ? k2 : NULL);
	if ((f = choose_form(g, forms)) == QGEN_OPENQ_NFORMS ||
	    !qgen_openq_write(f, s->text, k1, k2, s->page, variant, text, sizeof(text)))
		return CM_OK;
	memset(&q, 0, sizeof(q));
	q.type = QGEN_OPEN;
	q.difficulty = g->req->difficulty;
	q.page = s->page;
	if ((q.text = strdup(text)) == NULL || (q.reference = strdup(s->text)) == NULL ||
	    qgen_qlist_push(out, &q) != CM_OK) {
		qgen_question_fini(&q);
		return CM_ENOMEM;
	}
	g->forms[f]++;
	*made = true;
	return CM_OK;
}
