/*
 * test_qgen_export.c - svc-qgen/export: GIFT escaping and answer marks, CSV quoting read back by an
 * RFC 4180 reader, and the QTI zip taken apart (headers, CRCs, central directory, manifest,
 * items) with a small XML well-formedness check.
 *
 * Set QGEN_EXPORT_DUMP=<dir> to also write the sample set as set.txt/set.csv/set.zip there, for a
 * manual look with unzip, python3 zipfile or an importer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "cm/buf.h"
#include "../../svc-qgen/export.h"

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

#include "qset_builder.h"

/* ---- building sets -------------------------------------------------------------------------- */

static void
reset_set(void)
{
	reset_set_topic(NULL);
}

/* A multiple-choice question with its four options spelled out. */
static Qgen__Question *
add_mcq4(const char *text, const char *o0, const char *o1, const char *o2, const char *o3, int ans,
         const char *expl)
{
	const char *const opt[4] = {o0, o1, o2, o3};

	return add_mcq(text, opt, ans, expl);
}

/* Renders into a fresh buffer; the caller frees *out. */
static cm_err
render(qgen_export_format f, char **out, size_t *len)
{
	cm_buf      b;
	const char *ct = NULL, *ext = NULL;
	cm_err      err;

	cm_buf_init(&b, 1u << 24);
	err = qgen_export_render(&set, f, &b, &ct, &ext);
	if (err == CM_OK) {
		assert_non_null(ct);
		assert_non_null(ext);
		assert_int_equal(cm_buf_take(&b, out, len), CM_OK);
	}
	cm_buf_fini(&b);
	return err;
}

static char *
render_ok(qgen_export_format f, size_t *len)
{
	char  *out = NULL;
	size_t n = 0;

	assert_int_equal(render(f, &out, &n), CM_OK);
	if (len != NULL)
		*len = n;
	return out;
}

