#!/usr/bin/python3
"""Incremental extraction under kill -9: exactly the ranges the commit records promise.

Per source (SQLite, PostgreSQL, MariaDB, FerretDB), one writer keeps changing
two tables while `ingesta collect` (LOAD_MODE=incremental) runs again and again:
- `t` (id, v, upd): inserts and updates; every row version gets its own cursor
  value, set in the change's own transaction by the one writer (commit order is
  cursor order): SQLite and PostgreSQL a sequence value (integer), MariaDB a
  `datetime(6)` the writer stamps (1 ms apart), FerretDB a BSON date the writer
  stamps (1 ms apart; its `_id` is the key);
- `ev` (id, payload): insert-only, the auto-increment id is the cursor
  (INTEGER PRIMARY KEY / bigserial / AUTO_INCREMENT; FerretDB: `_id` ObjectIds
  the writer makes in increasing order, as one client's clock does).
Collectors are killed with SIGKILL at random moments and at the failpoints
around the partition's commit (partition.before_commit, mid_commit,
after_watermark, after_commit, seal.*); uploaders are killed at random moments
too and restarted. Then the writer stops, one more collect, the uploader
drains, and from the bucket (commit records + their objects, read with the
file system or boto3):
- per table the committed ranges chain: the first is a snapshot (after null),
  each next one starts where the previous ended (no gap, no overlap: no cursor
  value in two committed ranges);
- every row of a run lies in its run's range, no cursor value twice;
- every row's latest version (per id, the largest cursor) equals the source
  table read with its own client (sqlite3 / psql / mariadb / pymongo): none
  missing, none extra;
- ev: every id of the source is in the lake exactly once.
The server sources upload to MinIO with GLUE_DATABASE set (the killed uploaders
register Glue as they go), and at the end `t_current` and `ev_current` read
through Trino equal the source tables row for row. Trino is needed (the test is
also in suite 'lake'): started with tests/servers/start.sh trino when it is not
running; INCR_KILL_TRINO=0 leaves the Trino check out explicitly.
Figures: runs, kills (random, failpoint, uploader), rows checked.
INCR_KILL_RUNS (default 60 per source) sets the number of collects;
INCR_KILL_SOURCES (default sqlite,postgresql,mariadb,ferretdb) the sources
(INCR_KILL_PG=0 drops postgresql). Exit 77 without failpoints.
"""
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

from ingesta_test import SOURCE_ROOT, TestFailure, check, main, servers_env, tempdir, write_config
from rel_common import (FileBucket, S3Bucket, decode, expect_rc, failpoints_built, ingesta_env,
                        kill9, mongo_client, mysql, psql, run_ingesta, s3_settings, seeded_random,
                        spawn)

FAILPOINTS = ["partition.before_commit", "partition.mid_commit", "partition.after_watermark",
              "partition.after_commit", "seal.before_db_insert", "seal.after_db_insert",
              "seal.before_rename"]
EPOCH = datetime.datetime(1970, 1, 1)
BASE = datetime.datetime(2026, 1, 1)  # the writer-stamped cursors: BASE + n ms


def ts_us(x):
    """A date-time as microseconds since the epoch: a datetime (pymongo, naive UTC) or
    text as the lake ("2026-01-01T00:00:00.001000", "...Z"), the commit record
    ("2026-01-01 00:00:00.001000"), the mariadb client or Trino ("... .001") write it."""
    if isinstance(x, str):
        x = datetime.datetime.fromisoformat(x.replace("T", " ").rstrip("Z"))
    return (x.replace(tzinfo=None) - EPOCH) // datetime.timedelta(microseconds=1)


def stamp(n):
    """The n-th writer-stamped cursor value (1 ms apart)."""
    return BASE + datetime.timedelta(milliseconds=n)


def oid_int(x):
    return int(str(x), 16)


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


