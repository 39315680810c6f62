/*
 * ops_gc.c - `ingesta gc`: delete what is no longer needed (retention, old rows,
 * optionally quarantined segments) in short batches, then checkpoint and
 * VACUUM (contract in ops.h).
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ops_internal.h"
#include "util.h"

static int64_t db_size(const struct spool *sp)
{
	static const char *const names[] = {"spool.db", "spool.db-wal"};
	int64_t total = 0;

	for (int i = 0; i < 2; i++) {
		char path[4096];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", spool_dir(sp), names[i]);
		if (stat(path, &sb) == 0)
			total += (int64_t)sb.st_size;
	}
	return total;
}

/* Run a DELETE in batches (each its own short write transaction) until it
 * changes nothing; returns the rows deleted, or -1. */
static int64_t delete_batches(struct spool *sp, const char *sql, int64_t cutoff, struct ierr *e)
{
	int64_t total = 0;

	for (;;) {
		sqlite3_stmt *st = ops_prep(sp, sql, e);
		int64_t n;

		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, cutoff);
		n = ops_write_one(sp, st, "gc", e);
		if (n < 0)
			return -1;
		if (n == 0)
			return total;
		total += n;
	}
}

/* A quarantined segment to drop. */
struct qrow {
	int64_t id;
	int64_t partition_id;
	char path[1024];
	char key[1024];
	bool has_file;
};

static int drop_quarantined(struct spool *sp, struct gc_result *r, FILE *out, bool json,
                            struct ierr *e)
{
	struct qrow *rows = NULL;
	sqlite3_stmt *st = ops_prep(sp,
	                            "SELECT id, partition_id, path, key, file_deleted_at IS NULL "
	                            "FROM segments WHERE state='quarantined' ORDER BY id",
	                            e);
	int n = 0, cap = 0, rc = 0;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = xrealloc(rows, (size_t)cap * sizeof(*rows));
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		rows[n].partition_id = sqlite3_column_int64(st, 1);
		snprintf(rows[n].path, sizeof(rows[n].path), "%s", ops_col(st, 2));
		snprintf(rows[n].key, sizeof(rows[n].key), "%s", ops_col(st, 3));
		rows[n].has_file = sqlite3_column_int(st, 4) != 0;
		n++;
	}
	sqlite3_finalize(st);
	for (int i = 0; i < n && rc == 0; i++) {
		char full[4096];
		int64_t changed;

		/* DB first, file second: a crash between leaves an unrecorded file,
		 * which recovery deletes; never a row without its file. The partition
		 * never gets a manifest: it lost a segment, so it is incomplete. */
		if (spool_exec(sp, "BEGIN IMMEDIATE", e) != 0)
			break;
		st = ops_prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e);
		if (st)
			sqlite3_bind_int64(st, 1, rows[i].id);
		if (st == NULL || sqlite3_step(st) != SQLITE_DONE)
			rc = st ? ops_db_fail(sp, e, "gc") : -1;
		sqlite3_finalize(st);
		st =
		    rc ? NULL
		       : ops_prep(sp, "DELETE FROM segments WHERE id=? AND state='quarantined'", e);
		if (st) {
			sqlite3_bind_int64(st, 1, rows[i].id);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = ops_db_fail(sp, e, "gc");
		} else if (rc == 0) {
			rc = -1;
		}
		changed = sqlite3_changes(spool_db(sp));
		sqlite3_finalize(st);
		st = rc ? NULL
		        : ops_prep(sp, "UPDATE partitions SET manifest_state='written' WHERE id=?",
		                   e);
		if (st) {
			sqlite3_bind_int64(st, 1, rows[i].partition_id);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = ops_db_fail(sp, e, "gc");
			sqlite3_finalize(st);
		} else if (rc == 0) {
			rc = -1;
		}
		if (rc != 0 || spool_exec(sp, "COMMIT", e) != 0) {
			spool_exec(sp, "ROLLBACK", NULL);
			rc = -1;
			break;
		}
		if (changed == 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", spool_dir(sp), rows[i].path);
		if (rows[i].has_file && unlink(full) != 0 && errno != ENOENT)
			log_event(LOG_WARNING, "gc: could not delete a quarantined file", "file",
			          full, "error", strerror(errno), NULL);
		if (!json)
			fprintf(out, "dropped quarantined #%" PRId64 " %s\n", rows[i].id,
			        rows[i].key);
		r->quarantined++;
	}
	free(rows);
	return rc;
}

