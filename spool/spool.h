/*
 * spool.h - the on-disk spool: segment files plus their SQLite index.
 *
 * The spool is the only thing collectors and the uploader share. Layout:
 *   <dir>/spool.db      the index (WAL mode, busy timeout; schema/ migrations)
 *   <dir>/tmp/          segments being written: <run-id>.<partition>-<n>.tmp
 *   <dir>/data/         sealed segment files:    <run-id>.<partition>-<n>.json[.zst]
 *   <dir>/locks/        run-<run-id>.lock (held by a live collector), uploader.lock
 *   <dir>/.wakeup       touched after each partition commit / replay (inotify)
 * Every directory is 0700 and every file 0600.
 *
 * Contract (DESIGN.md "The spool contract"):
 * - A segment file is renamed into data/ before its row exists, and data/ is
 *   fsynced before the row is `sealed` (the partition's commit); a sealed row
 *   therefore always has its file (until retention deletes it). The rows of
 *   an open partition commit without the WAL fsync: a power cut may lose them,
 *   which only leaves files of a dead run without rows (recovery deletes them).
 * - Rows of an open partition are `pending`; spool_partition_complete() flips
 *   them all to `sealed` in one transaction. The uploader sees only `sealed`.
 * - A collector holds an flock on locks/run-<id>.lock for its whole run; a run
 *   whose lock can be taken is dead, and recovery deletes its open partitions,
 *   temporary files and unrecorded files. Nothing else is ever deleted by
 *   recovery: committed, not-yet-uploaded segments are untouchable.
 * - The uploader holds locks/uploader.lock; while it holds it, any `uploading`
 *   row it did not claim itself was left by a dead uploader and goes back to
 *   `sealed` (multipart progress kept).
 *
 * Threads: a struct spool is one SQLite connection; use one per thread.
 * All functions may block on disk I/O and on the SQLite busy timeout (30 s).
 * Errors: -1 with *e filled (IERR_NOSPACE for a full disk or the quota).
 */
#ifndef INGESTA_SPOOL_H
#define INGESTA_SPOOL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "buf.h"
#include "json.h"

struct spool;

enum spool_role { SPOOL_ROLE_COLLECTOR, SPOOL_ROLE_UPLOADER, SPOOL_ROLE_OPERATOR };

/* Open (creating if needed, migrating if older) the spool at dir. A spool made
 * by a newer ingesta is refused. The operator role opens without recovery. */
struct spool *spool_open(const char *dir, enum spool_role role, struct ierr *e);
void spool_close(struct spool *sp);
sqlite3 *spool_db(struct spool *sp);
const char *spool_dir(const struct spool *sp);

/* Repair what crashes leave (see above). Returns the number of repairs made,
 * or -1. Called by spool_open for collector and uploader roles. */
int spool_recover(struct spool *sp, struct ierr *e);

/* ---- collector side ---- */

struct spool_run {
	char run_id[64];
	int64_t started_at; /* ms */
	int lock_fd;
};

/* Create a run: takes its lock, inserts the row. */
int spool_run_begin(struct spool *sp, const char *source, const char *db_type, const char *bucket,
                    struct spool_run *run, struct ierr *e);
/* state: "complete" or "failed"; error may be NULL. Releases the lock. */
int spool_run_end(struct spool *sp, struct spool_run *run, const char *state, int tables,
                  uint64_t rows, const char *error, struct ierr *e);

/* The run's normalization settings as JSON (runs.settings_json: decimal_mode,
 * binary_mode, s3_prefix, key_template), read by the catalog and the commit log. */
int spool_run_settings(struct spool *sp, const struct spool_run *run, const char *settings_json,
                       struct ierr *e);

/* Open the partition of (run, table). manifest_key: where its manifest will be
 * written (known before any segment, so empty tables get one too); may be NULL. */
int64_t spool_partition_begin(struct spool *sp, const struct spool_run *run, const char *table,
                              const char *manifest_key, struct ierr *e);

/* Absolute path of the n-th temporary segment file of a partition:
 * tmp/<run-id>.<partition>-<n>.tmp (sealed as data/<run-id>.<partition>-<n><ext>). */
void spool_tmp_path(const struct spool *sp, const struct spool_run *run, int64_t partition_id,
                    uint64_t n, char *out, size_t size);

struct segment_info {
	uint64_t rows;
	uint64_t raw_bytes;
	uint64_t bytes;
	char sha256[65];
	char md5[33];
	const char *ext; /* ".json.zst" or ".json" */
};

/* Seal a finished temporary file (already fsynced by the writer): rename into
 * data/, insert the `pending` row with its deterministic key (data/ is
 * fsynced by the partition's commit). */