INT_COLUMNS = {"t": ("id", "v", "upd"), "ev": ("id",)}


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

    return dict(settings={"DB_TYPE": "sqlite", "SQLITE_PATH": path}, change=change, read=read,
                close=wdb.close, drain=lambda: None, key="id", cursors={"t": "upd", "ev": "id"},
                parse={"t": int, "ev": int}, columns=INT_COLUMNS)


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
    return dict(settings=settings, change=change, read=read, close=close, drain=drain, key="id",
                cursors={"t": "upd", "ev": "id"}, parse={"t": int, "ev": int},
                columns=INT_COLUMNS, s3=True)


def mariadb_source(d, rng):
    """t.upd: a datetime(6) the writer stamps; ev.id: AUTO_INCREMENT. The writer is one
    mariadb client session fed statements on stdin, autocommit: one transaction each."""
    srv = servers_env()
    dbname = "incrkill_" + os.urandom(4).hex()
    mysql(None, f"CREATE DATABASE {dbname} CHARACTER SET utf8mb4")
    mysql(dbname, "SET SESSION max_recursive_iterations = 5000; "
                  "CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY, v int NOT NULL, "
                  "upd datetime(6) NOT NULL); "
                  "CREATE TABLE ev (id bigint AUTO_INCREMENT PRIMARY KEY, payload text NOT NULL); "
                  "INSERT INTO t (v, upd) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                  "FROM s WHERE i < 3000) SELECT 0, '2026-01-01' + INTERVAL i * 1000 MICROSECOND "
                  "FROM s; "
                  "INSERT INTO ev (payload) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                  "FROM s WHERE i < 3000) SELECT REPEAT('e', 20) FROM s;")
    w = subprocess.Popen(["mariadb", "--no-defaults", "-h", srv["MARIADB_HOST"], "-P",
                          srv["MARIADB_PORT"], "-u", srv["MARIADB_USER"], "--batch", dbname],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, MYSQL_PWD=srv["MARIADB_PASSWORD"]))
    wrng = __import__("random").Random(rng.random())
    seq = [3000]

    def change(i):
        check(w.poll() is None, "the mariadb writer died")
        seq[0] += 1
        at = stamp(seq[0]).strftime("%Y-%m-%d %H:%M:%S.%f")
        if i % 5 == 0:
            w.stdin.write(f"INSERT INTO t (v, upd) VALUES (0, '{at}');\n")
        else:
            w.stdin.write(f"UPDATE t SET v = v + 1, upd = '{at}' WHERE id = "
                          f"{1 + wrng.randrange(3000)};\n")
        w.stdin.write(f"INSERT INTO ev (payload) VALUES ('w{i}');\n")
        w.stdin.flush()

    def read():
        t = {}
        for line in mysql(dbname, "SELECT id, v, upd FROM t").splitlines():
            a, b, c = line.split("\t")
            t[int(a)] = (int(b), ts_us(c))
        ev = {int(x) for x in mysql(dbname, "SELECT id FROM ev").split()}
        return t, ev

    def close():
        if not w.stdin.closed:
            w.stdin.close()
        w.wait(120)
        mysql(None, f"DROP DATABASE IF EXISTS {dbname}")

    def drain():
        w.stdin.close()
        check(w.wait(120) == 0, "the mariadb writer failed")

    settings = {"DB_TYPE": "mysql", "MYSQL_HOST": srv["MARIADB_HOST"],
                "MYSQL_PORT": srv["MARIADB_PORT"], "MYSQL_USER": srv["MARIADB_USER"],
                "MYSQL_PASSWORD": srv["MARIADB_PASSWORD"], "MYSQL_DATABASE": dbname}
    return dict(settings=settings, change=change, read=read, close=close, drain=drain, key="id",
                cursors={"t": "upd", "ev": "id"}, parse={"t": ts_us, "ev": int},
                columns={"t": ("id", "v", "upd"), "ev": ("id",)}, s3=True)


