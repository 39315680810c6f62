/*
 * athena_types.h - the source type -> Athena/Glue column type mapping.
 *
 * One table (athena_types.c, docs/TYPES.md "Athena types") says which
 * Hive/Athena type reads back each source type exactly as ingesta writes it
 * to NDJSON (docs/TYPES.md): integers by width, exact decimals as
 * decimal(p,s) while p <= 38, date-times and instants as timestamp
 * (milliseconds in Athena: microseconds are cut), and everything whose JSON
 * form is a string, a nested document or an array as `string`. The mapping
 * depends on the run's settings (DECIMAL_MODE changes what decimals are in
 * the JSON) and never on the data.
 *
 * Everything here is pure: no I/O, no state, any thread.
 */
#ifndef INGESTA_ATHENA_TYPES_H
#define INGESTA_ATHENA_TYPES_H

#include <stdbool.h>
#include <stddef.h>

/* The normalization settings of a run (runs.settings_json). */
struct athena_settings {
	char decimal_mode[16]; /* "exact" (default), "double", "string" */
	char binary_mode[16];  /* "utf8" (default), "base64", "hex" */
};

/* The defaults (exact, utf8): what runs without settings_json used. */
void athena_settings_default(struct athena_settings *s);

/*
 * The Athena (Hive DDL) type of a column: db_type "sqlite", "mysql",
 * "postgresql" or "mongodb" (aliases accepted), source_type as the source
 * spells it (MariaDB COLUMN_TYPE, PostgreSQL format_type(), the SQLite
 * declared type, MongoDB's inferred BSON type name). nullable does not change
 * the type (Hive types have no NOT NULL). Writes e.g. "bigint",
 * "decimal(10,2)", "timestamp", "string" into out (at least 32 bytes) and
 * returns out. Unknown types map to "string". s NULL means the defaults.
 */
const char *athena_type(const char *db_type, const char *source_type, bool nullable,
                        const struct athena_settings *s, char *out, size_t outsz);

/*
 * The Trino type id of a Hive type, as view definitions store it:
 * string -> varchar, int -> integer, timestamp -> timestamp(3),
 * array<T> -> array(T'), struct<a:T> -> row(a T'); the rest unchanged.
 * Writes into out and returns it.
 */
const char *athena_trino_type(const char *hive_type, char *out, size_t outsz);

#endif
