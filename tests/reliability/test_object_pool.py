#!/usr/bin/python3
"""Manifests and commit records go out UPLOAD_CONCURRENCY at a time (issue 12).

Through a counting proxy in front of MinIO (tests/servers/s3_fault_proxy.py's
forwarding, no faults) that sees every manifest PUT (".../_manifest-<run>.json")
and commit-record PUT ("ingesta_runs/..."):

1. concurrency: each such PUT is held until UPLOAD_CONCURRENCY (3) of its kind
   are in flight at once (or HOLD_S passed): the peak of each kind must be
   exactly 3, never more, so the check does not depend on timing (one at a time,
   the old uploader's way, peaks at 1 and takes HOLD_S a PUT). Every key is PUT
   once; each commit record's PUT starts after its partition's manifest PUT
   ended; the bucket holds every row once (rel_common.verify). 140 tables: more
   than two batches of the uploader's 64.
2. kill: commit-record PUTs are held at the gate until 3 are in flight, the
   uploader is killed with SIGKILL, the held PUTs then reach MinIO (written,
   never recorded); a restarted uploader rewrites each record at the same key
   with the same bytes, and the bucket verifies.
3. a target that refuses manifests (503 for each): a failed manifest PUT ends
   the pass's manifests (the rest of the batch is not handed out), so a pass
   costs at most UPLOAD_CONCURRENCY failed PUTs, not a batch of 64; `upload
   --once` gives up after MAX_ATTEMPTS passes (exit 5), and the next upload,
   the target back, writes everything.
"""
import collections
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (SOURCE_ROOT, S3Bucket, check_spool_clean, expect_rc, ingesta_env, kill9, make_sqlite,
                        run_ingesta, s3_available, s3_settings, servers_env, spawn, verify, wait_for)

sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "servers"))
from s3_fault_proxy import FaultProxy  # noqa: E402

CONCURRENCY = 3
HOLD_S = 3.0
# More than two of the uploader's batches (64 jobs each): the next batch is
# claimed while one is in flight.
TABLES = {f"t{i:03d}": 1 + i % 5 for i in range(140)}


def kind_of(method, path):
    if method != "PUT":
        return None
    if "/_manifest-" in path:
        return "manifest"
    if "/ingesta_runs/" in path:
        return "commit"
    return None


class CountingProxy(FaultProxy):
    """Forwards everything; counts manifest and commit-record PUTs in flight."""

    def __init__(self, upstream):
        super().__init__(upstream, [])
        self.cv = threading.Condition()
        self.inflight = collections.Counter()
        self.peak = collections.Counter()
        self.puts = collections.Counter()   # key -> PUTs
        self.spans = collections.defaultdict(list)  # key -> [(start seq, end seq, body)]
        self.seq = 0
        self.barrier = 0       # hold each PUT until this many of its kind are in flight
        self.gate = None       # a kind held until open_gate()
        self.gate_open = threading.Event()
        self.fail = None       # a kind answered 503 SlowDown, never forwarded

    def open_gate(self):
        self.gate_open.set()

    def forward(self, h, body):
        path = urllib.parse.unquote(urllib.parse.urlsplit(h.path).path)
        kind = kind_of(h.command, path)
        if kind is None:
            return super().forward(h, body)
        key = path.split("/", 2)[2]
        with self.cv:
            self.seq += 1
            start = self.seq
            self.inflight[kind] += 1
            self.puts[key] += 1
            self.peak[kind] = max(self.peak[kind], self.inflight[kind])
            self.cv.notify_all()
            deadline = time.monotonic() + HOLD_S
            while self.barrier and self.peak[kind] < self.barrier and time.monotonic() < deadline:
                self.cv.wait(deadline - time.monotonic())
        if self.gate == kind:
            self.gate_open.wait(120)
        if self.fail == kind:
            with self.cv:
                self.inflight[kind] -= 1
            body = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>slow</Message></Error>"
            return 503, "Slow Down", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
        try:
            return super().forward(h, body)
        finally:
            with self.cv:
                self.inflight[kind] -= 1
                self.seq += 1
                self.spans[key].append((start, self.seq, body))
                self.cv.notify_all()


def commit_bodies(proxy):
    return {k: v for k, v in proxy.spans.items() if "ingesta_runs/" in k}


