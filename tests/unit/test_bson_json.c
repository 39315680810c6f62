/*
 * test_bson_json.c - the BSON -> JSON converter against tests/golden and
 * against documents built with the libbson API, one per BSON type.
 *
 * The golden inputs are Extended JSON, one document per line, parsed by
 * libbson's own parser (bson_new_from_json), so the documents under test are
 * built by code no one here wrote. The golden directory comes from
 * $INGESTA_GOLDEN (set by tests/unit/meson.build).
 */
#include <bson/bson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bson_json.h"
#include "testlib.h"

static const struct norm_opts default_opts = {DECIMAL_EXACT, BINARY_UTF8};

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = {0};
	char chunk[65536];
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	buf_cstr(&b);
	return b.data;
}

/* Convert every line of <name>.input.json and compare with <name>.ndjson. */
static void check_golden(const char *dir, const char *name, const struct lossy *want)
{
	char path[4096];
	size_t in_len = 0, want_len = 0;
	char *in, *expect;
	struct buf out = {0};
	struct lossy st = {0};
	const char *line;
	int docs = 0;

	snprintf(path, sizeof(path), "%s/%s.input.json", dir, name);
	in = read_file(path, &in_len);
	snprintf(path, sizeof(path), "%s/%s.ndjson", dir, name);
	expect = read_file(path, &want_len);
	CHECK(in != NULL && expect != NULL);
	if (in == NULL || expect == NULL)
		goto done;

	line = in;
	while (line < in + in_len) {
		const char *nl = memchr(line, '\n', (size_t)(in + in_len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(in + in_len - line);
		bson_error_t berr;
		struct ierr e = {0};
		bson_t *doc;

		if (n > 0) {
			doc = bson_new_from_json((const uint8_t *)line, (ssize_t)n, &berr);
			CHECK(doc != NULL);
			if (doc == NULL) {
				fprintf(stderr, "%s line %d: %s\n", name, docs + 1, berr.message);
				goto done;
			}
			CHECK(bson_to_json(&out, doc, &default_opts, &st, &e) == 0);
			buf_putc(&out, '\n');
			bson_destroy(doc);
			docs++;
		}
		line += n + 1;
	}
	test_checks++;
	if (out.len != want_len || memcmp(out.data, expect, want_len) != 0) {
		test_failures++;
		fprintf(stderr, "golden %s differs:\n--- got\n%.*s--- want\n%.*s", name,
		        (int)out.len, out.data, (int)want_len, expect);
	}
	CHECK(st.nonfinite == want->nonfinite);
	CHECK(st.invalid_utf8 == want->invalid_utf8);
	CHECK(docs > 0);
done:
	free(in);
	free(expect);
	buf_free(&out);
}

/* One document -> its JSON, as a NUL-terminated string owned by a static buffer. */
static const char *conv(const bson_t *doc, const struct norm_opts *o, struct lossy *st)
{
	static struct buf out;
	struct ierr e = {0};

	buf_reset(&out);
	if (bson_to_json(&out, doc, o, st, &e) != 0) {
		fprintf(stderr, "bson_to_json failed: %s\n", e.msg);
		return NULL;
	}
	return buf_cstr(&out);
}

static const char *conv1(const bson_t *doc)
{
	struct lossy st = {0};

	return conv(doc, &default_opts, &st);
}

static void test_scalars(void)
{
	bson_t doc = BSON_INITIALIZER;
	bson_decimal128_t dec;
	struct lossy st = {0};

	BSON_APPEND_INT32(&doc, "i32min", INT32_MIN);
	BSON_APPEND_INT64(&doc, "i64min", INT64_MIN);
	BSON_APPEND_INT64(&doc, "i64max", INT64_MAX);
	BSON_APPEND_DOUBLE(&doc, "three", 3.0);
	BSON_APPEND_DOUBLE(&doc, "negzero", -0.0);
	BSON_APPEND_DOUBLE(&doc, "tiny", 1.5e-5);
	BSON_APPEND_DOUBLE(&doc, "pinf", HUGE_VAL);
	BSON_APPEND_BOOL(&doc, "f", false);
	BSON_APPEND_NULL(&doc, "n");
	BSON_APPEND_UNDEFINED(&doc, "u");
	BSON_APPEND_MAXKEY(&doc, "max");
	BSON_APPEND_MINKEY(&doc, "min");
	BSON_APPEND_SYMBOL(&doc, "sym", "a symbol");
	BSON_APPEND_CODE(&doc, "code", "function(){return 1}");
	bson_append_utf8(&doc, "nul", -1, "a\0b\x1f", 4);
	CHECK(bson_decimal128_from_string("NaN", &dec));
	BSON_APPEND_DECIMAL128(&doc, "dnan", &dec);
	CHECK(bson_decimal128_from_string("-Infinity", &dec));
	BSON_APPEND_DECIMAL128(&doc, "dninf", &dec);
	CHECK(bson_decimal128_from_string("1E+10", &dec));
	BSON_APPEND_DECIMAL128(&doc, "d1e10", &dec);
	CHECK(bson_decimal128_from_string("1.0E+10", &dec));
	BSON_APPEND_DECIMAL128(&doc, "d10e9", &dec);
	CHECK(bson_decimal128_from_string("-0.000000001", &dec));
	BSON_APPEND_DECIMAL128(&doc, "dsmall", &dec);
	CHECK(bson_decimal128_from_string("1234567890123456789012345678901234", &dec));
	BSON_APPEND_DECIMAL128(&doc, "d34", &dec);

	CHECK_STR(conv(&doc, &default_opts, &st),
	          "{\"i32min\":-2147483648,\"i64min\":-9223372036854775808,"
	          "\"i64max\":9223372036854775807,\"three\":3,\"negzero\":0,\"tiny\":0.000015,"
	          "\"pinf\":null,\"f\":false,\"n\":null,\"u\":null,\"max\":{\"$maxKey\":1},"
	          "\"min\":{\"$minKey\":1},\"sym\":\"a symbol\",\"code\":\"function(){return 1}\","
	          "\"nul\":\"a\\u0000b\\u001f\",\"dnan\":null,\"dninf\":null,\"d1e10\":1E+10,"
	          "\"d10e9\":1.0E+10,\"dsmall\":-1E-9,"
	          "\"d34\":1234567890123456789012345678901234}");
	CHECK(st.nonfinite == 3);
	CHECK(st.invalid_utf8 == 0);
	bson_destroy(&doc);
}

static void test_decimal_modes(void)
{
	bson_t doc = BSON_INITIALIZER;
	bson_decimal128_t dec;
	struct norm_opts dbl = {DECIMAL_DOUBLE, BINARY_UTF8};
	struct norm_opts str = {DECIMAL_STRING, BINARY_UTF8};
	struct lossy st = {0};

	CHECK(bson_decimal128_from_string("12.50", &dec));
	BSON_APPEND_DECIMAL128(&doc, "d", &dec);
	CHECK_STR(conv1(&doc), "{\"d\":12.50}");
	CHECK_STR(conv(&doc, &dbl, &st), "{\"d\":12.5}");
	CHECK_STR(conv(&doc, &str, &st), "{\"d\":\"12.50\"}");
	bson_destroy(&doc);
}

static void test_binary(void)
{
	static const uint8_t uuid[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
	                                 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
	static const uint8_t bad[2] = {'a', 0xff};
	bson_t doc = BSON_INITIALIZER;
	struct norm_opts hex = {DECIMAL_EXACT, BINARY_HEX};
	struct norm_opts b64 = {DECIMAL_EXACT, BINARY_BASE64};
	struct lossy st = {0};

	bson_append_binary(&doc, "b0", -1, BSON_SUBTYPE_BINARY, (const uint8_t *)"hello", 5);
	bson_append_binary(&doc, "b3", -1, BSON_SUBTYPE_UUID_DEPRECATED, uuid, 16);
	bson_append_binary(&doc, "b4", -1, BSON_SUBTYPE_UUID, uuid, 16);
	bson_append_binary(&doc, "b4short", -1, BSON_SUBTYPE_UUID, uuid, 4);
	bson_append_binary(&doc, "b5", -1, BSON_SUBTYPE_MD5, (const uint8_t *)"hi", 2);
	bson_append_binary(&doc, "bad", -1, BSON_SUBTYPE_BINARY, bad, 2);

	CHECK_STR(conv(&doc, &hex, &st),
	          "{\"b0\":\"68656c6c6f\",\"b3\":\"a0eebc999c0b4ef8bb6d6bb9bd380a11\","
	          "\"b4\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\",\"b4short\":\"a0eebc99\","
	          "\"b5\":\"6869\",\"bad\":\"61ff\"}");
	CHECK(st.invalid_utf8 == 0);
	CHECK_STR(conv(&doc, &b64, &st),
	          "{\"b0\":\"aGVsbG8=\",\"b3\":\"oO68mZwLTvi7bWu5vTgKEQ==\","
	          "\"b4\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\",\"b4short\":\"oO68mQ==\","
	          "\"b5\":\"aGk=\",\"bad\":\"Yf8=\"}");
	bson_destroy(&doc);

	/* utf8 mode (the default): subtype 3 is bytes like any other. */
	bson_init(&doc);
	bson_append_binary(&doc, "b0", -1, BSON_SUBTYPE_BINARY, (const uint8_t *)"hello", 5);
	bson_append_binary(&doc, "b3", -1, BSON_SUBTYPE_UUID_DEPRECATED,
	                   (const uint8_t *)"0123456789abcdef", 16);
	bson_append_binary(&doc, "bad", -1, BSON_SUBTYPE_BINARY, bad, 2);
	memset(&st, 0, sizeof(st));
	CHECK_STR(conv(&doc, &default_opts, &st),
	          "{\"b0\":\"hello\",\"b3\":\"0123456789abcdef\",\"bad\":\"a\xef\xbf\xbd\"}");
	CHECK(st.invalid_utf8 == 1);
	bson_destroy(&doc);
}

static void test_other_types(void)
{
	bson_t doc = BSON_INITIALIZER;
	bson_t scope = BSON_INITIALIZER;
	bson_oid_t oid;

	bson_oid_init_from_string(&oid, "652f1a2b3c4d5e6f70819203");
	BSON_APPEND_OID(&doc, "_id", &oid);
	BSON_APPEND_INT32(&scope, "x", 1);
	BSON_APPEND_CODE_WITH_SCOPE(&doc, "cws", "function(){return x}", &scope);
	bson_append_dbpointer(&doc, "ptr", -1, "db.co\"ll", &oid);
	BSON_APPEND_REGEX(&doc, "re", "a\"b/c\\d", "i");
	BSON_APPEND_REGEX(&doc, "renoflags", "^x$", "");
	BSON_APPEND_TIMESTAMP(&doc, "ts", 1759674600, 7);
	BSON_APPEND_DATE_TIME(&doc, "dt", 1759674600123);
	BSON_APPEND_DATE_TIME(&doc, "dtneg", -1);
	BSON_APPEND_DATE_TIME(&doc, "dtmin", -62135596800000LL);
	BSON_APPEND_DATE_TIME(&doc, "dtmax", 253402300799999LL);
	BSON_APPEND_DATE_TIME(&doc, "dtlow", -62135596800001LL);
	BSON_APPEND_DATE_TIME(&doc, "dthigh", 253402300800000LL);
	BSON_APPEND_DATE_TIME(&doc, "dtbc", -62167305599999LL);
	BSON_APPEND_DATE_TIME(&doc, "dtmax64", INT64_MAX);
	BSON_APPEND_DATE_TIME(&doc, "dtmin64", INT64_MIN);

	CHECK_STR(
	    conv1(&doc),
	    "{\"_id\":\"652f1a2b3c4d5e6f70819203\",\"cws\":\"function(){return x}\","
	    "\"ptr\":{\"$dbPointer\":{\"$ref\":\"db.co\\\"ll\","
	    "\"$id\":{\"$oid\":\"652f1a2b3c4d5e6f70819203\"}}},"
	    "\"re\":\"/a\\\"b/c\\\\d/i\",\"renoflags\":\"/^x$/\","
	    "\"ts\":\"2025-10-05T14:30:00Z\",\"dt\":\"2025-10-05T14:30:00.123000Z\","
	    "\"dtneg\":\"1969-12-31T23:59:59.999000Z\",\"dtmin\":\"0001-01-01T00:00:00Z\","
	    "\"dtmax\":\"9999-12-31T23:59:59.999000Z\","
	    "\"dtlow\":\"0000-12-31T23:59:59.999000Z\",\"dthigh\":\"+010000-01-01T00:00:00Z\","
	    "\"dtbc\":\"-000001-12-31T00:00:00.001000Z\","
	    "\"dtmax64\":\"+292278994-08-17T07:12:55.807000Z\","
	    "\"dtmin64\":\"-292275055-05-16T16:47:04.192000Z\"}");
	bson_destroy(&scope);
	bson_destroy(&doc);
}

static void test_keys_and_nesting(void)
{
	bson_t doc = BSON_INITIALIZER;
	bson_t child, inner;
	struct lossy st = {0};

	CHECK_STR(conv1(&doc), "{}");
	BSON_APPEND_INT32(&doc, "q\"uo\\te\n", 1);
	BSON_APPEND_INT32(&doc, "bad\xff", 2);
	BSON_APPEND_INT32(&doc, "日本", 3);
	BSON_APPEND_ARRAY_BEGIN(&doc, "arr", &child);
	BSON_APPEND_ARRAY_BEGIN(&child, "0", &inner);
	BSON_APPEND_INT32(&inner, "0", 1);
	bson_append_array_end(&child, &inner);
	BSON_APPEND_DOCUMENT_BEGIN(&child, "1", &inner);
	bson_append_document_end(&child, &inner);
	BSON_APPEND_ARRAY_BEGIN(&child, "2", &inner);
	bson_append_array_end(&child, &inner);
	bson_append_array_end(&doc, &child);
	CHECK_STR(conv(&doc, &default_opts, &st),
	          "{\"q\\\"uo\\\\te\\n\":1,\"bad\xef\xbf\xbd\":2,\"日本\":3,\"arr\":[[1],{},[]]}");
	CHECK(st.invalid_utf8 == 1);
	bson_destroy(&doc);
}

/* {"a":{"a":...{}...}} with `depth` keys, built as raw bytes: linear time. */
static uint8_t *nested_raw(size_t depth, size_t *out_len)
{
	size_t total = 5 + 8 * depth;
	uint8_t *p = malloc(total);
	size_t off = 0;

	for (size_t k = 0; k <= depth; k++) {
		uint32_t len = (uint32_t)(total - 8 * k);

		p[off++] = (uint8_t)len;
		p[off++] = (uint8_t)(len >> 8);
		p[off++] = (uint8_t)(len >> 16);
		p[off++] = (uint8_t)(len >> 24);
		if (k < depth) {
			p[off++] = BSON_TYPE_DOCUMENT;
			p[off++] = 'a';
			p[off++] = 0;
		}
	}
	for (size_t k = 0; k <= depth; k++)
		p[off++] = 0;
	*out_len = off;
	return p;
}

static void test_deep(void)
{
	size_t len = 0;
	uint8_t *raw;
	bson_t doc;
	struct buf out = {0};
	struct buf want = {0};
	struct lossy st = {0};
	struct ierr e = {0};

	raw = nested_raw(2000, &len);
	CHECK(bson_init_static(&doc, raw, len));
	for (int i = 0; i < 2000; i++)
		buf_puts(&want, "{\"a\":");
	buf_puts(&want, "{}");
	for (int i = 0; i < 2000; i++)
		buf_putc(&want, '}');
	CHECK(bson_to_json(&out, &doc, &default_opts, &st, &e) == 0);
	CHECK(out.len == want.len && memcmp(out.data, want.data, want.len) == 0);
	free(raw);

	/* Far past the limit: an error naming the field, the buffer untouched. */
	raw = nested_raw(200000, &len);
	CHECK(bson_init_static(&doc, raw, len));
	buf_reset(&out);
	buf_puts(&out, "keep");
	CHECK(bson_to_json(&out, &doc, &default_opts, &st, &e) == -1);
	CHECK(e.code == IERR_SOURCE);
	CHECK(strstr(e.msg, "field \"a\"") != NULL);
	CHECK(strstr(e.msg, "nested deeper than 10000") != NULL);
	CHECK(out.len == 4);
	free(raw);
	buf_free(&out);
	buf_free(&want);
}

static void test_corrupt(void)
{
	/* {"s": "ab"} with the string length claiming 100 bytes. */
	static const uint8_t bad_str[] = {0x0f, 0,   0, 0, BSON_TYPE_UTF8, 's', 0, 100, 0, 0, 0,
	                                  'a',  'b', 0, 0};
	/* {"x": 1, <type 0x77> "y": ...}: an undefined type byte after a good field. */
	static const uint8_t bad_type[] = {
	    0x14, 0, 0, 0, BSON_TYPE_INT32, 'x', 0, 1, 0, 0, 0, 0x77, 'y', 0, 1, 0, 0, 0, 0, 0};
	/* {"d": {...}} whose embedded document's length overruns its parent. */
	static const uint8_t bad_sub[] = {0x0d, 0, 0, 0, BSON_TYPE_DOCUMENT, 'd', 0, 0x40, 0,
	                                  0,    0, 0, 0};
	const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
	    {bad_str, sizeof(bad_str)},
	    {bad_type, sizeof(bad_type)},
	    {bad_sub, sizeof(bad_sub)},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bson_t doc;
		struct buf out = {0};
		struct lossy st = {0};
		struct ierr e = {0};

		CHECK(bson_init_static(&doc, cases[i].p, cases[i].n));
		CHECK(bson_to_json(&out, &doc, &default_opts, &st, &e) == -1);
		CHECK(e.code == IERR_SOURCE && strstr(e.msg, "corrupt BSON") != NULL);
		CHECK(out.len == 0);
		buf_free(&out);
	}
}

int main(void)
{
	const char *golden = getenv("INGESTA_GOLDEN");
	struct lossy want_bson_only = {.nonfinite = 3};
	struct lossy want_mongodb = {.invalid_utf8 = 1};

	CHECK(golden != NULL);
	if (golden != NULL) {
		check_golden(golden, "bson-only", &want_bson_only);
		check_golden(golden, "mongodb", &want_mongodb);
	} else {
		fprintf(stderr, "INGESTA_GOLDEN not set: golden cases not checked\n");
	}
	test_scalars();
	test_decimal_modes();
	test_binary();
	test_other_types();
	test_keys_and_nesting();
	test_deep();
	test_corrupt();
	return test_done();
}
