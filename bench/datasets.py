"""Deterministic benchmark datasets for ingesta and its contenders.

Every value is a pure function of the row number, so two runs (or two machines)
build byte-identical tables. Each dataset records its spec in a marker (a table
COMMENT in PostgreSQL/MariaDB, a `bench_meta` collection in MongoDB, a file
beside the spool) and is rebuilt only when the marker differs.

- PostgreSQL `<db>.t` and MariaDB `<db>.t`: N rows of mixed types: bigint,
  integer (some NULL), numeric(12,2), text with non-ASCII, timestamptz with
  milliseconds, bool, jsonb/JSON, bytea/VARBINARY (ASCII + 4 arbitrary bytes),
  text with quotes and backslashes (one row in four NULL).
- MongoDB-wire (FerretDB) `<db>.t`: N documents with ObjectId, int32, int64,
  double, string, date, bool, nested document, array, binary, null.
- Segment sets for the uploader: a spool whose committed segments are exactly
  `files` files of `size` bytes (uncompressed NDJSON rows of 4096 bytes each,
  SEGMENT_MAX_ROWS = size / 4096), made by collecting a SQLite table once.
"""
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

SPEC_VERSION = 1


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL

PG_TABLE_SQL = """
DROP TABLE IF EXISTS t;
CREATE TABLE t (
  id      bigint PRIMARY KEY,
  qty     integer,
  amount  numeric(12,2),
  name    text,
  created timestamptz,
  active  boolean,
  attrs   jsonb,
  payload bytea,
  note    text
);
INSERT INTO t
SELECT i,
  CASE WHEN i % 17 = 0 THEN NULL ELSE ((i * 7919) % 100000) - 50000 END,
  (((i * 104729) % 100000000) - 50000000) / 100.0,
  'client ' || i || ' Zoë Ångström 東京 ' || md5(i::text),
  timestamptz '2020-01-01 00:00:00+00' + i * interval '37 seconds' + (i % 1000) * interval '1 millisecond',
  i % 3 = 0,
  jsonb_build_object('k', i, 'tag', 'é' || (i % 10), 'list', jsonb_build_array(i % 5, 'x'), 'ok', i % 2 = 0),
  convert_to('blob-' || i, 'UTF8') || decode(substr(md5(i::text), 1, 8), 'hex'),
  CASE WHEN i % 4 = 0 THEN NULL ELSE 'note "' || i || E'" \\\\ line' END
FROM generate_series(1::bigint, {n}::bigint) AS i;
VACUUM (FREEZE, ANALYZE) t;
COMMENT ON TABLE t IS '{marker}';
"""


def pg_env(env):
    e = dict(os.environ)
    e["PGPASSWORD"] = env["POSTGRESQL_PASSWORD"]
    return e


def psql_cmd(env, db):
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", env["POSTGRESQL_HOST"],
            "-p", env["POSTGRESQL_PORT"], "-U", env["POSTGRESQL_USER"], "-d", db]


