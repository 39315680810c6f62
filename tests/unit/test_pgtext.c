/*
 * test_pgtext.c - PostgreSQL text forms to JSON (collector/pg_text.c), no server:
 * COPY line splitting and unescaping, bytea, dates and times (fractions, BC,
 * infinity, zones), arrays (nested, quoted, NULL, escaped, empty, bounds,
 * other delimiters), and the scalar rules of TYPES.md.
 */
#include <stdlib.h>
#include <string.h>

#include "pg_text.h"
#include "testlib.h"

static struct lossy st;
static struct pg_text_ctx cx = {.lossy = &st};

/* The JSON for text s under rule conv (elem/delim for arrays); "ERROR" on -1. */
static const char *conv3(enum pg_conv conv, enum pg_conv elem, char delim, const char *s)
{
	static struct buf out;
	struct pg_col col = {conv, elem, delim};
	struct ierr e = {0};

	buf_reset(&out);
	if (pg_text_value(&out, &col, s, strlen(s), &cx, &e) != 0)
		return "ERROR";
	return buf_cstr(&out);
}

static const char *conv(enum pg_conv c, const char *s)
{
	return conv3(c, PGC_STRING, ',', s);
}

static const char *arr(enum pg_conv elem, const char *s)
{
	return conv3(PGC_ARRAY, elem, ',', s);
}

static void test_copy(void)
{
	char line1[] = "1\t\\N\tx\\ty\\\\z\\nw\t\\\\N\t\n";
	char line2[] = "a\tb\n";
	char line3[] = "a\tb\tc";
	char esc[] = "\\b\\f\\r\\v\\101\\x41\\q";
	struct pg_field f[4];

	CHECK(pg_copy_split(line1, strlen(line1), f, 4) != 0); /* 5 fields */
	memcpy(line1, "1\t\\N\tx\\ty\\\\z\\nw\t\\\\N\n", sizeof("1\t\\N\tx\\ty\\\\z\\nw\t\\\\N\n"));
	CHECK(pg_copy_split(line1, strlen(line1), f, 4) == 0);
	CHECK_STR(f[0].p, "1");
	CHECK(f[1].p == NULL);
	CHECK_STR(f[2].p, "x\ty\\z\nw");
	CHECK(f[2].n == 7);
	CHECK_STR(f[3].p, "\\N"); /* an escaped backslash + N is text, not NULL */
	CHECK(pg_copy_split(line2, strlen(line2), f, 3) != 0); /* too few */
	CHECK(pg_copy_split(line3, strlen(line3), f, 3) == 0); /* no final newline */
	CHECK_STR(f[2].p, "c");
	CHECK(pg_copy_unescape(esc, strlen(esc)) == 7);
	CHECK(memcmp(esc, "\b\f\r\vAAq", 7) == 0);
	{
		char empty[] = "\t\n";

		CHECK(pg_copy_split(empty, strlen(empty), f, 2) == 0);
		CHECK_STR(f[0].p, "");
		CHECK_STR(f[1].p, "");
	}
}

static void test_bytea(void)
{
	struct buf b = {0};

	CHECK(pg_bytea_decode("\\x68656c6c6f", 12, &b) == 0);
	CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
	buf_reset(&b);
	CHECK(pg_bytea_decode("\\x", 2, &b) == 0 && b.len == 0);
	CHECK(pg_bytea_decode("\\xFf00", 6, &b) == 0);
	CHECK(b.len == 2 && (unsigned char)b.data[0] == 0xff && b.data[1] == 0);
	buf_reset(&b);
	CHECK(pg_bytea_decode("\\x6", 3, &b) != 0);
	CHECK(pg_bytea_decode("\\xzz", 4, &b) != 0);
	buf_reset(&b);
	CHECK(pg_bytea_decode("a\\\\b\\001\\377", 12, &b) == 0); /* escape format */
	CHECK(b.len == 5 && memcmp(b.data, "a\\b\001\377", 5) == 0);
	buf_reset(&b);
	CHECK(pg_bytea_decode("a\\9", 3, &b) != 0);
	buf_free(&b);

	CHECK_STR(conv(PGC_BYTEA, "\\x68656c6c6f"), "\"hello\"");
	CHECK_STR(conv(PGC_BYTEA, "\\x"), "\"\"");
	memset(&st, 0, sizeof(st));
	CHECK_STR(conv(PGC_BYTEA, "\\xff"), "\"\xef\xbf\xbd\"");
	CHECK(st.invalid_utf8 == 1);
	cx.binary = BINARY_HEX;
	CHECK_STR(conv(PGC_BYTEA, "\\xff00"), "\"ff00\"");
	cx.binary = BINARY_BASE64;
	CHECK_STR(conv(PGC_BYTEA, "\\x68656c6c6f"), "\"aGVsbG8=\"");
	cx.binary = BINARY_UTF8;
}

