/*
 * raw_conn.h - one raw TCP connection to an edge, for what an HTTP library hides: bytes after a
 * request, partial headers, pipelining, when the server closes. Every wait has a deadline.
 */
#ifndef TEST_RAW_CONN_H
#define TEST_RAW_CONN_H

#include <stdbool.h>
#include <stddef.h>

/* A connection to host:port of base ("http://127.0.0.1:28081"); -1 on failure. */
int raw_open(const char *base);
/* Writes all of data; false when the peer closed. */
bool raw_send(int fd, const void *data, size_t len);
/* Reads one response (status line, headers, Content-Length body, or 1xx alone) within
 * timeout_ms into buf (NUL-terminated; bytes past it stay for the next call). The status, 0 when
 * the peer closed first, -1 on timeout or a response that does not fit. */
int raw_response(int fd, char *buf, size_t cap, int timeout_ms);
/* True when the peer closes (or resets) the connection within timeout_ms, reading and dropping
 * whatever comes before. */
bool raw_closed_within(int fd, int timeout_ms);
void raw_close(int fd);

#endif
