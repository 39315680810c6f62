#!/usr/bin/python3
"""Retention: when an uploaded segment's file is deleted, and that it is
never deleted while its `uploaded` mark could still be lost.

- RETENTION=0: the worker that uploaded a batch deletes its files soon after
  recording it (once 4 MiB of them wait), while the other segments are still
  being sent (not the main thread after the whole pass). Shown with a kill at
  upload.before_put of the 5th segment (failpoints build): of the 4 segments
  recorded uploaded by then at least 2 are already gone from the spool, every
  other file is there; after a restart the bucket verifies (nothing lost or
  doubled).
- The durable point: uploader connections commit without the WAL fsync, so
  before any segment file is unlinked the WAL must have been fsynced since the
  last write to it. Checked on an strace of the uploader (one worker) for
  every unlink under data/, RETENTION=0 and RETENTION>0 alike.
- RETENTION>0 keeps the files through the upload; a later pass after the
  retention time deletes them.

The strace part is skipped when strace is missing, the kill part when the
binary has no failpoints; the test skips (77) only when both are missing.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

from ingesta_test import check, main, tempdir, write_config
from rel_common import FileBucket, expect_rc, failpoints_built, ingesta_env, make_sqlite, run_ingesta, verify

INGESTA = os.environ.get("INGESTA", "build/ingesta")


def pipeline(d, name, settings):
    src = os.path.join(d, name + ".db")
    # Rows of 6,000 random hex characters: each 1,000-row segment is over
    # the uploader's 2 MiB claim size even compressed, so every segment is
    # its own claim and its own `uploaded` commit.
    expected = make_sqlite(src, {"t": (9000, 6000)})
    bucket = FileBucket(os.path.join(d, name + "-bucket"))
    spool = os.path.join(d, name + "-spool")
    cfg = write_config(os.path.join(d, name + ".env"),
                       dict({"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool,
                             "S3_BUCKET": bucket.url, "SEGMENT_MAX_ROWS": "1000",
                             "UPLOAD_CONCURRENCY": "1", "LOG_LEVEL": "info"}, **settings))
    expect_rc(run_ingesta(["collect", "--config", cfg]), 0, f"{name}: collect")
    return spool, bucket, cfg, expected


def segment_rows(spool):
    db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True)
    rows = db.execute("SELECT path, state, file_deleted_at FROM segments ORDER BY id").fetchall()
    db.close()
    return [(p, s, fd, os.path.exists(os.path.join(spool, p))) for p, s, fd in rows]


def test_worker_deletes_during_the_pass(d):
    spool, bucket, cfg, expected = pipeline(d, "kill", {"RETENTION": "0"})
    segs = segment_rows(spool)
    check(len(segs) == 9, f"9 segments sealed, got {len(segs)}")
    p = run_ingesta(["upload", "--once", "--config", cfg],
                    env=ingesta_env({"INGESTA_FAILPOINT": "upload.before_put", "INGESTA_FAILPOINT_SKIP": "4"}))
    check(p.returncode == -9 or "failpoint upload.before_put" in p.stderr,
          f"uploader killed at the 5th PUT: rc {p.returncode}, {p.stderr[-400:]}")
    segs = segment_rows(spool)
    uploaded = [s for s in segs if s[1] == "uploaded"]
    check(len(uploaded) == 4, f"4 segments recorded uploaded before the kill, got {len(uploaded)}")
    # Workers delete once 4 MiB of uploaded files wait (one WAL fsync per
    # deletion batch): these ~3 MiB segments go two by two. Before this
    # change every file stayed until the pass was over.
    gone = [s for s in uploaded if not s[3]]
    check(len(gone) >= 2, f"uploaded before the kill but still in the spool: "
          f"{[s[0] for s in uploaded if s[3]]}")
    for path, _, deleted_at, exists in uploaded:
        check(exists == (deleted_at is None), f"{path}: file {'present' if exists else 'gone'}, "
              f"file_deleted_at {deleted_at}")
    for path, state, deleted_at, exists in segs:
        if state != "uploaded":
            check(exists and deleted_at is None, f"{path} ({state}): file must stay until uploaded")
    expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, "upload after the kill")
    fig = verify([spool], bucket, expected)
    check(all(not s[3] for s in segment_rows(spool)), "every file deleted after the drain")
    print(f"  kill at the 5th PUT: {len(gone)} of the 4 uploaded files already deleted, 5 kept; "
          f"after restart {fig.rows} rows verified")


def unlinks_after_unsynced_wal(trace, spool):
    """Scan an strace -f -y log: every unlink of a file under data/ must come
    after a sync of spool.db-wal with no write to the WAL in between."""
    wal = os.path.join(spool, "spool.db-wal")
    data = os.path.join(spool, "data") + "/"
    dirty, bad, unlinks = False, [], 0
    for line in trace.splitlines():
        m = re.search(r"(pwrite64|write|fdatasync|fsync)\((\d+)<([^>]*)>", line)
        if m and m.group(3) == wal:
            dirty = m.group(1) in ("pwrite64", "write")
            continue
        m = re.search(r'unlink(?:at)?\((?:AT_FDCWD, )?"([^"]+)"', line)
        if m and m.group(1).startswith(data):
            unlinks += 1
            if dirty:
                bad.append(m.group(1))
    return unlinks, bad


def test_durable_before_unlink(d, retention):
    spool, bucket, cfg, expected = pipeline(d, f"trace{retention}", {"RETENTION": str(retention)})
    trace = os.path.join(d, f"trace{retention}.txt")
    if retention:
        # Upload, wait out the retention, then a second pass deletes.
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, "upload")
        check(all(s[3] for s in segment_rows(spool)), f"RETENTION={retention}: files kept after upload")
        time.sleep(retention + 0.5)
    env = ingesta_env()
    p = subprocess.run(["strace", "-f", "-y", "-qq", "-o", trace, "-e", "trace=pwrite64,write,fdatasync,fsync,"
                        "unlink,unlinkat", INGESTA, "upload", "--once", "--config", cfg],
                       env=env, capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"upload under strace: rc {p.returncode}: {p.stderr[-400:]}")
    with open(trace) as f:
        unlinks, bad = unlinks_after_unsynced_wal(f.read(), spool)
    check(unlinks == 9, f"RETENTION={retention}: 9 segment files unlinked, saw {unlinks}")
    check(not bad, f"RETENTION={retention}: unlinked while the WAL held unsynced commits: {bad[:3]}")
    verify([spool], bucket, expected)
    print(f"  RETENTION={retention}: {unlinks} unlinks, each after a WAL fsync")


def run():
    have_strace = shutil.which("strace") is not None
    have_fp = failpoints_built()
    if not have_strace and not have_fp:
        print("SKIP: neither strace nor a failpoints build")
        sys.exit(77)
    d = tempdir("retention")
    if have_fp:
        test_worker_deletes_during_the_pass(d)
    else:
        print("  (no failpoints in this build: the kill part is skipped)")
    if have_strace:
        test_durable_before_unlink(d, 0)
        test_durable_before_unlink(d, 2)
    else:
        print("  (no strace: the durable-point part is skipped)")
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main(run)
