"""Shared helpers for ingesta's Python integration and reliability tests.

Tests are plain scripts run by `meson test`; they exit non-zero on failure.
They find the binary through $INGESTA (set by meson), the source tree through
$INGESTA_SOURCE_ROOT, and the running test servers through the env file that
tests/servers/start.sh writes ($INGESTA_TEST_RUN/env).
Results are always read back with tools ingesta did not write (zstd CLI,
sqlite3 module, json module, psql, mariadb, pymongo, boto3).
"""
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile

INGESTA = os.environ.get("INGESTA", "ingesta")
SOURCE_ROOT = os.environ.get("INGESTA_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GOLDEN = os.path.join(SOURCE_ROOT, "tests", "golden")  # the golden cases, byte-exact (docs/TYPES.md)
TEST_RUN = os.environ.get("INGESTA_TEST_RUN", "/tmp/ingesta-test-run")


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def servers_env():
    """The connection settings tests/servers/start.sh wrote, as a dict."""
    path = os.path.join(TEST_RUN, "env")
    if not os.path.exists(path):
        raise TestFailure(f"{path} missing: start the servers with tests/servers/start.sh all")
    out = subprocess.run(["bash", "-c", f"set -a; . {shlex.quote(path)}; env -0"],
                         check=True, capture_output=True).stdout
    env = {}
    for item in out.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode()] = v.decode()
    return env


def clean_env(extra=None):
    """An environment without ingesta/AWS/DB settings leaking from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "MYSQL_", "POSTGRES_", "MONGO_", "S3_", "DB_", "SQLITE_",
                                "SPOOL_", "LOG_", "INGESTION_", "ENABLE_", "INCLUDE_", "EXCLUDE_"))}
    env["HOME"] = env.get("HOME", "/root")
    if extra:
        env.update(extra)
    return env


def write_config(path, settings):
    with open(path, "w", encoding="utf-8") as f:
        for k, v in settings.items():
            f.write(f"{k}={v}\n")
    return path


def run(args, env=None, check_rc=0, timeout=600, input=None):
    """Run ingesta with args; return CompletedProcess. check_rc=None skips the check."""
    p = subprocess.run([INGESTA] + list(args), env=env if env is not None else clean_env(),
                       capture_output=True, text=True, timeout=timeout, input=input)
    if check_rc is not None and p.returncode != check_rc:
        raise TestFailure(f"ingesta {' '.join(args)} exited {p.returncode}, wanted {check_rc}\n"
                          f"stdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return p


def read_object(path):
    """Bytes of an uploaded/spooled object, decompressed with the zstd CLI when .zst."""
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq", path], check=True, capture_output=True).stdout
    with open(path, "rb") as f:
        return f.read()


def bucket_files(root):
    """All files below a file:// bucket directory, relative paths, sorted."""
    out = []
    for d, _, files in os.walk(root):
        for name in files:
            out.append(os.path.relpath(os.path.join(d, name), root))
    return sorted(out)


COMMIT_LOG = "ingesta_runs"  # the commit records' prefix (docs/COMMIT_LOG.md)


def data_files(root):
    """bucket_files() without manifests and commit records: the data objects."""
    return [f for f in bucket_files(root)
            if COMMIT_LOG not in f.split(os.sep) and not os.path.basename(f).startswith("_")
            and not f.startswith(".ingesta-tmp")]


def commit_records(root):
    """{(run_id, table_name): record} of a file:// bucket's commit log."""
    out = {}
    for rel in bucket_files(root):
        if COMMIT_LOG not in rel.split(os.sep):
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            lines = f.read().splitlines()
        check(len(lines) == 1, f"commit record {rel}: {len(lines)} lines, want 1")
        rec = json.loads(lines[0])
        key = (rec["run_id"], rec["table_name"])
        check(key not in out, f"two commit records for {key}")
        out[key] = rec
    return out


def bucket_rows(root, table):
    """Every NDJSON line of a table's data objects (manifests skipped), parsed."""
    rows = []
    for rel in bucket_files(root):
        parts = rel.split(os.sep)
        if parts[0] != table or os.path.basename(rel).startswith("_"):
            continue
        for line in read_object(os.path.join(root, rel)).splitlines():
            rows.append(json.loads(line))
    return rows


def spool_db(spool_dir):
    return sqlite3.connect(f"file:{os.path.join(spool_dir, 'spool.db')}?mode=ro", uri=True)


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=f"ingesta-{prefix}-")
    return d


def main(fn):
    """Run a test function; print PASS/FAIL and exit accordingly."""
    try:
        fn()
    except TestFailure as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        sys.exit(1)
    print("PASS")
    sys.exit(0)
