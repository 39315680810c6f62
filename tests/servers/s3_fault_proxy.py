#!/usr/bin/python3
"""An S3 fault-injecting HTTP proxy for ingesta's reliability tests.

It listens on 127.0.0.1 only and forwards every request, byte for byte and
with its Host header unchanged (so SigV4 signatures still verify), to an
upstream S3 server (MinIO). Rules decide, per request, whether to inject a
fault instead of (or on top of) forwarding:

  500          500 InternalError (XML error body), not forwarded
  503          503 SlowDown (XML error body, Retry-After), not forwarded
  timeout400   400 RequestTimeout (XML error body), not forwarded
  403          403 AccessDenied (XML error body), not forwarded
  404bucket    404 NoSuchBucket, not forwarded
  expired      400 ExpiredToken, not forwarded
  region       400 AuthorizationHeaderMalformed naming another region
  drop_before  request read, connection closed with no answer, not forwarded
  drop_after   forwarded (the write happens upstream), connection closed
               before the answer: the client never learns it succeeded
  drop_mid     forwarded, answer's status line and half its headers/body
               sent, then the connection closed
  flip         forwarded with one byte of the request body flipped: the
               server must answer BadDigest / XAmzContentSHA256Mismatch and
               never store the corrupt bytes
  slow         forwarded after `delay` seconds (default 3)
  malformed    a 500 whose body is broken XML
  huge         a 400 whose body is `size` bytes (default 32 MiB) of XML-ish junk
  redirect     301 PermanentRedirect with a Location to another host
  redirect307  307 Temporary Redirect to another host (same path)

A rule is a dict: {"fault": NAME, "kinds": [KIND...] (default all),
"p": probability or "every": N (every Nth matching request), "delay": s,
"size": bytes, "max": total injections}. The first rule that fires wins.
Request kinds: put_object, upload_part, create_multipart, complete, abort,
head, get, list_uploads, list, other.

Use it in-process (tests): p = FaultProxy(upstream_url, rules); p.start();
... p.port, p.stats (Counter of "fault:kind"), p.set_rules([...]), p.stop().
Or standalone:
  s3_fault_proxy.py --upstream http://127.0.0.1:19000 [--port 0]
                    [--rules JSON] [--port-file FILE]
which prints the counts of injected faults when stopped (SIGINT/SIGTERM).
Python standard library only.
"""
import argparse
import collections
import http.client
import http.server
import json
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

KINDS = ("put_object", "upload_part", "create_multipart", "complete", "abort", "head", "get",
         "list_uploads", "list", "other")


def request_kind(method, path):
    u = urllib.parse.urlsplit(path)
    q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    parts = [p for p in u.path.split("/") if p]
    has_key = len(parts) >= 2  # path-style: /bucket/key
    if method == "PUT":
        if "partNumber" in q and "uploadId" in q:
            return "upload_part"
        return "put_object" if has_key else "other"
    if method == "POST":
        if "uploads" in q:
            return "create_multipart"
        if "uploadId" in q:
            return "complete"
        return "other"
    if method == "DELETE":
        return "abort" if "uploadId" in q else "other"
    if method == "HEAD":
        return "head"
    if method == "GET":
        if "uploads" in q:
            return "list_uploads"
        return "get" if has_key else "list"
    return "other"


def xml_error(code, message, extra=""):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f'<Message>{message}</Message>{extra}<RequestId>fault-proxy</RequestId>'
            f'<HostId>fault-proxy</HostId></Error>').encode()


CANNED = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again.", ""),
    "503": (503, "SlowDown", "Please reduce your request rate.", ""),
    "timeout400": (400, "RequestTimeout", "Your socket connection to the server was not read from "
                   "or written to within the timeout period.", ""),
    "403": (403, "AccessDenied", "Access Denied.", ""),
    "404bucket": (404, "NoSuchBucket", "The specified bucket does not exist", ""),
    "expired": (400, "ExpiredToken", "The provided token has expired.", ""),
    "region": (400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the "
               "region 'us-east-1' is wrong; expecting 'eu-north-1'", "<Region>eu-north-1</Region>"),
}
FAULTS = tuple(CANNED) + ("drop_before", "drop_after", "drop_mid", "flip", "slow", "malformed", "huge",
                          "redirect", "redirect307")
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "expect"}


