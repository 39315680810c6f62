#!/usr/bin/python3
"""The Debian package, installed on a fresh Debian 12 (issue 14, part 3).

The root: a podman container from the local debootstrapped base (packaging/base-image.sh,
cached; host networking for apt and the test servers). In it:
1. apt-get install ./ingesta_<this tree>.deb creates the system user ingesta (home
   /var/lib/ingesta, nologin) and /var/lib/ingesta 0700 ingesta:ingesta, upload.env 0640
   root:ingesta; `ingesta demo`, then a collect (the PostgreSQL test server) and an
   upload (MinIO) run as ingesta, checked from outside with boto3; systemd-analyze verify
   on every unit (systemd installed in the container for it).
2. apt-get remove stops nothing that runs here, removes the binary and units, keeps the
   configuration, the user and the spool; apt-get purge removes /etc/ingesta and keeps
   the user and the spool (README "Installing", packaging/deb/postrm).
3. Upgrade, in a second fresh container: the previous package version (built from the
   last commit before schema/002_lake.sql, cached) collects into a spool at schema
   version 1 and does not upload; apt-get install of this tree's package upgrades it;
   the spool is kept, the next upload migrates it to the current schema version and
   ships the old version's segments (same keys) with the sources' rows.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_containers as tc  # noqa: E402  podman on this machine, the local base
import test_original as orig  # noqa: E402  the PostgreSQL tables of the original

from ingesta_test import SOURCE_ROOT, TestFailure, check, main, servers_env, tempdir  # noqa: E402

APT = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0"]
T = {}


def build_debs(d):
    """This tree's package, and the previous version's (cached by commit)."""
    t = time.monotonic()
    p = tc.sh(["bash", os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"), os.path.join(d, "new")])
    new = p.stdout.strip().splitlines()[-1]
    T["build new deb"] = time.monotonic() - t
    git = ["git", "-C", SOURCE_ROOT]
    added = tc.sh(git + ["log", "--diff-filter=A", "--format=%H", "--", "schema/002_lake.sql"],
                  check_rc=False).stdout.split()
    check(added, "no commit adding schema/002_lake.sql in this clone's history (shallow clone?)")
    old_commit = tc.sh(git + ["rev-parse", added[-1] + "~1"]).stdout.strip()
    cache = os.path.join(tc.CACHE, "deb-previous", old_commit[:12])
    debs = [f for f in os.listdir(cache) if f.endswith(".deb")] if os.path.isdir(cache) else []
    t = time.monotonic()
    if not debs:
        src = os.path.join(d, "old-src")
        os.makedirs(src)
        archive = subprocess.run(git + ["archive", old_commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        tc.sh(["bash", os.path.join(src, "packaging", "build-deb.sh"), cache])
        debs = [f for f in os.listdir(cache) if f.endswith(".deb")]
    T["build previous deb"] = time.monotonic() - t
    return new, os.path.join(cache, debs[0]), old_commit


class Root:
    """A fresh Debian 12 root: a podman container from the local base."""

    def __init__(self, name, debdir):
        self.name = name
        archives = os.path.join(tc.CACHE, "base", "apt-archives")  # .debs, kept between runs
        os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
        tc.sh(["podman", "run", "-d", "--name", name, "--network", "host", "--hostname", name,
               "-v", f"{debdir}:/debs:ro", "-v", f"{archives}:/var/cache/apt/archives",
               tc.BASE, "sleep", "infinity"])
        # A Debian machine, not a slim image: man pages are installed (base-image.sh's
        # dpkg path-exclude for them goes).
        self.sh("rm -f /etc/dpkg/dpkg.cfg.d/ingesta-slim && apt-get update -q >/dev/null", timeout=300)

    def sh(self, script, timeout=600, check_rc=True, user=None):
        args = ["podman", "exec"] + (["--user", user] if user else []) + [self.name, "sh", "-ec", script]
        return tc.sh(args, timeout=timeout, check_rc=check_rc)

    def apt(self, *args):
        return tc.sh(["podman", "exec", self.name] + APT + list(args), timeout=900)

    def stat(self, path):
        out = self.sh(f"stat -c '%a %U %G' {path}", check_rc=False)
        return out.stdout.strip() if out.returncode == 0 else None

    def exists(self, path):
        return self.sh(f"test -e {path}", check_rc=False).returncode == 0

    def as_ingesta(self, cmd, timeout=300):
        return self.sh(f"runuser -u ingesta -- {cmd}", timeout=timeout)

    def spool_copy(self, dest):
        shutil.rmtree(dest, ignore_errors=True)
        tc.sh(["podman", "cp", f"{self.name}:/var/lib/ingesta/spool/.", dest])
        db = sqlite3.connect(os.path.join(dest, "spool.db"))
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            segs = db.execute("SELECT bucket, key, sha256, state FROM segments ORDER BY key").fetchall()
        finally:
            db.close()
        return version, segs

    def remove(self):
        tc.sh(["podman", "rm", "-f", "-t", "0", self.name], check_rc=False)


def config(srv, db, bucket):
    """A source's env file for the installed package (root:ingesta 0640, outside /etc/ingesta)."""
    return (f"DB_TYPE=postgresql\nSOURCE_NAME=ms2-postgresql\nPOSTGRES_HOST={srv['POSTGRESQL_HOST']}\n"
            f"POSTGRES_PORT={srv['POSTGRESQL_PORT']}\nPOSTGRES_USER={srv['POSTGRESQL_USER']}\n"
            f"POSTGRES_PASSWORD={srv['POSTGRESQL_PASSWORD']}\nPOSTGRES_DB={db}\nS3_BUCKET={bucket}\n"
            f"S3_ENDPOINT={srv['MINIO_ENDPOINT']}\nAWS_ACCESS_KEY_ID={srv['MINIO_ROOT_USER']}\n"
            f"AWS_SECRET_ACCESS_KEY={srv['MINIO_ROOT_PASSWORD']}\nAWS_DEFAULT_REGION=us-east-1\n"
            "SPOOL_DIR=/var/lib/ingesta/spool\nLOG_LEVEL=INFO\n")


