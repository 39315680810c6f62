#!/usr/bin/python3
"""A source database failing mid-table: non-zero exit, one clear line,
nothing partial shipped, earlier tables shipped, the rerun completes.

For each server source (MariaDB, PostgreSQL, FerretDB) a database with three
tables is collected into a spool: a_first (small), b_big (several segments)
and c_after. While b_big is being read, and only after at least one of its
segments has been sealed in the spool, the source goes away:

- MariaDB: `KILL <id>` of the collector's connection (server side);
- PostgreSQL: `pg_terminate_backend()` of the collector's backend;
- all three: the network path cut (a toxiproxy proxy in front of the server
  is disabled, which closes its connections). For FerretDB this is the only
  way: stopping the shared test server would break everyone else's tests.

Then: exit code 3; exactly one `ingesta collect:` line on stderr naming the
source (host:port/db), the table and a cause; the run is recorded `failed`
with that message; the spool holds a_first committed and nothing of b_big or
c_after; `upload --once` ships a_first only (verified object by object); a
rerun completes and everything verifies (each run's rows exactly once).
SOURCE_FAIL_ROWS sets b_big's size (default 40000 rows of ~300 bytes, streamed
through a 3 MB/s toxiproxy bandwidth limit).
"""
import os
import re
import sqlite3
import subprocess
import time

from ingesta_test import TestFailure, check, main, tempdir, write_config
from rel_common import (Expected, FileBucket, Figures, ServerSource, Toxiproxy, check_spool_clean,
                        expect_rc, mysql, psql, run_ingesta, servers_env, spawn, verify, wait_for)

ROWS = int(os.environ.get("SOURCE_FAIL_ROWS", "40000"))
WIDTH = 300  # bytes of text per row: b_big is ~12 MB, more than socket buffers hold
RATE_KB = 3000  # toxiproxy bandwidth limit between ingesta and the source, KB/s
CAUSES = {
    "kill": r"Lost connection|killed|gone away|terminat|closed the connection|server closed",
    "cut": r"Lost connection|gone away|closed|reset|EOF|socket|connection|timed out|timeout|No suitable servers",
}


def sealed_segments(spool, table):
    try:
        db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM segments WHERE table_name=?", (table,)).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def break_source(kind, how, src, proxy):
    if how == "cut":
        proxy.enable(False)
    elif kind == "mysql":
        ids = mysql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                          f"AND DB = '{src.name}'").split()
        check(ids, "no collector connection in the MariaDB processlist")
        for i in ids:
            mysql(None, f"KILL {i}")
    elif kind == "postgresql":
        n = psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                             f"application_name = 'ingesta' AND datname = '{src.name}'").strip()
        check(n != "0", "no collector backend to terminate")


