/*
 * test_mysql_value.c - MySQL / MariaDB text-protocol values to JSON, per
 * docs/TYPES.md (mysql_value.h): every conversion, the server's edge values,
 * and what falls back to text or null (and is counted).
 */
#include <string.h>

#include "mysql_value.h"
#include "testlib.h"

static struct lossy st;

/* The JSON of one field under conv (default modes unless opts given). */
static const char *put_opts(enum mysql_conv conv, const char *text, size_t n,
                            const struct norm_opts *opts)
{
	static struct buf b;

	buf_reset(&b);
	mysql_value_put(&b, conv, text, n, opts, &st);
	return buf_cstr(&b);
}

static const char *put(enum mysql_conv conv, const char *text)
{
	static const struct norm_opts dflt = {DECIMAL_EXACT, BINARY_UTF8};

	return put_opts(conv, text, strlen(text), &dflt);
}

static void test_integers(void)
{
	CHECK_STR(put(MYC_INT, "0"), "0");
	CHECK_STR(put(MYC_INT, "-128"), "-128");
	CHECK_STR(put(MYC_INT, "00042"), "42"); /* ZEROFILL */
	CHECK_STR(put(MYC_INT, "9223372036854775807"), "9223372036854775807");
	CHECK_STR(put(MYC_INT, "-9223372036854775808"), "-9223372036854775808");
	CHECK_STR(put(MYC_UINT, "18446744073709551615"), "18446744073709551615");
	CHECK_STR(put(MYC_INT, "2025"), "2025"); /* YEAR */
	/* Not a server spelling: the exact text as a number or string, valid JSON. */
	CHECK_STR(put(MYC_UINT, "18446744073709551616"), "18446744073709551616");
	CHECK_STR(put(MYC_INT, "9223372036854775808"), "9223372036854775808");
	CHECK_STR(put(MYC_INT, "-"), "\"-\"");
}

static void test_reals(void)
{
	CHECK_STR(put(MYC_DOUBLE, "0.1"), "0.1");
	CHECK_STR(put(MYC_DOUBLE, "3"), "3");
	CHECK_STR(put(MYC_DOUBLE, "-0"), "0");
	CHECK_STR(put(MYC_DOUBLE, "1e300"), "1e+300");
	CHECK_STR(put(MYC_DOUBLE, "1.5e-5"), "0.000015");
	/* FLOAT arrives as CAST(col AS DOUBLE): the exact double of the float. */
	CHECK_STR(put(MYC_FLOAT, "0.10000000149011612"), "0.1");
	CHECK_STR(put(MYC_FLOAT, "3.4028234663852886e38"), "3.4028235e+38");
	memset(&st, 0, sizeof(st));
	CHECK_STR(put(MYC_DOUBLE, "nan"), "null");
	CHECK_STR(put(MYC_DOUBLE, "inf"), "null");
	CHECK(st.nonfinite == 2);
}

static void test_decimals(void)
{
	static const struct norm_opts dbl = {DECIMAL_DOUBLE, BINARY_UTF8};
	static const struct norm_opts str = {DECIMAL_STRING, BINARY_UTF8};

	CHECK_STR(put(MYC_DECIMAL, "12.50"), "12.50");
	CHECK_STR(put(MYC_DECIMAL, "-0.00"), "-0.00");
	CHECK_STR(put(MYC_DECIMAL, "12345678901234567890123456789012345678"),
	          "12345678901234567890123456789012345678");
	CHECK_STR(put_opts(MYC_DECIMAL, "12.50", 5, &dbl), "12.5");
	CHECK_STR(put_opts(MYC_DECIMAL, "12.50", 5, &str), "\"12.50\"");
}

static void test_bits(void)
{
	CHECK_STR(put_opts(MYC_BIT, "\x05", 1, &(struct norm_opts){0}), "5");
	CHECK_STR(put_opts(MYC_BIT, "\x01\x00", 2, &(struct norm_opts){0}), "256");
	CHECK_STR(put_opts(MYC_BIT, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, &(struct norm_opts){0}),
	          "18446744073709551615");
}

