/*
 * doc_terms.c - tokens, their safety, and the document's term table (doc_terms.h).
 *
 * DESIGN. Tokens are the space-separated runs of a sentence; each is judged alone (symbols,
 * shape) and then by its neighbours (a lone operator makes its neighbours a formula; a backtick
 * opens code until the next one). The table is built the way the old ranking was: every
 * occurrence of a candidate becomes a record (key, form, passage), the records are sorted by
 * key and passage, and each run of equal keys is one term: its kind comes from how the document
 * writes it (a lower-case use mid-sentence makes a WORD even if headings capitalise it; only
 * capitalised uses make a NAME), its passage count from the distinct passages of the run.
 * Lookups are binary searches on the key-sorted array.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/util.h"
#include "doc_terms.h"

/* Function words, generic verbs and adjectives, and the words of a document's furniture:
 * sorted (byte order) for bsearch; test_qgen_offline checks the order. */
static const char *const stop[] = {
    "a",           "about",        "above",       "according",
    "accordingly", "across",       "actually",    "add",
    "added",       "adds",         "after",       "again",
    "against",     "all",          "allow",       "allowed",
    "allows",      "almost",       "alone",       "along",
    "already",     "also",         "although",    "always",
    "am",          "among",        "amongst",     "an",
    "and",         "another",      "any",         "anyone",
    "anything",    "anyway",       "anywhere",    "apart",
    "appear",      "appears",      "appropriate", "are",
    "around",      "as",           "aside",       "ask",
    "asked",       "at",           "available",   "away",
    "back",        "based",        "basic",       "be",
    "became",      "because",      "become",      "becomes",
    "been",        "before",       "beforehand",  "begin",
    "beginning",   "behind",       "being",       "below",
    "beside",      "besides",      "best",        "better",
    "between",     "beyond",       "both",        "brief",
    "but",         "by",           "call",        "called",
    "calls",       "came",         "can",         "cannot",
    "cause",       "causes",       "certain",     "certainly",
    "change",      "changed",      "changes",     "chapter",
    "clearly",     "come",         "comes",       "common",
    "complete",    "completely",   "consider",    "considered",
    "contain",     "containing",   "contains",    "corresponding",
    "could",       "currently",    "default",     "described",
    "describes",   "description",  "detail",      "details",
    "did",         "different",    "directly",    "do",
    "does",        "doing",        "done",        "down",
    "due",         "during",       "each",        "easily",
    "easy",        "effect",       "either",      "else",
    "elsewhere",   "enough",       "entire",      "eof",
    "especially",  "etc",          "even",        "ever",
    "every",       "everything",   "exactly",     "example",
    "examples",    "except",       "false",       "far",
    "few",         "figure",       "find",        "first",
    "follow",      "followed",     "following",   "follows",
    "for",         "former",       "found",       "four",
    "from",        "full",         "fully",       "further",
    "furthermore", "general",      "generally",   "get",
    "gets",        "getting",      "give",        "given",
    "gives",       "go",           "goes",        "going",
    "gone",        "good",         "got",         "great",
    "had",         "happen",       "happens",     "hard",
    "has",         "have",         "having",      "he",
    "hence",       "her",          "here",        "hers",
    "herself",     "high",         "him",         "himself",
    "his",         "how",          "however",     "if",
    "important",   "in",           "include",     "included",
    "includes",    "including",    "indeed",      "instead",
    "into",        "is",           "it",          "its",
    "itself",      "just",         "keep",        "kept",
    "know",        "known",        "large",       "last",
    "later",       "least",        "less",        "let",
    "lets",        "like",         "likely",      "little",
    "long",        "look",         "low",         "made",
    "main",        "mainly",       "make",        "makes",
    "making",      "many",         "may",         "maybe",
    "me",          "mean",         "means",       "meant",
    "might",       "more",         "moreover",    "most",
    "mostly",      "much",         "must",        "my",
    "myself",      "name",         "namely",      "near",
    "nearly",      "necessary",    "need",        "needed",
    "needs",       "neither",      "never",       "new",
    "next",        "nine",         "no",          "none",
    "nor",         "normally",     "not",         "note",
    "noted",       "nothing",      "now",         "null",
    "number",      "obtain",       "obtained",    "of",
    "off",         "often",        "old",         "on",
    "once",        "one",          "ones",        "only",
    "onto",        "or",           "order",       "other",
    "others",      "otherwise",    "our",         "ours",
    "out",         "over",         "overall",     "own",
    "page",        "part",         "particular",  "particularly",
    "per",         "perhaps",      "place",       "please",
    "point",       "possible",     "possibly",    "present",
    "previous",    "previously",   "probably",    "provide",
    "provided",    "provides",     "put",         "quite",
    "rather",      "really",       "regarding",   "related",
    "relatively",  "respectively", "result",      "results",
    "right",       "said",         "same",        "second",
    "section",     "see",          "seem",        "seems",
    "seen",        "self",         "sent",        "set",
    "sets",        "seven",        "several",     "shall",
    "she",         "should",       "show",        "shown",
    "shows",       "side",         "similar",     "similarly",
    "simple",      "simply",       "since",       "six",
    "small",       "so",           "some",        "something",
    "sometimes",   "somewhat",     "soon",        "specific",
    "specified",   "specify",      "such",        "suitable",
    "sure",        "table",        "take",        "taken",
    "takes",       "tell",         "ten",         "than",
    "that",        "the",          "their",       "theirs",
    "them",        "themselves",   "then",        "there",
    "thereby",     "therefore",    "these",       "they",
    "thing",       "things",       "third",       "this",
    "those",       "though",       "three",       "through",
    "throughout",  "thus",         "to",          "together",
    "too",         "took",         "toward",      "towards",
    "true",        "try",          "turn",        "twice",
    "two",         "type",         "typical",     "typically",
    "under",       "unless",       "unlike",      "until",
    "up",          "upon",         "us",          "use",
    "used",        "useful",       "uses",        "using",
    "usual",       "usually",      "value",       "values",
    "various",     "very",         "via",         "want",
    "was",         "way",          "ways",        "we",
    "well",        "were",         "what",        "whatever",
    "when",        "whenever",     "where",       "whereas",
    "whether",     "which",        "while",       "who",
    "whole",       "whom",         "whose",       "why",
    "will",        "with",         "within",      "without",
    "word",        "words",        "work",        "works",
    "would",       "yes",          "yet",         "you",
    "your",        "yours",        "yourself",    "zero",
};

