/*
 * src_sqlite.c - the embedded default source: a SQLite database file.
 *
 * Values follow their storage class (TYPES.md, golden/sqlite.*): INTEGER ->
 * integer, REAL -> shortest double, TEXT -> string as stored (no date parsing),
 * BLOB -> the binary rule. The whole run reads inside one read transaction, so
 * every table comes from the same snapshot even while writers keep going.
 * COLLECT_PARALLEL does not apply (no begin_shared_snapshot): read
 * transactions of two connections are two snapshots (sharing one needs
 * sqlite3_snapshot_open(), WAL only, and a library built with
 * SQLITE_ENABLE_SNAPSHOT), so the run keeps its one connection.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source.h"
#include "util.h"

struct source {
	sqlite3 *db;
	char path[4096];
	bool views;
};

static struct source *sqlite_open(const struct config *cfg, struct ierr *e)
{
	const char *path = config_str(cfg, "SQLITE_PATH");
	struct source *s;

	if (*path == '\0') {
		ierr_set(e, IERR_CONFIG, "SQLITE_PATH: not set (path of the SQLite database)");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->views = config_bool(cfg, "INCLUDE_VIEWS");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		ierr_set(e, IERR_SOURCE, "sqlite %s: cannot open: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite3_close(s->db);
		free(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 30000);
	return s;
}

static int sqlite_list_tables(struct source *s, struct strlist *out, struct ierr *e)
{
	sqlite3_stmt *st = NULL;
	const char *sql = s->views
	                      ? "SELECT name FROM sqlite_schema WHERE type IN ('table','view') "
	                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
	                      : "SELECT name FROM sqlite_schema WHERE type='table' "
	                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: listing tables: %s", s->path,
		                sqlite3_errmsg(s->db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strlist_push(out, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: listing tables: %s", s->path,
		                sqlite3_errmsg(s->db));
	return 0;
}

static int sqlite_begin_snapshot(struct source *s, struct ierr *e)
{
	/* A deferred transaction takes its snapshot at the first read. */
	if (sqlite3_exec(s->db, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: begin snapshot: %s", s->path,
		                sqlite3_errmsg(s->db));
	return 0;
}

/* "name" with embedded quotes doubled. */
static void quote_ident(struct buf *b, const char *name)
{
	buf_putc(b, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			buf_putc(b, '"');
		buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

static int read_rows(struct source *s, const char *table, sqlite3_stmt *st, struct table_writer *w,
                     struct ierr *e);

static int sqlite_read_table(struct source *s, const char *table, struct table_writer *w,
                             struct ierr *e)
{
	struct buf sql = {0};
	sqlite3_stmt *st = NULL;
	int ret;

	buf_puts(&sql, "SELECT * FROM ");
	quote_ident(&sql, table);
	if (sqlite3_prepare_v2(s->db, buf_cstr(&sql), -1, &st, NULL) != SQLITE_OK) {
		buf_free(&sql);
		return ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": %s", s->path, table,
		                sqlite3_errmsg(s->db));
	}
	buf_free(&sql);
	ret = read_rows(s, table, st, w, e);
	sqlite3_finalize(st);
	return ret;
}

/* Bind a cursor value with its storage class (an integer cursor compares as
 * an integer, not as text). */
static void bind_cursor(sqlite3_stmt *st, int i, const struct cursor_val *v)
{
	if (v->kind == 'i')
		sqlite3_bind_int64(st, i, strtoll(v->text, NULL, 10));
	else if (v->kind == 'r')
		sqlite3_bind_double(st, i, strtod(v->text, NULL));
	else
		sqlite3_bind_text(st, i, v->text, -1, SQLITE_TRANSIENT);
}

/* The stored value as a cursor value: integers and reals keep their class
 * (reals with 17 significant digits, so they bind back exactly). */
static void column_cursor(sqlite3_stmt *st, int i, struct cursor_val *out)
{
	char num[64];

	out->text = NULL;
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return;
	case SQLITE_INTEGER:
		out->kind = 'i';
		snprintf(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, i));
		out->text = xstrdup(num);
		return;
	case SQLITE_FLOAT:
		out->kind = 'r';
		snprintf(num, sizeof(num), "%.17g", sqlite3_column_double(st, i));
		out->text = xstrdup(num);
		return;
	default:
		out->kind = 't';
		out->text = xstrndup((const char *)sqlite3_column_text(st, i),
		                     (size_t)sqlite3_column_bytes(st, i));
	}
}

