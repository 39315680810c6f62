/*
 * spool.c - the spool directory and its SQLite index (contract in spool.h).
 *
 * Every state change is one SQL transaction (BEGIN IMMEDIATE, so writers queue
 * on the busy timeout instead of failing). File operations come first and the
 * DB row last on the way in (seal), DB first and the file last on the way out
 * (retention), so a crash at any point leaves either an unrecorded file that
 * recovery deletes or a row that still has its file.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "log.h"
#include "schema_sql.h"
#include "spool_internal.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 30000

/* group commit (spool_group_commit) */
static int commit_queue(struct spool *sp, const struct partition_read *rd, struct ierr *e);
static int commit_queue_if_due(struct spool *sp, struct ierr *e);
static void queue_clear(struct spool *sp);

/* ENOSPC hides behind SQLITE_IOERR/SQLITE_FULL: say "disk full" plainly. */
static enum ierr_code classify(struct spool *sp, const char **hint)
{
	int code = sqlite3_errcode(sp->db) & 0xff;
	int sys = sqlite3_system_errno(sp->db);

	*hint = "";
	if (code == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT) {
		*hint = " (No space left on device)";
		return IERR_NOSPACE;
	}
	return IERR_SPOOL;
}

int sp_db_error(struct spool *sp, struct ierr *e, const char *what)
{
	const char *hint;
	enum ierr_code c = classify(sp, &hint);

	return ierr_set(e, c, "spool %s/spool.db: %s: %s%s", sp->dir, what, sqlite3_errmsg(sp->db),
	                hint);
}