static void test_parse_times(void)
{
	struct pg_ts t;

	CHECK(pg_parse_timestamp("2025-10-05 14:30:00.25", 22, false, &t) == 0);
	CHECK(t.year == 2025 && t.month == 10 && t.day == 5 && t.hour == 14 && t.min == 30);
	CHECK(t.sec == 0 && t.usec == 250000 && !t.bc);
	CHECK(pg_parse_timestamp("0044-03-15 12:00:00 BC", 22, false, &t) == 0);
	CHECK(t.year == 44 && t.bc);
	CHECK(pg_parse_timestamp("2025-10-05 14:30:00.1234567", 27, false, &t) != 0);
	CHECK(pg_parse_timestamp("2025-10-05 14:30:00+02", 22, true, &t) == 0);
	CHECK(t.offset_sec == 7200);
	CHECK(pg_parse_timestamp("2025-10-05 14:30:00-05:30", 25, true, &t) == 0);
	CHECK(t.offset_sec == -(5 * 3600 + 30 * 60));
	CHECK(pg_parse_timestamp("2025-10-05 14:30:00", 19, true, &t) != 0); /* zone missing */
	CHECK(pg_parse_timestamp("2025-10-05T14:30:00", 19, false, &t) != 0);
	CHECK(pg_parse_timestamp("infinity", 8, false, &t) != 0);
	CHECK(pg_parse_time("14:30:00.000001+05:53:28", 24, true, &t) == 0);
	CHECK(t.usec == 1 && t.offset_sec == 5 * 3600 + 53 * 60 + 28);
	CHECK(pg_parse_date("12345-01-02", 11, &t) == 0 && t.year == 12345);
	CHECK(pg_parse_date("2025-13-01", 10, &t) != 0);
	CHECK(pg_days_from_civil(1970, 1, 1) == 0);
	CHECK(pg_days_from_civil(2000, 3, 1) == 11017);
	CHECK(pg_days_from_civil(1969, 12, 31) == -1);
}

static void test_dates(void)
{
	memset(&st, 0, sizeof(st));
	CHECK_STR(conv(PGC_DATE, "2025-10-05"), "\"2025-10-05\"");
	CHECK_STR(conv(PGC_DATE, "0001-01-01"), "\"0001-01-01\"");
	CHECK_STR(conv(PGC_DATE, "infinity"), "null");
	CHECK_STR(conv(PGC_DATE, "-infinity"), "null");
	CHECK(st.infinite_dates == 2);
	CHECK_STR(conv(PGC_DATE, "0044-03-15 BC"), "\"0044-03-15 BC\"");
	CHECK_STR(conv(PGC_DATE, "10000-01-01"), "\"10000-01-01\"");

	CHECK_STR(conv(PGC_TIMESTAMP, "2025-10-05 14:30:00"), "\"2025-10-05T14:30:00\"");
	CHECK_STR(conv(PGC_TIMESTAMP, "2025-10-05 14:30:00.25"), "\"2025-10-05T14:30:00.250000\"");
	CHECK_STR(conv(PGC_TIMESTAMP, "1970-01-01 00:00:00.000001"),
	          "\"1970-01-01T00:00:00.000001\"");
	CHECK_STR(conv(PGC_TIMESTAMP, "0044-03-15 12:00:00 BC"), "\"0044-03-15 12:00:00 BC\"");
	CHECK_STR(conv(PGC_TIMESTAMP, "infinity"), "null");
	CHECK(st.infinite_dates == 3);

	CHECK_STR(conv(PGC_TIMESTAMPTZ, "2025-10-05 14:30:00+00"), "\"2025-10-05T14:30:00Z\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "2025-10-05 14:30:00.123456+00"),
	          "\"2025-10-05T14:30:00.123456Z\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "2025-10-05 16:30:00+02"), "\"2025-10-05T14:30:00Z\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "2025-01-01 00:15:00.5+05:30"),
	          "\"2024-12-31T18:45:00.500000Z\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "0044-03-15 12:00:00+00 BC"),
	          "\"0044-03-15 12:00:00+00 BC\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "0001-01-01 00:30:00+01"), "\"0001-01-01 00:30:00+01\"");
	CHECK_STR(conv(PGC_TIMESTAMPTZ, "-infinity"), "null");

	CHECK_STR(conv(PGC_TIME, "14:30:00"), "\"14:30:00\"");
	CHECK_STR(conv(PGC_TIME, "23:59:59.5"), "\"23:59:59.500000\"");
	CHECK_STR(conv(PGC_TIME, "24:00:00"), "\"24:00:00\"");
	CHECK_STR(conv(PGC_TIMETZ, "14:30:00+02"), "\"14:30:00+02:00\"");
	CHECK_STR(conv(PGC_TIMETZ, "00:00:00-05:30"), "\"00:00:00-05:30\"");
	CHECK_STR(conv(PGC_TIMETZ, "12:00:00.5+05:53:28"), "\"12:00:00.500000+05:53:28\"");
	CHECK_STR(conv(PGC_TIMETZ, "12:00:00+00"), "\"12:00:00+00:00\"");
}