#define NSTOP (sizeof(stop) / sizeof(stop[0]))

/* Words in -ly, -ed and -ing that are nouns, not adverbs or participles. */
static const char *const keep_suffixed[] = {
    "anomaly", "assembly", "binding", "building", "ceiling", "clothing", "encoding", "evening",
    "family",  "hundred",  "meaning", "morning",  "padding", "painting", "reply",    "ring",
    "setting", "spring",   "string",  "supply",   "thing",   "thread",   "warning"};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool
qgen_stop_word(const char *lower)
{
	return bsearch(&lower, stop, NSTOP, sizeof(stop[0]), cmp_str) != NULL;
}

const char *const *
qgen_stop_list(size_t *n)
{
	*n = NSTOP;
	return stop;
}

/* ---- tokens ---------------------------------------------------------------------------------- */

/* A three-byte UTF-8 punctuation mark: E2 80 xx (dashes, quotes, bullets) or E2 88 92 (minus). */
static bool
punct3(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return u[0] == 0xE2 && ((u[1] == 0x80 && u[2] != '\0') || (u[1] == 0x88 && u[2] == 0x92));
}

static bool
lead_punct(const char *p, size_t n, size_t *w)
{
	if (n >= 1 && strchr("\"'(", p[0]) != NULL && p[0] != '\0') {
		*w = 1;
		return true;
	}
	if (n >= 3 && punct3(p) && ((unsigned char)p[2] == 0x9C || (unsigned char)p[2] == 0x98)) {
		*w = 3; /* opening curly quotes */
		return true;
	}
	return false;
}

