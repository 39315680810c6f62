/*
 * ops_list.c - `ingesta list`: one line (or JSON object) per segment, oldest first
 * (contract in ops.h).
 */
#include "ops.h"

#include <string.h>

#include "buf.h"
#include "json.h"
#include "json_cstr.h"
#include "ops_internal.h"
#include "status.h"
#include "util.h"

static void jint_or_null(struct buf *b, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		json_null(b);
	else
		buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, i));
}

static bool valid_state(const char *s, size_t n)
{
	for (int i = 0; i < STATUS_NSTATES; i++) {
		if (strlen(status_states[i]) == n && strncmp(status_states[i], s, n) == 0)
			return true;
	}
	return false;
}

int ops_list(struct spool *sp, const struct list_opts *o, FILE *out, struct ierr *e)
{
	struct buf sql = {0}, b = {0};
	sqlite3_stmt *st;
	int64_t now = now_ms();
	int n = 0, bind = 1;
	int rc;

	buf_puts(&sql,
	         "SELECT id, state, source, table_name, run_id, seq, bucket, key, rows, bytes, "
	         "attempts, created_at, sealed_at, uploaded_at, file_deleted_at, "
	         "last_error_code, last_error, path FROM segments WHERE 1");
	if (o->states && *o->states) {
		const char *p = o->states;
		bool first = true;

		buf_puts(&sql, " AND state IN (");
		while (*p) {
			size_t len = strcspn(p, ",");

			if (!valid_state(p, len)) {
				buf_free(&sql);
				return ierr_set(
				    e, IERR_CONFIG,
				    "--state: \"%.*s\" is not a state (pending, sealed, "
				    "uploading, uploaded, failed, quarantined)",
				    (int)len, p);
			}
			buf_printf(&sql, "%s'%.*s'", first ? "" : ",", (int)len, p);
			first = false;
			p += len;
			if (*p == ',')
				p++;
		}
		buf_puts(&sql, ")");
	}
	if (o->source)
		buf_printf(&sql, " AND source=?%d", bind++);
	if (o->table)
		buf_printf(&sql, " AND table_name=?%d", bind++);
	buf_puts(&sql, " ORDER BY id");
	st = ops_prep(sp, buf_cstr(&sql), e);
	buf_free(&sql);
	if (st == NULL)
		return -1;
	bind = 1;
	if (o->source)
		sqlite3_bind_text(st, bind++, o->source, -1, SQLITE_STATIC);
	if (o->table)
		sqlite3_bind_text(st, bind++, o->table, -1, SQLITE_STATIC);

	if (o->json)
		buf_putc(&b, '[');
	else
		fprintf(out, "%7s %-11s %-12s %-24s %9s %10s %4s %7s %-16s %s\n", "id", "state",
		        "source", "table", "rows", "bytes", "att", "age", "error", "key");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			static const char *const names[] = {
			    "id",        "state",       "source",          "table",
			    "run_id",    "seq",         "bucket",          "key",
			    "rows",      "bytes",       "attempts",        "created_at",
			    "sealed_at", "uploaded_at", "file_deleted_at", "error_code",
			    "error",     "path"};

			buf_puts(&b, n ? ",{" : "{");
			for (int i = 0; i < 18; i++) {
				int t = sqlite3_column_type(st, i);

				buf_printf(&b, "%s\"%s\":", i ? "," : "", names[i]);
				if (t == SQLITE_INTEGER || t == SQLITE_NULL)
					jint_or_null(&b, st, i);
				else
					json_cstr(&b, ops_col(st, i));
			}
			buf_putc(&b, '}');
		} else {
			char h[32], age[32];
			int64_t created = sqlite3_column_int64(st, 11);
			int64_t s = (now - created) / 1000;

			human_bytes(h, sizeof(h), (uint64_t)sqlite3_column_int64(st, 9));
			if (s < 120)
				snprintf(age, sizeof(age), "%llds", (long long)s);
			else if (s < 7200)
				snprintf(age, sizeof(age), "%lldm", (long long)(s / 60));
			else if (s < 172800)
				snprintf(age, sizeof(age), "%lldh", (long long)(s / 3600));
			else
				snprintf(age, sizeof(age), "%lldd", (long long)(s / 86400));
			fprintf(out, "%7lld %-11s %-12s %-24s %9lld %10s %4d %7s %-16s %s\n",
			        (long long)sqlite3_column_int64(st, 0), ops_col(st, 1),
			        ops_col(st, 2), ops_col(st, 3),
			        (long long)sqlite3_column_int64(st, 8), h,
			        sqlite3_column_int(st, 10), age,
			        *ops_col(st, 15) ? ops_col(st, 15) : "-", ops_col(st, 7));
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		buf_free(&b);
		return ops_db_fail(sp, e, "list segments");
	}
	if (o->json) {
		buf_puts(&b, "]\n");
		fputs(buf_cstr(&b), out);
	} else {
		fprintf(out, "(%d segment%s)\n", n, n == 1 ? "" : "s");
	}
	buf_free(&b);
	return n;
}
