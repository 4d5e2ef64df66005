/*
 * extract.c - the only file that includes mupdf.
 *
 * DESIGN.
 * - Contexts: every pdf_xctx (one per RPC worker thread) owns an independent fz_context made by
 *   fz_new_context with our allocator, no lock callbacks (mupdf's no-op default) and its own
 *   resource store of PDF_STORE_BYTES. No mupdf object (context, store, font, glyph cache,
 *   document) is ever shared between threads; the shared pieces are ours: the watchdog thread,
 *   which touches nothing of mupdf's but a cookie's abort flag, and a mutex that makes contexts
 *   one at a time (fz_new_context writes a static PRNG buffer). This replaces the brief's set-up
 *   (one base context with FZ_LOCK_MAX mutexes, fz_clone_context per worker): with it every
 *   worker took the process-wide FZ_LOCK_ALLOC about 5,000 times per page and FZ_LOCK_FREETYPE
 *   about 2,500 times, and two extractions at once reached only ~1.45x the throughput of one
 *   even with a spinning lock; independent contexts measured 1.8-2.0x (bench/extract.sh).
 *   Costs: each worker loads its own fonts and resources (they are per document anyway: mupdf
 *   reaps a document's store entries when the document is dropped), each store is capped on its
 *   own (workers x PDF_STORE_BYTES), and each worker pays a ~0.3 MB context once.
 * - Why no locks is safe here: FZ_LOCK_ALLOC and FZ_LOCK_GLYPHCACHE guard only a context's own
 *   store, reference counts and glyph cache. FZ_LOCK_FREETYPE guards the context's own FreeType
 *   library and, in mupdf 1.21.1, two process-wide pointers (load-jpx.c opj_secret, harfbuzz.c
 *   fz_hb_secret) through which mupdf's opj_malloc / fz_hb_malloc find a context. Debian's
 *   libmupdf links the system libopenjp2.so and libharfbuzz.so, which allocate with malloc and
 *   never call those hooks (libopenjp2 does not export opj_malloc, so it cannot be interposed),
 *   so the pointers are written and never read. ICC (lcms2) is not compiled in; a stock-lcms2
 *   build would refuse a second context outright. If svc-pdf is ever linked against a mupdf
 *   built with its bundled openjpeg / harfbuzz, FZ_LOCK_FREETYPE must become one process-wide
 *   mutex passed to every context (and the scaling measured again). helgrind on two concurrent
 *   extractions reports only the fz_new_context race, now serialised. (mupdf's lazily built AES
 *   and 1-bit unpack tables are filled without any lock whatever the set-up; unchanged.)
 * - Errors: every mupdf call runs inside a small fz_try in a function that returns only after
 *   its fz_always/fz_catch (never from inside fz_try; setjmp-clobbered locals are fz_var'ed).
 *   fz_caught_message() is copied at once into the caller's `why`. Warnings and error prints
 *   are silenced with fz_set_warning_callback / fz_set_error_callback (warnings are counted).
 * - Memory cap: each context's allocator `user` is its pdf_xctx's account; a 16-byte header
 *   before each block records its size, so every byte the context holds is counted there (the
 *   context itself included). A context is used by one thread at a time and shares nothing, so
 *   the account needs no atomics and no block is ever freed into another account. While an
 *   extraction runs, the account refuses to grow past baseline + cap; mupdf then evicts from
 *   its (own) store, retries, and finally throws FZ_ERROR_MEMORY, reported as "PDF too complex".
 * - Time: the deadline is checked between pages; inside a page a watchdog thread sets the
 *   page's fz_cookie.abort when the deadline passes, which stops mupdf's interpreter.
 * - Text: pages run through fz_run_page into a structured-text device; the blocks are walked
 *   here (one line per text line, an empty line between blocks) and fed to pdf_text, which
 *   filters every code point.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mupdf/fitz.h>

#include "cm/util.h"
#include "config.h"
#include "extract.h"

/* Resource store of one context (mupdf's default, FZ_STORE_DEFAULT, is 256 MB). It caches one
 * document's fonts, images and colour spaces across its pages and is emptied when the document
 * is dropped, so it is working memory, also bounded by PDF_MAX_MEMORY_MB. 32 MB keeps the
 * default two workers at the 64 MB the old shared store had, costs nothing on text-heavy
 * documents (the 2,000-page bench runs the same with 8 MB or 256 MB; 1 MB is ~40% slower),
 * and stays well under the default 512 MB cap so the store evicts on its own before the cap
 * refuses an allocation. */
