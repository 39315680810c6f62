#!/usr/bin/python3
"""Operating ingesta: status, list, replay, verify, gc, metrics, signals, sd_notify.

Every spool here is built by the real pipeline (SQLite source -> spool -> file://
bucket) with failures injected from outside: a spooled file corrupted on disk
(quarantine), a different object already at a segment's key (Conflict -> failed),
a bucket path below a regular file (the target cannot be opened -> failed), a
collector stopped mid-table (pending). Results are read back with the sqlite3
module, the zstd CLI, prometheus_client's text parser and a JSON Schema validator.
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from ingesta_test import (INGESTA, SOURCE_ROOT, bucket_files, bucket_rows, check, clean_env,
                          main, run, spool_db, tempdir, write_config)


# ----------------------------------------------------------------- helpers

def apt_import(module, package):
    """Import a module from Debian's python3 packages, installing it when missing."""
    try:
        return __import__(module)
    except ImportError:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True)
        try:
            return __import__(module)
        except ImportError:
            return None


def validate(doc, schema, root=None, path="$"):
    """A small JSON Schema validator (the subset docs/status.schema.json uses)."""
    root = root or schema
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return validate(doc, node, root, path)
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        pytypes = {"object": dict, "array": list, "string": str, "boolean": bool,
                   "null": type(None)}
        ok = False
        for t in types:
            if t == "integer":
                ok = ok or (isinstance(doc, int) and not isinstance(doc, bool))
            else:
                ok = ok or isinstance(doc, pytypes[t])
        check(ok, f"{path}: {doc!r} is not {types}")
    if "enum" in schema:
        check(doc in schema["enum"], f"{path}: {doc!r} not in {schema['enum']}")
    if "minimum" in schema and isinstance(doc, int):
        check(doc >= schema["minimum"], f"{path}: {doc} < {schema['minimum']}")
    if isinstance(doc, dict):
        for k in schema.get("required", []):
            check(k in doc, f"{path}: missing {k}")
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = set(doc) - set(props)
            check(not extra, f"{path}: unexpected {sorted(extra)}")
        for k, v in doc.items():
            if k in props:
                validate(v, props[k], root, f"{path}.{k}")
    if isinstance(doc, list):
        if "maxItems" in schema:
            check(len(doc) <= schema["maxItems"], f"{path}: more than {schema['maxItems']}")
        for i, item in enumerate(doc):
            validate(item, schema.get("items", {}), root, f"{path}[{i}]")


SCHEMA = json.load(open(os.path.join(SOURCE_ROOT, "docs", "status.schema.json")))
JSONSCHEMA = apt_import("jsonschema", "python3-jsonschema")


def status_json(cfg, env=None):
    p = run(["status", "--json", "--config", cfg], env=env)
    doc = json.loads(p.stdout)
    validate(doc, SCHEMA)
    if JSONSCHEMA is not None:
        JSONSCHEMA.validate(doc, SCHEMA)
    return doc


def make_source(path, tables, rows):
    """A SQLite source with `rows` rows (id, payload) in each of `tables`."""
    db = sqlite3.connect(path)
    for t in tables:
        db.execute(f'CREATE TABLE "{t}" (id INTEGER PRIMARY KEY, payload TEXT)')
        db.executemany(f'INSERT INTO "{t}" VALUES (?, ?)',
                       ((i, f"{t}-row-{i}") for i in range(1, rows + 1)))
    db.commit()
    db.close()
    return path


def config(d, name, **settings):
    base = {"DB_TYPE": "sqlite", "SPOOL_DIR": os.path.join(d, "spool"),
            "S3_BUCKET": "file://" + os.path.join(d, "bucket"), "SEGMENT_MAX_ROWS": "10",
            "RETRY_BASE": "0", "LOG_LEVEL": "WARNING"}
    base.update(settings)
    return write_config(os.path.join(d, name), base)


def db_rows(spool, sql, args=()):
    with spool_db(spool) as db:
        return db.execute(sql, args).fetchall()


