/*
 * fuzz_eval_parse.c - libFuzzer driver for svc-eval's reading of model replies (outside bytes):
 * grading replies for three ids and overall replies. Checks that every item ends either graded
 * with a score 0-10 and non-empty feedback, or ungraded with a reason - never half of each - and
 * that the texts kept respect their caps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../svc-eval/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s)
{
	if (s == NULL || strlen(s) > EVAL_MAX_FEEDBACK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"1", "2", "17"};
	eval_parsed              p[3];
	eval_overall             o;

	if (size > 1 << 16)
		return 0;
	memset(p, 0, sizeof(p));
	(void)eval_parse_grades((const char *)data, size, ids, 3, p);
	for (int i = 0; i < 3; i++) {
		if (p[i].ok) {
			if (p[i].grade.score < 0 || p[i].grade.score > 10 || p[i].why[0] != '\0')
				abort();
			check_text(p[i].grade.feedback);
			check_text(p[i].grade.suggestions);
			check_text(p[i].grade.hint);
			if (p[i].grade.feedback[0] == '\0')
				abort();
		} else if (p[i].why[0] == '\0') {
			abort();
		}
		eval_grade_fini(&p[i].grade);
	}
	memset(&o, 0, sizeof(o));
	if (eval_parse_overall((const char *)data, size, &o) == CM_OK) {
		check_text(o.feedback);
		if (o.n_strengths > EVAL_MAX_LIST || o.n_areas > EVAL_MAX_LIST ||
		    o.n_study > EVAL_MAX_LIST)
			abort();
		eval_overall_fini(&o);
	} else if (o.feedback != NULL) {
		abort();
	}
	return 0;
}
