/*
 * grounding.c - checking a question against the text it cites (grounding.h).
 *
 * DESIGN. Words, not substrings: "cell" must not be found in "cellular", nor "42" in "420",
 * and a model's "Sugars" must be found in "sugar". Text and answer go through the same
 * splitter, which also numbers the text's sentences. The answer's distinct content words
 * become bits (at most 64), each sentence gets the set of those it holds, and a passage of w
 * sentences is the OR of w sets: choosing the best passage is a few popcounts per sentence, so
 * a chunk of a few thousand words is checked in well under a millisecond. The question's own
 * content words get bits the same way, to prefer, among equally good passages, the one the
 * question is about.
 *
 * The quote is cut from the text itself (never rebuilt from normalised words), at word
 * boundaries, with white space collapsed, so it is what the page says.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grounding.h"

#define GW_MAX 40            /* bytes kept of one normalised word */
#define GW_MAX_TEXT 1000000u /* bytes of one text looked at */
#define GW_EPS 1e-9

const qgen_ground_cfg qgen_ground_defaults = {0.6, 2, true};

static const char *const verdict_names[] = {"grounded", "ungrounded", "ambiguous_distractor"};

const char *
qgen_ground_verdict_name(qgen_ground_verdict v)
{
	return (unsigned)v < QGEN_GROUND_NVERDICTS ? verdict_names[v] : "ungrounded";
}

/* ---- words ----------------------------------------------------------------------------------- */

typedef struct gword {
	char     w[GW_MAX + 1]; /* normalised */
	uint32_t start, end;    /* bytes of the source */
	uint32_t sent;          /* sentence number (texts) */
	bool     content;
} gword;

typedef struct gwords {
	gword   *v;
	size_t   n, cap;
	uint32_t nsent;
} gwords;

static const char *const stop_words[] = {
    "a",      "about", "above",     "after",   "again",   "against", "all",     "also",    "am",
    "an",     "and",   "any",       "are",     "as",      "at",      "be",      "because", "been",
    "before", "being", "below",     "between", "both",    "but",     "by",      "can",     "could",
    "did",    "do",    "does",      "doing",   "down",    "during",  "each",    "either",  "else",
    "etc",    "few",   "for",       "from",    "further", "had",     "has",     "have",    "having",
    "he",     "her",   "here",      "hers",    "him",     "his",     "how",     "however", "i",
    "if",     "in",    "into",      "is",      "it",      "its",     "itself",  "just",    "may",
    "me",     "might", "more",      "most",    "must",    "my",      "neither", "no",      "none",
    "nor",    "not",   "nothing",   "of",      "off",     "on",      "once",    "only",    "or",
    "other",  "our",   "out",       "over",    "own",     "per",     "same",    "she",     "should",
    "so",     "some",  "something", "such",    "than",    "that",    "the",     "their",   "them",
    "then",   "there", "these",     "they",    "this",    "those",   "through", "thus",    "to",
    "too",    "under", "until",     "up",      "upon",    "very",    "via",     "was",     "we",
    "were",   "what",  "when",      "where",   "whether", "which",   "while",   "who",     "whom",
    "whose",  "why",   "will",      "with",    "within",  "without", "would",   "yet",     "you",
    "your"};

static bool
stop_word(const char *w)
{
	for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++)
		if (strcmp(w, stop_words[i]) == 0)
			return true;
	return false;
}

/* One code point at s[i]; invalid UTF-8 is U+FFFD of one byte. */
static uint32_t
decode(const unsigned char *s, size_t len, size_t i, size_t *n)
{
	unsigned char c = s[i];
	uint32_t      cp;
	size_t        k;

	*n = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xc2 && c <= 0xdf) {
		k = 1;
		cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 2;
		cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 3;
		cp = c & 0x07u;
	} else {
		return 0xfffd;
	}
	for (size_t j = 1; j <= k; j++) {
		if (i + j >= len || (s[i + j] & 0xc0) != 0x80)
			return 0xfffd;
		cp = (cp << 6) | (s[i + j] & 0x3fu);
	}
	*n = k + 1;
	return cp;
}

