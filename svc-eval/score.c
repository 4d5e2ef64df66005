/*
 * score.c - multiple choice, totals and the summary written from scores (score.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm/buf.h"
#include "score.h"
#include "text.h"

static const char *
skip_space(const char *p)
{
	while (*p != '\0' && isspace((unsigned char)*p))
		p++;
	return p;
}

int
eval_mcq_letter(const char *answer, size_t noptions)
{
	const char *p = skip_space(answer);
	size_t      max = noptions > 0 ? noptions : 4;
	bool        delim = false;
	int         idx;

	if (strncasecmp(p, "option", 6) == 0 || strncasecmp(p, "answer", 6) == 0) {
		p = skip_space(p + 6);
		if (*p == ':')
			p = skip_space(p + 1);
	}
	if (*p == '(') {
		p++;
		delim = true;
	}
	if (!isalpha((unsigned char)*p))
		return -1;
	idx = tolower((unsigned char)*p) - 'a';
	p++;
	if (*p == ')' || *p == '.' || *p == ':') {
		delim = true;
		p++;
	} else if (*p != '\0' && !isspace((unsigned char)*p)) {
		return -1; /* "bee": a word, not a letter */
	}
	p = skip_space(p);
	if (*p != '\0' && !delim)
		return -1; /* "a plant" */
	return (size_t)idx < max ? idx : -1;
}

/* The option's text without a leading "A) " / "b. " / "C: " label. */
static const char *
unlabelled(const char *opt)
{
	const char *p = skip_space(opt);

	if (isalpha((unsigned char)p[0]) && (p[1] == ')' || p[1] == '.' || p[1] == ':') &&
	    (p[2] == '\0' || isspace((unsigned char)p[2])))
		return skip_space(p + 2);
	return opt;
}

int
eval_mcq_option_text(const char *answer, char *const *options, size_t noptions)
{
	cm_buf a, o;
	int    found = -1;

	cm_buf_init(&a, 4u * strlen(answer) + 16);
	cm_buf_init(&o, 1u << 16);
	if (eval_normalize(answer, &a) != CM_OK || a.len == 0)
		goto out;
	for (size_t i = 0; i < noptions && found < 0; i++) {
		const char *texts[2] = {unlabelled(options[i]), options[i]};
		for (int k = 0; k < 2 && found < 0; k++) {
			cm_buf_reset(&o);
			if (eval_normalize(texts[k], &o) == CM_OK && o.len > 0 &&
			    strcmp(a.data, o.data) == 0)
				found = (int)i;
		}
	}
out:
	cm_buf_fini(&a);
	cm_buf_fini(&o);
	return found;
}

int
eval_mcq_choice(const char *answer, char *const *options, size_t noptions)
{
	int i = eval_mcq_option_text(answer, options, noptions);

	return i >= 0 ? i : eval_mcq_letter(answer, noptions);
}

double
eval_percentage(int score, int max)
{
	if (max <= 0 || score <= 0)
		return 0.0;
	return (double)(((long long)score * 1000 + max / 2) / max) / 10.0;
}

const char *
eval_grade_letter(double pct)
{
	if (pct >= 90.0)
		return "A";
	if (pct >= 80.0)
		return "B";
	if (pct >= 70.0)
		return "C";
	if (pct >= 60.0)
		return "D";
	return "F";
}

/* "<prefix><question clipped to 100 bytes>". */
static bool
add_about(char **list, size_t *n, const char *prefix, const char *question)
{
	char   line[160];
	size_t keep = eval_utf8_clip(question, 100);

	snprintf(line, sizeof(line), "%s%.*s%s", prefix, (int)keep, question,
	         question[keep] != '\0' ? "..." : "");
	return eval_list_add(list, n, line);
}

cm_err
eval_summarize(const eval_scored *items, size_t n, eval_overall *out)
{
	int    score = 0, mcq = 0, mcq_right = 0, open = 0, open_sum = 0, pages[3] = {0, 0, 0};
	size_t npages = 0;
	cm_buf fb;
	cm_err err = CM_OK;

	for (size_t i = 0; i < n; i++) {
		if (!items[i].graded)
			continue;
		score += items[i].score;
		if (items[i].mcq) {
			mcq++;
			mcq_right += items[i].score == 10;
		} else {
			open++;
			open_sum += items[i].score;
		}
	}
	cm_buf_init(&fb, 1024);
	double pct = eval_percentage(score, 10 * (int)n);
	if ((err = cm_buf_printf(&fb, "You scored %d of %d (%.1f%%, grade %s).", score, 10 * (int)n,
	                         pct, eval_grade_letter(pct))) != CM_OK ||
	    (mcq > 0 && (err = cm_buf_printf(&fb, " %d of %d multiple-choice answers were right.",
	                                     mcq_right, mcq)) != CM_OK) ||
	    (open > 0 && (err = cm_buf_printf(&fb, " Open answers averaged %.1f out of 10.",
	                                      (double)open_sum / open)) != CM_OK) ||
	    (err = cm_buf_take(&fb, &out->feedback, &(size_t){0})) != CM_OK)
		goto out;

	for (size_t i = 0; i < n; i++) {
		const eval_scored *it = &items[i];
		if (!it->graded)
			continue;
		if (it->score >= 8 &&
		    !add_about(out->strengths, &out->n_strengths, "Answered well: ", it->question))
			err = CM_ENOMEM;
		if (it->score < 6) {
			if (!add_about(out->areas, &out->n_areas, "Revisit: ", it->question))
				err = CM_ENOMEM;
			if (it->page > 0 && npages < 3) {
				bool seen = false;
				for (size_t k = 0; k < npages; k++)
					seen = seen || pages[k] == it->page;
				if (!seen)
					pages[npages++] = it->page;
			}
		}
		if (err != CM_OK)
			goto out;
	}
	for (size_t k = 0; k < npages; k++) {
		char line[64];
		snprintf(line, sizeof(line), "Re-read page %d of the document.", pages[k]);
		if (!eval_list_add(out->study, &out->n_study, line))
			err = CM_ENOMEM;
	}
	if (err == CM_OK && out->n_areas > 0 && npages == 0 &&
	    !eval_list_add(out->study, &out->n_study,
	                   "Re-read the parts of the document these questions are about."))
		err = CM_ENOMEM;
	if (err == CM_OK && out->n_areas == 0 &&
	    !eval_list_add(out->study, &out->n_study, "Try harder questions on the same material."))
		err = CM_ENOMEM;
out:
	cm_buf_fini(&fb);
	return err;
}
