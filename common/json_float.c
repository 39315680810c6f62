/*
 * json_float.c - doubles and 32-bit floats for the NDJSON writer (json.h).
 *
 * The shortest digits that read back to the same value, the closest one when
 * several have that length, laid out as ECMAScript Number.prototype.toString
 * (RFC 8785). Integers below 2^53 (2^24) are printed as integers; everything
 * else goes through Schubfach (below), integer arithmetic only, tens of
 * nanoseconds, no libc and no locale. The unit test checks it against a simple
 * printf/strtod reference and the round-trip, shortest and closest properties
 * on millions of values.
 *
 * Limits: needs unsigned __int128 (GCC/Clang on 64-bit targets).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "json_internal.h"

/* ---- doubles and floats ------------------------------------------------ */

/*
 * Schubfach (R. Giulietti, "The Schubfach way to render doubles", 2020). For
 * v = c * 2^q the decimals that read back to v are those in the rounding
 * interval R = [c - 1/2, c + 1/2] * 2^q (the lower half-gap is 1/4 at a power
 * of two; endpoints belong to R when c is even). With k = floor(log10(|R|)),
 * R holds at least one multiple of 10^k and at most one of 10^(k+1): the one
 * multiple of 10^(k+1), if any, is the shortest; otherwise the closer of
 * s * 10^k and (s + 1) * 10^k (s = floor(v / 10^k)) that lies in R is.
 *
 * v * 10^-k and the ends of R are computed as 4 * c * 2^q * g, where g is
 * 10^-k rounded up to 126 bits, and rounded to odd; the paper proves that the
 * comparisons above come out exact. The 617 values of g are computed once, on
 * first use, with a small big-number routine.
 *
 * The paper (and Java's Double.toString, which follow it) want at least two
 * digits, so they skip the 10^(k+1) test when s < 100 and compute the
 * smallest subnormals (c < 3, c < 8 for floats) as 10c * 10^-1. ECMAScript
 * wants the shortest, 5e-324 and (for floats) 1e-45, so here the test is made
 * at every magnitude and no value is rescaled; the unit test covers these
 * values one by one.
 */

#define POW10_K_MIN (-324) /* floor(log10(2^-1074)) */
#define POW10_K_MAX 292    /* floor(log10(2^971)) */

struct g126 {
	uint64_t hi; /* g = hi * 2^63 + lo, 2^125 < g < 2^126 */
	uint64_t lo;
};

static struct g126 pow10_g[POW10_K_MAX - POW10_K_MIN + 1]; /* for 10^-k at [k - K_MIN] */
static pthread_once_t pow10_g_once = PTHREAD_ONCE_INIT;

/* floor(q * log10(2)), floor(log10(3/4 * 2^q)), floor(e * log2(10)); checked
 * against exact arithmetic for q in -1200..1100 and e in -400..400, more than
 * the exponents of doubles need. */
static inline int flog10_pow2(int q)
{
	return (int)(((int64_t)q * 661971961083LL) >> 41);
}

static inline int flog10_three_quarters_pow2(int q)
{
	return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}

static inline int flog2_pow10(int e)
{
	return (int)(((int64_t)e * 913124641741LL) >> 38);
}

/* Just enough of a big unsigned integer for 5^324 (753 bits). */
struct bignum {
	uint32_t w[26]; /* little-endian 32-bit words */
	int n;
};

static void big_mul_small(struct bignum *a, uint32_t m)
{
	uint64_t carry = 0;

	for (int i = 0; i < a->n; i++) {
		uint64_t x = (uint64_t)a->w[i] * m + carry;

		a->w[i] = (uint32_t)x;
		carry = x >> 32;
	}
	if (carry)
		a->w[a->n++] = (uint32_t)carry;
}

static int big_bitlen(const struct bignum *a)
{
	return a->n == 0 ? 0 : 32 * (a->n - 1) + 32 - __builtin_clz(a->w[a->n - 1]);
}

static int big_bit(const struct bignum *a, int i)
{
	return i / 32 < a->n ? (int)(a->w[i / 32] >> (i % 32) & 1) : 0;
}

static int big_cmp(const struct bignum *a, const struct bignum *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (int i = a->n - 1; i >= 0; i--) {
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	}
	return 0;
}

/* a -= b, a >= b */
static void big_sub(struct bignum *a, const struct bignum *b)
{
	int64_t borrow = 0;

	for (int i = 0; i < a->n; i++) {
		int64_t x = (int64_t)a->w[i] - (i < b->n ? b->w[i] : 0) - borrow;

		borrow = x < 0;
		a->w[i] = (uint32_t)(x + (borrow << 32));
	}
	while (a->n > 0 && a->w[a->n - 1] == 0)
		a->n--;
}

static void big_shl1(struct bignum *a)
{
	uint32_t carry = 0;

	for (int i = 0; i < a->n; i++) {
		uint32_t x = a->w[i];

		a->w[i] = x << 1 | carry;
		carry = x >> 31;
	}
	if (carry)
		a->w[a->n++] = carry;
}

