/*
 * offline.c - overlap figures and the offline grader (offline.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/buf.h"
#include "offline.h"
#include "text.h"

#define TERMS_MAX 4096 /* terms read of one text */

cm_err
eval_overlap_of(const eval_item *it, eval_overlap *out)
{
	eval_terms a = {0}, r = {0}, c = {0};
	cm_err     err;

	memset(out, 0, sizeof(*out));
	if ((err = eval_terms_of(it->answer, TERMS_MAX, &a)) != CM_OK ||
	    (err = eval_terms_of(it->reference, TERMS_MAX, &r)) != CM_OK ||
	    (err = eval_terms_of(it->context, TERMS_MAX, &c)) != CM_OK)
		goto out;
	out->answer_terms = a.n;
	out->reference_terms = r.n;
	out->context_terms = c.n;
	out->covered = eval_terms_common(&a, &r);
	for (size_t i = 0; i < a.n; i++)
		if (eval_terms_has(&r, a.h[i]) || eval_terms_has(&c, a.h[i]))
			out->supported++;
out:
	eval_terms_fini(&a);
	eval_terms_fini(&r);
	eval_terms_fini(&c);
	return err;
}

int
eval_offline_score(const eval_overlap *o, eval_strictness s)
{
	double f;

	if (o->reference_terms == 0 && o->context_terms == 0)
		return -1;
	if (o->answer_terms == 0)
		return 0;
	double support = (double)o->supported / (double)o->answer_terms;
	if (o->reference_terms > 0) {
		double coverage = (double)o->covered / (double)o->reference_terms;
		f = 0.7 * coverage + 0.3 * support;
	} else {
		double len = (double)o->answer_terms / 8.0;
		f = support * (len < 1.0 ? len : 1.0);
	}
	if (s == EVAL_EASY)
		f = f * 1.2 > 1.0 ? 1.0 : f * 1.2;
	else if (s == EVAL_STRICT)
		f *= 0.85;
	return (int)lround(10.0 * f);
}

/* Lists up to max terms of a text that the answer has (want true) or lacks (want false). */
typedef struct list_ctx {
	const eval_terms *answer;
	bool              want;
	cm_buf           *out;
	size_t            n, max;
	uint64_t          seen[8];
	bool              oom;
} list_ctx;

static bool
list_term(void *arg, const char *word, size_t len, uint64_t h)
{
	list_ctx *c = arg;

	if (eval_terms_has(c->answer, h) != c->want)
		return true;
	for (size_t i = 0; i < c->n; i++)
		if (c->seen[i] == h)
			return true;
	if (cm_buf_printf(c->out, "%s%.*s", c->n > 0 ? ", " : "", (int)len, word) != CM_OK) {
		c->oom = true;
		return false;
	}
	c->seen[c->n++] = h;
	return c->n < c->max;
}

bool
eval_offline_grade(const eval_item *it, eval_strictness s, eval_grade *out, char *why,
                   size_t whylen)
{
	eval_overlap o;
	eval_terms   a = {0};
	cm_buf       fb, sug, hint;
	list_ctx     have = {0}, lack = {0};
	int          score;
	bool         ok = false;

	cm_buf_init(&fb, 4096);
	cm_buf_init(&sug, 1024);
	cm_buf_init(&hint, 1024);
	if (eval_overlap_of(it, &o) != CM_OK || eval_terms_of(it->answer, TERMS_MAX, &a) != CM_OK) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if ((score = eval_offline_score(&o, s)) < 0) {
		snprintf(why, whylen,
		         "cannot be graded offline: no reference answer and no source text to "
		         "compare with");
		goto out;
	}
	const char *basis = o.reference_terms > 0 ? it->reference : it->context;
	have = (list_ctx){&a, true, &hint, 0, 5, {0}, false};
	lack = (list_ctx){&a, false, &sug, 0, 5, {0}, false};
	if (cm_buf_appends(
	        &fb, "Graded offline, without a language model (none is configured): ") != CM_OK)
		goto oom;
	if (o.reference_terms > 0) {
		if (cm_buf_printf(
		        &fb, "your answer has %zu of the %zu key terms of the reference answer",
		        o.covered, o.reference_terms) != CM_OK)
			goto oom;
	} else if (cm_buf_printf(&fb,
	                         "%zu of your answer's %zu key terms appear in the source text",
	                         o.supported, o.answer_terms) != CM_OK) {
		goto oom;
	}
	if (cm_buf_appends(&fb, ".") != CM_OK || cm_buf_appends(&hint, "") != CM_OK ||
	    cm_buf_appends(&sug, "") != CM_OK)
		goto oom;
	if (o.reference_terms > 0) {
		if (cm_buf_appends(&fb, " Matched: ") != CM_OK)
			goto oom;
		have.out = &fb;
		if (eval_terms_each(basis, list_term, &have) != CM_OK || have.oom)
			goto oom;
		if (have.n == 0 && cm_buf_appends(&fb, "none") != CM_OK)
			goto oom;
		if (cm_buf_appends(&fb, ".") != CM_OK)
			goto oom;
	}
	if (eval_terms_each(basis, list_term, &lack) != CM_OK || lack.oom)
		goto oom;
	if (lack.n > 0) {
		if (cm_buf_appends(&hint, "The answer should mention: ") != CM_OK ||
		    cm_buf_append(&hint, sug.data, sug.len) != CM_OK)
			goto oom;
		cm_buf_reset(&sug);
		if (cm_buf_appends(&sug, "Cover the missing points of the source; explain them in "
		                         "your own words.") != CM_OK)
			goto oom;
	} else if (cm_buf_appends(&sug, "Keep the answer as precise as it is.") != CM_OK) {
		goto oom;
	}
	if (!eval_grade_set(out, score, fb.data, sug.data, hint.data))
		goto oom;
	ok = true;
	goto out;
oom:
	snprintf(why, whylen, "out of memory");
out:
	eval_terms_fini(&a);
	cm_buf_fini(&fb);
	cm_buf_fini(&sug);
	cm_buf_fini(&hint);
	return ok;
}
