#!/usr/bin/python3
"""Cold starts of three collectors and one uploader on a brand-new spool.

The original's compose deployment starts its three one-shot collectors at the
same moment on an empty volume. Each iteration here removes the spool, starts
three SQLite collectors (three sources, three file:// buckets) and one
`upload --once`, each after a random 0-50 ms delay, and requires every process
to exit 0 and every row to land exactly once. Before the fix (spool open under
locks/open.lock) about 1 start in 40 failed with "database is locked": two
processes switching the new spool.db to WAL deadlock inside SQLite, which then
answers SQLITE_BUSY without calling the busy handler.

INGESTA_COLD_STARTS sets the number of iterations (default 200). Runs in the
ASan build too (suite 'coldstart', see tests/run.sh).
"""
import os
import random
import shutil
import subprocess
import time

from ingesta_test import bucket_rows, check, clean_env, main, tempdir

ROWS = 40
SOURCES = ("ms1", "ms2", "ms3")


def start_after(delay, args, env):
    time.sleep(delay)
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def test():
    d = tempdir("coldstart")
    iterations = int(os.environ.get("INGESTA_COLD_STARTS", "200"))
    src = os.path.join(d, "src.db")
    subprocess.run(["sqlite3", src, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                    f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < {ROWS})"
                    " INSERT INTO t SELECT i, 'v' || i FROM c;"], check=True)
    spool = os.path.join(d, "spool")
    rng = random.Random(int(os.environ.get("INGESTA_COLD_START_SEED", "1")))
    failures = []
    t0 = time.time()
    for it in range(iterations):
        shutil.rmtree(spool, ignore_errors=True)
        buckets = {s: os.path.join(d, f"bucket-{s}") for s in SOURCES}
        for b in buckets.values():
            shutil.rmtree(b, ignore_errors=True)
        jobs = []
        for s in SOURCES:
            env = clean_env({"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SOURCE_NAME": s,
                             "SPOOL_DIR": spool, "S3_BUCKET": "file://" + buckets[s]})
            jobs.append((rng.uniform(0, 0.05), s, [os.environ["INGESTA"], "collect"], env))
        jobs.append((rng.uniform(0, 0.05), "uploader", [os.environ["INGESTA"], "upload", "--once"],
                     clean_env({"SPOOL_DIR": spool, "S3_BUCKET": "file://" + buckets["ms1"]})))
        jobs.sort()
        start, procs = time.time(), []
        for delay, name, args, env in jobs:
            wait = start + delay - time.time()
            procs.append((name, start_after(max(0.0, wait), args, env)))
        for name, p in procs:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                failures.append(f"iteration {it}: {name} exit {p.returncode}: {err.strip()[-300:]}")
        # The uploader may have finished before a collector committed: drain.
        drain = subprocess.run([os.environ["INGESTA"], "upload", "--once"],
                               env=clean_env({"SPOOL_DIR": spool,
                                              "S3_BUCKET": "file://" + buckets["ms1"]}),
                               capture_output=True, text=True, timeout=120)
        check(drain.returncode == 0, f"iteration {it}: drain upload failed: {drain.stderr[-500:]}")
        for s in SOURCES:
            rows = bucket_rows(buckets[s], "t")
            ids = sorted(r["id"] for r in rows)
            if ids != list(range(1, ROWS + 1)):
                failures.append(f"iteration {it}: {s}: {len(ids)} rows in the bucket, "
                                f"{len(set(ids))} distinct, want {ROWS}")
    elapsed = time.time() - t0
    print(f"cold starts: {iterations} iterations x (3 collectors + 1 uploader), "
          f"{len(failures)} failures, {elapsed:.1f}s")
    check(not failures, "\n".join(failures[:10]))


if __name__ == "__main__":
    main(test)
