#!/usr/bin/python3
"""The original deployment, reproduced.

The original ingester ran three one-shot containers, MySQL -> raw-ms1-data-bgc,
PostgreSQL -> raw-ms2-data-bgc, MongoDB -> raw-ms3-data-bgc, each configured by a
.env file. Here: the nine tables of that deployment are loaded into the three real
servers with their own clients, three collectors run with env files in the
original format (only hosts, ports and buckets changed, plus SPOOL_DIR) into one
spool, one uploader ships everything to three file:// buckets, and the result
is read back and compared with each source as its own client sees it:
74 rows in 9 table prefixes, with the year=/month=/day= layout.
"""
import datetime
import decimal
import json
import os
import re
import subprocess

import pymongo
from bson.binary import Binary
from bson.decimal128 import Decimal128

from ingesta_test import (COMMIT_LOG, bucket_files, bucket_rows, check, clean_env, commit_records,
                          main, run, servers_env,
                          tempdir)

SRV = None
DB = "orig_" + os.urandom(3).hex()

MYSQL_SQL = f"""
CREATE DATABASE {DB} CHARACTER SET utf8mb4; USE {DB};
CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(80), email VARCHAR(120), balance DECIMAL(10,2),
  created_at DATETIME, avatar BLOB NULL);
CREATE TABLE orders (id INT PRIMARY KEY, user_id INT, total DECIMAL(10,2), status ENUM('new','paid','shipped'),
  ordered_at TIMESTAMP NULL);
CREATE TABLE products (id INT PRIMARY KEY, sku CHAR(8), name VARCHAR(80), price DECIMAL(8,2), stock INT,
  attrs JSON NULL);
""" + "".join(
    f"INSERT INTO users VALUES ({i}, 'User {i} é', 'u{i}@example.com', {i * 10}.5{i % 10}, "
    f"'2025-10-{i:02d} 08:30:00', {'0x89504e47' if i == 1 else 'NULL'});\n" for i in range(1, 11)) + "".join(
    f"INSERT INTO orders VALUES ({i}, {i % 10 + 1}, {i * 3}.25, '{['new', 'paid', 'shipped'][i % 3]}', "
    f"{'NULL' if i == 7 else repr(f'2025-10-{i:02d} 12:00:0{i % 10}')});\n" for i in range(1, 16)) + "".join(
    f"INSERT INTO products VALUES ({i}, 'SKU{i:05d}', 'Product {i}', {i}.99, {i * 7}, "
    f"'{{\"color\": \"c{i}\", \"dims\": [{i}, 2.50]}}');\n" for i in range(1, 13))

PG_SQL = """
CREATE TABLE customers (id int PRIMARY KEY, name text, country char(2), credit numeric(12,2), since date,
  logo bytea);
CREATE TABLE invoices (id int PRIMARY KEY, customer_id int, amount numeric(12,2), issued_at timestamptz,
  paid boolean, lines jsonb);
CREATE TABLE payments (id int PRIMARY KEY, invoice_id int, amount numeric(12,2), method text,
  received_at timestamp, ref uuid);
""" + "".join(
    f"INSERT INTO customers VALUES ({i}, 'Customer {i} ü', 'D{i}', {i * 1000}.00, '2024-0{i}-15', "
    f"{chr(39) + chr(92) + 'x0001ff' + chr(39) if i == 2 else 'NULL'});\n" for i in range(1, 6)) + "".join(
    f"INSERT INTO invoices VALUES ({i}, {i % 5 + 1}, {i * 111}.10, '2025-10-0{i} 10:00:00+02', "
    f"{'true' if i % 2 else 'false'}, '[{{\"sku\": \"SKU{i:05d}\", \"qty\": {i}}}]');\n" for i in range(1, 9)) + "".join(
    f"INSERT INTO payments VALUES ({i}, {i}, {i * 111}.10, 'card', '2025-10-0{i} 11:00:00.5', "
    f"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1{i}');\n" for i in range(1, 7))


def mysql(sql_text, db=None):
    args = ["mariadb", "--no-defaults", "-h", SRV["MARIADB_HOST"], "-P", SRV["MARIADB_PORT"], "-u",
            SRV["MARIADB_USER"], "--default-character-set=utf8mb4", "-B", "-N"] + ([db] if db else [])
    return subprocess.run(args, input=sql_text, text=True, check=True, capture_output=True,
                          env=dict(os.environ, MYSQL_PWD=SRV["MARIADB_PASSWORD"])).stdout


