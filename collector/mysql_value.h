/*
 * mysql_value.h - MySQL / MariaDB text-protocol values to NDJSON, with no
 * server involved.
 *
 * The MySQL driver (src_mysql.c) reads every table over the text protocol in a
 * session with time_zone '+00:00' and sql_mode '', and chooses one conversion
 * per column from its MYSQL_FIELD. This file owns what happens to each field's
 * bytes after that: turning the server's text form into its JSON value per
 * docs/TYPES.md. It is pure code (no <mysql.h>, no connection).
 *
 * Every conversion appends to a caller-owned struct buf, cannot fail and never
 * blocks. A text form a converter does not recognise (year 0, a TIME or
 * DATETIME spelling it does not expect, an out-of-range integer) is written as
 * the server's text (a JSON string, or for numbers the exact decimal text),
 * never as invalid JSON and never dropped. Lossy conversions (invalid dates,
 * invalid UTF-8, NaN/Infinity) are counted in the caller's struct lossy.
 */
#ifndef INGESTA_MYSQL_VALUE_H
#define INGESTA_MYSQL_VALUE_H

#include <stddef.h>

#include "buf.h"
#include "json.h"
#include "writer.h"

/* How a column's text form becomes JSON; chosen once per column by the driver. */
enum mysql_conv {
	MYC_NULL,      /* the NULL type: always null */
	MYC_INT,       /* TINYINT..BIGINT, YEAR: exact integer (ZEROFILL zeros dropped) */
	MYC_UINT,      /* the same, UNSIGNED: up to 2^64-1 */
	MYC_FLOAT,     /* FLOAT, read as CAST(col AS DOUBLE): written as the 32-bit float */
	MYC_DOUBLE,    /* DOUBLE */
	MYC_DECIMAL,   /* DECIMAL: per norm_opts.decimal */
	MYC_BIT,       /* BIT(n): big-endian bytes -> unsigned integer */
	MYC_DATE,      /* "YYYY-MM-DD" */
	MYC_DATETIME,  /* "YYYY-MM-DD HH:MM:SS[.ffffff]", no zone */
	MYC_TIMESTAMP, /* the same text, in UTC (the session time zone): written with Z */
	MYC_TIME,      /* "[-]H+:MM:SS[.ffffff]", a duration up to 838 hours */
	MYC_STRING,    /* character data (also ENUM, SET, GEOMETRY read as ST_AsText) */
	MYC_BINARY,    /* binary strings and BLOBs: per norm_opts.binary */
	MYC_JSON,      /* JSON documents: re-emitted; a string when the re-emitter refuses */
	MYC_WKB_HEX,   /* GEOMETRY that arrived as WKB: lowercase hex */
};

/*
 * Append the JSON value of one non-NULL field, p[0..n) as the text protocol
 * sent it (need not be NUL-terminated; SQL NULL is the caller's: json_null()),
 * converted by `conv`. opts gives the DECIMAL_MODE and BINARY_MODE choices;
 * st counts lossy conversions:
 *   - dates with a zero or impossible month/day (and zero dates) -> null,
 *     st->invalid_dates++; year 0 with a real month and day -> the text;
 *   - strings: invalid UTF-8 replaced by U+FFFD, counted (see json.h);
 *   - FLOAT/DOUBLE NaN or Infinity -> null, counted (see json.h).
 * Cannot fail; allocation failure aborts (buf.h).
 */
void mysql_value_put(struct buf *b, enum mysql_conv conv, const char *p, size_t n,
                     const struct norm_opts *opts, struct lossy *st);

#endif
