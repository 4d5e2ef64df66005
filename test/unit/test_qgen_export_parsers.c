/*
 * test_qgen_export_parsers.c - svc-qgen's exports read back by real parsers: the Node checker
 * test/tools/exportcheck/check.mjs (gift-pegjs for GIFT, csv-parse read as Anki reads for CSV,
 * yauzl + libxml2 with QTI 2.1's structural rules for the QTI package) compares each file with
 * the set that was rendered: every question, in order, its text, options, key and feedback.
 *
 * The sets here are built to break escaping: GIFT's ~ = # { } : and backslash, "//" and "::"
 * where GIFT gives them meaning, quotes, commas and semicolons, a field starting with '#' (an
 * Anki comment), XML's < > &, newlines (LF, CRLF, lone CR), tabs and non-ASCII text up to
 * 4-byte UTF-8, in the source passages (source.quote) too. The checker's own verdicts are tested
 * too: a set whose keys, count or text differ from the file, and a GIFT file with one escape
 * removed, must each be refused.
 *
 * Needs node and the checker's packages (scripts/install-deps.sh runs npm ci there). Files go to
 * $CM_TEST_STATE/exportcheck/ and stay there for a look after a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cm/buf.h"
#include "../../svc-qgen/export.h"

#include "qset_builder.h"

static char dir[512];

static void
reset_set(void)
{
	reset_set_topic("C \"pointers\" & <arrays>: {~=#}");
}

/* Every special character of every format, in texts, options, keys and feedback. */
static void
special_set(void)
{
	static const char *const o1[4] = {"~tilde", "=equals", "#hash {brace}", "a:b \\ c"};
	static const char *const o2[4] = {"na\xc3\xafve caf\xc3\xa9",
	                                  "\xe2\x80\x9c"
	                                  "curly"
	                                  "\xe2\x80\x9d quotes",
	                                  "a,b;c \"d\"", "\xf0\x9f\x98\x80"};
	static const char *const o3[4] = {"// not a comment", "[html]<b>bold</b>", "::Q9:: title?",
	                                  "#starts with a hash"};
	static const char *const o4[4] = {"one\ntwo", "tab\there", "x & y < z > w", "'single'"};

	reset_set();
	add_mcq("if (a == b) { x = ~y; } // #1: done \\n C:\\dir\\", o1, 2,
	        "line1\r\nline2\rline3\nline4: the {key} is #3 = \"hash\"");
	add_mcq(
	    "Gr\xc3\xb6\xc3\x9f"
	    "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80, or \"quoted\", 'single'?",
	    o2, 0, "\"quoted\", 'single', a,b;c");
	add_open("Explain:\n#include <stdio.h>\tint main(void) { return 0; }",
	         "<b>&amp;</b> \"quoted\", 'single', a,b;c", "Why: it <works> ~ = #.");
	add_mcq("#hashtag first: which is \"=right\" ~wrong?", o3, 3, "");
	add_open("An essay: {} with nothing else", "", "");
	add_mcq("Lines:\r\nsecond, third", o4, 1, "Only the \\t one.");
	add_open("Reference only?", "Yes: {only} this.", "");
	add_open("Markdown?", "", "[markdown]**not bold**: a [link](x)");
	/* Source passages: a GIFT comment line that must stay one (its "::Q9:: {=x ~y}" is no
	 * question), a CSV field and a QTI feedback paragraph with every special. */
	qv[0].quote = S("::Q9:: {=x ~y} // #1: C:\\dir\\ <b>&amp;</b> \"q\" 'q', a;b caf\xc3\xa9");
	qv[0].page = 3;
	qv[2].quote = S("#include <stdio.h> \xf0\x9f\x98\x80 [html]<i>x</i>");
	qv[2].page = 12;
}

/* ---- files and the checker ------------------------------------------------------------------ */

static void
write_file(const char *name, const void *data, size_t len)
{
	char  path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
render_to(qgen_export_format f, const char *name)
{
	cm_buf      b;
	const char *ct = NULL, *ext = NULL;

	cm_buf_init(&b, QGEN_EXPORT_MAX);
	assert_int_equal(qgen_export_render(&set, f, &b, &ct, &ext), CM_OK);
	write_file(name, b.data, b.len);
	cm_buf_fini(&b);
}

/* The set as the v1 API answers it with include_answers (what check.mjs reads); key_shift moves
 * every mcq key by that many options, drop leaves out the last questions. */
static void
write_set_json(const char *name, int key_shift, size_t drop)
{
	json_t *qs = json_array(), *o;
	char   *s;

	for (size_t i = 0; i + drop < set.n_questions; i++) {
		const Qgen__Question *q = set.questions[i];
		json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "type", q->type, "text", q->text,
		                      "explanation", q->explanation, "difficulty", q->difficulty);

		assert_non_null(j);
		if (strcmp(q->type, "mcq") == 0) {
			json_t *opts = json_array();
			for (size_t k = 0; k < q->n_options; k++)
				json_array_append_new(opts, json_string(q->options[k]));
			json_object_set_new(j, "options", opts);
			json_object_set_new(
			    j, "answer",
			    json_integer((q->answer_index + key_shift) % (int)q->n_options));
		} else {
			json_object_set_new(j, "answer", json_string(q->reference));
		}
		/* as the edge writes it: source.quote only when there is one */
		json_object_set_new(j, "source",
		                    q->quote[0] != '\0' ? json_pack("{s:i, s:s}", "page", q->page,
		                                                    "quote", q->quote)
		                                        : json_pack("{s:i}", "page", q->page));
		json_array_append_new(qs, j);
	}
	o = json_pack("{s:s, s:o}", "id", set.id, "questions", qs);
	assert_non_null(o);
	s = json_dumps(o, JSON_INDENT(1));
	assert_non_null(s);
	write_file(name, s, strlen(s));
	free(s);
	json_decref(o);
}