def scenario(d, kind, how, fig_total):
    src = ServerSource(kind, {"a_first": 500, "b_big": (ROWS, WIDTH), "c_after": 100}, prefix="relsrc")
    proxy = None
    try:
        env = servers_env()
        port = {"mysql": env["MARIADB_PORT"], "postgresql": env["POSTGRESQL_PORT"],
                "mongodb": env["FERRETDB_PORT"]}[kind]
        # Every case goes through toxiproxy with a bandwidth limit, so b_big
        # (~12 MB) streams for a few seconds and the fault lands mid-table;
        # "cut" then disables the proxy, "kill" acts on the server.
        proxy = Toxiproxy(f"rel-{kind}", port)
        proxy.toxic("bandwidth", "downstream", rate=RATE_KB)
        name = f"{kind}-{how}"
        spool = os.path.join(d, name + "-spool")
        bucket = FileBucket(os.path.join(d, name + "-bucket"))
        settings = src.settings(proxy.port)
        settings.update({"SPOOL_DIR": spool, "S3_BUCKET": bucket.url, "SEGMENT_MAX_ROWS": str(ROWS // 6),
                         "SOURCE_CONNECT_TIMEOUT": "5", "SOURCE_QUERY_TIMEOUT": "20",
                         "MONGO_BATCH_SIZE": "500"})
        cfg = write_config(os.path.join(d, name + ".env"), settings)
        log = os.path.join(d, name + ".log")
        p = spawn(["collect", "--config", cfg], log=log)
        try:
            wait_for(lambda: sealed_segments(spool, "b_big") >= 1 or p.poll() is not None, 120,
                     f"{name}: a sealed segment of b_big")
            check(p.poll() is None, f"{name}: the collector finished before the fault "
                                    f"(exit {p.returncode}); raise SOURCE_FAIL_ROWS")
            t0 = time.time()
            break_source(kind, how, src, proxy)
            rc = p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
                raise TestFailure(f"{name}: the collector hangs after the source went away")
        took = time.time() - t0
        err = open(log, errors="replace").read()
        check(rc == 3, f"{name}: exit {rc}, wanted 3\n{err[-2000:]}")
        lines = [ln for ln in err.splitlines() if ln.startswith("ingesta collect:")]
        check(len(lines) == 1, f"{name}: want exactly one error line, got {lines}")
        line = lines[0]
        where = f"{settings.get('MYSQL_HOST') or settings.get('POSTGRES_HOST') or settings.get('MONGO_HOST')}:" \
                f"{proxy.port}/{src.name}"
        check(where in line and "b_big" in line and re.search(CAUSES[how], line, re.I),
              f"{name}: the line does not name source {where}, table b_big and a cause: {line}")
        db = sqlite3.connect(f"file:{spool}/spool.db?mode=ro", uri=True)
        run_state, run_err = db.execute("SELECT state, error FROM runs").fetchone()
        parts = db.execute("SELECT table_name, state FROM partitions").fetchall()
        segs = db.execute("SELECT DISTINCT table_name FROM segments").fetchall()
        db.close()
        check(run_state == "failed" and run_err and "b_big" in run_err,
              f"{name}: run recorded as {run_state!r} ({run_err!r})")
        check(parts == [("a_first", "complete")] and segs == [("a_first",)],
              f"{name}: spool after the failure holds {parts} / {segs}, want a_first only")
        expected = Expected(src.expected)
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, f"{name}: upload")
        verify([spool], bucket, expected)
        tables = {k.split("/")[0] for k in bucket.keys()} - {"ingesta_runs"}
        check(tables == {"a_first"}, f"{name}: bucket after the failure holds {tables}")
        proxy.enable(True)
        proxy.clear()
        expect_rc(run_ingesta(["collect", "--config", cfg], timeout=600), 0, f"{name}: rerun")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg]), 0, f"{name}: upload after the rerun")
        fig = verify([spool], bucket, expected)
        check_spool_clean(spool)
        for k in ("rows", "objects", "lost", "dups", "corrupt"):
            setattr(fig_total, k, getattr(fig_total, k) + getattr(fig, k))
        print(f"{name}: exit 3 in {took:.1f} s: {line[:220]}\n    a_first shipped, b_big/c_after absent; "
              f"rerun complete; {fig}", flush=True)
    finally:
        if proxy:
            proxy.delete()
        src.drop()


def test():
    env = servers_env()
    d = tempdir("srcfail")
    total = Figures()
    cases = [("mysql", "kill"), ("postgresql", "kill"), ("mongodb", "cut"), ("mysql", "cut"),
             ("postgresql", "cut")]
    check("TOXIPROXY_URL" in env, "no toxiproxy in the test servers' env")
    for kind, how in cases:
        scenario(d, kind, how, total)
    print(f"source failures: {len(cases)} faults injected (MariaDB KILL, PostgreSQL "
          f"pg_terminate_backend, network cut for all three), {total.objects} objects and "
          f"{total.rows} rows checked, rows lost {total.lost}, duplicates {total.dups}, "
          f"corrupt objects {total.corrupt}")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
