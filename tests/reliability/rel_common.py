"""What the reliability tests share: source builders, bucket readers and the one
verifier that says whether "every row landed exactly once, or the status says
why not" held.

The verifier trusts nothing ingesta wrote except what it checks: it reads the
spool index with the sqlite3 module (read-only), the objects with the file
system or boto3 against MinIO directly, decompresses with the zstd CLI, parses
every line with the json module, and compares with the ids the test put into
its sources. It returns figures (rows and objects checked, lost, duplicates,
corrupt) and raises TestFailure on any breach.
"""
import collections
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import string
import subprocess
import time

from ingesta_test import TestFailure, check, clean_env, servers_env

INGESTA = os.environ.get("INGESTA", "ingesta")
SOURCE_ROOT = os.environ.get("INGESTA_SOURCE_ROOT", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

# ------------------------------------------------------------------ processes


def ingesta_env(extra=None):
    """A clean environment (no AWS_/DB settings of the caller) plus extra."""
    env = clean_env()
    for k in list(env):
        if k.startswith("INGESTA_FAILPOINT"):
            del env[k]
    if extra:
        env.update(extra)
    return env


def run_ingesta(args, env=None, timeout=600, input=None):
    """Run the binary; CompletedProcess (never raises on exit code)."""
    try:
        return subprocess.run([INGESTA] + list(args), env=env if env is not None else ingesta_env(),
                              capture_output=True, text=True, timeout=timeout, input=input,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise TestFailure(f"ingesta {' '.join(args)} did not finish within {timeout} s "
                          f"(hang?)\nstderr: {(exc.stderr or b'')[-2000:]!r}")


def expect_rc(p, want, what):
    ok = p.returncode in want if isinstance(want, (list, tuple, set)) else p.returncode == want
    if not ok:
        raise TestFailure(f"{what}: exit {p.returncode}, wanted {want}\nstdout:\n"
                          f"{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def spawn(args, env=None, log=None):
    """Start ingesta in the background; stdout/stderr to log (a path) or /dev/null."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen([INGESTA] + list(args), env=env if env is not None else ingesta_env(),
                         stdout=out, stderr=out, start_new_session=True)
    if log:
        out.close()
    return p


def kill9(p):
    """SIGKILL p; True when it was still running."""
    alive = p.poll() is None
    if alive:
        p.send_signal(signal.SIGKILL)
    p.wait()
    return alive


def stop(p, timeout=60):
    """SIGTERM then wait; SIGKILL if it does not stop (and fail)."""
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise TestFailure(f"ingesta (pid {p.pid}) ignored SIGTERM for {timeout} s")


def failpoints_built():
    """True when the binary was built with -Dfailpoints=true: a collect of an
    empty SQLite source must die by SIGKILL at run.after_lock."""
    import tempfile
    d = tempfile.mkdtemp(prefix="ingesta-fpprobe-")
    try:
        src = os.path.join(d, "s.db")
        sqlite3.connect(src).execute("CREATE TABLE t(id INTEGER)").connection.commit()
        p = run_ingesta(["collect", "--set", "DB_TYPE=sqlite", "--set", f"SQLITE_PATH={src}",
                         "--set", f"SPOOL_DIR={d}/spool", "--set", f"S3_BUCKET=file://{d}/b"],
                        env=ingesta_env({"INGESTA_FAILPOINT": "run.after_lock"}), timeout=60)
        return p.returncode == -signal.SIGKILL
    finally:
        subprocess.run(["rm", "-rf", d])


def compiled_failpoints():
    """Every FAILPOINT("name") in the C sources, {name: [file:line, ...]}."""
    out = collections.defaultdict(list)
    for sub in ("common", "collector", "spool", "uploader"):
        for dirpath, _, files in os.walk(os.path.join(SOURCE_ROOT, sub)):
            for f in files:
                if not f.endswith(".c"):
                    continue
                path = os.path.join(dirpath, f)
                for i, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                    for m in re.finditer(r'\bFAILPOINT\("([^"]+)"\)', line):
                        if "#define" not in line:
                            out[m.group(1)].append(f"{os.path.relpath(path, SOURCE_ROOT)}:{i}")
    return dict(out)


# ------------------------------------------------------------------ sources


def words(rng, n):
    """n bytes of random, poorly compressible ASCII text."""
    alphabet = string.ascii_letters + string.digits + " "
    return "".join(rng.choice(alphabet) for _ in range(n))


def make_sqlite(path, tables):
    """tables: {name: rows} or {name: (rows, text_bytes)}; each row is
    (id INTEGER PRIMARY KEY first, then text). Returns {name: set(ids)}."""
    db = sqlite3.connect(path)
    ids = {}
    for name, spec in tables.items():
        rows, width = spec if isinstance(spec, tuple) else (spec, 0)
        q = '"' + name.replace('"', '""') + '"'
        db.execute(f"CREATE TABLE {q}(id INTEGER PRIMARY KEY, v TEXT, note TEXT, amount REAL)")
        if width:
            db.execute(f"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < {rows - 1}) "
                       f"INSERT INTO {q} SELECT i, 'v' || i, substr(hex(randomblob({width})) || "
                       f"lower(hex(randomblob({width}))), 1, {width}), i * 0.5 FROM c")
        elif rows:
            db.execute(f"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < {rows - 1}) "
                       f"INSERT INTO {q} SELECT i, 'value ' || i || ' \u00e9', "
                       f"CASE WHEN i % 5 = 0 THEN NULL ELSE hex(randomblob(8)) END, i * 0.25 FROM c")
        ids[name] = set(range(rows))
    db.commit()
    db.close()
    return ids


# ------------------------------------------------------------------ buckets


class FileBucket:
    """A file:// bucket directory."""

    def __init__(self, root):
        self.root = root
        self.url = "file://" + root

    def keys(self):
        out = {}
        if not os.path.isdir(self.root):
            return out
        for d, dirs, files in os.walk(self.root):
            for name in files:
                rel = os.path.relpath(os.path.join(d, name), self.root)
                out[rel] = os.path.getsize(os.path.join(d, name))
        return out

    def get(self, key):
        with open(os.path.join(self.root, key), "rb") as f:
            return f.read()

    def leftovers(self):
        tmp = os.path.join(self.root, ".ingesta-tmp")
        return [os.path.join(".ingesta-tmp", f) for f in os.listdir(tmp)] if os.path.isdir(tmp) else []


def s3_client():
    import boto3
    from botocore.config import Config
    env = servers_env()
    return boto3.client("s3", endpoint_url=env["MINIO_ENDPOINT"],
                        aws_access_key_id=env["MINIO_ROOT_USER"],
                        aws_secret_access_key=env["MINIO_ROOT_PASSWORD"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 5},
                                      s3={"addressing_style": "path"}))


def s3_available():
    """(True, '') when the binary has S3 support and MinIO answers."""
    try:
        env = servers_env()
    except TestFailure as exc:
        return False, str(exc)
    try:
        s3_client().list_buckets()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"MinIO at {env.get('MINIO_ENDPOINT')} not answering: {exc}"
    return True, ""


class S3Bucket:
    """A bucket in MinIO, read with boto3 directly (never through a proxy)."""

    def __init__(self, name, create=True):
        self.name = name
        self.url = name
        self.c = s3_client()
        self.ghosts = set()  # MinIO's ghost uploads seen by leftovers() (is_ghost_upload)
        if create:
            self.c.create_bucket(Bucket=name)

    def keys(self):
        out = {}
        for page in self.c.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def get(self, key):
        return self.c.get_object(Bucket=self.name, Key=key)["Body"].read()

    def leftovers(self):
        """Open multipart uploads, except MinIO's ghosts (see is_ghost_upload), which
        are counted in self.ghosts."""
        ups = []
        for page in self.c.get_paginator("list_multipart_uploads").paginate(Bucket=self.name):
            for u in page.get("Uploads", []):
                if self.is_ghost_upload(u["Key"], u["UploadId"]):
                    self.ghosts.add(f"{u['Key']} {u['UploadId'][:12]}")
                else:
                    ups.append(f"multipart upload {u['Key']} {u['UploadId'][:12]}")
        return ups

    def is_ghost_upload(self, key, upload_id):
        """MinIO keeps listing an upload whose CompleteMultipartUpload was cut off by
        the client (kill -9, a dropped connection) after the object was committed:
        it shows in the bucket-wide ListMultipartUploads only. The server itself
        says it does not exist (ListParts: NoSuchUpload; the listing with
        prefix=key, the one the uploader's sweep uses, omits it; Abort answers 204
        and leaves it listed). True only when all of that holds and the object at
        the key is there: nothing a client can abort, and no part of it is lost
        (tests/servers/minio_ghost_upload.py reproduces it without ingesta)."""
        try:
            self.c.list_parts(Bucket=self.name, Key=key, UploadId=upload_id)
            return False  # a live upload
        except self.c.exceptions.NoSuchUpload:
            pass
        except Exception as exc:  # noqa: BLE001 - only a clear NoSuchUpload counts
            if "NoSuchUpload" not in str(exc):
                return False
        per_key = self.c.list_multipart_uploads(Bucket=self.name, Prefix=key).get("Uploads", [])
        if any(u["UploadId"] == upload_id for u in per_key):
            return False
        try:
            self.c.head_object(Bucket=self.name, Key=key)
        except Exception:  # noqa: BLE001 - no object: not the ghost of a completed upload
            return False
        return True

    def destroy(self):
        try:
            for page in self.c.get_paginator("list_multipart_uploads").paginate(Bucket=self.name):
                for u in page.get("Uploads", []):
                    self.c.abort_multipart_upload(Bucket=self.name, Key=u["Key"], UploadId=u["UploadId"])
            keys = list(self.keys())
            for i in range(0, len(keys), 1000):
                self.c.delete_objects(Bucket=self.name, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
            self.c.delete_bucket(Bucket=self.name)
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass


_decoded = {}
_verified = {}


def decode(data):
    """NDJSON text of an object's bytes (zstd frames decompressed with the CLI)."""
    h = hashlib.sha256(data).hexdigest()
    if h in _decoded:
        return _decoded[h]
    if data[:4] == b"\x28\xb5\x2f\xfd":
        p = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True)
        check(p.returncode == 0, f"object is not valid zstd: {p.stderr[:200]!r}")
        text = p.stdout
    else:
        text = data
    _decoded[h] = text
    if len(_decoded) > 4000:
        _decoded.clear()
    return text


# ------------------------------------------------------------------ verifier


class Figures:
    def __init__(self):
        self.rows = self.objects = self.lost = self.dups = self.corrupt = 0
        self.partitions = self.runs = self.commits = 0

    def add(self, other, fields=None):
        """Add other's counts (all of them, or just `fields`) to these."""
        for k in fields or vars(other):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def __str__(self):
        return (f"{self.runs} runs, {self.partitions} table partitions ({self.commits} commit "
                f"records), {self.objects} objects and "
                f"{self.rows} rows checked, rows lost {self.lost}, duplicates {self.dups}, "
                f"corrupt objects {self.corrupt}")


def spool_rows(spool):
    db = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        runs = [dict(r) for r in db.execute("SELECT * FROM runs")]
        parts = [dict(r) for r in db.execute("SELECT * FROM partitions")]
        segs = [dict(r) for r in db.execute("SELECT * FROM segments")]
    finally:
        db.close()
    return runs, parts, segs


def check_spool_clean(spool, allow_locks=()):
    """No temporary files, no unrecorded data files, no stale run locks."""
    tmp = os.listdir(os.path.join(spool, "tmp"))
    check(tmp == [], f"temporary files left in {spool}/tmp: {tmp[:5]}")
    _, _, segs = spool_rows(spool)
    recorded = {s["path"] for s in segs if s["file_deleted_at"] is None}
    on_disk = {"data/" + f for f in os.listdir(os.path.join(spool, "data"))}
    check(on_disk <= recorded, f"orphan files in {spool}/data: {sorted(on_disk - recorded)[:5]}")
    locks = set(os.listdir(os.path.join(spool, "locks"))) - {"uploader.lock"} - set(allow_locks)
    runs, _, _ = spool_rows(spool)
    running = {f"run-{r['run_id']}.lock" for r in runs if r["state"] == "running"}
    check(not (locks & running), f"runs still 'running' with their lock: {sorted(locks & running)[:5]}")
    # A collector killed after creating its run lock but before inserting the
    # run row, or after marking its run complete/failed but before unlinking
    # the lock, leaves a lock file that no recovery removes (recovery only
    # looks at `running` runs; RELIABILITY.md, known issues). Harmless (an
    # empty file), so counted and tolerated here.
    orphan_locks = len(locks)
    for d, dirs, files in os.walk(spool):
        for name in dirs + files:
            p = os.path.join(d, name)
            mode = os.stat(p).st_mode & 0o777
            want = 0o700 if os.path.isdir(p) else 0o600
            check(mode == want, f"{p} has mode {mode:o}, want {want:o}")
    return orphan_locks


def verify(spools, bucket, expected, all_uploaded=True, allow_failed=False):
    """The whole contract, for every run recorded in `spools` (a list of spool
    dirs) that targets `bucket` (a FileBucket or S3Bucket).

    expected: {table: set(ids)} of the sources. Checks: every object in the
    bucket is a recorded uploaded segment or the manifest of a complete
    partition (no stray keys); each object's bytes hash to the spool record;
    each complete partition's objects hold its table's ids exactly once (each
    run separately); partitions that are not complete have nothing in the
    bucket; every run that completed has every table; no run is left
    `running`; manifests list exactly the partition's files; no temporary
    objects / open multipart uploads. Returns the Figures of this check (the
    whole bucket: call it again after more runs for the new totals).
    """
    fig = Figures()
    keys = bucket.keys()
    seg_by_key, part_by_id, manifests = {}, {}, {}
    runs_all = {}
    for spool in spools:
        runs, parts, segs = spool_rows(spool)
        for r in runs:
            if r["bucket"] == bucket.url:
                runs_all[r["run_id"]] = r
        for p in parts:
            if p["run_id"] in runs_all:
                part_by_id[(spool, p["id"])] = p
        for s in segs:
            if s["bucket"] != bucket.url:
                continue
            check(s["key"] not in seg_by_key, f"key {s['key']} recorded twice")
            seg_by_key[s["key"]] = (spool, s)
    running = [r for r in runs_all.values() if r["state"] == "running"]
    check(not running, f"runs left 'running': {[r['run_id'] for r in running]}")
    states = collections.Counter(s["state"] for _, s in seg_by_key.values())
    if all_uploaded:
        bad = {k: v for k, v in states.items() if k != "uploaded" and not (allow_failed and k == "failed")}
        check(not bad, f"segments not uploaded at the end: {dict(states)}")
    # Group segments per partition.
    segs_of = collections.defaultdict(list)
    for key, (spool, s) in seg_by_key.items():
        segs_of[(spool, s["partition_id"])].append(s)
    commits = {}
    for pid, p in part_by_id.items():
        if p["state"] != "complete":
            continue
        commits[commit_key(runs_all[p["run_id"]], p["table_name"])] = pid
        if p.get("manifest_key"):
            manifests[p["manifest_key"]] = pid  # recorded at partition begin (empty tables too)
            continue
        if not segs_of.get(pid):
            continue
        first = sorted(segs_of[pid], key=lambda s: s["seq"])[0]["key"]
        mkey = (first.rsplit("/", 1)[0] + "/" if "/" in first else "") + f"_manifest-{p['run_id']}.json"
        manifests[mkey] = pid
    # Stray keys.
    for k in keys:
        if k in seg_by_key:
            spool, s = seg_by_key[k]
            check(s["state"] == "uploaded" or (s["state"] in ("uploading", "sealed", "failed")),
                  f"object {k} exists but its segment is {s['state']}")
            continue
        check(k in manifests or k in commits, f"stray object in the bucket: {k}")
    # Per complete partition: rows exactly once, bytes as recorded.
    for pid, p in part_by_id.items():
        segs = sorted(segs_of.get(pid, []), key=lambda s: s["seq"])
        table = p["table_name"]
        if p["state"] != "complete":
            present = [s["key"] for s in segs if s["key"] in keys]
            check(not present, f"partial table in the bucket: run {p['run_id']} table {table} "
                               f"is not complete but has {present[:3]}")
            continue
        fig.partitions += 1
        if not all(s["state"] == "uploaded" for s in segs):
            check(not all_uploaded or allow_failed,
                  f"run {p['run_id']} table {table}: segments {[s['state'] for s in segs]}")
            continue
        check(len(segs) == p["segments"], f"run {p['run_id']} table {table}: {len(segs)} segments "
                                          f"recorded, partition says {p['segments']}")
        ids = collections.Counter()
        for s in segs:
            check(s["key"] in keys, f"uploaded segment missing from the bucket: {s['key']}")
            fig.objects += 1
            # Objects are immutable once written (conditional writes): one
            # that was downloaded and checked before, with the same size now,
            # is not downloaded again.
            memo = _verified.get((bucket.url, s["key"]))
            if memo and memo[0] == s["sha256"] and keys[s["key"]] == s["bytes"]:
                ids.update(memo[1])
                continue
            data = bucket.get(s["key"])
            if hashlib.sha256(data).hexdigest() != s["sha256"] or len(data) != s["bytes"]:
                fig.corrupt += 1
                raise TestFailure(f"{s['key']}: bytes differ from the spool record "
                                  f"(sha256 {hashlib.sha256(data).hexdigest()[:16]} vs {s['sha256'][:16]})")
            obj_ids = collections.Counter()
            for line in decode(data).splitlines():
                row = json.loads(line)
                obj_ids[row["id"] if "id" in row else row["_id"]] += 1
            check(sum(obj_ids.values()) == s["rows"],
                  f"{s['key']}: {sum(obj_ids.values())} lines, spool says {s['rows']}")
            _verified[(bucket.url, s["key"])] = (s["sha256"], obj_ids)
            ids.update(obj_ids)
        want = expected.get(table)
        check(want is not None, f"unexpected table {table} in run {p['run_id']}")
        lost = len(want - set(ids))
        dups = sum(c - 1 for c in ids.values() if c > 1)
        extra = len(set(ids) - want)
        fig.rows += sum(ids.values())
        fig.lost += lost
        fig.dups += dups
        check(lost == 0 and dups == 0 and extra == 0,
              f"run {p['run_id']} table {table}: {lost} rows lost, {dups} duplicates, {extra} unknown ids")
        # The manifest describes exactly these files.
        if segs and p["manifest_state"] == "written":
            mkey = [k for k, v in manifests.items() if v == pid][0]
            check(mkey in keys, f"manifest {mkey} missing")
            m = json.loads(bucket.get(mkey))
            check([f["key"] for f in m["files"]] == [s["key"] for s in segs] and
                  [f["sha256"] for f in m["files"]] == [s["sha256"] for s in segs] and
                  m["rows"] == len(want), f"manifest {mkey} does not match the partition")
        elif segs and all_uploaded:
            raise TestFailure(f"run {p['run_id']} table {table}: uploaded but no manifest written")
        # The commit record (docs/COMMIT_LOG.md): written once everything is.
        ckey = [k for k, v in commits.items() if v == pid][0]
        if ckey in keys:
            fig.commits += 1
            c = json.loads(bucket.get(ckey))
            check(c["run_id"] == p["run_id"] and c["table_name"] == table and
                  c["rows"] == len(want) and
                  [(o["key"], o["sha256"]) for o in c["objects"]] ==
                  [(s["key"], s["sha256"]) for s in segs],
                  f"commit record {ckey} does not match the partition")
        elif all_uploaded and p["manifest_state"] == "written":
            raise TestFailure(f"run {p['run_id']} table {table}: manifest written but no commit record")
    # The commit point: every object a commit record lists is in the bucket.
    for k in keys:
        if k in commits:
            for o in json.loads(bucket.get(k))["objects"]:
                check(o["key"] in keys, f"commit record {k} lists {o['key']}, not in the bucket")
    # Runs that completed hold every table.
    for r in runs_all.values():
        if r["state"] != "complete":
            continue
        fig.runs += 1
        tables = {p["table_name"] for p in part_by_id.values()
                  if p["run_id"] == r["run_id"] and p["state"] == "complete"}
        want_tables = {t for t in expected if expected_table_in_run(r, t, expected)}
        check(want_tables <= tables, f"run {r['run_id']} completed without tables {want_tables - tables}")
    left = bucket.leftovers()
    check(not left, f"leftovers in the bucket: {left[:5]}")
    return fig


def commit_key(run, table):
    """Where the uploader writes (run, table)'s commit record (docs/COMMIT_LOG.md)."""
    prefix = (json.loads(run.get("settings_json") or "{}").get("s3_prefix") or "").rstrip("/")
    day = time.strftime("year=%Y/month=%m/day=%d", time.gmtime(run["started_at"] / 1000))
    name = "_" if table in (".", "..") else table.replace("/", "_")
    return (prefix + "/" if prefix else "") + f"ingesta_runs/{day}/{run['run_id']}-{name}.json"


def expected_table_in_run(run, table, expected):
    """Hook for tests with several sources on one bucket: a table belongs to a
    run when its name starts with the run's source prefix ("src:table")."""
    src = getattr(expected, "source_of", None)
    if src is None:
        return True
    return src.get(table) == run["source"]


class Expected(dict):
    """{table: set(ids)} plus which source each table comes from."""

    def __init__(self, *a, id_field="id", **kw):
        super().__init__(*a, **kw)
        self.source_of = {}
        self.id_field = id_field

    def add(self, source, tables):
        for t, ids in tables.items():
            self[t] = ids
            self.source_of[t] = source


def status_json(cfg):
    p = run_ingesta(["status", "--config", cfg, "--json"], timeout=120)
    check(p.returncode == 0, f"status --json exited {p.returncode}: {p.stderr[-1000:]}")
    return json.loads(p.stdout)


def wait_for(pred, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TestFailure(f"timed out after {timeout} s waiting for {what}")


def seeded_random():
    seed = int(os.environ.get("RELIABILITY_SEED", str(int(time.time()))))
    print(f"random seed {seed} (RELIABILITY_SEED={seed} reproduces)")
    return random.Random(seed)


# ------------------------------------------------------------------ server sources
# MariaDB, PostgreSQL and FerretDB sources for the crash and failure tests,
# created and read back with their own clients (mariadb, psql, pymongo).

def _srv():
    return servers_env()


def mysql(db, text, timeout=600):
    env = _srv()
    args = ["mariadb", "--no-defaults", "-h", env["MARIADB_HOST"], "-P", env["MARIADB_PORT"],
            "-u", env["MARIADB_USER"], "--default-character-set=utf8mb4", "--batch", "--skip-column-names"]
    if db:
        args.append(db)
    p = subprocess.run(args, input=text.encode(), env=dict(os.environ, MYSQL_PWD=env["MARIADB_PASSWORD"]),
                       capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise TestFailure(f"mariadb client on {db}: {p.stderr.decode(errors='replace')[-1000:]}")
    return p.stdout.decode()


def psql(db, text, timeout=600):
    env = _srv()
    p = subprocess.run(["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-h", env["POSTGRESQL_HOST"], "-p", env["POSTGRESQL_PORT"],
                        "-U", env["POSTGRESQL_USER"], "-d", db, "-c", text],
                       env=dict(os.environ, PGPASSWORD=env["POSTGRESQL_PASSWORD"], PGCONNECT_TIMEOUT="10"),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise TestFailure(f"psql on {db}: {p.stderr[-1000:]}")
    return p.stdout


def mongo_client(port=None):
    import pymongo
    env = _srv()
    return pymongo.MongoClient(env["FERRETDB_HOST"], int(port or env["FERRETDB_PORT"]),
                               serverSelectionTimeoutMS=10000)


def _spec(spec):
    """A table spec: rows, or (rows, note width)."""
    return spec if isinstance(spec, tuple) else (spec, 24)


class ServerSource:
    """A throwaway database on one of the test servers: tables of (id, v, note)
    rows, the ids 0..n-1. One subclass per database (MysqlSource,
    PostgresSource, MongoSource), each knowing only its own server: how to
    create the database and a table, the collector settings, how to drop it.
    A new source adds one subclass with its `kind` (the DB_TYPE).

    ServerSource(kind, tables, prefix) builds the subclass for kind;
    ServerSource.existing(kind, name) wraps a database a test made itself.
    """

    kind = None
    id_field = "id"
    _kinds = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        ServerSource._kinds[cls.kind] = cls

    def __new__(cls, kind=None, tables=None, prefix="rel"):
        if cls is ServerSource and kind is not None:
            if kind not in ServerSource._kinds:
                raise ValueError(kind)
            cls = ServerSource._kinds[kind]
        return super().__new__(cls)

    def __init__(self, kind, tables, prefix="rel"):
        self.name = f"{prefix}_{os.urandom(4).hex()}"
        self.expected = {t: set(range(_spec(n)[0])) for t, n in tables.items()}
        self.create_database()
        for t, spec in tables.items():
            self.create_table(t, *_spec(spec))

    @classmethod
    def existing(cls, kind, name):
        src = super().__new__(cls._kinds[kind])
        src.name, src.expected = name, {}
        return src

    def settings(self, port=None):
        # Only reached by an instance made as ServerSource.__new__(ServerSource)
        # with .kind set by hand (older tests): the subclass says.
        return self._kinds[self.kind].settings(self, port)

    def drop(self):
        try:
            self.drop_database()
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass


class MysqlSource(ServerSource):
    kind = "mysql"

    def create_database(self):
        mysql(None, f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")

    def create_table(self, t, n, w):
        mysql(self.name, f"SET SESSION max_recursive_iterations = {n + 10};"
                         f"CREATE TABLE `{t}` (id BIGINT PRIMARY KEY, v VARCHAR(64), note TEXT);"
                         + (f"INSERT INTO `{t}` WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 "
                            f"FROM s WHERE i < {n - 1}) SELECT i, CONCAT('row-', i, ' \u00e9'), "
                            f"LEFT(REPEAT(MD5(i), {w // 32 + 1}), {w}) FROM s;" if n else ""))

    def settings(self, port=None):
        env = _srv()
        return {"DB_TYPE": "mysql", "MYSQL_HOST": env["MARIADB_HOST"],
                "MYSQL_PORT": str(port or env["MARIADB_PORT"]), "MYSQL_USER": env["MARIADB_USER"],
                "MYSQL_PASSWORD": env["MARIADB_PASSWORD"], "MYSQL_DATABASE": self.name}

    def drop_database(self):
        mysql(None, f"DROP DATABASE IF EXISTS `{self.name}`")


class PostgresSource(ServerSource):
    kind = "postgresql"

    def create_database(self):
        psql("postgres", f'CREATE DATABASE "{self.name}" OWNER "{_srv()["POSTGRESQL_USER"]}" ENCODING \'UTF8\'')

    def create_table(self, t, n, w):
        psql(self.name, f'CREATE TABLE "{t}" (id bigint PRIMARY KEY, v text, note text);'
                        + (f'INSERT INTO "{t}" SELECT g, \'row-\' || g || \' \u00e9\', '
                           f"left(repeat(md5(g::text), {w // 32 + 1}), {w}) "
                           f"FROM generate_series(0, {n - 1}) g;" if n else ""))

    def settings(self, port=None):
        env = _srv()
        return {"DB_TYPE": "postgresql", "POSTGRES_HOST": env["POSTGRESQL_HOST"],
                "POSTGRES_PORT": str(port or env["POSTGRESQL_PORT"]), "POSTGRES_USER": env["POSTGRESQL_USER"],
                "POSTGRES_PASSWORD": env["POSTGRESQL_PASSWORD"], "POSTGRES_DB": self.name}

    def drop_database(self):
        psql("postgres", f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class MongoSource(ServerSource):
    kind = "mongodb"
    id_field = "_id"

    def create_database(self):
        pass  # a MongoDB database exists once a collection does

    def create_table(self, t, n, w):
        c = mongo_client()
        try:
            coll = c[self.name][t]
            coll.insert_one({"_id": -1})  # creates the collection even when empty
            coll.delete_one({"_id": -1})
            for start in range(0, n, 2000):
                coll.insert_many([{"_id": i, "v": f"row-{i} \u00e9", "note": (f"{i:032x}" * (w // 32 + 1))[:w]}
                                  for i in range(start, min(n, start + 2000))], ordered=False)
        finally:
            c.close()

    def settings(self, port=None):
        env = _srv()
        return {"DB_TYPE": "mongodb", "MONGO_HOST": env["FERRETDB_HOST"],
                "MONGO_PORT": str(port or env["FERRETDB_PORT"]), "MONGO_DATABASE": self.name}

    def drop_database(self):
        c = mongo_client()
        try:
            c.drop_database(self.name)
        finally:
            c.close()


# ------------------------------------------------------------------ toxiproxy

class Toxiproxy:
    """One proxy through the toxiproxy server's HTTP API (urllib only)."""

    def __init__(self, name, upstream_port, upstream_host="127.0.0.1"):
        import socket
        env = _srv()
        self.api = env["TOXIPROXY_URL"]
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.name = f"{name}-{os.urandom(3).hex()}"
        self._call("POST", "/proxies", {"name": self.name, "listen": f"127.0.0.1:{self.port}",
                                        "upstream": f"{upstream_host}:{upstream_port}", "enabled": True})
        self.ntoxics = 0

    def _call(self, method, path, body=None):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            out = r.read()
        return json.loads(out) if out else None

    def toxic(self, kind, stream="downstream", toxicity=1.0, **attributes):
        self.ntoxics += 1
        name = f"{kind}_{stream}_{self.ntoxics}"
        self._call("POST", f"/proxies/{self.name}/toxics",
                   {"name": name, "type": kind, "stream": stream, "toxicity": toxicity,
                    "attributes": attributes})
        return name

    def clear(self):
        for t in self._call("GET", f"/proxies/{self.name}/toxics") or []:
            self._call("DELETE", f"/proxies/{self.name}/toxics/{t['name']}")

    def enable(self, on=True):
        self._call("POST", f"/proxies/{self.name}", {"enabled": on})

    def delete(self):
        try:
            self._call("DELETE", f"/proxies/{self.name}")
        except Exception:  # noqa: BLE001
            pass


def fault_proxy(upstream, rules=None, seed=None):
    import sys
    sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "servers"))
    from s3_fault_proxy import FaultProxy
    return FaultProxy(upstream, rules, seed=seed).start()


def s3_settings(bucket, endpoint=None):
    env = _srv()
    return {"S3_BUCKET": bucket, "S3_ENDPOINT": endpoint or env["MINIO_ENDPOINT"],
            "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"], "AWS_DEFAULT_REGION": "us-east-1"}
