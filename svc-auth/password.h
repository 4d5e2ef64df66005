/*
 * password.h - Argon2id password hashing (libsodium crypto_pwhash_str).
 *
 * Hashes are self-describing strings starting with "$argon2id$". Verification of an unknown
 * user runs against a dummy hash made at start, so "no such user" costs the same time as
 * "wrong password" (no user enumeration by timing).
 */
#ifndef AUTH_PASSWORD_H
#define AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

#define AUTH_HASH_MAX 128 /* >= crypto_pwhash_STRBYTES */

/* opslimit/memlimit_kib are Argon2id's passes and memory; raised to libsodium's minimums. */
CM_MUSTCHECK cm_err auth_password_hash(const char *password, int64_t opslimit, int64_t memlimit_kib,
                                       char out[AUTH_HASH_MAX]);
bool                auth_password_verify(const char *hash, const char *password);

/* Prepares the dummy hash (call once at start, before workers run). */
CM_MUSTCHECK cm_err auth_password_init(int64_t opslimit, int64_t memlimit_kib);
/* Burns the same time as a verification for an unknown account. */
void auth_password_burn(const char *password);

#endif