int spool_exec(struct spool *sp, const char *sql, struct ierr *e)
{
	char *msg = NULL;

	if (sqlite3_exec(sp->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		const char *hint;
		enum ierr_code c = classify(sp, &hint);

		ierr_set(e, c, "spool %s/spool.db: %s%s", sp->dir, msg ? msg : "error", hint);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int sp_begin(struct spool *sp, struct ierr *e)
{
	return spool_exec(sp, "BEGIN IMMEDIATE", e);
}

int sp_commit(struct spool *sp, struct ierr *e)
{
	if (spool_exec(sp, "COMMIT", e) != 0) {
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

int sp_durable_point(struct spool *sp, const char *counter, struct ierr *e)
{
	int rc;

	/* synchronous is a connection setting that cannot change inside a
	 * transaction; FULL makes this commit fsync the WAL, and with it every
	 * earlier commit of any connection. */
	if (sp->relaxed_sync && spool_exec(sp, "PRAGMA synchronous=FULL", e) != 0)
		return -1;
	rc = sp_begin(sp, e);
	if (rc == 0) {
		spool_counter_add(sp, counter, 1);
		rc = sp_commit(sp, e);
	}
	if (sp->relaxed_sync)
		sqlite3_exec(sp->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	return rc;
}

void sp_rollback(struct spool *sp)
{
	sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *sp_prep(struct spool *sp, const char *sql, struct ierr *e)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sp_db_error(sp, e, "prepare");
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows; finalizes it. */
int sp_step_done(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sp_db_error(sp, e, what);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int64_t sp_query_int(struct spool *sp, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = NULL;
	int64_t v = dflt;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK)
		return dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int migrate(struct spool *sp, struct ierr *e)
{
	int64_t version = sp_query_int(sp, "PRAGMA user_version", 0);
	char sql[64];

	if (version > SCHEMA_VERSION)
		return ierr_set(e, IERR_SPOOL,
		                "spool %s was written by a newer ingesta (schema version %" PRId64
		                ", this binary knows up to %d): upgrade ingesta or use another "
		                "SPOOL_DIR",
		                sp->dir, version, SCHEMA_VERSION);
	if (version == SCHEMA_VERSION)
		return 0;
	if (sp_begin(sp, e) != 0)
		return -1;
	/* Re-read inside the write lock: another process may have migrated. */
	version = sp_query_int(sp, "PRAGMA user_version", 0);
	for (int64_t v = version; v < SCHEMA_VERSION; v++) {
		if (spool_exec(sp, schema_migrations[v], e) != 0) {
			sp_rollback(sp);
			return ierr_prefix(e, "migration %03" PRId64, v + 1);
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (spool_exec(sp, sql, e) != 0) {
		sp_rollback(sp);
		return -1;
	}
	return sp_commit(sp, e);
}

/*
 * Busy handler: SQLite's own (sqlite3_busy_timeout) sleeps 1, 2, 5 ... 100 ms
 * between tries, which with several upload workers queueing for the write lock
 * wastes most of the time. Short, jittered sleeps instead, up to
 * BUSY_TIMEOUT_MS in total.
 */
static int busy_wait(void *ctx, int tries)
{
	static const int64_t max_tries = BUSY_TIMEOUT_MS * 4; /* >= 250 us per try */
	useconds_t us = tries < 6 ? (useconds_t)(50u << tries) : 2000u;

	(void)ctx;
	if (tries >= max_tries)
		return 0;
	usleep(us + (useconds_t)(rand() % 200));
	return 1;
}

/* Commit durability for the uploader's connections (see spool.h). */
int spool_relaxed_sync(struct spool *sp, struct ierr *e)
{
	if (spool_exec(sp, "PRAGMA synchronous=NORMAL", e) != 0)
		return -1;
	sp->relaxed_sync = true;
	return 0;
}

int sp_sync(struct spool *sp, bool full, struct ierr *e)
{
	if (sp->relaxed_sync)
		return 0;
	return spool_exec(sp, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", e);
}

/*
 * The connection set-up that must not run in two processes at once: the
 * switch of a brand-new spool.db to WAL and the migrations. Changing the
 * journal mode needs an exclusive SQLite lock taken from a shared one; two
 * processes doing it on the same new file deadlock, and SQLite breaks the
 * deadlock by answering SQLITE_BUSY at once, without calling the busy handler
 * ("database is locked" from a collector started beside others on a fresh
 * spool). An flock on locks/open.lock queues the openers instead; it is held
 * for milliseconds and never while data moves.
 */
static int open_locked(struct spool *sp, struct ierr *e)
{
	char path[4096];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/locks/open.lock", sp->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ierr_errno(e, errno, "spool %s: open %s", sp->dir, path);
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			rc = ierr_errno(e, errno, "spool %s: lock %s", sp->dir, path);
			close(fd);
			return rc;
		}
	}
	if (spool_exec(sp, "PRAGMA journal_mode=WAL", e) != 0 ||
	    spool_exec(sp, "PRAGMA synchronous=FULL", e) != 0 ||
	    spool_exec(sp, "PRAGMA foreign_keys=ON", e) != 0 || migrate(sp, e) != 0)
		rc = -1;
	close(fd); /* releases the flock */
	return rc;
}

struct spool *spool_open(const char *dir, enum spool_role role, struct ierr *e)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	char path[4096];
	static const char *const subdirs[] = {"tmp", "data", "locks"};

	if (sp == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		return NULL;
	}
	sp->uploader_lock_fd = -1;
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
	if (mkdir_private(dir, e) != 0)
		goto fail_prefix;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if (mkdir_private(path, e) != 0)
			goto fail_prefix;
	}
	snprintf(path, sizeof(path), "%s/spool.db", dir);
	/* The DB and its -wal/-shm files are private like everything else. */
	{
		mode_t old = umask(077);
		int rc = sqlite3_open_v2(
		    path, &sp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
		    NULL);

		umask(old);
		if (rc != SQLITE_OK) {
			ierr_set(e, IERR_SPOOL, "spool %s: cannot open spool.db: %s", dir,
			         sp->db ? sqlite3_errmsg(sp->db) : "out of memory");
			goto fail;
		}
	}
	{
		struct stat sb;

		/* chmod only when needed: it is an inotify event for the uploader. */
		if (stat(path, &sb) == 0 && (sb.st_mode & 0777) != 0600)
			chmod(path, 0600);
	}
	sqlite3_busy_handler(sp->db, busy_wait, NULL);
	if (open_locked(sp, e) != 0)
		goto fail;
	if (role != SPOOL_ROLE_OPERATOR && spool_recover(sp, e) < 0)
		goto fail;
	return sp;
fail_prefix:
	ierr_prefix(e, "spool %s", dir);
fail:
	spool_close(sp);
	return NULL;
}

void spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	/* A queue left here belongs to a run that did not end (spool_run_end
	 * commits it): its partitions stay open, as after a crash. */
	queue_clear(sp);
	free(sp->queue);
	if (sp->db)
		sqlite3_close(sp->db);
	if (sp->uploader_lock_fd >= 0)
		close(sp->uploader_lock_fd);
	free(sp);
}

sqlite3 *spool_db(struct spool *sp)
{
	return sp->db;
}

const char *spool_dir(const struct spool *sp)
{
	return sp->dir;
}

void sp_lock_path(const struct spool *sp, const char *run_id, char *out, size_t n)
{
	snprintf(out, n, "%s/locks/run-%s.lock", sp->dir, run_id);
}

int sp_remove_path(const char *path, struct ierr *e)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return ierr_errno(e, errno, "unlink %s", path);
	return 0;
}

/* ------------------------------------------------------- collector side */

int spool_run_begin(struct spool *sp, const char *source, const char *db_type, const char *bucket,
                    struct spool_run *run, struct ierr *e)
{
	char ts[32], rnd[9], path[4096];
	int64_t now = now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	sqlite3_stmt *st;

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	random_hex(rnd, 8);
	snprintf(run->run_id, sizeof(run->run_id), "%s-%s", ts, rnd);
	run->started_at = now;
	/* The lock exists and is held before any file or row of the run does. */
	sp_lock_path(sp, run->run_id, path, sizeof(path));
	run->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (run->lock_fd < 0)
		return ierr_errno(e, errno, "spool %s: create %s", sp->dir, path);
	if (flock(run->lock_fd, LOCK_EX) != 0)
		return ierr_errno(e, errno, "spool %s: lock %s", sp->dir, path);
	FAILPOINT("run.after_lock");
	st = sp_prep(sp,
	             "INSERT INTO runs (run_id, source, db_type, bucket, started_at, pid) "
	             "VALUES (?,?,?,?,?,?)",
	             e);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, db_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, getpid());
	return sp_step_done(sp, st, "insert run", e);
}

int spool_run_end(struct spool *sp, struct spool_run *run, const char *state, int tables,
                  uint64_t rows, const char *error, struct ierr *e)
{
	sqlite3_stmt *st;
	int rc;
	char path[4096];
	struct ierr fe = {0};
	bool flush_failed = false;

	/* What is queued was read completely: commit it before the run ends (a
	 * failed run keeps the tables it committed). Failing that, those tables
	 * stay open and are dropped below with the run, which fails. */
	if (commit_queue(sp, NULL, &fe) != 0) {
		flush_failed = true;
		if (strcmp(state, "complete") == 0) {
			state = "failed";
			error = fe.msg;
		}
	}
	st = sp_prep(sp,
	             "UPDATE runs SET state=?2, finished_at=?3, tables=?4, rows=?5, "
	             "error=?6 WHERE run_id=?1",
	             e);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms());
	sqlite3_bind_int(st, 4, tables);
	sqlite3_bind_int64(st, 5, (int64_t)rows);
	if (error)
		sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
	rc = sp_step_done(sp, st, "finish run", e);
	if (rc == 0 && strcmp(state, "failed") == 0) {
		/* Open partitions of a failed run are garbage; committed ones stay. */
		int repairs = 0;

		sp_lock_path(sp, run->run_id, path, sizeof(path));
		/* Keep the lock while cleaning so nobody else races us. */
		st = sp_prep(sp,
		             "SELECT path FROM segments WHERE partition_id IN (SELECT id FROM "
		             "partitions WHERE run_id=? AND state='open')",
		             e);
		if (st != NULL) {
			sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
			while (sqlite3_step(st) == SQLITE_ROW) {
				char full[4096];

				snprintf(full, sizeof(full), "%s/%s", sp->dir,
				         (const char *)sqlite3_column_text(st, 0));
				unlink(full);
				repairs++;
			}
			sqlite3_finalize(st);
		}
		FAILPOINT("run.failed_after_unlink");
		if (sp_begin(sp, e) == 0) {
			char sql[512];

			snprintf(sql, sizeof(sql),
			         "DELETE FROM segments WHERE partition_id IN (SELECT id FROM "
			         "partitions WHERE run_id='%s' AND state='open'); "
			         "DELETE FROM partitions WHERE run_id='%s' AND state='open';",
			         run->run_id, run->run_id);
			if (spool_exec(sp, sql, e) != 0)
				sp_rollback(sp);
			else
				sp_commit(sp, e);
		}
	}
	if (run->lock_fd >= 0) {
		sp_lock_path(sp, run->run_id, path, sizeof(path));
		unlink(path);
		close(run->lock_fd);
		run->lock_fd = -1;
	}
	if (rc == 0 && flush_failed) {
		*e = fe;
		rc = -1;
	}
	return rc;
}

int spool_run_settings(struct spool *sp, const struct spool_run *run, const char *settings_json,
                       struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp, "UPDATE runs SET settings_json=? WHERE run_id=?", e);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, settings_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run->run_id, -1, SQLITE_STATIC);
	return sp_step_done(sp, st, "record run settings", e);
}

/*
 * The rows of an open partition (the partition itself, its `pending`
 * segments) commit without the WAL fsync: nothing reads them but recovery,
 * and losing them in a power cut only leaves what a crash mid-table leaves
 * (files of a dead run without rows, deleted by recovery; the table is redone
 * by the next run). The completing commit is synchronous=FULL and, the WAL
 * being one ordered log, its fsync makes every earlier frame durable with
 * it: a `sealed` segment never reaches the uploader before its rows and its
 * renamed file are on disk. This saves two of the three fsyncs of a
 * one-segment table.
 */
static int pending_insert(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e)
{
	struct ierr e2;
	int rc;

	if (sp_sync(sp, false, e) != 0) {
		sqlite3_finalize(st);
		return -1;
	}
	rc = sp_step_done(sp, st, what, e);
	/* Back to FULL whatever happened; failing that, fail (and the run). */
	if (sp_sync(sp, true, &e2) != 0 && rc == 0) {
		*e = e2;
		rc = -1;
	}
	return rc;
}

int64_t spool_partition_begin(struct spool *sp, const struct spool_run *run, const char *table,
                              const char *manifest_key, struct ierr *e)
{
	sqlite3_stmt *st;

	if (commit_queue_if_due(sp, e) != 0)
		return -1;
	st = sp_prep(sp, "INSERT INTO partitions (run_id, table_name, manifest_key) VALUES (?,?,?)",
	             e);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	if (manifest_key != NULL)
		sqlite3_bind_text(st, 3, manifest_key, -1, SQLITE_STATIC);
	if (pending_insert(sp, st, "insert partition", e) != 0)
		return -1;
	return sqlite3_last_insert_rowid(sp->db);
}

void spool_tmp_path(const struct spool *sp, const struct spool_run *run, int64_t partition_id,
                    uint64_t n, char *out, size_t size)
{
	snprintf(out, size, "%s/tmp/%s.%" PRId64 "-%05" PRIu64 ".tmp", sp->dir, run->run_id,
	         partition_id, n);
}

int spool_segment_seal(struct spool *sp, const struct spool_run *run, int64_t partition_id,
                       const char *table, int seq, const char *tmp_path,
                       const struct segment_info *info, const char *key, struct ierr *e)
{
	char rel[1024], full[4096];
	const char *base = strrchr(tmp_path, '/');
	sqlite3_stmt *st;
	size_t blen;

	/* data/<run-id>.<n><ext>, from tmp/<run-id>.<n>.tmp */
	base = base ? base + 1 : tmp_path;
	blen = strlen(base);
	if (blen < 5)
		return ierr_set(e, IERR_INTERNAL, "bad temporary name %s", tmp_path);
	snprintf(rel, sizeof(rel), "data/%.*s%s", (int)(blen - 4), base, info->ext);
	snprintf(full, sizeof(full), "%s/%s", sp->dir, rel);
	FAILPOINT("seal.before_rename");
	if (rename(tmp_path, full) != 0)
		return ierr_errno(e, errno, "spool: rename %s", tmp_path);
	/* The fsync of data/ is deferred to the partition's commit
	 * (commit_queue), before which the row is only `pending`: one fsync
	 * per group of tables instead of one per segment. */
	sp->data_dir_dirty = true;
	FAILPOINT("seal.before_fsync_dir");
	if (commit_queue_if_due(sp, e) != 0)
		return -1;
	FAILPOINT("seal.before_db_insert");
	st = sp_prep(sp,
	             "INSERT INTO segments (partition_id, run_id, source, table_name, seq, path, "
	             "bucket, key, rows, raw_bytes, bytes, sha256, md5, state, created_at) "
	             "SELECT ?1, ?2, r.source, ?3, ?4, ?5, r.bucket, ?6, ?7, ?8, ?9, ?10, ?11, "
	             "'pending', ?12 FROM runs r WHERE r.run_id=?2",
	             e);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_text(st, 2, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, table, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, seq);
	sqlite3_bind_text(st, 5, rel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)info->rows);
	sqlite3_bind_int64(st, 8, (int64_t)info->raw_bytes);
	sqlite3_bind_int64(st, 9, (int64_t)info->bytes);
	sqlite3_bind_text(st, 10, info->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, info->md5, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, now_ms());
	if (pending_insert(sp, st, "insert segment", e) != 0)
		return ierr_prefix(e, "table \"%s\" segment %d", table, seq);
	FAILPOINT("seal.after_db_insert");
	return 0;
}

