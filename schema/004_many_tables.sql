-- 004: indexes that keep the uploader's per-object queries independent of the
-- spool's history (issue 12, many small tables). Both are partial: they hold
-- only the rows still in play, so they stay small however many runs the
-- spool keeps until `gc`.
-- partitions_manifest_due: the partitions whose manifest is not written yet
--   (spool_next_manifest, once per manifest; without it every call scanned
--   every partition ever recorded).
CREATE INDEX partitions_manifest_due ON partitions (id) WHERE manifest_state = 'none';
-- segments_on_disk: segments whose file is still in the spool: the quota sum
--   (spool_bytes_used, at every segment a collector opens), retention and the
--   missing-file check of recovery (each uploader pass).
CREATE INDEX segments_on_disk ON segments (state, uploaded_at, bytes) WHERE file_deleted_at IS NULL;
