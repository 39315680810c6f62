#!/usr/bin/python3
"""The container deployment, really run with podman (issue 14, parts 1 and 2).

1. Image: a Debian 12 base made without any registry (packaging/base-image.sh:
   debootstrap --variant=minbase from the mirror the host's apt uses, podman import,
   cached in $INGESTA_TEST_CACHE/base), then packaging/Dockerfile built with podman and
   --build-arg BASE_IMAGE=localhost/ingesta-base:bookworm (layers cached by podman).
   The image runs as uid 10001 with a read-only root filesystem and no capabilities.
2. Compose: packaging/compose.yaml, unchanged, with podman-compose and a small
   override (host networking to reach the test servers on 127.0.0.1); the original's
   single .env. The three one-shot collectors (MariaDB, PostgreSQL, FerretDB, loaded
   with test_original's tables) and the uploader share the spool volume; the uploader
   ships to MinIO through a toxiproxy proxy. Checked from outside with boto3 exactly as
   test_original checks its file:// buckets: 74 rows in 9 table prefixes in 3 buckets
   (plus the ingesta_runs/ commit log and the manifests), values equal to the sources.
3. Kill: the collectors run again with SEGMENT_MAX_ROWS=1 (74 one-row segments) while
   the proxy adds latency; the uploader container gets SIGKILL (podman kill -s KILL)
   with uploads in flight and is started again: every spool segment is in its bucket
   exactly once under its key with the spool's sha256, no object the spool does not
   know, rows equal to the sources, one manifest and one commit record per table.

Runs as root (podman's storage in /var/lib/containers); needs podman, podman-compose,
debootstrap (tests/servers/install-deps.sh) and the test servers (start.sh all).
"""
import datetime
import decimal
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_original as orig  # noqa: E402  the original's three sources and their data

from ingesta_test import COMMIT_LOG, SOURCE_ROOT, TestFailure, check, main, servers_env, tempdir  # noqa: E402

CACHE = os.environ.get("INGESTA_TEST_CACHE", os.path.expanduser("~/.cache/ingesta-test"))
BASE = "localhost/ingesta-base:bookworm"
IMAGE = "localhost/ingesta:deploy-test"
COMPOSE = os.path.join(SOURCE_ROOT, "packaging", "compose.yaml")
EXPECTED = {"ms1": {"users": 10, "orders": 15, "products": 12},
            "ms2": {"customers": 5, "invoices": 8, "payments": 6},
            "ms3": {"inventory": 6, "shipments": 7, "suppliers": 5}}
LAYOUT = re.compile(r"^[a-z]+/year=\d{4}/month=\d{2}/day=\d{2}/(\d{8}T\d{6}Z-[0-9a-f]{8}-\d{5}\.json\.zst"
                    r"|_manifest-\d{8}T\d{6}Z-[0-9a-f]{8}\.json)$")
ENV = dict(os.environ)  # podman's environment (CONTAINERS_CONF when this machine needs one)
T = {}  # phase -> seconds


def sh(args, timeout=900, env=None, check_rc=True, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or ENV, **kw)
    if check_rc and p.returncode != 0:
        raise TestFailure(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def timed(name, fn, *a):
    t = time.monotonic()
    out = fn(*a)
    T[name] = time.monotonic() - t
    return out


# ------------------------------------------------------------------ podman on this machine

def podman_config():
    """Use podman as configured; if a trivial container cannot start (this test machine:
    cgroups v1+v2 hybrid, which crun refuses, and a hard RLIMIT_NOFILE below podman's
    default ulimit), use runc and ulimits within the machine's hard limits instead."""
    if sh(["podman", "run", "--rm", "--network", "none", BASE, "true"], check_rc=False).returncode == 0:
        return "podman defaults"
    import resource
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 16384)
    conf = os.path.join(CACHE, "base", "containers.conf")
    with open(conf, "w") as f:
        f.write("# written by tests/integration/test_containers.py for this machine\n"
                f"[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n"
                "[engine]\nruntime = \"runc\"\n")
    ENV["CONTAINERS_CONF"] = conf
    p = sh(["podman", "run", "--rm", "--network", "none", BASE, "true"], check_rc=False)
    check(p.returncode == 0, f"podman cannot run a container here even with runc: {p.stderr[-2000:]}")
    return f"runc, ulimits nofile={nofile} nproc={nproc} (CONTAINERS_CONF={conf})"


