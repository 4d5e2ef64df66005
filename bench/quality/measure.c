/*
 * measure.c - one question set's figures (measure.h says each rule).
 *
 * DESIGN. Everything works on normalised text with a space at both ends, so "is this phrase on
 * the page" is one strstr of " a b " and needs no tokenizer; pages are normalised once per
 * document. The blank classes and the most used distractor come from offline_survey.h, the
 * offline integration test's own judge, so the report and the test cannot drift apart.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../test/integration/offline_survey.h"
#include "measure.h"

#define QR_WORDS 96 /* content words kept per question for the duplicate check */
#define QR_WORD_LEN 32
#define QR_NORM 8192 /* bytes of a normalised question, option or reference */

typedef struct qr_words {
	int  n;
	char w[QR_WORDS][QR_WORD_LEN];
} qr_words;

double
qr_pct(int part, int whole)
{
	return whole > 0 ? 100.0 * part / whole : 0.0;
}

int
qr_key_max_share(const qr_figures *f)
{
	int top = 0, all = 0;

	for (int k = 0; k < 4; k++) {
		all += f->keys[k];
		if (f->keys[k] > top)
			top = f->keys[k];
	}
	return all > 0 ? (100 * top + all - 1) / all : 0;
}

/* Bytes to skip at p when it starts a UTF-8 separator (general punctuation U+2000..U+206F, the
 * minus sign groff sets for '-', no-break space, guillemets), 0 otherwise. A soft hyphen (U+00AD)
 * is -1: dropped, no space. */
static int
utf8_separator(const unsigned char *p)
{
	if (p[0] == 0xE2 && (p[1] == 0x80 || p[1] == 0x81) && p[2] != '\0')
		return 3;
	if (p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92)
		return 3;
	if (p[0] == 0xC2 && p[1] == 0xAD)
		return -1;
	if (p[0] == 0xC2 && (p[1] == 0xA0 || p[1] == 0xAB || p[1] == 0xBB))
		return 2;
	return 0;
}

void
qr_normalize(const char *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t               o = 0;
	bool                 space = true;

	if (outlen < 3) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	out[o++] = ' ';
	while (*p != '\0' && o + 2 < outlen) {
		int sep = *p >= 0x80 ? utf8_separator(p) : 0;
		if (sep < 0) {
			p += 2;
			continue;
		}
		if (*p == '-' && p[1] == '\n' && (const char *)p > s && isalpha(p[-1]) &&
		    islower(p[2])) {
			p += 2; /* "distri-\nbution" is one word */
			continue;
		}
		if (sep == 0 && (isalnum(*p) || *p >= 0x80)) {
			out[o++] = (char)tolower(*p);
			space = false;
		} else if (!space) {
			out[o++] = ' ';
			space = true;
		}
		p += sep > 0 ? (size_t)sep : 1;
	}
	if (!space)
		out[o++] = ' ';
	out[o] = '\0';
}

int
qr_pages_init(qr_pages *p, const char *const *texts, int npages)
{
	p->npages = npages;
	p->norm = calloc((size_t)(npages > 0 ? npages : 1), sizeof(*p->norm));
	if (p->norm == NULL)
		return -1;
	for (int i = 0; i < npages; i++) {
		size_t n = 2 * strlen(texts[i]) + 3;
		if ((p->norm[i] = malloc(n)) == NULL)
			return -1;
		qr_normalize(texts[i], p->norm[i], n);
	}
	return 0;
}

void
qr_pages_fini(qr_pages *p)
{
	for (int i = 0; p->norm != NULL && i < p->npages; i++)
		free(p->norm[i]);
	free(p->norm);
	p->norm = NULL;
}

/* The cited page with the first QR_NEXT_PAGE_BYTES of the next one after it (a sentence may run
 * over the page's end). Caller frees; NULL when out of memory. */
static char *
page_window(const qr_pages *p, int page)
{
	const char *cur = p->norm[page - 1];
	const char *next = page < p->npages ? p->norm[page] + 1 : "";
	size_t      nc = strlen(cur), nn = strlen(next);
	char       *w;

	if (nn > QR_NEXT_PAGE_BYTES)
		for (nn = QR_NEXT_PAGE_BYTES; nn > 0 && next[nn - 1] != ' '; nn--)
			;
	if ((w = malloc(nc + nn + 1)) == NULL)
		return NULL;
	memcpy(w, cur, nc);
	memcpy(w + nc, next, nn);
	w[nc + nn] = '\0';
	return w;
}

