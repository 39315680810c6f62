#!/usr/bin/python3
"""COLLECT_PARALLEL A/B: ingesta collect with 1, 2, 3, 4 source connections on
the same data, rotated every round (1 2 3 4, 2 3 4 1, ...), one fresh spool per
run; per run: wall time to the summary line (process start to "extraction
complete"; the service thread's up-to-250 ms nap at exit is left out), CPU
time (user+sys, all threads, wait4 rusage), peak RSS, and the server's CPU
time (its processes' /proc times, reaped backends included; other clients of
the server count too). Prints the medians and the median of the per-round
ratios against the first setting.

  bench/parallel.py pg|my big|multi ROUNDS [1,2,3,4]
big: bench.t, the 1M-row table of bench/datasets.py (bench/run.sh builds it);
multi: 8 tables of 125,000 rows of the same shape (m0..m7, built here once in
the database bench_par8). ING: the ingesta binary (default build-bench/ingesta).
"""
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import datasets  # noqa: E402
import ingesta_test  # noqa: E402
ING = os.environ.get("ING", os.path.join(os.path.dirname(HERE), "build-bench", "ingesta"))
MULTI_DB = "bench_par8"


def ensure_multi(env):
    """m0..m7 in MULTI_DB on both servers (skipped when m7 has its rows)."""
    have = datasets.pg_query(env, env["POSTGRESQL_DATABASE"],
                             f"SELECT 1 FROM pg_database WHERE datname = '{MULTI_DB}'")
    if have == "1" and datasets.pg_query(env, MULTI_DB, "SELECT count(*) FROM pg_class WHERE relname = 'm7'") == "1":
        return
    if have != "1":
        datasets.pg_query(env, env["POSTGRESQL_DATABASE"], f'CREATE DATABASE "{MULTI_DB}"')
    datasets.my_query(env, None, f"CREATE DATABASE IF NOT EXISTS `{MULTI_DB}` CHARACTER SET utf8mb4 "
                                 "COLLATE utf8mb4_unicode_ci")
    for k in range(8):
        sql = (datasets.PG_TABLE_SQL.format(n=125000, marker="par8").replace(" t;", f" m{k};")
               .replace("TABLE t ", f"TABLE m{k} ").replace("INTO t\n", f"INTO m{k}\n")
               .replace("TABLE t (", f"TABLE m{k} ("))
        subprocess.run(datasets.psql_cmd(env, MULTI_DB), input=sql, env=datasets.pg_env(env),
                       check=True, text=True, capture_output=True)
        sql = (datasets.MY_TABLE_SQL.format(n=125000, marker="par8").replace(" t;", f" m{k};")
               .replace("TABLE t (", f"TABLE m{k} (").replace("INTO t\n", f"INTO m{k}\n"))
        subprocess.run(datasets.my_cmd(env, MULTI_DB), input=sql, env=datasets.my_env(env),
                       check=True, text=True, capture_output=True)


env = ingesta_test.servers_env()
src, dset, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
pars = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,2,3,4").split(",")]
if src == "pg":
    base = {"DB_TYPE": "postgresql", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": env["POSTGRESQL_PORT"],
            "POSTGRES_USER": env["POSTGRESQL_USER"], "POSTGRES_PASSWORD": env["POSTGRESQL_PASSWORD"]}
    dbkey = "POSTGRES_DB"
    server = "postgres"
else:
    base = {"DB_TYPE": "mysql", "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": env["MARIADB_PORT"],
            "MYSQL_USER": env["MARIADB_USER"], "MYSQL_PASSWORD": env["MARIADB_PASSWORD"]}
    dbkey = "MYSQL_DATABASE"
    server = "mariadbd"
if dset == "big":
    base.update({dbkey: "bench", "INCLUDE_TABLES": "t"})
else:
    ensure_multi(env)
    base.update({dbkey: MULTI_DB, "INCLUDE_TABLES": "m*"})

def server_cpu():
    tot = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        if name.startswith(server):
            fl = s[s.rindex(")") + 2:].split()
            tot += int(fl[11]) + int(fl[12]) + int(fl[13]) + int(fl[14])  # + reaped children (backends)
    return tot / os.sysconf("SC_CLK_TCK")

work = os.path.join(os.environ.get("BENCH_WORK", "/tmp/ingesta-bench"), f"parallel-{src}-{dset}")
res = {p: [] for p in pars}
for r in range(rounds):
    order = pars[r % len(pars):] + pars[:r % len(pars)]
    for p in order:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        cfg = os.path.join(work, "cfg")
        ingesta_test.write_config(cfg, dict(base, SPOOL_DIR=work + "/spool", S3_BUCKET="file://" + work + "/b",
                                            COLLECT_PARALLEL=str(p), LOG_LEVEL="INFO"))
        s0 = server_cpu()
        t0 = time.monotonic()
        tw0 = time.time()
        pr = subprocess.Popen([ING, "collect", "--config", cfg], env=ingesta_test.clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, st, ru = os.wait4(pr.pid, 0)
        wall = time.monotonic() - t0
        scpu = server_cpu() - s0
        err = pr.stderr.read().decode()
        assert st == 0, err

        m = re.search(r'ts=(\S+) level=info msg="extraction complete', err)
        tdone = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        wall = tdone - tw0  # to the summary line: the service thread's 250 ms nap at exit left out
        res[p].append((wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, scpu))
        print(f"round {r} P={p} wall {wall:.2f} cpu {ru.ru_utime + ru.ru_stime:.2f} rss {ru.ru_maxrss/1024:.0f}M server {scpu:.2f}", flush=True)
shutil.rmtree(work, ignore_errors=True)
print(f"\n{src} {dset}: median of {rounds} rounds")
print("| COLLECT_PARALLEL | wall s | wall vs 1 (median of per-round ratios) | collector CPU s | peak RSS MiB | server CPU s |")
print("|---|---|---|---|---|---|")
for p in pars:
    w = statistics.median(x[0] for x in res[p])
    ratio = statistics.median(res[p][i][0] / res[pars[0]][i][0] for i in range(rounds))
    print(f"| {p} | {w:.2f} | {ratio:.2f} | {statistics.median(x[1] for x in res[p]):.2f} | "
          f"{statistics.median(x[2] for x in res[p]):.0f} | {statistics.median(x[3] for x in res[p]):.2f} |")
