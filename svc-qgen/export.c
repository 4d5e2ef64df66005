/*
 * export.c - question sets as Moodle GIFT, IMS QTI 2.1 (zip) and Anki CSV (see export.h).
 *
 * DESIGN. Every format writes through `wr`, a cm_buf with a sticky error: the first failed
 * append is kept and later writes do nothing, so the renderers read like templates and check
 * once at the end, where qgen_export_render truncates out to its starting length. All text
 * goes through text_next(), which decodes UTF-8 (invalid bytes -> U+FFFD), folds CRLF and CR to
 * '\n' and drops characters no format can carry (C0 controls but tab/newline, DEL, and
 * U+FFFE/U+FFFF, which XML 1.0 forbids); each format then escapes only its own specials.
 *
 * GIFT: each question is a block "::Qn::[plain]text {...}" and blocks are separated by one blank
 * line. [plain] makes Moodle show the text as typed, so "<tag>" in a code sample stays text; an
 * answer or feedback that itself starts with '[' gets its own [plain], or a leading "[html]"
 * in it would switch that part's format.
 * ~ = # { } : and backslash get a backslash, a newline is the two characters "\n", so the text
 * never holds a raw line break and cannot end a block or start a "//" comment line. An mcq is
 * "=right ~wrong...", an open question an essay "{}" (what Moodle makes of an empty answer part).
 * The explanation (and the reference answer of an open question) is GENERAL feedback "####":
 * per-answer "#feedback" would reach only the students who picked that answer, and the
 * explanation is about the right one, so everyone should see it. The passage the answer was
 * checked against (source.quote) goes on a "// source, page N: ..." comment line before its
 * question: evidence for whoever reviews the bank, never shown to a student.
 *
 * QTI: a content package, stored (not deflated) zip entries written in one pass: each file is
 * rendered into a scratch buffer first, so its CRC and size go into the local header and no
 * data descriptor is needed; the central directory grows in a second buffer and is appended at
 * the end. Fixed DOS timestamps make an export byte-for-byte reproducible. No zip64: over
 * 65535 entries or 4 GiB is CM_ETOOBIG. Items score mcq with a correctResponse; the explanation
 * or reference answer is a modalFeedback shown after the attempt, followed by the source
 * passage ("Source, page N: ..."). Open items are scored by hand.
 *
 * CSV: RFC 4180 (CRLF records, fields quoted when they hold a comma, quote, CR or LF, quotes
 * doubled), UTF-8 without BOM, columns front,back,tags,source (source: "p. N: <quote>", or
 * empty; Anki leaves a column no field is mapped to alone). It starts with Anki's header lines
 * "#separator:comma", "#html:false", "#tags column:3", "#columns:..." rather than no header:
 * without them Anki guesses the separator from the first line (a question full of semicolons
 * can fool it) and may guess HTML, which would turn "<b>" in a code sample into markup;
 * html:false makes Anki escape the text and keep our newlines. Anki reads a record starting
 * with '#' as a comment, so a field starting with '#' is quoted too.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "export.h"

#define MAX_OPTIONS 26 /* lettered A..Z */
#define GIFT_SPECIAL "~=#{}:\\"
#define TXT(s) ((s) != NULL ? (s) : "")

/* 2020-01-01 00:00:00 in DOS format, the time of every zip entry. */
#define ZIP_DOS_DATE ((uint16_t)(((2020 - 1980) << 9) | (1 << 5) | 1))
#define ZIP_DOS_TIME ((uint16_t)0)
#define ZIP_VERSION 10 /* 1.0: stored entries need nothing newer */

#define QTI_ITEM_HREF "items/Q%zu.xml"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define QTI_NS                                                                                     \
	"xmlns=\"http://www.imsglobal.org/xsd/imsqti_v2p1\" "                                      \
	"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "                                 \
	"xsi:schemaLocation=\"http://www.imsglobal.org/xsd/imsqti_v2p1 "                           \
	"http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd\""

/* ---- writing with a sticky error ------------------------------------------------------------ */

