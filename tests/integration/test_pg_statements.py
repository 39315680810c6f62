#!/usr/bin/env python3
"""PostgreSQL: the statements a collect sends per table (issue 12, many small tables).

`ingesta collect` of N small tables runs through a TCP pass-through that
parses the client's side of the PostgreSQL protocol (startup packets, then
typed messages) and counts the statements it carries: simple-protocol Query
('Q') and extended-protocol Parse ('P') messages. Counting on the wire needs no
server setting (log_statement, pg_stat_statements) and sees every statement,
whichever libpq call sent it.

Per table a collect sends the probe (`SELECT * ... LIMIT 0`) and the COPY; the
catalog (types, NOT NULL, primary key) is read for chunks of tables (8, 16, 32,
64, then 128 at a time), and the probe is not repeated for the read. So at most
2 N + a constant (5 chunk queries at this N); before, 4 N (a probe and a
catalog query in table_schema, a probe and the COPY in read_table). N = 150
spans every chunk size, with tables in a
second schema whose names need quoting, and every table's stored schema_json
(types, NOT NULL through a column or a domain, primary key in key order) must
be the one its definition implies, so a lookup that finds the wrong table's
columns, or none (and falls back to the per-table query), fails either here or
on the count. Once more with COLLECT_PARALLEL=3 (each connection its own
snapshot import and catalog chunks) and COLLECT_SPLIT_BYTES=0: splitting asks
each table's size (pg_relation_size), one more statement a table, not counted
here.
"""
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import threading

from ingesta_test import TestFailure, check, clean_env, main, run, servers_env, tempdir, \
    write_config

SRV = {}
N_PUBLIC = 140
N_ODD = 10
ODD_SCHEMA = 'Odd "sch\\ema'


def psql(db, sql):
    args = ["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", SRV["host"],
            "-p", SRV["port"], "-U", SRV["user"], "-d", db]
    p = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PGPASSWORD=SRV["password"]))
    if p.returncode != 0:
        raise TestFailure(f"psql failed: {p.stderr}")
    return p.stdout


def qident(name):
    return '"' + name.replace('"', '""') + '"'