int spool_segment_seal(struct spool *sp, const struct spool_run *run, int64_t partition_id,
                       const char *table, int seq, const char *tmp_path,
                       const struct segment_info *info, const char *key, struct ierr *e);

/* Mark the partition complete and its segments sealed, in one transaction
 * that also stores schema_json (the table's schema, canonical JSON from
 * collector/schema.h, into partitions.schema_json; NULL leaves it NULL). A
 * partition may complete with 0 segments (a table without rows). */
int spool_partition_complete(struct spool *sp, int64_t partition_id, uint64_t rows,
                             uint64_t raw_bytes, uint64_t bytes, int segments,
                             const struct lossy *lossy, const char *schema_json, struct ierr *e);

/*
 * Group commit (collectors): completions of up to max_tables partitions
 * commit together, in one synchronous=FULL transaction after one fsync of
 * data/, instead of one each (three fsyncs per small table become about one).
 * A queued completion is not committed when spool_partition_complete*()
 * returns 0: it commits when the queue is full, when its oldest entry waited
 * max_ms (checked at this connection's next partition begin, segment seal or
 * completion), with an incremental table's completion (committed at once,
 * its watermark with it), at spool_flush() and at spool_run_end(), which
 * fails the run when that last commit fails. A collector killed before
 * loses the queued tables as it loses a table being read: their partitions
 * are open, recovery drops them and the next run reads them again. Nothing
 * is visible to the uploader before it is durable. max_tables <= 1: every
 * completion commits at once (the default). Call before the first completion.
 */
void spool_group_commit(struct spool *sp, int max_tables, int64_t max_ms);
#define SPOOL_GROUP_MAX_TABLES 64 /* what `ingesta collect` uses */
#define SPOOL_GROUP_MAX_MS     100
/* Commit the queued completions now (0 also when there were none). */
int spool_flush(struct spool *sp, struct ierr *e);

/* ---- incremental extraction: watermarks (spool/watermark.c, schema/003) ---- */

/* The committed watermark of (source, table). present false: none (the next
 * run is a snapshot). has_value false: read before, no non-NULL cursor seen
 * (the next range has no lower bound). kind: how the value binds back:
 * 'i' integer, 'r' real, 't' text. */
struct spool_watermark {
	bool present;
	bool has_value;
	char kind;
	char *value; /* owned; NULL when !has_value */
	char column[256];
	int64_t version;
	int64_t snapshot_at; /* run start of the last snapshot run (ms), -1 none */
	int64_t range_rows;  /* rows of the run that wrote it */
	char run_id[64];
};
int spool_watermark_get(struct spool *sp, const char *source, const char *table,
                        struct spool_watermark *wm, struct ierr *e);
void spool_watermark_free(struct spool_watermark *wm);

/* How a partition was read, committed in its completing transaction
 * (spool_partition_complete_read). column NULL: a table without a cursor
 * (only the mode is stored, no watermark). after NULL: no lower bound;
 * through NULL: no row up to a high-water mark (an incremental run keeps
 * `after`). expect_*: the watermark read at the start of the run; when it
 * changed meanwhile, the commit fails and nothing of the table is committed. */
struct partition_read {
	const char *source;
	const char *table;
	const char *run_id;
	int64_t run_started_at;
	bool incremental;
	const char *column;
	const char *after;
	char after_kind;
	const char *through;
	char through_kind;
	const char *key_json; /* ["id",...], for <table>_current */
	bool expect_present;
	int64_t expect_version;
};
/* {"column":..,"after":..|null,"through":..|null} (values as JSON strings). */
void spool_range_json(const char *column, const char *after, const char *through, struct buf *b);

/* spool_partition_complete() that also records rd (NULL: as that one). */
int spool_partition_complete_read(struct spool *sp, int64_t partition_id, uint64_t rows,
                                  uint64_t raw_bytes, uint64_t bytes, int segments,
                                  const struct lossy *lossy, const char *schema_json,
                                  const struct partition_read *rd, struct ierr *e);

/* 1 and the run id when a live collector of `source` holds its run lock,
 * 0 when none, -1 on error. */
int spool_source_running(struct spool *sp, const char *source, char *run_id, size_t n);

struct watermark_reset_result {
	bool refused; /* why says why (a collector runs; no watermark to move) */
	bool had;     /* a watermark existed */
	char before[1024];
	char why[512];
};
/* `ingesta reset`: to NULL clears the watermark (next run = snapshot), else
 * sets its value (same kind; an integer cursor takes an integer). */