def ferretdb_source(d, rng):
    """t: {_id: int, v, upd: a BSON date the writer stamps}; ev: {_id: ObjectId, payload},
    the ObjectIds made by the writer in increasing order (the first 4 bytes the start
    time, then a counter), inserted by pymongo from this process."""
    from bson import ObjectId
    dbname = "incrkill_" + os.urandom(4).hex()
    client = mongo_client()
    mdb = client[dbname]
    t0 = int(time.time()).to_bytes(4, "big")
    nid = [0]

    def oid():
        nid[0] += 1
        return ObjectId(t0 + nid[0].to_bytes(8, "big"))

    mdb.t.insert_many([{"_id": i, "v": 0, "upd": stamp(i)} for i in range(1, 3001)])
    mdb.ev.insert_many([{"_id": oid(), "payload": "e" * 20} for _ in range(3000)])
    wrng = __import__("random").Random(rng.random())
    seq, top = [3000], [3000]

    def change(i):
        seq[0] += 1
        if i % 5 == 0:
            top[0] += 1
            mdb.t.insert_one({"_id": top[0], "v": 0, "upd": stamp(seq[0])})
        else:
            mdb.t.update_one({"_id": 1 + wrng.randrange(3000)},
                             {"$inc": {"v": 1}, "$set": {"upd": stamp(seq[0])}})
        mdb.ev.insert_one({"_id": oid(), "payload": f"w{i}"})

    def read():
        r = mongo_client()
        try:
            t = {x["_id"]: (x["v"], ts_us(x["upd"])) for x in r[dbname].t.find()}
            ev = {oid_int(x["_id"]) for x in r[dbname].ev.find({}, {"_id": 1})}
        finally:
            r.close()
        return t, ev

    def close():
        try:
            client.drop_database(dbname)
        finally:
            client.close()

    srv = servers_env()
    settings = {"DB_TYPE": "mongodb", "MONGO_HOST": srv["FERRETDB_HOST"],
                "MONGO_PORT": srv["FERRETDB_PORT"], "MONGO_DATABASE": dbname}
    return dict(settings=settings, change=change, read=read, close=close, drain=lambda: None,
                key="_id", cursors={"t": "upd", "ev": "_id"}, parse={"t": ts_us, "ev": oid_int},
                columns={"t": ("_id", "v", "upd"), "ev": ("_id",)}, s3=True)


def lake_runs(bucket):
    """{table: [(record, rows)]} of the committed runs, oldest first (a FileBucket or
    an S3Bucket: the commit records under ingesta_runs/ and the objects they list)."""
    out = {}
    recs = {}
    for key in bucket.keys():
        if key.split("/")[0] != "ingesta_runs":
            continue
        lines = bucket.get(key).decode().splitlines()
        check(len(lines) == 1, f"commit record {key}: {len(lines)} lines, want 1")
        rec = json.loads(lines[0])
        k = (rec["run_id"], rec["table_name"])
        check(k not in recs, f"two commit records for {k}")
        recs[k] = rec
    for (run_id, table), rec in sorted(recs.items(),
                                       key=lambda kv: (kv[1]["run_started_at"], kv[0])):
        rows = []
        for o in rec["objects"]:
            rows += [json.loads(x) for x in decode(bucket.get(o["key"])).splitlines()]
        check(len(rows) == rec["rows"], f"{run_id} {table}: {len(rows)} rows, record says {rec['rows']}")
        out.setdefault(table, []).append((rec, rows))
    return out


