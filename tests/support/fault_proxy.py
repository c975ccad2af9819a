"""An HTTP proxy in front of an S3-compatible server that injects faults.

Request number n (counting from 1) gets a 503 SlowDown when n % fail_every == 0, and has its
connection closed without an answer when n % drop_every == 0; the rest are forwarded as they
are (the Host header is kept, so request signatures stay valid). GET /__proxy_stats returns
the counts as JSON. Test tool only.

usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT FAIL_EVERY DROP_EVERY
"""
import http.client
import http.server
import json
import socket
import sys
import threading

listen_port, upstream_port, fail_every, drop_every = (int(a) for a in sys.argv[1:5])
lock = threading.Lock()
stats = {"requests": 0, "failed": 0, "dropped": 0, "forwarded": 0}

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b'<Message>Please reduce your request rate.</Message></Error>')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path == "/__proxy_stats":
            with lock:
                data = json.dumps(stats).encode()
            self.reply(200, "OK", [("Content-Type", "application/json")], data)
            return
        with lock:
            stats["requests"] += 1
            n = stats["requests"]
            fault = "failed" if n % fail_every == 0 else "dropped" if n % drop_every == 0 else None
            if fault:
                stats[fault] += 1
        if fault == "failed":
            self.reply(503, "Slow Down", [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        if fault == "dropped":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        resp = upstream.getresponse()
        data = resp.read()
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")]
        if self.command != "HEAD":
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(data))))
        with lock:
            stats["forwarded"] += 1
        self.reply(resp.status, resp.reason, headers, data, content_length=False)
        upstream.close()

    def reply(self, status, reason, headers, data, content_length=True):
        self.send_response(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        if content_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", listen_port), Handler)
print("ready", flush=True)
server.serve_forever()
