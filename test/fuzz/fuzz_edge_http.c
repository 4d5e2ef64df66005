/*
 * fuzz_edge_http.c - libFuzzer driver for the edge's whole request path: raw bytes on a socket into
 * the real HTTP engine (libmicrohttpd) and the edge's stages behind it (target split, headers,
 * CSRF and Origin checks, client address, cookies and tokens, body limits and the early-answer
 * logic, WebSocket handshakes and the frames that follow them).
 *
 * The edge listens nowhere (EDGE_ADDR ""); each input is written to one end of a socketpair whose
 * other end is handed to the engine, and the answers are read until the engine falls silent. No
 * upstream is configured, so routes answer 503 without leaving the process; what is fuzzed is
 * everything the edge decides before and around an upstream call.
 */
#include <sys/poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm/jwt.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "../../edge/config.h" /* "config.h" alone is another service's */
#include "edge.h"
#include "ratelimit.h"
#include "refresh.h"
#include "reload.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static edge *fuzz_edge;

static edge *
start_edge(void)
{
	static edge           e;
	edge_ws_limits        wsl;
	static edge_reloader *rl; /* lives as long as the edge: reachable, not a leak */
	char                  err[256];
	const char           *secret = "fuzz-secret-fuzz-secret-fuzz-secret-0123";

	setenv("EDGE_ADDR", "", 1);
	setenv("EDGE_THREADS", "1", 1);
	setenv("EDGE_CORS_ORIGINS", "http://localhost:3000", 1);
	setenv("EDGE_TRUSTED_PROXIES", "127.0.0.1/32", 1);
	setenv("EDGE_AUTH_URLS", "", 1);
	setenv("JWT_SECRET", secret, 1);
	setenv("EDGE_IDLE_TIMEOUT_S", "2", 1);
	setenv("EDGE_RATE_PER_S", "0", 1);
	setenv("EDGE_REDIS_HOST", "", 1);
	if (edge_config_load(&e.cfg, err, sizeof(err)) != CM_OK)
		abort();
	cm_log_init("edge", CM_LOG_ERROR);
	if (edge_reloader_alloc(&rl, &e, NULL) != CM_OK ||
	    cm_jwt_key_hs256(&e.jwt, secret, strlen(secret)) != CM_OK ||
	    (e.metrics = cm_metrics_alloc("edge_")) == NULL ||
	    (e.limiter = edge_limiter_alloc(&e.cfg, e.metrics)) == NULL ||
	    (e.refresher = edge_refresher_alloc()) == NULL)
		abort();
	edge_ws_limits_default(&wsl);
	if (edge_ws_start_limits(&e, &wsl) != CM_OK || edge_start(&e) != CM_OK)
		abort();
	return &e;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int    sv[2];
	size_t off = 0;
	char   buf[65536];

	if (size > 1 << 16)
		return 0;
	if (fuzz_edge == NULL)
		fuzz_edge = start_edge();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (edge_serve_socket(fuzz_edge, sv[1]) != CM_OK) {
		close(sv[0]);
		return 0;
	}
	/* Write what the socket takes, reading answers as they come (a pipelined input can fill
	 * both directions), then end the request side and read to the end. */
	while (off < size) {
		struct pollfd p = {.fd = sv[0], .events = POLLOUT | POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		if (p.revents & POLLIN) {
			if (read(sv[0], buf, sizeof(buf)) <= 0)
				break;
		}
		if (p.revents & POLLOUT) {
			ssize_t n = write(sv[0], data + off, size - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (p.revents & (POLLERR | POLLHUP))
			break;
	}
	/* Read the answers until the engine falls silent: every answer here is decided in the
	 * process (no upstream), so 20 ms of silence means nothing more is coming. (A half-close
	 * would not do: libmicrohttpd waits for the idle timeout on an unfinished request.) */
	for (;;) {
		struct pollfd p = {.fd = sv[0], .events = POLLIN};
		if (poll(&p, 1, 20) <= 0 || read(sv[0], buf, sizeof(buf)) <= 0)
			break;
	}
	close(sv[0]);
	return 0;
}
