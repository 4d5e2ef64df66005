/*
 * bench_extract.c - svc-pdf's extraction (extract.c, exactly as the service runs it) on one
 * file, for bench/extract.sh. Built only with -DBENCH=ON.
 *
 * usage: pdf_bench_extract [-j THREADS] [-n RUNS] FILE.pdf
 * Each of THREADS threads (its own independent mupdf context, like the RPC workers)
 * extracts the file RUNS times. Prints one line:
 *   pages=P chars=C threads=T runs=R wall_ms=W pages_per_s=X
 * where pages_per_s counts every page extracted by every thread over the wall time.
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/util.h"
#include "../../svc-pdf/extract.h"

typedef struct job {
	pdf_extractor *ex;
	const char    *data;
	size_t         len;
	int            runs;
	int            pages;
	int64_t        chars;
	cm_err         err;
	char           why[256];
} job;

static void *
job_main(void *arg)
{
	job       *j = arg;
	pdf_xctx  *x = NULL;
	pdf_limits lim = {1000000, 3600000, (size_t)4 << 30, (size_t)1 << 30};
	pdf_text   t;

	if ((j->err = pdf_xctx_alloc(j->ex, &x)) != CM_OK)
		return NULL;
	for (int i = 0; i < j->runs && j->err == CM_OK; i++) {
		pdf_text_init(&t, lim.max_text);
		j->err = pdf_extract(x, j->data, j->len, &lim, &t, j->why, sizeof(j->why));
		j->pages += t.npages;
		j->chars = t.text_length;
		pdf_text_fini(&t);
	}
	pdf_xctx_free(x);
	return NULL;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long  n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)n)) != NULL) {
		if (fread(p, 1, (size_t)n, f) == (size_t)n) {
			*len = (size_t)n;
		} else {
			free(p);
			p = NULL;
		}
	}
	fclose(f);
	return p;
}

int
main(int argc, char **argv)
{
	pdf_extractor *ex = NULL;
	job           *jobs = NULL;
	pthread_t     *th = NULL;
	int64_t        threads = 1, runs = 1, pages = 0;
	char          *data = NULL;
	size_t         len = 0;
	uint64_t       t0, t1;
	int            opt, rc = 1;

	while ((opt = getopt(argc, argv, "j:n:")) != -1) {
		if ((opt == 'j' &&
		     (!cm_parse_i64(optarg, &threads) || threads < 1 || threads > 64)) ||
		    (opt == 'n' && (!cm_parse_i64(optarg, &runs) || runs < 1)) ||
		    (opt != 'j' && opt != 'n'))
			goto usage;
	}
	if (optind + 1 != argc)
		goto usage;
	if ((data = slurp(argv[optind], &len)) == NULL) {
		fprintf(stderr, "cannot read %s\n", argv[optind]);
		goto out;
	}
	if (pdf_extractor_alloc(&ex) != CM_OK ||
	    (jobs = calloc((size_t)threads, sizeof(*jobs))) == NULL ||
	    (th = calloc((size_t)threads, sizeof(*th))) == NULL)
		goto out;
	t0 = cm_mono_ns();
	for (int i = 0; i < threads; i++) {
		jobs[i] = (job){ex, data, len, (int)runs, 0, 0, CM_OK, ""};
		if (pthread_create(&th[i], NULL, job_main, &jobs[i]) != 0)
			goto out;
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = cm_mono_ns();
	for (int i = 0; i < threads; i++) {
		if (jobs[i].err != CM_OK) {
			fprintf(stderr, "extraction failed: %s\n", jobs[i].why);
			goto out;
		}
		pages += jobs[i].pages;
	}
	printf("pages=%d chars=%lld threads=%lld runs=%lld wall_ms=%.1f pages_per_s=%.0f\n",
	       jobs[0].pages / (int)runs, (long long)jobs[0].chars, (long long)threads,
	       (long long)runs, (double)(t1 - t0) / 1e6, (double)pages / ((double)(t1 - t0) / 1e9));
	rc = 0;
	goto out;
usage:
	fprintf(stderr, "usage: %s [-j THREADS] [-n RUNS] FILE.pdf\n", argv[0]);
	rc = 2;
out:
	free(th);
	free(jobs);
	pdf_extractor_free(ex);
	free(data);
	return rc;
}
