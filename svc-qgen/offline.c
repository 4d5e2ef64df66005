/*
 * offline.c - questions from the document's own text, without a model (offline.h).
 *
 * DESIGN. (1) Sentences: each chunk (a passage) is copied with line breaks joined (a hyphen at a
 * line end joins the word) and cut after . ! ? followed by white space and a capital; sentences
 * of 8..60 words are kept with their passage and the page that holds their middle (the chunk's
 * page_at; its first page when unknown). Sentences that are code (doc_terms.h) or page
 * furniture are dropped. (2) Terms: the document's term table
 * (doc_terms.h): words, names, acronyms, numbers and repeated phrases, never a stop word and
 * never a token of a URL, code or a formula. (3) Blanks (offline_pick.c): each sentence's
 * candidates are scored by kind (names, numbers and phrases above single words), recurrence and
 * noun evidence; terms in too many passages (what the whole document is about) and terms the
 * sentence repeats are left out. (4) Order: one question per passage, passages spread over the
 * document by a stride; a passage's sentences are ranked by their best blank (and an open-question
 * form), so a second lap over the passages takes each one's next sentence; topic sentences come
 * first; an open question may take another sentence of its passage whose form the set has used
 * less. Variant v skips the first v*count entries of this order (top-up rounds). (5) Distractors
 * (offline_pick.c): terms of the answer's kind (number for number, name for name, phrase for
 * phrase), of similar frequency, length and number (plural), never a word of the sentence, each
 * used by at most a fifth of the set (counted across the set, including questions chosen by earlier
 * rounds), ties broken by a hash of the sentence so that different questions reach different terms.
 * (6) Open questions take the least used form their sentence supports (openq.h); the sentence is
 * the reference. Deterministic: no clock, no random source; hashes of the text stand in for a seed.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/limits.h"
#include "cm/util.h"
#include "offline_int.h"
#include "quality.h"

#define OFF_MIN_WORDS 8
#define OFF_MAX_WORDS 60

/* ---- sentences ------------------------------------------------------------------------------- */

/* Bytes of a heading run into the sentence that follows it ("DESCRIPTION Bash is ...", "Simple
 * Commands A simple command is ..."): leading all-capital words, or capitalised words up to a
 * capitalised article within the first seven words, which prose never writes. */
static size_t
heading_len(const char *s, size_t len)
{
	size_t i = 0, cut = 0;
	bool   caps_run = true;

	for (int w = 0; w < 7 && i < len; w++) {
		size_t a = i, upper = 0, lower = 0;
		while (i < len && s[i] != ' ') {
			upper += isupper((unsigned char)s[i]) != 0;
			lower += islower((unsigned char)s[i]) != 0;
			i++;
		}
		if (w > 0 &&
		    ((i - a == 1 && s[a] == 'A') || (i - a == 2 && memcmp(s + a, "An", 2) == 0) ||
		     (i - a == 3 && memcmp(s + a, "The", 3) == 0)) &&
		    isalpha((unsigned char)s[a - 2]) && isupper((unsigned char)s[0]))
			return a; /* "Simple Commands A simple ..." */
		if (caps_run && upper >= 2 && lower == 0)
			cut = i + 1; /* "DESCRIPTION" */
		else
			caps_run = false;
		if (upper == 0 && lower > 0 && !caps_run)
			break; /* prose has begun: no title-case heading here */
		while (i < len && s[i] == ' ')
			i++;
	}
	return cut < len && cut > 0 && isupper((unsigned char)s[cut]) ? cut : 0;
}

static cm_err
push_sentence(qgen_off_sentence **v, size_t *n, size_t *cap, const char *s, size_t len, int page,
              int passage)
{
	size_t words = 0, cut = heading_len(s, len);
	bool   in = false;

	s += cut;
	len -= cut;

	for (size_t i = 0; i < len; i++) {
		bool w = !isspace((unsigned char)s[i]);
		if (w && !in)
			words++;
		in = w;
	}
	if (words < OFF_MIN_WORDS || words > OFF_MAX_WORDS || len > OFF_MAX_SENTENCE)
		return CM_OK;
	if (*n == *cap) {
		size_t             c = *cap == 0 ? 256 : *cap * 2;
		qgen_off_sentence *p = realloc(*v, c * sizeof(*p));
		if (p == NULL)
			return CM_ENOMEM;
		*v = p;
		*cap = c;
	}
	memset(&(*v)[*n], 0, sizeof((*v)[*n]));
	if (((*v)[*n].text = strndup(s, len)) == NULL)
		return CM_ENOMEM;
	(*v)[*n].page = page;
	(*v)[*n].passage = passage;
	(*n)++;
	return CM_OK;
}

/* Cuts one chunk into sentences (line breaks joined, end-of-line hyphens removed), each with
 * the page that holds its middle. */
