/*
 * incremental.h - LOAD_MODE=incremental: which tables read a range of their
 * cursor column, checked at the start of a run (README "Incremental
 * extraction"), and the WHERE clauses the drivers read that range with.
 *
 * Pure functions over the configuration and a table's schema (schema.h), so
 * the rules are unit-tested without a database:
 * - cursor column: INCREMENTAL_COLUMNS (table:column,...) for the table, else
 *   INCREMENTAL_COLUMN when the table has that column, else none (the table
 *   is read as a snapshot). A column named in INCREMENTAL_COLUMNS that the
 *   table lacks is an error (exit 2), as is a type that cannot be ordered
 *   exactly (floats, booleans, binary, JSON, ...) and a nullable cursor with
 *   INCREMENTAL_NULLS=refuse.
 * - primary key: PRIMARY_KEYS (table:col+col,...) when given, else the
 *   source's; an incremental table needs one (<table>_current).
 * - the range: snapshot runs read `cursor <= high OR cursor IS NULL` (or
 *   only the NULL ones when there is no high-water mark), incremental runs
 *   `cursor > after AND cursor <= high` (no lower bound when after is none);
 *   values are bound parameters, never pasted (the drivers say how).
 */
#ifndef INGESTA_INCREMENTAL_H
#define INGESTA_INCREMENTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "schema.h"

enum cursor_kind { CK_NONE = 0, CK_INT, CK_DECIMAL, CK_DATE, CK_DATETIME, CK_STRING };
enum null_rule { NULLS_REFUSE = 0, NULLS_SNAPSHOT, NULLS_SKIP };

/* "integer", "decimal", "date", "date-time", "string", "unorderable". */
const char *incr_kind_name(enum cursor_kind k);
/* The cursor family of a column type as the source spells it (schema.h);
 * CK_NONE when it cannot be a cursor (or the source has no range reads). */
enum cursor_kind incr_cursor_kind(const char *db_type, const char *type);

struct incr_settings {
	bool on;               /* LOAD_MODE=incremental */
	const char *column;    /* INCREMENTAL_COLUMN, "" none */
	const char *per_table; /* INCREMENTAL_COLUMNS */
	const char *keys;      /* PRIMARY_KEYS */
	enum null_rule nulls;  /* INCREMENTAL_NULLS */
	int64_t lag_ms;        /* INCREMENTAL_LAG */
	int64_t refresh_ms;    /* FULL_REFRESH_EVERY, 0 off */
};
/* Read and check the syntax of the keys (IERR_CONFIG naming the key). */
int incr_settings_from(const struct config *cfg, struct incr_settings *s, struct ierr *e);

/* The value for `table` in a "table:value,..." list into out; true when found. */
bool incr_list_lookup(const char *list, const char *table, char *out, size_t n);

/* The plan of one table. */
struct incr_table {
	bool incremental;  /* false: read as a snapshot (no cursor column) */
	bool explicit_col; /* named in INCREMENTAL_COLUMNS */
	char column[256];
	char type[256]; /* the column's type as the source spells it */
	enum cursor_kind kind;
	bool nullable;
	struct buf key_json; /* ["id",...] */
};
void incr_table_free(struct incr_table *t);
/* Decide and check `table` (schema read inside the snapshot). 0 with *out
 * filled (out->incremental false: snapshot), -1 IERR_CONFIG naming the table
 * and the column. */
int incr_plan_table(const struct incr_settings *s, const char *db_type, const char *table,
                    const struct table_schema *schema, struct incr_table *out, struct ierr *e);

/* Placeholder style of the WHERE clause. */
enum incr_dialect {
	DIALECT_SQLITE,   /* ?1 after, ?2 through */
	DIALECT_POSTGRES, /* current_setting('ingesta.after')::<type> (set_config, bound) */
	DIALECT_MYSQL     /* type is incr_mysql_value_sql()'s template, '?' replaced by
	                     @ingesta_after / @ingesta_through (set by a prepared SET) */
};
/* The WHERE clause (with its leading " WHERE ") of a range read:
 * snapshot: `(c <= T OR c IS NULL)`, or `c IS NULL` without through;
 * incremental: `c > A AND c <= T` (`c <= T` without after). quoted_col is
 * the column as the dialect quotes identifiers; type (PostgreSQL) the
 * column's type from the catalog. */
void incr_where_sql(enum incr_dialect d, const char *quoted_col, const char *type, bool snapshot,
                    bool has_after, bool has_through, struct buf *out);

/* MySQL/MariaDB: the expression that reads a cursor value (held as text in a
 * user variable) back as the column's type, with '?' where the variable
 * goes: "CAST(? AS SIGNED)", "CAST(? AS DECIMAL(12,2))",
 * "CAST(? AS DATETIME(6))", "CONVERT(? USING utf8mb4) COLLATE
 * utf8mb4_general_ci" (strings compare in the column's collation: charset and
 * collation from information_schema, only [A-Za-z0-9_] accepted). -1 when
 * the type is not a MySQL cursor type or a name is not plain. */
int incr_mysql_value_sql(const char *type, const char *charset, const char *collation,
                         struct buf *out);

#endif
