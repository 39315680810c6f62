/*
 * json_reemit_ref.c - the oracle of the differential tests of json_reemit():
 * json_reemit() as it was up to commit 20768e3 (token by token: every
 * structural character put, every string and number token appended), kept
 * verbatim with the helpers it used. The current json_reemit() copies runs of
 * the input instead and must give the same bytes, the same return value and
 * the same lossy counts for every input (tests/unit/test_json_reemit.c and
 * tests/fuzz/fuzz_json.c check it). Test code only; not linked into ingesta.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hex.h"
#include "json.h"
#include "json_reemit_ref.h"

#define JSON_MAX_DEPTH 10000

static const char replacement_char[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */

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

static inline bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * Copy the string token starting with the quote at s[*pi] to b. Returns NULL,
 * or the reason it is invalid with *pi at the offending byte.
 */
static const char *reemit_string(struct buf *b, const uint8_t *s, size_t n, size_t *pi,
                                 bool *replaced)
{
	size_t start = *pi, i = start + 1, run = start, len, bad;

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
			i++;
			buf_append(b, s + run, i - run);
			*pi = i;
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
		buf_append(b, s + run, i - run);
		buf_append(b, replacement_char, 3);
		i += bad;
		run = i;
		*replaced = true;
	}
}

enum ref_state { EXPECT_VALUE, EXPECT_KEY, AFTER_VALUE };

int json_reemit_ref(struct buf *b, const char *text, size_t n, struct lossy *st, struct ierr *e)
{
	const uint8_t *s = (const uint8_t *)text;
	uint8_t is_object[(JSON_MAX_DEPTH + 7) / 8]; /* bit per open container */
	size_t start = b->len, i = 0, depth = 0, len;
	enum ref_state state = EXPECT_VALUE;
	const char *why = NULL;
	bool replaced = false;

	buf_reserve(b, n);
	for (;;) {
		while (i < n && is_ws(s[i]))
			i++;
		if (state == EXPECT_KEY) {
			if (i >= n || s[i] != '"') {
				why = "expected a string (object key)";
				break;
			}
			why = reemit_string(b, s, n, &i, &replaced);
			if (why != NULL)
				break;
			while (i < n && is_ws(s[i]))
				i++;
			if (i >= n || s[i] != ':') {
				why = "expected ':' after an object key";
				break;
			}
			buf_putc(b, ':');
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
				buf_putc(b, ',');
				i++;
				state = obj ? EXPECT_KEY : EXPECT_VALUE;
			} else if (i < n && s[i] == (obj ? '}' : ']')) {
				buf_putc(b, (char)s[i]);
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
			buf_putc(b, (char)s[i++]);
			while (i < n && is_ws(s[i]))
				i++;
			if (i < n && s[i] == close) {
				buf_putc(b, (char)close);
				i++;
				depth--;
				state = AFTER_VALUE;
			} else {
				state = close == '}' ? EXPECT_KEY : EXPECT_VALUE;
			}
		} else if (s[i] == '"') {
			why = reemit_string(b, s, n, &i, &replaced);
			if (why != NULL)
				break;
			state = AFTER_VALUE;
		} else if (s[i] == '-' || is_digit(s[i])) {
			len = number_len(s + i, n - i);
			if (len == 0) {
				why = "invalid number";
				break;
			}
			buf_append(b, s + i, len);
			i += len;
			state = AFTER_VALUE;
		} else if (n - i >= 4 &&
		           (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
			buf_append(b, s + i, 4);
			i += 4;
			state = AFTER_VALUE;
		} else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
			buf_append(b, "false", 5);
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
	if (replaced)
		st->invalid_utf8++;
	return 0;
}