def verify(name, bucket, src, want_t, want_ev, fig):
    runs = lake_runs(bucket)
    key = src["key"]
    for table in ("t", "ev"):
        col, parse = src["cursors"][table], src["parse"][table]
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
            lo = parse(rg["after"]) if rg["after"] is not None else None
            hi = parse(rg["through"]) if rg["through"] is not None else None
            for r in rows:
                c = parse(r[col])
                check(hi is not None and c <= hi and (lo is None or c > lo),
                      f"{name} {table}: row {r} outside its run's range {rg}")
                check(c not in seen, f"{name} {table}: cursor {r[col]} in runs {seen.get(c)} and "
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
                    c = parse(r[col])
                    if r[key] not in latest or c > latest[r[key]][1]:
                        latest[r[key]] = (r["v"], c)
            missing = set(want_t) - set(latest)
            extra = set(latest) - set(want_t)
            wrong = [k for k in want_t if k in latest and latest[k] != want_t[k]]
            check(not missing and not extra and not wrong,
                  f"{name} t: latest versions vs source: missing {sorted(missing)[:10]}, "
                  f"extra {sorted(extra)[:10]}, wrong {[(k, latest[k], want_t[k]) for k in wrong[:10]]}")
            fig["latest"] += len(want_t)
        else:
            got = sorted(seen)
            check(got == sorted(want_ev), f"{name} ev: {len(got)} ids in the lake, "
                  f"{len(want_ev)} at the source (missing "
                  f"{sorted(set(want_ev) - set(got))[:10]}, extra {sorted(set(got) - set(want_ev))[:10]})")
            fig["ev"] += len(want_ev)


# ------------------------------------------------------------------ Trino

def trino_ready():
    """None when Trino answers (started here if it is not running), else why not."""
    import lake

    def up():
        try:
            url = servers_env().get("TRINO_URL")
            if not url:
                return "TRINO_URL missing from the servers' env file"
            with urllib.request.urlopen(url + "/v1/info", timeout=10) as r:
                info = json.load(r)
            return "Trino is still starting" if info.get("starting") else None
        except (OSError, ValueError, TestFailure) as exc:
            return f"Trino not answering: {exc}"

    why = up()
    if why:
        print(f"{why}: starting it with tests/servers/start.sh trino")
        p = subprocess.run(["bash", os.path.join(SOURCE_ROOT, "tests", "servers", "start.sh"), "trino"],
                           capture_output=True, text=True, timeout=900)
        why = up() if p.returncode == 0 else f"tests/servers/start.sh trino failed: {p.stderr[-1500:]}"
    if why is None:
        lake._ENV = None  # the env file may have been rewritten by start.sh
    return why


def check_current(name, gdb, src, want_t, want_ev):
    """t_current and ev_current through Trino (Glue on moto, MinIO) = the source."""
    import lake
    key = src["key"]
    cols = ", ".join(f'"{c}"' for c in src["columns"]["t"])
    got = {}
    for r in lake.trino(f'SELECT {cols} FROM "{gdb}"."t_current"'):
        check(r[0] not in got, f"{name}: t_current holds key {r[0]} twice")
        got[r[0]] = (r[1], src["parse"]["t"](r[2]))
    n = lake.trino(f'SELECT count(*) FROM "{gdb}"."t_current"')[0][0]
    check(n == len(want_t), f"{name}: SELECT count(*) FROM t_current = {n}, the source has {len(want_t)}")
    missing, extra = set(want_t) - set(got), set(got) - set(want_t)
    wrong = [(k, got[k], want_t[k]) for k in want_t if k in got and got[k] != want_t[k]]
    check(not missing and not extra and not wrong,
          f"{name}: t_current vs source: missing {sorted(missing)[:10]}, extra {sorted(extra)[:10]}, "
          f"wrong (key, trino, source) {wrong[:10]}")
    ev = [src["parse"]["ev"](r[0]) for r in lake.trino(f'SELECT "{key}" FROM "{gdb}"."ev_current"')]
    check(len(ev) == len(set(ev)) and set(ev) == want_ev,
          f"{name}: ev_current {len(ev)} rows ({len(set(ev))} distinct), the source {len(want_ev)}")
    return len(want_t), len(want_ev)


def one_source(name, make, nruns, rng, use_trino):
    d = tempdir(f"incr-kill-{name}")
    src = make(d, rng)
    settings = dict(src["settings"])
    suffix = os.urandom(3).hex()
    gdb = None
    if src.get("s3") and use_trino:
        import lake
        e = lake.env()
        bucket = S3Bucket(f"incrkill-{suffix}-{name}")
        gdb = f"incrkill_{suffix}_{name}"
        settings.update(s3_settings(bucket.name))
        settings.update(GLUE_DATABASE=gdb, GLUE_ENDPOINT=e["GLUE_ENDPOINT"], GLUE_REGION="us-east-1")
    else:
        bucket = FileBucket(os.path.join(d, "bucket"))
        settings["S3_BUCKET"] = bucket.url
    cfg = write_config(os.path.join(d, "c.env"), dict(
        settings, SPOOL_DIR=os.path.join(d, "spool"), LOAD_MODE="incremental",
        INCREMENTAL_COLUMNS=",".join(f"{t}:{c}" for t, c in src["cursors"].items()),
        INCLUDE_TABLES="t,ev", SEGMENT_MAX_ROWS="400", LOG_LEVEL="WARNING"))
    fig = {"runs": 0, "kills_random": 0, "kills_failpoint": 0, "kills_uploader": 0,
           "rows": 0, "ranges": 0, "latest": 0, "ev": 0}
    w = Writer(src["change"])
    w.start()
    t_start = time.monotonic()
    current = None
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
        src["drain"]()
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "final collect")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, "final upload")
        fig["writes"] = w.n
        want_t, want_ev = src["read"]()
        verify(name, bucket, src, want_t, want_ev, fig)
        if gdb:
            current = check_current(name, gdb, src, want_t, want_ev)
    finally:
        if w.is_alive():
            w.stop_ev.set()
            w.join(60)
        src["close"]()
        if gdb and os.environ.get("INCR_KILL_KEEP") != "1":
            cleanup_lake(bucket, gdb)
    kind = "MinIO + Glue" if gdb else "file://"
    print(f"{name} ({kind}, {time.monotonic() - t_start:.0f} s): {fig['runs']} incremental "
          f"collects + 1 final, kills: {fig['kills_random']} "
          f"at random moments, {fig['kills_failpoint']} at failpoints, {fig['kills_uploader']} "
          f"uploaders; {fig['writes']} writer transactions; {fig['ranges']} committed ranges "
          f"chained without gap or overlap; {fig['rows']} row versions checked in their ranges, "
          f"duplicated 0; latest versions = source for {fig['latest']} rows of t, "
          f"{fig['ev']} ids of ev exactly once, missing 0"
          + (f"; Trino: t_current = source row for row ({current[0]} rows), ev_current = source "
             f"({current[1]} rows)" if current else ""))
    return fig