static void test_scalars(void)
{
	memset(&st, 0, sizeof(st));
	CHECK_STR(conv(PGC_BOOL, "t"), "true");
	CHECK_STR(conv(PGC_BOOL, "f"), "false");
	CHECK_STR(conv(PGC_INT, "-32768"), "-32768");
	CHECK_STR(conv(PGC_INT, "9223372036854775807"), "9223372036854775807");
	CHECK_STR(conv(PGC_INT, "0"), "0");
	CHECK_STR(conv(PGC_FLOAT4, "0.1"), "0.1");
	CHECK_STR(conv(PGC_FLOAT4, "3.4028235e+38"), "3.4028235e+38");
	CHECK_STR(conv(PGC_FLOAT4, "-0.5"), "-0.5");
	CHECK_STR(conv(PGC_FLOAT8, "0.1"), "0.1");
	CHECK_STR(conv(PGC_FLOAT8, "1e+300"), "1e+300");
	CHECK_STR(conv(PGC_FLOAT8, "1.5e-05"), "0.000015");
	CHECK_STR(conv(PGC_FLOAT8, "-0"), "0");
	CHECK_STR(conv(PGC_FLOAT8, "3"), "3");
	CHECK_STR(conv(PGC_FLOAT8, "NaN"), "null");
	CHECK_STR(conv(PGC_FLOAT4, "Infinity"), "null");
	CHECK_STR(conv(PGC_FLOAT8, "-Infinity"), "null");
	CHECK(st.nonfinite == 3);
	CHECK_STR(conv(PGC_NUMERIC, "12.50"), "12.50");
	CHECK_STR(conv(PGC_NUMERIC, "-12345678901234567890123456789012345678"),
	          "-12345678901234567890123456789012345678");
	CHECK_STR(conv(PGC_NUMERIC, "NaN"), "null");
	CHECK_STR(conv(PGC_NUMERIC, "Infinity"), "null");
	CHECK(st.nonfinite == 5);
	cx.decimal = DECIMAL_STRING;
	CHECK_STR(conv(PGC_NUMERIC, "12.50"), "\"12.50\"");
	cx.decimal = DECIMAL_DOUBLE;
	CHECK_STR(conv(PGC_NUMERIC, "12.50"), "12.5");
	cx.decimal = DECIMAL_EXACT;
	CHECK_STR(conv(PGC_STRING, "ab "), "\"ab \"");
	CHECK_STR(conv(PGC_STRING, "line1\nline2 \"q\" \\"), "\"line1\\nline2 \\\"q\\\" \\\\\"");
	CHECK_STR(conv(PGC_STRING, "P1Y2M3DT4H5M6S"), "\"P1Y2M3DT4H5M6S\"");
	CHECK_STR(conv(PGC_JSON, "{\"a\": [1, 2, {\"b\": null}]}"), "{\"a\":[1,2,{\"b\":null}]}");
	CHECK_STR(conv(PGC_JSON, "null"), "null");
	CHECK_STR(conv(PGC_JSON, "{\"n\": 2.50, \"e\": 1E2}"), "{\"n\":2.50,\"e\":1E2}");
	CHECK_STR(conv(PGC_JSON, "{\"a\": "), "ERROR");
}

