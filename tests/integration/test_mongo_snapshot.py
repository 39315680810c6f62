#!/usr/bin/python3
"""MONGO_SNAPSHOT with COLLECT_PARALLEL: every connection at one cluster time.

No real MongoDB replica set can be installed here, so parts 1-4 run against
tests/lib/fake_mongod.py, a mock replica-set primary (MongoDB 6.0 wire
version) that serves snapshot finds as MongoDB 5.0+ does outside
transactions and records every command with its connection and readConcern.
Parts 5-6 use the real FerretDB server, which has no snapshot reads.

1. COLLECT_PARALLEL=2, MONGO_SNAPSHOT=auto: the collections are read over 2
   connections (the old code read them all over one), every find carries
   readConcern "snapshot", all but the first (which learns the time) with
   atClusterTime = the time the server gave that first one; the log says
   so once with the value; the uploaded rows are exactly the documents.
   MONGO_SNAPSHOT=true does the same, and so does a user who may not read
   the first collection (the time comes from the first one it may read).
2. COLLECT_PARALLEL=1: libmongoc's snapshot session on one connection, as
   before (first find without a time, later ones at the one it returned).
3. MONGO_SNAPSHOT=false with COLLECT_PARALLEL=2: no readConcern at all, two
   connections, as before.
4. A server that refuses the time: SnapshotUnavailable (246) and
   SnapshotTooOld (239), known by their codes (MongoDB's messages do not
   name them), fail the run (exit 3) with the message that says what to do.
5. FerretDB, COLLECT_PARALLEL=2, auto: per-collection reads on 2 connections,
   the log line saying there is no common point in time, the same documents.
6. FerretDB, MONGO_SNAPSHOT=true: refused (exit 3) with the clear error,
   serial and parallel.
"""
import os
import re
import secrets

from bson.timestamp import Timestamp

from fake_mongod import CLUSTER_TIME, FakeMongod
from ingesta_test import (TestFailure, bucket_rows, check, main, run, servers_env, tempdir,
                          write_config)

DB = "shop"
NCOLL = 4
NDOCS = 130  # > MONGO_BATCH_SIZE: every collection needs getMores


def documents():
    return {DB: {f"c{k}": [{"_id": i, "k": k, "s": f"v{k}-{i}", "sub": {"x": i * k}}
                           for i in range(NDOCS)] for k in range(NCOLL)}}


def expected_rows():
    return {f"c{k}": sorted(((i, k, f"v{k}-{i}", i * k) for i in range(NDOCS)))
            for k in range(NCOLL)}


def collect(work, name, settings, check_rc=0):
    d = os.path.join(work, name)
    bucket = os.path.join(d, "bucket")
    os.makedirs(bucket)
    cfg = write_config(os.path.join(d, "cfg.env"),
                       dict(settings, SPOOL_DIR=os.path.join(d, "spool"),
                            S3_BUCKET="file://" + bucket, MONGO_BATCH_SIZE="50"))
    p = run(["collect", "--config", cfg], check_rc=check_rc)
    if check_rc == 0:
        run(["upload", "--config", cfg, "--once"])
    return p, bucket


def fake_settings(srv, parallel, snapshot="auto"):
    return {"DB_TYPE": "mongodb", "MONGO_HOST": "127.0.0.1", "MONGO_PORT": str(srv.port),
            "MONGO_DATABASE": DB, "COLLECT_PARALLEL": str(parallel), "MONGO_SNAPSHOT": snapshot}


def check_rows(bucket, what, tables=None):
    for table, want in expected_rows().items():
        if tables is not None and table not in tables:
            continue
        got = sorted((r["_id"], r["k"], r["s"], r["sub"]["x"]) for r in bucket_rows(bucket, table))
        check(got == want, f"{what}: {table}: {len(got)} rows, not exactly the {len(want)} "
                           f"documents")


def finds(srv):
    return [e for e in srv.log if e["cmd"] == "find"]


