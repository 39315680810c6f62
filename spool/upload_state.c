/*
 * upload_state.c - the uploader's side of the spool: claiming due segments and
 * recording each outcome (uploaded, retry with backoff, failed, quarantined),
 * multipart progress, manifests of fully uploaded partitions, retention, and
 * replay. Every transition is one transaction (spool.h, "Contract").
 */
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
#include "spool.h"
#include "spool_internal.h"
#include "util.h"

/* -------------------------------------------------------- uploader side */

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static void read_claimed(struct spool *sp, sqlite3_stmt *st, struct segment *out)
{
	char rel[1024];

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
}

/*
 * Claim up to max due segments in one transaction: the first one always,
 * then more while their bytes add up to at most max_bytes (many small
 * segments per round trip, one large one at a time so that the workers
 * share large objects evenly).
 */
int spool_claim_batch(struct spool *sp, struct segment *out, int max, uint64_t max_bytes,
                      struct ierr *e)
{
	sqlite3_stmt *st, *up;
	uint64_t bytes = 0;
	int n = 0, rc = SQLITE_DONE;

	if (sp_begin(sp, e) != 0)
		return -1;
	st =
	    sp_prep(sp,
	            "SELECT id, partition_id, run_id, source, table_name, path, bucket, key, rows, "
	            "bytes, sha256, md5, attempts, coalesce(upload_id,'') FROM segments "
	            "WHERE state='sealed' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id "
	            "LIMIT ?2",
	            e);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, now_ms());
	sqlite3_bind_int(st, 2, max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t b = (uint64_t)sqlite3_column_int64(st, 9);

		if (n > 0 && bytes + b > max_bytes)
			break;
		read_claimed(sp, st, &out[n]);
		bytes += b;
		n++;
	}
	if (n < max && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sp_db_error(sp, e, "claim segment");
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (n == 0) {
		sp_rollback(sp);
		return 0;
	}
	up =
	    sp_prep(sp, "UPDATE segments SET state='uploading', attempts=attempts+1 WHERE id=?", e);
	if (up == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, out[i].id);
		if (sqlite3_step(up) != SQLITE_DONE) {
			sp_db_error(sp, e, "claim segment");
			sqlite3_finalize(up);
			goto fail;
		}
	}
	sqlite3_finalize(up);
	if (sp_commit(sp, e) != 0)
		return -1;
	return n;
fail:
	sp_rollback(sp);
	return -1;
}

int spool_claim_next(struct spool *sp, struct segment *out, struct ierr *e)
{
	return spool_claim_batch(sp, out, 1, 0, e);
}

int spool_release_claims(struct spool *sp, const struct segment *segs, int n, struct ierr *e)
{
	sqlite3_stmt *st;

	if (n <= 0)
		return 0;
	if (sp_begin(sp, e) != 0)
		return -1;
	st = sp_prep(sp,
	             "UPDATE segments SET state='sealed', attempts=max(attempts-1,0) "
	             "WHERE id=? AND state='uploading'",
	             e);
	if (st == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, segs[i].id);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sp_db_error(sp, e, "release claims");
			sqlite3_finalize(st);
			goto fail;
		}
	}
	sqlite3_finalize(st);
	return sp_commit(sp, e);
fail:
	sp_rollback(sp);
	return -1;
}

int64_t spool_next_due(struct spool *sp)
{
	return sp_query_int(sp, "SELECT min(next_attempt_at) FROM segments WHERE state='sealed'",
	                    -1);
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

static int mark_uploaded(struct spool *sp, const struct spool_done *done, int n, bool counters,
                         struct ierr *e)
{
	sqlite3_stmt *up = NULL, *del = NULL;
	int64_t bytes = 0;

	if (n <= 0)
		return 0;
	FAILPOINT("upload.before_mark_uploaded");
	if (sp_begin(sp, e) != 0)
		return -1;
	up = sp_prep(sp,
	             "UPDATE segments SET state='uploaded', uploaded_at=?2, etag=?3, "
	             "last_error=NULL, last_error_code=NULL, upload_id=NULL WHERE id=?1",
	             e);
	del = up ? sp_prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e) : NULL;
	if (up == NULL || del == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		sqlite3_reset(up);
		sqlite3_bind_int64(up, 1, done[i].id);
		sqlite3_bind_int64(up, 2, now_ms());
		sqlite3_bind_text(up, 3, done[i].etag, -1, SQLITE_STATIC);
		if (sqlite3_step(up) != SQLITE_DONE)
			goto db_fail;
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, done[i].id);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto db_fail;
		bytes += (int64_t)done[i].bytes;
	}
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	if (counters) {
		/* In the same transaction: one commit per batch. */
		spool_counter_add(sp, "uploads_total", n);
		spool_counter_add(sp, "uploaded_bytes_total", bytes);
	}
	return sp_commit(sp, e);
