#!/usr/bin/python3
"""Everything at once: S3 faults, network faults, and kill -9 of collectors
and the uploader, then exactly once.

    ingesta upload -> toxiproxy (latency, bandwidth limit, stalls that time
    out) -> tests/servers/s3_fault_proxy.py (~20% of requests: 500, 503
    SlowDown, 400 RequestTimeout, dropped connections before/after/mid answer,
    a flipped body byte, slow answers) -> MinIO

Two SQLite sources share one spool (as the original's collectors did) and one
uploader daemon. Each round starts a collector of one source (multi-segment
tables and a multipart-sized one), and at random kills -9 the collector, the
uploader (restarted at once), or both. At the end the faults stay on while a
last uploader drains the spool; then, reading MinIO directly with boto3:
every key once with the spooled bytes, no stray keys, no open multipart
uploads, every committed run's rows exactly once, 0 lost, 0 duplicates.

S3_FAULT_ROUNDS (default 30; 150 locally), S3_FAULT_RATE (default 0.2).
"""
import os
import subprocess
import sys
import time
import uuid

from ingesta_test import TestFailure, check, main, tempdir, write_config
from rel_common import (Expected, S3Bucket, Toxiproxy, check_spool_clean, expect_rc, fault_proxy, kill9,
                        make_sqlite, run_ingesta, s3_available, s3_settings, seeded_random, servers_env,
                        spawn, spool_rows, stop, verify, wait_for)

ROUNDS = int(os.environ.get("S3_FAULT_ROUNDS", "30"))
RATE = float(os.environ.get("S3_FAULT_RATE", "0.2"))


class S3BucketNoLeftovers:
    """The same bucket, with the open-multipart-upload check switched off."""

    def __init__(self, b):
        self.b, self.url = b, b.url

    def keys(self):
        return self.b.keys()

    def get(self, key):
        return self.b.get(key)

    def leftovers(self):
        return []


def cpu_share(pid, seconds):
    """Fraction of one CPU the process used over `seconds`."""
    def ticks():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    t0 = ticks()
    time.sleep(seconds)
    return (ticks() - t0) / os.sysconf("SC_CLK_TCK") / seconds


def rules(rate):
    share = {"500": 0.2, "503": 0.2, "timeout400": 0.1, "drop_before": 0.1, "drop_after": 0.15,
             "drop_mid": 0.1, "flip": 0.1, "slow": 0.05}
    out = []
    left = 1.0
    for fault, w in share.items():
        # Rules are tried in order; scale so each fault's overall rate is rate*w.
        p = min(1.0, rate * w / left)
        r = {"fault": fault, "p": p}
        if fault == "flip":
            r["kinds"] = ["put_object", "upload_part"]
        if fault == "timeout400":  # S3 sends RequestTimeout only while reading a body
            r["kinds"] = ["put_object", "upload_part", "complete"]
        if fault == "slow":
            r["delay"] = 2.0
        out.append(r)
        left -= rate * w
    return out


