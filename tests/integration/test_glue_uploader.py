#!/usr/bin/python3
"""The uploader keeps Glue current before each commit record (GLUE_DATABASE),
against the moto Glue server, and a Glue error holds back only the records
that need it:

1. permanent: a table of that name already registered at another location
   (someone else's table). The data objects and the manifest land, the commit
   record does not; `upload --once` exits 5, `status` counts the record as
   failed with the Glue error, `status --check` is unhealthy. After the
   operator removes the other table, `replay --all-failed` re-queues the
   record and the next upload registers the table, its views and writes it.
2. transient: Glue unreachable. The record is retried with backoff and left
   failed after MAX_ATTEMPTS; the data is untouched; replay after the fix
   completes it.
Every check reads Glue with boto3 and the bucket from the file system.
"""
import json
import os
import sqlite3
import uuid

from ingesta_test import (check, clean_env, commit_records, data_files, main, run, tempdir,
                          write_config)
from test_catalog import glue_client, glue_endpoint


def make_source(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL);
    """)
    db.commit()
    db.close()


def status(cfg):
    return json.loads(run(["status", "--json", "--config", cfg]).stdout)


def test():
    d = tempdir("glue-up")
    url = glue_endpoint()
    glue = glue_client(url)
    src = os.path.join(d, "src.db")
    make_source(src)
    bucket = os.path.join(d, "bucket")
    db_name = "gu_" + uuid.uuid4().hex[:8]
    base = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": os.path.join(d, "spool"),
            "S3_BUCKET": "file://" + bucket, "GLUE_DATABASE": db_name, "GLUE_ENDPOINT": url,
            "GLUE_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "ingesta-glue",
            "AWS_SECRET_ACCESS_KEY": "ingesta-glue-secret", "MAX_ATTEMPTS": "3",
            "RETRY_BASE": "50ms", "RETRY_CAP": "200ms"}
    cfg = write_config(os.path.join(d, "c.env"), base)

    # 1. Someone else's table "t" at another location: a permanent Glue error.
    glue.create_database(DatabaseInput={"Name": db_name})
    glue.create_table(DatabaseName=db_name, TableInput={
        "Name": "t", "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "string"}],
                              "Location": "s3://somebody-else/t/",
                              "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}}})
    run(["collect", "--config", cfg])
    p = run(["upload", "--once", "--config", cfg], check_rc=5)
    check(len(data_files(bucket)) == 1, f"data objects: {data_files(bucket)}")
    check(commit_records(bucket) == {}, "a commit record was written although Glue refused the table")
    st = status(cfg)
    check(st["commit_records"] == {"written": 0, "waiting": 0, "failed": 1},
          f"status commit_records {st['commit_records']}")
    err = sqlite3.connect(os.path.join(d, "spool", "spool.db")).execute(
        "SELECT commit_error FROM partitions WHERE table_name='t'").fetchone()[0]
    check(err is not None and "somebody-else" in err,
          f"commit_error does not say why: {err!r}")
    chk = run(["status", "--check", "--no-uploader-check", "--config", cfg], check_rc=6)
    check("commit record(s) failed" in chk.stdout, f"status --check: {chk.stdout}")
    check(glue.get_table(DatabaseName=db_name, Name="t")["Table"]["StorageDescriptor"]["Location"]
          == "s3://somebody-else/t/", "ingesta changed someone else's table")
    print(f"permanent Glue error held the record back: {err[:120]}")

    # The operator removes the other table; replay; the record lands.
    glue.delete_table(DatabaseName=db_name, Name="t")
    p = run(["replay", "--all-failed", "--config", cfg])
    check("1 commit record(s) re-queued" in p.stdout, f"replay: {p.stdout}")
    run(["upload", "--once", "--config", cfg])
    recs = commit_records(bucket)
    check(len(recs) == 1 and list(recs.values())[0]["rows"] == 3, f"records after replay: {recs}")
    tbl = glue.get_table(DatabaseName=db_name, Name="t")["Table"]
    check(tbl["StorageDescriptor"]["Location"].endswith("/t/") and
          [c["Name"] for c in tbl["StorageDescriptor"]["Columns"]] == ["id", "v"],
          f"registered table: {tbl['StorageDescriptor']}")
    names = {t["Name"] for t in glue.get_tables(DatabaseName=db_name)["TableList"]}
    check({"t", "t_latest", "t_daily", "ingesta_runs"} <= names, f"Glue tables: {sorted(names)}")
    check(status(cfg)["commit_records"] == {"written": 1, "waiting": 0, "failed": 0}, "status after")
    print("replay --all-failed: table, views and ingesta_runs registered, record written")

    # 2. Glue unreachable: retried, then failed; the data is untouched.
    down = write_config(os.path.join(d, "down.env"),
                        dict(base, GLUE_ENDPOINT="http://127.0.0.1:9"))
    run(["collect", "--config", down])
    p = run(["upload", "--once", "--config", down], check_rc=5)
    check(len(data_files(bucket)) == 2 and len(commit_records(bucket)) == 1,
          "the second run's data or record is wrong while Glue is down")
    st = status(down)
    check(st["commit_records"]["failed"] == 1, f"status while Glue is down: {st['commit_records']}")
    attempts = sqlite3.connect(os.path.join(d, "spool", "spool.db")).execute(
        "SELECT max(commit_attempts) FROM partitions").fetchone()[0]
    check(attempts == 3, f"{attempts} Glue attempts, want MAX_ATTEMPTS=3")
    run(["replay", "--all-failed", "--config", cfg])
    run(["upload", "--once", "--config", cfg])
    check(len(commit_records(bucket)) == 2, "the second run was not committed after replay")
    print("Glue unreachable: 3 attempts, failed, replayed after the fix: 2 runs committed")


if __name__ == "__main__":
    main(test)
