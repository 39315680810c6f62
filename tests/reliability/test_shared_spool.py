#!/usr/bin/python3
"""Several collectors and one uploader on one spool, all at the same time.

Three SQLite sources (like the original's three databases) are collected
concurrently, twice each, into one spool while an uploader daemon ships them to
three file:// buckets. Every run's rows must arrive exactly once in the right
bucket; SQLITE_BUSY must never surface as an error.
"""
import collections
import os
import signal
import subprocess
import time

from ingesta_test import (bucket_files, check, clean_env, main, read_object, run, spool_db,
                          tempdir, write_config)

ROWS = 60000


def make_source(path, tables):
    sql = []
    for t in tables:
        sql.append(f"CREATE TABLE {t}(id INTEGER PRIMARY KEY, v TEXT);"
                   f"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < {ROWS - 1})"
                   f" INSERT INTO {t} SELECT i, 'value ' || i FROM c;")
    subprocess.run(["sqlite3", path, "".join(sql)], check=True)


def test():
    d = tempdir("shared")
    spool = os.path.join(d, "spool")
    sources = {"ms1": ["users", "orders", "products"], "ms2": ["customers", "invoices", "payments"],
               "ms3": ["inventory", "shipments", "suppliers"]}
    cfgs = {}
    for name, tables in sources.items():
        db = os.path.join(d, name + ".db")
        make_source(db, tables)
        cfgs[name] = write_config(os.path.join(d, name + ".env"), {
            "DB_TYPE": "sqlite", "SQLITE_PATH": db, "SPOOL_DIR": spool, "SOURCE_NAME": name,
            "S3_BUCKET": "file://" + os.path.join(d, f"raw-{name}-data-bgc"),
            "SEGMENT_MAX_ROWS": "7000"})
    up = subprocess.Popen([os.environ["INGESTA"], "upload", "--config", cfgs["ms1"]],
                          env=clean_env(), stderr=subprocess.DEVNULL)
    try:
        for _ in range(2):
            procs = [subprocess.Popen([os.environ["INGESTA"], "collect", "--config", c],
                                      env=clean_env(), stderr=subprocess.PIPE, text=True)
                     for c in cfgs.values()]
            for p in procs:
                _, err = p.communicate(timeout=300)
                check(p.returncode == 0, f"concurrent collector failed: {err[-2000:]}")
        deadline = time.time() + 60
        db = spool_db(spool)
        while time.time() < deadline:
            left = db.execute("SELECT count(*) FROM segments WHERE state <> 'uploaded'").fetchone()[0]
            manif = db.execute("SELECT count(*) FROM partitions WHERE manifest_state='none'").fetchone()[0]
            if left == 0 and manif == 0:
                break
            time.sleep(0.2)
        check(left == 0 and manif == 0, f"{left} segments / {manif} manifests still pending")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)
    total = 0
    for name, tables in sources.items():
        bucket = os.path.join(d, f"raw-{name}-data-bgc")
        per_run = collections.defaultdict(collections.Counter)
        for rel in bucket_files(bucket):
            if "/_manifest" in rel or rel.startswith((".ingesta-tmp", "ingesta_runs/")):
                continue
            table, run_id = rel.split("/")[0], os.path.basename(rel)[:25]
            check(table in tables, f"{table} landed in the wrong bucket {bucket}")
            for line in read_object(os.path.join(bucket, rel)).splitlines():
                per_run[(run_id, table)][int(line[6:line.index(b",")])] += 1
        check(len(per_run) == 2 * len(tables), f"{name}: {len(per_run)} run partitions, want 6")
        for key, ids in per_run.items():
            check(len(ids) == ROWS and max(ids.values()) == 1, f"{name} {key}: not exactly once")
            total += sum(ids.values())
    print(f"shared spool: 3 concurrent collectors x 2 runs + 1 uploader daemon, "
          f"{total} rows in 18 partitions, each exactly once in its own bucket")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
