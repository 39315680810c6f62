"""The original ingester's approach, as a contender: one table read whole with
fetchall() (MongoDB: list(find())), json.dumps(default=...) per row, the lines
joined, and one boto3 put_object of the result.

Run with Debian's /usr/bin/python3 (python3-psycopg2 / python3-pymysql /
python3-pymongo / python3-boto3).
usage: original.py postgresql|mysql|mongodb DB TABLE BUCKET KEY
Connection settings come from the test servers' env (POSTGRESQL_*, MARIADB_*,
FERRETDB_URI, S3_ENDPOINT, AWS_*). Prints the number of rows on stdout.
"""
import datetime
import decimal
import json
import os
import sys

import boto3


def default(o):
    # What the original did: Decimal -> float, datetime/date -> ISO 8601,
    # bytes -> UTF-8 string; anything else (ObjectId...) -> str.
    if isinstance(o, decimal.Decimal):
        return float(o)
    if isinstance(o, (datetime.datetime, datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).decode("utf-8", "replace")
    return str(o)


def rows_postgresql(db, table):
    import psycopg2
    e = os.environ
    conn = psycopg2.connect(host=e["POSTGRESQL_HOST"], port=e["POSTGRESQL_PORT"],
                            user=e["POSTGRESQL_USER"], password=e["POSTGRESQL_PASSWORD"], dbname=db)
    cur = conn.cursor()
    cur.execute(f'SELECT * FROM "{table}"')
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    conn.close()
    return rows


def rows_mysql(db, table):
    import pymysql
    import pymysql.cursors
    e = os.environ
    conn = pymysql.connect(host=e["MARIADB_HOST"], port=int(e["MARIADB_PORT"]), user=e["MARIADB_USER"],
                           password=e["MARIADB_PASSWORD"], database=db, charset="utf8mb4",
                           cursorclass=pymysql.cursors.DictCursor)
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{table}`")
        rows = cur.fetchall()
    conn.close()
    return rows


def rows_mongodb(db, table):
    import pymongo
    client = pymongo.MongoClient(os.environ["FERRETDB_URI"])
    rows = list(client[db][table].find())
    client.close()
    return rows


def main():
    kind, db, table, bucket, key = sys.argv[1:6]
    rows = {"postgresql": rows_postgresql, "mysql": rows_mysql, "mongodb": rows_mongodb}[kind](db, table)
    body = "\n".join(json.dumps(r, default=default, ensure_ascii=False) for r in rows) + "\n"
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
    print(len(rows))


if __name__ == "__main__":
    main()
