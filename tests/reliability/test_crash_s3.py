#!/usr/bin/python3
"""kill -9 loops against real servers: the uploader during S3 uploads
(multipart included), and collectors of MariaDB, PostgreSQL and FerretDB.

1. Uploader: a SQLite source with a ~18 MiB table of random text
   (COMPRESSION=none, SEGMENT_MAX_BYTES=16M: one segment above 15 MiB and one
   small) plus small tables, MULTIPART_THRESHOLD=5M, MULTIPART_PART_SIZE=5M
   (the big segment goes up in 4 parts). `upload --once` is killed at a
   random moment of its work, CRASH_S3_KILLS times; a new run is collected
   whenever the spool is drained. Afterwards, read from MinIO with boto3:
   every key once with the spooled bytes, no stray keys, no open multipart
   uploads, every run's rows exactly once.
2. Collectors: CRASH_SRV_KILLS kill -9 spread over MariaDB, PostgreSQL and
   FerretDB sources whose big table spans several segments (SQLite has its
   own loop in test_crash_sqlite.py), each at a random moment of the run, with
   a full run every few kills; then one uploader drains to a file:// bucket
   and every committed run's rows are there exactly once, partial runs left
   nothing, the spool has no temporary or orphan files.

CRASH_S3_KILLS (default 50; 200 locally), CRASH_SRV_KILLS (default 51; 201 locally).
"""
import os
import subprocess
import sys
import time
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (Expected, FileBucket, Figures, S3Bucket, ServerSource, check_spool_clean,
                        expect_rc, kill9, make_sqlite, run_ingesta, s3_available, s3_settings,
                        seeded_random, spawn, spool_rows, verify)

S3_KILLS = int(os.environ.get("CRASH_S3_KILLS", "50"))
SRV_KILLS = int(os.environ.get("CRASH_SRV_KILLS", "51"))


def left_to_upload(spool):
    if not os.path.exists(os.path.join(spool, "spool.db")):
        return 0
    _, parts, segs = spool_rows(spool)
    return sum(1 for s in segs if s["state"] in ("sealed", "uploading")) + sum(
        1 for p in parts if p["state"] == "complete" and p["manifest_state"] == "none" and p["segments"])


def uploader_loop(d, rng):
    bucket = S3Bucket(f"rel-crash-{uuid.uuid4().hex[:8]}")
    try:
        src = os.path.join(d, "up.db")
        # big: 2600 rows of ~7000 random characters: ~18 MiB of NDJSON.
        expected = Expected(make_sqlite(src, {"big": (2600, 7000), "small": 500, "mid": (3000, 300)}))
        spool = os.path.join(d, "up-spool")
        s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "COMPRESSION": "none",
             "SEGMENT_MAX_BYTES": "16M", "MULTIPART_THRESHOLD": "5M", "MULTIPART_PART_SIZE": "5M",
             "UPLOAD_CONCURRENCY": "3", "RETRY_BASE": "100ms", "RETRY_CAP": "1s"}
        s.update(s3_settings(bucket.name))
        cfg = write_config(os.path.join(d, "up.env"), s)
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
        _, _, segs = spool_rows(spool)
        check(max(x["bytes"] for x in segs) > 15 << 20, "no segment above 15 MiB")
        t0 = time.time()
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=600), 0, "first upload")
        full = time.time() - t0
        kills = tries = collects = 0
        log = os.path.join(d, "up.log")
        t1 = time.time()
        while kills < S3_KILLS:
            if left_to_upload(spool) == 0:
                expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
                collects += 1
            size = os.path.getsize(log) if os.path.exists(log) else 0
            p = spawn(["upload", "--once", "--config", cfg, "--set", "LOG_LEVEL=debug"], log=log)
            if tries % 2:
                time.sleep(rng.uniform(0.05, full * 1.1))
            else:  # every other kill right after a multipart part was confirmed
                deadline = time.time() + full * 3
                while time.time() < deadline and p.poll() is None:
                    with open(log, errors="replace") as f:
                        f.seek(size)
                        if "part uploaded" in f.read():
                            break
                    time.sleep(0.01)
            kills += kill9(p)
            tries += 1
            check(tries < S3_KILLS * 5, "the uploader keeps finishing before the kill")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=600), 0, "final upload")
        fig = verify([spool], bucket, expected)
        check_spool_clean(spool)
        text = open(log, errors="replace").read()
        resumes = text.count("multipart upload resumed") + text.count("resuming a multipart upload")
        print(f"uploader: {kills} kill -9 during S3 uploads ({collects + 1} runs, a full drain takes "
              f"{full:.1f} s; {resumes} multipart resumes, "
              f"{text.count('already present')} objects found already present, "
              f"{text.count('aborting a stale multipart')} stale uploads aborted, "
              f"{text.count('part uploaded')} parts confirmed) in {time.time() - t1:.0f} s; "
              f"{fig}; no stray keys, no open multipart uploads ({len(bucket.ghosts)} MinIO ghost uploads "
              f"of objects whose Complete was cut off by a kill: rel_common.S3Bucket.is_ghost_upload)",
              flush=True)
        return kills, fig
    finally:
        bucket.destroy()


