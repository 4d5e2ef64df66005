/*
 * util.c - clocks, randomness, encodings, secret wiping, signals.
 *
 * DESIGN: randomness comes from libsodium; sodium_init() runs exactly once through pthread_once
 * (a failure there means the process cannot make secure ids, so it aborts). Encoders write into
 * caller-sized buffers whose sizes the header states. Signals: SIGTERM and SIGINT are blocked in
 * the main thread before any other thread starts, so every thread inherits the mask and only
 * cm_wait_for_signal() (sigwait) receives them; SIGPIPE is ignored so a closed peer shows up as
 * EPIPE instead of killing the process. A process that reloads on SIGHUP blocks it the same way
 * and waits for it with the others (cm_wait_for_signal_ms, sigtimedwait).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cm/util.h"

static pthread_once_t cm_sodium_once = PTHREAD_ONCE_INIT;

static void
cm_sodium_init(void)
{
	if (sodium_init() < 0)
		abort();
}

int64_t
cm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
cm_mono_ms(void)
{
	return (int64_t)(cm_mono_ns() / 1000000u);
}

uint64_t
cm_hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t             h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

uint64_t
cm_hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

uint64_t
cm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
cm_random_bytes(void *buf, size_t n)
{
	pthread_once(&cm_sodium_once, cm_sodium_init);
	randombytes_buf(buf, n);
}

void
cm_uuid_v4(char out[37])
{
	unsigned char u[16];
	char          hex[33];
	size_t        o = 0;

	cm_random_bytes(u, sizeof(u));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	cm_hex(u, sizeof(u), hex);
	for (size_t i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[o] = '\0';
}

/* splitmix64: a full-period 64-bit sequence, good enough to keep ids apart, cheap per call. */
static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
cm_uuid_v4_fast(char out[37])
{
	static _Thread_local uint64_t state;
	static _Thread_local bool     seeded;
	static const char             digits[] = "0123456789abcdef";
	unsigned char                 u[16];
	size_t                        o = 0;

	if (!seeded) {
		cm_random_bytes(&state, sizeof(state));
		seeded = true;
	}
	for (int half = 0; half < 2; half++) {
		uint64_t v = splitmix64(&state);
		for (int i = 0; i < 8; i++)
			u[half * 8 + i] = (unsigned char)(v >> (8 * i));
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[u[i] >> 4];
		out[o++] = digits[u[i] & 0x0f];
	}
	out[o] = '\0';
}

static bool
cm_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool
cm_uuid_valid(const char *s)
{
	if (s == NULL)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!cm_is_hex(s[i])) {
			return false; /* also stops at a NUL before 36 */
		}
	}
	return s[36] == '\0';
}

void
cm_format_time_ms(int64_t unix_ms, char out[32])
{
	/* The second's text is kept per thread: a busy log formats it once a second. */
	static _Thread_local int64_t prefix_sec = INT64_MIN;
	static _Thread_local char    prefix[32];
	static _Thread_local int     prefix_len;
	int64_t                      sec = unix_ms / 1000;
	int64_t                      ms = unix_ms % 1000;

	if (ms < 0) { /* floor division for times before 1970 */
		ms += 1000;
		sec -= 1;
	}
	if (sec != prefix_sec) {
		time_t    t = (time_t)sec;
		struct tm tm;
		int       n = -1;

		if (gmtime_r(&t, &tm) != NULL)
			n = snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.",
			             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			             tm.tm_min, tm.tm_sec);
		if (n < 0 || n > 27) {
			cm_strlcpy(out, "1970-01-01T00:00:00.000Z", 32);
			prefix_sec = INT64_MIN;
			return;
		}
		prefix_len = n;
		prefix_sec = sec;
	}
	memcpy(out, prefix, (size_t)prefix_len);
	out[prefix_len] = (char)('0' + ms / 100);
	out[prefix_len + 1] = (char)('0' + ms / 10 % 10);
	out[prefix_len + 2] = (char)('0' + ms % 10);
	out[prefix_len + 3] = 'Z';
	out[prefix_len + 4] = '\0';
}

void
cm_hex(const void *in, size_t n, char *out)
{
	static const char    digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

size_t
cm_b64url_len(size_t n)
{
	static const size_t tail[3] = {0, 2, 3};

	return (n / 3) * 4 + tail[n % 3];
}

void
cm_b64url(const void *in, size_t n, char *out)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = in;
	size_t               i = 0, o = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
}

void
cm_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		sodium_memzero(p, n);
}

bool
cm_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	unsigned char                 d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

bool
cm_parse_i64(const char *s, int64_t *out)
{
	const char *digits = s;
	char       *end = NULL;
	long long   v;

	if (s == NULL || out == NULL)
		return false;
	if (*digits == '-' || *digits == '+')
		digits++;
	if (*digits < '0' || *digits > '9') /* no spaces, no empty string */
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

size_t
cm_strlcpy(char *dst, const char *src, size_t dstlen)
{
	size_t len = strlen(src);

	if (dstlen > 0) {
		size_t n = len < dstlen - 1 ? len : dstlen - 1;
		memmove(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

static void
cm_signals_block_set(bool hup)
{
	sigset_t         set;
	struct sigaction sa;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (hup)
		sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

void
cm_signals_block(void)
{
	cm_signals_block_set(false);
}

void
cm_signals_block_hup(void)
{
	cm_signals_block_set(true);
}

int
cm_wait_for_signal_ms(int timeout_ms)
{
	sigset_t        set;
	struct timespec ts = {.tv_sec = timeout_ms / 1000,
	                      .tv_nsec = (timeout_ms % 1000) * 1000000L};
	int             sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	while ((sig = sigtimedwait(&set, NULL, &ts)) < 0) {
		if (errno != EINTR)
			return 0; /* EAGAIN: the time is up */
	}
	return sig;
}

int
cm_wait_for_signal(void)
{
	sigset_t set;
	int      sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

char *
cm_read_file(const char *path, size_t max)
{
	FILE  *f;
	char  *buf = NULL;
	size_t n;

	if (path == NULL || path[0] == '\0' || (f = fopen(path, "rb")) == NULL)
		return NULL;
	if ((buf = malloc(max + 1)) != NULL) {
		n = fread(buf, 1, max + 1, f);
		if (ferror(f) || n > max) { /* unreadable, or larger than allowed */
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}
