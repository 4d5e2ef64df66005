/*
 * test_edge_wsloop.c - the WebSocket hub over sockets handed to edge_ws_adopt, as the HTTP engine
 * hands them after its 101: each test owns a socketpair, frames its client side by hand (masked,
 * RFC 6455 5.2) and checks what the edge sends back and when it lets go of the socket. The
 * upstreams are NULL, so a well-formed subscription is answered UNAVAILABLE. Every socket must be
 * released exactly once by the time edge_ws_stop returns (teardown).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/poll.h> /* edge/poll.h shadows <poll.h> */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cm/util.h"
#include "ws.h"

#define JOB "2b1c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
#define DEADLINE_MS 5000
#define MAX_SOCKS 16

enum { OP_TEXT = 1, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static edge       E;
static int        srv_fd[MAX_SOCKS], cli_fd[MAX_SOCKS], nsock;
static atomic_int released[MAX_SOCKS];

/* The HTTP engine's release: counts, then closes the server side. */
static void
on_release(void *handle)
{
	int i = (int)(intptr_t)handle;

	atomic_fetch_add(&released[i], 1);
	close(srv_fd[i]);
}

static void
hub_start(const edge_ws_limits *l)
{
	memset(&E, 0, sizeof(E));
	nsock = 0;
	assert_int_equal(edge_ws_start_limits(&E, l), CM_OK);
}

static int
teardown(void **state)
{
	(void)state;
	edge_ws_stop(&E);
	for (int i = 0; i < nsock; i++) {
		assert_int_equal(atomic_load(&released[i]), 1);
		close(cli_fd[i]);
	}
	return 0;
}

static edge_ws_limits
limits(void)
{
	edge_ws_limits l;

	edge_ws_limits_default(&l);
	l.close_grace_ms = 500;
	return l;
}

/* A socketpair whose server side goes to edge_ws_adopt; returns the client side. */
static int
adopt_ex(const char *user, const char *code, const char *msg, const void *extra, size_t extra_len,
         int sndbuf)
{
	int            sv[2], i = nsock++;
	edge_ws_socket s;

	assert_true(i < MAX_SOCKS);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
		                 0);
	srv_fd[i] = sv[0];
	cli_fd[i] = sv[1];
	atomic_store(&released[i], 0);
	s.fd = sv[0];
	s.extra = extra;
	s.extra_len = extra_len;
	s.handle = (void *)(intptr_t)i;
	s.release = on_release;
	edge_ws_adopt(&E, &s, user, code, msg);
	return sv[1];
}

static int
adopt(const char *user)
{
	return adopt_ex(user, NULL, NULL, NULL, 0, 0);
}

/* A masked client frame into out (room for len + 8); returns its length. */
static size_t
put_frame(uint8_t *out, int op, const void *payload, size_t len)
{
	static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
	const uint8_t       *p = payload;
	size_t               h = 0;

	assert_true(len < 65536);
	out[h++] = (uint8_t)(0x80 | op);
	if (len < 126) {
		out[h++] = (uint8_t)(0x80 | len);
	} else {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	}
	memcpy(out + h, key, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		out[h + i] = p[i] ^ key[i % 4];
	return h + len;
}

static void
send_frame(int fd, int op, const char *payload, size_t len)
{
	uint8_t buf[8200];
	size_t  n = put_frame(buf, op, payload, len), off = 0;

	while (off < n) {
		ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);

		assert_true(w > 0);
		off += (size_t)w;
	}
}

static void
send_text(int fd, const char *s)
{
	send_frame(fd, OP_TEXT, s, strlen(s));
}

/* 1 read, 0 end of stream, -1 deadline passed. */
static int
read_exact(int fd, void *buf, size_t n, int64_t until)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t       left = until - cm_mono_ms();
		ssize_t       r;

		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 0;
		if (r < 0)
			continue; /* EAGAIN, EINTR */
		got += (size_t)r;
	}
	return 1;
}

typedef struct frame {
	int    op;
	size_t len;
	char   data[8192];
} frame;

/* One server frame (never masked, never fragmented here): 1, 0 at end of stream, -1 timeout. */
static int
read_frame(int fd, frame *f, int64_t until)
{
	uint8_t h[2], ext[2];
	int     r;

	if ((r = read_exact(fd, h, 2, until)) != 1)
		return r;
	assert_int_equal(h[0] & 0x80, 0x80); /* FIN */
	assert_int_equal(h[1] & 0x80, 0);    /* a server does not mask */
	f->op = h[0] & 0x0f;
	f->len = h[1] & 0x7f;
	assert_true(f->len != 127);
	if (f->len == 126) {
		assert_int_equal(read_exact(fd, ext, 2, until), 1);
		f->len = (size_t)ext[0] << 8 | ext[1];
	}
	assert_true(f->len < sizeof(f->data));
	if (f->len > 0)
		assert_int_equal(read_exact(fd, f->data, f->len, until), 1);
	f->data[f->len] = '\0';
	return 1;
}

