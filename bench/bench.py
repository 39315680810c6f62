#!/usr/bin/python3
"""ingesta against the tools a data team would otherwise pick, on the same
data, in the same run, on this machine.

Groups (each against one test server, see tests/servers/README.md):
  postgresql  ingesta collect  vs psql row_to_json, COPY (row_to_json) csv,
              the COPY t TO STDOUT floor, the original's approach, dlt
  mariadb     ingesta collect  vs mariadb --quick JSON_OBJECT, the SELECT * floor,
              the original's approach, dlt
  mongodb     ingesta collect  vs a pymongo json.dumps dump, the cursor floor,
              the original's approach
  upload-big / upload-small
              ingesta upload --once vs rclone copy, aws s3 cp --recursive,
              parallel curl -T PUTs (the floor), and the same curl with
              ingesta's checks (Content-MD5, checksum, If-None-Match)

Method: a warm-up run of every contender (and of ingesta), with full output
checks (every line parsed as JSON, row counts), then ROUNDS rounds in which
every contender runs right after its own ingesta run (I A I B I C ... per
round, so each pair alternates I A I A ...). A pair's ratio is computed round
by round (contender wall time / ingesta wall time = ingesta's rows/s over the
contender's) and summarised by its median, min and max.

Per run: wall time, CPU time (user+sys) and peak RSS of the client process
tree (wait4 rusage), CPU time and RSS growth of the server processes (sampled
from /proc), output bytes. Results: bench/results/<time>/results.json and
report.md (also printed). Exit status: 0 when every run of every contender and
of ingesta succeeded and produced the expected output, 1 otherwise (targets
missed do not fail the run; the report says met / NOT MET).

usage: bench/bench.py [--quick] [--rounds N] [--slow-rounds N] [--only GROUP,...] [--skip NAME,...]
                      [--variants] [--docs N] [--ingesta PATH] [--work DIR]
"""
import argparse
import base64
import glob
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import datasets  # noqa: E402

PY = "/usr/bin/python3"
VENV_PY = os.environ.get("BENCH_VENV_PY", os.path.join(HERE, ".venv", "bin", "python"))
TEST_RUN = os.environ.get("INGESTA_TEST_RUN", "/tmp/ingesta-test-run")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
import ingesta_test  # noqa: E402  (the tests' helpers: one reader of the servers' env file)
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024

SIZES = {
    # rows in the PostgreSQL / MariaDB table, MongoDB documents, segment sets
    # FerretDB (SQLite backend) inserts and reads about 2,000 documents/s here,
    # so 1,000,000 documents would take ~8 min per run: 20,000 by default.
    "full": {"rows": 1_000_000, "docs": 20_000, "big": (64, 16 * MiB), "small": (2000, 64 * 1024),
             "rounds": 5, "db": "bench"},
    # --quick: a smoke run for CI (< 3 min with the datasets, even on a busy 2-core machine)
    "quick": {"rows": 10_000, "docs": 2_000, "big": (2, 16 * MiB), "small": (50, 64 * 1024),
              "rounds": 1, "db": "bench_quick"},
}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def servers_env():
    """The test servers' settings (tests/servers/start.sh wrote them); shared with the tests."""
    try:
        return ingesta_test.servers_env()
    except ingesta_test.TestFailure as exc:
        sys.exit(f"bench: {exc}")