def put_config(root, text):
    root.sh(f"mkdir -p /srv/ingesta && cat >/srv/ingesta/pg.env <<'EOF'\n{text}EOF\n"
            "chown root:ingesta /srv/ingesta/pg.env && chmod 0640 /srv/ingesta/pg.env")


def bucket_rows(s3, bucket):
    rows = {}
    for k in tc.list_keys(s3, bucket):
        if k.endswith(".json.zst"):
            rows.setdefault(k.split("/")[0], []).extend(tc.ndjson(tc.get(s3, bucket, k), k))
    return rows


WANT = {"customers": 5, "invoices": 8, "payments": 6}


def check_rows(s3, bucket, runs=1):
    rows = bucket_rows(s3, bucket)
    got = {t: len(r) for t, r in rows.items()}
    check(got == {t: n * runs for t, n in WANT.items()}, f"{bucket}: rows {got}")


def install_checks(root, new, srv, db, s3, bucket):
    t = time.monotonic()
    root.apt("install", f"/debs/{os.path.basename(new)}")
    T["install"] = time.monotonic() - t
    pw = root.sh("getent passwd ingesta").stdout.strip().split(":")
    check(pw[5] == "/var/lib/ingesta" and pw[6] == "/usr/sbin/nologin" and int(pw[2]) < 1000,
          f"user {pw}")
    check(root.stat("/var/lib/ingesta") == "700 ingesta ingesta", f"/var/lib/ingesta: {root.stat('/var/lib/ingesta')}")
    check(root.stat("/etc/ingesta/upload.env") == "640 root ingesta", "upload.env mode")
    check(not root.exists("/home/ingesta"), "a home directory was created")
    version = root.sh("ingesta version").stdout.strip()
    # The demo, as ingesta, in a directory of its own.
    demo = root.sh("runuser -u ingesta -- sh -c 'd=$(mktemp -d) && cd $d && ingesta demo 2>&1'").stdout
    check("extraction complete: 3 tables, 37 rows" in demo, f"demo as ingesta:\n{demo[-2000:]}")
    # A collect and an upload as ingesta into the package's /var/lib/ingesta/spool.
    put_config(root, config(srv, db, bucket))
    root.as_ingesta("ingesta collect --config /srv/ingesta/pg.env")
    root.as_ingesta("ingesta upload --once --config /srv/ingesta/pg.env")
    root.as_ingesta("ingesta status --check --no-uploader-check --config /srv/ingesta/pg.env")
    check_rows(s3, bucket)
    check(root.stat("/var/lib/ingesta/spool") == "700 ingesta ingesta", f"spool: {root.stat('/var/lib/ingesta/spool')}")
    check(root.exists("/usr/share/man/man1/ingesta.1.gz"), "no man page")
    # systemd-analyze verify on every unit (systemd is not in minbase; verify runs
    # `man` for Documentation=man:ingesta(1)).
    t = time.monotonic()
    root.apt("install", "--no-install-recommends", "systemd", "man-db")
    T["install systemd"] = time.monotonic() - t
    units = root.sh("ls /lib/systemd/system | grep '^ingesta'").stdout.split()
    check(sorted(units) == ["ingesta-collect@.service", "ingesta-collect@.timer", "ingesta-upload.service"],
          f"units {units}")
    p = root.sh("systemd-analyze verify /lib/systemd/system/ingesta-upload.service "
                "ingesta-collect@ms1-mysql.service ingesta-collect@ms1-mysql.timer 2>&1", check_rc=False)
    check(p.returncode == 0 and p.stdout.strip() == "", f"systemd-analyze verify: {p.returncode}\n{p.stdout}")
    return version