db_fail:
	sp_db_error(sp, e, "mark uploaded");
fail:
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	sp_rollback(sp);
	return -1;
}

int spool_mark_uploaded(struct spool *sp, int64_t id, const char *etag, struct ierr *e)
{
	struct spool_done d = {.id = id};

	snprintf(d.etag, sizeof(d.etag), "%s", etag ? etag : "");
	return mark_uploaded(sp, &d, 1, false, e);
}

int spool_mark_uploaded_batch(struct spool *sp, const struct spool_done *done, int n,
                              struct ierr *e)
{
	return mark_uploaded(sp, done, n, true, e);
}

int spool_mark_retry(struct spool *sp, int64_t id, bool permanent, int64_t next_attempt_at,
                     int max_attempts, const char *code, const char *msg, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
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
	return sp_step_done(sp, st, "record upload error", e);
}

int spool_mark_quarantined(struct spool *sp, int64_t id, const char *msg, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
	                           "UPDATE segments SET state='quarantined', last_error_code="
	                           "'ChecksumMismatch', last_error=?2 WHERE id=?1",
	                           e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
	return sp_step_done(sp, st, "quarantine", e);
}

int spool_set_upload_id(struct spool *sp, int64_t id, const char *upload_id, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp, "UPDATE segments SET upload_id=?2 WHERE id=?1", e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (upload_id && *upload_id)
		sqlite3_bind_text(st, 2, upload_id, -1, SQLITE_STATIC);
	if (sp_step_done(sp, st, "record upload id", e) != 0)
		return -1;
	if (upload_id == NULL || *upload_id == '\0') {
		st = sp_prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		return sp_step_done(sp, st, "forget parts", e);
	}
	return 0;
}

int spool_part_done(struct spool *sp, int64_t id, int part_number, uint64_t size, const char *etag,
                    struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
	                           "INSERT OR REPLACE INTO segment_parts (segment_id, part_number, "
	                           "size, etag) VALUES (?,?,?,?)",
	                           e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, part_number);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
	return sp_step_done(sp, st, "record part", e);
}

int spool_key_uploaded(struct spool *sp, const char *bucket, const char *key)
{
	struct ierr e;
	sqlite3_stmt *st = sp_prep(sp,
	                           "SELECT 1 FROM segments WHERE bucket=?1 AND key=?2 AND "
	                           "state='uploaded'",
	                           &e);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
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
	return spool_next_manifest_after(sp, 0, job, e);
}