def clean_env(extra=None):
    """The caller's environment without ingesta/AWS/DB settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "MYSQL_", "POSTGRES_", "MONGO_", "S3_", "DB_", "SQLITE_",
                                "SPOOL_", "LOG_", "INGESTION_", "ENABLE_", "INCLUDE_", "EXCLUDE_",
                                "PG", "RCLONE_", "COLLECT_", "SEGMENT_", "COMPRESSION", "UPLOAD_"))}
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------- measuring

def proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is state (stat field 3); utime is field 14 -> index 11
    return [int(x) for x in fields[11:15]]


def proc_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_rss(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


class ServerProbe:
    """CPU time and RSS of one test server (PostgreSQL: the postmaster and its
    backends; the others are single processes). CPU of a backend that exits is
    folded into the postmaster's cutime when it is reaped, so stop() waits for
    the backends the run started to be gone."""

    def __init__(self, name):
        self.name = name
        with open(os.path.join(TEST_RUN, f"{name}.pid")) as f:
            self.pid = int(f.read().split()[0])
        self.tree = name == "postgres"

    def pids(self):
        return [self.pid] + (proc_children(self.pid) if self.tree else [])

    def cpu(self):
        st = proc_stat(self.pid)
        total = sum(st) if st else 0
        if self.tree:
            for c in proc_children(self.pid):
                cs = proc_stat(c)
                if cs:
                    total += cs[0] + cs[1]
        return total / CLK

    def rss(self):
        return sum(proc_rss(p) for p in self.pids())

    def start(self):
        self.base_children = set(proc_children(self.pid)) if self.tree else set()
        self.cpu0 = self.cpu()
        self.rss0 = self.rss()
        self.peak = self.rss0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.stop_ev.wait(0.1):
            self.peak = max(self.peak, self.rss())

    def stop(self):
        if self.tree:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and set(proc_children(self.pid)) - self.base_children:
                time.sleep(0.02)
        self.stop_ev.set()
        self.thread.join()
        return {"cpu_s": self.cpu() - self.cpu0, "rss_growth_bytes": max(0, self.peak - self.rss0)}


def run_measured(argv, stdout_path, env, probes, cwd=None):
    """Run argv (stdout to stdout_path), return wall/cpu/rss figures."""
    os.sync()  # earlier runs' dirty pages are not this run's I/O
    for p in probes:
        p.start()
    errpath = stdout_path + ".stderr" if stdout_path != os.devnull else "/tmp/ingesta-bench-stderr"
    # GNU time forks the tool from its own small process: a child forked from
    # this Python process would inherit its ~80 MiB peak RSS (ru_maxrss keeps
    # the high-water mark across exec). %M is the peak of the tool's process
    # tree (the largest process), %U/%S its CPU time with its waited children.
    timef = stdout_path + ".time" if stdout_path != os.devnull else "/tmp/ingesta-bench-time"
    with open(stdout_path, "wb") as out, open(errpath, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(["/usr/bin/time", "-o", timef, "-f", "%x %U %S %M"] + list(argv),
                                stdout=out, stderr=err, env=env, cwd=cwd)
        proc.wait()
        wall = time.monotonic() - t0
    srv = [p.stop() for p in probes]
    with open(errpath, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    with open(timef) as f:
        last = f.read().strip().splitlines()[-1].split()
    os.unlink(timef)
    rc = proc.returncode if proc.returncode != 0 else int(last[0])
    user, sys_, maxrss_kb = float(last[1]), float(last[2]), int(last[3])
    return {
        "rc": rc,
        "wall_s": wall,
        "cpu_s": user + sys_,
        "user_s": user,
        "sys_s": sys_,
        "maxrss_bytes": maxrss_kb * 1024,
        "server_cpu_s": sum(s["cpu_s"] for s in srv),
        "server_rss_growth_bytes": sum(s["rss_growth_bytes"] for s in srv),
        "stderr": stderr[-3000:],
    }


class Failure(Exception):
    pass


def count_lines(path, parse=False):
    n = 0
    if parse:
        with open(path, "rb") as f:
            for line in f:
                json.loads(line)
                n += 1
        return n
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                break
            n += b.count(b"\n")
    return n


def dir_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(d, name))
    return total


# ---------------------------------------------------------------- S3 helpers

def s3_client(env):
    import boto3
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")


def s3_list(s3, bucket):
    objs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objs.extend(page.get("Contents", []))
    return objs


def s3_drop(s3, bucket):
    try:
        objs = s3_list(s3, bucket)
    except s3.exceptions.NoSuchBucket:
        return
    for i in range(0, len(objs), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in objs[i:i + 1000]],
                                                  "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


# ---------------------------------------------------------------- contenders

def is_data_key(key):
    """A data object: not ingesta's manifests (_manifest-*) or commit records
    (ingesta_runs/, docs/COMMIT_LOG.md)."""
    parts = key.split("/")
    return not parts[-1].startswith(("_", ".")) and "ingesta_runs" not in parts[:-1]


class Contender:
    """One tool. prepare() and check() run outside the timed region."""
    name = "?"
    floor = False
    slow = False  # >= 10x slower: --slow-rounds rounds, no warm-up run (its first round checks in full)
    units = "rows"

    def __init__(self, bench):
        self.b = bench

    def prepare(self, tag):
        pass

    def command(self, tag):
        raise NotImplementedError

    def check(self, tag, full):
        """Return (units done, output bytes); raise Failure when wrong."""
        raise NotImplementedError

    def cleanup(self, tag):
        pass

    def reproduce(self):
        return " ".join(shlex.quote(a) for a in self.command("N")[0])


class FileOutput(Contender):
    """A contender that writes NDJSON to its stdout (or a file it is given)."""

    def path(self, tag):
        return os.path.join(self.b.work, f"{self.name}-{tag}.ndjson")

    def prepare(self, tag):
        if os.path.exists(self.path(tag)):
            os.unlink(self.path(tag))

    def check(self, tag, full):
        n = count_lines(self.path(tag), parse=full)
        return n, os.path.getsize(self.path(tag))

    def cleanup(self, tag):
        for p in (self.path(tag), self.path(tag) + ".stderr"):
            if os.path.exists(p):
                os.unlink(p)


class DevNull(Contender):
    floor = True

    def check(self, tag, full):
        return self.b.n, 0


def psql_base(b):
    e = b.env
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", e["POSTGRESQL_HOST"], "-p", e["POSTGRESQL_PORT"],
            "-U", e["POSTGRESQL_USER"], "-d", b.db]


class PsqlJson(FileOutput):
    name = "psql-row_to_json"

    def command(self, tag):
        return psql_base(self.b) + ["-At", "-v", "FETCH_COUNT=10000", "-c", "SELECT row_to_json(t) FROM t"], \
            self.path(tag)


class PgCopyJson(FileOutput):
    name = "pg-COPY-row_to_json-csv"

    def command(self, tag):
        sql = ("COPY (SELECT row_to_json(t) FROM t) TO STDOUT "
               "WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')")
        return psql_base(self.b) + ["-c", sql], self.path(tag)


class PgCopyFloor(DevNull):
    name = "pg-COPY-floor"

    def command(self, tag):
        return psql_base(self.b) + ["-c", "COPY t TO STDOUT"], os.devnull


def mariadb_base(b):
    e = b.env
    return ["mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", e["MARIADB_HOST"],
            "-P", e["MARIADB_PORT"], "-u", e["MARIADB_USER"], "--init-command=SET time_zone='+00:00'"]


MY_JSON_SQL = ("SELECT JSON_OBJECT('id', id, 'qty', qty, 'amount', amount, 'name', name, 'created', created, "
               "'active', active, 'attrs', JSON_EXTRACT(attrs, '$'), 'payload', HEX(payload), 'note', note) FROM t")


class MariadbJson(FileOutput):
    name = "mariadb-JSON_OBJECT"

    def command(self, tag):
        # -r (raw): batch mode would otherwise escape the backslashes of JSON strings.
        return mariadb_base(self.b) + ["--quick", "-B", "-N", "-r", "-e", MY_JSON_SQL, self.b.db], self.path(tag)


class MariadbFloor(DevNull):
    name = "mariadb-SELECT-floor"

    def command(self, tag):
        return mariadb_base(self.b) + ["--quick", "-B", "-N", "-e", "SELECT * FROM t", self.b.db], os.devnull


class PymongoDump(FileOutput):
    name = "pymongo-json.dumps"

    def command(self, tag):
        return [PY, os.path.join(HERE, "contenders", "pymongo_dump.py"), "dump", self.b.db, "t",
                self.path(tag)], self.path(tag) + ".out"

    def cleanup(self, tag):
        super().cleanup(tag)
        for p in (self.path(tag) + ".out", self.path(tag) + ".out.stderr"):
            if os.path.exists(p):
                os.unlink(p)


class PymongoFloor(DevNull):
    name = "pymongo-cursor-floor"

    def command(self, tag):
        return [PY, os.path.join(HERE, "contenders", "pymongo_dump.py"), "floor", self.b.db, "t", "-"], \
            os.path.join(self.b.work, "pymongo-floor.out")

    def check(self, tag, full):
        n = int(open(os.path.join(self.b.work, "pymongo-floor.out")).read().strip())
        return n, 0


class Original(Contender):
    name = "original-python"
    slow = True

    def bucket(self, tag):
        return f"bench-orig-{self.b.group}-{tag}".lower().replace("_", "-")

    def prepare(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))
        self.b.s3.create_bucket(Bucket=self.bucket(tag))

    def command(self, tag):
        return [PY, os.path.join(HERE, "contenders", "original.py"), self.b.kind, self.b.db, "t",
                self.bucket(tag), "t/data.json"], os.path.join(self.b.work, "original.out")

    def check(self, tag, full):
        objs = s3_list(self.b.s3, self.bucket(tag))
        if len(objs) != 1:
            raise Failure(f"{len(objs)} objects in {self.bucket(tag)}")
        if full:
            body = self.b.s3.get_object(Bucket=self.bucket(tag), Key="t/data.json")["Body"].read()
            n = 0
            for line in body.splitlines():
                json.loads(line)
                n += 1
        else:
            n = int(open(os.path.join(self.b.work, "original.out")).read().strip())
        return n, objs[0]["Size"]

    def cleanup(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))


class Dlt(Contender):
    name = "dlt-sql_database-jsonl"
    slow = True

    def dirs(self, tag):
        return os.path.join(self.b.work, f"dlt-bucket-{tag}"), os.path.join(self.b.work, f"dlt-work-{tag}")

    def prepare(self, tag):
        for d in self.dirs(tag):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)

    def url(self):
        e = self.b.env
        if self.b.kind == "postgresql":
            return (f"postgresql+psycopg2://{e['POSTGRESQL_USER']}:{e['POSTGRESQL_PASSWORD']}@"
                    f"{e['POSTGRESQL_HOST']}:{e['POSTGRESQL_PORT']}/{self.b.db}")
        return (f"mysql+pymysql://{e['MARIADB_USER']}:{e['MARIADB_PASSWORD']}@"
                f"{e['MARIADB_HOST']}:{e['MARIADB_PORT']}/{self.b.db}?charset=utf8mb4")

    def command(self, tag):
        bucket, work = self.dirs(tag)
        return [VENV_PY, os.path.join(HERE, "contenders", "dlt_load.py"), self.url(), "t", bucket, work], \
            os.path.join(self.b.work, "dlt.out")

    def check(self, tag, full):
        import gzip
        bucket, _ = self.dirs(tag)
        files = [f for f in glob.glob(os.path.join(bucket, "**", "t", "*"), recursive=True) if os.path.isfile(f)]
        if not files:
            raise Failure(f"no data files for table t under {bucket}")
        n = 0
        if full:
            for f in files:
                op = gzip.open if f.endswith(".gz") or open(f, "rb").read(2) == b"\x1f\x8b" else open
                with op(f, "rb") as fh:
                    for line in fh:
                        json.loads(line)
                        n += 1
        else:
            n = int(open(os.path.join(self.b.work, "dlt.out")).read().strip())
        return n, sum(os.path.getsize(f) for f in files)

    def cleanup(self, tag):
        for d in self.dirs(tag):
            shutil.rmtree(d, ignore_errors=True)

    def reproduce(self):
        return (f"bench/.venv/bin/python bench/contenders/dlt_load.py '{self.url().split('://')[0]}://"
                f"USER:PW@HOST:PORT/{self.b.db}' t BUCKET_DIR WORK_DIR")


class IngestaCollect(Contender):
    name = "ingesta collect"
    extra = {}

    def spool(self, tag):
        return os.path.join(self.b.work, f"ingesta-spool-{tag}")

    def config(self, tag, stats=False):
        e = self.b.env
        lines = {"SPOOL_DIR": self.spool(tag), "S3_BUCKET": "bench-collect", "INCLUDE_TABLES": "t",
                 "SPOOL_MAX_BYTES": "0", "PROGRESS": "never", "LOG_LEVEL": "INFO"}
        if stats:
            lines["COLLECT_STATS"] = "true"
        lines.update(self.extra)
        if self.b.kind == "postgresql":
            lines.update(DB_TYPE="postgresql", POSTGRES_HOST=e["POSTGRESQL_HOST"], POSTGRES_PORT=e["POSTGRESQL_PORT"],
                         POSTGRES_USER=e["POSTGRESQL_USER"], POSTGRES_PASSWORD=e["POSTGRESQL_PASSWORD"],
                         POSTGRES_DB=self.b.db)
        elif self.b.kind == "mysql":
            lines.update(DB_TYPE="mysql", MYSQL_HOST=e["MARIADB_HOST"], MYSQL_PORT=e["MARIADB_PORT"],
                         MYSQL_USER=e["MARIADB_USER"], MYSQL_PASSWORD=e["MARIADB_PASSWORD"], MYSQL_DATABASE=self.b.db)
        else:
            lines.update(DB_TYPE="mongodb", MONGO_HOST=e["FERRETDB_HOST"], MONGO_PORT=e["FERRETDB_PORT"],
                         MONGO_DATABASE=self.b.db)
        slug = self.name.replace(" ", "-").replace("=", "").replace(",", "")
        path = os.path.join(self.b.work, f"{slug}-{self.b.group}{'-stats' if stats else ''}.conf")
        with open(path, "w") as f:
            for k, v in lines.items():
                f.write(f"{k}={v}\n")
        return path

    def prepare(self, tag):
        shutil.rmtree(self.spool(tag), ignore_errors=True)

    def command(self, tag, stats=False):
        return [self.b.ingesta, "collect", "--config", self.config(tag, stats)], \
            os.path.join(self.b.work, "ingesta.out")

    def check(self, tag, full):
        spool = self.spool(tag)
        con = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True)
        segs = con.execute("SELECT path, rows, bytes, raw_bytes, state FROM segments").fetchall()
        con.close()
        rows = sum(s[1] for s in segs)
        if any(s[4] != "sealed" for s in segs):
            raise Failure(f"segments not sealed: {sorted(set(s[4] for s in segs))}")
        if full:
            n = 0
            for s in segs:
                path = os.path.join(spool, s[0])
                if path.endswith(".zst"):
                    data = subprocess.run(["zstd", "-dcq", path], check=True, capture_output=True).stdout
                else:
                    data = open(path, "rb").read()
                for line in data.splitlines():
                    json.loads(line)
                    n += 1
            if n != rows:
                raise Failure(f"segments hold {n} lines, spool.db says {rows} rows")
        self.raw_bytes = sum(s[3] for s in segs)
        return rows, sum(s[2] for s in segs)

    def cleanup(self, tag):
        shutil.rmtree(self.spool(tag), ignore_errors=True)

    def reproduce(self):
        return f"ingesta collect --config CONF  # {self.b.kind} {self.b.db}.t, INCLUDE_TABLES=t, defaults (zstd 1)"


class IngestaVariant(IngestaCollect):
    """ingesta collect with other settings (--variants): what-if rows, not contenders."""

    def __init__(self, bench, name, extra):
        super().__init__(bench)
        self.name = name
        self.extra = extra

    def spool(self, tag):
        return os.path.join(self.b.work, f"variant-spool-{tag}")

    def reproduce(self):
        return super().reproduce() + " " + " ".join(f"{k}={v}" for k, v in self.extra.items())


VARIANTS = [("ingesta ZSTD_LEVEL=3", {"ZSTD_LEVEL": "3"}), ("ingesta COMPRESSION=none", {"COMPRESSION": "none"})]


# ---- upload group

class UploadBase(Contender):
    units = "files"

    def bucket(self, tag):
        slug = self.name.split()[0].replace("_", "-").lower()
        return f"bench-{self.b.group}-{slug}-{tag}".lower()[:63]

    def prepare(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))
        self.b.s3.create_bucket(Bucket=self.bucket(tag))

    def check(self, tag, full):
        objs = [o for o in s3_list(self.b.s3, self.bucket(tag)) if is_data_key(o["Key"])]
        size = sum(o["Size"] for o in objs)
        if len(objs) != self.b.files or size != self.b.files * self.b.size:
            raise Failure(f"bucket {self.bucket(tag)}: {len(objs)} objects, {size} bytes; wanted "
                          f"{self.b.files} x {self.b.size}")
        return len(objs), size

    def cleanup(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))


class IngestaUpload(UploadBase):
    name = "ingesta upload"
    extra = {}

    def spool(self, tag):
        return os.path.join(self.b.work, f"upload-spool-{tag}")

    def prepare(self, tag):
        super().prepare(tag)
        shutil.rmtree(self.spool(tag), ignore_errors=True)
        subprocess.run(["cp", "-a", self.b.src_spool, self.spool(tag)], check=True)
        con = sqlite3.connect(os.path.join(self.spool(tag), "spool.db"))
        con.execute("UPDATE runs SET bucket = ?", (self.bucket(tag),))
        con.execute("UPDATE segments SET bucket = ?", (self.bucket(tag),))
        con.commit()
        con.close()
        e = self.b.env
        with open(self.config_path(), "w") as f:
            f.write(f"SPOOL_DIR={self.spool(tag)}\nS3_BUCKET={self.bucket(tag)}\nS3_ENDPOINT={e['S3_ENDPOINT']}\n"
                    f"AWS_ACCESS_KEY_ID={e['AWS_ACCESS_KEY_ID']}\nAWS_SECRET_ACCESS_KEY={e['AWS_SECRET_ACCESS_KEY']}\n"
                    "AWS_DEFAULT_REGION=us-east-1\nAWS_EC2_METADATA_DISABLED=true\nLOG_LEVEL=WARNING\n")
            for k, v in self.extra.items():
                f.write(f"{k}={v}\n")

    def config_path(self):
        return os.path.join(self.b.work, f"upload-{self.b.group}-{self.bucket('x')[-12:]}.conf")

    def command(self, tag):
        return [self.b.ingesta, "upload", "--config", self.config_path(), "--once"], \
            os.path.join(self.b.work, "ingesta-upload.out")

    def check(self, tag, full):
        res = super().check(tag, full)
        con = sqlite3.connect(os.path.join(self.spool(tag), "spool.db"))
        states = con.execute("SELECT state, count(*) FROM segments GROUP BY state").fetchall()
        con.close()
        if states != [("uploaded", self.b.files)]:
            raise Failure(f"spool states after upload: {states}")
        return res

    def cleanup(self, tag):
        super().cleanup(tag)
        shutil.rmtree(self.spool(tag), ignore_errors=True)

    def reproduce(self):
        return "ingesta upload --config CONF --once  # defaults: UPLOAD_CONCURRENCY=4, PUT below 64M"


class IngestaUploadVariant(IngestaUpload):
    """ingesta upload with other settings (--variants): what-if rows, not contenders."""

    def __init__(self, bench, name, extra):
        super().__init__(bench)
        self.name = name
        self.extra = extra

    def bucket(self, tag):
        return f"bench-{self.b.group}-ingesta-variant-{tag}".lower()[:63]

    def spool(self, tag):
        return os.path.join(self.b.work, f"variant-spool-{tag}")

    def reproduce(self):
        return super().reproduce() + " " + " ".join(f"{k}={v}" for k, v in self.extra.items())


UPLOAD_VARIANTS = [("ingesta upload S3_CHECKSUM=none", {"S3_CHECKSUM": "none"})]


class IngestaUploadBaseline(IngestaUploadVariant):
    """Another ingesta binary (--baseline PATH), paired with this one: an A/B
    of two builds in alternating rounds, on the same data."""

    def __init__(self, bench, path):
        super().__init__(bench, "ingesta upload (baseline build)", {})
        self.binary = path

    def bucket(self, tag):
        return f"bench-{self.b.group}-ingesta-baseline-{tag}".lower()[:63]

    def spool(self, tag):
        return os.path.join(self.b.work, f"baseline-spool-{tag}")

    def command(self, tag):
        return [self.binary, "upload", "--config", self.config_path(), "--once"], \
            os.path.join(self.b.work, "ingesta-baseline.out")

    def reproduce(self):
        return f"{self.binary} upload --config CONF --once  # the baseline build"


class Rclone(UploadBase):
    name = "rclone copy"

    def command(self, tag):
        return ["rclone", "copy", "--config", "/dev/null", "--s3-no-check-bucket", self.b.src_data,
                f"benchs3:{self.bucket(tag)}/seg"], os.path.join(self.b.work, "rclone.out")

    def reproduce(self):
        return "rclone copy --s3-no-check-bucket SEGDIR remote:BUCKET/seg  # defaults: --transfers 4"


class AwsCli(UploadBase):
    name = "aws s3 cp"

    def command(self, tag):
        return ["/usr/bin/aws", "--endpoint-url", self.b.env["S3_ENDPOINT"], "s3", "cp", "--recursive",
                "--only-show-errors", self.b.src_data, f"s3://{self.bucket(tag)}/seg/"], \
            os.path.join(self.b.work, "aws.out")

    def reproduce(self):
        return "/usr/bin/aws --endpoint-url URL s3 cp --recursive --only-show-errors SEGDIR s3://BUCKET/seg/  # defaults"


class CurlFloor(UploadBase):
    name = "curl-parallel-floor"
    floor = True

    def cfg(self, tag):
        return os.path.join(self.b.work, f"curl-{tag}.cfg")

    def prepare(self, tag):
        super().prepare(tag)
        ep = self.b.env["S3_ENDPOINT"]
        with open(self.cfg(tag), "w") as f:
            for name in sorted(os.listdir(self.b.src_data)):
                f.write(f'url = "{ep}/{self.bucket(tag)}/seg/{name}"\n'
                        f'upload-file = "{os.path.join(self.b.src_data, name)}"\noutput = "/dev/null"\n')

    def command(self, tag):
        e = self.b.env
        return ["curl", "-sS", "--fail", "--parallel", "--parallel-max", "4", "--aws-sigv4", "aws:amz:us-east-1:s3",
                "--user", f"{e['AWS_ACCESS_KEY_ID']}:{e['AWS_SECRET_ACCESS_KEY']}",
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-K", self.cfg(tag)], \
            os.path.join(self.b.work, "curl.out")

    def reproduce(self):
        return ("curl -sS --fail --parallel --parallel-max 4 --aws-sigv4 aws:amz:us-east-1:s3 --user KEY:SECRET "
                "-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -K LIST  # LIST: url/upload-file per segment")


class CurlSameChecks(CurlFloor):
    """The curl floor with the checks ingesta makes the server do: Content-MD5,
    x-amz-checksum-sha256 and If-None-Match: * on every PUT (UNSIGNED-PAYLOAD,
    as ingesta once the server echoes the checksum). Not a target: it shows
    what the server's share of the integrity contract costs on this machine."""
    name = "curl-parallel-same-checks"
    floor = False

    def prepare(self, tag):
        UploadBase.prepare(self, tag)
        ep, e = self.b.env["S3_ENDPOINT"], self.b.env
        con = sqlite3.connect(f"file:{os.path.join(self.b.src_spool, 'spool.db')}?mode=ro", uri=True)
        sums = {os.path.basename(p): (m, h) for p, m, h in con.execute("SELECT path, md5, sha256 FROM segments")}
        con.close()
        with open(self.cfg(tag), "w") as f:
            for i, name in enumerate(sorted(os.listdir(self.b.src_data))):
                md5, sha = sums[name]
                if i:
                    f.write("next\n")
                f.write(f'url = "{ep}/{self.bucket(tag)}/seg/{name}"\n'
                        f'upload-file = "{os.path.join(self.b.src_data, name)}"\noutput = "/dev/null"\n'
                        f'user = "{e["AWS_ACCESS_KEY_ID"]}:{e["AWS_SECRET_ACCESS_KEY"]}"\n'
                        'aws-sigv4 = "aws:amz:us-east-1:s3"\nfail\nsilent\nshow-error\n'
                        'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\n'
                        f'header = "Content-MD5: {base64.b64encode(bytes.fromhex(md5)).decode()}"\n'
                        f'header = "x-amz-checksum-sha256: {base64.b64encode(bytes.fromhex(sha)).decode()}"\n'
                        'header = "If-None-Match: *"\n')

    def command(self, tag):
        return ["curl", "--parallel", "--parallel-max", "4", "-K", self.cfg(tag)], \
            os.path.join(self.b.work, "curl-checks.out")

    def reproduce(self):
        return ("curl --parallel --parallel-max 4 -K LIST  # LIST: per segment url/upload-file, --aws-sigv4, "
                "UNSIGNED-PAYLOAD, Content-MD5, x-amz-checksum-sha256, If-None-Match: *, joined by `next`")


