#!/usr/bin/python3
"""Incremental extraction under kill -9: exactly the ranges the commit records promise.

Per source (SQLite, PostgreSQL), one writer thread keeps changing two tables
while `ingesta collect` (LOAD_MODE=incremental) runs again and again:
- `t` (id, v, upd): inserts and updates; upd is a sequence value the writer
  takes in the same transaction as the change (one writer: commit order is
  cursor order), so every row version has its own cursor value;
- `ev` (id, payload): insert-only, the id (INTEGER PRIMARY KEY / bigserial) is
  the cursor.
Collectors are killed with SIGKILL at random moments and at the failpoints
around the partition's commit (partition.before_commit, mid_commit,
after_watermark, after_commit, seal.*); uploaders are killed at random moments
too and restarted. Then the writer stops, one more collect, the uploader
drains, and from the bucket (commit records + their objects):
- per table the committed ranges chain: the first is a snapshot (after null),
  each next one starts where the previous ended (no gap, no overlap: no cursor
  value in two committed ranges);
- every row of a run lies in its run's range, no cursor value twice;
- every row's latest version (per id, the largest upd) equals the source
  table read with its own client (sqlite3 / psql): none missing, none extra;
- ev: every id of the source is in the lake exactly once.
Figures: runs, kills (random, failpoint, uploader), rows checked.
INCR_KILL_RUNS (default 60 per source) sets the number of collects; INCR_KILL_PG=0 skips PostgreSQL. Exit 77 without failpoints.
"""
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

from ingesta_test import (check, commit_records, main, read_object, servers_env, tempdir,
                          write_config)
from rel_common import (expect_rc, failpoints_built, ingesta_env, kill9, psql, run_ingesta,
                        seeded_random, spawn)

FAILPOINTS = ["partition.before_commit", "partition.mid_commit", "partition.after_watermark",
              "partition.after_commit", "seal.before_db_insert", "seal.after_db_insert",
              "seal.before_rename"]


class Writer(threading.Thread):
    """Changes rows until stopped; change(i) does one transaction."""

    def __init__(self, change):
        super().__init__(daemon=True)
        self.change, self.stop_ev, self.n, self.error = change, threading.Event(), 0, None

    def run(self):
        try:
            while not self.stop_ev.is_set():
                self.change(self.n)
                self.n += 1
                time.sleep(0.002)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def finish(self):
        self.stop_ev.set()
        self.join(60)
        check(self.error is None, f"writer failed: {self.error!r}")


