/*
 * report.c - the question-quality report (bench/quality.sh runs it): each document goes through
 * svc-pdf and then through both providers (services.h), a set of COUNT multiple-choice questions
 * and a mixed set of COUNT (mcq and open) each, and every set's figures (measure.h) become one
 * row of a markdown table on stdout.
 *
 *   quality_report [--check] [--count N] [--fake URL] [--cran] [LABEL=]FILE.pdf ...
 *
 * --cran adds the CRAN-like package manual of the offline test (test/integration/cran_manual.h),
 * built here; --fake the fake LLM's base URL (without it only the offline provider runs).
 * Environment: DATABASE_URL (libpq conninfo) and REDIS_PORT (Redis on 127.0.0.1).
 *
 * --check judges each set against the thresholds of its provider, QR_OFFLINE_* or QR_FAKE_*
 * (bench/quality-thresholds.env, every one required): MIN_GROUNDED, MAX_DUPLICATES,
 * MAX_DISTRACTOR, MAX_KEY_SHARE, MIN_SPREAD (all %) and MAX_BAD_BLANKS (blanks in a URL, in code
 * or on a function word); a set must also hold exactly COUNT valid questions. Spread is the
 * distinct cited pages over min(the document's pages, the set's questions): 100% when no two
 * questions share a page that did not have to. Exit 0, 1 when a set is below a threshold
 * (each failure named on stderr), 2 when the report could not be made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "../../test/integration/cran_manual.h"
#include "measure.h"
#include "services.h"

#define QR_MAX_DOCS 16

typedef struct qr_doc {
	char   label[64];
	char  *pdf;
	size_t len;
} qr_doc;

typedef struct qr_thresholds {
	double min_grounded, max_duplicates, max_distractor, max_key_share, min_spread;
	double max_bad_blanks;
} qr_thresholds;

static int
read_file(const char *path, qr_doc *d)
{
	FILE *f = fopen(path, "rb");
	long  n;
	int   rc = -1;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((d->pdf = malloc((size_t)n)) == NULL || fread(d->pdf, 1, (size_t)n, f) != (size_t)n)
		goto out;
	d->len = (size_t)n;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc != 0)
		fprintf(stderr, "quality: cannot read %s: %s\n", path, strerror(errno));
	return rc;
}

static int
cran_doc(qr_doc *d)
{
	cm_buf b;

	cm_buf_init(&b, 1u << 20);
	if (cran_manual_pdf("SuppDists", &b) != CM_OK || (d->pdf = malloc(b.len)) == NULL) {
		cm_buf_fini(&b);
		return -1;
	}
	memcpy(d->pdf, b.data, b.len);
	d->len = b.len;
	snprintf(d->label, sizeof(d->label), "CRAN-like package manual");
	cm_buf_fini(&b);
	return 0;
}

static int
threshold(const char *prefix, const char *name, double *out)
{
	char        key[64];
	const char *v;
	char       *end = NULL;

	snprintf(key, sizeof(key), "QR_%s_%s", prefix, name);
	v = getenv(key);
	if (v != NULL && v[0] != '\0') {
		*out = strtod(v, &end);
		if (end != NULL && *end == '\0')
			return 0;
	}
	fprintf(stderr, "quality: --check needs %s (a number; bench/quality-thresholds.env)\n",
	        key);
	return -1;
}

static int
thresholds(const char *prefix, qr_thresholds *t)
{
	return threshold(prefix, "MIN_GROUNDED", &t->min_grounded) |
	       threshold(prefix, "MAX_DUPLICATES", &t->max_duplicates) |
	       threshold(prefix, "MAX_DISTRACTOR", &t->max_distractor) |
	       threshold(prefix, "MAX_KEY_SHARE", &t->max_key_share) |
	       threshold(prefix, "MIN_SPREAD", &t->min_spread) |
	       threshold(prefix, "MAX_BAD_BLANKS", &t->max_bad_blanks);
}

static double
spread(const qr_figures *f)
{
	int most = f->doc_pages < f->valid ? f->doc_pages : f->valid;
	return qr_pct(f->pages_cited, most);
}

/* One failed rule: named on stderr. */
static void
fail(int *failed, const char *set, const char *what, double got, const char *op, double bound)
{
	fprintf(stderr, "quality: FAIL %s: %s %.1f, the threshold is %s %.1f\n", set, what, got, op,
	        bound);
	(*failed)++;
}