def test():
    ok, why = s3_available()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(77)
    rng = seeded_random()
    env = servers_env()
    d = tempdir("s3faults")
    bucket = S3Bucket(f"rel-faults-{uuid.uuid4().hex[:8]}")
    fp = fault_proxy(env["MINIO_ENDPOINT"], [], seed=rng.randrange(1 << 30))
    tox = Toxiproxy("rel-s3faults", fp.port)
    procs = []
    try:
        tox.toxic("latency", "downstream", latency=20, jitter=10)
        tox.toxic("latency", "upstream", latency=5, jitter=5)
        tox.toxic("bandwidth", "upstream", rate=40000)  # KB/s towards S3
        # Some connections stall (no data) and are closed after 3 s.
        tox.toxic("timeout", "downstream", toxicity=0.03, timeout=3000)
        fp.set_rules(rules(RATE))
        spool = os.path.join(d, "spool")
        expected = Expected()
        cfgs = []
        for name, tables in (("ms1", {"users": 3000, "orders": (6000, 200), "blobs": (1100, 6000)}),
                             ("ms2", {"customers": 2000, "invoices": (5000, 300), "scans": (900, 7000)})):
            src = os.path.join(d, name + ".db")
            expected.add(name, make_sqlite(src, tables))
            s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SOURCE_NAME": name, "SPOOL_DIR": spool,
                 "SEGMENT_MAX_ROWS": "2000", "SEGMENT_MAX_BYTES": "8M", "COMPRESSION": "none",
                 "MULTIPART_THRESHOLD": "5M", "MULTIPART_PART_SIZE": "5M", "UPLOAD_CONCURRENCY": "4",
                 "RETRY_BASE": "100ms", "RETRY_CAP": "2s", "MAX_ATTEMPTS": "1000", "RESCAN_INTERVAL": "2"}
            s.update(s3_settings(bucket.name, f"http://127.0.0.1:{tox.port}"))
            cfgs.append(write_config(os.path.join(d, name + ".env"), s))
        ulog = os.path.join(d, "uploader.log")
        up = spawn(["upload", "--config", cfgs[0]], log=ulog)
        kills = {"collector": 0, "uploader": 0}
        collects = 0
        t0 = time.time()
        for rnd in range(ROUNDS):
            cfg = cfgs[rnd % 2]
            c = spawn(["collect", "--config", cfg], log=os.path.join(d, "collect.log"))
            collects += 1
            what = rng.choice(["collector", "uploader", "both", "none", "none"])
            # A collect takes well under a second: kill it early.
            time.sleep(rng.uniform(0.0, 0.5) if what in ("collector", "both") else rng.uniform(0.2, 2.5))
            if what in ("collector", "both"):
                kills["collector"] += kill9(c)
            if what in ("uploader", "both"):
                kills["uploader"] += kill9(up)
                up = spawn(["upload", "--config", cfgs[0]], log=ulog)
            if c.poll() is None:
                try:
                    c.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    kill9(c)
                    raise
            if rng.random() < 0.3:  # the uploader dies mid-upload too, on its own clock
                time.sleep(rng.uniform(0, 1.5))
                kills["uploader"] += kill9(up)
                up = spawn(["upload", "--config", cfgs[0]], log=ulog)
        # Drain with the faults still on: the daemon works until nothing is
        # left (failed would mean a transient fault was taken as permanent).
        def drained():
            _, parts, segs = spool_rows(spool)
            by_part = {}
            for s in segs:
                by_part.setdefault(s["partition_id"], []).append(s["state"])
            return (all(s["state"] in ("uploaded", "failed", "quarantined") for s in segs) and
                    all(p["manifest_state"] == "written" for p in parts
                        if p["state"] == "complete" and by_part.get(p["id"]) and
                        all(st == "uploaded" for st in by_part[p["id"]])))
        wait_for(drained, 900, "the uploader to drain the spool under faults", interval=1)
        idle_cpu = cpu_share(up.pid, 5.0)  # nothing left to do: the daemon should sleep
        stop(up)
        _, _, segs = spool_rows(spool)
        bad = [(s["key"], s["state"], s["last_error_code"], s["last_error"]) for s in segs
               if s["state"] != "uploaded"]
        check(not bad, f"segments not uploaded under transient faults: {bad[:5]}")
        # One more collect per source with everything calm, then a final check.
        tox.clear()
        injected = fp.injected()
        summary = fp.summary()
        fp.set_rules([])
        for cfg in cfgs:
            expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "final collect")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfgs[0]], timeout=600), 0, "final upload")
        issues = []
        try:
            fig = verify([spool], bucket, expected)
        except TestFailure as exc:
            if not str(exc).startswith("leftovers in the bucket"):
                raise
            # Every row and object checked out; only open multipart uploads
            # are left. Report them with the rest.
            issues.append(f"open multipart uploads left in the bucket after the drain: {str(exc)[:400]}")
            fig = verify([spool], S3BucketNoLeftovers(bucket), expected)
        check_spool_clean(spool)
        open_mpu = len(bucket.leftovers())
        uploads = sum(1 for ln in open(ulog, errors="replace") if "segment uploaded" in ln
                      or "already present" in ln)
        present = sum(1 for ln in open(ulog, errors="replace") if "already present" in ln)
        resumed = sum(1 for ln in open(ulog, errors="replace") if "multipart upload resumed" in ln
                      or "resuming a multipart upload" in ln)
        print(f"S3 faults: {ROUNDS} rounds ({collects + 2} collector runs) in {time.time() - t0:.0f} s; "
              f"fault proxy: {summary}; toxiproxy: latency, 40 MB/s limit, 3% stalled connections; "
              f"kill -9: {kills['collector']} collectors, {kills['uploader']} uploaders; "
              f"{uploads} upload records ({present} found already present after a lost answer, "
              f"{resumed} multipart resumes); {fig}; no stray keys, open multipart uploads {open_mpu} "
              f"(MinIO ghost uploads of objects whose Complete was cut off: {len(bucket.ghosts)}); "
              f"idle daemon CPU {idle_cpu:.0%}")
        check(injected > 0, "no fault was injected")
        if idle_cpu >= 0.10:
            issues.append(f"the idle uploader daemon used {idle_cpu:.0%} of a CPU for 5 s with nothing "
                          f"to upload (it keeps waking itself up)")
        check(not issues, "\n  ".join(["everything arrived exactly once, but:"] + issues))
    finally:
        for p in procs:
            kill9(p)
        try:
            kill9(up)
        except Exception:  # noqa: BLE001
            pass
        tox.delete()
        fp.stop()
        bucket.destroy()
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
