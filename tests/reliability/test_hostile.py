#!/usr/bin/python3
"""Hostile input: bad configuration, extreme tables and values, odd names, and
S3 answers no one should send. No crash, no hang (every subprocess has a
timeout), a clear error or the correct output, checked with readers ingesta
did not write (sqlite3, psql, pymongo, the json module, zstd).

1. Config: malformed lines and bad values, in the file and through --set,
   each -> exit 2 with a message naming the key (or file:line for syntax).
2. Wide tables: SQLite 2,000 columns (its default maximum), PostgreSQL 1,600
   (its maximum), MariaDB 1,000 (InnoDB allows 1,017).
3. A 64 MiB text value in SQLite and PostgreSQL (quotes, backslashes,
   control characters, multi-byte UTF-8 inside), and the largest BSON
   document FerretDB accepts (16 MiB is the MongoDB limit).
4. NUL bytes and invalid UTF-8 in SQLite TEXT: \\u0000 and U+FFFD per
   maximal subpart (compared with Python's own decoder), counted.
5. JSON nested 1,000 deep in PostgreSQL json and jsonb and in MariaDB JSON
   (or the deepest it stores), BSON nested as deep as FerretDB stores.
6. Table and column names full of quotes, backslashes, slashes and unicode in
   all four sources.
7. S3 answering broken XML, a 32 MiB error body, 301 and 307 redirects
   (tests/servers/s3_fault_proxy.py): the upload ends (exit 5) within its
   timeout with the cause in `ingesta status`; after the fault is gone,
   replay + upload ship everything exactly once.
"""
import collections
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import uuid

from ingesta_test import TestFailure, check, main, servers_env, tempdir, write_config
from rel_common import (Expected, FileBucket, S3Bucket, ServerSource, decode, expect_rc, fault_proxy,
                        make_sqlite, mongo_client, mysql, psql, run_ingesta, s3_available, s3_settings,
                        status_json, verify)

sys.setrecursionlimit(100000)
ISSUES = []
FIG = collections.Counter()


def issue(msg):
    ISSUES.append(msg)
    print(f"  ISSUE: {msg}", flush=True)


def soft(fn, *a, **kw):
    """Run one case; a TestFailure becomes an issue (reported at the end) so the
    remaining cases still run."""
    try:
        return fn(*a, **kw)
    except TestFailure as exc:
        issue(str(exc)[:1500])
        return None


def ingest(d, name, settings, timeout=900):
    """collect + upload --once to a file:// bucket; returns {table: [row dicts]}."""
    bucket = FileBucket(os.path.join(d, name + "-bucket"))
    s = {"SPOOL_DIR": os.path.join(d, name + "-spool"), "S3_BUCKET": bucket.url, "LOG_LEVEL": "WARNING"}
    s.update(settings)
    cfg = write_config(os.path.join(d, name + ".env"), s)
    expect_rc(run_ingesta(["collect", "--config", cfg], timeout=timeout), 0, f"{name}: collect")
    expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=timeout), 0, f"{name}: upload")
    out = collections.defaultdict(list)
    for key in sorted(bucket.keys()):
        if os.path.basename(key).startswith("_manifest") or key.startswith("ingesta_runs/"):
            continue  # manifests and commit records (docs/COMMIT_LOG.md)
        for line in decode(bucket.get(key)).splitlines():
            out[key.split("/")[0]].append(json.loads(line))
        FIG["objects"] += 1
    for rows in out.values():
        FIG["rows"] += len(rows)
    db = sqlite3.connect(f"file:{s['SPOOL_DIR']}/spool.db?mode=ro", uri=True)
    lossy = db.execute("SELECT table_name, invalid_utf8 FROM partitions").fetchall()
    db.close()
    return out, dict(lossy), cfg


# ------------------------------------------------------------------ 1. config

