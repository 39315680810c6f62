/*
 * status.c - `ingesta status`: what is in the spool, what is stuck, and why.
 *
 * Everything is computed from spool.db in one read transaction, so the numbers
 * agree with each other even while the uploader is changing them.
 */
#include "status.h"

#include <inttypes.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "util.h"

static const char *const states[] = {"pending",  "sealed", "uploading",
                                     "uploaded", "failed", "quarantined"};
#define NSTATES 6

struct state_count {
	int64_t segments, bytes, rows;
};

static void jstr(struct buf *b, const char *s)
{
	struct lossy none = {0};

	if (s == NULL) {
		json_null(b);
		return;
	}
	json_string(b, s, strlen(s), &none);
}

static int64_t q1(sqlite3 *db, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = NULL;
	int64_t v = dflt;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
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

int status_print(struct spool *sp, const struct status_opts *o, FILE *out, struct ierr *e)
{
	sqlite3 *db = spool_db(sp);
	struct state_count totals[NSTATES] = {{0}};
	sqlite3_stmt *st = NULL;
	int64_t now = now_ms();
	int64_t oldest, last_upload, spool_bytes;
	struct buf b = {0};
	char h[64];

	if (spool_exec(sp, "BEGIN", e) != 0)
		return -1;
	sqlite3_prepare_v2(db,
	                   "SELECT state, count(*), coalesce(sum(bytes),0), coalesce(sum(rows),0) "
	                   "FROM segments GROUP BY state",
	                   -1, &st, NULL);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		for (int i = 0; i < NSTATES; i++) {
			if (strcmp(s, states[i]) == 0) {
				totals[i].segments = sqlite3_column_int64(st, 1);
				totals[i].bytes = sqlite3_column_int64(st, 2);
				totals[i].rows = sqlite3_column_int64(st, 3);
			}
		}
	}
	sqlite3_finalize(st);
	oldest = q1(db,
	            "SELECT min(coalesce(sealed_at, created_at)) FROM segments WHERE state IN "
	            "('sealed','uploading','failed','quarantined')",
	            -1);
	last_upload = q1(db, "SELECT max(uploaded_at) FROM segments", -1);
	spool_bytes =
	    q1(db, "SELECT coalesce(sum(bytes),0) FROM segments WHERE file_deleted_at IS NULL", 0);

	if (o->json) {
		buf_puts(&b, "{\"spool_dir\":");
		jstr(&b, spool_dir(sp));
		buf_printf(&b, ",\"generated_at\":%" PRId64 ",\"states\":{", now);
		for (int i = 0; i < NSTATES; i++)
			buf_printf(&b,
			           "%s\"%s\":{\"segments\":%" PRId64 ",\"bytes\":%" PRId64
			           ",\"rows\":%" PRId64 "}",
			           i ? "," : "", states[i], totals[i].segments, totals[i].bytes,
			           totals[i].rows);
		buf_puts(&b, "},\"oldest_not_uploaded_age_seconds\":");
		if (oldest >= 0)
			buf_printf(&b, "%" PRId64, (now - oldest) / 1000);
		else
			json_null(&b);
		buf_puts(&b, ",\"last_upload_at\":");
		if (last_upload >= 0)
			buf_printf(&b, "%" PRId64, last_upload);
		else
			json_null(&b);
		buf_printf(&b,
		           ",\"spool_bytes\":%" PRId64 ",\"quota_bytes\":%" PRId64 ",\"tables\":[",
		           spool_bytes, o->quota_bytes);
	} else {
		fprintf(out, "spool %s\n\n", spool_dir(sp));
		fprintf(out, "%-12s %10s %12s %12s\n", "state", "segments", "rows", "bytes");
		for (int i = 0; i < NSTATES; i++) {
			human_bytes(h, sizeof(h), (uint64_t)totals[i].bytes);
			fprintf(out, "%-12s %10" PRId64 " %12" PRId64 " %12s\n", states[i],
			        totals[i].segments, totals[i].rows, h);
		}
		{
			char age[32], used[32], quota[32];

			age_text(age, sizeof(age), oldest < 0 ? -1 : now - oldest);
			human_bytes(used, sizeof(used), (uint64_t)spool_bytes);
			human_bytes(quota, sizeof(quota), (uint64_t)o->quota_bytes);
			fprintf(out, "\noldest segment not uploaded: %s\n", age);
			age_text(age, sizeof(age), last_upload < 0 ? -1 : now - last_upload);
			fprintf(out, "last successful upload:      %s%s\n", age,
			        last_upload < 0 ? "" : " ago");
			fprintf(out, "spool size:                  %s of %s quota\n", used,
			        o->quota_bytes ? quota : "no");
		}
		fprintf(out, "\n%-12s %-28s %8s %8s %8s %8s %10s\n", "source", "table", "pending",
		        "sealed", "uploaded", "failed", "rows");
	}

	sqlite3_prepare_v2(db,
	                   "SELECT source, table_name, "
	                   "sum(state='pending'), sum(state IN ('sealed','uploading')), "
	                   "sum(state='uploaded'), sum(state IN ('failed','quarantined')), "
	                   "sum(rows), sum(bytes) FROM segments GROUP BY source, table_name "
	                   "ORDER BY source, table_name",
	                   -1, &st, NULL);
	{
		bool first = true;

		while (st && sqlite3_step(st) == SQLITE_ROW) {
			const char *src = (const char *)sqlite3_column_text(st, 0);
			const char *tbl = (const char *)sqlite3_column_text(st, 1);

			if (o->json) {
				buf_puts(&b, first ? "{\"source\":" : ",{\"source\":");
				jstr(&b, src);
				buf_puts(&b, ",\"table\":");
				jstr(&b, tbl);
				buf_printf(&b,
				           ",\"pending\":%lld,\"queued\":%lld,\"uploaded\":%lld,"
				           "\"failed\":%lld,\"rows\":%lld,\"bytes\":%lld}",
				           (long long)sqlite3_column_int64(st, 2),
				           (long long)sqlite3_column_int64(st, 3),
				           (long long)sqlite3_column_int64(st, 4),
				           (long long)sqlite3_column_int64(st, 5),
				           (long long)sqlite3_column_int64(st, 6),
				           (long long)sqlite3_column_int64(st, 7));
			} else {
				fprintf(out, "%-12s %-28s %8lld %8lld %8lld %8lld %10lld\n", src,
				        tbl, (long long)sqlite3_column_int64(st, 2),
				        (long long)sqlite3_column_int64(st, 3),
				        (long long)sqlite3_column_int64(st, 4),
				        (long long)sqlite3_column_int64(st, 5),
				        (long long)sqlite3_column_int64(st, 6));
			}
			first = false;
		}
		sqlite3_finalize(st);
	}

	/* The most recent failures, with their S3 code and message. */
	sqlite3_prepare_v2(db,
	                   "SELECT id, state, bucket, key, attempts, coalesce(last_error_code,''), "
	                   "coalesce(last_error,'') FROM segments WHERE state IN "
	                   "('failed','quarantined') OR (state='sealed' AND attempts > 0) "
	                   "ORDER BY id DESC LIMIT 10",
	                   -1, &st, NULL);
	{
		bool first = true;

		if (o->json)
			buf_puts(&b, "],\"recent_errors\":[");
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			const char *state = (const char *)sqlite3_column_text(st, 1);
			const char *bucket = (const char *)sqlite3_column_text(st, 2);
			const char *key = (const char *)sqlite3_column_text(st, 3);
			const char *code = (const char *)sqlite3_column_text(st, 5);
			const char *msg = (const char *)sqlite3_column_text(st, 6);

			if (o->json) {
				buf_printf(&b, "%s{\"id\":%lld,\"state\":", first ? "" : ",",
				           (long long)sqlite3_column_int64(st, 0));
				jstr(&b, state);
				buf_puts(&b, ",\"bucket\":");
				jstr(&b, bucket);
				buf_puts(&b, ",\"key\":");
				jstr(&b, key);
				buf_printf(&b,
				           ",\"attempts\":%d,\"code\":", sqlite3_column_int(st, 4));
				jstr(&b, code);
				buf_puts(&b, ",\"message\":");
				jstr(&b, msg);
				buf_putc(&b, '}');
			} else {
				if (first)
					fprintf(out, "\nrecent errors:\n");
				fprintf(out, "  #%lld %-11s %s/%s (attempt %d): %s %s\n",
				        (long long)sqlite3_column_int64(st, 0), state, bucket, key,
				        sqlite3_column_int(st, 4), code, msg);
			}
			first = false;
		}
		sqlite3_finalize(st);
	}
	spool_exec(sp, "COMMIT", e);
	if (o->json) {
		buf_puts(&b, "]}\n");
		fputs(buf_cstr(&b), out);
	}
	buf_free(&b);
	return 0;
}