/* The text as every format sees it: CRLF and CR are newlines. */
static void
norm_nl(const char *s, char *out)
{
	for (; *s != '\0'; s++) {
		if (*s == '\r') {
			*out++ = '\n';
			if (s[1] == '\n')
				s++;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static const char *TRICKY[] = {
    "if (a == b) { x = ~y; } // #1: done \\n C:\\dir\\",
    "line1\r\nline2\rline3\nline4",
    "Gr\xc3\xb6\xc3\x9f"
    "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    "<b>&amp;</b> \"quoted\", 'single', a,b;c",
    "#include <stdio.h>\tint main(void) { return 0; }",
};
#define NTRICKY (sizeof(TRICKY) / sizeof(TRICKY[0]))

/* ---- format names and errors ---------------------------------------------------------------- */

static void
test_format_parse(void **state)
{
	qgen_export_format f = QGEN_EXPORT_CSV;

	(void)state;
	assert_true(qgen_export_format_parse("gift", &f));
	assert_int_equal(f, QGEN_EXPORT_GIFT);
	assert_true(qgen_export_format_parse("QTI", &f));
	assert_int_equal(f, QGEN_EXPORT_QTI);
	assert_true(qgen_export_format_parse("csv", &f));
	assert_int_equal(f, QGEN_EXPORT_CSV);
	f = QGEN_EXPORT_QTI;
	assert_false(qgen_export_format_parse("", &f));
	assert_false(qgen_export_format_parse("gif", &f));
	assert_false(qgen_export_format_parse("csv ", &f));
	assert_false(qgen_export_format_parse("pdf", &f));
	assert_false(qgen_export_format_parse(NULL, &f));
	assert_int_equal(f, QGEN_EXPORT_QTI);
}

static void
test_content_types(void **state)
{
	static const struct {
		qgen_export_format f;
		const char        *ct, *ext;
	} want[] = {
	    {QGEN_EXPORT_GIFT, "text/plain; charset=utf-8", "txt"},
	    {QGEN_EXPORT_QTI, "application/zip", "zip"},
	    {QGEN_EXPORT_CSV, "text/csv; charset=utf-8", "csv"},
	};
	cm_buf      b;
	const char *ct, *ext;

	(void)state;
	reset_set();
	add_open("q", "r", "");
	for (size_t i = 0; i < 3; i++) {
		cm_buf_init(&b, 1u << 20);
		ct = ext = NULL;
		assert_int_equal(qgen_export_render(&set, want[i].f, &b, &ct, &ext), CM_OK);
		assert_string_equal(ct, want[i].ct);
		assert_string_equal(ext, want[i].ext);
		cm_buf_fini(&b);
	}
}

/* A bad question or a full buffer fails the whole render and leaves out as it was. */
static void
expect_fail(qgen_export_format f, size_t max, cm_err want)
{
	cm_buf      b;
	const char *ct = "unset", *ext = "unset";

	cm_buf_init(&b, max);
	assert_int_equal(cm_buf_appends(&b, "keep"), CM_OK);
	assert_int_equal(qgen_export_render(&set, f, &b, &ct, &ext), want);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "keep");
	assert_string_equal(ct, "unset");
	assert_string_equal(ext, "unset");
	cm_buf_fini(&b);
}

static void
test_errors_leave_out_unchanged(void **state)
{
	qgen_export_format fs[] = {QGEN_EXPORT_GIFT, QGEN_EXPORT_QTI, QGEN_EXPORT_CSV};
	Qgen__Question    *q;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		reset_set();
		add_open("fine", "ref", "");
		q = add_mcq4("q", "a", "b", "c", "d", 4, "");
		expect_fail(fs[i], 1u << 20, CM_EINVAL);
		q->answer_index = -1;
		expect_fail(fs[i], 1u << 20, CM_EINVAL);
		q->answer_index = 0;
		q->n_options = 1;
		expect_fail(fs[i], 1u << 20, CM_EINVAL);
		q->n_options = 4;
		q->type = S("truefalse");
		expect_fail(fs[i], 1u << 20, CM_EINVAL);
		q->type = S("mcq");
		expect_fail(fs[i], 60, CM_ETOOBIG); /* valid now, but does not fit */
	}
	expect_fail((qgen_export_format)7, 1u << 20, CM_EINVAL);
}

/* ---- GIFT ----------------------------------------------------------------------------------- */

static void
test_gift_escapes_each_special(void **state)
{
	const char *specials = "~=#{}:\\";
	char        text[8], want[64], *out;

	(void)state;
	for (const char *c = specials; *c != '\0'; c++) {
		reset_set();
		snprintf(text, sizeof(text), "a%cb", *c);
		add_open(text, "", "");
		out = render_ok(QGEN_EXPORT_GIFT, NULL);
		snprintf(want, sizeof(want), "::Q1::[plain]a\\%cb {}\n", *c);
		assert_string_equal(out, want);
		free(out);
	}
	/* A newline is "\n"; a literal backslash-n is "\\n"; CR LF is one newline. */
	reset_set();
	add_open("x\r\ny\\nz\rw", "", "");
	out = render_ok(QGEN_EXPORT_GIFT, NULL);
	assert_string_equal(out, "::Q1::[plain]x\\ny\\\\nz\\nw {}\n");
	free(out);
}

static void
test_gift_answer_marking(void **state)
{
	char *out;

	(void)state;
	reset_set();
	add_mcq4("What is {x}?", "1", "2", "3=x", "~4", 2, "Because\nof #math.");
	add_open("Explain: why?", "A ref {answer}", "More.");
	add_open("No key", "", "");
	out = render_ok(QGEN_EXPORT_GIFT, NULL);
	assert_string_equal(out, "::Q1::[plain]What is \\{x\\}? {\n"
	                         "\t~1\n\t~2\n\t=3\\=x\n\t~\\~4\n"
	                         "\t####Because\\nof \\#math.\n"
	                         "}\n"
	                         "\n"
	                         "::Q2::[plain]Explain\\: why? {\n"
	                         "\t####A ref \\{answer\\}\\n\\nMore.\n"
	                         "}\n"
	                         "\n"
	                         "::Q3::[plain]No key {}\n");
	free(out);
}

/* Reads GIFT back as Moodle would: "\X" is X, "\n" a newline; returns the end of the span. */
static const char *
gift_read(const char *p, const char *stops, char *out)
{
	while (*p != '\0' && strchr(stops, *p) == NULL) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			*out++ = *p == 'n' ? '\n' : *p;
		} else {
			*out++ = *p;
		}
		p++;
	}
	*out = '\0';
	return p;
}