/* SQLite is embedded: "the source's clock" is this host's. */
static void lag_cutoff(int64_t lag_ms, char *out, size_t n)
{
	int64_t ms = now_ms() - lag_ms;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int sqlite_cursor_high(struct source *s, const char *table, const struct range_req *rq,
                              struct cursor_val *high, bool *has_nulls, struct ierr *e)
{
	struct buf sql = {0}, col = {0};
	sqlite3_stmt *st = NULL;
	bool lag = rq->lag_ms > 0 && (rq->kind == CK_DATE || rq->kind == CK_DATETIME);
	char cutoff[40];
	int rc;

	high->text = NULL;
	quote_ident(&col, rq->column);
	buf_printf(&sql, "SELECT max(%s)", buf_cstr(&col));
	if (has_nulls) {
		buf_printf(&sql, ", EXISTS (SELECT 1 FROM ");
		quote_ident(&sql, table);
		buf_printf(&sql, " WHERE %s IS NULL)", buf_cstr(&col));
	}
	buf_puts(&sql, " FROM ");
	quote_ident(&sql, table);
	buf_printf(&sql, " WHERE %s IS NOT NULL", buf_cstr(&col));
	if (rq->after)
		buf_printf(&sql, " AND %s > ?1", buf_cstr(&col));
	/* Date-times as text ('2026-01-01 10:00:00', '...T...Z') or julian
	 * numbers: julianday() reads every form SQLite knows. */
	if (lag)
		buf_printf(&sql, " AND julianday(%s) <= julianday(?2)", buf_cstr(&col));
	rc = sqlite3_prepare_v2(s->db, buf_cstr(&sql), -1, &st, NULL);
	buf_free(&sql);
	buf_free(&col);
	if (rc != SQLITE_OK)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": high-water mark: %s",
		                s->path, table, sqlite3_errmsg(s->db));
	if (rq->after)
		bind_cursor(st, 1, rq->after);
	if (lag) {
		lag_cutoff(rq->lag_ms, cutoff, sizeof(cutoff));
		sqlite3_bind_text(st, 2, cutoff, -1, SQLITE_TRANSIENT);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		column_cursor(st, 0, high);
		if (has_nulls)
			*has_nulls = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": high-water mark: %s",
		                s->path, table, sqlite3_errmsg(s->db));
	return 0;
}

static int sqlite_read_range(struct source *s, const char *table, const struct range_req *rq,
                             struct table_writer *w, struct ierr *e)
{
	struct buf sql = {0}, col = {0};
	sqlite3_stmt *st = NULL;
	int ret;

	quote_ident(&col, rq->column);
	buf_puts(&sql, "SELECT * FROM ");
	quote_ident(&sql, table);
	incr_where_sql(DIALECT_SQLITE, buf_cstr(&col), rq->type, rq->snapshot, rq->after != NULL,
	               rq->through != NULL, &sql);
	ret = sqlite3_prepare_v2(s->db, buf_cstr(&sql), -1, &st, NULL);
	buf_free(&sql);
	buf_free(&col);
	if (ret != SQLITE_OK)
		return ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": %s", s->path, table,
		                sqlite3_errmsg(s->db));
	if (rq->after && !rq->snapshot)
		bind_cursor(st, 1, rq->after);
	if (rq->through)
		bind_cursor(st, 2, rq->through);
	ret = read_rows(s, table, st, w, e);
	sqlite3_finalize(st);
	return ret;
}

static int read_rows(struct source *s, const char *table, sqlite3_stmt *st, struct table_writer *w,
                     struct ierr *e)
{
	struct buf keys = {0};
	size_t *key_end = NULL;
	const struct norm_opts *o = table_writer_opts(w);
	struct lossy *st_lossy = table_writer_lossy(w);
	int ncol, rc, ret = -1;

