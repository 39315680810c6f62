"""MongoDB-wire contenders with pymongo (Debian's /usr/bin/python3):
  dump:  a cursor over the collection, json.dumps(default=...) per document,
         one line each, to OUT (the original's formatting, streamed);
  floor: the same cursor iterated without formatting (how fast documents can
         be had at all from Python).
usage: pymongo_dump.py dump|floor DB COLLECTION OUT
Prints the number of documents on stdout.
"""
import datetime
import os
import sys

import pymongo


def default(o):
    if isinstance(o, (datetime.datetime, datetime.date)):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray)):
        return bytes(o).decode("utf-8", "replace")
    return str(o)


def main():
    import json
    mode, db, coll, out = sys.argv[1:5]
    client = pymongo.MongoClient(os.environ["FERRETDB_URI"])
    cur = client[db][coll].find()
    n = 0
    if mode == "floor":
        for _ in cur:
            n += 1
    else:
        with open(out, "w", encoding="utf-8") as f:
            for doc in cur:
                f.write(json.dumps(doc, default=default, ensure_ascii=False))
                f.write("\n")
                n += 1
    print(n)


if __name__ == "__main__":
    main()