static void
test_gift_round_trip(void **state)
{
	char       *out, *p, got[512], want[512];
	const char *blk, *end;
	size_t      nblocks = 0;

	(void)state;
	reset_set();
	for (size_t i = 0; i < NTRICKY; i++)
		add_mcq4(TRICKY[i], TRICKY[(i + 1) % NTRICKY], "plain", TRICKY[(i + 2) % NTRICKY],
		         "x", (int)(i % 4), TRICKY[(i + 3) % NTRICKY]);
	out = render_ok(QGEN_EXPORT_GIFT, NULL);
	assert_null(strchr(out, '\r'));
	for (blk = out; *blk != '\0'; blk = end, nblocks++) {
		const Qgen__Question *q = set.questions[nblocks];
		char                  title[32];
		size_t                opt = 0;

		end = strstr(blk, "\n\n");
		end = end != NULL ? end + 2 : blk + strlen(blk);
		snprintf(title, sizeof(title), "::Q%zu::[plain]", nblocks + 1);
		assert_memory_equal(blk, title, strlen(title));
		p = (char *)gift_read(blk + strlen(title), "{}~=#", got);
		assert_int_equal(*p, '{'); /* the only unescaped specials are the structure */
		norm_nl(q->text, want);
		snprintf(want + strlen(want), sizeof(want) - strlen(want), " ");
		assert_string_equal(got, want);
		p++;
		while (*p == '\n' || *p == '\t')
			p++;
		while (*p == '=' || *p == '~') {
			assert_true(opt < 4);
			assert_int_equal(*p == '=', opt == (size_t)q->answer_index);
			p = (char *)gift_read(p + 1, "\n{}~=#", got);
			norm_nl(q->options[opt++], want);
			assert_string_equal(got, want);
			while (*p == '\n' || *p == '\t')
				p++;
		}
		assert_int_equal(opt, 4);
		assert_memory_equal(p, "####", 4);
		p = (char *)gift_read(p + 4, "\n{}~=#", got);
		norm_nl(q->explanation, want);
		assert_string_equal(got, want);
		assert_memory_equal(p, "\n}\n", 3);
	}
	assert_int_equal(nblocks, NTRICKY);
	free(out);
}

/* ---- CSV ------------------------------------------------------------------------------------ */

#define CSV_HEADER                                                                                 \
	"#separator:comma\r\n#html:false\r\n#tags column:3\r\n#columns:Front,Back,Tags,Source\r\n"

/*
 * A strict RFC 4180 reader: one record from *p (fields NUL-terminated into out[], at most 4,
 * each up to 1023 bytes). Returns the field count, or -1 when the record is malformed.
 */
static int
csv_record(const char **p, char out[][1024])
{
	const char *s = *p;
	int         nf = 0;

	for (;;) {
		size_t n = 0;

		if (nf == 4)
			return -1;
		if (*s == '"') {
			for (s++;; s++) {
				if (*s == '\0')
					return -1;
				if (*s == '"') {
					if (s[1] != '"')
						break;
					s++;
				}
				out[nf][n++] = *s;
			}
			s++;
		} else {
			for (; *s != ',' && *s != '\r' && *s != '\0'; s++) {
				if (*s == '"' || *s == '\n')
					return -1;
				out[nf][n++] = *s;
			}
		}
		out[nf++][n] = '\0';
		if (*s == ',') {
			s++;
			continue;
		}
		if (s[0] != '\r' || s[1] != '\n')
			return -1;
		*p = s + 2;
		return nf;
	}
}

static void
test_csv_header_and_minimal_quoting(void **state)
{
	char *out;

	(void)state;
	reset_set();
	add_open("Hello", "World", "");
	qv[0].difficulty = S("hard x");
	add_open("#not a comment", "a,b", "");
	qv[1].difficulty = S("");
	add_open("say \"hi\"", "a # b", "");
	out = render_ok(QGEN_EXPORT_CSV, NULL);
	assert_string_equal(out, CSV_HEADER "Hello,World,open hard_x,\r\n"
	                                    "\"#not a comment\",\"a,b\",open,\r\n"
	                                    "\"say \"\"hi\"\"\",a # b,open medium,\r\n");
	free(out);
}