typedef struct wr {
	cm_buf *b;
	cm_err  err;
} wr;

static void
put(wr *w, const void *p, size_t n)
{
	if (w->err == CM_OK && n > 0)
		w->err = cm_buf_append(w->b, p, n);
}

static void
put_str(wr *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_fmt(wr *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put_fmt(wr *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err != CM_OK)
		return;
	va_start(ap, fmt);
	w->err = cm_buf_vprintf(w->b, fmt, ap);
	va_end(ap);
}

static void
put_u16(wr *w, uint16_t v)
{
	unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};

	put(w, b, sizeof(b));
}

static void
put_u32(wr *w, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};

	put(w, b, sizeof(b));
}

/* Appends a code point (a valid scalar value) as UTF-8. */
static void
put_cp(wr *w, uint32_t cp)
{
	unsigned char b[4];
	size_t        n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	put(w, b, n);
}

/* Moves a scratch writer's error to w, then empties the scratch buffer for the next use. */
static void
take_err(wr *w, wr *scratch)
{
	if (w->err == CM_OK)
		w->err = scratch->err;
	scratch->err = CM_OK;
	cm_buf_reset(scratch->b);
}

/* ---- text ----------------------------------------------------------------------------------- */

/* One code point from u + *i (not at NUL). Malformed, overlong, surrogate: U+FFFD, one byte. */
static uint32_t
utf8_decode(const unsigned char *u, size_t *i)
{
	unsigned char c = u[*i];
	uint32_t      cp, min;
	size_t        n, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1, cp = c & 0x1Fu, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2, cp = c & 0x0Fu, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3, cp = c & 0x07u, min = 0x10000;
	} else {
		(*i)++;
		return 0xFFFD;
	}
	/* The NUL terminator is no continuation byte, so this never reads past the string. */
	for (k = 1; k <= n; k++) {
		if ((u[*i + k] & 0xC0) != 0x80) {
			(*i)++;
			return 0xFFFD;
		}
		cp = (cp << 6) | (u[*i + k] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
		(*i)++;
		return 0xFFFD;
	}
	*i += n + 1;
	return cp;
}

/* The next character of s at *i, 0 at the end, cleaned as the DESIGN note says. */
static uint32_t
text_next(const char *s, size_t *i)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t             cp;

	for (;;) {
		if (u[*i] == '\0')
			return 0;
		cp = utf8_decode(u, i);
		if (cp == '\r') {
			if (u[*i] == '\n')
				(*i)++;
			return '\n';
		}
		if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7F || cp == 0xFFFE ||
		    cp == 0xFFFF)
			continue;
		return cp;
	}
}

/* The cleaned text without escaping (CSV fields are built from it, then quoted as a whole). */
static void
plain_text(wr *w, const char *s)
{
	size_t   i = 0;
	uint32_t cp;

	s = TXT(s);
	while ((cp = text_next(s, &i)) != 0)
		put_cp(w, cp);
}