/* Letters and digits of any script; not punctuation, symbols or invalid bytes. */
static bool
word_cp(uint32_t cp)
{
	if (cp < 0x80)
		return isalnum((int)cp) != 0;
	if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7 || cp == 0xfffd)
		return false;
	if ((cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x3000 && cp <= 0x303f) ||
	    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff0f) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	return true;
}

/* Latin-1 and Latin Extended-A letters without their diacritics (lower case). */
static const struct {
	uint16_t    lo, hi;
	const char *to;
} folds[] = {
    {0xc0, 0xc5, "a"},   {0xc6, 0xc6, "ae"},   {0xc7, 0xc7, "c"},   {0xc8, 0xcb, "e"},
    {0xcc, 0xcf, "i"},   {0xd0, 0xd0, "d"},    {0xd1, 0xd1, "n"},   {0xd2, 0xd6, "o"},
    {0xd8, 0xd8, "o"},   {0xd9, 0xdc, "u"},    {0xdd, 0xdd, "y"},   {0xde, 0xde, "th"},
    {0xdf, 0xdf, "ss"},  {0xe0, 0xe5, "a"},    {0xe6, 0xe6, "ae"},  {0xe7, 0xe7, "c"},
    {0xe8, 0xeb, "e"},   {0xec, 0xef, "i"},    {0xf0, 0xf0, "d"},   {0xf1, 0xf1, "n"},
    {0xf2, 0xf6, "o"},   {0xf8, 0xf8, "o"},    {0xf9, 0xfc, "u"},   {0xfd, 0xfd, "y"},
    {0xfe, 0xfe, "th"},  {0xff, 0xff, "y"},    {0x100, 0x105, "a"}, {0x106, 0x10d, "c"},
    {0x10e, 0x111, "d"}, {0x112, 0x11b, "e"},  {0x11c, 0x123, "g"}, {0x124, 0x127, "h"},
    {0x128, 0x131, "i"}, {0x132, 0x133, "ij"}, {0x134, 0x135, "j"}, {0x136, 0x138, "k"},
    {0x139, 0x142, "l"}, {0x143, 0x14b, "n"},  {0x14c, 0x151, "o"}, {0x152, 0x153, "oe"},
    {0x154, 0x159, "r"}, {0x15a, 0x161, "s"},  {0x162, 0x167, "t"}, {0x168, 0x173, "u"},
    {0x174, 0x175, "w"}, {0x176, 0x178, "y"},  {0x179, 0x17e, "z"}, {0x17f, 0x17f, "s"},
};

/* Appends the normalised form of cp (raw bytes s[i..i+n)) to w, within GW_MAX. */
static void
put_cp(char *w, size_t *wl, uint32_t cp, const unsigned char *raw, size_t n)
{
	const char *to = NULL;
	char        one[2] = {0, 0};

	if (cp < 0x80) {
		one[0] = (char)tolower((int)cp);
		to = one;
	} else {
		for (size_t k = 0; k < sizeof(folds) / sizeof(folds[0]) && to == NULL; k++)
			if (cp >= folds[k].lo && cp <= folds[k].hi)
				to = folds[k].to;
	}
	if (to != NULL) {
		n = strlen(to);
		raw = (const unsigned char *)to;
	}
	if (*wl + n > GW_MAX)
		return; /* long words keep their first GW_MAX bytes: enough to tell them apart */
	memcpy(w + *wl, raw, n);
	*wl += n;
	w[*wl] = '\0';
}

/* Content or not (on the word as written), then the plural s goes. */
static void
finish_word(gword *g)
{
	size_t n = strlen(g->w);

	g->content = !stop_word(g->w) && (n >= 2 || isdigit((unsigned char)g->w[0]));
	if (n >= 5 && strcmp(g->w + n - 3, "ies") == 0) {
		g->w[n - 3] = 'y';
		g->w[n - 2] = '\0';
	} else if (n >= 4 && g->w[n - 1] == 's' && strchr("siu", g->w[n - 2]) == NULL &&
	           !isdigit((unsigned char)g->w[n - 2])) {
		g->w[n - 1] = '\0';
	}
}