int ops_gc(struct spool *sp, const struct gc_opts *o, FILE *out, struct gc_result *r,
           struct ierr *e)
{
	int64_t cutoff = now_ms() - o->older_than_ms;
	char before[32], after[32];

	memset(r, 0, sizeof(*r));
	r->db_bytes_before = db_size(sp);
	r->files = spool_apply_retention(sp, o->retention_ms, e);
	if (r->files < 0)
		return -1;
	if (o->drop_quarantined && drop_quarantined(sp, r, out, o->json, e) != 0)
		return -1;
	/* Rows of uploaded segments whose file is gone and whose partition has its
	 * manifest (so the manifest never misses a file). */
	r->segments =
	    delete_batches(sp,
	                   "DELETE FROM segments WHERE id IN (SELECT s.id FROM segments s "
	                   "JOIN partitions p ON p.id=s.partition_id WHERE s.state='uploaded' "
	                   "AND s.file_deleted_at IS NOT NULL AND s.uploaded_at <= ?1 "
	                   "AND p.manifest_state='written' AND NOT EXISTS (SELECT 1 FROM "
	                   "segment_parts sp WHERE sp.segment_id=s.id) LIMIT 500)",
	                   cutoff, e);
	if (r->segments < 0)
		return -1;
	r->partitions = delete_batches(sp,
	                               "DELETE FROM partitions WHERE id IN (SELECT p.id FROM "
	                               "partitions p WHERE p.state='complete' AND "
	                               "p.manifest_state='written' AND "
	                               "coalesce(p.completed_at,0) <= ?1 AND NOT EXISTS "
	                               "(SELECT 1 FROM segments s WHERE s.partition_id=p.id) "
	                               "LIMIT 500)",
	                               cutoff, e);
	if (r->partitions < 0)
		return -1;
	r->runs = delete_batches(sp,
	                         "DELETE FROM runs WHERE run_id IN (SELECT r.run_id FROM runs r "
	                         "WHERE r.state <> 'running' AND "
	                         "coalesce(r.finished_at, r.started_at) <= ?1 AND NOT EXISTS "
	                         "(SELECT 1 FROM partitions p WHERE p.run_id=r.run_id) AND NOT "
	                         "EXISTS (SELECT 1 FROM segments s WHERE s.run_id=r.run_id) "
	                         "LIMIT 500)",
	                         cutoff, e);
	if (r->runs < 0)
		return -1;

	/* Give the space back: checkpoint the WAL into the DB, rebuild it, and
	 * truncate the WAL that VACUUM itself filled. VACUUM waits (busy timeout)
	 * for writers; if it cannot get its turn it is skipped, not an error. */
	spool_exec(sp, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	{
		struct ierr ve = {0};

		r->vacuumed = spool_exec(sp, "VACUUM", &ve) == 0;
		if (!r->vacuumed)
			log_event(LOG_WARNING, "gc: VACUUM skipped", "error", ve.msg, NULL);
	}
	spool_exec(sp, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	r->db_bytes_after = db_size(sp);

	human_bytes(before, sizeof(before), (uint64_t)r->db_bytes_before);
	human_bytes(after, sizeof(after), (uint64_t)r->db_bytes_after);
	if (o->json)
		fprintf(out,
		        "{\"files_deleted\":%d,\"segments_deleted\":%" PRId64
		        ",\"partitions_deleted\":%" PRId64 ",\"runs_deleted\":%" PRId64
		        ",\"quarantined_dropped\":%" PRId64 ",\"db_bytes_before\":%" PRId64
		        ",\"db_bytes_after\":%" PRId64 ",\"vacuumed\":%s}\n",
		        r->files, r->segments, r->partitions, r->runs, r->quarantined,
		        r->db_bytes_before, r->db_bytes_after, r->vacuumed ? "true" : "false");
	else
		fprintf(out,
		        "gc: deleted %d uploaded file(s) past RETENTION; %" PRId64
		        " segment, %" PRId64 " partition and %" PRId64
		        " run row(s) older than --older-than%s; spool.db %s -> %s%s\n",
		        r->files, r->segments, r->partitions, r->runs,
		        r->quarantined ? " (and quarantined segments dropped)" : "", before, after,
		        r->vacuumed ? "" : " (VACUUM skipped: the spool was busy)");
	return 0;
}