static bool
trail_punct(const char *p, size_t n, size_t *w)
{
	if (n >= 1 && p[n - 1] != '\0' && strchr(".,;:!?\"')", p[n - 1]) != NULL) {
		*w = 1;
		return true;
	}
	if (n >= 3 && punct3(p + n - 3) &&
	    ((unsigned char)p[n - 1] == 0x9D || (unsigned char)p[n - 1] == 0x99)) {
		*w = 3; /* closing curly quotes */
		return true;
	}
	return false;
}

static bool
has(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, needle, k) == 0)
			return true;
	return false;
}

/* Judges a core p[0..n) alone: its flags (UNSAFE for code shapes). */
static unsigned
judge_core(const char *p, size_t n)
{
	size_t   letters = 0, digits = 0, upper = 0, seps = 0, other = 0;
	unsigned f = 0;

	if (n == 0)
		return 0;
	if (strchr("-+", p[0]) != NULL || (n >= 3 && punct3(p) && (unsigned char)p[2] != 0x99)) {
		/* an option (-l, --login, −p) or a lone operator/dash */
		size_t w = p[0] == '-' || p[0] == '+' ? 1 : 3;
		if (n > w && (isalnum((unsigned char)p[w]) || p[w] == '-'))
			return QGEN_TOK_UNSAFE;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x80) {
			if (i + 3 <= n && punct3(p + i)) {
				/* ’ inside a word is an apostrophe; a dash or minus inside is code
				 * ("delete−char") or a range: no candidate either way */
				if ((unsigned char)p[i + 2] == 0x99 && i > 0 && i + 3 < n) {
					i += 2;
					seps++;
					continue;
				}
				return QGEN_TOK_UNSAFE;
			}
			letters++;
		} else if (isalpha(c)) {
			letters++;
			upper += isupper(c) != 0;
			if (i > 0 && islower((unsigned char)p[i - 1]) && isupper(c))
				return QGEN_TOK_UNSAFE; /* camelCase */
		} else if (isdigit(c)) {
			digits++;
		} else if (strchr("/\\=<>{}[]$`|_#~^*&+;@()", c) != NULL) {
			return QGEN_TOK_UNSAFE;
		} else if (c == '.' || c == ':') {
			bool l = i > 0 && isalpha((unsigned char)p[i - 1]);
			bool r = i + 1 < n && isalpha((unsigned char)p[i + 1]);
			if (l || r || c == ':')
				return QGEN_TOK_UNSAFE; /* file.csv, lower.tail, key:value */
			seps++;
		} else if (c == '-' || c == '\'' || c == ',') {
			seps++;
		} else {
			other++;
		}
	}
	if (other > 0)
		return 0;
	if (letters == 0 && digits > 0 && digits <= 7) {
		/* 42, 4.2, 1,000 (not a version 3.5.0: two separators) */
		if (seps <= 1 && isdigit((unsigned char)p[n - 1]))
			f |= QGEN_TOK_NUMBER;
		return f;
	}
	if (letters > 0 && digits == 0 && memchr(p, ',', n) == NULL) {
		bool ok = p[0] != '-' && p[n - 1] != '-' && p[0] != '\'' && p[n - 1] != '\'';
		if (!ok)
			return 0;
		/* Capitals beyond the first letter with lower case beside them: a format or an
		 * identifier ("YYMMDDhhmmss", "XMLHttp"), unless a plural acronym ("PDFs"). */
		if (upper >= 2 && upper < letters && !(upper + 1 == letters && p[n - 1] == 's'))
			return QGEN_TOK_UNSAFE;
		f |= QGEN_TOK_WORD;
		if (isupper((unsigned char)p[0]))
			f |= QGEN_TOK_CAPS;
		if (upper >= 2 && upper == letters)
			f |= QGEN_TOK_ALLCAPS;
	}
	return f;
}

/* Whether token t is a lone operator: symbols only, no letter or digit. */
static bool
operator_tok(const char *s, size_t a, size_t b)
{
	if (b == a || b - a > 3)
		return false;
	if (b - a == 3 && s[a] != '\0' && (unsigned char)s[a] == 0xE2 &&
	    (unsigned char)s[a + 1] == 0x88 && (unsigned char)s[a + 2] == 0x92)
		return true; /* a lone minus sign */
	for (size_t i = a; i < b; i++)
		if (strchr("=<>+-*/^~|&%!", s[i]) == NULL || s[i] == '\0')
			return false;
	return true;
}

