#!/usr/bin/env python3
"""Cost curves of ingesta collect (issue 12, part 6): how cost grows with work.

- rows/s and peak RSS against the table size (PostgreSQL and MariaDB `t`, the
  datasets of bench/datasets.py: 100,000 and 1,000,000 rows by default; add
  10,000,000 with --rows 100000,1000000,10000000);
- wall time, time per table and spool.db growth against the number of tables
  (K tables of 20 rows each: 10, 100, 1000 and 5000 by default).

Each point is the median of --rounds runs (one by default), every run's row
count checked in spool.db (a wrong count fails the run: exit 1). Writes
results.json, report.md and curves.svg (pure Python, no plotting library)
under bench/results/<time>-curves/.

    bench/curves.py [--rows 100000,1000000] [--tables 10,100,1000,5000] [--rounds 1]
                    [--only postgresql,mariadb] [--ingesta build-bench/ingesta]

Run bench/run.sh once first (it builds ingesta and starts the servers), or
start them with tests/servers/start.sh all.
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (run_measured, ServerProbe, servers_env, clean_env)
import datasets  # noqa: E402

MiB = 1024 * 1024
ROWS_PER_TABLE = 20


def log(msg):
    print(f"curves: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- many small tables

def ensure_pg_tables(env, db, k):
    marker = f"ingesta bench tables v1 k={k} rows={ROWS_PER_TABLE}"
    if datasets.pg_query(env, env["POSTGRESQL_DATABASE"], f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
        datasets.pg_query(env, env["POSTGRESQL_DATABASE"], f'CREATE DATABASE "{db}"')
    have = datasets.pg_query(env, db, "SELECT obj_description(oid, 'pg_class') FROM pg_class "
                                      "WHERE relname = 'bench_meta' AND relnamespace = 'public'::regnamespace")
    if have == marker:
        return 0.0
    t0 = time.monotonic()
    sql = ["DROP SCHEMA public CASCADE; CREATE SCHEMA public;"]
    for i in range(k):
        sql.append(f"CREATE TABLE w{i:05d} (id bigint PRIMARY KEY, name text, v numeric(12,2), at timestamptz);"
                   f"INSERT INTO w{i:05d} SELECT g, 'row ' || g || ' of {i}', g * 1.25, "
                   f"'2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, {ROWS_PER_TABLE}) g;")
    # the marker last, outside the collected tables (bench_meta is excluded)
    sql.append(f"CREATE TABLE bench_meta (x int); COMMENT ON TABLE bench_meta IS '{marker}';")
    subprocess.run(datasets.psql_cmd(env, db), input="\n".join(sql), env=datasets.pg_env(env), check=True,
                   text=True, capture_output=True)
    dt = time.monotonic() - t0
    log(f"postgresql {db}: {k} tables built in {dt:.1f} s")
    return dt


def ensure_my_tables(env, db, k):
    marker = f"ingesta bench tables v1 k={k} rows={ROWS_PER_TABLE}"
    datasets.my_query(env, None, f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4")
    have = datasets.my_query(env, db, "SELECT TABLE_COMMENT FROM information_schema.TABLES "
                                      f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'bench_meta'")
    if have == marker:
        return 0.0
    t0 = time.monotonic()
    sql = [f"DROP DATABASE `{db}`; CREATE DATABASE `{db}` CHARACTER SET utf8mb4; USE `{db}`;"]
    for i in range(k):
        sql.append(f"CREATE TABLE w{i:05d} (id BIGINT PRIMARY KEY, name VARCHAR(64), v DECIMAL(12,2), "
                   f"at TIMESTAMP(3) NULL) ENGINE=InnoDB;"
                   f"INSERT INTO w{i:05d} SELECT seq, CONCAT('row ', seq, ' of {i}'), seq * 1.25, "
                   f"TIMESTAMPADD(MINUTE, seq, '2026-01-01') FROM seq_1_to_{ROWS_PER_TABLE};")
    sql.append(f"CREATE TABLE bench_meta (x INT) COMMENT='{marker}';")
    subprocess.run(datasets.my_cmd(env), input="\n".join(sql), env=datasets.my_env(env), check=True, text=True,
                   capture_output=True)
    dt = time.monotonic() - t0
    log(f"mariadb {db}: {k} tables built in {dt:.1f} s")
    return dt


# ---------------------------------------------------------------- one run

def collect(args, env, kind, db, work, include=None, exclude=None):
    spool = os.path.join(work, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    lines = {"SPOOL_DIR": spool, "S3_BUCKET": "bench-curves", "SPOOL_MAX_BYTES": "0", "PROGRESS": "never",
             "LOG_LEVEL": "WARNING"}
    if include:
        lines["INCLUDE_TABLES"] = include
    if exclude:
        lines["EXCLUDE_TABLES"] = exclude
    if kind == "postgresql":
        lines.update(DB_TYPE="postgresql", POSTGRES_HOST=env["POSTGRESQL_HOST"], POSTGRES_PORT=env["POSTGRESQL_PORT"],
                     POSTGRES_USER=env["POSTGRESQL_USER"], POSTGRES_PASSWORD=env["POSTGRESQL_PASSWORD"],
                     POSTGRES_DB=db)
        probes = ["postgres"]
    else:
        lines.update(DB_TYPE="mysql", MYSQL_HOST=env["MARIADB_HOST"], MYSQL_PORT=env["MARIADB_PORT"],
                     MYSQL_USER=env["MARIADB_USER"], MYSQL_PASSWORD=env["MARIADB_PASSWORD"], MYSQL_DATABASE=db)
        probes = ["mariadb"]
    conf = os.path.join(work, "collect.conf")
    with open(conf, "w") as f:
        for k, v in lines.items():
            f.write(f"{k}={v}\n")
    r = bench.run_measured([args.ingesta, "collect", "--config", conf], os.path.join(work, "collect.out"),
                           bench.clean_env({"HOME": os.environ.get("HOME", "/root")}),
                           [bench.ServerProbe(p) for p in probes], cwd=work)
    r["rows"] = r["tables"] = 0
    if r["rc"] == 0:
        con = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True)
        r["rows"] = con.execute("SELECT coalesce(sum(rows), 0) FROM segments").fetchone()[0]
        r["tables"] = con.execute("SELECT count(DISTINCT table_name) FROM partitions").fetchone()[0]
        con.close()
        r["spool_db_bytes"] = sum(os.path.getsize(os.path.join(spool, f)) for f in os.listdir(spool)
                                  if f.startswith("spool.db"))
    shutil.rmtree(spool, ignore_errors=True)
    if r["rc"] == 0:
        r.pop("stderr", None)
    return r


def median_run(args, env, kind, db, work, want_rows, want_tables=None, **kw):
    runs, failures = [], []
    for _ in range(args.rounds):
        r = collect(args, env, kind, db, work, **kw)
        if r["rc"] != 0:
            failures.append(f"{kind} {db}: exit {r['rc']}: {r.get('stderr', '')[-400:]}")
        elif r["rows"] != want_rows or (want_tables is not None and r["tables"] != want_tables):
            failures.append(f"{kind} {db}: {r['rows']} rows in {r['tables']} tables, wanted {want_rows}"
                            + (f" in {want_tables}" if want_tables is not None else ""))
        runs.append(r)
    ok = [r for r in runs if r["rc"] == 0]
    pick = sorted(ok, key=lambda r: r["wall_s"])[len(ok) // 2] if ok else runs[-1]
    return pick, runs, failures


# ---------------------------------------------------------------- SVG

def svg_panel(x0, y0, w, h, title, xlabel, ylabel, series, logx=True):
    """One line chart: series = [(name, colour, [(x, y, label)])]."""
    import math
    pts = [p for _, _, ps in series for p in ps]
    if not pts:
        return ""
    xs = [p[0] for p in pts]
    ymax = max(p[1] for p in pts) * 1.15 or 1
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    lo, hi = fx(min(xs)), fx(max(xs))
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad_l, pad_b, pad_t = 70, 40, 30

    def px(v):
        return x0 + pad_l + (fx(v) - lo) / (hi - lo) * (w - pad_l - 20)

    def py(v):
        return y0 + pad_t + (1 - v / ymax) * (h - pad_t - pad_b)

    out = [f'<text x="{x0 + w / 2}" y="{y0 + 18}" text-anchor="middle" font-size="14" '
           f'font-weight="bold">{title}</text>',
           f'<line x1="{x0 + pad_l}" y1="{py(0)}" x2="{x0 + w - 20}" y2="{py(0)}" stroke="#333"/>',
           f'<line x1="{x0 + pad_l}" y1="{py(0)}" x2="{x0 + pad_l}" y2="{y0 + pad_t}" stroke="#333"/>',
           f'<text x="{x0 + w / 2}" y="{y0 + h - 5}" text-anchor="middle" font-size="12">{xlabel}</text>',
           f'<text x="{x0 + 14}" y="{y0 + h / 2}" text-anchor="middle" font-size="12" '
           f'transform="rotate(-90 {x0 + 14} {y0 + h / 2})">{ylabel}</text>']
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<text x="{x0 + pad_l - 6}" y="{py(v) + 4}" text-anchor="end" font-size="10">{v:,.0f}</text>')
        out.append(f'<line x1="{x0 + pad_l}" y1="{py(v)}" x2="{x0 + w - 20}" y2="{py(v)}" stroke="#ddd"/>')
    for v in sorted(set(xs)):
        out.append(f'<text x="{px(v)}" y="{py(0) + 16}" text-anchor="middle" font-size="10">{v:,}</text>')
    for n, (name, colour, ps) in enumerate(series):
        ps = sorted(ps)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                   + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in ps) + '"/>')
        for x, y, label in ps:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>')
            if label:
                out.append(f'<text x="{px(x) + 5:.1f}" y="{py(y) - 6:.1f}" font-size="10" fill="{colour}">'
                           f'{label}</text>')
        out.append(f'<text x="{x0 + pad_l + 10}" y="{y0 + pad_t + 14 + 14 * n}" font-size="11" '
                   f'fill="{colour}">{name}</text>')
    return "\n".join(out)


def write_svg(path, size_pts, table_pts):
    colours = {"postgresql": "#1f77b4", "mariadb": "#d62728"}
    w, h = 560, 340
    a = svg_panel(0, 0, w, h, "ingesta collect: rows/s against table size", "rows (log scale)",
                  "rows/s", [(k, colours[k], [(p["n"], p["rate"], f"{p['rss_mib']:.0f} MiB") for p in ps])
                             for k, ps in size_pts.items()])
    b = svg_panel(w, 0, w, h, "ingesta collect: seconds against the number of tables",
                  f"tables of {ROWS_PER_TABLE} rows (log scale)", "wall s",
                  [(k, colours[k], [(p["k"], p["wall"], f"{p['ms_per_table']:.0f} ms/table") for p in ps])
                   for k, ps in table_pts.items()])
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h}" '
                f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n{a}\n{b}\n</svg>\n')


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="100000,1000000", help="table sizes (add 10000000 for the 10M point)")
    ap.add_argument("--tables", default="10,100,1000,5000", help="numbers of 20-row tables ('' to skip)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default="postgresql,mariadb")
    ap.add_argument("--ingesta", default=os.path.join(ROOT, "build-bench", "ingesta"))
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/ingesta-bench") + "-curves")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    args.ingesta = os.path.abspath(args.ingesta)
    kinds = [k for k in args.only.split(",") if k]
    sizes = [int(x) for x in args.rows.split(",") if x]
    counts = [int(x) for x in args.tables.split(",") if x]
    env = bench.servers_env()
    os.makedirs(args.work, exist_ok=True)
    t_start = time.monotonic()
    meta = {"machine": bench.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "ingesta": args.ingesta, "rounds": args.rounds,
            "git": subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                  text=True).stdout.strip()}
    size_pts, table_pts, runs, failures = {}, {}, [], []
    for kind in kinds:
        for n in sizes:
            db = f"bench_c{n}"
            (datasets.ensure_pg if kind == "postgresql" else datasets.ensure_mariadb)(env, db, n)
            r, rs, fl = median_run(args, env, kind, db, args.work, n, include="t")
            failures += fl
            runs += [dict(x, kind=kind, n=n, curve="rows") for x in rs]
            if r["rc"] == 0:
                p = {"n": n, "wall": r["wall_s"], "rate": n / r["wall_s"], "rss_mib": r["maxrss_bytes"] / MiB,
                     "cpu": r["cpu_s"], "server_cpu": r["server_cpu_s"]}
                size_pts.setdefault(kind, []).append(p)
                log(f"{kind} {n:,} rows: {r['wall_s']:.2f} s, {p['rate']:,.0f} rows/s, peak RSS {p['rss_mib']:.1f} MiB")
        for k in counts:
            db = f"bench_tables{k}"
            (ensure_pg_tables if kind == "postgresql" else ensure_my_tables)(env, db, k)
            r, rs, fl = median_run(args, env, kind, db, args.work, k * ROWS_PER_TABLE, want_tables=k,
                                   exclude="bench_meta")
            failures += fl
            runs += [dict(x, kind=kind, k=k, curve="tables") for x in rs]
            if r["rc"] == 0:
                p = {"k": k, "wall": r["wall_s"], "ms_per_table": r["wall_s"] * 1000 / k,
                     "spool_db_kib": r.get("spool_db_bytes", 0) / 1024, "rss_mib": r["maxrss_bytes"] / MiB,
                     "cpu": r["cpu_s"], "server_cpu": r["server_cpu_s"]}
                table_pts.setdefault(kind, []).append(p)
                log(f"{kind} {k} tables: {r['wall_s']:.2f} s, {p['ms_per_table']:.1f} ms/table, "
                    f"spool.db {p['spool_db_kib']:.0f} KiB")
    meta["elapsed_s"] = time.monotonic() - t_start
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    out = [f"ingesta cost curves {meta['started']}: load at start {' '.join(meta['machine']['loadavg'])}, at end "
           f"{' '.join(meta['loadavg_end'])}; {args.rounds} round(s) per point; {meta['elapsed_s']:.0f} s in all\n",
           "| source | rows | wall s | rows/s | client CPU s | server CPU s | peak RSS MiB |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind, ps in size_pts.items():
        for p in ps:
            out.append(f"| {kind} | {p['n']:,} | {p['wall']:.2f} | {p['rate']:,.0f} | {p['cpu']:.2f} | "
                       f"{p['server_cpu']:.2f} | {p['rss_mib']:.1f} |")
    out += ["", f"| source | tables ({ROWS_PER_TABLE} rows each) | wall s | ms per table | spool.db KiB | "
                "client CPU s | server CPU s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind, ps in table_pts.items():
        for p in ps:
            out.append(f"| {kind} | {p['k']:,} | {p['wall']:.2f} | {p['ms_per_table']:.1f} | "
                       f"{p['spool_db_kib']:.0f} | {p['cpu']:.2f} | {p['server_cpu']:.2f} |")
    if failures:
        out += ["", "### FAILURES", ""] + [f"- {f}" for f in failures]
    report = "\n".join(out)
    rdir = os.path.join(args.results, time.strftime("%Y%m%dT%H%M%S") + "-curves")
    os.makedirs(rdir, exist_ok=True)
    with open(os.path.join(rdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "sizes": size_pts, "tables": table_pts, "runs": runs, "failures": failures}, f,
                  indent=1)
    with open(os.path.join(rdir, "report.md"), "w") as f:
        f.write(report + "\n")
    write_svg(os.path.join(rdir, "curves.svg"), size_pts, table_pts)
    print(report)
    log(f"results in {rdir} (report.md, curves.svg)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