# ---- Sling (PyPI sling-linux-amd64 ships the binary; installed into bench/.venv)

def sling_bin():
    return glob.glob(os.path.join(os.path.dirname(VENV_PY), "..", "lib", "python3*", "site-packages",
                                  "sling_linux_amd64", "bin", "sling-linux-amd64"))[:1]


def sling_env(b, e):
    """Sling's connections as environment variables: SRC (the database) and,
    for the S3 runs, MINIO (type s3 with the custom endpoint)."""
    v = b.env
    e["SLING_HOME_DIR"] = os.path.join(b.work, "sling-home")
    e["SLING_DISABLE_TELEMETRY"] = "true"
    e["DO_NOT_TRACK"] = "1"
    if b.kind == "postgresql":
        e["SRC"] = (f"postgresql://{v['POSTGRESQL_USER']}:{v['POSTGRESQL_PASSWORD']}@{v['POSTGRESQL_HOST']}:"
                    f"{v['POSTGRESQL_PORT']}/{b.db}?sslmode=disable")
    else:
        e["SRC"] = (f"mysql://{v['MARIADB_USER']}:{v['MARIADB_PASSWORD']}@{v['MARIADB_HOST']}:"
                    f"{v['MARIADB_PORT']}/{b.db}")
    return e


def sling_s3_conn(b, bucket):
    """Sling's s3 connection for MinIO (custom endpoint), as its env var."""
    v = b.env
    return json.dumps({"type": "s3", "bucket": bucket, "access_key_id": v["AWS_ACCESS_KEY_ID"],
                       "secret_access_key": v["AWS_SECRET_ACCESS_KEY"], "endpoint": v["S3_ENDPOINT"],
                       "region": "us-east-1"})


