/*
 * fuzz_chat_citations.c - libFuzzer driver for the citation markers in model output (outside
 * bytes; svc-chat/cite.c). The input is copied into a buffer of exactly its size, so reading
 * past len is caught by ASan. Checks: every page is in 1..npages, ascending, each once, at most
 * cap; the first byte picks npages and cap, so the bounds are fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../svc-chat/cite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int   pages[40], npages, cap, n;
	char *copy;

	if (size < 1 || size > 1 << 16)
		return 0;
	npages = data[0] * 4; /* 0..1020 */
	cap = data[0] % 33;   /* 0..32 */
	if ((copy = malloc(size - 1 > 0 ? size - 1 : 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	n = chat_cite_parse(copy, size - 1, npages, pages, cap);
	if (n < 0 || n > cap)
		abort();
	for (int i = 0; i < n; i++) {
		if (pages[i] < 1 || pages[i] > npages || (i > 0 && pages[i] <= pages[i - 1]))
			abort();
	}
	free(copy);
	return 0;
}
