#!/usr/bin/python3
"""S3 permanent errors: a clear reason in `ingesta status`, nothing partial
in the bucket, and `ingesta replay --all-failed` after the fix ships it all.

Against MinIO directly (real answers):
- missing bucket (NoSuchBucket), fixed by creating the bucket;
- wrong secret key (SignatureDoesNotMatch), fixed in the config;
- unknown access key id (InvalidAccessKeyId), fixed in the config.
Through tests/servers/s3_fault_proxy.py (answers MinIO cannot give to its
root user, or does not enforce):
- 403 AccessDenied on every request;
- wrong region (400 AuthorizationHeaderMalformed naming another region:
  MinIO without a configured region accepts any);
- ExpiredToken on every request (static credentials cannot expire; ingesta
  treats ExpiredToken as transient, so it must end `failed` after
  MAX_ATTEMPTS with the code shown), fixed by removing the fault.

Each: `upload --once` exits 5; `status --json` lists every segment `failed`
with the S3 code and a message naming the bucket and key; the human status
shows the code; neither shows the secret; no data object is in the bucket;
after the fix, replay + upload --once exit 0 and the bucket verifies.
"""
import os
import subprocess
import uuid

from ingesta_test import check, main, tempdir, write_config
from rel_common import (Expected, Figures, S3Bucket, expect_rc, fault_proxy, make_sqlite, run_ingesta,
                        s3_available, s3_settings, servers_env, status_json, verify, check_spool_clean)
import sys

WRONG_SECRET = "Wr0ng-Secret-" + uuid.uuid4().hex[:12]


def scenario(d, name, break_cfg, fix, want_code, extra=None, expect_msg=None):
    """break_cfg(settings) -> settings for the failing upload; fix(settings) -> fixed ones."""
    env = servers_env()
    bucket_name = f"rel-err-{name.lower()}-{uuid.uuid4().hex[:8]}"
    src = os.path.join(d, name + ".db")
    expected = Expected(make_sqlite(src, {"a": 300, "b": 2500}))
    spool = os.path.join(d, name + "-spool")
    base = {"DB_TYPE": "sqlite", "SQLITE_PATH": src, "SPOOL_DIR": spool, "SEGMENT_MAX_ROWS": "1000",
            "RETRY_BASE": "50ms", "RETRY_CAP": "200ms", "MAX_ATTEMPTS": "3"}
    base.update(s3_settings(bucket_name))
    base.update(extra or {})
    state = {"bucket": None, "proxy": None}
    try:
        bad = break_cfg(dict(base), state)
        cfg = write_config(os.path.join(d, name + "-bad.env"), bad)
        expect_rc(run_ingesta(["collect", "--config", cfg]), 0, f"{name}: collect")
        p = expect_rc(run_ingesta(["upload", "--once", "--config", cfg], timeout=300), 5, f"{name}: upload")
        st = status_json(cfg)
        failed = st["states"].get("failed", {}).get("segments", 0)
        check(failed == 4, f"{name}: status shows {failed} failed segments, want 4: {st['states']}")
        errs = st["recent_errors"]
        check(errs and all(e["code"] == want_code for e in errs),
              f"{name}: status errors {[(e['code'], e['message'][:80]) for e in errs]}, want {want_code}")
        msg = errs[0]["message"]
        check(bucket_name in msg and (expect_msg is None or expect_msg in msg),
              f"{name}: message does not name the bucket/cause: {msg}")
        human = run_ingesta(["status", "--config", cfg])
        check(want_code in human.stdout, f"{name}: human status lacks {want_code}:\n{human.stdout[-1500:]}")
        for text in (human.stdout, human.stderr, p.stderr, p.stdout, str(st)):
            check(WRONG_SECRET not in text and env["AWS_SECRET_ACCESS_KEY"] not in text,
                  f"{name}: a secret key appears in output")
        # Nothing of the data in the bucket (it may not even exist).
        b = S3Bucket(bucket_name, create=False)
        try:
            keys = b.keys()
        except Exception:  # noqa: BLE001 - NoSuchBucket
            keys = {}
        check(not keys, f"{name}: objects in the bucket after permanent errors: {list(keys)[:3]}")
        # The fix.
        good = fix(dict(bad), state)
        cfg2 = write_config(os.path.join(d, name + "-good.env"), good)
        r = expect_rc(run_ingesta(["replay", "--all-failed", "--config", cfg2]), 0, f"{name}: replay")
        expect_rc(run_ingesta(["upload", "--once", "--config", cfg2], timeout=300), 0,
                  f"{name}: upload after the fix")
        fig = verify([spool], S3Bucket(bucket_name, create=False), expected)
        check_spool_clean(spool)
        print(f"{name}: exit 5, status: {want_code} \"{msg[:150]}\"; replay: {r.stdout.strip()[:80]}; "
              f"after the fix {fig}", flush=True)
        return fig
    finally:
        if state["proxy"]:
            state["proxy"].stop()
        S3Bucket(bucket_name, create=False).destroy()


def via_proxy(fault):
    def brk(s, state):
        S3Bucket(s["S3_BUCKET"])
        state["proxy"] = fault_proxy(servers_env()["MINIO_ENDPOINT"], [{"fault": fault}])
        s["S3_ENDPOINT"] = state["proxy"].url
        return s

    def fix(s, state):
        state["proxy"].set_rules([])
        return s
    return brk, fix


def test():
    ok, why = s3_available()
    if not ok:
        print(f"SKIP: {why}")
        sys.exit(77)
    env = servers_env()
    d = tempdir("s3err")
    figs = []

    def create_later(s, state):
        return s

    def create_now(s, state):
        S3Bucket(s["S3_BUCKET"])
        return s

    def wrong_secret(s, state):
        S3Bucket(s["S3_BUCKET"])
        s["AWS_SECRET_ACCESS_KEY"] = WRONG_SECRET
        return s

    def right_secret(s, state):
        s["AWS_SECRET_ACCESS_KEY"] = env["AWS_SECRET_ACCESS_KEY"]
        s["AWS_ACCESS_KEY_ID"] = env["AWS_ACCESS_KEY_ID"]
        return s

    def unknown_key(s, state):
        S3Bucket(s["S3_BUCKET"])
        s["AWS_ACCESS_KEY_ID"] = "AKIANOSUCHKEY" + uuid.uuid4().hex[:6].upper()
        return s

    figs.append(scenario(d, "NoSuchBucket", create_later, create_now, "NoSuchBucket"))
    figs.append(scenario(d, "SignatureDoesNotMatch", wrong_secret, right_secret, "SignatureDoesNotMatch"))
    figs.append(scenario(d, "InvalidAccessKeyId", unknown_key, right_secret, "InvalidAccessKeyId"))
    figs.append(scenario(d, "AccessDenied", *via_proxy("403"), "AccessDenied"))
    figs.append(scenario(d, "WrongRegion", *via_proxy("region"), "AuthorizationHeaderMalformed",
                         expect_msg="eu-north-1"))
    figs.append(scenario(d, "ExpiredToken", *via_proxy("expired"), "ExpiredToken"))
    total = Figures()
    for f in figs:
        total.add(f, ("rows", "objects", "lost", "dups", "corrupt"))
    print(f"S3 permanent errors: {len(figs)} scenarios, {len(figs) * 4} segments failed with a clear "
          f"status and replayed, {total.objects} objects and {total.rows} rows checked, rows lost "
          f"{total.lost}, duplicates {total.dups}, corrupt objects {total.corrupt}")
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
