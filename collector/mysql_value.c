/*
 * mysql_value.c - MySQL / MariaDB text-protocol values to NDJSON (see
 * mysql_value.h).
 *
 * The text protocol sends every value as the server's text form; the session
 * src_mysql.c sets up (time_zone '+00:00', sql_mode '') fixes those forms, so
 * each parser accepts exactly the server's spelling and anything else falls
 * back to the text itself: a value is never lost or turned into invalid JSON.
 * Integers are parsed rather than copied so ZEROFILL's leading zeros go;
 * FLOAT arrives as the text of its exact double and is narrowed back here.
 */
#include "mysql_value.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fixed-width decimal digits; -1 when any is not a digit. */
static int digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* ".ffffff" (1..6 digits) at p[0..n) -> microseconds; n == 0 -> 0. */
static int fraction_usec(const char *p, size_t n)
{
	int usec = 0;
	size_t i;

	if (n == 0)
		return 0;
	if (p[0] != '.' || n > 7)
		return -1;
	for (i = 1; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		usec = usec * 10 + (p[i] - '0');
	}
	for (; i < 7; i++)
		usec *= 10;
	return usec;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

enum date_kind { DATE_OK, DATE_INVALID, DATE_RAW };

/* "YYYY-MM-DD": zero dates and zero-in-date / impossible dates are invalid
 * (null, counted); year 0 with a real month and day is written as the
 * server's text (TYPES.md: dates outside 1..9999). */
static enum date_kind parse_date(const char *p, size_t n, int *y, int *m, int *d)
{
	if (n < 10 || p[4] != '-' || p[7] != '-')
		return DATE_RAW;
	*y = digits(p, 4);
	*m = digits(p + 5, 2);
	*d = digits(p + 8, 2);
	if (*y < 0 || *m < 0 || *d < 0)
		return DATE_RAW;
	if (*m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
		return DATE_INVALID;
	if (*y == 0)
		return DATE_RAW;
	return DATE_OK;
}

static void put_date(struct buf *b, const char *p, size_t n, struct lossy *st)
{
	int y, m, d;

	switch (parse_date(p, n, &y, &m, &d)) {
	case DATE_OK:
		if (n == 10) {
			json_date(b, y, m, d);
			return;
		}
		break;
	case DATE_INVALID:
		st->invalid_dates++;
		json_null(b);
		return;
	case DATE_RAW:
		break;
	}
	json_string(b, p, n, st);
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" */
static void put_datetime(struct buf *b, const char *p, size_t n, bool utc, struct lossy *st)
{
	int y, m, d, hh, mi, ss, usec;

	switch (parse_date(p, n, &y, &m, &d)) {
	case DATE_OK:
		if (n < 19 || p[10] != ' ' || p[13] != ':' || p[16] != ':')
			break;
		hh = digits(p + 11, 2);
		mi = digits(p + 14, 2);
		ss = digits(p + 17, 2);
		usec = fraction_usec(p + 19, n - 19);
		if (hh < 0 || mi < 0 || ss < 0 || usec < 0)
			break;
		json_datetime(b, y, m, d, hh, mi, ss, usec, utc);
		return;
	case DATE_INVALID:
		st->invalid_dates++;
		json_null(b);
		return;
	case DATE_RAW:
		break;
	}
	json_string(b, p, n, st);
}

/* "[-]H+:MM:SS[.ffffff]", hours up to 838. */
static void put_time(struct buf *b, const char *p, size_t n, struct lossy *st)
{
	const char *q = p, *end = p + n;
	bool neg = false;
	unsigned hours = 0;
	int mi, ss, usec;

	if (q < end && *q == '-') {
		neg = true;
		q++;
	}
	if (q >= end || *q < '0' || *q > '9')
		goto raw;
	while (q < end && *q >= '0' && *q <= '9' && hours < 100000)
		hours = hours * 10 + (unsigned)(*q++ - '0');
	if (end - q < 6 || q[0] != ':' || q[3] != ':')
		goto raw;
	mi = digits(q + 1, 2);
	ss = digits(q + 4, 2);
	usec = fraction_usec(q + 6, (size_t)(end - q - 6));
	if (mi < 0 || ss < 0 || usec < 0)
		goto raw;
	json_time(b, neg, hours, mi, ss, usec);
	return;
raw:
	json_string(b, p, n, st);
}

/* Integers: the text is exact; parse it so ZEROFILL's leading zeros go. */
static void put_int(struct buf *b, const char *p, size_t n, bool is_unsigned, struct lossy *st)
{
	size_t i = 0;
	uint64_t v = 0;
	bool neg = false;

	if (n > 0 && p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n)
		goto raw;
	for (; i < n; i++) {
		unsigned dgt = (unsigned)(p[i] - '0');
		if (dgt > 9 || v > (UINT64_MAX - dgt) / 10)
			goto raw;
		v = v * 10 + dgt;
	}
	if (is_unsigned && !neg) {
		json_uint64(b, v);
		return;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			goto raw;
		json_int64(b, v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
		return;
	}
	if (v > INT64_MAX)
		goto raw;
	json_int64(b, (int64_t)v);
	return;
raw:
	/* Never produced by a server; keep the line valid JSON. */
	json_decimal(b, p, n, DECIMAL_EXACT, st);
}

static void put_real(struct buf *b, const char *p, size_t n, bool single, struct lossy *st)
{
	char tmp[128];
	char *end;

	if (n == 0 || n >= sizeof(tmp)) {
		json_decimal(b, p, n, DECIMAL_EXACT, st);
		return;
	}
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (single) {
		float f = strtof(tmp, &end);
		if (*end == '\0') {
			json_float(b, f, st);
			return;
		}
	} else {
		double d = strtod(tmp, &end);
		if (*end == '\0') {
			json_double(b, d, st);
			return;
		}
	}
	json_decimal(b, p, n, DECIMAL_EXACT, st);
}

/* BIT(n): big-endian bytes in the text protocol. */
static void put_bit(struct buf *b, const char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | (unsigned char)p[i];
	json_uint64(b, v);
}

static void put_json(struct buf *b, const char *p, size_t n, struct lossy *st)
{
	struct ierr ignored;

	if (json_reemit(b, p, n, st, &ignored) != 0)
		json_string(b, p, n, st);
}

void mysql_value_put(struct buf *b, enum mysql_conv conv, const char *p, size_t n,
                     const struct norm_opts *opts, struct lossy *st)
{
	switch (conv) {
	case MYC_NULL:
		json_null(b);
		break;
	case MYC_INT:
		put_int(b, p, n, false, st);
		break;
	case MYC_UINT:
		put_int(b, p, n, true, st);
		break;
	case MYC_FLOAT:
		put_real(b, p, n, true, st);
		break;
	case MYC_DOUBLE:
		put_real(b, p, n, false, st);
		break;
	case MYC_DECIMAL:
		json_decimal(b, p, n, opts->decimal, st);
		break;
	case MYC_BIT:
		put_bit(b, p, n);
		break;
	case MYC_DATE:
		put_date(b, p, n, st);
		break;
	case MYC_DATETIME:
		put_datetime(b, p, n, false, st);
		break;
	case MYC_TIMESTAMP:
		put_datetime(b, p, n, true, st);
		break;
	case MYC_TIME:
		put_time(b, p, n, st);
		break;
	case MYC_STRING:
		json_string(b, p, n, st);
		break;
	case MYC_BINARY:
		json_binary(b, p, n, opts->binary, st);
		break;
	case MYC_JSON:
		put_json(b, p, n, st);
		break;
	case MYC_WKB_HEX:
		json_binary(b, p, n, BINARY_HEX, st);
		break;
	}
}
