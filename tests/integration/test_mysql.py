#!/usr/bin/python3
"""MySQL/MariaDB source driver against the real MariaDB test server.

Every case loads its tables with the `mariadb` command-line client into a fresh
database (`golden_<random>` and friends, dropped at the end), runs
`ingesta extract`, and compares the NDJSON byte for byte with what TYPES.md
says it must be:

  golden      tests/golden/mysql.sql -> mysql.ndjson, byte for byte
  cases       types the golden misses (GEOMETRY, SET edges, BIT(1)/BIT(64),
              unsigned/zerofill integers, DECIMAL(65,30), TIME(6), zero-in-date,
              TINYTEXT/LONGBLOB, emoji, JSON number tokens, UUID/INET6, ...)
  floats      FLOAT edge values (the text protocol rounds FLOAT to 6 digits; the
              driver must not) and DOUBLE round trips of random values
  modes       BINARY_MODE=base64/hex, DECIMAL_MODE=string/double
  idents      table and column names with spaces, quotes, backticks, dots,
              unicode and reserved words
  views       INCLUDE_VIEWS=false skips views, true extracts them
  failures    wrong password, unreachable port, missing database, table
              dropped during the run, connection KILLed mid-table: non-zero
              exit and a one-line message naming server and table, never the
              password
  memory      peak RSS of a 100,000-row and a 2,000,000-row table differ by
              less than 16 MiB (rows are streamed, never buffered)
"""
import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time

import ingesta_test as T

ENV = None  # test server settings, filled by main()
CREATED_DBS = []


# --------------------------------------------------------------------- helpers

def client_args(db=None):
    args = ["mariadb", "--no-defaults", "-h", ENV["MARIADB_HOST"], "-P", ENV["MARIADB_PORT"],
            "-u", ENV["MARIADB_USER"], "--default-character-set=utf8mb4", "--batch",
            "--skip-column-names"]
    if db:
        args.append(db)
    return args