def remove_purge_checks(root):
    uid = root.sh("id -u ingesta").stdout.strip()
    root.apt("remove", "ingesta")
    check(not root.exists("/usr/bin/ingesta") and not root.exists("/lib/systemd/system/ingesta-upload.service"),
          "remove left the binary or a unit")
    check(root.exists("/etc/ingesta/upload.env"), "remove deleted the configuration")
    check(root.exists("/var/lib/ingesta/spool/spool.db") and root.sh("id -u ingesta").stdout.strip() == uid,
          "remove deleted the spool or the user")
    root.apt("purge", "ingesta")
    check(not root.exists("/etc/ingesta"), "/etc/ingesta left after purge")
    check(root.exists("/var/lib/ingesta/spool/spool.db"), "purge deleted the spool")
    check(root.stat("/var/lib/ingesta") == "700 ingesta ingesta", "purge changed /var/lib/ingesta")
    check(root.sh("id -u ingesta").stdout.strip() == uid, "purge deleted the user")
    state = root.sh("dpkg-query -W -f='${db:Status-Status}' ingesta 2>/dev/null || true").stdout.strip()
    check(state in ("", "not-installed"), f"dpkg state after purge: {state}")


def upgrade_checks(root, old, new, srv, db, s3, bucket, d):
    root.apt("install", f"/debs/{os.path.basename(old)}")
    old_version = root.sh("dpkg-query -W -f='${Version}' ingesta").stdout.strip()
    put_config(root, config(srv, db, bucket))
    root.as_ingesta("ingesta collect --config /srv/ingesta/pg.env")
    v1, segs1 = root.spool_copy(os.path.join(d, "spool-before"))
    check(v1 == 1 and segs1 and all(s[3] in ("sealed", "pending") for s in segs1),
          f"previous version's spool: schema {v1}, segments {segs1}")
    check(tc.list_keys(s3, bucket) == [], "the previous version uploaded already")
    uid = root.sh("id -u ingesta").stdout.strip()
    t = time.monotonic()
    root.apt("install", f"/debs/{os.path.basename(new)}")
    T["upgrade"] = time.monotonic() - t
    new_version = root.sh("dpkg-query -W -f='${Version}' ingesta").stdout.strip()
    check(new_version != old_version and root.sh(
        f"dpkg --compare-versions '{new_version}' gt '{old_version}'", check_rc=False).returncode == 0,
        f"versions {old_version} -> {new_version}")
    check(root.sh("id -u ingesta").stdout.strip() == uid, "the upgrade changed the user")
    check(root.stat("/var/lib/ingesta") == "700 ingesta ingesta", "the upgrade changed /var/lib/ingesta")
    v_kept, segs_kept = root.spool_copy(os.path.join(d, "spool-kept"))
    check(v_kept == 1 and segs_kept == segs1, "the upgrade itself touched the spool")
    root.as_ingesta("ingesta upload --once --config /srv/ingesta/pg.env")
    root.as_ingesta("ingesta status --check --no-uploader-check --config /srv/ingesta/pg.env")
    v2, segs2 = root.spool_copy(os.path.join(d, "spool-after"))
    check(v2 > 1, f"spool schema after the upgrade's first upload: {v2}")
    check([(b, k, h) for b, k, h, _ in segs2] == [(b, k, h) for b, k, h, _ in segs1]
          and all(s[3] == "uploaded" for s in segs2), f"segments after the upgrade: {segs2}")
    keys = [k for k in tc.list_keys(s3, bucket) if k.endswith(".json.zst")]
    check(sorted(keys) == sorted(k for _, k, _, _ in segs1), f"bucket keys {keys} vs spool {segs1}")
    for _, k, h, _ in segs1:
        check(hashlib.sha256(tc.get(s3, bucket, k)).hexdigest() == h, f"{k}: sha256 differs")
    check_rows(s3, bucket)
    return old_version, new_version, v1, v2, len(segs1)


