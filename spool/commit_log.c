/*
 * commit_log.c - the commit records of the lake (docs/COMMIT_LOG.md).
 *
 * When every segment of a completed (run, table) partition is uploaded and
 * its manifest written, the uploader writes one more object, the commit
 * record, at
 *   [S3_PREFIX/]ingesta_runs/year=YYYY/month=MM/day=DD/<run-id>-<table-key>.json
 * (the run's start date, like the data). Readers (the catalog's views) take a
 * (run, table) as visible only when its record exists, so the record is the
 * commit point: it lists every data object with its SHA-256.
 *
 * Exactly once: the key is fixed by the partition and the content is a pure
 * function of spool.db rows that never change once the partition is complete
 * (no "now" in it), so a retry after a lost answer or a crash writes the very
 * same bytes to the very same key. The state moves none -> written in one
 * transaction after the PUT; failed (permanent error, e.g. a Glue error that
 * needs an operator) goes back to none with `ingesta replay`.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "json.h"
#include "spool.h"
#include "spool_internal.h"
#include "util.h"

static void col_copy(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

/* ISO 8601 UTC with milliseconds: 2026-12-01T09:30:00.123Z. */
static void iso_ms(char *out, size_t n, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* The run's S3_PREFIX without trailing slashes. */
static void trim_prefix(const char *p, char *out, size_t n)
{
	size_t len = p ? strlen(p) : 0;

	while (len > 0 && p[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s", (int)len, len ? p : "");
}

void spool_commit_key(const char *prefix, int64_t run_started_ms, const char *run_id,
                      const char *table, char *out, size_t n)
{
	time_t secs = (time_t)(run_started_ms / 1000);
	struct tm tm;
	struct buf k = {0};

	gmtime_r(&secs, &tm);
	if (prefix && *prefix)
		buf_printf(&k, "%s/", prefix);
	buf_printf(&k, "ingesta_runs/year=%04d/month=%02d/day=%02d/%s-", tm.tm_year + 1900,
	           tm.tm_mon + 1, tm.tm_mday, run_id);
	/* The table as the data keys spell it (collector/writer.c, format_key). */
	if (strcmp(table, ".") == 0 || strcmp(table, "..") == 0)
		buf_putc(&k, '_');
	else
		for (const char *c = table; *c; c++)
			buf_putc(&k, *c == '/' ? '_' : *c);
	buf_puts(&k, ".json");
	snprintf(out, n, "%s", buf_cstr(&k));
	buf_free(&k);
}

static void put_str(struct buf *b, const char *name, const char *v, bool first)
{
	struct lossy none = {0};

	buf_printf(b, "%s\"%s\":", first ? "" : ",", name);
	json_string(b, v ? v : "", v ? strlen(v) : 0, &none);
}

/* Append the partition's data objects as JSON objects {"key","rows","bytes","sha256"}. */
static int put_objects(struct spool *sp, int64_t partition_id, struct buf *b, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(
	    sp, "SELECT key, rows, bytes, sha256 FROM segments WHERE partition_id=? ORDER BY seq",
	    e);
	struct lossy none = {0};
	bool first = true;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, partition_id);
	buf_puts(b, ",\"objects\":[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);

		buf_puts(b, first ? "{\"key\":" : ",{\"key\":");
		first = false;
		json_string(b, key, strlen(key), &none);
		buf_printf(b, ",\"rows\":%lld,\"bytes\":%lld,\"sha256\":\"%s\"}",
		           (long long)sqlite3_column_int64(st, 1),
		           (long long)sqlite3_column_int64(st, 2),
		           (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sp_db_error(sp, e, "read segments for the commit record");
	buf_putc(b, ']');
	return 0;
}

int spool_next_commit(struct spool *sp, int64_t now, struct commit_job *job, struct ierr *e)
{
	return spool_next_commit_after(sp, now, 0, job, e);
}

int spool_next_commit_after(struct spool *sp, int64_t now, int64_t after_id, struct commit_job *job,
                            struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(
	    sp,
	    "SELECT p.id, p.run_id, p.table_name, p.rows, p.bytes, p.raw_bytes, p.nonfinite, "
	    "p.invalid_utf8, p.invalid_dates, p.infinite_dates, p.completed_at, p.schema_json, "
	    "coalesce(p.manifest_key,''), p.commit_attempts, r.source, r.db_type, r.bucket, "
	    "r.started_at, json_extract(r.settings_json, '$.s3_prefix'), p.load_mode, "
	    "p.range_json FROM partitions p JOIN "
	    "runs r ON r.run_id=p.run_id "
	    "WHERE p.state='complete' AND p.manifest_state='written' AND p.commit_state='none' "
	    "AND p.commit_next_at <= ?1 AND p.id > ?2 ORDER BY p.id LIMIT 1",
	    e);
	struct buf b = {0};
	char prefix[1024], ts[40], fp[65] = "";
	const char *schema;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, after_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : sp_db_error(sp, e, "find commit records");
	}
	memset(job, 0, sizeof(*job));
	job->partition_id = sqlite3_column_int64(st, 0);
	col_copy(job->run_id, sizeof(job->run_id), st, 1);
	col_copy(job->table, sizeof(job->table), st, 2);
	col_copy(job->source, sizeof(job->source), st, 14);
	col_copy(job->db_type, sizeof(job->db_type), st, 15);
	col_copy(job->bucket, sizeof(job->bucket), st, 16);
	job->attempts = (int)sqlite3_column_int64(st, 13);
	trim_prefix((const char *)sqlite3_column_text(st, 18), prefix, sizeof(prefix));
	spool_commit_key(prefix, sqlite3_column_int64(st, 17), job->run_id, job->table, job->key,
	                 sizeof(job->key));
	schema = (const char *)sqlite3_column_text(st, 11);
	if (schema != NULL) {
		unsigned char md[32];

		EVP_Digest(schema, strlen(schema), md, NULL, EVP_sha256(), NULL);
		hex_encode(md, sizeof(md), fp);
	}

	/* Keys in the order docs/COMMIT_LOG.md lists them. */
	buf_puts(&b, "{");
	put_str(&b, "source", job->source, true);
	put_str(&b, "db_type", job->db_type, false);
	put_str(&b, "table_name", job->table, false);
	put_str(&b, "run_id", job->run_id, false);
	iso_ms(ts, sizeof(ts), sqlite3_column_int64(st, 17));
	put_str(&b, "run_started_at", ts, false);
	iso_ms(ts, sizeof(ts), sqlite3_column_int64(st, 10));
	put_str(&b, "committed_at", ts, false);
	put_str(&b, "mode", (const char *)sqlite3_column_text(st, 19), false);
	/* Tables with a cursor column (LOAD_MODE=incremental): the range read,
	 * (after, through], as stored with the partition. */
	if (sqlite3_column_type(st, 20) == SQLITE_TEXT) {
		buf_puts(&b, ",\"range\":");
		buf_puts(&b, (const char *)sqlite3_column_text(st, 20));
	}
	buf_printf(&b, ",\"rows\":%lld,\"bytes\":%lld,\"raw_bytes\":%lld",
	           (long long)sqlite3_column_int64(st, 3), (long long)sqlite3_column_int64(st, 4),
	           (long long)sqlite3_column_int64(st, 5));
	if (put_objects(sp, job->partition_id, &b, e) != 0) {
		sqlite3_finalize(st);
		buf_free(&b);
		return -1;
	}
	buf_printf(&b,
	           ",\"lossy\":{\"nonfinite\":%lld,\"invalid_utf8\":%lld,\"invalid_dates\":%lld,"
	           "\"infinite_dates\":%lld}",
	           (long long)sqlite3_column_int64(st, 6), (long long)sqlite3_column_int64(st, 7),
	           (long long)sqlite3_column_int64(st, 8), (long long)sqlite3_column_int64(st, 9));
	put_str(&b, "schema_fingerprint", fp, false);
	put_str(&b, "manifest_key", (const char *)sqlite3_column_text(st, 12), false);
	sqlite3_finalize(st);
	buf_puts(&b, "}\n");
	job->json = xstrndup(buf_cstr(&b), b.len);
	job->json_len = b.len;
	buf_free(&b);
	return 1;
}

int spool_commit_written(struct spool *sp, int64_t partition_id, const char *key, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
	                           "UPDATE partitions SET commit_state='written', commit_key=?2, "
	                           "committed_at=?3, commit_error=NULL WHERE id=?1",
	                           e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now_ms());
	return sp_step_done(sp, st, "commit record written", e);
}

int spool_commit_retry(struct spool *sp, int64_t partition_id, bool permanent, int64_t next_at,
                       const char *msg, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
	                           "UPDATE partitions SET commit_attempts=commit_attempts+1, "
	                           "commit_next_at=?2, commit_error=?3, "
	                           "commit_state=CASE WHEN ?4 THEN 'failed' ELSE 'none' END "
	                           "WHERE id=?1",
	                           e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_int64(st, 2, next_at);
	sqlite3_bind_text(st, 3, msg ? msg : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, permanent ? 1 : 0);
	return sp_step_done(sp, st, "commit record retry", e);
}

int spool_commits_record(struct spool *sp, const struct commit_outcome *o, int n, struct ierr *e)
{
	int64_t written = 0;

	if (n <= 0)
		return 0;
	if (sp_begin(sp, e) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		int rc = o[i].written ? spool_commit_written(sp, o[i].partition_id, o[i].key, e)
		                      : spool_commit_retry(sp, o[i].partition_id, o[i].permanent,
		                                           o[i].next_at, o[i].msg, e);

		if (rc != 0) {
			sp_rollback(sp);
			return -1;
		}
		written += o[i].written ? 1 : 0;
	}
	if (written > 0)
		spool_counter_add(sp, "commit_records_total", written);
	return sp_commit(sp, e);
}

int64_t spool_commits_waiting(struct spool *sp, int64_t *next_due)
{
	static const char ready[] = "FROM partitions WHERE state='complete' AND "
	                            "manifest_state='written' AND commit_state='none'";
	char sql[256];

	if (next_due) {
		snprintf(sql, sizeof(sql), "SELECT min(commit_next_at) %s", ready);
		*next_due = sp_query_int(sp, sql, -1);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) %s", ready);
	return sp_query_int(sp, sql, 0);
}

int64_t spool_commits_failed(struct spool *sp)
{
	return sp_query_int(sp, "SELECT count(*) FROM partitions WHERE commit_state='failed'", 0);
}

int spool_commit_replay(struct spool *sp, struct ierr *e)
{
	if (spool_exec(sp,
	               "UPDATE partitions SET commit_state='none', commit_attempts=0, "
	               "commit_next_at=0 WHERE commit_state='failed'",
	               e) != 0)
		return -1;
	return (int)sqlite3_changes(sp->db);
}