def sling_stream(b):
    return "public.t" if b.kind == "postgresql" else f"{b.db}.t"


def count_ndjson_blobs(blobs, full):
    """Lines of a list of (name, bytes): zstd/gzip by magic; every line parsed when full."""
    import gzip
    n = 0
    for _, data in blobs:
        if data[:4] == b"\x28\xb5\x2f\xfd":
            data = subprocess.run(["zstd", "-dcq"], input=data, check=True, capture_output=True).stdout
        elif data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for line in data.splitlines():
            if not line.strip():
                continue
            if full:
                json.loads(line)
            n += 1
    return n


class SlingLocal(Contender):
    """Sling: database -> one zstd JSON-lines file in a local directory."""
    name = "sling-jsonl-zst"

    def dir(self, tag):
        return os.path.join(self.b.work, f"sling-out-{tag}")

    def prepare(self, tag):
        shutil.rmtree(self.dir(tag), ignore_errors=True)
        os.makedirs(self.dir(tag))

    def command(self, tag):
        return sling_bin() + ["run", "--src-conn", "SRC", "--src-stream", sling_stream(self.b), "--tgt-object",
                              f"file://{self.dir(tag)}/t.jsonl.zst", "--tgt-options",
                              "{format: jsonlines, compression: zstd}"], os.path.join(self.b.work, "sling.out")

    def check(self, tag, full):
        files = [os.path.join(r, f) for r, _, fs in os.walk(self.dir(tag)) for f in fs]
        if not files:
            raise Failure(f"sling wrote nothing under {self.dir(tag)}")
        blobs = [(f, open(f, "rb").read()) for f in files]
        return count_ndjson_blobs(blobs, full), sum(len(d) for _, d in blobs)

    def cleanup(self, tag):
        shutil.rmtree(self.dir(tag), ignore_errors=True)

    def reproduce(self):
        return ("SRC=<db url> sling run --src-conn SRC --src-stream " + sling_stream(self.b) +
                " --tgt-object file://DIR/t.jsonl.zst --tgt-options '{format: jsonlines, compression: zstd}'")


class S3Output(Contender):
    """An end-to-end contender: rows from the database into a fresh MinIO
    bucket; the check reads every data object back and counts its lines."""

    def bucket(self, tag):
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.name.split()[0].lower())
        return f"bench-{self.b.group}-{slug}"[:56].rstrip("-") + f"-{tag}".lower()

    def prepare(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))
        self.b.s3.create_bucket(Bucket=self.bucket(tag))

    def data_objects(self, tag):
        return [o for o in s3_list(self.b.s3, self.bucket(tag)) if is_data_key(o["Key"])]

    def check(self, tag, full):
        objs = self.data_objects(tag)
        if not objs:
            raise Failure(f"bucket {self.bucket(tag)}: no data objects")
        blobs = [(o["Key"], self.b.s3.get_object(Bucket=self.bucket(tag), Key=o["Key"])["Body"].read())
                 for o in objs]
        return count_ndjson_blobs(blobs, full), sum(o["Size"] for o in objs)

    def cleanup(self, tag):
        s3_drop(self.b.s3, self.bucket(tag))