#define PDF_STORE_BYTES ((size_t)32 << 20)
#define PDF_META_BUF 4096

/* ---- counting allocator ------------------------------------------------------------------ */

/* What one context holds. Touched only by the thread using the context (one at a time). */
typedef struct pdf_acct {
	size_t used;
	size_t limit; /* bytes `used` may reach while `limited` */
	size_t base;  /* `used` when the extraction began */
	size_t peak;
	bool   limited;
	bool   hit; /* refused an allocation since the extraction began */
} pdf_acct;

typedef struct pdf_hdr {
	alignas(max_align_t) size_t size;
} pdf_hdr;

_Static_assert(sizeof(pdf_hdr) % alignof(max_align_t) == 0, "the header keeps malloc's alignment");

static bool
acct_allows(pdf_acct *a, size_t grow)
{
	if (!a->limited)
		return true;
	if (grow > a->limit || a->used > a->limit - grow) {
		a->hit = true;
		return false;
	}
	return true;
}

static void
acct_grew(pdf_acct *a, size_t grow)
{
	a->used += grow;
	if (a->used > a->peak)
		a->peak = a->used;
}

static void *
pdf_mem_malloc(void *user, size_t size)
{
	pdf_acct *a = user;
	pdf_hdr  *h;

	if (size > SIZE_MAX - sizeof(pdf_hdr) || !acct_allows(a, size))
		return NULL;
	if ((h = malloc(sizeof(pdf_hdr) + size)) == NULL)
		return NULL;
	h->size = size;
	acct_grew(a, size);
	return h + 1;
}

static void
pdf_mem_free(void *user, void *p)
{
	pdf_acct *a = user;
	pdf_hdr  *h;

	if (p == NULL)
		return;
	h = (pdf_hdr *)p - 1;
	a->used -= h->size;
	free(h);
}

static void *
pdf_mem_realloc(void *user, void *p, size_t size)
{
	pdf_acct *a = user;
	pdf_hdr  *h, *nh;
	size_t    old;

	if (p == NULL)
		return pdf_mem_malloc(user, size);
	if (size == 0) {
		pdf_mem_free(user, p);
		return NULL;
	}
	h = (pdf_hdr *)p - 1;
	old = h->size;
	if (size > SIZE_MAX - sizeof(pdf_hdr) || (size > old && !acct_allows(a, size - old)))
		return NULL;
	if ((nh = realloc(h, sizeof(pdf_hdr) + size)) == NULL)
		return NULL;
	nh->size = size;
	if (size > old)
		acct_grew(a, size - old);
	else
		a->used -= old - size;
	return nh + 1;
}

/* ---- extractor, contexts, watchdog ------------------------------------------------------- */

struct pdf_xctx {
	pdf_extractor *e;
	fz_context    *ctx;
	pdf_acct       acct; /* outlives ctx: the context itself is allocated from it */
	fz_cookie      cookie;
	int64_t        deadline_ms; /* monotonic; 0 = not extracting (guarded by e->wd_mu) */
	bool           fired;       /* the watchdog aborted this extraction (guarded by e->wd_mu) */
	pdf_xctx      *next_active;
	int            warnings;
	pdf_xstats     stats;
};

/* Process-wide state: the watchdog, and a mutex around context creation and destruction.
 * mupdf state lives in the pdf_xctx's. */
struct pdf_extractor {
	pthread_mutex_t ctx_mu; /* fz_new_context / fz_drop_context */
	pthread_mutex_t wd_mu;  /* watchdog state */
	pthread_cond_t  wd_cv;
	bool            wd_started;
	bool            stopping;
	pdf_xctx       *active;
	pthread_t       watchdog;
};

static void
pdf_on_warning(void *user, const char *message)
{
	pdf_xctx *x = user;

	(void)message;
	if (x != NULL)
		x->warnings++;
}

static void
pdf_on_error(void *user, const char *message)
{
	(void)user;
	(void)message; /* reported through fz_caught_message by the code that catches it */
}