static void test_arrays(void)
{
	memset(&st, 0, sizeof(st));
	CHECK_STR(arr(PGC_INT, "{1,2,3}"), "[1,2,3]");
	CHECK_STR(arr(PGC_INT, "{{1,2},{3,4}}"), "[[1,2],[3,4]]");
	CHECK_STR(arr(PGC_INT, "{{{1},{2}},{{3},{4}}}"), "[[[1],[2]],[[3],[4]]]");
	CHECK_STR(arr(PGC_INT, "{}"), "[]");
	CHECK_STR(arr(PGC_INT, "{NULL,1}"), "[null,1]");
	CHECK_STR(arr(PGC_INT, "[0:2]={7,8,9}"), "[7,8,9]");
	CHECK_STR(arr(PGC_INT, "[1:1][-1:0]={{1,2}}"), "[[1,2]]");
	CHECK_STR(arr(PGC_STRING, "{x,\"y z\",NULL}"), "[\"x\",\"y z\",null]");
	CHECK_STR(arr(PGC_STRING, "{\"x\",\"y z\",NULL}"), "[\"x\",\"y z\",null]");
	CHECK_STR(arr(PGC_STRING, "{\"NULL\",null,\"\"}"), "[\"NULL\",null,\"\"]");
	CHECK_STR(arr(PGC_STRING, "{\"a\\\"b\",\"c\\\\d\",\"{,}\"}"),
	          "[\"a\\\"b\",\"c\\\\d\",\"{,}\"]");
	CHECK_STR(arr(PGC_STRING, "{{a,b},{\"c d\",NULL}}"), "[[\"a\",\"b\"],[\"c d\",null]]");
	CHECK_STR(arr(PGC_STRING, "{\"é 日本\",\"\\\\\"}"), "[\"é 日本\",\"\\\\\"]");
	CHECK_STR(arr(PGC_FLOAT8, "{NaN,1.5,-Infinity}"), "[null,1.5,null]");
	CHECK(st.nonfinite == 2);
	CHECK_STR(arr(PGC_FLOAT4, "{0.1}"), "[0.1]");
	CHECK_STR(arr(PGC_NUMERIC, "{12.50,NaN}"), "[12.50,null]");
	CHECK_STR(arr(PGC_BOOL, "{t,f,NULL}"), "[true,false,null]");
	CHECK_STR(arr(PGC_TIMESTAMPTZ, "{\"2025-10-05 14:30:00+00\",NULL,infinity}"),
	          "[\"2025-10-05T14:30:00Z\",null,null]");
	CHECK_STR(arr(PGC_DATE, "{2025-10-05,\"0044-03-15 BC\"}"),
	          "[\"2025-10-05\",\"0044-03-15 BC\"]");
	CHECK_STR(arr(PGC_TIMETZ, "{14:30:00+02}"), "[\"14:30:00+02:00\"]");
	CHECK_STR(arr(PGC_JSON, "{\"{\\\"a\\\": [1, 2]}\",\"[]\",NULL}"),
	          "[{\"a\":[1,2]},[],null]");
	CHECK_STR(arr(PGC_BYTEA, "{\"\\\\x6869\",NULL}"), "[\"hi\",null]");
	CHECK_STR(conv3(PGC_ARRAY, PGC_STRING, ';', "{(1,1),(0,0);(2,2),(1,1)}"),
	          "[\"(1,1),(0,0)\",\"(2,2),(1,1)\"]");
	CHECK_STR(arr(PGC_STRING, "{ a , b }"), "[\"a\",\"b\"]");
	CHECK_STR(arr(PGC_STRING, "{a\\,b}"), "[\"a,b\"]");
	/* malformed */
	CHECK_STR(arr(PGC_INT, "{1,2"), "ERROR");
	CHECK_STR(arr(PGC_INT, "1,2}"), "ERROR");
	CHECK_STR(arr(PGC_INT, "{1,,2}"), "ERROR");
	CHECK_STR(arr(PGC_STRING, "{\"abc}"), "ERROR");
	CHECK_STR(arr(PGC_INT, "{1}x"), "ERROR");
	CHECK_STR(arr(PGC_INT, "{{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}}"), "ERROR");
	CHECK_STR(arr(PGC_JSON, "{\"{\"}"), "ERROR");
}

int main(void)
{
	test_copy();
	test_bytea();
	test_parse_times();
	test_dates();
	test_scalars();
	test_arrays();
	pg_text_ctx_free(&cx);
	return test_done();
}
