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
/* Reads a response's head (through its blank line) within timeout_ms into head (NUL-terminated);
 * the bytes after it stay for raw_read. The status, 0 when the peer closed first, -1 on timeout
 * or a head that does not fit. For bodies read as they come (streamed answers). */
int raw_head(int fd, char *head, size_t cap, int timeout_ms);
/* Appends what comes next into buf (holding *len bytes, room for cap) until it holds at least
 * want bytes, the peer closes (*closed set) or timeout_ms passes. False on timeout or error. */
bool raw_read(int fd, char *buf, size_t cap, size_t *len, size_t want, int timeout_ms,
              bool *closed);
/* True when the peer closes (or resets) the connection within timeout_ms, reading and dropping
 * whatever comes before. */
bool raw_closed_within(int fd, int timeout_ms);
void raw_close(int fd);

#endif
