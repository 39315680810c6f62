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

static void sqlite_close(struct source *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s);
}

const struct source_ops source_sqlite = {
    .db_type = "sqlite",
    .open = sqlite_open,
    .list_tables = sqlite_list_tables,
    .begin_snapshot = sqlite_begin_snapshot,
    .read_table = sqlite_read_table,
    .close = sqlite_close,
};
