#!/usr/bin/env python3
"""fake_metadata.py - a local stand-in for the EC2 instance metadata service
(IMDSv2) and the ECS container credentials endpoint, for tests.

The real endpoints (169.254.169.254, 169.254.170.2) cannot be had off AWS, so
this server speaks their protocols on 127.0.0.1:

  PUT  /latest/api/token                  needs X-aws-ec2-metadata-token-ttl-seconds
                                          (1..21600), answers a token valid that long
  GET  /latest/meta-data/iam/security-credentials/        the role name
  GET  /latest/meta-data/iam/security-credentials/ROLE    the role's credentials:
       {"Code": "Success", "AccessKeyId", "SecretAccessKey", "Token",
        "Expiration": "YYYY-MM-DDTHH:MM:SSZ", ...}
  GET  /ecs/credentials (any path under /ecs/)
       {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"};
       with --ecs-token, the Authorization header must equal it (else 401)

IMDS GETs need a valid X-aws-ec2-metadata-token (else 401, as with
HttpTokens=required) unless --mode v1 (token optional) or --mode v1only (the
token PUT answers 404, as an IMDSv1-only service, and GETs need no token).

Every issue of credentials rotates them (ASIAFAKE00000001, 2, ...; or the real
temporary credentials listed in --creds-file, in turn), and they expire
--expire-seconds after issue, so a client's refresh is observable.

Each request is logged as one line "METHOD PATH STATUS" to --log (appended,
flushed) so tests can count requests. The first line on stdout is
"PORT <n>" once the server listens (--port 0 picks a free port).

Python 3 standard library only. Stop it with SIGTERM or SIGINT.
"""
import argparse
import datetime
import http.server
import json
import secrets
import signal
import sys
import threading
import time

IMDS_CREDS = "/latest/meta-data/iam/security-credentials/"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # token -> expiry (monotonic)
        self.issued = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def new_token(self, ttl):
        tok = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[tok] = time.monotonic() + ttl
        return tok

    def token_ok(self, tok):
        with self.lock:
            exp = self.tokens.get(tok)
        return exp is not None and exp > time.monotonic()

    def issue(self):
        with self.lock:
            self.issued += 1
            n = self.issued
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        exp = now + datetime.timedelta(seconds=self.args.expire_seconds)
        if self.args.creds_file:
            # Real temporary credentials (e.g. from an S3 server's STS), in turn.
            with open(self.args.creds_file) as f:
                sets = json.load(f)
            c = sets[(n - 1) % len(sets)]
            return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                    "Token": c["Token"], "Code": "Success", "Type": "AWS-HMAC",
                    "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return {
            "AccessKeyId": "ASIAFAKE%08d" % n,
            "SecretAccessKey": "fakeSecret%08d/%s" % (n, secrets.token_hex(8)),
            "Token": "fakeToken%08d+%s=" % (n, secrets.token_hex(16)),
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def record(self, method, path, status):
        line = "%s %s %d" % (method, path, status)
        if self.log:
            with self.lock:
                self.log.write(line + "\n")
        if self.args.verbose:
            print(line, file=sys.stderr, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-metadata/1"

    def log_message(self, fmt, *args):  # quiet: we keep our own log
        pass

    @property
    def st(self):
        return self.server.state

    def reply(self, status, body="", ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        # Logged before answering, so a client that got its answer can count it.
        self.st.record(self.command, self.path, status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_PUT(self):
        self.drain()
        mode = self.st.args.mode
        if self.path != "/latest/api/token":
            return self.reply(405 if self.path.startswith("/latest/") else 404)
        if mode == "v1only":
            return self.reply(404, "Not Found")
        if self.headers.get("X-Forwarded-For"):
            return self.reply(403, "Forbidden")  # as the real service does
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            return self.reply(400, "Missing or invalid TTL header")
        if not 1 <= ttl <= 21600:
            return self.reply(400, "TTL out of range")
        self.reply(200, self.st.new_token(ttl))

    def imds_authorised(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        mode = self.st.args.mode
        if tok is not None:
            return self.st.token_ok(tok)
        return mode in ("v1", "v1only")

    def do_GET(self):
        args = self.st.args
        path = self.path
        if path.startswith("/ecs/"):
            want = args.ecs_token
            if want is not None and self.headers.get("Authorization") != want:
                return self.reply(401, "Unauthorized")
            c = self.st.issue()
            c["RoleArn"] = "arn:aws:iam::123456789012:role/" + args.role
            del c["LastUpdated"]
            return self.reply(200, json.dumps(c), "application/json")
        if path.startswith("/latest/"):
            if not self.imds_authorised():
                return self.reply(401, "Unauthorized")
            if path in (IMDS_CREDS, IMDS_CREDS.rstrip("/")):
                return self.reply(200, args.role)
            if path == IMDS_CREDS + args.role:
                c = self.st.issue()
                c.update({"Code": "Success", "Type": "AWS-HMAC"})
                return self.reply(200, json.dumps(c), "application/json")
        self.reply(404, "Not Found")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--expire-seconds", type=int, default=3600)
    ap.add_argument("--role", default="ingesta-test-role")
    ap.add_argument("--mode", choices=("v2", "v1", "v1only"), default="v2",
                    help="v2: token required; v1: token optional; v1only: no token PUT")
    ap.add_argument("--ecs-token", help="required Authorization header on /ecs/")
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--creds-file", help="JSON list of {AccessKeyId, SecretAccessKey, Token} "
                    "to hand out in turn instead of made-up keys")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