/* A word after which a full stop does not end the sentence: "etc.", "Fig. 3" (single letters,
 * as in "e.g." or "J. Smith", are caught by their length). */
static bool
abbreviation(const unsigned char *w, size_t n)
{
	static const char *const abbrevs[] = {"al",   "approx", "ca",  "cf", "dr",  "etc", "fig",
	                                      "figs", "mr",     "mrs", "ms", "no",  "nos", "p",
	                                      "pp",   "resp",   "sec", "st", "vol", "vs"};

	for (size_t i = 0; i < sizeof(abbrevs) / sizeof(abbrevs[0]); i++)
		if (strlen(abbrevs[i]) == n && strncasecmp((const char *)w, abbrevs[i], n) == 0)
			return true;
	return false;
}

static cm_err
push(gwords *ws, const gword *g)
{
	if (ws->n == ws->cap) {
		size_t cap = ws->cap == 0 ? 64 : ws->cap * 2;
		gword *v = realloc(ws->v, cap * sizeof(*v));
		if (v == NULL)
			return CM_ENOMEM;
		ws->v = v;
		ws->cap = cap;
	}
	ws->v[ws->n++] = *g;
	return CM_OK;
}

/* Bytes of a hyphen that breaks a word at a line end ("-\n", "-\r\n", then spaces) when a
 * letter follows; 0 otherwise. */
static size_t
line_break_hyphen(const unsigned char *s, size_t len, size_t i)
{
	size_t k = i + 1;

	if (k < len && s[k] == '\r')
		k++;
	if (k >= len || s[k] != '\n')
		return 0;
	k++;
	while (k < len && (s[k] == ' ' || s[k] == '\t'))
		k++;
	return k < len && (isalpha(s[k]) || s[k] >= 0xc0) ? k - i : 0;
}

/* Splits text into words and numbers its sentences (grounding.h). */
static cm_err
split(const char *text, size_t len, gwords *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t               i = 0, n;
	uint32_t             sent = 0, cp;
	bool                 stop = false, stop_space = false, any = false, abbrev = false;
	int                  newlines = 0;

	memset(out, 0, sizeof(*out));
	if (len > GW_MAX_TEXT)
		len = GW_MAX_TEXT;
	while (i < len) {
		gword  g;
		size_t wl = 0;
		bool   digits = true;

		cp = decode(s, len, i, &n);
		if (!word_cp(cp)) {
			if (cp == '.' || cp == '!' || cp == '?') {
				stop = cp != '.' || !abbrev;
				stop_space = false;
			} else if (cp == '\n') {
				newlines++;
				stop_space = stop;
			} else if (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\f' ||
			           cp == 0xa0) {
				stop_space = stop;
			} else if (strchr("\"')]", (int)(cp < 0x80 ? cp : 'x')) == NULL &&
			           cp != 0x2019 && cp != 0x201d) {
				stop = false; /* "e.g.," or "3.5-": not an end */
			}
			i += n;
			continue;
		}
		if (any && ((stop && stop_space) || newlines >= 2))
			sent++;
		stop = stop_space = false;
		newlines = 0;
		memset(&g, 0, sizeof(g));
		g.start = (uint32_t)i;
		while (i < len) {
			cp = decode(s, len, i, &n);
			if (word_cp(cp)) {
				put_cp(g.w, &wl, cp, s + i, n);
				digits = digits && cp < 0x80 && isdigit((int)cp);
				i += n;
			} else if ((cp == '.' || cp == ',') && digits && wl > 0 && i + 1 < len &&
			           isdigit(s[i + 1])) {
				if (cp == '.') /* 3.14 is one number; 1,000 is 1000 */
					put_cp(g.w, &wl, '.', s + i, 1);
				i++;
			} else if (cp == '-' && !digits && (n = line_break_hyphen(s, len, i)) > 0) {
				i += n; /* "sup-\nplied" is "supplied", as the offline provider
				           reads it */
			} else {
				break;
			}
		}
		g.end = (uint32_t)i;
		g.sent = sent;
		finish_word(&g);
		if (push(out, &g) != CM_OK)
			return CM_ENOMEM;
		any = true;
		abbrev = g.end - g.start == 1 || abbreviation(s + g.start, g.end - g.start);
	}
	out->nsent = any ? sent + 1 : 0;
	return CM_OK;
}