/* The next frame that is neither a ping nor a pong. */
static void
next_frame(int fd, frame *f)
{
	int64_t until = cm_mono_ms() + DEADLINE_MS;

	do
		assert_int_equal(read_frame(fd, f, until), 1);
	while (f->op == OP_PING || f->op == OP_PONG);
}

static void
expect_error(int fd, const char *code)
{
	frame   f;
	json_t *v;

	next_frame(fd, &f);
	assert_int_equal(f.op, OP_TEXT);
	assert_non_null(v = json_loads(f.data, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(v, "type")), "error");
	assert_string_equal(json_string_value(json_object_get(v, "code")), code);
	json_decref(v);
}

/* A close frame with code, then the end of the stream (the edge let go of the socket). */
static void
expect_close(int fd, int code)
{
	frame f;

	next_frame(fd, &f);
	assert_int_equal(f.op, OP_CLOSE);
	assert_true(f.len >= 2);
	assert_int_equal((uint8_t)f.data[0] << 8 | (uint8_t)f.data[1], code);
	assert_int_equal(read_frame(fd, &f, cm_mono_ms() + DEADLINE_MS), 0);
}

/* Writes frame until the edge drops the socket; false when DEADLINE_MS passes first. The
 * client never reads. */
static bool
flood_until_dropped(int fd, const uint8_t *frame_bytes, size_t n)
{
	int64_t until = cm_mono_ms() + DEADLINE_MS;

	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	while (cm_mono_ms() < until) {
		ssize_t w = send(fd, frame_bytes, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return true;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};

			(void)poll(&p, 1, 50);
			if ((p.revents & (POLLHUP | POLLERR)) != 0)
				return true;
		} else {
			assert_int_equal(w,
			                 (ssize_t)n); /* small frames go whole on a stream socket */
		}
	}
	return false;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void
test_messages_answered(void **state)
{
	edge_ws_limits l = limits();
	uint8_t        extra[64];
	size_t         n = put_frame(extra, OP_TEXT, "{not json", 9);
	int            fd;

	(void)state;
	hub_start(&l);
	/* The engine read the first frame with the handshake: it is the socket's first input. */
	fd = adopt_ex("u1", NULL, NULL, extra, n, 0);
	memset(extra, 0, sizeof(extra)); /* adopt copied it */
	expect_error(fd, "INVALID_ARGUMENT");
	send_text(fd, "{}");
	expect_error(fd, "INVALID_ARGUMENT");
	send_text(fd, "{\"subscribe\":\"user:" JOB "\"}");
	expect_error(fd, "INVALID_ARGUMENT");
	send_text(fd, "{\"subscribe\":\"job:" JOB "\"}");
	expect_error(fd, "UNAVAILABLE"); /* no upstream to check ownership with */
	send_text(fd, "{\"subscribe\":\"chat:" JOB "\"}");
	expect_error(fd, "UNAVAILABLE");
}

static void
test_refused(void **state)
{
	edge_ws_limits l = limits();
	int            fd;

	(void)state;
	hub_start(&l);
	fd = adopt_ex("u1", "UNAUTHENTICATED", "log in first", NULL, 0, 0);
	expect_error(fd, "UNAUTHENTICATED");
	expect_close(fd, 1008);
	fd = adopt_ex(NULL, NULL, NULL, NULL, 0, 0); /* no user is no login */
	expect_error(fd, "UNAUTHENTICATED");
	expect_close(fd, 1008);
}

static void
test_socket_caps(void **state)
{
	edge_ws_limits l = limits();
	int            a1, fd;

	(void)state;
	l.max_per_user = 2;
	l.max_sockets = 3;
	hub_start(&l);
	a1 = adopt("u1");
	(void)adopt("u1");
	fd = adopt("u1");
	expect_error(fd, "RESOURCE_EXHAUSTED"); /* per user */
	expect_close(fd, 1008);
	(void)adopt("u2"); /* the refused one is gone: 3 sockets */
	fd = adopt("u3");
	expect_error(fd, "RESOURCE_EXHAUSTED"); /* per edge */
	expect_close(fd, 1008);
	send_text(a1, "{}"); /* the first ones still serve */
	expect_error(a1, "INVALID_ARGUMENT");
}

static void
test_oversize_closes_1009(void **state)
{
	edge_ws_limits l = limits();
	char           big[EDGE_WS_MAX_IN + 100];
	int            fd;

	(void)state;
	hub_start(&l);
	fd = adopt("u1");
	memset(big, 'x', sizeof(big));
	send_frame(fd, OP_TEXT, big, sizeof(big));
	expect_close(fd, 1009);
}

