/*
 * fuzz_qgen_qscan.c - libFuzzer driver for the streamed-answer scanner (svc-qgen/qscan.h), which
 * sees a model's bytes as they arrive. The input is scanned twice: whole, and cut into deltas
 * at points drawn from its first bytes; both must hand out the same objects, byte for byte.
 * Every object handed out starts with '{' and ends with '}', and whatever qgen_parse_one makes
 * of it passes the validity rules again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../svc-qgen/qscan.h"
#include "../../svc-qgen/quality.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct trace {
	uint64_t hash; /* of every object, in order */
	int      n;
} trace;

static const qgen_batch_ctx CTX = {QGEN_TYPE_MASK(QGEN_MCQ) | QGEN_TYPE_MASK(QGEN_OPEN),
                                   QGEN_MEDIUM, 1, 9};

static bool
on_obj(void *arg, const char *obj, size_t len)
{
	trace        *t = arg;
	qgen_question q;
	char          why[160];

	if (len < 2 || obj[0] != '{' || obj[len - 1] != '}')
		abort();
	for (size_t i = 0; i < len; i++)
		t->hash = (t->hash ^ (uint8_t)obj[i]) * 1099511628211ull;
	t->hash = (t->hash ^ 0xff) * 1099511628211ull;
	t->n++;
	if (qgen_parse_one(obj, len, &CTX, &q, why, sizeof(why)) == CM_OK) {
		if (!qgen_check(&q, &CTX, why, sizeof(why)))
			abort();
		qgen_question_fini(&q);
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trace      whole = {1469598103934665603ull, 0}, cut = whole;
	qgen_qscan a, b;
	size_t     at = 0, k = 0;

	if (size > 1 << 17)
		return 0;
	qgen_qscan_init(&a, on_obj, &whole);
	(void)qgen_qscan_feed(&a, (const char *)data, size);
	qgen_qscan_init(&b, on_obj, &cut);
	while (at < size) {
		size_t step = 1 + (size > 0 ? data[k++ % size] % 17 : 0);
		if (step > size - at)
			step = size - at;
		(void)qgen_qscan_feed(&b, (const char *)data + at, step);
		at += step;
	}
	if (whole.n != cut.n || whole.hash != cut.hash || a.emitted != b.emitted ||
	    a.last_end != b.last_end || a.last_end > size)
		abort();
	qgen_qscan_fini(&a);
	qgen_qscan_fini(&b);
	return 0;
}
