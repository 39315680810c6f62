/*
 * src_sqlite.c - the embedded default source: a SQLite database file.
 *
 * Values follow their storage class (TYPES.md, golden/sqlite.*): INTEGER ->
 * integer, REAL -> shortest double, TEXT -> string as stored (no date parsing),
 * BLOB -> the binary rule. The whole run reads inside one read transaction, so
 * every table comes from the same snapshot even while writers keep going.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

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

static int sqlite_read_table(struct source *s, const char *table, struct table_writer *w,
                             struct ierr *e)
{
	struct buf sql = {0};
	struct buf keys = {0};
	size_t *key_end = NULL;
	sqlite3_stmt *st = NULL;
	const struct norm_opts *o = table_writer_opts(w);
	struct lossy *st_lossy = table_writer_lossy(w);
	int ncol, rc, ret = -1;

	buf_puts(&sql, "SELECT * FROM \"");
	for (const char *p = table; *p; p++) {
		if (*p == '"')
			buf_putc(&sql, '"');
		buf_putc(&sql, *p);
	}
	buf_putc(&sql, '"');
	if (sqlite3_prepare_v2(s->db, buf_cstr(&sql), -1, &st, NULL) != SQLITE_OK) {
		ierr_set(e, IERR_SOURCE, "sqlite %s: table \"%s\": %s", s->path, table,
		         sqlite3_errmsg(s->db));
		goto out;
	}
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
	sqlite3_finalize(st);
	free(key_end);
	buf_free(&keys);
	buf_free(&sql);
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
    .close = sqlite_close,
};