def states_from_db(spool):
    """Segments/bytes/rows per state, read with the sqlite3 module (not ingesta)."""
    out = {s: {"segments": 0, "bytes": 0, "rows": 0}
           for s in ("pending", "sealed", "uploading", "uploaded", "failed", "quarantined")}
    for state, n, b, r in db_rows(spool, "SELECT state, count(*), coalesce(sum(bytes),0), "
                                  "coalesce(sum(rows),0) FROM segments GROUP BY state"):
        out[state] = {"segments": n, "bytes": b, "rows": r}
    return out


def assert_bucket_exactly(bucket, table, ids):
    rows = bucket_rows(bucket, table)
    got = sorted(r["id"] for r in rows)
    check(got == sorted(ids), f"{table}: bucket has {len(got)} rows "
          f"({len(set(got))} distinct), wanted {len(ids)} exactly once")


def wait_for(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if cond():
                return time.time() - t0
        except sqlite3.OperationalError:
            pass  # the spool is being created/migrated right now; look again
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def stop_outside_transaction(proc, spool):
    """SIGSTOP a collector at a moment it holds no write lock on spool.db (a
    process frozen inside a transaction would block every other writer)."""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.02)
        db = sqlite3.connect(os.path.join(spool, "spool.db"), timeout=0.1)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        finally:
            db.close()
    raise AssertionError("could not stop the collector outside a transaction")


# ------------------------------------------------------------------- tests