int spool_partition_complete(struct spool *sp, int64_t partition_id, uint64_t rows,
                             uint64_t raw_bytes, uint64_t bytes, int segments,
                             const struct lossy *lossy, const char *schema_json, struct ierr *e)
{
	return spool_partition_complete_read(sp, partition_id, rows, raw_bytes, bytes, segments,
	                                     lossy, schema_json, NULL, e);
}

void spool_group_commit(struct spool *sp, int max_tables, int64_t max_ms)
{
	struct ierr e;

	if (commit_queue(sp, NULL, &e) != 0)
		log_event(LOG_WARNING, "spool: group commit", "error", e.msg, NULL);
	free(sp->queue);
	sp->queue = NULL;
	sp->group_max = max_tables;
	sp->group_ms = max_ms;
}

/* The completing statements of one partition, inside the open transaction. */
static int complete_one(struct spool *sp, const struct queued_complete *q,
                        const struct partition_read *rd, struct ierr *e)
{
	sqlite3_stmt *st =
	    sp_prep(sp,
	            "UPDATE partitions SET state='complete', rows=?2, raw_bytes=?3, bytes=?4, "
	            "segments=?5, nonfinite=?6, invalid_utf8=?7, invalid_dates=?8, "
	            "infinite_dates=?9, completed_at=?10, schema_json=?11 "
	            "WHERE id=?1 AND state='open'",
	            e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, q->partition_id);
	sqlite3_bind_int64(st, 2, (int64_t)q->rows);
	sqlite3_bind_int64(st, 3, (int64_t)q->raw_bytes);
	sqlite3_bind_int64(st, 4, (int64_t)q->bytes);
	sqlite3_bind_int(st, 5, q->segments);
	sqlite3_bind_int64(st, 6, (int64_t)q->lossy.nonfinite);
	sqlite3_bind_int64(st, 7, (int64_t)q->lossy.invalid_utf8);
	sqlite3_bind_int64(st, 8, (int64_t)q->lossy.invalid_dates);
	sqlite3_bind_int64(st, 9, (int64_t)q->lossy.infinite_dates);
	sqlite3_bind_int64(st, 10, q->completed_at);
	if (q->schema_json != NULL)
		sqlite3_bind_text(st, 11, q->schema_json, -1, SQLITE_STATIC);
	if (sp_step_done(sp, st, "complete partition", e) != 0)
		return -1;
	FAILPOINT("partition.mid_commit");
	if (sqlite3_changes(sp->db) != 1)
		return ierr_set(e, IERR_SPOOL, "spool: partition %" PRId64 " is not open any more",
		                q->partition_id);
	st = sp_prep(sp,
	             "UPDATE segments SET state='sealed', sealed_at=?2 WHERE partition_id=?1 AND "
	             "state='pending'",
	             e);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, q->partition_id);
	sqlite3_bind_int64(st, 2, q->completed_at);
	if (sp_step_done(sp, st, "seal segments", e) != 0)
		return -1;
	/* The watermark moves in this same transaction: both or neither. */
	if (rd != NULL && sp_partition_read_record(sp, q->partition_id, q->rows, rd, e) != 0)
		return -1;
	FAILPOINT("partition.after_watermark");
	return 0;
}

