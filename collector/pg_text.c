/*
 * pg_text.c - PostgreSQL text-form values to NDJSON (see pg_text.h).
 *
 * The session settings src_postgres.c makes (ISO dates, UTC, hex bytea,
 * shortest-exact floats) fix every text form parsed here, so each parser
 * accepts exactly the server's spelling and anything else falls back to a JSON
 * string of the text: a value is never lost or turned into invalid JSON, and a
 * surprise shows up as a string a person can read rather than a failed run.
 */
#include "pg_text.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

#define PG_ARRAY_MAX_DEPTH 16 /* the server allows 6 dimensions */

void pg_text_ctx_free(struct pg_text_ctx *cx)
{
	buf_free(&cx->elem);
	buf_free(&cx->bin);
}

/* ------------------------------------------------------------------------ */
/* COPY text format                                                          */

size_t pg_copy_unescape(char *s, size_t n)
{
	size_t i = 0;
	size_t o = 0;

	while (i < n) {
		char c = s[i++];

		if (c != '\\' || i == n) {
			s[o++] = c;
			continue;
		}
		c = s[i++];
		switch (c) {
		case 'b':
			s[o++] = '\b';
			break;
		case 'f':
			s[o++] = '\f';
			break;
		case 'n':
			s[o++] = '\n';
			break;
		case 'r':
			s[o++] = '\r';
			break;
		case 't':
			s[o++] = '\t';
			break;
		case 'v':
			s[o++] = '\v';
			break;
		case 'x':
			if (i < n && hex_digit((unsigned char)s[i]) >= 0) {
				int v = hex_digit((unsigned char)s[i++]);

				if (i < n && hex_digit((unsigned char)s[i]) >= 0)
					v = v * 16 + hex_digit((unsigned char)s[i++]);
				s[o++] = (char)v;
			} else {
				s[o++] = 'x';
			}
			break;
		default:
			if (c >= '0' && c <= '7') {
				int v = c - '0';

				if (i < n && s[i] >= '0' && s[i] <= '7')
					v = v * 8 + (s[i++] - '0');
				if (i < n && s[i] >= '0' && s[i] <= '7')
					v = v * 8 + (s[i++] - '0');
				s[o++] = (char)(v & 0xff);
			} else {
				s[o++] = c;
			}
			break;
		}
	}
	return o;
}

