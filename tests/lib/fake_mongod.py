"""A fake MongoDB 6.0 replica-set primary speaking the wire protocol, for tests.

This is a MOCK, used only because no real MongoDB can be installed on the test
machine (no package source here has mongod, and FerretDB, the real server the
other tests use, has no snapshot reads). It answers what libmongoc and ingesta
send, nothing more, and it records every command it gets:

- the handshake (OP_QUERY isMaster, then OP_MSG hello/isMaster) as the primary
  of replica set "rs0": setName, maxWireVersion 17, logicalSessionTimeoutMinutes;
- ping, buildInfo, endSessions, listCollections (one batch);
- find / getMore / killCursors over in-memory documents, in insertion order,
  honouring filter {} only (a non-empty filter is refused), batchSize, limit
  and singleBatch.

Snapshot reads as MongoDB 5.0+ serves them outside transactions: a find with
readConcern {level: "snapshot"} and no atClusterTime is answered with
cursor.atClusterTime = CLUSTER_TIME (the point in time "the server" picked); a
find whose readConcern carries atClusterTime is refused unless it is exactly
CLUSTER_TIME (code 246 SnapshotUnavailable, so a wrong time cannot go
unnoticed). As MongoDB does, a getMore must come with the lsid of the find
that opened the cursor and must not carry a readConcern.

No auth, no TLS, no compression. Used in-process:

    srv = FakeMongod({"db": {"coll": [docs...]}}); srv.start()
    ... srv.port, srv.log (one dict per command: conn, cmd, db, readConcern,
    lsid, ...) ...; srv.stop()
"""
import datetime
import socket
import socketserver
import struct
import threading
import time

import bson
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
CLUSTER_TIME = Timestamp(1764600000, 7)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server.fake
        with srv.lock:
            srv.next_conn += 1
            conn = srv.next_conn
        sock = self.request
        try:
            while True:
                head = _recv(sock, 16)
                if head is None:
                    return
                length, req_id, _, opcode = struct.unpack("<iiii", head)
                body = _recv(sock, length - 16)
                if body is None:
                    return
                if opcode == OP_QUERY:
                    flags, = struct.unpack_from("<i", body, 0)
                    end = body.index(b"\0", 4)
                    ns = body[4:end].decode()
                    off = end + 1 + 8
                    size, = struct.unpack_from("<i", body, off)
                    cmd = bson.decode(body[off:off + size])
                    reply = srv.command(conn, ns.split(".")[0], cmd)
                    doc = bson.encode(reply)
                    msg = struct.pack("<iqii", 0, 0, 0, 1) + doc
                    sock.sendall(struct.pack("<iiii", 16 + len(msg), srv.req_id(), req_id,
                                             OP_REPLY) + msg)
                elif opcode == OP_MSG:
                    flags, = struct.unpack_from("<I", body, 0)
                    if flags & 1:  # checksumPresent
                        body = body[:-4]
                    off = 4
                    cmd = None
                    seqs = {}
                    while off < len(body):
                        kind = body[off]
                        off += 1
                        size, = struct.unpack_from("<i", body, off)
                        if kind == 0:
                            cmd = bson.decode(body[off:off + size])
                        else:
                            end = body.index(b"\0", off + 4)
                            ident = body[off + 4:end].decode()
                            seqs[ident] = bson.decode_all(body[end + 1:off + size])
                        off += size
                    cmd.update(seqs)
                    reply = srv.command(conn, cmd.get("$db", "admin"), cmd)
                    if flags & 2:  # moreToCome: no reply
                        continue
                    msg = struct.pack("<IB", 0, 0) + bson.encode(reply)
                    sock.sendall(struct.pack("<iiii", 16 + len(msg), srv.req_id(), req_id,
                                             OP_MSG) + msg)
                else:
                    return
        except (ConnectionError, OSError):
            return


