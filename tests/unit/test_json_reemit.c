/*
 * test_json_reemit.c - the differential test of json_reemit(): for every input
 * it must give what the token-by-token re-emitter it replaced gives
 * (tests/fuzz/ref/json_reemit_ref.c): the same return value, the same bytes
 * after whatever the buffer held before, the same error message and the same
 * lossy counts. Inputs: JSON documents in the forms the servers send (compact,
 * jsonb's ", " / ": ", pretty-printed, with duplicate keys, escapes, numbers of
 * every form, invalid UTF-8), then 300,000 random mutations of them (bytes
 * inserted, deleted, replaced, whitespace added). And the copy-through case:
 * compact valid text comes out as exactly its input.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "json_reemit_ref.h"
#include "testlib.h"

static const char *const seeds[] = {
    "{\"a\":1,\"b\":[true,null,\"x\\u00e9\\n\"],\"c\":{\"d\":-0.0,\"e\":1E2,\"f\":2.50}}",
    "{\"k\": 469929, \"ok\": false, \"tag\": \"\xc3\xa9"
    "9\", \"list\": [4, \"x\"]}",
    "{\"s\": \"a, b: c\", \"t\": [\"x, y\", {\"u\": \": \", \"v\": \" ,\"}], \"w\": \"{\\\"x\\\": "
    "1}\"}",
    "{ \"k\" : 1 ,\n\t\"k\":2 , \"e\":\"\\u0000\\ud83d\\ude00 ok\" ,\r\n \"n\" : [ 1E2 , -0.0 , "
    "2.50 ] }\n",
    "[1, -2.5e-3, 0, 1e+300, 12345678901234567890123, \"\xf0\x9f\x8e\x89\", \"\\/\\b\\f\\r\\t\"]",
    "{\n  \"deep\": {\n    \"er\": [\n      [],\n      {}\n    ]\n  }\n}",
    "\"just a string with \xff bad \xc3 bytes \xed\xa0\x80 and a surrogate\"",
    "  true  ",
    "null",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"\": \"\", \"x\": [\"\", [], {}]}",
};

static size_t n_seeds(void)
{
	return sizeof(seeds) / sizeof(seeds[0]);
}

/* Compare json_reemit with the reference on s[0..n), each after a prefix. */
static int valid_inputs;

static void same_as_ref(const char *s, size_t n)
{
	struct buf a = {0}, b = {0};
	struct lossy la = {0}, lb = {0};
	struct ierr ea = {0}, eb = {0};
	int ra, rb;

	buf_append(&a, "prefix:", 7);
	buf_append(&b, "prefix:", 7);
	ra = json_reemit(&a, s, n, &la, &ea);
	rb = json_reemit_ref(&b, s, n, &lb, &eb);
	CHECK(ra == rb);
	valid_inputs += ra == 0;
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	CHECK(memcmp(&la, &lb, sizeof(la)) == 0);
	if (ra != 0)
		CHECK_STR(ea.msg, eb.msg);
	if (ra != rb || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		fprintf(stderr, "differs on \"%.*s\"\n", (int)(n > 200 ? 200 : n), s);
	buf_free(&a);
	buf_free(&b);
}

/* Bytes that steer the scanner: structure, escapes, whitespace, digits,
 * exponent and sign characters, a control byte, UTF-8 lead and stray bytes. */
static const char alphabet[] = "{}[]:,\"\\ \n\t\r0123456789.eE+-tfnulrsa/u\x01\xc3\xa9\xf0\x9f\xed"
                               "\xa0\x80\xff";

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static size_t mutate(char *out, size_t cap, const char *in, size_t n)
{
	size_t len = n < cap ? n : cap;
	int edits = 1 + (int)(next_rand() % 4);

	memcpy(out, in, len);
	while (edits-- > 0) {
		size_t at = len ? next_rand() % (len + 1) : 0;
		char c = alphabet[next_rand() % (sizeof(alphabet) - 1)];

		switch (next_rand() % 4) {
		case 0: /* insert */
			if (len < cap) {
				memmove(out + at + 1, out + at, len - at);
				out[at] = c;
				len++;
			}
			break;
		case 1: /* delete */
			if (at < len) {
				memmove(out + at, out + at + 1, len - at - 1);
				len--;
			}
			break;
		case 2: /* replace */
			if (at < len)
				out[at] = c;
			break;
		default: /* whitespace, which only the re-emitter drops */
			if (len < cap) {
				memmove(out + at + 1, out + at, len - at);
				out[at] = " \n\t\r"[next_rand() % 4];
				len++;
			}
			break;
		}
	}
	return len;
}

/* Compact valid text is copied through: output == input, nothing counted. */
static void test_copy_through(void)
{
	const char *compact[] = {seeds[0], "{\"n\":[100,0.0,2.50],\"big\":1.5,\"e\":\"\\t\"}", "[]",
	                         "\"\xe6\x97\xa5\"", "-0"};

	for (size_t i = 0; i < sizeof(compact) / sizeof(compact[0]); i++) {
		struct buf b = {0};
		struct lossy st = {0};
		struct ierr e;
		size_t n = strlen(compact[i]);

		CHECK(json_reemit(&b, compact[i], n, &st, &e) == 0);
		CHECK(b.len == n && memcmp(b.data, compact[i], n) == 0);
		CHECK(st.invalid_utf8 == 0);
		buf_free(&b);
	}
}

int main(void)
{
	char m[512], m2[256];
	int cases = 0;

	test_copy_through();
	for (size_t i = 0; i < n_seeds(); i++) {
		same_as_ref(seeds[i], strlen(seeds[i]));
		/* every prefix: each error path at each position */
		for (size_t k = 0; k < strlen(seeds[i]); k++)
			same_as_ref(seeds[i], k);
	}
	for (int r = 0; r < 300000; r++) {
		const char *s = seeds[next_rand() % n_seeds()];
		size_t n = mutate(m, sizeof(m), s, strlen(s));

		/* and mutations of mutations */
		if (r % 3 == 0) {
			size_t k = n < sizeof(m2) ? n : sizeof(m2);

			memcpy(m2, m, k);
			n = mutate(m, sizeof(m), m2, k);
		}
		same_as_ref(m, n);
		cases++;
	}
	fprintf(stderr, "%d mutated inputs; %d of all inputs valid JSON\n", cases, valid_inputs);
	CHECK(valid_inputs > cases / 10); /* the mutations keep many documents valid */
	return test_done();
}