static void
test_csv_round_trip(void **state)
{
	static char f[4][1024];
	char        want[1024], buf[512];
	const char *p;
	char       *out;

	(void)state;
	reset_set();
	for (size_t i = 0; i < NTRICKY; i++)
		add_mcq4(TRICKY[i], TRICKY[(i + 1) % NTRICKY], "o,2", "\"o3\"",
		         TRICKY[(i + 2) % NTRICKY], (int)(i % 4),
		         i == 0 ? "" : TRICKY[(i + 3) % NTRICKY]);
	add_open(TRICKY[1], TRICKY[3], TRICKY[0]);
	out = render_ok(QGEN_EXPORT_CSV, NULL);
	assert_memory_equal(out, CSV_HEADER, strlen(CSV_HEADER));
	p = out + strlen(CSV_HEADER);
	for (size_t i = 0; i < set.n_questions; i++) {
		const Qgen__Question *q = set.questions[i];

		assert_int_equal(csv_record(&p, f), 4);
		norm_nl(q->text, want);
		for (size_t j = 0; j < q->n_options; j++) {
			norm_nl(q->options[j], buf);
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "\n%c) %s",
			         'A' + (int)j, buf);
		}
		assert_string_equal(f[0], want);
		if (q->n_options > 0) {
			norm_nl(q->options[q->answer_index], buf);
			snprintf(want, sizeof(want), "%c) %s", 'A' + q->answer_index, buf);
		} else {
			norm_nl(q->reference, want);
		}
		if (q->explanation[0] != '\0') {
			norm_nl(q->explanation, buf);
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "\n\n%s", buf);
		}
		assert_string_equal(f[1], want);
		assert_string_equal(f[2], q->n_options > 0 ? "mcq medium" : "open medium");
		assert_string_equal(f[3], ""); /* no source quote */
	}
	assert_int_equal(*p, '\0');
	free(out);
}

static void
test_sanitizing(void **state)
{
	char *out;

	(void)state;
	/* Controls go, tab stays, bad UTF-8 becomes U+FFFD, in every format. */
	reset_set();
	add_open("a\x01\x1b\x7f\tb\xff"
	         "c\xc0\xaf"
	         "d\xed\xa0\x80"
	         "e",
	         "", "");
	out = render_ok(QGEN_EXPORT_CSV, NULL);
#define FFFD "\xef\xbf\xbd"
	assert_string_equal(out, CSV_HEADER "a\tb" FFFD "c" FFFD FFFD "d" FFFD FFFD FFFD
	                                    "e,,open medium,\r\n");
	free(out);
	out = render_ok(QGEN_EXPORT_GIFT, NULL);
	assert_non_null(strstr(out, "a\tb\xef\xbf\xbd"
	                            "c"));
	assert_null(strchr(out, '\x1b'));
	free(out);
}

/* ---- QTI: the zip --------------------------------------------------------------------------- */

typedef struct zent {
	char                 name[64];
	const unsigned char *data;
	uint32_t             len, crc, off;
} zent;