int spool_watermark_reset(struct spool *sp, const char *source, const char *table, const char *to,
                          struct watermark_reset_result *res, struct ierr *e);

/* Bytes the spool holds on disk (segments not yet deleted). */
int64_t spool_bytes_used(struct spool *sp);

/* Touch .wakeup so an uploader's inotify watch fires. */
void spool_wakeup(const struct spool *sp);

/* ---- uploader side ---- */

/* The uploader's own transitions (claim, uploaded, retry, parts, manifests)
 * may skip the fsync at commit (WAL + synchronous=NORMAL): a commit lost in a
 * power cut only repeats work that exactly-once absorbs (a re-PUT answered 412
 * and compared, a part sent again). A process crash loses nothing either way.
 * The one exception, deleting an uploaded segment's file, first makes every
 * earlier commit durable (spool_apply_retention, spool_retire_uploaded).
 * Collectors keep synchronous=FULL: a partition commit must not be visible to
 * the uploader before it is durable. */
int spool_relaxed_sync(struct spool *sp, struct ierr *e);

/* Take locks/uploader.lock; fails when another uploader runs on this spool. */
int spool_uploader_lock(struct spool *sp, struct ierr *e);

struct segment {
	int64_t id;
	int64_t partition_id;
	char run_id[64];
	char source[128];
	char table[512];
	char path[4096]; /* absolute */
	char bucket[1024];
	char key[1024];
	uint64_t rows;
	uint64_t bytes;
	char sha256[65];
	char md5[33];
	int attempts;
	char upload_id[512];
};

/* Claim the next due `sealed` segment (-> `uploading`, attempts+1).
 * Returns 1 and fills *out, 0 when none is due, -1 on error. */
int spool_claim_next(struct spool *sp, struct segment *out, struct ierr *e);
/* Claim up to max due segments in one transaction (the first always, more
 * while their bytes stay within max_bytes). Returns the count (0: none due),
 * -1 on error. */
int spool_claim_batch(struct spool *sp, struct segment *out, int max, uint64_t max_bytes,
                      struct ierr *e);
/* Give claims back that were never tried (a stop request): `sealed` again,
 * the attempt not counted. */
int spool_release_claims(struct spool *sp, const struct segment *segs, int n, struct ierr *e);
/* Earliest next_attempt_at of sealed segments, or -1 when none. */
int64_t spool_next_due(struct spool *sp);
/* Counts of segments that are sealed/uploading (work left). */
int64_t spool_count_state(struct spool *sp, const char *state);

int spool_mark_uploaded(struct spool *sp, int64_t id, const char *etag, struct ierr *e);
/* Several `uploaded` marks in one transaction, with the uploads_total and
 * uploaded_bytes_total counters. A crash before it commits leaves the rows
 * `uploading`: recovery seals them again and the next PUT finds the object
 * (412, compared), so a lost mark only repeats a check. */
struct spool_done {
	int64_t id;
	uint64_t bytes;
	char etag[256];
};
int spool_mark_uploaded_batch(struct spool *sp, const struct spool_done *done, int n,
                              struct ierr *e);
/* Back to `sealed` with a backoff; `failed` instead when permanent or out of
 * attempts. code/msg describe the error (no secrets). */
int spool_mark_retry(struct spool *sp, int64_t id, bool permanent, int64_t next_attempt_at,
                     int max_attempts, const char *code, const char *msg, struct ierr *e);
int spool_mark_quarantined(struct spool *sp, int64_t id, const char *msg, struct ierr *e);

/* Multipart progress. */
int spool_set_upload_id(struct spool *sp, int64_t id, const char *upload_id, struct ierr *e);
/* 1 when a segment of this bucket with this key is uploaded, 0 when not, -1
 * on a database error (the uploader's sweep of orphaned multipart uploads). */
int spool_key_uploaded(struct spool *sp, const char *bucket, const char *key);
int spool_part_done(struct spool *sp, int64_t id, int part_number, uint64_t size, const char *etag,
                    struct ierr *e);

/* Partitions complete and fully uploaded but without their manifest yet. */
struct manifest_job {
	int64_t partition_id;
	char run_id[64];
	char bucket[1024];
	char key[1024]; /* of the manifest */
	char *json;     /* the manifest document (owned; free()) */
};
/* Returns 1 with *job filled, 0 when none, -1 on error. */
int spool_next_manifest(struct spool *sp, struct manifest_job *job, struct ierr *e);
/* The same for partitions with id > after_id only: the uploader claims a
 * batch of jobs in id order, each once. */
int spool_next_manifest_after(struct spool *sp, int64_t after_id, struct manifest_job *job,
                              struct ierr *e);
