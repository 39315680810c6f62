#!/usr/bin/env python3
"""What each integrity check costs the S3 server (issue 12, part 4's profile).

The upload floor of bench.py (curl --parallel 4, UNSIGNED-PAYLOAD, no other
header) asks MinIO for no check at all. ingesta asks for Content-MD5,
x-amz-checksum-sha256 (or, until the server has echoed one, the signed
payload hash) and If-None-Match: *. On a machine where MinIO shares the cores
with the client, every hash the server computes is time taken from the
upload. This runs the same curl command with each check alone and with all
of them, in alternating rounds on the same files, and prints the median wall
time, MinIO's CPU seconds (from /proc) and the rate against the floor:

    bench/upload_checks.py [--files 64] [--size-mib 16] [--rounds 5]

Needs the test servers (tests/servers/start.sh; settings from
$INGESTA_TEST_RUN/env, default /tmp/ingesta-test-run/env) and curl >= 7.75
(--aws-sigv4). The files are random bytes in a scratch directory.
"""
import argparse
import base64
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

VARIANTS = [
    ("floor (no check)", ()),
    ("Content-MD5", ("md5",)),
    ("If-None-Match: *", ("cond",)),
    ("x-amz-checksum-sha256 (unsigned payload)", ("sha",)),
    ("signed payload (x-amz-content-sha256 = hash)", ("signed",)),
    ("all of ingesta's: MD5 + sha256 + If-None-Match", ("md5", "sha", "cond")),
]


def minio_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--size-mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    env = bench.servers_env()
    ep, key, secret = env["S3_ENDPOINT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    pid = int(subprocess.run(["pgrep", "-f", "minio server"], capture_output=True, text=True,
                             check=True).stdout.split()[0])
    s3 = bench.s3_client(env)
    work = tempfile.mkdtemp(prefix="ingesta-upload-checks-")
    files = []
    for n in range(args.files):
        path = os.path.join(work, f"seg-{n:05d}.json.zst")
        data = os.urandom(args.size_mib << 20)
        with open(path, "wb") as f:
            f.write(data)
        files.append((path, hashlib.md5(data).digest(), hashlib.sha256(data).digest()))
    results = {name: [] for name, _ in VARIANTS}
    try:
        for rnd in range(args.rounds):
            for vi, (name, checks) in enumerate(VARIANTS):
                bucket = f"bench-checks-{rnd}-{vi}"
                bench.s3_drop(s3, bucket)
                s3.create_bucket(Bucket=bucket)
                cfg = os.path.join(work, "curl.cfg")
                with open(cfg, "w") as f:
                    for i, (path, md5, sha) in enumerate(files):
                        if i:
                            f.write("next\n")
                        f.write(f'url = "{ep}/{bucket}/seg/{os.path.basename(path)}"\n'
                                f'upload-file = "{path}"\noutput = "/dev/null"\n'
                                f'user = "{key}:{secret}"\naws-sigv4 = "aws:amz:us-east-1:s3"\n'
                                "fail\nsilent\nshow-error\n")
                        payload = sha.hex() if "signed" in checks else "UNSIGNED-PAYLOAD"
                        f.write(f'header = "x-amz-content-sha256: {payload}"\n')
                        if "md5" in checks:
                            f.write(f'header = "Content-MD5: {base64.b64encode(md5).decode()}"\n')
                        if "sha" in checks:
                            f.write(f'header = "x-amz-checksum-sha256: {base64.b64encode(sha).decode()}"\n')
                        if "cond" in checks:
                            f.write('header = "If-None-Match: *"\n')
                os.sync()
                c0, t0 = minio_cpu(pid), time.monotonic()
                subprocess.run(["curl", "--parallel", "--parallel-max", "4", "-K", cfg], check=True)
                wall, cpu = time.monotonic() - t0, minio_cpu(pid) - c0
                objs = bench.s3_list(s3, bucket)
                if len(objs) != args.files:
                    sys.exit(f"{name}: {len(objs)} objects in {bucket}, wanted {args.files}")
                bench.s3_drop(s3, bucket)
                results[name].append((wall, cpu))
                print(f"upload_checks: round {rnd + 1} {name}: {wall:.2f} s, MinIO CPU {cpu:.2f} s",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = results[VARIANTS[0][0]]
    print(f"\n{args.files} x {args.size_mib} MiB, curl --parallel --parallel-max 4, {args.rounds} alternating rounds\n")
    print("| curl PUTs with | wall s median | MinIO CPU s median | rate vs floor (median of rounds) |")
    print("| --- | --- | --- | --- |")
    for name, _ in VARIANTS:
        r = results[name]
        ratio = statistics.median(f[0] / x[0] for f, x in zip(floor, r))
        print(f"| {name} | {statistics.median(x[0] for x in r):.2f} | "
              f"{statistics.median(x[1] for x in r):.2f} | {ratio:.2f} x |")


if __name__ == "__main__":
    main()
