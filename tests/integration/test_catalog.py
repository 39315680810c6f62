#!/usr/bin/python3
"""`ingesta catalog` on a spool made by a real `ingesta collect` of a SQLite database:
the Athena DDL and the Glue TableInput JSON (views in Trino's encoding), the
refusals (key template, no schema, no spool, flags), and `--apply` against the
moto Glue server (tests/servers/start.sh moto), read back with boto3: tables,
columns, SerDe mappings, projection, views; then a column added in the source
is added to the Glue table and its views, and a column whose type changed keeps
its first type."""
import base64
import json
import os
import sqlite3
import subprocess
import urllib.request
import uuid

from ingesta_test import (SOURCE_ROOT, TestFailure, check, clean_env, main, run, servers_env,
                          tempdir, write_config)

RUN_ID_RE = r"([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})[^/]*$"


def make_source(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE artists (ArtistId INTEGER PRIMARY KEY NOT NULL, Name NVARCHAR(120),
                              "First Name" TEXT, year INTEGER);
        INSERT INTO artists VALUES (1, 'AC/DC', 'Angus', 1973), (2, 'Accept', NULL, NULL);
        CREATE TABLE invoices (InvoiceId INTEGER PRIMARY KEY, InvoiceDate DATETIME NOT NULL,
                               Total NUMERIC(10,2), Paid BOOLEAN, Note);
        INSERT INTO invoices VALUES (1, '2021-01-01 00:00:00', 1.98, 1, 'a');
        CREATE TABLE empty_t (id INTEGER);
    """)
    db.commit()
    db.close()


def glue_endpoint():
    """moto's URL: from the servers' env file, started with start.sh moto if needed."""
    def up(url):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return True
        except OSError:
            return False

    try:
        env = servers_env()
    except TestFailure:
        env = {}
    url = env.get("GLUE_ENDPOINT")
    if not url or not up(url):
        subprocess.run(["bash", os.path.join(SOURCE_ROOT, "tests", "servers", "start.sh"), "moto"],
                       check=True, timeout=1500)
        url = servers_env().get("GLUE_ENDPOINT")
    check(url and up(url), f"moto not reachable at {url}")
    return url


def glue_client(url):
    import boto3  # Debian's python3-boto3
    return boto3.client("glue", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="ingesta-glue", aws_secret_access_key="ingesta-glue-secret")


def decode_view(text):
    prefix, suffix = "/* Presto View: ", " */"
    check(text.startswith(prefix) and text.endswith(suffix), f"not a Presto view text: {text[:60]}")
    return json.loads(base64.b64decode(text[len(prefix):-len(suffix)]))


def check_ddl(ddl, bucket):
    check("CREATE EXTERNAL TABLE IF NOT EXISTS `artists` (\n  `artistid` bigint,\n  `name` string,\n"
          "  `first_name` string,\n  `year_` bigint\n)" in ddl, f"artists DDL:\n{ddl}")
    check("'mapping.first_name'='First Name'" in ddl and "'mapping.year_'='year'" in ddl,
          "SerDe mappings")
    check("`invoicedate` timestamp" in ddl and "`total` double" in ddl and "`note` string" in ddl,
          "invoices types")
    check("PARTITIONED BY (`year` string, `month` string, `day` string)" in ddl, "partition keys")
    check("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'" in ddl, "SerDe")
    check(f"LOCATION '{bucket}/artists/'" in ddl, "location")
    check("'projection.month.digits'='2'" in ddl and "'projection.day.range'='1,31'" in ddl,
          "projection")
    check(f"'storage.location.template'='{bucket}/artists/year=${{year}}/month=${{month}}/day=${{day}}/'"
          in ddl, "location template")
    check("CREATE EXTERNAL TABLE IF NOT EXISTS `ingesta_runs`" in ddl and
          "`objects` array<struct<key:string,rows:bigint,bytes:bigint,sha256:string>>" in ddl,
          "commit log table")
    for v in ("artists_latest", "artists_daily", "invoices_latest", "empty_t_daily"):
        check(f'CREATE OR REPLACE VIEW "{v}" AS\n' in ddl, f"view {v}")
    check(f"regexp_extract(t.\"$path\", '{RUN_ID_RE}', 1) = c.\"run_id\"" in ddl, "run id from $path")
    check("PARTITION BY \"year\", \"month\", \"day\" ORDER BY \"run_started_at\" DESC" in ddl,
          "daily view: newest run per day")


def check_json(lines, db):
    reqs = [json.loads(line) for line in lines.splitlines()]
    check(reqs[0] == {"DatabaseInput": {"Name": db}}, f"first line: {reqs[0]}")
    by_name = {r["TableInput"]["Name"]: r["TableInput"] for r in reqs[1:]}
    check(sorted(by_name) == sorted(["ingesta_runs", "artists", "invoices", "empty_t",
                                     "artists_latest", "artists_daily", "invoices_latest",
                                     "invoices_daily", "empty_t_latest", "empty_t_daily"]),
          f"tables: {sorted(by_name)}")
    a = by_name["artists"]
    sd = a["StorageDescriptor"]
    check([(c["Name"], c["Type"]) for c in sd["Columns"]] ==
          [("artistid", "bigint"), ("name", "string"), ("first_name", "string"), ("year_", "bigint")],
          f"artists columns: {sd['Columns']}")
    check(sd["Columns"][0]["Comment"] == "INTEGER not null", "comment keeps the source type")
    check(sd["SerdeInfo"] == {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                              "Parameters": {"mapping.first_name": "First Name",
                                             "mapping.year_": "year"}}, f"serde: {sd['SerdeInfo']}")
    check(sd["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat" and
          sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat", "formats")
    check(a["TableType"] == "EXTERNAL_TABLE" and a["Parameters"]["projection.enabled"] == "true",
          "external, projected")
    check([k["Name"] for k in a["PartitionKeys"]] == ["year", "month", "day"], "partition keys")
    v = by_name["artists_latest"]
    check(v["TableType"] == "VIRTUAL_VIEW" and v["Parameters"]["presto_view"] == "true" and
          v["Parameters"]["comment"] == "Presto View" and v["ViewExpandedText"] == "/* Presto View */",
          f"view flags: {v}")
    d = decode_view(v["ViewOriginalText"])
    check(d["catalog"] == "awsdatacatalog" and d["schema"] == db and d["runAsInvoker"] is True,
          f"view definition: {d}")
    check([(c["name"], c["type"]) for c in d["columns"]] ==
          [("artistid", "bigint"), ("name", "varchar"), ("first_name", "varchar"),
           ("year_", "bigint"), ("year", "varchar"), ("month", "varchar"), ("day", "varchar")],
          f"view columns: {d['columns']}")
    check('FROM "artists" t' in d["originalSql"] and '"table_name" = \'artists\'' in d["originalSql"],
          "view SQL")
    inv = decode_view(by_name["invoices_daily"]["ViewOriginalText"])
    check(("invoicedate", "timestamp(3)") in [(c["name"], c["type"]) for c in inv["columns"]],
          "timestamp columns are timestamp(3) in views")


def test():
    d = tempdir("catalog")
    src = os.path.join(d, "src.db")
    make_source(src)
    bucket = f"file://{d}/bucket"
    db = "ingesta_cattest_" + uuid.uuid4().hex[:8]
    settings = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": os.path.join(d, "spool"),
                "S3_BUCKET": bucket, "LOG_LEVEL": "WARNING"}
    cfg = write_config(os.path.join(d, "collect.env"), settings)
    env = clean_env()

    # No spool yet: exit 4, nothing created.
    p = run(["catalog", "--config", cfg], env=env, check_rc=4)
    check(not os.path.exists(os.path.join(d, "spool", "spool.db")), "catalog created a spool")
    run(["collect", "--config", cfg], env=env)

    ddl = run(["catalog", "--config", cfg], env=env).stdout
    check_ddl(ddl, bucket)
    check_json(run(["catalog", "--config", cfg, "--format", "json"], env=env).stdout, "default")

    # Refusals.
    p = run(["catalog", "--config", cfg, "--set", "S3_KEY_TEMPLATE={table}/{run_id}-{seq}{ext}"],
            env=env, check_rc=2)
    check("S3_KEY_TEMPLATE" in p.stderr, f"template refusal names the key: {p.stderr}")
    p = run(["catalog", "--config", cfg, "--set", "ENABLE_PARTITIONING=false"], env=env, check_rc=2)
    check("ENABLE_PARTITIONING" in p.stderr, p.stderr)
    p = run(["catalog", "--config", cfg, "--set", "SOURCE_NAME=nobody"], env=env, check_rc=4)
    check("no table schema" in p.stderr and "nobody" in p.stderr, p.stderr)
    p = run(["catalog", "--config", cfg, "--format", "xml"], env=env, check_rc=2)
    p = run(["catalog", "--config", cfg, "--apply"], env=env, check_rc=2)
    check("GLUE_DATABASE" in p.stderr, p.stderr)

    # --apply against moto.
    url = glue_endpoint()
    glue = glue_client(url)
    gcfg = write_config(os.path.join(d, "glue.env"), dict(
        settings, GLUE_DATABASE=db, GLUE_ENDPOINT=url, GLUE_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="ingesta-glue", AWS_SECRET_ACCESS_KEY="ingesta-glue-secret"))
    out = run(["catalog", "--config", gcfg, "--apply"], env=env).stdout
    check(f"created database {db}" in out and f"created {db}.artists_daily" in out, out)
    t = glue.get_table(DatabaseName=db, Name="artists")["Table"]
    sd = t["StorageDescriptor"]
    check([(c["Name"], c["Type"]) for c in sd["Columns"]] ==
          [("artistid", "bigint"), ("name", "string"), ("first_name", "string"), ("year_", "bigint")],
          f"Glue artists columns: {sd['Columns']}")
    check(sd["Location"] == f"{bucket}/artists/", sd["Location"])
    check(sd["SerdeInfo"]["Parameters"]["mapping.first_name"] == "First Name", "Glue SerDe mapping")
    check(t["Parameters"]["projection.enabled"] == "true" and
          t["Parameters"]["projection.day.digits"] == "2", f"Glue params: {t['Parameters']}")
    runs = glue.get_table(DatabaseName=db, Name="ingesta_runs")["Table"]
    check(runs["StorageDescriptor"]["Location"] == f"{bucket}/ingesta_runs/", "commit log location")
    v = glue.get_table(DatabaseName=db, Name="invoices_latest")["Table"]
    check(v["TableType"] == "VIRTUAL_VIEW" and v["Parameters"].get("presto_view") == "true",
          f"Glue view: {v.get('TableType')} {v.get('Parameters')}")
    check(decode_view(v["ViewOriginalText"])["schema"] == db, "view schema is the database")

    # GLUE_VIEW_CATALOG: views resolve in a Trino catalog of another name.
    out = run(["catalog", "--config", gcfg, "--format", "json", "--set", "GLUE_VIEW_CATALOG=hive"],
              env=env).stdout
    views = [json.loads(line)["TableInput"] for line in out.splitlines()[1:]]
    check(all(decode_view(v["ViewOriginalText"])["catalog"] == "hive"
              for v in views if v["TableType"] == "VIRTUAL_VIEW"), "GLUE_VIEW_CATALOG")

    # Nothing new: tables unchanged.
    out = run(["catalog", "--config", gcfg, "--apply"], env=env).stdout
    check(f"unchanged {db}.artists" in out and f"created {db}.artists\n" not in out, out)

    # The schema grows: a new column is appended to the table and its views.
    s = sqlite3.connect(src)
    s.execute('ALTER TABLE artists ADD COLUMN Country TEXT')
    # A type change: invoices.Total is now declared TEXT (string) instead of NUMERIC (double).
    s.executescript("""
        ALTER TABLE invoices RENAME TO invoices_old;
        CREATE TABLE invoices (InvoiceId INTEGER PRIMARY KEY, InvoiceDate DATETIME NOT NULL,
                               Total TEXT, Paid BOOLEAN, Note);
        INSERT INTO invoices SELECT * FROM invoices_old;
        DROP TABLE invoices_old;
    """)
    s.commit()
    s.close()
    run(["collect", "--config", cfg], env=env)
    p = run(["catalog", "--config", gcfg, "--apply"], env=env)
    check(f"updated {db}.artists" in p.stdout and f"updated {db}.artists_latest" in p.stdout, p.stdout)
    check(f"unchanged {db}.invoices" in p.stdout, p.stdout)
    check("type change" in p.stderr, f"the type change is reported: {p.stderr}")
    cols = glue.get_table(DatabaseName=db, Name="artists")["Table"]["StorageDescriptor"]["Columns"]
    check([c["Name"] for c in cols] == ["artistid", "name", "first_name", "year_", "country"],
          f"grown columns: {cols}")
    view = decode_view(glue.get_table(DatabaseName=db, Name="artists_daily")["Table"]["ViewOriginalText"])
    check(any(c["name"] == "country" for c in view["columns"]) and 't."country"' in view["originalSql"],
          "the view has the new column")
    inv = glue.get_table(DatabaseName=db, Name="invoices")["Table"]["StorageDescriptor"]["Columns"]
    check(("total", "double") in [(c["Name"], c["Type"]) for c in inv], f"total not retyped: {inv}")
    ddl = run(["catalog", "--config", cfg], env=env).stdout
    check("`total` double" in ddl and "`country` string" in ddl, "DDL after growth")

    # A table of another location at the same name is refused, not re-pointed.
    p = run(["catalog", "--config", gcfg, "--apply", "--set", "S3_PREFIX=other"], env=env, check_rc=None)
    # Runs recorded with S3_PREFIX "" are skipped under another prefix: nothing to register.
    check(p.returncode == 4, f"another prefix: exit {p.returncode}: {p.stderr}")
    print(f"catalog: 3 tables, 6 views, commit log; Glue database {db} on moto: create, "
          "unchanged, grow (1 column), type change kept")


if __name__ == "__main__":
    main(test)