def test_every_state(d):
    """status/list/replay/verify/gc over a spool with every kind of trouble."""
    src = make_source(os.path.join(d, "src.db"), ["a", "b", "c"], 50)
    big = make_source(os.path.join(d, "big.db"), ["big"], 300000)
    spool = os.path.join(d, "spool")
    bucket = os.path.join(d, "bucket")
    good = config(d, "good.env", SQLITE_PATH=src, SOURCE_NAME="good")
    # A bucket below a regular file: the target cannot be created (permanent).
    open(os.path.join(d, "afile"), "w").close()
    broken = config(d, "broken.env", SQLITE_PATH=src, SOURCE_NAME="broken",
                    INCLUDE_TABLES="b", S3_BUCKET="file://" + os.path.join(d, "afile", "bkt"))
    run(["collect", "--config", good])
    run(["collect", "--config", broken])
    segs = db_rows(spool, "SELECT id, path, key, table_name, source FROM segments ORDER BY id")
    check(len(segs) == 20, f"{len(segs)} segments")
    a = [s for s in segs if s[3] == "a"]
    # 1. a sealed file corrupted on disk, found by `verify` before any upload.
    with open(os.path.join(spool, a[0][1]), "ab") as f:
        f.write(b"x")
    # 3. a different object already at a key: permanent Conflict.
    conflict = os.path.join(bucket, a[2][2])
    os.makedirs(os.path.dirname(conflict))
    open(conflict, "w").write("someone else's object\n")

    p = run(["verify", "--config", good], check_rc=6)
    check("quarantined now" in p.stdout and f"#{a[0][0]} " in p.stdout, p.stdout)
    check(db_rows(spool, "SELECT state FROM segments WHERE id=?", (a[0][0],))[0][0]
          == "quarantined", "verify did not quarantine")
    # 2. another corrupted, left for the uploader to find (quarantine).
    p2 = os.path.join(spool, a[1][1])
    original = open(p2, "rb").read()
    open(p2, "wb").write(original[:-1] + bytes([original[-1] ^ 1]))

    # 4. a collector stopped mid-table: its segments are pending.
    coll = subprocess.Popen([INGESTA, "collect", "--config",
                             config(d, "big.env", SQLITE_PATH=big, SOURCE_NAME="bigsrc",
                                    SEGMENT_MAX_ROWS="1000")],
                            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: db_rows(spool, "SELECT count(*) FROM segments WHERE state='pending'")
                 [0][0] >= 2, 60, "pending segments")
        stop_outside_transaction(coll, spool)
        run(["upload", "--once", "--config", good], check_rc=5)
        doc = status_json(good)
        want = states_from_db(spool)
        check(doc["states"] == want, f"status states {doc['states']} != DB {want}")
        check(want["pending"]["segments"] >= 2 and want["uploaded"]["segments"] == 12
              and want["failed"]["segments"] == 6 and want["quarantined"]["segments"] == 2,
              f"states {want}")
        codes = {e["id"]: e["code"] for e in doc["recent_errors"]}
        check(codes.get(a[1][0]) == "ChecksumMismatch" and codes.get(a[2][0]) == "Conflict",
              f"recent errors {codes}")
        check(any(e["code"] == "Config" and "afile" in e["message"]
                  for e in doc["recent_errors"]), f"{doc['recent_errors']}")
        tables = {(t["source"], t["table"]): t for t in doc["tables"]}
        check(tables[("good", "a")]["failed"] == 3 and tables[("broken", "b")]["failed"] == 5
              and tables[("bigsrc", "big")]["pending"] >= 2, f"tables {tables}")
        check(doc["oldest_not_uploaded_age_seconds"] is not None, "oldest age")
        human = run(["status", "--config", good]).stdout
        check("Conflict" in human and "ChecksumMismatch" in human and "quarantined" in human,
              human)
        print("status (human) with failures:\n" + human)

        p = run(["status", "--check", "--config", good], check_rc=6)
        check(p.stdout.count("\n") == 1 and p.stdout.startswith("UNHEALTHY: ")
              and "6 segment(s) failed, 2 quarantined" in p.stdout
              and "no uploader running" in p.stdout, p.stdout)

        # list: filters and JSON, against the DB.
        lst = json.loads(run(["list", "--json", "--config", good, "--state",
                              "failed,quarantined"]).stdout)
        want_ids = [r[0] for r in db_rows(spool, "SELECT id FROM segments WHERE state IN "
                                          "('failed','quarantined') ORDER BY id")]
        check([s["id"] for s in lst] == want_ids, f"list ids {[s['id'] for s in lst]}")
        check(len(json.loads(run(["list", "--json", "--config", good, "--source",
                                  "broken"]).stdout)) == 5, "list --source")
        check(len(json.loads(run(["list", "--json", "--config", good, "--table", "a",
                                  "--state", "uploaded"]).stdout)) == 2, "list --table")
        run(["list", "--config", good, "--state", "nonsense"], check_rc=2)
        check("pending" in run(["list", "--config", good, "--state", "pending"]).stdout, "")

        # verify and gc while a collector holds pending rows: pending untouched.
        pending_before = db_rows(spool, "SELECT id, state FROM segments WHERE "
                                 "state='pending' ORDER BY id")
        run(["verify", "--config", good], check_rc=6)
        run(["gc", "--config", good, "--older-than", "0"])
        check(db_rows(spool, "SELECT id, state FROM segments WHERE state='pending' "
                      "ORDER BY id") == pending_before, "pending rows touched")
        # replay of the wrong states is refused (exit 6), nothing changes.
        p = run(["replay", "--config", good, str(pending_before[0][0])], check_rc=6)
        check("it is pending" in p.stdout, p.stdout)
        run(["replay", "--config", good], check_rc=2)
    finally:
        coll.send_signal(signal.SIGCONT)
        coll.wait(timeout=300)
    check(coll.returncode == 0, f"collector after SIGCONT: {coll.stderr.read()}")

    # Quarantined with the file still corrupt: not replayed.
    p = run(["replay", "--config", good, str(a[1][0])], check_rc=6)
    check("still does not match" in p.stdout, p.stdout)
    # Repair the files: quarantined ones verify again and can be replayed.
    open(p2, "wb").write(original)
    with open(os.path.join(spool, a[0][1]), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(spool, a[0][1])) - 1)
    p = run(["verify", "--config", good, "--json"])
    v = json.loads(p.stdout)
    check(sorted(v["verifies_again"]) == [a[0][0], a[1][0]] and v["problems"] == [], f"{v}")
    p = run(["replay", "--config", good, str(a[0][0]), str(a[1][0])])
    check(p.stdout.count("re-queued #") == 2, p.stdout)
    # Fix the conflict and the broken bucket; replay everything failed.
    os.remove(conflict)
    os.remove(os.path.join(d, "afile"))
    os.mkdir(os.path.join(d, "afile"))
    p = run(["replay", "--all-failed", "--config", good])
    check("replay: 6 segment(s) re-queued" in p.stdout, p.stdout)
    run(["upload", "--once", "--config", good])
    doc = status_json(good)
    check(all(doc["states"][s]["segments"] == 0
                  for s in ("pending", "sealed", "uploading", "failed", "quarantined")),
          f"{doc['states']}")
    run(["status", "--check", "--no-uploader-check", "--config", good])
    run(["verify", "--config", good])
    for t in ("a", "c"):
        assert_bucket_exactly(bucket, t, range(1, 51))
    assert_bucket_exactly(os.path.join(d, "afile", "bkt"), "b", range(1, 51))
    assert_bucket_exactly(bucket, "b", range(1, 51))
    assert_bucket_exactly(bucket, "big", range(1, 300001))

    # gc: rows of uploaded segments go with their partitions and runs.
    before = os.path.getsize(os.path.join(spool, "spool.db"))
    p = run(["gc", "--config", good, "--json"])
    g = json.loads(p.stdout)
    check(g["segments_deleted"] == 0, f"gc with the 7d default deleted {g}")
    uploaded = db_rows(spool, "SELECT count(*) FROM segments")[0][0]
    g = json.loads(run(["gc", "--config", good, "--older-than", "0s", "--json"]).stdout)
    check(g["runs_deleted"] == 3 and g["segments_deleted"] == uploaded and g["vacuumed"],
          f"{g}")
    check(db_rows(spool, "SELECT count(*) FROM segments")[0][0] == 0
          and db_rows(spool, "SELECT count(*) FROM partitions")[0][0] == 0
          and db_rows(spool, "SELECT count(*) FROM runs")[0][0] == 0, "rows left after gc")
    check(os.listdir(os.path.join(spool, "data")) == [], "files left after gc")
    check(not os.path.exists(os.path.join(spool, "spool.db-wal"))
          or os.path.getsize(os.path.join(spool, "spool.db-wal")) == 0, "WAL not truncated")
    print(f"every state: status/list/verify/replay/gc; spool.db {before} -> "
          f"{os.path.getsize(os.path.join(spool, 'spool.db'))} bytes after gc")


