#!/usr/bin/python3
"""Secrets stay secret, spool files stay private, TLS stays verified.

1. Known, unique secret values are configured (MYSQL_PASSWORD,
   POSTGRES_PASSWORD, a POSTGRES_DSN and a MONGO_URI with passwords,
   MONGO_PASSWORD, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
   AWS_CONTAINER_AUTHORIZATION_TOKEN) and runs are made to fail in ways that
   print configuration-related errors: wrong passwords, unreachable hosts and
   ports, malformed DSN/URI, secrets with line breaks, S3 rejecting the
   signature, plus a collector killed with SIGABRT/SIGSEGV mid-run (crash
   output). No secret may appear in stdout/stderr (logfmt and JSON, DEBUG
   level), LOG_FILE, `status`/`status --json`/`list --json` output,
   METRICS_FILE, spool.db (+ WAL) bytes or segment files.
2. Under `umask 000` every spool file is 0600 and every spool directory 0700
   (collect, upload, status, replay all run with that umask).
3. TLS: an HTTPS endpoint with a self-signed certificate is refused (the
   segments fail with a certificate error, nothing uploaded) unless
   S3_CA_FILE names its CA, or S3_INSECURE_SKIP_VERIFY=true, which logs a
   warning at every start of every command.
"""
import glob
import json
import os
import signal
import ssl
import subprocess
import time
import uuid

from ingesta_test import check, main, servers_env, tempdir, write_config
from rel_common import (Expected, S3Bucket, ServerSource, check_spool_clean, expect_rc, fault_proxy,
                        ingesta_env, make_sqlite, run_ingesta, s3_available, s3_settings, spawn, verify)

TAG = uuid.uuid4().hex[:10]
SECRETS = {
    "MYSQL_PASSWORD": f"MyPw-{TAG}-1",
    "POSTGRES_PASSWORD": f"PgPw-{TAG}-2",
    "MONGO_PASSWORD": f"MgPw-{TAG}-3",
    "AWS_SECRET_ACCESS_KEY": f"AwsSecret{TAG}xyzABC123/+4",
    "AWS_SESSION_TOKEN": f"AwsToken{TAG}FQoGZXIvYXdzE5",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": f"EcsAuth-{TAG}-6",
    "DSN_PW": f"DsnPw-{TAG}-7",
    "URI_PW": f"UriPw-{TAG}-8",
    "ECS_SECRET": f"Ecs{TAG}9",  # short: a JSON parser's "near '...'" context would quote it
}
SEEN = []  # (where, text) of every output checked


def leaks(text):
    if isinstance(text, bytes):
        return [k for k, v in SECRETS.items() if v.encode() in text]
    return [k for k, v in SECRETS.items() if v in text]


def scan(where, text):
    SEEN.append(where)
    found = leaks(text)
    check(not found, f"secret {found} appears in {where}")


def run_and_scan(what, args, env=None, timeout=120):
    p = run_ingesta(args, env=env, timeout=timeout)
    scan(f"{what}: stdout", p.stdout)
    scan(f"{what}: stderr", p.stderr)
    return p


