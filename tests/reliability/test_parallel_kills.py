#!/usr/bin/python3
"""kill -9 of a COLLECT_PARALLEL=3 collector while several tables are in flight.

For PostgreSQL and MariaDB: a database with three big tables (several
segments each at SEGMENT_MAX_ROWS) plus a small and an empty one, read on
three connections. PARALLEL_KILLS times per source a collector is killed at a
random moment of its run (a full run now and then); right after each kill the
spool is read (before any recovery) to count the open partitions of the
killed run: a kill with two or more of them open hit several tables in
flight at once, and at least a third of the kills must be such. Then one
final run, an uploader drains the spool to a MinIO bucket, and the bucket is
read with boto3: every completed run holds each table's ids exactly once,
partial runs left nothing, no stray keys, the spool has no temporary or
orphan files (rel_common.verify).

PARALLEL_KILLS (default 12 per source).
"""
import os
import sqlite3
import time
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (Expected, Figures, S3Bucket, ServerSource, check_spool_clean, expect_rc,
                        kill9, run_ingesta, s3_available, s3_settings, seeded_random, spawn,
                        spool_rows, verify)

KILLS = int(os.environ.get("PARALLEL_KILLS", "12"))


def open_partitions(spool):
    """Open partitions of the run still marked running (the one just killed)."""
    db = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM partitions p JOIN runs r ON r.run_id = p.run_id "
                          "WHERE r.state = 'running' AND p.state = 'open'").fetchone()[0]
    finally:
        db.close()


def loop(d, kind, rng, bucket):
    tables = {"big1": (40000, 120), "big2": (40000, 120), "big3": (40000, 120), "small": 300,
              "empty": 0}
    src = ServerSource(kind, tables, prefix="relpar")
    try:
        spool = os.path.join(d, kind + "-spool")
        s = src.settings()
        s.update({"SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "4000", "COLLECT_PARALLEL": "3"})
        s.update(s3_settings(bucket.name))
        cfg = write_config(os.path.join(d, kind + ".env"), s)
        t0 = time.time()
        p = run_ingesta(["collect", "--config", cfg], timeout=600)
        expect_rc(p, 0, f"{kind}: collect")
        check("connections=3" in p.stderr, f"{kind}: not read on 3 connections:\n{p.stderr[-2000:]}")
        full = time.time() - t0
        killed = tries = multi = 0
        while killed < KILLS:
            p = spawn(["collect", "--config", cfg])
            time.sleep(rng.uniform(full * 0.1, full * 0.95))
            if kill9(p):
                killed += 1
                multi += open_partitions(spool) >= 2
            tries += 1
            if tries % 4 == 0:
                expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0,
                          f"{kind}: rerun")
            check(tries < KILLS * 5, f"{kind}: the collector keeps finishing before the kill")
        expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{kind}: final run")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=600), 0,
                  f"{kind}: upload")
        check(multi * 3 >= killed, f"{kind}: only {multi} of {killed} kills hit two or more "
                                   "tables in flight")
        fig = verify([spool], bucket, Expected(src.expected))
        check_spool_clean(spool)
        runs, _, _ = spool_rows(spool)
        abandoned = sum(1 for r in runs if r["state"] == "abandoned")
        print(f"{kind}: {killed} kill -9 of a 3-connection collector (a run takes {full:.1f} s), "
              f"{multi} with two or more tables in flight, {abandoned} runs abandoned and "
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
    print(f"parallel kills: {kills} kill -9 with tables in flight; rows {total.rows} checked in "
          f"MinIO, rows lost {total.lost}, duplicates {total.dups}, corrupt objects {total.corrupt}")


if __name__ == "__main__":
    main(test)