def test_gc_drop_quarantined(d):
    src = make_source(os.path.join(d, "src.db"), ["t"], 30)
    cfg = config(d, "c.env", SQLITE_PATH=src)
    spool = os.path.join(d, "spool")
    run(["collect", "--config", cfg])
    sid, path = db_rows(spool, "SELECT id, path FROM segments ORDER BY id LIMIT 1")[0]
    with open(os.path.join(spool, path), "ab") as f:
        f.write(b"!")
    run(["upload", "--once", "--config", cfg], check_rc=5)
    # The partition lost a segment: no manifest may claim it is complete.
    run(["gc", "--config", cfg, "--older-than", "0", "--drop-quarantined"])
    run(["upload", "--once", "--config", cfg])
    check(not any("_manifest" in f for f in bucket_files(os.path.join(d, "bucket"))),
          "a manifest was written for a partition that lost a segment")
    check(db_rows(spool, "SELECT count(*) FROM segments WHERE id=?", (sid,))[0][0] == 0, "row")
    check(not os.path.exists(os.path.join(spool, path)), "quarantined file not deleted")
    run(["status", "--check", "--no-uploader-check", "--config", cfg])
    print("gc --drop-quarantined: row and file gone, no manifest for the damaged partition")


def test_concurrent(d):
    """status/list/verify/check in a loop while the uploader and a collector run."""
    src = make_source(os.path.join(d, "src.db"), ["x", "y"], 3000)
    cfg = config(d, "c.env", SQLITE_PATH=src, SEGMENT_MAX_ROWS="20", UPLOAD_CONCURRENCY="3")
    run(["collect", "--config", cfg])
    up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=clean_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    coll = subprocess.Popen([INGESTA, "collect", "--config", cfg], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = set()
    n = 0
    try:
        t0 = time.time()
        while time.time() - t0 < 60:
            doc = status_json(cfg)
            for s, v in doc["states"].items():
                if v["segments"]:
                    seen.add(s)
            json.loads(run(["list", "--json", "--config", cfg, "--state",
                            "sealed,uploading,pending"]).stdout)
            run(["verify", "--config", cfg])
            p = run(["status", "--check", "--config", cfg], check_rc=None)
            check(p.returncode in (0, 6) and p.stdout.count("\n") == 1, p.stdout + p.stderr)
            n += 1
            if (coll.poll() is not None and doc["states"]["uploaded"]["segments"] == 600
                    and n > 3):
                break
        check(coll.wait(timeout=60) == 0, f"collector: {coll.stderr.read()}")
        wait_for(lambda: status_json(cfg)["states"]["uploaded"]["segments"] == 600, 60,
                 "everything uploaded")
        p = run(["status", "--check", "--config", cfg])
        check("uploader running" in p.stdout, p.stdout)
    finally:
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=30)
    check(rc == 0, f"uploader exit {rc}: {up.stderr.read()}")
    for t in ("x", "y"):
        rows = bucket_rows(os.path.join(d, "bucket"), t)
        check(len(rows) == 6000 and len({r["id"] for r in rows}) == 3000,
              f"{t}: {len(rows)} rows, two full runs of 3000 expected")
    print(f"concurrent: {n} rounds of status/list/verify/check while uploading and "
          f"collecting (states seen: {sorted(seen)}), nothing lost or doubled")


