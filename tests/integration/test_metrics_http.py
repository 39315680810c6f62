#!/usr/bin/env python3
"""The uploader's scrape endpoint (METRICS_LISTEN) against the MinIO of
tests/servers/start.sh, scraped with prometheus_client's text parser (Debian
python3-prometheus-client, installed by tests/servers/install-deps.sh).

1. Under load: the same large upload (SQLite source, uncompressed segments of
   8 MiB, UPLOAD_CONCURRENCY=1) timed with `upload --once` alone and with a scraper hammering
   /metrics at 50 requests/s; every response is 200 with the 0.0.4 content
   type and parses, the byte counter moves while the upload runs, and the
   upload is not made slower (within noise).
2. Daemon: `ingesta upload` with METRICS_LISTEN and METRICS_FILE: /metrics
   has the textfile's samples (same names, labels and spool values);
   /healthz is 200 with the line `ingesta status --check` prints.
3. Hostile clients while the daemon uploads a new collect: 200 idle
   connections, slowloris (1 byte/s, closed by the 5 s deadline), a 1 MiB
   request line (414), garbage bytes (400); a real scrape still gets its
   answer, the upload completes, the uploader's VmRSS stays bounded.
4. /healthz turns 503 with the UNHEALTHY line once a segment fails (a collect
   aimed at a bucket that does not exist), the same line as `status --check`.
5. Stopping while scraped: four clients scrape as fast as they can while the
   uploader is stopped (SIGTERM), ten times over; every request is answered
   200 or refused (the backlog is accepted and answered before the listening
   socket closes; before that fix 24 requests of 10 stops were reset or cut
   off). TCP's own window stays: a handshake the kernel completes in the
   microseconds between the last accept() and close() is reset by the kernel,
   seen about once in 30 stops under ASan; at most STOP_RESETS_ALLOWED of those.
6. Refusals at start: a malformed value and an address in use exit 2 with a
   message naming METRICS_LISTEN; [::1]:port is served when the host has IPv6.
"""
import http.client
import json
import os
import random
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import boto3
from botocore.config import Config

from ingesta_test import INGESTA, TestFailure, check, clean_env, main, run, servers_env, write_config
from ingesta_test import tempdir

from prometheus_client.parser import text_string_to_metric_families

