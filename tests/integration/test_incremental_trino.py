#!/usr/bin/env python3
"""<table>_current (README "Incremental extraction", "Querying with Athena") read
through Trino 476 on Glue (moto) and MinIO.

A SQLite source with an incremental table (cursor `upd`, an integer the test
moves forward with every change): a snapshot run, then runs with updates,
inserts, a run that changes nothing, then a FULL_REFRESH-like reset (a new
snapshot after a row was deleted at the source). After each step, collected and
uploaded (the uploader registers Glue itself): `SELECT count(*)` and every
row of `<table>_current` equal the source table read with the sqlite3 module,
and `_latest` holds only the newest run's rows (a range), which is what
`_current` exists to fix.

Needs: tests/servers/start.sh all and tests/servers/start.sh trino.
"""
import os
import sqlite3

import lake
from ingesta_test import check, main, run, tempdir, write_config

SUFFIX = os.urandom(3).hex()


def test():
    e = lake.env()
    d = tempdir("incr-trino")
    src = os.path.join(d, "src.db")
    bucket, gdb = f"ingesta-it-{SUFFIX}", f"it_{SUFFIX}"
    lake.s3().create_bucket(Bucket=bucket)
    cfg = write_config(os.path.join(d, "c.env"), {
        "DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": os.path.join(d, "spool"),
        "S3_BUCKET": bucket, "S3_ENDPOINT": e["MINIO_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": e["MINIO_ROOT_USER"], "AWS_SECRET_ACCESS_KEY": e["MINIO_ROOT_PASSWORD"],
        "AWS_DEFAULT_REGION": "us-east-1", "GLUE_DATABASE": gdb, "GLUE_ENDPOINT": e["GLUE_ENDPOINT"],
        "GLUE_REGION": "us-east-1", "LOG_LEVEL": "WARNING", "LOAD_MODE": "incremental",
        "INCREMENTAL_COLUMN": "upd"})
    db = sqlite3.connect(src)
    db.executescript("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, upd INTEGER NOT NULL);
        CREATE TABLE pairs (a TEXT NOT NULL, b INTEGER NOT NULL, v TEXT, upd INTEGER NOT NULL,
                            PRIMARY KEY (a, b));
    """)
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                   [(i, f"n{i}", i * 10, i) for i in range(1, 21)])
    db.executemany("INSERT INTO pairs VALUES (?, ?, ?, ?)",
                   [(a, b, f"{a}{b}", 1) for a in "xy" for b in range(3)])
    db.commit()
    upd = [100]

    def bump():
        upd[0] += 1
        return upd[0]

    def one_run():
        run(["collect", "--config", cfg])
        run(["upload", "--once", "--config", cfg])

    def compare(step):
        want = sorted(db.execute("SELECT id, name, qty, upd FROM items"))
        got = sorted(tuple(r) for r in lake.trino(
            f'SELECT id, name, qty, upd FROM "{gdb}"."items_current"'))
        n = lake.trino(f'SELECT count(*) FROM "{gdb}"."items_current"')[0][0]
        check(n == len(want), f"{step}: count(*) {n}, the source has {len(want)}")
        check(got == want, f"{step}: items_current differs from the source:\n{got}\n{want}")
        wp = sorted(db.execute("SELECT a, b, v, upd FROM pairs"))
        gp = sorted(tuple(r) for r in lake.trino(f'SELECT a, b, v, upd FROM "{gdb}"."pairs_current"'))
        check(gp == wp, f"{step}: pairs_current (two-column key) {gp} != {wp}")
        print(f"{step}: items_current = source ({n} rows), pairs_current = source ({len(wp)} rows)")

    one_run()
    compare("snapshot")
    views = {t["Name"] for t in lake.glue().get_tables(DatabaseName=gdb)["TableList"]}
    check({"items_current", "items_latest", "pairs_current"} <= views, f"Glue views {views}")
    db.execute("UPDATE items SET qty = qty + 1, upd = ? WHERE id IN (3, 7)", (bump(),))
    db.execute("INSERT INTO items VALUES (21, 'new', 5, ?)", (bump(),))
    db.execute("UPDATE pairs SET v = 'changed', upd = ? WHERE a = 'y' AND b = 1", (bump(),))
    db.commit()
    one_run()
    compare("update + insert")
    latest = lake.trino(f'SELECT count(*) FROM "{gdb}"."items_latest"')[0][0]
    check(latest == 3, f"_latest holds the last range only (3 rows), got {latest}")
    db.execute("UPDATE items SET name = 'again', upd = ? WHERE id = 3", (bump(),))
    db.commit()
    one_run()
    compare("a second update of one row")
    one_run()
    compare("a run with nothing new")
    # a row deleted at the source: gone from _current after the next snapshot
    db.execute("DELETE FROM items WHERE id = 5")
    db.execute("UPDATE items SET qty = 0, upd = ? WHERE id = 8", (bump(),))
    db.commit()
    run(["reset", "--config", cfg, "--table", "items"])
    one_run()
    compare("snapshot after a delete")
    db.execute("INSERT INTO items VALUES (22, 'after', 1, ?)", (bump(),))
    db.commit()
    one_run()
    compare("insert after the new snapshot")


if __name__ == "__main__":
    main(test)