COMPOSE_VERSION = "1.0.6"
COMPOSE_VENV = os.path.join(CACHE, "compose-venv")
PODMAN_COMPOSE = os.path.join(COMPOSE_VENV, "bin", "podman-compose")


def ensure_compose():
    """podman-compose from PyPI (pinned) in a venv in the cache: Debian 12's 1.0.3 ignores
    network_mode (it always adds --net <project>_default, which podman refuses beside
    --network host)."""
    if os.path.exists(PODMAN_COMPOSE):
        v = sh([PODMAN_COMPOSE, "--version"], check_rc=False).stdout
        if COMPOSE_VERSION in v:
            return f"podman-compose {COMPOSE_VERSION} (cached venv)"
    shutil.rmtree(COMPOSE_VENV, ignore_errors=True)
    sh(["/usr/bin/python3", "-m", "venv", COMPOSE_VENV])
    sh([os.path.join(COMPOSE_VENV, "bin", "pip"), "install", "-q", f"podman-compose=={COMPOSE_VERSION}"])
    return f"podman-compose {COMPOSE_VERSION} (installed into {COMPOSE_VENV})"


def build_base():
    p = sh(["bash", os.path.join(SOURCE_ROOT, "packaging", "base-image.sh"), BASE], timeout=1800)
    return p.stderr.strip().splitlines()[-1]


def build_image():
    sh(["podman", "build", "-q", "--build-arg", f"BASE_IMAGE={BASE}", "-f",
        os.path.join(SOURCE_ROOT, "packaging", "Dockerfile"), "-t", IMAGE, SOURCE_ROOT], timeout=1800)
    sh(["podman", "image", "prune", "-f"])  # the build stage's untagged image
    info = json.loads(sh(["podman", "image", "inspect", IMAGE]).stdout)[0]
    check(info["Config"]["User"] == "ingesta", f"image user {info['Config'].get('User')}")
    out = sh(["podman", "run", "--rm", "--read-only", "--cap-drop", "ALL", "--security-opt",
              "no-new-privileges:true", "--network", "none", "--entrypoint", "/bin/sh", IMAGE, "-c",
              "id -u; ingesta version; touch /x 2>/dev/null && echo rw || echo ro"]).stdout.split()
    check(out[0] == "10001" and out[1] == "ingesta" and out[-1] == "ro", f"image run: {out}")
    base = json.loads(sh(["podman", "image", "inspect", BASE]).stdout)[0]["Size"]
    return info["Size"], base


# ------------------------------------------------------------------ helpers

