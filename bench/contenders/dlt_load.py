"""dlt as a contender: its sql_database source (SQLAlchemy backend, the
default) to the filesystem destination, jsonl format (gzip-compressed, dlt's
default), into a local bucket directory.

Run with the venv's python (bench/.venv: dlt, sqlalchemy, psycopg2-binary,
pymysql; s3fs for an s3:// bucket). usage: dlt_load.py SQLALCHEMY_URL TABLE BUCKET_DIR|s3://BUCKET WORK_DIR
Prints the number of rows dlt normalized on stdout.
"""
import os
import sys

url, table, bucket_dir, work_dir = sys.argv[1:5]
# No telemetry, no state in ~/.dlt: everything under WORK_DIR.
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
os.environ["DLT_DATA_DIR"] = os.path.join(work_dir, "data")
os.environ["DLT_PROJECT_DIR"] = work_dir

import dlt  # noqa: E402
from dlt.sources.sql_database import sql_database  # noqa: E402


def main():
    # BUCKET_DIR: a local directory, or s3://bucket (credentials and the
    # endpoint from DESTINATION__FILESYSTEM__CREDENTIALS__*: dlt's own config).
    bucket_url = bucket_dir if "://" in bucket_dir else "file://" + bucket_dir
    pipe = dlt.pipeline(pipeline_name="bench", pipelines_dir=os.path.join(work_dir, "pipelines"),
                        destination=dlt.destinations.filesystem(bucket_url=bucket_url),
                        dataset_name="bench")
    src = sql_database(credentials=url, table_names=[table])
    pipe.run(src, loader_file_format="jsonl")
    counts = pipe.last_trace.last_normalize_info.row_counts
    print(counts.get(table, 0))


main()
