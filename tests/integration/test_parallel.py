#!/usr/bin/python3
"""COLLECT_PARALLEL: several connections, one snapshot, the same rows as serial.

1. Consistency under load (PostgreSQL, then MariaDB). Two account tables and a
   ledger; a stored procedure commits transfers as fast as it can (a - 1 on a
   random row of acct_a, + 1 on one of acct_b, one ledger row), and filler
   tables spread the reads over the connections. While it runs, `ingesta
   collect` with COLLECT_PARALLEL=3 reads the tables on three connections,
   each table with a primary key split into 3 key ranges read on different
   connections (a small COLLECT_SPLIT_BYTES):
   in what it uploads, sum(acct_a) + sum(acct_b) is the constant and
   (initial sum(acct_a) - sum(acct_a)) is the ledger's row count, which holds
   only if the three tables were read at one instant. The ledger must have
   grown during the collect (the load really ran across it).
2. Row-exactness: with the load stopped, COLLECT_PARALLEL=1, =3 and =3 with
   every keyed table split into 3 ranges upload the same rows per table (as
   sorted lines; the order of tables committed and of rows in a split table
   may differ, the rows may not).
3. MariaDB without the RELOAD privilege: one WARNING naming RELOAD, one
   connection, exit 0, the same rows. The same after FLUSH TABLES WITH READ
   LOCK waited 2 s behind another session's LOCK TABLES.
4. PostgreSQL, SIGTERM while tables and key ranges of a split table are in
   flight: exit 7 within seconds, no partition of the run completed but those
   logged committed.
5. FerretDB: collections read on several connections, the same documents as
   serial, and the log says there is no common point in time.
Results are read with psql / mariadb / pymongo and the zstd CLI.
"""
import json
import os
import re
import secrets
import signal
import subprocess
import time

from ingesta_test import (TestFailure, bucket_files, check, clean_env, main, read_object, run,
                          servers_env, spool_db, tempdir, write_config)

ENV = {}
N_ACCT = 20000
FILLERS = 4
FILLER_ROWS = 60000


def psql(db, sql, check_rc=True):
    args = ["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
            ENV["POSTGRESQL_HOST"], "-p", ENV["POSTGRESQL_PORT"], "-U", ENV["POSTGRESQL_USER"],
            "-d", db, "-c", sql]
    p = subprocess.run(args, env=dict(os.environ, PGPASSWORD=ENV["POSTGRESQL_PASSWORD"]),
                       capture_output=True, text=True, timeout=600)
    if check_rc and p.returncode != 0:
        raise TestFailure(f"psql failed ({sql[:80]}):\n{p.stderr}")
    return p.stdout