size_t
qgen_tokenize(const char *s, qgen_tok *out, size_t max)
{
	size_t n = 0, i = 0;
	bool   tick = false;
	bool   oper[QGEN_TOK_MAX];

	if (max > QGEN_TOK_MAX)
		max = QGEN_TOK_MAX;
	while (s[i] != '\0' && n < max) {
		size_t a, b, ca, cb, w;
		bool   inside = tick, possessive = false;

		while (s[i] == ' ')
			i++;
		if (s[i] == '\0')
			break;
		for (a = i; s[i] != '\0' && s[i] != ' '; i++)
			;
		b = i;
		for (size_t k = a; k < b; k++)
			if (s[k] == '`')
				tick = !tick;
		ca = a;
		cb = b;
		while (cb > ca && trail_punct(s + ca, cb - ca, &w))
			cb -= w;
		while (ca < cb && lead_punct(s + ca, cb - ca, &w))
			ca += w;
		if (cb - ca > 2 && s[cb - 1] == 's' && s[cb - 2] == '\'') {
			cb -= 2;
			possessive = true;
		} else if (cb - ca > 4 && s[cb - 1] == 's' && punct3(s + cb - 4) &&
		           (unsigned char)s[cb - 2] == 0x99) {
			cb -= 4;
			possessive = true;
		}
		out[n].at = ca;
		out[n].len = cb - ca;
		out[n].flags = judge_core(s + ca, cb - ca);
		oper[n] = operator_tok(s, a, b);
		if (inside || oper[n] || has(s + a, b - a, "://") || has(s + a, b - a, "www.") ||
		    memchr(s + a, '@', b - a) != NULL || memchr(s + a, '`', b - a) != NULL)
			out[n].flags |= QGEN_TOK_UNSAFE;
		/* after "x:", "(...)" or "e.g." a capital starts a clause, not a name */
		if (n == 0 || (a >= 2 && strchr(":).", s[a - 2]) != NULL))
			out[n].flags |= QGEN_TOK_FIRST;
		if (cb == b && !possessive)
			out[n].flags |= QGEN_TOK_JOINED;
		n++;
	}
	/* A call's arguments: the tokens after an unsafe token's unclosed "(" up to its ")". */
	for (size_t k = 0, depth = 0; k < n; k++) {
		const char *p = s + out[k].at;
		size_t      open = 0, close = 0, len = out[k].len;
		if (depth > 0)
			out[k].flags |= QGEN_TOK_UNSAFE;
		for (size_t j = 0; j < len; j++) {
			open += p[j] == '(';
			close += p[j] == ')';
		}
		if ((out[k].flags & QGEN_TOK_UNSAFE) != 0 && open > close)
			depth += open - close;
		else if (depth > 0 && close > open)
			depth = close - open >= depth ? 0 : depth - (close - open);
		else if (depth > 0 && k + 1 < n && s[out[k].at + len] == ')')
			depth--;
	}
	/* A formula: the neighbours of a lone operator ("r - 1", "x > 0"). */
	for (size_t k = 0; k < n; k++)
		if (oper[k]) {
			if (k > 0)
				out[k - 1].flags |= QGEN_TOK_UNSAFE;
			if (k + 1 < n)
				out[k + 1].flags |= QGEN_TOK_UNSAFE;
		}
	/* A capital right after code starts a clause too: PDF text often runs a prototype or an
	 * option into its description without a full stop ("int f (int x) Creates a ..."). */
	for (size_t k = 1; k < n; k++)
		if ((out[k - 1].flags & QGEN_TOK_UNSAFE) != 0)
			out[k].flags |= QGEN_TOK_FIRST;
	return n;
}

bool
qgen_code_sentence(const char *s, const qgen_tok *t, size_t nt)
{
	size_t unsafe = 0, sym = 0;

	for (size_t i = 0; i < nt; i++)
		unsafe += (t[i].flags & QGEN_TOK_UNSAFE) != 0;
	for (; *s != '\0'; s++)
		sym += strchr("{}[]<>=$|\\`;", *s) != NULL;
	return nt == 0 || unsafe * 3 > nt || sym >= 4;
}