static void queue_clear(struct spool *sp)
{
	for (int i = 0; i < sp->nqueue; i++)
		free(sp->queue[i].schema_json);
	sp->nqueue = 0;
}

/*
 * Commit every queued completion in one transaction, after the fsync of
 * data/ that makes their renamed files durable (segment seals defer it to
 * here), at synchronous=FULL: when this returns 0 the partitions are sealed
 * and on disk. On failure none of them is (they stay open: the run fails and
 * its open partitions are dropped, the next run redoes the tables); the queue
 * is emptied either way. rd: the last queued partition's read (incremental),
 * committed with it.
 */
static int commit_queue(struct spool *sp, const struct partition_read *rd, struct ierr *e)
{
	int n = sp->nqueue;

	if (n == 0)
		return 0;
	if (sp->data_dir_dirty) {
		char data_dir[4096];

		snprintf(data_dir, sizeof(data_dir), "%s/data", sp->dir);
		if (fsync_dir(data_dir, e) != 0)
			goto fail;
		sp->data_dir_dirty = false;
	}
	if (sp_begin(sp, e) != 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		if (complete_one(sp, &sp->queue[i], i == n - 1 ? rd : NULL, e) != 0) {
			sp_rollback(sp);
			goto fail;
		}
	}
	if (sp_commit(sp, e) != 0)
		goto fail;
	for (int i = 0; i < n; i++)
		FAILPOINT("partition.after_commit");
	queue_clear(sp);
	spool_wakeup(sp);
	return 0;
fail:
	queue_clear(sp);
	return -1;
}

