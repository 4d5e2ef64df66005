/*
 * test_eval_submit.c - what svc-eval accepts and for whom, against the fixture of
 * eval_harness.h: another user's attempt, job and set are NOT_FOUND; limits and bad input are
 * INVALID_ARGUMENT; the per-user quota is RESOURCE_EXHAUSTED with a retry time; the legacy route
 * grades inline questions against the selected document; without a model the offline grader
 * grades by overlap, and says so.
 */
#include "eval_harness.h"

/* Another user's attempt, job and set are NOT_FOUND; so are unknown ids. */
static void
test_other_users(void **state)
{
	answers        as = {0};
	char           attempt[40], job[40];
	call           c;
	Eval__Attempt *at = NULL;
	Eval__JobRef   jr = EVAL__JOB_REF__INIT;
	Eval__Job     *jb = NULL;
	cm_err         err;

	(void)state;
	open_answers(&as, "privacy", 1);
	assert_int_equal(submit_v1(w, owner, set_id, &as, "", attempt, job, &c, &at), CM_OK);
	cm_arena_fini(&c.arena);
	(void)get_attempt(&c, w, other, attempt, &err);
	assert_int_equal(err, CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	(void)get_attempt(&c, w, owner, "00000000-0000-4000-8000-000000000000", &err);
	assert_int_equal(err, CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	(void)get_attempt(&c, w, owner, "not-a-uuid", &err);
	assert_int_equal(err, CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	jr.id = job;
	assert_int_equal(
	    invoke(&c, w, eval_handle_get_job, other, &jr, &eval__job__descriptor, (void **)&jb),
	    CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	assert_int_equal(submit_v1(w, other, set_id, &as, "", attempt, job, &c, &at), CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	assert_int_equal(submit_v1(w, owner, "00000000-0000-4000-8000-000000000000", &as, "",
	                           attempt, job, &c, &at),
	                 CM_ENOTFOUND);
	cm_arena_fini(&c.arena);
	run_until_done(&svc, w, attempt);
}

static cm_err
submit_req(Eval__SubmitRequest *rq, const char *subject)
{
	call           c;
	Eval__Attempt *at = NULL;
	cm_err err = invoke(&c, w, eval_handle_submit, subject, rq, &eval__attempt__descriptor,
	                    (void **)&at);

	cm_arena_fini(&c.arena);
	return err;
}

/* Limits and bad input: INVALID_ARGUMENT with nothing stored. */
static void
test_limits(void **state)
{
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	answers             as = {0};
	Eval__Answer       *many[501];
	Eval__Answer        one;
	char               *huge = malloc(8194);
	Eval__InlineItem    it = EVAL__INLINE_ITEM__INIT, *its[1] = {&it};

	(void)state;
	rq.question_set_id = set_id;
	/* 501 answers. */
	eval__answer__init(&one);
	one.question_id = (char *)"o0";
	for (int i = 0; i < 501; i++)
		many[i] = &one;
	rq.answers = many;
	rq.n_answers = 501;
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	/* Duplicates. */
	rq.n_answers = 2;
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	/* Not in the set; an option index out of range; huge and non-UTF-8 text. */
	add_answer(&as, "nope", -1, "x");
	rq.answers = as.p;
	rq.n_answers = 1;
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	as.n = 0;
	add_answer(&as, "m0", 7, NULL);
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	memset(huge, 'a', 8193);
	huge[8193] = '\0';
	as.n = 0;
	add_answer(&as, "o0", -1, huge);
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	as.n = 0;
	add_answer(&as, "o0", -1, "caf\xc3 au lait");
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	/* Bad strictness; nothing to grade; both kinds at once. */
	as.n = 0;
	add_answer(&as, "o0", -1, "ok");
	rq.strictness = (char *)"lenient";
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	rq.strictness = (char *)"";
	rq.n_answers = 0;
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	rq.n_answers = 1;
	it.question = (char *)"q";
	rq.items = its;
	rq.n_items = 1;
	assert_int_equal(submit_req(&rq, owner), CM_EINVAL);
	/* No subject. */
	rq.n_items = 0;
	assert_int_equal(submit_req(&rq, ""), CM_EAUTH);
	free(huge);
	assert_int_equal(stat("calls"), 0);
}

/* At most EVAL_USER_ACTIVE_MAX (3 here) attempts of a user are graded at once; the next is
 * RESOURCE_EXHAUSTED with a retry time. MCQ-only attempts need no grading and always pass. */
static void
test_quota(void **state)
{
	char           attempts[3][40], job[40], a4[40];
	call           c;
	Eval__Attempt *at = NULL;

	(void)state;
	for (int i = 0; i < 3; i++) {
		answers as = {0};
		open_answers(&as, "quota", 1);
		assert_int_equal(submit_v1(w, owner, set_id, &as, "", attempts[i], job, &c, &at),
		                 CM_OK);
		cm_arena_fini(&c.arena);
	}
	answers as = {0};
	open_answers(&as, "quota", 1);
	assert_int_equal(submit_v1(w, owner, set_id, &as, "", a4, job, &c, &at), CM_ELIMIT);
	assert_int_equal(c.ctx.retry_after_s, 5);
	cm_arena_fini(&c.arena);
	memset(&as, 0, sizeof(as));
	add_answer(&as, "m0", 0, NULL);
	assert_int_equal(submit_v1(w, owner, set2_id, &as, "", a4, job, &c, &at), CM_OK);
	cm_arena_fini(&c.arena);
	for (int i = 0; i < 3; i++)
		run_until_done(&svc, w, attempts[i]);
	/* Graded: room again. */
	memset(&as, 0, sizeof(as));
	open_answers(&as, "quota", 1);
	assert_int_equal(submit_v1(w, owner, set_id, &as, "", a4, job, &c, &at), CM_OK);
	cm_arena_fini(&c.arena);
	run_until_done(&svc, w, a4);
}

/* The legacy route: inline questions graded against the caller's selected document; MCQ by
 * letter (case and spaces ignored), open answers with the matching page as source text. */
static void
test_legacy_selected_document(void **state)
{
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	Eval__InlineItem    it[4], *its[4];
	char               *opts[4] = {"A) Rubisco", "B) Water", "C) Oxygen", "D) Salt"};
	call                c;
	Eval__Attempt      *at = NULL;
	char                attempt[40];
	cm_err              err;

	(void)state;
	for (int i = 0; i < 4; i++) {
		eval__inline_item__init(&it[i]);
		its[i] = &it[i];
	}
	it[0].question_id = (char *)"1";
	it[0].question = (char *)"Which enzyme fixes carbon?";
	it[0].user_answer = (char *)" a ";
	it[0].correct_answer = (char *)"A";
	it[0].n_options = 4;
	it[0].options = opts;
	it[1].question_id = (char *)"2";
	it[1].question = (char *)"Which enzyme fixes carbon?";
	it[1].user_answer = (char *)"D";
	it[1].correct_answer = (char *)"a";
	it[1].question_type = (char *)"mcq";
	it[1].n_options = 4;
	it[1].options = opts;
	it[2].question_id = (char *)"3";
	it[2].question = (char *)"Explain what mitochondria produce for the cell.";
	it[2].user_answer = (char *)"Mitochondria produce ATP for the cell.";
	it[2].question_type = (char *)"open";
	it[3].question_id = (char *)"4";
	it[3].question = (char *)"Explain osmosis.";
	it[3].user_answer = (char *)"";
	it[3].question_type = (char *)"open";
	rq.items = its;
	rq.n_items = 4;
	rq.use_selected = true;
	rq.overall = true;
	assert_int_equal(
	    invoke(&c, w, eval_handle_submit, owner, &rq, &eval__attempt__descriptor, (void **)&at),
	    CM_OK);
	snprintf(attempt, sizeof(attempt), "%s", at->id);
	assert_string_equal(at->question_set_id, "");
	assert_string_equal(at->document_id, doc_id);
	assert_int_equal(at->results[0]->score, 10);
	assert_int_equal(at->results[1]->score, 0);
	assert_non_null(strstr(at->results[1]->feedback, "A) Rubisco"));
	assert_string_equal(at->results[3]->feedback, "No answer given.");
	cm_arena_fini(&c.arena);
	run_until_done(&svc, w, attempt);
	assert_int_equal(stat("grade_calls"), 1);
	assert_non_null(strstr(last_query, "mitochondria")); /* the page was looked up */
	at = get_attempt(&c, w, owner, attempt, &err);
	assert_string_equal(at->status, "succeeded");
	assert_string_equal(at->results[2]->status, "graded");
	/* No reference: graded by the source text the search found. */
	assert_true(at->results[2]->score >= 5);
	assert_int_equal(at->max_score, 40);
	assert_string_equal(at->results[0]->question_id, "1");
	assert_string_equal(at->results[3]->question_id, "4");
	cm_arena_fini(&c.arena);

	/* A user with no selected document. */
	assert_int_equal(
	    invoke(&c, w, eval_handle_submit, other, &rq, &eval__attempt__descriptor, (void **)&at),
	    CM_EPRECOND);
	cm_arena_fini(&c.arena);
}

/* Without a model: open answers graded by overlap, and the feedback says so; an item with
 * nothing to compare with is reported, not scored. No call at all. */
static void
test_offline(void **state)
{
	answers             as = {0};
	char                attempt[40], job[40];
	call                c;
	Eval__Attempt      *at = NULL;
	Eval__SubmitRequest rq = EVAL__SUBMIT_REQUEST__INIT;
	Eval__InlineItem    it = EVAL__INLINE_ITEM__INIT, *its[1] = {&it};
	cm_err              err;

	(void)state;
	add_answer(&as, qids[NMCQ + 1], -1, "The Calvin cycle fixes carbon dioxide into sugars.");
	add_answer(&as, qids[NMCQ + 3], -1, "They store water.");
	assert_int_equal(submit_v1(ow, owner, set_id, &as, "", attempt, job, &c, &at), CM_OK);
	cm_arena_fini(&c.arena);
	run_until_done(&off, ow, attempt);
	at = get_attempt(&c, ow, owner, attempt, &err);
	assert_string_equal(at->status, "succeeded");
	assert_true(at->results[0]->score >= 7);
	assert_true(at->results[1]->score <= 3);
	assert_non_null(strstr(at->results[0]->feedback, "without a language model"));
	cm_arena_fini(&c.arena);
	assert_int_equal(count_source(ow, attempt, "offline"), 2);

	/* Legacy, no reference and no page matching the question: cannot be graded offline. */
	it.question_id = (char *)"x";
	it.question = (char *)"Describe quantum chromodynamics.";
	it.user_answer = (char *)"Quarks and gluons.";
	it.question_type = (char *)"open";
	rq.items = its;
	rq.n_items = 1;
	rq.document_id = doc_id;
	assert_int_equal(invoke(&c, ow, eval_handle_submit, owner, &rq, &eval__attempt__descriptor,
	                        (void **)&at),
	                 CM_OK);
	snprintf(attempt, sizeof(attempt), "%s", at->id);
	cm_arena_fini(&c.arena);
	run_until_done(&off, ow, attempt);
	at = get_attempt(&c, ow, owner, attempt, &err);
	assert_string_equal(at->status, "failed");
	assert_non_null(strstr(at->results[0]->error, "cannot be graded offline"));
	cm_arena_fini(&c.arena);
	assert_int_equal(stat("calls"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_other_users, fresh),
	    cmocka_unit_test_setup(test_limits, fresh),
	    cmocka_unit_test_setup(test_quota, fresh),
	    cmocka_unit_test_setup(test_legacy_selected_document, fresh),
	    cmocka_unit_test_setup(test_offline, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
