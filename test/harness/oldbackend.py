#!/usr/bin/env python3
"""oldbackend.py - stands in for the old backend (the monolith the new services replace) behind
the edge's migration (edge/migrate.h), for e2e tests.

Speaks the legacy contract (../shared/contract/legacy-api.md) for a subset, per user as the edge
names it in X-User-Id (401 {"detail":"Not authenticated"} without one), state in memory:
  GET  /api/auth/verify        {"valid": true, "message": "Session is valid"}
  GET  /api/pdf/list           {"items": [], "total", "offset", "limit"} (no PDFs here; 422 for
                               bad offset/limit)
  GET  /api/pdf/info           400 "No PDF selected" (no PDF can be selected here)
  GET  /api/pdf/metadata       400 "No PDF selected"
  POST /api/pdf/select         404 "PDF file not found"
  GET  /api/chat/history       {"history": [...]} of this user
  DELETE /api/chat/history     {"message": "Chat history cleared"}
  POST /api/chat (and /api/chat/)  400 "No PDF selected"
Anything else under /api: 404 {"detail": "Not Found"}.

Every answer is marked for the tests: X-Served-By: old-backend, X-Old-User (the X-User-Id it
got, "" without one), X-Old-Saw-Authorization and X-Old-Saw-Cookie ("yes"/"no": the edge keeps
them), and a Set-Cookie of its own (the edge must not pass it on). GET /_stats: {"requests": n,
"by_user": {user: n}}; POST /_reset clears them; GET /healthz for the harness.
HTTP/1.1 with keep-alive, one thread per connection.
"""
import argparse
import http.server
import json
import socket
import threading
import urllib.parse

_lock = threading.Lock()
_stats = {"requests": 0, "by_user": {}}
_history = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, obj, marked=True):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if marked:
            self.send_header("X-Served-By", "old-backend")
            self.send_header("X-Old-User", self.headers.get("X-User-Id") or "")
            self.send_header("X-Old-Saw-Authorization",
                             "yes" if self.headers.get("Authorization") else "no")
            self.send_header("X-Old-Saw-Cookie", "yes" if self.headers.get("Cookie") else "no")
            self.send_header("Set-Cookie", "oldsession=1; Path=/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _list(self, user, query):
        q = urllib.parse.parse_qs(query)
        try:
            offset = int(q.get("offset", ["0"])[0])
            limit = int(q.get("limit", ["20"])[0])
        except ValueError:
            return self._send(422, {"detail": "offset and limit must be integers"})
        if offset < 0 or not 1 <= limit <= 100:
            return self._send(422, {"detail": "offset >= 0, 1 <= limit <= 100"})
        return self._send(200, {"items": [], "total": 0, "offset": offset, "limit": limit})

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        body = self._body()
        if path == "/healthz":
            return self._send(200, {"ok": True}, marked=False)
        if path == "/_stats":
            with _lock:
                return self._send(200, _stats, marked=False)
        if path == "/_reset" and self.command == "POST":
            with _lock:
                _stats["requests"] = 0
                _stats["by_user"] = {}
            return self._send(200, {"ok": True}, marked=False)
        user = self.headers.get("X-User-Id") or ""
        with _lock:
            _stats["requests"] += 1
            _stats["by_user"][user] = _stats["by_user"].get(user, 0) + 1
        if not path.startswith("/api/"):
            return self._send(404, {"detail": "Not Found"})
        if not user:
            return self._send(401, {"detail": "Not authenticated"})
        route = (self.command, path)
        if route == ("GET", "/api/auth/verify"):
            return self._send(200, {"valid": True, "message": "Session is valid"})
        if route == ("GET", "/api/pdf/list"):
            return self._list(user, url.query)
        if route in (("GET", "/api/pdf/info"), ("GET", "/api/pdf/metadata"),
                     ("POST", "/api/chat")):
            return self._send(400, {"detail": "No PDF selected"})
        if route == ("POST", "/api/pdf/select"):
            try:
                json.loads(body or b"{}")
            except ValueError:
                return self._send(422, {"detail": "malformed JSON"})
            return self._send(404, {"detail": "PDF file not found"})
        if route == ("POST", "/api/pdf/upload"):
            # Whether the bytes came whole and in order: byte i of the body is i % 251.
            want = (bytes(range(251)) * (len(body) // 251 + 1))[:len(body)]
            return self._send(200, {"received": len(body), "intact": body == want})
        if route == ("GET", "/api/chat/history"):
            with _lock:
                return self._send(200, {"history": list(_history.get(user, []))})
        if route == ("DELETE", "/api/chat/history"):
            with _lock:
                _history.pop(user, None)
            return self._send(200, {"message": "Chat history cleared"})
        return self._send(404, {"detail": "Not Found"})

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