static int
check(const qr_figures *f, const qr_thresholds *t, const char *set)
{
	int failed = 0;
	int bad = f->in_url + f->in_code + f->function_word;

	if (f->got != f->asked || f->valid != f->asked)
		fail(&failed, set, "valid questions", f->valid, "=", f->asked);
	if (qr_pct(f->grounded, f->valid) < t->min_grounded)
		fail(&failed, set, "grounded %", qr_pct(f->grounded, f->valid),
		     ">=", t->min_grounded);
	if (qr_pct(f->duplicates, f->valid) > t->max_duplicates)
		fail(&failed, set, "near-duplicates %", qr_pct(f->duplicates, f->valid),
		     "<=", t->max_duplicates);
	if (qr_pct(f->top_distractor_uses, f->mcq) > t->max_distractor)
		fail(&failed, set, "top distractor %", qr_pct(f->top_distractor_uses, f->mcq),
		     "<=", t->max_distractor);
	if (qr_key_max_share(f) > t->max_key_share)
		fail(&failed, set, "busiest answer letter %", qr_key_max_share(f),
		     "<=", t->max_key_share);
	if (spread(f) < t->min_spread)
		fail(&failed, set, "page spread %", spread(f), ">=", t->min_spread);
	if (bad > t->max_bad_blanks)
		fail(&failed, set, "blanks in URLs/code/on function words", bad,
		     "<=", t->max_bad_blanks);
	return failed;
}

static void
print_row(const char *doc, int npages, const char *provider, const char *kind, const qr_figures *f)
{
	char top[80];
	int  k;

	snprintf(top, sizeof(top), "%s", f->top_distractor);
	for (k = 0; top[k] != '\0'; k++)
		if (top[k] == '|')
			top[k] = '/';
	printf("| %s (%d p.) | %s | %s | %d/%d | %.0f%% | %.0f%% | %.0f%% (\"%s\") | %d/%d/%d/%d | "
	       "%d/%d/%d | %d/%d/%d/%d | %d | %d/%d (spread %.0f%%) |\n",
	       doc, npages, provider, kind, f->valid, f->asked, qr_pct(f->grounded, f->valid),
	       qr_pct(f->duplicates, f->valid), qr_pct(f->top_distractor_uses, f->mcq), top,
	       f->keys[0], f->keys[1], f->keys[2], f->keys[3], f->in_url, f->in_code,
	       f->function_word, f->number, f->name, f->term, f->other, f->open_forms,
	       f->pages_cited, f->doc_pages, spread(f));
}

static int
usage(void)
{
	fprintf(stderr, "usage: quality_report [--check] [--count N] [--fake URL] [--cran] "
	                "[LABEL=]FILE.pdf ...\n");
	return 2;
}