static bool
has_word(const gwords *ws, const char *w)
{
	for (size_t i = 0; i < ws->n; i++)
		if (strcmp(ws->v[i].w, w) == 0)
			return true;
	return false;
}

/* The distinct content words of ws, at most QGEN_GROUND_MAX_WORDS, as pointers into ws. */
static size_t
distinct(const gwords *ws, const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < ws->n && n < QGEN_GROUND_MAX_WORDS; i++) {
		bool dup = false;
		if (!ws->v[i].content)
			continue;
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(out[k], ws->v[i].w) == 0;
		if (!dup)
			out[n++] = ws->v[i].w;
	}
	return n;
}

/* True when s has white space between its first and last non-space characters. */
static bool
spaced(const char *s)
{
	size_t a = 0, b = strlen(s);

	while (a < b && isspace((unsigned char)s[a]))
		a++;
	while (b > a && isspace((unsigned char)s[b - 1]))
		b--;
	for (size_t i = a; i < b; i++)
		if (isspace((unsigned char)s[i]))
			return true;
	return false;
}

/* ---- passages ------------------------------------------------------------------------------- */

typedef struct passage {
	uint32_t s, w;   /* sentences s .. s+w-1 */
	int      found;  /* answer words in it */
	int      qwords; /* question words in it */
} passage;

/* Per sentence, the bits of words[] it holds. bits has nsent entries. */
static void
mark(const gwords *t, const char *const *words, size_t n, uint64_t *bits)
{
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < n; k++)
			if (strcmp(t->v[i].w, words[k]) == 0)
				bits[t->v[i].sent] |= 1ull << k;
}

/* An answer without content words: where all its words stand adjacent, in order. */
static void
mark_phrase(const gwords *t, const gwords *a, uint64_t *bits)
{
	char   joined[GW_MAX + 1] = "";
	size_t jl = 0;

	/* "non-empty" may stand as "nonempty" in the text (a hyphen joined at a line end) */
	for (size_t k = 0; k < a->n && jl != (size_t)-1; k++) {
		size_t n = strlen(a->v[k].w);
		if (jl + n > GW_MAX) {
			jl = (size_t)-1;
			break;
		}
		memcpy(joined + jl, a->v[k].w, n + 1);
		jl += n;
	}
	for (size_t i = 0; a->n > 0 && i < t->n; i++) {
		size_t k = 0;
		while (k < a->n && i + k < t->n && strcmp(t->v[i + k].w, a->v[k].w) == 0)
			k++;
		if (k == a->n || (a->n > 1 && jl != (size_t)-1 && strcmp(t->v[i].w, joined) == 0))
			bits[t->v[i].sent] |= 1u;
	}
}

static passage
best_passage(const uint64_t *abits, const uint64_t *qbits, uint32_t nsent, int window)
{
	passage best = {0, 1, -1, -1};

	for (uint32_t s = 0; s < nsent; s++) {
		uint64_t a = 0, q = 0;
		for (uint32_t w = 1; w <= (uint32_t)window && s + w <= nsent; w++) {
			passage p;
			a |= abits[s + w - 1];
			q |= qbits[s + w - 1];
			p = (passage){s, w, __builtin_popcountll(a), __builtin_popcountll(q)};
			if (p.found > best.found || (p.found == best.found && p.w < best.w) ||
			    (p.found == best.found && p.w == best.w && p.qwords > best.qwords))
				best = p;
		}
	}
	return best;
}