def test_shared_cluster_time(work, snapshot, unreadable=()):
    """unreadable: collections this user may not read, left out by
    INCLUDE_TABLES: the cluster time is taken from the first readable one."""
    srv = FakeMongod(documents(), find_delay=0.3, unauthorized=unreadable).start()
    tables = [f"c{k}" for k in range(NCOLL) if f"c{k}" not in unreadable]
    settings = fake_settings(srv, 2, snapshot)
    if unreadable:
        settings["INCLUDE_TABLES"] = ",".join(tables)
    try:
        p, bucket = collect(work, f"fake-par-{snapshot}-{len(unreadable)}", settings)
        f = [e for e in finds(srv) if e["body"]["find"] not in unreadable]
        what = (f"fake server, COLLECT_PARALLEL=2, MONGO_SNAPSHOT={snapshot}"
                + (f", {','.join(unreadable)} unreadable" if unreadable else ""))
        conns = {e["conn"] for e in f}
        check(len(conns) >= 2, f"{what}: finds came over {len(conns)} connection(s), want >= 2 "
                               f"(the collections were read over one connection)")
        gm = [e for e in srv.log if e["cmd"] == "getMore"]
        check(all(e["reply_ok"] for e in f + gm),
              f"{what}: a find or getMore failed: "
              f"{[e['body'] for e in f + gm if not e['reply_ok']]}")
        refused = [e for e in finds(srv) if e["body"]["find"] in unreadable]
        check(all(not e["reply_ok"] for e in refused) and len(refused) == len(unreadable),
              f"{what}: finds of the unreadable collections: {refused}")
        check(all((e["readConcern"] or {}).get("level") == "snapshot" for e in f),
              f"{what}: a find without readConcern snapshot: {[e['readConcern'] for e in f]}")
        probe, reads = f[0], f[1:]
        check("atClusterTime" not in probe["readConcern"],
              f"{what}: the first find already named a time: {probe['readConcern']}")
        check(len(reads) == len(tables) and all(e["readConcern"].get("atClusterTime") == CLUSTER_TIME
                                          for e in reads),
              f"{what}: the collection finds do not all carry atClusterTime {CLUSTER_TIME}: "
              f"{[(e['body']['find'], e['readConcern']) for e in reads]}")
        check(sorted(e["body"]["find"] for e in reads) == tables,
              f"{what}: collections read: {[e['body']['find'] for e in reads]}")
        check(len(gm) >= len(tables), f"{what}: only {len(gm)} getMores")
        lines = re.findall(r'msg="mongodb: snapshot reads: every connection reads at one cluster '
                           r'time" atClusterTime="([^"]+)" connections=(\d+)', p.stderr)
        check(lines == [(f"Timestamp({CLUSTER_TIME.time}, {CLUSTER_TIME.inc})", "2")],
              f"{what}: want one log line with the cluster time and 2 connections:\n"
              f"{p.stderr[-3000:]}")
        check("reading with one connection" not in p.stderr,
              f"{what}: fell back to one connection:\n{p.stderr[-3000:]}")
        check_rows(bucket, what, tables)
        print(f"{what}: {len(tables)} collections over {len(conns)} connections, every find at "
              f"{CLUSTER_TIME}, rows exact")
    finally:
        srv.stop()


def test_serial_session(work):
    srv = FakeMongod(documents()).start()
    try:
        p, bucket = collect(work, "fake-serial", fake_settings(srv, 1))
        f = finds(srv)
        what = "fake server, COLLECT_PARALLEL=1"
        check(len({e["conn"] for e in f}) == 1, f"{what}: finds on several connections")
        check(len(f) == NCOLL and f[0]["readConcern"] == {"level": "snapshot"}
              and all(e["readConcern"] == {"level": "snapshot", "atClusterTime": CLUSTER_TIME}
                      for e in f[1:]),
              f"{what}: not one snapshot session: {[e['readConcern'] for e in f]}")
        check("snapshot session: every collection read at one point in time" in p.stderr,
              f"{what}: no snapshot-session log line:\n{p.stderr[-3000:]}")
        check_rows(bucket, what)
        print(f"{what}: one snapshot session on one connection, rows exact")
    finally:
        srv.stop()


