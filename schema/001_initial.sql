-- 001: the spool index. One row per run, per (run, table) partition, per segment
-- file, per finished multipart part. Times are unix milliseconds (UTC).
CREATE TABLE runs (
  run_id      TEXT PRIMARY KEY,          -- 20251005T143000Z-1a2b3c4d
  source      TEXT NOT NULL,             -- SOURCE_NAME (default: the db type)
  db_type     TEXT NOT NULL,
  bucket      TEXT NOT NULL,             -- target of every segment of the run
  started_at  INTEGER NOT NULL,          -- partition date comes from this
  finished_at INTEGER,
  state       TEXT NOT NULL DEFAULT 'running'
              CHECK (state IN ('running', 'complete', 'failed', 'abandoned')),
  tables      INTEGER NOT NULL DEFAULT 0,
  rows        INTEGER NOT NULL DEFAULT 0,
  error       TEXT,
  pid         INTEGER
);

CREATE TABLE partitions (
  id             INTEGER PRIMARY KEY,
  run_id         TEXT NOT NULL REFERENCES runs(run_id),
  table_name     TEXT NOT NULL,
  state          TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'complete')),
  rows           INTEGER NOT NULL DEFAULT 0,
  raw_bytes      INTEGER NOT NULL DEFAULT 0,   -- NDJSON bytes before compression
  bytes          INTEGER NOT NULL DEFAULT 0,   -- bytes to upload
  segments       INTEGER NOT NULL DEFAULT 0,
  nonfinite      INTEGER NOT NULL DEFAULT 0,   -- lossy conversions (TYPES.md)
  invalid_utf8   INTEGER NOT NULL DEFAULT 0,
  invalid_dates  INTEGER NOT NULL DEFAULT 0,
  infinite_dates INTEGER NOT NULL DEFAULT 0,
  manifest_key   TEXT,
  manifest_state TEXT NOT NULL DEFAULT 'none' CHECK (manifest_state IN ('none', 'written')),
  completed_at   INTEGER,
  UNIQUE (run_id, table_name)
);

CREATE TABLE segments (
  id              INTEGER PRIMARY KEY,
  partition_id    INTEGER NOT NULL REFERENCES partitions(id),
  run_id          TEXT NOT NULL,
  source          TEXT NOT NULL,
  table_name      TEXT NOT NULL,
  seq             INTEGER NOT NULL,            -- 1.. within the partition
  path            TEXT NOT NULL UNIQUE,        -- relative to the spool directory
  bucket          TEXT NOT NULL,
  key             TEXT NOT NULL,               -- fixed at seal time, never changes
  rows            INTEGER NOT NULL,
  raw_bytes       INTEGER NOT NULL,
  bytes           INTEGER NOT NULL,
  sha256          TEXT NOT NULL,               -- hex, of the bytes uploaded
  md5             TEXT NOT NULL,               -- hex
  state           TEXT NOT NULL CHECK (state IN
                  ('pending', 'sealed', 'uploading', 'uploaded', 'failed', 'quarantined')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error_code TEXT,                        -- S3 code (AccessDenied, SlowDown, ...) or errno name
  last_error      TEXT,
  etag            TEXT,
  upload_id       TEXT,                        -- open multipart upload, if any
  created_at      INTEGER NOT NULL,
  sealed_at       INTEGER,
  uploaded_at     INTEGER,
  file_deleted_at INTEGER,
  UNIQUE (bucket, key)
);
CREATE INDEX segments_by_state ON segments (state, next_attempt_at);
CREATE INDEX segments_by_partition ON segments (partition_id);

CREATE TABLE segment_parts (
  segment_id  INTEGER NOT NULL REFERENCES segments(id),
  part_number INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  etag        TEXT NOT NULL,
  PRIMARY KEY (segment_id, part_number)
);

-- Counters the uploader keeps for status and metrics (uploads, bytes, errors by code).
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL DEFAULT 0
);