int spool_next_manifest_after(struct spool *sp, int64_t after_id, struct manifest_job *job,
                              struct ierr *e)
{
	sqlite3_stmt *st =
	    sp_prep(sp,
	            "SELECT p.id, p.run_id, p.table_name, p.rows, p.bytes, r.bucket, "
	            "r.source, p.schema_json, p.manifest_key, p.load_mode, p.range_json "
	            "FROM partitions p "
	            "JOIN runs r ON r.run_id=p.run_id "
	            "WHERE p.state='complete' AND p.manifest_state='none' AND p.id > ?1 AND "
	            "NOT EXISTS (SELECT 1 FROM segments s WHERE s.partition_id=p.id AND "
	            "s.state <> 'uploaded') ORDER BY p.id LIMIT 1",
	            e);
	struct buf b = {0};
	struct lossy none = {0};
	int rc;
	bool first = true;
	char first_key[1024] = "", stored_key[1024];
	char *schema = NULL;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : sp_db_error(sp, e, "find manifests");
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
	if (sqlite3_column_type(st, 10) == SQLITE_TEXT) {
		/* Incremental tables: how the partition was read (COMMIT_LOG.md). */
		buf_puts(&b, ",\"mode\":");
		json_string(&b, (const char *)sqlite3_column_text(st, 9),
		            (size_t)sqlite3_column_bytes(st, 9), &none);
		buf_puts(&b, ",\"range\":");
		buf_puts(&b, (const char *)sqlite3_column_text(st, 10));
	}
	buf_printf(&b, ",\"rows\":%lld,\"bytes\":%lld,\"files\":[",
	           (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4));
	if (sqlite3_column_type(st, 7) == SQLITE_TEXT)
		schema = xstrndup((const char *)sqlite3_column_text(st, 7),
		                  (size_t)sqlite3_column_bytes(st, 7));
	copy_col(stored_key, sizeof(stored_key), st, 8);
	sqlite3_finalize(st);

	st = sp_prep(sp,
	             "SELECT key, rows, bytes, sha256, md5 FROM segments WHERE partition_id=? "
	             "ORDER BY seq",
	             e);
	if (st == NULL) {
		buf_free(&b);
		free(schema);
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
	buf_putc(&b, ']');
	/* The schema the source reported for this (run, table), as stored. */
	if (schema != NULL) {
		buf_puts(&b, ",\"schema\":");
		buf_puts(&b, schema);
		free(schema);
	}
	buf_puts(&b, "}\n");
	if (stored_key[0] != '\0') {
		/* Recorded by the collector, for empty tables too. */
		snprintf(job->key, sizeof(job->key), "%s", stored_key);
	} else if (first) {
		/* An empty table of a spool older than manifest_key: no partition
		 * directory known, so no manifest (and no commit record). */
		buf_free(&b);
		if (spool_manifest_written(sp, job->partition_id, NULL, e) != 0)
			return -1;
		return spool_next_manifest_after(sp, after_id, job, e);
	} else {
		manifest_key(first_key, job->run_id, job->key, sizeof(job->key));
	}
	job->json = strdup(buf_cstr(&b));
	buf_free(&b);
	return 1;
}

int spool_manifest_written(struct spool *sp, int64_t partition_id, const char *key, struct ierr *e)
{
	return spool_manifests_written(sp, &partition_id, &key, 1, e);
}

int spool_manifests_written(struct spool *sp, const int64_t *ids, const char *const *keys, int n,
                            struct ierr *e)
{
	sqlite3_stmt *st;

