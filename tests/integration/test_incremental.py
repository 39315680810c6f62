#!/usr/bin/env python3
"""LOAD_MODE=incremental (README "Incremental extraction") on SQLite, PostgreSQL,
MariaDB and FerretDB (MongoDB).

Per source: the first run is a snapshot that sets the watermark; after inserts
and updates (checked with the source's own client: sqlite3 module, psql) the
next run extracts exactly the changed rows, the manifest and the commit record
say mode and range; a run with nothing new extracts nothing; `ingesta reset
--to` re-reads from there, `reset` alone makes the next run a snapshot.
SQLite also: the checks at start (exit 2 naming table and column), the NULL
rules, INCREMENTAL_LAG, FULL_REFRESH_EVERY, status --json, reset refused while
a collector of the source runs. MariaDB (checked with the mariadb client):
datetime(6), decimal, string (a quote, the column's collation) and unsigned
cursors, NULL rule, reset, the lag. FerretDB (checked with pymongo): a date
field, an ObjectId _id (insert-only), an int field (FerretDB has no
decimal128), mixed types refused,
missing fields as NULLs, reset.
"""
import json
import os
import secrets
import sqlite3
import subprocess
import time

from ingesta_test import (INGESTA, bucket_rows, check, clean_env, commit_records, main, run,
                          servers_env, spool_db, tempdir, write_config)


def collect(cfg, rc=0):
    """collect, then (when it succeeded) upload --once into the file:// bucket."""
    p = run(["collect", "--config", cfg], check_rc=rc)
    if p.returncode == 0:
        run(["upload", "--config", cfg, "--once"])
    return p


def upload(cfg):
    run(["upload", "--config", cfg, "--once"])


def rows_of_run(bucket, table, run_id):
    """Rows of one run's data objects (object names carry the run)."""
    out = []
    for d, _, files in os.walk(os.path.join(bucket, table)):
        for f in sorted(files):
            if f.startswith(run_id) and not f.startswith("_"):
                from ingesta_test import read_object
                out += [json.loads(x) for x in read_object(os.path.join(d, f)).splitlines()]
    return out


def last_run(spool):
    with spool_db(spool) as db:
        return db.execute("SELECT run_id FROM runs ORDER BY started_at DESC, rowid DESC "
                          "LIMIT 1").fetchone()[0]


def watermark(spool, table, source=None):
    with spool_db(spool) as db:
        r = db.execute("SELECT value FROM watermarks WHERE table_name=? AND source=coalesce(?, "
                       "source) ORDER BY rowid", (table, source)).fetchone()
    return r[0] if r else "absent"


