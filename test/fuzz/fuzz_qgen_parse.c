/*
 * fuzz_qgen_parse.c - libFuzzer driver for svc-qgen's reading of model answers (outside bytes):
 * JSON extraction, question parsing, selection and answer spreading. Every question that comes
 * out must pass the validity rules again and have its answer in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/llm.h"
#include "../../svc-qgen/quality.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const qgen_batch_ctx ctx = {QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
	                            QGEN_MEDIUM, 1, 9};
	const char          *start;
	size_t               len;
	char                *copy, why[200];
	qgen_qlist           cand, chosen;
	int                  rejected;

	if (size > 1 << 16 || (copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	qgen_qlist_init(&cand);
	qgen_qlist_init(&chosen);
	if (cm_llm_extract_json(copy, size, &start, &len) == CM_OK &&
	    qgen_parse_questions(start, len, &ctx, &cand, &rejected, why, sizeof(why)) == CM_OK) {
		(void)qgen_select(&chosen, &cand, 50);
		qgen_spread_answers(&chosen, size);
		for (size_t i = 0; i < chosen.n; i++) {
			qgen_question *q = &chosen.items[i];
			if (!qgen_check(q, &ctx, why, sizeof(why)))
				abort();
			if (q->type == QGEN_MCQ &&
			    (q->answer < 0 || q->answer > 3 || q->options[3] == NULL))
				abort();
		}
	}
	qgen_qlist_fini(&cand);
	qgen_qlist_fini(&chosen);
	free(copy);
	return 0;
}
