/*
 * test_qgen_exports.c - sets generated through the stack (edge -> svc-qgen -> svc-pdf and the
 * fake LLM), exported as GIFT, Anki CSV and QTI through GET /question-sets/{id}/export, each
 * file read back by real parsers: test/tools/exportcheck/check.mjs (gift-pegjs; csv-parse read
 * as Anki reads; yauzl + libxml2 with QTI 2.1's structural rules) compares every question, its
 * text, options, key and feedback, with the set the API returns with include_answers.
 *
 * Two documents: the real ~100-page manual (a mixed mcq/open set), and a one-page PDF whose
 * sentences hold what the formats escape (~ = # { } : \ quotes, commas, semicolons, < > &) and
 * Latin-1 and Euro signs, which the fake LLM quotes into question texts and explanations. The
 * unit test unit_qgen_export_parsers covers what a PDF cannot carry here (newlines in a text,
 * specials in options, 4-byte UTF-8). Files stay in $CM_TEST_STATE/exportcheck-e2e/.
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
#include <curl/curl.h>

#include "cm/buf.h"
#include "cm/util.h"
#include "http_client.h"
#include "../../svc-pdf/testpdf.h"

#define FAKE "http://127.0.0.1:28500"

static char user[4200];

/* Sentences for the one-page document, as WinAnsiEncoding bytes (the font of svc-pdf/testpdf.h:
 * \xE9 e-acute, \xFC u-umlaut, \xDF sharp s, \x80 Euro, \xAB \xBB guillemets; the builder
 * escapes the backslash and parentheses). Each holds every special, so whichever sentences the
 * model quotes, the set carries them all. */
#define SPECIALS                                                                                   \
	"~ = # {x}: \\ \"q\" 'q', a;b <t> & caf\xE9 \xFC"                                          \
	"ber gro\xDF \x80"                                                                         \
	"5 \xAB"                                                                                   \
	"ok\xBB"
static const char *const SPECIAL_LINES[] = {
    "The tilde marks a home directory " SPECIALS " before the command runs.",
    "An assignment stores text without spaces " SPECIALS " around its equals sign.",
    "A hash starts a comment that the shell ignores " SPECIALS " until the line ends.",
    "Double quotes keep spaces while single quotes keep " SPECIALS " every character.",
    "Semicolons separate commands written on one line " SPECIALS " in scripts.",
    "Backslashes escape the following character " SPECIALS " inside strings.",
    "Angle brackets redirect input and output " SPECIALS " to files.",
    "Ampersands run background jobs started " SPECIALS " from interactive shells.",
};

/* ---- helpers --------------------------------------------------------------------------------- */

/* A one-page PDF, one line per entry of lines (svc-pdf/testpdf.h: Helvetica in WinAnsi). */
static void
lines_pdf(cm_buf *b, const char *const *lines, size_t n)
{
	cm_buf      text;
	pdf_testpdf o = {.npages = 1};
	const char *pages[1];

	cm_buf_init(&text, 1u << 16);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cm_buf_printf(&text, "%s%s", i > 0 ? "\n" : "", lines[i]), CM_OK);
	pages[0] = text.data;
	o.pages = pages;
	cm_buf_init(b, 1u << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
	cm_buf_fini(&text);
}

static void
upload(const char *data, size_t len, const char *name, char *id, size_t idlen)
{
	const char *h[] = {user, "Content-Type: application/pdf", NULL};
	char        path[256];
	http_resp   r;

	snprintf(path, sizeof(path), "/api/v1/documents?filename=%s", name);
	assert_int_equal(http_do("POST", path, h, data, len, &r), 0);
	assert_int_equal(r.status, 201);
	snprintf(id, idlen, "%s", js(r.json, "id"));
	http_resp_free(&r);
}

/* Generates a set on doc and waits (polling, 120 s at most) for its job to succeed; the set id
 * goes to set. */
static void
generate(const char *doc, const char *body, char *set, size_t n)
{
	char      path[160], job[64] = "", status[32] = "";
	int64_t   until = cm_mono_ms() + 120 * 1000;
	http_resp r;

	snprintf(path, sizeof(path), "/api/v1/documents/%s/question-sets", doc);
	assert_int_equal(http_json(user, "POST", path, body, &r), 202);
	snprintf(job, sizeof(job), "%s", js(r.json, "job_id"));
	snprintf(set, n, "%s", js(r.json, "question_set_id"));
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/jobs/%s", job);
	while (cm_mono_ms() < until) {
		assert_int_equal(http_json(user, "GET", path, NULL, &r), 200);
		snprintf(status, sizeof(status), "%s", js(r.json, "status"));
		http_resp_free(&r);
		if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
			break;
		usleep(50 * 1000);
	}
	assert_string_equal(status, "succeeded");
}

static void
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char  path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* GET path (200) into dir/name. */
static void
download(const char *path, const char *dir, const char *name)
{
	http_resp r;

	assert_int_equal(http_json(user, "GET", path, NULL, &r), 200);
	write_file(dir, name, r.body, r.len);
	http_resp_free(&r);
}