def sqlite_case():
    d = tempdir("incr-sqlite")
    src = os.path.join(d, "src.db")
    bucket = os.path.join(d, "bucket")
    spool = os.path.join(d, "spool")
    db = sqlite3.connect(src)
    db.executescript("""
        CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT, upd INTEGER NOT NULL);
        CREATE TABLE plain (id INTEGER PRIMARY KEY, x TEXT);
        INSERT INTO orders VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 20);
        INSERT INTO plain VALUES (1, 'p');
    """)
    db.commit()
    base = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool,
            "S3_BUCKET": "file://" + bucket, "LOAD_MODE": "incremental",
            "INCREMENTAL_COLUMN": "upd"}
    cfg = write_config(os.path.join(d, "c.env"), base)
    p = collect(cfg)
    check("no cursor column: read as a snapshot" in p.stderr and "table=plain" in p.stderr,
          "the fallback of a table without the cursor is logged")
    r1 = last_run(spool)
    upload(cfg)
    check(len(rows_of_run(bucket, "orders", r1)) == 3, "first run: a snapshot of 3 rows")
    check(watermark(spool, "orders") == "20", "watermark = max(upd) = 20")
    rec = commit_records(bucket)[(r1, "orders")]
    check(rec["mode"] == "snapshot" and rec["range"] == {"column": "upd", "after": None,
                                                         "through": "20"}, f"record {rec}")
    check("range" not in commit_records(bucket)[(r1, "plain")], "no range for plain tables")

    # inserts and updates; one more row at the same cursor value as the mark
    # would be lost by a `>` on a non-unique cursor written late: it is not
    # possible here, all rows with upd <= 20 were in the snapshot.
    db.executescript("""
        INSERT INTO orders VALUES (4, 'd', 30);
        UPDATE orders SET v = 'B', upd = 31 WHERE id = 2;
    """)
    db.commit()
    changed = {r[0] for r in db.execute("SELECT id FROM orders WHERE upd > 20 AND upd <= 31")}
    collect(cfg)
    r2 = last_run(spool)
    upload(cfg)
    got = rows_of_run(bucket, "orders", r2)
    check(sorted(x["id"] for x in got) == sorted(changed),
          f"second run: exactly the changed rows {changed}, got {got}")
    rec = commit_records(bucket)[(r2, "orders")]
    check(rec["mode"] == "incremental" and rec["range"]["after"] == "20"
          and rec["range"]["through"] == "31", f"record {rec}")
    man = json.load(open(os.path.join(bucket, os.path.dirname(rec["manifest_key"]),
                                      os.path.basename(rec["manifest_key"]))))
    check(man["mode"] == "incremental" and man["range"] == rec["range"], f"manifest {man}")
    collect(cfg)
    r3 = last_run(spool)
    check(rows_of_run(bucket, "orders", r3) == [], "nothing new: nothing read")
    check(watermark(spool, "orders") == "31", "watermark kept")

    st = json.loads(run(["status", "--config", cfg, "--json"]).stdout)
    inc = [t for t in st["incremental"] if t["table"] == "orders"]
    check(inc and inc[0]["watermark"] == "31" and inc[0]["cursor_column"] == "upd"
          and inc[0]["mode"] == "incremental", f"status incremental {st['incremental']}")
    check("incremental tables:" in run(["status", "--config", cfg]).stdout, "status text")

    # reset --to: re-read (20, 31]; reset: a snapshot.
    run(["reset", "--config", cfg, "--table", "orders", "--to", "20"])
    collect(cfg)
    r4 = last_run(spool)
    check(sorted(x["id"] for x in rows_of_run(bucket, "orders", r4)) == sorted(changed),
          "after reset --to 20 the range is re-read")
    run(["reset", "--config", cfg, "--table", "orders", "--to", "x"], check_rc=2)
    run(["reset", "--config", cfg, "--table", "orders"])
    check(watermark(spool, "orders") == "absent", "reset clears")
    collect(cfg)
    r5 = last_run(spool)
    check(len(rows_of_run(bucket, "orders", r5)) == 4, "after reset: a snapshot")
    run(["reset", "--config", cfg, "--table", "nope", "--to", "3"], check_rc=6)

    # reset refused while a collector of the source runs: a run row in
    # state running whose lock a live process holds (as spool_run_begin does)
    import fcntl
    rid = "20990101T000000Z-0000beef"
    w = sqlite3.connect(os.path.join(spool, "spool.db"))
    w.execute("INSERT INTO runs (run_id, source, db_type, bucket, started_at) "
              "VALUES (?, 'sqlite', 'sqlite', 'b', 0)", (rid,))
    w.commit()
    lock = open(os.path.join(spool, "locks", f"run-{rid}.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    p = run(["reset", "--config", cfg, "--table", "orders"], check_rc=6)
    check("is running" in p.stderr and rid in p.stderr, p.stderr)
    lock.close()  # the collector died: reset allowed
    run(["reset", "--config", cfg, "--table", "orders"])
    w.execute("UPDATE runs SET state='failed' WHERE run_id=?", (rid,))
    w.commit()
    w.close()

    # checks at start: exit 2 naming table and column
    for extra, want in [({"INCREMENTAL_COLUMNS": "orders:nope"}, 'table "orders" has no column "nope"'),
                        ({"INCREMENTAL_COLUMNS": "orders:v", "INCREMENTAL_COLUMN": ""}, ""),
                        ({"INCREMENTAL_COLUMN": "", "INCREMENTAL_COLUMNS": ""}, "INCREMENTAL_COLUMN")]:
        c2 = write_config(os.path.join(d, "bad.env"), dict(base, **extra))
        p = collect(c2, rc=None)
        if want:
            check(p.returncode == 2 and want in p.stderr, f"{extra}: {p.returncode} {p.stderr}")
    db.executescript("CREATE TABLE f (id INTEGER PRIMARY KEY, upd REAL NOT NULL);"
                     "CREATE TABLE n (id INTEGER PRIMARY KEY, upd INTEGER);"
                     "INSERT INTO n VALUES (1, 5), (2, NULL);")
    db.commit()
    p = collect(cfg, rc=2)
    check('"f"' in p.stderr and '"upd"' in p.stderr and "REAL" in p.stderr, p.stderr)
    db.execute("DROP TABLE f")
    db.commit()
    p = collect(cfg, rc=2)
    check('table "n": cursor column "upd" may be NULL' in p.stderr, p.stderr)

    # INCREMENTAL_NULLS=snapshot: a run that sees a NULL cursor is a snapshot
    cn = write_config(os.path.join(d, "n.env"), dict(base, INCLUDE_TABLES="n",
                                                      INCREMENTAL_NULLS="snapshot"))
    collect(cn)
    db.execute("INSERT INTO n VALUES (3, 6)")
    db.commit()
    collect(cn)
    rn = last_run(spool)
    check(len(rows_of_run(bucket, "n", rn)) == 3, "NULLS=snapshot: whole table while a NULL is there")
    db.execute("UPDATE n SET upd = 7 WHERE id = 2")
    db.commit()
    collect(cn)
    rn = last_run(spool)
    check([x["id"] for x in rows_of_run(bucket, "n", rn)] == [2], "then ranges again")
    # INCREMENTAL_NULLS=skip: NULL rows only with snapshots
    cs = write_config(os.path.join(d, "s.env"), dict(base, INCLUDE_TABLES="n",
                                                      INCREMENTAL_NULLS="skip"))
    db.execute("INSERT INTO n VALUES (4, NULL), (5, 8)")
    db.commit()
    collect(cs)
    rn = last_run(spool)
    check([x["id"] for x in rows_of_run(bucket, "n", rn)] == [5], "NULLS=skip: NULL row not read")

    # FULL_REFRESH_EVERY: a snapshot when the last one is older
    cf = write_config(os.path.join(d, "f.env"), dict(base, INCLUDE_TABLES="orders",
                                                      FULL_REFRESH_EVERY="1s"))
    collect(cf)
    time.sleep(1.2)
    collect(cf)
    rf = last_run(spool)
    check(len(rows_of_run(bucket, "orders", rf)) == 4, "FULL_REFRESH_EVERY: snapshot")
    collect(cf)  # right after: a range (nothing new)
    check(rows_of_run(bucket, "orders", last_run(spool)) == [], "then a range")

    # INCREMENTAL_LAG: a date-time cursor within the lag stays out
    db.executescript("""CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME NOT NULL);""")
    now = time.time()
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    db.execute("INSERT INTO ev VALUES (1, ?), (2, ?)", (fmt(now - 3600), fmt(now - 5)))
    db.commit()
    cl = write_config(os.path.join(d, "l.env"), dict(base, INCLUDE_TABLES="ev",
                                                      INCREMENTAL_COLUMN="at",
                                                      INCREMENTAL_LAG="10m"))
    collect(cl)
    check([x["id"] for x in rows_of_run(bucket, "ev", last_run(spool))] == [1],
          "lag: the row within 10m of now is held back, even in the snapshot")
    check(watermark(spool, "ev") == fmt(now - 3600), "watermark = the older row")
    upload(cfg)


def pg_case():
    srv = servers_env()
    host, port = srv["POSTGRESQL_HOST"], srv["POSTGRESQL_PORT"]
    user, pw = srv["POSTGRESQL_USER"], srv["POSTGRESQL_PASSWORD"]
    dbname = "incr_" + secrets.token_hex(4)
    penv = dict(os.environ, PGPASSWORD=pw)

    def psql(sql, db=dbname):
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host,
                            "-p", port, "-U", user, "-d", db, "-c", sql], env=penv,
                           capture_output=True, text=True)
        check(p.returncode == 0, f"psql {sql}: {p.stderr}")
        return p.stdout

    admin = srv["POSTGRESQL_DATABASE"]
    psql(f"CREATE DATABASE {dbname}", db=admin)
    try:
        psql("CREATE TABLE t (id int PRIMARY KEY, v text, upd timestamptz NOT NULL, "
             "n numeric(10,2) NOT NULL);"
             "INSERT INTO t VALUES (1,'a','2026-01-01 10:00:00.5+00', 1.5),"
             "(2,'b','2026-01-01 11:00:00.25+00', 2.5);")
        d = tempdir("incr-pg")
        bucket, spool = os.path.join(d, "bucket"), os.path.join(d, "spool")
        base = {"DB_TYPE": "postgresql", "POSTGRES_HOST": host, "POSTGRES_PORT": port,
                "POSTGRES_USER": user, "POSTGRES_PASSWORD": pw, "POSTGRES_DB": dbname,
                "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
                "LOAD_MODE": "incremental", "INCREMENTAL_COLUMN": "upd"}
        cfg = write_config(os.path.join(d, "c.env"), base)
        collect(cfg)
        r1 = last_run(spool)
        check(len(rows_of_run(bucket, "t", r1)) == 2, "pg snapshot")
        check(watermark(spool, "t") == "2026-01-01 11:00:00.25+00", watermark(spool, "t"))
        # a value with a quote, a row at the mark's microsecond + 1
        psql("INSERT INTO t VALUES (3, 'it''s', '2026-01-01 11:00:00.250001+00', 3);"
             "UPDATE t SET v = 'A', upd = '2026-01-02 00:00:00+00' WHERE id = 1;")
        want = psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t "
                    "WHERE upd > '2026-01-01 11:00:00.25+00'").strip()
        collect(cfg)
        r2 = last_run(spool)
        got = ",".join(str(x["id"]) for x in sorted(rows_of_run(bucket, "t", r2),
                                                    key=lambda x: x["id"]))
        check(got == want == "1,3", f"pg range: got {got}, psql says {want}")
        collect(cfg)
        check(rows_of_run(bucket, "t", last_run(spool)) == [], "pg: nothing new")
        # a decimal cursor, per table
        c2 = write_config(os.path.join(d, "n.env"), dict(base, INCREMENTAL_COLUMNS="t:n",
                                                          SOURCE_NAME="pgn"))
        collect(c2)
        psql("INSERT INTO t VALUES (4, 'd', now(), 3.01)")
        collect(c2)
        check([x["id"] for x in rows_of_run(bucket, "t", last_run(spool))] == [4],
              "pg decimal cursor: exactly the new row")
        run(["reset", "--config", c2, "--table", "t", "--to", "1.5"])
        collect(c2)
        check(sorted(x["id"] for x in rows_of_run(bucket, "t", last_run(spool))) == [2, 3, 4],
              "pg reset --to 1.5")
        psql("ALTER TABLE t ADD COLUMN f float8")
        c3 = write_config(os.path.join(d, "f.env"), dict(base, INCREMENTAL_COLUMNS="t:f"))
        p = collect(c3, rc=2)
        check('"t"' in p.stderr and '"f"' in p.stderr, p.stderr)
        upload(cfg)
        recs = commit_records(bucket)
        check(recs[(r2, "t")]["range"] == {"column": "upd",
                                           "after": "2026-01-01 11:00:00.25+00",
                                           "through": "2026-01-02 00:00:00+00"},
              f"pg record {recs[(r2, 't')]}")
    finally:
        psql(f"DROP DATABASE {dbname} WITH (FORCE)", db=admin)


