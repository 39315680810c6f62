/*
 * test_json.c - the NDJSON value writer (collector/json.c) against TYPES.md,
 * the golden files, and properties checked on millions of random values:
 * every double/float must read back bit for bit, no shorter digit string may
 * read back, the digits must be the closest of their length, and the layout
 * must be ECMAScript's, and the output must equal that of the simple
 * printf/strtod algorithm kept here as the reference. Strings are checked
 * against a byte-at-a-time reference escaper written independently of
 * json.c's table and SWAR code. Prints what it checked and how long it took.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "testlib.h"

static struct buf out;
static struct lossy lossy;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *str_n(const char *s, size_t n)
{
	buf_reset(&out);
	json_string(&out, s, n, &lossy);
	return buf_cstr(&out);
}

static const char *str(const char *s)
{
	return str_n(s, strlen(s));
}

static const char *dbl(double v)
{
	buf_reset(&out);
	json_double(&out, v, &lossy);
	return buf_cstr(&out);
}

static const char *flt(float v)
{
	buf_reset(&out);
	json_float(&out, v, &lossy);
	return buf_cstr(&out);
}

static const char *dec(const char *s, enum decimal_mode mode)
{
	buf_reset(&out);
	json_decimal(&out, s, strlen(s), mode, &lossy);
	return buf_cstr(&out);
}

static const char *bin(const char *s, size_t n, enum binary_mode mode)
{
	buf_reset(&out);
	json_binary(&out, s, n, mode, &lossy);
	return buf_cstr(&out);
}

/* ---- strings ------------------------------------------------------------ */

/*
 * Reference: decode each sequence into a code point the textbook way and
 * accept it when it is in range, not a surrogate and not overlong. A maximal
 * subpart is the longest prefix that the same test accepts once completed
 * with 0x80 continuation bytes (only the second byte is ever restricted).
 */
static size_t ref_seq(const uint8_t *p, size_t n, size_t *bad)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t len, have;

	if (p[0] < 0x80)
		return 1;
	len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
	*bad = 1;
	if (len == 0 || p[0] >= 0xf8)
		return 0;
	for (have = 1; have < len && have < n && (p[have] & 0xc0) == 0x80; have++)
		;
	/* The longest prefix (at least the lead byte) that can still complete. */
	for (size_t pre = have; pre >= 1; pre--) {
		uint8_t q[4] = {p[0], 0x80, 0x80, 0x80};
		uint32_t cp;

		for (size_t i = 1; i < pre; i++)
			q[i] = p[i];
		cp = q[0] & (0x7f >> len);
		for (size_t i = 1; i < len; i++)
			cp = cp << 6 | (q[i] & 0x3f);
		if (cp >= min_cp[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) {
			if (pre == len)
				return len;
			*bad = pre;
			return 0;
		}
		if (pre == 1)
			break;
	}
	*bad = 1;
	return 0;
}

static void ref_string(struct buf *b, const uint8_t *s, size_t n, bool *replaced)
{
	size_t i = 0, len, bad;

	buf_putc(b, '"');
	while (i < n) {
		uint8_t c = s[i];

		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
			i++;
		} else if (c < 0x20) {
			const char *shortf = c == '\n'   ? "\\n"
			                     : c == '\t' ? "\\t"
			                     : c == '\r' ? "\\r"
			                     : c == '\b' ? "\\b"
			                     : c == '\f' ? "\\f"
			                                 : NULL;
			if (shortf)
				buf_puts(b, shortf);
			else
				buf_printf(b, "\\u%04x", c);
			i++;
		} else if ((len = ref_seq(s + i, n - i, &bad)) > 0) {
			buf_append(b, s + i, len);
			i += len;
		} else {
			buf_puts(b, "\xef\xbf\xbd");
			i += bad;
			*replaced = true;
		}
	}
	buf_putc(b, '"');
}

