/*
 * grade.c - the model calls of grading (grade.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/log.h"
#include "cm/util.h"
#include "grade.h"
#include "guard.h"

#define PROMPT_MAX (4u * 1024u * 1024u)

/* One call for the items still ungraded (todo[0..m) index into items/out). Returns the
 * client's error; on CM_OK the reply is parsed into the items' out entries. */
static cm_err
one_call(eval_service *s, eval_strictness st, const eval_item *const *items, const size_t *todo,
         size_t m, eval_parsed *out, char *why, size_t whylen)
{
	const eval_item *asked[10];
	char             idbuf[10][16];
	char            *ids[10];
	eval_parsed      got[10];
	cm_buf           user;
	cm_llm_result    lr;
	cm_llm_req       rq;
	cm_llm_msg       msgs[2];
	cm_err           err;

	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < m; i++) {
		asked[i] = items[todo[i]];
		snprintf(idbuf[i], sizeof(idbuf[i]), "%d", items[todo[i]]->idx + 1);
		ids[i] = idbuf[i];
	}
	cm_buf_init(&user, PROMPT_MAX);
	cm_llm_result_init(&lr);
	if ((err = eval_prompt_grade_user(st, asked, ids, m, &user)) != CM_OK) {
		snprintf(why, whylen, "the prompt could not be built: %s", cm_strerror(err));
		goto out;
	}
	msgs[0] = (cm_llm_msg){"system", eval_prompt_grade_system(st)};
	msgs[1] = (cm_llm_msg){"user", user.data};
	memset(&rq, 0, sizeof(rq));
	rq.msgs = msgs;
	rq.nmsgs = 2;
	rq.max_tokens = eval_prompt_grade_max_tokens(m);
	rq.temperature = 0.0;
	rq.json_mode = true;
	cm_counter_add(s->grade_calls, 1);
	int64_t t0 = cm_mono_ms();
	err = cm_llm_chat(s->llm, &rq, &lr);
	cm_debug("EVAL-CALL", "%zu answers: %s in %lld ms, %lld+%lld tokens", m, cm_strerror(err),
	         (long long)(cm_mono_ms() - t0), (long long)lr.prompt_tokens,
	         (long long)lr.completion_tokens);
	if (err == CM_EPROTO) {
		snprintf(why, whylen, "the model's reply was not JSON%s",
		         strcmp(lr.finish_reason, "length") == 0 ? " (cut at the length limit)"
		                                                 : "");
		goto out;
	}
	if (err != CM_OK) {
		snprintf(why, whylen, "the model could not be reached: %.180s",
		         lr.errmsg[0] != '\0' ? lr.errmsg : cm_strerror(err));
		goto out;
	}
	if (eval_parse_grades(lr.json, lr.json_len, (const char *const *)ids, m, got) != CM_OK) {
		err = CM_EPROTO;
		snprintf(why, whylen, "%s", got[0].why);
		/* every item's why says so already */
	}
	for (size_t i = 0; i < m; i++) {
		eval_grade_fini(&out[todo[i]].grade);
		out[todo[i]] = got[i];
		memset(&got[i], 0, sizeof(got[i]));
	}
out:
	for (size_t i = 0; i < m; i++)
		eval_grade_fini(&got[i].grade);
	cm_llm_result_fini(&lr);
	cm_buf_fini(&user);
	return err;
}

/* Caps a grade the rubric cannot justify, and says so in its feedback. */
static void
guard(eval_service *s, const eval_item *it, eval_parsed *p)
{
	char why[160], *fb = NULL;
	int  cap = eval_guard(it, p->grade.score, why, sizeof(why));

	if (cap >= p->grade.score)
		return;
	cm_counter_add(s->scores_capped, 1);
	cm_info("EVAL-CAPPED", "answer %d: score %d capped at %d: %s", it->idx + 1, p->grade.score,
	        cap, why);
	size_t n = strlen(p->grade.feedback) + strlen(why) + 96;
	if ((fb = malloc(n)) != NULL) {
		snprintf(fb, n, "%s (The score was capped at %d by an automatic check: %s.)",
		         p->grade.feedback, cap, why);
		free(p->grade.feedback);
		p->grade.feedback = fb;
	}
	p->grade.score = cap;
}