def test():
    srv = servers_env()
    orig.SRV = srv
    t0 = time.monotonic()
    d = tempdir("deb-install")
    new, old, old_commit = build_debs(d)
    debdir = os.path.join(d, "debs")
    os.makedirs(debdir)
    shutil.copy(new, debdir)
    shutil.copy(old, debdir)
    t = time.monotonic()
    tc.build_base()
    how = tc.podman_config()
    T["base"] = time.monotonic() - t
    db = "deb_" + os.urandom(3).hex()
    orig.psql(f"CREATE DATABASE {db}", srv["POSTGRESQL_DATABASE"])
    orig.psql(orig.PG_SQL, db)
    s3 = tc.s3_client(srv)
    buckets = [f"ingesta-deb-{os.urandom(3).hex()}", f"ingesta-deb-upgrade-{os.urandom(3).hex()}"]
    for b in buckets:
        s3.create_bucket(Bucket=b)
    roots = []
    try:
        t = time.monotonic()
        root = Root(f"ingesta-deb-{os.urandom(3).hex()}", debdir)
        roots.append(root)
        T["fresh root"] = time.monotonic() - t
        version = install_checks(root, new, srv, db, s3, buckets[0])
        print(f"install: {os.path.basename(new)} on a fresh debootstrapped Debian 12 ({how}): user "
              f"ingesta (system, nologin, home /var/lib/ingesta), /var/lib/ingesta and spool 0700 "
              f"ingesta:ingesta, upload.env 0640 root:ingesta, man page; {version}; demo, collect (PostgreSQL) "
              f"and upload (MinIO, 19 rows) as ingesta; systemd-analyze verify clean on 3 units")
        remove_purge_checks(root)
        print("remove: binary and units gone, configuration, user and spool kept; purge: /etc/ingesta "
              "gone, user and spool (/var/lib/ingesta 0700) kept, as README says")
        root2 = Root(f"ingesta-deb-up-{os.urandom(3).hex()}", debdir)
        roots.append(root2)
        old_v, new_v, v1, v2, nseg = upgrade_checks(root2, old, new, srv, db, s3, buckets[1], d)
        print(f"upgrade: {old_v} (commit {old_commit[:7]}) -> {new_v}: user and spool kept; the "
              f"{nseg} segments the previous version collected (schema {v1}) uploaded by the new one "
              f"after migrating the spool to schema {v2}, same keys and sha256, 19 rows")
    finally:
        for r in roots:
            r.remove()
        for b in buckets:
            try:
                for k in tc.list_keys(s3, b):
                    s3.delete_object(Bucket=b, Key=k)
                s3.delete_bucket(Bucket=b)
            except Exception as exc:  # noqa: BLE001  cleanup only
                print(f"cleanup {b}: {exc}")
        try:
            orig.psql(f"DROP DATABASE IF EXISTS {db}", srv["POSTGRESQL_DATABASE"])
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: {exc}")
        shutil.rmtree(d, ignore_errors=True)
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in T.items())
          + f"; total {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(test)