static void test_strings(void)
{
	uint64_t before;

	/* TYPES.md and golden rows. */
	CHECK_STR(str("abc"), "\"abc\"");
	CHECK_STR(str(""), "\"\"");
	CHECK_STR(str("line1\nline2 \"q\" \\ tab\t é 日本"),
	          "\"line1\\nline2 \\\"q\\\" \\\\ tab\\t é 日本\"");
	CHECK_STR(str("ctl\x01"), "\"ctl\\u0001\"");
	CHECK_STR(str("Ω≈ç√ 🎉"), "\"Ω≈ç√ 🎉\"");
	CHECK_STR(str("Ω≈ç√ 🎉 \x01"), "\"Ω≈ç√ 🎉 \\u0001\"");
	CHECK_STR(str_n("\0", 1), "\"\\u0000\"");
	CHECK_STR(str("\b\f\r\x1f\x7f/"), "\"\\b\\f\\r\\u001f\x7f/\"");
	CHECK_STR(str("é \"q\"\n"), "\"é \\\"q\\\"\\n\"");

	/* Invalid UTF-8: one U+FFFD per maximal subpart, counted once per string. */
	before = lossy.invalid_utf8;
	CHECK_STR(str("\xff"), "\"\xef\xbf\xbd\"");
	CHECK(lossy.invalid_utf8 == before + 1);
	CHECK_STR(str("\xc0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong NUL */
	CHECK_STR(str("\xe0\x80\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
	CHECK_STR(str("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
	CHECK_STR(str("\xf4\x90\x80\x80"),
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
	CHECK_STR(str("a\xf0\x9f\x8e"), "\"a\xef\xbf\xbd\"");              /* truncated at end */
	CHECK_STR(str("\xf0\x9f\x8e\x89"), "\"\xf0\x9f\x8e\x89\"");        /* U+1F389 */
	CHECK_STR(str("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");        /* U+10FFFF */
	CHECK_STR(str("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");                /* U+D7FF */
	CHECK_STR(str("a\xe2\x82z\xe2\x82\xac\x80"),
	          "\"a\xef\xbf\xbdz\xe2\x82\xac\xef\xbf\xbd\""); /* mixed */
	CHECK_STR(str("\xf1\x80\x80\xe1\x80\xc2\x61"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                                               "a\"");
	before = lossy.invalid_utf8;
	str("ok \xc3\xa9");
	str("bad \xc3 and \xff twice");
	str("fine again");
	CHECK(lossy.invalid_utf8 == before + 1);

	CHECK(utf8_valid_prefix("", 0) == 0);
	CHECK(utf8_valid_prefix("abc é 日本 🎉", strlen("abc é 日本 🎉")) == strlen("abc é 日本 🎉"));
	CHECK(utf8_valid_prefix("ab\xc0\x80", 4) == 2);
	CHECK(utf8_valid_prefix("abcdefghij\xed\xa0\x80", 13) == 10);
	CHECK(utf8_valid_prefix("x\xf0\x9f\x8e", 4) == 1);
	CHECK(utf8_valid_prefix("\xf4\x90\x80\x80", 4) == 0);
	CHECK(utf8_valid_prefix("\xf0\x9f\x8e\x89", 4) == 4);

	/* Differential: random strings over the bytes that matter, every length
	 * and alignment the 8-byte fast path can see. */
	static const uint8_t alphabet[] = {'a',  'Z',  ' ',  '~',  '"',  '\\', 0x00, 0x01, '\n',
	                                   0x1f, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
	                                   0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1,
	                                   0xf4, 0xf5, 0xff, 'q',  'r',  's',  't'};
	struct buf ref = {0};
	uint8_t s[64];
	int mismatches = 0, count = 0;

	for (int iter = 0; iter < 300000; iter++) {
		size_t n = rng() % sizeof(s), pref;
		uint64_t r = rng();
		bool replaced = false, all_ascii = (r & 3) == 0;

		for (size_t i = 0; i < n; i++) {
			uint64_t x = rng();
			/* Mostly plain letters, to exercise long runs too. */
			s[i] = (x & 7) < 5 && !all_ascii ? (uint8_t)('a' + (x >> 8) % 26)
			                                 : alphabet[(x >> 8) % sizeof(alphabet)];
		}
		before = lossy.invalid_utf8;
		str_n((const char *)s, n);
		buf_reset(&ref);
		ref_string(&ref, s, n, &replaced);
		count++;
		if (strcmp(buf_cstr(&out), buf_cstr(&ref)) != 0 ||
		    lossy.invalid_utf8 != before + (replaced ? 1 : 0)) {
			if (mismatches++ < 5)
				CHECK_STR(buf_cstr(&out), buf_cstr(&ref));
		}
		pref = 0;
		while (pref < n) {
			size_t bad, len = ref_seq(s + pref, n - pref, &bad);

			if (len == 0)
				break;
			pref += len;
		}
		if (utf8_valid_prefix((const char *)s, n) != pref && mismatches++ < 5)
			CHECK(utf8_valid_prefix((const char *)s, n) == pref);
	}
	CHECK(mismatches == 0);
	printf("strings: %d random strings match the reference escaper\n", count);
	buf_free(&ref);
}

/* ---- integers ----------------------------------------------------------- */

static void test_integers(void)
{
	char want[32];

	buf_reset(&out);
	json_int64(&out, INT64_MIN);
	CHECK_STR(buf_cstr(&out), "-9223372036854775808");
	buf_reset(&out);
	json_int64(&out, INT64_MAX);
	CHECK_STR(buf_cstr(&out), "9223372036854775807");
	buf_reset(&out);
	json_uint64(&out, UINT64_MAX);
	CHECK_STR(buf_cstr(&out), "18446744073709551615");
	buf_reset(&out);
	json_int64(&out, 0);
	buf_putc(&out, ',');
	json_int64(&out, -1);
	buf_putc(&out, ',');
	json_uint64(&out, 0);
	buf_putc(&out, ',');
	json_int64(&out, -128);
	CHECK_STR(buf_cstr(&out), "0,-1,0,-128");
	for (int i = 0; i < 200000; i++) {
		int64_t v = (int64_t)(rng() >> (rng() % 64));

		if (i & 1)
			v = -v;
		buf_reset(&out);
		json_int64(&out, v);
		snprintf(want, sizeof(want), "%" PRId64, v);
		if (strcmp(buf_cstr(&out), want) != 0) {
			CHECK_STR(buf_cstr(&out), want);
			break;
		}
		buf_reset(&out);
		json_uint64(&out, (uint64_t)v);
		snprintf(want, sizeof(want), "%" PRIu64, (uint64_t)v);
		if (strcmp(buf_cstr(&out), want) != 0) {
			CHECK_STR(buf_cstr(&out), want);
			break;
		}
	}
}

/* ---- doubles and floats ------------------------------------------------- */

/* A number text as significant digits D (no leading or trailing zeros) and n,
 * value = 0.D * 10^n; k = 0 for zero. */
struct number {
	bool neg;
	char dig[40];
	int k;
	int n;
};

static bool parse_number(const char *s, struct number *p)
{
	int point = -1, total = 0, lead = 0;
	long x = 0;

	memset(p, 0, sizeof(*p));
	if (*s == '-') {
		p->neg = true;
		s++;
	}
	for (; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
		if (*s == '.') {
			point = total;
			continue;
		}
		if (total >= 39)
			return false;
		p->dig[total++] = *s;
	}
	if (*s == 'e' || *s == 'E')
		x = strtol(s + 1, NULL, 10);
	if (point < 0)
		point = total;
	while (lead < total && p->dig[lead] == '0')
		lead++;
	memmove(p->dig, p->dig + lead, (size_t)(total - lead));
	total -= lead;
	while (total > 0 && p->dig[total - 1] == '0')
		total--;
	p->dig[total] = '\0';
	p->k = total;
	p->n = total ? point - lead + (int)x : 0;
	return true;
}

static void put_zeros(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_putc(b, '0');
}

/* How ECMAScript writes 0.D * 10^n, built independently of json.c. */
static void ecma_expected(struct buf *b, const struct number *p)
{
	int k = p->k, n = p->n;

	buf_reset(b);
	if (k == 0) {
		buf_puts(b, "0");
		return;
	}
	if (p->neg)
		buf_putc(b, '-');
	if (k <= n && n <= 21) {
		buf_puts(b, p->dig);
		put_zeros(b, n - k);
	} else if (n > 0 && n <= 21) {
		buf_printf(b, "%.*s.%s", n, p->dig, p->dig + n);
	} else if (n > -6 && n <= 0) {
		buf_puts(b, "0.");
		put_zeros(b, -n);
		buf_puts(b, p->dig);
	} else {
		buf_printf(b, "%c%s%se%+d", p->dig[0], k > 1 ? "." : "", p->dig + 1, n - 1);
	}
}

static bool reads_back(const char *s, double a, bool single)
{
	if (single)
		return strtof(s, NULL) == (float)a;
	return strtod(s, NULL) == a;
}

/* a at m significant digits, rounded to nearest: value = *d * 10^*e. */
static void nearest_digits(double a, int m, uint64_t *d, int *e)
{
	char s[64];
	struct number p;

	snprintf(s, sizeof(s), "%.*e", m - 1, a);
	parse_number(s, &p);
	*d = 0;
	for (int i = 0; i < m; i++)
		*d = *d * 10 + (uint64_t)(i < p.k ? p.dig[i] - '0' : 0);
	*e = p.n - m;
}

static bool reads_back_de(uint64_t d, int e, double a, bool single)
{
	char s[64];

	snprintf(s, sizeof(s), "%" PRIu64 "e%d", d, e);
	return reads_back(s, a, single);
}

/*
 * The reference: the simple algorithm, printf at increasing precision checked
 * with strtod/strtof. Any shortest of at most DBL_DIG (FLT_DIG) digits is the
 * nearest rounding to that many digits with trailing zeros stripped (no two
 * such decimals read back to the same normal value); at 16 and 17 (7..9)
 * digits the nearest is tried, and at a power of two, whose gap below is half
 * the gap above, also the next string above. Subnormals start at one digit.
 */
static void ref_format(struct buf *b, double v, bool single)
{
	double a = fabs(v), min = single ? (double)FLT_MIN : DBL_MIN;
	int first = a < min ? 1 : single ? FLT_DIG : DBL_DIG, last = single ? 9 : 17, e2;
	bool pow2 = frexp(a, &e2) == 0.5 && a > min;
	char s[64];
	struct number p;

	for (int prec = first; prec <= last; prec++) {
		snprintf(s, sizeof(s), "%.*e", prec - 1, a);
		if (reads_back(s, a, single))
			break;
		if (pow2 && (single ? strtof(s, NULL) < (float)a : strtod(s, NULL) < a)) {
			uint64_t d, pow_p = 1;
			int e;

			for (int i = 0; i < prec; i++)
				pow_p *= 10;
			nearest_digits(a, prec, &d, &e);
			if (++d == pow_p) {
				d /= 10;
				e++;
			}
			snprintf(s, sizeof(s), "%" PRIu64 "e%d", d, e);
			if (reads_back(s, a, single))
				break;
		}
	}
	parse_number(s, &p);
	p.neg = signbit(v) && a != 0;
	ecma_expected(b, &p);
}

static struct buf expect;
static int number_failures;

static void number_failed(double v, bool single, const char *got, const char *why)
{
	test_failures++;
	if (number_failures++ < 10)
		fprintf(stderr, "%s %.17g (%a): got \"%s\": %s\n", single ? "float" : "double", v,
		        v, got, why);
}

/* Everything the output for v must satisfy; counts one check. */
static void check_number(double v, bool single)
{
	char s[40], n_s[64];
	struct number p;
	double a = fabs(v);
	uint64_t d, pow_m;
	int e, m;

	test_checks++;
	if (single)
		json_format_float(s, (float)v);
	else
		json_format_double(s, v);
	if (!json_is_number(s, strlen(s)) || !parse_number(s, &p))
		return number_failed(v, single, s, "not a JSON number");
	if (v == 0) {
		if (strcmp(s, "0") != 0)
			number_failed(v, single, s, "zero must be 0");
		return;
	}
	if (single) {
		float r = strtof(s, NULL), f = (float)v;

		if (memcmp(&r, &f, sizeof(f)) != 0)
			return number_failed(v, single, s, "does not read back");
	} else {
		double r = strtod(s, NULL);

		if (memcmp(&r, &v, sizeof(v)) != 0)
			return number_failed(v, single, s, "does not read back");
	}
	ecma_expected(&expect, &p);
	if (strcmp(buf_cstr(&expect), s) != 0)
		return number_failed(v, single, s, "not the ECMAScript layout");
	ref_format(&expect, v, single);
	if (strcmp(buf_cstr(&expect), s) != 0)
		return number_failed(v, single, s, "differs from the printf/strtod reference");
	/* No string of k-1 digits reads back: neither the nearest one nor the
	 * one on the other side of v (which covers all shorter ones too). */
	m = p.k - 1;
	if (m >= 1) {
		nearest_digits(a, m, &d, &e);
		if (reads_back_de(d, e, a, single))
			return number_failed(v, single, s, "a shorter string reads back");
		snprintf(n_s, sizeof(n_s), "%" PRIu64 "e%d", d, e);
		pow_m = 1;
		for (int i = 0; i < m; i++)
			pow_m *= 10;
		if (single ? strtof(n_s, NULL) < (float)a : strtod(n_s, NULL) < a) {
			if (++d == pow_m) {
				d /= 10;
				e++;
			}
		} else if (--d < pow_m / 10) {
			d = pow_m - 1;
			e--;
		}
		if (reads_back_de(d, e, a, single))
			return number_failed(v, single, s, "a shorter string reads back");
	}
	/* Closest of its length: when the nearest k-digit string reads back, it is
	 * the one written. */
	snprintf(n_s, sizeof(n_s), "%.*e", p.k - 1, a);
	if (reads_back(n_s, a, single)) {
		struct number q;

		parse_number(n_s, &q);
		if (q.n != p.n || strcmp(q.dig, p.dig) != 0)
			return number_failed(v, single, s, "not the closest shortest digits");
	}
}

static void test_number_tables(void)
{
	uint64_t before;
	static const struct {
		double v;
		const char *want;
	} doubles[] = {
	    {0.1, "0.1"},
	    {3.0, "3"},
	    {3.5, "3.5"},
	    {1.5e-5, "0.000015"},
	    {1e300, "1e+300"},
	    {-0.5, "-0.5"},
	    {-0.0, "0"},
	    {0.0, "0"},
	    {1e-7, "1e-7"},
	    {1.5e-7, "1.5e-7"},
	    {5e-7, "5e-7"},
	    {1e-6, "0.000001"},
	    {0.000001234, "0.000001234"},
	    {1.234e-7, "1.234e-7"},
	    {123e-20, "1.23e-18"},
	    {123456789012345680000.0, "123456789012345680000"},
	    {1e20, "100000000000000000000"},
	    {1e21, "1e+21"},
	    {1.5e21, "1.5e+21"},
	    {1e22, "1e+22"},
	    {1e23, "1e+23"},
	    {9.999999999999997e22, "9.999999999999997e+22"},
	    {1.2345e22, "1.2345e+22"},
	    {1e15, "1000000000000000"},
	    {1e16, "10000000000000000"},
	    {12345678901234567.0, "12345678901234568"},
	    {9007199254740992.0, "9007199254740992"},
	    {9007199254740994.0, "9007199254740994"},
	    {4.35, "4.35"},
	    {100, "100"},
	    {-1e-300, "-1e-300"},
	    {123.456, "123.456"},
	    {0.30000000000000004, "0.30000000000000004"},
	    {2.0 / 3.0, "0.6666666666666666"},
	    {1.0 / 3.0, "0.3333333333333333"},
	    {0.7999999999999999, "0.7999999999999999"},
	    {5e-324, "5e-324"},
	    {1e-323, "1e-323"},
	    {2.2250738585072009e-308, "2.225073858507201e-308"},
	    {DBL_MIN, "2.2250738585072014e-308"},
	    {DBL_MAX, "1.7976931348623157e+308"},
	    {-DBL_MAX, "-1.7976931348623157e+308"},
	    {0x1p-1022 * 3, "6.675221575521604e-308"},
	    {9.5367431640625e-7, "9.5367431640625e-7"}, /* 2^-20 */
	    {0x1p60, "1152921504606847000"},
	    {0x1p70, "1.1805916207174113e+21"},
	    {0x1p-44, "5.684341886080802e-14"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {299792458, "299792458"},
	    {-123456.789e3, "-123456789"},
	};
	static const struct {
		float v;
		const char *want;
	} floats[] = {
	    {0.1f, "0.1"},
	    {3.4028235e38f, "3.4028235e+38"},
	    {-0.5f, "-0.5"},
	    {3.5f, "3.5"},
	    {-0.0f, "0"},
	    {0.3f, "0.3"},
	    {1.0f / 3.0f, "0.33333334"},
	    {100.0f / 3.0f, "33.333332"},
	    {16777216.0f, "16777216"},
	    {16777218.0f, "16777218"},
	    {1e10f, "10000000000"},
	    {1e21f, "1e+21"},
	    {FLT_MIN, "1.1754944e-38"},
	    {0x1p-149f, "1e-45"},
	    {0x1p-148f, "3e-45"},
	    {1.5e-5f, "0.000015"},
	    {1e-7f, "1e-7"},
	    {123456.79f, "123456.79"},
	    {0x1p-20f, "9.536743e-7"},
	};

	for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
		CHECK_STR(dbl(doubles[i].v), doubles[i].want);
		check_number(doubles[i].v, false);
	}
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		CHECK_STR(flt(floats[i].v), floats[i].want);
		check_number(floats[i].v, true);
	}

	before = lossy.nonfinite;
	CHECK_STR(dbl(NAN), "null");
	CHECK_STR(dbl(INFINITY), "null");
	CHECK_STR(dbl(-INFINITY), "null");
	CHECK_STR(flt(NAN), "null");
	CHECK_STR(flt(-INFINITY), "null");
	CHECK(lossy.nonfinite == before + 5);

	/* The writer appends; json_format_* NUL-terminates in 32 bytes. */
	buf_reset(&out);
	buf_puts(&out, "[");
	json_double(&out, -DBL_MAX, &lossy);
	buf_putc(&out, ',');
	json_float(&out, -FLT_MAX, &lossy);
	buf_putc(&out, ']');
	CHECK_STR(buf_cstr(&out), "[-1.7976931348623157e+308,-3.4028235e+38]");
	{
		char s[32];

		CHECK(json_format_double(s, -2.2250738585072014e-308) == 24);
		CHECK_STR(s, "-2.2250738585072014e-308");
		CHECK(json_format_float(s, -1.1754942e-38f) == 14);
		CHECK_STR(s, "-1.1754942e-38");
	}
}

static double random_nice_decimal(int max_digits, int min_exp, int max_exp, bool single)
{
	int digits = 1 + (int)(rng() % (uint64_t)max_digits);
	uint64_t lim = 1, k;
	int e = min_exp + (int)(rng() % (uint64_t)(max_exp - min_exp + 1));
	char s[64];

	for (int i = 0; i < digits; i++)
		lim *= 10;
	k = rng() % lim;
	snprintf(s, sizeof(s), "%s%" PRIu64 "e%d", rng() & 1 ? "-" : "", k, e);
	return single ? (double)strtof(s, NULL) : strtod(s, NULL);
}

static void test_number_random(void)
{
	const int n_random = 1000000, n_nice = 250000;
	int checked_d = 0, checked_f = 0, failed_before = test_failures;
	double t0 = now();

	/* Every power of two and its neighbours: the asymmetric intervals. */
	for (int e = -1074; e <= 1023; e++) {
		double v = ldexp(1.0, e);

		check_number(v, false);
		check_number(nextafter(v, 0), false);
		check_number(nextafter(v, INFINITY), false);
		check_number(-v, false);
		checked_d += 4;
	}
	for (int e = -149; e <= 127; e++) {
		float v = ldexpf(1.0f, e);

		check_number(v, true);
		check_number(nextafterf(v, 0), true);
		check_number(nextafterf(v, INFINITY), true);
		checked_f += 3;
	}
	/* The smallest subnormals one by one, and the first normals. */
	for (uint64_t c = 1; c <= 2000; c++) {
		double v;
		float f;
		uint32_t c32 = (uint32_t)c;

		memcpy(&v, &c, sizeof(v));
		check_number(v, false);
		v = nextafter(DBL_MIN, 1.0) + (double)c * 0x1p-1074;
		check_number(v, false);
		memcpy(&f, &c32, sizeof(f));
		check_number(f, true);
		f = FLT_MIN + (float)c * 0x1p-149f;
		check_number(f, true);
		checked_d += 2;
		checked_f += 2;
	}
	for (int i = 0; i < n_random; i++) {
		uint64_t bits = rng();
		double v;

		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		check_number(v, false);
		checked_d++;
	}
	for (int i = 0; i < n_nice; i++) {
		/* Like database data: few digits (k / 10^n), sometimes up to 17. */
		double v = i % 4 == 0 ? random_nice_decimal(17, -30, 30, false)
		                      : random_nice_decimal(7, -9, 3, false);

		check_number(v, false);
		checked_d++;
	}
	for (int i = 0; i < n_random; i++) {
		uint32_t bits = (uint32_t)rng();
		float v;

		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		check_number(v, true);
		checked_f++;
	}
	for (int i = 0; i < n_nice / 2; i++) {
		double v = i % 4 == 0 ? random_nice_decimal(9, -45, 38, true)
		                      : random_nice_decimal(5, -6, 3, true);

		if (isinf(v))
			continue;
		check_number(v, true);
		checked_f++;
	}
	printf("numbers: %d doubles and %d floats checked (read back, shortest, closest, "
	       "layout, same as the reference), %d failed, %.2f s\n",
	       checked_d, checked_f, test_failures - failed_before, now() - t0);
}

/* ---- decimals ----------------------------------------------------------- */

static void test_decimals(void)
{
	uint64_t before;
	char big[301];

	CHECK_STR(dec("12.50", DECIMAL_EXACT), "12.50");
	CHECK_STR(dec("1234567890123456789012345678.0123456789", DECIMAL_EXACT),
	          "1234567890123456789012345678.0123456789");
	CHECK_STR(dec("12345678901234567890.123456789012345678", DECIMAL_EXACT),
	          "12345678901234567890.123456789012345678");
	CHECK_STR(dec("-12345678901234567890123456789012345678", DECIMAL_EXACT),
	          "-12345678901234567890123456789012345678");
	CHECK_STR(dec("1234567890123456789012345678901234", DECIMAL_EXACT),
	          "1234567890123456789012345678901234");
	CHECK_STR(dec("-0.01", DECIMAL_EXACT), "-0.01");
	CHECK_STR(dec("0.0000000000", DECIMAL_EXACT), "0.0000000000");
	CHECK_STR(dec("-0.0000000001", DECIMAL_EXACT), "-0.0000000001");
	CHECK_STR(dec("0.00", DECIMAL_EXACT), "0.00");
	CHECK_STR(dec("99999999.99", DECIMAL_EXACT), "99999999.99");
	CHECK_STR(dec("0", DECIMAL_EXACT), "0");
	CHECK_STR(dec("-0", DECIMAL_EXACT), "-0");
	CHECK_STR(dec("1.5E+10", DECIMAL_EXACT), "1.5E+10");
	CHECK_STR(dec("12.50", DECIMAL_DOUBLE), "12.5");
	CHECK_STR(dec("0.1", DECIMAL_DOUBLE), "0.1");
	CHECK_STR(dec("-0.0000000001", DECIMAL_DOUBLE), "-1e-10");
	CHECK_STR(dec("12345678901234567890.123456789012345678", DECIMAL_DOUBLE),
	          "12345678901234567000");
	CHECK_STR(dec("12.50", DECIMAL_STRING), "\"12.50\"");
	CHECK_STR(dec("-0.01", DECIMAL_STRING), "\"-0.01\"");

	/* Not numbers: strings, never invalid JSON. */
	CHECK_STR(dec("abc", DECIMAL_EXACT), "\"abc\"");
	CHECK_STR(dec("", DECIMAL_EXACT), "\"\"");
	CHECK_STR(dec(".5", DECIMAL_EXACT), "\".5\"");
	CHECK_STR(dec("+1", DECIMAL_EXACT), "\"+1\"");
	CHECK_STR(dec("01", DECIMAL_EXACT), "\"01\"");
	CHECK_STR(dec("1.", DECIMAL_EXACT), "\"1.\"");
	CHECK_STR(dec("1e", DECIMAL_EXACT), "\"1e\"");
	CHECK_STR(dec("-", DECIMAL_EXACT), "\"-\"");
	CHECK_STR(dec("1 ", DECIMAL_DOUBLE), "\"1 \"");
	CHECK_STR(dec("0x10", DECIMAL_DOUBLE), "\"0x10\"");

	/* NaN and infinities in every spelling and mode: null, counted. */
	before = lossy.nonfinite;
	CHECK_STR(dec("NaN", DECIMAL_EXACT), "null");
	CHECK_STR(dec("Infinity", DECIMAL_EXACT), "null");
	CHECK_STR(dec("-Infinity", DECIMAL_EXACT), "null");
	CHECK_STR(dec("+inf", DECIMAL_EXACT), "null");
	CHECK_STR(dec("nan", DECIMAL_DOUBLE), "null");
	CHECK_STR(dec("-INF", DECIMAL_DOUBLE), "null");
	CHECK_STR(dec("sNaN", DECIMAL_STRING), "null");
	CHECK_STR(dec("1e999", DECIMAL_DOUBLE), "null"); /* overflows the double */
	CHECK(lossy.nonfinite == before + 8);
	CHECK_STR(dec("Nano", DECIMAL_EXACT), "\"Nano\"");

	/* Longer than the on-stack copy for strtod. */
	memset(big, '9', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_STR(dec(big, DECIMAL_DOUBLE), "1e+300");
	big[0] = '1';
	big[1] = '.';
	CHECK_STR(dec(big, DECIMAL_DOUBLE), "2");

	CHECK(json_is_number("0", 1));
	CHECK(json_is_number("-0.0e-0", 7));
	CHECK(json_is_number("1E+2", 4));
	CHECK(!json_is_number("", 0));
	CHECK(!json_is_number("00", 2));
	CHECK(!json_is_number("1.e5", 4));
	CHECK(!json_is_number("1e+", 3));
	CHECK(!json_is_number("NaN", 3));
	CHECK(json_is_number("12", 1)); /* n bytes, not up to a NUL */
	CHECK(!json_is_number("1\0", 2));
}

/* ---- binary, ids -------------------------------------------------------- */

static void test_binary(void)
{
	static const uint8_t oid[12] = {0x65, 0x2f, 0x1a, 0x2b, 0x3c, 0x4d,
	                                0x5e, 0x6f, 0x70, 0x81, 0x92, 0x03};
	static const uint8_t uuid[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
	                                 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
	static const char *const b64[7] = {"\"\"",        "\"Zg==\"",     "\"Zm8=\"",
	                                   "\"Zm9v\"",    "\"Zm9vYg==\"", "\"Zm9vYmE=\"",
	                                   "\"Zm9vYmFy\""};
	uint64_t before;

	for (size_t n = 0; n <= 6; n++)
		CHECK_STR(bin("foobar", n, BINARY_BASE64), b64[n]);
	CHECK_STR(bin("\xff\xfe\x00", 3, BINARY_BASE64), "\"//4A\"");
	CHECK_STR(bin("\xfb\xff", 2, BINARY_BASE64), "\"+/8=\"");
	CHECK_STR(bin("hello", 5, BINARY_HEX), "\"68656c6c6f\"");
	CHECK_STR(bin("\x00\xff\x0a", 3, BINARY_HEX), "\"00ff0a\"");
	CHECK_STR(bin("", 0, BINARY_HEX), "\"\"");
	CHECK_STR(bin("hello", 5, BINARY_UTF8), "\"hello\"");
	CHECK_STR(bin("\x00", 1, BINARY_UTF8), "\"\\u0000\"");
	before = lossy.invalid_utf8;
	CHECK_STR(bin("\xff", 1, BINARY_UTF8), "\"\xef\xbf\xbd\"");
	CHECK_STR(bin("\xff", 1, BINARY_HEX), "\"ff\"");
	CHECK(lossy.invalid_utf8 == before + 1);

	buf_reset(&out);
	json_hex_string(&out, oid, sizeof(oid));
	CHECK_STR(buf_cstr(&out), "\"652f1a2b3c4d5e6f70819203\"");
	buf_reset(&out);
	json_uuid(&out, uuid);
	CHECK_STR(buf_cstr(&out), "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
}

/* ---- dates and times ---------------------------------------------------- */

static const char *instant(int64_t usec)
{
	buf_reset(&out);
	json_instant_usec(&out, usec);
	return buf_cstr(&out);
}

static void test_dates(void)
{
	int mismatches = 0;

	buf_reset(&out);
	json_date(&out, 2025, 10, 5);
	CHECK_STR(buf_cstr(&out), "\"2025-10-05\"");
	buf_reset(&out);
	json_date(&out, 1, 1, 1);
	CHECK_STR(buf_cstr(&out), "\"0001-01-01\"");
	buf_reset(&out);
	json_date(&out, 9999, 12, 31);
	CHECK_STR(buf_cstr(&out), "\"9999-12-31\"");
	buf_reset(&out);
	json_date(&out, 10000, 1, 1);
	CHECK_STR(buf_cstr(&out), "\"10000-01-01\"");
	buf_reset(&out);
	json_date(&out, -44, 3, 15);
	CHECK_STR(buf_cstr(&out), "\"-0044-03-15\"");

	buf_reset(&out);
	json_datetime(&out, 2025, 10, 5, 14, 30, 0, 0, false);
	CHECK_STR(buf_cstr(&out), "\"2025-10-05T14:30:00\"");
	buf_reset(&out);
	json_datetime(&out, 2025, 10, 5, 14, 30, 0, 250000, false);
	CHECK_STR(buf_cstr(&out), "\"2025-10-05T14:30:00.250000\"");
	buf_reset(&out);
	json_datetime(&out, 1970, 1, 1, 0, 0, 0, 1, false);
	CHECK_STR(buf_cstr(&out), "\"1970-01-01T00:00:00.000001\"");
	buf_reset(&out);
	json_datetime(&out, 9999, 12, 31, 23, 59, 59, 0, false);
	CHECK_STR(buf_cstr(&out), "\"9999-12-31T23:59:59\"");
	buf_reset(&out);
	json_datetime(&out, 2000, 2, 29, 12, 0, 0, 123456, false);
	CHECK_STR(buf_cstr(&out), "\"2000-02-29T12:00:00.123456\"");
	buf_reset(&out);
	json_datetime(&out, 2025, 10, 5, 14, 30, 0, 0, true);
	CHECK_STR(buf_cstr(&out), "\"2025-10-05T14:30:00Z\"");
	buf_reset(&out);
	json_datetime(&out, 2025, 10, 5, 14, 30, 0, 123456, true);
	CHECK_STR(buf_cstr(&out), "\"2025-10-05T14:30:00.123456Z\"");

	buf_reset(&out);
	json_time(&out, false, 14, 30, 0, 0);
	CHECK_STR(buf_cstr(&out), "\"14:30:00\"");
	buf_reset(&out);
	json_time(&out, true, 838, 59, 59, 0);
	CHECK_STR(buf_cstr(&out), "\"-838:59:59\"");
	buf_reset(&out);
	json_time(&out, false, 838, 59, 59, 0);
	CHECK_STR(buf_cstr(&out), "\"838:59:59\"");
	buf_reset(&out);
	json_time(&out, false, 23, 59, 59, 500000);
	CHECK_STR(buf_cstr(&out), "\"23:59:59.500000\"");
	buf_reset(&out);
	json_time(&out, false, 0, 0, 0, 0);
	CHECK_STR(buf_cstr(&out), "\"00:00:00\"");
	buf_reset(&out);
	json_time(&out, true, 0, 0, 1, 5);
	CHECK_STR(buf_cstr(&out), "\"-00:00:01.000005\"");
	buf_reset(&out);
	json_time(&out, false, 1000, 1, 2, 0);
	CHECK_STR(buf_cstr(&out), "\"1000:01:02\"");

	CHECK_STR(instant(0), "\"1970-01-01T00:00:00Z\"");
	CHECK_STR(instant(1), "\"1970-01-01T00:00:00.000001Z\"");
	CHECK_STR(instant(-1), "\"1969-12-31T23:59:59.999999Z\"");
	CHECK_STR(instant(1000000), "\"1970-01-01T00:00:01Z\"");
	CHECK_STR(instant(1759674600LL * 1000000), "\"2025-10-05T14:30:00Z\"");
	CHECK_STR(instant(1759674600LL * 1000000 + 123000), "\"2025-10-05T14:30:00.123000Z\"");
	CHECK_STR(instant(1759674600LL * 1000000 + 123456), "\"2025-10-05T14:30:00.123456Z\"");
	CHECK_STR(instant(951825600LL * 1000000), "\"2000-02-29T12:00:00Z\"");
	CHECK_STR(instant(-2203891200LL * 1000000), "\"1900-03-01T00:00:00Z\"");
	CHECK_STR(instant(JSON_INSTANT_MIN_USEC), "\"0001-01-01T00:00:00Z\"");
	CHECK_STR(instant(JSON_INSTANT_MAX_USEC), "\"9999-12-31T23:59:59.999999Z\"");
	CHECK_STR(instant(JSON_INSTANT_MAX_USEC + 1), "\"10000-01-01T00:00:00Z\"");
	CHECK_STR(instant(JSON_INSTANT_MIN_USEC - 1), "\"0000-12-31T23:59:59.999999Z\"");
	CHECK_STR(instant(INT64_MAX), "\"294247-01-10T04:00:54.775807Z\"");
	CHECK_STR(instant(INT64_MIN), "\"-290308-12-21T19:59:05.224192Z\"");

	/* Against gmtime_r (a 64-bit time_t reaches years 1..9999) at random,
	 * the first 1000 densely around the epoch. */
	for (int i = 0; i < 200000; i++) {
		uint64_t span = i < 1000
		                    ? 200000000000ULL
		                    : (uint64_t)(JSON_INSTANT_MAX_USEC - JSON_INSTANT_MIN_USEC);
		int64_t first = i < 1000 ? -100000000000LL : JSON_INSTANT_MIN_USEC;
		int64_t usec = first + (int64_t)(rng() % span);
		int64_t secs = usec / 1000000 - (usec % 1000000 < 0);
		int frac = (int)(usec - secs * 1000000);
		time_t t = (time_t)secs;
		struct tm tm;
		char want[64];

		gmtime_r(&t, &tm);
		if (frac)
			snprintf(want, sizeof(want), "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
			         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			         tm.tm_min, tm.tm_sec, frac);
		else
			snprintf(want, sizeof(want), "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"",
			         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			         tm.tm_min, tm.tm_sec);
		if (strcmp(instant(usec), want) != 0 && mismatches++ < 5)
			CHECK_STR(instant(usec), want);
	}
	CHECK(mismatches == 0);
}

/* ---- re-emitting JSON --------------------------------------------------- */

static const char *reemit_n(const char *s, size_t n)
{
	static struct ierr e;

	buf_reset(&out);
	if (json_reemit(&out, s, n, &lossy, &e) != 0)
		return e.msg;
	return buf_cstr(&out);
}

static const char *reemit(const char *s)
{
	return reemit_n(s, strlen(s));
}

/* Invalid: -1, a message naming the byte, b and the counters unchanged. */
static void check_invalid(const char *s, size_t n, long at)
{
	struct ierr e = {0};
	struct lossy before = lossy;
	char want[64];
	int rc;

	buf_reset(&out);
	buf_puts(&out, "{\"k\":");
	rc = json_reemit(&out, s, n, &lossy, &e);
	test_checks++;
	if (rc != -1 || strcmp(buf_cstr(&out), "{\"k\":") != 0 || out.len != 5 ||
	    memcmp(&before, &lossy, sizeof(lossy)) != 0 || e.code != IERR_SOURCE) {
		test_failures++;
		fprintf(stderr, "reemit of invalid \"%.*s\": rc %d, buffer \"%s\"\n",
		        n > 60 ? 60 : (int)n, s, rc, buf_cstr(&out));
		return;
	}
	snprintf(want, sizeof(want), "invalid JSON at byte %ld ", at);
	if (at >= 0 && strncmp(e.msg, want, strlen(want)) != 0) {
		test_failures++;
		fprintf(stderr, "reemit of invalid \"%.*s\": message \"%s\", want byte %ld\n",
		        n > 60 ? 60 : (int)n, s, e.msg, at);
	}
}

static void test_reemit(void)
{
	uint64_t before;
	size_t big = 1000000;
	char *deep = malloc(2 * big + 16);
	double t0;

	CHECK(deep != NULL);
	CHECK_STR(reemit("{\"a\": [1, 2, {\"b\": null}]}"), "{\"a\":[1,2,{\"b\":null}]}");
	CHECK_STR(reemit("null"), "null");
	CHECK_STR(reemit("[]"), "[]");
	CHECK_STR(reemit("{}"), "{}");
	CHECK_STR(reemit(" \r\n\t[ ] \n"), "[]");
	CHECK_STR(reemit("{ }"), "{}");
	CHECK_STR(reemit("{\"deep\": {\"er\": [[]]}, \"s\": \"é\\n\"}"),
	          "{\"deep\":{\"er\":[[]]},\"s\":\"é\\n\"}");
	CHECK_STR(reemit("{\"k\": \"v\", \"n\": 1.5}"), "{\"k\":\"v\",\"n\":1.5}");
	CHECK_STR(reemit("{\"a\": {\"b\": [1, \"2\", false]}}"), "{\"a\":{\"b\":[1,\"2\",false]}}");
	CHECK_STR(reemit("[2.50, 1E2, -0, 1e-7, 0.0, \"\\u00e9\", \"\\/\", true, false, null]"),
	          "[2.50,1E2,-0,1e-7,0.0,\"\\u00e9\",\"\\/\",true,false,null]");
	CHECK_STR(reemit("\"just a string with spaces \""), "\"just a string with spaces \"");
	CHECK_STR(reemit("  123  "), "123");
	CHECK_STR(reemit("{\"$minKey\": 1}"), "{\"$minKey\":1}");
	CHECK_STR(reemit("[\"\\ud83c\\udf89 \\\" \\\\ \\b\\f\\n\\r\\t\", \"🎉 日本\"]"),
	          "[\"\\ud83c\\udf89 \\\" \\\\ \\b\\f\\n\\r\\t\",\"🎉 日本\"]");
	CHECK_STR(reemit("[\"\x7f\"]"), "[\"\x7f\"]");

	/* Invalid UTF-8 inside strings: U+FFFD, counted once per document. */
	before = lossy.invalid_utf8;
	CHECK_STR(reemit("[\"a\xff"
	                 "b\", {\"\xc0\x80\": \"\xed\xa0\x80\"}]"),
	          "[\"a\xef\xbf\xbd"
	          "b\",{\"\xef\xbf\xbd\xef\xbf\xbd\":"
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}]");
	CHECK(lossy.invalid_utf8 == before + 1);

	check_invalid("", 0, 0);
	check_invalid("   ", 3, 3);
	check_invalid("[1,]", 4, 3);
	check_invalid("[1 2]", 5, 3);
	check_invalid("{\"a\" 1}", 7, 5);
	check_invalid("{\"a\":1,}", 8, 7);
	check_invalid("{1:2}", 5, 1);
	check_invalid("{\"a\":}", 6, 5);
	check_invalid("[1]x", 4, 3);
	check_invalid("{\"a\":1} x", 9, 8);
	check_invalid("[1] [2]", 7, 4);
	check_invalid("\"abc", 4, 0);
	check_invalid("[\"abc\\", 6, 1);
	check_invalid("[\"\\x\"]", 6, 2);
	check_invalid("\"\\u12g4\"", 8, 1);
	check_invalid("\"\\u12\"", 6, 1);
	check_invalid("\"a\tb\"", 5, 2);
	check_invalid("\"a\nb\"", 5, 2);
	check_invalid("[\"\0\"]", 5, 2);
	check_invalid("01", 2, 1);
	check_invalid("1.", 2, 0);
	check_invalid("-", 1, 0);
	check_invalid("-a", 2, 0);
	check_invalid(".5", 2, 0);
	check_invalid("+1", 2, 0);
	check_invalid("1e", 2, 0);
	check_invalid("tru", 3, 0);
	check_invalid("nul", 3, 0);
	check_invalid("True", 4, 0);
	check_invalid("NaN", 3, 0);
	check_invalid("[", 1, 1);
	check_invalid("{", 1, 1);
	check_invalid("]", 1, 0);
	check_invalid("[1", 2, 2);
	check_invalid("{\"a\":1", 6, 6);
	check_invalid("{\"a\"", 4, 4);
	check_invalid("[1]]", 4, 3);
	check_invalid("[\"bad \xff\" x]", 11, 9); /* UTF-8 repair is not committed */
	check_invalid("\xef\xbb\xbf[]", 5, 0);    /* no BOM */
	check_invalid("[1]\0", 4, 3);

	/* Depth: 10,000 levels are fine, 10,001 and hostile depths are errors. */
	for (size_t depth = 9999; depth <= 10001; depth++) {
		memset(deep, '[', depth);
		memset(deep + depth, ']', depth);
		buf_reset(&out);
		if (depth <= 10000) {
			struct ierr e = {0};

			CHECK(json_reemit(&out, deep, 2 * depth, &lossy, &e) == 0);
			CHECK(out.len == 2 * depth && memcmp(out.data, deep, 2 * depth) == 0);
		} else {
			check_invalid(deep, 2 * depth, 10000);
		}
	}
	for (size_t i = 0; i < 10000; i++)
		memcpy(deep + 5 * i, "{\"a\":", 5);
	memcpy(deep + 50000, "1", 1);
	memset(deep + 50001, '}', 10000);
	deep[60001] = '\0';
	CHECK_STR(reemit_n(deep, 60001), deep);
	memset(deep, '[', 20000);
	memset(deep + 20000, ']', 20000);
	check_invalid(deep, 40000, 10000);
	t0 = now();
	memset(deep, '[', big);
	check_invalid(deep, big, 10000);
	memset(deep, ' ', big);
	memcpy(deep + big, "[]", 2);
	CHECK_STR(reemit_n(deep, big + 2), "[]");
	CHECK(now() - t0 < 1.0);
	free(deep);
}

int main(void)
{
	double t0 = now();

	test_strings();
	test_integers();
	test_number_tables();
	test_decimals();
	test_binary();
	test_dates();
	test_reemit();
	test_number_random();
	buf_free(&out);
	buf_free(&expect);
	printf("test_json: %.2f s\n", now() - t0);
	return test_done();
}
