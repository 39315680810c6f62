#!/usr/bin/python3
"""SIGTERM during a multipart upload to real S3 (MinIO): the uploader stops
within a bound and exits 0; a restart resumes the same multipart upload, sends
only the parts not yet confirmed, and the object ends up exactly once with the
spooled bytes. Parts are slowed down by the project's fault proxy (`slow` rule)
so the signal lands mid-upload; results are checked with boto3.
"""
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import boto3
from botocore.config import Config

from ingesta_test import SOURCE_ROOT, check, clean_env, main, run, servers_env, spool_db, tempdir, write_config

sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "servers"))
from s3_fault_proxy import FaultProxy  # noqa: E402


def test():
    srv = servers_env()
    d = tempdir("sigterm-mpu")
    s3 = boto3.client("s3", endpoint_url=srv["S3_ENDPOINT"], aws_access_key_id=srv["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=srv["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    bucket = "ingesta-sigterm-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=bucket)
    src = os.path.join(d, "src.db")
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", ((i, os.urandom(600).hex()) for i in range(20000)))
    db.commit()
    db.close()
    proxy = FaultProxy(srv["S3_ENDPOINT"], [{"fault": "slow", "kinds": ["upload_part"], "p": 1.0,
                                             "delay": 1.5}])
    proxy.start()
    try:
        spool = os.path.join(d, "spool")
        cfg = write_config(os.path.join(d, "c.env"), {
            "DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "S3_BUCKET": bucket,
            "S3_ENDPOINT": f"http://127.0.0.1:{proxy.port}", "AWS_ACCESS_KEY_ID": srv["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": srv["AWS_SECRET_ACCESS_KEY"], "COMPRESSION": "none",
            "MULTIPART_THRESHOLD": "5M", "MULTIPART_PART_SIZE": "5M", "SEGMENT_MAX_BYTES": "64M",
            "UPLOAD_CONCURRENCY": "1"})
        run(["collect", "--config", cfg])
        (key, size, sha), = spool_db(spool).execute("SELECT key, bytes, sha256 FROM segments").fetchall()
        nparts = (size + 5 * 2**20 - 1) // (5 * 2**20)
        check(nparts >= 4, f"segment of {size} bytes: want several parts")
        up = subprocess.Popen([os.environ["INGESTA"], "upload", "--config", cfg], env=clean_env(),
                              stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while time.time() - t0 < 60:
            done = spool_db(spool).execute("SELECT count(*) FROM segment_parts").fetchone()[0]
            if done >= 1:
                break
            time.sleep(0.1)
        check(done >= 1, "no part confirmed within 60 s")
        up.send_signal(signal.SIGTERM)
        t1 = time.time()
        _, err = up.communicate(timeout=60)
        stop_s = time.time() - t1
        check(up.returncode == 0, f"uploader exit {up.returncode} after SIGTERM: {err[-1500:]}")
        st = spool_db(spool)
        parts_before = st.execute("SELECT count(*) FROM segment_parts").fetchone()[0]
        upload_id = st.execute("SELECT upload_id FROM segments").fetchone()[0]
        state = st.execute("SELECT state FROM segments").fetchone()[0]
        check(state == "sealed" and upload_id and 1 <= parts_before < nparts,
              f"after SIGTERM: state {state}, upload id {upload_id!r}, {parts_before}/{nparts} parts")
        proxy.set_rules([])
        p = run(["upload", "--once", "--config", cfg], timeout=300)
        check(f"parts_already_done={parts_before} " in p.stderr,
              f"restart did not resume after the {parts_before} confirmed parts: {p.stderr[-1500:]}")
        head = s3.head_object(Bucket=bucket, Key=key)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        check(hashlib.sha256(body).hexdigest() == sha and head["ETag"].endswith(f'-{nparts}"'),
              f"object differs from the spooled segment (etag {head['ETag']})")
        left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        check(not left, f"open multipart uploads left: {left}")
        print(f"SIGTERM mid-multipart: exit 0 in {stop_s:.2f} s with {parts_before}/{nparts} parts confirmed; "
              f"restart resumed upload {upload_id[:12]}..., object exact, no open uploads")

        # B: SIGTERM while CompleteMultipartUpload is in flight (held 2 s by
        # the proxy). The Complete is not cut short: the uploader records the
        # object and exits 0. (Cut off, it left the segment to a restart, and
        # MinIO kept listing the completed upload.)
        proxy.set_rules([{"fault": "slow", "kinds": ["complete"], "p": 1.0, "delay": 2.0}])
        run(["collect", "--config", cfg])
        (seg_id, key2), = spool_db(spool).execute(
            "SELECT id, key FROM segments WHERE state='sealed'").fetchall()
        up = subprocess.Popen([os.environ["INGESTA"], "upload", "--config", cfg], env=clean_env(),
                              stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        done = 0
        while time.time() - t0 < 120 and done < nparts:
            done = spool_db(spool).execute("SELECT count(*) FROM segment_parts WHERE segment_id=?",
                                           (seg_id,)).fetchone()[0]
            time.sleep(0.05)
        check(done == nparts, f"only {done}/{nparts} parts confirmed within 120 s")
        time.sleep(0.3)  # the Complete is on its way, held by the proxy
        up.send_signal(signal.SIGTERM)
        t1 = time.time()
        _, err = up.communicate(timeout=60)
        stop_s = time.time() - t1
        check(up.returncode == 0, f"uploader exit {up.returncode} after SIGTERM: {err[-1500:]}")
        state, = spool_db(spool).execute("SELECT state FROM segments WHERE id=?", (seg_id,)).fetchone()
        check(state == "uploaded", f"SIGTERM during Complete: segment {state}, want uploaded "
              f"(the Complete was cut short): {err[-1500:]}")
        head = s3.head_object(Bucket=bucket, Key=key2)
        check(head["ETag"].endswith(f'-{nparts}"'), f"object {key2}: etag {head['ETag']}")
        left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        check(not left, f"open multipart uploads left after a SIGTERM during Complete: {left}")
        print(f"SIGTERM during CompleteMultipartUpload: the Complete finished, exit 0 in {stop_s:.2f} s, "
              f"segment uploaded, no open uploads")
    finally:
        proxy.stop()
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=o["Key"])
    s3.delete_bucket(Bucket=bucket)
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
