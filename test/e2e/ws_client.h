/*
 * ws_client.h - a tiny blocking WebSocket client for end-to-end tests (nng's ws stream dialer,
 * text frames).
 */
#ifndef TEST_WS_CLIENT_H
#define TEST_WS_CLIENT_H

#include <stddef.h>

typedef struct ws_client ws_client;

/* Connects to path (e.g. "/api/v1/ws?access_token=...") on the edge of http_base(); cookie may be
 * NULL ("session=..." sent as the Cookie header). NULL when the connection fails. */
ws_client *ws_connect(const char *path, const char *cookie);
/* Sends one text message. 0 on success. */
int ws_send(ws_client *c, const char *text);
/* Receives one message into buf (NUL-terminated) within timeout_ms. 0 on success, -1 on timeout
 * or a closed connection. */
int  ws_recv(ws_client *c, char *buf, size_t len, int timeout_ms);
void ws_close(ws_client *c);

#endif