def test_config(d):
    src = os.path.join(d, "cfg.db")
    make_sqlite(src, {"t": 10})
    base = f"DB_TYPE=sqlite\nSQLITE_PATH={src}\nSPOOL_DIR={d}/cfg-spool\nS3_BUCKET=file://{d}/cfg-bucket\n"
    cases = [
        ("MYSQL_PORT=33o6", "MYSQL_PORT"), ("MYSQL_PORT=70000", "MYSQL_PORT"), ("MYSQL_PORT=", "MYSQL_PORT"),
        ("SPOOL_MAX_BYTES=10X", "SPOOL_MAX_BYTES"), ("SPOOL_MAX_BYTES=-1", "SPOOL_MAX_BYTES"),
        ("SEGMENT_MAX_BYTES=99999999999999999999G", "SEGMENT_MAX_BYTES"),
        ("RETRY_BASE=fast", "RETRY_BASE"), ("RETRY_CAP=1y", "RETRY_CAP"),
        ("INGESTION_INTERVAL=-5", "INGESTION_INTERVAL"), ("ENABLE_PARTITIONING=maybe", "ENABLE_PARTITIONING"),
        ("DB_TYPE=oracle", "DB_TYPE"), ("COMPRESSION=gzip", "COMPRESSION"), ("ZSTD_LEVEL=99", "ZSTD_LEVEL"),
        ("LOG_LEVEL=LOUD", "LOG_LEVEL"), ("LOG_FORMAT=xml", "LOG_FORMAT"),
        ("UPLOAD_CONCURRENCY=0", "UPLOAD_CONCURRENCY"), ("MAX_ATTEMPTS=abc", "MAX_ATTEMPTS"),
        ("SEGMENT_MAX_ROWS=0", "SEGMENT_MAX_ROWS"), ("MONGO_BATCH_SIZE=99999999999999999999", "MONGO_BATCH_SIZE"),
        ("AWS_EC2_METADATA_DISABLED=perhaps", "AWS_EC2_METADATA_DISABLED"),
        ("S3_FORCE_PATH_STYLE=sometimes", "S3_FORCE_PATH_STYLE"),
        ("SPOOL_FULL_ACTION=panic", "SPOOL_FULL_ACTION"),
        ('S3_PREFIX="abc', ":5:"), ("S3_PREFIX='abc", ":5:"), ("JUSTAKEY", ":5:"), ("=value", ":5:"),
        ("MYSQL_PASSWORD", ":5:"), ("export", ":5:"), ("K\u00e9Y=1", ":5:"),
        # Values that cannot work and are only noticed later unless checked at start:
        ("S3_KEY_TEMPLATE={table}/{nope}{ext}", "S3_KEY_TEMPLATE"),
        ("S3_KEY_TEMPLATE={table}/{seq}{ext}", "S3_KEY_TEMPLATE"),  # not unique across runs
        ("S3_BUCKET=file://relative/path", "S3_BUCKET"),
        ("SPOOL_DIR=", "SPOOL_DIR"),
        ("MULTIPART_PART_SIZE=1M", "MULTIPART_PART_SIZE"),
        ("S3_PREFIX=" + "p" * 1100, "S3_PREFIX"),  # S3 keys are at most 1,024 bytes
    ]
    ok = 0
    for line, key in cases:
        cfg = os.path.join(d, "bad.env")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(base + line + "\n")
        for cmd in (["collect"], ["upload", "--once"]):
            p = run_ingesta(cmd + ["--config", cfg], timeout=60)
            errs = [ln for ln in p.stderr.splitlines() if ln.startswith("ingesta ")]
            if p.returncode == 2 and errs and key in errs[-1] and len(errs[-1]) < 400:
                ok += 1
            else:
                issue(f"config `{line[:60]}` ({cmd[0]}): exit {p.returncode}, wanted 2 naming {key}: "
                      + (errs[-1][:300] if errs else "accepted" if p.returncode == 0 else p.stderr.strip()[-200:]))
                break
    # --set, the environment, and files that are not config files.
    extra = [
        (["collect", "--config", os.path.join(d, "good.env"), "--set", "MYSQL_PORT=x"], "MYSQL_PORT", None),
        (["collect", "--config", os.path.join(d, "good.env"), "--set", "NOEQUALS"], "KEY=VALUE", None),
        (["collect", "--config", os.path.join(d, "good.env")], "RETRY_BASE", {"RETRY_BASE": "soon"}),
        (["collect", "--config", os.path.join(d, "missing.env")], "missing.env", None),
        (["collect", "--config", d], d, None),
        (["collect", "--config", os.path.join(d, "nul.env")], "NUL", None),
    ]
    with open(os.path.join(d, "good.env"), "w") as f:
        f.write(base)
    with open(os.path.join(d, "nul.env"), "wb") as f:
        f.write(base.encode() + b"S3_PREFIX=a\0b\n")
    from rel_common import ingesta_env
    for args, key, env in extra:
        p = run_ingesta(args, env=ingesta_env(env), timeout=60)
        errs = [ln for ln in p.stderr.splitlines() if ln.startswith("ingesta ")]
        if p.returncode == 2 and errs and key in errs[-1]:
            ok += 1
        else:
            issue(f"config {args[1:]} {env or ''}: exit {p.returncode}, wanted 2 naming {key}: "
                  f"{(errs[-1] if errs else p.stderr[-200:])[:300]}")
    FIG["faults"] += len(cases) + len(extra)
    print(f"config: {len(cases)} bad lines/values x (collect, upload) + {len(extra)} other bad inputs; "
          f"{ok} answered exit 2 naming the key", flush=True)


