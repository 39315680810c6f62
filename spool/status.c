/*
 * status.c - `ingesta status` and `status --check`: what is in the spool,
 * what is stuck, and why.
 *
 * Everything is computed from spool.db in one read transaction, so the numbers
 * agree with each other even while the uploader is changing them. The
 * uploader's liveness comes from its lock file, not from the DB: a row cannot
 * tell whether the process that wrote it is still alive.
 */
#include "status.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "json_cstr.h"
#include "util.h"

const char *const status_states[STATUS_NSTATES] = {"pending",  "sealed", "uploading",
                                                   "uploaded", "failed", "quarantined"};

/* A query that could not be prepared or run: an error, never an empty table
 * (a status that looks healthy because it read nothing is the worst answer). */
static int query_fail(sqlite3 *db, const char *what, struct ierr *e)
{
	return ierr_set(e, IERR_SPOOL, "spool %s: status: %s: %s", sqlite3_db_filename(db, "main"),
	                what, sqlite3_errmsg(db));
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                   struct ierr *e)
{
	*st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return query_fail(db, what, e);
	}
	return 0;
}

/* The end of a step loop: SQLITE_DONE, or the error. Finalizes st. */
static int finish(sqlite3 *db, sqlite3_stmt *st, int rc, const char *what, struct ierr *e)
{
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : query_fail(db, what, e);
}

/* One integer (dflt when the result is NULL or there is no row). */
static int q1(sqlite3 *db, const char *sql, int64_t dflt, int64_t *v, struct ierr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(db, sql, &st, "summary", e) != 0)
		return -1;
	*v = dflt;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*v = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	return finish(db, st, rc, "summary", e);
}

static void age_text(char *out, size_t n, int64_t ms)
{
	int64_t s = ms / 1000;

	if (ms < 0)
		snprintf(out, n, "-");
	else if (s < 120)
		snprintf(out, n, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(out, n, "%" PRId64 "m", s / 60);
	else if (s < 172800)
		snprintf(out, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(out, n, "%" PRId64 "d", s / 86400);
}

bool status_uploader_running(const struct spool *sp)
{
	char path[4096];
	int fd;
	bool running;

	snprintf(path, sizeof(path), "%s/locks/uploader.lock", spool_dir(sp));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false; /* never started on this spool */
	running = flock(fd, LOCK_SH | LOCK_NB) != 0;
	close(fd); /* releases the probe at once */
	return running;
}

/* Segment counts by state, times and sizes; the caller holds the read txn.
 * Returns 0, or -1 with *e. */
static int load_locked(sqlite3 *db, struct status_summary *s, struct ierr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(db,
	            "SELECT state, count(*), coalesce(sum(bytes),0), coalesce(sum(rows),0) "
	            "FROM segments GROUP BY state",
	            &st, "segments by state", e) != 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);

		for (int i = 0; i < STATUS_NSTATES; i++) {
			if (strcmp(state, status_states[i]) == 0) {
				s->states[i].segments = sqlite3_column_int64(st, 1);
				s->states[i].bytes = sqlite3_column_int64(st, 2);
				s->states[i].rows = sqlite3_column_int64(st, 3);
			}
		}
	}
	if (finish(db, st, rc, "segments by state", e) != 0)
		return -1;
	if (q1(db,
	       "SELECT min(coalesce(sealed_at, created_at)) FROM segments WHERE state IN "
	       "('sealed','uploading','failed','quarantined')",
	       -1, &s->oldest_not_uploaded, e) != 0 ||
	    q1(db, "SELECT max(uploaded_at) FROM segments", -1, &s->last_upload_at, e) != 0 ||
	    q1(db, "SELECT coalesce(sum(bytes),0) FROM segments WHERE file_deleted_at IS NULL", 0,
	       &s->spool_bytes, e) != 0 ||
	    q1(db,
	       "SELECT count(*) FROM partitions WHERE state='complete' AND commit_state='written'",
	       0, &s->commits.written, e) != 0 ||
	    q1(db, "SELECT count(*) FROM partitions WHERE state='complete' AND commit_state='none'",
	       0, &s->commits.waiting, e) != 0 ||
	    q1(db, "SELECT count(*) FROM partitions WHERE commit_state='failed'", 0,
	       &s->commits.failed, e) != 0)
		return -1;
	return 0;
}