def test_metrics(d):
    prom = apt_import("prometheus_client.parser", "python3-prometheus-client")
    check(prom is not None, "prometheus_client is not installable")
    from prometheus_client.parser import text_string_to_metric_families
    src = make_source(os.path.join(d, "src.db"), ["m", "n"], 100)
    mfile = os.path.join(d, "textfile", "ingesta.prom")
    os.makedirs(os.path.dirname(mfile))
    cfg = config(d, "c.env", SQLITE_PATH=src, METRICS_FILE=mfile, SPOOL_MAX_BYTES="5M",
                 MAX_ATTEMPTS="2", RESCAN_INTERVAL="1")
    spool = os.path.join(d, "spool")
    run(["collect", "--config", cfg])
    segs = db_rows(spool, "SELECT id, key FROM segments WHERE table_name='m' ORDER BY id")
    conflict = os.path.join(d, "bucket", segs[0][1])
    os.makedirs(os.path.dirname(conflict))
    open(conflict, "w").write("x\n")
    up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=clean_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def parse():
        text = open(mfile).read()
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {}
        for f in fams.values():
            for s in f.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return fams, samples

    try:
        wait_for(lambda: os.path.exists(mfile), 10, "the metrics file")
        first = parse()[1][("ingesta_metrics_timestamp_seconds", ())]
        wait_for(lambda: parse()[1][("ingesta_metrics_timestamp_seconds", ())] > first, 12,
                 "a refresh of the metrics file")
        wait_for(lambda: parse()[1][("ingesta_segments", (("state", "uploaded"),))] == 19, 20,
                 "19 uploads in the metrics")
    finally:
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=30)
    check(rc == 0, f"uploader exit {rc}")
    # After the stop the file was written a last time: compare with status --json.
    fams, s = parse()
    doc = status_json(cfg)
    for state, v in doc["states"].items():
        check(s[("ingesta_segments", (("state", state),))] == v["segments"]
              and s[("ingesta_segment_bytes", (("state", state),))] == v["bytes"],
              f"{state}: metrics and status disagree")
    check(s[("ingesta_spool_bytes", ())] == doc["spool_bytes"]
          and s[("ingesta_spool_quota_bytes", ())] == doc["quota_bytes"] == 5 * 1024 * 1024,
          "spool bytes/quota")
    check(s[("ingesta_uploads_total", ())] == doc["states"]["uploaded"]["segments"] == 19,
          "uploads_total")
    check(s[("ingesta_uploaded_bytes_total", ())] == doc["states"]["uploaded"]["bytes"],
          "uploaded bytes")
    check(s[("ingesta_upload_errors_total", (("code", "Conflict"),))] == 1, "errors by code")
    check(fams["ingesta_upload_duration_seconds"].type == "histogram", "histogram type")
    check(s[("ingesta_upload_duration_seconds_count", (("result", "ok"),))] == 19
          and s[("ingesta_upload_duration_seconds_bucket", (("le", "+Inf"), ("result", "ok")))]
          == 19 and s[("ingesta_upload_duration_seconds_count", (("result", "error"),))] == 1,
          "histogram counts")
    check(fams["ingesta_uploads"].type == "counter", "counter type")
    age = s[("ingesta_oldest_not_uploaded_age_seconds", ())]
    check(doc["oldest_not_uploaded_age_seconds"] - 6 <= age
          <= doc["oldest_not_uploaded_age_seconds"], "oldest age")
    check(os.listdir(os.path.dirname(mfile)) == ["ingesta.prom"], "temporary files left")
    print(f"metrics: {len(fams)} families parsed by prometheus_client, equal to status --json")