def psql(sql_text, db):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", SRV["POSTGRESQL_HOST"],
                           "-p", SRV["POSTGRESQL_PORT"], "-U", SRV["POSTGRESQL_USER"], "-d", db],
                          input=sql_text, text=True, check=True, capture_output=True,
                          env=dict(os.environ, PGPASSWORD=SRV["POSTGRESQL_PASSWORD"])).stdout


def load_sources():
    mysql(MYSQL_SQL)
    psql(f"CREATE DATABASE {DB}", SRV["POSTGRESQL_DATABASE"])
    psql(PG_SQL, DB)
    client = pymongo.MongoClient(SRV["FERRETDB_HOST"], int(SRV["FERRETDB_PORT"]))
    db = client[DB]
    db.inventory.insert_many([{"_id": i, "sku": f"SKU{i:05d}", "qty": i * 4, "price": 9.5 + i,
                               "updated": datetime.datetime(2025, 10, i, 9, 0, 0)} for i in range(1, 7)])
    db.shipments.insert_many([{"_id": f"shp-{i}", "order_id": i, "carrier": ["dhl", "ups"][i % 2],
                               "items": [{"sku": f"SKU{i:05d}", "qty": i}],
                               "label": Binary(b"%PDF-" + bytes([i]))} for i in range(1, 8)])
    db.suppliers.insert_many([{"_id": i, "name": f"Supplier {i}", "contact": {"email": f"s{i}@example.com"},
                               "rating": None if i == 3 else i / 2} for i in range(1, 6)])
    return client


def drop_sources(client):
    try:
        mysql(f"DROP DATABASE IF EXISTS {DB}")
        psql(f"DROP DATABASE IF EXISTS {DB}", SRV["POSTGRESQL_DATABASE"])
        client.drop_database(DB)
    except Exception as exc:  # cleanup only
        print(f"cleanup: {exc}")


