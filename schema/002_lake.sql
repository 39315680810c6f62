-- 002: the lake as a query engine reads it (README "Querying with Athena").
-- schema_json: the table's columns as the source reported them in this run
--   (docs/COMMIT_LOG.md, "schema"), canonical compact JSON written by the
--   collector in the transaction that completes the partition; NULL for
--   partitions written before this migration.
-- commit_*: the commit record (ingesta_runs/...), the object that makes a
--   (run, table) visible to readers; written by the uploader after the
--   partition's manifest.
-- catalog_*: Glue registration that must succeed before the commit record.
ALTER TABLE partitions ADD COLUMN schema_json TEXT;
ALTER TABLE partitions ADD COLUMN commit_key TEXT;
ALTER TABLE partitions ADD COLUMN commit_state TEXT NOT NULL DEFAULT 'none'
  CHECK (commit_state IN ('none', 'written', 'failed'));
ALTER TABLE partitions ADD COLUMN commit_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN commit_next_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN commit_error TEXT;
ALTER TABLE partitions ADD COLUMN committed_at INTEGER;
-- Partitions of spools older than this migration were complete and had their
-- manifest: they predate the commit log and never get a record.
UPDATE partitions SET commit_state = 'written' WHERE manifest_state = 'written';
-- The normalization settings of the run (DECIMAL_MODE, BINARY_MODE, S3_PREFIX,
-- key template) as JSON: the catalog maps types from them.
ALTER TABLE runs ADD COLUMN settings_json TEXT;
CREATE INDEX partitions_commit ON partitions (commit_state, manifest_state);
