#!/usr/bin/python3
"""A full disk and a full spool quota: clear errors, nothing corrupted, nothing lost.

The spool lives on a small tmpfs (mount -t tmpfs -o size=8m; needs root,
skipped with exit 77 otherwise); the bucket (file://) and sources live outside.

1. Disk full while writing segments: the uploader is behind, a run no longer
   fits; the collector stops with exit 4 and a message naming the spool and
   ENOSPC; spool.db passes PRAGMA integrity_check; the tables committed before
   the failure upload; after the uploader frees the space the next run
   completes.
2. The spool DB itself hits ENOSPC: the file system is filled with a filler
   file, leaving 0 B .. 1 MiB free (a sweep, so the failure lands on the WAL
   append of different transactions: run row, segment insert, partition
   commit); every collect exits 0 or 4 with a clear message, never corrupts
   spool.db, never uploads a partial table; after the filler is gone the next
   run completes and everything verifies.
3. The quota (SPOOL_MAX_BYTES): exit 4 with "is full ... SPOOL_MAX_BYTES",
   committed tables upload, the next run after the drain completes.
4. SPOOL_FULL_ACTION=wait: the collector waits (logging once) while the spool
   is over quota, an uploader drains it, the collector finishes with exit 0.

DISK_FULL_SWEEP: number of free-space amounts tried in 2 (default 6).
"""
import os
import sqlite3
import subprocess
import sys
import time

from ingesta_test import TestFailure, check, main, tempdir, write_config
from rel_common import (FileBucket, expect_rc, make_sqlite, run_ingesta, spawn,
                        stop, verify, check_spool_clean, wait_for, Figures)

SWEEP = int(os.environ.get("DISK_FULL_SWEEP", "6"))
ISSUES = []
FREE_SIZES = [0, 8 << 10, 40 << 10, 100 << 10, 300 << 10, 1 << 20, 16 << 10, 200 << 10][:SWEEP]


class Tmpfs:
    def __init__(self, path, size="8m"):
        self.path = path
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                           capture_output=True, text=True)
        self.ok = p.returncode == 0
        self.err = p.stderr.strip()

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def umount(self):
        if self.ok:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.ok = False


def fill(path, leave):
    """Create a filler file leaving about `leave` bytes free; returns its path."""
    filler = os.path.join(path, "filler")
    with open(filler, "ab") as f:
        chunk = b"\0" * (1 << 16)
        while True:
            st = os.statvfs(path)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                break
            try:
                f.write(chunk[:max(4096, min(len(chunk), free - leave))])
                f.flush()
            except OSError:
                break
    return filler


def integrity(spool):
    db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True, timeout=30)
    try:
        r = db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()
    check(r == [("ok",)], f"spool.db integrity_check: {r[:5]}")


def setup(d, name, spool, tables, extra=None):
    src = os.path.join(d, name + ".db")
    expected = make_sqlite(src, tables)
    bucket = FileBucket(os.path.join(d, name + "-bucket"))
    settings = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "S3_BUCKET": bucket.url,
                "COMPRESSION": "none", "SEGMENT_MAX_BYTES": "512K"}
    settings.update(extra or {})
    cfg = write_config(os.path.join(d, name + ".env"), settings)
    return cfg, expected, bucket


def collect(cfg, want=0, sets=()):
    args = ["collect", "--config", cfg]
    for s in sets:
        args += ["--set", s]
    return expect_rc(run_ingesta(args, timeout=300), want, "collect")


def upload(cfg, want=0):
    return expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), want, "upload --once")


def error_line(p, spool, what, quota=False):
    """The one-line error: names the spool and says the disk (or quota) is full."""
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("ingesta ")]
    check(line, f"{what}: no error line on stderr: {p.stderr[-800:]}")
    text = line[-1].replace(spool, "<spool>")
    check("<spool>" in text, f"{what}: the error does not name the spool: {line[-1]}")
    causes = ("is full",) if quota else ("No space left on device", "database or disk is full", "ENOSPC")
    check(any(c in text for c in causes),
          f"{what}: the error does not say the disk is full: {line[-1]}")
    return line[-1]


def committed_tables(spool, run_id=None):
    db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT run_id, table_name FROM partitions WHERE state='complete'").fetchall()
    finally:
        db.close()


def test_disk_full_segments(d, fs, out):
    spool = os.path.join(fs.path, "spool1")
    # ~1 MiB + ~4 MiB of text (COMPRESSION=none): one run fits in 8 MiB, two do not.
    cfg, expected, bucket = setup(d, "segs", spool, {"a_first": (1000, 1000), "b_big": (4000, 1000)})
    collect(cfg)  # run 1 fits; the uploader is "down"
    p = collect(cfg, want=4)  # run 2: a_first commits, b_big hits ENOSPC
    msg = error_line(p, spool, "disk full while writing segments")
    integrity(spool)
    tables = committed_tables(spool)
    check(len(tables) == 3, f"want run 1's two tables and run 2's a_first committed, got {tables}")
    upload(cfg)  # committed partitions still upload; RETENTION=0 frees the space
    collect(cfg)  # run 3 completes
    upload(cfg)
    fig = verify([spool], bucket, expected)
    check_spool_clean(spool)
    out.append(("disk full (segments)", 1, fig))
    print(f"disk full while writing segments: exit 4 \"{msg[:160]}\"; integrity ok; {fig}")


