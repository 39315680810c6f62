#!/usr/bin/python3
"""Where ingesta collect's instructions go, with callgrind (instruction counts
are stable run to run, unlike times on a shared 2-core machine).

Builds ingesta with -O3 plus debug info in build-bench-prof (same code as the
release build, symbols for inlined frames), creates the benchmark's PostgreSQL
table with ROWS rows in database `bench_prof` (same generator as bench.py), and
runs `ingesta collect` under callgrind twice, with ROWS and ROWS/2 rows
(INCLUDE_TABLES), so the per-row cost is the difference divided by ROWS/2:
start-up, connection and spool set-up cancel out. Reports instructions per
row in total and per stage (inclusive cost of the stage's entry points), and
the top functions by self cost.

usage: bench/profile.py [--rows N] [--ingesta BINARY]
Output: bench/results/profile-<time>/ (callgrind.out.*, annotate.txt, profile.md)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
import datasets  # noqa: E402

# The row loop of the PostgreSQL driver and the stages inside it. Per-row
# figures come from the difference of two runs, so fixed costs cancel.
LOOP = "copy_rows"              # src_postgres.c: PQgetCopyData -> split/convert -> table_writer_row_end
READ = ["PQgetCopyData"]
WRITER = "table_writer_row_end"  # append to the batch; compress, hash and write full batches
COMPRESS = ["ZSTD_compressStream2"]
HASH = ["EVP_DigestUpdate", "EVP_DigestFinal_ex"]


def log(msg):
    print(f"profile: {msg}", file=sys.stderr, flush=True)


def build(root):
    bdir = os.path.join(root, "build-bench-prof")
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        subprocess.run(["meson", "setup", bdir, root, "--buildtype=release", "-Ddebug=true"], check=True,
                       stdout=sys.stderr)
    subprocess.run(["ninja", "-C", bdir], check=True, stdout=sys.stderr)
    return os.path.join(bdir, "ingesta")


def collect_conf(env, kind, db, table, spool, path):
    lines = {"SPOOL_DIR": spool, "S3_BUCKET": "bench-prof", "INCLUDE_TABLES": table, "SPOOL_MAX_BYTES": "0",
             "PROGRESS": "never", "LOG_LEVEL": "WARNING"}
    if kind == "postgresql":
        lines.update(DB_TYPE="postgresql", POSTGRES_HOST=env["POSTGRESQL_HOST"], POSTGRES_PORT=env["POSTGRESQL_PORT"],
                     POSTGRES_USER=env["POSTGRESQL_USER"], POSTGRES_PASSWORD=env["POSTGRESQL_PASSWORD"], POSTGRES_DB=db)
    else:
        lines.update(DB_TYPE="mysql", MYSQL_HOST=env["MARIADB_HOST"], MYSQL_PORT=env["MARIADB_PORT"],
                     MYSQL_USER=env["MARIADB_USER"], MYSQL_PASSWORD=env["MARIADB_PASSWORD"], MYSQL_DATABASE=db)
    with open(path, "w") as f:
        for k, v in lines.items():
            f.write(f"{k}={v}\n")


def parse_annotate(text):
    """callgrind_annotate function lines '1,234 (12.3%)  file:function [object]'
    -> ({function: Ir}, {object: Ir}). Only the per-function lines (they end
    with the object); the per-file lines of inlined code are skipped."""
    fns, objs = {}, {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*):(\S+) \[(.+)\]\s*$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        fn, obj = m.group(3), os.path.basename(m.group(4))
        if fn.startswith("0x"):
            fn = f"{obj} internal {fn}"
        fns[fn] = max(fns.get(fn, 0), ir)
        objs[obj] = objs.get(obj, 0) + ir
    return fns, objs


def total_ir(text):
    m = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", text) or re.search(r"([\d,]+)\s+PROGRAM TOTALS", text)
    return int(m.group(1).replace(",", ""))


def callgrind(ingesta, conf, outfile, env):
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}", ingesta, "collect",
                    "--config", conf], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    incl = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=yes", "--threshold=100", outfile],
                          check=True, capture_output=True, text=True).stdout
    excl = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", outfile],
                          check=True, capture_output=True, text=True).stdout
    return incl, excl


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--db", default="postgresql", choices=["postgresql"])
    ap.add_argument("--ingesta", help="a binary built with debug info (default: build build-bench-prof)")
    ap.add_argument("--work", default="/tmp/ingesta-bench/profile")
    args = ap.parse_args()
    env = bench.servers_env()
    ingesta = args.ingesta or build(ROOT)
    dbname = "bench_prof"
    half = args.rows // 2
    if args.db == "postgresql":
        datasets.ensure_pg(env, dbname, args.rows)
        datasets.pg_query(env, dbname, "DROP TABLE IF EXISTS t_half; CREATE TABLE t_half AS "
                                       f"SELECT * FROM t WHERE id <= {half}")
        datasets.pg_query(env, dbname, "VACUUM (FREEZE, ANALYZE) t_half")
    else:
        datasets.ensure_mariadb(env, dbname, args.rows)
        datasets.my_query(env, dbname, "DROP TABLE IF EXISTS t_half; CREATE TABLE t_half LIKE t; "
                                       f"INSERT INTO t_half SELECT * FROM t WHERE id <= {half}")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    rdir = os.path.join(HERE, "results", "profile-" + time.strftime("%Y%m%dT%H%M%S"))
    os.makedirs(rdir)
    res = {}
    for table, rows in (("t", args.rows), ("t_half", half)):
        spool = os.path.join(args.work, f"spool-{table}")
        conf = os.path.join(args.work, f"{table}.conf")
        collect_conf(env, args.db, dbname, table, spool, conf)
        out = os.path.join(rdir, f"callgrind.out.{table}")
        log(f"callgrind: ingesta collect {args.db} {dbname}.{table} ({rows} rows)")
        t0 = time.monotonic()
        incl, excl = callgrind(ingesta, conf, out, bench.clean_env())
        log(f"  {time.monotonic() - t0:.0f} s")
        with open(os.path.join(rdir, f"annotate-{table}.txt"), "w") as f:
            f.write(incl + "\n\n" + excl)
        res[table] = (rows, total_ir(incl), parse_annotate(incl), parse_annotate(excl))
    (n1, tot1, inc1, exc1), (n2, tot2, inc2, exc2) = res["t"], res["t_half"]
    inc1, inc2 = inc1[0], inc2[0]
    (exc1, obj1), (exc2, obj2) = exc1, exc2
    dn = n1 - n2
    per_row_total = (tot1 - tot2) / dn

    def pr(fns):
        return sum((inc1.get(f, 0) - inc2.get(f, 0)) for f in fns) / dn

    read, writer, comp, hsh = pr(READ), pr([WRITER]), pr(COMPRESS), pr(HASH)
    loop = pr([LOOP])
    stages = [
        ("source read (libpq PQgetCopyData: socket, COPY framing)", read),
        ("normalization (split COPY text, convert each type, JSON text: the row loop less read and writer)",
         loop - read - writer),
        ("compression (zstd ZSTD_compressStream2, level 3)", comp),
        ("hashing (SHA-256 + MD5, EVP_DigestUpdate/Final)", hsh),
        ("writer other (row append, batching, write(2) calls)", writer - comp - hsh),
        ("outside the row loop (per-row share of spool, logging...)", per_row_total - loop),
    ]
    lines = [f"callgrind, ingesta collect, {args.db} table of the benchmark (bench.py's generator), "
             f"{n1:,} vs {n2:,} rows: per-row figures are (Ir({n1:,}) - Ir({n2:,})) / {dn:,}.", "",
             f"- total: {tot1:,} Ir for {n1:,} rows; **{per_row_total:,.0f} instructions per row**; "
             f"fixed cost (start-up, connection, spool) {tot1 - per_row_total * n1:,.0f} Ir", "",
             "| stage | instructions per row | share |", "| --- | --- | --- |"]
    for stage, v in stages:
        lines.append(f"| {stage} | {v:,.0f} | {v / per_row_total:.0%} |")
    lines += ["", "Self cost by object (instructions per row):", "", "| object | Ir per row | share |",
              "| --- | --- | --- |"]
    for obj in sorted(obj1, key=lambda o: obj1[o] - obj2.get(o, 0), reverse=True)[:8]:
        v = (obj1[obj] - obj2.get(obj, 0)) / dn
        lines.append(f"| {obj} | {v:,.0f} | {v / per_row_total:.1%} |")
    lines += ["", "Top functions by self cost (instructions per row; libzstd/libcrypto have no symbols "
              "for their internal functions):", "", "| function | Ir per row | share |", "| --- | --- | --- |"]
    diffs = sorted(((exc1[f] - exc2.get(f, 0)) / dn, f) for f in exc1)
    for v, f in reversed(diffs[-20:]):
        lines.append(f"| `{f}` | {v:,.0f} | {v / per_row_total:.1%} |")
    report = "\n".join(lines)
    with open(os.path.join(rdir, "profile.md"), "w") as f:
        f.write(report + "\n")
    print(report)
    log(f"results in {rdir}")


if __name__ == "__main__":
    main()
