/*
 * fuzz_qgen_ground.c - libFuzzer driver for svc-qgen's grounding (outside bytes on both sides:
 * the page text from a PDF, the answer and options from a model). The input is split at the
 * first two NUL bytes into page text, question and answer (the rest of the bytes, or nothing,
 * is the page); the answer is checked as an mcq option among fixed distractors and as an open
 * reference. Whatever the bytes, the quote is valid UTF-8 of at most QGEN_QUOTE_MAX bytes, with
 * no control characters, and a grounded answer has a quote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../svc-qgen/grounding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_quote(const qgen_ground_result *r)
{
	const unsigned char *s = (const unsigned char *)r->quote;
	size_t               n = strlen(r->quote), k;

	if (n > QGEN_QUOTE_MAX)
		abort();
	for (size_t i = 0; i < n; i += k + 1) {
		unsigned char c = s[i];
		if (c < 0x20 || c == 0x7f)
			abort();
		if (c < 0x80)
			k = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			abort();
		if (i + k >= n)
			abort();
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char              *copy, *question, *answer;
	qgen_question      q;
	qgen_ground_result r;
	qgen_ground_cfg    cfg = qgen_ground_defaults;

	if (size > 1 << 16 || (copy = malloc(size + 3)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = copy[size + 2] = '\0';
	question = copy + strlen(copy) + 1;
	answer = question + strlen(question) + 1;
	if (answer > copy + size + 2)
		answer = copy + size + 2;
	cfg.window = size > 0 ? data[0] % 7 : 2; /* out-of-range windows are clamped */

	memset(&q, 0, sizeof(q));
	q.type = QGEN_MCQ;
	q.text = question;
	q.options[0] = (char *)"alpha";
	q.options[1] = answer;
	q.options[2] = (char *)"beta gamma";
	q.options[3] = (char *)"https://example.org/x";
	q.answer = 1;
	if (qgen_ground_text(&q, copy, strlen(copy), &cfg, &r) == CM_OK) {
		check_quote(&r);
		if (r.verdict == QGEN_GROUNDED && cfg.min_overlap > 0 && r.quote[0] == '\0')
			abort();
	}
	q.type = QGEN_OPEN;
	q.reference = answer;
	if (qgen_ground_text(&q, copy, strlen(copy), &cfg, &r) == CM_OK)
		check_quote(&r);
	free(copy);
	return 0;
}