def cleanup_lake(bucket, gdb):
    try:
        import lake
        g = lake.glue()
        for t in g.get_tables(DatabaseName=gdb)["TableList"]:
            g.delete_table(DatabaseName=gdb, Name=t["Name"])
        g.delete_database(Name=gdb)
    except Exception:  # noqa: BLE001 - cleanup is best effort
        pass
    bucket.destroy()


SOURCES = {"sqlite": sqlite_source, "postgresql": pg_source, "mariadb": mariadb_source,
           "ferretdb": ferretdb_source}


def test():
    if not failpoints_built():
        print("SKIP: binary built without -Dfailpoints=true")
        sys.exit(77)
    rng = seeded_random()
    names = [n.strip() for n in os.environ.get("INCR_KILL_SOURCES", ",".join(SOURCES)).split(",")
             if n.strip()]
    if os.environ.get("INCR_KILL_PG", "1") == "0":
        names = [n for n in names if n != "postgresql"]
    for n in names:
        check(n in SOURCES, f"INCR_KILL_SOURCES: unknown source {n!r} (known: {', '.join(SOURCES)})")
    use_trino = os.environ.get("INCR_KILL_TRINO", "1") != "0"
    if use_trino and any(n != "sqlite" for n in names):
        why = trino_ready()
        check(why is None, f"the <table>_current check needs Trino: {why} (start it with "
              "`bash tests/servers/start.sh trino`, or set INCR_KILL_TRINO=0 to leave the check out)")
    elif not use_trino:
        print("INCR_KILL_TRINO=0: the Trino <table>_current check is left out")
    total = {}
    for n in names:
        fig = one_source(n, SOURCES[n], int(os.environ.get("INCR_KILL_RUNS", "60")), rng, use_trino)
        for k, v in fig.items():
            total[k] = total.get(k, 0) + v
    print(f"total: {total.get('runs', 0)} runs, {total.get('kills_random', 0) + total.get('kills_failpoint', 0)} "
          f"collector kills, {total.get('kills_uploader', 0)} uploader kills, {total.get('ranges', 0)} "
          f"committed ranges, {total.get('rows', 0)} row versions checked; missing 0, duplicated 0")


if __name__ == "__main__":
    main(test)
