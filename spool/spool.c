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
#include "util.h"

struct spool {
	sqlite3 *db;
	char dir[3072];
	int uploader_lock_fd;
};

#define BUSY_TIMEOUT_MS 30000

static int db_error(struct spool *sp, struct ierr *e, const char *what)
{
	int code = sqlite3_errcode(sp->db);
	enum ierr_code c =
	    (code == SQLITE_FULL || code == SQLITE_IOERR) ? IERR_NOSPACE : IERR_SPOOL;

	if (code == SQLITE_IOERR && sqlite3_system_errno(sp->db) != ENOSPC)
		c = IERR_SPOOL;
	return ierr_set(e, c, "spool %s/spool.db: %s: %s", sp->dir, what, sqlite3_errmsg(sp->db));
}

int spool_exec(struct spool *sp, const char *sql, struct ierr *e)
{
	char *msg = NULL;

	if (sqlite3_exec(sp->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_errcode(sp->db);

		ierr_set(e, code == SQLITE_FULL ? IERR_NOSPACE : IERR_SPOOL,
		         "spool %s/spool.db: %s", sp->dir, msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int begin(struct spool *sp, struct ierr *e)
{
	return spool_exec(sp, "BEGIN IMMEDIATE", e);
}

static int commit(struct spool *sp, struct ierr *e)
{
	if (spool_exec(sp, "COMMIT", e) != 0) {
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static void rollback(struct spool *sp)
{
	sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *prep(struct spool *sp, const char *sql, struct ierr *e)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_error(sp, e, "prepare");
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows; finalizes it. */
static int step_done(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_error(sp, e, what);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static int64_t query_int(struct spool *sp, const char *sql, int64_t dflt)
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
	int64_t version = query_int(sp, "PRAGMA user_version", 0);
	char sql[64];

	if (version > SCHEMA_VERSION)
		return ierr_set(e, IERR_SPOOL,
		                "spool %s was written by a newer ingesta (schema version %" PRId64
		                ", this binary knows up to %d): upgrade ingesta or use another "
		                "SPOOL_DIR",
		                sp->dir, version, SCHEMA_VERSION);
	if (version == SCHEMA_VERSION)
		return 0;
	if (begin(sp, e) != 0)
		return -1;
	/* Re-read inside the write lock: another process may have migrated. */
	version = query_int(sp, "PRAGMA user_version", 0);
	for (int64_t v = version; v < SCHEMA_VERSION; v++) {
		if (spool_exec(sp, schema_migrations[v], e) != 0) {
			rollback(sp);
			return ierr_prefix(e, "migration %03" PRId64, v + 1);
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (spool_exec(sp, sql, e) != 0) {
		rollback(sp);
		return -1;
	}
	return commit(sp, e);
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
	chmod(path, 0600);
	sqlite3_busy_timeout(sp->db, BUSY_TIMEOUT_MS);
	if (spool_exec(sp, "PRAGMA journal_mode=WAL", e) != 0 ||
	    spool_exec(sp, "PRAGMA synchronous=FULL", e) != 0 ||
	    spool_exec(sp, "PRAGMA foreign_keys=ON", e) != 0)
		goto fail;
	if (migrate(sp, e) != 0)
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

/* ---------------------------------------------------------------- locks */

static void lock_path(const struct spool *sp, const char *run_id, char *out, size_t n)
{
	snprintf(out, n, "%s/locks/run-%s.lock", sp->dir, run_id);
}

/* true when no live process holds the run's lock. */
static bool run_is_dead(const struct spool *sp, const char *run_id)
{
	char path[4096];
	int fd;
	bool dead;

	lock_path(sp, run_id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return true;
	dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return dead;
}

int spool_uploader_lock(struct spool *sp, struct ierr *e)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/locks/uploader.lock", sp->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ierr_errno(e, errno, "spool %s: open %s", sp->dir, path);
	/* `status` probes this lock for an instant: retry briefly before giving up. */
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
		if (i == 10) {
			close(fd);
			return ierr_set(
			    e, IERR_SPOOL,
			    "spool %s: another uploader is running on this spool (%s is locked)",
			    sp->dir, path);
		}
		usleep(20000);
	}
	sp->uploader_lock_fd = fd;
	/* Holding the lock, every `uploading` row belongs to a dead uploader. */
	if (spool_exec(sp, "UPDATE segments SET state='sealed' WHERE state='uploading'", e) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- recovery */

/* Run id from a file name "<run-id>.<n>...". */
static bool name_run_id(const char *name, char *out, size_t n)
{
	const char *dot = strchr(name, '.');

	if (dot == NULL || (size_t)(dot - name) >= n || dot == name)
		return false;
	memcpy(out, name, (size_t)(dot - name));
	out[dot - name] = '\0';
	return true;
}

static int remove_path(const char *path, struct ierr *e)
{
	if (unlink(path) != 0 && errno != ENOENT)
		return ierr_errno(e, errno, "unlink %s", path);
	return 0;
}

static bool path_recorded(struct spool *sp, const char *rel)
{
	sqlite3_stmt *st = NULL;
	bool found = true; /* on error, assume recorded: never delete by doubt */

	if (sqlite3_prepare_v2(sp->db, "SELECT 1 FROM segments WHERE path=?", -1, &st, NULL) !=
	    SQLITE_OK)
		return true;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		found = false;
	sqlite3_finalize(st);
	return found;
}

/* Delete temporary files and unrecorded data files of dead runs. */
static int sweep_dir(struct spool *sp, const char *sub, bool check_db, int *repairs, struct ierr *e)
{
	char path[4096];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", sp->dir, sub);
	d = opendir(path);
	if (d == NULL)
		return ierr_errno(e, errno, "spool: opendir %s", path);
	while ((de = readdir(d)) != NULL) {
		char run_id[64], rel[600], full[4096];

		if (de->d_name[0] == '.')
			continue;
		if (!name_run_id(de->d_name, run_id, sizeof(run_id)))
			continue;
		if (!run_is_dead(sp, run_id))
			continue;
		snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name);
		if (check_db && path_recorded(sp, rel))
			continue;
		snprintf(full, sizeof(full), "%s/%s", sp->dir, rel);
		log_event(LOG_WARNING, "recovery: removing file left by a dead collector", "file",
		          full, NULL);
		if (remove_path(full, e) != 0) {
			closedir(d);
			return -1;
		}
		(*repairs)++;
	}
	closedir(d);
	return 0;
}

/* Drop the open partitions (and their pending segments) of dead runs. */
static int abandon_dead_runs(struct spool *sp, int *repairs, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp, "SELECT run_id FROM runs WHERE state='running'", e);
	struct {
		char id[64];
	} dead[256];
	int ndead = 0;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW && ndead < 256) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id && run_is_dead(sp, id))
			snprintf(dead[ndead++].id, sizeof(dead[0].id), "%s", id);
	}
	sqlite3_finalize(st);

	for (int i = 0; i < ndead; i++) {
		sqlite3_stmt *files;
		char lock[4096];

		/* Files first, DB second: a crash between leaves rows without
		 * files of an open partition, which this same loop removes. */
		files =
		    prep(sp,
		         "SELECT s.path FROM segments s JOIN partitions p ON p.id=s.partition_id "
		         "WHERE p.run_id=? AND p.state='open'",
		         e);
		if (files == NULL)
			return -1;
		sqlite3_bind_text(files, 1, dead[i].id, -1, SQLITE_STATIC);
		while (sqlite3_step(files) == SQLITE_ROW) {
			char full[4096];

			snprintf(full, sizeof(full), "%s/%s", sp->dir,
			         (const char *)sqlite3_column_text(files, 0));
			if (remove_path(full, e) != 0) {
				sqlite3_finalize(files);
				return -1;
			}
		}
		sqlite3_finalize(files);
		FAILPOINT("recovery.after_unlink");
		if (begin(sp, e) != 0)
			return -1;
		st = prep(sp,
		          "DELETE FROM segments WHERE partition_id IN (SELECT id FROM partitions "
		          "WHERE run_id=?1 AND state='open')",
		          e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		if (step_done(sp, st, "recovery", e) != 0)
			goto fail;
		st = prep(sp, "DELETE FROM partitions WHERE run_id=?1 AND state='open'", e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		if (step_done(sp, st, "recovery", e) != 0)
			goto fail;
		st = prep(sp,
		          "UPDATE runs SET state='abandoned', finished_at=?2, "
		          "error=coalesce(error,'collector died (recovered)') WHERE run_id=?1",
		          e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_ms());
		if (step_done(sp, st, "recovery", e) != 0)
			goto fail;
		if (commit(sp, e) != 0)
			return -1;
		log_event(LOG_WARNING, "recovery: dropped the unfinished tables of a dead run",
		          "run", dead[i].id, NULL);
		lock_path(sp, dead[i].id, lock, sizeof(lock));
		unlink(lock);
		(*repairs)++;
	}
	return 0;
fail:
	rollback(sp);
	return -1;
}

/* Segments whose file vanished while still needed: quarantine, loudly. */
static int check_missing_files(struct spool *sp, int *repairs, struct ierr *e)
{
	sqlite3_stmt *st =
	    prep(sp,
	         "SELECT id, path, state FROM segments WHERE file_deleted_at IS NULL "
	         "AND state IN ('sealed','uploading','failed','uploaded')",
	         e);
	int64_t missing[512];
	int nmissing = 0;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW && nmissing < 512) {
		char full[4096];
		struct stat sb;

		snprintf(full, sizeof(full), "%s/%s", sp->dir,
		         (const char *)sqlite3_column_text(st, 1));
		if (stat(full, &sb) != 0 && errno == ENOENT)
			missing[nmissing++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (int i = 0; i < nmissing; i++) {
		sqlite3_stmt *u = prep(sp,
		                       "UPDATE segments SET file_deleted_at=?2, "
		                       "state=CASE state WHEN 'uploaded' THEN 'uploaded' "
		                       "ELSE 'quarantined' END, "
		                       "last_error=CASE state WHEN 'uploaded' THEN last_error "
		                       "ELSE 'segment file missing from the spool' END "
		                       "WHERE id=?1",
		                       e);
		if (u == NULL)
			return -1;
		sqlite3_bind_int64(u, 1, missing[i]);
		sqlite3_bind_int64(u, 2, now_ms());
		if (step_done(sp, u, "recovery", e) != 0)
			return -1;
		(*repairs)++;
	}
	return 0;
}

int spool_recover(struct spool *sp, struct ierr *e)
{
	int repairs = 0;

	if (abandon_dead_runs(sp, &repairs, e) != 0 ||
	    sweep_dir(sp, "tmp", false, &repairs, e) != 0 ||
	    sweep_dir(sp, "data", true, &repairs, e) != 0 ||
	    check_missing_files(sp, &repairs, e) != 0)
		return -1;
	return repairs;
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
	lock_path(sp, run->run_id, path, sizeof(path));
	run->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (run->lock_fd < 0)
		return ierr_errno(e, errno, "spool %s: create %s", sp->dir, path);
	if (flock(run->lock_fd, LOCK_EX) != 0)
		return ierr_errno(e, errno, "spool %s: lock %s", sp->dir, path);
	FAILPOINT("run.after_lock");
	st = prep(sp,
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
	return step_done(sp, st, "insert run", e);
}

int spool_run_end(struct spool *sp, struct spool_run *run, const char *state, int tables,
                  uint64_t rows, const char *error, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE runs SET state=?2, finished_at=?3, tables=?4, rows=?5, "
	                        "error=?6 WHERE run_id=?1",
	                        e);
	int rc;
	char path[4096];

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms());
	sqlite3_bind_int(st, 4, tables);
	sqlite3_bind_int64(st, 5, (int64_t)rows);
	if (error)
		sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
	rc = step_done(sp, st, "finish run", e);
	if (rc == 0 && strcmp(state, "failed") == 0) {
		/* Open partitions of a failed run are garbage; committed ones stay. */
		int repairs = 0;

		lock_path(sp, run->run_id, path, sizeof(path));
		/* Keep the lock while cleaning so nobody else races us. */
		st = prep(sp,
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
		if (begin(sp, e) == 0) {
			char sql[512];

			snprintf(sql, sizeof(sql),
			         "DELETE FROM segments WHERE partition_id IN (SELECT id FROM "
			         "partitions WHERE run_id='%s' AND state='open'); "
			         "DELETE FROM partitions WHERE run_id='%s' AND state='open';",
			         run->run_id, run->run_id);
			if (spool_exec(sp, sql, e) != 0)
				rollback(sp);
			else
				commit(sp, e);
		}
	}
	if (run->lock_fd >= 0) {
		lock_path(sp, run->run_id, path, sizeof(path));
		unlink(path);
		close(run->lock_fd);
		run->lock_fd = -1;
	}
	return rc;
}

int64_t spool_partition_begin(struct spool *sp, const struct spool_run *run, const char *table,
                              struct ierr *e)
{
	sqlite3_stmt *st = prep(sp, "INSERT INTO partitions (run_id, table_name) VALUES (?,?)", e);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	if (step_done(sp, st, "insert partition", e) != 0)
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
	char rel[1024], full[4096], data_dir[4096];
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
	snprintf(data_dir, sizeof(data_dir), "%s/data", sp->dir);

	FAILPOINT("seal.before_rename");
	if (rename(tmp_path, full) != 0)
		return ierr_errno(e, errno, "spool: rename %s", tmp_path);
	FAILPOINT("seal.before_fsync_dir");
	if (fsync_dir(data_dir, e) != 0)
		return -1;
	FAILPOINT("seal.before_db_insert");
	st = prep(sp,
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
	if (step_done(sp, st, "insert segment", e) != 0)
		return ierr_prefix(e, "table \"%s\" segment %d", table, seq);
	FAILPOINT("seal.after_db_insert");
	return 0;
}

int spool_partition_complete(struct spool *sp, int64_t partition_id, uint64_t rows,
                             uint64_t raw_bytes, uint64_t bytes, int segments,
                             const struct lossy *lossy, struct ierr *e)
{
	sqlite3_stmt *st;
	int64_t now = now_ms();

	FAILPOINT("partition.before_commit");
	if (begin(sp, e) != 0)
		return -1;
	st = prep(sp,
	          "UPDATE partitions SET state='complete', rows=?2, raw_bytes=?3, bytes=?4, "
	          "segments=?5, nonfinite=?6, invalid_utf8=?7, invalid_dates=?8, "
	          "infinite_dates=?9, completed_at=?10 WHERE id=?1 AND state='open'",
	          e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_int64(st, 2, (int64_t)rows);
	sqlite3_bind_int64(st, 3, (int64_t)raw_bytes);
	sqlite3_bind_int64(st, 4, (int64_t)bytes);
	sqlite3_bind_int(st, 5, segments);
	sqlite3_bind_int64(st, 6, (int64_t)lossy->nonfinite);
	sqlite3_bind_int64(st, 7, (int64_t)lossy->invalid_utf8);
	sqlite3_bind_int64(st, 8, (int64_t)lossy->invalid_dates);
	sqlite3_bind_int64(st, 9, (int64_t)lossy->infinite_dates);
	sqlite3_bind_int64(st, 10, now);
	if (step_done(sp, st, "complete partition", e) != 0)
		goto fail;
	FAILPOINT("partition.mid_commit");
	if (sqlite3_changes(sp->db) != 1) {
		ierr_set(e, IERR_SPOOL, "spool: partition %" PRId64 " is not open any more",
		         partition_id);
		goto fail;
	}
	st = prep(sp,
	          "UPDATE segments SET state='sealed', sealed_at=?2 WHERE partition_id=?1 AND "
	          "state='pending'",
	          e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_int64(st, 2, now);
	if (step_done(sp, st, "seal segments", e) != 0)
		goto fail;
	if (commit(sp, e) != 0)
		return -1;
	FAILPOINT("partition.after_commit");
	spool_wakeup(sp);
	return 0;
fail:
	rollback(sp);
	return -1;
}

int64_t spool_bytes_used(struct spool *sp)
{
	return query_int(
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

/* -------------------------------------------------------- uploader side */

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

int spool_claim_next(struct spool *sp, struct segment *out, struct ierr *e)
{
	sqlite3_stmt *st;
	int rc;
	char rel[1024];

	if (begin(sp, e) != 0)
		return -1;
	st = prep(sp,
	          "SELECT id, partition_id, run_id, source, table_name, path, bucket, key, rows, "
	          "bytes, sha256, md5, attempts, coalesce(upload_id,'') FROM segments "
	          "WHERE state='sealed' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id "
	          "LIMIT 1",
	          e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, now_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		rollback(sp);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		db_error(sp, e, "claim segment");
		sqlite3_finalize(st);
		goto fail;
	}
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(st, 0);
	out->partition_id = sqlite3_column_int64(st, 1);
	copy_col(out->run_id, sizeof(out->run_id), st, 2);
	copy_col(out->source, sizeof(out->source), st, 3);
	copy_col(out->table, sizeof(out->table), st, 4);
	copy_col(rel, sizeof(rel), st, 5);
	snprintf(out->path, sizeof(out->path), "%s/%s", sp->dir, rel);
	copy_col(out->bucket, sizeof(out->bucket), st, 6);
	copy_col(out->key, sizeof(out->key), st, 7);
	out->rows = (uint64_t)sqlite3_column_int64(st, 8);
	out->bytes = (uint64_t)sqlite3_column_int64(st, 9);
	copy_col(out->sha256, sizeof(out->sha256), st, 10);
	copy_col(out->md5, sizeof(out->md5), st, 11);
	out->attempts = sqlite3_column_int(st, 12) + 1;
	copy_col(out->upload_id, sizeof(out->upload_id), st, 13);
	sqlite3_finalize(st);
	st = prep(sp, "UPDATE segments SET state='uploading', attempts=attempts+1 WHERE id=?", e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, out->id);
	if (step_done(sp, st, "claim segment", e) != 0)
		goto fail;
	if (commit(sp, e) != 0)
		return -1;
	return 1;
fail:
	rollback(sp);
	return -1;
}

int64_t spool_next_due(struct spool *sp)
{
	return query_int(sp, "SELECT min(next_attempt_at) FROM segments WHERE state='sealed'", -1);
}

int64_t spool_count_state(struct spool *sp, const char *state)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(sp->db, "SELECT count(*) FROM segments WHERE state=?", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int spool_mark_uploaded(struct spool *sp, int64_t id, const char *etag, struct ierr *e)
{
	sqlite3_stmt *st;

	FAILPOINT("upload.before_mark_uploaded");
	if (begin(sp, e) != 0)
		return -1;
	st = prep(sp,
	          "UPDATE segments SET state='uploaded', uploaded_at=?2, etag=?3, "
	          "last_error=NULL, last_error_code=NULL, upload_id=NULL WHERE id=?1",
	          e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms());
	sqlite3_bind_text(st, 3, etag ? etag : "", -1, SQLITE_STATIC);
	if (step_done(sp, st, "mark uploaded", e) != 0)
		goto fail;
	st = prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (step_done(sp, st, "mark uploaded", e) != 0)
		goto fail;
	return commit(sp, e);
fail:
	rollback(sp);
	return -1;
}

int spool_mark_retry(struct spool *sp, int64_t id, bool permanent, int64_t next_attempt_at,
                     int max_attempts, const char *code, const char *msg, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE segments SET state=CASE WHEN ?2 OR attempts >= ?3 THEN "
	                        "'failed' ELSE 'sealed' END, next_attempt_at=?4, "
	                        "last_error_code=?5, last_error=?6 WHERE id=?1",
	                        e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, permanent ? 1 : 0);
	sqlite3_bind_int(st, 3, max_attempts);
	sqlite3_bind_int64(st, 4, next_attempt_at);
	sqlite3_bind_text(st, 5, code ? code : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, msg ? msg : "", -1, SQLITE_STATIC);
	return step_done(sp, st, "record upload error", e);
}

int spool_mark_quarantined(struct spool *sp, int64_t id, const char *msg, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE segments SET state='quarantined', last_error_code="
	                        "'ChecksumMismatch', last_error=?2 WHERE id=?1",
	                        e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
	return step_done(sp, st, "quarantine", e);
}

int spool_set_upload_id(struct spool *sp, int64_t id, const char *upload_id, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp, "UPDATE segments SET upload_id=?2 WHERE id=?1", e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (upload_id && *upload_id)
		sqlite3_bind_text(st, 2, upload_id, -1, SQLITE_STATIC);
	if (step_done(sp, st, "record upload id", e) != 0)
		return -1;
	if (upload_id == NULL || *upload_id == '\0') {
		st = prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		return step_done(sp, st, "forget parts", e);
	}
	return 0;
}

int spool_part_done(struct spool *sp, int64_t id, int part_number, uint64_t size, const char *etag,
                    struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "INSERT OR REPLACE INTO segment_parts (segment_id, part_number, "
	                        "size, etag) VALUES (?,?,?,?)",
	                        e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, part_number);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
	return step_done(sp, st, "record part", e);
}

/* Manifest key: the directory of the partition's first segment key. */
static void manifest_key(const char *seg_key, const char *run_id, char *out, size_t n)
{
	const char *slash = strrchr(seg_key, '/');

	if (slash)
		snprintf(out, n, "%.*s/_manifest-%s.json", (int)(slash - seg_key), seg_key, run_id);
	else
		snprintf(out, n, "_manifest-%s.json", run_id);
}

int spool_next_manifest(struct spool *sp, struct manifest_job *job, struct ierr *e)
{
	sqlite3_stmt *st =
	    prep(sp,
	         "SELECT p.id, p.run_id, p.table_name, p.rows, p.bytes, r.bucket, "
	         "r.source FROM partitions p JOIN runs r ON r.run_id=p.run_id "
	         "WHERE p.state='complete' AND p.manifest_state='none' AND NOT EXISTS "
	         "(SELECT 1 FROM segments s WHERE s.partition_id=p.id AND "
	         "s.state <> 'uploaded') ORDER BY p.id LIMIT 1",
	         e);
	struct buf b = {0};
	struct lossy none = {0};
	int rc;
	bool first = true;
	char first_key[1024] = "";

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : db_error(sp, e, "find manifests");
	}
	memset(job, 0, sizeof(*job));
	job->partition_id = sqlite3_column_int64(st, 0);
	copy_col(job->run_id, sizeof(job->run_id), st, 1);
	copy_col(job->bucket, sizeof(job->bucket), st, 5);
	buf_puts(&b, "{\"run_id\":");
	json_string(&b, job->run_id, strlen(job->run_id), &none);
	buf_puts(&b, ",\"source\":");
	json_string(&b, (const char *)sqlite3_column_text(st, 6),
	            (size_t)sqlite3_column_bytes(st, 6), &none);
	buf_puts(&b, ",\"table\":");
	json_string(&b, (const char *)sqlite3_column_text(st, 2),
	            (size_t)sqlite3_column_bytes(st, 2), &none);
	buf_printf(&b, ",\"rows\":%lld,\"bytes\":%lld,\"files\":[",
	           (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4));
	sqlite3_finalize(st);

	st = prep(sp,
	          "SELECT key, rows, bytes, sha256, md5 FROM segments WHERE partition_id=? "
	          "ORDER BY seq",
	          e);
	if (st == NULL) {
		buf_free(&b);
		return -1;
	}
	sqlite3_bind_int64(st, 1, job->partition_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);

		if (first)
			snprintf(first_key, sizeof(first_key), "%s", key);
		buf_puts(&b, first ? "{\"key\":" : ",{\"key\":");
		first = false;
		json_string(&b, key, strlen(key), &none);
		buf_printf(&b, ",\"rows\":%lld,\"bytes\":%lld,\"sha256\":\"%s\",\"md5\":\"%s\"}",
		           (long long)sqlite3_column_int64(st, 1),
		           (long long)sqlite3_column_int64(st, 2),
		           (const char *)sqlite3_column_text(st, 3),
		           (const char *)sqlite3_column_text(st, 4));
	}
	sqlite3_finalize(st);
	buf_puts(&b, "]}\n");
	if (first) {
		/* An empty table: no segments, so no partition directory to describe. */
		buf_free(&b);
		if (spool_manifest_written(sp, job->partition_id, e) != 0)
			return -1;
		return spool_next_manifest(sp, job, e);
	}
	manifest_key(first_key, job->run_id, job->key, sizeof(job->key));
	job->json = strdup(buf_cstr(&b));
	buf_free(&b);
	return 1;
}

int spool_manifest_written(struct spool *sp, int64_t partition_id, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp, "UPDATE partitions SET manifest_state='written' WHERE id=?", e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, partition_id);
	return step_done(sp, st, "manifest written", e);
}

int spool_apply_retention(struct spool *sp, int64_t retention_ms, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "SELECT id, path FROM segments WHERE state='uploaded' AND "
	                        "file_deleted_at IS NULL AND uploaded_at <= ?",
	                        e);
	int n = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now_ms() - retention_ms);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char full[4096];
		sqlite3_stmt *u;

		snprintf(full, sizeof(full), "%s/%s", sp->dir,
		         (const char *)sqlite3_column_text(st, 1));
		/* File first: a crash before the update leaves a row whose file is
		 * gone, which recovery records as deleted. */
		if (remove_path(full, e) != 0) {
			sqlite3_finalize(st);
			return -1;
		}
		FAILPOINT("retention.after_unlink");
		u = prep(sp, "UPDATE segments SET file_deleted_at=?2 WHERE id=?1", e);
		if (u == NULL) {
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(st, 0));
		sqlite3_bind_int64(u, 2, now_ms());
		if (step_done(sp, u, "retention", e) != 0) {
			sqlite3_finalize(st);
			return -1;
		}
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

int spool_replay(struct spool *sp, const int64_t *ids, int nids, struct ierr *e)
{
	sqlite3_stmt *st;
	int n = 0;

	if (begin(sp, e) != 0)
		return -1;
	if (ids == NULL) {
		if (spool_exec(sp,
		               "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
		               "WHERE state='failed'",
		               e) != 0)
			goto fail;
		n = sqlite3_changes(sp->db);
	} else {
		st = prep(sp,
		          "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
		          "WHERE id=? AND state IN ('failed','quarantined')",
		          e);
		if (st == NULL)
			goto fail;
		for (int i = 0; i < nids; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, ids[i]);
			if (sqlite3_step(st) != SQLITE_DONE) {
				db_error(sp, e, "replay");
				sqlite3_finalize(st);
				goto fail;
			}
			n += sqlite3_changes(sp->db);
		}
		sqlite3_finalize(st);
	}
	if (commit(sp, e) != 0)
		return -1;
	spool_wakeup(sp);
	return n;
fail:
	rollback(sp);
	return -1;
}

void spool_counter_add(struct spool *sp, const char *name, int64_t delta)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(
	        sp->db,
	        "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT(name) "
	        "DO UPDATE SET value = value + ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, delta);
	sqlite3_step(st);
	sqlite3_finalize(st);
}