static cm_err
split_chunk(const qgen_chunk *c, int passage, qgen_off_sentence **v, size_t *n, size_t *cap)
{
	char   *buf = malloc(c->len + 1);
	size_t *src = malloc((c->len + 1) * sizeof(size_t)); /* buf[k] came from text[src[k]] */
	size_t  m = 0, start = 0;
	cm_err  err = CM_OK;

	if (buf == NULL || src == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
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
		src[m] = i;
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
				err = push_sentence(
				    v, n, cap, buf + start, i + 1 - start,
				    qgen_chunk_page(c, src[start + (i - start) / 2]), passage);
			start = i + 1;
		}
	}
out:
	free(src);
	free(buf);
	return err;
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

/* Marks sentences that mention a topic word (3+ letters, case-insensitive). */
static void
mark_topic(qgen_off_sentence *ss, size_t ns, const char *topic)
{
	char words[QGEN_MAX_TOPIC + 1];

	if (topic == NULL || topic[0] == '\0')
		return;
	qgen_off_lower(topic, strnlen(topic, QGEN_MAX_TOPIC), words);
	for (size_t i = 0; i < ns; i++) {
		char lower[OFF_MAX_SENTENCE + 1];
		qgen_off_lower(ss[i].text, strlen(ss[i].text), lower);
		for (char *p = words; *p != '\0';) {
			size_t n = strcspn(p, " ,;");
			if (n >= 3) {
				char w[QGEN_MAX_TOPIC + 1];
				memcpy(w, p, n);
				w[n] = '\0';
				if (strstr(lower, w) != NULL) {
					ss[i].topic = true;
					break;
				}
			}
			p += n;
			p += strspn(p, " ,;");
		}
	}
}

/* ---- order ----------------------------------------------------------------------------------- */

/* Ranks every sentence: usable when it has a blank or an open form; rank = best blank score,
 * plus one when an open form other than ABOUT fits. */
static void
rank_sentences(qgen_off_gen *g)
{
	for (size_t i = 0; i < g->ns; i++) {
		qgen_off_sentence *s = &g->ss[i];
		qgen_off_blank     b[OFF_MAX_BLANKS];
		size_t             nb;
		unsigned           forms;

		if (mostly_furniture(s->text))
			continue;
		nb = qgen_off_blanks(g, s->text, b, OFF_MAX_BLANKS);
		if (nb == 0)
			continue; /* also code: blanks_of refuses code sentences */
		forms = qgen_openq_forms(s->text, NULL, NULL);
		s->usable = true;
		s->rank = b[0].score + (forms != 0 ? 1 : 0);
	}
}

/* A sentence's place in the order: passage, then rank (best first), then position. */
typedef struct slot {
	int    passage;
	double rank;
	size_t i;
} slot;

static int
cmp_slot(const void *a, const void *b)
{
	const slot *x = a, *y = b;

	if (x->passage != y->passage)
		return x->passage < y->passage ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return x->i < y->i ? -1 : 1;
}

/*
 * The visiting order (indices into g->ss, *no of them): topic sentences first, then the rest;
 * within each, lap after lap over the passages (a passage's best sentence, then its next), the
 * passages spread over the document by a stride of (passages / count).
 */
static cm_err
visit_order(qgen_off_gen *g, size_t **order, size_t *no)
{
	slot   *idx = NULL;
	size_t *gstart = NULL, *glen = NULL, *porder = NULL, ni = 0, ng = 0, np = 0;
	size_t  stride, maxlen = 0;
	cm_err  err = CM_ENOMEM;

	*order = NULL;
	*no = 0;
	if ((idx = malloc((g->ns + 1) * sizeof(*idx))) == NULL ||
	    (gstart = malloc((g->ns + 1) * sizeof(*gstart))) == NULL ||
	    (glen = malloc((g->ns + 1) * sizeof(*glen))) == NULL ||
	    (porder = malloc((g->ns + 1) * sizeof(*porder))) == NULL ||
	    (*order = malloc((g->ns + 1) * sizeof(**order))) == NULL)
		goto out;
	for (size_t i = 0; i < g->ns; i++)
		if (g->ss[i].usable) {
			idx[ni].passage = g->ss[i].passage;
			idx[ni].rank = g->ss[i].rank;
			idx[ni++].i = i;
		}
	qsort(idx, ni, sizeof(*idx), cmp_slot);
	for (size_t i = 0; i < ni; i++) {
		if (i == 0 || idx[i].passage != idx[i - 1].passage) {
			gstart[ng] = i;
			glen[ng++] = 0;
		}
		glen[ng - 1]++;
		maxlen = glen[ng - 1] > maxlen ? glen[ng - 1] : maxlen;
	}
	stride = ng / (size_t)g->req->count > 1 ? ng / (size_t)g->req->count : 1;
	for (size_t o = 0; o < stride; o++)
		for (size_t p = o; p < ng; p += stride)
			porder[np++] = p;
	for (int pass = 0; pass < 2; pass++)
		for (size_t lap = 0; lap < maxlen; lap++)
			for (size_t k = 0; k < np; k++) {
				size_t p = porder[k];
				size_t i = lap < glen[p] ? idx[gstart[p] + lap].i : 0;
				if (lap < glen[p] && g->ss[i].topic == (pass == 0))
					(*order)[(*no)++] = i;
			}
	err = CM_OK;
out:
	free(idx);
	free(gstart);
	free(glen);
	free(porder);
	if (err != CM_OK) {
		free(*order);
		*order = NULL;
	}
	return err;
}

