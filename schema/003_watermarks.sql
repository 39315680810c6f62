-- 003: incremental extraction (README "Incremental extraction").
-- watermarks: per (source, table) the committed high-water mark of the
--   cursor column, written in the transaction that completes the table's
--   partition (spool_partition_complete), so a collector killed at any point
--   committed both or neither. value NULL with a row present: the table was
--   read but had no non-NULL cursor yet (next run: no lower bound); no row:
--   the next run is a snapshot. value_kind: how the value is bound back
--   ('i' integer, 'r' real, 't' text; PostgreSQL always 't', typed by the
--   server). version: bumped by every write (collector and `ingesta reset`),
--   the compare-and-set that keeps two writers from both moving it.
CREATE TABLE watermarks (
  source        TEXT NOT NULL,
  table_name    TEXT NOT NULL,
  cursor_column TEXT NOT NULL,
  value         TEXT,
  value_kind    TEXT NOT NULL DEFAULT 't' CHECK (value_kind IN ('i', 'r', 't')),
  version       INTEGER NOT NULL DEFAULT 1,
  run_id        TEXT,              -- the run that wrote it (NULL after a reset)
  partition_id  INTEGER,
  range_rows    INTEGER NOT NULL DEFAULT 0,  -- rows of that run's range
  snapshot_at   INTEGER,           -- start of the last snapshot run (FULL_REFRESH_EVERY)
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (source, table_name)
);
-- Per partition: how it was read. load_mode 'snapshot' | 'incremental';
-- range_json {"column":..,"after":..,"through":..} (canonical, NULL for tables
-- without a cursor); key_json the primary key used by <table>_current.
ALTER TABLE partitions ADD COLUMN load_mode TEXT NOT NULL DEFAULT 'snapshot'
  CHECK (load_mode IN ('snapshot', 'incremental'));
ALTER TABLE partitions ADD COLUMN range_json TEXT;
ALTER TABLE partitions ADD COLUMN key_json TEXT;
