/*
 * password.c - Argon2id via libsodium. The dummy hash equalises timing for unknown accounts.
 */
#include <string.h>

#include <sodium.h>

#include "cm/util.h"
#include "password.h"

static char dummy_hash[AUTH_HASH_MAX];

static void
limits(int64_t opslimit, int64_t memlimit_kib, unsigned long long *ops, size_t *mem)
{
	*ops = opslimit < (int64_t)crypto_pwhash_OPSLIMIT_MIN ? crypto_pwhash_OPSLIMIT_MIN
	                                                      : (unsigned long long)opslimit;
	*mem = (size_t)memlimit_kib * 1024u;
	if (*mem < crypto_pwhash_MEMLIMIT_MIN)
		*mem = crypto_pwhash_MEMLIMIT_MIN;
}

cm_err
auth_password_hash(const char *password, int64_t opslimit, int64_t memlimit_kib,
                   char out[AUTH_HASH_MAX])
{
	unsigned long long ops;
	size_t             mem;

	if (sodium_init() < 0)
		return CM_EINTERNAL;
	limits(opslimit, memlimit_kib, &ops, &mem);
	if (crypto_pwhash_str(out, password, strlen(password), ops, mem) != 0)
		return CM_ENOMEM; /* libsodium fails only when it cannot get the memory */
	return CM_OK;
}

bool
auth_password_verify(const char *hash, const char *password)
{
	if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

cm_err
auth_password_init(int64_t opslimit, int64_t memlimit_kib)
{
	unsigned char pw[16];
	char          text[33];

	cm_random_bytes(pw, sizeof(pw));
	cm_hex(pw, sizeof(pw), text);
	return auth_password_hash(text, opslimit, memlimit_kib, dummy_hash);
}

void
auth_password_burn(const char *password)
{
	if (dummy_hash[0] != '\0')
		(void)auth_password_verify(dummy_hash, password);
}
