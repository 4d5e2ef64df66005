/*
 * qset_builder.h - a question set built in place for the export tests (test_qgen_export.c,
 * test_qgen_export_parsers.c): one static set of at most QSET_MAX questions, reset with
 * reset_set, grown with add_mcq / add_open. Static functions only, for one test file each;
 * include after <cmocka.h> and svc-qgen/export.h.
 */
#ifndef TEST_QSET_BUILDER_H
#define TEST_QSET_BUILDER_H

#define S(x) ((char *)(x))
#define QSET_MAX 8
#define SET_ID "0b6c1f5e-2f6a-4b7e-9d61-0f5b7a1c2d3e"

static Qgen__Question    qv[QSET_MAX];
static Qgen__Question   *qp[QSET_MAX];
static char             *ov[QSET_MAX][4];
static Qgen__QuestionSet set;

/* An empty, succeeded set with a fixed id; topic may be NULL. */
static __attribute__((unused)) void
reset_set_topic(const char *topic)
{
	Qgen__QuestionSet s = QGEN__QUESTION_SET__INIT;

	set = s;
	set.id = S(SET_ID);
	set.status = S("succeeded");
	if (topic != NULL)
		set.topic = S(topic);
	set.questions = qp;
}

static Qgen__Question *
add_q(const char *type, const char *text, const char *expl)
{
	Qgen__Question  init = QGEN__QUESTION__INIT;
	size_t          n = set.n_questions++;
	Qgen__Question *q = &qv[n];

	assert_true(n < QSET_MAX);
	*q = init;
	q->id = S("7d3f2c1a-0000-4000-8000-00000000000a");
	q->type = S(type);
	q->text = S(text);
	q->explanation = S(expl);
	q->difficulty = S("medium");
	qp[n] = q;
	return q;
}

static __attribute__((unused)) Qgen__Question *
add_mcq(const char *text, const char *const opt[4], int ans, const char *expl)
{
	Qgen__Question *q = add_q("mcq", text, expl);
	size_t          n = (size_t)(q - qv);

	for (size_t j = 0; j < 4; j++)
		ov[n][j] = S(opt[j]);
	q->options = ov[n];
	q->n_options = 4;
	q->answer_index = ans;
	return q;
}

static __attribute__((unused)) Qgen__Question *
add_open(const char *text, const char *ref, const char *expl)
{
	Qgen__Question *q = add_q("open", text, expl);

	q->reference = S(ref);
	return q;
}

#endif
