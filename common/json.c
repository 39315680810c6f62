/*
 * json.c - the NDJSON value writer (see json.h for the contract, and
 * docs/TYPES.md for the rules it implements).
 *
 * Every database value of every row passes through this file, so the common
 * cases are the fast ones:
 *
 * - Strings: a 256-entry class table says which bytes can be copied as they
 *   are; runs of such bytes (checked 8 at a time with SWAR bit tricks) and of
 *   valid UTF-8 sequences are copied with one memcpy. Only the bytes that must
 *   be escaped and invalid UTF-8 interrupt a run. Invalid UTF-8 is replaced by
 *   U+FFFD per maximal subpart (Unicode 15, 3.9 "U+FFFD Substitution of
 *   Maximal Subparts", the WHATWG decoder's behaviour), accepting exactly the
 *   well-formed sequences of Unicode Table 3-7 (no overlongs, no surrogates,
 *   nothing above U+10FFFF).
 *
 * - Doubles and floats: see json_float.c.
 *
 * - json_reemit() is a validating, non-recursive re-emitter: an explicit bit
 *   stack of at most JSON_MAX_DEPTH levels, so hostile nesting is an error,
 *   never a stack overflow. String and number tokens are copied byte for byte.
 *
 * Limits: needs unsigned __int128 (GCC/Clang on 64-bit targets).
 * DECIMAL_DOUBLE uses strtod, which assumes the C locale's LC_NUMERIC (ingesta
 * never calls setlocale). Dates are written for years 0..9999 as four digits
 * and otherwise with as many digits as needed (negative years with '-');
 * callers keep to TYPES.md (years outside 1..9999 in the server's text form).
 */
#include "json.h"
#include "hex.h"
#include "json_internal.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JSON_MAX_DEPTH 10000

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* Write v in decimal ending just before `end`; returns the first digit. */
char *json_u64_digits(char *end, uint64_t v)
{
	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);

		v /= 100;
		end -= 2;
		memcpy(end, digit_pairs + 2 * r, 2);
	}
	if (v >= 10) {
		end -= 2;
		memcpy(end, digit_pairs + 2 * v, 2);
	} else {
		*--end = (char)('0' + v);
	}
	return end;
}

void json_uint64(struct buf *b, uint64_t v)
{
	char tmp[24];
	char *p = json_u64_digits(tmp + sizeof(tmp), v);

	buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void json_int64(struct buf *b, int64_t v)
{
	char tmp[24];
	char *p;

	if (v >= 0) {
		p = json_u64_digits(tmp + sizeof(tmp), (uint64_t)v);
	} else {
		/* 0 - (uint64_t)v is exact for INT64_MIN too. */
		p = json_u64_digits(tmp + sizeof(tmp), 0 - (uint64_t)v);
		*--p = '-';
	}
	buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* ---- UTF-8 and string escaping ---------------------------------------- */

/*
 * Byte classes: 0 copied as is, 1 must be escaped (U+0000..U+001F, '"', '\'),
 * 2 starts (or is a stray part of) a multi-byte sequence.
 */
static const uint8_t byte_class[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 2,
};

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/* True when none of the 8 bytes needs attention (all of class 0). */
static inline bool word_is_plain(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	uint64_t q = x ^ (ones * '"');
	uint64_t bs = x ^ (ones * '\\');
	uint64_t t = (x - ones * 0x20) | (q - ones) | (bs - ones);

	/* A byte < 0x20, == '"' or == '\\' sets its high bit in t while its own
	 * high bit is clear; any byte >= 0x80 is caught by x itself. */
	return (((t & ~x) | x) & highs) == 0;
}

/*
 * The well-formed sequence at p (avail > 0 bytes): returns its length (1..4),
 * or 0 and sets *bad to the length of the maximal subpart to replace (>= 1).
 */
static inline size_t utf8_seq(const uint8_t *p, size_t avail, size_t *bad)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4) {
		*bad = 1;
		return 0;
	}
	if (c < 0xe0) {
		need = 1;
	} else if (c < 0xf0) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else {
		need = 3;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* > U+10FFFF */
	}
	if (avail < 2 || p[1] < lo || p[1] > hi) {
		*bad = 1;
		return 0;
	}
	for (i = 2; i <= need; i++) {
		if (i >= avail || (p[i] & 0xc0) != 0x80) {
			*bad = i;
			return 0;
		}
	}
	return need + 1;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, len, bad;

	while (i < n) {
		while (n - i >= 8 && (load64(p + i) & 0x8080808080808080ULL) == 0)
			i += 8;
		if (i >= n)
			break;
		len = utf8_seq(p + i, n - i, &bad);
		if (len == 0)
			break;
		i += len;
	}
	return i;
}