/* Content words of normalised text n: 3+ bytes, not a function word (offline_survey.h). */
static void
content_words(const char *n, qr_words *cw)
{
	cw->n = 0;
	for (const char *a = n; *a != '\0' && cw->n < QR_WORDS;) {
		size_t len;
		while (*a == ' ')
			a++;
		len = strcspn(a, " ");
		if (len >= 3 && len < QR_WORD_LEN) {
			memcpy(cw->w[cw->n], a, len);
			cw->w[cw->n][len] = '\0';
			if (!survey_is_function_word(cw->w[cw->n])) {
				bool seen = false;
				for (int i = 0; i < cw->n && !seen; i++)
					seen = strcmp(cw->w[i], cw->w[cw->n]) == 0;
				if (!seen)
					cw->n++;
			}
		}
		a += len;
	}
}

static double
jaccard(const qr_words *a, const qr_words *b)
{
	int both = 0;

	if (a->n + b->n == 0)
		return 0.0;
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			if (strcmp(a->w[i], b->w[j]) == 0) {
				both++;
				break;
			}
	return (double)both / (a->n + b->n - both);
}

/* The last (from_end) or first k words of normalised n into out, with a space at each end. */
static void
edge_words(const char *n, int k, bool from_end, char *out, size_t outlen)
{
	size_t len = strlen(n), a = 0, z = len;
	int    seen = 0;

	if (from_end) {
		for (a = len; a-- > 0;)
			if (n[a] != ' ' && (a == 0 || n[a - 1] == ' ') && ++seen == k)
				break;
		if (seen < k)
			a = 0;
	} else {
		for (z = 0; z < len; z++)
			if (n[z] == ' ' && z > 0 && n[z - 1] != ' ' && ++seen == k)
				break;
	}
	snprintf(out, outlen, " %.*s ", (int)(z - a), n + a);
}

/* mcq: the answer on the page and, for a blank, the blank's context with the answer put back. */
static bool
mcq_grounded(const char *text, const char *answer, const char *page, const char *window)
{
	static char na[QR_NORM], nb[QR_NORM], nz[QR_NORM], before[QR_NORM], after[QR_NORM];
	static char raw[4 * QR_NORM], phrase[4 * QR_NORM];
	const char *b = strstr(text, "_____"), *lq, *rq;

	qr_normalize(answer, na, sizeof(na));
	if (strcmp(na, " ") == 0 || strstr(page, na) == NULL)
		return false;
	if (b == NULL)
		return true;
	for (lq = b; lq > text && lq[-1] != '"'; lq--)
		;
	for (rq = b + 5; *rq == '_'; rq++)
		;
	snprintf(raw, sizeof(raw), "%.*s", (int)(b - lq), lq);
	qr_normalize(raw, nb, sizeof(nb));
	snprintf(raw, sizeof(raw), "%.*s", (int)strcspn(rq, "\""), rq);
	qr_normalize(raw, nz, sizeof(nz));
	edge_words(nb, QR_CONTEXT_WORDS, true, before, sizeof(before));
	edge_words(nz, QR_CONTEXT_WORDS, false, after, sizeof(after));
	snprintf(raw, sizeof(raw), "%s %s %s", before, na, after);
	qr_normalize(raw, phrase, sizeof(phrase));
	return strstr(window, phrase) != NULL;
}

/* open: enough of the reference's content words among the window's words. */
static bool
open_grounded(const char *reference, const char *window)
{
	static char     n[QR_NORM];
	static qr_words cw;
	char            w[QR_WORD_LEN + 2];
	int             found = 0;

	qr_normalize(reference, n, sizeof(n));
	content_words(n, &cw);
	if (cw.n == 0)
		return strcmp(n, " ") != 0 && strstr(window, n) != NULL;
	for (int i = 0; i < cw.n; i++) {
		snprintf(w, sizeof(w), " %s ", cw.w[i]);
		if (strstr(window, w) != NULL)
			found++;
	}
	return found >= QR_OPEN_GROUNDED * cw.n;
}

