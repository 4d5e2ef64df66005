/*
 * offline.c - questions from the document's own text, without a model (offline.h).
 *
 * DESIGN. Three passes over the chunks. (1) Sentences: the text is copied with line breaks
 * joined (a hyphen at a line end joins the word), then cut after . ! ? followed by white space;
 * sentences of 8..60 words are kept with their chunk's first page. (2) Key terms: words of 5+
 * letters (4+ when capitalised) that are not stop words, counted over the whole document
 * (sorted array, then runs), ranked by frequency; a term that appears once is still a term, just
 * ranked last. (3) Questions: each sentence offers the key term of it that the document uses most
 * (a term that matters, not a stray word); multiple choice blanks it and draws three distractors
 * among the other terms, preferring the same kind (capitalised or not, digits or not) and a
 * similar length; open questions ask to explain what the text says about the term, the sentence
 * being the reference answer. Sentences are visited topic matches first, then spread over the
 * document (a stride), and variant v skips the first v*count candidates, so top-up rounds ask
 * about other sentences. Everything is deterministic: no clock, no random source.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/limits.h"
#include "cm/util.h"
#include "offline.h"
#include "quality.h"

#define OFF_MIN_WORDS 8
#define OFF_MAX_WORDS 60
#define OFF_MAX_TERM 40
#define OFF_MAX_SENTENCE 600
#define OFF_GENERIC 15 /* the document's most used terms: too general to ask about */

static const char *const stop[] = {
    "about",   "above",   "after",   "again",  "against",   "along",   "also",     "although",
    "among",   "another", "because", "been",   "before",    "being",   "below",    "between",
    "both",    "cannot",  "could",   "does",   "doing",     "down",    "during",   "each",
    "either",  "every",   "example", "first",  "from",      "further", "have",     "having",
    "here",    "however", "into",    "itself", "just",      "least",   "less",     "like",
    "many",    "more",    "most",    "much",   "must",      "never",   "often",    "only",
    "other",   "others",  "over",    "page",   "perhaps",   "rather",  "same",     "second",
    "several", "shall",   "should",  "since",  "some",      "such",    "than",     "that",
    "their",   "them",    "then",    "there",  "therefore", "these",   "they",     "thing",
    "things",  "this",    "those",   "though", "through",   "thus",    "together", "under",
    "until",   "upon",    "used",    "uses",   "using",     "very",    "were",     "what",
    "when",    "where",   "whether", "which",  "while",     "whose",   "will",     "with",
    "within",  "without", "would",   "your",   "yours",     "chapter", "section",  "figure",
    "table"};

typedef struct sentence {
	char *text; /* NUL-terminated copy */
	int   page;
	bool  topic;
} sentence;

typedef struct term {
	char word[OFF_MAX_TERM + 1]; /* as first seen (keeps capitals) */
	char key[OFF_MAX_TERM + 1];  /* lower case */
	int  count;
	bool caps, digits;
} term;

static bool
is_stop(const char *lower)
{
	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (strcmp(lower, stop[i]) == 0)
			return true;
	return false;
}

static bool
word_byte(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || c == '\'' || c == '_';
}

/* The next word of s at or after *pos: its start and length; *pos moves past it. false at the
 * end. */