/* ---- candidates ------------------------------------------------------------------------------ */

static void
lower_into(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] =
		    (char)((unsigned char)src[i] < 0x80 ? tolower((unsigned char)src[i]) : src[i]);
	dst[n] = '\0';
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A lower-case key that may be a WORD: 4+ letters, no stop word, adverb, participle or gerund. */
static bool
word_ok(const char *key)
{
	size_t letters = 0, n = strlen(key);

	for (size_t i = 0; i < n; i++)
		letters += isalpha((unsigned char)key[i]) || (unsigned char)key[i] >= 0x80;
	if (letters < 4 || qgen_stop_word(key))
		return false;
	if ((n >= 5 && ends_with(key, "ly")) || (n >= 6 && ends_with(key, "ed")) ||
	    (n >= 4 && ends_with(key, "ing"))) {
		for (size_t i = 0; i < sizeof(keep_suffixed) / sizeof(keep_suffixed[0]); i++)
			if (strcmp(key, keep_suffixed[i]) == 0)
				return true;
		return false;
	}
	return true;
}

static bool
plain_word(const qgen_tok *t)
{
	return (t->flags & (QGEN_TOK_UNSAFE | QGEN_TOK_WORD)) == QGEN_TOK_WORD &&
	       t->len <= QGEN_TERM_MAX;
}

bool
qgen_tok_candidate(const char *s, const qgen_tok *t, size_t nt, size_t i, bool phrase,
                   qgen_term_kind *kind, size_t *ntok, char key[QGEN_TERM_MAX + 1])
{
	const qgen_tok *x = &t[i];

	*ntok = 1;
	if ((x->flags & QGEN_TOK_UNSAFE) != 0 || x->len == 0 || x->len > QGEN_TERM_MAX)
		return false;
	lower_into(key, s + x->at, x->len);
	if ((x->flags & QGEN_TOK_NUMBER) != 0) {
		/* A year or a number of 2+ characters, or one followed by its unit. */
		bool unit = (x->flags & QGEN_TOK_JOINED) != 0 && i + 1 < nt &&
		            plain_word(&t[i + 1]) && (t[i + 1].flags & QGEN_TOK_CAPS) == 0;
		if (unit) {
			char u[QGEN_TERM_MAX + 1];
			lower_into(u, s + t[i + 1].at, t[i + 1].len);
			unit = !qgen_stop_word(u);
		}
		*kind = QGEN_TERM_NUMBER;
		return x->len >= 2 || unit;
	}
	if (!plain_word(x))
		return false;
	if ((x->flags & QGEN_TOK_ALLCAPS) != 0) {
		*kind = QGEN_TERM_ACRONYM;
		return x->len <= 6 && !qgen_stop_word(key);
	}
	if ((x->flags & (QGEN_TOK_CAPS | QGEN_TOK_FIRST)) == QGEN_TOK_CAPS) {
		size_t n = x->len;
		/* Adjacent capitalised words are one name ("Milton Friedman"), up to three. */
		*kind = QGEN_TERM_NAME;
		if (qgen_stop_word(key) || x->len < 3)
			return false;
		while (phrase && *ntok < 3 && i + *ntok < nt &&
		       (t[i + *ntok - 1].flags & QGEN_TOK_JOINED) != 0 &&
		       s[t[i + *ntok].at - 1] == ' ' && /* nothing before it: not “Endorsements */
		       plain_word(&t[i + *ntok]) &&
		       (t[i + *ntok].flags & (QGEN_TOK_CAPS | QGEN_TOK_ALLCAPS)) == QGEN_TOK_CAPS) {
			const qgen_tok *y = &t[i + *ntok];
			size_t          total = y->at + y->len - x->at;
			char            w[QGEN_TERM_MAX + 1];
			lower_into(w, s + y->at, y->len);
			if (total > QGEN_TERM_MAX || qgen_stop_word(w))
				break;
			n = total;
			(*ntok)++;
		}
		lower_into(key, s + x->at, n);
		return true;
	}
	/* Lower case (or sentence-initial: the table decides its kind). */
	*kind = QGEN_TERM_WORD;
	if (!word_ok(key))
		return false;
	if (phrase && (x->flags & QGEN_TOK_JOINED) != 0 && i + 1 < nt && plain_word(&t[i + 1]) &&
	    (t[i + 1].flags & QGEN_TOK_CAPS) == 0) {
		const qgen_tok *y = &t[i + 1];
		size_t          total = y->at + y->len - x->at;
		char            w[QGEN_TERM_MAX + 1];
		lower_into(w, s + y->at, y->len);
		if (total > QGEN_TERM_MAX || !word_ok(w))
			return false;
		lower_into(key, s + x->at, total);
		*kind = QGEN_TERM_PHRASE;
		*ntok = 2;
		return true;
	}
	return !phrase;
}