def secret_sources(d):
    """Configs that fail in config-related ways, each with secrets set."""
    env = servers_env()
    src = os.path.join(d, "s.db")
    base = {"SPOOL_DIR": os.path.join(d, "spool"), "S3_BUCKET": "file://" + os.path.join(d, "bucket"),
            "SOURCE_CONNECT_TIMEOUT": "3", "LOG_LEVEL": "DEBUG",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRETS["AWS_SECRET_ACCESS_KEY"],
            "AWS_SESSION_TOKEN": SECRETS["AWS_SESSION_TOKEN"],
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": SECRETS["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
    my = {"DB_TYPE": "mysql", "MYSQL_HOST": env["MARIADB_HOST"], "MYSQL_PORT": env["MARIADB_PORT"],
          "MYSQL_USER": env["MARIADB_USER"], "MYSQL_PASSWORD": SECRETS["MYSQL_PASSWORD"],
          "MYSQL_DATABASE": env["MARIADB_DATABASE"]}
    pg = {"DB_TYPE": "postgresql", "POSTGRES_HOST": env["POSTGRESQL_HOST"], "POSTGRES_PORT": env["POSTGRESQL_PORT"],
          "POSTGRES_USER": env["POSTGRESQL_USER"], "POSTGRES_PASSWORD": SECRETS["POSTGRES_PASSWORD"],
          "POSTGRES_DB": env["POSTGRESQL_DATABASE"]}
    mg = {"DB_TYPE": "mongodb", "MONGO_HOST": "127.0.0.1", "MONGO_PORT": "1", "MONGO_USER": "someone",
          "MONGO_PASSWORD": SECRETS["MONGO_PASSWORD"], "MONGO_DATABASE": "x"}
    cases = [
        ("mysql wrong password", dict(my)),
        ("mysql closed port", dict(my, MYSQL_PORT="1")),
        ("mysql unresolvable host", dict(my, MYSQL_HOST="no-such-host.invalid")),
        ("postgres wrong password", dict(pg)),
        ("postgres closed port", dict(pg, POSTGRES_PORT="1")),
        ("postgres DSN wrong password", {"DB_TYPE": "postgresql", "POSTGRES_DSN":
                                         f"host={env['POSTGRESQL_HOST']} port={env['POSTGRESQL_PORT']} "
                                         f"user={env['POSTGRESQL_USER']} password={SECRETS['DSN_PW']} dbname=x"}),
        ("postgres DSN malformed", {"DB_TYPE": "postgresql", "POSTGRES_DSN":
                                    f"host=127.0.0.1 password={SECRETS['DSN_PW']} port=notanumber 'unterminated"}),
        ("postgres URI DSN unreachable", {"DB_TYPE": "postgresql", "POSTGRES_DSN":
                                          f"postgresql://u:{SECRETS['DSN_PW']}@127.0.0.1:1/db?connect_timeout=2"}),
        ("mongo closed port", dict(mg)),
        ("mongo URI unreachable", {"DB_TYPE": "mongodb", "MONGO_URI":
                                   f"mongodb://bob:{SECRETS['URI_PW']}@127.0.0.1:1/db?serverSelectionTimeoutMS=1500"}),
        ("mongo URI malformed", {"DB_TYPE": "mongodb", "MONGO_URI": f"mongodb://bob:{SECRETS['URI_PW']}@/x?=="}),
        ("mongo URI bad option", {"DB_TYPE": "mongodb", "MONGO_URI":
                                  f"mongodb://bob:{SECRETS['URI_PW']}@127.0.0.1:1/db?authMechanism=BOGUS"}),
        ("mysql password with a newline", dict(my, MYSQL_PASSWORD='"' + SECRETS["MYSQL_PASSWORD"] + '\\nx"')),
        ("bad port next to secrets", dict(my, MYSQL_PORT="33o6")),
    ]
    make_sqlite(src, {"t": 50})
    return base, cases, src


def test_secrets(d):
    base, cases, src = secret_sources(d)
    n = 0
    for fmt in ("logfmt", "json"):
        for name, settings in cases:
            s = dict(base, LOG_FORMAT=fmt)
            s.update(settings)
            cfg = write_config(os.path.join(d, "sec.env"), s)
            p = run_and_scan(f"{name} ({fmt})", ["collect", "--config", cfg], timeout=60)
            check(p.returncode in (2, 3), f"{name}: exit {p.returncode}: {p.stderr[-500:]}")
            n += 1
            # The same through LOG_FILE.
            if fmt == "logfmt":
                lf = os.path.join(d, "log.txt")
                s["LOG_FILE"] = lf
                cfg = write_config(os.path.join(d, "sec.env"), s)
                run_and_scan(f"{name} (LOG_FILE)", ["collect", "--config", cfg], timeout=60)
                if os.path.exists(lf):
                    scan(f"{name}: LOG_FILE", open(lf, "rb").read())
                    os.unlink(lf)
    # Operator commands over the spool these runs left, with the secrets configured.
    s = dict(base, DB_TYPE="sqlite", SQLITE_PATH=src)
    cfg = write_config(os.path.join(d, "ops.env"), s)
    for args in (["status"], ["status", "--json"], ["list", "--json"], ["list"], ["verify"], ["help-config"]):
        run_and_scan(" ".join(args), args + ["--config", cfg])
    print(f"secrets: {n} failing collects (logfmt and JSON, DEBUG), LOG_FILE, status/list/verify: "
          f"no secret in {len(SEEN)} outputs", flush=True)
    return n


def test_s3_secrets(d):
    """S3 rejects the signature / token: the status, list, metrics, logs and
    spool must not carry the secret key or the session token."""
    ok, why = s3_available()
    if not ok:
        print(f"S3 secrets: skipped ({why})")
        return 0
    bucket = S3Bucket(f"rel-sec-{TAG}")
    try:
        src = os.path.join(d, "s3.db")
        make_sqlite(src, {"t": 3000})
        spool = os.path.join(d, "s3-spool")
        metrics = os.path.join(d, "metrics.prom")
        logf = os.path.join(d, "up.log")
        s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "1000",
             "MAX_ATTEMPTS": "2", "RETRY_BASE": "50ms", "LOG_LEVEL": "DEBUG", "METRICS_FILE": metrics,
             "LOG_FILE": logf}
        s.update(s3_settings(bucket.name))
        s["AWS_SECRET_ACCESS_KEY"] = SECRETS["AWS_SECRET_ACCESS_KEY"]
        s["AWS_SESSION_TOKEN"] = SECRETS["AWS_SESSION_TOKEN"]
        cfg = write_config(os.path.join(d, "s3sec.env"), s)
        run_and_scan("collect (S3 secrets)", ["collect", "--config", cfg])
        p = run_and_scan("upload with a rejected signature", ["upload", "--once", "--config", cfg], timeout=120)
        check(p.returncode == 5, f"upload with a wrong secret: exit {p.returncode}")
        # The daemon writes the metrics file; run it briefly.
        up = spawn(["upload", "--config", cfg])
        time.sleep(3)
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)
        for args in (["status"], ["status", "--json"], ["list", "--json"], ["list", "--state", "failed"]):
            run_and_scan(" ".join(args), args + ["--config", cfg])
        for path in [metrics, logf] + glob.glob(os.path.join(spool, "spool.db*")) + \
                glob.glob(os.path.join(spool, "data", "*")):
            if os.path.isfile(path):
                scan(path, open(path, "rb").read())
        check(os.path.exists(metrics), "METRICS_FILE was not written")
        print(f"S3 secrets: rejected signature with a session token: no secret in logs, status, list, "
              f"metrics file, spool.db/WAL or segments", flush=True)
        return 1
    finally:
        bucket.destroy()


