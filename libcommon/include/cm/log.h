/*
 * log.h - JSON-lines logging to stderr.
 *
 * One line per event: {"ts":"...","level":"info","svc":"auth","id":"AUTH-PG-FAIL","rid":"...",
 * "msg":"..."}. `id` is a short stable identifier that operators can grep and alert on. The
 * request id is thread-local: RPC workers set it for the duration of a call. The level is checked
 * before any formatting. Thread-safe: each line is written with a single write(2).
 * Never log secrets (passwords, tokens, keys).
 */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum cm_log_level {
	CM_LOG_DEBUG = 0,
	CM_LOG_INFO,
	CM_LOG_WARN,
	CM_LOG_ERROR,
} cm_log_level;

/* Call once at start; `service` is copied. Default before init: "?" at INFO. */
void cm_log_init(const char *service, cm_log_level level);

/* "debug", "info", "warn", "error" -> level; unknown text gives CM_LOG_INFO. */
cm_log_level cm_log_level_parse(const char *s);

bool cm_log_enabled(cm_log_level level);

/* Sets this thread's request id (copied, truncated to CM_MAX_REQUEST_ID); NULL clears it. */
void        cm_log_set_request_id(const char *rid);
const char *cm_log_request_id(void); /* "" when none */

void cm_log_(cm_log_level level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cm_log(level, id, ...)                                                                     \
	do {                                                                                       \
		if (cm_log_enabled(level))                                                         \
			cm_log_(level, id, __VA_ARGS__);                                           \
	} while (0)
#define cm_debug(id, ...) cm_log(CM_LOG_DEBUG, id, __VA_ARGS__)
#define cm_info(id, ...) cm_log(CM_LOG_INFO, id, __VA_ARGS__)
#define cm_warn(id, ...) cm_log(CM_LOG_WARN, id, __VA_ARGS__)
#define cm_error(id, ...) cm_log(CM_LOG_ERROR, id, __VA_ARGS__)

/* Writes one preformatted JSON object (no trailing newline) as its own line: access logs. */
void cm_log_raw_json(const char *json, size_t len);

/* From cm_log_buffer_start on, cm_log_raw_json's lines are buffered and written by a thread of
 * their own at least every flush_ms (sooner when the buffer fills), in writes of whole lines of
 * at most PIPE_BUF bytes (atomic on a pipe: never torn by another thread's line). A crash loses
 * at most the last flush_ms of them, as nginx's buffered access_log. False when the buffer or
 * thread could not be had (lines are then written at once). cm_log_buffer_stop writes what is
 * left and goes back to writing at once. Other log lines are never buffered. */
bool cm_log_buffer_start(int flush_ms);
void cm_log_buffer_stop(void);

#endif
