/*
 * fuzz_llm_json.c - libFuzzer driver for the extraction of a JSON object from model output
 * (model text is outside bytes). Checks the span it returns lies inside the input and parses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cm/llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *start = NULL;
	size_t      len = 0;
	char       *copy;

	if (size > 1 << 16 || (copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (cm_llm_extract_json(copy, size, &start, &len) == CM_OK) {
		json_t *v;
		if (start < copy || start + len > copy + size)
			abort();
		if ((v = json_loadb(start, len, 0, NULL)) == NULL || !json_is_object(v))
			abort();
		json_decref(v);
	}
	free(copy);
	return 0;
}
