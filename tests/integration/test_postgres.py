#!/usr/bin/env python3
"""PostgreSQL source against the real PostgreSQL 15 of tests/servers/start.sh.

1. tests/golden/postgres.sql loaded with psql into a fresh database; `ingesta
   extract --table golden_types` must equal golden/postgres.ndjson byte for byte,
   and so must the objects `ingesta collect` + `ingesta upload --once` put in a
   file:// bucket.
2. Extra types (money, bit, xml, ranges, geometry, hstore, enum, composite,
   domains, numeric Infinity, BC dates, arrays of every shape) with the output
   TYPES.md implies, reasoned out by hand.
3. Discovery: identifiers that need quoting, a non-public schema
   (POSTGRES_SCHEMAS), partitioned and inherited tables, views with and
   without INCLUDE_VIEWS, POSTGRES_DSN.
4. Failures: wrong password, closed port, missing database, a table dropped
   after discovery, the backend terminated mid-table, SIGTERM mid-table, a lock
   held past SOURCE_QUERY_TIMEOUT, a server silent past it. Each exits non-zero
   with one line naming host:port/db (and the table) and never the password.
"""
import os
import secrets
import shutil
import signal
import subprocess
import time

from ingesta_test import (GOLDEN, TestFailure, bucket_files, check, clean_env, data_files, main,
                          read_object, run, servers_env, tempdir, write_config)

PSQL = "/usr/bin/psql"
SRV = {}


def psql(db, sql=None, path=None, check_rc=True):
    """Run SQL through psql (ON_ERROR_STOP); return stdout (unaligned, tuples only)."""
    args = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", SRV["host"],
            "-p", SRV["port"], "-U", SRV["user"], "-d", db]
    if path:
        args += ["-f", path]
    else:
        args += ["-c", sql]
    env = dict(os.environ, PGPASSWORD=SRV["password"], PGCONNECT_TIMEOUT="10")
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    if check_rc and p.returncode != 0:
        raise TestFailure(f"psql failed ({sql or path}):\n{p.stderr}")
    return p.stdout


def pg_settings(db, **extra):
    s = {
        "DB_TYPE": "postgresql",
        "POSTGRES_HOST": SRV["host"],
        "POSTGRES_PORT": SRV["port"],
        "POSTGRES_USER": SRV["user"],
        "POSTGRES_PASSWORD": SRV["password"],
        "POSTGRES_DB": db,
        "LOG_LEVEL": "INFO",
    }
    s.update(extra)
    return s


def config(work, name, settings):
    return write_config(os.path.join(work, name + ".env"), settings)


def extract(cfg, tables, check_rc=0, timeout=600):
    return run(extract_args(cfg, tables), check_rc=check_rc, timeout=timeout)


def compare_lines(got, want, what):
    if got == want:
        return
    g = got.split("\n")
    w = want.split("\n")
    for i in range(max(len(g), len(w))):
        gl = g[i] if i < len(g) else "<missing>"
        wl = w[i] if i < len(w) else "<missing>"
        if gl != wl:
            raise TestFailure(f"{what}: line {i + 1} differs\n got: {gl}\nwant: {wl}")
    raise TestFailure(f"{what}: output differs")


# ---------------------------------------------------------------- golden

def test_golden(work, db):
    psql(db, path=os.path.join(GOLDEN, "postgres.sql"))
    with open(os.path.join(GOLDEN, "postgres.ndjson"), encoding="utf-8") as f:
        want = f.read()
    cfg = config(work, "golden", pg_settings(db))
    p = extract(cfg, ["golden_types"])
    compare_lines(p.stdout, want, "extract golden_types")

    # The same bytes through the spool and the uploader into a file:// bucket.
    spool = os.path.join(work, "spool")
    bucket = os.path.join(work, "bucket")
    os.makedirs(bucket)
    cfg2 = config(work, "collect", pg_settings(db, SPOOL_DIR=spool,
                                               S3_BUCKET="file://" + bucket,
                                               INCLUDE_TABLES="golden_types"))
    run(["collect", "--config", cfg2])
    run(["upload", "--config", cfg2, "--once"])
    objects = [f for f in bucket_files(bucket)
               if f.split(os.sep)[0] == "golden_types" and not os.path.basename(f).startswith("_")]
    check(objects, f"no golden_types objects in the bucket: {bucket_files(bucket)}")
    data = b"".join(read_object(os.path.join(bucket, f)) for f in objects)
    compare_lines(data.decode("utf-8"), want, "uploaded golden_types")
    tables = sorted({f.split(os.sep)[0] for f in bucket_files(bucket)})
    check(tables == ["golden_types", "ingesta_runs"], f"bucket tables: {tables}")
    print("golden: extract and collect+upload byte-identical")