def psql_bg(db, sql):
    args = ["/usr/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", ENV["POSTGRESQL_HOST"],
            "-p", ENV["POSTGRESQL_PORT"], "-U", ENV["POSTGRESQL_USER"], "-d", db, "-c", sql]
    return subprocess.Popen(args, env=dict(os.environ, PGPASSWORD=ENV["POSTGRESQL_PASSWORD"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def maria_args(db, user=None, password=None):
    return (["mariadb", "--no-defaults", "-h", ENV["MARIADB_HOST"], "-P", ENV["MARIADB_PORT"],
             "-u", user or ENV["MARIADB_USER"], "--batch", "--skip-column-names"]
            + ([db] if db else [])), dict(os.environ, MYSQL_PWD=password or ENV["MARIADB_PASSWORD"])


def maria(db, sql):
    args, env = maria_args(db)
    p = subprocess.run(args, input=sql, env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise TestFailure(f"mariadb failed ({sql[:80]}):\n{p.stderr}")
    return p.stdout


def maria_bg(db, sql):
    args, env = maria_args(db)
    p = subprocess.Popen(args, stdin=subprocess.PIPE, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdin.write(sql)
    p.stdin.close()
    return p


def table_lines(bucket):
    """{table: sorted NDJSON lines} of a file:// bucket's data objects."""
    out = {}
    for rel in bucket_files(bucket):
        parts = rel.split(os.sep)
        if parts[0] == "ingesta_runs" or os.path.basename(rel).startswith("_"):
            continue
        lines = read_object(os.path.join(bucket, rel)).decode("utf-8").splitlines()
        out.setdefault(parts[0], []).extend(lines)
    return {t: sorted(v) for t, v in out.items()}


def collect(work, name, settings, parallel, split="0"):
    """split: COLLECT_SPLIT_BYTES ("0": tables are never split)."""
    spool = os.path.join(work, name, "spool")
    bucket = os.path.join(work, name, "bucket")
    os.makedirs(bucket)
    cfg = write_config(os.path.join(work, name + ".env"),
                       dict(settings, SPOOL_DIR=spool, S3_BUCKET="file://" + bucket,
                            COLLECT_PARALLEL=str(parallel), COLLECT_SPLIT_BYTES=split,
                            SEGMENT_MAX_ROWS="7000"))
    p = run(["collect", "--config", cfg])
    run(["upload", "--config", cfg, "--once"])
    return p, table_lines(bucket)


def check_invariants(lines, what):
    a = [json.loads(x)["bal"] for x in lines["acct_a"]]
    b = [json.loads(x)["bal"] for x in lines["acct_b"]]
    ledger = len(lines["ledger"])
    check(len(a) == N_ACCT and len(b) == N_ACCT, f"{what}: {len(a)}/{len(b)} account rows")
    check(sum(a) + sum(b) == 2 * N_ACCT * 1000,
          f"{what}: sum(acct_a)+sum(acct_b) = {sum(a) + sum(b)}, want {2 * N_ACCT * 1000}: "
          f"the tables were not read at one instant")
    check(N_ACCT * 1000 - sum(a) == ledger,
          f"{what}: acct_a lost {N_ACCT * 1000 - sum(a)} but the ledger has {ledger} rows: "
          f"the tables were not read at one instant")
    return ledger


def check_parallel_log(p, n, what, split=()):
    m = re.search(r'parallel extraction: connections share one snapshot" connections=(\d+)',
                  p.stderr)
    check(m and int(m.group(1)) == n, f"{what}: no {n}-connection log line:\n{p.stderr[-3000:]}")
    got = set(re.findall(r'"table split into key ranges" table=(\S+) column=id ranges=3', p.stderr))
    check(got >= set(split) and (split or not got) and "filler0" not in got,
          f"{what}: tables split into 3 ranges: {sorted(got)}, want {sorted(split)}\n"
          f"{p.stderr[-3000:]}")


# The ledger is small (a few hundred rows): split or not; filler0 has no
# primary key: never split.
SPLIT = ["acct_a", "acct_b"] + [f"filler{i}" for i in range(1, FILLERS)]


# ---------------------------------------------------------------- PostgreSQL

PG_SCHEMA = f"""
CREATE TABLE acct_a (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE TABLE acct_b (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE TABLE ledger (id bigserial PRIMARY KEY, a int, b int);
CREATE TABLE ctl (stop bool);
INSERT INTO ctl VALUES (false);
INSERT INTO acct_a SELECT g, 1000 FROM generate_series(1, {N_ACCT}) g;
INSERT INTO acct_b SELECT g, 1000 FROM generate_series(1, {N_ACCT}) g;
""" + "".join(f"CREATE TABLE filler{i} AS SELECT g AS id, md5(g::text) AS t "
              f"FROM generate_series(1, {FILLER_ROWS}) g;\n"
              + (f"ALTER TABLE filler{i} ADD PRIMARY KEY (id);\n" if i else "")
              for i in range(FILLERS)) + f"""
CREATE PROCEDURE churn() LANGUAGE plpgsql AS $$
DECLARE i int; j int;
BEGIN
  LOOP
    EXIT WHEN (SELECT stop FROM ctl);
    i := 1 + floor(random() * {N_ACCT})::int;
    j := 1 + floor(random() * {N_ACCT})::int;
    UPDATE acct_a SET bal = bal - 1 WHERE id = i;
    UPDATE acct_b SET bal = bal + 1 WHERE id = j;
    INSERT INTO ledger (a, b) VALUES (i, j);
    COMMIT;
  END LOOP;
END $$;
"""


def pg_settings(db):
    return {"DB_TYPE": "postgresql", "POSTGRES_HOST": ENV["POSTGRESQL_HOST"],
            "POSTGRES_PORT": ENV["POSTGRESQL_PORT"], "POSTGRES_USER": ENV["POSTGRESQL_USER"],
            "POSTGRES_PASSWORD": ENV["POSTGRESQL_PASSWORD"], "POSTGRES_DB": db,
            "EXCLUDE_TABLES": "ctl"}


def wait_ledger(count_fn, above, what):
    deadline = time.time() + 60
    while count_fn() <= above:
        check(time.time() < deadline, f"{what}: the transfer load does not commit")
        time.sleep(0.05)


def load_and_serial(work, kind, tag, settings, split, count, start, stop):
    """The two checks every server source gets: 3 connections while a churn
    load commits transfers (the ledger's sums must hold: one snapshot), then
    COLLECT_PARALLEL=3, whole tables and key-range chunks, row for row equal
    to a serial collect. Returns the serial rows."""
    load = start()
    try:
        wait_ledger(count, 50, kind)
        before = count()
        p, lines = collect(work, f"{tag}-load", settings, 3, split=split)
        after = count()
    finally:
        stop()
        load.wait(timeout=60)
    check(load.returncode == 0, f"{kind}: churn failed: {load.stderr.read()}")
    check_parallel_log(p, 3, kind, SPLIT)
    got = check_invariants(lines, kind)
    check(after > before + 10 and before <= got <= after,
          f"{kind}: ledger {before} before the collect, {after} after, {got} read: "
          "the load did not run across the collect")
    print(f"{kind}: 3 connections under load: ledger {got} rows read "
          f"({before}..{after} committed around the collect), sums hold")

    _, serial = collect(work, f"{tag}-1", settings, 1)
    _, par = collect(work, f"{tag}-3", settings, 3)
    check(serial == par, f"{kind}: COLLECT_PARALLEL=3 rows differ from serial")
    p, chunked = collect(work, f"{tag}-3s", settings, 3, split=split)
    check_parallel_log(p, 3, f"{kind} static", SPLIT)
    check(serial == chunked, f"{kind}: key-range chunks: rows differ from serial")
    check_invariants(par, f"{kind} static")
    print(f"{kind}: COLLECT_PARALLEL=3 rows identical to serial, whole tables and "
          f"tables split in 3 key ranges ({sum(len(v) for v in par.values())} rows, "
          f"{len(par)} tables)")
    return serial


def test_postgres(work):
    db = "ingesta_par_" + secrets.token_hex(4)
    psql("postgres", f"CREATE DATABASE {db}")
    try:
        psql(db, PG_SCHEMA)
        settings = pg_settings(db)
        load_and_serial(work, "postgresql", "pg", settings, "64K",
                        count=lambda: int(psql(db, "SELECT count(*) FROM ledger").strip()),
                        start=lambda: psql_bg(db, "CALL churn()"),
                        stop=lambda: psql(db, "UPDATE ctl SET stop = true"))

        test_pg_sigterm(work, db, settings)
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check_rc=False)


def test_pg_sigterm(work, db, settings):
    psql(db, "".join(f"CREATE TABLE big{i} AS SELECT g AS id, md5(g::text) AS t, "
                     f"repeat('x', 200) AS pad FROM generate_series(1, 400000) g;"
                     for i in range(3)) + "ALTER TABLE big0 ADD PRIMARY KEY (id);")
    spool = os.path.join(work, "pg-term", "spool")
    cfg = write_config(os.path.join(work, "pg-term.env"),
                       dict(settings, SPOOL_DIR=spool, S3_BUCKET="file://" + work + "/pg-term/b",
                            INCLUDE_TABLES="big*", COLLECT_PARALLEL="3", COLLECT_SPLIT_BYTES="16M",
                            COMPRESSION="zstd",
                            ZSTD_LEVEL="19"))
    p = subprocess.Popen([os.environ["INGESTA"], "collect", "--config", cfg], env=clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    took = time.time() - t0
    check(p.returncode == 7, f"SIGTERM: exit {p.returncode}, want 7\n{err[-3000:]}")
    check(took < 10, f"SIGTERM: took {took:.1f} s to stop")
    check('"table split into key ranges" table=big0' in err, f"big0 not split:\n{err[-3000:]}")
    committed = set(re.findall(r'"table committed" table=(\S+)', err))
    check(len(committed) < 3, f"SIGTERM came too late to test anything: {committed}")
    with spool_db(spool) as c:
        done = {r[0] for r in c.execute("SELECT table_name FROM partitions "
                                        "WHERE state='complete'")}
        state = c.execute("SELECT state FROM runs").fetchall()
    check(done == committed, f"SIGTERM: complete partitions {done}, logged {committed}")
    check(state == [("failed",)], f"SIGTERM: run state {state}")
    print(f"postgresql: SIGTERM with tables and key ranges in flight: exit 7 in {took:.2f} s, "
          f"{len(committed)} committed before it, the others left nothing")


# ---------------------------------------------------------------- MariaDB

MARIA_SCHEMA = f"""
CREATE TABLE acct_a (id int PRIMARY KEY, bal bigint NOT NULL) ENGINE=InnoDB;
CREATE TABLE acct_b (id int PRIMARY KEY, bal bigint NOT NULL) ENGINE=InnoDB;
CREATE TABLE ledger (id bigint AUTO_INCREMENT PRIMARY KEY, a int, b int) ENGINE=InnoDB;
CREATE TABLE ctl (stop int) ENGINE=InnoDB;
INSERT INTO ctl VALUES (0);
INSERT INTO acct_a SELECT seq, 1000 FROM seq_1_to_{N_ACCT};
INSERT INTO acct_b SELECT seq, 1000 FROM seq_1_to_{N_ACCT};
""" + "".join(f"CREATE TABLE filler{i} ({'id INT PRIMARY KEY' if i else 'id INT'}, t VARCHAR(32)) "
              f"ENGINE=InnoDB; INSERT INTO filler{i} SELECT seq, md5(seq) "
              f"FROM seq_1_to_{FILLER_ROWS};\n" for i in range(FILLERS)) + f"""
ANALYZE TABLE acct_a, acct_b, filler0, filler1, filler2, filler3;
DELIMITER //
CREATE PROCEDURE churn()
BEGIN
  DECLARE i INT; DECLARE j INT;
  WHILE (SELECT stop FROM ctl) = 0 DO
    SET i = 1 + FLOOR(RAND() * {N_ACCT}), j = 1 + FLOOR(RAND() * {N_ACCT});
    START TRANSACTION;
    UPDATE acct_a SET bal = bal - 1 WHERE id = i;
    UPDATE acct_b SET bal = bal + 1 WHERE id = j;
    INSERT INTO ledger (a, b) VALUES (i, j);
    COMMIT;
  END WHILE;
END //
DELIMITER ;
"""


def maria_settings(db, user=None, password=None):
    return {"DB_TYPE": "mysql", "MYSQL_HOST": ENV["MARIADB_HOST"],
            "MYSQL_PORT": ENV["MARIADB_PORT"], "MYSQL_USER": user or ENV["MARIADB_USER"],
            "MYSQL_PASSWORD": password or ENV["MARIADB_PASSWORD"], "MYSQL_DATABASE": db,
            "EXCLUDE_TABLES": "ctl"}


def test_mariadb(work):
    db = "ingesta_par_" + secrets.token_hex(4)
    user = "ingesta_norel_" + secrets.token_hex(3)
    pw = secrets.token_hex(8)
    maria(None, f"CREATE DATABASE {db}")
    try:
        maria(db, MARIA_SCHEMA)
        settings = maria_settings(db)
        serial = load_and_serial(work, "mariadb", "my", settings, "16K",
                                 count=lambda: int(maria(db, "SELECT count(*) FROM ledger").strip()),
                                 start=lambda: maria_bg(db, "CALL churn();\n"),
                                 stop=lambda: maria(db, "UPDATE ctl SET stop = 1"))

        # No RELOAD: one connection, said once.
        maria(None, f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{pw}';"
                    f"GRANT SELECT ON {db}.* TO '{user}'@'127.0.0.1';")
        p, norel = collect(work, "my-norel", maria_settings(db, user, pw), 3, split="16K")
        warns = [ln for ln in p.stderr.splitlines() if "level=warning" in ln]
        check(len(warns) == 1 and "RELOAD" in warns[0] and "one connection" in warns[0],
              f"mariadb without RELOAD: warnings {warns}")
        check("share one snapshot" not in p.stderr, "mariadb without RELOAD: read in parallel")
        check(pw not in p.stderr, "the password is in the log")
        check(norel == serial, "mariadb without RELOAD: rows differ from serial")
        print(f"mariadb: without RELOAD one connection, one warning: {warns[0][:160]}")

        # A table locked by another session (even one the run does not read):
        # FTWRL would wait, and every writer of the server behind it; it gives
        # up after 2 s and the run reads with one connection.
        args, env = maria_args(db)
        locker = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env, text=True)
        try:
            locker.stdin.write("LOCK TABLES ctl WRITE; SELECT SLEEP(60);\n")
            locker.stdin.flush()
            deadline = time.time() + 30
            while "ctl" not in maria(None, "SHOW OPEN TABLES WHERE In_use > 0"):
                check(time.time() < deadline, "LOCK TABLES did not take")
                time.sleep(0.1)
            t0 = time.time()
            p, locked = collect(work, "my-locked", settings, 3, split="16K")
            took = time.time() - t0
        finally:
            locker.kill()
            locker.wait()
        warns = [ln for ln in p.stderr.splitlines() if "level=warning" in ln]
        check(len(warns) == 1 and "waited 2 s" in warns[0] and "one connection" in warns[0],
              f"mariadb, a locked table: warnings {warns}")
        check(locked == serial and took < 20, f"mariadb, a locked table: {took:.1f} s")
        print(f"mariadb: another session's LOCK TABLES: FTWRL gave up after 2 s, one "
              f"connection, same rows ({took:.1f} s)")
    finally:
        maria(None, f"DROP DATABASE IF EXISTS {db}; DROP USER IF EXISTS '{user}'@'127.0.0.1';")


# ---------------------------------------------------------------- FerretDB

def test_ferretdb(work):
    import pymongo

    dbname = "ingesta_par_" + secrets.token_hex(4)
    client = pymongo.MongoClient(ENV["FERRETDB_URI"], serverSelectionTimeoutMS=10000)
    try:
        for c in range(3):
            client[dbname][f"coll{c}"].insert_many(
                [{"_id": i, "c": c, "s": f"v{i}"} for i in range(3000)])
        settings = {"DB_TYPE": "mongodb", "MONGO_HOST": ENV["FERRETDB_HOST"],
                    "MONGO_PORT": ENV["FERRETDB_PORT"], "MONGO_DATABASE": dbname}
        _, serial = collect(work, "mg-1", settings, 1)
        p, par = collect(work, "mg-3", settings, 3)
        check_parallel_log(p, 3, "ferretdb")
        check("no common point in time" in p.stderr, "ferretdb: no log line about the snapshot")
        check(serial == par and len(par) == 3, "ferretdb: COLLECT_PARALLEL=3 differs from serial")
        print("ferretdb: 3 collections on 3 connections, documents identical to serial")
    finally:
        client.drop_database(dbname)


def test():
    ENV.update(servers_env())
    work = tempdir("parallel")
    test_postgres(work)
    test_mariadb(work)
    test_ferretdb(work)


if __name__ == "__main__":
    main(test)