def test_db_enospc(d, fs, out):
    spool = os.path.join(fs.path, "spool2")
    cfg, expected, bucket = setup(d, "dbfull", spool, {"a_one": 50, "b_two": (300, 200), "c_three": 20},
                                  {"SEGMENT_MAX_ROWS": "100"})
    collect(cfg)
    upload(cfg)
    outcomes = {}
    msgs = set()
    for leave in FREE_SIZES:
        filler = fill(fs.path, leave)
        p = run_ingesta(["collect", "--config", cfg], timeout=300)
        check(p.returncode in (0, 4), f"collect with {leave} B free: exit {p.returncode}\n{p.stderr[-1500:]}")
        if p.returncode == 4:
            try:
                msgs.add(error_line(p, spool, f"collect with {leave} B free")[:200])
            except TestFailure as exc:
                ISSUES.append(str(exc))
        # The uploader may run on a full disk too (it writes the DB): never corrupt.
        pu = run_ingesta(["upload", "--once", "--config", cfg], timeout=300)
        check(pu.returncode in (0, 4, 5), f"upload with {leave} B free: exit {pu.returncode}\n{pu.stderr[-1500:]}")
        if pu.returncode == 4:
            try:
                msgs.add(error_line(pu, spool, f"upload with {leave} B free")[:200])
            except TestFailure as exc:
                ISSUES.append(str(exc))
        os.unlink(filler)
        integrity(spool)
        outcomes[leave] = (p.returncode, pu.returncode)
        # Nothing partial may have reached the bucket, whatever happened.
        verify([spool], bucket, expected, all_uploaded=False)
    collect(cfg)
    upload(cfg)
    fig = verify([spool], bucket, expected)
    check_spool_clean(spool)
    out.append(("spool DB ENOSPC", len(FREE_SIZES), fig))
    print(f"spool DB on a full file system: {len(FREE_SIZES)} fill levels "
          f"(collect, upload exit codes by bytes free: {outcomes}); messages: {sorted(msgs)}; "
          f"integrity ok after each; then {fig}")


def test_quota(d, fs, out):
    spool = os.path.join(d, "spool-quota")
    cfg, expected, bucket = setup(d, "quota", spool, {"a_first": (400, 1000), "b_second": (800, 1000)},
                                  {"SPOOL_MAX_BYTES": "1536K", "SEGMENT_MAX_BYTES": "256K"})
    collect(cfg)  # 1.2 MiB: fits
    p = collect(cfg, want=4)
    line = [error_line(p, spool, "quota", quota=True)]
    check("SPOOL_MAX_BYTES" in line[-1], f"quota: the error does not name the key: {line[-1]}")
    integrity(spool)
    upload(cfg)
    collect(cfg)
    upload(cfg)
    fig = verify([spool], bucket, expected)
    check_spool_clean(spool)
    out.append(("quota SPOOL_MAX_BYTES", 1, fig))
    print(f"quota: exit 4 \"{line[-1][:200]}\"; then {fig}")
    # SPOOL_FULL_ACTION=wait: over quota, the collector waits for an uploader.
    collect(cfg)  # spool holds 1.2 MiB again, not uploaded
    log = os.path.join(d, "wait.log")
    c = spawn(["collect", "--config", cfg, "--set", "SPOOL_FULL_ACTION=wait"], log=log)
    wait_for(lambda: "waiting for the uploader" in open(log, errors="replace").read() or c.poll() is not None,
             60, "the collector to report that it waits")
    check(c.poll() is None, f"collector with SPOOL_FULL_ACTION=wait exited {c.returncode} instead of waiting: "
                            f"{open(log, errors='replace').read()[-800:]}")
    time.sleep(2)
    check(c.poll() is None, "collector stopped waiting without an uploader")
    up = spawn(["upload", "--config", cfg])
    try:
        wait_for(lambda: c.poll() is not None, 120, "the waiting collector to finish after the drain")
        check(c.returncode == 0, f"waiting collector exited {c.returncode}: {open(log, errors='replace').read()[-800:]}")
    finally:
        if c.poll() is None:
            c.kill()
        stop(up)
    upload(cfg)
    fig = verify([spool], bucket, expected)
    check_spool_clean(spool)
    out.append(("SPOOL_FULL_ACTION=wait", 1, fig))
    print(f"SPOOL_FULL_ACTION=wait: collector waited while over quota, finished after the uploader "
          f"drained; {fig}")


def test():
    d = tempdir("diskfull")
    fs = Tmpfs(os.path.join(d, "tmpfs"))
    out = []
    try:
        if not fs.ok:
            print(f"SKIP: cannot mount a tmpfs ({fs.err}); needs root")
            sys.exit(77)
        test_disk_full_segments(d, fs, out)
        test_db_enospc(d, fs, out)
    finally:
        fs.umount()
    test_quota(d, fs, out)
    total = Figures()
    for _, _, f in out:
        total.add(f, ("rows", "objects", "lost", "dups", "corrupt"))
    print(f"disk full: {len(out)} scenarios, {sum(n for _, n, _ in out)} faults injected, "
          f"{total.objects} objects and {total.rows} rows checked, rows lost {total.lost}, "
          f"duplicates {total.dups}, corrupt objects {total.corrupt}")
    subprocess.run(["rm", "-rf", d])
    check(not ISSUES, "unclear errors (everything else passed):\n  " + "\n  ".join(sorted(set(ISSUES))))


if __name__ == "__main__":
    main(test)
