/*
 * util.h - small shared helpers: clocks, random ids, hex/base64url, secret wiping.
 */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/err.h"

/* FNV-1a, 64 bits, of n bytes (cm_hash_str: up to the NUL): for tables, never for security. */
uint64_t cm_hash(const void *p, size_t n);
uint64_t cm_hash_str(const char *s);

int64_t  cm_now_ms(void);  /* wall clock, unix milliseconds */
int64_t  cm_mono_ms(void); /* monotonic milliseconds, for durations */
uint64_t cm_mono_ns(void);

/* Fills buf with cryptographically strong random bytes (libsodium). */
void cm_random_bytes(void *buf, size_t n);

/* A random (version 4) UUID as 36 characters plus NUL. */
void cm_uuid_v4(char out[37]);
/* A UUID v4-shaped id that is unique but not secret (request ids): a per-thread generator seeded
 * once from the system's randomness, no system call per id. Never for tokens or capabilities. */
void cm_uuid_v4_fast(char out[37]);
/* True when s is a textual UUID (8-4-4-4-12 hex). */
bool cm_uuid_valid(const char *s);

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-28T15:24:28.123Z; out needs 32 bytes. */
void cm_format_time_ms(int64_t unix_ms, char out[32]);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void cm_hex(const void *in, size_t n, char *out);

/* base64url without padding; out needs cm_b64url_len(n)+1 bytes. */
size_t cm_b64url_len(size_t n);
void   cm_b64url(const void *in, size_t n, char *out);

/* Zeroes memory in a way the compiler keeps (secrets before free). */
void cm_wipe(void *p, size_t n);

/* Constant-time comparison of two equal-length byte strings. */
bool cm_ct_equal(const void *a, const void *b, size_t n);

/* Parses a base-10 int64 with the whole string consumed; false on any junk or overflow. */
bool cm_parse_i64(const char *s, int64_t *out);

/* Copies at most dstlen-1 bytes and always terminates; returns strlen(src). */
size_t cm_strlcpy(char *dst, const char *src, size_t dstlen);

/* Reads a whole (small) file into a malloc'd NUL-terminated string: key files, not data. NULL
 * when it cannot be read or is larger than max bytes. */
char *cm_read_file(const char *path, size_t max);

/* Blocks SIGTERM/SIGINT/SIGPIPE for the calling thread and its future children; call first in
 * main(). cm_wait_for_signal() then waits for SIGTERM or SIGINT and returns its number. */
void cm_signals_block(void);
int  cm_wait_for_signal(void);
/* For a process that reloads its configuration on SIGHUP (the edge): cm_signals_block() that
 * blocks SIGHUP too (call it instead, first in main()), and a wait for SIGTERM, SIGINT or SIGHUP
 * that gives up after timeout_ms and then returns 0, so the caller can do periodic work. The
 * services keep SIGHUP's default action. */
void cm_signals_block_hup(void);
int  cm_wait_for_signal_ms(int timeout_ms);

#endif