static bool
is_ascii_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
has_text(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static bool
is_mcq(const Qgen__Question *q)
{
	return strcmp(TXT(q->type), "mcq") == 0;
}

/* Only questions whose answer can be written correctly are exported (export.h). */
static cm_err
check_set(const Qgen__QuestionSet *set)
{
	for (size_t i = 0; i < set->n_questions; i++) {
		const Qgen__Question *q = set->questions[i];

		if (q == NULL)
			return CM_EINVAL;
		if (is_mcq(q)) {
			if (q->n_options < 2 || q->n_options > MAX_OPTIONS || q->answer_index < 0 ||
			    (size_t)q->answer_index >= q->n_options)
				return CM_EINVAL;
		} else if (strcmp(TXT(q->type), "open") != 0) {
			return CM_EINVAL;
		}
	}
	return CM_OK;
}

/* ---- GIFT ----------------------------------------------------------------------------------- */

static void
gift_text(wr *w, const char *s)
{
	size_t   i = 0;
	uint32_t cp;

	s = TXT(s);
	while ((cp = text_next(s, &i)) != 0) {
		if (cp == '\n') {
			put_str(w, "\\n");
			continue;
		}
		if (cp < 0x80 && strchr(GIFT_SPECIAL, (int)cp) != NULL)
			put(w, "\\", 1);
		put_cp(w, cp);
	}
}

/* "// source, page N: <quote>": a comment line, so every newline of the quote becomes a space. */
static void
gift_source(wr *w, const Qgen__Question *q)
{
	size_t   i = 0;
	uint32_t cp;

	if (!has_text(q->quote))
		return;
	put_fmt(w, "// source, page %d: ", (int)q->page);
	while ((cp = text_next(q->quote, &i)) != 0)
		put_cp(w, cp == '\n' ? ' ' : cp);
	put_str(w, "\n");
}

/* GIFT reads a leading "[html]", "[markdown]"... of an answer or of feedback as that part's
 * format (even after spaces); "[plain]" first keeps such a text plain, as the question's is. */
static void
gift_plain_guard(wr *w, const char *s)
{
	size_t   i = 0;
	uint32_t cp;

	s = TXT(s);
	while ((cp = text_next(s, &i)) == ' ' || cp == '\t' || cp == '\n')
		;
	if (cp == '[')
		put_str(w, "[plain]");
}

static void
render_gift(wr *w, const Qgen__QuestionSet *set)
{
	for (size_t i = 0; i < set->n_questions; i++) {
		const Qgen__Question *q = set->questions[i];

		if (i > 0)
			put_str(w, "\n");
		gift_source(w, q);
		put_fmt(w, "::Q%zu::[plain]", i + 1);
		gift_text(w, q->text);
		if (is_mcq(q)) {
			put_str(w, " {\n");
			for (size_t j = 0; j < q->n_options; j++) {
				put_str(w, (size_t)q->answer_index == j ? "\t=" : "\t~");
				gift_plain_guard(w, q->options[j]);
				gift_text(w, q->options[j]);
				put_str(w, "\n");
			}
			if (has_text(q->explanation)) {
				put_str(w, "\t####");
				gift_plain_guard(w, q->explanation);
				gift_text(w, q->explanation);
				put_str(w, "\n");
			}
			put_str(w, "}\n");
		} else if (has_text(q->reference) || has_text(q->explanation)) {
			put_str(w, " {\n\t####");
			gift_plain_guard(w, has_text(q->reference) ? q->reference : q->explanation);
			gift_text(w, q->reference);
			if (has_text(q->reference) && has_text(q->explanation))
				put_str(w, "\\n\\n");
			gift_text(w, q->explanation);
			put_str(w, "\n}\n");
		} else {
			put_str(w, " {}\n");
		}
	}
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* Writes the scratch buffer f as one field and empties it. */
static void
csv_field(wr *w, wr *f)
{
	const char *s = f->b->data != NULL ? f->b->data : "";
	size_t      n = f->b->len;
	const char *q;

	if (f->err == CM_OK) {
		if (n > 0 && (s[0] == '#' || strpbrk(s, ",\"\r\n") != NULL)) {
			put(w, "\"", 1);
			while ((q = memchr(s, '"', n)) != NULL) {
				put(w, s, (size_t)(q - s) + 1);
				put(w, "\"", 1);
				n -= (size_t)(q - s) + 1;
				s = q + 1;
			}
			put(w, s, n);
			put(w, "\"", 1);
		} else {
			put(w, s, n);
		}
	}
	take_err(w, f);
}

/* An Anki tag: no spaces (they separate tags) and, to need no quoting, no CSV specials. */
static void
csv_tag(wr *w, const char *s)
{
	put(w, " ", 1);
	for (s = TXT(s); *s != '\0'; s++) {
		bool ok = is_ascii_alnum(*s) || *s == '-' || *s == '_' || *s == ':';

		put(w, ok ? s : "_", 1);
	}
}

static void
render_csv(wr *w, const Qgen__QuestionSet *set)
{
	cm_buf fb;
	wr     f = {&fb, CM_OK};

	cm_buf_init(&fb, w->b->max);
	put_str(w, "#separator:comma\r\n#html:false\r\n#tags column:3\r\n"
	           "#columns:Front,Back,Tags,Source\r\n");
	for (size_t i = 0; i < set->n_questions && w->err == CM_OK; i++) {
		const Qgen__Question *q = set->questions[i];
		bool                  mcq = is_mcq(q);

		plain_text(&f, q->text);
		for (size_t j = 0; mcq && j < q->n_options; j++) {
			put_fmt(&f, "\n%c) ", 'A' + (int)j);
			plain_text(&f, q->options[j]);
		}
		csv_field(w, &f);
		put(w, ",", 1);

		if (mcq) {
			put_fmt(&f, "%c) ", 'A' + q->answer_index);
			plain_text(&f, q->options[q->answer_index]);
		} else {
			plain_text(&f, q->reference);
		}
		if (has_text(q->explanation)) {
			if (fb.len > 0)
				put_str(&f, "\n\n");
			plain_text(&f, q->explanation);
		}
		csv_field(w, &f);
		put(w, ",", 1);

		put_str(w, mcq ? "mcq" : "open");
		if (has_text(q->difficulty))
			csv_tag(w, q->difficulty);
		put(w, ",", 1);

		if (has_text(q->quote)) {
			put_fmt(&f, "p. %d: ", (int)q->page);
			plain_text(&f, q->quote);
		}
		csv_field(w, &f);
		put_str(w, "\r\n");
	}
	cm_buf_fini(&fb);
}

/* ---- QTI: XML ------------------------------------------------------------------------------ */

/* Fixed parts of an item. Scoring: full marks when the response is the correctResponse. */
static const char QTI_SCORE_DECL[] =
    "<outcomeDeclaration identifier=\"SCORE\" cardinality=\"single\" baseType=\"float\">"
    "<defaultValue><value>0</value></defaultValue></outcomeDeclaration>\n";
static const char QTI_FEEDBACK_DECL[] =
    "<outcomeDeclaration identifier=\"FEEDBACK\" cardinality=\"single\" "
    "baseType=\"identifier\"/>\n";
static const char QTI_MATCH_TEMPLATE[] =
    "<responseProcessing template=\"http://www.imsglobal.org/question/qti_v2p1/rptemplates/"
    "match_correct\"/>\n";
/* What match_correct does, spelled out, because the template cannot also set FEEDBACK. */
static const char QTI_MATCH_RULE[] =
    "<responseCondition><responseIf><match><variable identifier=\"RESPONSE\"/>"
    "<correct identifier=\"RESPONSE\"/></match>"
    "<setOutcomeValue identifier=\"SCORE\"><baseValue baseType=\"float\">1</baseValue>"
    "</setOutcomeValue></responseIf><responseElse>"
    "<setOutcomeValue identifier=\"SCORE\"><baseValue baseType=\"float\">0</baseValue>"
    "</setOutcomeValue></responseElse></responseCondition>\n";
static const char QTI_SHOW_FEEDBACK[] =
    "<setOutcomeValue identifier=\"FEEDBACK\"><baseValue baseType=\"identifier\">EXPLANATION"
    "</baseValue></setOutcomeValue>\n";

/* Escapes s for element content (newlines become <br/> when br) or attribute values. */
static void
xml_text(wr *w, const char *s, bool br)
{
	size_t   i = 0;
	uint32_t cp;

	s = TXT(s);
	while ((cp = text_next(s, &i)) != 0) {
		switch (cp) {
		case '&':
			put_str(w, "&amp;");
			break;
		case '<':
			put_str(w, "&lt;");
			break;
		case '>':
			put_str(w, "&gt;");
			break;
		case '"':
			put_str(w, "&quot;");
			break;
		case '\'':
			put_str(w, "&apos;");
			break;
		case '\n':
			put_str(w, br ? "<br/>" : "&#10;");
			break;
		case '\t':
			put_str(w, br ? "\t" : "&#9;");
			break;
		default:
			put_cp(w, cp);
		}
	}
}

static void
xml_para(wr *w, const char *s)
{
	put_str(w, "<p>");
	xml_text(w, s, true);
	put_str(w, "</p>\n");
}

static void
qti_item(wr *w, const Qgen__Question *q, size_t n)
{
	bool mcq = is_mcq(q);
	bool fb =
	    has_text(q->explanation) || (!mcq && has_text(q->reference)) || has_text(q->quote);

	put_str(w, XML_DECL "<assessmentItem " QTI_NS);
	put_fmt(w, " identifier=\"Q%zu\" title=\"Question %zu\" label=\"", n, n);
	xml_text(w, q->id, false);
	put_str(w, "\" adaptive=\"false\" timeDependent=\"false\">\n"
	           "<responseDeclaration identifier=\"RESPONSE\" cardinality=\"single\" ");
	if (mcq)
		put_fmt(w,
		        "baseType=\"identifier\">\n<correctResponse><value>%c</value>"
		        "</correctResponse>\n</responseDeclaration>\n",
		        'A' + q->answer_index);
	else
		put_str(w, "baseType=\"string\"/>\n");
	put_str(w, QTI_SCORE_DECL);
	if (fb)
		put_str(w, QTI_FEEDBACK_DECL);

	put_str(w, "<itemBody>\n");
	xml_para(w, q->text);
	if (mcq) {
		put_str(w, "<choiceInteraction responseIdentifier=\"RESPONSE\" shuffle=\"false\" "
		           "maxChoices=\"1\">\n");
		for (size_t j = 0; j < q->n_options; j++) {
			put_fmt(w, "<simpleChoice identifier=\"%c\">", 'A' + (int)j);
			xml_text(w, q->options[j], true);
			put_str(w, "</simpleChoice>\n");
		}
		put_str(w, "</choiceInteraction>\n");
	} else {
		put_str(w, "<extendedTextInteraction responseIdentifier=\"RESPONSE\"/>\n");
	}
	put_str(w, "</itemBody>\n");

	if (mcq && !fb)
		put_str(w, QTI_MATCH_TEMPLATE);
	if (fb) {
		put_str(w, "<responseProcessing>\n");
		if (mcq)
			put_str(w, QTI_MATCH_RULE);
		put_str(w, QTI_SHOW_FEEDBACK);
		put_str(w, "</responseProcessing>\n<modalFeedback outcomeIdentifier=\"FEEDBACK\" "
		           "identifier=\"EXPLANATION\" showHide=\"show\">\n");
		if (!mcq && has_text(q->reference))
			xml_para(w, q->reference);
		if (has_text(q->explanation))
			xml_para(w, q->explanation);
		if (has_text(q->quote)) {
			put_fmt(w, "<p>Source, page %d: ", (int)q->page);
			xml_text(w, q->quote, true);
			put_str(w, "</p>\n");
		}
		put_str(w, "</modalFeedback>\n");
	}
	put_str(w, "</assessmentItem>\n");
}

static void
qti_test(wr *w, const Qgen__QuestionSet *set)
{
	put_str(w, XML_DECL "<assessmentTest " QTI_NS " identifier=\"TEST\" title=\"");
	xml_text(w, has_text(set->topic) ? set->topic : "Questions", false);
	put_str(w, "\">\n<testPart identifier=\"PART1\" navigationMode=\"nonlinear\" "
	           "submissionMode=\"individual\">\n<assessmentSection identifier=\"SECTION1\" "
	           "title=\"Questions\" visible=\"true\">\n");
	for (size_t i = 1; i <= set->n_questions; i++)
		put_fmt(w, "<assessmentItemRef identifier=\"Q%zu\" href=\"" QTI_ITEM_HREF "\"/>\n",
		        i, i);
	put_str(w, "</assessmentSection>\n</testPart>\n</assessmentTest>\n");
}

static void
qti_manifest(wr *w, const Qgen__QuestionSet *set)
{
	put_str(w, XML_DECL "<manifest xmlns=\"http://www.imsglobal.org/xsd/imscp_v1p1\" "
	                    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
	                    "xsi:schemaLocation=\"http://www.imsglobal.org/xsd/imscp_v1p1 "
	                    "http://www.imsglobal.org/xsd/imscp_v1p1.xsd\" identifier=\"MANIFEST_");
	/* An XML ID: the prefix starts it with a letter, only UUID characters follow. */
	for (const char *p = TXT(set->id); *p != '\0'; p++)
		if (is_ascii_alnum(*p) || *p == '-')
			put(w, p, 1);
	put_str(w, "\">\n<metadata><schema>QTIv2.1 Package</schema>"
	           "<schemaversion>1.0.0</schemaversion></metadata>\n<organizations/>\n"
	           "<resources>\n<resource identifier=\"RES_TEST\" type=\"imsqti_test_xmlv2p1\" "
	           "href=\"test.xml\"><file href=\"test.xml\"/>");
	for (size_t i = 1; i <= set->n_questions; i++)
		put_fmt(w, "<dependency identifierref=\"RES_Q%zu\"/>", i);
	put_str(w, "</resource>\n");
	for (size_t i = 1; i <= set->n_questions; i++)
		put_fmt(w,
		        "<resource identifier=\"RES_Q%zu\" type=\"imsqti_item_xmlv2p1\" "
		        "href=\"" QTI_ITEM_HREF "\"><file href=\"" QTI_ITEM_HREF
		        "\"/></resource>\n",
		        i, i, i);
	put_str(w, "</resources>\n</manifest>\n");
}

/* ---- QTI: zip ------------------------------------------------------------------------------- */

typedef struct zip_w {
	wr    *w;     /* the archive is appended here */
	size_t start; /* w's length where the archive begins: zip offsets count from there */
	cm_buf cdb;   /* the central directory, appended by zip_finish */
	wr     cd;
	size_t count;
} zip_w;

static void
zip_init(zip_w *z, wr *w)
{
	z->w = w;
	z->start = w->b->len;
	cm_buf_init(&z->cdb, w->b->max);
	z->cd.b = &z->cdb;
	z->cd.err = CM_OK;
	z->count = 0;
}

/* Adds the scratch buffer f as the stored entry `name` (ASCII), then empties f. */
static void
zip_add(zip_w *z, const char *name, wr *f)
{
	wr         *w = z->w;
	size_t      len = f->b->len, off = w->b->len - z->start, nlen = strlen(name);
	const char *data = f->b->data;
	uint32_t    crc;

	if (w->err == CM_OK)
		w->err = f->err;
	if (w->err == CM_OK && (len > UINT32_MAX || off > UINT32_MAX || z->count >= UINT16_MAX))
		w->err = CM_ETOOBIG;
	if (w->err != CM_OK)
		goto out;
	crc = (uint32_t)crc32(0L, (const Bytef *)data, (uInt)len);

	put_u32(w, 0x04034b50); /* local file header */
	put_u16(w, ZIP_VERSION);
	put_u16(w, 0); /* flags */
	put_u16(w, 0); /* method: stored */
	put_u16(w, ZIP_DOS_TIME);
	put_u16(w, ZIP_DOS_DATE);
	put_u32(w, crc);
	put_u32(w, (uint32_t)len); /* compressed size */
	put_u32(w, (uint32_t)len);
	put_u16(w, (uint16_t)nlen);
	put_u16(w, 0); /* extra field length */
	put(w, name, nlen);
	put(w, data, len);

	put_u32(&z->cd, 0x02014b50);  /* central directory header */
	put_u16(&z->cd, ZIP_VERSION); /* made by: MS-DOS host, no attributes to interpret */
	put_u16(&z->cd, ZIP_VERSION);
	put_u16(&z->cd, 0);
	put_u16(&z->cd, 0);
	put_u16(&z->cd, ZIP_DOS_TIME);
	put_u16(&z->cd, ZIP_DOS_DATE);
	put_u32(&z->cd, crc);
	put_u32(&z->cd, (uint32_t)len);
	put_u32(&z->cd, (uint32_t)len);
	put_u16(&z->cd, (uint16_t)nlen);
	put_u16(&z->cd, 0); /* extra */
	put_u16(&z->cd, 0); /* comment */
	put_u16(&z->cd, 0); /* disk number */
	put_u16(&z->cd, 0); /* internal attributes */
	put_u32(&z->cd, 0); /* external attributes */
	put_u32(&z->cd, (uint32_t)off);
	put(&z->cd, name, nlen);
	z->count++;
out:
	take_err(w, f);
}

static void
zip_finish(zip_w *z)
{
	wr    *w = z->w;
	size_t off = w->b->len - z->start;

	if (w->err == CM_OK)
		w->err = z->cd.err;
	if (w->err == CM_OK && (off > UINT32_MAX || z->cdb.len > UINT32_MAX))
		w->err = CM_ETOOBIG;
	if (w->err != CM_OK)
		return;
	put(w, z->cdb.data, z->cdb.len);
	put_u32(w, 0x06054b50); /* end of central directory */
	put_u16(w, 0);
	put_u16(w, 0);
	put_u16(w, (uint16_t)z->count);
	put_u16(w, (uint16_t)z->count);
	put_u32(w, (uint32_t)z->cdb.len);
	put_u32(w, (uint32_t)off);
	put_u16(w, 0); /* comment length */
}

static void
render_qti(wr *w, const Qgen__QuestionSet *set)
{
	cm_buf fb;
	wr     f = {&fb, CM_OK};
	zip_w  z;
	char   name[40];

	cm_buf_init(&fb, w->b->max);
	zip_init(&z, w);
	qti_manifest(&f, set);
	zip_add(&z, "imsmanifest.xml", &f);
	qti_test(&f, set);
	zip_add(&z, "test.xml", &f);
	for (size_t i = 0; i < set->n_questions && w->err == CM_OK; i++) {
		qti_item(&f, set->questions[i], i + 1);
		snprintf(name, sizeof(name), QTI_ITEM_HREF, i + 1);
		zip_add(&z, name, &f);
	}
	zip_finish(&z);
	cm_buf_fini(&z.cdb);
	cm_buf_fini(&fb);
}

/* ---- API ------------------------------------------------------------------------------------ */

bool
qgen_export_format_parse(const char *s, qgen_export_format *out)
{
	if (s == NULL)
		return false;
	if (strcasecmp(s, "gift") == 0)
		*out = QGEN_EXPORT_GIFT;
	else if (strcasecmp(s, "qti") == 0)
		*out = QGEN_EXPORT_QTI;
	else if (strcasecmp(s, "csv") == 0)
		*out = QGEN_EXPORT_CSV;
	else
		return false;
	return true;
}

cm_err
qgen_export_render(const Qgen__QuestionSet *set, qgen_export_format f, cm_buf *out,
                   const char **content_type, const char **ext)
{
	wr          w = {out, CM_OK};
	size_t      start;
	const char *ct = NULL, *x = NULL;

	if (set == NULL || out == NULL || content_type == NULL || ext == NULL)
		return CM_EINVAL;
	start = out->len;
	w.err = check_set(set);
	if (w.err == CM_OK) {
		switch (f) {
		case QGEN_EXPORT_GIFT:
			/* .txt: Moodle's importer picks GIFT by the chosen format, not the name. */
			render_gift(&w, set);
			ct = "text/plain; charset=utf-8", x = "txt";
			break;
		case QGEN_EXPORT_QTI:
			render_qti(&w, set);
			ct = "application/zip", x = "zip";
			break;
		case QGEN_EXPORT_CSV:
			render_csv(&w, set);
			ct = "text/csv; charset=utf-8", x = "csv";
			break;
		default:
			w.err = CM_EINVAL;
		}
	}
	if (w.err != CM_OK) {
		/* Appends never touch bytes before start, so cutting back restores out. */
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		return w.err;
	}
	*content_type = ct;
	*ext = x;
	return CM_OK;
}
