/*
 * watermark.c - incremental extraction's committed high-water marks
 * (schema/003_watermarks.sql, README "Incremental extraction").
 *
 * A watermark moves only inside the transaction that completes the table's
 * partition (spool_partition_complete_read), with a compare-and-set on its
 * version, so the data of a range and the end of that range are committed
 * together or not at all, and two writers (two collectors of one source, or
 * a collector and `ingesta reset`) cannot both move it.
 */
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "spool.h"
#include "spool_internal.h"
#include "util.h"

void spool_watermark_free(struct spool_watermark *wm)
{
	free(wm->value);
	memset(wm, 0, sizeof(*wm));
}

int spool_watermark_get(struct spool *sp, const char *source, const char *table,
                        struct spool_watermark *wm, struct ierr *e)
{
	sqlite3_stmt *st = sp_prep(sp,
	                           "SELECT cursor_column, value, value_kind, version, "
	                           "coalesce(snapshot_at, -1), range_rows, coalesce(run_id, '') "
	                           "FROM watermarks WHERE source=? AND table_name=?",
	                           e);
	int rc;

	memset(wm, 0, sizeof(*wm));
	wm->snapshot_at = -1;
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 2);

		wm->present = true;
		snprintf(wm->column, sizeof(wm->column), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		wm->has_value = sqlite3_column_type(st, 1) != SQLITE_NULL;
		if (wm->has_value)
			wm->value = xstrdup((const char *)sqlite3_column_text(st, 1));
		wm->kind = k ? k[0] : 't';
		wm->version = sqlite3_column_int64(st, 3);
		wm->snapshot_at = sqlite3_column_int64(st, 4);
		wm->range_rows = sqlite3_column_int64(st, 5);
		snprintf(wm->run_id, sizeof(wm->run_id), "%s",
		         (const char *)sqlite3_column_text(st, 6));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sp_db_error(sp, e, "read watermark");
	return 0;
}

void spool_range_json(const char *column, const char *after, const char *through, struct buf *b)
{
	struct lossy none = {0};

	buf_puts(b, "{\"column\":");
	json_string(b, column, strlen(column), &none);
	buf_puts(b, ",\"after\":");
	if (after)
		json_string(b, after, strlen(after), &none);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"through\":");
	if (through)
		json_string(b, through, strlen(through), &none);
	else
		buf_puts(b, "null");
	buf_putc(b, '}');
}

/* Inside the partition's transaction: record how it was read, then move the
 * watermark (compare-and-set on its version). */
int sp_partition_read_record(struct spool *sp, int64_t partition_id, uint64_t rows,
                             const struct partition_read *rd, struct ierr *e)
{
	struct buf range = {0};
	sqlite3_stmt *st;
	const char *value;
	char kind;
	int rc;

	if (rd->column != NULL)
		spool_range_json(rd->column, rd->after, rd->through, &range);
	st = sp_prep(
	    sp, "UPDATE partitions SET load_mode=?2, range_json=?3, key_json=?4 WHERE id=?1", e);
	if (st == NULL) {
		buf_free(&range);
		return -1;
	}
	sqlite3_bind_int64(st, 1, partition_id);
	sqlite3_bind_text(st, 2, rd->incremental ? "incremental" : "snapshot", -1, SQLITE_STATIC);
	if (rd->column != NULL)
		sqlite3_bind_text(st, 3, buf_cstr(&range), -1, SQLITE_TRANSIENT);
	if (rd->key_json != NULL)
		sqlite3_bind_text(st, 4, rd->key_json, -1, SQLITE_STATIC);
	buf_free(&range);
	if (sp_step_done(sp, st, "record the partition's range", e) != 0)
		return -1;
	if (rd->column == NULL)
		return 0;
	/* The new mark: the end of what was read; an incremental run that found
	 * nothing new keeps the old one; a snapshot of a table without a
	 * non-NULL cursor has none (the next run reads from the beginning). */
	value = rd->through ? rd->through : rd->incremental ? rd->after : NULL;
	kind = rd->through ? rd->through_kind : rd->incremental ? rd->after_kind : 't';
	if (kind != 'i' && kind != 'r')
		kind = 't';
	if (rd->expect_present)
		st = sp_prep(
		    sp,
		    "UPDATE watermarks SET cursor_column=?3, value=?4, value_kind=?5, "
		    "version=version+1, run_id=?6, partition_id=?7, range_rows=?8, "
		    "snapshot_at=CASE WHEN ?9 THEN ?10 ELSE snapshot_at END, updated_at=?11 "
		    "WHERE source=?1 AND table_name=?2 AND version=?12",
		    e);
	else
		st = sp_prep(
		    sp,
		    "INSERT INTO watermarks (source, table_name, cursor_column, value, "
		    "value_kind, run_id, partition_id, range_rows, snapshot_at, updated_at) "
		    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN ?9 THEN ?10 END, ?11 "
		    "WHERE NOT EXISTS (SELECT 1 FROM watermarks WHERE source=?1 AND "
		    "table_name=?2) AND ?12 = 0",
		    e);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, rd->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rd->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rd->column, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 4, value, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, (char[2]){kind, 0}, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, rd->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, partition_id);
	sqlite3_bind_int64(st, 8, (int64_t)rows);
	sqlite3_bind_int(st, 9, rd->incremental ? 0 : 1);
	sqlite3_bind_int64(st, 10, rd->run_started_at);
	sqlite3_bind_int64(st, 11, now_ms());
	sqlite3_bind_int64(st, 12, rd->expect_present ? rd->expect_version : 0);
	rc = sp_step_done(sp, st, "write watermark", e);
	if (rc != 0)
		return -1;
	if (sqlite3_changes(sp->db) != 1)
		return ierr_set(e, IERR_SPOOL,
		                "table \"%s\": its watermark was moved by someone else during this "
		                "run (another collector of source %s, or `ingesta reset`); nothing "
		                "of this run's table is committed, the next run reads from the "
		                "watermark as it is now",
		                rd->table, rd->source);
	return 0;
}