# ---------------------------------------------------------------- extra types

EXTRA_SQL = r"""
SET TimeZone = 'America/New_York';
SET lc_monetary = 'C';
CREATE TYPE mood AS ENUM ('sad', 'happy', 'so "so"');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN tag AS text;
CREATE TABLE extra_types (
  id int PRIMARY KEY,
  m money, bt bit(4), vb varbit, x xml, r int4range, pt point, e mood, c pair,
  nn numeric, bcd date, bcts timestamp, bigd date,
  tsa timestamptz[], t2 text[], ia int[], fa real[], da float8[], na numeric[],
  ja jsonb[], ba bytea[], bx box[], ea mood[], pa posint[], ta tag[],
  dom posint, jt json, f8 float8, f4 real, iv interval, cid cidr, mac macaddr,
  ch "char", nm name, o oid, tz timetz, tmf time(3), tsvec tsvector,
  h text
);
INSERT INTO extra_types VALUES
(1, '1234.56', B'1010', B'101', '<a x="1">t</a>', '(1,10]', '(1.5,-2)', 'happy', ROW(1, 'a b'),
 'Infinity', '0044-03-15 BC', '0044-03-15 12:00:00 BC', '10000-01-01',
 ARRAY['2025-10-05 16:30:00+02', NULL, 'infinity']::timestamptz[],
 ARRAY[['a', 'b c'], ['"q"', E'\\'], [NULL, 'NULL']],
 '[0:2]={7,8,9}', '{0.1,NaN,3.4028235e38}', '{5e-324,1.2345678901234568e+20,-0}',
 '{12.50,NaN,-0.000}',
 ARRAY['{"a": 1}'::jsonb, '[1, "x"]'], ARRAY['\x6869'::bytea, '\x'], ARRAY[box '((0,0),(1,1))', box '((2,2),(3,3))'],
 ARRAY['sad', 'so "so"']::mood[], ARRAY[1, 2]::posint[], ARRAY['x y', 'z']::tag[],
 7, '{"a" : 1E2, "b": "\u00e9", "c": [ ]}', '123456789012345680000', '1e-45', '1.5 seconds', '10.0.0.0/8',
 '08:00:2b:01:02:03', 'a', 'abc', 12345, '12:00:00.5+05:53:28', '01:02:03.456', 'b:2 a:1',
 'x'),
(2, '-0.5', B'0000', B'', '', 'empty', '(0,0)', 'sad', ROW(NULL, NULL),
 '-Infinity', '4713-01-01 BC', '294276-12-31 23:59:59', '5874897-12-31',
 '{}', '{{NULL}}', '{}', '{}', '{}', '{}',
 '{}', '{}', '{}', '{}', '{}', '{}',
 NULL, '[]', '-1e300', '-3.4028235e38', '-1 year -2 months', '::1/128',
 NULL, NULL, NULL, NULL, '23:59:59.999999-14', '00:00:00', '',
 NULL);
"""

