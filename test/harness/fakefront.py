#!/usr/bin/env python3
"""fakefront.py - stands in for the web app's own server (Next.js) behind the edge, for e2e tests.

Serves files from --dir (index.html for "/"), 404 for anything else, and a few paths that act the
way Next.js does toward a proxy:
  /_echo            JSON: the request's method, path, headers (names lower-cased; a repeated one
                    joined with ", "), body length, and "conn", the number of the TCP connection it
                    came on (connections are numbered from 1 as accepted: a pooled client reuses
                    one). Answers with Next's navigation headers, two Set-Cookie, a Content-Location
                    on this server's own origin, and hop-by-hop headers the proxy must drop.
  /_redirect        307 to http://localhost:3100/login?next=/x (where `next start` thinks it lives)
  /_redirect_self   308 to this server's own origin (http://127.0.0.1:PORT/self)
  /_redirect_rel    302 to /login
  /_redirect_ext    302 to https://example.com/away
  /_big?n=BYTES     a body of n bytes
  /_hangup          closes the connection without answering
  /_cut?len=&sent=  promises len bytes (Content-Length, 1,000), sends sent (10), closes: an app
                    dying mid-body (len=1000000&sent=200000: mid-way through a streamed one)
  /_chunked         a body in chunks (Transfer-Encoding: chunked, an extension, a trailer), as
                    Next.js streams a page
  /_drop_after      answers (kept alive, as far as the client can tell), then closes the connection
                    as an app does when its keep-alive timeout passes
  /_empty           204, no body
  /_gated?id=ID&first=N&rest=M[&chunked=1]
                    a body of N + M bytes ("a" then "b"; Content-Length, or chunked): the first N
                    at once, the rest only once /_release?id=ID came (or 30 s passed), so a
                    test can see the first part reach the client while the app still holds the rest
  /_release?id=ID   lets that answer finish (204)
  /_stall?id=ID     answers nothing until /_release?id=ID came (or 30 s passed): an app too slow
HTTP/1.1 with keep-alive, one thread per connection.
"""
import argparse
import http.server
import itertools
import json
import os
import socket
import threading
import urllib.parse

_conn_ids = itertools.count(1)
_conn_lock = threading.Lock()
_gates = {}  # id -> threading.Event, for /_gated and /_release
_gates_lock = threading.Lock()


def _gate(gate_id):
    with _gates_lock:
        return _gates.setdefault(gate_id, threading.Event())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle holds the body for the
        # client's delayed ACK (40 ms) on every kept-alive request (Node.js sets it too).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _conn_lock:
            self.conn_id = next(_conn_ids)

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body=b"", ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        own = "http://%s:%d" % self.server.server_address[:2]
        if url.path == "/_echo":
            hdrs = {}
            for name, value in self.headers.items():
                k = name.lower()
                hdrs[k] = hdrs[k] + ", " + value if k in hdrs else value
            out = json.dumps({"method": self.command, "path": self.path, "headers": hdrs,
                              "body_len": len(body), "conn": self.conn_id}).encode()
            return self._send(200, out, "application/json", [
                ("Vary", "RSC, Next-Router-State-Tree, Next-Router-Prefetch"),
                ("X-Nextjs-Cache", "HIT"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/; HttpOnly"),
                ("Content-Location", own + "/_echo?from=app"),
                ("Connection", "X-Hop-Resp"),
                ("X-Hop-Resp", "must not cross"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Authenticate", "Basic"),
                ("Trailer", "X-Checksum"),
            ])
        if url.path == "/_redirect":
            return self._send(307, headers=[("Location", "http://localhost:3100/login?next=/x")])
        if url.path == "/_redirect_self":
            return self._send(308, headers=[("Location", own + "/self")])
        if url.path == "/_redirect_rel":
            return self._send(302, headers=[("Location", "/login")])
        if url.path == "/_redirect_ext":
            return self._send(302, headers=[("Location", "https://example.com/away")])
        if url.path == "/_big":
            n = int(urllib.parse.parse_qs(url.query).get("n", ["0"])[0])
            return self._send(200, b"x" * n, "application/octet-stream")
        if url.path == "/_hangup":
            self.close_connection = True
            return None
        if url.path == "/_cut":
            # Announces len bytes (default 1000), sends sent (default 10), then hangs up.
            q = urllib.parse.parse_qs(url.query)
            announced = int(q.get("len", ["1000"])[0])
            sent = int(q.get("sent", ["10"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            self.wfile.write(b"x" * sent)
            self.wfile.flush()
            self.close_connection = True
            return None
        if url.path == "/_chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"<html>", b"<body>streamed", b"</body></html>"):
                self.wfile.write(b"%x;part=1\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Checksum: 1\r\n\r\n")
            return None
        if url.path == "/_drop_after":
            self._send(200, b"dropped after", "text/plain")
            self.wfile.flush()
            self.close_connection = True
            return None
        if url.path == "/_gated":
            q = urllib.parse.parse_qs(url.query)
            first, rest = int(q["first"][0]), int(q["rest"][0])
            chunked = q.get("chunked", ["0"])[0] == "1"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(first + rest))
            self.end_headers()
            for part, byte in ((first, b"a"), (rest, b"b")):
                if byte == b"b":
                    _gate(q["id"][0]).wait(30)
                data = byte * part
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            return None
        if url.path == "/_stall":
            _gate(urllib.parse.parse_qs(url.query)["id"][0]).wait(30)
            return self._send(200, b"late")
        if url.path == "/_release":
            _gate(urllib.parse.parse_qs(url.query)["id"][0]).set()
            self.send_response(204)
            self.end_headers()
            return None
        if url.path == "/_empty":
            self.send_response(204)
            self.end_headers()
            return None
        rel = "index.html" if url.path == "/" else url.path.lstrip("/")
        full = os.path.realpath(os.path.join(self.server.root, rel))
        if full.startswith(self.server.root + os.sep) and os.path.isfile(full):
            with open(full, "rb") as f:
                data = f.read()
            ctype = "text/html" if full.endswith(".html") else \
                "text/javascript" if full.endswith(".js") else "application/octet-stream"
            return self._send(200, data, ctype, [("Cache-Control", "public, max-age=60")])
        return self._send(404, b"not found")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _route


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=28090)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.root = os.path.realpath(a.dir)
    srv.serve_forever()


if __name__ == "__main__":
    main()