/* Every set of one document; adds the failed rules to *failed. -1 when it could not be made. */
static int
report_doc(qr_services *s, const qr_doc *d, int count, const qr_thresholds *t, int *failed)
{
	static const char *const kinds[2] = {"mcq", "mixed"};
	char                     doc[40], set[160], kind[32];
	char                   **texts = NULL;
	int                      npages = 0, rc = -1;
	qr_pages                 pages = {0, NULL};

	if (qr_upload(s, d->label, d->pdf, d->len, doc, &texts, &npages) != 0 ||
	    qr_pages_init(&pages, (const char *const *)texts, npages) != 0)
		goto out;
	for (int i = 0; i < QR_PROVIDERS; i++) {
		const char *name = qr_provider_name(s, i);
		if (name == NULL)
			continue;
		for (int k = 0; k < 2; k++) {
			qr_set     qs;
			qr_figures f;
			qr_make_set(s, i, doc, count, k == 1, &qs);
			snprintf(kind, sizeof(kind), "%d %s", count, kinds[k]);
			snprintf(set, sizeof(set), "%.63s, %.15s, %s", d->label, name, kind);
			if (qs.qs == NULL) {
				printf("| %s (%d p.) | %s | %s | failed: %s |\n", d->label, npages,
				       name, kind, qs.why);
				fprintf(stderr, "quality: FAIL %s: %s\n", set, qs.why);
				(*failed)++;
				qr_set_fini(&qs);
				continue;
			}
			if (qr_measure(qs.qs, count, &pages, &f) != 0) {
				qr_set_fini(&qs);
				goto out;
			}
			print_row(d->label, npages, name, kind, &f);
			if (t != NULL)
				*failed += check(&f, &t[i], set);
			qr_set_fini(&qs);
		}
	}
	rc = 0;
out:
	qr_pages_fini(&pages);
	for (int i = 0; texts != NULL && i < npages; i++)
		free(texts[i]);
	free(texts);
	return rc;
}

int
main(int argc, char **argv)
{
	qr_doc        docs[QR_MAX_DOCS];
	qr_thresholds t[QR_PROVIDERS];
	qr_services  *s = NULL;
	const char   *fake = NULL, *db = getenv("DATABASE_URL"), *rp = getenv("REDIS_PORT");
	int           ndocs = 0, count = 25, failed = 0, rc = 2;
	bool          do_check = false;
	long          redis_port = rp != NULL ? strtol(rp, NULL, 10) : 0;

	memset(docs, 0, sizeof(docs));
	cm_log_init("quality", CM_LOG_WARN);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0) {
			do_check = true;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = (int)strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--fake") == 0 && i + 1 < argc) {
			fake = argv[++i];
		} else if (argv[i][0] == '-' && strcmp(argv[i], "--cran") != 0) {
			return usage();
		} else if (ndocs == QR_MAX_DOCS) {
			fprintf(stderr, "quality: at most %d documents\n", QR_MAX_DOCS);
			return 2;
		} else if (strcmp(argv[i], "--cran") == 0) {
			if (cran_doc(&docs[ndocs++]) != 0)
				goto out;
		} else {
			const char *eq = strchr(argv[i], '='),
			           *path = eq != NULL ? eq + 1 : argv[i];
			const char *base =
			    strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
			snprintf(docs[ndocs].label, sizeof(docs[ndocs].label), "%.*s",
			         (int)(eq != NULL ? (size_t)(eq - argv[i]) : strlen(base)),
			         eq != NULL ? argv[i] : base);
			if (read_file(path, &docs[ndocs++]) != 0)
				goto out;
		}
	}
	if (ndocs == 0 || count < 1 || count > 200 || db == NULL || redis_port <= 0) {
		fprintf(stderr,
		        "quality: documents, a count of 1..200, DATABASE_URL and REDIS_PORT "
		        "are needed\n");
		return usage();
	}
	if (do_check && (thresholds("OFFLINE", &t[0]) != 0 || thresholds("FAKE", &t[1]) != 0))
		goto out;
	if (qr_services_start(&s, db, (int)redis_port, fake) != 0)
		goto out;
	printf("| document | provider | set | valid | grounded | near-dup | top distractor | keys "
	       "A/B/C/D | blanks URL/code/function word | blanks number/name/term/other | open "
	       "forms | pages cited |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < ndocs; i++)
		if (report_doc(s, &docs[i], count, do_check ? t : NULL, &failed) != 0)
			goto out;
	fflush(stdout);
	rc = failed > 0 ? 1 : 0;
	if (do_check)
		fprintf(stderr, "quality: %s (%d failed rules)\n", failed > 0 ? "FAILED" : "passed",
		        failed);
out:
	qr_services_stop(s);
	for (int i = 0; i < ndocs; i++)
		free(docs[i].pdf);
	return rc;
}