static bool
schema_valid(const Qgen__Question *q, int npages)
{
	static char a[QR_NORM], b[QR_NORM];

	if (q->text == NULL || strlen(q->text) < 10 || q->page < 1 || q->page > npages)
		return false;
	if (strcmp(q->type, "open") == 0)
		return q->reference != NULL && q->reference[0] != '\0';
	if (strcmp(q->type, "mcq") != 0 || q->n_options != 4 || q->answer_index < 0 ||
	    q->answer_index > 3)
		return false;
	for (int i = 0; i < 4; i++) {
		qr_normalize(q->options[i], a, sizeof(a));
		if (strcmp(a, " ") == 0)
			return false;
		for (int j = i + 1; j < 4; j++) {
			qr_normalize(q->options[j], b, sizeof(b));
			if (strcmp(a, b) == 0)
				return false;
		}
	}
	return true;
}

int
qr_measure(const Qgen__QuestionSet *qs, int asked, const qr_pages *p, qr_figures *f)
{
	static survey sv;
	static char   n[QR_NORM];
	size_t        nq = qs->n_questions;
	const char  **opts = calloc(4 * nq + 1, sizeof(*opts));
	int          *ans = calloc(nq + 1, sizeof(*ans)), nm = 0, rc = -1;
	bool         *cited = calloc((size_t)p->npages + 1, sizeof(*cited));
	qr_words     *cw = calloc(nq + 1, sizeof(*cw));

	memset(f, 0, sizeof(*f));
	memset(&sv, 0, sizeof(sv));
	f->asked = asked;
	f->got = (int)nq;
	f->doc_pages = p->npages;
	if (opts == NULL || ans == NULL || cited == NULL || cw == NULL)
		goto out;
	for (size_t i = 0; i < nq; i++) {
		const Qgen__Question *q = qs->questions[i];
		bool                  valid = schema_valid(q, p->npages);
		char                 *window;

		if (!valid)
			continue; /* judged invalid: nothing else of it counts */
		f->valid++;
		if (!cited[q->page]) {
			cited[q->page] = true;
			f->pages_cited++;
		}
		if ((window = page_window(p, q->page)) == NULL)
			goto out;
		if (strcmp(q->type, "mcq") == 0) {
			const char *answer = q->options[q->answer_index];
			survey_mcq(&sv, q->text, (const char *const *)q->options, q->answer_index);
			f->keys[q->answer_index]++;
			for (int k = 0; k < 4; k++)
				opts[4 * nm + k] = q->options[k];
			ans[nm++] = q->answer_index;
			if (mcq_grounded(q->text, answer, p->norm[q->page - 1], window))
				f->grounded++;
			else if (getenv("QUALITY_VERBOSE") != NULL)
				fprintf(stderr, "ungrounded (p. %d): %s [%s]\n", q->page, q->text,
				        answer);
		} else {
			survey_open(&sv, q->text);
			if (open_grounded(q->reference, window))
				f->grounded++;
			else if (getenv("QUALITY_VERBOSE") != NULL)
				fprintf(stderr, "ungrounded (p. %d): %s [%s]\n", q->page, q->text,
				        q->reference);
		}
		free(window);
		qr_normalize(q->text, n, sizeof(n));
		content_words(n, &cw[i]);
		for (size_t j = 0; j < i; j++)
			if (jaccard(&cw[i], &cw[j]) >= QR_DUP_JACCARD) {
				f->duplicates++;
				break;
			}
	}
	survey_distractors(&sv, opts, ans, nm);
	f->mcq = sv.mcq;
	f->open = sv.open;
	f->top_distractor_uses = sv.top_distractor_uses;
	snprintf(f->top_distractor, sizeof(f->top_distractor), "%s", sv.top_distractor);
	f->in_url = sv.in_url;
	f->in_code = sv.in_code;
	f->function_word = sv.function_word;
	f->number = sv.number;
	f->name = sv.name;
	f->term = sv.term;
	f->other =
	    sv.mcq - sv.in_url - sv.in_code - sv.function_word - sv.number - sv.name - sv.term;
	f->open_forms = sv.open_forms;
	rc = 0;
out:
	free(opts);
	free(ans);
	free(cited);
	free(cw);
	return rc;
}