static bool
next_word(const char *s, size_t *pos, size_t *start, size_t *len)
{
	size_t a = *pos, b;

	while (s[a] != '\0' && !word_byte((unsigned char)s[a]))
		a++;
	if (s[a] == '\0')
		return false;
	for (b = a; s[b] != '\0' && word_byte((unsigned char)s[b]); b++)
		;
	*start = a;
	*len = b - a;
	*pos = b;
	return true;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void
lower_copy(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (char)((unsigned char)s[i] < 0x80 ? tolower((unsigned char)s[i]) : s[i]);
	out[n] = '\0';
}

/* Whether s[0..n) is a key-term candidate. */
static bool
term_candidate(const char *s, size_t n, char *lower)
{
	size_t letters = 0;

	if (n > OFF_MAX_TERM)
		return false;
	for (size_t i = 0; i < n; i++)
		if (isalpha((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
			letters++;
	if (letters < 4 || s[n - 1] == '\'' || s[0] == '\'')
		return false;
	if (letters < 5 && !isupper((unsigned char)s[0]))
		return false;
	lower_copy(s, n, lower);
	return !is_stop(lower);
}

/* ---- sentences ------------------------------------------------------------------------------- */

static cm_err
push_sentence(sentence **v, size_t *n, size_t *cap, const char *s, size_t len, int page)
{
	size_t words = 0;
	bool   in = false;

	for (size_t i = 0; i < len; i++) {
		bool w = !isspace((unsigned char)s[i]);
		if (w && !in)
			words++;
		in = w;
	}
	if (words < OFF_MIN_WORDS || words > OFF_MAX_WORDS || len > OFF_MAX_SENTENCE)
		return CM_OK;
	if (*n == *cap) {
		size_t    c = *cap == 0 ? 256 : *cap * 2;
		sentence *p = realloc(*v, c * sizeof(*p));
		if (p == NULL)
			return CM_ENOMEM;
		*v = p;
		*cap = c;
	}
	if (((*v)[*n].text = strndup(s, len)) == NULL)
		return CM_ENOMEM;
	(*v)[*n].page = page;
	(*v)[*n].topic = false;
	(*n)++;
	return CM_OK;
}

/* Cuts one chunk into sentences (line breaks joined, end-of-line hyphens removed). */
static cm_err
split_chunk(const qgen_chunk *c, sentence **v, size_t *n, size_t *cap)
{
	char  *buf = malloc(c->len + 1);
	size_t m = 0, start = 0;
	cm_err err = CM_OK;

	if (buf == NULL)
		return CM_ENOMEM;
	for (size_t i = 0; i < c->len; i++) {
		char ch = c->text[i];
		if (ch == '-' && i + 1 < c->len && c->text[i + 1] == '\n' && m > 0 &&
		    isalpha((unsigned char)buf[m - 1])) {
			i++; /* "photo-\nsynthesis" -> "photosynthesis" */
			continue;
		}
		if (ch == '\n' || ch == '\r' || ch == '\t' || ch == '\f')
			ch = ' ';
		if (ch == ' ' && m > 0 && buf[m - 1] == ' ')
			continue;
		buf[m++] = ch;
	}
	buf[m] = '\0';
	for (size_t i = 0; i < m && err == CM_OK; i++) {
		bool end = (buf[i] == '.' || buf[i] == '!' || buf[i] == '?') &&
		           (i + 1 == m || buf[i + 1] == ' ');
		/* "e.g." and "Fig." are not sentence ends: require a capital or digit next. */
		if (end && i + 2 < m && !isupper((unsigned char)buf[i + 2]) &&
		    !isdigit((unsigned char)buf[i + 2]) && (unsigned char)buf[i + 2] < 0x80)
			end = false;
		if (end || i + 1 == m) {
			while (start < i && buf[start] == ' ')
				start++;
			if (buf[i] == '.' || buf[i] == '!' || buf[i] == '?')
				err = push_sentence(v, n, cap, buf + start, i + 1 - start,
				                    c->page_first);
			start = i + 1;
		}
	}
	free(buf);
	return err;
}

/* ---- terms ----------------------------------------------------------------------------------- */

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(((const term *)a)->key, ((const term *)b)->key);
}

static int
cmp_rank(const void *a, const void *b)
{
	const term *x = a, *y = b;

	if (x->count != y->count)
		return y->count - x->count;
	return strcmp(x->key, y->key);
}

/* Every candidate word of every sentence, then merged by key: distinct terms ranked. */
static cm_err
collect_terms(const sentence *ss, size_t ns, term **out, size_t *nout)
{
	term  *t = NULL;
	size_t n = 0, cap = 0, k = 0;

	for (size_t i = 0; i < ns; i++) {
		const char *s = ss[i].text;
		size_t      pos = 0, a, wl;
		while (next_word(s, &pos, &a, &wl)) {
			char lower[OFF_MAX_TERM + 1];
			if (!term_candidate(s + a, wl, lower))
				continue;
			if (n == cap) {
				size_t c = cap == 0 ? 1024 : cap * 2;
				term  *p = realloc(t, c * sizeof(*p));
				if (p == NULL) {
					free(t);
					return CM_ENOMEM;
				}
				t = p;
				cap = c;
			}
			memcpy(t[n].word, s + a, wl);
			t[n].word[wl] = '\0';
			cm_strlcpy(t[n].key, lower, sizeof(t[n].key));
			t[n].count = 1;
			t[n].caps = isupper((unsigned char)s[a]) != 0;
			t[n].digits = strpbrk(t[n].word, "0123456789") != NULL;
			n++;
		}
	}
	if (n > 0) {
		qsort(t, n, sizeof(*t), cmp_key);
		for (size_t i = 1; i < n; i++) {
			if (strcmp(t[i].key, t[k].key) == 0) {
				t[k].count++;
				t[k].caps =
				    t[k].caps && t[i].caps; /* a name only if always capitalised */
			} else {
				t[++k] = t[i];
			}
		}
		n = k + 1;
		for (size_t i = 0; i < n; i++)
			if (!t[i].caps) /* shown as the text usually writes it */
				memcpy(t[i].word, t[i].key, sizeof(t[i].word));
		qsort(t, n, sizeof(*t), cmp_rank);
	}
	*out = t;
	*nout = n;
	return CM_OK;
}

static int
cmp_key_ptr(const void *a, const void *b)
{
	return strcmp((*(const term *const *)a)->key, (*(const term *const *)b)->key);
}

/* The terms by key (pointers into the ranked array), for binary search: a lookup per word of
 * every sentence must not scan every term. NULL on OOM. */
static const term **
index_terms(const term *t, size_t n)
{
	const term **ix = malloc((n > 0 ? n : 1) * sizeof(*ix));

	if (ix == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ix[i] = &t[i];
	qsort(ix, n, sizeof(*ix), cmp_key_ptr);
	return ix;
}

static const term *
find_term(const term *const *by_key, size_t n, const char *key)
{
	term        probe;
	const term *pp = &probe, *const * hit;

	cm_strlcpy(probe.key, key, sizeof(probe.key));
	hit = bsearch(&pp, by_key, n, sizeof(*by_key), cmp_key_ptr);
	return hit != NULL ? *hit : NULL;
}

/* The key term a sentence is about, and where it starts (NULL when none): the sentence's term the
 * document uses most, leaving out the OFF_GENERIC most used terms of the whole document, which
 * are what it is generally about ("shell", "cell") and make blanks anyone can fill; those count
 * only when the sentence has nothing else. */
static const term *
best_term(const char *s, const term *t, const term *const *by_key, size_t nt, size_t *at,
          size_t *len)
{
	const term *best = NULL;
	size_t      pos = 0, a, wl;

	while (next_word(s, &pos, &a, &wl)) {
		char lower[OFF_MAX_TERM + 1];
		if (term_candidate(s + a, wl, lower)) {
			const term *x = find_term(by_key, nt, lower);
			bool        generic =
			    x != NULL && (size_t)(x - t) < OFF_GENERIC && nt > 4 * OFF_GENERIC;
			bool best_generic = best != NULL && (size_t)(best - t) < OFF_GENERIC &&
			                    nt > 4 * OFF_GENERIC;
			bool better = x != NULL && (best == NULL || (best_generic && !generic) ||
			                            (best_generic == generic && x < best));
			if (better) {
				best = x;
				*at = a;
				*len = wl;
			}
		}
	}
	return best;
}

/* Sentences that are mostly page furniture (headers, numbers, all-caps names) make bad
 * questions. */
static bool
mostly_furniture(const char *s)
{
	int words = 0, odd = 0;

	for (size_t a = 0; s[a] != '\0';) {
		size_t b = a;
		bool   upper_or_digit = true;
		while (s[b] != '\0' && s[b] != ' ') {
			if (islower((unsigned char)s[b]))
				upper_or_digit = false;
			b++;
		}
		if (b > a) {
			words++;
			odd += upper_or_digit;
		}
		a = b;
		while (s[a] == ' ')
			a++;
	}
	return words == 0 || odd * 4 > words;
}

/* ---- questions ------------------------------------------------------------------------------- */

/* Three distractors for answer: the terms nearest to it in rank (as important in this
 * document), of the same kind (capitalised, digits) and similar length first. */
static int
pick_distractors(const term *t, size_t nt, const term *answer, const char *sentence_lower,
                 const term **out)
{
	size_t ai = (size_t)(answer - t);
	int    got = 0;

	for (int pass = 0; pass < 3 && got < 3; pass++) {
		for (size_t step = 1; step < 2 * nt && got < 3; step++) {
			/* ai+1, ai-1, ai+2, ai-2, ... */
			size_t d = (step + 1) / 2;
			size_t k;
			if (step % 2 == 1) {
				if (ai + d >= nt)
					continue;
				k = ai + d;
			} else {
				if (d > ai)
					continue;
				k = ai - d;
			}
			const term *c = &t[k];
			bool        dup = strcmp(c->key, answer->key) == 0;
			for (int j = 0; j < got && !dup; j++)
				dup = strcmp(out[j]->key, c->key) == 0;
			/* Not a word of the sentence itself, and not a form of the answer. */
			if (dup || strstr(sentence_lower, c->key) != NULL ||
			    strncmp(c->key, answer->key,
			            strlen(answer->key) < 5 ? strlen(answer->key) : 5) == 0)
				continue;
			int dl = (int)strlen(c->word) - (int)strlen(answer->word);
			if (pass == 0 && (c->caps != answer->caps || c->digits != answer->digits ||
			                  dl > 4 || dl < -4))
				continue;
			if (pass == 1 && c->caps != answer->caps)
				continue;
			out[got++] = c;
		}
	}
	return got;
}

static cm_err
make_mcq(const sentence *s, const term *t, const term *const *by_key, size_t nt,
         const qgen_offline_req *req, qgen_qlist *out, bool *made)
{
	size_t        at = 0, len = 0;
	const term   *ans = best_term(s->text, t, by_key, nt, &at, &len);
	const term   *d[3];
	char          lower[OFF_MAX_SENTENCE + 1];
	uint64_t      h = hash_str(s->text);
	qgen_question q;
	size_t        tl;
	int           pos;

	*made = false;
	if (ans == NULL)
		return CM_OK;
	lower_copy(s->text, strlen(s->text), lower);
	if (pick_distractors(t, nt, ans, lower, d) < 3)
		return CM_OK;
	memset(&q, 0, sizeof(q));
	q.type = QGEN_MCQ;
	q.difficulty = req->difficulty;
	q.page = s->page;
	tl = strlen(s->text) + 96;
	if ((q.text = malloc(tl)) == NULL)
		return CM_ENOMEM;
	snprintf(q.text, tl, "Which term completes this statement from the text: \"%.*s_____%s\"",
	         (int)at, s->text, s->text + at + len);
	pos = (int)(h % QGEN_OPTIONS);
	for (int i = 0, k = 0; i < QGEN_OPTIONS; i++) {
		if (i == pos) {
			q.options[i] = strndup(s->text + at, len);
		} else {
			q.options[i] = strdup(d[k]->word);
			k++;
		}
	}
	q.answer = pos;
	tl = strlen(s->text) + 32;
	if ((q.explanation = malloc(tl)) != NULL)
		snprintf(q.explanation, tl, "The text says: \"%s\"", s->text);
	for (int i = 0; i < QGEN_OPTIONS; i++)
		if (q.options[i] == NULL) {
			qgen_question_fini(&q);
			return CM_ENOMEM;
		}
	if (qgen_qlist_push(out, &q) != CM_OK) {
		qgen_question_fini(&q);
		return CM_ENOMEM;
	}
	*made = true;
	return CM_OK;
}

static cm_err
make_open(const sentence *s, const term *t, const term *const *by_key, size_t nt,
          const qgen_offline_req *req, qgen_qlist *out, bool *made)
{
	size_t        at = 0, len = 0;
	const term   *key = best_term(s->text, t, by_key, nt, &at, &len);
	qgen_question q;
	size_t        tl;

	*made = false;
	if (key == NULL)
		return CM_OK;
	memset(&q, 0, sizeof(q));
	q.type = QGEN_OPEN;
	q.difficulty = req->difficulty;
	q.page = s->page;
	tl = len + 128;
	if ((q.text = malloc(tl)) == NULL || (q.reference = strdup(s->text)) == NULL) {
		qgen_question_fini(&q);
		return CM_ENOMEM;
	}
	snprintf(q.text, tl,
	         "Explain in your own words what the text says about \"%.*s\" (page %d).", (int)len,
	         s->text + at, s->page);
	if (qgen_qlist_push(out, &q) != CM_OK) {
		qgen_question_fini(&q);
		return CM_ENOMEM;
	}
	*made = true;
	return CM_OK;
}

/* Marks sentences that mention a topic word (3+ letters, case-insensitive). */
static size_t
mark_topic(sentence *ss, size_t ns, const char *topic)
{
	char   words[QGEN_MAX_TOPIC + 1];
	size_t hits = 0;

	if (topic == NULL || topic[0] == '\0')
		return 0;
	lower_copy(topic, strnlen(topic, QGEN_MAX_TOPIC), words);
	for (size_t i = 0; i < ns; i++) {
		char lower[OFF_MAX_SENTENCE + 1];
		lower_copy(ss[i].text, strlen(ss[i].text), lower);
		for (char *p = words; *p != '\0';) {
			size_t n = strcspn(p, " ,;");
			if (n >= 3) {
				char w[QGEN_MAX_TOPIC + 1];
				memcpy(w, p, n);
				w[n] = '\0';
				if (strstr(lower, w) != NULL) {
					ss[i].topic = true;
					hits++;
					break;
				}
			}
			p += n;
			p += strspn(p, " ,;");
		}
	}
	return hits;
}

cm_err
qgen_offline_generate(const qgen_chunk *chunks, size_t nchunks, const qgen_offline_req *req,
                      qgen_qlist *out)
{
	sentence    *ss = NULL;
	term        *terms = NULL;
	const term **by_key = NULL;
	size_t       ns = 0, cap = 0, nt = 0, *order = NULL, no = 0, stride, skip;
	int          made_mcq = 0, made_open = 0, made = 0;
	cm_err       err = CM_OK;

	if (req == NULL || out == NULL || (nchunks > 0 && chunks == NULL) || req->count < 1 ||
	    req->count > QGEN_MAX_COUNT || req->variant < 0 ||
	    (req->types & (QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN))) == 0)
		return CM_EINVAL;
	for (size_t i = 0; i < nchunks && err == CM_OK; i++)
		if (chunks[i].text != NULL)
			err = split_chunk(&chunks[i], &ss, &ns, &cap);
	if (err == CM_OK && ns > 0)
		err = collect_terms(ss, ns, &terms, &nt);
	if (err == CM_OK && ns > 0 && (by_key = index_terms(terms, nt)) == NULL)
		err = CM_ENOMEM;
	if (err != CM_OK || ns == 0)
		goto out;
	(void)mark_topic(ss, ns, req->topic);

	/* Visiting order: topic sentences first, then the rest spread over the document. */
	if ((order = malloc(ns * sizeof(*order))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	stride = ns / (size_t)req->count > 1 ? ns / (size_t)req->count : 1;
	for (int pass = 0; pass < 2; pass++)
		for (size_t o = 0; o < stride; o++)
			for (size_t i = o; i < ns; i += stride)
				if (ss[i].topic == (pass == 0))
					order[no++] = i;

	skip = (size_t)req->variant * (size_t)req->count;
	for (size_t k = 0; k < no && made < req->count && err == CM_OK; k++) {
		const sentence *s = &ss[order[k]];
		bool            both = (req->types & QGEN_TYPE_MASK(QGEN_MCQ)) != 0 &&
		            (req->types & QGEN_TYPE_MASK(QGEN_OPEN)) != 0;
		bool want_open =
		    (req->types & QGEN_TYPE_MASK(QGEN_MCQ)) == 0 || (both && made_open < made_mcq);
		bool ok = false;

		if (mostly_furniture(s->text))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		err = want_open ? make_open(s, terms, by_key, nt, req, out, &ok)
		                : make_mcq(s, terms, by_key, nt, req, out, &ok);
		if (err == CM_OK && !ok && both && !want_open) {
			err = make_open(s, terms, by_key, nt, req, out, &ok);
			want_open = ok;
		}
		if (ok) {
			made++;
			if (want_open)
				made_open++;
			else
				made_mcq++;
		}
	}
out:
	for (size_t i = 0; i < ns; i++)
		free(ss[i].text);
	free(ss);
	free(terms);
	free(by_key);
	free(order);
	return err;
}

void
qgen_offline_fill(const qgen_chunk *chunks, size_t nchunks, const qgen_offline_req *req,
                  int max_rounds, qgen_qlist *chosen, qgen_offline_progress_fn progress, void *arg)
{
	size_t         count = (size_t)req->count;
	qgen_batch_ctx ctx = {req->types, req->difficulty, 1, INT32_MAX};

	for (int round = 0; chosen->n < count && round < max_rounds; round++) {
		qgen_offline_req rq = *req;
		qgen_qlist       cand;
		size_t           added = 0;
		char             why[CM_MAX_ERRMSG];

		rq.variant = round;
		qgen_qlist_init(&cand);
		if (qgen_offline_generate(chunks, nchunks, &rq, &cand) == CM_OK) {
			for (size_t i = 0; i < cand.n; i++)
				if (!qgen_check(&cand.items[i], &ctx, why, sizeof(why)))
					qgen_question_fini(&cand.items[i]);
			added = qgen_select(chosen, &cand, count);
		}
		qgen_qlist_fini(&cand);
		if (progress != NULL)
			progress(arg, chosen->n);
		if (added == 0)
			break; /* nothing new came: the text has no more material */
	}
}
