/*
 * source.h - what a source driver (sqlite, mysql, postgres, mongo) implements.
 *
 * A driver only knows its database: how to connect, list tables, open one
 * consistent snapshot, and turn each row into one JSON object. Everything the
 * four share (the run loop over tables, segment rolling, quota, progress,
 * stats, cancellation) lives in collector.c and the table writer (writer.h).
 *
 * Calling order, from collector.c, one thread per connection at a time:
 *   open -> list_tables -> begin_snapshot (or begin_shared_snapshot)
 *        -> per table: table_schema, read_table, inferred_schema -> close
 * With COLLECT_PARALLEL > 1 the collector opens several connections and
 * reads different tables on them at the same time, each on its own thread;
 * a driver keeps no state shared between its connections.
 * (`ingesta extract` skips the two schema hooks.)
 * A driver reports failures through *e (code IERR_SOURCE) with a message that
 * names the source and table; it never logs secrets (passwords, URIs with
 * credentials). read_table() returns -1 as soon as table_writer_row_end()
 * does (cancelled, quota, disk full), passing its error through unchanged.
 */
#ifndef INGESTA_SOURCE_H
#define INGESTA_SOURCE_H

#include "config.h"
#include "err.h"
#include "incremental.h"
#include "schema.h"
#include "writer.h"

struct strlist {
	char **items;
	size_t len;
	size_t cap;
};
void strlist_push(struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

struct source; /* driver-private */

/* A cursor value: text as the driver renders and binds it; kind 'i'
 * integer, 'r' real, 't' text (bound as text, typed by the server). */
struct cursor_val {
	char kind;
	char *text; /* owned; NULL: none */
};

/* One range read of an incremental table (incremental.h). */
struct range_req {
	const char *column;
	const char *type; /* the column's type as table_schema() reported it */
	enum cursor_kind kind;
	bool snapshot;                    /* a snapshot run: NULL cursors too */
	const struct cursor_val *after;   /* NULL: no lower bound */
	const struct cursor_val *through; /* NULL: none */
	int64_t lag_ms;                   /* cursor_high only */
};

struct source_ops {
	const char *db_type; /* canonical: "sqlite", "mysql", "postgresql", "mongodb" */
	/* The original deployment's per-source bucket key, read when S3_BUCKET is
	 * not set ("S3_BUCKET_MS1" for MySQL); NULL: none. */
	const char *legacy_bucket_key;
	/* Connect (no data read yet). */
	struct source *(*open)(const struct config *cfg, struct ierr *e);
	/* Every base table / collection, in a stable order (by name), system ones
	 * skipped; names as they will appear in S3 (e.g. "schema.table" for a
	 * non-default PostgreSQL schema). INCLUDE/EXCLUDE filtering is done by the
	 * caller. */
	int (*list_tables)(struct source *s, struct strlist *out, struct ierr *e);
	/* Start the one consistent snapshot the whole run reads from. */
	int (*begin_snapshot)(struct source *s, struct ierr *e);
	/* Stream every row of `table` into w: for each row
	 *   struct buf *b = table_writer_row_begin(w);  append '{' ... '}' to b
	 *   if (table_writer_row_end(w, e) != 0) return -1;
	 * Memory must stay bounded whatever the table size. */
	int (*read_table)(struct source *s, const char *table, struct table_writer *w,
	                  struct ierr *e);
	/* Sources with a declared schema: the columns of `table` in the order
	 * read_table() writes them, each with the type as the server spells it
	 * and its nullability, and the primary key in key order (schema.h), read
	 * inside the snapshot. Called just before read_table(); *out is empty
	 * and caller-owned. A failure is IERR_SOURCE naming the table. NULL: the
	 * source has no declared schema. */
	int (*table_schema)(struct source *s, const char *table, struct table_schema *out,
	                    struct ierr *e);
	/* Sources without one (MongoDB): the schema inferred from the rows the
	 * read_table() of `table` just returned (out->inferred = true). Called
	 * right after that read_table() succeeded, with the same *out (empty
	 * unless table_schema is set too). NULL for the others. */
	int (*inferred_schema)(struct source *s, const char *table, struct table_schema *out,
	                       struct ierr *e);
	/* LOAD_MODE=incremental (README "Incremental extraction"; NULL: this
	 * driver has no range reads, incremental mode is refused at start).
	 * Both run inside the snapshot, after table_schema().
	 * cursor_high: max(column) of the rows with column > after (all when
	 * after is NULL) and, for date/date-time cursors with lag_ms > 0,
	 * column <= the source's clock minus lag_ms; high->text NULL when there
	 * is none (malloc'd otherwise, in the form the same driver binds back,
	 * high->kind how). has_nulls (when not NULL): whether a row's column is
	 * NULL.
	 * read_range: like read_table, the rows of incr_where_sql()'s clause. */
	int (*cursor_high)(struct source *s, const char *table, const struct range_req *rq,
	                   struct cursor_val *high, bool *has_nulls, struct ierr *e);
	int (*read_range)(struct source *s, const char *table, const struct range_req *rq,
	                  struct table_writer *w, struct ierr *e);
	/* Sources without a declared schema (MongoDB), for the incremental plan
	 * only: `column` as the documents hold it inside the snapshot (its type
	 * as incr_cursor_kind() reads it, nullable when some document has it
	 * null or lacks it; no column when no document has it) and the key.
	 * NULL: table_schema() is used. */
	int (*cursor_schema)(struct source *s, const char *table, const char *column,
	                     struct table_schema *out, struct ierr *e);
	/* COLLECT_PARALLEL > 1: instead of begin_snapshot() on s, put s and the
	 * n connections more[] (each open()ed and list_tables()ed like s) into
	 * one snapshot, so that rows read on any of them are those of one
	 * instant. Returns 0 when all n+1 share it; 1 when this server cannot
	 * share one (why: one line saying why): s alone is then in its
	 * snapshot, as after begin_snapshot(), and the caller closes more[];
	 * -1 on error. Afterwards each connection is used by one thread at a
	 * time (not always the thread that opened it). NULL: the driver reads
	 * with one connection. */
	int (*begin_shared_snapshot)(struct source *s, struct source *const *more, int n, char *why,
	                             size_t whylen, struct ierr *e);
	/* COLLECT_PARALLEL, splitting one table into key ranges (both NULL:
	 * never split). table_bytes: the table's size on disk as the server
	 * knows it without reading it (statistics; -1 when unknown or not a
	 * plain table). key_bounds: inside the snapshot, min and max of the
	 * integer column `column` (*empty when no row has one). The ranges are
	 * then read with read_range() (range_req: kind CK_INT, after/through). */
	int (*table_bytes)(struct source *s, const char *table, int64_t *bytes, struct ierr *e);
	int (*key_bounds)(struct source *s, const char *table, const char *column, int64_t *lo,
	                  int64_t *hi, bool *empty, struct ierr *e);
	void (*close)(struct source *s);
};

extern const struct source_ops source_sqlite;
extern const struct source_ops source_mysql;
extern const struct source_ops source_postgres;
extern const struct source_ops source_mongo;

/* "mysql", "mariadb", "postgresql", "postgres", "mongodb", "mongo", "sqlite". */
const struct source_ops *source_lookup(const char *db_type);

#endif
