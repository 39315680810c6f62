#!/usr/bin/python3
"""SQLite source -> spool -> file:// bucket, end to end, no servers.

Checks the golden cases byte for byte (extract and the full pipeline), the demo
against its source read with the sqlite3 CLI, key layout settings, segment
rolling, the inotify-driven daemon, and configuration/source errors.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from ingesta_test import (GOLDEN, bucket_files, bucket_rows, check, clean_env, commit_records,
                          data_files, main, read_object, run, spool_db, tempdir, write_config)


def sqlite_cli_rows(db, table):
    """Rows as the sqlite3 CLI prints them (-json), blobs decoded like BINARY_MODE=utf8."""
    out = subprocess.run(["sqlite3", "-json", db, f'SELECT * FROM "{table}" ORDER BY rowid'],
                         check=True, capture_output=True).stdout
    text = out.decode("utf-8", errors="replace").strip()
    return json.loads(text) if text else []


def load_golden(d):
    db = os.path.join(d, "golden.db")
    with open(os.path.join(GOLDEN, "sqlite.sql"), "rb") as f:
        subprocess.run(["sqlite3", db], stdin=f, check=True)
    return db


def test_golden(d):
    db = load_golden(d)
    want = open(os.path.join(GOLDEN, "sqlite.ndjson"), "rb").read()
    cfg = write_config(os.path.join(d, "g.env"), {"DB_TYPE": "sqlite", "SQLITE_PATH": db})
    p = subprocess.run([os.environ["INGESTA"], "extract", "--config", cfg, "--table", "golden_types"],
                       capture_output=True, env=clean_env(), check=True)
    check(p.stdout == want, f"extract differs from golden:\n{p.stdout!r}\n{want!r}")

    bucket = os.path.join(d, "bucket")
    cfg = write_config(os.path.join(d, "g2.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": db, "SPOOL_DIR": os.path.join(d, "spool"),
        "S3_BUCKET": "file://" + bucket})
    run(["collect", "--config", cfg])
    run(["upload", "--once", "--config", cfg])
    files = data_files(bucket)
    check(len(files) == 1 and files[0].endswith(".json.zst"), f"objects: {files}")
    got = read_object(os.path.join(bucket, files[0]))
    check(got == want, "uploaded object differs from golden")
    # The commit record lists that object with its SHA-256 (docs/COMMIT_LOG.md).
    recs = list(commit_records(bucket).values())
    check(len(recs) == 1, f"commit records: {recs}")
    rec = recs[0]
    raw = open(os.path.join(bucket, files[0]), "rb").read()
    check(rec["table_name"] == "golden_types" and rec["rows"] == want.count(b"\n") and
          [o["key"] for o in rec["objects"]] == [files[0]] and
          rec["objects"][0]["sha256"] == hashlib.sha256(raw).hexdigest(),
          f"commit record does not describe the object: {rec}")
    print("golden: extract and pipeline byte-exact")


def test_demo(d):
    p = subprocess.run([os.environ["INGESTA"], "demo"], cwd=d, capture_output=True, text=True,
                       env=clean_env(), timeout=120)
    check(p.returncode == 0, f"demo failed: {p.stderr}")
    check("extraction complete: 3 tables, 37 rows" in p.stderr, "summary line missing")
    bucket = os.path.join(d, "demo-bucket")
    src = os.path.join(d, "demo-source.db")
    for table, n in (("users", 10), ("orders", 15), ("products", 12)):
        want = sqlite_cli_rows(src, table)
        got = bucket_rows(bucket, table)
        check(len(want) == n and len(got) == n, f"{table}: {len(got)} rows, source {len(want)}")
        check(sorted(got, key=lambda r: r["id"]) == sorted(want, key=lambda r: r["id"]),
              f"{table}: rows differ from the source")
        # Partition layout and manifest.
        keys = [f for f in bucket_files(bucket) if f.startswith(table + "/")]
        check(all("/year=" in k and "/month=" in k and "/day=" in k for k in keys), f"{keys}")
        manifests = [k for k in keys if os.path.basename(k).startswith("_manifest-")]
        check(len(manifests) == 1, f"{table}: manifests {manifests}")
        man = json.load(open(os.path.join(bucket, manifests[0])))
        check(man["rows"] == n and man["table"] == table, f"manifest {man}")
        for f in man["files"]:
            data = open(os.path.join(bucket, f["key"]), "rb").read()
            import hashlib
            check(hashlib.sha256(data).hexdigest() == f["sha256"], "manifest sha256")
    # Status shows everything uploaded and the spool files deleted (retention 0).
    st = subprocess.run([os.environ["INGESTA"], "status", "--json", "--set",
                         "SPOOL_DIR=" + os.path.join(d, "demo-spool")],
                        capture_output=True, text=True, env=clean_env(), check=True)
    doc = json.loads(st.stdout)
    check(doc["states"]["uploaded"]["segments"] == 3 and doc["states"]["uploaded"]["rows"] == 37,
          f"status: {doc['states']}")
    check(os.listdir(os.path.join(d, "demo-spool", "data")) == [], "spool data not cleaned")
    print("demo: 37 rows equal to the source (sqlite3 CLI), manifests verified")


def test_layout_settings(d):
    db = load_golden(d)
    bucket = os.path.join(d, "b2")
    spool = os.path.join(d, "s2")
    cfg = write_config(os.path.join(d, "l.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": db, "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
        "COMPRESSION": "none", "ENABLE_PARTITIONING": "false", "S3_PREFIX": "lake/raw/",
        "SEGMENT_MAX_ROWS": "1"})
    run(["collect", "--config", cfg])
    run(["upload", "--once", "--config", cfg])
    files = bucket_files(bucket)
    data = data_files(bucket)
    check(len(data) == 3, f"3 one-row segments expected: {files}")
    # The commit log honours S3_PREFIX too.
    check([f for f in files if "ingesta_runs" in f][0].startswith("lake/raw/ingesta_runs/year="),
          f"commit record outside S3_PREFIX: {files}")
    check(all(f.startswith("lake/raw/golden_types/") and f.endswith(".json") and "year=" not in f
              for f in data), f"layout: {files}")
    seqs = sorted(f.rsplit("-", 1)[1] for f in data)
    check(seqs == ["00001.json", "00002.json", "00003.json"], f"sequence numbers {seqs}")
    got = b"".join(read_object(os.path.join(bucket, f)) for f in sorted(data))
    check(got == open(os.path.join(GOLDEN, "sqlite.ndjson"), "rb").read(),
          "segments concatenated differ from golden")
    print("layout: prefix, no partitioning, plain .json, rolling by rows")


def test_filters(d):
    db = os.path.join(d, "f.db")
    subprocess.run(["sqlite3", db, "CREATE TABLE a_1(x); CREATE TABLE a_2(x); CREATE TABLE b(x);"
                    "INSERT INTO a_1 VALUES (1); INSERT INTO b VALUES (2);"], check=True)
    bucket = os.path.join(d, "fb")
    cfg = write_config(os.path.join(d, "f.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": db, "SPOOL_DIR": os.path.join(d, "fs"),
        "S3_BUCKET": "file://" + bucket, "INCLUDE_TABLES": "a_*, b", "EXCLUDE_TABLES": "a_2"})
    p = run(["collect", "--config", cfg])
    check("extraction complete: 2 tables, 2 rows" in p.stderr, p.stderr)
    run(["upload", "--once", "--config", cfg])
    tops = sorted({f.split("/")[0] for f in data_files(bucket)})
    check(tops == ["a_1", "b"], f"tables {tops}")
    print("filters: INCLUDE_TABLES / EXCLUDE_TABLES globs")


def test_daemon_inotify(d):
    db = load_golden(d)
    bucket = os.path.join(d, "db")
    cfg = write_config(os.path.join(d, "d.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": db, "SPOOL_DIR": os.path.join(d, "ds"),
        "S3_BUCKET": "file://" + bucket, "RESCAN_INTERVAL": "600"})
    up = subprocess.Popen([os.environ["INGESTA"], "upload", "--config", cfg], env=clean_env(),
                          stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        run(["collect", "--config", cfg])
        t0 = time.time()
        while time.time() - t0 < 10:
            if any(os.path.basename(f).startswith("_manifest") for f in bucket_files(bucket)):
                break
            time.sleep(0.1)
        waited = time.time() - t0
        check(waited < 10, "daemon did not upload within 10 s (inotify wake-up broken?)")
        print(f"daemon: uploaded {waited:.2f} s after the collector committed (rescan 600 s)")
    finally:
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=20)
    check(rc == 0, f"uploader exit {rc} after SIGTERM")


def test_errors(d):
    p = run(["collect", "--set", "DB_TYPE=sqlite", "--set", "SQLITE_PATH=/nonexistent/x.db",
             "--set", "SPOOL_DIR=" + os.path.join(d, "es"), "--set", "S3_BUCKET=file:///tmp/x"],
            check_rc=3)
    check("sqlite /nonexistent/x.db: cannot open" in p.stderr, p.stderr)
    cfg = write_config(os.path.join(d, "bad.env"), {"DB_TYPE": "sqlite", "ZSTD_LEVEL": "fast"})
    p = run(["collect", "--config", cfg], check_rc=2)
    check('ZSTD_LEVEL: not a number: "fast"' in p.stderr, p.stderr)
    p = run(["collect", "--set", "DB_TYPE=sqlite", "--set", "SQLITE_PATH=/tmp/x.db"], check_rc=2)
    check("S3_BUCKET: not set" in p.stderr, p.stderr)
    print("errors: missing source (3), bad value (2), missing bucket (2)")


def all_tests():
    d = tempdir("sqlite")
    for t in (test_golden, test_demo, test_layout_settings, test_filters, test_daemon_inotify,
              test_errors):
        sub = os.path.join(d, t.__name__)
        os.makedirs(sub)
        t(sub)


if __name__ == "__main__":
    main(all_tests)