def test_broken_credentials_answer(d):
    """A container-credentials endpoint answering broken JSON that carries the
    secret key (cut off, or with a control character in it): the error in
    logs and `status` must not quote it."""
    import http.server
    import threading
    ok, why = s3_available()
    if not ok:
        print(f"broken credentials answer: skipped ({why})")
        return 0
    sk = SECRETS["ECS_SECRET"]
    bodies = [f'{{"AccessKeyId":"ASIAFAKE","SecretAccessKey":"{sk}',
              f'{{"AccessKeyId":"ASIAFAKE","SecretAccessKey":"{sk}\x01","Token":"t"}}',
              f'{{"AccessKeyId":"ASIAFAKE","SecretAccessKey":"{sk}","Token":"t","Expiration":"{sk}"']
    state = {"body": bodies[0]}

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            b = state["body"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    bucket = S3Bucket(f"rel-ecs-{TAG}")
    try:
        src = os.path.join(d, "ecs.db")
        make_sqlite(src, {"t": 100})
        n = 0
        for i, body in enumerate(bodies):
            state["body"] = body
            spool = os.path.join(d, f"ecs-spool-{i}")
            s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "S3_BUCKET": bucket.name,
                 "S3_ENDPOINT": servers_env()["MINIO_ENDPOINT"], "MAX_ATTEMPTS": "2", "RETRY_BASE": "50ms",
                 "LOG_LEVEL": "DEBUG", "AWS_EC2_METADATA_DISABLED": "true",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{srv.server_address[1]}/creds",
                 "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "1"}
            cfg = write_config(os.path.join(d, f"ecs-{i}.env"), s)
            run_and_scan("collect (ECS)", ["collect", "--config", cfg])
            p = run_and_scan(f"upload with a broken credentials answer #{i}", ["upload", "--once", "--config", cfg])
            check(p.returncode != 0, f"upload with broken credentials #{i} succeeded?")
            for args in (["status"], ["status", "--json"], ["list", "--json"]):
                run_and_scan(f"{' '.join(args)} (broken credentials #{i})", args + ["--config", cfg])
            for path in glob.glob(os.path.join(spool, "spool.db*")):
                scan(path, open(path, "rb").read())
            n += 1
        print(f"broken credentials answers: {n} malformed ECS answers carrying the secret key: not "
              f"quoted in logs, status or spool.db", flush=True)
        return n
    finally:
        srv.shutdown()
        bucket.destroy()


def test_crash_output(d):
    """A collector that crashes (SIGSEGV, SIGABRT) mid-run prints nothing secret."""
    env = servers_env()
    src = ServerSource("mysql", {"big": (200000, 100)}, prefix="relsec")
    try:
        n = 0
        for sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            s = src.settings()
            s.update({"SPOOL_DIR": os.path.join(d, "crash-spool"), "S3_BUCKET": "file://" + d + "/cb",
                      "LOG_LEVEL": "DEBUG", "AWS_SECRET_ACCESS_KEY": SECRETS["AWS_SECRET_ACCESS_KEY"],
                      "AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SESSION_TOKEN": SECRETS["AWS_SESSION_TOKEN"]})
            s["MYSQL_PASSWORD"] = env["MARIADB_PASSWORD"]
            cfg = write_config(os.path.join(d, "crash.env"), s)
            log = os.path.join(d, f"crash-{sig}.log")
            p = spawn(["collect", "--config", cfg], log=log)
            time.sleep(0.5)
            p.send_signal(sig)
            p.wait(timeout=60)
            scan(f"collector killed by {sig.name}", open(log, "rb").read())
            n += 1
        expect_rc(run_ingesta(["collect", "--config", cfg], timeout=300), 0, "collect after crashes")
        print(f"crash output: collector killed by SIGSEGV, SIGABRT, SIGBUS mid-table: no secret printed; "
              f"the next run recovers", flush=True)
        return n
    finally:
        src.drop()


def test_modes(d):
    """umask 000 for every command: spool files 0600, directories 0700."""
    src = os.path.join(d, "m.db")
    expected = Expected(make_sqlite(src, {"a": 500, "b": 3000}))
    spool = os.path.join(d, "umask-spool")
    from rel_common import FileBucket
    bucket = FileBucket(os.path.join(d, "umask-bucket"))
    cfg = write_config(os.path.join(d, "m.env"), {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool,
                                                  "S3_BUCKET": bucket.url, "SEGMENT_MAX_ROWS": "1000",
                                                  "RETENTION": "1h"})

    def run0(args):
        p = subprocess.run(["sh", "-c", 'umask 000 && exec "$@"', "sh", os.environ["INGESTA"]] + args,
                           env=ingesta_env(), capture_output=True, text=True, timeout=300)
        return p
    for args in (["collect", "--config", cfg], ["status", "--config", cfg], ["collect", "--config", cfg],
                 ["upload", "--once", "--config", cfg], ["replay", "--all-failed", "--config", cfg],
                 ["verify", "--config", cfg]):
        p = run0(args)
        check(p.returncode in (0,), f"umask 000 {args[0]}: exit {p.returncode}: {p.stderr[-500:]}")
        check_spool_clean(spool)  # checks 0600 / 0700 of everything under the spool
    # A killed collector under umask 000 leaves its tmp file private too.
    p = subprocess.Popen(["sh", "-c", 'umask 000 && exec "$@"', "sh", os.environ["INGESTA"], "collect",
                          "--config", cfg, "--set", "SEGMENT_MAX_ROWS=100"], env=ingesta_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = 0
    deadline = time.time() + 20
    while p.poll() is None and time.time() < deadline:
        for f in glob.glob(os.path.join(spool, "tmp", "*")) + glob.glob(os.path.join(spool, "data", "*")):
            try:
                mode = os.stat(f).st_mode & 0o777
            except FileNotFoundError:
                continue
            seen += 1
            check(mode == 0o600, f"{f} has mode {mode:o} while being written under umask 000")
        time.sleep(0.005)
    p.wait()
    files = sum(len(fs) + len(ds) for _, ds, fs in os.walk(spool))
    verify([spool], bucket, expected, all_uploaded=False)
    print(f"modes: 6 commands under umask 000, {files} spool files and directories all 0600/0700, "
          f"{seen} observations of files being written: 0600", flush=True)


def make_cert(d):
    key, crt = os.path.join(d, "tls.key"), os.path.join(d, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, crt


def test_tls(d):
    ok, why = s3_available()
    if not ok:
        print(f"TLS: skipped ({why})")
        return
    env = servers_env()
    key, crt = make_cert(d)
    fp = fault_proxy(env["MINIO_ENDPOINT"], [])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    fp.httpd.socket = ctx.wrap_socket(fp.httpd.socket, server_side=True)
    bucket = S3Bucket(f"rel-tls-{TAG}")
    try:
        src = os.path.join(d, "tls.db")
        expected = Expected(make_sqlite(src, {"t": 2000}))
        spool = os.path.join(d, "tls-spool")
        s = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "1000",
             "MAX_ATTEMPTS": "2", "RETRY_BASE": "50ms"}
        s.update(s3_settings(bucket.name, f"https://127.0.0.1:{fp.port}"))
        cfg = write_config(os.path.join(d, "tls.env"), s)
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, "collect")
        # Environment variables some TLS stacks read must not turn verification off.
        p = run_ingesta(["upload", "--once", "--config", cfg], env=ingesta_env(
            {"CURL_CA_BUNDLE": "", "PYTHONHTTPSVERIFY": "0", "GIT_SSL_NO_VERIFY": "1", "NODE_TLS_REJECT_UNAUTHORIZED": "0"}),
            timeout=120)
        check(p.returncode == 5, f"self-signed endpoint accepted (exit {p.returncode})")
        st = json.loads(run_ingesta(["status", "--json", "--config", cfg]).stdout)
        msg = st["recent_errors"][0]["message"] if st["recent_errors"] else ""
        check("certificate" in msg.lower() or "ssl" in msg.lower(), f"TLS failure not explained: {msg}")
        check(not bucket.keys(), "objects uploaded through an unverified TLS connection")
        # The CA file makes it work.
        s2 = dict(s, S3_CA_FILE=crt)
        cfg2 = write_config(os.path.join(d, "tls-ca.env"), s2)
        expect_rc(run_ingesta(["replay", "--all-failed", "--config", cfg2]), 0, "replay")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg2]), 0, "upload with S3_CA_FILE")
        verify([spool], bucket, expected)
        # Insecure: works, and warns at every start of every command.
        s3 = dict(s, S3_INSECURE_SKIP_VERIFY="true")
        cfg3 = write_config(os.path.join(d, "tls-insecure.env"), s3)
        warned = []
        for args in (["collect"], ["upload", "--once"], ["upload", "--once"], ["status"]):
            p = run_ingesta(args + ["--config", cfg3], timeout=120)
            check(p.returncode == 0, f"insecure {args}: exit {p.returncode}: {p.stderr[-500:]}")
            w = [ln for ln in p.stderr.splitlines() if "S3_INSECURE_SKIP_VERIFY" in ln and "level=warn" in ln]
            warned.append(bool(w))
        check(all(warned), f"S3_INSECURE_SKIP_VERIFY=true: warning missing at some starts: {warned}")
        fig = verify([spool], bucket, expected)
        print(f"TLS: self-signed endpoint refused (\"{msg[:120]}\"), accepted with S3_CA_FILE, and with "
              f"S3_INSECURE_SKIP_VERIFY=true with a warning at each of 4 starts; {fig}", flush=True)
    finally:
        fp.stop()
        bucket.destroy()


def test():
    d = tempdir("security")
    os.chmod(d, 0o755)
    n = test_secrets(d)
    n += test_s3_secrets(d)
    n += test_broken_credentials_answer(d)
    n += test_crash_output(d)
    test_modes(d)
    test_tls(d)
    print(f"security: {n} secret-exposing failures provoked, {len(SEEN)} outputs/files scanned for "
          f"{len(SECRETS)} secrets: 0 found; spool modes under umask 000 ok; TLS verification "
          f"cannot be turned off silently")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