/* Downloads the set with answers and its three exports into $CM_TEST_STATE/exportcheck-e2e/tag
 * and runs the checker on them: every question must read back as the set has it. Returns the
 * set's question count. */
static size_t
check_exports(const char *set, const char *tag)
{
	const char *tool = getenv("CM_TEST_EXPORTCHECK");
	char        dir[600], path[200], cmd[2048];
	size_t      count;
	http_resp   r;
	int         rc;

	assert_non_null(tool);
	snprintf(dir, sizeof(dir), "%s/exportcheck-e2e", getenv("CM_TEST_STATE"));
	(void)mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/exportcheck-e2e/%s", getenv("CM_TEST_STATE"), tag);
	(void)mkdir(dir, 0755);

	snprintf(path, sizeof(path), "/api/v1/question-sets/%s?include_answers=true", set);
	assert_int_equal(http_json(user, "GET", path, NULL, &r), 200);
	count = json_array_size(json_object_get(r.json, "questions"));
	write_file(dir, "set.json", r.body, r.len);
	http_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=gift", set);
	download(path, dir, "set.txt");
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=csv", set);
	download(path, dir, "set.csv");
	snprintf(path, sizeof(path), "/api/v1/question-sets/%s/export?format=qti", set);
	download(path, dir, "set.zip");

	snprintf(cmd, sizeof(cmd), "cd '%s' && node '%s' set.json set.txt set.csv set.zip", dir,
	         tool);
	rc = system(cmd);
	assert_true(rc != -1 && WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 0);
	return count;
}

/* Every special character of SPECIAL_LINES occurs in the set's texts, answers or explanations. */
static void
assert_specials_in(const char *set)
{
	static const char *const want[] = {
	    "~",        "=",       "#",        "{",        "}",        ":",
	    "\\",       "\"",      "'",        ",",        ";",        "<",
	    ">",        "&",       "\xc3\xa9", "\xc3\xbc", "\xc3\x9f", "\xe2\x82\xac",
	    "\xc2\xab", "\xc2\xbb"};
	char      path[160];
	cm_buf    all;
	http_resp r;
	json_t   *qs, *q;
	size_t    i;

	snprintf(path, sizeof(path), "/api/v1/question-sets/%s?include_answers=true", set);
	assert_int_equal(http_json(user, "GET", path, NULL, &r), 200);
	qs = json_object_get(r.json, "questions");
	cm_buf_init(&all, 1u << 20);
	json_array_foreach(qs, i, q)
	{
		assert_int_equal(cm_buf_appends(&all, js(q, "text")), CM_OK);
		assert_int_equal(cm_buf_appends(&all, js(q, "explanation")), CM_OK);
		assert_int_equal(cm_buf_appends(&all, js(q, "answer")), CM_OK);
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(all.data, want[i]) == NULL)
			fail_msg("no question of the set holds \"%s\"", want[i]);
	cm_buf_fini(&all);
	http_resp_free(&r);
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* A mixed set from the real manual: shell syntax is full of what GIFT escapes. */
static void
test_exports_real_document(void **state)
{
	char   path[512], cmd[1200], doc[64], set[64];
	char  *pdf;
	FILE  *f;
	long   len;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/qgen-real.pdf", getenv("CM_TEST_STATE"));
	snprintf(cmd, sizeof(cmd), "%s/../data/gen_test_pdfs.sh real %s >/dev/null",
	         getenv("CM_TEST_HARNESS"), path);
	if (access(path, R_OK) != 0)
		assert_int_equal(system(cmd), 0);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	pdf = malloc((size_t)len);
	assert_non_null(pdf);
	assert_int_equal(fread(pdf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	upload(pdf, (size_t)len, "manual.pdf", doc, sizeof(doc));
	free(pdf);

	generate(doc, "{\"count\":12,\"types\":[\"mcq\",\"open\"],\"pages\":[20,60]}", set,
	         sizeof(set));
	n = check_exports(set, "manual");
	assert_int_equal(n, 12);
}

/* One page of specials: they reach question texts and explanations through the model. */
static void
test_exports_special_text(void **state)
{
	cm_buf pdf;
	char   doc[64], set[64];
	size_t n;

	(void)state;
	lines_pdf(&pdf, SPECIAL_LINES, sizeof(SPECIAL_LINES) / sizeof(SPECIAL_LINES[0]));
	upload(pdf.data, pdf.len, "specials.pdf", doc, sizeof(doc));
	cm_buf_fini(&pdf);

	generate(doc, "{\"count\":6,\"types\":[\"mcq\",\"open\"]}", set, sizeof(set));
	n = check_exports(set, "specials");
	assert_int_equal(n, 6);
	/* The set did carry the specials (else the check above proved little). */
	assert_specials_in(set);
}

static int
setup(void **state)
{
	json_t *v;

	(void)state;
	if (http_new_user("qx", "questions!", user, sizeof(user)) != 0)
		return -1;
	v = http_fake(FAKE, "POST", "/_reset", "{\"config\":true}");
	if (v == NULL)
		return -1;
	json_decref(v);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exports_real_document),
	    cmocka_unit_test(test_exports_special_text),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	return cmocka_run_group_tests(tests, setup, NULL);
}