class IngestaE2E(S3Output):
    """ingesta collect, then ingesta upload --once: database -> MinIO."""
    name = "ingesta collect+upload"

    def spool(self, tag):
        return os.path.join(self.b.work, f"e2e-spool-{tag}")

    def conf(self, tag):
        return os.path.join(self.b.work, f"e2e-{tag}.conf")

    def prepare(self, tag):
        super().prepare(tag)
        shutil.rmtree(self.spool(tag), ignore_errors=True)
        e = self.b.env
        lines = {"SPOOL_DIR": self.spool(tag), "S3_BUCKET": self.bucket(tag), "INCLUDE_TABLES": "t",
                 "SPOOL_MAX_BYTES": "0", "PROGRESS": "never", "LOG_LEVEL": "WARNING",
                 "S3_ENDPOINT": e["S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": e["AWS_ACCESS_KEY_ID"],
                 "AWS_SECRET_ACCESS_KEY": e["AWS_SECRET_ACCESS_KEY"], "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true"}
        if self.b.kind == "postgresql":
            lines.update(DB_TYPE="postgresql", POSTGRES_HOST=e["POSTGRESQL_HOST"], POSTGRES_PORT=e["POSTGRESQL_PORT"],
                         POSTGRES_USER=e["POSTGRESQL_USER"], POSTGRES_PASSWORD=e["POSTGRESQL_PASSWORD"],
                         POSTGRES_DB=self.b.db)
        else:
            lines.update(DB_TYPE="mysql", MYSQL_HOST=e["MARIADB_HOST"], MYSQL_PORT=e["MARIADB_PORT"],
                         MYSQL_USER=e["MARIADB_USER"], MYSQL_PASSWORD=e["MARIADB_PASSWORD"], MYSQL_DATABASE=self.b.db)
        with open(self.conf(tag), "w") as f:
            for k, v in lines.items():
                f.write(f"{k}={v}\n")

    def command(self, tag):
        c = shlex.quote(self.conf(tag))
        i = shlex.quote(self.b.ingesta)
        return ["/bin/sh", "-c", f"{i} collect --config {c} && {i} upload --config {c} --once"], \
            os.path.join(self.b.work, "ingesta-e2e.out")

    def check(self, tag, full):
        res = super().check(tag, full)
        con = sqlite3.connect(os.path.join(self.spool(tag), "spool.db"))
        states = con.execute("SELECT DISTINCT state FROM segments").fetchall()
        con.close()
        if states != [("uploaded",)]:
            raise Failure(f"spool states after upload: {states}")
        return res

    def cleanup(self, tag):
        super().cleanup(tag)
        shutil.rmtree(self.spool(tag), ignore_errors=True)

    def reproduce(self):
        return "ingesta collect --config CONF && ingesta upload --config CONF --once  # defaults"


class SlingS3(S3Output):
    """Sling: database -> zstd JSON lines in MinIO (its s3 connection, custom endpoint)."""
    name = "sling-s3-jsonl-zst"

    def command(self, tag):
        # The connection names the bucket, so it is set per run.
        argv = ["/usr/bin/env", "MINIO=" + sling_s3_conn(self.b, self.bucket(tag))] + sling_bin()
        argv += ["run", "--src-conn", "SRC", "--src-stream", sling_stream(self.b), "--tgt-conn", "MINIO",
                 "--tgt-object", f"s3://{self.bucket(tag)}/t/t.jsonl.zst", "--tgt-options",
                 "{format: jsonlines, compression: zstd}"]
        return argv, os.path.join(self.b.work, "sling-s3.out")

    def reproduce(self):
        return ("SRC=<db url> MINIO='{type: s3, endpoint: URL, access_key_id: K, secret_access_key: S, ...}' "
                "sling run --src-conn SRC --src-stream " + sling_stream(self.b) +
                " --tgt-conn MINIO --tgt-object s3://BUCKET/t/t.jsonl.zst "
                "--tgt-options '{format: jsonlines, compression: zstd}'")


class DltS3(S3Output):
    """dlt sql_database -> filesystem destination on MinIO (s3fs), jsonl gzip."""
    name = "dlt-s3-jsonl"
    slow = True

    def work_dir(self, tag):
        return os.path.join(self.b.work, f"dlt-s3-work-{tag}")

    def prepare(self, tag):
        super().prepare(tag)
        shutil.rmtree(self.work_dir(tag), ignore_errors=True)
        os.makedirs(self.work_dir(tag))

    def command(self, tag):
        return [VENV_PY, os.path.join(HERE, "contenders", "dlt_load.py"), Dlt.url(self), "t",
                f"s3://{self.bucket(tag)}", self.work_dir(tag)], os.path.join(self.b.work, "dlt-s3.out")

    def data_objects(self, tag):
        return [o for o in s3_list(self.b.s3, self.bucket(tag)) if "/t/" in o["Key"]]

    def cleanup(self, tag):
        super().cleanup(tag)
        shutil.rmtree(self.work_dir(tag), ignore_errors=True)

    def reproduce(self):
        return ("DESTINATION__FILESYSTEM__CREDENTIALS__{AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,ENDPOINT_URL}=... "
                "bench/.venv/bin/python bench/contenders/dlt_load.py DB_URL t s3://BUCKET WORK_DIR")


class DumpZstdAwsCp(S3Output):
    """The shell pipeline: the database's own JSON export | zstd | aws s3 cp -."""

    @property
    def name(self):
        return "psql-pipe-zstd-aws-s3-cp" if self.b.kind == "postgresql" else "mariadb-pipe-zstd-aws-s3-cp"

    def command(self, tag):
        if self.b.kind == "postgresql":
            dump = psql_base(self.b) + ["-At", "-v", "FETCH_COUNT=10000", "-c", "SELECT row_to_json(t) FROM t"]
        else:
            dump = mariadb_base(self.b) + ["--quick", "-B", "-N", "-r", "-e", MY_JSON_SQL, self.b.db]
        cp = ["/usr/bin/aws", "--endpoint-url", self.b.env["S3_ENDPOINT"], "s3", "cp", "--only-show-errors", "-",
              f"s3://{self.bucket(tag)}/t/data.jsonl.zst"]
        line = " ".join(shlex.quote(a) for a in dump) + " | zstd -q -3 | " + " ".join(shlex.quote(a) for a in cp)
        return ["/bin/bash", "-o", "pipefail", "-c", line], os.path.join(self.b.work, "pipe.out")

    def reproduce(self):
        first = "psql ... -At -c 'SELECT row_to_json(t) FROM t'" if self.b.kind == "postgresql" else \
            "mariadb --quick -B -N -r -e 'SELECT JSON_OBJECT(...) FROM t'"
        return f"{first} | zstd -q -3 | aws --endpoint-url URL s3 cp - s3://BUCKET/t/data.jsonl.zst"


# ---------------------------------------------------------------- groups

TARGETS = {
    # group: [(contender name or tuple of names = the fastest of them, minimum ratio, strictly greater?)]
    "postgresql": [(("psql-row_to_json", "pg-COPY-row_to_json-csv"), 1.5), ("pg-COPY-floor", 0.7),
                   ("original-python", 10.0), ("dlt-sql_database-jsonl", 20.0)],
    "mariadb": [("mariadb-JSON_OBJECT", 1.5), ("original-python", 10.0)],
    "mongodb": [("pymongo-json.dumps", 3.0)],
    "upload-big": [("rclone copy", 1.0), ("aws s3 cp", 1.5), ("curl-parallel-floor", 0.9)],
    "upload-small": [("rclone copy", 1.0), ("aws s3 cp", 1.5), ("curl-parallel-floor", 0.9)],
    "e2e-postgresql": [("sling-s3-jsonl-zst", 5.0), ("dlt-s3-jsonl", 20.0)],
    "e2e-mariadb": [("sling-s3-jsonl-zst", 5.0), ("dlt-s3-jsonl", 20.0)],
}
for _g in ("postgresql", "mariadb"):
    TARGETS[_g].append(("sling-jsonl-zst", 5.0))
TARGETS["mariadb"].append(("dlt-sql_database-jsonl", 20.0))
RSS_LIMIT = 32 * MiB


class Group:
    def __init__(self, name, args, env, size):
        self.group = name
        self.args = args
        self.env = env
        self.ingesta = args.ingesta
        self.db = size["db"]
        self.work = os.path.join(args.work, name)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.s3 = s3_client(env)
        self.kind = {"postgresql": "postgresql", "mariadb": "mysql", "mongodb": "mongodb",
                     "e2e-postgresql": "postgresql", "e2e-mariadb": "mysql"}.get(name, "upload")
        if name.startswith("e2e-"):
            # database -> MinIO, end to end
            self.n = size["rows"]
            self.contenders = [SlingS3(self), DltS3(self), DumpZstdAwsCp(self)]
            self.ingesta_c = IngestaE2E(self)
            self.probes = ["postgres" if self.kind == "postgresql" else "mariadb", "minio"]
        elif self.kind == "postgresql":
            self.n = size["rows"]
            self.contenders = [PsqlJson(self), PgCopyJson(self), PgCopyFloor(self), Original(self), Dlt(self),
                               SlingLocal(self)]
            self.ingesta_c = IngestaCollect(self)
            self.probes = ["postgres", "minio"]
        elif self.kind == "mysql":
            self.n = size["rows"]
            self.contenders = [MariadbJson(self), MariadbFloor(self), Original(self), Dlt(self), SlingLocal(self)]
            self.ingesta_c = IngestaCollect(self)
            self.probes = ["mariadb", "minio"]
        elif self.kind == "mongodb":
            self.n = size["docs"]
            self.contenders = [PymongoDump(self), PymongoFloor(self), Original(self)]
            self.ingesta_c = IngestaCollect(self)
            self.probes = ["ferretdb", "minio"]
        else:
            self.files, self.size = size["big"] if name == "upload-big" else size["small"]
            self.n = self.files
            self.src_spool = size["spool_" + name]
            self.src_data = os.path.join(self.src_spool, "data")
            self.contenders = [Rclone(self), AwsCli(self), CurlFloor(self), CurlSameChecks(self)]
            self.ingesta_c = IngestaUpload(self)
            self.probes = ["minio"]
        if not sling_bin():
            log("sling not installed (bench/run.sh installs it into bench/.venv): its rows are skipped")
            self.contenders = [c for c in self.contenders if not isinstance(c, (SlingLocal, SlingS3))]
        if args.variants and self.kind in ("postgresql", "mysql", "mongodb") and not name.startswith("e2e-"):
            self.contenders += [IngestaVariant(self, n, x) for n, x in VARIANTS]
        elif args.variants:
            self.contenders += [IngestaUploadVariant(self, n, x) for n, x in UPLOAD_VARIANTS]
        if args.baseline and self.kind == "upload":
            self.contenders.append(IngestaUploadBaseline(self, os.path.abspath(args.baseline)))
        if args.skip:
            self.contenders = [c for c in self.contenders if c.name not in args.skip]
        self.runs = []
        self.failures = []

    def child_env(self, c):
        if isinstance(c, (IngestaCollect, IngestaUpload, IngestaE2E)):
            return clean_env({"HOME": os.environ.get("HOME", "/root")})
        e = dict(os.environ)
        e.update(self.env)
        e["PGPASSWORD"] = self.env["POSTGRESQL_PASSWORD"]
        e["MYSQL_PWD"] = self.env["MARIADB_PASSWORD"]
        if isinstance(c, (SlingLocal, SlingS3)):
            sling_env(self, e)
        if isinstance(c, DltS3):
            e.update(DESTINATION__FILESYSTEM__CREDENTIALS__AWS_ACCESS_KEY_ID=self.env["AWS_ACCESS_KEY_ID"],
                     DESTINATION__FILESYSTEM__CREDENTIALS__AWS_SECRET_ACCESS_KEY=self.env["AWS_SECRET_ACCESS_KEY"],
                     DESTINATION__FILESYSTEM__CREDENTIALS__ENDPOINT_URL=self.env["S3_ENDPOINT"],
                     DESTINATION__FILESYSTEM__CREDENTIALS__REGION_NAME="us-east-1")
        if isinstance(c, Rclone):
            e.pop("AWS_CA_BUNDLE", None)  # rclone cannot use a CA bundle with its transport
            e.update(RCLONE_CONFIG_BENCHS3_TYPE="s3", RCLONE_CONFIG_BENCHS3_PROVIDER="Minio",
                     RCLONE_CONFIG_BENCHS3_ENDPOINT=self.env["S3_ENDPOINT"],
                     RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=self.env["AWS_ACCESS_KEY_ID"],
                     RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=self.env["AWS_SECRET_ACCESS_KEY"],
                     RCLONE_CONFIG_BENCHS3_REGION="us-east-1")
        return e

    def run_one(self, c, tag, phase, rnd, full=False, stats=False):
        c.prepare(tag)
        argv, out = c.command(tag, stats=True) if stats else c.command(tag)
        probes = [ServerProbe(p) for p in self.probes]
        r = run_measured(argv, out, self.child_env(c), probes, cwd=self.work)
        r.update(group=self.group, contender=c.name, phase=phase, round=rnd, floor=c.floor, units=c.units)
        ok = r["rc"] == 0
        if ok:
            try:
                done, out_bytes = c.check(tag, full)
                r["units_done"] = done
                r["out_bytes"] = out_bytes
                if getattr(c, "raw_bytes", None):
                    r["ndjson_bytes"] = c.raw_bytes
                if done != self.n:
                    raise Failure(f"{done} {c.units}, wanted {self.n}")
            except (Failure, subprocess.CalledProcessError, OSError, ValueError) as exc:
                ok = False
                r["error"] = f"{type(exc).__name__}: {exc}"
        else:
            r["error"] = f"exit {r['rc']}: {r['stderr'][-800:]}"
        r["ok"] = ok
        if stats:
            r["stats_log"] = [ln for ln in r["stderr"].splitlines() if "table stats" in ln]
        if not stats:
            self.runs.append(r)
        rate = self.n / r["wall_s"]
        log(f"{self.group} {phase}{'' if rnd is None else ' r%d' % rnd} {c.name}: "
            f"{'ok' if ok else 'FAILED'} {r['wall_s']:.2f} s, {rate:,.0f} {c.units}/s, "
            f"cpu {r['cpu_s']:.2f} s, rss {r['maxrss_bytes'] / MiB:.1f} MiB, srv cpu {r['server_cpu_s']:.2f} s")
        if not ok:
            self.failures.append(f"{self.group}: {c.name} ({phase}): {r.get('error')}")
            log(f"  {r.get('error')}")
        c.cleanup(tag)
        return r

    def run(self):
        ic = self.ingesta_c
        alive = list(self.contenders)
        log(f"== {self.group}: {self.n} {ic.units}; warm-up")
        if not self.run_one(ic, "w", "warmup", None, full=True)["ok"]:
            return
        slow_warm = self.args.slow_rounds >= self.args.rounds
        for c in list(alive):
            if c.slow and not slow_warm:
                continue
            if not self.run_one(c, "w", "warmup", None, full=True)["ok"]:
                alive.remove(c)
        for rnd in range(1, self.args.rounds + 1):
            log(f"== {self.group}: round {rnd}/{self.args.rounds}")
            for c in list(alive):
                if c.slow and rnd > self.args.slow_rounds:
                    continue
                ri = self.run_one(ic, f"r{rnd}", "timed", rnd)
                if not ri["ok"]:
                    return
                rc = self.run_one(c, f"r{rnd}", "timed", rnd, full=c.slow and not slow_warm and rnd == 1)
                if not rc["ok"]:
                    alive.remove(c)
                    continue
                rc["paired_ingesta_wall_s"] = ri["wall_s"]
        if isinstance(ic, IngestaCollect):
            r = self.run_one(ic, "stats", "stats", None, stats=True)
            self.stats_run = r


# ---------------------------------------------------------------- group incremental-postgresql
# The hourly run of issue 11: an incremental run (LOAD_MODE=incremental, cursor
# updated_at, indexed) after 1% of the rows changed, against a full snapshot run
# of the same table, each `ingesta collect` then `ingesta upload --once` into
# MinIO, alternating in each round (the order flips every round). Not a default
# group and not in --quick's list: `bench/run.sh --only incremental-postgresql`
# (--quick with it: 10,000 rows, a smoke run). Kept apart from the Group class.

INCR_GROUP = "incremental-postgresql"
INCR_SPEC = 1


def incr_dataset(env, db, n):
    """Database `db`, table t: the postgresql group's 1,000,000 rows plus
    updated_at timestamptz NOT NULL (from `created`) with a b-tree index."""
    marker = f"ingesta bench incremental v{INCR_SPEC} rows={n}"
    if datasets.pg_query(env, env["POSTGRESQL_DATABASE"],
                         f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
        datasets.pg_query(env, env["POSTGRESQL_DATABASE"], f'CREATE DATABASE "{db}"')
    have = datasets.pg_query(env, db, "SELECT obj_description(oid, 'pg_class') FROM pg_class "
                                      "WHERE relname = 't' AND relnamespace = 'public'::regnamespace")
    if have == marker:
        log(f"postgresql {db}.t: {n} rows with updated_at, up to date")
        return 0.0
    t0 = time.monotonic()
    sql = datasets.PG_TABLE_SQL.format(n=n, marker="building") + (
        "ALTER TABLE t ADD COLUMN updated_at timestamptz;\n"
        "UPDATE t SET updated_at = created;\n"
        "ALTER TABLE t ALTER COLUMN updated_at SET NOT NULL;\n"
        "CREATE INDEX t_updated_at ON t (updated_at);\n"
        "VACUUM (FREEZE, ANALYZE) t;\n"
        f"COMMENT ON TABLE t IS '{marker}';\n")
    subprocess.run(datasets.psql_cmd(env, db), input=sql, env=datasets.pg_env(env), check=True, text=True,
                   capture_output=True)
    dt = time.monotonic() - t0
    log(f"postgresql {db}.t: built {n} rows with updated_at in {dt:.1f} s")
    return dt


class IncrementalPostgres:
    """Two spools and two buckets: `incr` (LOAD_MODE=incremental, its watermark kept
    from round to round) and `snap` (LOAD_MODE=snapshot). Per round, untimed: 1% of
    the rows get a new qty and updated_at = clock_timestamp() (ids with id % 100 =
    the round), then VACUUM ANALYZE; timed: each mode's collect and upload --once.
    Checked from the commit records in MinIO (boto3): the incremental run holds
    exactly the changed rows, mode incremental, the snapshot run all rows."""

    def __init__(self, args, env, size):
        self.args, self.env = args, env
        self.n = size["rows"]
        self.db = size["db"] + "_incr"
        self.work = os.path.join(args.work, INCR_GROUP)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.s3 = s3_client(env)
        self.tag = os.urandom(3).hex()
        self.runs, self.failures = [], []
        self.report = ""

    def bucket(self, mode):
        return f"bench-incr-{self.tag}-{mode}"

    def conf(self, mode):
        e = self.env
        path = os.path.join(self.work, f"{mode}.conf")
        lines = {"DB_TYPE": "postgresql", "POSTGRES_HOST": e["POSTGRESQL_HOST"],
                 "POSTGRES_PORT": e["POSTGRESQL_PORT"], "POSTGRES_USER": e["POSTGRESQL_USER"],
                 "POSTGRES_PASSWORD": e["POSTGRESQL_PASSWORD"], "POSTGRES_DB": self.db,
                 "SPOOL_DIR": os.path.join(self.work, f"spool-{mode}"), "S3_BUCKET": self.bucket(mode),
                 "INCLUDE_TABLES": "t", "SPOOL_MAX_BYTES": "0", "PROGRESS": "never", "LOG_LEVEL": "WARNING",
                 "S3_ENDPOINT": e["S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": e["AWS_ACCESS_KEY_ID"],
                 "AWS_SECRET_ACCESS_KEY": e["AWS_SECRET_ACCESS_KEY"], "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true",
                 "LOAD_MODE": "incremental" if mode == "incr" else "snapshot"}
        if mode == "incr":
            lines["INCREMENTAL_COLUMN"] = "updated_at"
        with open(path, "w") as f:
            for k, v in lines.items():
                f.write(f"{k}={v}\n")
        return path

    def records(self, mode):
        out = {}
        for o in s3_list(self.s3, self.bucket(mode)):
            key = o["Key"]
            if key.startswith("ingesta_runs/"):
                out[key] = json.loads(self.s3.get_object(Bucket=self.bucket(mode), Key=key)["Body"].read())
        return out

    def one(self, mode, rnd, want_rows, want_mode):
        """collect, then upload --once, each measured; the new commit record checked."""
        before = set(self.records(mode))
        cfg = self.conf(mode)
        env = clean_env({"HOME": os.environ.get("HOME", "/root")})
        r = {"group": INCR_GROUP, "contender": f"ingesta {mode}", "phase": "warmup" if rnd is None else "timed",
             "round": rnd, "ok": False}
        for step in ("collect", "upload"):
            argv = [self.args.ingesta, step, "--config", cfg] + (["--once"] if step == "upload" else [])
            m = run_measured(argv, os.path.join(self.work, f"{mode}-{step}.out"), env,
                             [ServerProbe("postgres"), ServerProbe("minio")], cwd=self.work)
            r[step] = {k: m[k] for k in ("rc", "wall_s", "cpu_s", "maxrss_bytes", "server_cpu_s")}
            if m["rc"] != 0:
                r["error"] = f"{step} exit {m['rc']}: {m['stderr'][-800:]}"
                break
        else:
            new = [v for k, v in self.records(mode).items() if k not in before]
            got = [(x["rows"], x["mode"]) for x in new]
            if got == [(want_rows, want_mode)]:
                r["ok"] = True
            else:
                r["error"] = f"new commit records (rows, mode) {got}, wanted [({want_rows}, {want_mode!r})]"
        if r["ok"]:
            r["wall_s"] = r["collect"]["wall_s"] + r["upload"]["wall_s"]
            r["rows"] = want_rows
            log(f"{INCR_GROUP} {r['phase']}{'' if rnd is None else ' r%d' % rnd} {mode}: {want_rows} rows, "
                f"collect {r['collect']['wall_s']:.2f} s (cpu {r['collect']['cpu_s']:.2f}, srv cpu "
                f"{r['collect']['server_cpu_s']:.2f}), upload {r['upload']['wall_s']:.2f} s")
        else:
            self.failures.append(f"{INCR_GROUP}: {mode} ({r['phase']}): {r.get('error')}")
            log(f"{INCR_GROUP} {mode}: FAILED {r.get('error')}")
        self.runs.append(r)
        return r["ok"]

    def change(self, rnd):
        """1% of the rows: a new qty, updated_at moved forward (untimed)."""
        sql = (f"UPDATE t SET qty = coalesce(qty, 0) + 1, updated_at = clock_timestamp() "
               f"WHERE id % 100 = {rnd % 100}")
        subprocess.run(datasets.psql_cmd(self.env, self.db) + ["-c", sql, "-c", "VACUUM ANALYZE t"],
                       env=datasets.pg_env(self.env), check=True, capture_output=True, text=True)
        return len([i for i in range(rnd % 100, self.n + 1, 100) if i >= 1])

    def run(self):
        build = incr_dataset(self.env, self.db, self.n)
        for mode in ("incr", "snap"):
            self.s3.create_bucket(Bucket=self.bucket(mode))
        try:
            log(f"== {INCR_GROUP}: {self.n} rows; warm-up (the incremental table's first run is its snapshot)")
            if not (self.one("incr", None, self.n, "snapshot") and self.one("snap", None, self.n, "snapshot")):
                return
            for rnd in range(1, self.args.rounds + 1):
                changed = self.change(rnd)
                log(f"== {INCR_GROUP}: round {rnd}/{self.args.rounds}, {changed} rows changed")
                order = ("incr", "snap") if rnd % 2 else ("snap", "incr")
                for mode in order:
                    if not self.one(mode, rnd, changed if mode == "incr" else self.n,
                                    "incremental" if mode == "incr" else "snapshot"):
                        return
        finally:
            for mode in ("incr", "snap"):
                s3_drop(self.s3, self.bucket(mode))
        self.report = self.summary(build)

    def summary(self, build):
        def m(mode, step):
            return med([r[step]["wall_s"] for r in self.runs
                        if r["phase"] == "timed" and r["ok"] and r["contender"] == f"ingesta {mode}"])

        def mc(mode, key):
            return med([r["collect"][key] for r in self.runs
                        if r["phase"] == "timed" and r["ok"] and r["contender"] == f"ingesta {mode}"])
        rows = []
        for mode, label, n in (("incr", "incremental run (1% changed)", self.n // 100),
                               ("snap", "full snapshot run", self.n)):
            c, u = m(mode, "collect"), m(mode, "upload")
            rows.append(f"| {label} | {n:,} | {c:.2f} | {u:.2f} | {c + u:.2f} | {mc(mode, 'cpu_s'):.2f} | "
                        f"{mc(mode, 'server_cpu_s'):.2f} |")
        ic, sc = m("incr", "collect") + m("incr", "upload"), m("snap", "collect") + m("snap", "upload")
        return "\n".join([
            f"### {INCR_GROUP}: an hourly run on {self.n:,} rows, 1% changed",
            "",
            f"Medians of {self.args.rounds} alternating rounds after a warm-up; table built in {build:.1f} s "
            f"(0 = reused); cursor updated_at (timestamptz, b-tree index).",
            "",
            "| run | rows | collect s | upload s | run s | collect cpu s | server cpu s (collect) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"incremental / snapshot: {ic / sc:.3f} of the time ({sc / ic:.1f}x faster)",
        ])


# ---------------------------------------------------------------- report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(groups, meta):
    out = []
    targets = []
    for g in groups:
        timed = [r for r in g.runs if r["phase"] == "timed" and r["ok"]]
        names = [g.ingesta_c.name] + [c.name for c in g.contenders]
        out.append(f"\n### {g.group} ({g.n:,} {g.ingesta_c.units}" +
                   (f" of {g.size // 1024} KiB" if g.kind == "upload" else "") + ")\n")
        out.append("| tool | runs | wall s median (min-max) | " + g.ingesta_c.units + "/s median | out MB/s | out MB |"
                   " client CPU s | client peak RSS MiB | server CPU s | server RSS growth MiB |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        summ = {}
        for name in names:
            rs = [r for r in timed if r["contender"] == name]
            if not rs:
                out.append(f"| {name} | 0 | failed or skipped | | | | | | | |")
                continue
            w = [r["wall_s"] for r in rs]
            s = {
                "wall": med(w), "wmin": min(w), "wmax": max(w),
                "rate": med([g.n / x for x in w]),
                "mbs": med([r["out_bytes"] / r["wall_s"] / 1e6 for r in rs]),
                "out": med([r["out_bytes"] for r in rs]) / 1e6,
                "cpu": med([r["cpu_s"] for r in rs]),
                "rss": max(r["maxrss_bytes"] for r in rs) / MiB,
                "scpu": med([r["server_cpu_s"] for r in rs]),
                "srss": med([r["server_rss_growth_bytes"] for r in rs]) / MiB,
            }
            summ[name] = s
            floor = " (floor)" if rs[0]["floor"] else ""
            mbs = f"{s['mbs']:.1f}" if s["out"] else "-"
            outmb = f"{s['out']:.1f}" if s["out"] else "(/dev/null)"
            out.append(f"| {name}{floor} | {len(rs)} | {s['wall']:.2f} ({s['wmin']:.2f}-{s['wmax']:.2f}) | "
                       f"{s['rate']:,.0f} | {mbs} | {outmb} | {s['cpu']:.2f} | {s['rss']:.1f} | {s['scpu']:.2f} | "
                       f"{s['srss']:.1f} |")
        # ratios per pair
        ratios = {}
        for c in g.contenders:
            rs = [r for r in timed if r["contender"] == c.name and "paired_ingesta_wall_s" in r]
            if rs:
                ratios[c.name] = [r["wall_s"] / r["paired_ingesta_wall_s"] for r in rs]
        out.append("\n| pair (ingesta vs) | ratio median | min | max | rounds |")
        out.append("| --- | --- | --- | --- | --- |")
        for name, rr in ratios.items():
            out.append(f"| {name} | {med(rr):.2f} x | {min(rr):.2f} | {max(rr):.2f} | {len(rr)} |")
        for want, minimum in TARGETS.get(g.group, []):
            if isinstance(want, tuple):
                have = [n for n in want if n in summ]
                want = max(have, key=lambda n: summ[n]["rate"]) if have else want[0]
            rr = ratios.get(want)
            got = med(rr) if rr else None
            if got is None:
                verdict = "NOT MEASURED"
            elif want.startswith("dlt"):
                verdict = "met" if got > minimum else "NOT MET"
            else:
                verdict = "met" if got >= minimum else "NOT MET"
            targets.append({"group": g.group, "vs": want, "want": minimum, "got": got, "verdict": verdict})
        if isinstance(g.ingesta_c, IngestaCollect) and g.ingesta_c.name in summ:
            rss = summ[g.ingesta_c.name]["rss"]
            targets.append({"group": g.group, "vs": "collector peak RSS (MiB)", "want": RSS_LIMIT / MiB, "got": rss,
                            "verdict": "met" if rss * MiB < RSS_LIMIT else "NOT MET"})
        sr = getattr(g, "stats_run", None)
        if sr and sr.get("stats_log"):
            out.append(f"\ningesta COLLECT_STATS run (not timed above; {sr['wall_s']:.2f} s wall): "
                       + "; ".join(ln.split("msg=", 1)[-1] for ln in sr["stats_log"]))
        nd = [r.get("ndjson_bytes") for r in timed if r["contender"] == g.ingesta_c.name and r.get("ndjson_bytes")]
        if nd:
            out.append(f"\ningesta NDJSON before compression: {med(nd) / 1e6:.1f} MB "
                       f"({med(nd) / g.n:.0f} bytes/row)")
    out.append("\n### Targets (median of the per-round ratios: ingesta rate / contender rate)\n")
    out.append("| group | against | target | measured | verdict |")
    out.append("| --- | --- | --- | --- | --- |")
    for t in targets:
        if t["vs"].startswith("collector peak RSS"):
            out.append(f"| {t['group']} | {t['vs']} | < {t['want']:.0f} MiB | {t['got']:.1f} MiB | {t['verdict']} |")
        else:
            got = "-" if t["got"] is None else f"{t['got']:.2f} x"
            cmp_ = ">" if t["vs"].startswith("dlt") else ">="
            out.append(f"| {t['group']} | {t['vs']} | {cmp_} {t['want']:.1f} x | {got} | {t['verdict']} |")
    return "\n".join(out), targets


def versions():
    def first(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    v = {
        "psql": first(["psql", "--version"]),
        "mariadb client": first(["mariadb", "--version"]),
        "python3 (Debian)": first([PY, "--version"]),
        "psycopg2": first([PY, "-c", "import psycopg2; print(psycopg2.__version__)"]),
        "pymysql": first([PY, "-c", "import pymysql; print(pymysql.__version__)"]),
        "pymongo": first([PY, "-c", "import pymongo; print(pymongo.version)"]),
        "boto3": first([PY, "-c", "import boto3; print(boto3.__version__)"]),
        "dlt": first([VENV_PY, "-c", "import dlt, sqlalchemy; print(dlt.__version__, 'sqlalchemy', "
                                     "sqlalchemy.__version__)"]),
        "sling": first(sling_bin() + ["--version"]) if sling_bin() else "not installed",
        "rclone": first(["rclone", "version"]),
        "aws": first(["/usr/bin/aws", "--version"]),
        "curl": first(["curl", "--version"]),
        "zstd": first(["zstd", "--version"]),
    }
    return v


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {"nproc": os.cpu_count(), "cpu": model, "mem_mib": mem, "kernel": os.uname().release,
            "loadavg": open("/proc/loadavg").read().split()[:3]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small datasets, 1 round: a smoke run (< 3 min)")
    ap.add_argument("--rounds", type=int, help="timed rounds (default 5; --quick: 1)")
    ap.add_argument("--slow-rounds", type=int,
                    help="timed rounds of the >= 10x slower contenders (original, dlt); default: --rounds. "
                         "When fewer, they also skip the warm-up run")
    ap.add_argument("--only", help="comma-separated groups: postgresql,mariadb,mongodb,upload-big,upload-small,"
                    "e2e-postgresql,e2e-mariadb; also " + INCR_GROUP + " (not a default group)")
    ap.add_argument("--skip", default="", help="comma-separated contender names to leave out")
    ap.add_argument("--variants", action="store_true",
                    help="also run ingesta collect with ZSTD_LEVEL=3 and with COMPRESSION=none, and ingesta "
                         "upload with S3_CHECKSUM=none, paired like contenders (what compression and the "
                         "checksum cost)")
    ap.add_argument("--baseline", help="another ingesta binary, paired with --ingesta in the upload groups "
                    "(an A/B of two builds)")
    ap.add_argument("--docs", type=int, help="MongoDB documents (default 20,000; --quick 2,000)")
    ap.add_argument("--ingesta", default=os.path.join(ROOT, "build-bench", "ingesta"))
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK", "/tmp/ingesta-bench"),
                    help="scratch directory (datasets' spools, outputs)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    size = dict(SIZES["quick" if args.quick else "full"])
    if args.docs:
        size["docs"] = args.docs
    args.rounds = size["rounds"] if args.rounds is None else args.rounds
    args.slow_rounds = args.rounds if args.slow_rounds is None else args.slow_rounds
    args.skip = [s for s in args.skip.split(",") if s]
    groups = (args.only or "postgresql,mariadb,mongodb,upload-big,upload-small,e2e-postgresql,e2e-mariadb").split(",")
    args.ingesta = os.path.abspath(args.ingesta)
    if not os.access(args.ingesta, os.X_OK):
        sys.exit(f"bench: {args.ingesta}: not built (meson setup build-bench --buildtype=release && "
                 "ninja -C build-bench)")
    t_start = time.monotonic()
    env = servers_env()
    meta = {"machine": machine(), "versions": versions(), "ingesta": args.ingesta, "quick": args.quick,
            "rounds": args.rounds, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta["git"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                 text=True).stdout.strip()
    meta["versions"]["ingesta"] = subprocess.run([args.ingesta, "version"], capture_output=True,
                                                 text=True).stdout.strip()
    log(f"machine: {meta['machine']}")
    # datasets
    build = {}
    data_root = os.path.join(args.work, "datasets")
    os.makedirs(data_root, exist_ok=True)
    if "postgresql" in groups or "e2e-postgresql" in groups:
        build["postgresql"] = datasets.ensure_pg(env, size["db"], size["rows"])
    if "mariadb" in groups or "e2e-mariadb" in groups:
        build["mariadb"] = datasets.ensure_mariadb(env, size["db"], size["rows"])
    if "mongodb" in groups:
        build["mongodb"] = datasets.ensure_mongo(env, size["db"], size["docs"])
    for name in ("upload-big", "upload-small"):
        if name in groups:
            t0 = time.monotonic()
            files, sz = size["big" if name == "upload-big" else "small"]
            size["spool_" + name] = datasets.ensure_segments(args.ingesta, data_root, f"{name}-{files}x{sz}",
                                                             files, sz, clean_env())
            build[name] = time.monotonic() - t0
    meta["dataset_build_s"] = build
    all_groups = []
    failures = []
    incr_groups = []
    for name in groups:
        if name == INCR_GROUP:  # its own dataset, runs and report (IncrementalPostgres)
            ig = IncrementalPostgres(args, env, size)
            ig.run()
            incr_groups.append(ig)
            failures.extend(ig.failures)
            continue
        g = Group(name, args, env, size)
        g.run()
        all_groups.append(g)
        failures.extend(g.failures)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["elapsed_s"] = time.monotonic() - t_start
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    report, targets = summarize(all_groups, meta)
    for ig in incr_groups:
        report += "\n\n" + ig.report
    head = (f"ingesta bench {'--quick ' if args.quick else ''}{meta['started']}: {meta['machine']['nproc']} cores "
            f"{meta['machine']['cpu']}, {meta['machine']['mem_mib']} MiB, load at start "
            f"{' '.join(meta['machine']['loadavg'])}, at end {' '.join(meta['loadavg_end'])}; "
            f"{args.rounds} rounds after a warm-up ({args.slow_rounds} for original and dlt); "
            f"{meta['elapsed_s']:.0f} s in all")
    report = head + "\n" + report
    if failures:
        report += "\n\n### FAILURES\n\n" + "\n".join(f"- {f}" for f in failures)
    rdir = os.path.join(args.results, time.strftime("%Y%m%dT%H%M%S") + ("-quick" if args.quick else ""))
    os.makedirs(rdir, exist_ok=True)
    with open(os.path.join(rdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "targets": targets, "failures": failures,
                   "runs": [r for g in all_groups for r in g.runs] + [r for g in incr_groups for r in g.runs],
                   "stats_runs": [getattr(g, "stats_run", None) for g in all_groups]}, f, indent=1)
    with open(os.path.join(rdir, "report.md"), "w") as f:
        f.write(report + "\n")
    print(report)
    log(f"results in {rdir}")
    if failures:
        log(f"{len(failures)} failure(s)")
        sys.exit(1)


if __name__ == "__main__":
    main()