static void set_g(struct g126 *g, unsigned __int128 floor_value)
{
	unsigned __int128 v = floor_value + 1;

	g->hi = (uint64_t)(v >> 63);
	g->lo = (uint64_t)v & 0x7fffffffffffffffULL;
}

/* g(k) = floor(10^-k * 2^(125 - floor(log2(10^-k)))) + 1. */
static void pow10_g_init(void)
{
	struct bignum five = {{1}, 1}, d, r;
	unsigned __int128 f;

	/* 10^m, m = -k >= 0: 5^m * 2^(m + 125 - e), the top 126 bits of 5^m. */
	for (int m = 0; m <= -POW10_K_MIN; m++) {
		int sh = m + 125 - flog2_pow10(m);

		f = 0;
		if (sh >= 0) {
			for (int i = five.n - 1; i >= 0; i--)
				f = f << 32 | five.w[i];
			f <<= sh;
		} else {
			for (int i = 127; i >= 0; i--)
				f = f << 1 | (unsigned)big_bit(&five, i - sh);
		}
		set_g(&pow10_g[-m - POW10_K_MIN], f);
		big_mul_small(&five, 5);
	}
	/* 10^-j: floor(2^x / 5^j), x = 125 - e - j, by binary long division that
	 * starts where the quotient's leading 1 appears (2^L > 5^j >= 2^(L-1)). */
	d = (struct bignum){{1}, 1};
	for (int j = 1; j <= POW10_K_MAX; j++) {
		int x = 125 - flog2_pow10(-j) - j, len;

		big_mul_small(&d, 5);
		len = big_bitlen(&d);
		memset(&r, 0, sizeof(r));
		r.n = len / 32 + 1;
		r.w[len / 32] = 1u << len % 32; /* 2^len */
		big_sub(&r, &d);
		f = 1;
		for (int i = len; i < x; i++) {
			big_shl1(&r);
			f <<= 1;
			if (big_cmp(&r, &d) >= 0) {
				big_sub(&r, &d);
				f |= 1;
			}
		}
		set_g(&pow10_g[j - POW10_K_MIN], f);
	}
}

/* Round to odd of g * cp / 2^127 (doubles). */
static inline uint64_t round_to_odd_127(const struct g126 *g, uint64_t cp)
{
	unsigned __int128 x = (unsigned __int128)g->lo * cp, y = (unsigned __int128)g->hi * cp;
	uint64_t z = ((uint64_t)y >> 1) + (uint64_t)(x >> 64);
	uint64_t vbp = (uint64_t)(y >> 64) + (z >> 63);

	return vbp | (((z & 0x7fffffffffffffffULL) + 0x7fffffffffffffffULL) >> 63);
}

/* Round to odd of g * cp / 2^95 with a 64-bit g (floats). */
static inline uint64_t round_to_odd_95(uint64_t g, uint64_t cp)
{
	uint64_t x1 = (uint64_t)(((unsigned __int128)g * cp) >> 64);

	return x1 >> 31 | (((x1 & 0xffffffffULL) + 0xffffffffULL) >> 32);
}

/*
 * The shortest decimal f * 10^*e10 in the rounding interval of c * 2^q
 * (closest to it when there are two). c_min is the hidden bit (2^52 or 2^23),
 * q_min the subnormal exponent; single picks the 64-bit g for floats.
 */
static uint64_t schubfach(uint64_t c, int q, uint64_t c_min, int q_min, bool single, int *e10)
{
	uint64_t out = c & 1; /* the ends of R are excluded when c is odd */
	uint64_t cb = c << 2, cbr = cb + 2, cbl, vb, vbl, vbr, s, t, sp10, tp10;
	int64_t cmp;
	int k, h;
	bool uin, win;

	if (c != c_min || q == q_min) {
		cbl = cb - 2;
		k = flog10_pow2(q);
	} else {
		cbl = cb - 1; /* at a power of two the gap below is half as wide */
		k = flog10_three_quarters_pow2(q);
	}
	h = q + flog2_pow10(-k);
	if (single) {
		uint64_t g = pow10_g[k - POW10_K_MIN].hi + 1;

		vb = round_to_odd_95(g, cb << (h + 33));
		vbl = round_to_odd_95(g, cbl << (h + 33));
		vbr = round_to_odd_95(g, cbr << (h + 33));
	} else {
		const struct g126 *g = &pow10_g[k - POW10_K_MIN];

		vb = round_to_odd_127(g, cb << (h + 2));
		vbl = round_to_odd_127(g, cbl << (h + 2));
		vbr = round_to_odd_127(g, cbr << (h + 2));
	}
	*e10 = k;
	s = vb >> 2;
	/* A multiple of 10^(k+1) in R: one digit shorter than any other. */
	sp10 = s / 10 * 10;
	tp10 = sp10 + 10;
	uin = vbl + out <= sp10 << 2;
	win = (tp10 << 2) + out <= vbr;
	if (uin != win)
		return uin ? sp10 : tp10;
	t = s + 1;
	uin = vbl + out <= s << 2;
	win = (t << 2) + out <= vbr;
	if (uin != win)
		return uin ? s : t;
	/* Both in R: the closer one, the even one on a tie. */
	cmp = (int64_t)(vb - ((s + t) << 1));

	return cmp < 0 || (cmp == 0 && (s & 1) == 0) ? s : t;
}