def mariadb_case():
    srv = servers_env()
    dbname = "incr_" + secrets.token_hex(4)
    menv = dict(os.environ, MYSQL_PWD=srv["MARIADB_PASSWORD"])

    def sql(text, db=dbname):
        args = ["mariadb", "--no-defaults", "-h", srv["MARIADB_HOST"], "-P", srv["MARIADB_PORT"],
                "-u", srv["MARIADB_USER"], "--default-character-set=utf8mb4", "--batch",
                "--skip-column-names"] + ([db] if db else [])
        p = subprocess.run(args, input=text, env=menv, capture_output=True, text=True)
        check(p.returncode == 0, f"mariadb {text}: {p.stderr}")
        return p.stdout

    sql(f"CREATE DATABASE {dbname} CHARACTER SET utf8mb4", db=None)
    try:
        sql("CREATE TABLE t (id int PRIMARY KEY, v varchar(20), upd datetime(6) NOT NULL, "
            "n decimal(10,2) NOT NULL, s varchar(20) COLLATE utf8mb4_bin NOT NULL, "
            "u bigint unsigned NOT NULL, f double NOT NULL DEFAULT 0, nn int);"
            "INSERT INTO t (id, v, upd, n, s, u, nn) VALUES "
            "(1,'a','2026-01-01 10:00:00.5', 1.5, 'a', 18446744073709551000, 1),"
            "(2,'b','2026-01-01 11:00:00.25', 2.5, 'b', 18446744073709551001, NULL);"
            "CREATE TABLE ev (id int PRIMARY KEY, at timestamp(3) NOT NULL);")
        d = tempdir("incr-mariadb")
        bucket, spool = os.path.join(d, "bucket"), os.path.join(d, "spool")
        base = {"DB_TYPE": "mysql", "MYSQL_HOST": srv["MARIADB_HOST"],
                "MYSQL_PORT": srv["MARIADB_PORT"], "MYSQL_USER": srv["MARIADB_USER"],
                "MYSQL_PASSWORD": srv["MARIADB_PASSWORD"], "MYSQL_DATABASE": dbname,
                "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
                "LOAD_MODE": "incremental", "INCREMENTAL_COLUMNS": "t:upd,ev:at"}
        cfg = write_config(os.path.join(d, "c.env"), base)
        collect(cfg)
        r1 = last_run(spool)
        check(len(rows_of_run(bucket, "t", r1)) == 2, "mariadb snapshot")
        check(watermark(spool, "t") == "2026-01-01 11:00:00.250000", watermark(spool, "t"))
        sql("INSERT INTO t (id, v, upd, n, s, u) VALUES "
            "(3, 'it''s', '2026-01-01 11:00:00.250001', 3, 'B', 18446744073709551002);"
            "UPDATE t SET v = 'A', upd = '2026-01-02 00:00:00' WHERE id = 1;")
        want = sql("SELECT group_concat(id ORDER BY id) FROM t "
                   "WHERE upd > '2026-01-01 11:00:00.25'").strip()
        collect(cfg)
        r2 = last_run(spool)
        got = ",".join(str(x["id"]) for x in sorted(rows_of_run(bucket, "t", r2),
                                                    key=lambda x: x["id"]))
        check(got == want == "1,3", f"mariadb range: got {got}, mariadb says {want}")
        collect(cfg)
        check(rows_of_run(bucket, "t", last_run(spool)) == [], "mariadb: nothing new")
        upload(cfg)
        rec = commit_records(bucket)[(r2, "t")]
        check(rec["mode"] == "incremental" and rec["range"] == {
            "column": "upd", "after": "2026-01-01 11:00:00.250000",
            "through": "2026-01-02 00:00:00.000000"}, f"mariadb record {rec}")
        # decimal, binary-collated string and unsigned cursors, per table
        for col, reset_to in [("n", "1.5"), ("s", "a"), ("u", "18446744073709551000")]:
            c2 = write_config(os.path.join(d, f"{col}.env"),
                              dict(base, INCREMENTAL_COLUMNS=f"t:{col}", SOURCE_NAME="m" + col,
                                   INCLUDE_TABLES="t"))
            collect(c2)
            check(len(rows_of_run(bucket, "t", last_run(spool))) == 3, f"{col}: snapshot")
            run(["reset", "--config", c2, "--table", "t", "--to", reset_to])
            collect(c2)
            ids = sorted(x["id"] for x in rows_of_run(bucket, "t", last_run(spool)))
            want_ids = [int(x) for x in sql(
                f"SELECT id FROM t WHERE {col} > (SELECT {col} FROM t WHERE id = 1) "
                f"ORDER BY id").split()]
            check(ids == want_ids, f"mariadb {col} cursor after reset --to {reset_to}: "
                  f"{ids}, the client says {want_ids}")
        check(want_ids == [2, 3], "u: unsigned values past 2^63 compare as unsigned")
        check(sql("SELECT group_concat(id ORDER BY id) FROM t WHERE s > 'a'").strip() == "2",
              "utf8mb4_bin: 'B' < 'a' < 'b'")
        # utf8mb4_bin: 'B' < 'a'; the watermark 'b' (max) leaves 'B' out, a
        # case-insensitive comparison would not
        c5 = write_config(os.path.join(d, "s2.env"),
                          dict(base, INCREMENTAL_COLUMNS="t:s", SOURCE_NAME="ms",
                               INCLUDE_TABLES="t"))
        collect(c5)
        check(watermark(spool, "t", "ms") == "b", f"string mark {watermark(spool, 't', 'ms')}")
        sql("UPDATE t SET s = 'c' WHERE id = 3")
        collect(c5)
        check([x["id"] for x in rows_of_run(bucket, "t", last_run(spool))] == [3],
              "mariadb string cursor: the updated row only")
        # refused types and the NULL rule: exit 2 naming table and column
        c3 = write_config(os.path.join(d, "f.env"), dict(base, INCREMENTAL_COLUMNS="t:f"))
        p = collect(c3, rc=2)
        check('"t"' in p.stderr and '"f"' in p.stderr and "double" in p.stderr, p.stderr)
        c4 = write_config(os.path.join(d, "nn.env"), dict(base, INCREMENTAL_COLUMNS="t:nn"))
        p = collect(c4, rc=2)
        check('cursor column "nn" may be NULL' in p.stderr, p.stderr)
        c4 = write_config(os.path.join(d, "nn2.env"),
                          dict(base, INCREMENTAL_COLUMNS="t:nn", INCREMENTAL_NULLS="skip",
                               SOURCE_NAME="mnn", INCLUDE_TABLES="t"))
        collect(c4)
        check(sorted(x["id"] for x in rows_of_run(bucket, "t", last_run(spool))) == [1, 2, 3],
              "NULLS=skip: the first run is a snapshot with the NULL cursors")
        sql("UPDATE t SET nn = 5 WHERE id = 2")
        collect(c4)
        check([x["id"] for x in rows_of_run(bucket, "t", last_run(spool))] == [2],
              "NULLS=skip: then the range")
        # lag on a timestamp cursor: the server's clock at the snapshot
        sql("INSERT INTO ev VALUES (1, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR), "
            "(2, UTC_TIMESTAMP(3) - INTERVAL 5 SECOND)")
        cl = write_config(os.path.join(d, "l.env"),
                          dict(base, INCLUDE_TABLES="ev", INCREMENTAL_LAG="10m",
                               SOURCE_NAME="mlag"))
        collect(cl)
        check([x["id"] for x in rows_of_run(bucket, "ev", last_run(spool))] == [1],
              "mariadb lag: the row within 10m of the server's now is held back")
        upload(cfg)
    finally:
        sql(f"DROP DATABASE {dbname}", db=None)