# ------------------------------------------------------------------ 2. wide tables

def test_wide(d):
    n = 2000
    src = os.path.join(d, "wide.db")
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE wide (" + ", ".join(["id INTEGER PRIMARY KEY"] + [f"c{j} INTEGER" for j in range(1, n)]) + ")")
    db.executemany("INSERT INTO wide VALUES (" + ",".join("?" * n) + ")",
                   [[i] + [i * 10000 + j for j in range(1, n)] for i in range(20)])
    db.commit()
    want = [dict(zip([d_[0] for d_ in db.execute("SELECT * FROM wide").description], r))
            for r in db.execute("SELECT * FROM wide ORDER BY id")]
    db.close()
    out, _, _ = ingest(d, "wide-sqlite", {"DB_TYPE": "sqlite", "SQLITE_PATH": src})
    check(sorted(out["wide"], key=lambda r: r["id"]) == want, "SQLite 2000 columns: rows differ")
    print(f"wide: SQLite {n} columns x 20 rows: identical", flush=True)
    for kind, ncols in (("postgresql", 1600), ("mysql", 1000)):
        s = ServerSource(kind, {}, prefix="relwide")
        try:
            cols = ", ".join(f"c{j} integer" for j in range(1, ncols))
            if kind == "postgresql":
                psql(s.name, f"CREATE TABLE wide (id integer PRIMARY KEY, {cols});"
                             f"INSERT INTO wide SELECT i, " + ", ".join(f"i*10000+{j}" for j in range(1, ncols)) +
                             " FROM generate_series(0, 19) i;")
                got = psql(s.name, "SELECT sum(c1) + sum(c%d) FROM wide" % (ncols - 1)).strip()
            else:
                mysql(s.name, f"CREATE TABLE wide (id INT PRIMARY KEY, {cols}) ENGINE=InnoDB ROW_FORMAT=DYNAMIC;"
                              f"INSERT INTO wide WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s "
                              f"WHERE i < 19) SELECT i, " + ", ".join(f"i*10000+{j}" for j in range(1, ncols)) +
                              " FROM s;")
                got = mysql(s.name, "SELECT sum(c1) + sum(c%d) FROM wide" % (ncols - 1)).strip()
            want = [{"id": i, **{f"c{j}": i * 10000 + j for j in range(1, ncols)}} for i in range(20)]
            check(int(got) == sum(w["c1"] + w[f"c{ncols - 1}"] for w in want), f"{kind}: source check")
            out, _, _ = ingest(d, f"wide-{kind}", s.settings())
            rows = sorted(out["wide"], key=lambda r: r["id"])
            check(rows == want and list(rows[0]) == list(want[0]), f"{kind} {ncols} columns: rows differ")
            print(f"wide: {kind} {ncols} columns x 20 rows: identical (column order kept)", flush=True)
        finally:
            s.drop()


# ------------------------------------------------------------------ 3. huge values

