#!/usr/bin/python3
"""EC2 instance-role credentials, refreshed during a long upload, against real S3.

MinIO's STS (AssumeRole) issues real temporary credentials (access key, secret,
session token). tests/servers/fake_metadata.py serves them through the IMDSv2
protocol with a short Expiration, so ingesta must fetch new ones several times
while one `upload --once` ships ~1,500 segments. Success proves: the chain
reaches IMDS when nothing else is configured, the token flow works, the session
token is signed in (MinIO rejects the keys without it), refresh happens before
expiry, and no upload fails across a refresh. Checked with boto3.
"""
import json
import os
import re
import sqlite3
import subprocess
import time

import boto3
from botocore.config import Config

from ingesta_test import SOURCE_ROOT, check, clean_env, main, run, servers_env, tempdir, write_config

SEGMENTS = 1500
EXPIRE = 2  # seconds: refresh at half the lifetime, so about every second


def test():
    srv = servers_env()
    d = tempdir("imds")
    s3 = boto3.client("s3", endpoint_url=srv["S3_ENDPOINT"], aws_access_key_id=srv["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=srv["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    sts = boto3.client("sts", endpoint_url=srv["S3_ENDPOINT"], aws_access_key_id=srv["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=srv["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    sets = []
    for i in range(3):
        c = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/ingesta-test",
                            RoleSessionName=f"ingesta-imds-{i}", DurationSeconds=900)["Credentials"]
        sets.append({"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                     "Token": c["SessionToken"]})
    creds_file = os.path.join(d, "sts.json")
    with open(creds_file, "w") as f:
        json.dump(sets, f)
    bucket = "ingesta-imds-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=bucket)

    src = os.path.join(d, "src.db")
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"value {i}") for i in range(SEGMENTS * 2)))
    db.commit()
    db.close()

    log = os.path.join(d, "imds.log")
    fake = subprocess.Popen(["/usr/bin/python3", os.path.join(SOURCE_ROOT, "tests/servers/fake_metadata.py"),
                             "--port", "0", "--expire-seconds", str(EXPIRE), "--creds-file", creds_file,
                             "--log", log], stdout=subprocess.PIPE, text=True)
    try:
        port = int(fake.stdout.readline().split()[1])
        cfg = write_config(os.path.join(d, "c.env"), {
            "DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": os.path.join(d, "spool"),
            "S3_BUCKET": bucket, "S3_ENDPOINT": srv["S3_ENDPOINT"], "SEGMENT_MAX_ROWS": "2",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}",
            "UPLOAD_CONCURRENCY": "1", "AWS_SHARED_CREDENTIALS_FILE": os.path.join(d, "none"),
            "AWS_CONFIG_FILE": os.path.join(d, "none")})
        env = clean_env({"HOME": d})
        run(["collect", "--config", cfg], env=env)
        t0 = time.time()
        p = run(["upload", "--once", "--config", cfg], env=env, timeout=600)
        took = time.time() - t0
        fetches = sum(1 for line in open(log) if re.match(r"GET /latest/meta-data/iam/security-credentials/\S+ 200", line))
        tokens = sum(1 for line in open(log) if line.startswith("PUT /latest/api/token 200"))
        check("imds" in p.stderr, "the credentials source logged is not IMDS")
        check(fetches >= 2 and took > EXPIRE, f"{fetches} credential fetches in {took:.1f} s: no refresh observed")
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        data = [k for k in keys if "/_manifest" not in k and not k.startswith("ingesta_runs/")]
        check(len(data) == SEGMENTS, f"{len(data)} objects, want {SEGMENTS}")
        st = json.loads(run(["status", "--json", "--config", cfg], env=env).stdout)
        check(st["states"]["uploaded"]["segments"] == SEGMENTS and st["states"]["failed"]["segments"] == 0,
              f"status: {st['states']}")
        print(f"IMDSv2 role credentials (MinIO STS, {EXPIRE} s fake expiry): {SEGMENTS} segments uploaded in "
              f"{took:.1f} s with {fetches} credential fetches and {tokens} IMDS tokens, 0 failures")
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    for k in keys:
        s3.delete_object(Bucket=bucket, Key=k)
    s3.delete_bucket(Bucket=bucket)
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