int status_summary_load(struct spool *sp, struct status_summary *s, struct ierr *e)
{
	memset(s, 0, sizeof(*s));
	s->generated_at = now_ms();
	if (spool_exec(sp, "BEGIN", e) != 0)
		return -1;
	if (load_locked(spool_db(sp), s, e) != 0) {
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	spool_exec(sp, "COMMIT", e);
	s->uploader_running = status_uploader_running(sp);
	return 0;
}

static void print_header_json(struct buf *b, const char *dir, const struct status_summary *s,
                              int64_t quota)
{
	buf_puts(b, "{\"spool_dir\":");
	json_cstr(b, dir);
	buf_printf(b, ",\"generated_at\":%" PRId64 ",\"states\":{", s->generated_at);
	for (int i = 0; i < STATUS_NSTATES; i++)
		buf_printf(b,
		           "%s\"%s\":{\"segments\":%" PRId64 ",\"bytes\":%" PRId64
		           ",\"rows\":%" PRId64 "}",
		           i ? "," : "", status_states[i], s->states[i].segments,
		           s->states[i].bytes, s->states[i].rows);
	buf_puts(b, "},\"oldest_not_uploaded_age_seconds\":");
	if (s->oldest_not_uploaded >= 0)
		buf_printf(b, "%" PRId64, (s->generated_at - s->oldest_not_uploaded) / 1000);
	else
		json_null(b);
	buf_puts(b, ",\"last_upload_at\":");
	if (s->last_upload_at >= 0)
		buf_printf(b, "%" PRId64, s->last_upload_at);
	else
		json_null(b);
	buf_printf(b,
	           ",\"spool_bytes\":%" PRId64 ",\"quota_bytes\":%" PRId64
	           ",\"uploader_running\":%s,\"commit_records\":{\"written\":%" PRId64
	           ",\"waiting\":%" PRId64 ",\"failed\":%" PRId64 "},\"tables\":[",
	           s->spool_bytes, quota, s->uploader_running ? "true" : "false",
	           s->commits.written, s->commits.waiting, s->commits.failed);
}

static void print_header_text(FILE *out, const char *dir, const struct status_summary *s,
                              int64_t quota)
{
	char h[64], age[32], used[32], qb[32];

	fprintf(out, "spool %s\n\n", dir);
	fprintf(out, "%-12s %10s %12s %12s\n", "state", "segments", "rows", "bytes");
	for (int i = 0; i < STATUS_NSTATES; i++) {
		human_bytes(h, sizeof(h), (uint64_t)s->states[i].bytes);
		fprintf(out, "%-12s %10" PRId64 " %12" PRId64 " %12s\n", status_states[i],
		        s->states[i].segments, s->states[i].rows, h);
	}
	age_text(age, sizeof(age),
	         s->oldest_not_uploaded < 0 ? -1 : s->generated_at - s->oldest_not_uploaded);
	human_bytes(used, sizeof(used), (uint64_t)s->spool_bytes);
	human_bytes(qb, sizeof(qb), (uint64_t)quota);
	fprintf(out, "\noldest segment not uploaded: %s\n", age);
	age_text(age, sizeof(age),
	         s->last_upload_at < 0 ? -1 : s->generated_at - s->last_upload_at);
	fprintf(out, "last successful upload:      %s%s\n", age,
	        s->last_upload_at < 0 ? "" : " ago");
	if (quota > 0)
		fprintf(out, "spool size:                  %s of %s quota (%.0f%%)\n", used, qb,
		        100.0 * (double)s->spool_bytes / (double)quota);
	else
		fprintf(out, "spool size:                  %s (no quota)\n", used);
	fprintf(out, "uploader:                    %s\n",
	        s->uploader_running ? "running" : "not running (locks/uploader.lock is free)");
	fprintf(out,
	        "commit records:              %" PRId64 " written, %" PRId64 " waiting, %" PRId64
	        " failed%s\n",
	        s->commits.written, s->commits.waiting, s->commits.failed,
	        s->commits.failed ? " (`ingesta replay --all-failed` after the fix)" : "");
	fprintf(out, "\n%-12s %-28s %8s %8s %8s %8s %10s\n", "source", "table", "pending", "queued",
	        "uploaded", "failed", "rows");
}

/* The per-table lines into b (JSON or text); 0, or -1 with *e. */
static int print_tables(sqlite3 *db, bool json, struct buf *b, struct ierr *e)
{
	sqlite3_stmt *st;
	bool first = true;
	int rc;

	if (prepare(db,
	            "SELECT source, table_name, "
	            "sum(state='pending'), sum(state IN ('sealed','uploading')), "
	            "sum(state='uploaded'), sum(state IN ('failed','quarantined')), "
	            "sum(rows), sum(bytes) FROM segments GROUP BY source, table_name "
	            "ORDER BY source, table_name",
	            &st, "tables", e) != 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *src = (const char *)sqlite3_column_text(st, 0);
		const char *tbl = (const char *)sqlite3_column_text(st, 1);
		long long v[6];

		for (int i = 0; i < 6; i++)
			v[i] = (long long)sqlite3_column_int64(st, i + 2);
		if (json) {
			buf_puts(b, first ? "{\"source\":" : ",{\"source\":");
			json_cstr(b, src);
			buf_puts(b, ",\"table\":");
			json_cstr(b, tbl);
			buf_printf(b,
			           ",\"pending\":%lld,\"queued\":%lld,\"uploaded\":%lld,"
			           "\"failed\":%lld,\"rows\":%lld,\"bytes\":%lld}",
			           v[0], v[1], v[2], v[3], v[4], v[5]);
		} else {
			buf_printf(b, "%-12s %-28s %8lld %8lld %8lld %8lld %10lld\n", src, tbl,
			           v[0], v[1], v[2], v[3], v[4]);
		}
		first = false;
	}
	return finish(db, st, rc, "tables", e);
}

/* The most recent failures, with their S3 code and message, into b (JSON or
 * text); 0, or -1 with *e. */
static int print_errors(sqlite3 *db, bool json, struct buf *b, struct ierr *e)
{
	sqlite3_stmt *st;
	bool first = true;
	int rc;

	if (prepare(db,
	            "SELECT id, state, bucket, key, attempts, coalesce(last_error_code,''), "
	            "coalesce(last_error,'') FROM segments WHERE state IN "
	            "('failed','quarantined') OR (state='sealed' AND attempts > 0) "
	            "ORDER BY id DESC LIMIT 10",
	            &st, "recent errors", e) != 0)
		return -1;
	if (json)
		buf_puts(b, "],\"recent_errors\":[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 1);
		const char *bucket = (const char *)sqlite3_column_text(st, 2);
		const char *key = (const char *)sqlite3_column_text(st, 3);
		const char *code = (const char *)sqlite3_column_text(st, 5);
		const char *msg = (const char *)sqlite3_column_text(st, 6);

		if (json) {
			buf_printf(b, "%s{\"id\":%lld,\"state\":", first ? "" : ",",
			           (long long)sqlite3_column_int64(st, 0));
			json_cstr(b, state);
			buf_puts(b, ",\"bucket\":");
			json_cstr(b, bucket);
			buf_puts(b, ",\"key\":");
			json_cstr(b, key);
			buf_printf(b, ",\"attempts\":%d,\"code\":", sqlite3_column_int(st, 4));
			json_cstr(b, code);
			buf_puts(b, ",\"message\":");
			json_cstr(b, msg);
			buf_putc(b, '}');
		} else {
			if (first)
				buf_puts(b, "\nrecent errors (replay failed ones with `ingesta "
				            "replay`):\n");
			buf_printf(b, "  #%lld %-11s %s/%s (attempt %d): %s %s\n",
			           (long long)sqlite3_column_int64(st, 0), state, bucket, key,
			           sqlite3_column_int(st, 4), code, msg);
		}
		first = false;
	}
	if (finish(db, st, rc, "recent errors", e) != 0)
		return -1;
	if (json)
		buf_putc(b, ']');
	return 0;
}

/* Incremental tables (README "Incremental extraction"): per (source, table)
 * the committed watermark, the mode of the run that wrote it, and the rows of
 * that run's range; closes the JSON object. 0, or -1 with *e. */
static int print_watermarks(sqlite3 *db, bool json, struct buf *b, struct ierr *e)
{
	sqlite3_stmt *st;
	bool first = true;
	int rc;

	if (prepare(db,
	            "SELECT w.source, w.table_name, w.cursor_column, w.value, w.range_rows, "
	            "coalesce(w.run_id,''), (SELECT p.load_mode FROM partitions p WHERE "
	            "p.id = w.partition_id), w.updated_at FROM watermarks w "
	            "ORDER BY w.source, w.table_name",
	            &st, "watermarks", e) != 0)
		return -1;
	if (json)
		buf_puts(b, ",\"incremental\":[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *src = (const char *)sqlite3_column_text(st, 0);
		const char *tbl = (const char *)sqlite3_column_text(st, 1);
		const char *col = (const char *)sqlite3_column_text(st, 2);
		const char *val = (const char *)sqlite3_column_text(st, 3);
		const char *run = (const char *)sqlite3_column_text(st, 5);
		const char *mode = (const char *)sqlite3_column_text(st, 6);
		long long rows = (long long)sqlite3_column_int64(st, 4);

		if (json) {
			buf_puts(b, first ? "{\"source\":" : ",{\"source\":");
			json_cstr(b, src);
			buf_puts(b, ",\"table\":");
			json_cstr(b, tbl);
			buf_puts(b, ",\"mode\":");
			if (mode)
				json_cstr(b, mode);
			else
				buf_puts(b, "null");
			buf_puts(b, ",\"cursor_column\":");
			json_cstr(b, col);
			buf_puts(b, ",\"watermark\":");
			if (val)
				json_cstr(b, val);
			else
				buf_puts(b, "null");
			buf_printf(b, ",\"last_range_rows\":%lld,\"run_id\":", rows);
			if (*run)
				json_cstr(b, run);
			else
				buf_puts(b, "null");
			buf_printf(b, ",\"updated_at\":%lld}",
			           (long long)sqlite3_column_int64(st, 7));
		} else {
			if (first)
				buf_printf(
				    b, "\nincremental tables:\n%-12s %-24s %-11s %-16s %-30s %8s\n",
				    "source", "table", "mode", "cursor", "watermark", "rows");
			buf_printf(b, "%-12s %-24s %-11s %-16s %-30s %8lld\n", src, tbl,
			           mode ? mode : "(reset)", col, val ? val : "(none)", rows);
		}
		first = false;
	}
	if (finish(db, st, rc, "watermarks", e) != 0)
		return -1;
	if (json)
		buf_puts(b, "]}\n");
	return 0;
}

int status_print(struct spool *sp, const struct status_opts *o, FILE *out, struct ierr *e)
{
	sqlite3 *db = spool_db(sp);
	struct status_summary s;
	struct buf b = {0}, tables = {0};

	memset(&s, 0, sizeof(s));
	s.generated_at = now_ms();
	s.uploader_running = status_uploader_running(sp);
	if (spool_exec(sp, "BEGIN", e) != 0)
		return -1;
	/* Everything is read before anything is printed: a query that fails
	 * prints nothing but the error (exit non-zero), not half a status. */
	if (load_locked(db, &s, e) != 0 || print_tables(db, o->json, &tables, e) != 0 ||
	    print_errors(db, o->json, &tables, e) != 0 ||
	    print_watermarks(db, o->json, &tables, e) != 0) {
		spool_exec(sp, "ROLLBACK", NULL);
		buf_free(&tables);
		return -1;
	}
	spool_exec(sp, "COMMIT", e);
	if (o->json) {
		print_header_json(&b, spool_dir(sp), &s, o->quota_bytes);
		fputs(buf_cstr(&b), out);
	} else {
		print_header_text(out, spool_dir(sp), &s, o->quota_bytes);
	}
	fputs(buf_cstr(&tables), out);
	buf_free(&b);
	buf_free(&tables);
	return 0;
}

/* ------------------------------------------------------------ --check */

static void add_reason(struct buf *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_reason(struct buf *why, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (why->len)
		buf_puts(why, "; ");
	buf_puts(why, line);
}

/* Latest failure as "#id code: message" (one line, shortened). */
static void latest_failure(sqlite3 *db, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;

	snprintf(out, n, "?");
	if (sqlite3_prepare_v2(db,
	                       "SELECT id, coalesce(last_error_code,''), coalesce(last_error,'') "
	                       "FROM segments WHERE state IN ('failed','quarantined') "
	                       "ORDER BY id DESC LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, n, "#%lld %s: %.160s", (long long)sqlite3_column_int64(st, 0),
		         (const char *)sqlite3_column_text(st, 1),
		         (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	for (char *p = out; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
}

int status_check(struct spool *sp, const struct status_check_opts *o, FILE *out, struct ierr *e)
{
	sqlite3 *db = spool_db(sp);
	struct status_summary s;
	struct buf why = {0};
	char latest[256] = "", age[32], used[32], quota[32];
	int64_t failed, quarantined, queued, oldest_queued;
	int unhealthy;

	memset(&s, 0, sizeof(s));
	s.generated_at = now_ms();
	s.uploader_running = status_uploader_running(sp);
	if (spool_exec(sp, "BEGIN", e) != 0)
		return -1;
	if (load_locked(db, &s, e) != 0 ||
	    q1(db,
	       "SELECT min(coalesce(sealed_at, created_at)) FROM segments "
	       "WHERE state IN ('sealed','uploading')",
	       -1, &oldest_queued, e) != 0) {
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	failed = s.states[4].segments;
	quarantined = s.states[5].segments;
	queued = s.states[1].segments + s.states[2].segments;
	if (failed + quarantined > 0)
		latest_failure(db, latest, sizeof(latest));
	spool_exec(sp, "COMMIT", e);

	if (failed + quarantined > 0)
		add_reason(&why,
		           "%" PRId64 " segment(s) failed, %" PRId64 " quarantined (latest %s)",
		           failed, quarantined, latest);
	if (s.commits.failed > 0)
		add_reason(&why, "%" PRId64 " commit record(s) failed (ingesta status --json)",
		           s.commits.failed);
	age_text(age, sizeof(age), oldest_queued < 0 ? -1 : s.generated_at - oldest_queued);
	if (oldest_queued >= 0 && s.generated_at - oldest_queued > o->max_age_ms) {
		char max[32];

		age_text(max, sizeof(max), o->max_age_ms);
		add_reason(&why,
		           "backlog: %" PRId64 " segment(s) queued, the oldest for %s (over "
		           "--max-age %s)",
		           queued, age, max);
	}
	human_bytes(used, sizeof(used), (uint64_t)s.spool_bytes);
	human_bytes(quota, sizeof(quota), (uint64_t)o->quota_bytes);
	if (o->quota_bytes > 0 &&
	    (double)s.spool_bytes > o->max_spool_fraction * (double)o->quota_bytes)
		add_reason(&why,
		           "spool %s is %.0f%% of SPOOL_MAX_BYTES %s (over "
		           "--max-spool-fraction %.2f)",
		           used, 100.0 * (double)s.spool_bytes / (double)o->quota_bytes, quota,
		           o->max_spool_fraction);
	if (o->require_uploader && !s.uploader_running)
		add_reason(&why, "no uploader running on %s (locks/uploader.lock is free)",
		           spool_dir(sp));
	unhealthy = why.len > 0;
	if (unhealthy) {
		fprintf(out, "UNHEALTHY: %s\n", buf_cstr(&why));
	} else {
		fprintf(out,
		        "OK: %" PRId64 " uploaded, %" PRId64 " queued (oldest %s), spool %s%s%s, "
		        "uploader %s\n",
		        s.states[3].segments, queued, age, used, o->quota_bytes ? " of " : "",
		        o->quota_bytes ? quota : "",
		        s.uploader_running ? "running" : "not required");
	}
	buf_free(&why);
	return unhealthy;
}