def _recv(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeMongod:
    def __init__(self, data, cluster_time=CLUSTER_TIME, accept_time=None, fail_at_time=None,
                 find_delay=0.0, unauthorized=()):
        """data: {db: {collection: [documents]}} (dicts, encodable by bson).
        cluster_time: the atClusterTime a snapshot find without one is given;
        accept_time: the only atClusterTime a find may ask for (default:
        cluster_time); fail_at_time: (code, codeName) every find that asks
        for an atClusterTime fails with (e.g. (239, "SnapshotTooOld"));
        find_delay: seconds every find waits before it answers (so that
        several connections have work at once); unauthorized: collections
        every find of fails with Unauthorized (13), as for a user without
        the find privilege on them."""
        self.data = data
        self.cluster_time = cluster_time
        self.accept_time = accept_time if accept_time is not None else cluster_time
        self.fail_at_time = fail_at_time
        self.find_delay = find_delay
        self.unauthorized = set(unauthorized)
        self.log = []
        self.lock = threading.Lock()
        self.next_conn = 0
        self._req = 0
        self._cursors = {}  # id -> {"docs", "ns", "lsid", "conn"}
        self._next_cursor = 1000
        self._tcp = _Server(("127.0.0.1", 0), _Handler)
        self._tcp.fake = self
        self.port = self._tcp.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._tcp.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._tcp.shutdown()
        self._tcp.server_close()

    def req_id(self):
        with self.lock:
            self._req += 1
            return self._req

    # ---------------------------------------------------------------- commands

    def command(self, conn, db, cmd):
        name = next(iter(cmd))
        entry = {"conn": conn, "cmd": name, "db": db, "readConcern": cmd.get("readConcern"),
                 "lsid": cmd.get("lsid"), "body": cmd}
        with self.lock:
            self.log.append(entry)
        try:
            reply = self._dispatch(name.lower() if name.lower() in ("ismaster",) else name,
                                   conn, db, cmd)
        except _CommandError as exc:
            reply = {"ok": 0.0, "errmsg": exc.msg, "code": exc.code, "codeName": exc.code_name}
        entry["reply_ok"] = reply.get("ok") == 1.0
        return reply

    def _hello(self, conn):
        me = f"127.0.0.1:{self.port}"
        return {"helloOk": True, "ismaster": True, "isWritablePrimary": True,
                "topologyVersion": {"processId": ObjectId("650000000000000000000001"),
                                    "counter": Int64(0)},
                "hosts": [me], "setName": "rs0", "setVersion": 1, "primary": me, "me": me,
                "electionId": ObjectId("7fffffff0000000000000001"),
                "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000,
                "localTime": datetime.datetime.now(datetime.timezone.utc),
                "logicalSessionTimeoutMinutes": 30, "connectionId": conn,
                "minWireVersion": 0, "maxWireVersion": 17, "readOnly": False, "ok": 1.0}

    def _dispatch(self, name, conn, db, cmd):
        if name in ("ismaster", "hello"):
            return self._hello(conn)
        if name == "ping":
            return {"ok": 1.0}
        if name == "buildInfo" or name == "buildinfo":
            return {"version": "6.0.0-fake", "versionArray": [6, 0, 0, 0], "maxBsonObjectSize":
                    16777216, "ok": 1.0}
        if name == "endSessions":
            return {"ok": 1.0}
        if name == "listCollections":
            colls = self.data.get(db, {})
            batch = [{"name": n, "type": "collection", "options": {},
                      "info": {"readOnly": False}} for n in colls]
            return {"cursor": {"id": Int64(0), "ns": f"{db}.$cmd.listCollections",
                               "firstBatch": batch}, "ok": 1.0}
        if name == "find":
            return self._find(conn, db, cmd)
        if name == "getMore":
            return self._get_more(conn, db, cmd)
        if name == "killCursors":
            killed = []
            with self.lock:
                for cid in cmd.get("cursors", []):
                    if self._cursors.pop(int(cid), None) is not None:
                        killed.append(Int64(cid))
            return {"cursorsKilled": killed, "cursorsNotFound": [], "cursorsAlive": [],
                    "cursorsUnknown": [], "ok": 1.0}
        raise _CommandError(59, "CommandNotFound", f"no such command: '{name}'")

    def _find(self, conn, db, cmd):
        coll = cmd["find"]
        if coll in self.unauthorized:
            raise _CommandError(13, "Unauthorized",
                                f"not authorized on {db} to execute command {{ find: \"{coll}\" }}")
        if cmd.get("filter"):
            raise _CommandError(2, "BadValue", "the fake server only serves filter {}")
        rc = cmd.get("readConcern") or {}
        snapshot = rc.get("level") == "snapshot"
        if "atClusterTime" in rc:
            if not snapshot:
                raise _CommandError(72, "InvalidOptions",
                                    "atClusterTime needs readConcern level snapshot")
            if self.fail_at_time:
                raise _CommandError(self.fail_at_time[0], self.fail_at_time[1],
                                    f"fake server: refused at {rc['atClusterTime']!r}")
            if rc["atClusterTime"] != self.accept_time:
                raise _CommandError(246, "SnapshotUnavailable",
                                    f"fake server: no snapshot at {rc['atClusterTime']!r}, "
                                    f"only at {self.accept_time!r}")
        if self.find_delay:
            time.sleep(self.find_delay)
        docs = list(self.data.get(db, {}).get(coll, []))
        limit = int(cmd.get("limit", 0) or 0)
        if limit:
            docs = docs[:limit]
        size = int(cmd.get("batchSize", 101) or 101)
        first, rest = docs[:size], docs[size:]
        cid = 0
        if rest and not cmd.get("singleBatch"):
            with self.lock:
                self._next_cursor += 1
                cid = self._next_cursor
                self._cursors[cid] = {"docs": rest, "ns": f"{db}.{coll}",
                                      "lsid": cmd.get("lsid"), "conn": conn}
        cursor = {"firstBatch": first, "id": Int64(cid), "ns": f"{db}.{coll}"}
        if snapshot:
            cursor["atClusterTime"] = self.cluster_time
        return {"cursor": cursor, "ok": 1.0}

    def _get_more(self, conn, db, cmd):
        cid = int(cmd["getMore"])
        if "readConcern" in cmd:
            raise _CommandError(72, "InvalidOptions",
                                "Command getMore does not support readConcern")
        with self.lock:
            cur = self._cursors.get(cid)
            if cur is None:
                raise _CommandError(43, "CursorNotFound", f"cursor id {cid} not found")
            if cur["lsid"] != cmd.get("lsid"):
                raise _CommandError(50738, "Unauthorized",
                                    f"Cannot run getMore on cursor {cid}, which was created "
                                    f"in another session")
            size = int(cmd.get("batchSize", 0) or 0) or len(cur["docs"])
            batch, cur["docs"] = cur["docs"][:size], cur["docs"][size:]
            if not cur["docs"]:
                del self._cursors[cid]
                cid = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cid), "ns": f"{db}.{cmd['collection']}"},
                "ok": 1.0}


class _CommandError(Exception):
    def __init__(self, code, code_name, msg):
        super().__init__(msg)
        self.code = code
        self.code_name = code_name
        self.msg = msg


if __name__ == "__main__":
    import sys

    srv = FakeMongod({"test": {"c": [{"_id": i} for i in range(10)]}}).start()
    print(srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
        sys.exit(0)