/* ---- generation ------------------------------------------------------------------------------ */

/* Counts the options of the questions already in the set (prior may be NULL). */
static cm_err
seed_usage(qgen_off_gen *g, const qgen_qlist *prior)
{
	cm_err err = CM_OK;

	for (size_t i = 0; prior != NULL && i < prior->n && err == CM_OK; i++) {
		const qgen_question *q = &prior->items[i];
		if (q->type != QGEN_MCQ)
			continue;
		for (int k = 0; k < QGEN_OPTIONS && err == CM_OK; k++)
			if (q->options[k] != NULL)
				err = qgen_off_usage_add(k == q->answer ? &g->ans : &g->dis,
				                         q->options[k]);
	}
	return err;
}

static cm_err
generate(const qgen_chunk *chunks, size_t nchunks, const qgen_offline_req *req,
         const qgen_qlist *prior, qgen_qlist *out)
{
	qgen_off_gen g;
	size_t       cap = 0, *order = NULL, no = 0, skip;
	const char **texts = NULL;
	int         *passage = NULL, made_mcq = 0, made_open = 0, made = 0;
	cm_err       err = CM_OK;

	if (req == NULL || out == NULL || (nchunks > 0 && chunks == NULL) || req->count < 1 ||
	    req->count > QGEN_MAX_COUNT || req->variant < 0 ||
	    (req->types & (QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN))) == 0)
		return CM_EINVAL;
	memset(&g, 0, sizeof(g));
	g.req = req;
	g.cap = req->count / 5 > 1 ? req->count / 5 : 1; /* a fifth of the set */
	for (size_t i = 0; i < nchunks && err == CM_OK; i++)
		if (chunks[i].text != NULL)
			err = split_chunk(&chunks[i], (int)i, &g.ss, &g.ns, &cap);
	if (err != CM_OK || g.ns == 0)
		goto out;
	if ((texts = malloc(g.ns * sizeof(*texts))) == NULL ||
	    (passage = malloc(g.ns * sizeof(*passage))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g.ns; i++) {
		texts[i] = g.ss[i].text;
		passage[i] = g.ss[i].passage;
	}
	if ((err = qgen_terms_build(texts, passage, g.ns, (int)nchunks, &g.terms)) != CM_OK ||
	    (err = seed_usage(&g, prior)) != CM_OK)
		goto out;
	mark_topic(g.ss, g.ns, req->topic);
	rank_sentences(&g);
	if ((err = visit_order(&g, &order, &no)) != CM_OK)
		goto out;

	skip = (size_t)req->variant * (size_t)req->count;
	for (size_t k = skip; k < no && made < req->count && err == CM_OK; k++) {
		size_t             si = order[k];
		qgen_off_sentence *s;
		bool               both = (req->types & QGEN_TYPE_MASK(QGEN_MCQ)) != 0 &&
		            (req->types & QGEN_TYPE_MASK(QGEN_OPEN)) != 0;
		bool want_open =
		    (req->types & QGEN_TYPE_MASK(QGEN_MCQ)) == 0 || (both && made_open < made_mcq);
		bool ok = false;

		if (g.ss[si].used)
			continue;
		if (want_open)
			si = qgen_off_open_sentence(&g, si);
		s = &g.ss[si];
		err = want_open ? qgen_off_open(&g, s, out, &ok) : qgen_off_mcq(&g, s, out, &ok);
		if (err == CM_OK && !ok && both && !want_open) {
			s = &g.ss[si = qgen_off_open_sentence(&g, si)];
			err = qgen_off_open(&g, s, out, &ok);
			want_open = ok;
		}
		if (ok) {
			s->used = true;
			made++;
			if (want_open)
				made_open++;
			else
				made_mcq++;
		}
	}
out:
	for (size_t i = 0; i < g.ns; i++)
		free(g.ss[i].text);
	free(g.ss);
	free(texts);
	free(passage);
	free(order);
	qgen_terms_fini(&g.terms);
	qgen_off_usage_fini(&g.dis);
	qgen_off_usage_fini(&g.ans);
	return err;
}

cm_err
qgen_offline_generate(const qgen_chunk *chunks, size_t nchunks, const qgen_offline_req *req,
                      qgen_qlist *out)
{
	return generate(chunks, nchunks, req, NULL, out);
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
		/* The set so far counts toward each distractor's fifth of the set. */
		if (generate(chunks, nchunks, &rq, chosen, &cand) == CM_OK) {
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
