"""Readers of the lake ingesta writes, for the `lake` test suite.

- Trino 476 (the engine of Athena v3), Hive connector on a Glue catalog: `trino(sql)`,
  `trino_query(sql)` (rows plus column types and query stats), over Trino's HTTP API
  (no client library: values come back exactly as Trino's protocol types them:
  bigint/double/boolean as JSON numbers/booleans, decimal as a string, timestamp as
  "YYYY-MM-DD HH:MM:SS.fff", varbinary as base64, array as a list, map as an object,
  row as a list);
- the Glue stand-in, moto: `glue()` (a boto3 client, Debian's python3-boto3);
- MinIO: `s3()`;
- DuckDB: `duckdb_read(bucket, prefix)`, with `read_json` over s3:// through the
  httpfs extension that the PyPI package duckdb-extension-httpfs ships (DuckDB cannot
  download extensions here).

Servers: `tests/servers/start.sh trino` (also starts minio and moto) writes their
settings into $INGESTA_TEST_RUN/env. duckdb comes from the venv that
tests/servers/trino.sh makes ($INGESTA_TEST_CACHE/lake-venv): its site-packages is
appended to sys.path, so Debian's own modules (boto3) still win.
"""
import glob
import json
import os
import sys
import time
import urllib.request

from ingesta_test import TestFailure, servers_env

CATALOG = "awsdatacatalog"  # the Trino catalog on Glue, named as in Athena (start.sh)
GLUE_KEYS = ("ingesta-glue", "ingesta-glue-secret")  # moto accepts any (start.sh uses these)
_ENV = None


def env():
    global _ENV
    if _ENV is None:
        _ENV = servers_env()
        for k in ("TRINO_URL", "GLUE_ENDPOINT", "MINIO_ENDPOINT"):
            if not _ENV.get(k):
                raise TestFailure(f"{k} missing from the env file: run tests/servers/start.sh trino")
    return _ENV


class TrinoError(TestFailure):
    """A query Trino refused or failed; .name is Trino's errorName, str() its message."""

    def __init__(self, message, name=None, sql=None):
        super().__init__(message)
        self.name = name
        self.sql = sql


def trino_query(sql, schema=None, session=None, timeout=120):
    """Run one statement; return (columns, rows, stats): columns as [{"name", "type"}],
    rows as lists of protocol-typed values, stats the final "stats" object.
    session: session properties, e.g. {CATALOG + ".timestamp_precision": "MICROSECONDS"}."""
    e = env()
    headers = {"X-Trino-User": "ingesta", "X-Trino-Catalog": CATALOG,
               "Content-Type": "text/plain; charset=utf-8"}
    if schema:
        headers["X-Trino-Schema"] = schema
    if session:
        headers["X-Trino-Session"] = ",".join(f"{k}={v}" for k, v in session.items())
    req = urllib.request.Request(e["TRINO_URL"] + "/v1/statement", data=sql.encode(),
                                 headers=headers, method="POST")
    deadline = time.monotonic() + timeout
    columns, rows, stats = None, [], {}
    while True:
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.load(resp)
        columns = doc.get("columns", columns)
        rows.extend(doc.get("data", []))
        stats = doc.get("stats", stats)
        if "error" in doc:
            err = doc["error"]
            raise TrinoError(_error_text(err), err.get("errorName"), sql)
        nxt = doc.get("nextUri")
        if not nxt:
            return columns or [], rows, stats
        if time.monotonic() > deadline:
            raise TestFailure(f"trino: query still running after {timeout} s: {sql}")
        req = urllib.request.Request(nxt, headers={"X-Trino-User": "ingesta"})


def _error_text(err):
    """Trino's message plus the messages of its causes ("Failed to read file at ...:
    <why>"), which is where a SerDe says what it could not parse."""
    parts = [err.get("message", str(err))]
    info = (err.get("failureInfo") or {}).get("cause")
    while info:
        msg = info.get("message")
        if msg and msg not in parts:
            parts.append(msg)
        info = info.get("cause")
    return ": ".join(parts)


def trino(sql, schema=None, session=None):
    """The rows of one statement, typed as Trino's protocol returns them."""
    return trino_query(sql, schema, session)[1]


def _boto3_client(service, endpoint, keys):
    import boto3  # Debian's python3-boto3
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1])


def glue():
    """A boto3 Glue client on moto."""
    return _boto3_client("glue", env()["GLUE_ENDPOINT"], GLUE_KEYS)


