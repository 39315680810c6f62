#!/usr/bin/python3
"""valgrind memcheck over the real commands: no invalid reads or writes, no
uninitialised values, no definite leaks.

Each command runs under
  valgrind --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite
and must exit as it does natively (99 = valgrind found an error):
- `ingesta demo` (bundled SQLite -> spool -> file:// bucket);
- a short S3 upload to MinIO: `collect` from SQLite, then `upload --once`
  (PutObject segments, one multipart segment of 3 parts, manifests), then
  `status --json`, then a second run uploaded through the S3 fault proxy
  (500s, lost answers, flipped bytes: the retry paths);
- `collect` of a small table from MariaDB, PostgreSQL and FerretDB.
Prints per command: valgrind errors, definitely/indirectly lost bytes, time.
Skipped (77) without valgrind. VALGRIND_SERVERS=0 skips the server sources.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (Expected, S3Bucket, ServerSource, ingesta_env, make_sqlite, s3_available,
                        s3_settings, verify, FileBucket)

VALGRIND = ["valgrind", "--tool=memcheck", "--leak-check=full", "--error-exitcode=99",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--track-origins=yes",
            "--num-callers=30", "--trace-children=no"]
RESULTS = []


def vg(what, args, cwd=None, want=0, timeout=1200):
    log = os.path.join(tempdir("vglog"), "vg.log")
    t0 = time.time()
    p = subprocess.run(VALGRIND + [f"--log-file={log}", os.environ["INGESTA"]] + args, cwd=cwd,
                       env=ingesta_env(), capture_output=True, text=True, timeout=timeout)
    took = time.time() - t0
    text = open(log, errors="replace").read()
    errors = int(re.search(r"ERROR SUMMARY: (\d+) errors", text).group(1))
    definite = re.search(r"definitely lost: ([\d,]+) bytes", text)
    indirect = re.search(r"indirectly lost: ([\d,]+) bytes", text)
    definite = int(definite.group(1).replace(",", "")) if definite else 0
    indirect = int(indirect.group(1).replace(",", "")) if indirect else 0
    RESULTS.append((what, errors, definite, indirect, took))
    print(f"valgrind {what}: exit {p.returncode}, {errors} errors, definitely lost {definite} B, "
          f"indirectly lost {indirect} B, {took:.0f} s", flush=True)
    check(p.returncode != 99 and errors == 0 and definite == 0,
          f"valgrind {what}: {errors} errors, {definite} bytes definitely lost:\n{text[-6000:]}")
    check(p.returncode == want, f"valgrind {what}: exit {p.returncode}, wanted {want}\n{p.stderr[-2000:]}")
    return p


def test():
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind not installed (apt-get install valgrind)")
        sys.exit(77)
    d = tempdir("valgrind")
    vg("demo", ["demo"], cwd=d)
    check(os.path.isdir(os.path.join(d, "demo-bucket")), "demo wrote no bucket")
    ok, why = s3_available()
    if ok:
        bucket = S3Bucket(f"rel-vg-{uuid.uuid4().hex[:8]}")
        try:
            src = os.path.join(d, "s3.db")
            expected = Expected(make_sqlite(src, {"small": 300, "big": (1800, 6000), "empty": 0}))
            s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": os.path.join(d, "s3-spool"),
                 "COMPRESSION": "none", "SEGMENT_MAX_BYTES": "12M", "MULTIPART_THRESHOLD": "5M",
                 "MULTIPART_PART_SIZE": "5M", "UPLOAD_CONCURRENCY": "2"}
            s.update(s3_settings(bucket.name))
            cfg = write_config(os.path.join(d, "s3.env"), s)
            vg("collect (SQLite)", ["collect", "--config", cfg])
            vg("upload --once (S3: PutObject + 3-part multipart + manifests)", ["upload", "--once", "--config", cfg])
            vg("status --json", ["status", "--json", "--config", cfg])
            # The error paths too: a second run through the fault proxy
            # (500s, lost answers, a flipped byte), retried until done.
            from rel_common import fault_proxy, servers_env
            fp = fault_proxy(servers_env()["MINIO_ENDPOINT"], [
                {"fault": "500", "p": 0.15}, {"fault": "drop_after", "p": 0.1},
                {"fault": "flip", "p": 0.15, "kinds": ["put_object", "upload_part"]}], seed=7)
            try:
                s2 = dict(s, S3_ENDPOINT=fp.url, RETRY_BASE="50ms", RETRY_CAP="200ms", MAX_ATTEMPTS="50")
                cfg2 = write_config(os.path.join(d, "s3f.env"), s2)
                vg("collect (SQLite, run 2)", ["collect", "--config", cfg2])
                vg("upload --once under S3 faults", ["upload", "--once", "--config", cfg2])
                print(f"valgrind: fault proxy {fp.summary()}")
            finally:
                fp.stop()
            fig = verify([s["SPOOL_DIR"]], bucket, expected)
            print(f"valgrind S3 upload result: {fig}")
        finally:
            bucket.destroy()
    else:
        print(f"S3 upload under valgrind skipped: {why}")
    if os.environ.get("VALGRIND_SERVERS", "1") != "0":
        for kind in ("mysql", "postgresql", "mongodb"):
            src = ServerSource(kind, {"t": 2000, "u": 10}, prefix="relvg")
            try:
                s = src.settings()
                bucket = FileBucket(os.path.join(d, kind + "-bucket"))
                s.update({"SPOOL_DIR": os.path.join(d, kind + "-spool"), "S3_BUCKET": bucket.url,
                          "SEGMENT_MAX_ROWS": "700"})
                cfg = write_config(os.path.join(d, kind + ".env"), s)
                vg(f"collect ({kind})", ["collect", "--config", cfg])
                vg(f"upload --once (file://, {kind})", ["upload", "--once", "--config", cfg])
                verify([s["SPOOL_DIR"]], bucket, Expected(src.expected))
            finally:
                src.drop()
    print(f"valgrind: {len(RESULTS)} commands under memcheck, "
          f"{sum(r[1] for r in RESULTS)} errors, {sum(r[2] for r in RESULTS)} bytes definitely lost, "
          f"{sum(r[4] for r in RESULTS):.0f} s")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