static void put_escape(struct buf *b, uint8_t c)
{
	char e[6] = {'\\', 'u', '0', '0', 0, 0};

	switch (c) {
	case '"':
		buf_append(b, "\\\"", 2);
		return;
	case '\\':
		buf_append(b, "\\\\", 2);
		return;
	case '\n':
		buf_append(b, "\\n", 2);
		return;
	case '\t':
		buf_append(b, "\\t", 2);
		return;
	case '\r':
		buf_append(b, "\\r", 2);
		return;
	case '\b':
		buf_append(b, "\\b", 2);
		return;
	case '\f':
		buf_append(b, "\\f", 2);
		return;
	default:
		hex_put(e + 4, &c, 1);
		buf_append(b, e, 6);
	}
}

static const char replacement_char[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */

void json_string(struct buf *b, const char *s, size_t n, struct lossy *st)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, run = 0, len, bad;
	bool replaced = false;

	if (n == 0) {
		buf_append(b, "\"\"", 2);
		return;
	}
	buf_reserve(b, n + 2);
	b->data[b->len++] = '"';
	for (;;) {
		while (n - i >= 8 && word_is_plain(load64(p + i)))
			i += 8;
		while (i < n && byte_class[p[i]] == 0)
			i++;
		if (i >= n)
			break;
		if (byte_class[p[i]] == 1) {
			buf_append(b, s + run, i - run);
			put_escape(b, p[i]);
			run = ++i;
			continue;
		}
		len = utf8_seq(p + i, n - i, &bad);
		if (len > 0) {
			i += len;
			continue;
		}
		buf_append(b, s + run, i - run);
		buf_append(b, replacement_char, 3);
		i += bad;
		run = i;
		replaced = true;
	}
	buf_append(b, s + run, n - run);
	buf_putc(b, '"');
	if (replaced)
		st->invalid_utf8++;
}

/* ---- numbers as text ---------------------------------------------------- */

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Length of the RFC 8259 number at the start of s, 0 when there is none. */
static size_t number_len(const uint8_t *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < n && is_digit(s[i]))
			i++;
	} else {
		return 0;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !is_digit(s[i]))
			return 0;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return 0;
		while (i < n && is_digit(s[i]))
			i++;
	}
	return i;
}

bool json_is_number(const char *s, size_t n)
{
	return n > 0 && number_len((const uint8_t *)s, n) == n;
}

/* NaN, sNaN, Inf, Infinity in any case, with an optional sign. */
static bool is_nonfinite_text(const char *s, size_t n)
{
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		s++;
		n--;
	}
	return (n == 3 && strncasecmp(s, "nan", 3) == 0) ||
	       (n == 4 && strncasecmp(s, "snan", 4) == 0) ||
	       (n == 3 && strncasecmp(s, "inf", 3) == 0) ||
	       (n == 8 && strncasecmp(s, "infinity", 8) == 0);
}