int pg_copy_split(char *line, size_t n, struct pg_field *f, size_t nf)
{
	char *p = line;
	char *end;
	size_t i;

	if (n > 0 && line[n - 1] == '\n')
		n--;
	end = line + n;
	for (i = 0; i < nf; i++) {
		char *stop = memchr(p, '\t', (size_t)(end - p));
		size_t len;

		if (stop == NULL) {
			if (i + 1 != nf)
				return -1;
			stop = end;
		} else if (i + 1 == nf) {
			return -1; /* more fields than columns */
		}
		len = (size_t)(stop - p);
		if (len == 2 && p[0] == '\\' && p[1] == 'N') {
			f[i].p = NULL;
			f[i].n = 0;
		} else {
			if (memchr(p, '\\', len) != NULL)
				len = pg_copy_unescape(p, len);
			f[i].p = p;
			f[i].n = len;
		}
		/* Terminates this field: the byte at stop is a tab, the '\n' or
		 * (for the last field of a line without '\n') one past the data,
		 * which libpq's buffer always has room for. */
		p[len] = '\0';
		p = stop + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Dates and times                                                           */

int64_t pg_days_from_civil(long y, int m, int d)
{
	/* Howard Hinnant's days_from_civil, proleptic Gregorian. */
	long era;
	long yoe;
	long doy;
	long doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

/* Exactly `count` digits at *p (bounded by end) into *out. */
static int digits(const char **p, const char *end, int count, int *out)
{
	int v = 0;
	int i;

	if (end - *p < count)
		return -1;
	for (i = 0; i < count; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += count;
	*out = v;
	return 0;
}

static int parse_ymd(const char **pp, const char *end, struct pg_ts *t)
{
	const char *p = *pp;
	long y = 0;
	int nd = 0;

	while (p < end && *p >= '0' && *p <= '9' && nd < 9) {
		y = y * 10 + (*p - '0');
		p++;
		nd++;
	}
	if (nd < 4 || p >= end || *p != '-')
		return -1;
	p++;
	if (digits(&p, end, 2, &t->month) != 0 || p >= end || *p != '-')
		return -1;
	p++;
	if (digits(&p, end, 2, &t->day) != 0)
		return -1;
	if (t->month < 1 || t->month > 12 || t->day < 1 || t->day > 31)
		return -1;
	t->year = y;
	*pp = p;
	return 0;
}

static int parse_hms(const char **pp, const char *end, struct pg_ts *t)
{
	const char *p = *pp;
	int scale = 100000;

	if (digits(&p, end, 2, &t->hour) != 0 || p >= end || *p != ':')
		return -1;
	p++;
	if (digits(&p, end, 2, &t->min) != 0 || p >= end || *p != ':')
		return -1;
	p++;
	if (digits(&p, end, 2, &t->sec) != 0)
		return -1;
	t->usec = 0;
	if (p < end && *p == '.') {
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9') {
			if (scale == 0)
				return -1; /* more than 6 digits */
			t->usec += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (t->hour > 24 || t->min > 59 || t->sec > 60)
		return -1;
	*pp = p;
	return 0;
}

/* "+HH", "-HH:MM", "+HH:MM:SS" */
static int parse_offset(const char **pp, const char *end, struct pg_ts *t)
{
	const char *p = *pp;
	int sign;
	int h;
	int m = 0;
	int s = 0;

	if (p >= end || (*p != '+' && *p != '-'))
		return -1;
	sign = *p == '-' ? -1 : 1;
	p++;
	if (digits(&p, end, 2, &h) != 0)
		return -1;
	if (p < end && *p == ':') {
		p++;
		if (digits(&p, end, 2, &m) != 0)
			return -1;
		if (p < end && *p == ':') {
			p++;
			if (digits(&p, end, 2, &s) != 0)
				return -1;
		}
	}
	t->offset_sec = sign * (h * 3600 + m * 60 + s);
	*pp = p;
	return 0;
}

static int parse_bc(const char *p, const char *end, struct pg_ts *t)
{
	t->bc = false;
	if (end - p == 3 && memcmp(p, " BC", 3) == 0) {
		t->bc = true;
		return 0;
	}
	return p == end ? 0 : -1;
}

int pg_parse_date(const char *s, size_t n, struct pg_ts *t)
{
	const char *p = s;
	const char *end = s + n;

	memset(t, 0, sizeof(*t));
	if (parse_ymd(&p, end, t) != 0)
		return -1;
	return parse_bc(p, end, t);
}

int pg_parse_timestamp(const char *s, size_t n, bool with_zone, struct pg_ts *t)
{
	const char *p = s;
	const char *end = s + n;

	memset(t, 0, sizeof(*t));
	if (parse_ymd(&p, end, t) != 0 || p >= end || *p != ' ')
		return -1;
	p++;
	if (parse_hms(&p, end, t) != 0)
		return -1;
	if (with_zone && parse_offset(&p, end, t) != 0)
		return -1;
	return parse_bc(p, end, t);
}

int pg_parse_time(const char *s, size_t n, bool with_zone, struct pg_ts *t)
{
	const char *p = s;
	const char *end = s + n;

	memset(t, 0, sizeof(*t));
	if (parse_hms(&p, end, t) != 0)
		return -1;
	if (with_zone && parse_offset(&p, end, t) != 0)
		return -1;
	return p == end ? 0 : -1;
}

static bool is_infinity(const char *s, size_t n)
{
	return (n == 8 && memcmp(s, "infinity", 8) == 0) ||
	       (n == 9 && memcmp(s, "-infinity", 9) == 0);
}

static bool year_in_range(const struct pg_ts *t)
{
	return !t->bc && t->year >= 1 && t->year <= 9999;
}

static void conv_date(struct buf *b, const char *s, size_t n, struct pg_text_ctx *cx)
{
	struct pg_ts t;

	if (is_infinity(s, n)) {
		cx->lossy->infinite_dates++;
		json_null(b);
	} else if (pg_parse_date(s, n, &t) == 0 && year_in_range(&t)) {
		json_date(b, (int)t.year, t.month, t.day);
	} else {
		json_string(b, s, n, cx->lossy);
	}
}

static void conv_timestamp(struct buf *b, const char *s, size_t n, bool tz, struct pg_text_ctx *cx)
{
	static const int64_t usec_per_day = 86400000000LL;
	struct pg_ts t;
	int64_t us;

	if (is_infinity(s, n)) {
		cx->lossy->infinite_dates++;
		json_null(b);
		return;
	}
	if (pg_parse_timestamp(s, n, tz, &t) != 0 || !year_in_range(&t)) {
		json_string(b, s, n, cx->lossy);
		return;
	}
	if (!tz || t.offset_sec == 0) {
		json_datetime(b, (int)t.year, t.month, t.day, t.hour, t.min, t.sec, t.usec, tz);
		return;
	}
	/* Not reached with TimeZone=UTC; kept so a zone offset is never ignored. */
	us = pg_days_from_civil(t.year, t.month, t.day) * usec_per_day +
	     ((int64_t)t.hour * 3600 + t.min * 60 + t.sec - t.offset_sec) * 1000000 + t.usec;
	if (us < pg_days_from_civil(1, 1, 1) * usec_per_day ||
	    us >= pg_days_from_civil(10000, 1, 1) * usec_per_day) {
		json_string(b, s, n, cx->lossy);
		return;
	}
	json_instant_usec(b, us);
}

static void conv_time(struct buf *b, const char *s, size_t n, bool tz, struct pg_text_ctx *cx)
{
	struct pg_ts t;
	char out[48];
	int len;
	int off;

	if (pg_parse_time(s, n, tz, &t) != 0) {
		json_string(b, s, n, cx->lossy);
		return;
	}
	if (!tz) {
		json_time(b, false, (unsigned)t.hour, t.min, t.sec, t.usec);
		return;
	}
	len = snprintf(out, sizeof(out), "\"%02d:%02d:%02d", t.hour, t.min, t.sec);
	if (t.usec != 0)
		len += snprintf(out + len, sizeof(out) - (size_t)len, ".%06d", t.usec);
	off = t.offset_sec < 0 ? -t.offset_sec : t.offset_sec;
	len += snprintf(out + len, sizeof(out) - (size_t)len, "%c%02d:%02d",
	                t.offset_sec < 0 ? '-' : '+', off / 3600, off / 60 % 60);
	if (off % 60 != 0)
		len += snprintf(out + len, sizeof(out) - (size_t)len, ":%02d", off % 60);
	out[len++] = '"';
	buf_append(b, out, (size_t)len);
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod/strtof in the C locale whatever setlocale() said; the whole text must
 * be the number. */
static int parse_float(const char *s, size_t n, bool single, double *d, float *f)
{
	char tmp[64];
	char *stop;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale == (locale_t)0)
		return -1;
	if (single)
		*f = strtof_l(tmp, &stop, c_locale);
	else
		*d = strtod_l(tmp, &stop, c_locale);
	return stop == tmp + n ? 0 : -1;
}

static void conv_float(struct buf *b, const char *s, size_t n, bool single, struct pg_text_ctx *cx)
{
	double d = 0;
	float f = 0;

	if (parse_float(s, n, single, &d, &f) != 0)
		json_string(b, s, n, cx->lossy);
	else if (single)
		json_float(b, f, cx->lossy);
	else
		json_double(b, d, cx->lossy);
}

static void conv_int(struct buf *b, const char *s, size_t n, struct pg_text_ctx *cx)
{
	size_t i = (n > 0 && s[0] == '-') ? 1 : 0;
	size_t start = i;

	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
	}
	if (i == n && n > start && (s[start] != '0' || n == start + 1))
		buf_append(b, s, n);
	else
		json_string(b, s, n, cx->lossy);
}

/* ------------------------------------------------------------------------ */
/* bytea                                                                     */

int pg_bytea_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;

	if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
		if ((n - 2) % 2 != 0)
			return -1;
		buf_reserve(out, (n - 2) / 2);
		for (i = 2; i < n; i += 2) {
			int hi = hex_digit((unsigned char)s[i]);
			int lo = hex_digit((unsigned char)s[i + 1]);

			if (hi < 0 || lo < 0)
				return -1;
			out->data[out->len++] = (char)(hi * 16 + lo);
		}
		return 0;
	}
	/* bytea_output=escape: \\ and \ooo, every other byte as itself. */
	buf_reserve(out, n);
	for (i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out->data[out->len++] = s[i];
		} else if (i + 1 < n && s[i + 1] == '\\') {
			out->data[out->len++] = '\\';
			i++;
		} else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
		           s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out->data[out->len++] =
			    (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			return -1;
		}
	}
	return 0;
}

static void conv_bytea(struct buf *b, const char *s, size_t n, struct pg_text_ctx *cx)
{
	buf_reset(&cx->bin);
	if (pg_bytea_decode(s, n, &cx->bin) != 0) {
		json_string(b, s, n, cx->lossy);
		return;
	}
	json_binary(b, cx->bin.data, cx->bin.len, cx->binary, cx->lossy);
}

/* ------------------------------------------------------------------------ */
/* Arrays: "{1,2}", "{{1,2},{3,4}}", "{\"a b\",NULL}", "[0:1]={1,2}"          */

struct arr {
	const char *p;
	const char *end;
	const struct pg_col *col;
	struct pg_text_ctx *cx;
	struct ierr *e;
};

static bool arr_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void arr_skip_space(struct arr *a)
{
	while (a->p < a->end && arr_space(*a->p))
		a->p++;
}

static int arr_bad(struct arr *a, const char *why)
{
	return ierr_set(a->e, IERR_SOURCE, "malformed array literal (%s)", why);
}

static int arr_element(struct buf *b, struct arr *a)
{
	struct pg_col ec = {a->col->elem, PGC_STRING, ','};
	struct buf *tmp = &a->cx->elem;
	bool escaped = false;
	const char *start;
	size_t n;

	buf_reset(tmp);
	if (*a->p == '"') {
		a->p++;
		for (;;) {
			if (a->p >= a->end)
				return arr_bad(a, "unterminated quoted element");
			if (*a->p == '"')
				break;
			if (*a->p == '\\' && a->p + 1 < a->end)
				a->p++;
			buf_putc(tmp, *a->p++);
		}
		a->p++;
		return pg_text_value(b, &ec, tmp->data ? tmp->data : "", tmp->len, a->cx, a->e);
	}
	start = a->p;
	while (a->p < a->end && *a->p != a->col->delim && *a->p != '}') {
		if (*a->p == '{' || *a->p == '"')
			return arr_bad(a, "unexpected character in element");
		if (*a->p == '\\' && a->p + 1 < a->end) {
			escaped = true;
			a->p++;
		}
		a->p++;
	}
	n = (size_t)(a->p - start);
	while (n > 0 && arr_space(start[n - 1]))
		n--;
	if (n == 0)
		return arr_bad(a, "empty element");
	if (!escaped) {
		if (n == 4 && strncasecmp(start, "NULL", 4) == 0) {
			json_null(b);
			return 0;
		}
		return pg_text_value(b, &ec, start, n, a->cx, a->e);
	}
	for (size_t i = 0; i < n; i++) {
		if (start[i] == '\\' && i + 1 < n)
			i++;
		buf_putc(tmp, start[i]);
	}
	return pg_text_value(b, &ec, tmp->data, tmp->len, a->cx, a->e);
}

static int arr_level(struct buf *b, struct arr *a, int depth)
{
	if (depth > PG_ARRAY_MAX_DEPTH)
		return arr_bad(a, "too many dimensions");
	if (a->p >= a->end || *a->p != '{')
		return arr_bad(a, "expected '{'");
	a->p++;
	buf_putc(b, '[');
	arr_skip_space(a);
	if (a->p < a->end && *a->p == '}') {
		a->p++;
		buf_putc(b, ']');
		return 0;
	}
	for (;;) {
		int rc;

		arr_skip_space(a);
		if (a->p >= a->end)
			return arr_bad(a, "unterminated array");
		if (*a->p == '{')
			rc = arr_level(b, a, depth + 1);
		else
			rc = arr_element(b, a);
		if (rc != 0)
			return rc;
		arr_skip_space(a);
		if (a->p >= a->end)
			return arr_bad(a, "unterminated array");
		if (*a->p == '}') {
			a->p++;
			buf_putc(b, ']');
			return 0;
		}
		if (*a->p != a->col->delim)
			return arr_bad(a, "expected delimiter");
		a->p++;
		buf_putc(b, ',');
	}
}

static int conv_array(struct buf *b, const struct pg_col *col, const char *s, size_t n,
                      struct pg_text_ctx *cx, struct ierr *e)
{
	struct arr a = {s, s + n, col, cx, e};
	size_t mark = b->len;

	/* Bounds decoration, present when a lower bound is not 1: "[0:2]=". */
	if (n > 0 && s[0] == '[') {
		const char *eq = memchr(s, '=', n);

		if (eq == NULL)
			return arr_bad(&a, "bad dimension decoration");
		a.p = eq + 1;
	}
	if (arr_level(b, &a, 1) != 0) {
		b->len = mark;
		return -1;
	}
	arr_skip_space(&a);
	if (a.p != a.end) {
		b->len = mark;
		return arr_bad(&a, "junk after array");
	}
	return 0;
}

/* ------------------------------------------------------------------------ */

int pg_text_value(struct buf *b, const struct pg_col *col, const char *s, size_t n,
                  struct pg_text_ctx *cx, struct ierr *e)
{
	switch (col->conv) {
	case PGC_BOOL:
		if (n == 1 && (s[0] == 't' || s[0] == 'f'))
			json_bool(b, s[0] == 't');
		else
			json_string(b, s, n, cx->lossy);
		return 0;
	case PGC_INT:
		conv_int(b, s, n, cx);
		return 0;
	case PGC_FLOAT4:
	case PGC_FLOAT8:
		conv_float(b, s, n, col->conv == PGC_FLOAT4, cx);
		return 0;
	case PGC_NUMERIC:
		json_decimal(b, s, n, cx->decimal, cx->lossy);
		return 0;
	case PGC_DATE:
		conv_date(b, s, n, cx);
		return 0;
	case PGC_TIMESTAMP:
	case PGC_TIMESTAMPTZ:
		conv_timestamp(b, s, n, col->conv == PGC_TIMESTAMPTZ, cx);
		return 0;
	case PGC_TIME:
	case PGC_TIMETZ:
		conv_time(b, s, n, col->conv == PGC_TIMETZ, cx);
		return 0;
	case PGC_JSON:
		return json_reemit(b, s, n, cx->lossy, e);
	case PGC_BYTEA:
		conv_bytea(b, s, n, cx);
		return 0;
	case PGC_ARRAY:
		if (col->elem == PGC_ARRAY)
			return ierr_set(e, IERR_INTERNAL, "array of arrays");
		return conv_array(b, col, s, n, cx, e);
	case PGC_STRING:
	default:
		json_string(b, s, n, cx->lossy);
		return 0;
	}
}