/* ---- the table ------------------------------------------------------------------------------- */

typedef enum form { F_LOWER, F_CAPS, F_ALLCAPS, F_FIRST, F_NUM, F_PHRASE } form;

typedef struct record {
	char        key[QGEN_TERM_MAX + 1];
	const char *src; /* the text as written, inside its sentence */
	size_t      len;
	int         passage;
	form        f;
	bool        nounish;
} record;

typedef struct records {
	record *v;
	size_t  n, cap;
} records;

static bool
determiner(const char *s, const qgen_tok *t)
{
	/* Not "of" or "that" ("of computing", "that executes"). A few French, German and Spanish
	 * articles, so that a document in those languages has nouns too. */
	static const char *const det[] = {"a",    "an",    "any",  "das", "del",  "der",   "des",
	                                  "die",  "du",    "each", "ein", "eine", "el",    "every",
	                                  "her",  "his",   "its",  "la",  "las",  "le",    "les",
	                                  "los",  "my",    "no",   "our", "the",  "their", "these",
	                                  "this", "those", "un",   "una", "une",  "your"};
	char                     w[8];

	if (t->len >= sizeof(w) || (t->flags & QGEN_TOK_JOINED) == 0)
		return false;
	lower_into(w, s + t->at, t->len);
	for (size_t i = 0; i < sizeof(det) / sizeof(det[0]); i++)
		if (strcmp(w, det[i]) == 0)
			return true;
	return false;
}

static cm_err
add_record(records *r, const char *key, const char *src, size_t len, int passage, form f,
           bool nounish)
{
	if (r->n == r->cap) {
		size_t  c = r->cap == 0 ? 4096 : r->cap * 2;
		record *p = realloc(r->v, c * sizeof(*p));
		if (p == NULL)
			return CM_ENOMEM;
		r->v = p;
		r->cap = c;
	}
	cm_strlcpy(r->v[r->n].key, key, sizeof(r->v[r->n].key));
	r->v[r->n].src = src;
	r->v[r->n].len = len;
	r->v[r->n].passage = passage;
	r->v[r->n].f = f;
	r->v[r->n].nounish = nounish;
	r->n++;
	return CM_OK;
}

static cm_err
records_of(const char *s, int passage, records *r)
{
	qgen_tok t[QGEN_TOK_MAX];
	size_t   nt = qgen_tokenize(s, t, QGEN_TOK_MAX);
	cm_err   err = CM_OK;

	if (qgen_code_sentence(s, t, nt))
		return CM_OK;
	for (size_t i = 0; i < nt && err == CM_OK; i++) {
		char           key[QGEN_TERM_MAX + 1];
		qgen_term_kind kind;
		size_t         ntok;
		bool           noun = i > 0 && determiner(s, &t[i - 1]);
		form           f;

		if (qgen_tok_candidate(s, t, nt, i, false, &kind, &ntok, key)) {
			if (kind == QGEN_TERM_NUMBER)
				f = F_NUM;
			else if (kind == QGEN_TERM_ACRONYM)
				f = F_ALLCAPS;
			else if (kind == QGEN_TERM_NAME)
				f = F_CAPS;
			else
				f = (t[i].flags & QGEN_TOK_CAPS) != 0 ? F_FIRST : F_LOWER;
			err = add_record(r, key, s + t[i].at, t[i].len, passage, f, noun);
		}
		if (err == CM_OK && qgen_tok_candidate(s, t, nt, i, true, &kind, &ntok, key) &&
		    ntok >= 2) {
			const qgen_tok *e = &t[i + ntok - 1];
			err = add_record(r, key, s + t[i].at, e->at + e->len - t[i].at, passage,
			                 kind == QGEN_TERM_NAME ? F_CAPS : F_PHRASE, noun);
		}
	}
	return err;
}