def test_snapshot_false(work):
    srv = FakeMongod(documents(), find_delay=0.3).start()
    try:
        p, bucket = collect(work, "fake-false", fake_settings(srv, 2, "false"))
        f = finds(srv)
        what = "fake server, COLLECT_PARALLEL=2, MONGO_SNAPSHOT=false"
        check(all(e["readConcern"] is None for e in f),
              f"{what}: a find with a readConcern: {[e['readConcern'] for e in f]}")
        check(len({e["conn"] for e in f}) == 2 and len(f) == NCOLL,
              f"{what}: {len(f)} finds over {len({e['conn'] for e in f})} connections")
        check("MONGO_SNAPSHOT=false: each collection read by its own cursor" in p.stderr,
              f"{what}: no log line:\n{p.stderr[-3000:]}")
        check_rows(bucket, what)
        print(f"{what}: no readConcern, 2 connections, rows exact")
    finally:
        srv.stop()


def test_refused_time(work):
    cases = [
        ("unavailable", {"accept_time": Timestamp(CLUSTER_TIME.time + 5, 1)},
         ["a collection was created, dropped or changed after the snapshot's cluster time: "
          "run again, or set MONGO_SNAPSHOT=false"]),
        ("too-old", {"fail_at_time": (239, "SnapshotTooOld")},
         ["the run outlived the server's snapshot history: raise "
          "minSnapshotHistoryWindowInSeconds or set MONGO_SNAPSHOT=false"]),
    ]
    for name, kw, want in cases:
        srv = FakeMongod(documents(), **kw).start()
        try:
            p, _ = collect(work, "fake-" + name, fake_settings(srv, 2), check_rc=3)
            for w in want:
                check(w in p.stderr, f"fake server, {name}: no '{w}' in:\n{p.stderr[-3000:]}")
            print(f"fake server, {name}: exit 3 with the message naming the fix")
        finally:
            srv.stop()


def test_ferretdb(work, env):
    import pymongo

    dbname = "ingesta_snap_" + secrets.token_hex(4)
    client = pymongo.MongoClient(env["FERRETDB_URI"], serverSelectionTimeoutMS=10000)
    try:
        for k in range(NCOLL):
            client[dbname][f"c{k}"].insert_many(documents()[DB][f"c{k}"])
        base = {"DB_TYPE": "mongodb", "MONGO_HOST": env["FERRETDB_HOST"],
                "MONGO_PORT": env["FERRETDB_PORT"], "MONGO_DATABASE": dbname}
        p, bucket = collect(work, "ferret-par", dict(base, COLLECT_PARALLEL="2"))
        what = "ferretdb, COLLECT_PARALLEL=2, MONGO_SNAPSHOT=auto"
        check("each collection read by its own cursor, no common point in time" in p.stderr,
              f"{what}: no fallback log line:\n{p.stderr[-3000:]}")
        check(re.search(r'connections share one snapshot" connections=2', p.stderr)
              and "one cluster time" not in p.stderr,
              f"{what}: not 2 connections reading per collection:\n{p.stderr[-3000:]}")
        check_rows(bucket, what)
        print(f"{what}: per-collection reads on 2 connections, rows exact")
        for par in ("1", "2"):
            p, _ = collect(work, "ferret-true-" + par,
                           dict(base, COLLECT_PARALLEL=par, MONGO_SNAPSHOT="true"), check_rc=3)
            check("MONGO_SNAPSHOT=true but the server has no snapshot reads (needs a MongoDB "
                  "5.0+ replica set or sharded cluster)" in p.stderr,
                  f"ferretdb, MONGO_SNAPSHOT=true, COLLECT_PARALLEL={par}: no clear refusal:\n"
                  f"{p.stderr[-3000:]}")
        print("ferretdb, MONGO_SNAPSHOT=true: refused (exit 3), serial and parallel")
    finally:
        client.drop_database(dbname)


def test():
    env = servers_env()
    work = tempdir("mongo-snapshot")
    test_shared_cluster_time(work, "auto")
    test_shared_cluster_time(work, "true")
    test_shared_cluster_time(work, "auto", unreadable=("c0",))
    test_serial_session(work)
    test_snapshot_false(work)
    test_refused_time(work)
    test_ferretdb(work, env)


if __name__ == "__main__":
    main(test)
