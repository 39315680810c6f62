#!/usr/bin/env python3
"""Many small tables (issue 12, part 3): A/B of two ingesta binaries on K tables of 20 rows.

Per round and per binary (the binaries alternate inside a round, on the same
data): a fresh spool, --runs collect runs into it (wall s, ms per table,
fsync-family syscalls counted with strace -c when --strace), spool.db bytes
after the first and after the last run; with --upload, `ingesta upload --once`
of the first run to MinIO (objects/s: segments + manifests + commit records).
Prints a table of medians and the median of the per-round ratios new/old.

    bench/tables.py --ingesta build/ingesta --baseline /tmp/old-ingesta [--tables 5000]
                    [--only postgresql,mariadb] [--rounds 3] [--runs 3] [--upload] [--strace]

The databases are built once by bench/curves.py's ensure_pg_tables /
ensure_my_tables (database bench_tables<K>, or --db NAME).
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import curves  # noqa: E402

SYNC_CALLS = ("fsync", "fdatasync")


def log(msg):
    print(f"tables: {msg}", file=sys.stderr, flush=True)


def conf_lines(env, kind, db, spool, bucket):
    lines = {"SPOOL_DIR": spool, "S3_BUCKET": bucket, "PROGRESS": "never", "LOG_LEVEL": "WARNING",
             "EXCLUDE_TABLES": "bench_meta"}
    if kind == "postgresql":
        lines.update(DB_TYPE="postgresql", POSTGRES_HOST=env["POSTGRESQL_HOST"], POSTGRES_PORT=env["POSTGRESQL_PORT"],
                     POSTGRES_USER=env["POSTGRESQL_USER"], POSTGRES_PASSWORD=env["POSTGRESQL_PASSWORD"],
                     POSTGRES_DB=db)
    else:
        lines.update(DB_TYPE="mysql", MYSQL_HOST=env["MARIADB_HOST"], MYSQL_PORT=env["MARIADB_PORT"],
                     MYSQL_USER=env["MARIADB_USER"], MYSQL_PASSWORD=env["MARIADB_PASSWORD"], MYSQL_DATABASE=db)
    return lines


def write_conf(path, lines):
    with open(path, "w") as f:
        for k, v in lines.items():
            f.write(f"{k}={v}\n")


def strace_syncs(path):
    n = 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in SYNC_CALLS:
                n += int(parts[3])
    return n


def db_bytes(spool):
    return sum(os.path.getsize(os.path.join(spool, f)) for f in os.listdir(spool) if f.startswith("spool.db"))


def timed(argv, env, out, strace=None):
    if strace:
        argv = ["strace", "-f", "-c", "-o", strace] + argv
    t0 = time.monotonic()
    with open(out, "w") as f:
        rc = subprocess.run(argv, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    return rc, time.monotonic() - t0


def one(args, env, binary, kind, db, work, tag):
    spool = os.path.join(work, f"spool-{tag}")
    shutil.rmtree(spool, ignore_errors=True)
    bucket = args.bucket
    conf = os.path.join(work, f"{tag}.conf")
    lines = conf_lines(env, kind, db, spool, bucket)
    write_conf(conf, lines)
    cenv = bench.clean_env({"HOME": os.environ.get("HOME", "/root")})
    r = {"collect_s": [], "db_bytes": []}
    for i in range(args.runs):
        rc, dt = timed([binary, "collect", "--config", conf], cenv, os.path.join(work, f"{tag}.collect.out"))
        if rc != 0:
            sys.exit(f"{tag}: collect exit {rc}: " + open(os.path.join(work, f"{tag}.collect.out")).read()[-600:])
        con = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True)
        rows = con.execute("SELECT coalesce(sum(s.rows),0) FROM segments s JOIN partitions p ON p.id=s.partition_id "
                           "WHERE p.run_id=(SELECT max(run_id) FROM runs)").fetchone()[0]
        con.close()
        if rows != args.tables * curves.ROWS_PER_TABLE:
            sys.exit(f"{tag}: {rows} rows committed, wanted {args.tables * curves.ROWS_PER_TABLE}")
        r["collect_s"].append(dt)
        r["db_bytes"].append(db_bytes(spool))
        if i == 0 and args.upload:
            uenv = dict(cenv, S3_ENDPOINT=env["MINIO_ENDPOINT"], AWS_ACCESS_KEY_ID=env["MINIO_ROOT_USER"],
                        AWS_SECRET_ACCESS_KEY=env["MINIO_ROOT_PASSWORD"], AWS_DEFAULT_REGION="us-east-1")
            rc, dt = timed([binary, "upload", "--config", conf, "--once"], uenv, os.path.join(work, f"{tag}.up.out"))
            if rc != 0:
                sys.exit(f"{tag}: upload exit {rc}")
            con = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True)
            objs = con.execute("SELECT (SELECT count(*) FROM segments WHERE state='uploaded') + "
                               "(SELECT count(*) FROM partitions WHERE manifest_state='written') + "
                               "(SELECT count(*) FROM partitions WHERE commit_state='written')").fetchone()[0]
            con.close()
            r["upload_s"] = dt
            r["objects"] = objs
            r["db_bytes_uploaded"] = db_bytes(spool)
    if args.strace:
        # untimed: the fsync-family calls of one more run (strace slows it down)
        st = os.path.join(work, f"{tag}.strace")
        rc, _ = timed([binary, "collect", "--config", conf], cenv, os.path.join(work, f"{tag}.collect.out"), st)
        r["syncs"] = strace_syncs(st) if rc == 0 else None
    shutil.rmtree(spool, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--tables", type=int, default=5000)
    ap.add_argument("--db", default=None, help="database name (default bench_tables<K>)")
    ap.add_argument("--only", default="postgresql,mariadb")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1, help="collect runs into one spool (spool.db growth)")
    ap.add_argument("--upload", action="store_true", help="upload --once the first run to MinIO")
    ap.add_argument("--bucket", default="bench-tables")
    ap.add_argument("--strace", action="store_true", help="count fsync/fdatasync of the first run")
    ap.add_argument("--work", default="/tmp/ingesta-bench-tables")
    args = ap.parse_args()
    env = bench.servers_env()
    os.makedirs(args.work, exist_ok=True)
    db = args.db or f"bench_tables{args.tables}"
    if args.upload:
        subprocess.run(["aws", "--endpoint-url", env["MINIO_ENDPOINT"], "s3", "mb", f"s3://{args.bucket}"],
                       env=dict(os.environ, AWS_ACCESS_KEY_ID=env["MINIO_ROOT_USER"],
                                AWS_SECRET_ACCESS_KEY=env["MINIO_ROOT_PASSWORD"], AWS_DEFAULT_REGION="us-east-1"),
                       capture_output=True)
    bins = {"old": os.path.abspath(args.baseline), "new": os.path.abspath(args.ingesta)}
    out = ["| source | binary | collect s | ms/table | fsync+fdatasync | spool.db KiB (1 run) | "
           f"spool.db KiB ({args.runs} runs) | upload s | objects/s |", "| --- " * 9 + "|"]
    ratios = []
    for kind in [k for k in args.only.split(",") if k]:
        (curves.ensure_pg_tables if kind == "postgresql" else curves.ensure_my_tables)(env, db, args.tables)
        res = {"old": [], "new": []}
        for rnd in range(args.rounds):
            order = ["old", "new"] if rnd % 2 == 0 else ["new", "old"]
            for b in order:
                r = one(argparse.Namespace(**dict(vars(args), strace=args.strace and rnd == 0)), env, bins[b],
                        kind, db, args.work, f"{kind}-{b}")
                res[b].append(r)
                log(f"{kind} round {rnd + 1} {b}: collect {r['collect_s'][0]:.2f} s, spool.db "
                    f"{[x // 1024 for x in r['db_bytes']]} KiB"
                    + (f", upload {r['upload_s']:.1f} s {r['objects'] / r['upload_s']:.0f} obj/s"
                       if "upload_s" in r else ""))
            ratios.append((kind, res["new"][-1]["collect_s"][0] / res["old"][-1]["collect_s"][0],
                           (res["new"][-1]["upload_s"] / res["old"][-1]["upload_s"]) if args.upload else None))
        for b in ("old", "new"):
            rs = res[b]
            c = statistics.median(r["collect_s"][0] for r in rs)
            up = statistics.median(r["upload_s"] for r in rs) if args.upload else None
            objs = rs[0].get("objects", 0)
            out.append(f"| {kind} | {b} | {c:.2f} | {c * 1000 / args.tables:.2f} | "
                       f"{rs[0].get('syncs', '')} | {statistics.median(r['db_bytes'][0] for r in rs) / 1024:.0f} | "
                       f"{statistics.median(r['db_bytes'][-1] for r in rs) / 1024:.0f} | "
                       + (f"{up:.1f} | {objs / up:.0f} |" if up else " | |"))
    out.append("")
    for kind in [k for k in args.only.split(",") if k]:
        cr = [r[1] for r in ratios if r[0] == kind]
        ur = [r[2] for r in ratios if r[0] == kind and r[2] is not None]
        out.append(f"{kind}: median new/old collect time {statistics.median(cr):.3f} over {len(cr)} rounds"
                   + (f", upload time {statistics.median(ur):.3f}" if ur else ""))
    print("\n".join(out))


if __name__ == "__main__":
    main()