void json_decimal(struct buf *b, const char *s, size_t n, enum decimal_mode mode, struct lossy *st)
{
	char small[128], *t;

	if (is_nonfinite_text(s, n)) {
		json_null(b);
		st->nonfinite++;
		return;
	}
	if (mode == DECIMAL_STRING || !json_is_number(s, n)) {
		json_string(b, s, n, st);
		return;
	}
	if (mode == DECIMAL_EXACT) {
		buf_append(b, s, n);
		return;
	}
	/* DECIMAL_DOUBLE: strtod needs a terminated copy; numeric can be long. */
	t = n < sizeof(small) ? small : xmalloc(n + 1);
	memcpy(t, s, n);
	t[n] = '\0';
	json_double(b, strtod(t, NULL), st);
	if (t != small)
		free(t);
}

/* ---- binary, hex, uuid ------------------------------------------------- */

static char *put_hex(char *o, const uint8_t *p, size_t n)
{
	return hex_put(o, p, n);
}

void json_hex_string(struct buf *b, const uint8_t *p, size_t n)
{
	char *o;

	buf_reserve(b, 2 * n + 2);
	o = b->data + b->len;
	*o++ = '"';
	o = put_hex(o, p, n);
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

static void json_base64(struct buf *b, const uint8_t *p, size_t n)
{
	static const char alphabet[64] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;
	char *o;

	buf_reserve(b, (n + 2) / 3 * 4 + 2);
	o = b->data + b->len;
	*o++ = '"';
	for (; n - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (n - i == 1) {
		*o++ = alphabet[p[i] >> 2];
		*o++ = alphabet[(p[i] & 3) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		*o++ = alphabet[p[i] >> 2];
		*o++ = alphabet[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = alphabet[(p[i + 1] & 15) << 2];
		*o++ = '=';
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

void json_binary(struct buf *b, const void *p, size_t n, enum binary_mode mode, struct lossy *st)
{
	switch (mode) {
	case BINARY_BASE64:
		json_base64(b, p, n);
		return;
	case BINARY_HEX:
		json_hex_string(b, p, n);
		return;
	case BINARY_UTF8:
		break;
	}
	json_string(b, p, n, st);
}

void json_uuid(struct buf *b, const uint8_t bytes[16])
{
	char *o;

	buf_reserve(b, 38);
	o = b->data + b->len;
	*o++ = '"';
	o = put_hex(o, bytes, 4);
	*o++ = '-';
	o = put_hex(o, bytes + 4, 2);
	*o++ = '-';
	o = put_hex(o, bytes + 6, 2);
	*o++ = '-';
	o = put_hex(o, bytes + 8, 2);
	*o++ = '-';
	o = put_hex(o, bytes + 10, 6);
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

/* ---- dates and times --------------------------------------------------- */

static char *put_padded(char *o, long long v, int width);

/* Two digits; values outside 0..99 (a caller's bug) still write digits. */
static char *put2(char *o, int v)
{
	if (v < 0 || v > 99)
		return put_padded(o, v, 2);
	memcpy(o, digit_pairs + 2 * v, 2);
	return o + 2;
}

/* At least `width` digits, '-' first when negative. */
static char *put_padded(char *o, long long v, int width)
{
	char tmp[24];
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char *p = json_u64_digits(tmp + sizeof(tmp), u);

	if (v < 0)
		*o++ = '-';
	for (int len = (int)(tmp + sizeof(tmp) - p); len < width; len++)
		*o++ = '0';
	memcpy(o, p, (size_t)(tmp + sizeof(tmp) - p));
	return o + (tmp + sizeof(tmp) - p);
}

static char *put_date(char *o, int year, int month, int day)
{
	if (year >= 0 && year <= 9999) {
		o = put2(o, year / 100);
		o = put2(o, year % 100);
	} else {
		o = put_padded(o, year, 4);
	}
	*o++ = '-';
	o = put2(o, month);
	*o++ = '-';
	return put2(o, day);
}

static char *put_usec(char *o, int usec)
{
	*o++ = '.';
	o = put2(o, usec / 10000);
	o = put2(o, usec / 100 % 100);
	return put2(o, usec % 100);
}

/* The buffers below hold the widest output of out-of-range ints too. */
void json_date(struct buf *b, int year, int month, int day)
{
	char tmp[48], *o = tmp;

	*o++ = '"';
	o = put_date(o, year, month, day);
	*o++ = '"';
	buf_append(b, tmp, (size_t)(o - tmp));
}

void json_datetime(struct buf *b, int year, int month, int day, int hour, int min, int sec,
                   int usec, bool utc_z)
{
	char tmp[160], *o = tmp;

	*o++ = '"';
	o = put_date(o, year, month, day);
	*o++ = 'T';
	o = put2(o, hour);
	*o++ = ':';
	o = put2(o, min);
	*o++ = ':';
	o = put2(o, sec);
	if (usec != 0)
		o = put_usec(o, usec);
	if (utc_z)
		*o++ = 'Z';
	*o++ = '"';
	buf_append(b, tmp, (size_t)(o - tmp));
}

void json_time(struct buf *b, bool negative, unsigned hours, int min, int sec, int usec)
{
	char tmp[128], *o = tmp;

	*o++ = '"';
	if (negative)
		*o++ = '-';
	o = put_padded(o, hours, 2);
	*o++ = ':';
	o = put2(o, min);
	*o++ = ':';
	o = put2(o, sec);
	if (usec != 0)
		o = put_usec(o, usec);
	*o++ = '"';
	buf_append(b, tmp, (size_t)(o - tmp));
}

void json_instant_usec(struct buf *b, int64_t unix_usec)
{
	const int64_t usec_per_day = 86400LL * 1000000;
	int64_t days = unix_usec / usec_per_day, rem = unix_usec % usec_per_day, y;
	int m, d, secs;

	if (rem < 0) {
		rem += usec_per_day;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	secs = (int)(rem / 1000000);
	json_datetime(b, (int)y, m, d, secs / 3600, secs / 60 % 60, secs % 60, (int)(rem % 1000000),
	              true);
}

/* ---- re-emitting JSON text --------------------------------------------- */

static inline bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * The re-emitted text is the input without the whitespace between tokens and
 * with invalid UTF-8 replaced: every other byte is copied as it is, in order.
 * So nothing is copied token by token: the input is validated in place and
 * copied in runs, s[*run..i) flushed only where whitespace is dropped or a
 * replacement goes in. Compact valid input (the common case: MySQL's and
 * jsonb's documents once their ", " and ": " are dropped, json columns written
 * compactly) is one memcpy per separator, or one in all.
 */
static inline void flush_run(struct buf *b, const uint8_t *s, size_t *run, size_t i)
{
	buf_append(b, s + *run, i - *run);
}

static inline void skip_ws(struct buf *b, const uint8_t *s, size_t n, size_t *pi, size_t *run)
{
	size_t i = *pi;

	if (i < n && is_ws(s[i])) {
		flush_run(b, s, run, i);
		while (i < n && is_ws(s[i]))
			i++;
		*run = i;
		*pi = i;
	}
}

/*
 * Validate the string token starting with the quote at s[*pi]; on success *pi
 * is past its closing quote. Invalid UTF-8 is replaced (flushing the run).
 * Returns NULL, or the reason it is invalid with *pi at the offending byte.
 */
static const char *reemit_string(struct buf *b, const uint8_t *s, size_t n, size_t *pi, size_t *run,
                                 bool *replaced)
{
	size_t start = *pi, i = start + 1, len, bad;

	for (;;) {
		while (n - i >= 8 && word_is_plain(load64(s + i)))
			i += 8;
		while (i < n && byte_class[s[i]] == 0)
			i++;
		if (i >= n) {
			*pi = start;
			return "unterminated string";
		}
		if (s[i] == '"') {
			*pi = i + 1;
			return NULL;
		}
		if (s[i] == '\\') {
			if (i + 1 >= n) {
				*pi = start;
				return "unterminated string";
			}
			if (strchr("\"\\/bfnrt", s[i + 1]) != NULL && s[i + 1] != '\0') {
				i += 2;
				continue;
			}
			if (s[i + 1] == 'u' && n - i >= 6 && hex_digit(s[i + 2]) >= 0 &&
			    hex_digit(s[i + 3]) >= 0 && hex_digit(s[i + 4]) >= 0 &&
			    hex_digit(s[i + 5]) >= 0) {
				i += 6;
				continue;
			}
			*pi = i;
			return "invalid escape in string";
		}
		if (s[i] < 0x20) {
			*pi = i;
			return "unescaped control character in string";
		}
		len = utf8_seq(s + i, n - i, &bad);
		if (len > 0) {
			i += len;
			continue;
		}
		flush_run(b, s, run, i);
		buf_append(b, replacement_char, 3);
		i += bad;
		*run = i;
		*replaced = true;
	}
}

enum reemit_state { EXPECT_VALUE, EXPECT_KEY, AFTER_VALUE };

int json_reemit(struct buf *b, const char *text, size_t n, struct lossy *st, struct ierr *e)
{
	const uint8_t *s = (const uint8_t *)text;
	uint8_t is_object[(JSON_MAX_DEPTH + 7) / 8]; /* bit per open container */
	size_t start = b->len, i = 0, run = 0, depth = 0, len;
	enum reemit_state state = EXPECT_VALUE;
	const char *why = NULL;
	bool replaced = false;

	buf_reserve(b, n);
	for (;;) {
		skip_ws(b, s, n, &i, &run);
		if (state == EXPECT_KEY) {
			if (i >= n || s[i] != '"') {
				why = "expected a string (object key)";
				break;
			}
			why = reemit_string(b, s, n, &i, &run, &replaced);
			if (why != NULL)
				break;
			skip_ws(b, s, n, &i, &run);
			if (i >= n || s[i] != ':') {
				why = "expected ':' after an object key";
				break;
			}
			i++;
			state = EXPECT_VALUE;
		} else if (state == AFTER_VALUE) {
			bool obj;

			if (depth == 0) {
				if (i < n)
					why = "unexpected data after the document";
				break;
			}
			obj = is_object[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
			if (i < n && s[i] == ',') {
				i++;
				state = obj ? EXPECT_KEY : EXPECT_VALUE;
			} else if (i < n && s[i] == (obj ? '}' : ']')) {
				i++;
				depth--;
			} else {
				why = obj ? "expected ',' or '}'" : "expected ',' or ']'";
				break;
			}
		} else if (i >= n) {
			why = "unexpected end of input, expected a value";
			break;
		} else if (s[i] == '{' || s[i] == '[') {
			uint8_t close = s[i] == '{' ? '}' : ']';
			uint8_t bit = (uint8_t)(1u << depth % 8);

			if (depth == JSON_MAX_DEPTH) {
				why = "nested deeper than 10000 levels";
				break;
			}
			if (close == '}')
				is_object[depth / 8] |= bit;
			else
				is_object[depth / 8] &= (uint8_t)~bit;
			depth++;
			i++;
			skip_ws(b, s, n, &i, &run);
			if (i < n && s[i] == close) {
				i++;
				depth--;
				state = AFTER_VALUE;
			} else {
				state = close == '}' ? EXPECT_KEY : EXPECT_VALUE;
			}
		} else if (s[i] == '"') {
			why = reemit_string(b, s, n, &i, &run, &replaced);
			if (why != NULL)
				break;
			state = AFTER_VALUE;
		} else if (s[i] == '-' || is_digit(s[i])) {
			len = number_len(s + i, n - i);
			if (len == 0) {
				why = "invalid number";
				break;
			}
			i += len;
			state = AFTER_VALUE;
		} else if (n - i >= 4 &&
		           (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
			i += 4;
			state = AFTER_VALUE;
		} else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
			i += 5;
			state = AFTER_VALUE;
		} else {
			why = "expected a value";
			break;
		}
	}
	if (why != NULL) {
		b->len = start;
		return ierr_set(e, IERR_SOURCE, "invalid JSON at byte %zu of %zu: %s", i, n, why);
	}
	flush_run(b, s, &run, i);
	if (replaced)
		st->invalid_utf8++;
	return 0;
}