# TYPES.md: text forms -> strings; arrays -> JSON arrays with each element by
# its own rule; BC dates and years past 9999 -> the server's text form;
# infinity -> null; NaN/Infinity -> null; json nested with tokens kept.
EXTRA_WANT = [
    '{"id":1,"m":"$1,234.56","bt":"1010","vb":"101","x":"<a x=\\"1\\">t</a>","r":"[2,11)",'
    '"pt":"(1.5,-2)","e":"happy","c":"(1,\\"a b\\")","nn":null,"bcd":"0044-03-15 BC",'
    '"bcts":"0044-03-15 12:00:00 BC","bigd":"10000-01-01",'
    '"tsa":["2025-10-05T14:30:00Z",null,null],'
    '"t2":[["a","b c"],["\\"q\\"","\\\\"],[null,"NULL"]],'
    '"ia":[7,8,9],"fa":[0.1,null,3.4028235e+38],"da":[5e-324,123456789012345680000,0],'
    '"na":[12.50,null,0.000],'
    '"ja":[{"a":1},[1,"x"]],"ba":["hi",""],"bx":["(1,1),(0,0)","(3,3),(2,2)"],'
    '"ea":["sad","so \\"so\\""],"pa":[1,2],"ta":["x y","z"],'
    '"dom":7,"jt":{"a":1E2,"b":"\\u00e9","c":[]},"f8":123456789012345680000,"f4":1e-45,'
    '"iv":"PT1.5S","cid":"10.0.0.0/8","mac":"08:00:2b:01:02:03","ch":"a","nm":"abc",'
    '"o":12345,"tz":"12:00:00.500000+05:53:28","tmf":"01:02:03.456000",'
    '"tsvec":"\'a\':1 \'b\':2","h":"x"}',
    '{"id":2,"m":"-$0.50","bt":"0000","vb":"","x":"","r":"empty","pt":"(0,0)","e":"sad",'
    '"c":"(,)","nn":null,"bcd":"4713-01-01 BC","bcts":"294276-12-31 23:59:59",'
    '"bigd":"5874897-12-31","tsa":[],"t2":[[null]],"ia":[],"fa":[],"da":[],"na":[],"ja":[],"ba":[],'
    '"bx":[],"ea":[],"pa":[],"ta":[],"dom":null,"jt":[],"f8":-1e+300,"f4":-3.4028235e+38,'
    '"iv":"P-1Y-2M","cid":"::1/128","mac":null,"ch":null,"nm":null,"o":null,'
    '"tz":"23:59:59.999999-14:00","tmf":"00:00:00","tsvec":"","h":null}',
]


def test_extra_types(work, db):
    psql(db, EXTRA_SQL)
    have_hstore = psql(db, "SELECT count(*) FROM pg_available_extensions "
                           "WHERE name = 'hstore'").strip() == "1"
    want = list(EXTRA_WANT)
    if have_hstore:
        # ALTER ... TYPE rewrites the table in scan order (an UPDATE would move row 1).
        psql(db, "CREATE EXTENSION hstore; "
                 "ALTER TABLE extra_types ALTER COLUMN h TYPE hstore USING CASE WHEN id = 1 "
                 "THEN '\"k\"=>\"v w\", \"n\"=>NULL'::hstore END;")
        want[0] = want[0].replace('"h":"x"', '"h":"\\"k\\"=>\\"v w\\", \\"n\\"=>NULL"')
    cfg = config(work, "extra", pg_settings(db))
    p = extract(cfg, ["extra_types"])
    compare_lines(p.stdout, "\n".join(want) + "\n", "extract extra_types")
    print(f"extra types: ok (hstore {'tested' if have_hstore else 'not available'})")


# ---------------------------------------------------------------- discovery

IDENT_SQL = r"""
CREATE TABLE "we""ird.name ü" ("sel ect" int, "a""b" text, "select" text, "ü日" int, "x.y" int,
                               "back\slash" int);
INSERT INTO "we""ird.name ü" VALUES (1, 'q', 's', 2, 3, 4);
CREATE TABLE "order" ("group" int, "user" text, "Mixed Case" text);
INSERT INTO "order" VALUES (1, 'u', 'M');
CREATE SCHEMA other;
CREATE TABLE other.tbl (id int, v text);
INSERT INTO other.tbl VALUES (1, 'in other');
CREATE SCHEMA "Sch ema";
CREATE TABLE "Sch ema"."T" (id int);
INSERT INTO "Sch ema"."T" VALUES (5);
CREATE TABLE parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20);
INSERT INTO parted VALUES (1, 'a'), (15, 'b');
CREATE TABLE inh_parent (id int);
CREATE TABLE inh_child (extra text) INHERITS (inh_parent);
INSERT INTO inh_parent VALUES (1);
INSERT INTO inh_child VALUES (2, 'c');
CREATE VIEW v_order AS SELECT "group" FROM "order";
CREATE MATERIALIZED VIEW mv_order AS SELECT "user" FROM "order";
CREATE MATERIALIZED VIEW mv_empty AS SELECT 1 AS one WITH NO DATA;
CREATE TABLE nocols ();
INSERT INTO nocols DEFAULT VALUES;
"""