class Proxy:
    """A toxiproxy proxy in front of MinIO (the uploader's S3_ENDPOINT)."""

    def __init__(self, srv):
        self.api = srv["TOXIPROXY_URL"]
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.name = "deploy-s3-" + os.urandom(3).hex()
        self.call("POST", "/proxies", {"name": self.name, "listen": f"127.0.0.1:{self.port}",
                                       "upstream": f"127.0.0.1:{srv['MINIO_PORT']}", "enabled": True})

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.api + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            out = r.read()
        return json.loads(out) if out else None

    def latency(self, ms):
        self.call("POST", f"/proxies/{self.name}/toxics",
                  {"name": "slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                   "attributes": {"latency": ms, "jitter": ms // 4}})

    def clear(self):
        for t in self.call("GET", f"/proxies/{self.name}/toxics") or []:
            self.call("DELETE", f"/proxies/{self.name}/toxics/{t['name']}")

    def delete(self):
        try:
            self.call("DELETE", f"/proxies/{self.name}")
        except Exception:  # noqa: BLE001  cleanup only
            pass


def s3_client(srv):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=srv["MINIO_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id=srv["MINIO_ROOT_USER"],
                        aws_secret_access_key=srv["MINIO_ROOT_PASSWORD"],
                        config=Config(s3={"addressing_style": "path"}))


def list_keys(s3, bucket):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def ndjson(data, key):
    if key.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


class Deployment:
    def __init__(self, d, srv, proxy, buckets):
        self.d, self.srv, self.proxy, self.buckets = d, srv, proxy, buckets
        self.project = "ingesta-deploy-" + os.urandom(3).hex()
        self.uploader = f"{self.project}_uploader_1"
        self.volume = f"{self.project}_spool"
        self.env_file = os.path.join(d, ".env")
        self.override = os.path.join(d, "compose.test.yaml")
        self.write_files()
        self.env = dict(ENV, INGESTA_IMAGE=IMAGE, INGESTA_ENV_FILE=self.env_file)

    def write_files(self):
        srv = self.srv
        # The original deployment's single .env (only hosts, ports, buckets changed);
        # compose.yaml sets DB_TYPE and SOURCE_NAME per collector.
        with open(self.env_file, "w") as f:
            f.write(f"""# ingesta: the original .env
MYSQL_HOST={srv['MARIADB_HOST']}
MYSQL_PORT={srv['MARIADB_PORT']}
MYSQL_USER={srv['MARIADB_USER']}
MYSQL_PASSWORD={srv['MARIADB_PASSWORD']}
MYSQL_DATABASE={orig.DB}
POSTGRES_HOST={srv['POSTGRESQL_HOST']}
POSTGRES_PORT={srv['POSTGRESQL_PORT']}
POSTGRES_USER={srv['POSTGRESQL_USER']}
POSTGRES_PASSWORD={srv['POSTGRESQL_PASSWORD']}
POSTGRES_DB={orig.DB}
MONGO_HOST={srv['FERRETDB_HOST']}
MONGO_PORT={srv['FERRETDB_PORT']}
MONGO_DATABASE={orig.DB}
MONGO_AUTH_SOURCE=admin
S3_BUCKET_MS1={self.buckets['ms1']}
S3_BUCKET_MS2={self.buckets['ms2']}
S3_BUCKET_MS3={self.buckets['ms3']}
AWS_ACCESS_KEY_ID={srv['MINIO_ROOT_USER']}
AWS_SECRET_ACCESS_KEY={srv['MINIO_ROOT_PASSWORD']}
AWS_DEFAULT_REGION=us-east-1
S3_ENDPOINT=http://127.0.0.1:{self.proxy.port}
INGESTION_INTERVAL=0
ENABLE_PARTITIONING=true
LOG_LEVEL=INFO
""")
        # The test servers listen on the host's 127.0.0.1: host networking. One upload
        # at a time, so that the kill finds a queue of uploads not done yet.
        with open(self.override, "w") as f:
            f.write("services:\n" + "".join(
                f"  {s}:\n    network_mode: host\n" for s in
                ("collect-mysql", "collect-postgresql", "collect-mongodb")) +
                "  uploader:\n    network_mode: host\n    environment:\n"
                "      UPLOAD_CONCURRENCY: \"1\"\n")

    def compose(self, *args, timeout=600, check_rc=True):
        return sh([PODMAN_COMPOSE, "--no-ansi", "-p", self.project, "-f", COMPOSE, "-f", self.override]
                  + list(args), timeout=timeout, env=self.env, check_rc=check_rc)

    def collect_all(self, extra_env=()):
        """The three one-shot collectors, started together like the original's cron."""
        extra = [a for kv in extra_env for a in ("-e", kv)]
        procs = {}
        for name, svc in (("ms1", "collect-mysql"), ("ms2", "collect-postgresql"),
                          ("ms3", "collect-mongodb")):
            procs[name] = subprocess.Popen(
                [PODMAN_COMPOSE, "--no-ansi", "-p", self.project, "-f", COMPOSE, "-f", self.override,
                 "run", "--rm"] + extra + [svc], env=self.env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
        out = {}
        for name, p in procs.items():
            text, _ = p.communicate(timeout=600)
            check(p.returncode == 0, f"{name} collector container failed ({p.returncode}):\n{text[-3000:]}")
            tables = len(EXPECTED[name])
            rows = sum(EXPECTED[name].values())
            m = re.search(r'msg="(extraction complete: [^"]*)"', text)
            check(m and m.group(1).startswith(f"extraction complete: {tables} tables, {rows} rows -> ")
                  and m.group(1).endswith(self.buckets[name]), f"{name} summary: {m and m.group(1)}\n{text[-2000:]}")
            out[name] = m.group(1)
        return out

    def status(self):
        p = sh(["podman", "exec", self.uploader, "ingesta", "status", "--json"], check_rc=False)
        return json.loads(p.stdout) if p.returncode in (0, 6) and p.stdout.strip() else None

    def wait_uploaded(self, timeout=300):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.status()
            if st:
                s = {k: v["segments"] for k, v in st["states"].items()}
                c = st["commit_records"]
                busy = s["pending"] + s["sealed"] + s["uploading"]
                if busy == 0 and c["waiting"] == 0:
                    check(s["failed"] == 0 and s["quarantined"] == 0 and c["failed"] == 0,
                          f"uploader status: {st}")
                    return st
            time.sleep(0.5)
        raise TestFailure(f"uploads not done after {timeout} s: {st}")

    def spool_db(self):
        mp = sh(["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", self.volume]).stdout.strip()
        return os.path.join(mp, "spool", "spool.db")

    def spool_segments(self):
        db = sqlite3.connect(f"file:{self.spool_db()}?mode=ro", uri=True)
        try:
            return db.execute("SELECT bucket, key, sha256, rows, state, run_id, table_name FROM segments"
                              ).fetchall()
        finally:
            db.close()

    def down(self):
        self.compose("down", "-t", "30", check_rc=False, timeout=300)
        sh(["podman", "rm", "-f", self.uploader], check_rc=False)
        sh(["podman", "volume", "rm", "-f", self.volume], check_rc=False)


# ------------------------------------------------------------------ the checks

def check_buckets(s3, buckets, runs):
    """test_original's check on S3: 74 rows per run in 9 table prefixes in 3 buckets."""
    got, keys = {}, {}
    total, prefixes = 0, set()
    for name, tables in EXPECTED.items():
        bucket = buckets[name]
        keys[name] = list_keys(s3, bucket)
        data = [k for k in keys[name] if not k.startswith(COMMIT_LOG + "/")]
        tops = {k.split("/")[0] for k in data}
        check(tops == set(tables), f"{name}: table prefixes {sorted(tops)}")
        for k in data:
            check(LAYOUT.match(k), f"{name}: key {k} does not follow the partition layout")
        manifests = [k for k in data if "/_manifest-" in k]
        check(len(manifests) == runs * len(tables), f"{name}: {len(manifests)} manifests for {runs} runs")
        recs = [json.loads(get(s3, bucket, k)) for k in keys[name] if k.startswith(COMMIT_LOG + "/")]
        check(sorted(r["table_name"] for r in recs) == sorted(list(tables) * runs)
              and all(r["rows"] == tables[r["table_name"]] for r in recs),
              f"{name}: commit records {[(r['run_id'], r['table_name'], r['rows']) for r in recs]}")
        for table, n in tables.items():
            by_run = {}
            for k in data:
                if k.startswith(table + "/") and k.endswith(".json.zst"):
                    run = k.rsplit("/", 1)[1][:25]
                    by_run.setdefault(run, []).extend(ndjson(get(s3, bucket, k), k))
            check(len(by_run) == runs, f"{name}.{table}: {len(by_run)} runs, want {runs}")
            for run, rows in by_run.items():
                ids = [r.get("id", r.get("_id")) for r in rows]
                check(len(rows) == n and len(set(ids)) == n,
                      f"{name}.{table} run {run}: {len(rows)} rows ({len(set(ids))} distinct), want {n}")
                total += n
            got[table] = {r.get("id", r.get("_id")): r for r in by_run[sorted(by_run)[-1]]}
            prefixes.add(table)
    check(total == 74 * runs and len(prefixes) == 9, f"{total} rows in {len(prefixes)} prefixes")
    return got, keys


def check_values(got, client):
    """Values against each source's own client (as test_original)."""
    for line in orig.mysql("SELECT id, balance, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s') FROM users",
                           orig.DB).splitlines():
        i, bal, ts = line.split("\t")
        r = got["users"][int(i)]
        check(decimal.Decimal(repr(r["balance"])) == decimal.Decimal(bal) and r["created_at"] == ts,
              f"users {i}: {r} vs {line}")
    check(got["products"][3]["attrs"] == {"color": "c3", "dims": [3, 2.5]}, "MySQL JSON nests")
    for line in orig.psql("SELECT id, amount::text, to_char(issued_at AT TIME ZONE 'UTC', "
                          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), paid FROM invoices", orig.DB).splitlines():
        i, amount, ts, paid = line.split("|")
        r = got["invoices"][int(i)]
        check(decimal.Decimal(repr(r["amount"])) == decimal.Decimal(amount) and r["issued_at"] == ts
              and r["paid"] == (paid == "t"), f"invoices {i}: {r} vs {line}")
    for doc in client[orig.DB].suppliers.find():
        r = got["suppliers"][doc["_id"]]
        check(r["name"] == doc["name"] and r["rating"] == doc["rating"] and r["contact"] == doc["contact"],
              f"suppliers {doc['_id']}: {r} vs {doc}")
    check(got["inventory"][1]["updated"] == "2025-10-01T09:00:00Z", f"BSON date: {got['inventory'][1]}")


def check_spool_vs_buckets(s3, dep, keys):
    """Every spool segment in its bucket under its key with its sha256; nothing else."""
    segs = dep.spool_segments()
    check(all(s[4] == "uploaded" for s in segs), f"segments not uploaded: {[s for s in segs if s[4] != 'uploaded']}")
    want = {(s[0], s[1]): s[2] for s in segs}
    have = set()
    for name, bucket in dep.buckets.items():
        for k in keys[name]:
            if k.endswith(".json.zst"):
                have.add((bucket, k))
    check(set(want) == have, f"spool vs buckets: missing {sorted(set(want) - have)[:5]}, "
          f"unknown {sorted(have - set(want))[:5]}")
    for (bucket, key), sha in want.items():
        check(hashlib.sha256(get(s3, bucket, key)).hexdigest() == sha, f"{bucket}/{key}: sha256 differs")
    return len(segs)


# ------------------------------------------------------------------ the test

def test():
    srv = servers_env()
    orig.SRV = srv
    for tool in ("podman", "debootstrap"):
        check(shutil.which(tool), f"{tool} missing: run tests/servers/install-deps.sh")
    t0 = time.monotonic()
    compose_how = timed("compose", ensure_compose)
    base_msg = timed("base", build_base)
    how = podman_config()
    size, base_size = timed("image", build_image)
    print(f"image: {IMAGE} {size / 1e6:.0f} MB (base {BASE} {base_size / 1e6:.0f} MB; {base_msg}); "
          f"runs as uid 10001, read-only root, no capabilities; podman: {how}; "
          f"base {T['base']:.1f} s, build {T['image']:.1f} s")

    d = tempdir("containers")
    s3 = s3_client(srv)
    tag = os.urandom(3).hex()
    buckets = {n: f"raw-{n}-data-bgc-{tag}" for n in EXPECTED}
    for b in buckets.values():
        s3.create_bucket(Bucket=b)
    proxy = Proxy(srv)
    client = orig.load_sources()
    dep = Deployment(d, srv, proxy, buckets)
    try:
        # The deployment: uploader up (restart: unless-stopped), then the collectors.
        t = time.monotonic()
        dep.compose("up", "-d", "--no-build", "uploader")
        summaries = dep.collect_all()
        for name, line in summaries.items():
            print(f"{name}: {line}")
        dep.wait_uploaded()
        T["deploy"] = time.monotonic() - t
        got, keys = check_buckets(s3, buckets, runs=1)
        check_values(got, client)
        user = sh(["podman", "exec", dep.uploader, "id", "-u"]).stdout.strip()
        ro = sh(["podman", "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", dep.uploader]).stdout.strip()
        check(user == "10001" and ro == "true", f"uploader runs as {user}, read-only {ro}")
        print(f"compose ({compose_how}): 3 one-shot collector containers + 1 uploader container, one spool volume -> "
              f"MinIO: 74 rows in 9 table prefixes in 3 buckets ({sum(len(k) for k in keys.values())} "
              f"objects incl. manifests and {COMMIT_LOG}/), values equal to the sources; "
              f"{T['deploy']:.1f} s")

        # The kill: 74 one-row segments, a slow S3, SIGKILL with uploads in flight.
        t = time.monotonic()
        proxy.latency(250)
        before = sum(len(k) for k in keys.values())
        dep.collect_all(["SEGMENT_MAX_ROWS=1"])
        segs = dep.spool_segments()
        total = len(segs)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(1 for s in dep.spool_segments() if s[4] == "uploaded")
            if done >= (total - 9) // 4 + 9:
                break
            time.sleep(0.2)
        states = {}
        for s in dep.spool_segments():
            states[s[4]] = states.get(s[4], 0) + 1
        sh(["podman", "kill", "-s", "KILL", dep.uploader])
        sh(["podman", "wait", dep.uploader], timeout=60, check_rc=False)
        killed_at = time.monotonic()
        exit_code = sh(["podman", "inspect", "--format", "{{.State.ExitCode}}", dep.uploader]).stdout.strip()
        check(exit_code == "137", f"uploader exit code after SIGKILL: {exit_code}")
        in_bucket = sum(len(list_keys(s3, b)) for b in buckets.values()) - before
        check(states.get("uploaded", 0) < total, f"the kill came too late: {states}")
        time.sleep(3)
        state = sh(["podman", "inspect", "--format", "{{.State.Status}}", dep.uploader]).stdout.strip()
        restarted_by = "restart policy" if state == "running" else "podman start"
        if state != "running":
            sh(["podman", "start", dep.uploader])
        proxy.clear()
        dep.wait_uploaded()
        resumed = time.monotonic() - killed_at
        T["kill"] = time.monotonic() - t
        got, keys = check_buckets(s3, buckets, runs=2)
        check_values(got, client)
        n = check_spool_vs_buckets(s3, dep, keys)
        check(sh(["podman", "exec", dep.uploader, "ingesta", "status", "--check"], check_rc=False).returncode == 0,
              "status --check after the restart")
        print(f"kill: second collection with SEGMENT_MAX_ROWS=1 -> {total} segments; SIGKILL "
              f"(exit 137) with {states} and {in_bucket} new objects in the buckets; {restarted_by} "
              f"again, all uploaded {resumed:.1f} s later: {n} spool segments = the data objects in "
              f"the buckets (same keys, same sha256, none unknown), 2 x 74 rows, no row twice, "
              f"2 x 9 manifests and commit records; {T['kill']:.1f} s")
    finally:
        if os.environ.get("INGESTA_TEST_KEEP"):
            print(f"kept: project {dep.project}, {d}")
        else:
            dep.down()
            for b in buckets.values():
                try:
                    for k in list_keys(s3, b):
                        s3.delete_object(Bucket=b, Key=k)
                    s3.delete_bucket(Bucket=b)
                except Exception as exc:  # noqa: BLE001  cleanup only
                    print(f"cleanup {b}: {exc}")
            proxy.delete()
            orig.drop_sources(client)
            shutil.rmtree(d, ignore_errors=True)
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in T.items())
          + f"; total {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(test)