def big_text(size, seed):
    """At least `size` bytes of UTF-8 text with every character JSON must escape."""
    rng = random.Random(seed)
    pieces = ['"', "\\", "\n", "\t", "\r", "\x01", "\x1f", "\u00e9", "\u20ac", "\U0001F600", "</x>", "\u2028"]
    chunk = "".join(rng.choice(pieces) if rng.random() < 0.05 else chr(rng.randrange(32, 127))
                    for _ in range(1 << 16))
    return chunk * (size // len(chunk.encode()) + 1)


def test_huge(d):
    size = 64 << 20
    text = big_text(size, 1)
    src = os.path.join(d, "huge.db")
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE huge (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO huge VALUES (1, ?), (2, 'small')", (text,))
    db.commit()
    db.close()
    out, _, _ = ingest(d, "huge-sqlite", {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SEGMENT_MAX_BYTES": "256M"})
    rows = {r["id"]: r["v"] for r in out["huge"]}
    check(rows.get(1) == text and rows.get(2) == "small", "SQLite 64 MiB value differs")
    print(f"huge: SQLite {len(text.encode()) >> 20} MiB text value: identical", flush=True)
    del out, rows
    # PostgreSQL: built server-side (no 64 MiB through argv), compared by md5.
    s = ServerSource("postgresql", {}, prefix="relhuge")
    try:
        unit = 'ab"c\\d\ne\tf\u00e9\U0001F600'
        reps = size // len(unit.encode())
        sql_unit = unit.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n").replace("\t", "\\t")
        psql(s.name, f"CREATE TABLE huge (id int PRIMARY KEY, v text); "
                     f"INSERT INTO huge VALUES (1, repeat(E'{sql_unit}', {reps}));")
        md5 = psql(s.name, "SELECT md5(v), octet_length(v) FROM huge").strip().split("|")
        out, _, _ = ingest(d, "huge-pg", s.settings())
        v = out["huge"][0]["v"]
        check(hashlib.md5(v.encode()).hexdigest() == md5[0] and len(v.encode()) == int(md5[1]),
              "PostgreSQL 64 MiB value differs")
        print(f"huge: PostgreSQL {int(md5[1]) >> 20} MiB text value: identical (md5 from the server)", flush=True)
        del out, v
    finally:
        s.drop()
    # FerretDB: the largest document it stores, up to 16 MiB.
    c = mongo_client()
    name = f"relhuge_{uuid.uuid4().hex[:8]}"
    try:
        accepted, last = None, ""
        for size in (16 * 1024 * 1024 - 512, 16 * 1000 * 1000, 15 << 20, 8 << 20, 4 << 20):
            try:
                c[name]["docs"].insert_one({"_id": size, "v": "x\u00e9" * ((size - 64) // 3)})
                accepted = size
                break
            except Exception as exc:  # noqa: BLE001 - we want the server's limit
                last = str(exc)[:200]
        check(accepted, f"FerretDB accepted no large document: {last}")
        stored = c[name]["docs"].find_one({"_id": accepted})
        ms = ServerSource.existing("mongodb", name)
        out, _, _ = ingest(d, "huge-mongo", ms.settings())
        got = out["docs"][0]
        check(got["_id"] == accepted and got["v"] == stored["v"], "FerretDB big document differs")
        print(f"huge: FerretDB document of {accepted} bytes ({accepted / (1 << 20):.2f} MiB; tried from "
              f"16 MiB down): identical", flush=True)
    finally:
        c.drop_database(name)
        c.close()


# ------------------------------------------------------------------ 4. NUL / invalid UTF-8

def test_bytes(d):
    src = os.path.join(d, "bytes.db")
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    samples = [b"a\x00b", b"\x00", b"ok\xff\xfeend", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80x",
               b"\xf4\x90\x80\x80", b"\xc0\xaf", b"caf\xc3\xa9 \xf0\x9f\x98\x80", b"\x80" * 10 + b"\x00z",
               b'\x00"\\\n\x7f', b"\xf0\x9f\x98"]
    for i, b in enumerate(samples):
        db.execute("INSERT INTO t VALUES (?, CAST(? AS TEXT))", (i, b))
    db.commit()
    # What SQLite itself stores (the independent side): the raw bytes.
    stored = {i: bytes(v) for i, v in db.execute("SELECT id, CAST(v AS BLOB) FROM t")}
    db.close()
    out, lossy, _ = ingest(d, "bytes", {"DB_TYPE": "sqlite", "SQLITE_PATH": src})
    got = {r["id"]: r["v"] for r in out["t"]}
    bad = 0
    for i, raw in stored.items():
        want = raw.decode("utf-8", errors="replace")
        check(got[i] == want, f"TEXT bytes {raw!r}: got {got[i]!r}, want {want!r}")
        bad += want != raw.decode("utf-8", errors="ignore") or "\ufffd" in want
    check(lossy.get("t", 0) >= 1, f"invalid UTF-8 not counted: {lossy}")
    print(f"bytes: {len(samples)} TEXT values with NUL and invalid UTF-8 -> \\u0000 and U+FFFD as Python "
          f"decodes them; invalid_utf8 counted {lossy.get('t')}", flush=True)


# ------------------------------------------------------------------ 5. deep nesting

def depth_of(v):
    n = 0
    while isinstance(v, (list, dict)) and v:
        v = v[0] if isinstance(v, list) else next(iter(v.values()))
        n += 1
    return n


def test_deep(d):
    deep_arr = "[" * 1000 + "1" + "]" * 1000
    deep_obj = '{"a":' * 1000 + '"x"' + "}" * 1000
    s = ServerSource("postgresql", {}, prefix="reldeep")
    try:
        psql(s.name, f"CREATE TABLE deep (id int PRIMARY KEY, j json, jb jsonb); "
                     f"INSERT INTO deep VALUES (1, '{deep_arr}', '{deep_arr}'), (2, '{deep_obj}', '{deep_obj}');")
        out, _, _ = ingest(d, "deep-pg", s.settings())
        rows = {r["id"]: r for r in out["deep"]}
        for i, doc in ((1, deep_arr), (2, deep_obj)):
            want = json.loads(doc)
            check(rows[i]["j"] == want and rows[i]["jb"] == want and depth_of(rows[i]["j"]) == 1000,
                  f"PostgreSQL json/jsonb 1000 deep: row {i} differs")
        print("deep: PostgreSQL json and jsonb nested 1000 deep (arrays, objects): identical", flush=True)
    finally:
        s.drop()
    s = ServerSource("mysql", {}, prefix="reldeep")
    try:
        mysql(s.name, "CREATE TABLE deep (id INT PRIMARY KEY, j JSON)")
        stored, why = None, ""
        for depth in (1000, 500, 100, 64, 32, 31, 30, 20, 10):
            doc = "[" * depth + "1" + "]" * depth
            try:
                mysql(s.name, f"DELETE FROM deep; INSERT INTO deep VALUES (1, '{doc}');")
                stored = depth
                break
            except TestFailure as exc:
                why = str(exc).strip().splitlines()[-1][:160]
        check(stored, "MariaDB stored no nested JSON")
        out, _, _ = ingest(d, "deep-my", s.settings())
        check(depth_of(out["deep"][0]["j"]) == stored, "MariaDB deep JSON differs")
        print(f"deep: MariaDB JSON nested {stored} deep: identical"
              + (f" (1000 refused: {why})" if stored != 1000 else ""), flush=True)
    finally:
        s.drop()
    c = mongo_client()
    name = f"reldeep_{uuid.uuid4().hex[:8]}"
    try:
        stored, why = None, ""
        for depth in (1000, 180, 150, 100, 99, 64, 32):
            doc = "x"
            for _ in range(depth - 1):
                doc = {"a": doc}
            try:
                c[name]["deep"].insert_one({"_id": depth, "d": doc})
                stored = depth
                break
            except Exception as exc:  # noqa: BLE001 - looking for the server's limit
                why = str(exc)[:160]
        check(stored, f"FerretDB stored no nested document: {why}")
        ms = ServerSource.existing("mongodb", name)
        out, _, _ = ingest(d, "deep-mongo", ms.settings())
        check(depth_of(out["deep"][0]["d"]) == stored - 1, "FerretDB deep document differs")
        print(f"deep: FerretDB document nested {stored} levels: identical"
              + (f" (deeper refused: {why})" if stored != 1000 else ""), flush=True)
    finally:
        c.drop_database(name)
        c.close()


# ------------------------------------------------------------------ 6. names

ODD = ['we"ird \'t\u00e5ble\U0001F600', 'a/b', "back\\slash", "sp ace", "{table}", "\u540d\u524d", "..",
       "x" * 60]
ODD_COLS = ['"', "'", "\\", 'a"b', "\u00fc\u540d\u524d", " lead", "{seq}", "$dollar", "col\ttab", "k:v"]


def check_names(out, want_tables, cols, what):
    got_tables = set(out)
    # Key prefixes: '/' becomes '_', and "." / ".." get a leading '_' so they
    # cannot climb out of a file:// bucket.
    want_keys = {("_" + t if t in (".", "..") else t).replace("/", "_") for t in want_tables}
    check(got_tables == want_keys, f"{what}: tables in the bucket {sorted(got_tables)}, want {sorted(want_keys)}")
    for t in want_keys:
        check(list(out[t][0]) == ["id"] + cols, f"{what}: table {t!r} columns {list(out[t][0])}")
        check(out[t][0][cols[0]] == "v0", f"{what}: table {t!r} values {out[t][0]}")


def test_names(d):
    src = os.path.join(d, "names.db")
    db = sqlite3.connect(src)
    q = lambda n: '"' + n.replace('"', '""') + '"'  # noqa: E731
    for t in ODD:
        db.execute(f"CREATE TABLE {q(t)} (id INTEGER PRIMARY KEY, " + ", ".join(f"{q(c)} TEXT" for c in ODD_COLS) + ")")
        db.execute(f"INSERT INTO {q(t)} VALUES (1, " + ", ".join(f"'v{i}'" for i in range(len(ODD_COLS))) + ")")
    db.commit()
    db.close()
    out, _, _ = ingest(d, "names-sqlite", {"DB_TYPE": "sqlite", "SQLITE_PATH": src})
    escaped = [n for n in os.listdir(d) if n.startswith(("year=", "_manifest"))]
    check(not escaped, f"SQLite: table '..' escaped the file:// bucket: {escaped} written in the bucket's "
                       f"parent directory {d} (key '../year=...')")
    check_names(out, ODD, ODD_COLS, "SQLite")
    print(f"names: SQLite {len(ODD)} odd table names x {len(ODD_COLS)} odd column names: correct", flush=True)


def test_names_pg(d):
    q = lambda n: '"' + n.replace('"', '""') + '"'  # noqa: E731
    # PostgreSQL: identifiers up to 63 bytes.
    pg_tables = [t for t in ODD if len(t.encode()) <= 63 and t != ".."]  # ".." is the SQLite case
    s = ServerSource("postgresql", {}, prefix="relnames")
    try:
        for t in pg_tables:
            psql(s.name, f"CREATE TABLE {q(t)} (id int PRIMARY KEY, " + ", ".join(f"{q(c)} text" for c in ODD_COLS) +
                 f"); INSERT INTO {q(t)} VALUES (1, " + ", ".join(f"'v{i}'" for i in range(len(ODD_COLS))) + ");")
        out, _, _ = ingest(d, "names-pg", s.settings())
        check_names(out, pg_tables, ODD_COLS, "PostgreSQL")
        print(f"names: PostgreSQL {len(pg_tables)} odd tables: correct", flush=True)
    finally:
        s.drop()


def test_names_my(d):
    # MariaDB: no trailing spaces, no '/' '\\' '.' in table names (file names), 64 chars.
    # (MariaDB identifiers are utf8mb3: no 4-byte characters.)
    my_tables = ['we"ird \'t\u00e5ble', "sp ace", "{table}", "\u540d\u524d", "back`tick"]
    my_cols = ['"', "'", "\\", 'a"b', "\u00fc\u540d\u524d", " lead", "{seq}", "$dollar", "k:v", "tick`"]
    bq = lambda n: "`" + n.replace("`", "``") + "`"  # noqa: E731
    s = ServerSource("mysql", {}, prefix="relnames")
    try:
        for t in my_tables:
            mysql(s.name, f"CREATE TABLE {bq(t)} (id INT PRIMARY KEY, " + ", ".join(f"{bq(c)} TEXT" for c in my_cols) +
                  f"); INSERT INTO {bq(t)} VALUES (1, " + ", ".join(f"'v{i}'" for i in range(len(my_cols))) + ");")
        out, _, _ = ingest(d, "names-my", s.settings())
        check_names(out, my_tables, my_cols, "MariaDB")
        print(f"names: MariaDB {len(my_tables)} odd tables: correct", flush=True)
    finally:
        s.drop()


def test_names_mongo(d):
    c = mongo_client()
    name = f"relnames_{uuid.uuid4().hex[:8]}"
    # FerretDB 1.24 (SQLite backend) itself fails on field names with '"' or
    # '\\' ("malformed JSON") and collection names with '"' (SQL syntax error);
    # a field name with a tab is stored but cannot be read back.
    mg_tables = ["we'ird t\u00e5ble\U0001F600", "sp ace", "{table}", "\u540d\u524d", "back\\slash"]
    mg_cols = ["'", "\u00fc\u540d\u524d", " lead", "{seq}", "k:v", "\U0001F600"]
    try:
        made = []
        for t in mg_tables:
            try:
                c[name][t].insert_one({"_id": 1, **{k: f"v{i}" for i, k in enumerate(mg_cols)}})
                made.append(t)
            except Exception as exc:  # noqa: BLE001 - FerretDB may refuse some names
                print(f"names: FerretDB refused collection {t!r}: {str(exc)[:100]}")
        ms = ServerSource.existing("mongodb", name)
        out, _, _ = ingest(d, "names-mongo", ms.settings())
        check(len(made) == len(mg_tables), f"FerretDB refused collections: {sorted(set(mg_tables) - set(made))}")
        check(set(out) == {t.replace("/", "_") for t in made}, f"FerretDB collections {sorted(out)}")
        for t in made:
            check(list(out[t][0]) == ["_id"] + mg_cols and out[t][0]["'"] == "v0", f"FerretDB {t!r}: {out[t][0]}")
        print(f"names: FerretDB {len(made)} odd collections x {len(mg_cols)} odd field names: correct", flush=True)
    finally:
        c.drop_database(name)
        c.close()


# ------------------------------------------------------------------ 7. S3 answers

def test_s3_answers(d):
    ok, why = s3_available()
    if not ok:
        print(f"S3 answers: skipped ({why})")
        return
    env = servers_env()
    src = os.path.join(d, "s3h.db")
    expected = Expected(make_sqlite(src, {"a": 200, "b": 1500}))
    for fault, want in (("malformed", None), ("huge", None), ("redirect", "PermanentRedirect"),
                        ("redirect307", None)):
        bucket = S3Bucket(f"rel-hostile-{fault}-{uuid.uuid4().hex[:6]}")
        fp = fault_proxy(env["MINIO_ENDPOINT"], [{"fault": fault, "kinds": ["put_object", "head"]}])
        try:
            spool = os.path.join(d, f"s3h-{fault}-spool")
            s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "500",
                 "MAX_ATTEMPTS": "3", "RETRY_BASE": "50ms", "RETRY_CAP": "200ms"}
            s.update(s3_settings(bucket.name, fp.url))
            cfg = write_config(os.path.join(d, f"s3h-{fault}.env"), s)
            expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
            p = run_ingesta(["upload", "--once", "--config", cfg], timeout=300)
            check(p.returncode == 5, f"S3 {fault}: upload exit {p.returncode}, wanted 5\n{p.stderr[-1500:]}")
            st = status_json(cfg)
            errs = st["recent_errors"]
            check(len(errs) >= 1 and all(e["code"] and e["message"] and bucket.name in e["message"] for e in errs),
                  f"S3 {fault}: unclear status errors {errs[:2]}")
            if want:
                check(errs[0]["code"] == want, f"S3 {fault}: code {errs[0]['code']}, want {want}")
            check(not bucket.keys(), f"S3 {fault}: objects in the bucket")
            FIG["faults"] += fp.injected()
            fp.set_rules([])
            expect_rc(run_ingesta(["replay", "--all-failed", "--config", cfg]), 0, "replay")
            expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), 0, "upload after fix")
            fig = verify([spool], bucket, expected)
            FIG["objects"] += fig.objects
            FIG["rows"] += fig.rows
            print(f"S3 answers: {fault}: exit 5, status {errs[0]['code']}: \"{errs[0]['message'][:140]}\"; "
                  f"replayed: {fig}", flush=True)
        finally:
            fp.stop()
            bucket.destroy()


def test():
    d = tempdir("hostile")
    try:
        for part in (test_config, test_bytes, test_names, test_names_pg, test_names_my, test_names_mongo,
                     test_deep, test_wide, test_s3_answers, test_huge):
            soft(part, d)
    finally:
        subprocess.run(["rm", "-rf", d])
    print(f"hostile input: {FIG['faults']} bad configs/answers injected, {FIG['objects']} objects and "
          f"{FIG['rows']} rows checked, {len(ISSUES)} issues")
    check(not ISSUES, f"{len(ISSUES)} hostile-input issues:\n  " + "\n  ".join(ISSUES))


if __name__ == "__main__":
    main(test)