def test_sigterm_upload(d):
    n = 1500
    src = make_source(os.path.join(d, "src.db"), ["s"], n)
    cfg = config(d, "c.env", SQLITE_PATH=src, SEGMENT_MAX_ROWS="1", UPLOAD_CONCURRENCY="2")
    bucket = os.path.join(d, "bucket")
    spool = os.path.join(d, "spool")
    run(["collect", "--config", cfg])
    up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=clean_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.isdir(os.path.join(bucket, "s"))
             and len(bucket_files(os.path.join(bucket, "s"))) >= 50, 60, "first uploads")
    t0 = time.time()
    up.send_signal(signal.SIGTERM)
    rc = up.wait(timeout=15)
    took = time.time() - t0
    check(rc == 0, f"uploader exit {rc} after SIGTERM: {up.stderr.read()}")
    done = db_rows(spool, "SELECT count(*) FROM segments WHERE state='uploaded'")[0][0]
    left = db_rows(spool, "SELECT count(*) FROM segments WHERE state IN "
                   "('uploading', 'failed')")[0][0]
    check(left == 0, f"{left} segments uploading/failed after a graceful stop")
    objects = [f for f in bucket_files(bucket) if not os.path.basename(f).startswith("_")
               and not f.startswith(".ingesta-tmp")]
    check(len(objects) == done, f"{len(objects)} objects but {done} recorded uploaded")
    run(["upload", "--once", "--config", cfg])
    assert_bucket_exactly(bucket, "s", range(1, n + 1))
    uploads = db_rows(spool, "SELECT value FROM counters WHERE name='uploads_total'")[0][0]
    check(uploads == n, f"uploads_total {uploads}, {n} expected (no upload twice)")
    # An idle file:// bucket holds objects only: .ingesta-tmp/ goes when it is empty.
    tmpdir = os.path.join(bucket, ".ingesta-tmp")
    check(not os.path.exists(tmpdir),
          f"{tmpdir} left: {os.listdir(tmpdir) if os.path.isdir(tmpdir) else '(not a directory)'}")
    print(f"SIGTERM during uploads: exit 0 in {took:.2f} s with {done}/{n} uploaded; "
          f"restart finished, {n} rows exactly once")


