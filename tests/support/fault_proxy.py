"""An HTTP proxy in front of an S3-compatible server that injects faults.

Request number n (counting from 1) gets a 503 SlowDown when n % fail_every == 0, and has its
connection closed without an answer when n % drop_every == 0. Faults after the server acted:
when n % acted_every == 0 the request is carried out upstream (a PUT stored, a copy made, a
delete done) and then the connection is closed without the answer, and when n % truncate_every
== 0 a GET's answer promises its whole body but stops halfway. The rest are forwarded as they
are (the Host header is kept, so request signatures stay valid). 0 turns a fault off.
GET /__proxy_stats returns the counts as JSON. Test tool only.

usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT FAIL_EVERY DROP_EVERY [ACTED_EVERY TRUNCATE_EVERY]
"""
import http.client
import http.server
import json
import socket
import sys
import threading

listen_port, upstream_port, fail_every, drop_every = (int(a) for a in sys.argv[1:5])
acted_every, truncate_every = (int(a) for a in (sys.argv[5:7] or ["0", "0"]))
lock = threading.Lock()
stats = {"requests": 0, "failed": 0, "dropped": 0, "acted_then_dropped": 0, "truncated": 0, "forwarded": 0}


def every(n, k):
    return k > 0 and n % k == 0

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
            fault = ("failed" if every(n, fail_every) else "dropped" if every(n, drop_every)
                     else "acted_then_dropped" if every(n, acted_every)
                     else "truncated" if every(n, truncate_every) and self.command == "GET" else None)
            if fault:
                stats[fault] += 1
        if fault == "failed":
            self.reply(503, "Slow Down", [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        if fault == "dropped":
            self.hang_up()
            return
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        resp = upstream.getresponse()
        data = resp.read()
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")]
        if self.command != "HEAD":
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(data))))
        upstream.close()
        if fault == "acted_then_dropped":
            self.hang_up()
            return
        if fault == "truncated" and len(data) > 1:
            self.send_response(resp.status, resp.reason)
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.hang_up()
            return
        with lock:
            stats["forwarded"] += 1
        self.reply(resp.status, resp.reason, headers, data, content_length=False)

    def hang_up(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

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
