/*
 * schema.h - a table's columns as its source reports them, and their one
 * canonical JSON form (stored in spool.db partitions.schema_json).
 *
 * Drivers with a declared schema (sqlite, mysql, postgresql) fill a struct
 * table_schema from their catalog: columns in table order (the order of
 * `SELECT *`, which is the order of the keys of each NDJSON row), each with
 * its name, its type exactly as the server spells it (`numeric(12,2)`,
 * `int(10) unsigned`, `timestamp with time zone`, `INTEGER`, ...) and whether
 * it may hold NULL; then the primary key columns in key order.
 *
 * MongoDB has no schema: struct schema_infer builds one from the documents a
 * run reads (inferred = true). Fields in first-seen order; each field's type
 * is the merge of the value types seen (schema_infer_type_name() spells them):
 *   null (and BSON undefined) combines with anything: null + T = T, nullable;
 *   int32 + int64 = int64; int32/int64 + double = double;
 *   any other mix of two types = string;
 *   a field only ever null is "null".
 * The merge is order-independent. A field is nullable when it was null in
 * some document or missing from some document.
 *
 * Canonical JSON (compact, keys in this order, strings through json_string):
 *   {"columns":[{"name":"id","type":"integer","nullable":false},...],
 *    "primary_key":["id"],"inferred":false}
 *
 * Memory: everything is heap-owned by the struct; free with table_schema_free()
 * / schema_infer_free(). Allocation failure aborts (as buf.h).
 */
#ifndef INGESTA_SCHEMA_H
#define INGESTA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct column_info {
	char *name;
	char *type;
	bool nullable;
};

struct table_schema {
	struct column_info *cols;
	size_t ncols, capcols;
	char **pk; /* primary key column names, in key order; npk 0 = no key */
	size_t npk, cappk;
	bool inferred; /* built from the rows read (MongoDB), not from a catalog */
};

/* Append a column (name and type copied; n bytes of name). */
void table_schema_add_column(struct table_schema *s, const char *name, size_t n, const char *type,
                             bool nullable);
/* Append the next primary key column (copied). */
void table_schema_add_pk(struct table_schema *s, const char *name);
/* Free everything and zero *s (reusable afterwards). */
void table_schema_free(struct table_schema *s);
/* Append the canonical JSON of s to b (no trailing newline). */
void table_schema_json(const struct table_schema *s, struct buf *b);

/* ---- inference from documents (MongoDB) ---- */

enum infer_type {
	IT_NULL = 0, /* BSON null and undefined */
	IT_DOUBLE,
	IT_STRING,
	IT_OBJECT,
	IT_ARRAY,
	IT_BINARY,
	IT_OBJECTID,
	IT_BOOL,
	IT_DATE,
	IT_REGEX,
	IT_DBPOINTER,
	IT_JAVASCRIPT,
	IT_SYMBOL,
	IT_JAVASCRIPT_WITH_SCOPE,
	IT_INT32,
	IT_TIMESTAMP,
	IT_INT64,
	IT_DECIMAL128,
	IT_MINKEY,
	IT_MAXKEY,
	IT_COUNT
};

/* "null", "double", "string", "object", "array", "binary", "objectId", "bool",
 * "date", "regex", "dbPointer", "javascript", "symbol", "javascriptWithScope",
 * "int32", "timestamp", "int64", "decimal128", "minKey", "maxKey". */
const char *schema_infer_type_name(enum infer_type t);

/* Distinct fields kept; more are left out of the schema (counted in
 * schema_infer.dropped_fields) so memory stays bounded. */
#define SCHEMA_INFER_MAX_FIELDS 10000

struct infer_field;

struct schema_infer {
	struct infer_field *fields; /* first-seen order */
	size_t nfields, capfields;
	uint32_t *slots; /* open addressing: index + 1 into fields, 0 = empty */
	size_t nslots;
	uint64_t docs;
	uint64_t dropped_fields;
};

/* Start counting a new document. */
void schema_infer_doc(struct schema_infer *inf);
/* The current document has top-level field `name` (n bytes) of type t. */
void schema_infer_field(struct schema_infer *inf, const char *name, size_t n, enum infer_type t);
/* The schema of every document seen so far, into *out (appended; out->inferred
 * set); primary_key ["_id"] when an _id field was seen. */
void schema_infer_result(const struct schema_infer *inf, struct table_schema *out);
void schema_infer_free(struct schema_infer *inf);

#endif