def env_files(d, spool):
    """Env files in the original's format (+ SPOOL_DIR); only hosts, ports and buckets changed."""
    common = ("AWS_DEFAULT_REGION=eu-west-1\nINGESTION_INTERVAL=0\nENABLE_PARTITIONING=true\n"
              f"LOG_LEVEL=INFO\nSPOOL_DIR={spool}\n")
    files = {
        "ms1": f"""# MS1: MySQL -> raw-ms1-data-bgc
DB_TYPE=mysql
MYSQL_HOST={SRV['MARIADB_HOST']}
MYSQL_PORT={SRV['MARIADB_PORT']}
MYSQL_USER={SRV['MARIADB_USER']}
MYSQL_PASSWORD="{SRV['MARIADB_PASSWORD']}"
MYSQL_DATABASE={DB}
S3_BUCKET=file://{d}/raw-ms1-data-bgc
""",
        "ms2": f"""# MS2: PostgreSQL -> raw-ms2-data-bgc
DB_TYPE=postgres
POSTGRES_HOST={SRV['POSTGRESQL_HOST']}
POSTGRES_PORT={SRV['POSTGRESQL_PORT']}
POSTGRES_USER={SRV['POSTGRESQL_USER']}
POSTGRES_PASSWORD='{SRV['POSTGRESQL_PASSWORD']}'
POSTGRES_DB={DB}
S3_BUCKET=file://{d}/raw-ms2-data-bgc
""",
        "ms3": f"""# MS3: MongoDB -> raw-ms3-data-bgc
DB_TYPE=mongodb
MONGO_HOST={SRV['FERRETDB_HOST']}
MONGO_PORT={SRV['FERRETDB_PORT']}
MONGO_DATABASE={DB}
MONGO_AUTH_SOURCE=admin
S3_BUCKET=file://{d}/raw-ms3-data-bgc
""",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = os.path.join(d, f"{name}.env")
        with open(paths[name], "w") as f:
            f.write(text + common)
    return paths


def test():
    global SRV
    SRV = servers_env()
    d = tempdir("original")
    spool = os.path.join(d, "spool")
    client = load_sources()
    try:
        envs = env_files(d, spool)
        want = {"ms1": (3, 37), "ms2": (3, 19), "ms3": (3, 18)}
        procs = {n: subprocess.Popen([os.environ["INGESTA"], "collect", "--config", p], env=clean_env(),
                                     stderr=subprocess.PIPE, text=True) for n, p in envs.items()}
        for name, p in procs.items():
            _, err = p.communicate(timeout=300)
            check(p.returncode == 0, f"{name} collector failed: {err[-2000:]}")
            tables, rows = want[name]
            line = re.search(r'msg="(extraction complete: [^"]*)"', err)
            check(line and line.group(1).startswith(f"extraction complete: {tables} tables, {rows} rows -> ")
                  and line.group(1).endswith(f"raw-{name}-data-bgc"), f"{name} summary: {line and line.group(1)}")
            print(f"{name}: {line.group(1)}")
        run(["upload", "--once", "--config", envs["ms1"]])

        layout = re.compile(r"^[a-z]+/year=\d{4}/month=\d{2}/day=\d{2}/(\d{8}T\d{6}Z-[0-9a-f]{8}-\d{5}\.json\.zst"
                            r"|_manifest-\d{8}T\d{6}Z-[0-9a-f]{8}\.json)$")
        total, prefixes = 0, set()
        expected = {"ms1": {"users": 10, "orders": 15, "products": 12},
                    "ms2": {"customers": 5, "invoices": 8, "payments": 6},
                    "ms3": {"inventory": 6, "shipments": 7, "suppliers": 5}}
        got = {}
        for name, tables in expected.items():
            bucket = os.path.join(d, f"raw-{name}-data-bgc")
            files = [f for f in bucket_files(bucket)
                     if not f.startswith((".ingesta-tmp", COMMIT_LOG + "/"))]
            tops = {f.split("/")[0] for f in files}
            check(tops == set(tables), f"{name}: table prefixes {sorted(tops)}")
            for f in files:
                check(layout.match(f), f"{name}: key {f} does not follow the partition layout")
            # One commit record per (run, table), beside the table prefixes.
            recs = commit_records(bucket)
            check(sorted(t for _, t in recs) == sorted(tables) and
                  all(r["rows"] == tables[r["table_name"]] for r in recs.values()),
                  f"{name}: commit records {sorted(recs)}")
            for table, n in tables.items():
                rows = bucket_rows(bucket, table)
                check(len(rows) == n, f"{name}.{table}: {len(rows)} rows, want {n}")
                got[table] = {r.get("id", r.get("_id")): r for r in rows}
                total += len(rows)
                prefixes.add(table)
        check(total == 74 and len(prefixes) == 9, f"{total} rows in {len(prefixes)} prefixes")

        # Values against each source's own client.
        for line in mysql("SELECT id, balance, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s') FROM users", DB).splitlines():
            i, bal, ts = line.split("\t")
            r = got["users"][int(i)]
            check(decimal.Decimal(repr(r["balance"])) == decimal.Decimal(bal) and r["created_at"] == ts,
                  f"users {i}: {r} vs {line}")
        check(got["products"][3]["attrs"] == {"color": "c3", "dims": [3, 2.5]}, "MySQL JSON nests")
        for line in psql("SELECT id, amount::text, to_char(issued_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), paid FROM invoices", DB).splitlines():
            i, amount, ts, paid = line.split("|")
            r = got["invoices"][int(i)]
            check(decimal.Decimal(repr(r["amount"])) == decimal.Decimal(amount) and r["issued_at"] == ts
                  and r["paid"] == (paid == "t"), f"invoices {i}: {r} vs {line}")
        check(got["customers"][2]["logo"] == "\x00\x01\ufffd", f"bytea: {got['customers'][2]['logo']!r}")
        for doc in client[DB].suppliers.find():
            r = got["suppliers"][doc["_id"]]
            check(r["name"] == doc["name"] and r["rating"] == doc["rating"] and r["contact"] == doc["contact"],
                  f"suppliers {doc['_id']}: {r} vs {doc}")
        check(got["inventory"][1]["updated"] == "2025-10-01T09:00:00Z", f"BSON date: {got['inventory'][1]}")
        print("original deployment: 3 collectors (original .env format) + 1 uploader -> 3 buckets, "
              "74 rows in 9 table prefixes, values equal to each source's own client")
    finally:
        drop_sources(client)
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(test)