/* Commit the queue when its oldest completion waited group_ms: called by
 * the collector's next spool operation. */
static int commit_queue_if_due(struct spool *sp, struct ierr *e)
{
	if (sp->nqueue == 0 || monotonic_ms() - sp->queue_since < sp->group_ms)
		return 0;
	return commit_queue(sp, NULL, e);
}

int spool_flush(struct spool *sp, struct ierr *e)
{
	return commit_queue(sp, NULL, e);
}

int spool_partition_complete_read(struct spool *sp, int64_t partition_id, uint64_t rows,
                                  uint64_t raw_bytes, uint64_t bytes, int segments,
                                  const struct lossy *lossy, const char *schema_json,
                                  const struct partition_read *rd, struct ierr *e)
{
	struct queued_complete *q;
	int max = sp->group_max > 1 ? sp->group_max : 1;

	FAILPOINT("partition.before_commit");
	/* An incremental table commits at once (its watermark compare-and-set
	 * fails on its own call), with what is queued before it. */
	if (sp->nqueue >= max && commit_queue(sp, NULL, e) != 0)
		return -1;
	if (sp->queue == NULL) {
		sp->queue = calloc((size_t)max, sizeof(*sp->queue));
		if (sp->queue == NULL)
			return ierr_set(e, IERR_INTERNAL, "out of memory");
	}
	q = &sp->queue[sp->nqueue];
	*q = (struct queued_complete){.partition_id = partition_id,
	                              .rows = rows,
	                              .raw_bytes = raw_bytes,
	                              .bytes = bytes,
	                              .segments = segments,
	                              .lossy = *lossy,
	                              .schema_json = schema_json ? strdup(schema_json) : NULL,
	                              .completed_at = now_ms()};
	if (schema_json != NULL && q->schema_json == NULL)
		return ierr_set(e, IERR_INTERNAL, "out of memory");
	if (sp->nqueue++ == 0)
		sp->queue_since = monotonic_ms();
	if (rd != NULL || sp->nqueue >= max || monotonic_ms() - sp->queue_since >= sp->group_ms)
		return commit_queue(sp, rd, e);
	return 0;
}

int64_t spool_bytes_used(struct spool *sp)
{
	return sp_query_int(
	    sp, "SELECT coalesce(sum(bytes),0) FROM segments WHERE file_deleted_at IS NULL", 0);
}

void spool_wakeup(const struct spool *sp)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/.wakeup", sp->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}