	if (n <= 0)
		return 0;
	if (sp_begin(sp, e) != 0)
		return -1;
	st = sp_prep(sp,
	             "UPDATE partitions SET manifest_state='written', "
	             "manifest_key=coalesce(?2, manifest_key) WHERE id=?1",
	             e);
	if (st == NULL) {
		sp_rollback(sp);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i]);
		if (keys[i] != NULL)
			sqlite3_bind_text(st, 2, keys[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sp_db_error(sp, e, "manifests written");
			sqlite3_finalize(st);
			sp_rollback(sp);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return sp_commit(sp, e);
}

/*
 * Retention. Deleting a segment's file is the one uploader step that a lost
 * commit cannot simply repeat: the `uploaded` mark must survive a power cut
 * before the file goes, and uploader connections commit without the WAL fsync
 * (spool_relaxed_sync). So each batch starts with a durable commit (its WAL
 * fsync makes every earlier commit durable too), then deletes the files, then
 * marks their rows in one transaction. Files before rows: a crash between
 * leaves rows whose files are gone, which recovery records as deleted.
 */
#define RETENTION_BATCH 256

struct retiree {
	int64_t id;
	char path[1024];
};

static int retire_batch(struct spool *sp, const struct retiree *due, int ndue, struct ierr *e)
{
	sqlite3_stmt *st;
	bool failed;
	int n = 0;

	if (ndue == 0)
		return 0;
	if (sp_durable_point(sp, "retention_batches_total", e) != 0 || sp_begin(sp, e) != 0)
		return -1;
	st = sp_prep(sp,
	             "UPDATE segments SET file_deleted_at=?2 WHERE id=?1 AND "
	             "file_deleted_at IS NULL",
	             e);
	failed = st == NULL;
	for (int i = 0; !failed && i < ndue; i++) {
		char full[4096];

		snprintf(full, sizeof(full), "%s/%s", sp->dir, due[i].path);
		if (sp_remove_path(full, e) != 0) {
			failed = true;
			break;
		}
		FAILPOINT("retention.after_unlink");
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, due[i].id);
		sqlite3_bind_int64(st, 2, now_ms());
		if (sqlite3_step(st) != SQLITE_DONE) {
			sp_db_error(sp, e, "retention");
			failed = true;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	/* After a failed unlink, what was done before it is kept. */
	if (sp_commit(sp, e) != 0 || failed)
		return -1;
	return n;
}

int spool_apply_retention(struct spool *sp, int64_t retention_ms, struct ierr *e)
{
	struct retiree *due = malloc(RETENTION_BATCH * sizeof(*due));
	int n = 0;

	if (due == NULL)
		return ierr_set(e, IERR_INTERNAL, "out of memory");
	/* The due rows are read first: the update takes them out of the index
	 * the read walks. */
	for (;;) {
		sqlite3_stmt *st =
		    sp_prep(sp,
		            "SELECT id, path FROM segments WHERE state='uploaded' AND "
		            "file_deleted_at IS NULL AND uploaded_at <= ?1 LIMIT ?2",
		            e);
		int ndue = 0, done;

		if (st == NULL) {
			n = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, now_ms() - retention_ms);
		sqlite3_bind_int(st, 2, RETENTION_BATCH);
		while (sqlite3_step(st) == SQLITE_ROW) {
			due[ndue].id = sqlite3_column_int64(st, 0);
			snprintf(due[ndue].path, sizeof(due[ndue].path), "%s",
			         (const char *)sqlite3_column_text(st, 1));
			ndue++;
		}
		sqlite3_finalize(st);
		done = retire_batch(sp, due, ndue, e);
		if (done < 0) {
			n = -1;
			break;
		}
		n += done;
		if (ndue < RETENTION_BATCH)
			break;
	}
	free(due);
	return n;
}

int spool_retire_uploaded(struct spool *sp, const struct spool_done *done, int ndone,
                          struct ierr *e)
{
	struct retiree due[SPOOL_RETIRE_MAX];
	sqlite3_stmt *st;
	int ndue = 0;

	if (ndone > SPOOL_RETIRE_MAX)
		return ierr_set(e, IERR_INTERNAL, "spool_retire_uploaded: %d segments at once",
		                ndone);
	st = sp_prep(sp,
	             "SELECT path FROM segments WHERE id=? AND state='uploaded' AND "
	             "file_deleted_at IS NULL",
	             e);
	if (st == NULL)
		return -1;
	for (int i = 0; i < ndone; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, done[i].id);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue;
		due[ndue].id = done[i].id;
		snprintf(due[ndue].path, sizeof(due[ndue].path), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		ndue++;
	}
	sqlite3_finalize(st);
	return retire_batch(sp, due, ndue, e);
}

int spool_replay(struct spool *sp, const int64_t *ids, int nids, struct ierr *e)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sp_begin(sp, e) != 0)
		return -1;
	if (ids == NULL) {
		if (spool_exec(sp,
		               "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
		               "WHERE state='failed'",
		               e) != 0)
			goto fail;
		n = sqlite3_changes(sp->db);
	} else {
		st = sp_prep(sp,
		             "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
		             "WHERE id=? AND state IN ('failed','quarantined')",
		             e);
		if (st == NULL)
			goto fail;
		for (int i = 0; i < nids; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, ids[i]);
			if (sqlite3_step(st) != SQLITE_DONE) {
				sp_db_error(sp, e, "replay");
				sqlite3_finalize(st);
				goto fail;
			}
			n += sqlite3_changes(sp->db);
		}
		sqlite3_finalize(st);
	}
	if (sp_commit(sp, e) != 0)
		return -1;
	spool_wakeup(sp);
	return n;
fail:
	sp_rollback(sp);
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