/* Share of the distractor's own words (not the question's, not the answer's) in the passage;
 * -1 when it has none of its own. */
static double
distractor_share(const char *opt, const gwords *t, const passage *p, const gwords *qw,
                 const gwords *aw, cm_err *err)
{
	gwords dw;
	int    own = 0, found = 0;

	if ((*err = split(opt, strlen(opt), &dw)) != CM_OK) {
		free(dw.v);
		return -1;
	}
	for (size_t i = 0; i < dw.n; i++) {
		bool dup = false;
		if (!dw.v[i].content || has_word(qw, dw.v[i].w) || has_word(aw, dw.v[i].w))
			continue;
		for (size_t k = 0; k < i && !dup; k++)
			dup = strcmp(dw.v[k].w, dw.v[i].w) == 0;
		if (dup)
			continue;
		own++;
		for (size_t k = 0; k < t->n; k++)
			if (t->v[k].sent >= p->s && t->v[k].sent < p->s + p->w &&
			    strcmp(t->v[k].w, dw.v[i].w) == 0) {
				found++;
				break;
			}
	}
	free(dw.v);
	return own == 0 ? -1 : (double)found / own;
}

/* ---- the quote ------------------------------------------------------------------------------- */

/* Copies text[a..b) into out (QGEN_QUOTE_MAX bytes at most), white space collapsed, controls
 * and invalid bytes dropped, cut at a code point. */
static void
copy_quote(const char *text, size_t a, size_t b, char *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t               o = 0, n;
	bool                 space = false;

	for (size_t i = a; i < b; i += n) {
		uint32_t cp = decode(s, b, i, &n);
		if (cp == 0xfffd && n == 1)
			continue;
		if (cp == '-' && i > a && isalpha(s[i - 1]) && line_break_hyphen(s, b, i) > 0) {
			n = line_break_hyphen(s, b, i); /* the word is whole in the quote */
			continue;
		}
		if (cp < 0x20 || cp == ' ' || cp == 0x7f || cp == 0xa0) {
			space = o > 0;
			continue;
		}
		if (o + (space ? 1 : 0) + n > QGEN_QUOTE_MAX)
			break;
		if (space)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, s + i, n);
		o += n;
	}
	out[o] = '\0';
}

/* The passage's words [lo, hi], clipped to QGEN_QUOTE_MAX around the matched words [mlo, mhi]
 * and followed by the sentence's closing punctuation. */
static void
quote(const char *text, size_t len, const gwords *t, const passage *p, const uint64_t *match,
      char *out)
{
	size_t lo = t->n, hi = 0, mlo = t->n, mhi = 0, end;

	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].sent < p->s || t->v[i].sent >= p->s + p->w)
			continue;
		lo = i < lo ? i : lo;
		hi = i;
		if (match[i / 64] & (1ull << (i % 64))) {
			mlo = i < mlo ? i : mlo;
			mhi = i;
		}
	}
	out[0] = '\0';
	if (lo > hi)
		return;
	if (t->v[hi].end - t->v[lo].start > QGEN_QUOTE_MAX && mlo <= mhi) {
		size_t a = mlo, b;
		while (a > lo && t->v[mhi].end - t->v[a - 1].start <= QGEN_QUOTE_MAX * 2 / 3)
			a--;
		b = a;
		while (b < hi && t->v[b + 1].end - t->v[a].start <= QGEN_QUOTE_MAX)
			b++;
		lo = a;
		hi = b;
	}
	end = t->v[hi].end;
	while (end < len && end - t->v[lo].start < QGEN_QUOTE_MAX && strchr(".!?\")'", text[end]) &&
	       text[end] != '\0')
		end++;
	copy_quote(text, t->v[lo].start, end, out);
}

/* The sentence of the passage the question is about - the one holding most of the answer's and
 * the question's words, the first of equals - its bounds, and its first matched word (its start
 * when none matched), into res. */