def test_sigterm_collect(d):
    src = make_source(os.path.join(d, "src.db"), ["a_small"], 10)
    make_source(src, ["b_big"], 0)
    db = sqlite3.connect(src)
    db.execute("INSERT INTO b_big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 "
               "FROM n WHERE i < 1000000) SELECT i, printf('payload-%08d-%s', i, "
               "hex(randomblob(16))) FROM n")
    db.commit()
    db.close()
    cfg = config(d, "c.env", SQLITE_PATH=src, SEGMENT_MAX_ROWS="20000")
    spool = os.path.join(d, "spool")
    coll = subprocess.Popen([INGESTA, "collect", "--config", cfg], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(os.path.join(spool, "spool.db")) and db_rows(
        spool, "SELECT count(*) FROM segments WHERE table_name='b_big'")[0][0] >= 1, 120,
        "the big table's first segment")
    coll.send_signal(signal.SIGTERM)
    rc = coll.wait(timeout=30)
    err = coll.stderr.read()
    check(rc == 7, f"collector exit {rc} after SIGTERM (7 expected): {err}")
    check("stopped by signal" in err, err)
    check(db_rows(spool, "SELECT count(*) FROM segments WHERE table_name='b_big'")[0][0] == 0
          and db_rows(spool, "SELECT count(*) FROM partitions WHERE table_name='b_big'")[0][0]
          == 0, "the interrupted table left rows")
    check(db_rows(spool, "SELECT state FROM segments WHERE table_name='a_small'")
          == [("sealed",)], "the table committed before the signal is not intact")
    check(os.listdir(os.path.join(spool, "tmp")) == [], "temporary files left")
    check(db_rows(spool, "SELECT state FROM runs") == [("failed",)], "run state")
    p = run(["collect", "--config", cfg, "--set", "LOG_LEVEL=INFO"])
    check("extraction complete: 2 tables, 1000010 rows" in p.stderr, p.stderr)
    run(["upload", "--once", "--config", cfg])
    bucket = os.path.join(d, "bucket")
    assert_bucket_exactly(bucket, "b_big", range(1, 1000001))
    check(len(bucket_rows(bucket, "a_small")) == 20, "a_small: both runs committed it")
    print("collector SIGTERM mid-table: exit 7, table not committed, rerun complete")


def test_notify_and_sighup(d):
    src = make_source(os.path.join(d, "src.db"), ["t"], 10)
    log = os.path.join(d, "ingesta.log")
    cfg = config(d, "c.env", SQLITE_PATH=src, LOG_FILE=log, LOG_LEVEL="INFO")
    run(["collect", "--config", cfg])
    for name in (os.path.join(d, "notify.sock"), "@ingesta-test-%d" % os.getpid()):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("\0" + name[1:] if name.startswith("@") else name)
        sock.settimeout(10)
        env = clean_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000"})
        up = subprocess.Popen([INGESTA, "upload", "--config", cfg], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        got = []
        try:
            t0 = time.time()
            while time.time() - t0 < 10 and got.count("WATCHDOG=1") < 3:
                got.append(sock.recv(4096).decode())
            check(got and got[0] == "READY=1", f"first message {got[:1]}")
            check(got.count("WATCHDOG=1") >= 3, f"watchdog pings: {got}")
            if not name.startswith("@"):
                os.rename(log, log + ".1")
                up.send_signal(signal.SIGHUP)
                wait_for(lambda: os.path.exists(log), 5, "the log file reopened")
            up.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in got:
                got.append(sock.recv(4096).decode())
        finally:
            if up.poll() is None:
                up.send_signal(signal.SIGTERM)
            rc = up.wait(timeout=20)
            sock.close()
        check(rc == 0, f"uploader exit {rc}")
        print(f"sd_notify via {name.split('/')[-1]}: READY=1, {got.count('WATCHDOG=1')} "
              "x WATCHDOG=1, STOPPING=1")
    check("log file reopened" in open(log).read(), "SIGHUP: no line in the new log file")
    check("uploader started" in open(log + ".1").read(), "old log")
    print("SIGHUP: LOG_FILE reopened after rotation")


def all_tests():
    d = tempdir("ops")
    for t in (test_every_state, test_gc_drop_quarantined, test_concurrent, test_metrics,
              test_sigterm_upload, test_sigterm_collect, test_notify_and_sighup):
        sub = os.path.join(d, t.__name__)
        os.makedirs(sub)
        t0 = time.time()
        t(sub)
        print(f"  ({t.__name__}: {time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main(all_tests)