static uint16_t
rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Takes the archive apart and checks every header against the others; returns the entries. */
static size_t
zip_parse(const unsigned char *z, size_t n, zent *e, size_t max)
{
	size_t               off = 0, count = 0, i;
	const unsigned char *end, *c;

	assert_true(n >= 22);
	while (off + 30 <= n && rd32(z + off) == 0x04034b50) {
		const unsigned char *h = z + off;
		uint16_t             nlen = rd16(h + 26);

		assert_true(count < max);
		assert_int_equal(rd16(h + 4), 10);      /* version needed */
		assert_int_equal(rd16(h + 6), 0);       /* flags: no data descriptor */
		assert_int_equal(rd16(h + 8), 0);       /* stored */
		assert_int_equal(rd16(h + 10), 0);      /* fixed time */
		assert_int_equal(rd16(h + 12), 0x5021); /* 2020-01-01 */
		assert_int_equal(rd32(h + 18), rd32(h + 22));
		assert_int_equal(rd16(h + 28), 0);
		assert_true(nlen > 0 && nlen < sizeof(e[count].name));
		memcpy(e[count].name, h + 30, nlen);
		e[count].name[nlen] = '\0';
		e[count].len = rd32(h + 22);
		e[count].crc = rd32(h + 14);
		e[count].off = (uint32_t)off;
		e[count].data = h + 30 + nlen;
		assert_true(off + 30 + nlen + e[count].len <= n);
		assert_int_equal(e[count].crc, (uint32_t)crc32(0L, e[count].data, e[count].len));
		off += 30 + nlen + e[count].len;
		count++;
	}
	end = z + n - 22;
	assert_int_equal(rd32(end), 0x06054b50);
	assert_int_equal(rd16(end + 4), 0);
	assert_int_equal(rd16(end + 6), 0);
	assert_int_equal(rd16(end + 8), count);
	assert_int_equal(rd16(end + 10), count);
	assert_int_equal(rd32(end + 16), off);          /* the directory follows the data */
	assert_int_equal(off + rd32(end + 12), n - 22); /* and fills the rest */
	assert_int_equal(rd16(end + 20), 0);
	for (i = 0, c = z + off; i < count; i++) {
		uint16_t nlen = rd16(c + 28);

		assert_int_equal(rd32(c), 0x02014b50);
		assert_int_equal(rd16(c + 10), 0);
		assert_int_equal(rd32(c + 16), e[i].crc);
		assert_int_equal(rd32(c + 20), e[i].len);
		assert_int_equal(rd32(c + 24), e[i].len);
		assert_int_equal(nlen, strlen(e[i].name));
		assert_int_equal(rd16(c + 30) + rd16(c + 32), 0);
		assert_int_equal(rd32(c + 42), e[i].off);
		assert_memory_equal(c + 46, e[i].name, nlen);
		c += 46 + nlen;
	}
	assert_ptr_equal(c, end);
	return count;
}

static const zent *
zfind(const zent *e, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			return &e[i];
	return NULL;
}

/* A zip entry as a NUL-terminated string (freed by the caller). */
static char *
zstr(const zent *e)
{
	char *s = malloc(e->len + 1);

	assert_non_null(s);
	memcpy(s, e->data, e->len);
	s[e->len] = '\0';
	return s;
}

static bool
xml_entity_ok(const char *s)
{
	static const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#9;"};

	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
		if (strncmp(s, ents[i], strlen(ents[i])) == 0)
			return true;
	return false;
}

/*
 * Enough of XML 1.0 well-formedness to catch escaping bugs: the declaration, one root, balanced
 * tags, quoted attribute values without '<' or a raw '&', text without '<' or a raw '&', only
 * the five entities and the two character references export.c uses, no forbidden controls.
 */
static bool
xml_ok(const char *s)
{
	char   stack[32][48];
	size_t depth = 0, roots = 0, n;
	bool   close;

	if (strncmp(s, DECL, strlen(DECL)) != 0)
		return false;
	for (s += strlen(DECL); *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return false;
		if (c == '&' && !xml_entity_ok(s))
			return false;
		if (c != '<') {
			if (depth == 0 && c != '\n')
				return false; /* text outside the root */
			continue;
		}
		close = s[1] == '/';
		s += close ? 2 : 1;
		n = strcspn(s, " \t\n/>");
		if (n == 0 || n >= sizeof(stack[0]))
			return false;
		if (close) {
			if (depth == 0 || strncmp(stack[depth - 1], s, n) != 0 ||
			    stack[depth - 1][n] != '\0' || s[n] != '>')
				return false;
			depth--;
			s += n;
			continue;
		}
		if ((depth == 0 && roots++ > 0) || depth == 32)
			return false;
		memcpy(stack[depth], s, n);
		stack[depth][n] = '\0';
		for (s += n; *s != '>' && *s != '/'; s++) {
			if (*s == '"') {
				for (s++; *s != '"'; s++) {
					if (*s == '\0' || *s == '<')
						return false;
					if (*s == '&' && !xml_entity_ok(s))
						return false;
				}
			} else if (*s == '\0' || *s == '<' || *s == '&' || *s == '\'') {
				return false;
			}
		}
		if (*s == '/') {
			if (s[1] != '>')
				return false;
			s++;
		} else {
			depth++;
		}
	}
	return depth == 0 && roots == 1;
}