static void
deadline_to_timespec(int64_t mono_ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void *
watchdog_main(void *arg)
{
	pdf_extractor  *e = arg;
	struct timespec ts;
	int64_t         now, next;

	pthread_mutex_lock(&e->wd_mu);
	while (!e->stopping) {
		now = cm_mono_ms();
		next = 0;
		for (pdf_xctx *x = e->active; x != NULL; x = x->next_active) {
			if (x->fired)
				continue;
			if (x->deadline_ms <= now) {
				x->cookie.abort = 1;
				x->fired = true;
			} else if (next == 0 || x->deadline_ms < next) {
				next = x->deadline_ms;
			}
		}
		if (next == 0) {
			pthread_cond_wait(&e->wd_cv, &e->wd_mu);
		} else {
			deadline_to_timespec(next, &ts);
			pthread_cond_timedwait(&e->wd_cv, &e->wd_mu, &ts);
		}
	}
	pthread_mutex_unlock(&e->wd_mu);
	return NULL;
}

static void
watchdog_arm(pdf_xctx *x, int64_t deadline_ms)
{
	pdf_extractor *e = x->e;

	pthread_mutex_lock(&e->wd_mu);
	memset(&x->cookie, 0, sizeof(x->cookie));
	x->deadline_ms = deadline_ms;
	x->fired = false;
	x->next_active = e->active;
	e->active = x;
	pthread_cond_signal(&e->wd_cv);
	pthread_mutex_unlock(&e->wd_mu);
}

static void
watchdog_disarm(pdf_xctx *x)
{
	pdf_extractor *e = x->e;

	pthread_mutex_lock(&e->wd_mu);
	for (pdf_xctx **pp = &e->active; *pp != NULL; pp = &(*pp)->next_active) {
		if (*pp == x) {
			*pp = x->next_active;
			break;
		}
	}
	x->next_active = NULL;
	x->deadline_ms = 0;
	pthread_mutex_unlock(&e->wd_mu);
}

static bool
watchdog_fired(pdf_xctx *x)
{
	bool fired;

	pthread_mutex_lock(&x->e->wd_mu);
	fired = x->fired;
	pthread_mutex_unlock(&x->e->wd_mu);
	return fired;
}

static cm_err
register_handlers(fz_context *ctx)
{
	cm_err err = CM_EINTERNAL;

	fz_var(err);
	fz_try(ctx)
	{
		fz_register_document_handlers(ctx);
		err = CM_OK;
	}
	fz_catch(ctx)
	{
		err = CM_EINTERNAL;
	}
	return err;
}

/* Contexts are made and dropped one at a time (e->ctx_mu): fz_new_context seeds mupdf's PRNG
 * through a static buffer (random.c, fz_seed48), which helgrind showed as a race between two
 * workers starting at once. Once per worker, so the mutex costs nothing. */
static void
drop_context(pdf_extractor *e, fz_context *ctx)
{
	pthread_mutex_lock(&e->ctx_mu);
	fz_drop_context(ctx);
	pthread_mutex_unlock(&e->ctx_mu);
}

/* A new independent context charging account a, its warnings counted on x (may be NULL);
 * NULL when mupdf cannot make one. */
static fz_context *
new_context(pdf_extractor *e, pdf_acct *a, pdf_xctx *x)
{
	fz_alloc_context alloc;
	fz_context      *ctx;

	alloc.user = a;
	alloc.malloc = pdf_mem_malloc;
	alloc.realloc = pdf_mem_realloc;
	alloc.free = pdf_mem_free;
	pthread_mutex_lock(&e->ctx_mu);
	/* No fz_locks_context: nothing of this context is shared (see DESIGN). */
	ctx = fz_new_context(&alloc, NULL, PDF_STORE_BYTES);
	pthread_mutex_unlock(&e->ctx_mu);
	if (ctx == NULL)
		return NULL;
	fz_set_warning_callback(ctx, pdf_on_warning, x);
	fz_set_error_callback(ctx, pdf_on_error, x);
	if (register_handlers(ctx) != CM_OK) {
		drop_context(e, ctx);
		return NULL;
	}
	return ctx;
}

cm_err
pdf_extractor_alloc(pdf_extractor **out)
{
	pdf_extractor     *e = NULL;
	pthread_condattr_t ca;
	pdf_acct           probe_acct;
	fz_context        *probe;
	cm_err             err = CM_ENOMEM;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		goto out;
	pthread_mutex_init(&e->ctx_mu, NULL);
	pthread_mutex_init(&e->wd_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->wd_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Fail at start-up, not in every worker, when mupdf cannot make a context here. */
	memset(&probe_acct, 0, sizeof(probe_acct));
	if ((probe = new_context(e, &probe_acct, NULL)) == NULL)
		goto out;
	drop_context(e, probe);
	if (pthread_create(&e->watchdog, NULL, watchdog_main, e) != 0) {
		err = CM_EINTERNAL;
		goto out;
	}
	e->wd_started = true;
	*out = e;
	e = NULL;
	err = CM_OK;
out:
	pdf_extractor_free(e);
	return err;
}

void
pdf_extractor_free(pdf_extractor *e)
{
	if (e == NULL)
		return;
	if (e->wd_started) {
		pthread_mutex_lock(&e->wd_mu);
		e->stopping = true;
		pthread_cond_signal(&e->wd_cv);
		pthread_mutex_unlock(&e->wd_mu);
		pthread_join(e->watchdog, NULL);
	}
	pthread_cond_destroy(&e->wd_cv);
	pthread_mutex_destroy(&e->wd_mu);
	pthread_mutex_destroy(&e->ctx_mu);
	free(e);
}

cm_err
pdf_xctx_alloc(pdf_extractor *e, pdf_xctx **out)
{
	pdf_xctx *x;

	*out = NULL;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return CM_ENOMEM;
	x->e = e;
	if ((x->ctx = new_context(e, &x->acct, x)) == NULL) {
		free(x);
		return CM_ENOMEM;
	}
	*out = x;
	return CM_OK;
}

void
pdf_xctx_free(pdf_xctx *x)
{
	if (x == NULL)
		return;
	if (x->ctx != NULL)
		drop_context(x->e, x->ctx); /* frees into x->acct, so before x */
	free(x);
}

void
pdf_xctx_stats(const pdf_xctx *x, pdf_xstats *out)
{
	*out = x->stats;
}

bool
pdf_looks_like_pdf(const void *data, size_t len)
{
	const char *p = data;
	size_t      n = len < 1024 ? len : 1024;

	for (size_t i = 0; i + 5 <= n; i++) {
		if (p[i] == '%' && memcmp(p + i, "%PDF-", 5) == 0)
			return true;
	}
	return false;
}

/* ---- extraction -------------------------------------------------------------------------- */

typedef struct pdf_run {
	pdf_xctx         *x;
	const pdf_limits *lim;
	int64_t           deadline_ms;
	char             *why;
	size_t            whylen;
} pdf_run;

/* Maps the error mupdf just threw (fz_caught) to a cm_err and a reason. */
static cm_err
caught(pdf_run *r, const char *what)
{
	fz_context *ctx = r->x->ctx;
	int         code = fz_caught(ctx);
	cm_err      err;

	if (r->x->acct.hit) {
		/* Our cap refused memory: whatever mupdf made of it, the document is too big for
		 * us. */
		snprintf(r->why, r->whylen, "PDF too complex: extraction needs more than %zu MB",
		         r->lim->max_memory >> 20);
		err = CM_EPRECOND;
	} else if (code == FZ_ERROR_MEMORY) {
		snprintf(r->why, r->whylen, "out of memory");
		err = CM_ENOMEM;
	} else if (code == FZ_ERROR_ABORT || r->x->cookie.abort) {
		snprintf(r->why, r->whylen, "extraction took longer than %lld ms",
		         (long long)r->lim->timeout_ms);
		err = CM_ETIMEDOUT;
	} else {
		snprintf(r->why, r->whylen, "corrupt PDF: %s%s", what, fz_caught_message(ctx));
		err = CM_EPRECOND;
	}
	return err;
}

static cm_err
open_doc(pdf_run *r, const void *data, size_t len, fz_document **docp, int *npages)
{
	fz_context  *ctx = r->x->ctx;
	fz_stream   *stm = NULL;
	fz_document *doc = NULL;
	int          pw = 0, n = 0;
	cm_err       err = CM_OK;

	fz_var(stm);
	fz_var(doc);
	fz_var(pw);
	fz_var(n);
	fz_var(err);
	fz_try(ctx)
	{
		stm = fz_open_memory(ctx, data, len);
		doc = fz_open_document_with_stream(ctx, "application/pdf", stm);
		pw = fz_needs_password(ctx, doc);
		if (!pw)
			n = fz_count_pages(ctx, doc);
	}
	fz_always(ctx)
	{
		fz_drop_stream(ctx, stm);
	}
	fz_catch(ctx)
	{
		err = caught(r, "");
	}
	if (err == CM_OK && pw) {
		snprintf(r->why, r->whylen, "encrypted PDF");
		err = CM_EPRECOND;
	} else if (err == CM_OK && n <= 0) {
		snprintf(r->why, r->whylen, "corrupt PDF: no pages");
		err = CM_EPRECOND;
	} else if (err == CM_OK && n > r->lim->max_pages) {
		snprintf(r->why, r->whylen, "too many pages (%d, at most %lld)", n,
		         (long long)r->lim->max_pages);
		err = CM_EINVAL;
	}
	*docp = doc;
	*npages = n;
	return err;
}

/* One Info value into buf; -1 when absent or unreadable (unreadable metadata is absent). */
static int
lookup_meta(fz_context *ctx, fz_document *doc, const char *key, char *buf, int size)
{
	int n = -1;

	fz_var(n);
	fz_try(ctx)
	{
		n = fz_lookup_metadata(ctx, doc, key, buf, size);
	}
	fz_catch(ctx)
	{
		n = -1;
	}
	return n;
}

static cm_err
read_meta(pdf_run *r, fz_document *doc, pdf_text *out)
{
	static const char *const keys[PDF_META_COUNT] = {
	    [PDF_META_TITLE] = FZ_META_INFO_TITLE,
	    [PDF_META_AUTHOR] = FZ_META_INFO_AUTHOR,
	    [PDF_META_SUBJECT] = FZ_META_INFO_SUBJECT,
	    [PDF_META_CREATOR] = FZ_META_INFO_CREATOR,
	    [PDF_META_PRODUCER] = FZ_META_INFO_PRODUCER,
	    [PDF_META_CREATION_DATE] = FZ_META_INFO_CREATIONDATE,
	    [PDF_META_MOD_DATE] = FZ_META_INFO_MODIFICATIONDATE,
	};
	char   buf[PDF_META_BUF];
	cm_err err = CM_OK;

	for (int f = 0; f < PDF_META_COUNT && err == CM_OK; f++) {
		if (lookup_meta(r->x->ctx, doc, keys[f], buf, (int)sizeof(buf)) > 0)
			err = pdf_text_set_meta(out, (pdf_meta_field)f, buf);
	}
	return err;
}

/* Appends the text of a structured-text page (plain memory walk; nothing here throws). */
static cm_err
collect(fz_stext_page *st, pdf_text *out)
{
	cm_err err = pdf_text_begin_page(out);

	for (fz_stext_block *b = st->first_block; b != NULL && err == CM_OK; b = b->next) {
		if (b->type != FZ_STEXT_BLOCK_TEXT)
			continue;
		for (fz_stext_line *l = b->u.t.first_line; l != NULL && err == CM_OK; l = l->next) {
			for (fz_stext_char *c = l->first_char; c != NULL && err == CM_OK;
			     c = c->next)
				err = pdf_text_put_rune(out, c->c);
			if (err == CM_OK)
				err = pdf_text_newline(out);
		}
		if (err == CM_OK)
			err = pdf_text_newline(out); /* an empty line between blocks */
	}
	if (err == CM_OK)
		err = pdf_text_end_page(out);
	return err;
}

static cm_err
extract_page(pdf_run *r, fz_document *doc, int i, pdf_text *out)
{
	fz_context      *ctx = r->x->ctx;
	fz_page         *page = NULL;
	fz_stext_page   *st = NULL;
	fz_device       *dev = NULL;
	fz_stext_options opts;
	char             what[32];
	cm_err           err = CM_OK;

	memset(&opts, 0, sizeof(opts));
	snprintf(what, sizeof(what), "page %d: ", i + 1);
	fz_var(page);
	fz_var(st);
	fz_var(dev);
	fz_var(err);
	fz_try(ctx)
	{
		page = fz_load_page(ctx, doc, i);
		st = fz_new_stext_page(ctx, fz_bound_page(ctx, page));
		dev = fz_new_stext_device(ctx, st, &opts);
		fz_run_page(ctx, page, dev, fz_identity, &r->x->cookie);
		fz_close_device(ctx, dev);
	}
	fz_always(ctx)
	{
		fz_drop_device(ctx, dev);
		fz_drop_page(ctx, page);
	}
	fz_catch(ctx)
	{
		err = caught(r, what);
	}
	if (err == CM_OK && (r->x->cookie.abort || watchdog_fired(r->x))) {
		snprintf(r->why, r->whylen, "extraction took longer than %lld ms",
		         (long long)r->lim->timeout_ms);
		err = CM_ETIMEDOUT;
	}
	if (err == CM_OK) {
		err = collect(st, out);
		if (err == CM_ETOOBIG)
			snprintf(r->why, r->whylen, "too much text (more than %zu MB)",
			         r->lim->max_text >> 20);
	}
	fz_drop_stext_page(ctx, st);
	return err;
}

cm_err
pdf_extract(pdf_xctx *x, const void *data, size_t len, const pdf_limits *lim, pdf_text *out,
            char *why, size_t whylen)
{
	return pdf_extract_to(x, data, len, lim, NULL, out, why, whylen);
}

/* Hands the page just extracted to the sink. */
static cm_err
to_sink(const pdf_page_sink *sink, pdf_text *out, int npages, char *why, size_t whylen)
{
	const char *s;
	size_t      n;
	cm_err      err;

	pdf_text_last_page(out, &s, &n);
	if ((err = sink->page(sink->arg, out, npages, s, n)) != CM_OK)
		snprintf(why, whylen, "stopped by the caller");
	return err;
}

cm_err
pdf_extract_to(pdf_xctx *x, const void *data, size_t len, const pdf_limits *lim,
               const pdf_page_sink *sink, pdf_text *out, char *why, size_t whylen)
{
	pdf_run      r = {x, lim, 0, why, whylen};
	fz_document *doc = NULL;
	pdf_acct    *a = &x->acct;
	int64_t      start;
	int          npages = 0;
	bool         armed = false;
	cm_err       err = CM_OK;

	why[0] = '\0';
	memset(&x->stats, 0, sizeof(x->stats));
	x->warnings = 0;
	start = cm_mono_ms();
	if (!pdf_looks_like_pdf(data, len)) {
		snprintf(why, whylen, "not a PDF");
		err = CM_EINVAL;
		goto out;
	}
	r.deadline_ms = start + lim->timeout_ms;

	/* From here the context's account may grow by at most the cap. */
	a->base = a->used;
	a->peak = a->base;
	a->limit = lim->max_memory > SIZE_MAX - a->base ? SIZE_MAX : a->base + lim->max_memory;
	a->hit = false;
	a->limited = true;
	watchdog_arm(x, r.deadline_ms);
	armed = true;

	err = open_doc(&r, data, len, &doc, &npages);
	if (err == CM_OK)
		err = read_meta(&r, doc, out);
	for (int i = 0; i < npages && err == CM_OK; i++) {
		if (cm_mono_ms() >= r.deadline_ms) {
			snprintf(why, whylen, "extraction took longer than %lld ms",
			         (long long)lim->timeout_ms);
			err = CM_ETIMEDOUT;
			break;
		}
		err = extract_page(&r, doc, i, out);
		if (err == CM_OK && sink != NULL)
			err = to_sink(sink, out, npages, why, whylen);
	}
	if (err == CM_OK && (err = pdf_text_finish(out)) == CM_OK && !out->has_text) {
		snprintf(why, whylen, "no text layer (scanned PDF?)");
		err = CM_EPRECOND;
	}

out:
	if (armed) {
		watchdog_disarm(x);
		fz_drop_document(x->ctx, doc);
		fz_flush_warnings(x->ctx);
		x->stats.warnings = x->warnings;
		x->stats.peak_memory = a->peak - a->base;
		x->stats.hit_memory_cap = a->hit;
		a->limited = false;
	}
	x->stats.elapsed_ms = cm_mono_ms() - start;
	if (err == CM_ENOMEM && why[0] == '\0')
		snprintf(why, whylen, "out of memory");
	if (err != CM_OK) {
		size_t cap = out->buf.max;
		pdf_text_fini(out);
		pdf_text_init(out, cap);
	}
	return err;
}