	ncol = sqlite3_column_count(st);
	key_end = calloc((size_t)ncol + 1, sizeof(*key_end));
	for (int i = 0; i < ncol; i++) {
		const char *name = sqlite3_column_name(st, i);

		if (i > 0)
			buf_putc(&keys, ',');
		json_key(&keys, name, strlen(name));
		key_end[i + 1] = keys.len;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct buf *b = table_writer_row_begin(w);

		buf_putc(b, '{');
		for (int i = 0; i < ncol; i++) {
			buf_append(b, keys.data + key_end[i], key_end[i + 1] - key_end[i]);
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_INTEGER:
				json_int64(b, sqlite3_column_int64(st, i));
				break;
			case SQLITE_FLOAT:
				json_double(b, sqlite3_column_double(st, i), st_lossy);
				break;
			case SQLITE_TEXT: {
				const char *t = (const char *)sqlite3_column_text(st, i);

				json_string(b, t, (size_t)sqlite3_column_bytes(st, i), st_lossy);
				break;
			}
			case SQLITE_BLOB: {
				const void *p = sqlite3_column_blob(st, i);

				json_binary(b, p, (size_t)sqlite3_column_bytes(st, i), o->binary,
				            st_lossy);
				break;
			}
			default:
				json_null(b);
			}
		}
		buf_putc(b, '}');
		if (table_writer_row_end(w, e) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": %s", s->path, table,
		         sqlite3_errmsg(s->db));
		goto out;
	}
	ret = 0;
out:
	free(key_end);
	buf_free(&keys);
	return ret;
}

/* Is `table` a WITHOUT ROWID table? (Its primary key columns are NOT NULL;
 * in a rowid table only an INTEGER PRIMARY KEY, the rowid, is.) */
static bool without_rowid(struct source *s, const char *table)
{
	sqlite3_stmt *st = NULL;
	bool wr = false;

	/* pragma_table_list: SQLite 3.37+; older ones simply say no. */
	if (sqlite3_prepare_v2(
	        s->db, "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", -1,
	        &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		wr = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return wr;
}

/*
 * Declared types as written in CREATE TABLE ("INTEGER", "VARCHAR(10)", "" for
 * none), from PRAGMA table_xinfo inside the run's read transaction. Hidden
 * columns of virtual tables (hidden = 1) are left out as SELECT * leaves them
 * out; generated columns (2, 3) are in. Nullable unless NOT NULL, or the
 * column is the rowid (a lone INTEGER PRIMARY KEY), or a key column of a
 * WITHOUT ROWID table. Primary key order from the pk field (1-based).
 */
static int sqlite_table_schema(struct source *s, const char *table, struct table_schema *out,
                               struct ierr *e)
{
	sqlite3_stmt *st = NULL;
	const char **pk = NULL;
	int npk = 0, rc, ret = -1;
	bool wr = without_rowid(s, table);
	bool rowid_alias = false;

	/* The rowid alias: exactly one key column, declared type INTEGER. */
	if (!wr && sqlite3_prepare_v2(s->db,
	                              "SELECT count(*), max(upper(type) = 'INTEGER') FROM "
	                              "pragma_table_xinfo(?) WHERE pk > 0",
	                              -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			rowid_alias =
			    sqlite3_column_int(st, 0) == 1 && sqlite3_column_int(st, 1) == 1;
		sqlite3_finalize(st);
		st = NULL;
	}
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?) "
	                       "WHERE hidden <> 1 ORDER BY cid",
	                       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *type = (const char *)sqlite3_column_text(st, 1);
		int key = sqlite3_column_int(st, 3);
		bool notnull = sqlite3_column_int(st, 2) != 0 || (key > 0 && (wr || rowid_alias));

		if (name == NULL)
			name = "";
		table_schema_add_column(out, name, strlen(name), type ? type : "", !notnull);
		if (key > npk) {
			const char **p = xrealloc(pk, (size_t)key * sizeof(*pk));

			for (int i = npk; i < key; i++)
				p[i] = NULL;
			pk = p;
			npk = key;
		}
		if (key > 0)
			pk[key - 1] = out->cols[out->ncols - 1].name;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	if (out->ncols == 0) {
		ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": no columns found (dropped?)",
		         s->path, table);
		goto out;
	}
	for (int i = 0; i < npk; i++) {
		if (pk[i] != NULL)
			table_schema_add_pk(out, pk[i]);
	}
	ret = 0;
	goto out;
fail:
	ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": reading its columns: %s", s->path, table,
	         sqlite3_errmsg(s->db));
out:
	sqlite3_finalize(st);
	free(pk);
	return ret;
}

static void sqlite_close(struct source *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s);
}

const struct source_ops source_sqlite = {
    .db_type = "sqlite",
    .legacy_bucket_key = NULL,
    .open = sqlite_open,
    .list_tables = sqlite_list_tables,
    .begin_snapshot = sqlite_begin_snapshot,
    .read_table = sqlite_read_table,
    .table_schema = sqlite_table_schema,
    .cursor_high = sqlite_cursor_high,
    .read_range = sqlite_read_range,
    .close = sqlite_close,
};