def s3():
    """A boto3 S3 client on MinIO (the bucket Trino reads)."""
    e = env()
    return _boto3_client("s3", e["MINIO_ENDPOINT"], (e["MINIO_ROOT_USER"], e["MINIO_ROOT_PASSWORD"]))


def _import_duckdb():
    try:
        import duckdb  # noqa: F401
    except ImportError:
        venv = os.path.join(os.environ.get("INGESTA_TEST_CACHE",
                                           os.path.expanduser("~/.cache/ingesta-test")), "lake-venv")
        site = glob.glob(os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                                      "site-packages"))
        if not site:
            raise TestFailure(f"duckdb: no venv at {venv}: run tests/servers/trino.sh venv")
        sys.path.append(site[0])
    import duckdb
    import duckdb_extension_httpfs
    ext = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions",
                       "v" + duckdb.__version__, "httpfs.duckdb_extension")
    if not os.path.exists(ext):
        raise TestFailure(f"duckdb {duckdb.__version__}: no httpfs extension at {ext}")
    return duckdb, ext


def duckdb_connect():
    """A DuckDB connection with httpfs loaded and MinIO as its S3."""
    duckdb, ext = _import_duckdb()
    e = env()
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    con.execute(f"CREATE SECRET minio (TYPE s3, KEY_ID '{e['MINIO_ROOT_USER']}', "
                f"SECRET '{e['MINIO_ROOT_PASSWORD']}', ENDPOINT '{e['MINIO_HOST']}:{e['MINIO_PORT']}', "
                "REGION 'us-east-1', URL_STYLE 'path', USE_SSL false)")
    return con


def duckdb_read(bucket, prefix, columns=None, where=None):
    """Rows (dicts) of every `*.json.zst` object under s3://bucket/prefix/, with
    read_json(hive_partitioning): year/month/day come back as columns. columns: a
    DuckDB `columns` struct (name -> type) to use instead of auto-detection."""
    con = duckdb_connect()
    args = ["format='newline_delimited'", "compression='zstd'", "hive_partitioning=true",
            "hive_types_autocast=false"]
    if columns:
        args.append("columns={" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}")
    sql = (f"SELECT * FROM read_json('s3://{bucket}/{prefix.strip('/')}/**/*.json.zst', "
           + ", ".join(args) + ")" + (f" WHERE {where}" if where else ""))
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# ---------------------------------------------------------------- writing a small lake

OPENX_SERDE = "org.openx.data.jsonserde.JsonSerDe"
HCATALOG_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"


def put_ndjson_zst(bucket, key, lines):
    """Put lines (str, one JSON object each) as one zstd-compressed NDJSON object,
    compressed with the zstd CLI like tests read ingesta's objects back."""
    import subprocess
    body = subprocess.run(["zstd", "-q", "-c"], input="".join(l + "\n" for l in lines).encode(),
                          capture_output=True, check=True).stdout
    s3().put_object(Bucket=bucket, Key=key, Body=body)


def projection_parameters(bucket, prefix):
    """Glue table parameters of the partition projection ingesta's layout
    (<prefix>/year=YYYY/month=MM/day=DD/) needs: no partitions to register."""
    return {
        "projection.enabled": "true",
        "projection.year.type": "integer", "projection.year.range": "2000,2100",
        "projection.month.type": "integer", "projection.month.range": "1,12", "projection.month.digits": "2",
        "projection.day.type": "integer", "projection.day.range": "1,31", "projection.day.digits": "2",
        "storage.location.template":
            f"s3://{bucket}/{prefix.strip('/')}/year=${{year}}/month=${{month}}/day=${{day}}",
    }


def glue_json_table(database, name, columns, bucket, prefix, serde=OPENX_SERDE, serde_params=None,
                    projection=True):
    """(Re)create an external JSON table in Glue: columns [(name, hive type)], partitioned
    by year/month/day strings, with partition projection unless projection=False."""
    g = glue()
    try:
        g.create_database(DatabaseInput={"Name": database})
    except g.exceptions.AlreadyExistsException:
        pass
    try:
        g.delete_table(DatabaseName=database, Name=name)
    except g.exceptions.EntityNotFoundException:
        pass
    params = {"classification": "json", "EXTERNAL": "TRUE"}
    if projection:
        params.update(projection_parameters(bucket, prefix))
    g.create_table(DatabaseName=database, TableInput={
        "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": params,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in ("year", "month", "day")],
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t in columns],
            "Location": f"s3://{bucket}/{prefix.strip('/')}/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_params or {}},
        },
    })
