#!/usr/bin/python3
"""MongoDB source against a real MongoDB-wire server (FerretDB, tests/servers).

Loads tests/golden/mongodb.input.json with pymongo (bson.json_util, one
document per line, in order), runs `ingesta extract` and compares its stdout
byte for byte with mongodb.ndjson. The bson-only golden document is loaded field
by field: a field the server refuses or does not store faithfully (checked by
reading it back raw with pymongo) is reported and left to the unit test
(tests/unit/test_bson_json.c), every other field must come out as golden.
Then odd collection and field names, discovery order (byte order, system.*
skipped), a 200,000-document collection streamed in batches, and failures:
closed port, a server that never answers, credentials refused, MONGO_URI
credentials never printed, the connection cut in the
middle of a collection (a TCP proxy in this script resets it, so the shared
server keeps running).
"""
import json
import os
import socket
import threading
import time

import bson
import pymongo
from bson import json_util
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from ingesta_test import GOLDEN, TestFailure, check, clean_env, main, run, servers_env, \
    tempdir, write_config

# Subtype 4 binaries stay subtype 4 (pymongo 3's default would re-encode them as
# legacy subtype 3).
JSON_OPTS = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL,
                                  uuid_representation=UuidRepresentation.STANDARD)
RAW = CodecOptions(document_class=RawBSONDocument,
                   uuid_representation=UuidRepresentation.STANDARD)


def golden(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return f.read()


def split_top(line):
    """[(key, raw JSON text of the value)] of a one-line JSON object, in order."""
    dec = json.JSONDecoder()
    items, i = [], 1
    if line[i] == "}":
        return items
    while True:
        key, i = dec.raw_decode(line, i)
        check(line[i] == ":", f"bad JSON object line: {line!r}")
        _, j = dec.raw_decode(line, i + 1)
        items.append((key, line[i + 1:j]))
        i = j
        if line[i] == ",":
            i += 1
            continue
        check(line[i] == "}", f"bad JSON object line: {line!r}")
        return items


def join_top(items):
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + v for k, v in items) + "}"


def load(text):
    return json_util.loads(text, json_options=JSON_OPTS)


def raw_of(doc):
    return bson.encode(doc, codec_options=RAW)


class Mongo:
    def __init__(self, env):
        self.host = env["FERRETDB_HOST"]
        self.port = int(env["FERRETDB_PORT"])
        self.client = pymongo.MongoClient(self.host, self.port, uuidRepresentation="standard",
                                          serverSelectionTimeoutMS=10000)
        self.dbname = f"ingesta_mongo_{os.getpid()}"
        self.client.drop_database(self.dbname)
        self.db = self.client[self.dbname]

    def coll(self, name):
        return self.db.get_collection(name, codec_options=RAW)

    def stored_faithfully(self, coll, doc):
        """The server gives back exactly the bytes pymongo sent."""
        got = coll.find_one({"_id": doc["_id"]})
        return got is not None and got.raw == raw_of(doc)

    def config(self, workdir, name="mongo.env", **extra):
        settings = {"DB_TYPE": "mongodb", "MONGO_HOST": self.host, "MONGO_PORT": self.port,
                    "MONGO_DATABASE": self.dbname, "LOG_LEVEL": "WARNING",
                    "SOURCE_CONNECT_TIMEOUT": "5"}
        settings.update(extra)
        return write_config(os.path.join(workdir, name), settings)

    def close(self):
        self.client.drop_database(self.dbname)
        self.client.close()


def extract(cfg, tables=(), check_rc=0, timeout=600):
    args = ["extract", "--config", cfg]
    for t in tables:
        args += ["--table", t]
    return run(args, env=clean_env(), check_rc=check_rc, timeout=timeout)


