/*
 * ws_client.c - blocking WebSocket client over nng's ws stream dialer (ws_client.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "http_client.h"
#include "ws_client.h"

struct ws_client {
	nng_stream *s;
	nng_aio    *aio;
};

ws_client *
ws_connect(const char *path, const char *cookie)
{
	nng_stream_dialer *d = NULL;
	ws_client         *c = calloc(1, sizeof(*c));
	char               url[8600];
	const char        *base = http_base();

	if (c == NULL || nng_aio_alloc(&c->aio, NULL, NULL) != 0)
		goto fail;
	/* http://host:port -> ws://host:port/path */
	snprintf(url, sizeof(url), "ws://%s%s", strstr(base, "://") + 3, path);
	if (nng_stream_dialer_alloc(&d, url) != 0 ||
	    nng_stream_dialer_set_bool(d, NNG_OPT_WS_SEND_TEXT, true) != 0 ||
	    nng_stream_dialer_set_bool(d, NNG_OPT_WS_RECV_TEXT, true) != 0)
		goto fail;
	if (cookie != NULL &&
	    nng_stream_dialer_set_string(d, NNG_OPT_WS_REQUEST_HEADER "Cookie", cookie) != 0)
		goto fail;
	nng_aio_set_timeout(c->aio, 5000);
	nng_stream_dialer_dial(d, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0)
		goto fail;
	c->s = nng_aio_get_output(c->aio, 0);
	nng_stream_dialer_free(d);
	return c;
fail:
	if (d != NULL)
		nng_stream_dialer_free(d);
	if (c != NULL) {
		nng_aio_free(c->aio);
		free(c);
	}
	return NULL;
}

int
ws_send(ws_client *c, const char *text)
{
	nng_iov iov = {(void *)text, strlen(text)};

	nng_aio_set_iov(c->aio, 1, &iov);
	nng_aio_set_timeout(c->aio, 5000);
	nng_stream_send(c->s, c->aio);
	nng_aio_wait(c->aio);
	return nng_aio_result(c->aio) == 0 ? 0 : -1;
}

int
ws_recv(ws_client *c, char *buf, size_t len, int timeout_ms)
{
	nng_iov iov = {buf, len - 1};

	nng_aio_set_iov(c->aio, 1, &iov);
	nng_aio_set_timeout(c->aio, timeout_ms);
	nng_stream_recv(c->s, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0)
		return -1;
	buf[nng_aio_count(c->aio)] = '\0';
	return 0;
}

void
ws_close(ws_client *c)
{
	if (c == NULL)
		return;
	nng_stream_close(c->s);
	nng_stream_free(c->s);
	nng_aio_free(c->aio);
	free(c);
}
