/*
 * pg_text.h - PostgreSQL text-form values to NDJSON, with no server involved.
 *
 * The PostgreSQL driver (src_postgres.c) reads every table with
 * `COPY (SELECT ...) TO STDOUT` in text format, in a session set to
 * DateStyle=ISO, IntervalStyle=iso_8601, TimeZone=UTC, bytea_output=hex and
 * extra_float_digits=3. This file owns everything after the bytes arrive:
 * splitting a COPY line into fields, undoing COPY's backslash escapes, and
 * turning each field's text form into its JSON value per docs/TYPES.md
 * (timestamps, timetz, bytea hex, arrays of any dimension, ...). It is pure
 * code, so the unit tests (tests/unit/test_pgtext.c) cover it without a server.
 *
 * Every converter appends to a caller-owned struct buf and never blocks. A text
 * form a converter does not recognise (BC dates, years past 9999, a type's
 * unexpected spelling) is written as a JSON string of the server's text, never
 * as invalid JSON and never dropped; only malformed arrays and invalid json
 * documents are errors.
 */
#ifndef INGESTA_PG_TEXT_H
#define INGESTA_PG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "json.h"

/* How a column's text form becomes JSON; chosen once per column from its type. */
enum pg_conv {
	PGC_STRING = 0, /* text, varchar, uuid, inet, enum, ranges, ... and unknown types */
	PGC_BOOL,
	PGC_INT, /* int2, int4, int8, oid: the text is the exact integer */
	PGC_FLOAT4,
	PGC_FLOAT8,
	PGC_NUMERIC,
	PGC_DATE,
	PGC_TIMESTAMP,
	PGC_TIMESTAMPTZ,
	PGC_TIME,
	PGC_TIMETZ,
	PGC_JSON, /* json and jsonb: nested, re-emitted compactly */
	PGC_BYTEA,
	PGC_ARRAY, /* elements by pg_col.elem, separated by pg_col.delim */
};

/* A column's conversion: for PGC_ARRAY, elem is the element's rule (never
 * PGC_ARRAY) and delim the element type's typdelim (',' except box's ';'). */
struct pg_col {
	enum pg_conv conv;
	enum pg_conv elem;
	char delim;
};

/* Per-table conversion state: options, counters, reusable scratch buffers. */
struct pg_text_ctx {
	struct lossy *lossy;
	enum decimal_mode decimal;
	enum binary_mode binary;
	struct buf elem; /* an array element after unquoting */
	struct buf bin;  /* bytea bytes */
};

void pg_text_ctx_free(struct pg_text_ctx *cx);

/* Append the JSON value of one non-NULL field. s[0..n) need not be
 * NUL-terminated. Returns -1 with *e set only for a malformed array literal or
 * an invalid json document (the caller adds table and column). */
int pg_text_value(struct buf *b, const struct pg_col *col, const char *s, size_t n,
                  struct pg_text_ctx *cx, struct ierr *e);

/* One field of a COPY text-format row. */
struct pg_field {
	char *p; /* NUL-terminated, escapes undone; NULL for SQL NULL */
	size_t n;
};

/* Split one COPY text line (with or without its final '\n') in place into
 * exactly nf fields, undoing the backslash escapes (\N alone is NULL). Returns
 * 0, or -1 when the line does not have exactly nf fields. */
int pg_copy_split(char *line, size_t n, struct pg_field *f, size_t nf);

/* In-place COPY text unescape of s[0..n) (\b \f \n \r \t \v \\, \ooo octal,
 * \xhh hex, any other \c -> c); returns the new length. */
size_t pg_copy_unescape(char *s, size_t n);

/* bytea text output (hex `\x6869`, or the old escape format) -> bytes in out
 * (appended). Returns -1 on malformed input. */
int pg_bytea_decode(const char *s, size_t n, struct buf *out);

/* A parsed date / timestamp / time / timetz text form. */
struct pg_ts {
	long year;
	int month, day;
	int hour, min, sec, usec;
	int offset_sec; /* seconds east of UTC (timestamptz, timetz) */
	bool bc;
};

/* ISO text forms, exact: "2025-10-05", "2025-10-05 14:30:00.25", with_zone adds
 * "+02" / "-05:30" / "+05:53:28"; optional " BC". Return 0 when s is exactly
 * that form, -1 otherwise (including "infinity"). */
int pg_parse_date(const char *s, size_t n, struct pg_ts *t);
int pg_parse_timestamp(const char *s, size_t n, bool with_zone, struct pg_ts *t);
int pg_parse_time(const char *s, size_t n, bool with_zone, struct pg_ts *t);

/* Days since 1970-01-01 of a proleptic Gregorian date (year 0 = 1 BC). */
int64_t pg_days_from_civil(long y, int m, int d);

#endif