class CountingProxy:
    """127.0.0.1:<port> -> the server; counts the clients' Query and Parse messages."""

    def __init__(self, host, port):
        self.upstream = (host, int(port))
        self.lock = threading.Lock()
        self.statements = 0
        self.errors = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def reset(self):
        with self.lock:
            n = self.statements
            self.statements = 0
            return n

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(self.upstream)
            threading.Thread(target=self.client_side, args=(c, s), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def client_side(self, c, s):
        buf = b""
        startup = True  # untyped packets until the StartupMessage
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                s.sendall(b)
                buf += b
                while True:
                    if startup:
                        if len(buf) < 8:
                            break
                        n = int.from_bytes(buf[:4], "big")
                        code = int.from_bytes(buf[4:8], "big")
                        if len(buf) < n:
                            break
                        buf = buf[n:]
                        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                            continue
                        startup = False
                        continue
                    if len(buf) < 5:
                        break
                    n = int.from_bytes(buf[1:5], "big")
                    if len(buf) < 1 + n:
                        break
                    if buf[:1] in (b"Q", b"P"):
                        with self.lock:
                            self.statements += 1
                    buf = buf[1 + n:]
        except OSError as exc:
            self.errors.append(str(exc))
        self.pipe(c, s)


def table_defs():
    """[(schema, table, DDL column list, expected schema object)]."""
    types = [("text", "text", "'t'"), ("numeric(12,2)", "numeric(12,2)", "1.5"),
             ("varchar(10)", "character varying(10)", "'x'"),
             ("timestamptz", "timestamp with time zone", "'2026-01-01 00:00:00+00'"),
             ("nn_int", "nn_int", "7")]
    out = []
    names = [("public", f"t{i:03d}") for i in range(N_PUBLIC)]
    names += [(ODD_SCHEMA, f'q"{i}\\t') for i in range(N_ODD)]
    for i, (nsp, rel) in enumerate(names):
        cols = [("id", "bigint", "bigint", False, "1")]
        for k in range(i % 5):
            ddl, fmt, val = types[(i + k) % len(types)]
            cols.append((f"c{k}", ddl, fmt, ddl == "nn_int" or (k == 0 and i % 7 == 0), val))
        if i % 3 == 0 and len(cols) > 1:
            pk = [cols[-1][0], "id"]  # key order unlike the columns'
        elif i % 3 == 1:
            pk = ["id"]
        else:
            pk = []
        ddl = ", ".join(f"{qident(c)} {t}" + (" NOT NULL" if nn and t != "nn_int" else "")
                        for c, t, _, nn, _ in cols)
        if pk:
            ddl += ", PRIMARY KEY (" + ", ".join(qident(c) for c in pk) + ")"
        values = ", ".join(v for *_, v in cols)
        nullable = {c: not (nn or c in pk) for c, _, _, nn, _ in cols}
        expect = {"columns": [{"name": c, "type": f, "nullable": nullable[c]}
                              for c, _, f, _, _ in cols],
                  "primary_key": pk, "inferred": False}
        out.append((nsp, rel, ddl, values, expect))
    return out


def stored(spool):
    db = sqlite3.connect(f"file:{os.path.join(spool, 'spool.db')}?mode=ro", uri=True)
    try:
        return {t: (n, json.loads(sj)) for t, n, sj in
                db.execute("SELECT table_name, rows, schema_json FROM partitions")}
    finally:
        db.close()


def collect(work, name, db, proxy, extra):
    spool = os.path.join(work, name + "-spool")
    cfg = write_config(os.path.join(work, name + ".env"), dict({
        "DB_TYPE": "postgresql", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(proxy.port),
        "POSTGRES_USER": SRV["user"], "POSTGRES_PASSWORD": SRV["password"],
        "POSTGRES_DB": db, "POSTGRES_SSLMODE": "disable",
        "POSTGRES_SCHEMAS": "public," + ODD_SCHEMA,
        "SPOOL_DIR": spool, "LOG_LEVEL": "WARNING",
        "S3_BUCKET": "file://" + os.path.join(work, name + "-bucket")}, **extra))
    proxy.reset()
    run(["collect", "--config", cfg], env=clean_env())
    return proxy.reset(), stored(spool)


def test():
    env = servers_env()
    SRV.update(host=env["POSTGRESQL_HOST"], port=env["POSTGRESQL_PORT"],
               user=env["POSTGRESQL_USER"], password=env["POSTGRESQL_PASSWORD"])
    work = tempdir("pgstmt")
    db = "stmt_" + secrets.token_hex(4)
    defs = table_defs()
    psql("postgres", f"CREATE DATABASE {db}")
    try:
        sql = ["CREATE DOMAIN nn_int AS integer NOT NULL;",
               f"CREATE SCHEMA {qident(ODD_SCHEMA)};"]
        for nsp, rel, ddl, values, _ in defs:
            q = f"{qident(nsp)}.{qident(rel)}"
            sql.append(f"CREATE TABLE {q} ({ddl}); INSERT INTO {q} VALUES ({values});")
        psql(db, "\n".join(sql))
        proxy = CountingProxy(SRV["host"], SRV["port"])
        n = len(defs)
        expect = {(rel if nsp == "public" else f"{nsp}.{rel}"): want
                  for nsp, rel, _, _, want in defs}
        runs = (("serial", {}, 1),
                ("parallel", {"COLLECT_PARALLEL": "3", "COLLECT_SPLIT_BYTES": "0"}, 3))
        for name, extra, conns in runs:
            count, got = collect(work, name, db, proxy, extra)
            check(not proxy.errors, f"proxy: {proxy.errors}")
            check(sorted(got) == sorted(expect),
                  f"{name}: tables {sorted(set(got) ^ set(expect))[:5]} differ")
            for t, want in expect.items():
                check(got[t][0] == 1, f"{name}: {t}: {got[t][0]} rows, want 1")
                check(got[t][1] == want, f"{name}: {t}: schema\n got {got[t][1]}\nwant {want}")
            # Setup, listing, snapshot and the type look-ups of nn_int: per connection.
            limit = 2 * n + conns * 16
            check(count <= limit, f"{name}: {count} statements for {n} tables, want at most "
                                  f"{limit} (2 a table + the catalog + a constant)")
            print(f"{name}: {count} statements for {n} tables (limit {limit}); schemas as "
                  "defined")
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {db}")


if __name__ == "__main__":
    main(test)
