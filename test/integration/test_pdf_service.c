/*
 * test_pdf_service.c - svc-pdf against the real PostgreSQL and Redis of the pgredis fixture:
 * handlers called directly with a worker state (as the RPC workers do), plus one round trip
 * through the RPC server. Every run uses PDFs with a fresh nonce in their text, so hashes (and
 * Redis cache keys) never collide with earlier runs.
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm/arena.h"
#include "cm/log.h"
#include "cm/util.h"
#include "cm/service.h"
#include "worker_helper.h"
#include "../../svc-pdf/files.h"
#include "../../svc-pdf/handlers.h"
#include "../../svc-pdf/indexer.h"
#include "proto/pdf.pb-c.h"
#include "../../svc-pdf/server.h"
#include "../../svc-pdf/store.h"
#include "../../svc-pdf/spool.h"
#include "../../svc-pdf/testpdf.h"
#include "../../svc-pdf/upload.h"

#define RPC_URL "tcp://127.0.0.1:27192"

static pdf_service svc;
static cm_metrics *metrics;
static pdf_worker *W;          /* the test's worker */
static const char *db_url;     /* CM_TEST_PG */
static int64_t     redis_port; /* CM_TEST_REDIS_PORT */
static char        datadir[64];
static char        nonce[40]; /* makes this run's PDFs unique */
static int         seq;       /* and each PDF within the run */

/* ---- helpers ------------------------------------------------------------------------------ */

typedef test_call call; /* worker_helper.h */

/* Calls handler fn as `subject` with a response of descriptor d; the response lives in c. */
static cm_err
invoke(call *c, pdf_worker *w, cm_rpc_handler_fn fn, const char *subject, const void *req,
       const ProtobufCMessageDescriptor *d, void **resp)
{
	cm_err err = test_invoke(c, w, fn, subject, req, d, resp);

	assert_non_null(*resp);
	return err;
}

static void
done(call *c)
{
	cm_arena_fini(&c->arena);
}

/* A unique PDF: `pages` pages whose text carries the run nonce and tag. */
static void
make_pdf(cm_buf *b, int npages, const char *title, const char *tag)
{
	const char *pages[64];
	char        text[64][2048];
	pdf_testpdf o;
	int         id = ++seq;

	assert_true(npages <= 64);
	for (int i = 0; i < npages; i++) {
		snprintf(
		    text[i], sizeof(text[i]),
		    "Document %s %d %s page %d.\n"
		    "The quick brown fox jumps over the lazy dog near page %d.\n\n"
		    "Photosynthesis converts light energy into chemical energy in plants.\n"
		    "Mitochondria are the powerhouse of the cell, a phrase every student knows.\n"
		    "%s",
		    nonce, id, tag, i + 1, i + 1,
		    i == 2 ? "Zebrafish regenerate their hearts, which is remarkable." : "");
		pages[i] = text[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = npages;
	o.pages = pages;
	o.title = title;
	o.author = "Integration Author";
	cm_buf_init(b, (size_t)16 << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
}

static cm_err
upload(pdf_worker *w, const char *subject, const char *filename, const cm_buf *pdf,
       Pdf__UploadResponse *out, char *msg)
{
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	call                 c;
	cm_err               err;

	rq.filename = (char *)filename;
	rq.content.data = (uint8_t *)pdf->data;
	rq.content.len = pdf->len;
	err = invoke(&c, w, pdf_handle_upload, subject, &rq, &pdf__upload_response__descriptor,
	             (void **)&rs);
	if (msg != NULL)
		cm_strlcpy(msg, c.ctx.message, 256);
	if (err == CM_OK && out != NULL) {
		/* Keep what the tests look at beyond the arena. */
		*out = *rs;
		out->document = malloc(sizeof(Pdf__Document));
		assert_non_null(out->document);
		*out->document = *rs->document;
		out->document->id = strdup(rs->document->id);
		out->document->sha256 = strdup(rs->document->sha256);
		out->document->filename = strdup(rs->document->filename);
		out->document->title = strdup(rs->document->title);
		out->document->metadata = NULL;
	}
	done(&c);
	return err;
}

static void
upload_free(Pdf__UploadResponse *u)
{
	if (u->document == NULL)
		return;
	free(u->document->id);
	free(u->document->sha256);
	free(u->document->filename);
	free(u->document->title);
	free(u->document);
	u->document = NULL;
}

static uint64_t
metric(const char *name)
{
	cm_buf      b;
	const char *p;
	size_t      n = strlen(name);
	uint64_t    v = 0;

	cm_buf_init(&b, 1 << 20);
	assert_int_equal(cm_metrics_render(metrics, &b), CM_OK);
	for (p = b.data; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			v = strtoull(p + n + 1, NULL, 10);
			break;
		}
	}
	cm_buf_fini(&b);
	return v;
}

static int
count_rows(const char *sql, const char *arg)
{
	cm_pg_result *res = NULL;
	const char   *p[] = {arg};
	int64_t       n = -1;

	assert_int_equal(cm_pg_exec(W->pg, sql, arg != NULL ? 1 : 0, p, &res), CM_OK);
	assert_true(cm_parse_i64(cm_pg_get(res, 0, 0), &n));
	cm_pg_result_free(res);
	return (int)n;
}

static bool
file_exists(const char *sha)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s.pdf", datadir, sha);
	return access(path, F_OK) == 0;
}

static int
harness(const char *what)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s/pgredis.sh %s %s >/dev/null 2>&1", getenv("CM_TEST_HARNESS"),
	         what, getenv("CM_TEST_STATE"));
	return system(cmd);
}

/* A worker as the skeleton makes them: connections of its own, borrowed by the worker. */
static cm_err
new_worker(pdf_worker **out)
{
	cm_pg    *pg = NULL;
	cm_redis *redis = NULL;
	cm_err    err;

	if ((err = cm_pg_open(&pg, db_url, PDF_SCHEMA)) != CM_OK ||
	    (err = cm_redis_open(&redis, "127.0.0.1", (int)redis_port, CM_REDIS_TIMEOUT_MS)) !=
	        CM_OK ||
	    (err = pdf_worker_alloc(&svc, pg, redis, out)) != CM_OK) {
		cm_redis_close(redis);
		cm_pg_close(pg);
	}
	return err;
}

static void
drop_worker(pdf_worker *w)
{
	cm_pg    *pg = w->pg;
	cm_redis *redis = w->redis;

	pdf_worker_free(w);
	cm_redis_close(redis);
	cm_pg_close(pg);
}

/* ---- fixture ----------------------------------------------------------------------------- */

