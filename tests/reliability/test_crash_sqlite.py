#!/usr/bin/python3
"""kill -9 the collector and the uploader at random moments (SQLite -> file://).

Collector: 20 kills while a 500,000-row table is being written in several
segments, each followed by a rerun. Uploader: 20 kills during file:// uploads,
each followed by a restart. Afterwards every committed run holds every source
row exactly once, killed runs left nothing in the bucket, and the spool holds no
temporary or orphan files. Prints its figures; fails on any loss or duplicate.

CRASH_KILLS (default 20) sets the number of kills of each kind.
"""
import collections
import os
import random
import re
import signal
import sqlite3
import subprocess
import time

from ingesta_test import (bucket_files, check, clean_env, main, read_object, run, spool_db,
                          tempdir, write_config)

ROWS = int(os.environ.get("CRASH_ROWS", "500000"))
KILLS = int(os.environ.get("CRASH_KILLS", "20"))
KEY_RUN = re.compile(r"/(\d{8}T\d{6}Z-[0-9a-f]{8})-\d{5}\.json(\.zst)?$")


def make_source(path):
    subprocess.run(["sqlite3", path, f"""
        CREATE TABLE a_small(id INTEGER PRIMARY KEY, v TEXT);
        WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < 999)
          INSERT INTO a_small SELECT i, 'v' || i FROM c;
        CREATE TABLE big(id INTEGER PRIMARY KEY, name TEXT, amount REAL, note TEXT, created TEXT);
        WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < {ROWS - 1})
          INSERT INTO big SELECT i, 'name-' || i || ' é', i * 0.25,
            CASE WHEN i % 7 = 0 THEN NULL ELSE hex(randomblob(16)) END,
            datetime(1700000000 + i, 'unixepoch') FROM c;"""], check=True)


def ingesta(args, cfg):
    return subprocess.Popen([os.environ["INGESTA"]] + args + ["--config", cfg], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_at_random(args, cfg, max_delay):
    """Start ingesta, SIGKILL it after a random delay; True when it was killed while running."""
    p = ingesta(args, cfg)
    time.sleep(random.uniform(0, max_delay))
    alive = p.poll() is None
    p.send_signal(signal.SIGKILL)
    p.wait()
    return alive


def ids_of_objects(bucket):
    """{(run, table): Counter(id)} from every data object of the bucket."""
    got = collections.defaultdict(collections.Counter)
    for rel in bucket_files(bucket):
        m = KEY_RUN.search("/" + rel)
        if not m:
            check(os.path.basename(rel).startswith("_manifest-") or rel.startswith(".ingesta-tmp")
                  or rel.startswith("ingesta_runs/"),
                  f"unexpected object {rel}")
            continue
        table = rel.split("/")[0]
        for line in read_object(os.path.join(bucket, rel)).splitlines():
            # {"id":123,...}: the id is the first field; no need for a full parse here.
            got[(m.group(1), table)][int(line[6:line.index(b",")])] += 1
    return got


def verify(d, spool, bucket):
    src = {"a_small": 1000, "big": ROWS}
    got = ids_of_objects(bucket)
    runs = {r for (r, _) in got}
    lost = dups = 0
    for (run_id, table), ids in got.items():
        n = src[table]
        missing = n - len([i for i in ids if 0 <= i < n])
        extra = sum(c - 1 for c in ids.values() if c > 1)
        lost += missing
        dups += extra
        check(missing == 0, f"run {run_id} table {table}: {missing} rows missing (partial table!)")
        check(extra == 0, f"run {run_id} table {table}: {extra} duplicate rows")
    # Spool: no temporary files, every data file recorded, no run left running.
    check(os.listdir(os.path.join(spool, "tmp")) == [], "temporary files left in the spool")
    db = spool_db(spool)
    recorded = {r[0] for r in db.execute("SELECT path FROM segments WHERE file_deleted_at IS NULL")}
    on_disk = {"data/" + f for f in os.listdir(os.path.join(spool, "data"))}
    check(on_disk <= recorded, f"orphan files in the spool: {sorted(on_disk - recorded)[:5]}")
    running = db.execute("SELECT count(*) FROM runs WHERE state='running'").fetchone()[0]
    check(running == 0, f"{running} runs still 'running' after recovery")
    states = dict(db.execute("SELECT state, count(*) FROM segments GROUP BY state").fetchall())
    check(set(states) <= {"uploaded"}, f"segments not uploaded: {states}")
    # Every uploaded segment's object exists with its bytes.
    for key, sha in db.execute("SELECT key, sha256 FROM segments"):
        import hashlib
        data = open(os.path.join(bucket, key), "rb").read()
        check(hashlib.sha256(data).hexdigest() == sha, f"{key}: bytes differ from the spool record")
    tmp_left = os.listdir(os.path.join(bucket, ".ingesta-tmp")) if os.path.isdir(
        os.path.join(bucket, ".ingesta-tmp")) else []
    return len(runs), len(got), lost, dups, states.get("uploaded", 0), tmp_left


def test_collector_crashes(d):
    src = os.path.join(d, "src.db")
    make_source(src)
    spool, bucket = os.path.join(d, "spool"), os.path.join(d, "bucket")
    cfg = write_config(os.path.join(d, "c.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
        "SEGMENT_MAX_ROWS": str(ROWS // 8)})
    t0 = time.time()
    run(["collect", "--config", cfg])
    full = time.time() - t0
    killed = 0
    for _ in range(KILLS):
        killed += kill_at_random(["collect"], cfg, full * 1.1)
        run(["collect", "--config", cfg])  # the rerun after each crash
    run(["upload", "--once", "--config", cfg])
    nruns, partitions, lost, dups, objects, _ = verify(d, spool, bucket)
    print(f"collector: {KILLS} kill -9 ({killed} mid-run), {nruns} runs and {partitions} table "
          f"partitions in the bucket ({objects} objects), rows lost 0, duplicates 0, "
          f"partial tables 0, spool leftovers 0")


def test_uploader_crashes(d):
    src = os.path.join(d, "src.db")
    make_source(src)
    spool, bucket = os.path.join(d, "spool"), os.path.join(d, "bucket")
    cfg = write_config(os.path.join(d, "u.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
        "SEGMENT_MAX_ROWS": "2000", "COMPRESSION": "none", "UPLOAD_CONCURRENCY": "2"})
    killed = rounds = 0
    while killed < KILLS:
        db = spool_db(spool) if os.path.exists(os.path.join(spool, "spool.db")) else None
        left = db.execute("SELECT count(*) FROM segments WHERE state IN ('sealed','uploading')"
                          ).fetchone()[0] if db else 0
        if left == 0:
            run(["collect", "--config", cfg])
            rounds += 1
        killed += kill_at_random(["upload", "--once"], cfg, 0.4)
    run(["upload", "--once", "--config", cfg])
    nruns, partitions, lost, dups, objects, tmp_left = verify(d, spool, bucket)
    print(f"uploader: {killed} kill -9 during uploads over {rounds} collected runs, "
          f"{objects} objects each present once with the spooled bytes, rows lost 0, "
          f"duplicates 0, stray temporary files after restart {len(tmp_left)}")


def all_tests():
    d = tempdir("crash")
    for t in (test_collector_crashes, test_uploader_crashes):
        sub = os.path.join(d, t.__name__)
        os.makedirs(sub)
        t(sub)
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(all_tests)
