/*
 * spool_internal.h - what the spool's own files (spool.c, recovery.c,
 * upload_state.c) share. Not for other components: they use spool.h.
 */
#ifndef INGESTA_SPOOL_INTERNAL_H
#define INGESTA_SPOOL_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "json.h"

/* A partition completion waiting for its group commit (spool.c). */
struct queued_complete {
	int64_t partition_id;
	uint64_t rows, raw_bytes, bytes;
	int segments;
	struct lossy lossy;
	char *schema_json; /* owned, may be NULL */
	int64_t completed_at;
};

struct spool {
	sqlite3 *db;
	char dir[3072];
	int uploader_lock_fd;
	bool relaxed_sync; /* spool_relaxed_sync(): every commit at synchronous=NORMAL */
	/* group commit (spool_group_commit): completions not committed yet */
	struct queued_complete *queue;
	int nqueue;
	int group_max; /* 0/1: each completion commits at once */
	int64_t group_ms;
	int64_t queue_since; /* monotonic ms of the oldest queued completion */
	bool data_dir_dirty; /* renamed into data/ since its last fsync */
};

/* -1 with *e from the connection's last SQLite error ("spool DIR/spool.db: what: msg"). */
int sp_db_error(struct spool *sp, struct ierr *e, const char *what);
/* BEGIN IMMEDIATE / COMMIT (rolls back when the commit fails) / ROLLBACK. */
int sp_begin(struct spool *sp, struct ierr *e);
int sp_commit(struct spool *sp, struct ierr *e);
void sp_rollback(struct spool *sp);
/* Make every commit so far durable, even on a spool_relaxed_sync()
 * connection: one small transaction (counter += 1) committed with the WAL
 * fsync. Before an action that relies on earlier commits surviving a power
 * cut (deleting the files of segments marked uploaded). Outside a transaction;
 * a connection not relaxed commits at its own setting (FULL by default). */
int sp_durable_point(struct spool *sp, const char *counter, struct ierr *e);
/* The next commits of this connection skip (NORMAL) or make (FULL) the WAL
 * fsync; no-op on a connection set by spool_relaxed_sync(). */
int sp_sync(struct spool *sp, bool full, struct ierr *e);
/* Prepare sql; NULL with *e on error. */
sqlite3_stmt *sp_prep(struct spool *sp, const char *sql, struct ierr *e);
/* Step a statement that returns no rows, then finalize it. */
int sp_step_done(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e);
/* The first column of the first row, or dflt. */
int64_t sp_query_int(struct spool *sp, const char *sql, int64_t dflt);
/* unlink, ENOENT is success. */
int sp_remove_path(const char *path, struct ierr *e);
/* locks/run-<run_id>.lock */
void sp_lock_path(const struct spool *sp, const char *run_id, char *out, size_t n);
/* true when no live process holds locks/run-<run_id>.lock (recovery.c). */
bool run_is_dead(const struct spool *sp, const char *run_id);
struct partition_read;
/* Inside the completing transaction: the partition's mode/range/key and the
 * watermark move (watermark.c). */
int sp_partition_read_record(struct spool *sp, int64_t partition_id, uint64_t rows,
                             const struct partition_read *rd, struct ierr *e);

#endif