def sql(db, text, timeout=600):
    """Run SQL through the mariadb client (a client ingesta did not write)."""
    env = dict(os.environ, MYSQL_PWD=ENV["MARIADB_PASSWORD"])
    p = subprocess.run(client_args(db), input=text.encode(), env=env, capture_output=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise T.TestFailure(f"mariadb client failed on {db}: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode()


def new_db(prefix):
    name = f"{prefix}_{os.urandom(4).hex()}"
    sql(None, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    CREATED_DBS.append(name)
    return name


def config(db, tmp, **extra):
    settings = {
        "DB_TYPE": "mysql",
        "MYSQL_HOST": ENV["MARIADB_HOST"],
        "MYSQL_PORT": ENV["MARIADB_PORT"],
        "MYSQL_USER": ENV["MARIADB_USER"],
        "MYSQL_PASSWORD": ENV["MARIADB_PASSWORD"],
        "MYSQL_DATABASE": db,
        "LOG_LEVEL": "WARNING",
    }
    settings.update({k: str(v) for k, v in extra.items()})
    return T.write_config(os.path.join(tmp, f"{db}-{os.urandom(3).hex()}.env"), settings)


def extract(cfg, tables=(), check_rc=0, timeout=600):
    args = ["extract", "--config", cfg]
    for t in tables:
        args += ["--table", t]
    p = subprocess.run([T.INGESTA] + args, env=T.clean_env(), capture_output=True,
                       timeout=timeout)
    if check_rc is not None and p.returncode != check_rc:
        raise T.TestFailure(f"ingesta {' '.join(args)} exited {p.returncode}, wanted {check_rc}\n"
                            f"stderr:\n{p.stderr.decode(errors='replace')[-4000:]}")
    return p


def compare(name, got, want):
    if got == want:
        return
    g, w = got.split(b"\n"), want.split(b"\n")
    for i in range(max(len(g), len(w))):
        gl = g[i] if i < len(g) else b"<missing>"
        wl = w[i] if i < len(w) else b"<missing>"
        if gl != wl:
            raise T.TestFailure(f"{name}: line {i + 1} differs\n got: {gl!r}\nwant: {wl!r}")
    raise T.TestFailure(f"{name}: output differs")


def lines(*rows):
    return "".join(r + "\n" for r in rows).encode("utf-8")


# ----------------------------------------------------------------------- cases

def test_golden(tmp):
    db = new_db("golden")
    with open(os.path.join(T.GOLDEN, "mysql.sql"), encoding="utf-8") as f:
        sql(db, f.read())
    with open(os.path.join(T.GOLDEN, "mysql.ndjson"), "rb") as f:
        want = f.read()
    p = extract(config(db, tmp), ["golden_types"])
    compare("golden", p.stdout, want)


CASES_SQL = r"""
SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
SET SESSION time_zone = '-05:00';
CREATE TABLE cases (
  id INT PRIMARY KEY,
  g GEOMETRY, pt POINT,
  st SET('a','b','c'), b1 BIT(1), b64 BIT(64),
  mu MEDIUMINT UNSIGNED, mi MEDIUMINT, tu TINYINT UNSIGNED, su SMALLINT UNSIGNED,
  iu INT UNSIGNED, zf INT(5) ZEROFILL,
  de DECIMAL(65,30), d65 DECIMAL(65,0), t6 TIME(6), dt DATETIME, dt3 DATETIME(3), d DATE,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  tt TINYTEXT, lb LONGBLOB, vc VARCHAR(20), js JSON, yr YEAR, bn BINARY(3), en ENUM('x','y'),
  u UUID, i6 INET6, ch CHAR(5)
) DEFAULT CHARSET = utf8mb4;
INSERT INTO cases VALUES
(1, ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'), POINT(1.5, -2.25),
 '', b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
 16777215, -8388608, 255, 65535, 4294967295, 42,
 12345678901234567890123456789012345.123456789012345678901234567890,
 99999999999999999999999999999999999999999999999999999999999999999,
 '-838:59:59.999999', '2025-00-10 10:00:00', '2025-10-05 14:30:00.000', '2025-02-30',
 '2038-01-18 22:14:07.999999',
 'tiny', 0xDEADBEEF00, '😀🎉 ok', '{"n": 2.50, "e": 1E2, "x": -0.0, "u": "\\u00e9"}', 0, 'ab', 'x',
 '123e4567-e89b-12d3-a456-426614174000', '::1', 'ab'),
(2, ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))'), NULL,
 'a,b,c', b'0', b'0', 0, 8388607, 0, 0, 0, 0,
 -0.000000000000000000000000000001, -1,
 '00:00:00.5', '0000-00-00 00:00:00', '2000-01-01 00:00:00.120', '0000-01-01',
 '1969-12-31 19:00:01.000001',
 '', '', '', '[1E2, 2.50e-3, true, false, null, "a\\"b"]', 1901, 0x000000, 'y',
 NULL, '2001:db8::ff00:42:8329', ''),
(3, NULL, NULL, 'c,a', NULL, b'1000000000000000000000000000000000000000000000000000000000000000',
 NULL, NULL, NULL, NULL, NULL, NULL,
 0, 0, '838:59:59', '2024-02-29 23:59:59', NULL, '2023-02-29', NULL,
 NULL, NULL, NULL, '"just a string"', 2155, NULL, NULL, NULL, NULL, NULL),
(4, NULL, NULL, 'b', b'1', b'1', 1, -1, 1, 1, 1, 123456,
 1.5, 12, '-00:00:01', '2025-12-31 23:59:59', '1000-01-01 00:00:00.001', '1000-01-01',
 '1970-01-01 00:00:00.5',
 'x', 0x68656c6c6f, 'tab\there', '{}', 2000, 'abc', NULL, NULL, NULL, CONCAT('e', _utf8mb4 0xCC81));
"""

CASES_WANT = lines(
    '{"id":1,"g":"POLYGON((0 0,10 0,10 10,0 10,0 0))","pt":"POINT(1.5 -2.25)","st":"",'
    '"b1":1,"b64":18446744073709551615,"mu":16777215,"mi":-8388608,"tu":255,"su":65535,'
    '"iu":4294967295,"zf":42,'
    '"de":12345678901234567890123456789012345.123456789012345678901234567890,'
    '"d65":99999999999999999999999999999999999999999999999999999999999999999,'
    '"t6":"-838:59:59.999999","dt":null,"dt3":"2025-10-05T14:30:00","d":null,'
    '"ts6":"2038-01-19T03:14:07.999999Z",'
    '"tt":"tiny","lb":"\u07ad\ufffd\ufffd\\u0000","vc":"😀🎉 ok",'
    '"js":{"n":2.50,"e":1E2,"x":-0.0,"u":"\\u00e9"},"yr":0,"bn":"ab\\u0000","en":"x",'
    '"u":"123e4567-e89b-12d3-a456-426614174000","i6":"::1","ch":"ab"}',
    '{"id":2,"g":"GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))","pt":null,"st":"a,b,c",'
    '"b1":0,"b64":0,"mu":0,"mi":8388607,"tu":0,"su":0,"iu":0,"zf":0,'
    '"de":-0.000000000000000000000000000001,"d65":-1,'
    '"t6":"00:00:00.500000","dt":null,"dt3":"2000-01-01T00:00:00.120000","d":"0000-01-01",'
    '"ts6":"1970-01-01T00:00:01.000001Z",'
    '"tt":"","lb":"","vc":"","js":[1E2,2.50e-3,true,false,null,"a\\"b"],"yr":1901,'
    '"bn":"\\u0000\\u0000\\u0000","en":"y","u":null,"i6":"2001:db8::ff00:42:8329","ch":""}',
    '{"id":3,"g":null,"pt":null,"st":"a,c","b1":null,"b64":9223372036854775808,'
    '"mu":null,"mi":null,"tu":null,"su":null,"iu":null,"zf":null,'
    '"de":0.000000000000000000000000000000,"d65":0,'
    '"t6":"838:59:59","dt":"2024-02-29T23:59:59","dt3":null,"d":null,"ts6":null,'
    '"tt":null,"lb":null,"vc":null,"js":"just a string","yr":2155,"bn":null,"en":null,'
    '"u":null,"i6":null,"ch":null}',
    '{"id":4,"g":null,"pt":null,"st":"b","b1":1,"b64":1,"mu":1,"mi":-1,"tu":1,"su":1,"iu":1,'
    '"zf":123456,"de":1.500000000000000000000000000000,"d65":12,'
    '"t6":"-00:00:01","dt":"2025-12-31T23:59:59","dt3":"1000-01-01T00:00:00.001000",'
    '"d":"1000-01-01","ts6":"1970-01-01T05:00:00.500000Z",'
    '"tt":"x","lb":"hello","vc":"tab\\there","js":{},"yr":2000,"bn":"abc","en":null,'
    '"u":null,"i6":null,"ch":"e\u0301"}',
)


def test_cases(tmp):
    db = new_db("cases")
    sql(db, CASES_SQL)
    p = extract(config(db, tmp), ["cases"])
    compare("cases", p.stdout, CASES_WANT)


FLOATS_SQL = """
CREATE TABLE floats (id INT PRIMARY KEY, f FLOAT, f72 FLOAT(7,3), d DOUBLE);
INSERT INTO floats VALUES
(1, 3.402823466e38, 1234.5678, 1.7976931348623157e308),
(2, 1.17549435e-38, -0.001, 2.2250738585072014e-308),
(3, 16777217, 0, 16777217),
(4, 0.1, 0.1, 0.1),
(5, 1.4e-45, NULL, 5e-324),
(6, 123456.789, 9999.999, 123456.789),
(7, -0.0, -0.0, -0.0),
(8, 1.1, 1.1, 0.30000000000000004),
(9, -3.5, -3.5, -1.5e-5),
(10, 1.0000001, 1, 1e21),
(11, 1e20, 2, 1e20),
(12, 1e21, 3, 123e-20);
"""

FLOATS_WANT = lines(
    '{"id":1,"f":3.4028235e+38,"f72":1234.568,"d":1.7976931348623157e+308}',
    '{"id":2,"f":1.1754944e-38,"f72":-0.001,"d":2.2250738585072014e-308}',
    '{"id":3,"f":16777216,"f72":0,"d":16777217}',
    '{"id":4,"f":0.1,"f72":0.1,"d":0.1}',
    '{"id":5,"f":1e-45,"f72":null,"d":5e-324}',
    '{"id":6,"f":123456.79,"f72":9999.999,"d":123456.789}',
    '{"id":7,"f":0,"f72":0,"d":0}',
    '{"id":8,"f":1.1,"f72":1.1,"d":0.30000000000000004}',
    '{"id":9,"f":-3.5,"f72":-3.5,"d":-0.000015}',
    '{"id":10,"f":1.0000001,"f72":1,"d":1e+21}',
    '{"id":11,"f":100000000000000000000,"f72":2,"d":100000000000000000000}',
    '{"id":12,"f":1e+21,"f72":3,"d":1.23e-18}',
)


def test_floats(tmp):
    db = new_db("floats")
    sql(db, FLOATS_SQL)
    p = extract(config(db, tmp), ["floats"])
    compare("floats", p.stdout, FLOATS_WANT)

    # Random doubles and floats: every value must read back bit-identical.
    rng = random.Random(20251005)
    doubles, singles = [], []
    while len(doubles) < 500:
        d = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if d == d and abs(d) != float("inf"):
            doubles.append(d)
    while len(singles) < 500:
        f = struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))[0]
        if f == f and abs(f) != float("inf") and abs(f) >= 1.17549435e-38:
            singles.append(f)
    rows = ",".join(f"({i},{doubles[i]!r},{singles[i]!r})" for i in range(len(doubles)))
    sql(db, f"CREATE TABLE randoms (id INT PRIMARY KEY, d DOUBLE, f FLOAT);"
            f"INSERT INTO randoms VALUES {rows};")
    p = extract(config(db, tmp), ["randoms"])
    got = [json.loads(line) for line in p.stdout.splitlines()]
    T.check(len(got) == len(doubles), f"randoms: {len(got)} rows, wanted {len(doubles)}")
    for row in got:
        i = row["id"]
        # ECMAScript form writes 6.6e18 as 6600000000000000000: compare as doubles.
        T.check(float(row["d"]) == doubles[i], f"randoms: double {doubles[i]!r} came back as {row['d']!r}")
        T.check(struct.pack("<f", float(row["f"])) == struct.pack("<f", singles[i]),
                f"randoms: float {singles[i]!r} came back as {row['f']!r}")


def test_modes(tmp):
    db = new_db("modes")
    sql(db, "CREATE TABLE m (id INT PRIMARY KEY, b VARBINARY(8), de DECIMAL(6,2));"
            "INSERT INTO m VALUES (1, 0xDEADBEEF00, 12.50), (2, '', -0.01);")
    p = extract(config(db, tmp, BINARY_MODE="base64", DECIMAL_MODE="string"), ["m"])
    compare("modes base64/string", p.stdout, lines(
        '{"id":1,"b":"%s","de":"12.50"}' % base64.b64encode(bytes.fromhex("deadbeef00")).decode(),
        '{"id":2,"b":"","de":"-0.01"}'))
    p = extract(config(db, tmp, BINARY_MODE="hex", DECIMAL_MODE="double"), ["m"])
    compare("modes hex/double", p.stdout, lines(
        '{"id":1,"b":"deadbeef00","de":12.5}',
        '{"id":2,"b":"","de":-0.01}'))


WEIRD_TABLE = "we`ird 'ta\"ble'.x ü日本"


def test_idents(tmp):
    db = new_db("idents")
    sql(db, r"""
CREATE TABLE `we``ird 'ta"ble'.x ü日本` (
  `select` INT PRIMARY KEY, `a b` INT, `a.b` INT, `q'uote` INT, `d"q` INT, `b``t` INT,
  `ü日本` INT, `from` INT, `back\slash` INT, `g``eo` POINT, `f``l` FLOAT
);
INSERT INTO `we``ird 'ta"ble'.x ü日本` VALUES (1, 2, 3, 4, 5, 6, 7, 8, 9, POINT(1, 2), 0.5);
CREATE TABLE `order` (`group` INT, `Order` VARCHAR(5));
INSERT INTO `order` VALUES (1, 'x');
CREATE TABLE `Order` (id INT);
INSERT INTO `Order` VALUES (2);
""")
    p = extract(config(db, tmp), [WEIRD_TABLE])
    compare("idents", p.stdout, lines(
        '{"select":1,"a b":2,"a.b":3,"q\'uote":4,"d\\"q":5,"b`t":6,"ü日本":7,"from":8,'
        '"back\\\\slash":9,"g`eo":"POINT(1 2)","f`l":0.5}'))
    p = extract(config(db, tmp), ["order"])
    compare("idents order", p.stdout, lines('{"group":1,"Order":"x"}'))
    # Discovery: every table, in byte order of the names ("Order" < "order" < "we...").
    p = extract(config(db, tmp))
    compare("idents all", p.stdout, lines(
        '{"id":2}', '{"group":1,"Order":"x"}',
        '{"select":1,"a b":2,"a.b":3,"q\'uote":4,"d\\"q":5,"b`t":6,"ü日本":7,"from":8,'
        '"back\\\\slash":9,"g`eo":"POINT(1 2)","f`l":0.5}'))


def test_views(tmp):
    db = new_db("views")
    sql(db, "CREATE TABLE t (id INT PRIMARY KEY, f FLOAT); INSERT INTO t VALUES (1, 0.1), (2, 2);"
            "CREATE VIEW v AS SELECT id, f, id * 10 AS x FROM t WHERE id = 2;")
    p = extract(config(db, tmp))
    compare("views off", p.stdout, lines('{"id":1,"f":0.1}', '{"id":2,"f":2}'))
    p = extract(config(db, tmp), ["v"], check_rc=None)
    T.check(p.returncode != 0, "views off: --table v should fail (views not included)")
    p = extract(config(db, tmp, INCLUDE_VIEWS="true"))
    compare("views on", p.stdout, lines('{"id":1,"f":0.1}', '{"id":2,"f":2}',
                                        '{"id":2,"f":2,"x":20}'))


# -------------------------------------------------------------------- failures

def error_line(p, *needles):
    """The one stderr line that carries the error; it must contain every needle."""
    err = p.stderr.decode(errors="replace")
    for line in err.splitlines():
        if all(n in line for n in needles):
            return line
    raise T.TestFailure(f"no stderr line with {needles!r}; stderr:\n{err[-3000:]}")


def expect_failure(name, p, *needles):
    T.check(p.returncode != 0, f"{name}: exit status 0, wanted a failure")
    T.check(p.returncode not in (-6, -11, 134, 139), f"{name}: crashed ({p.returncode})")
    line = error_line(p, *needles)
    for secret in (ENV["MARIADB_PASSWORD"], "WrongPw-"):
        T.check(secret not in p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace"),
                f"{name}: password in the output: {line}")
    return line


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_failures(tmp):
    db = ENV["MARIADB_DATABASE"]
    host, port = ENV["MARIADB_HOST"], ENV["MARIADB_PORT"]
    wrong = "WrongPw-" + os.urandom(6).hex()
    p = extract(config(db, tmp, MYSQL_PASSWORD=wrong), check_rc=None)
    expect_failure("wrong password", p, f"mysql {host}:{port}/{db}", "Access denied")

    port2 = free_port()
    p = extract(config(db, tmp, MYSQL_PORT=port2, SOURCE_CONNECT_TIMEOUT=5), check_rc=None,
                timeout=60)
    expect_failure("unreachable port", p, f"mysql {host}:{port2}/{db}", "connect")

    missing = "missing_" + os.urandom(4).hex()
    p = extract(config(missing, tmp), check_rc=None)
    expect_failure("missing database", p, f"mysql {host}:{port}/{missing}", "Unknown database")


def test_tls_and_timeout(tmp):
    db = new_db("tls")
    sql(db, "CREATE TABLE t (id INT); INSERT INTO t VALUES (7);"
            "CREATE VIEW slow AS SELECT SLEEP(3) AS s;")
    host, port = ENV["MARIADB_HOST"], ENV["MARIADB_PORT"]
    for mode in ("DISABLED", "PREFERRED"):
        p = extract(config(db, tmp, MYSQL_SSL_MODE=mode), ["t"])
        compare(f"MYSQL_SSL_MODE={mode}", p.stdout, lines('{"id":7}'))
    have_ssl = sql(None, "SELECT @@have_ssl").strip()
    p = extract(config(db, tmp, MYSQL_SSL_MODE="REQUIRED"), ["t"], check_rc=None)
    if have_ssl == "YES":
        T.check(p.returncode == 0, f"MYSQL_SSL_MODE=REQUIRED failed: {p.stderr[-2000:]!r}")
    else:  # the test server has no TLS: REQUIRED must refuse, not fall back
        expect_failure("MYSQL_SSL_MODE=REQUIRED", p, f"mysql {host}:{port}/{db}",
                       "does not support TLS")
    p = extract(config(db, tmp, MYSQL_SSL_MODE="VERIFY_CA"), ["t"], check_rc=None)
    expect_failure("VERIFY_CA without CA", p, "MYSQL_SSL_CA")

    t0 = time.monotonic()
    p = extract(config(db, tmp, SOURCE_QUERY_TIMEOUT=1, INCLUDE_VIEWS="true"), ["slow"],
                check_rc=None)
    expect_failure("query timeout", p, 'table "slow"', "SOURCE_QUERY_TIMEOUT=1s")
    T.check(time.monotonic() - t0 < 2.9, "query timeout: took longer than the query itself")


def create_big(db, table, rows):
    have_seq = True
    try:
        sql(db, "SELECT 1 FROM seq_1_to_1")
    except T.TestFailure:
        have_seq = False
    cols = ("(id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c DOUBLE, d DATETIME(6), "
            "e DECIMAL(12,2), t TEXT)")
    if have_seq:  # MariaDB's Sequence engine: fastest
        src = f"SELECT seq AS n FROM seq_1_to_{rows}"
        body = f"WITH s AS ({src})"
    else:
        body = ("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                f"WHERE n < {rows})")
    sql(db, f"""
SET SESSION max_recursive_iterations = {rows + 10};
CREATE TABLE `{table}` {cols};
INSERT INTO `{table}` {body}
SELECT n, n % 1000, CONCAT('row-', n, '-', MD5(n)), n / 7,
       TIMESTAMPADD(SECOND, n, '2025-01-01 00:00:00.123456'), n / 100, REPEAT('x', n % 50)
FROM s;
""")


def processlist_id(table):
    out = sql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                    f"AND INFO LIKE 'SELECT % FROM `{table}`'")
    ids = out.split()
    return ids[0] if ids else None