static void
test_ping_rate_closes_1008(void **state)
{
	edge_ws_limits l = limits();
	uint8_t        pings[20 * 8];
	size_t         n = 0;
	int            fd;

	(void)state;
	l.pings_per_s = 5;
	hub_start(&l);
	fd = adopt("u1");
	for (int i = 0; i < 20; i++)
		n += put_frame(pings + n, OP_PING, "p", 1);
	assert_int_equal(send(fd, pings, n, MSG_NOSIGNAL), (ssize_t)n);
	expect_close(fd, 1008); /* the pongs owed before it are skipped */
}

static void
test_unread_pongs_drop_socket(void **state)
{
	edge_ws_limits l = limits();
	char           payload[100];
	uint8_t        ping[120];
	size_t         n;

	(void)state;
	l.pings_per_s = 1000000; /* only the queue's bound may end it */
	l.max_queue = 64;
	l.max_queue_bytes = 4 * EDGE_WS_MAX_IN;
	hub_start(&l);
	memset(payload, 'p', sizeof(payload));
	n = put_frame(ping, OP_PING, payload, sizeof(payload));
	assert_true(flood_until_dropped(adopt_ex("u1", NULL, NULL, NULL, 0, 4096), ping, n));
	assert_int_equal(atomic_load(&released[0]), 1);
}

static void
test_unread_frames_drop_socket(void **state)
{
	edge_ws_limits l = limits();
	uint8_t        msg[16];
	size_t         n = put_frame(msg, OP_TEXT, "{}", 2);

	(void)state;
	l.max_queue = 64;
	l.max_queue_bytes = 4 * EDGE_WS_MAX_IN;
	hub_start(&l);
	/* Each message earns an error frame the client never reads. */
	assert_true(flood_until_dropped(adopt_ex("u1", NULL, NULL, NULL, 0, 4096), msg, n));
	assert_int_equal(atomic_load(&released[0]), 1);
}

static void
test_idle_closes_silent_socket(void **state)
{
	edge_ws_limits l = limits();
	int64_t        t0 = cm_mono_ms(), until = t0 + DEADLINE_MS, closed_at = 0;
	int            live, silent, pings = 0;
	frame          f;

	(void)state;
	l.idle_s = 1;
	hub_start(&l);
	live = adopt("u1");
	silent = adopt("u2");
	while (closed_at == 0) {
		struct pollfd p[2] = {{.fd = live, .events = POLLIN},
		                      {.fd = silent, .events = POLLIN}};

		assert_true(cm_mono_ms() < until);
		if (poll(p, 2, 100) <= 0)
			continue;
		if (p[0].revents != 0) {
			assert_int_equal(read_frame(live, &f, until), 1);
			assert_int_equal(f.op, OP_PING);
			send_frame(live, OP_PONG, f.data, f.len); /* a live client answers */
		}
		if (p[1].revents != 0) {
			assert_int_equal(read_frame(silent, &f, until), 1);
			if (f.op == OP_PING) {
				pings++;
				continue;
			}
			assert_int_equal(f.op, OP_CLOSE);
			assert_int_equal((uint8_t)f.data[0] << 8 | (uint8_t)f.data[1], 1001);
			closed_at = cm_mono_ms();
		}
	}
	assert_true(pings >= 1);
	assert_true(closed_at - t0 >= 1000);
	assert_int_equal(read_frame(silent, &f, until), 0);
	send_text(live, "{}"); /* the one that answered pings is still served */
	expect_error(live, "INVALID_ARGUMENT");
}

static void
test_stop_sends_1001(void **state)
{
	edge_ws_limits l = limits();
	int            fd[3];

	(void)state;
	hub_start(&l);
	for (int i = 0; i < 3; i++)
		fd[i] = adopt(i == 2 ? "u2" : "u1");
	send_text(fd[0], "{}");
	expect_error(fd[0], "INVALID_ARGUMENT"); /* the loop has them */
	edge_ws_stop(&E);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&released[i]), 1); /* before stop returned */
		expect_close(fd[i], 1001);
	}
	/* Adopted after the stop: released at once. */
	(void)adopt("u1");
	assert_int_equal(atomic_load(&released[3]), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_messages_answered, teardown),
	    cmocka_unit_test_teardown(test_refused, teardown),
	    cmocka_unit_test_teardown(test_socket_caps, teardown),
	    cmocka_unit_test_teardown(test_oversize_closes_1009, teardown),
	    cmocka_unit_test_teardown(test_ping_rate_closes_1008, teardown),
	    cmocka_unit_test_teardown(test_unread_pongs_drop_socket, teardown),
	    cmocka_unit_test_teardown(test_unread_frames_drop_socket, teardown),
	    cmocka_unit_test_teardown(test_idle_closes_silent_socket, teardown),
	    cmocka_unit_test_teardown(test_stop_sends_1001, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