class FaultProxy:
    def __init__(self, upstream, rules=None, port=0, seed=None):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.rules = []
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.stats = collections.Counter()
        self.requests = collections.Counter()
        self.set_rules(rules or [])
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fault-proxy"

            def log_message(self, *a):  # quiet
                pass

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (ConnectionError, socket.timeout, OSError):
                    self.close_connection = True

            def do_any(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = None

    # -------------------------------------------------------------- rules

    def set_rules(self, rules):
        with self.lock:
            self.rules = []
            for r in rules:
                r = dict(r)
                if r["fault"] not in FAULTS:
                    raise ValueError(f"unknown fault {r['fault']} (one of {FAULTS})")
                for k in r.get("kinds", ()):
                    if k not in KINDS:
                        raise ValueError(f"unknown request kind {k}")
                r["_seen"] = 0
                r["_fired"] = 0
                self.rules.append(r)

    def pick(self, kind):
        with self.lock:
            self.requests[kind] += 1
            for r in self.rules:
                if r.get("kinds") and kind not in r["kinds"]:
                    continue
                if r.get("max") is not None and r["_fired"] >= r["max"]:
                    continue
                r["_seen"] += 1
                if "every" in r:
                    fire = r["_seen"] % int(r["every"]) == 0
                else:
                    fire = self.rng.random() < float(r.get("p", 1.0))
                if fire:
                    r["_fired"] += 1
                    self.stats[f"{r['fault']}:{kind}"] += 1
                    return r
        return None

    def injected(self):
        return sum(self.stats.values())

    def summary(self):
        by_fault = collections.Counter()
        for k, v in self.stats.items():
            by_fault[k.split(":")[0]] += v
        return (f"{sum(self.requests.values())} requests, {self.injected()} faults injected "
                f"({', '.join(f'{k} {v}' for k, v in sorted(by_fault.items())) or 'none'})")

    # ------------------------------------------------------------ serving

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = b""
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = read_chunked(h.rfile)
        elif length:
            body = h.rfile.read(length)
        kind = request_kind(h.command, h.path)
        rule = self.pick(kind)
        fault = rule["fault"] if rule else None
        if fault in CANNED:
            status, code, msg, extra = CANNED[fault]
            # Like MinIO (the upstream), name the code in a header too: a HEAD
            # answer has no body to carry it.
            hdrs = {"x-minio-error-code": code, "x-minio-error-desc": f'"{msg}"'}
            if fault == "503":
                hdrs["Retry-After"] = "1"
            return reply(h, status, xml_error(code, msg, extra), hdrs)
        if fault == "malformed":
            return reply(h, 500, b'<?xml version="1.0"?><Error><Code>Internal<Message>half &amp; '
                                 b'&#xFFFFFFFF; <<<</Code')
        if fault == "huge":
            size = int(rule.get("size", 32 << 20))
            return reply_huge(h, 400, size)
        if fault in ("redirect", "redirect307"):
            loc = f"http://elsewhere.invalid:9{self.port % 1000:03d}{h.path}"
            if fault == "redirect":
                return reply(h, 301, xml_error("PermanentRedirect", "The bucket you are attempting to "
                                               "access must be addressed using the specified endpoint.",
                                               "<Endpoint>elsewhere.invalid</Endpoint>"),
                             {"Location": loc, "x-amz-bucket-region": "eu-north-1"})
            return reply(h, 307, xml_error("TemporaryRedirect", "Please re-send this request to the "
                                           "specified temporary endpoint.", ""), {"Location": loc})
        if fault == "drop_before":
            return drop(h)
        if fault == "slow":
            time.sleep(float(rule.get("delay", 3.0)))
        if fault == "flip" and body:
            b = bytearray(body)
            i = self.rng.randrange(len(b))
            b[i] ^= 1 << self.rng.randrange(8)
            body = bytes(b)
        try:
            status, reason, headers, data = self.forward(h, body)
        except OSError as exc:
            return reply(h, 502, xml_error("BadGateway", f"fault proxy: upstream: {exc}"))
        if fault == "drop_after":
            return drop(h)
        if fault == "drop_mid":
            raw = f"HTTP/1.1 {status} {reason}\r\n".encode()
            for k, v in headers:
                raw += f"{k}: {v}\r\n".encode()
            raw += b"\r\n" + data
            cut = max(1, len(raw) // 2)
            try:
                h.wfile.write(raw[:cut])
                h.wfile.flush()
            except OSError:
                pass
            return drop(h)
        h.send_response_only(status, reason)
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD" and data:
            h.wfile.write(data)
        h.wfile.flush()

    def forward(self, h, body):
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=120)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.headers.items():
                if k.lower() in HOP:
                    continue
                if k.lower() == "content-length":
                    continue
                conn.putheader(k, v)
            if body or h.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            data = r.read()
            headers = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP]
            if not any(k.lower() == "content-length" for k, _ in headers):
                headers.append(("Content-Length", str(len(data))))
            return r.status, r.reason, headers, data
        finally:
            conn.close()


def read_chunked(rfile):
    out = b""
    while True:
        line = rfile.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


def reply(h, status, body, headers=None):
    h.send_response_only(status)
    h.send_header("Content-Type", "application/xml")
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)
    h.wfile.flush()


def reply_huge(h, status, size):
    h.send_response_only(status)
    h.send_header("Content-Type", "application/xml")
    h.send_header("Content-Length", str(size))
    h.end_headers()
    if h.command == "HEAD":
        return
    chunk = (b"<Error><Code>" + b"A" * 4000 + b"</Code><Message>" + b"junk " * 2000 + b"</Message>")
    sent = 0
    try:
        while sent < size:
            n = min(len(chunk), size - sent)
            h.wfile.write(chunk[:n])
            sent += n
        h.wfile.flush()
    except OSError:
        h.close_connection = True


def drop(h):
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    h.connection.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="upstream S3 URL, e.g. http://127.0.0.1:19000")
    ap.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (0: any)")
    ap.add_argument("--rules", default="[]", help="JSON list of rules (see the module doc)")
    ap.add_argument("--port-file", help="write the chosen port here")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    p = FaultProxy(a.upstream, json.loads(a.rules), a.port, a.seed).start()
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write(f"{p.port}\n")
    print(f"fault proxy on {p.url} -> {a.upstream}", file=sys.stderr, flush=True)
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: done.set())
    done.wait()
    p.stop()
    print(f"fault proxy: {p.summary()}", file=sys.stderr)
    for k, v in sorted(p.stats.items()):
        print(f"  {k}: {v}", file=sys.stderr)


if __name__ == "__main__":
    main()