def collect_tables(work, name, settings):
    """Run collect + upload --once; return {table: [lines]} from the bucket."""
    spool = os.path.join(work, name + "-spool")
    bucket = os.path.join(work, name + "-bucket")
    os.makedirs(bucket)
    cfg = config(work, name, dict(settings, SPOOL_DIR=spool, S3_BUCKET="file://" + bucket))
    run(["collect", "--config", cfg])
    run(["upload", "--config", cfg, "--once"])
    out = {}
    for rel in data_files(bucket):
        table = rel.split(os.sep)[0]
        lines = read_object(os.path.join(bucket, rel)).decode("utf-8").splitlines()
        out.setdefault(table, []).extend(lines)
    return out


def test_discovery(work, db):
    psql(db, IDENT_SQL)
    cfg = config(work, "ident", pg_settings(db))
    p = extract(cfg, ['we"ird.name ü', "order", "parted", "inh_parent", "inh_child", "nocols"])
    want = ('{"sel ect":1,"a\\"b":"q","select":"s","ü日":2,"x.y":3,"back\\\\slash":4}\n'
            '{"group":1,"user":"u","Mixed Case":"M"}\n'
            '{"id":1,"v":"a"}\n{"id":15,"v":"b"}\n'
            '{"id":1}\n'
            '{"id":2,"extra":"c"}\n'
            '{}\n')
    compare_lines(p.stdout, want, "identifiers/partitions/inheritance")

    base = pg_settings(db, POSTGRES_SCHEMAS="public, other,Sch ema",
                       EXCLUDE_TABLES="golden_types,extra_types")
    got = collect_tables(work, "disc", base)
    want_tables = sorted(['we"ird.name ü', "order", "other.tbl", "Sch ema.T", "parted",
                          "inh_parent", "inh_child", "nocols"])
    check(sorted(got) == want_tables, f"tables in bucket: {sorted(got)}, want {want_tables}")
    check(got["other.tbl"] == ['{"id":1,"v":"in other"}'], f"other.tbl: {got['other.tbl']}")
    check(got["Sch ema.T"] == ['{"id":5}'], f"Sch ema.T: {got['Sch ema.T']}")

    views = collect_tables(work, "views", dict(base, INCLUDE_VIEWS="true",
                                               INCLUDE_TABLES="v_*,mv_*"))
    check(sorted(views) == ["mv_order", "v_order"], f"views: {sorted(views)}")
    check(views["v_order"] == ['{"group":1}'], f"v_order: {views['v_order']}")

    # POSTGRES_DSN (a URI) replaces the separate keys.
    dsn = (f"postgresql://{SRV['user']}:{SRV['password']}@{SRV['host']}:{SRV['port']}/{db}"
           "?application_name=dsn-test")
    cfg = config(work, "dsn", {"DB_TYPE": "postgresql", "POSTGRES_DSN": dsn,
                               "POSTGRES_HOST": "nowhere.invalid", "POSTGRES_PORT": "1"})
    p = extract(cfg, ["other.tbl"], check_rc=None)
    check(p.returncode != 0, "other.tbl must not be found without POSTGRES_SCHEMAS")
    check(SRV["password"] not in p.stderr, "password leaked (DSN)")
    p = extract(cfg, ["order"])
    check(p.stdout == '{"group":1,"user":"u","Mixed Case":"M"}\n', f"DSN extract: {p.stdout!r}")

    # public."dup.x" and dup.x would share one S3 name: refused, not mixed.
    psql(db, 'CREATE SCHEMA dup; CREATE TABLE dup.x (id int); CREATE TABLE "dup.x" (id int);')
    cfg = config(work, "dup", pg_settings(db, POSTGRES_SCHEMAS="public,dup"))
    line = error_line(extract(cfg, ["order"], check_rc=None),
                      ['"dup.x"', "schema \"dup\"", "schema \"public\""], "duplicate names")
    psql(db, 'DROP SCHEMA dup CASCADE; DROP TABLE "dup.x";')
    print(f"duplicate names: {line}")
    print("discovery: identifiers, schemas, partitions, inheritance, views, DSN ok")