/* Runs the checker on files of dir; returns its exit status (0 match, 1 mismatch). */
static int
check(const char *json, const char *files)
{
	const char *tool = getenv("CM_TEST_EXPORTCHECK");
	char        cmd[2048], mods[600];
	int         rc;

	assert_non_null(tool);
	snprintf(mods, sizeof(mods), "%.*s/node_modules/.package-lock.json",
	         (int)(strrchr(tool, '/') - tool), tool);
	if (access(mods, R_OK) != 0)
		fail_msg("%s is missing: run scripts/install-deps.sh (npm ci there)", mods);
	snprintf(cmd, sizeof(cmd), "cd '%s' && node '%s' %s %s", dir, tool, json, files);
	rc = system(cmd);
	assert_true(rc != -1 && WIFEXITED(rc));
	return WEXITSTATUS(rc);
}

static void
render_all(void)
{
	render_to(QGEN_EXPORT_GIFT, "set.txt");
	render_to(QGEN_EXPORT_CSV, "set.csv");
	render_to(QGEN_EXPORT_QTI, "set.zip");
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_special_characters_round_trip(void **state)
{
	(void)state;
	special_set();
	render_all();
	write_set_json("set.json", 0, 0);
	assert_int_equal(check("set.json", "set.txt set.csv set.zip"), 0);
}

/* One question of each kind alone, and 26 options (the most a letter can name). */
static void
test_small_and_wide_sets(void **state)
{
	static const char *const o[4] = {"a", "b", "c", "d"};
	static char              many[26][8];
	static char             *mp[26];

	(void)state;
	reset_set();
	add_open("Only one open question here", "", "General feedback only.");
	render_all();
	write_set_json("one.json", 0, 0);
	assert_int_equal(check("one.json", "set.txt set.csv set.zip"), 0);

	reset_set();
	add_mcq("Which letter is last?", o, 3, "");
	for (size_t j = 0; j < 26; j++) {
		snprintf(many[j], sizeof(many[j]), "opt %c", (char)('A' + j));
		mp[j] = many[j];
	}
	qv[0].options = mp;
	qv[0].n_options = 26;
	qv[0].answer_index = 25;
	render_all();
	write_set_json("wide.json", 0, 0);
	assert_int_equal(check("wide.json", "set.txt set.csv set.zip"), 0);
}

/* The checker refuses what does not match: wrong keys in each format, a question missing, a
 * text changed, and GIFT with one escape taken away. */
static void
test_checker_refuses_mismatches(void **state)
{
	cm_buf      b;
	const char *ct, *ext;
	char       *eq;

	(void)state;
	special_set();
	render_all();
	write_set_json("shifted.json", 1, 0);
	assert_int_equal(check("shifted.json", "set.txt"), 1);
	assert_int_equal(check("shifted.json", "set.csv"), 1);
	assert_int_equal(check("shifted.json", "set.zip"), 1);
	write_set_json("fewer.json", 0, 1);
	assert_int_equal(check("fewer.json", "set.txt"), 1);
	assert_int_equal(check("fewer.json", "set.csv"), 1);
	assert_int_equal(check("fewer.json", "set.zip"), 1);

	qv[1].text = S("Gro\xc3\x9f"
	               "e, or \"quoted\", 'single'?");
	write_set_json("changed.json", 0, 0);
	assert_int_equal(check("changed.json", "set.txt"), 1);
	assert_int_equal(check("changed.json", "set.csv"), 1);
	assert_int_equal(check("changed.json", "set.zip"), 1);

	/* "~\\=equals" -> "~=equals": no longer GIFT (and "=" would mark a second key). */
	special_set();
	write_set_json("set.json", 0, 0);
	cm_buf_init(&b, QGEN_EXPORT_MAX);
	assert_int_equal(qgen_export_render(&set, QGEN_EXPORT_GIFT, &b, &ct, &ext), CM_OK);
	eq = strstr(b.data, "\\=equals");
	assert_non_null(eq);
	memmove(eq, eq + 1, strlen(eq + 1) + 1);
	write_file("broken.txt", b.data, strlen(b.data));
	cm_buf_fini(&b);
	assert_int_equal(check("set.json", "broken.txt"), 1);
}

static int
setup(void **state)
{
	const char *st = getenv("CM_TEST_STATE");

	(void)state;
	if (st == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/exportcheck", st);
	(void)mkdir(st, 0755);
	(void)mkdir(dir, 0755);
	return access(dir, W_OK) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_special_characters_round_trip),
	    cmocka_unit_test(test_small_and_wide_sets),
	    cmocka_unit_test(test_checker_refuses_mismatches),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