static int
cmp_record(const void *a, const void *b)
{
	const record *x = a, *y = b;
	int           c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	if (x->passage != y->passage)
		return x->passage < y->passage ? -1 : 1;
	return (int)x->f - (int)y->f;
}

/* One run of records with the same key: a term, or false when the run makes none. */
static bool
merge_run(const record *v, size_t n, int passages, qgen_term *out)
{
	bool lower = false, caps = false, allcaps = false, num = false, phrase = false;
	int  df = 0, last = -1, nounish = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		lower |= v[i].f == F_LOWER;
		caps |= v[i].f == F_CAPS;
		allcaps |= v[i].f == F_ALLCAPS;
		num |= v[i].f == F_NUM;
		phrase |= v[i].f == F_PHRASE;
		nounish += v[i].nounish;
		if (v[i].passage != last)
			df++;
		last = v[i].passage;
	}
	cm_strlcpy(out->key, v[0].key, sizeof(out->key));
	cm_strlcpy(out->text, v[0].key, sizeof(out->text));
	if (num) {
		out->kind = QGEN_TERM_NUMBER;
	} else if (phrase) {
		out->kind = QGEN_TERM_PHRASE;
		if (n < 3)
			return false; /* a phrase only when the document repeats it */
	} else if (lower) {
		out->kind = QGEN_TERM_WORD;
	} else if (caps || allcaps) {
		out->kind = caps ? QGEN_TERM_NAME : QGEN_TERM_ACRONYM;
		for (size_t i = 0; i < n; i++)
			if (v[i].f == F_CAPS || v[i].f == F_ALLCAPS) {
				size_t len = v[i].len < QGEN_TERM_MAX ? v[i].len : QGEN_TERM_MAX;
				memcpy(out->text, v[i].src, len);
				out->text[len] = '\0';
				break;
			}
	} else {
		out->kind = QGEN_TERM_WORD; /* only ever sentence-initial */
	}
	out->count = (int)n;
	out->df = df;
	out->nounish = nounish;
	out->generic = passages >= 8 && df * 10 > passages * 3;
	return true;
}

cm_err
qgen_terms_build(const char *const *sentences, const int *passage, size_t n, int passages,
                 qgen_terms *t)
{
	records r = {NULL, 0, 0};
	cm_err  err = CM_OK;
	size_t  k = 0;

	memset(t, 0, sizeof(*t));
	t->passages = passages;
	for (size_t i = 0; i < n && err == CM_OK; i++)
		err = records_of(sentences[i], passage[i], &r);
	if (err != CM_OK || r.n == 0)
		goto out;
	qsort(r.v, r.n, sizeof(*r.v), cmp_record);
	if ((t->v = malloc(r.n * sizeof(*t->v))) == NULL) {
		err = CM_ENOMEM;
		goto out;
	}
	for (size_t a = 0, b; a < r.n; a = b) {
		for (b = a + 1; b < r.n && strcmp(r.v[b].key, r.v[a].key) == 0; b++)
			;
		if (merge_run(r.v + a, b - a, passages, &t->v[k]))
			k++;
	}
	t->n = k;
out:
	free(r.v);
	if (err != CM_OK)
		qgen_terms_fini(t);
	return err;
}

void
qgen_terms_fini(qgen_terms *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static int
cmp_term_key(const void *key, const void *elem)
{
	return strcmp(key, ((const qgen_term *)elem)->key);
}

const qgen_term *
qgen_terms_find(const qgen_terms *t, const char *key)
{
	if (t->n == 0)
		return NULL;
	return bsearch(key, t->v, t->n, sizeof(*t->v), cmp_term_key);
}