static int
setup(void **state)
{
	pdf_config cfg;
	cm_pg     *pg = NULL;
	char       r[16];

	(void)state;
	cm_log_init("pdf-test", CM_LOG_WARN);
	pdf_config_defaults(&cfg);
	db_url = getenv("CM_TEST_PG");
	if (getenv("CM_TEST_REDIS_PORT") == NULL ||
	    !cm_parse_i64(getenv("CM_TEST_REDIS_PORT"), &redis_port))
		redis_port = 26379;
	snprintf(datadir, sizeof(datadir), "/tmp/pdf-itest-XXXXXX");
	if (db_url == NULL || mkdtemp(datadir) == NULL) {
		fprintf(stderr, "CM_TEST_PG unset or no temp dir\n");
		return -1;
	}
	cfg.data_dir = datadir;
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, 8, nonce);

	/* A clean schema: every migration down, then up. */
	if (cm_pg_open(&pg, db_url, PDF_SCHEMA) != CM_OK ||
	    cm_pg_migrate_down(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count, 0) != CM_OK ||
	    cm_pg_migrate_up(pg, PDF_SCHEMA, pdf_migrations, pdf_migrations_count) != CM_OK) {
		fprintf(stderr, "migrations failed: %s\n", pg != NULL ? cm_pg_errmsg(pg) : "");
		return -1;
	}
	cm_pg_close(pg);
	if ((metrics = cm_metrics_alloc("pdf_")) == NULL ||
	    pdf_service_init(&svc, &cfg, metrics) != CM_OK || new_worker(&W) != CM_OK) {
		fprintf(stderr, "service set-up failed\n");
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	drop_worker(W);
	pdf_service_fini(&svc);
	cm_metrics_free(metrics);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void
test_upload_get_and_file(void **state)
{
	Pdf__UploadResponse u;
	Pdf__GetRequest     g = PDF__GET_REQUEST__INIT;
	Pdf__Document      *d = NULL;
	uint64_t            x0 = metric("pdf_extractions_total");
	cm_buf              pdf;
	call                c;
	char                sha[65];
	DIR                *dir;
	struct dirent      *de;

	(void)state;
	make_pdf(&pdf, 3, "Biology Notes", "get");
	pdf_sha256_hex(pdf.data, pdf.len, sha);
	assert_int_equal(upload(W, "alice", "../../etc/My Notes.pdf", &pdf, &u, NULL), CM_OK);
	assert_true(u.extracted);
	assert_false(u.existing);
	assert_string_equal(u.document->filename, "My Notes.pdf");
	assert_string_equal(u.document->sha256, sha);
	assert_string_equal(u.document->title, "Biology Notes");
	assert_int_equal(u.document->pages, 3);
	assert_int_equal(u.document->size_bytes, (int64_t)pdf.len);
	assert_true(u.document->text_length > 300);
	assert_int_equal(metric("pdf_extractions_total"), x0 + 1);
	assert_true(file_exists(sha));
	/* Nothing but <sha>.pdf files in the data dir (no temp files left), and the upload
	 * spools' directory (spool.h). */
	assert_non_null(dir = opendir(datadir));
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, "spool") == 0)
			continue;
		if (de->d_name[0] != '.')
			assert_int_equal(strlen(de->d_name), 64 + 4);
		else
			assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
	}
	closedir(dir);

	g.id = u.document->id;
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get, "alice", &g, &pdf__document__descriptor, (void **)&d),
	    CM_OK);
	assert_string_equal(d->id, u.document->id);
	assert_string_equal(d->author, "Integration Author");
	assert_string_equal(d->metadata->title, "Biology Notes");
	assert_string_equal(d->metadata->subject, "Unknown");
	assert_int_equal(strlen(d->created_at), 24);
	done(&c);
	upload_free(&u);
	cm_buf_fini(&pdf);
}

static void
test_dedupe_and_second_user(void **state)
{
	Pdf__UploadResponse a, a2, b;
	uint64_t            x0 = metric("pdf_extractions_total");
	uint64_t            s0 = metric("pdf_extractions_skipped_total");
	cm_buf              pdf;

	(void)state;
	make_pdf(&pdf, 2, "Shared", "dedupe");
	assert_int_equal(upload(W, "alice", "shared.pdf", &pdf, &a, NULL), CM_OK);
	assert_true(a.extracted);
	/* Same user, same bytes: the same document back. */
	assert_int_equal(upload(W, "alice", "renamed.pdf", &pdf, &a2, NULL), CM_OK);
	assert_true(a2.existing);
	assert_false(a2.extracted);
	assert_string_equal(a2.document->id, a.document->id);
	assert_string_equal(a2.document->filename, "shared.pdf");
	/* Another user: an own document, no second extraction. */
	assert_int_equal(upload(W, "bob", "bobs.pdf", &pdf, &b, NULL), CM_OK);
	assert_false(b.existing);
	assert_false(b.extracted);
	assert_string_not_equal(b.document->id, a.document->id);
	assert_int_equal(b.document->pages, 2);
	assert_int_equal(b.document->text_length, a.document->text_length);
	assert_int_equal(metric("pdf_extractions_total"), x0 + 1);
	assert_int_equal(metric("pdf_extractions_skipped_total"), s0 + 2);
	assert_int_equal(
	    count_rows("SELECT count(*) FROM blobs WHERE sha256 = $1", a.document->sha256), 1);
	upload_free(&a);
	upload_free(&a2);
	upload_free(&b);
	cm_buf_fini(&pdf);
}

static void
test_redis_cache_and_outage(void **state)
{
	Pdf__UploadResponse u;
	uint64_t            x0;
	cm_buf              pdf, pdf2;

	(void)state;
	make_pdf(&pdf, 2, "Cached", "cache");
	assert_int_equal(upload(W, "carol", "c.pdf", &pdf, &u, NULL), CM_OK);
	assert_true(u.extracted);
	/* As if another replica had extracted it but its database write never landed. */
	assert_int_equal(cm_pg_exec(W->pg, "DELETE FROM documents WHERE sha256 = $1", 1,
	                            (const char *const[]){u.document->sha256}, NULL),
	                 CM_OK);
	assert_int_equal(cm_pg_exec(W->pg, "DELETE FROM blobs WHERE sha256 = $1", 1,
	                            (const char *const[]){u.document->sha256}, NULL),
	                 CM_OK);
	upload_free(&u);
	x0 = metric("pdf_extractions_total");
	assert_int_equal(upload(W, "carol", "c.pdf", &pdf, &u, NULL), CM_OK);
	assert_false(u.extracted); /* from Redis */
	assert_false(u.existing);
	assert_int_equal(u.document->pages, 2);
	assert_int_equal(metric("pdf_extractions_total"), x0);
	assert_int_equal(
	    count_rows("SELECT count(*) FROM pages WHERE sha256 = $1", u.document->sha256), 2);
	upload_free(&u);

	/* Redis down: uploads still work (and extract). */
	assert_int_equal(harness("stop-redis"), 0);
	make_pdf(&pdf2, 1, "No cache", "outage");
	assert_int_equal(upload(W, "carol", "d.pdf", &pdf2, &u, NULL), CM_OK);
	assert_true(u.extracted);
	upload_free(&u);
	assert_int_equal(harness("start-redis"), 0);
	cm_buf_fini(&pdf);
	cm_buf_fini(&pdf2);
}

/* Redis comes back even when the outage test fails half-way. */
static int
redis_back(void **state)
{
	(void)state;
	return harness("start-redis") == 0 ? 0 : -1;
}