MIB = 1024 * 1024
LOAD_ROWS = int(os.environ.get("INGESTA_METRICS_LOAD_ROWS", "200000"))  # ~1 KiB each
SRV = {}


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def get(port, path, method="GET", host="127.0.0.1", timeout=10):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def under_asan(pid):
    """AddressSanitizer keeps freed memory in a quarantine (256 MiB by default):
    RSS says nothing about leaks or bounds there (the ASan run checks leaks)."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS")


def wait_for(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if cond():
                return time.time() - t0
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise TestFailure(f"timed out after {timeout} s waiting for {what}")


def make_source(path, table, rows):
    db = sqlite3.connect(path)
    db.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (id INTEGER PRIMARY KEY, payload TEXT)')
    rnd = random.Random(table)
    db.executemany(f'INSERT INTO "{table}" VALUES (?, ?)',
                   ((i, rnd.randbytes(500).hex()) for i in range(1, rows + 1)))
    db.commit()
    db.close()


def settings(work, bucket, **extra):
    s = {"DB_TYPE": "sqlite", "SQLITE_PATH": os.path.join(work, "src.db"),
         "SPOOL_DIR": os.path.join(work, "spool"), "S3_BUCKET": bucket,
         "S3_ENDPOINT": SRV["endpoint"], "AWS_ACCESS_KEY_ID": SRV["key"],
         "AWS_SECRET_ACCESS_KEY": SRV["secret"], "AWS_DEFAULT_REGION": SRV["region"],
         "AWS_EC2_METADATA_DISABLED": "true", "COMPRESSION": "none",
         "SEGMENT_MAX_BYTES": "8M", "RETRY_BASE": "0", "MAX_ATTEMPTS": "2",
         "RESCAN_INTERVAL": "1", "LOG_LEVEL": "WARNING"}
    s.update({k: str(v) for k, v in extra.items()})
    return s


def config(work, name, s):
    return write_config(os.path.join(work, name + ".env"), s)


def states(cfg):
    doc = json.loads(run(["status", "--json", "--config", cfg]).stdout)
    return {k: v["segments"] for k, v in doc["states"].items()}


class Scraper(threading.Thread):
    """GET /metrics at `rate` per second until stopped; keeps what it saw."""

    def __init__(self, port, rate):
        super().__init__(daemon=True)
        self.port, self.period = port, 1.0 / rate
        self.stop = threading.Event()
        self.ok = self.refused = 0
        self.errors = []
        self.bytes_seen = []

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                status, ctype, body = get(self.port, "/metrics", timeout=5)
                if status != 200 or ctype != "text/plain; version=0.0.4":
                    self.errors.append(f"{status} {ctype}")
                else:
                    s = samples(body)  # raises on an invalid exposition
                    self.bytes_seen.append(s[("ingesta_uploaded_bytes_total", ())])
                    self.ok += 1
            except ConnectionRefusedError:
                self.refused += 1  # not listening yet / any more
            except Exception as exc:  # noqa: BLE001 - every other failure is a finding
                self.errors.append(repr(exc))
            nxt += self.period
            time.sleep(max(0.0, nxt - time.monotonic()))


# ---------------------------------------------------------------- 1. load

def test_load(s3, bucket):
    work = tempdir("mhttp-load")
    make_source(os.path.join(work, "src.db"), "big", LOAD_ROWS)
    rounds = ["plain", "scraped", "scraped", "plain"]  # ABBA: drift cancels out
    cfgs = []
    for i, name in enumerate(rounds):
        s = settings(work, bucket, SPOOL_DIR=os.path.join(work, f"spool-{i}"),
                     S3_PREFIX=f"{i}-{name}/", UPLOAD_CONCURRENCY=1)
        cfgs.append(config(work, f"{i}-{name}", s))
        run(["collect", "--config", cfgs[i]])
    nseg = states(cfgs[0])["sealed"]
    times = {"plain": [], "scraped": []}
    scrapers = []
    for i, name in enumerate(rounds):
        port = free_port()
        scraper = None
        if name == "scraped":
            scraper = Scraper(port, 50)
            scraper.start()
        t0 = time.monotonic()
        run(["upload", "--once", "--config", cfgs[i]],
            env=clean_env({"METRICS_LISTEN": f"127.0.0.1:{port}"}))
        times[name].append(time.monotonic() - t0)
        if scraper:
            scraper.stop.set()
            scraper.join()
            scrapers.append((scraper, times[name][-1]))
        st = states(cfgs[i])
        check(st["uploaded"] == nseg and st["failed"] == 0, f"{name}: {st}")
    mb = LOAD_ROWS * 1000 / MIB
    fmt = lambda ts: "/".join(f"{t:.2f}" for t in ts)  # noqa: E731
    print(f"load: {nseg} segments, {mb:.0f} MiB, one upload at a time: {fmt(times['plain'])} s "
          f"alone, {fmt(times['scraped'])} s with a scraper at 50/s "
          f"({', '.join(f'{sc.ok} scrapes' for sc, _ in scrapers)}, all parsed)")
    for sc, t in scrapers:
        check(not sc.errors, f"scrape errors under load: {sc.errors[:5]}")
        check(sc.ok >= 25 * t, f"only {sc.ok} scrapes answered in {t:.1f} s")
        distinct = sorted(set(sc.bytes_seen))
        check(len(distinct) >= 2, f"uploaded bytes did not move during the upload: {distinct}")
        check(sc.bytes_seen == sorted(sc.bytes_seen), "the byte counter went backwards")
    check(min(times["scraped"]) <= min(times["plain"]) * 1.3 + 1.0,
          f"the scraper slowed the upload: {times}")
    return work


# ---------------------------------------------------------------- 2-4. daemon

def slowloris(port, result):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    try:
        for ch in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            s.send(bytes([ch]))
            time.sleep(1.0)
    except OSError:
        pass
    result.append(time.monotonic() - t0)
    s.close()


def huge_request(port, result):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    reply = b""
    try:
        s.sendall(b"GET /" + b"a" * MIB + b" HTTP/1.1\r\n\r\n")
    except OSError:
        pass  # the server answered and closed; read what it said
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass
    s.close()
    result.append(reply.split(b"\r\n", 1)[0].decode(errors="replace"))


def garbage(port, result, rnd):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    reply = b""
    try:
        s.sendall(bytes(rnd.getrandbits(8) for _ in range(4096)))
        reply = s.recv(4096)
    except OSError:
        pass
    s.close()
    result.append(reply.split(b"\r\n", 1)[0].decode(errors="replace"))


def test_daemon(s3, bucket):
    work = tempdir("mhttp-daemon")
    src = os.path.join(work, "src.db")
    make_source(src, "warm", 20000)
    port = free_port()
    mfile = os.path.join(work, "ingesta.prom")
    s = settings(work, bucket, SEGMENT_MAX_BYTES="1M", S3_PREFIX="daemon/", METRICS_FILE=mfile,
                 METRICS_LISTEN=f"127.0.0.1:{port}")
    cfg = config(work, "d", s)
    run(["collect", "--config", cfg])
    up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=clean_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: states(cfg)["sealed"] == 0 and get(port, "/healthz")[0] == 200, 60,
                 "the warm-up upload and /healthz 200")
        # 2. the endpoint and the textfile say the same; the verdict of status --check
        time.sleep(5.5)  # one textfile period after the last upload
        status, ctype, body = get(port, "/metrics")
        http_s = samples(body)
        file_s = samples(open(mfile).read())
        check(set(http_s) == set(file_s), f"samples differ: {set(http_s) ^ set(file_s)}")
        for k, v in file_s.items():
            if k[0] not in ("ingesta_metrics_timestamp_seconds",
                            "ingesta_oldest_not_uploaded_age_seconds"):
                check(http_s[k] == v, f"{k}: http {http_s[k]} file {v}")
        status, ctype, body = get(port, "/healthz")
        chk = run(["status", "--check", "--config", cfg])
        check(status == 200 and body == chk.stdout and body.startswith("OK: "),
              f"/healthz {status} {body!r}, status --check {chk.stdout!r}")
        check(get(port, "/metrics", "HEAD")[0] == 200 and get(port, "/nope")[0] == 404
              and get(port, "/metrics", "POST")[0] == 405, "HEAD/404/405")
        print(f"daemon: /metrics = textfile ({len(http_s)} samples), /healthz 200 {body.strip()!r}")

        # 3. hostile clients while a new collect is uploaded
        rss0 = rss_kib(up.pid)
        make_source(src, "under_attack", 150000)
        up0 = states(cfg)["uploaded"]
        collect = subprocess.Popen([INGESTA, "collect", "--config", cfg, "--set",
                                    "INCLUDE_TABLES=under_attack"], env=clean_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_attack = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        scraped = get(port, "/metrics")
        check(scraped[0] == 200 and samples(scraped[2]), "a scrape among 200 idle connections")
        huge, junk, slow = [], [], []

        def parallel(target, args_list):
            ts = [threading.Thread(target=target, args=a) for a in args_list]
            for t in ts:
                t.start()
            for t in ts:
                t.join(timeout=60)

        parallel(huge_request, [(port, huge)] * 5)
        rnd = random.Random(7)
        for _ in range(10):
            parallel(garbage, [(port, junk, rnd)] * 5)
        parallel(slowloris, [(port, slow)] * 3)
        for c in idle:
            c.close()
        mid = states(cfg)["uploaded"]
        rc_collect = collect.wait(timeout=300)
        check(rc_collect == 0, f"collect during the attack: {collect.stderr.read()[-2000:]}")
        wait_for(lambda: states(cfg)["sealed"] == 0 and states(cfg)["uploading"] == 0, 300,
                 "the upload during the attack")
        t_attack = time.monotonic() - t_attack
        time.sleep(1)
        rss1 = rss_kib(up.pid)
        st = states(cfg)
        check(st["failed"] == 0 and st["quarantined"] == 0, f"states after the attack {st}")
        check(mid > up0, f"nothing uploaded while under attack ({up0} -> {mid})")
        check(len(slow) == 3 and all(4.5 <= t <= 8 for t in slow),
              f"slowloris not closed by the 5 s deadline: {slow}")
        check(len(huge) == 5 and all(r.startswith("HTTP/1.1 414 ") for r in huge),
              f"1 MiB request line: {huge}")
        check(len(junk) == 50 and sum(r.startswith("HTTP/1.1 400 ") for r in junk) >= 45,
              f"garbage: {sorted(set(junk))}")
        if not under_asan(up.pid):
            check(rss1 - rss0 < 8 * 1024, f"VmRSS grew from {rss0} to {rss1} KiB")
        print(f"hostile: 200 idle (a scrape still answered) + 5x 1 MiB request line (414) + "
              f"50x 4 KiB garbage (400) + 3 slowloris at 1 B/s (closed after "
              f"{min(slow):.1f}-{max(slow):.1f} s); {mid - up0} segments uploaded meanwhile, "
              f"{st['uploaded'] - up0} in {t_attack:.1f} s; VmRSS {rss0} -> {rss1} KiB")

        # 4. a segment fails: /healthz 503 with the status --check line
        make_source(src, "doomed", 100)
        run(["collect", "--config", cfg, "--set", "INCLUDE_TABLES=doomed", "--set",
             f"S3_BUCKET=ingesta-missing-{secrets.token_hex(4)}"])
        wait_for(lambda: states(cfg)["failed"] >= 1, 60, "the doomed segment to fail")
        time.sleep(0.3)  # one rendering cache period (HTTP_CACHE_MS)
        status, ctype, body = get(port, "/healthz")
        chk = run(["status", "--check", "--config", cfg], check_rc=6)
        check(status == 503 and body.startswith("UNHEALTHY: 1 segment(s) failed")
              and body == chk.stdout, f"/healthz {status} {body!r} vs {chk.stdout!r}")
        m = samples(get(port, "/metrics")[2])
        check(m[("ingesta_segments", (("state", "failed"),))] == 1, "failed gauge")
        print(f"health: 503 {body.strip()[:90]!r}")
    finally:
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=60)
        err = up.stderr.read()
    check(rc == 0, f"uploader exit {rc}: {err[-2000:]}")
    try:
        get(port, "/metrics", timeout=2)
        raise TestFailure("still listening after the uploader stopped")
    except ConnectionRefusedError:
        pass


# ---------------------------------------------------------------- 5. stopping

STOP_ROUNDS = 10
STOP_RESETS_ALLOWED = 3


def test_stop(bucket):
    work = tempdir("mhttp-stop")
    make_source(os.path.join(work, "src.db"), "t", 10)
    cfg = config(work, "s", settings(work, bucket, S3_PREFIX="stop/"))
    run(["collect", "--config", cfg])
    ok = refused = 0
    bad = []
    for _ in range(STOP_ROUNDS):
        port = free_port()
        up = subprocess.Popen([INGESTA, "upload", "--config", cfg],
                              env=clean_env({"METRICS_LISTEN": f"127.0.0.1:{port}"}),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: get(port, "/metrics")[0] == 200, 20, "the endpoint")
        done = threading.Event()
        lock = threading.Lock()
        tally = {"ok": 0, "refused": 0}

        def hammer():
            while not done.is_set():
                try:
                    status = get(port, "/metrics", timeout=5)[0]
                    with lock:
                        if status == 200:
                            tally["ok"] += 1
                        else:
                            bad.append(f"status {status}")
                except ConnectionRefusedError:
                    with lock:
                        tally["refused"] += 1
                    return  # closed for good
                except Exception as exc:  # noqa: BLE001 - a reset is the finding
                    with lock:
                        bad.append(repr(exc))
        ts = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.5)
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=30)
        for t in ts:
            t.join(timeout=10)
        done.set()
        check(rc == 0, f"uploader exit {rc}: {up.stderr.read().decode()[-2000:]}")
        up.stderr.close()
        ok += tally["ok"]
        refused += tally["refused"]
    resets = [b for b in bad if b.startswith("ConnectionResetError")]
    others = [b for b in bad if not b.startswith("ConnectionResetError")]
    check(not others and len(resets) <= STOP_RESETS_ALLOWED,
          f"requests not answered while stopping: {len(bad)}, {bad[:5]}")
    check(refused == 4 * STOP_ROUNDS,
          f"clients not refused after the stop: {refused}")
    print(f"stop: {STOP_ROUNDS} stops under 4 clients scraping flat out: {ok} answered 200, "
          f"{refused} refused after the close, {len(resets)} reset in the close window")


# ---------------------------------------------------------------- 6. refusals

def test_refusals(bucket):
    work = tempdir("mhttp-refuse")
    make_source(os.path.join(work, "src.db"), "t", 10)
    cfg = config(work, "r", settings(work, bucket, S3_PREFIX="refuse/"))
    run(["collect", "--config", cfg])
    for bad in (":9464", "127.0.0.1", "localhost:9464", "::1:9464", "127.0.0.1:0"):
        p = run(["upload", "--once", "--config", cfg],
                env=clean_env({"METRICS_LISTEN": bad}), check_rc=2)
        check("METRICS_LISTEN" in p.stderr, f"{bad}: {p.stderr}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = run(["upload", "--once", "--config", cfg],
                env=clean_env({"METRICS_LISTEN": f"127.0.0.1:{port}"}), check_rc=2)
        check(f"METRICS_LISTEN=127.0.0.1:{port}" in p.stderr and "in use" in p.stderr,
              p.stderr)
    print(f"refusals: malformed values and an address in use exit 2 ({p.stderr.strip()!r})")
    if socket.has_ipv6:
        try:
            port6 = free_port(socket.AF_INET6, "::1")
        except OSError:
            print("ipv6: no ::1 here, skipped")
            return
        env = clean_env({"METRICS_LISTEN": f"[::1]:{port6}"})
        up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: get(port6, "/metrics", host="::1")[0] == 200, 20, "[::1] scrape")
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=30)
        print(f"ipv6: [::1]:{port6} served /metrics")


def test():
    env = servers_env()
    for k in ("MINIO_ENDPOINT", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        check(k in env, f"{k} missing: start MinIO with tests/servers/start.sh minio")
    SRV.update(endpoint=env["MINIO_ENDPOINT"], key=env["MINIO_ROOT_USER"],
               secret=env["MINIO_ROOT_PASSWORD"], region=env.get("AWS_DEFAULT_REGION",
                                                                 "us-east-1"))
    s3 = boto3.client("s3", endpoint_url=SRV["endpoint"], aws_access_key_id=SRV["key"],
                      aws_secret_access_key=SRV["secret"], region_name=SRV["region"],
                      config=Config(s3={"addressing_style": "path"}))
    bucket = f"ingesta-mhttp-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    work = test_load(s3, bucket)
    test_daemon(s3, bucket)
    test_stop(bucket)
    test_refusals(bucket)
    # clean up after a pass (a failure keeps the bucket and the work dirs)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
    s3.delete_bucket(Bucket=bucket)
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main(test)