def sqlite_source(d, rng):
    path = os.path.join(d, "src.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("""
        CREATE TABLE seq (n INTEGER NOT NULL);
        INSERT INTO seq VALUES (0);
        CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, upd INTEGER NOT NULL);
        CREATE TABLE ev (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
    """)
    with db:
        for i in range(1, 3001):
            db.execute("UPDATE seq SET n = n + 1")
            db.execute("INSERT INTO t VALUES (?, 0, (SELECT n FROM seq))", (i,))
        db.executemany("INSERT INTO ev (payload) VALUES (?)", [(f"e{i}" * 5,) for i in range(3000)])
    db.close()
    wdb = sqlite3.connect(path, timeout=30, check_same_thread=False)
    wrng = __import__("random").Random(rng.random())

    def change(i):
        with wdb:
            wdb.execute("UPDATE seq SET n = n + 1")
            if i % 5 == 0:
                wdb.execute("INSERT INTO t (v, upd) VALUES (0, (SELECT n FROM seq))")
            else:
                wdb.execute("UPDATE t SET v = v + 1, upd = (SELECT n FROM seq) WHERE id = "
                            "(SELECT max(id) FROM t) - ?", (wrng.randrange(3000),))
            wdb.execute("INSERT INTO ev (payload) VALUES (?)", (f"w{i}",))

    def read():
        r = sqlite3.connect(path, timeout=30)
        t = {row[0]: (row[1], row[2]) for row in r.execute("SELECT id, v, upd FROM t")}
        ev = {row[0] for row in r.execute("SELECT id FROM ev")}
        r.close()
        return t, ev

    return {"DB_TYPE": "sqlite", "SQLITE_PATH": path}, change, read, wdb.close, lambda: None


def pg_source(d, rng):
    srv = servers_env()
    dbname = "incrkill_" + os.urandom(4).hex()
    psql(srv["POSTGRESQL_DATABASE"], f"CREATE DATABASE {dbname}")
    psql(dbname, "CREATE SEQUENCE s; "
                 "CREATE TABLE t (id serial PRIMARY KEY, v int NOT NULL, upd bigint NOT NULL); "
                 "CREATE TABLE ev (id bigserial PRIMARY KEY, payload text NOT NULL); "
                 "INSERT INTO t (v, upd) SELECT 0, nextval('s') FROM generate_series(1, 3000); "
                 "INSERT INTO ev (payload) SELECT repeat('e', 20) FROM generate_series(1, 3000);")
    # one psql session fed statements on stdin, each its own transaction
    w = subprocess.Popen(["/usr/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-h", srv["POSTGRESQL_HOST"], "-p", srv["POSTGRESQL_PORT"],
                          "-U", srv["POSTGRESQL_USER"], "-d", dbname],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PGPASSWORD=srv["POSTGRESQL_PASSWORD"]))
    wrng = __import__("random").Random(rng.random())

    def change(i):
        check(w.poll() is None, "the psql writer died")
        if i % 5 == 0:
            w.stdin.write("INSERT INTO t (v, upd) VALUES (0, nextval('s'));\n")
        else:
            w.stdin.write(f"UPDATE t SET v = v + 1, upd = nextval('s') WHERE id = "
                          f"{1 + wrng.randrange(3000)};\n")
        w.stdin.write(f"INSERT INTO ev (payload) VALUES ('w{i}');\n")
        w.stdin.flush()

    def read():
        t = {}
        for line in psql(dbname, "SELECT id, v, upd FROM t").split():
            a, b, c = line.split("|")
            t[int(a)] = (int(b), int(c))
        ev = {int(x) for x in psql(dbname, "SELECT id FROM ev").split()}
        return t, ev

    def close():
        # the writer's statements still in the pipe are run before the final collect
        if not w.stdin.closed:
            w.stdin.close()
        w.wait(120)
        psql(srv["POSTGRESQL_DATABASE"], f"DROP DATABASE {dbname} WITH (FORCE)")

    def drain():
        w.stdin.close()
        check(w.wait(120) == 0, "the psql writer failed")

    settings = {"DB_TYPE": "postgresql", "POSTGRES_HOST": srv["POSTGRESQL_HOST"],
                "POSTGRES_PORT": srv["POSTGRESQL_PORT"], "POSTGRES_USER": srv["POSTGRESQL_USER"],
                "POSTGRES_PASSWORD": srv["POSTGRESQL_PASSWORD"], "POSTGRES_DB": dbname}
    return settings, change, read, close, drain


def lake_runs(bucket):
    """{table: [(record, rows)]} of the committed runs, oldest first."""
    out = {}
    recs = commit_records(bucket)
    for (run_id, table), rec in sorted(recs.items(),
                                       key=lambda kv: (kv[1]["run_started_at"], kv[0])):
        rows = []
        for o in rec["objects"]:
            rows += [json.loads(x) for x in read_object(os.path.join(bucket, o["key"])).splitlines()]
        check(len(rows) == rec["rows"], f"{run_id} {table}: {len(rows)} rows, record says {rec['rows']}")
        out.setdefault(table, []).append((rec, rows))
    return out


def verify(name, bucket, want_t, want_ev, fig):
    runs = lake_runs(bucket)
    for table, col in (("t", "upd"), ("ev", "id")):
        seen = {}
        prev = None
        chain = runs.get(table, [])
        check(chain, f"{name} {table}: no committed run")
        for i, (rec, rows) in enumerate(chain):
            rg = rec["range"]
            check(rg["column"] == col, f"{name} {table}: range {rg}")
            if i == 0:
                check(rec["mode"] == "snapshot" and rg["after"] is None,
                      f"{name} {table}: the first committed run is a snapshot: {rec}")
            else:
                check(rec["mode"] == "incremental", f"{name} {table}: {rec['run_id']} {rec['mode']}")
                check(rg["after"] == prev, f"{name} {table}: run {rec['run_id']} starts after "
                      f"{rg['after']}, the previous committed run ended at {prev} (gap or overlap)")
            lo = int(rg["after"]) if rg["after"] is not None else None
            hi = int(rg["through"]) if rg["through"] is not None else None
            for r in rows:
                c = int(r[col])
                check(hi is not None and c <= hi and (lo is None or c > lo),
                      f"{name} {table}: row {r} outside its run's range {rg}")
                check(c not in seen, f"{name} {table}: cursor {c} in runs {seen.get(c)} and "
                      f"{rec['run_id']}")
                seen[c] = rec["run_id"]
                fig["rows"] += 1
            if rg["through"] is not None:
                prev = rg["through"]
            fig["ranges"] += 1
        if table == "t":
            latest = {}
            for rec, rows in chain:
                for r in rows:
                    if r["id"] not in latest or r["upd"] > latest[r["id"]][1]:
                        latest[r["id"]] = (r["v"], r["upd"])
            missing = set(want_t) - set(latest)
            extra = set(latest) - set(want_t)
            wrong = [k for k in want_t if k in latest and latest[k] != want_t[k]]
            check(not missing and not extra and not wrong,
                  f"{name} t: latest versions vs source: missing {sorted(missing)[:10]}, "
                  f"extra {sorted(extra)[:10]}, wrong {wrong[:10]}")
            fig["latest"] += len(want_t)
        else:
            got = sorted(int(c) for c in seen)
            check(got == sorted(want_ev), f"{name} ev: {len(got)} ids in the lake, "
                  f"{len(want_ev)} at the source (missing "
                  f"{sorted(set(want_ev) - set(got))[:10]})")
            fig["ev"] += len(want_ev)


def one_source(name, make, nruns, rng):
    d = tempdir(f"incr-kill-{name}")
    bucket = os.path.join(d, "bucket")
    settings, change, read, close, drain = make(d, rng)
    cfg = write_config(os.path.join(d, "c.env"), dict(
        settings, SPOOL_DIR=os.path.join(d, "spool"), S3_BUCKET="file://" + bucket,
        LOAD_MODE="incremental", INCREMENTAL_COLUMNS="t:upd,ev:id", SEGMENT_MAX_ROWS="400",
        LOG_LEVEL="WARNING"))
    fig = {"runs": 0, "kills_random": 0, "kills_failpoint": 0, "kills_uploader": 0,
           "rows": 0, "ranges": 0, "latest": 0, "ev": 0}
    w = Writer(change)
    w.start()
    try:
        for i in range(nruns):
            fig["runs"] += 1
            how = rng.random()
            if how < 0.35:
                env = ingesta_env({"INGESTA_FAILPOINT": rng.choice(FAILPOINTS),
                                   "INGESTA_FAILPOINT_SKIP": str(rng.randrange(2))})
                p = run_ingesta(["collect", "--config", cfg], env=env)
                expect_rc(p, [0, -9], f"collect at {env['INGESTA_FAILPOINT']}")
                fig["kills_failpoint"] += p.returncode == -9
            elif how < 0.7:
                p = spawn(["collect", "--config", cfg], log=os.path.join(d, "collect.log"))
                time.sleep(rng.uniform(0, 0.25))
                fig["kills_random"] += kill9(p)
            else:
                expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
            if rng.random() < 0.5:
                u = spawn(["upload", "--once", "--config", cfg], log=os.path.join(d, "upload.log"))
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.2))
                    fig["kills_uploader"] += kill9(u)
                else:
                    u.wait(300)
        w.finish()
        drain()
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "final collect")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, "final upload")
        fig["writes"] = w.n
        want_t, want_ev = read()
        verify(name, bucket, want_t, want_ev, fig)
    finally:
        if w.is_alive():
            w.stop_ev.set()
            w.join(60)
        close()
    print(f"{name}: {fig['runs']} incremental collects + 1 final, kills: {fig['kills_random']} "
          f"at random moments, {fig['kills_failpoint']} at failpoints, {fig['kills_uploader']} "
          f"uploaders; {fig['writes']} writer transactions; {fig['ranges']} committed ranges "
          f"chained without gap or overlap; {fig['rows']} row versions checked in their ranges, "
          f"duplicated 0; latest versions = source for {fig['latest']} rows of t, "
          f"{fig['ev']} ids of ev exactly once, missing 0")


def test():
    if not failpoints_built():
        print("SKIP: binary built without -Dfailpoints=true")
        sys.exit(77)
    rng = seeded_random()
    one_source("sqlite", sqlite_source, int(os.environ.get("INCR_KILL_RUNS", "60")), rng)
    if os.environ.get("INCR_KILL_PG", "1") != "0":
        one_source("postgresql", pg_source, int(os.environ.get("INCR_KILL_RUNS", "60")), rng)


if __name__ == "__main__":
    main(test)
