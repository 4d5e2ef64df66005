/*
 * log_int.h - private to log.c and log_buffer.c.
 */
#ifndef CM_LOG_INT_H
#define CM_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Writes all of p to stderr (write(2) until done; EINTR retried, other errors drop the rest). */
void cm_log_write_all(const char *p, size_t n);

/* Appends json and a newline to the buffer of cm_log_buffer_start; false when it is not running
 * (or the line is larger than the buffer): the caller writes it itself. */
bool cm_log_buffer_put(const char *json, size_t n);

#endif