# ---------------------------------------------------------------- failures

def error_line(p, must, what, secret=None):
    check(p.returncode != 0, f"{what}: exit status 0")
    err = p.stderr
    if secret:
        check(secret not in err and secret not in p.stdout, f"{what}: password leaked:\n{err}")
    lines = [l for l in err.splitlines() if all(m in l for m in must)]
    check(lines, f"{what}: no stderr line with all of {must}:\n{err}")
    return lines[0]


def test_failures(work, db):
    secret = "not-the-pw-" + secrets.token_hex(4)
    cfg = config(work, "badpw", pg_settings(db, POSTGRES_PASSWORD=secret))
    line = error_line(extract(cfg, ["order"], check_rc=None),
                      [f"{SRV['host']}:{SRV['port']}/{db}", "password authentication failed"],
                      "wrong password", secret)
    print(f"wrong password: {line}")

    cfg = config(work, "noport", pg_settings(db, POSTGRES_PORT="1", SOURCE_CONNECT_TIMEOUT="3"))
    t0 = time.monotonic()
    line = error_line(extract(cfg, ["order"], check_rc=None, timeout=60),
                      [f"{SRV['host']}:1/{db}", "refused"], "closed port", SRV["password"])
    check(time.monotonic() - t0 < 30, "closed port took too long")
    print(f"closed port: {line}")

    cfg = config(work, "nodb", pg_settings("no_such_db_" + secrets.token_hex(3)))
    line = error_line(extract(cfg, ["order"], check_rc=None),
                      ["/no_such_db_", "does not exist"], "missing database", SRV["password"])
    print(f"missing database: {line}")

    # A big table for the mid-table cases.
    psql(db, "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, now() AS ts "
             "FROM generate_series(1, 2000000) g; "
             "CREATE TABLE zz_small (id int); INSERT INTO zz_small VALUES (1);")

    # Dropped after discovery: `big` is being read when zz_small is dropped.
    cfg = config(work, "drop", pg_settings(db))
    p = run_with_action(extract_args(cfg, ["big", "zz_small"]), db,
                        lambda: psql(db, "DROP TABLE zz_small"))
    line = error_line(p, [f"{SRV['host']}:{SRV['port']}/{db}", 'table "zz_small"',
                          "does not exist"], "dropped table", SRV["password"])
    print(f"dropped table: {line}")

    # Backend terminated mid-COPY.
    p = run_with_action(extract_args(cfg, ["big"]), db, lambda: psql(
        db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = 'ingesta' AND datname = '{db}' AND pid <> pg_backend_pid()"))
    line = error_line(p, [f"{SRV['host']}:{SRV['port']}/{db}", 'table "big"'],
                      "terminated backend", SRV["password"])
    check("terminat" in line or "closed the connection" in line,
          f"terminated backend: unclear message: {line}")
    print(f"terminated backend: {line}")

    # SIGTERM mid-COPY: collect exits 7 (interrupted) at once, naming the table.
    cfg_c = config(work, "sigterm", pg_settings(db, SPOOL_DIR=os.path.join(work, "sig-spool"),
                                                 S3_BUCKET="file://" + work + "/sig-bucket",
                                                 INCLUDE_TABLES="big"))
    p = run_with_action(["collect", "--config", cfg_c], db, None)
    check(p.returncode == 7, f"SIGTERM: exit {p.returncode}, wanted 7\n{p.stderr}")
    check('table "big"' in p.stderr, f"SIGTERM: message does not name the table:\n{p.stderr}")
    check(p.elapsed < 10, f"SIGTERM: took {p.elapsed:.1f} s to stop")
    print(f"SIGTERM: exit 7 after {p.elapsed:.2f} s")

    # SOURCE_QUERY_TIMEOUT: the server's lock_timeout while a table is locked...
    psql(db, "CREATE TABLE locked (id int); "
             "CREATE VIEW slow AS SELECT pg_sleep(30)::text AS s;")
    locker = subprocess.Popen(
        [PSQL, "-X", "-q", "-h", SRV["host"], "-p", SRV["port"], "-U", SRV["user"], "-d", db],
        env=dict(os.environ, PGPASSWORD=SRV["password"]), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        locker.stdin.write("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; "
                           "SELECT pg_sleep(60);\n")
        locker.stdin.flush()
        wait_for(lambda: psql(db, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                  "c.oid = l.relation WHERE c.relname = 'locked' "
                                  "AND l.mode = 'AccessExclusiveLock' AND l.granted").strip()
                 == "1", "the test lock")
        cfg_t = config(work, "timeout", pg_settings(db, SOURCE_QUERY_TIMEOUT="1"))
        t0 = time.monotonic()
        line = error_line(extract(cfg_t, ["locked"], check_rc=None, timeout=60),
                          ['table "locked"', "lock timeout"], "lock timeout", SRV["password"])
        check(time.monotonic() - t0 < 15, "lock timeout took too long")
        print(f"lock timeout: {line}")
    finally:
        locker.kill()
        locker.wait()
    # ...and the client's idle timeout when the server sends nothing.
    cfg_t = config(work, "idle", pg_settings(db, SOURCE_QUERY_TIMEOUT="1", INCLUDE_VIEWS="true"))
    t0 = time.monotonic()
    line = error_line(extract(cfg_t, ["slow"], check_rc=None, timeout=60),
                      ['table "slow"', "SOURCE_QUERY_TIMEOUT"], "idle timeout", SRV["password"])
    check(time.monotonic() - t0 < 15, "idle timeout took too long")
    print(f"idle timeout: {line}")


def wait_for(cond, what, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TestFailure(f"timed out waiting for {what}")


def extract_args(cfg, tables):
    args = ["extract", "--config", cfg]
    for t in tables:
        args += ["--table", t]
    return args


def run_with_action(ingesta_args, db, action):
    """Start ingesta, run action() (None: send SIGTERM) once its COPY of the
    first table is streaming, and return the finished process, with
    .elapsed = seconds from the action to the exit."""
    from ingesta_test import INGESTA
    args = [INGESTA] + list(ingesta_args)
    proc = subprocess.Popen(args, env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    acted = False
    while time.monotonic() < deadline and proc.poll() is None:
        busy = psql(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        f"'ingesta' AND datname = '{db}' AND query LIKE 'COPY%' "
                        "AND state = 'active'").strip()
        if busy == "1":
            if action is None:
                proc.send_signal(signal.SIGTERM)
            else:
                action()
            acted = True
            break
        time.sleep(0.02)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=300)
    check(acted, f"never saw the COPY running (exit {proc.returncode}):\n{err}")
    done = subprocess.CompletedProcess(args, proc.returncode, "", err)
    done.elapsed = time.monotonic() - t0
    return done


# ---------------------------------------------------------------- main

def test():
    env = servers_env()
    SRV.update(host=env["POSTGRESQL_HOST"], port=env["POSTGRESQL_PORT"],
               user=env["POSTGRESQL_USER"], password=env["POSTGRESQL_PASSWORD"],
               admin_db=env["POSTGRESQL_DATABASE"])
    work = tempdir("postgres")
    db = "golden_" + secrets.token_hex(6)
    psql(SRV["admin_db"], f"CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8'")
    try:
        test_golden(work, db)
        test_extra_types(work, db)
        test_discovery(work, db)
        test_failures(work, db)
        shutil.rmtree(work, ignore_errors=True)  # kept for a look when a check fails
    finally:
        psql(SRV["admin_db"], f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check_rc=False)


if __name__ == "__main__":
    main(test)
