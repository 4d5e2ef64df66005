/*
 * fuzz_jwt.c - libFuzzer driver for access-token verification (tokens arrive from anyone).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cm_jwt_key *key;
	cm_jwt_claims      c;
	const char        *why;
	char              *tok;

	if (key == NULL &&
	    cm_jwt_key_hs256(&key, "fuzzing-secret-fuzzing-secret-0123456789", 40) != CM_OK)
		abort();
	if (size > 8192 || (tok = malloc(size + 1)) == NULL)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	(void)cm_jwt_verify(key, tok, 1700000000, 30, "access", &c, &why);
	free(tok);
	return 0;
}