/* Record the manifest as written (at key, when not NULL). */
int spool_manifest_written(struct spool *sp, int64_t partition_id, const char *key, struct ierr *e);
/* The same for n partitions (ids[i] at keys[i]) in one transaction. */
int spool_manifests_written(struct spool *sp, const int64_t *ids, const char *const *keys, int n,
                            struct ierr *e);

/* ---- commit records (spool/commit_log.c, docs/COMMIT_LOG.md) ---- */

/* A completed partition whose manifest is written and whose commit record is
 * not: the record's key and its one JSON line (deterministic: a retry writes
 * the same bytes). */
struct commit_job {
	int64_t partition_id;
	char run_id[64];
	char source[128];
	char db_type[32];
	char table[512];
	char bucket[1024];
	char key[1024];
	int attempts; /* attempts so far */
	char *json;   /* owned; free() */
	size_t json_len;
};
/* [prefix/]ingesta_runs/year=YYYY/month=MM/day=DD/<run-id>-<table-key>.json */
void spool_commit_key(const char *prefix, int64_t run_started_ms, const char *run_id,
                      const char *table, char *out, size_t n);
/* The next due commit job (commit_next_at <= now): 1 and *job, 0 none, -1. */
int spool_next_commit(struct spool *sp, int64_t now, struct commit_job *job, struct ierr *e);
/* The same for partitions with id > after_id only (a batch claims in id order). */
int spool_next_commit_after(struct spool *sp, int64_t now, int64_t after_id, struct commit_job *job,
                            struct ierr *e);
int spool_commit_written(struct spool *sp, int64_t partition_id, const char *key, struct ierr *e);
/* Not written: retry at next_at, or `failed` (status, replay) when permanent. */
int spool_commit_retry(struct spool *sp, int64_t partition_id, bool permanent, int64_t next_at,
                       const char *msg, struct ierr *e);
/* One outcome of a batch of commit-record PUTs. */
struct commit_outcome {
	int64_t partition_id;
	const char *key;
	bool written;   /* else not written: */
	bool permanent; /* `failed`, or retry at next_at */
	int64_t next_at;
	const char *msg;
};
/* Record n outcomes (spool_commit_written / spool_commit_retry) and the
 * commit_records_total counter in one transaction: all or none. */
int spool_commits_record(struct spool *sp, const struct commit_outcome *o, int n, struct ierr *e);
/* Partitions whose manifest is written and whose record is not (yet): their
 * count, and in *next_due the earliest retry time (-1 when none). */
int64_t spool_commits_waiting(struct spool *sp, int64_t *next_due);
int64_t spool_commits_failed(struct spool *sp);
/* failed -> none (attempts reset); returns how many, or -1. */
int spool_commit_replay(struct spool *sp, struct ierr *e);

/* Delete files of uploaded segments older than retention_ms; returns count.
 * Each batch first makes the spool's earlier commits durable (one WAL fsync):
 * a file is never gone while its `uploaded` mark could still be lost. */
int spool_apply_retention(struct spool *sp, int64_t retention_ms, struct ierr *e);
#define SPOOL_RETIRE_MAX 64
/* RETENTION=0: delete the files of segments just marked uploaded (ids in
 * done[], at most SPOOL_RETIRE_MAX) now, in the uploader worker that sent
 * them, the same way. Rows not `uploaded` or already deleted are skipped.
 * Returns files deleted, or -1. */
int spool_retire_uploaded(struct spool *sp, const struct spool_done *done, int ndone,
                          struct ierr *e);

/* Put failed segments back to `sealed`; ids NULL = all failed. With ids,
 * quarantined ones too WITHOUT re-hashing their files: operators go through
 * ops_replay() (ops.h), which re-hashes first. Returns the number re-queued. */
int spool_replay(struct spool *sp, const int64_t *ids, int nids, struct ierr *e);

/* Counter helpers for status/metrics. */
void spool_counter_add(struct spool *sp, const char *name, int64_t delta);

/* Run fn inside BEGIN IMMEDIATE .. COMMIT with retries on SQLITE_BUSY. */
int spool_exec(struct spool *sp, const char *sql, struct ierr *e);

/* ---- multipart progress, read back (spool/multipart.c) ---- */

struct spool_part {
	int part_number;
	uint64_t size;
	char etag[256]; /* as the server returned it, quotes included */
};

/* The finished parts of segment id (recorded by spool_part_done), by part
 * number, into a malloc'd array *out that the caller free()s (NULL when
 * none). Returns the count, or -1 with *e. */
int spool_parts_list(struct spool *sp, int64_t id, struct spool_part **out, struct ierr *e);

#endif