def start_extract(cfg, tables, rss_file=None):
    args = [T.INGESTA, "extract", "--config", cfg]
    if rss_file:
        # ru_maxrss of a child forked from Python counts Python's own pages
        # before exec; GNU time's child is forked from a tiny process.
        args = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + args
    for t in tables:
        args += ["--table", t]
    return subprocess.Popen(args, env=T.clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def drain(p):
    """Read stdout (counting lines) and stderr of p; return (lines, stderr, rusage)."""
    err = []
    t = threading.Thread(target=lambda: err.append(p.stderr.read()))
    t.start()
    count = 0
    last = b""
    while True:
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        count += chunk.count(b"\n")
        last = (last + chunk)[-4096:]
    t.join()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return count, last, err[0], usage


def wait_for_query(table, p, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        qid = processlist_id(table)
        if qid:
            return qid
        if p.poll() is not None:
            raise T.TestFailure(f"ingesta exited ({p.returncode}) before reading {table}")
        time.sleep(0.02)
    raise T.TestFailure(f"the SELECT on {table} never showed up in the processlist")


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def test_big(tmp):
    db = new_db("big")
    create_big(db, "a_big", 2_000_000)
    sql(db, "CREATE TABLE b_small LIKE a_big; INSERT INTO b_small SELECT * FROM a_big "
            "WHERE id <= 100000; CREATE TABLE z_drop (id INT); INSERT INTO z_drop VALUES (1);")
    cfg = config(db, tmp)

    # Bounded memory: peak RSS of 100k rows vs 2M rows.
    figures = {}
    rss_file = os.path.join(tmp, "rss")
    have_time = os.access("/usr/bin/time", os.X_OK)
    for table, rows in (("b_small", 100_000), ("a_big", 2_000_000)):
        t0 = time.monotonic()
        p = start_extract(cfg, [table], rss_file if have_time else None)
        count, last, err, usage = drain(p)
        secs = time.monotonic() - t0
        T.check(p.returncode == 0, f"extract {table} exited {p.returncode}: {err[-2000:]!r}")
        T.check(count == rows, f"extract {table}: {count} lines, wanted {rows}")
        T.check(last.endswith(b'"t":"' + b"x" * (rows % 50) + b'"}\n'),
                f"extract {table}: last row {last[-200:]!r}")
        rss_kib = usage.ru_maxrss
        if have_time:
            with open(rss_file, encoding="utf-8") as f:
                rss_kib = int(f.read().split()[-1])
        figures[table] = (rss_kib, rows / secs)
        print(f"memory: {table}: {rows} rows, peak RSS {rss_kib / 1024:.1f} MiB, "
              f"{rows / secs:,.0f} rows/s", flush=True)
    growth = figures["a_big"][0] - figures["b_small"][0]
    T.check(growth < 16 * 1024, f"peak RSS grew by {growth / 1024:.1f} MiB from 100k to 2M rows")

    # Connection KILLed mid-table.
    p = start_extract(cfg, ["a_big"])
    qid = wait_for_query("a_big", p)
    time.sleep(0.3)
    sql(None, f"KILL {qid}")
    count, _, err, _ = drain(p)
    r = Result(p.returncode, b"", err)
    line = expect_failure("killed mid-table", r, f"mysql {ENV['MARIADB_HOST']}:"
                          f"{ENV['MARIADB_PORT']}/{db}", 'table "a_big"')
    T.check(count < 2_000_000, f"killed mid-table: all {count} rows arrived anyway")
    T.check(re.search(r"Lost connection|killed|server has gone away", line, re.I),
            f"killed mid-table: unclear message: {line}")

    # Table dropped during the run (after discovery, while a_big streams).
    p = start_extract(cfg, [])
    wait_for_query("a_big", p)
    sql(db, "DROP TABLE z_drop")
    count, _, err, _ = drain(p)
    r = Result(p.returncode, b"", err)
    line = expect_failure("dropped table", r, 'table "z_drop"')
    T.check("doesn't exist" in line, f"dropped table: unclear message: {line}")


# ------------------------------------------------------------------------ main

def run_all():
    global ENV
    ENV = T.servers_env()
    for k in ("MARIADB_HOST", "MARIADB_PORT", "MARIADB_USER", "MARIADB_PASSWORD",
              "MARIADB_DATABASE"):
        T.check(k in ENV, f"{k} missing from the test server env (tests/servers/start.sh mariadb)")
    tmp = tempfile.mkdtemp(prefix="ingesta-mysql-")
    failures = []
    try:
        for case in (test_golden, test_cases, test_floats, test_modes, test_idents, test_views,
                     test_connect_failures, test_tls_and_timeout, test_big):
            t0 = time.monotonic()
            try:
                case(tmp)
                print(f"ok   {case.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
            except (T.TestFailure, subprocess.TimeoutExpired) as exc:
                print(f"FAIL {case.__name__}: {exc}", flush=True)
                failures.append(case.__name__)
    finally:
        for db in CREATED_DBS:
            try:
                sql(None, f"DROP DATABASE IF EXISTS `{db}`")
            except T.TestFailure:
                pass
    if failures:
        raise T.TestFailure("failed: " + ", ".join(failures))


if __name__ == "__main__":
    T.main(run_all)