def test():
    ok, why = s3_available()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(77)
    d = tempdir("objpool")
    src = os.path.join(d, "src.db")
    expected = make_sqlite(src, TABLES)
    bucket = S3Bucket("rel-pool-" + uuid.uuid4().hex[:10])
    proxy = CountingProxy(servers_env()["MINIO_ENDPOINT"]).start()
    try:
        spool = os.path.join(d, "spool")
        settings = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool,
                    "UPLOAD_CONCURRENCY": str(CONCURRENCY), "LOG_LEVEL": "info"}
        settings.update(s3_settings(bucket.name, endpoint=proxy.url))
        cfg = write_config(os.path.join(d, "pool.env"), settings)

        # --- 1. concurrency
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
        proxy.barrier = CONCURRENCY
        t0 = time.monotonic()
        p = expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), 0, "upload")
        dt = time.monotonic() - t0
        proxy.barrier = 0
        n = len(TABLES)
        manifests = [k for k in proxy.puts if "/_manifest-" in k]
        commits = [k for k in proxy.puts if "ingesta_runs/" in k]
        check(len(manifests) == n and len(commits) == n,
              f"{len(manifests)} manifests and {len(commits)} commit records PUT, wanted {n} each")
        check(all(v == 1 for v in proxy.puts.values()),
              f"keys PUT more than once: {[k for k, v in proxy.puts.items() if v > 1]}")
        check(proxy.peak["manifest"] == CONCURRENCY,
              f"manifest PUTs in flight at once: at most {proxy.peak['manifest']}, wanted {CONCURRENCY}")
        check(proxy.peak["commit"] == CONCURRENCY,
              f"commit-record PUTs in flight at once: at most {proxy.peak['commit']}, wanted {CONCURRENCY}")
        for key, spans in commit_bodies(proxy).items():
            rec = json.loads(spans[0][2])
            mkey = rec["manifest_key"]
            check(mkey in proxy.spans, f"{key}: its manifest {mkey} was not PUT")
            check(proxy.spans[mkey][-1][1] < spans[0][0],
                  f"{key}: commit record PUT before its manifest's PUT ended")
        fig = verify([spool], bucket, expected)
        check_spool_clean(spool)
        print(f"concurrency: {n} manifests and {n} commit records, at most {proxy.peak['manifest']} / "
              f"{proxy.peak['commit']} in flight (UPLOAD_CONCURRENCY={CONCURRENCY}), upload {dt:.1f} s; {fig}",
              flush=True)
        check("commit record written" in p.stderr + p.stdout, "no 'commit record written' log line")

        # --- 2. kill -9 with commit-record PUTs in flight
        proxy.puts.clear()
        proxy.spans.clear()
        proxy.peak.clear()
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "second collect")
        proxy.gate = "commit"
        up = spawn(["upload", "--once", "--config", cfg], env=ingesta_env(), log=os.path.join(d, "killed.log"))
        try:
            wait_for(lambda: proxy.inflight["commit"] >= CONCURRENCY, 120, "3 commit-record PUTs in flight")
        finally:
            killed = kill9(up)
        check(killed, "the uploader ended before it was killed")
        held = proxy.inflight["commit"]
        proxy.open_gate()
        wait_for(lambda: proxy.inflight["commit"] == 0, 60, "the held PUTs to reach MinIO")
        proxy.gate = None
        db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True)
        recorded = db.execute("SELECT count(*) FROM partitions WHERE commit_state='written' AND run_id="
                              "(SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1)").fetchone()[0]
        db.close()
        first = {k: v[0][2] for k, v in commit_bodies(proxy).items()}
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), 0, "upload after the kill")
        again = commit_bodies(proxy)
        for key, body in first.items():
            check(len(again[key]) >= 2, f"{key}: PUT before the kill (never answered), not rewritten")
            check(all(s[2] == body for s in again[key]), f"{key}: rewritten with other bytes")
            check(bucket.get(key) == body, f"{key}: the bucket holds other bytes than the record")
        fig = verify([spool], bucket, expected)
        check_spool_clean(spool)
        db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True)
        left = db.execute("SELECT count(*) FROM partitions WHERE commit_state<>'written'").fetchone()[0]
        db.close()
        check(left == 0, f"{left} commit records not written after the restart")
        print(f"kill: {held} commit-record PUTs held when killed ({recorded} recorded before), "
              f"{len(first)} keys rewritten identically after the restart; {fig}", flush=True)

        # --- 3. manifests refused
        proxy.puts.clear()
        proxy.spans.clear()
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "third collect")
        proxy.fail = "manifest"
        env = ingesta_env({"MAX_ATTEMPTS": "2", "RETRY_BASE": "0.05"})
        p = expect_rc(run_ingesta(["upload", "--once", "--config", cfg], env=env, timeout=300), 5,
                      "upload --once while manifests are refused")
        tried = sum(v for k, v in proxy.puts.items() if "/_manifest-" in k)
        check(1 <= tried <= CONCURRENCY * 3,
              f"{tried} manifest PUTs in 3 passes while the target refuses them, wanted at most "
              f"{CONCURRENCY * 3} (the first failure ends a pass's manifests)")
        check("manifest not written yet" in p.stderr, "no 'manifest not written yet' warning")
        proxy.fail = None
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), 0, "upload, target back")
        fig = verify([spool], bucket, expected)
        check_spool_clean(spool)
        print(f"refused: {tried} manifest PUTs in 3 passes (UPLOAD_CONCURRENCY={CONCURRENCY}), exit 5; "
              f"after the fix {fig}", flush=True)
    finally:
        proxy.open_gate()
        proxy.stop()
        bucket.destroy()


if __name__ == "__main__":
    main(test)