void
eval_grade_batch(eval_service *s, eval_strictness st, const eval_item *const *items, size_t n,
                 eval_parsed *out, int *calls)
{
	size_t todo[10], m = 0;
	char   why[CM_MAX_ERRMSG] = "";
	int    max_calls = 1 + (int)s->cfg.retries;

	*calls = 0;
	for (size_t i = 0; i < n && i < 10; i++) {
		out[i].ok = false;
		todo[m++] = i;
	}
	while (m > 0 && *calls < max_calls) {
		cm_err err = one_call(s, st, items, todo, m, out, why, sizeof(why));
		size_t left = 0;

		(*calls)++;
		if (err != CM_OK && err != CM_EPROTO) {
			for (size_t i = 0; i < m; i++)
				snprintf(out[todo[i]].why, sizeof(out[todo[i]].why), "%.95s", why);
			break; /* the client retried already: the model is down or refuses */
		}
		for (size_t i = 0; i < m; i++) {
			eval_parsed *p = &out[todo[i]];
			if (err == CM_OK && p->ok) {
				guard(s, items[todo[i]], p);
				continue;
			}
			if (err != CM_OK)
				snprintf(p->why, sizeof(p->why), "%.95s", why);
			todo[left++] = todo[i];
		}
		if (left > 0 && *calls < max_calls) {
			cm_counter_add(s->items_retried, left);
			cm_warn("EVAL-RETRY",
			        "%zu of %zu answers ungraded after call %d (%s): asking again",
			        left, n, *calls, out[todo[0]].why);
		}
		m = left;
	}
	for (size_t i = 0; i < m; i++) {
		char w[96];
		snprintf(w, sizeof(w), "%s", out[todo[i]].why);
		snprintf(out[todo[i]].why, sizeof(out[todo[i]].why),
		         "not graded after %d call%s: %.60s", *calls, *calls == 1 ? "" : "s", w);
	}
	cm_counter_add(s->items_failed, m);
}

cm_err
eval_grade_overall(eval_service *s, const char *topic, int score, int max,
                   const eval_overall_item *items, size_t n, eval_overall *out, char *why,
                   size_t whylen)
{
	cm_buf user;
	cm_err err = CM_OK;

	cm_buf_init(&user, PROMPT_MAX);
	if ((err = eval_prompt_overall_user(topic, score, max, items, n, &user)) != CM_OK) {
		snprintf(why, whylen, "the prompt could not be built");
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		cm_llm_msg    msgs[2] = {{"system", eval_prompt_overall_system()},
		                         {"user", user.data}};
		cm_llm_req    rq;
		cm_llm_result lr;

		memset(&rq, 0, sizeof(rq));
		rq.msgs = msgs;
		rq.nmsgs = 2;
		rq.max_tokens = eval_prompt_overall_max_tokens();
		rq.temperature = 0.3;
		rq.json_mode = true;
		cm_llm_result_init(&lr);
		cm_counter_add(s->overall_calls, 1);
		err = cm_llm_chat(s->llm, &rq, &lr);
		if (err == CM_OK && (err = eval_parse_overall(lr.json, lr.json_len, out)) != CM_OK)
			snprintf(why, whylen, "the model's overall feedback was unusable");
		else if (err != CM_OK)
			snprintf(why, whylen, "%s: %.180s",
			         err == CM_EPROTO ? "the model's reply was not JSON"
			                          : "the model could not be reached",
			         lr.errmsg[0] != '\0' ? lr.errmsg : cm_strerror(err));
		cm_llm_result_fini(&lr);
		if (err != CM_EPROTO)
			break;
	}
out:
	cm_buf_fini(&user);
	return err;
}