static void
test_list_paging_search(void **state)
{
	static const char  *titles[] = {"Alpha", "Special_Title%", "Gamma", "Delta", "Epsilon"};
	Pdf__UploadResponse u;
	Pdf__ListRequest    rq = PDF__LIST_REQUEST__INIT;
	Pdf__ListResponse  *rs = NULL;
	char                ids[5][37], seen[5][37], name[32], cursor[256] = "";
	int                 nseen = 0;
	call                c;
	cm_buf              pdf;

	(void)state;
	for (int i = 0; i < 5; i++) {
		make_pdf(&pdf, 1, titles[i], "list");
		snprintf(name, sizeof(name), "doc%d.pdf", i + 1);
		assert_int_equal(upload(W, "dave", name, &pdf, &u, NULL), CM_OK);
		cm_strlcpy(ids[i], u.document->id, sizeof(ids[i]));
		upload_free(&u);
		cm_buf_fini(&pdf);
	}
	/* Keyset pages of 2, newest first, until next_cursor is empty. */
	do {
		rq.limit = 2;
		rq.cursor = cursor;
		assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
		                        &pdf__list_response__descriptor, (void **)&rs),
		                 CM_OK);
		assert_int_equal(rs->total, 5);
		assert_true(rs->n_items <= 2);
		for (size_t i = 0; i < rs->n_items; i++)
			cm_strlcpy(seen[nseen++], rs->items[i]->id, 37);
		cm_strlcpy(cursor, rs->next_cursor, sizeof(cursor));
		done(&c);
	} while (cursor[0] != '\0' && nseen < 6);
	assert_int_equal(nseen, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(seen[i], ids[4 - i]);

	/* Legacy offset paging. */
	memset(&rq, 0, sizeof(rq));
	pdf__list_request__init(&rq);
	rq.limit = 2;
	rq.offset = 2;
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_int_equal(rs->n_items, 2);
	assert_string_equal(rs->items[0]->id, ids[2]);
	assert_string_equal(rs->items[1]->id, ids[1]);
	done(&c);

	/* Search: case-insensitive, % and _ literal, title or filename. */
	pdf__list_request__init(&rq);
	rq.search = (char *)"special_title%";
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_int_equal(rs->total, 1);
	assert_string_equal(rs->items[0]->title, "Special_Title%");
	done(&c);
	rq.search = (char *)"%";
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_int_equal(rs->total, 1);
	done(&c);
	rq.search = (char *)"DOC3";
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_int_equal(rs->n_items, 1);
	assert_string_equal(rs->items[0]->filename, "doc3.pdf");
	done(&c);

	/* Bad arguments. */
	pdf__list_request__init(&rq);
	rq.limit = 101;
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_EINVAL);
	done(&c);
	rq.limit = 0;
	rq.cursor = (char *)"not-a-cursor";
	assert_int_equal(invoke(&c, W, pdf_handle_list, "dave", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_EINVAL);
	done(&c);
	/* Another user sees none of it. */
	pdf__list_request__init(&rq);
	assert_int_equal(invoke(&c, W, pdf_handle_list, "mallory", &rq,
	                        &pdf__list_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_int_equal(rs->total, 0);
	assert_int_equal(rs->n_items, 0);
	assert_string_equal(rs->next_cursor, "");
	done(&c);
}

/* pdf.Search for query; returns the stage that answered (ChunksResponse.match). */
static const char *
search(Pdf__SearchRequest *sr, const char *query, int limit, call *c, Pdf__ChunksResponse **ch)
{
	sr->query = (char *)query;
	sr->limit = limit;
	sr->fallback = true;
	assert_int_equal(invoke(c, W, pdf_handle_search, "erin", sr,
	                        &pdf__chunks_response__descriptor, (void **)ch),
	                 CM_OK);
	return (*ch)->match;
}

static void
test_pages_chunks_search(void **state)
{
	Pdf__UploadResponse  u;
	Pdf__GetPageRequest  pr = PDF__GET_PAGE_REQUEST__INIT;
	Pdf__Page           *pg = NULL;
	Pdf__ChunksRequest   cr = PDF__CHUNKS_REQUEST__INIT;
	Pdf__SearchRequest   sr = PDF__SEARCH_REQUEST__INIT;
	Pdf__ChunksResponse *ch = NULL;
	call                 c;
	cm_buf               pdf;

	(void)state;
	make_pdf(&pdf, 12, "Pages", "pages");
	assert_int_equal(upload(W, "erin", "pages.pdf", &pdf, &u, NULL), CM_OK);
	pr.id = u.document->id;
	pr.page = 2;
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get_page, "erin", &pr, &pdf__page__descriptor, (void **)&pg),
	    CM_OK);
	assert_int_equal(pg->page, 2);
	assert_non_null(strstr(pg->text, "pages page 2."));
	done(&c);
	for (int bad = 0; bad < 3; bad++) {
		pr.page = bad == 0 ? 0 : bad == 1 ? 13 : -1;
		assert_int_equal(invoke(&c, W, pdf_handle_get_page, "erin", &pr,
		                        &pdf__page__descriptor, (void **)&pg),
		                 CM_ENOTFOUND);
		done(&c);
	}

	cr.id = u.document->id;
	assert_int_equal(invoke(&c, W, pdf_handle_chunks, "erin", &cr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_OK);
	assert_string_equal(ch->sha256, u.document->sha256);
	assert_true(ch->n_chunks >= 2);
	assert_int_equal(ch->chunks[0]->page_first, 1);
	assert_int_equal(ch->chunks[ch->n_chunks - 1]->page_last, 12);
	for (size_t i = 0; i < ch->n_chunks; i++) {
		assert_int_equal(ch->chunks[i]->index, (int)i);
		assert_true(strlen(ch->chunks[i]->text) <= 2500);
		assert_int_equal(ch->chunks[i]->n_page_heads, 0); /* not asked for */
	}
	done(&c);
	/* pdf.Chunks with page_heads (how svc-qgen asks): every later page of a chunk starts in its
	 * text with its head, right after an empty line. */
	cr.first_page = 5;
	cr.last_page = 6;
	cr.page_heads = true;
	assert_int_equal(invoke(&c, W, pdf_handle_chunks, "erin", &cr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_OK);
	assert_true(ch->n_chunks >= 1);
	{
		int spanning = 0;
		for (size_t i = 0; i < ch->n_chunks; i++) {
			const Pdf__Chunk *k = ch->chunks[i];
			assert_true(k->page_last >= 5 && k->page_first <= 6);
			assert_int_equal(k->n_page_heads, (size_t)(k->page_last - k->page_first));
			for (size_t h = 0; h < k->n_page_heads; h++) {
				char want[32];
				snprintf(want, sizeof(want), "\n\n%.20s", k->page_heads[h]);
				assert_non_null(strstr(k->text, want));
				spanning++;
			}
		}
		assert_true(spanning > 0);
	}
	done(&c);
	cr.page_heads = false;

	sr.id = u.document->id;
	sr.query = (char *)"zebrafish hearts";
	assert_int_equal(invoke(&c, W, pdf_handle_search, "erin", &sr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_OK);
	assert_int_equal(ch->n_chunks, 1);
	assert_true(ch->chunks[0]->page_first <= 3 && ch->chunks[0]->page_last >= 3);
	assert_non_null(strstr(ch->chunks[0]->text, "Zebrafish"));
	done(&c);
	sr.query = (char *)"mitochondria";
	sr.limit = 2;
	assert_int_equal(invoke(&c, W, pdf_handle_search, "erin", &sr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_OK);
	assert_int_equal(ch->n_chunks, 2);
	done(&c);
	/* Every word present: the search as it always was. */
	assert_string_equal(search(&sr, "zebrafish hearts", 5, &c, &ch), "all");
	done(&c);
	/* Without fallback (how svc-qgen and svc-eval search): a question finds nothing. */
	sr.query = (char *)"Why do zebrafish regrow hearts?";
	sr.limit = 5;
	sr.fallback = false;
	assert_int_equal(invoke(&c, W, pdf_handle_search, "erin", &sr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_OK);
	assert_int_equal(ch->n_chunks, 0);
	assert_string_equal(ch->match, "");
	done(&c);
	/* A question: not every word is in the text; its key terms are (the chunk of page 3 holds
	 * both "zebrafish" and "hearts", so it comes first). */
	assert_string_equal(search(&sr, "Why do zebrafish regrow hearts?", 5, &c, &ch), "some");
	assert_true(ch->n_chunks >= 1);
	assert_true(ch->chunks[0]->page_first <= 3 && ch->chunks[0]->page_last >= 3);
	assert_non_null(strstr(ch->chunks[0]->text, "Zebrafish"));
	done(&c);
	/* Prefixes: "regenerating" finds "regenerate". */
	assert_string_equal(search(&sr, "regenerating", 5, &c, &ch), "some");
	assert_non_null(strstr(ch->chunks[0]->text, "regenerate"));
	done(&c);
	/* Misspelled beyond any prefix: similar spelling (pg_trgm, installed by migration 003). */
	assert_string_equal(search(&sr, "zebrafush", 5, &c, &ch), "similar");
	assert_non_null(strstr(ch->chunks[0]->text, "Zebrafish"));
	done(&c);
	/* Nothing like it anywhere, and a query of stop words only: no chunk. */
	assert_string_equal(search(&sr, "quantum chromodynamics", 5, &c, &ch), "");
	assert_int_equal(ch->n_chunks, 0);
	done(&c);
	assert_string_equal(search(&sr, "what is it?", 5, &c, &ch), "");
	assert_int_equal(ch->n_chunks, 0);
	done(&c);
	/* page_heads: each later page of a chunk starts in its text with those characters, right
	 * after an empty line; without the flag there are none. */
	sr.page_heads = true;
	assert_string_equal(search(&sr, "mitochondria", 5, &c, &ch), "all");
	{
		int spanning = 0;
		for (size_t i = 0; i < ch->n_chunks; i++) {
			const Pdf__Chunk *k = ch->chunks[i];
			assert_int_equal(k->n_page_heads, (size_t)(k->page_last - k->page_first));
			for (size_t h = 0; h < k->n_page_heads; h++) {
				char want[32];
				assert_int_equal(strlen(k->page_heads[h]),
				                 64); /* pages are longer */
				snprintf(want, sizeof(want), "\n\n%.20s", k->page_heads[h]);
				assert_non_null(strstr(k->text, want));
				spanning++;
			}
		}
		assert_true(spanning > 0);
	}
	done(&c);
	sr.page_heads = false;
	assert_string_equal(search(&sr, "mitochondria", 5, &c, &ch), "all");
	assert_int_equal(ch->chunks[0]->n_page_heads, 0);
	done(&c);
	sr.limit = 2;
	sr.query = (char *)"";
	assert_int_equal(invoke(&c, W, pdf_handle_search, "erin", &sr,
	                        &pdf__chunks_response__descriptor, (void **)&ch),
	                 CM_EINVAL);
	done(&c);
	upload_free(&u);
	cm_buf_fini(&pdf);
}

static void
test_other_users_document(void **state)
{
	Pdf__UploadResponse u;
	Pdf__GetRequest     g = PDF__GET_REQUEST__INIT;
	Pdf__GetPageRequest pr = PDF__GET_PAGE_REQUEST__INIT;
	Pdf__DeleteRequest  dr = PDF__DELETE_REQUEST__INIT;
	Pdf__ChunksRequest  cr = PDF__CHUNKS_REQUEST__INIT;
	void               *rs;
	call                c;
	cm_buf              pdf;

	(void)state;
	make_pdf(&pdf, 1, "Private", "private");
	assert_int_equal(upload(W, "frank", "private.pdf", &pdf, &u, NULL), CM_OK);
	g.id = pr.id = dr.id = cr.id = u.document->id;
	pr.page = 1;
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get, "grace", &g, &pdf__document__descriptor, &rs),
	    CM_ENOTFOUND);
	done(&c);
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get_page, "grace", &pr, &pdf__page__descriptor, &rs),
	    CM_ENOTFOUND);
	done(&c);
	assert_int_equal(
	    invoke(&c, W, pdf_handle_chunks, "grace", &cr, &pdf__chunks_response__descriptor, &rs),
	    CM_ENOTFOUND);
	done(&c);
	assert_int_equal(
	    invoke(&c, W, pdf_handle_delete, "grace", &dr, &pdf__delete_response__descriptor, &rs),
	    CM_ENOTFOUND);
	done(&c);
	g.id = (char *)"not-a-uuid";
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get, "frank", &g, &pdf__document__descriptor, &rs),
	    CM_ENOTFOUND);
	done(&c);
	/* No subject: unauthenticated. */
	g.id = u.document->id;
	assert_int_equal(invoke(&c, W, pdf_handle_get, "", &g, &pdf__document__descriptor, &rs),
	                 CM_EAUTH);
	done(&c);
	/* The owner still has it. */
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get, "frank", &g, &pdf__document__descriptor, &rs), CM_OK);
	done(&c);
	upload_free(&u);
	cm_buf_fini(&pdf);
}

