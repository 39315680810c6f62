/*
 * json.h - the NDJSON value writer: every database value passes through here.
 *
 * Output follows docs/TYPES.md exactly: RFC 8259 strings (", \ and U+0000..
 * U+001F escaped, \n \t \r \b \f short forms, others \u00XX; everything else raw
 * UTF-8, invalid UTF-8 replaced by U+FFFD per maximal subpart and counted), exact
 * integers, doubles and 32-bit floats in the shortest round-trip digits written
 * the way ECMAScript Number.prototype.toString writes them, NaN/Inf as null
 * (counted), exact decimal text passed through unchanged.
 *
 * All writers append to a caller-owned struct buf and cannot fail (allocation
 * failure aborts, see buf.h) except json_reemit(), which validates its input.
 * None of them blocks. The `struct lossy` counters are caller-owned and only
 * ever incremented.
 */
#ifndef INGESTA_JSON_H
#define INGESTA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* libjansson (used by the uploader for credentials JSON) exports a json_string()
 * of its own; give ours another link name so the two can never be confused.
 * Do not include <jansson.h> and this header in the same file. */
#define json_string ingesta_json_string

/* Counts of lossy conversions, per table; reported in logs and the spool DB. */
struct lossy {
	uint64_t nonfinite;      /* NaN / +-Inf (float or decimal) written as null */
	uint64_t invalid_utf8;   /* strings (text or binary) that needed U+FFFD */
	uint64_t invalid_dates;  /* zero dates and other invalid dates written as null */
	uint64_t infinite_dates; /* PostgreSQL +-infinity dates written as null */
};

enum decimal_mode { DECIMAL_EXACT = 0, DECIMAL_DOUBLE, DECIMAL_STRING };
enum binary_mode { BINARY_UTF8 = 0, BINARY_BASE64, BINARY_HEX };

static inline void json_null(struct buf *b)
{
	buf_append(b, "null", 4);
}

static inline void json_bool(struct buf *b, bool v)
{
	if (v)
		buf_append(b, "true", 4);
	else
		buf_append(b, "false", 5);
}

void json_int64(struct buf *b, int64_t v);
void json_uint64(struct buf *b, uint64_t v);

/* A quoted, escaped string; n bytes of s (may contain NUL). */
void json_string(struct buf *b, const char *s, size_t n, struct lossy *st);

/* Shortest round-trip digits, ECMAScript form: 0.1, 3, 0.000015, 1e+300, -0.5.
 * -0.0 writes 0. NaN and +-Inf write null and count st->nonfinite. */
void json_double(struct buf *b, double v, struct lossy *st);
/* Same with the shortest digits that read back to the same 32-bit float. */
void json_float(struct buf *b, float v, struct lossy *st);

/* Format into out (at least 32 bytes), NUL-terminated; returns the length.
 * For finite values (NaN and +-Inf give "null", not counted). */
size_t json_format_double(char *out, double v);
size_t json_format_float(char *out, float v);

/* An exact decimal from its server text ("12.50", "-0.0000000001", "NaN",
 * "Infinity"). DECIMAL_EXACT writes the text as a JSON number when it is one
 * (the server's digits unchanged), DECIMAL_DOUBLE rounds through a double,
 * DECIMAL_STRING writes it quoted. NaN/Infinity in any spelling -> null, counted.
 * Text that is not a number at all is written as a JSON string (never invalid
 * JSON). */
void json_decimal(struct buf *b, const char *s, size_t n, enum decimal_mode mode, struct lossy *st);

/* Binary data: BINARY_UTF8 as json_string (U+FFFD for bad sequences, counted),
 * BINARY_BASE64 standard alphabet with padding, BINARY_HEX lowercase. */
void json_binary(struct buf *b, const void *p, size_t n, enum binary_mode mode, struct lossy *st);

/* Re-emit a JSON document compactly: insignificant whitespace removed, every
 * string and number token kept exactly as written (escapes too). Invalid UTF-8
 * inside strings is replaced by U+FFFD and counted. Returns -1 with *e set (and
 * b unchanged) when the text is not valid JSON or nests deeper than 10,000. */
int json_reemit(struct buf *b, const char *s, size_t n, struct lossy *st, struct ierr *e);

/* 24 lowercase hex digits / canonical 8-4-4-4-12 UUID, quoted. */
void json_hex_string(struct buf *b, const uint8_t *p, size_t n);
void json_uuid(struct buf *b, const uint8_t bytes[16]);

/* Dates and times, quoted, per TYPES.md. usec in 0..999999; the fraction
 * ".ffffff" is written only when usec != 0. Years outside 1..9999 are the
 * caller's business (TYPES.md: the server's text form). */
void json_date(struct buf *b, int year, int month, int day);
void json_datetime(struct buf *b, int year, int month, int day, int hour, int min, int sec,
                   int usec, bool utc_z);
/* hours may exceed 23 and the value may be negative (MySQL TIME). */
void json_time(struct buf *b, bool negative, unsigned hours, int min, int sec, int usec);
/* Unix time in microseconds (negative before 1970) -> UTC
 * "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", proleptic Gregorian. Years outside 1..9999
 * (unix_usec outside [JSON_INSTANT_MIN_USEC, JSON_INSTANT_MAX_USEC]) come out
 * with more digits or a '-' (year 0 is 1 BC); callers that must write the
 * server's text form there check the range first. */
void json_instant_usec(struct buf *b, int64_t unix_usec);
#define JSON_INSTANT_MIN_USEC (-62135596800LL * 1000000)     /* 0001-01-01T00:00:00Z */
#define JSON_INSTANT_MAX_USEC (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */

/* true when s[0..n) is a complete JSON number per RFC 8259. */
bool json_is_number(const char *s, size_t n);
/* Length of the longest valid UTF-8 prefix; == n when all valid. */
size_t utf8_valid_prefix(const char *s, size_t n);

#endif
