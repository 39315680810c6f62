#!/usr/bin/python3
"""kill -9 of a COLLECT_PARALLEL=3 collector while tables and key ranges of
one table are in flight.

For PostgreSQL and MariaDB: a database with three big tables (several
segments each at SEGMENT_MAX_ROWS) plus a small and an empty one, read on
three connections; with a small COLLECT_SPLIT_BYTES each big table is read as
3 key ranges on the three connections at once (one partition, committed when
its last range is sealed). PARALLEL_KILLS times per source a collector is
killed at a random moment of its run, every other time as soon as two ranges of one
table are being written (a full run now and then); right after
each kill the spool is read (before any recovery): a kill that left two or
more temporary segment files of one partition hit several ranges of one table
in flight, and at least a third of the kills must be such. Then one
final run, an uploader drains the spool to a MinIO bucket, and the bucket is
read with boto3: every completed run holds each table's ids exactly once,
partial runs left nothing, no stray keys, the spool has no temporary or
orphan files (rel_common.verify).

PARALLEL_KILLS (default 12 per source).
"""
import collections
import os
import time
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (Expected, Figures, S3Bucket, ServerSource, check_spool_clean, expect_rc,
                        kill9, mysql, run_ingesta, s3_available, s3_settings, seeded_random, spawn,
                        spool_rows, verify)

KILLS = int(os.environ.get("PARALLEL_KILLS", "12"))


def ranges_in_flight(spool):
    """The most temporary segment files one partition has (tmp/<run>.<partition>-<n>.tmp):
    each range of a split table writes its own."""
    per = collections.Counter(name.rsplit("-", 1)[0] for name in os.listdir(os.path.join(spool, "tmp")))
    return max(per.values(), default=0)


def loop(d, kind, rng, bucket):
    tables = {"big1": (60000, 120), "big2": (60000, 120), "big3": (60000, 120), "small": 300,
              "empty": 0}
    src = ServerSource(kind, tables, prefix="relpar")
    try:
        if kind == "mysql":  # InnoDB's size statistics of just-loaded tables lag behind
            mysql(src.name, "ANALYZE TABLE big1, big2, big3")
        spool = os.path.join(d, kind + "-spool")
        s = src.settings()
        s.update({"SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "8000", "COLLECT_PARALLEL": "3",
                  "COLLECT_SPLIT_BYTES": "1M"})
        s.update(s3_settings(bucket.name))
        cfg = write_config(os.path.join(d, kind + ".env"), s)
        t0 = time.time()
        p = run_ingesta(["collect", "--config", cfg], timeout=600)
        expect_rc(p, 0, f"{kind}: collect")
        check("connections=3" in p.stderr, f"{kind}: not read on 3 connections:\n{p.stderr[-2000:]}")
        check(p.stderr.count("table split into key ranges") == 3 and "ranges=3" in p.stderr,
              f"{kind}: the big tables were not split:\n{p.stderr[-2000:]}")
        full = time.time() - t0
        killed = tries = multi = 0
        while killed < KILLS:
            p = spawn(["collect", "--config", cfg])
            if tries % 2:
                time.sleep(rng.uniform(full * 0.1, full * 0.95))
            else:  # every other kill as soon as two ranges of a table are being written
                deadline = time.time() + full * 2
                while time.time() < deadline and p.poll() is None and ranges_in_flight(spool) < 2:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.005))
            if kill9(p):
                killed += 1
                multi += ranges_in_flight(spool) >= 2
            tries += 1
            if tries % 4 == 0:
                expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0,
                          f"{kind}: rerun")
            check(tries < KILLS * 5, f"{kind}: the collector keeps finishing before the kill")
        expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{kind}: final run")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=600), 0,
                  f"{kind}: upload")
        check(multi * 3 >= killed, f"{kind}: only {multi} of {killed} kills hit two or more "
                                   "ranges of one table in flight")
        fig = verify([spool], bucket, Expected(src.expected))
        check_spool_clean(spool)
        runs, _, _ = spool_rows(spool)
        abandoned = sum(1 for r in runs if r["state"] == "abandoned")
        print(f"{kind}: {killed} kill -9 of a 3-connection collector (a run takes {full:.1f} s), "
              f"{multi} with two or more ranges of one table in flight, {abandoned} runs abandoned and "
              f"cleaned by recovery; {fig}", flush=True)
        return killed, fig
    finally:
        src.drop()


def test():
    ok, why = s3_available()
    if not ok:
        print(f"SKIP: {why}")
        raise SystemExit(77)
    rng = seeded_random()
    d = tempdir("parkills")
    total = Figures()
    kills = 0
    for kind in ("postgresql", "mysql"):
        bucket = S3Bucket(f"rel-par-{uuid.uuid4().hex[:8]}")
        try:
            k, fig = loop(d, kind, rng, bucket)
        finally:
            bucket.destroy()
        kills += k
        total.add(fig)
    print(f"parallel kills: {kills} kill -9 with tables and key ranges in flight; rows {total.rows} checked in "
          f"MinIO, rows lost {total.lost}, duplicates {total.dups}, corrupt objects {total.corrupt}")


if __name__ == "__main__":
    main(test)