static cm_err
delete_doc(const char *subject, const char *id)
{
	Pdf__DeleteRequest dr = PDF__DELETE_REQUEST__INIT;
	void              *rs;
	call               c;
	cm_err             err;

	dr.id = (char *)id;
	err =
	    invoke(&c, W, pdf_handle_delete, subject, &dr, &pdf__delete_response__descriptor, &rs);
	done(&c);
	return err;
}

static void
test_delete_shared_blob(void **state)
{
	Pdf__UploadResponse  a, b;
	Pdf__GetPageRequest  pr = PDF__GET_PAGE_REQUEST__INIT;
	Pdf__SelectedRequest sq = PDF__SELECTED_REQUEST__INIT;
	void                *rs;
	call                 c;
	cm_buf               pdf;
	char                 sha[65];

	(void)state;
	make_pdf(&pdf, 2, "Both", "delete");
	assert_int_equal(upload(W, "henry", "h.pdf", &pdf, &a, NULL), CM_OK);
	assert_int_equal(upload(W, "iris", "i.pdf", &pdf, &b, NULL), CM_OK);
	cm_strlcpy(sha, a.document->sha256, sizeof(sha));
	assert_int_equal(delete_doc("henry", a.document->id), CM_OK);
	assert_int_equal(delete_doc("henry", a.document->id), CM_ENOTFOUND);
	/* Henry's selection went with the document. */
	assert_int_equal(invoke(&c, W, pdf_handle_selected, "henry", &sq,
	                        &pdf__selected_response__descriptor, &rs),
	                 CM_EPRECOND);
	done(&c);
	/* Iris still reads it; the blob and the file stay. */
	pr.id = b.document->id;
	pr.page = 2;
	assert_int_equal(
	    invoke(&c, W, pdf_handle_get_page, "iris", &pr, &pdf__page__descriptor, &rs), CM_OK);
	done(&c);
	assert_true(file_exists(sha));
	assert_int_equal(count_rows("SELECT count(*) FROM blobs WHERE sha256 = $1", sha), 1);
	/* The last reference takes the blob, its pages and chunks, and the file. */
	assert_int_equal(delete_doc("iris", b.document->id), CM_OK);
	assert_false(file_exists(sha));
	assert_int_equal(count_rows("SELECT count(*) FROM blobs WHERE sha256 = $1", sha), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM pages WHERE sha256 = $1", sha), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1", sha), 0);
	upload_free(&a);
	upload_free(&b);
	/* And the same bytes can come back afterwards (extracted again). */
	assert_int_equal(upload(W, "iris", "again.pdf", &pdf, &b, NULL), CM_OK);
	assert_true(b.extracted);
	assert_true(file_exists(sha));
	upload_free(&b);
	cm_buf_fini(&pdf);
}