def pg_query(env, db, sql):
    out = subprocess.run(psql_cmd(env, db) + ["-At", "-c", sql], env=pg_env(env),
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def ensure_pg(env, db, n):
    marker = f"ingesta bench v{SPEC_VERSION} rows={n}"
    exists = pg_query(env, env["POSTGRESQL_DATABASE"],
                      f"SELECT 1 FROM pg_database WHERE datname = '{db}'")
    if exists != "1":
        pg_query(env, env["POSTGRESQL_DATABASE"], f'CREATE DATABASE "{db}"')
    have = pg_query(env, db, "SELECT obj_description(oid, 'pg_class') FROM pg_class "
                             "WHERE relname = 't' AND relnamespace = 'public'::regnamespace")
    if have == marker:
        log(f"postgresql {db}.t: {n} rows, up to date")
        return 0.0
    t0 = time.monotonic()
    subprocess.run(psql_cmd(env, db), input=PG_TABLE_SQL.format(n=n, marker=marker),
                   env=pg_env(env), check=True, text=True, capture_output=True)
    dt = time.monotonic() - t0
    log(f"postgresql {db}.t: built {n} rows in {dt:.1f} s")
    return dt


# ---------------------------------------------------------------- MariaDB

MY_TABLE_SQL = """
SET time_zone = '+00:00';
DROP TABLE IF EXISTS t;
CREATE TABLE t (
  id      BIGINT PRIMARY KEY,
  qty     INT NULL,
  amount  DECIMAL(12,2),
  name    VARCHAR(200),
  created TIMESTAMP(3) NULL,
  active  BOOLEAN,
  attrs   JSON,
  payload VARBINARY(64),
  note    TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='{marker}';
INSERT INTO t
SELECT i,
  IF(i % 17 = 0, NULL, ((i * 7919) % 100000) - 50000),
  (((i * 104729) % 100000000) - 50000000) / 100,
  CONCAT('client ', i, ' Zoë Ångström 東京 ', MD5(i)),
  TIMESTAMPADD(MICROSECOND, (i % 1000) * 1000, TIMESTAMPADD(SECOND, i * 37, '2020-01-01 00:00:00')),
  i % 3 = 0,
  JSON_OBJECT('k', i, 'tag', CONCAT('é', i % 10), 'list', JSON_ARRAY(i % 5, 'x'), 'ok', i % 2 = 0),
  CONCAT(CAST(CONCAT('blob-', i) AS BINARY), UNHEX(SUBSTR(MD5(i), 1, 8))),
  IF(i % 4 = 0, NULL, CONCAT('note "', i, '" \\\\ line'))
FROM (SELECT CAST(seq AS SIGNED) AS i FROM seq_1_to_{n}) AS s;
ANALYZE TABLE t;
"""


def my_cmd(env, db=None):
    c = ["mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", env["MARIADB_HOST"],
         "-P", env["MARIADB_PORT"], "-u", env["MARIADB_USER"]]
    return c + ([db] if db else [])


def my_env(env):
    e = dict(os.environ)
    e["MYSQL_PWD"] = env["MARIADB_PASSWORD"]
    return e


def my_query(env, db, sql):
    out = subprocess.run(my_cmd(env, db) + ["-B", "-N", "-e", sql], env=my_env(env),
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def ensure_mariadb(env, db, n):
    marker = f"ingesta bench v{SPEC_VERSION} rows={n}"
    my_query(env, None, f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
    have = my_query(env, db, "SELECT TABLE_COMMENT FROM information_schema.TABLES "
                             f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't'")
    if have == marker:
        log(f"mariadb {db}.t: {n} rows, up to date")
        return 0.0
    t0 = time.monotonic()
    subprocess.run(my_cmd(env, db), input=MY_TABLE_SQL.format(n=n, marker=marker),
                   env=my_env(env), check=True, text=True, capture_output=True)
    dt = time.monotonic() - t0
    log(f"mariadb {db}.t: built {n} rows in {dt:.1f} s")
    return dt


# ---------------------------------------------------------------- MongoDB (FerretDB)

def mongo_doc(i):
    from bson import Binary, Int64, ObjectId
    base = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    h = hashlib.md5(str(i).encode()).hexdigest()
    return {
        "_id": ObjectId((1600000000 + i // 1000).to_bytes(4, "big") + i.to_bytes(8, "big")),
        "qty": None if i % 17 == 0 else (i * 7919) % 100000 - 50000,
        "big": Int64(i * 1000003),
        "amount": ((i * 104729) % 100000000 - 50000000) / 100.0,
        "name": f"client {i} Zoë Ångström 東京 {h}",
        "created": base + datetime.timedelta(seconds=i * 37, milliseconds=i % 1000),
        "active": i % 3 == 0,
        "attrs": {"k": i, "tag": f"é{i % 10}", "list": [i % 5, "x"], "ok": i % 2 == 0},
        "tags": ["a", f"t{i % 7}", i % 11],
        "payload": Binary(b"blob-" + str(i).encode() + bytes.fromhex(h[:8])),
        "note": None if i % 4 == 0 else f'note "{i}" \\ line',
    }


def ensure_mongo(env, db, n):
    import pymongo
    marker = {"_id": "t", "version": SPEC_VERSION, "rows": n}
    client = pymongo.MongoClient(env["FERRETDB_URI"])
    d = client[db]
    meta = d["bench_meta"].find_one({"_id": "t"})
    if meta == marker and d["t"].estimated_document_count() == n:
        log(f"mongodb {db}.t: {n} documents, up to date")
        return 0.0
    t0 = time.monotonic()
    d["t"].drop()
    d["bench_meta"].drop()
    batch = []
    for i in range(1, n + 1):
        batch.append(mongo_doc(i))
        if len(batch) == 5000:
            d["t"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        d["t"].insert_many(batch, ordered=False)
    got = d["t"].count_documents({})
    if got != n:
        raise RuntimeError(f"mongodb {db}.t: inserted {got} documents, wanted {n}")
    d["bench_meta"].insert_one(marker)
    dt = time.monotonic() - t0
    log(f"mongodb {db}.t: inserted {n} documents in {dt:.1f} s ({n / dt:.0f} docs/s)")
    return dt


# ---------------------------------------------------------------- segment sets

ROW_BYTES = 4096  # one NDJSON line: {"d":"<4087 chars>"}\n


def ensure_segments(ingesta, root, name, files, size, env):
    """A pristine spool at root/name/spool whose committed segments are `files`
    uncompressed files of exactly `size` bytes. Returns the spool directory."""
    assert size % ROW_BYTES == 0
    rows_per = size // ROW_BYTES
    marker = f"v{SPEC_VERSION} files={files} size={size}"
    top = os.path.join(root, name)
    spool = os.path.join(top, "spool")
    mark = os.path.join(top, "marker")
    if os.path.exists(mark) and open(mark).read() == marker:
        log(f"segment set {name}: {files} x {size} bytes, up to date")
        return spool
    t0 = time.monotonic()
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    dbpath = os.path.join(top, "src.sqlite")
    con = sqlite3.connect(dbpath)
    con.execute("CREATE TABLE seg (d TEXT)")
    payload_len = ROW_BYTES - len('{"d":""}\n')
    seed = hashlib.sha256(b"ingesta bench").digest()
    chunk = []
    for i in range(files * rows_per):
        h = hashlib.sha256(seed + i.to_bytes(8, "big")).hexdigest()  # 64 hex chars
        s = (h * (payload_len // 64 + 1))[:payload_len]
        chunk.append((s,))
        if len(chunk) == 10000:
            con.executemany("INSERT INTO seg VALUES (?)", chunk)
            chunk = []
    if chunk:
        con.executemany("INSERT INTO seg VALUES (?)", chunk)
    con.commit()
    con.close()
    cfg = os.path.join(top, "collect.conf")
    with open(cfg, "w") as f:
        f.write(f"DB_TYPE=sqlite\nSQLITE_PATH={dbpath}\nSPOOL_DIR={spool}\nS3_BUCKET=bench-placeholder\n"
                f"COMPRESSION=none\nSEGMENT_MAX_ROWS={rows_per}\nSEGMENT_MAX_BYTES=1G\n"
                "SPOOL_MAX_BYTES=0\nPROGRESS=never\nLOG_LEVEL=WARNING\nENABLE_PARTITIONING=false\n"
                "SOURCE_NAME=segset\n")
    subprocess.run([ingesta, "collect", "--config", cfg], check=True, env=env)
    con = sqlite3.connect(os.path.join(spool, "spool.db"))
    sizes = [r[0] for r in con.execute("SELECT bytes FROM segments")]
    con.close()
    if len(sizes) != files or any(s != size for s in sizes):
        raise RuntimeError(f"segment set {name}: got {len(sizes)} segments "
                           f"(sizes {sorted(set(sizes))}), wanted {files} x {size}")
    os.unlink(dbpath)
    with open(mark, "w") as f:
        f.write(marker)
    log(f"segment set {name}: built {files} x {size} bytes in {time.monotonic() - t0:.1f} s")
    return spool