/* A run of `source` whose collector still holds its lock. */
int spool_source_running(struct spool *sp, const char *source, char *run_id, size_t n)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(sp->db, "SELECT run_id FROM runs WHERE state='running' AND source=?",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	while (!found && sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id && !run_is_dead(sp, id)) {
			snprintf(run_id, n, "%s", id);
			found = 1;
		}
	}
	sqlite3_finalize(st);
	return found;
}

static bool valid_number(const char *v, bool integer)
{
	char *end = NULL;

	if (*v == '\0')
		return false;
	if (integer)
		(void)strtoll(v, &end, 10);
	else
		(void)strtod(v, &end);
	return end && *end == '\0';
}

int spool_watermark_reset(struct spool *sp, const char *source, const char *table, const char *to,
                          struct watermark_reset_result *res, struct ierr *e)
{
	struct spool_watermark wm;
	sqlite3_stmt *st;
	char live[64];

	memset(res, 0, sizeof(*res));
	if (sp_begin(sp, e) != 0)
		return -1;
	if (spool_source_running(sp, source, live, sizeof(live)) == 1) {
		sp_rollback(sp);
		res->refused = true;
		snprintf(res->why, sizeof(res->why),
		         "a collector of source %s is running (run %s): reset when it has finished",
		         source, live);
		return 0;
	}
	if (spool_watermark_get(sp, source, table, &wm, e) != 0) {
		sp_rollback(sp);
		return -1;
	}
	res->had = wm.present;
	if (wm.present && wm.has_value)
		snprintf(res->before, sizeof(res->before), "%s", wm.value);
	if (to != NULL && !wm.present) {
		sp_rollback(sp);
		res->refused = true;
		snprintf(res->why, sizeof(res->why),
		         "table \"%s\" of source %s has no watermark to move (its next run is a "
		         "snapshot anyway)",
		         table, source);
		spool_watermark_free(&wm);
		return 0;
	}
	if (to != NULL && (wm.kind == 'i' || wm.kind == 'r') && !valid_number(to, wm.kind == 'i')) {
		sp_rollback(sp);
		ierr_set(e, IERR_CONFIG, "--to: \"%s\" is not %s (cursor column %s)", to,
		         wm.kind == 'i' ? "an integer" : "a number", wm.column);
		spool_watermark_free(&wm);
		return -1;
	}
	spool_watermark_free(&wm);
	if (to == NULL)
		st = sp_prep(sp, "DELETE FROM watermarks WHERE source=?1 AND table_name=?2", e);
	else
		st = sp_prep(sp,
		             "UPDATE watermarks SET value=?3, version=version+1, run_id=NULL, "
		             "partition_id=NULL, range_rows=0, updated_at=?4 "
		             "WHERE source=?1 AND table_name=?2",
		             e);
	if (st == NULL) {
		sp_rollback(sp);
		return -1;
	}
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	if (to != NULL) {
		sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms());
	}
	if (sp_step_done(sp, st, "reset watermark", e) != 0) {
		sp_rollback(sp);
		return -1;
	}
	return sp_commit(sp, e);
}