/* A positive decimal 0.D * 10^n with k digits D (no trailing zeros). */
struct shortest {
	char dig[24];
	int k;
	int n;
};

/* D from m * 10^scale (m > 0), trailing zeros dropped. */
static void shortest_from_int(struct shortest *r, uint64_t m, int scale)
{
	char tmp[24];
	char *p = json_u64_digits(tmp + sizeof(tmp), m);
	int len = (int)(tmp + sizeof(tmp) - p);

	r->n = len + scale;
	while (len > 1 && p[len - 1] == '0')
		len--;
	memcpy(r->dig, p, (size_t)len);
	r->k = len;
}

/* ECMAScript Number::toString layout of [-]0.D * 10^n. */
static size_t ecma_layout(char *out, bool neg, const struct shortest *r)
{
	char *o = out;
	int k = r->k, n = r->n;

	if (neg)
		*o++ = '-';
	if (k <= n && n <= 21) {
		memcpy(o, r->dig, (size_t)k);
		o += k;
		memset(o, '0', (size_t)(n - k));
		o += n - k;
	} else if (0 < n && n <= 21) {
		memcpy(o, r->dig, (size_t)n);
		o += n;
		*o++ = '.';
		memcpy(o, r->dig + n, (size_t)(k - n));
		o += k - n;
	} else if (-6 < n && n <= 0) {
		*o++ = '0';
		*o++ = '.';
		memset(o, '0', (size_t)-n);
		o += -n;
		memcpy(o, r->dig, (size_t)k);
		o += k;
	} else {
		int e = n - 1;
		char tmp[8];
		char *p;

		*o++ = r->dig[0];
		if (k > 1) {
			*o++ = '.';
			memcpy(o, r->dig + 1, (size_t)(k - 1));
			o += k - 1;
		}
		*o++ = 'e';
		*o++ = e < 0 ? '-' : '+';
		p = json_u64_digits(tmp + sizeof(tmp), (uint64_t)(e < 0 ? -e : e));
		memcpy(o, p, (size_t)(tmp + sizeof(tmp) - p));
		o += tmp + sizeof(tmp) - p;
	}
	*o = '\0';
	return (size_t)(o - out);
}

/*
 * Shared by doubles (mant_bits 52, bias 1075) and floats (23, 150): c * 2^q
 * from the fields, integers below 2^(mant_bits + 1) printed directly.
 */
static size_t format_binary(char *out, bool neg, int biased, uint64_t frac, int mant_bits, int bias,
                            bool single)
{
	uint64_t c_min = 1ULL << mant_bits, c, f;
	int q_min = 1 - bias, q, e10;
	struct shortest r;

	if (biased == 0 && frac == 0) {
		memcpy(out, "0", 2);
		return 1;
	}
	if (biased == 0) {
		c = frac;
		q = q_min;
	} else {
		c = c_min | frac;
		q = biased - bias;
	}
	if (q <= 0 && q > -mant_bits - 1 && (c & ((1ULL << -q) - 1)) == 0) {
		shortest_from_int(&r, c >> -q, 0);
		return ecma_layout(out, neg, &r);
	}
	pthread_once(&pow10_g_once, pow10_g_init);
	f = schubfach(c, q, c_min, q_min, single, &e10);
	shortest_from_int(&r, f, e10);
	return ecma_layout(out, neg, &r);
}

size_t json_format_double(char *out, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if ((bits >> 52 & 0x7ff) == 0x7ff) {
		memcpy(out, "null", 5);
		return 4;
	}
	return format_binary(out, bits >> 63, (int)(bits >> 52 & 0x7ff), bits & ((1ULL << 52) - 1),
	                     52, 1075, false);
}

size_t json_format_float(char *out, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if ((bits >> 23 & 0xff) == 0xff) {
		memcpy(out, "null", 5);
		return 4;
	}
	return format_binary(out, bits >> 31, (int)(bits >> 23 & 0xff), bits & ((1u << 23) - 1), 23,
	                     150, true);
}

void json_double(struct buf *b, double v, struct lossy *st)
{
	if (!isfinite(v)) {
		json_null(b);
		st->nonfinite++;
		return;
	}
	buf_reserve(b, 32);
	b->len += json_format_double(b->data + b->len, v);
}

void json_float(struct buf *b, float v, struct lossy *st)
{
	if (!isfinite(v)) {
		json_null(b);
		st->nonfinite++;
		return;
	}
	buf_reserve(b, 32);
	b->len += json_format_float(b->data + b->len, v);
}