def extract_bytes(cfg, tables=()):
    """stdout as bytes: the comparison with golden files is byte for byte."""
    p = run(["extract", "--config", cfg] + [a for t in tables for a in ("--table", t)],
            env=clean_env(), check_rc=None, timeout=600)
    if p.returncode != 0:
        raise TestFailure(f"extract {tables} exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout.encode("utf-8")


def test_golden_mongodb(m, cfg):
    lines = golden("mongodb.input.json").splitlines()
    docs = [load(line) for line in lines if line.strip()]
    coll = m.coll("golden")
    for d in docs:
        coll.insert_one(d)
    for i, d in enumerate(docs):
        check(m.stored_faithfully(coll, d),
              f"FerretDB did not store mongodb.input.json line {i + 1} faithfully")
    got = extract_bytes(cfg, ["golden"])
    want = golden("mongodb.ndjson").encode("utf-8")
    check(got == want, f"golden mongodb differs:\n--- got\n{got.decode()}--- want\n{want.decode()}")
    print(f"golden mongodb: {len(docs)} documents byte-identical")


def test_golden_bson_only(m, cfg):
    """Each field alone first: what FerretDB refuses or alters is reported, the
    rest must match bson-only.ndjson."""
    in_items = split_top(golden("bson-only.input.json").strip())
    want_items = dict(split_top(golden("bson-only.ndjson").strip()))
    id_item = in_items[0]
    check(id_item[0] == "_id", "bson-only golden starts with _id")
    probe = m.coll("probe")
    kept, refused, altered = [], {}, []
    for key, raw in in_items[1:]:
        probe.delete_many({})
        doc = load(join_top([id_item, (key, raw)]))
        try:
            probe.insert_one(doc)
        except pymongo.errors.PyMongoError as exc:
            refused[key] = str(exc).split(",")[0][:120]
            continue
        if m.stored_faithfully(probe, doc):
            kept.append((key, raw))
        else:
            altered.append(key)
    m.db.drop_collection("probe")
    for key, why in refused.items():
        print(f"bson-only: FerretDB refuses field {key!r} ({why}); covered by test_bson_json")
    for key in altered:
        print(f"bson-only: FerretDB alters field {key!r}; covered by test_bson_json")
    check(kept, "FerretDB kept no bson-only field at all")
    coll = m.coll("bsononly")
    coll.insert_one(load(join_top([id_item] + kept)))
    want = join_top([("_id", want_items["_id"])] + [(k, want_items[k]) for k, _ in kept]) + "\n"
    got = extract_bytes(cfg, ["bsononly"]).decode("utf-8")
    check(got == want, f"bson-only subset differs:\n--- got\n{got}--- want\n{want}")
    print(f"bson-only: fields through FerretDB and identical: {[k for k, _ in kept]}")


ODD_NAMES = ["with space", "dots.in.name", "ünïcödé 日本", "quote\"and'apos", "UPPER", "a-b_c"]


def test_odd_names(m, cfg):
    made = []
    for i, name in enumerate(ODD_NAMES):
        try:
            m.db.create_collection(name)
        except pymongo.errors.PyMongoError as exc:
            print(f"odd names: FerretDB refuses collection name {name!r}: {exc}")
            continue
        # FerretDB 1.24 (SQLite) refuses keys with '.' (MongoDB 5.0+ takes them)
        # and fails on keys with '"' or '\\' (SQL logic error: malformed JSON):
        # escaped keys are covered by test_bson_json; here they are in values.
        doc = {"_id": i, "k e y": name, "ключ": "значение", "emo😀": [1.5, None],
               "slash/colon:key": {"v": "q\"\\\x01\n"}}
        m.coll(name).insert_one(RawBSONDocument(raw_of(doc)))
        made.append(name)
    check(len(made) >= 4, f"FerretDB refused most odd collection names: {made}")
    for i, name in enumerate(ODD_NAMES):
        if name not in made:
            continue
        got = extract_bytes(cfg, [name]).decode("utf-8")
        want = (f'{{"_id":{i},"k e y":{json.dumps(name, ensure_ascii=False)},'
                '"ключ":"значение","emo😀":[1.5,null],'
                '"slash/colon:key":{"v":"q\\"\\\\\\u0001\\n"}}\n')
        check(got == want, f"collection {name!r}:\n--- got\n{got}--- want\n{want}")
    print(f"odd names: {len(made)} collections extracted by name")
    return made


def test_discovery(m, cfg, names):
    """Without --table: every collection but system.*, in byte order of its
    name, each exactly as when asked for by name."""
    listed = [n for n in m.db.list_collection_names() if not n.startswith("system.")]
    listed.sort(key=lambda s: s.encode("utf-8"))
    check(all(n in listed for n in names), f"discovery: {names} not all in {listed}")
    want = b"".join(extract_bytes(cfg, [name]) for name in listed)
    got = extract_bytes(cfg)
    check(got == want, f"discovery: all-collections output differs from {listed} in order")
    print(f"discovery: {len(listed)} collections in byte order: {listed}")


BIG = 200_000


def test_big(m, cfg):
    coll = m.db["big"]
    t0 = time.monotonic()
    batch = []
    for i in range(BIG):
        batch.append({"_id": i, "n": i * 7, "s": f"row-{i:06d}", "f": i + 0.25})
        if len(batch) == 10_000:
            coll.insert_many(batch, ordered=True)
            batch = []
    if batch:
        coll.insert_many(batch, ordered=True)
    print(f"big: {BIG} documents inserted in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    got = extract_bytes(cfg, ["big"])
    secs = time.monotonic() - t0
    want = "".join(f'{{"_id":{i},"n":{i * 7},"s":"row-{i:06d}","f":{i + 0.25}}}\n'
                   for i in range(BIG)).encode()
    lines = got.count(b"\n")
    check(got == want, f"big: {lines} lines, differs from the expected {BIG}")
    print(f"big: {BIG} documents extracted identical in {secs:.1f} s")


def test_closed_port(m, workdir):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    cfg = m.config(workdir, "closed.env", MONGO_PORT=port, MONGO_USER="someone",
                   MONGO_PASSWORD="Pw-Never-Shown-1")
    t0 = time.monotonic()
    p = extract(cfg, check_rc=3, timeout=60)
    check(time.monotonic() - t0 < 20, "closed port: took longer than the connect timeout")
    check(f"mongodb 127.0.0.1:{port}/{m.dbname}" in p.stderr, f"closed port: message {p.stderr!r}")
    check("Pw-Never-Shown-1" not in p.stderr + p.stdout, "closed port: password printed")
    print(f"closed port: exit 3, {p.stderr.strip()}")


def test_silent_server(m, workdir):
    """A server that accepts TCP and never answers: SOURCE_CONNECT_TIMEOUT bounds
    the wait (a duration key: milliseconds in config_int, once got wrong)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    cfg = m.config(workdir, "silent.env", MONGO_PORT=port, SOURCE_CONNECT_TIMEOUT="2")
    t0 = time.monotonic()
    try:
        p = extract(cfg, check_rc=3, timeout=60)
    finally:
        lsock.close()
    secs = time.monotonic() - t0
    check(secs < 15, f"silent server: gave up after {secs:.1f} s, wanted about 2")
    check(f"mongodb 127.0.0.1:{port}/{m.dbname}: connect:" in p.stderr, f"silent: {p.stderr!r}")
    print(f"silent server: exit 3 after {secs:.1f} s")


def test_auth_refused(m, workdir):
    """Credentials the server refuses (FerretDB 1.24 without its new auth has
    no SCRAM at all): exit 3 at connect, the password never printed."""
    cfg = m.config(workdir, "auth.env", MONGO_USER="bob", MONGO_PASSWORD="Auth-Pw-Never-Shown")
    p = extract(cfg, check_rc=3, timeout=60)
    check("Auth-Pw-Never-Shown" not in p.stderr + p.stdout, "auth: password printed")
    check(f"mongodb {m.host}:{m.port}/{m.dbname}: connect:" in p.stderr, f"auth: {p.stderr!r}")
    print(f"auth refused: exit 3, {p.stderr.strip().splitlines()[0]}")


def test_uri_secret(m, workdir):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    uri = f"mongodb://alice:Uri-Secret-99@127.0.0.1:{port}/{m.dbname}?authSource=admin"
    cfg = write_config(os.path.join(workdir, "uri.env"),
                       {"DB_TYPE": "mongodb", "MONGO_URI": uri, "SOURCE_CONNECT_TIMEOUT": "3",
                        "LOG_LEVEL": "DEBUG"})
    p = extract(cfg, check_rc=3, timeout=60)
    check("Uri-Secret-99" not in p.stderr + p.stdout, "MONGO_URI password printed")
    check(f"mongodb 127.0.0.1:{port}/{m.dbname}" in p.stderr, f"URI: message {p.stderr!r}")
    bad = write_config(os.path.join(workdir, "baduri.env"),
                       {"DB_TYPE": "mongodb", "MONGO_URI": "mongodb://bob:Bad-Uri-Pw-7@/x?=="})
    p = extract(bad, check_rc=2, timeout=60)
    check("Bad-Uri-Pw-7" not in p.stderr + p.stdout, "bad MONGO_URI: password printed")
    check("MONGO_URI" in p.stderr, f"bad MONGO_URI: message {p.stderr!r}")
    print(f"MONGO_URI: secrets kept out of messages ({p.stderr.strip()})")


def test_missing_table(cfg):
    p = extract(cfg, ["no such collection"], check_rc=3, timeout=60)
    check("no such collection" in p.stderr, f"missing table: {p.stderr!r}")


class CuttingProxy:
    """TCP proxy to the server that resets both sides once `limit` bytes went
    from the server to the client: a server dying mid-collection, as seen by
    the client, without touching the shared server."""

    def __init__(self, host, port, limit):
        self.target = (host, port)
        self.limit = limit
        self.sent = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.to_server = bytearray()
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.cut.is_set():
                # After the cut the "server" stays dead: a driver's retry on a
                # new connection is reset too (else it would wait forever on a
                # connection nobody pumps).
                self._reset(c)
                continue
            s = socket.create_connection(self.target)
            self.conns += [c, s]
            threading.Thread(target=self._pump, args=(c, s, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, True), daemon=True).start()

    def _pump(self, src, dst, counted):
        try:
            while not self.cut.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if not counted:
                    self.to_server += data
                if counted:
                    self.sent += len(data)
                    if self.sent >= self.limit:
                        self._reset_all()
        except OSError:
            pass
        if self.cut.is_set():  # a connection opened just before the cut
            self._reset(src)
            self._reset(dst)

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass

    def _reset_all(self):
        self.cut.set()
        for s in self.conns:
            self._reset(s)

    def close(self):
        self.lsock.close()
        self._reset_all()


def test_query_timeout(m, workdir):
    """SOURCE_QUERY_TIMEOUT reaches the server as the find's maxTimeMS (seen on
    the wire, so the check does not depend on how fast the server is). Whether
    it then trips is the server's business: FerretDB 1.24 applies it per
    command, MongoDB over the whole cursor."""
    proxy = CuttingProxy(m.host, m.port, limit=1 << 62)
    cfg = m.config(workdir, "timeout.env", MONGO_PORT=proxy.port, SOURCE_QUERY_TIMEOUT="1500ms")
    p = extract(cfg, ["golden"], check_rc=None, timeout=120)
    proxy.close()
    check(b"\x12maxTimeMS\x00" + (1500).to_bytes(8, "little") in proxy.to_server,
          "query timeout: no maxTimeMS 1500 in the find command")
    check(p.returncode == 0 or (p.returncode == 3 and "time limit" in p.stderr),
          f"query timeout: exit {p.returncode}: {p.stderr!r}")
    proxy = CuttingProxy(m.host, m.port, limit=1 << 62)
    cfg = m.config(workdir, "notimeout.env", MONGO_PORT=proxy.port)
    extract(cfg, ["golden"], timeout=120)
    proxy.close()
    check(b"maxTimeMS" not in proxy.to_server, "SOURCE_QUERY_TIMEOUT=0 still sent maxTimeMS")
    print("query timeout: maxTimeMS 1500 sent with SOURCE_QUERY_TIMEOUT=1500ms, none by default")


def test_cut_mid_collection(m, workdir):
    proxy = CuttingProxy(m.host, m.port, limit=2 * 1024 * 1024)
    cfg = m.config(workdir, "cut.env", MONGO_PORT=proxy.port, MONGO_BATCH_SIZE="1000")
    p = extract(cfg, ["big"], check_rc=3, timeout=120)
    proxy.close()
    rows = p.stdout.count("\n")
    check(0 < rows < BIG, f"cut: {rows} rows before the cut")
    check(f'mongodb 127.0.0.1:{proxy.port}/{m.dbname}: collection "big"' in p.stderr,
          f"cut: message {p.stderr!r}")
    print(f"cut mid-collection: exit 3 after {rows} rows, {p.stderr.strip()}")


def test():
    env = servers_env()
    check("FERRETDB_PORT" in env, "no FerretDB in the test servers' env")
    m = Mongo(env)
    workdir = tempdir("mongo")
    try:
        cfg = m.config(workdir)
        test_golden_mongodb(m, cfg)
        test_golden_bson_only(m, cfg)
        names = test_odd_names(m, cfg)
        test_discovery(m, cfg, names)
        test_missing_table(cfg)
        test_closed_port(m, workdir)
        test_silent_server(m, workdir)
        test_auth_refused(m, workdir)
        test_uri_secret(m, workdir)
        test_query_timeout(m, workdir)
        test_big(m, cfg)
        test_cut_mid_collection(m, workdir)
    finally:
        m.close()


if __name__ == "__main__":
    main(test)