def collector_loop(d, rng):
    kinds = [("mysql", 60000, 10000), ("postgresql", 60000, 10000), ("mongodb", 15000, 3000)]
    per = [SRV_KILLS // 3 + (1 if i < SRV_KILLS % 3 else 0) for i in range(3)]
    total = Figures()
    kills_total = 0
    for (kind, rows, seg_rows), nkills in zip(kinds, per):
        src = ServerSource(kind, {"a_small": 300, "big": (rows, 120), "empty": 0}, prefix="relcrash")
        try:
            spool = os.path.join(d, kind + "-spool")
            bucket = FileBucket(os.path.join(d, kind + "-bucket"))
            s = src.settings()
            s.update({"SPOOL_DIR": spool, "S3_BUCKET": bucket.url, "SEGMENT_MAX_ROWS": str(seg_rows),
                      "MONGO_BATCH_SIZE": "500"})
            cfg = write_config(os.path.join(d, kind + ".env"), s)
            t0 = time.time()
            expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{kind}: collect")
            full = time.time() - t0
            killed = 0
            tries = 0
            t1 = time.time()
            while killed < nkills:
                p = spawn(["collect", "--config", cfg])
                time.sleep(rng.uniform(0, full * 1.1))
                killed += kill9(p)
                tries += 1
                if tries % 4 == 0:  # now and then a full run between crashes
                    expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{kind}: rerun")
                check(tries < nkills * 5, f"{kind}: the collector keeps finishing before the kill")
            expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{kind}: final run")
            expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=600), 0, f"{kind}: upload")
            fig = verify([spool], bucket, Expected(src.expected))
            check_spool_clean(spool)
            runs, parts, _ = spool_rows(spool)
            abandoned = sum(1 for r in runs if r["state"] == "abandoned")
            print(f"collector {kind}: {killed} kill -9 mid-run (a run takes {full:.1f} s), "
                  f"{abandoned} runs abandoned and cleaned by recovery, in {time.time() - t1:.0f} s; {fig}",
                  flush=True)
            kills_total += killed
            total.add(fig)
        finally:
            src.drop()
    return kills_total, total


def test():
    rng = seeded_random()
    d = tempdir("crashs3")
    ok, why = s3_available()
    if ok:
        ukills, ufig = uploader_loop(d, rng)
    else:
        print(f"uploader loop skipped: {why}")
        ukills, ufig = 0, Figures()
    ckills, cfig = collector_loop(d, rng)
    print(f"crash loops: {ukills} uploader kills (S3, multipart) + {ckills} collector kills "
          f"(MariaDB, PostgreSQL, FerretDB); objects {ufig.objects + cfig.objects}, rows "
          f"{ufig.rows + cfig.rows} checked, rows lost {ufig.lost + cfig.lost}, duplicates "
          f"{ufig.dups + cfig.dups}, corrupt objects {ufig.corrupt + cfig.corrupt}")
    subprocess.run(["rm", "-rf", d])
    if not ok:
        sys.exit(77) if ckills == 0 else None


if __name__ == "__main__":
    main(test)
