/*
 * log.c - JSON lines on stderr.
 *
 * DESIGN: the level lives in an atomic so cm_log_enabled() is one relaxed load on every call
 * site. The service name is copied once by cm_log_init(); the request id is a thread-local copy.
 * A line is built in a capped cm_buf (message first formatted into a stack buffer, on the heap
 * only when longer) and handed to the kernel with one write(2), so lines of concurrent threads
 * never interleave. A message longer than CM_LOG_MAX_MSG is truncated, never dropped; when the
 * line cannot be built at all (out of memory) a fixed fallback line is written instead.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cm/buf.h"
#include "cm/limits.h"
#include "cm/log.h"
#include "cm/util.h"
#include "log_int.h"

#define CM_LOG_MAX_MSG 16384
#define CM_LOG_MAX_LINE (8 * CM_LOG_MAX_MSG)
#define CM_LOG_SVC_MAX 64

static atomic_int         cm_log_level_cur = CM_LOG_INFO;
static char               cm_log_svc[CM_LOG_SVC_MAX] = "?";
static _Thread_local char cm_log_rid[CM_MAX_REQUEST_ID + 1];
static const char *const  cm_log_names[] = {"debug", "info", "warn", "error"};

void
cm_log_init(const char *service, cm_log_level level)
{
	cm_strlcpy(cm_log_svc, service != NULL ? service : "?", sizeof(cm_log_svc));
	atomic_store(&cm_log_level_cur, (int)level);
}

cm_log_level
cm_log_level_parse(const char *s)
{
	if (s == NULL)
		return CM_LOG_INFO;
	for (int i = CM_LOG_DEBUG; i <= CM_LOG_ERROR; i++) {
		if (strcasecmp(s, cm_log_names[i]) == 0)
			return (cm_log_level)i;
	}
	if (strcasecmp(s, "warning") == 0)
		return CM_LOG_WARN;
	return CM_LOG_INFO;
}

bool
cm_log_enabled(cm_log_level level)
{
	return (int)level >= atomic_load_explicit(&cm_log_level_cur, memory_order_relaxed);
}

void
cm_log_set_request_id(const char *rid)
{
	if (rid == NULL)
		cm_log_rid[0] = '\0';
	else
		cm_strlcpy(cm_log_rid, rid, sizeof(cm_log_rid));
}

const char *
cm_log_request_id(void)
{
	return cm_log_rid;
}

void
cm_log_write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static const char *
cm_log_level_name(cm_log_level level)
{
	if ((int)level < CM_LOG_DEBUG || (int)level > CM_LOG_ERROR)
		return "info";
	return cm_log_names[level];
}

void
cm_log_(cm_log_level level, const char *id, const char *fmt, ...)
{
	static const char fallback[] =
	    "{\"level\":\"error\",\"id\":\"CM-LOG-OOM\",\"msg\":\"log line lost\"}\n";
	char    small[512];
	char   *msg = small;
	char   *heap = NULL;
	char    ts[32];
	cm_buf  line;
	va_list ap;
	int     n;
	cm_err  err;

	if (!cm_log_enabled(level))
		return; /* direct callers of cm_log_ get the same filter as the macros */
	cm_buf_init(&line, CM_LOG_MAX_LINE);
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		small[0] = '\0';
	} else if ((size_t)n >= sizeof(small)) {
		size_t sz = (size_t)n < CM_LOG_MAX_MSG ? (size_t)n + 1 : CM_LOG_MAX_MSG;
		heap = malloc(sz);
		if (heap != NULL) {
			va_start(ap, fmt);
			(void)vsnprintf(heap, sz, fmt, ap);
			va_end(ap);
			msg = heap;
		}
	}
	cm_format_time_ms(cm_now_ms(), ts);
	err = cm_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"svc\":\"", ts,
	                    cm_log_level_name(level));
	if (err == CM_OK)
		err = cm_buf_append_json_str(&line, cm_log_svc);
	if (err == CM_OK)
		err = cm_buf_appends(&line, "\",\"id\":\"");
	if (err == CM_OK)
		err = cm_buf_append_json_str(&line, id != NULL ? id : "");
	if (err == CM_OK && cm_log_rid[0] != '\0') {
		err = cm_buf_appends(&line, "\",\"rid\":\"");
		if (err == CM_OK)
			err = cm_buf_append_json_str(&line, cm_log_rid);
	}
	if (err == CM_OK)
		err = cm_buf_appends(&line, "\",\"msg\":\"");
	if (err == CM_OK)
		err = cm_buf_append_json_str(&line, msg);
	if (err == CM_OK)
		err = cm_buf_appends(&line, "\"}\n");
	if (err == CM_OK)
		cm_log_write_all(line.data, line.len);
	else
		cm_log_write_all(fallback, sizeof(fallback) - 1);
	cm_buf_fini(&line);
	free(heap);
}

void
cm_log_raw_json(const char *json, size_t len)
{
	cm_buf line;

	if (json == NULL || len >= CM_LOG_MAX_LINE || cm_log_buffer_put(json, len))
		return;
	cm_buf_init(&line, len + 1);
	if (cm_buf_append(&line, json, len) == CM_OK && cm_buf_append(&line, "\n", 1) == CM_OK)
		cm_log_write_all(line.data, line.len);
	cm_buf_fini(&line);
}
