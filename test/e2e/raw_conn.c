/*
 * raw_conn.c - see raw_conn.h. A per-fd carry buffer keeps bytes read past one response (a
 * pipelined answer) for the next call.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "raw_conn.h"

#define MAX_FDS 1024
#define CARRY 65536

static char   carry[MAX_FDS][CARRY];
static size_t carried[MAX_FDS];

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
raw_open(const char *base)
{
	struct sockaddr_in sa;
	char               host[64];
	int                port, fd, one = 1;

	if (sscanf(base, "http://%63[^:]:%d", host, &port) != 2)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	if (fd >= MAX_FDS || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	carried[fd] = 0;
	return fd;
}

bool
raw_send(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads more into the carry buffer until deadline. >0 bytes, 0 closed, -1 timeout/error. */
static int
fill(int fd, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	long long     left = deadline - now_ms();
	ssize_t       n;

	if (left <= 0 || carried[fd] == CARRY)
		return -1;
	if (poll(&pfd, 1, (int)left) <= 0)
		return -1;
	n = recv(fd, carry[fd] + carried[fd], CARRY - carried[fd], 0);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	carried[fd] += (size_t)n;
	return (int)n;
}

/* Waits for a whole head in the carry buffer: its length (through the blank line) and status.
 * 1 when it is there, 0 when the peer closed first, -1 on timeout or a malformed status line. */
static int
wait_head(int fd, long long deadline, size_t *len, int *status)
{
	char *end;

	for (;;) {
		carry[fd][carried[fd] < CARRY ? carried[fd] : CARRY - 1] = '\0';
		if ((end = strstr(carry[fd], "\r\n\r\n")) != NULL)
			break;
		int n = fill(fd, deadline);
		if (n <= 0)
			return n;
	}
	*len = (size_t)(end + 4 - carry[fd]);
	return sscanf(carry[fd], "HTTP/1.%*d %d", status) == 1 ? 1 : -1;
}

/* Moves the carry buffer's first n bytes into buf (NUL-terminated). */
static void
take(int fd, char *buf, size_t n)
{
	memcpy(buf, carry[fd], n);
	buf[n] = '\0';
	memmove(carry[fd], carry[fd] + n, carried[fd] - n);
	carried[fd] -= n;
}

int
raw_response(int fd, char *buf, size_t cap, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	size_t    head, body = 0, total;
	int       status, rc = wait_head(fd, deadline, &head, &status);

	if (rc <= 0)
		return rc;
	for (char *h = strcasestr(carry[fd], "\r\nContent-Length:");
	     h != NULL && h < carry[fd] + head;) {
		body = strtoul(h + 17, NULL, 10);
		break;
	}
	if (status >= 100 && status < 200)
		body = 0;
	total = head + body;
	while (carried[fd] < total) {
		int n = fill(fd, deadline);
		if (n <= 0)
			return n;
	}
	if (total + 1 > cap)
		return -1;
	take(fd, buf, total);
	return status;
}

int
raw_head(int fd, char *head, size_t cap, int timeout_ms)
{
	size_t n;
	int    status, rc = wait_head(fd, now_ms() + timeout_ms, &n, &status);

	if (rc <= 0)
		return rc;
	if (n + 1 > cap)
		return -1;
	take(fd, head, n);
	return status;
}

bool
raw_read(int fd, char *buf, size_t cap, size_t *len, size_t want, int timeout_ms, bool *closed)
{
	long long deadline = now_ms() + timeout_ms;

	*closed = false;
	if (want > cap)
		return false;
	for (;;) {
		size_t take = carried[fd] < cap - *len ? carried[fd] : cap - *len;
		memcpy(buf + *len, carry[fd], take);
		*len += take;
		memmove(carry[fd], carry[fd] + take, carried[fd] - take);
		carried[fd] -= take;
		if (*len >= want)
			return true;
		int n = fill(fd, deadline);
		if (n == 0) {
			*closed = true;
			return true;
		}
		if (n < 0)
			return false;
	}
}

bool
raw_closed_within(int fd, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		int n;
		carried[fd] = 0;
		if ((n = fill(fd, deadline)) == 0)
			return true;
		if (n < 0)
			return false;
	}
}

void
raw_close(int fd)
{
	if (fd >= 0)
		close(fd);
}