static void
test_xml_checker_can_fail(void **state)
{
	(void)state;
	assert_true(xml_ok(DECL "<a x=\"1\"><b/>t&amp;</a>\n"));
	assert_false(xml_ok(DECL "<a>x<y</a>\n"));
	assert_false(xml_ok(DECL "<a>x & y</a>\n"));
	assert_false(xml_ok(DECL "<a><b></a></b>\n"));
	assert_false(xml_ok(DECL "<a t=\"<\"/>\n"));
	assert_false(xml_ok(DECL "<a>\x01</a>\n"));
	assert_false(xml_ok(DECL "<a/><b/>\n"));
}

/* The text between `open` and the next `close` in s, copied to out ("" when absent). */
static void
between(const char *s, const char *open, const char *close, char *out, size_t outlen)
{
	const char *a = strstr(s, open), *b;

	out[0] = '\0';
	if (a == NULL)
		return;
	a += strlen(open);
	b = strstr(a, close);
	assert_non_null(b);
	assert_true((size_t)(b - a) < outlen);
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
}

static size_t
count_of(const char *s, const char *needle)
{
	size_t n = 0;

	for (; (s = strstr(s, needle)) != NULL; s += strlen(needle))
		n++;
	return n;
}

static void
dump(const char *name, const char *data, size_t len)
{
	const char *dir = getenv("QGEN_EXPORT_DUMP");
	char        path[512];
	FILE       *f;

	if (dir == NULL || dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
sample_set(void)
{
	reset_set();
	set.topic = S("C \"pointers\" & <arrays>");
	add_mcq4(TRICKY[0], TRICKY[3], "b", "<c>", "d", 2, TRICKY[1]);
	add_open(TRICKY[2], TRICKY[4], "Why: it <works>.");
	add_mcq4("No explanation here", "a", "b", "c", "d", 0, "");
	add_open("No key at all", "", "");
	add_mcq4("Last", "w", "x", "y", "z", 3, "z!");
}

static void
test_qti_package(void **state)
{
	zent        e[16];
	size_t      len, n;
	char       *zip, *man, *tst, *item, name[32], want[256], got[512];
	const char *h;

	(void)state;
	sample_set();
	zip = render_ok(QGEN_EXPORT_QTI, &len);
	n = zip_parse((const unsigned char *)zip, len, e, 16);
	assert_int_equal(n, set.n_questions + 2);
	assert_string_equal(e[0].name, "imsmanifest.xml");
	assert_string_equal(e[1].name, "test.xml");

	man = zstr(&e[0]);
	assert_true(xml_ok(man));
	assert_non_null(strstr(man, "xmlns=\"http://www.imsglobal.org/xsd/imscp_v1p1\""));
	assert_non_null(strstr(man, "identifier=\"MANIFEST_" SET_ID "\""));
	assert_int_equal(count_of(man, "type=\"imsqti_item_xmlv2p1\""), set.n_questions);
	assert_int_equal(count_of(man, "type=\"imsqti_test_xmlv2p1\""), 1);
	/* Every href the manifest names is in the zip, and every item is listed with its file. */
	for (h = strstr(man, "href=\""); h != NULL; h = strstr(h, "href=\"")) {
		h += 6;
		assert_true(strcspn(h, "\"") < sizeof(name));
		memcpy(name, h, strcspn(h, "\""));
		name[strcspn(h, "\"")] = '\0';
		assert_non_null(zfind(e, n, name));
	}
	for (size_t i = 1; i <= set.n_questions; i++) {
		snprintf(name, sizeof(name), "items/Q%zu.xml", i);
		assert_string_equal(e[i + 1].name, name);
		snprintf(
		    want, sizeof(want),
		    "<resource identifier=\"RES_Q%zu\" type=\"imsqti_item_xmlv2p1\" href=\"%s\">"
		    "<file href=\"%s\"/></resource>",
		    i, name, name);
		assert_non_null(strstr(man, want));
		snprintf(want, sizeof(want), "<dependency identifierref=\"RES_Q%zu\"/>", i);
		assert_non_null(strstr(man, want));
	}

	tst = zstr(&e[1]);
	assert_true(xml_ok(tst));
	assert_non_null(strstr(tst, "title=\"C &quot;pointers&quot; &amp; &lt;arrays&gt;\""));
	for (size_t i = 1; i <= set.n_questions; i++) {
		snprintf(want, sizeof(want),
		         "<assessmentItemRef identifier=\"Q%zu\" href=\"items/Q%zu.xml\"/>", i, i);
		assert_non_null(strstr(tst, want));
	}

	for (size_t i = 0; i < set.n_questions; i++) {
		const Qgen__Question *q = set.questions[i];
		bool                  mcq = q->n_options > 0;

		item = zstr(&e[i + 2]);
		assert_true(xml_ok(item));
		snprintf(want, sizeof(want), "identifier=\"Q%zu\"", i + 1);
		assert_non_null(strstr(item, want));
		between(item, "<correctResponse>", "</correctResponse>", got, sizeof(got));
		if (mcq) {
			snprintf(want, sizeof(want), "<value>%c</value>", 'A' + q->answer_index);
			assert_string_equal(got, want);
			assert_int_equal(count_of(item, "<simpleChoice "), 4);
			assert_non_null(strstr(item, "<choiceInteraction responseIdentifier="));
			assert_null(strstr(item, "extendedTextInteraction"));
			assert_non_null(strstr(item, "\"identifier\">\n<correctResponse>"));
		} else {
			assert_string_equal(got, "");
			assert_non_null(strstr(item, "<extendedTextInteraction "));
			assert_null(strstr(item, "choiceInteraction"));
		}
		/* Feedback exactly when there is something to show. */
		assert_int_equal(strstr(item, "<modalFeedback") != NULL,
		                 q->explanation[0] != '\0' || (!mcq && q->reference[0] != '\0'));
		assert_int_equal(strstr(item, "rptemplates/match_correct") != NULL,
		                 mcq && q->explanation[0] == '\0');
		free(item);
	}
	/* The right choice's text is the option at answer_index, escaped. */
	item = zstr(&e[2]);
	between(item, "<simpleChoice identifier=\"C\">", "</simpleChoice>", got, sizeof(got));
	assert_string_equal(got, "&lt;c&gt;");
	between(item, "<simpleChoice identifier=\"A\">", "</simpleChoice>", got, sizeof(got));
	assert_string_equal(got, "&lt;b&gt;&amp;amp;&lt;/b&gt; &quot;quoted&quot;, "
	                         "&apos;single&apos;, a,b;c");
	between(item, "<modalFeedback", "</modalFeedback>", got, sizeof(got));
	assert_non_null(strstr(got, "<p>line1<br/>line2<br/>line3<br/>line4</p>"));
	free(item);

	dump("set.zip", zip, len);
	free(zip);
	zip = render_ok(QGEN_EXPORT_GIFT, &len);
	dump("set.txt", zip, len);
	free(zip);
	zip = render_ok(QGEN_EXPORT_CSV, &len);
	dump("set.csv", zip, len);
	free(zip);
	free(tst);
	free(man);
}

static void
test_qti_xml_escaping(void **state)
{
	zent   e[4];
	size_t len;
	char  *zip, *item, got[256];

	(void)state;
	reset_set();
	add_open("a<b && c>d \"q\" 'x'\x01\x1b end\r\nnext\xef\xbf\xbe!", "<ref> & 'it'", "");
	qv[0].id = S("id\"<&>");
	zip = render_ok(QGEN_EXPORT_QTI, &len);
	assert_int_equal(zip_parse((const unsigned char *)zip, len, e, 4), 3);
	item = zstr(&e[2]);
	assert_true(xml_ok(item));
	between(item, "<itemBody>\n", "\n<extendedTextInteraction", got, sizeof(got));
	assert_string_equal(got, "<p>a&lt;b &amp;&amp; c&gt;d &quot;q&quot; &apos;x&apos; "
	                         "end<br/>next!</p>");
	between(item, "<modalFeedback", "</modalFeedback>", got, sizeof(got));
	assert_non_null(strstr(got, "<p>&lt;ref&gt; &amp; &apos;it&apos;</p>"));
	assert_non_null(strstr(item, "label=\"id&quot;&lt;&amp;&gt;\""));
	free(item);
	free(zip);
}

/* Zip offsets count from the archive's start, not from the start of the buffer. */
static void
test_qti_after_prefix_and_deterministic(void **state)
{
	cm_buf      b;
	zent        e[16];
	const char *ct, *ext;
	char       *again;
	size_t      len;

	(void)state;
	sample_set();
	cm_buf_init(&b, 1u << 20);
	assert_int_equal(cm_buf_appends(&b, "PREFIX"), CM_OK);
	assert_int_equal(qgen_export_render(&set, QGEN_EXPORT_QTI, &b, &ct, &ext), CM_OK);
	assert_memory_equal(b.data, "PREFIX", 6);
	assert_int_equal(zip_parse((unsigned char *)b.data + 6, b.len - 6, e, 16), 7);
	again = render_ok(QGEN_EXPORT_QTI, &len);
	assert_int_equal(len, b.len - 6);
	assert_memory_equal(again, b.data + 6, len);
	free(again);
	cm_buf_fini(&b);
}

/* The passage a question was checked against: a GIFT comment line, a QTI feedback paragraph,
 * the CSV's fourth column; whatever it holds, each format still parses. */
static void
test_source_quote(void **state)
{
	static char f[4][1024];
	zent        e[4];
	size_t      len;
	const char *p;
	char       *out, *item, got[512];

	(void)state;
	reset_set();
	add_mcq4("Which enzyme?", "Rubisco", "b", "c", "d", 0, "");
	qv[0].quote = S("Rubisco {fixes} CO2,\nsee \"p. 2\" & <more>.");
	qv[0].page = 7;
	add_open("No quote", "ref", "");

	out = render_ok(QGEN_EXPORT_GIFT, NULL);
	assert_string_equal(out, "// source, page 7: Rubisco {fixes} CO2, see \"p. 2\" & <more>.\n"
	                         "::Q1::[plain]Which enzyme? {\n\t=Rubisco\n\t~b\n\t~c\n\t~d\n}\n"
	                         "\n::Q2::[plain]No quote {\n\t####ref\n}\n");
	free(out);

	out = render_ok(QGEN_EXPORT_CSV, NULL);
	p = out + strlen(CSV_HEADER);
	assert_int_equal(csv_record(&p, f), 4);
	assert_string_equal(f[3], "p. 7: Rubisco {fixes} CO2,\nsee \"p. 2\" & <more>.");
	assert_int_equal(csv_record(&p, f), 4);
	assert_string_equal(f[3], "");
	assert_int_equal(*p, '\0');
	free(out);

	out = render_ok(QGEN_EXPORT_QTI, &len);
	assert_int_equal(zip_parse((const unsigned char *)out, len, e, 4), 4);
	item = zstr(&e[2]);
	assert_true(xml_ok(item));
	/* an mcq without explanation shows its source after the attempt, and still scores */
	between(item, "<modalFeedback", "</modalFeedback>", got, sizeof(got));
	assert_non_null(strstr(got, "<p>Source, page 7: Rubisco {fixes} CO2,<br/>see &quot;p. "
	                            "2&quot; &amp; &lt;more&gt;.</p>"));
	assert_non_null(strstr(item, "<correct identifier=\"RESPONSE\"/>"));
	free(item);
	item = zstr(&e[3]);
	assert_null(strstr(item, "Source, page"));
	free(item);
	free(out);
}

static void
test_empty_set(void **state)
{
	zent   e[4];
	size_t len;
	char  *out;

	(void)state;
	reset_set();
	out = render_ok(QGEN_EXPORT_GIFT, &len);
	assert_int_equal(len, 0);
	free(out);
	out = render_ok(QGEN_EXPORT_CSV, NULL);
	assert_string_equal(out, CSV_HEADER);
	free(out);
	out = render_ok(QGEN_EXPORT_QTI, &len);
	assert_int_equal(zip_parse((const unsigned char *)out, len, e, 4), 2);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_parse),
	    cmocka_unit_test(test_content_types),
	    cmocka_unit_test(test_errors_leave_out_unchanged),
	    cmocka_unit_test(test_gift_escapes_each_special),
	    cmocka_unit_test(test_gift_answer_marking),
	    cmocka_unit_test(test_gift_round_trip),
	    cmocka_unit_test(test_csv_header_and_minimal_quoting),
	    cmocka_unit_test(test_csv_round_trip),
	    cmocka_unit_test(test_sanitizing),
	    cmocka_unit_test(test_xml_checker_can_fail),
	    cmocka_unit_test(test_qti_package),
	    cmocka_unit_test(test_qti_xml_escaping),
	    cmocka_unit_test(test_qti_after_prefix_and_deterministic),
	    cmocka_unit_test(test_source_quote),
	    cmocka_unit_test(test_empty_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