static void
locate(const gwords *t, const passage *p, const uint64_t *abits, const uint64_t *qbits, size_t nq,
       const uint64_t *match, qgen_ground_result *res)
{
	uint32_t best = p->s;
	int      most = -1;
	size_t   i, lo = t->n, hi = 0;

	for (uint32_t s = p->s; s < p->s + p->w; s++) {
		int n = __builtin_popcountll(abits[s]) + __builtin_popcountll(qbits[s]);

		if (n > most) {
			most = n;
			best = s;
		}
	}
	for (i = 0; i < t->n; i++)
		if (t->v[i].sent == best) {
			lo = i < lo ? i : lo;
			hi = i;
		}
	if (lo > hi)
		return;
	res->stem_share = nq > 0 ? (double)__builtin_popcountll(qbits[best]) / (double)nq : 0;
	res->sent_start = t->v[lo].start;
	res->sent_end = t->v[hi].end;
	res->at = res->sent_start;
	for (i = lo; i <= hi; i++)
		if (match[i / 64] & (1ull << (i % 64))) {
			res->at = t->v[i].start;
			break;
		}
}

/* ---- the check ------------------------------------------------------------------------------ */

cm_err
qgen_ground_text(const qgen_question *q, const char *text, size_t len, const qgen_ground_cfg *cfg,
                 qgen_ground_result *res)
{
	const char *answer = NULL, *aw_list[QGEN_GROUND_MAX_WORDS], *qw_list[QGEN_GROUND_MAX_WORDS];
	gwords      t = {0}, aw = {0}, qw = {0};
	uint64_t   *abits = NULL, *qbits = NULL, *match = NULL;
	size_t      na, nq;
	bool        phrase;
	passage     p;
	int         window = cfg->window < 1                        ? 1
	                     : cfg->window > QGEN_GROUND_MAX_WINDOW ? QGEN_GROUND_MAX_WINDOW
	                                                            : cfg->window;
	cm_err      err;

	memset(res, 0, sizeof(*res));
	res->verdict = QGEN_UNGROUNDED;
	res->distractor = -1;
	if (q->type == QGEN_MCQ && q->answer >= 0 && q->answer < QGEN_OPTIONS)
		answer = q->options[q->answer];
	else if (q->type == QGEN_OPEN)
		answer = q->reference;
	if (answer == NULL || text == NULL)
		return CM_EINVAL;
	if ((err = split(answer, strlen(answer), &aw)) != CM_OK ||
	    (err = split(q->text != NULL ? q->text : "", q->text != NULL ? strlen(q->text) : 0,
	                 &qw)) != CM_OK ||
	    (err = split(text, len, &t)) != CM_OK)
		goto out;
	na = distinct(&aw, aw_list);
	/* "https://x.org/a=b", "r-project": one string of several words, which only counts where
	 * those words stand together */
	phrase = na == 0 || (aw.n > 1 && !spaced(answer));
	nq = distinct(&qw, qw_list);
	if (aw.n == 0 || t.nsent == 0)
		goto out; /* nothing to look for, or nowhere to look */
	if ((abits = calloc(t.nsent, sizeof(*abits))) == NULL ||
	    (qbits = calloc(t.nsent, sizeof(*qbits))) == NULL ||
	    (match = calloc(t.n / 64 + 1, sizeof(*match))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	if (phrase)
		mark_phrase(&t, &aw, abits);
	else
		mark(&t, aw_list, na, abits);
	mark(&t, qw_list, nq, qbits);
	p = best_passage(abits, qbits, t.nsent, window);
	res->overlap = p.found <= 0 ? 0 : (double)p.found / (double)(phrase ? 1 : na);
	if (res->overlap + GW_EPS < cfg->min_overlap || (p.found <= 0 && cfg->min_overlap > 0))
		goto out;
	res->verdict = QGEN_GROUNDED;
	for (size_t i = 0; i < t.n; i++) /* the answer's words, for where to cut the quote */
		if (phrase ? has_word(&aw, t.v[i].w) : (t.v[i].content && has_word(&aw, t.v[i].w)))
			match[i / 64] |= 1ull << (i % 64);
	quote(text, len, &t, &p, match, res->quote);
	locate(&t, &p, abits, qbits, nq, match, res);
	for (int k = 0; q->type == QGEN_MCQ && cfg->ambiguity && k < QGEN_OPTIONS; k++) {
		double share;
		if (k == q->answer || q->options[k] == NULL)
			continue;
		share = distractor_share(q->options[k], &t, &p, &qw, &aw, &err);
		if (err != CM_OK)
			goto out;
		if (share >= 0 && share + GW_EPS >= cfg->min_overlap &&
		    share + GW_EPS >= res->overlap) {
			res->verdict = QGEN_AMBIGUOUS;
			res->distractor = k;
			break;
		}
	}
out:
	free(match);
	free(qbits);
	free(abits);
	free(t.v);
	free(aw.v);
	free(qw.v);
	return err;
}

/* Grounded beats ambiguous beats ungrounded; then the larger overlap. */
static bool
better(const qgen_ground_result *r, const qgen_ground_result *than)
{
	if (r->verdict != than->verdict)
		return r->verdict == QGEN_GROUNDED ||
		       (r->verdict == QGEN_AMBIGUOUS && than->verdict == QGEN_UNGROUNDED);
	return r->overlap > than->overlap;
}

cm_err
qgen_ground_question(qgen_question *q, const qgen_chunk *chunks, size_t n,
                     const qgen_ground_cfg *cfg, qgen_ground_verdict *v)
{
	qgen_ground_result best, r;
	bool               on_page = false, have = false;
	size_t             from = 0; /* the chunk of best */
	cm_err             err;

	*v = QGEN_UNGROUNDED;
	for (size_t i = 0; i < n; i++)
		on_page =
		    on_page || (q->page >= chunks[i].page_first && q->page <= chunks[i].page_last);
	for (size_t i = 0; i < n; i++) {
		if (on_page && (q->page < chunks[i].page_first || q->page > chunks[i].page_last))
			continue;
		err = qgen_ground_text(q, chunks[i].text, chunks[i].len, cfg, &r);
		if (err == CM_EINVAL)
			return CM_OK; /* no answer to check: ungrounded */
		if (err != CM_OK)
			return err;
		if (!have || better(&r, &best)) {
			best = r;
			from = i;
			have = true;
		}
		if (best.verdict == QGEN_GROUNDED && best.overlap >= 1.0)
			break;
	}
	if (!have)
		return CM_OK;
	*v = best.verdict;
	if (best.verdict == QGEN_GROUNDED) {
		char *qt = strdup(best.quote);
		if (qt == NULL)
			return CM_ENOMEM;
		free(q->quote);
		q->quote = qt;
		/* Only where the sentence found is the question's own: a common answer word
		 * ("parameter") is also found in other sentences of the page. */
		if (chunks[from].page_at != NULL && best.stem_share + GW_EPS >= cfg->min_overlap &&
		    (q->page < qgen_chunk_page(&chunks[from], best.sent_start) ||
		     q->page > qgen_chunk_page(&chunks[from], best.sent_end)))
			q->page = qgen_chunk_page(&chunks[from], best.at);
	}
	return CM_OK;
}

cm_err
qgen_ground_list(qgen_qlist *l, const qgen_chunk *chunks, size_t n, const qgen_ground_cfg *cfg,
                 int counts[QGEN_GROUND_NVERDICTS])
{
	size_t kept = 0;
	cm_err err = CM_OK;

	for (size_t i = 0; i < l->n; i++) {
		qgen_ground_verdict v = QGEN_UNGROUNDED;
		if (err == CM_OK)
			err = qgen_ground_question(&l->items[i], chunks, n, cfg, &v);
		if (err != CM_OK) {
			qgen_question_fini(&l->items[i]); /* unchecked: never kept */
			continue;
		}
		counts[v]++;
		if (v == QGEN_GROUNDED)
			l->items[kept++] = l->items[i];
		else
			qgen_question_fini(&l->items[i]);
	}
	l->n = kept;
	return err;
}
