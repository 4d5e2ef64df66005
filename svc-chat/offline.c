/*
 * offline.c - extractive answers from the passages alone (see offline.h).
 *
 * DESIGN: sentences end at '.', '!' or '?' followed by white space, or at an empty line; a
 * sentence's score is the number of distinct question words it contains (a case-insensitive
 * substring test, so "cycle" also finds "cycles"). Quadratic in the small sizes involved
 * (a passage of a few KB, at most 16 words) and nothing else.
 */
#include <stdbool.h>
#include <string.h>

#include "offline.h"

#define QWORDS_MAX 16
#define QWORD_LEN 32

typedef struct qwords {
	int  n;
	char w[QWORDS_MAX][QWORD_LEN + 1];
} qwords;

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static void
question_words(const char *q, qwords *out)
{
	memset(out, 0, sizeof(*out));
	while (*q != '\0' && out->n < QWORDS_MAX) {
		size_t n = 0;
		char   w[QWORD_LEN + 1];
		bool   dup = false;
		while (*q != '\0' && !alnum((unsigned char)*q))
			q++;
		while (*q != '\0' && alnum((unsigned char)*q)) {
			if (n < QWORD_LEN)
				w[n++] = (char)lower((unsigned char)*q);
			q++;
		}
		w[n] = '\0';
		if (n < 4)
			continue;
		for (int i = 0; i < out->n; i++)
			dup = dup || strcmp(out->w[i], w) == 0;
		if (!dup)
			memcpy(out->w[out->n++], w, n + 1);
	}
}

/* Case-insensitive: does s[0..len) contain w? */
static bool
contains(const char *s, size_t len, const char *w)
{
	size_t wl = strlen(w);

	for (size_t i = 0; i + wl <= len; i++) {
		size_t k = 0;
		while (k < wl && lower((unsigned char)s[i + k]) == w[k])
			k++;
		if (k == wl)
			return true;
	}
	return false;
}

static size_t
sentence_end(const char *s, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if ((s[i] == '.' || s[i] == '!' || s[i] == '?') &&
		    (i + 1 == len || s[i + 1] == ' ' || s[i + 1] == '\n'))
			return i + 1;
		if (s[i] == '\n' && i + 1 < len && s[i + 1] == '\n')
			return i;
	}
	return len;
}

/* Start of the best sentence of a passage, and its score. */
static size_t
best_sentence(const chat_passage *p, const qwords *q, int *score)
{
	size_t best = 0, at = 0;

	*score = 0;
	while (at < p->len) {
		size_t end = sentence_end(p->text, p->len, at);
		int    sc = 0;
		for (int i = 0; i < q->n; i++)
			sc += contains(p->text + at, end - at, q->w[i]);
		if (sc > *score) {
			*score = sc;
			best = at;
		}
		at = end;
		while (at < p->len && (p->text[at] == ' ' || p->text[at] == '\n'))
			at++;
	}
	return best;
}

/* Appends text[from..] collapsed to single spaces, up to max bytes, ending at a word. */
static cm_err
append_quote(cm_buf *b, const char *text, size_t len, size_t from, size_t max)
{
	char   q[CHAT_OFFLINE_QUOTE + 8];
	size_t n = 0, i = from;
	bool   space = false, cut = false;

	for (; i < len; i++) {
		char c = text[i] == '\n' || text[i] == '\t' || text[i] == '\r' ? ' ' : text[i];
		if (c == ' ') {
			space = n > 0;
			continue;
		}
		if (n + (space ? 2 : 1) > max) {
			cut = true;
			break;
		}
		if (space)
			q[n++] = ' ';
		space = false;
		q[n++] = c;
	}
	if (cut) { /* back to the end of a word, and to a whole character */
		size_t k = n;
		while (k > 0 && q[k - 1] != ' ')
			k--;
		n = k > 0 ? k - 1 : chat_utf8_floor(q, n);
	}
	if (cm_buf_append(b, "> \"", 3) != CM_OK || cm_buf_append(b, q, n) != CM_OK)
		return CM_ETOOBIG;
	return cm_buf_appends(b, cut ? " ...\"" : "\"");
}

cm_err
chat_offline_answer(const chat_passages *ps, const char *question, cm_buf *out)
{
	qwords q;
	int    score[CHAT_MAX_PASSAGES], order[CHAT_MAX_PASSAGES], n = 0, best = 0;
	size_t at[CHAT_MAX_PASSAGES];
	cm_err err;

	if (ps->n == 0 || ps->from_start)
		return cm_buf_appends(out, CHAT_OFFLINE_NONE);
	question_words(question, &q);
	for (int i = 0; i < ps->n; i++) {
		at[i] = best_sentence(&ps->v[i], &q, &score[i]);
		if (score[i] > best)
			best = score[i];
	}
	/* The passages sharing the most words first (stable: the search's order among equals);
	 * when none shares a word (the search matched by prefix or spelling), its order. */
	for (int sc = best; sc >= (best > 0 ? 1 : 0) && n < CHAT_OFFLINE_QUOTES; sc--)
		for (int i = 0; i < ps->n && n < CHAT_OFFLINE_QUOTES; i++)
			if (score[i] == sc)
				order[n++] = i;
	if ((err = cm_buf_appends(out, CHAT_OFFLINE_INTRO "\n\n")) != CM_OK)
		return err;
	for (int k = 0; k < n; k++) {
		const chat_passage *p = &ps->v[order[k]];
		if ((err = append_quote(out, p->text, p->len, at[order[k]], CHAT_OFFLINE_QUOTE)) !=
		        CM_OK ||
		    (err = cm_buf_printf(out, " [p. %d]\n\n", p->page)) != CM_OK)
			return err;
	}
	return CM_OK;
}