static void test_dates(void)
{
	CHECK_STR(put(MYC_DATE, "2025-10-05"), "\"2025-10-05\"");
	CHECK_STR(put(MYC_DATE, "2024-02-29"), "\"2024-02-29\"");
	CHECK_STR(put(MYC_DATE, "1000-01-01"), "\"1000-01-01\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05 14:30:00"), "\"2025-10-05T14:30:00\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05 14:30:00.250000"),
	          "\"2025-10-05T14:30:00.250000\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05 14:30:00.000000"), "\"2025-10-05T14:30:00\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05 14:30:00.5"), "\"2025-10-05T14:30:00.500000\"");
	CHECK_STR(put(MYC_TIMESTAMP, "2025-10-05 14:30:00"), "\"2025-10-05T14:30:00Z\"");
	CHECK_STR(put(MYC_TIMESTAMP, "1970-01-01 00:00:01.000123"),
	          "\"1970-01-01T00:00:01.000123Z\"");

	/* Zero dates and impossible dates: null, counted. */
	memset(&st, 0, sizeof(st));
	CHECK_STR(put(MYC_DATE, "0000-00-00"), "null");
	CHECK_STR(put(MYC_DATE, "2023-02-29"), "null");
	CHECK_STR(put(MYC_DATE, "2025-00-10"), "null");
	CHECK_STR(put(MYC_DATETIME, "0000-00-00 00:00:00"), "null");
	CHECK_STR(put(MYC_TIMESTAMP, "2025-13-01 00:00:00"), "null");
	CHECK(st.invalid_dates == 5);
	/* Year 0 with a real month and day: outside 1..9999, the server's text. */
	memset(&st, 0, sizeof(st));
	CHECK_STR(put(MYC_DATE, "0000-01-01"), "\"0000-01-01\"");
	CHECK_STR(put(MYC_DATETIME, "0000-01-01 10:00:00"), "\"0000-01-01 10:00:00\"");
	CHECK(st.invalid_dates == 0);
	/* Spellings the parser does not know: the text, never lost. */
	CHECK_STR(put(MYC_DATE, "2025-1-5"), "\"2025-1-5\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05T14:30:00"), "\"2025-10-05T14:30:00\"");
	CHECK_STR(put(MYC_DATETIME, "2025-10-05 14:30:00.1234567"),
	          "\"2025-10-05 14:30:00.1234567\"");
}

static void test_times(void)
{
	CHECK_STR(put(MYC_TIME, "14:30:00"), "\"14:30:00\"");
	CHECK_STR(put(MYC_TIME, "00:00:00.000001"), "\"00:00:00.000001\"");
	CHECK_STR(put(MYC_TIME, "-838:59:59"), "\"-838:59:59\"");
	CHECK_STR(put(MYC_TIME, "838:59:59.000000"), "\"838:59:59\"");
	CHECK_STR(put(MYC_TIME, "-00:00:01.5"), "\"-00:00:01.500000\"");
	CHECK_STR(put(MYC_TIME, "12:3"), "\"12:3\"");
	CHECK_STR(put(MYC_TIME, "ab:cd:ef"), "\"ab:cd:ef\"");
}

static void test_text_binary_json(void)
{
	static const struct norm_opts b64 = {DECIMAL_EXACT, BINARY_BASE64};
	static const struct norm_opts hex = {DECIMAL_EXACT, BINARY_HEX};

	CHECK_STR(put(MYC_STRING, "caf\xc3\xa9 \"q\"\n"), "\"caf\xc3\xa9 \\\"q\\\"\\n\"");
	CHECK_STR(put(MYC_STRING, "red,blue"), "\"red,blue\"");     /* SET */
	CHECK_STR(put(MYC_STRING, "POINT(1 2)"), "\"POINT(1 2)\""); /* GEOMETRY as ST_AsText */
	memset(&st, 0, sizeof(st));
	CHECK_STR(put(MYC_STRING, "a\xff"
	                          "b"),
	          "\"a\xef\xbf\xbd"
	          "b\"");
	CHECK(st.invalid_utf8 == 1);

	CHECK_STR(put_opts(MYC_BINARY, "\x00\x01\xfe", 3, &hex), "\"0001fe\"");
	CHECK_STR(put_opts(MYC_BINARY, "hi!", 3, &b64), "\"aGkh\"");
	CHECK_STR(put(MYC_BINARY, "plain"), "\"plain\"");
	CHECK_STR(put_opts(MYC_WKB_HEX, "\x01\x02", 2, &b64), "\"0102\""); /* always hex */

	CHECK_STR(put(MYC_JSON, "{\"a\": [1, 2.50, \"x\"], \"b\": null}"),
	          "{\"a\":[1,2.50,\"x\"],\"b\":null}");
	CHECK_STR(put(MYC_JSON, "{bad json"), "\"{bad json\""); /* refused: a string */
	CHECK_STR(put(MYC_NULL, ""), "null");
}

int main(void)
{
	test_integers();
	test_reals();
	test_decimals();
	test_bits();
	test_dates();
	test_times();
	test_text_binary_json();
	return test_done();
}