static void
test_select_and_selected(void **state)
{
	Pdf__UploadResponse    a, b;
	Pdf__SelectRequest     sel = PDF__SELECT_REQUEST__INIT;
	Pdf__SelectedRequest   sq = PDF__SELECTED_REQUEST__INIT;
	Pdf__SelectedResponse *rs = NULL;
	call                   c;
	cm_buf                 p1, p2;

	(void)state;
	assert_int_equal(invoke(&c, W, pdf_handle_selected, "judy", &sq,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_EPRECOND);
	assert_string_equal(c.ctx.message, "No PDF selected");
	done(&c);
	make_pdf(&p1, 1, "First", "sel1");
	make_pdf(&p2, 1, "Second", "sel2");
	assert_int_equal(upload(W, "judy", "first.pdf", &p1, &a, NULL), CM_OK);
	assert_int_equal(upload(W, "judy", "second.pdf", &p2, &b, NULL), CM_OK);
	/* Uploading selects. */
	assert_int_equal(invoke(&c, W, pdf_handle_selected, "judy", &sq,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_string_equal(rs->document->id, b.document->id);
	assert_int_equal(strlen(rs->selected_at), 24);
	done(&c);
	sel.filename = (char *)"first.pdf";
	assert_int_equal(invoke(&c, W, pdf_handle_select, "judy", &sel,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_string_equal(rs->document->id, a.document->id);
	assert_string_equal(rs->document->metadata->title, "First");
	done(&c);
	assert_int_equal(invoke(&c, W, pdf_handle_selected, "judy", &sq,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_string_equal(rs->document->id, a.document->id);
	done(&c);
	/* Re-uploading the second selects it again (existing). */
	upload_free(&b);
	assert_int_equal(upload(W, "judy", "second.pdf", &p2, &b, NULL), CM_OK);
	assert_true(b.existing);
	assert_int_equal(invoke(&c, W, pdf_handle_selected, "judy", &sq,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_OK);
	assert_string_equal(rs->document->id, b.document->id);
	done(&c);
	sel.filename = (char *)"nope.pdf";
	assert_int_equal(invoke(&c, W, pdf_handle_select, "judy", &sel,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_ENOTFOUND);
	assert_string_equal(c.ctx.message, "PDF file not found");
	done(&c);
	/* Someone else's filename is not found either. */
	sel.filename = (char *)"first.pdf";
	assert_int_equal(invoke(&c, W, pdf_handle_select, "mallory", &sel,
	                        &pdf__selected_response__descriptor, (void **)&rs),
	                 CM_ENOTFOUND);
	done(&c);
	upload_free(&a);
	upload_free(&b);
	cm_buf_fini(&p1);
	cm_buf_fini(&p2);
}

static void
test_bad_uploads(void **state)
{
	pdf_testpdf enc = {.npages = 1, .encrypted = true};
	pdf_testpdf img = {.npages = 1, .image_only = true};
	cm_buf      b;
	char        msg[256];
	uint64_t    f0 = metric("pdf_extraction_failures_total");

	(void)state;
	cm_buf_init(&b, 1 << 20);
	assert_int_equal(cm_buf_appends(&b, "just text, not a PDF"), CM_OK);
	assert_int_equal(upload(W, "kim", "x.pdf", &b, NULL, msg), CM_EINVAL);
	assert_string_equal(msg, "not a PDF");
	cm_buf_reset(&b);
	assert_int_equal(upload(W, "kim", "x.pdf", &b, NULL, msg), CM_EINVAL);
	assert_string_equal(msg, "empty file");
	assert_int_equal(pdf_testpdf_build(&enc, &b), CM_OK);
	assert_int_equal(upload(W, "kim", "x.pdf", &b, NULL, msg), CM_EPRECOND);
	assert_string_equal(msg, "encrypted PDF");
	cm_buf_reset(&b);
	assert_int_equal(pdf_testpdf_build(&img, &b), CM_OK);
	assert_int_equal(upload(W, "kim", "x.pdf", &b, NULL, msg), CM_EPRECOND);
	assert_string_equal(msg, "no text layer (scanned PDF?)");
	assert_int_equal(metric("pdf_extraction_failures_total"), f0 + 2);
	/* Over the size limit. */
	svc.cfg.max_upload = 100;
	assert_int_equal(upload(W, "kim", "x.pdf", &b, NULL, msg), CM_ETOOBIG);
	svc.cfg.max_upload = 52428800;
	/* No subject. */
	assert_int_equal(upload(W, "", "x.pdf", &b, NULL, msg), CM_EAUTH);
	/* Nothing of kim's was stored, and no file either. */
	assert_int_equal(count_rows("SELECT count(*) FROM documents WHERE owner_id = $1", "kim"),
	                 0);
	cm_buf_fini(&b);
}

/* A unique PDF of npages pages of about 1,200 bytes each (enough for chunks in every batch);
 * claimed > npages makes the page tree claim more pages than it has, so extraction fails at
 * page npages + 1 ("corrupt PDF"). */
static void
make_long_pdf(cm_buf *b, int npages, long long claimed, const char *tag)
{
	const char **pages = calloc((size_t)npages, sizeof(*pages));
	char        *text = malloc((size_t)npages * 1400);
	pdf_testpdf  o;
	int          id = ++seq;

	assert_non_null(pages);
	assert_non_null(text);
	for (int i = 0; i < npages; i++) {
		char *t = text + (size_t)i * 1400;
		int   n = snprintf(t, 1400, "Document %s %d %s page %d.\n", nonce, id, tag, i + 1);
		while (n < 1200)
			n += snprintf(t + n, 1400 - (size_t)n,
			              "Cells divide and grow, %d times over.\n", i + n);
		pages[i] = t;
	}
	memset(&o, 0, sizeof(o));
	o.npages = npages;
	o.pages = pages;
	o.claimed_count = claimed;
	cm_buf_init(b, (size_t)64 << 20);
	assert_int_equal(pdf_testpdf_build(&o, b), CM_OK);
	free(pages);
	free(text);
}

static cm_err
upload_direct(const char *owner, const cm_buf *pdf, pdf_upload_out *out, char *why)
{
	pdf_upload_in in = {owner, "long.pdf", (const uint8_t *)pdf->data, pdf->len,
	                    cm_now_ms() + 30000};

	return pdf_upload(W, &in, out, why, 256);
}

/* Nothing of the blob sha: no row in blobs, pages or chunks, no file, no document. */
static void
assert_nothing_stored(const char *sha)
{
	assert_int_equal(count_rows("SELECT count(*) FROM blobs WHERE sha256 = $1", sha), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM pages WHERE sha256 = $1", sha), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1", sha), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM documents WHERE sha256 = $1", sha), 0);
	assert_false(file_exists(sha));
}

/* Extraction fails at page 201 after batches of pages and chunks went to PostgreSQL: the
 * transaction is rolled back; the storage connection then serves the next upload. */
static void
test_fail_half_way(void **state)
{
	cm_buf         bad, good;
	pdf_upload_out out;
	char           why[256];
	long           all;
	int            indexed;

	(void)state;
	make_long_pdf(&bad, 200, 400, "halfway");
	assert_int_equal(upload_direct("hal", &bad, &out, why), CM_EPRECOND);
	assert_non_null(strstr(why, "corrupt PDF: page 201"));
	assert_true(out.store_batches >= 6); /* 6 batches of 32 pages, their chunks */
	assert_nothing_stored(out.sha256);

	make_long_pdf(&good, 200, 0, "whole");
	assert_int_equal(upload_direct("hal", &good, &out, why), CM_OK);
	assert_int_equal(count_rows("SELECT count(*) FROM pages WHERE sha256 = $1", out.sha256),
	                 200);
	assert_int_equal(count_rows("SELECT pages FROM blobs WHERE sha256 = $1", out.sha256), 200);
	assert_true(count_rows("SELECT text_length FROM blobs WHERE sha256 = $1", out.sha256) >
	            200 * 1200);
	assert_true(count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1", out.sha256) > 50);
	/* Searchable as soon as the upload returns (vectors on the fly until the indexer has
	 * passed), and the same once it has: then every chunk has its stored vector. */
	all = count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1", out.sha256);
	assert_int_equal(count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1 AND"
	                            " coalesce(tsv, to_tsvector('simple', text)) @@"
	                            " plainto_tsquery('simple', 'cells divide')",
	                            out.sha256),
	                 all);
	do
		assert_int_equal(pdf_index_batch(W->pg, 7, &indexed), CM_OK);
	while (indexed > 0);
	assert_int_equal(count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1 AND tsv @@"
	                            " plainto_tsquery('simple', 'cells divide')",
	                            out.sha256),
	                 all);
	cm_buf_fini(&bad);
	cm_buf_fini(&good);
}

/* The service's indexer (indexer.h): woken by the upload's commit, it gives every chunk its
 * stored vector within a few seconds, counted in pdf_chunks_indexed_total. */
static void
test_indexer_thread(void **state)
{
	cm_buf         pdf;
	pdf_upload_out out;
	char           why[256];
	uint64_t       before = metric("pdf_chunks_indexed_total");
	long           chunks, left = -1;

	(void)state;
	assert_int_equal(pdf_indexer_start(&svc.indexer, db_url, PDF_SCHEMA, svc.chunks_indexed),
	                 CM_OK);
	make_long_pdf(&pdf, 60, 0, "indexer");
	assert_int_equal(upload_direct("idx", &pdf, &out, why), CM_OK);
	chunks = count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1", out.sha256);
	assert_true(chunks > 10);
	for (int64_t until = cm_mono_ms() + 10000; cm_mono_ms() < until; usleep(20000))
		if ((left =
		         count_rows("SELECT count(*) FROM chunks WHERE sha256 = $1 AND tsv IS NULL",
		                    out.sha256)) == 0)
			break;
	assert_int_equal(left, 0);
	assert_true(metric("pdf_chunks_indexed_total") >= before + (uint64_t)chunks);
	pdf_indexer_stop(svc.indexer);
	svc.indexer = NULL;
	cm_buf_fini(&pdf);
}

typedef struct killer {
	int  pid;    /* the storage connection's backend */
	bool killed; /* terminated while its transaction was open */
} killer;

/* Waits (deadline 20 s) until the backend is inside a transaction, then terminates it. */
static void *
kill_main(void *arg)
{
	killer       *k = arg;
	cm_pg        *pg = NULL;
	cm_pg_result *res = NULL;
	char          pid[16];
	const char   *p[] = {pid};
	int64_t       end = cm_mono_ms() + 20000;

	snprintf(pid, sizeof(pid), "%d", k->pid);
	if (cm_pg_open(&pg, db_url, PDF_SCHEMA) != CM_OK)
		return NULL;
	while (!k->killed && cm_mono_ms() < end) {
		if (cm_pg_exec(pg,
		               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		               " WHERE pid = $1::int AND xact_start IS NOT NULL",
		               1, p, &res) == CM_OK)
			k->killed = cm_pg_nrows(res) == 1;
		cm_pg_result_free(res);
		res = NULL;
	}
	cm_pg_close(pg);
	return NULL;
}

/* The storage connection dies in the middle (what a database restart does to it): the upload
 * fails as unavailable, nothing is stored, and the next upload reconnects and succeeds. */
static void
test_storage_lost_mid_upload(void **state)
{
	cm_pg_result  *res = NULL;
	cm_buf         pdf;
	pdf_upload_out out;
	killer         k = {0, false};
	pthread_t      t;
	char           why[256];
	int64_t        pid = 0;
	cm_err         err;

	(void)state;
	assert_int_equal(cm_pg_exec(W->store_pg, "SELECT pg_backend_pid()", 0, NULL, &res), CM_OK);
	assert_true(cm_parse_i64(cm_pg_get(res, 0, 0), &pid));
	cm_pg_result_free(res);
	k.pid = (int)pid;
	make_long_pdf(&pdf, 1500, 0, "lost");
	assert_int_equal(pthread_create(&t, NULL, kill_main, &k), 0);
	assert_int_equal(upload_direct("lou", &pdf, &out, why), CM_EUNAVAIL);
	pthread_join(t, NULL);
	assert_true(k.killed);
	assert_nothing_stored(out.sha256);
	/* The connection comes back after its back-off (CM_PG_RETRY_MS). */
	for (int64_t end = cm_mono_ms() + 10000;
	     (err = upload_direct("lou", &pdf, &out, why)) == CM_EUNAVAIL && cm_mono_ms() < end;)
		usleep(50 * 1000);
	assert_int_equal(err, CM_OK);
	assert_int_equal(count_rows("SELECT count(*) FROM pages WHERE sha256 = $1", out.sha256),
	                 1500);
	cm_buf_fini(&pdf);
}

typedef struct racer {
	pdf_worker   *w;
	const char   *subject;
	const cm_buf *pdf;
	cm_err        err;
	bool          extracted;
} racer;

static void *
race_main(void *arg)
{
	racer              *r = arg;
	Pdf__UploadResponse u;

	r->err = upload(r->w, r->subject, "race.pdf", r->pdf, &u, NULL);
	if (r->err == CM_OK) {
		r->extracted = u.extracted;
		upload_free(&u);
	}
	return NULL;
}

static void
test_concurrent_same_file(void **state)
{
	pdf_worker *w2 = NULL;
	pthread_t   t1, t2;
	racer       a, b;
	cm_buf      pdf;
	uint64_t    x0 = metric("pdf_extractions_total");

	(void)state;
	assert_int_equal(new_worker(&w2), CM_OK);
	make_pdf(&pdf, 40, "Race", "race");
	a = (racer){W, "leo", &pdf, CM_EINTERNAL, false};
	b = (racer){w2, "mia", &pdf, CM_EINTERNAL, false};
	assert_int_equal(pthread_create(&t1, NULL, race_main, &a), 0);
	assert_int_equal(pthread_create(&t2, NULL, race_main, &b), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(a.err, CM_OK);
	assert_int_equal(b.err, CM_OK);
	assert_true(a.extracted != b.extracted); /* exactly one of them extracted */
	assert_int_equal(metric("pdf_extractions_total"), x0 + 1);
	drop_worker(w2);
	cm_buf_fini(&pdf);
}

/* Starts the real service at url (admin at admin), as its main.c would, on the test's volume. */
static cm_service *
start_replica(const char *url, const char *admin)
{
	cm_service *srv = NULL;
	char        port[16];

	snprintf(port, sizeof(port), "%lld", (long long)redis_port);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("DATABASE_URL", db_url, 1);
	setenv("REDIS_HOST", "127.0.0.1", 1);
	setenv("REDIS_PORT", port, 1);
	setenv("PDF_RPC_URL", url, 1);
	setenv("PDF_ADMIN_ADDR", admin, 1);
	setenv("PDF_WORKERS", "2", 1);
	setenv("PDF_DATA_DIR", datadir, 1);
	assert_int_equal(cm_service_start(&pdf_service_def, &srv, NULL), CM_OK);
	return srv;
}

static cm_rpc_client *
client_of(const char *url)
{
	cm_rpc_client *cl = NULL;

	assert_int_equal(cm_rpc_client_open(&cl, "pdf", url, NULL), CM_OK);
	for (int i = 0; i < 250 && cm_rpc_client_healthy(cl) == 0; i++)
		usleep(20000);
	assert_int_equal(cm_rpc_client_healthy(cl), 1);
	return cl;
}

/* One pdf.UploadPart of data[off, off + len) as `subject`; the call's status. */
static cm_err
send_part(cm_rpc_client *cl, const char *subject, const char *id, const cm_buf *data, size_t off,
          size_t len)
{
	Pdf__UploadPart   rq = PDF__UPLOAD_PART__INIT;
	cm_rpc_call_opts  o = {.method = "pdf.UploadPart", .subject = subject};
	ProtobufCMessage *rs = NULL;
	cm_rpc_result     res;
	cm_err            err;

	rq.upload_id = (char *)id;
	rq.offset = off;
	rq.data.data = (uint8_t *)data->data + off;
	rq.data.len = len;
	err = cm_rpc_call(cl, &o, &rq.base, &pdf__upload_part_response__descriptor, &rs, &res);
	if (rs != NULL)
		protobuf_c_message_free_unpacked(rs, NULL);
	cm_rpc_result_fini(&res);
	return err;
}

/* pdf.UploadBody for a body of size bytes whose last tail_len are sent with it. */
static cm_err
send_body(cm_rpc_client *cl, const char *subject, const char *id, const cm_buf *data,
          size_t tail_len, const char *ct, Pdf__UploadBodyResponse **out, cm_rpc_result *res)
{
	Pdf__UploadBodyRequest rq = PDF__UPLOAD_BODY_REQUEST__INIT;
	cm_rpc_call_opts       o = {.method = "pdf.UploadBody", .subject = subject};

	rq.upload_id = (char *)id;
	rq.size = data->len;
	rq.tail.data = (uint8_t *)data->data + data->len - tail_len;
	rq.tail.len = tail_len;
	rq.content_type = (char *)ct;
	rq.filename = (char *)"pieces.pdf";
	o.deadline_ms = cm_now_ms() + 20000;
	return cm_rpc_call(cl, &o, &rq.base, &pdf__upload_body_response__descriptor,
	                   (ProtobufCMessage **)out, res);
}

static int
spool_files(void)
{
	char           dir[128];
	DIR           *d;
	struct dirent *de;
	int            n = 0;

	snprintf(dir, sizeof(dir), "%s/spool", datadir);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_rpc_round_trip(void **state)
{
	cm_service          *srv = NULL;
	cm_rpc_client       *cl = NULL;
	Pdf__UploadRequest   rq = PDF__UPLOAD_REQUEST__INIT;
	Pdf__UploadResponse *rs = NULL;
	Pdf__ListRequest     lq = PDF__LIST_REQUEST__INIT;
	Pdf__ListResponse   *ls = NULL;
	cm_rpc_call_opts     o = {.method = "pdf.Upload", .subject = "nina"};
	cm_rpc_result        res;
	cm_buf               pdf;

	(void)state;
	/* The real service, as its main.c runs it: the skeleton reads the environment. */
	srv = start_replica(RPC_URL, "127.0.0.1:29192");
	cl = client_of(RPC_URL);
	make_pdf(&pdf, 2, "Over RPC", "rpc");
	rq.filename = (char *)"rpc.pdf";
	rq.content.data = (uint8_t *)pdf.data;
	rq.content.len = pdf.len;
	o.deadline_ms = cm_now_ms() + 20000;
	assert_int_equal(cm_rpc_call(cl, &o, &rq.base, &pdf__upload_response__descriptor,
	                             (ProtobufCMessage **)&rs, &res),
	                 CM_OK);
	assert_string_equal(rs->document->filename, "rpc.pdf");
	assert_true(rs->extracted);
	pdf__upload_response__free_unpacked(rs, NULL);
	cm_rpc_result_fini(&res);
	o.method = "pdf.List";
	o.deadline_ms = 0;
	assert_int_equal(cm_rpc_call(cl, &o, &lq.base, &pdf__list_response__descriptor,
	                             (ProtobufCMessage **)&ls, &res),
	                 CM_OK);
	assert_int_equal(ls->n_items, 1);
	assert_string_equal(ls->items[0]->metadata->title, "Over RPC");
	pdf__list_response__free_unpacked(ls, NULL);
	cm_rpc_result_fini(&res);
	/* Not a PDF over RPC: INVALID_ARGUMENT with the reason. */
	o.method = "pdf.Upload";
	rq.content.data = (uint8_t *)"nope";
	rq.content.len = 4;
	assert_int_equal(cm_rpc_call(cl, &o, &rq.base, &pdf__upload_response__descriptor,
	                             (ProtobufCMessage **)&rs, &res),
	                 CM_EINVAL);
	assert_string_equal(res.message, "not a PDF");
	cm_rpc_result_fini(&res);
	cm_rpc_client_close(cl);
	cm_service_stop(srv);
	cm_buf_fini(&pdf);
}

/* An upload body in pieces over two replicas sharing the volume: pieces out of order, one sent
 * twice (a retry), on either replica; the body's end on the other one gives the document of the
 * whole file. A spool is its owner's: another user cannot end it. A piece lost is an incomplete
 * body (UNAVAILABLE), never a document with a hole; an abandoned spool goes on UploadAbort, and
 * one left idle is swept. A user's bodies at once are bounded, and so is the volume's use. */
static void
test_upload_in_pieces_two_replicas(void **state)
{
	const char              *url_b = "tcp://127.0.0.1:27198";
	cm_service              *a, *b;
	cm_rpc_client           *ca, *cb;
	Pdf__UploadBodyResponse *rs = NULL;
	cm_rpc_result            res;
	cm_buf                   pdf;
	char                     sha[65], path[256];
	const char              *id = "0123456789abcdef0123456789abcdef";
	const size_t             piece = 100000;

	(void)state;
	a = start_replica(RPC_URL, "127.0.0.1:29192");
	b = start_replica(url_b, "127.0.0.1:29198");
	ca = client_of(RPC_URL);
	cb = client_of(url_b);
	{
		pdf_testpdf o = {.npages = 3, .title = "In Pieces", .padding = 300000};
		cm_buf_init(&pdf, 1u << 20);
		assert_int_equal(pdf_testpdf_build(&o, &pdf), CM_OK);
	}
	assert_true(pdf.len > 2 * piece);
	pdf_sha256_hex(pdf.data, pdf.len, sha);

	/* Second piece first, on b; first on a; the second again on a. */
	assert_int_equal(send_part(cb, "rita", id, &pdf, piece, piece), CM_OK);
	assert_int_equal(send_part(ca, "rita", id, &pdf, 0, piece), CM_OK);
	assert_int_equal(send_part(ca, "rita", id, &pdf, piece, piece), CM_OK);
	/* Another user's end of rita's spool finds nothing of theirs: incomplete. */
	assert_int_equal(
	    send_body(cb, "sam", id, &pdf, pdf.len - 2 * piece, "application/pdf", &rs, &res),
	    CM_EUNAVAIL);
	cm_rpc_result_fini(&res);
	assert_int_equal(spool_files(), 1);
	assert_int_equal(
	    send_body(cb, "rita", id, &pdf, pdf.len - 2 * piece, "application/pdf", &rs, &res),
	    CM_OK);
	assert_int_equal(rs->verdict, PDF__UPLOAD_BODY_RESPONSE__VERDICT__ACCEPTED);
	assert_string_equal(rs->upload->document->sha256, sha);
	assert_int_equal(rs->upload->document->pages, 3);
	assert_string_equal(rs->upload->document->title, "In Pieces");
	assert_string_equal(rs->upload->document->filename, "pieces.pdf");
	pdf__upload_body_response__free_unpacked(rs, NULL);
	cm_rpc_result_fini(&res);
	assert_int_equal(spool_files(), 0);

	/* A piece lost: the spool is short of the body's size. */
	assert_int_equal(send_part(ca, "rita", id, &pdf, 0, piece), CM_OK);
	assert_int_equal(
	    send_body(ca, "rita", id, &pdf, pdf.len - 2 * piece, "application/pdf", &rs, &res),
	    CM_EUNAVAIL);
	assert_string_equal(res.message, "the upload arrived incomplete; try again");
	cm_rpc_result_fini(&res);
	assert_int_equal(spool_files(), 0);

	/* Bad ids never name a file; abort; sweep. */
	assert_int_equal(send_part(ca, "rita", "../../etc/passwd", &pdf, 0, 10), CM_EINVAL);
	assert_int_equal(send_part(ca, "rita", id, &pdf, 0, piece), CM_OK);
	{
		Pdf__UploadAbortRequest ab = PDF__UPLOAD_ABORT_REQUEST__INIT;
		cm_rpc_call_opts        o = {.method = "pdf.UploadAbort", .subject = "rita"};
		ProtobufCMessage       *r2 = NULL;
		ab.upload_id = (char *)id;
		assert_int_equal(cm_rpc_call(cb, &o, &ab.base,
		                             &pdf__upload_part_response__descriptor, &r2, &res),
		                 CM_OK);
		protobuf_c_message_free_unpacked(r2, NULL);
		cm_rpc_result_fini(&res);
	}
	assert_int_equal(spool_files(), 0);
	assert_int_equal(send_part(ca, "rita", id, &pdf, 0, piece), CM_OK);
	assert_int_equal(pdf_spool_sweep(datadir, PDF_SPOOL_IDLE_S), 0); /* fresh: kept */
	snprintf(path, sizeof(path), "%s/spool/rita-%s", datadir, id);
	{
		struct timeval old[2] = {{time(NULL) - PDF_SPOOL_IDLE_S - 5, 0},
		                         {time(NULL) - PDF_SPOOL_IDLE_S - 5, 0}};
		assert_int_equal(utimes(path, old), 0);
	}
	assert_int_equal(pdf_spool_sweep(datadir, PDF_SPOOL_IDLE_S), 1);
	assert_int_equal(spool_files(), 0);

	/* A user's bodies arriving at once are bounded over all replicas (PDF_USER_MAX_SPOOLS, 4):
	 * the fifth is RESOURCE_EXHAUSTED with a retry time; more of one already begun is fine. */
	{
		char ids[5][33];
		for (int i = 0; i < 5; i++)
			snprintf(ids[i], sizeof(ids[i]), "%032x", 0xabc0 + i);
		for (int i = 0; i < 4; i++)
			assert_int_equal(send_part(i % 2 ? ca : cb, "tom", ids[i], &pdf, 0, 10),
			                 CM_OK);
		assert_int_equal(send_part(ca, "tom", ids[4], &pdf, 0, 10), CM_ELIMIT);
		assert_int_equal(send_part(cb, "tom", ids[0], &pdf, 10, 10), CM_OK);
		assert_int_equal(send_part(cb, "rita", ids[4], &pdf, 0, 10), CM_OK);
		assert_int_equal(pdf_spool_count(datadir, "tom"), 4);
		for (int i = 0; i < 5; i++) {
			pdf_spool_remove(datadir, "tom", ids[i]);
			pdf_spool_remove(datadir, "rita", ids[i]);
		}
	}
	/* A volume short of PDF_SPOOL_MIN_FREE_MB takes no new body: UNAVAILABLE. */
	{
		cm_service    *c;
		cm_rpc_client *cc;
		setenv("PDF_SPOOL_MIN_FREE_MB", "1048576", 1);
		c = start_replica("tcp://127.0.0.1:27186", "127.0.0.1:29186");
		unsetenv("PDF_SPOOL_MIN_FREE_MB");
		cc = client_of("tcp://127.0.0.1:27186");
		assert_int_equal(send_part(cc, "rita", id, &pdf, 0, 10), CM_EUNAVAIL);
		assert_int_equal(spool_files(), 0);
		cm_rpc_client_close(cc);
		cm_service_stop(c);
	}

	cm_rpc_client_close(ca);
	cm_rpc_client_close(cb);
	cm_service_stop(a);
	cm_service_stop(b);
	cm_buf_fini(&pdf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upload_get_and_file),
	    cmocka_unit_test(test_dedupe_and_second_user),
	    cmocka_unit_test_teardown(test_redis_cache_and_outage, redis_back),
	    cmocka_unit_test(test_list_paging_search),
	    cmocka_unit_test(test_pages_chunks_search),
	    cmocka_unit_test(test_other_users_document),
	    cmocka_unit_test(test_delete_shared_blob),
	    cmocka_unit_test(test_select_and_selected),
	    cmocka_unit_test(test_bad_uploads),
	    cmocka_unit_test(test_concurrent_same_file),
	    cmocka_unit_test(test_fail_half_way),
	    cmocka_unit_test(test_indexer_thread),
	    cmocka_unit_test(test_storage_lost_mid_upload),
	    cmocka_unit_test(test_rpc_round_trip),
	    cmocka_unit_test(test_upload_in_pieces_two_replicas),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
