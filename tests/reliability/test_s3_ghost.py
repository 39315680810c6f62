#!/usr/bin/python3
"""MinIO's ghost uploads, and the check that tells them from real orphans.

A CompleteMultipartUpload cut off by its client (kill -9 of the uploader, a
dropped connection) after MinIO committed the object can leave the upload in
the bucket-wide ListMultipartUploads for good, although ListParts answers
NoSuchUpload, the listing with prefix=key omits it and AbortMultipartUpload
answers 204 and leaves it listed. crash_s3 and s3_faults kill the uploader
during Completes (more often with parallel parts, whose last ones finish
together), so their "no open multipart uploads" check must not count these,
and must still count every live upload.

Without ingesta (boto3 and a raw socket): (1) a live upload, with or without
parts, is never taken for a ghost; (2) Completes are cut off right after the
request was sent, up to GHOST_TRIES times, until MinIO leaves a ghost; each
ghost must be classified as one (an upload MinIO cleaned up is not listed at
all). A MinIO without the bug makes no ghost: reported, not a failure.
"""
import hashlib
import os
import random
import socket
import sys
import time
import uuid
from urllib.parse import urlparse

from ingesta_test import check, main
from rel_common import S3Bucket, s3_available, servers_env

TRIES = int(os.environ.get("GHOST_TRIES", "40"))


def cut_complete(bucket, key, upload_id, parts, rng):
    """Send a signed CompleteMultipartUpload and close the socket unread."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    env = servers_env()
    body = ("<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts) +
        "</CompleteMultipartUpload>").encode()
    url = f"{env['MINIO_ENDPOINT']}/{bucket}/{key}?uploadId={upload_id}"
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    SigV4Auth(Credentials(env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]), "s3",
              "us-east-1").add_auth(req)
    u = urlparse(url)
    head = (f"POST {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: {len(body)}\r\n" +
            "".join(f"{k}: {v}\r\n" for k, v in req.headers.items()) + "\r\n")
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(head.encode() + body)
        time.sleep(rng.uniform(0, 0.01))


def test():
    ok, why = s3_available()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(77)
    rng = random.Random()
    b = S3Bucket(f"rel-ghost-{uuid.uuid4().hex[:8]}")
    c = b.c
    data = os.urandom(5 << 20)
    try:
        # (1) Live uploads are never ghosts, with or without an object at the key.
        c.put_object(Bucket=b.name, Key="live-over-object", Body=b"x")
        for key in ("live-empty", "live-with-part", "live-over-object"):
            uid = c.create_multipart_upload(Bucket=b.name, Key=key)["UploadId"]
            if key != "live-empty":
                c.upload_part(Bucket=b.name, Key=key, UploadId=uid, PartNumber=1, Body=data)
            check(not b.is_ghost_upload(key, uid), f"a live upload at {key} taken for a ghost")
        check(len(b.leftovers()) == 3 and not b.ghosts, f"live uploads: {b.leftovers()}, ghosts {b.ghosts}")
        for u in c.list_multipart_uploads(Bucket=b.name).get("Uploads", []):
            c.abort_multipart_upload(Bucket=b.name, Key=u["Key"], UploadId=u["UploadId"])
        # (2) Completes cut off by their client.
        ghosts = committed = 0
        for i in range(TRIES):
            key = f"cut-{i}"
            uid = c.create_multipart_upload(Bucket=b.name, Key=key)["UploadId"]
            parts = [(n, c.upload_part(Bucket=b.name, Key=key, UploadId=uid, PartNumber=n, Body=data)["ETag"])
                     for n in (1, 2)]
            cut_complete(b.name, key, uid, parts, rng)
            t0 = time.time()
            while time.time() - t0 < 3:
                try:
                    c.head_object(Bucket=b.name, Key=key)
                    break
                except Exception:  # noqa: BLE001 - not committed (yet)
                    time.sleep(0.02)
            else:
                c.abort_multipart_upload(Bucket=b.name, Key=key, UploadId=uid)  # cut before the commit
                continue
            committed += 1
            time.sleep(0.5)
            listed = [u for u in c.list_multipart_uploads(Bucket=b.name).get("Uploads", [])
                      if u["UploadId"] == uid]
            if listed:
                check(b.is_ghost_upload(key, uid), f"upload {uid[:12]} of the committed {key}: "
                      f"listed and live after its Complete")
                c.abort_multipart_upload(Bucket=b.name, Key=key, UploadId=uid)
                still = any(u["UploadId"] == uid for u in
                            c.list_multipart_uploads(Bucket=b.name).get("Uploads", []))
                ghosts += 1
                print(f"ghost {ghosts}: {key}: listed after its committed Complete; ListParts NoSuchUpload, "
                      f"not under prefix=key; listed after an Abort (204): {still}")
                if ghosts >= 2:
                    break
        check(committed > 0, "no cut-off Complete committed its object")
        print(f"MinIO ghost uploads: {ghosts} in {i + 1} cut-off Completes ({committed} committed); "
              f"live uploads never classified as ghosts")
    finally:
        b.destroy()


if __name__ == "__main__":
    main(test)