def mongo_case():
    import datetime
    import pymongo
    srv = servers_env()
    client = pymongo.MongoClient(srv["FERRETDB_HOST"], int(srv["FERRETDB_PORT"]))
    dbname = "incr_" + secrets.token_hex(4)
    mdb = client[dbname]
    utc = datetime.timezone.utc
    t0 = datetime.datetime(2026, 1, 1, 10, 0, 0, 500000, tzinfo=utc)
    try:
        mdb.orders.insert_many([
            {"_id": 1, "v": "a", "updatedAt": t0, "ver": 1},
            {"_id": 2, "v": "b", "updatedAt": t0 + datetime.timedelta(hours=1), "ver": 2}])
        mdb.events.insert_many([{"x": i} for i in range(3)])
        mdb.mixed.insert_many([{"_id": 1, "updatedAt": t0}, {"_id": 2, "updatedAt": "x"}])
        d = tempdir("incr-mongo")
        bucket, spool = os.path.join(d, "bucket"), os.path.join(d, "spool")
        base = {"DB_TYPE": "mongodb", "MONGO_HOST": srv["FERRETDB_HOST"],
                "MONGO_PORT": srv["FERRETDB_PORT"], "MONGO_DATABASE": dbname,
                "SPOOL_DIR": spool, "S3_BUCKET": "file://" + bucket,
                "LOAD_MODE": "incremental", "INCREMENTAL_COLUMNS": "orders:updatedAt,events:_id",
                "INCLUDE_TABLES": "orders,events"}
        cfg = write_config(os.path.join(d, "c.env"), base)
        collect(cfg)
        r1 = last_run(spool)
        check(len(rows_of_run(bucket, "orders", r1)) == 2, "mongo snapshot")
        check(watermark(spool, "orders") == "2026-01-01T11:00:00.500Z", watermark(spool, "orders"))
        oid_mark = watermark(spool, "events")
        check(oid_mark == str(max(x["_id"] for x in mdb.events.find())), f"oid mark {oid_mark}")
        # an update 1 ms past the mark, an insert, an untouched row
        mdb.orders.update_one({"_id": 1}, {"$set": {"v": "A", "updatedAt":
                                                    t0 + datetime.timedelta(hours=1, milliseconds=1)}})
        mdb.orders.insert_one({"_id": 3, "v": "it's", "updatedAt": t0 + datetime.timedelta(days=1),
                               "ver": 3})
        mdb.events.insert_many([{"x": 10}, {"x": 11}])
        mark = datetime.datetime(2026, 1, 1, 11, 0, 0, 500000, tzinfo=utc)
        want = sorted(x["_id"] for x in mdb.orders.find({"updatedAt": {"$gt": mark}}))
        collect(cfg)
        r2 = last_run(spool)
        got = sorted(x["_id"] for x in rows_of_run(bucket, "orders", r2))
        check(got == want == [1, 3], f"mongo range: got {got}, pymongo says {want}")
        ev = sorted(x["x"] for x in rows_of_run(bucket, "events", r2))
        check(ev == [10, 11], f"mongo ObjectId cursor: the inserts only, got {ev}")
        collect(cfg)
        check(rows_of_run(bucket, "orders", last_run(spool)) == [], "mongo: nothing new")
        upload(cfg)
        rec = commit_records(bucket)[(r2, "orders")]
        check(rec["mode"] == "incremental" and rec["range"] == {
            "column": "updatedAt", "after": "2026-01-01T11:00:00.500Z",
            "through": "2026-01-02T10:00:00.500Z"}, f"mongo record {rec}")
        run(["reset", "--config", cfg, "--table", "orders", "--to", "2026-01-01T10:30:00Z"])
        collect(cfg)
        check(sorted(x["_id"] for x in rows_of_run(bucket, "orders", last_run(spool))) == [1, 2, 3],
              "mongo reset --to 10:30")
        # an int cursor (FerretDB 1.24 has no decimal128; its type rule is unit-tested)
        for col, mark, want in [("ver", "1", [2, 3])]:
            c2 = write_config(os.path.join(d, f"{col}.env"),
                              dict(base, INCREMENTAL_COLUMNS=f"orders:{col}", SOURCE_NAME="m" + col,
                                   INCLUDE_TABLES="orders"))
            collect(c2)
            run(["reset", "--config", c2, "--table", "orders", "--to", mark])
            collect(c2)
            got = sorted(x["_id"] for x in rows_of_run(bucket, "orders", last_run(spool)))
            check(got == want, f"mongo {col} cursor after reset --to {mark}: {got}")
        # mixed types are refused; a missing field is a NULL
        cm = write_config(os.path.join(d, "m.env"), dict(base, INCLUDE_TABLES="mixed",
                                                         INCREMENTAL_COLUMNS="mixed:updatedAt"))
        p = collect(cm, rc=2)
        check('"mixed"' in p.stderr and '"updatedAt"' in p.stderr and "mixed(" in p.stderr,
              p.stderr)
        mdb.orders.insert_one({"_id": 4, "v": "no cursor"})
        p = collect(cfg, rc=2)
        check('cursor column "updatedAt" may be NULL' in p.stderr, p.stderr)
        cn = write_config(os.path.join(d, "n.env"), dict(base, INCREMENTAL_NULLS="snapshot"))
        collect(cn)
        check(sorted(x["_id"] for x in rows_of_run(bucket, "orders", last_run(spool))) ==
              [1, 2, 3, 4], "mongo NULLS=snapshot: the whole collection while one lacks it")
        upload(cfg)
    finally:
        client.drop_database(dbname)


def test():
    sqlite_case()
    pg_case()
    mariadb_case()
    mongo_case()


if __name__ == "__main__":
    main(test)
