/*
 * fuzz_json.c - libFuzzer target for the NDJSON value writers
 * (collector/json.c): json_string, json_decimal, json_binary, json_reemit,
 * json_double/json_float and json_is_number.
 *
 * The first input byte picks the writer; the rest is its input. Oracles:
 * every output is valid JSON and valid UTF-8 (checked with json_reemit and
 * utf8_valid_prefix), json_reemit is idempotent, doubles and floats read back
 * (strtod/strtof) to the same value, and json_is_number agrees with
 * json_reemit on numbers. json_reemit is also checked against the
 * re-emitter it replaced (ref/json_reemit_ref.c): same result, bytes, error
 * message and lossy counts for every input (compact valid input copied
 * through must equal the token-by-token output).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_reemit_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const struct buf *b)
{
	fprintf(stderr, "oracle failed: %s: output %.*s\n", what,
	        (int)(b->len > 400 ? 400 : b->len), b->data ? b->data : "");
	abort();
}

/* b must hold one valid JSON value in valid UTF-8; re-emitting it is identity
 * for our compact writers' output. */
static void must_be_json(const struct buf *b, const char *what)
{
	struct buf again = {0};
	struct lossy st = {0};
	struct ierr e;

	if (utf8_valid_prefix(b->data, b->len) != b->len)
		fail("invalid UTF-8 in output", b);
	if (json_reemit(&again, b->data, b->len, &st, &e) != 0) {
		fprintf(stderr, "%s: %s\n", what, e.msg);
		fail("output is not valid JSON", b);
	}
	if (again.len != b->len || memcmp(again.data, b->data, b->len) != 0)
		fail("re-emitting compact output changed it", b);
	buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b = {0};
	struct lossy st = {0};
	struct ierr e;
	const char *s;
	size_t n;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	s = (const char *)data + 1;
	n = size - 1;
	switch (sel % 7) {
	case 0:
		json_string(&b, s, n, &st);
		must_be_json(&b, "json_string");
		break;
	case 1: {
		enum decimal_mode m = (enum decimal_mode)((sel / 7) % 3);

		json_decimal(&b, s, n, m, &st);
		must_be_json(&b, "json_decimal");
		break;
	}
	case 2: {
		enum binary_mode m = (enum binary_mode)((sel / 7) % 3);

		json_binary(&b, s, n, m, &st);
		must_be_json(&b, "json_binary");
		break;
	}
	case 3: {
		struct buf ref = {0};
		struct lossy st_ref = {0};
		struct ierr e_ref;
		int rc = json_reemit(&b, s, n, &st, &e);

		if (json_reemit_ref(&ref, s, n, &st_ref, &e_ref) != rc || ref.len != b.len ||
		    (b.len && memcmp(ref.data, b.data, b.len) != 0) ||
		    memcmp(&st, &st_ref, sizeof(st)) != 0 ||
		    (rc != 0 && strcmp(e.msg, e_ref.msg) != 0))
			fail("json_reemit differs from the reference re-emitter", &b);
		buf_free(&ref);
		if (rc == 0) {
			must_be_json(&b, "json_reemit");
		} else if (b.len != 0) {
			fail("json_reemit failed but left output", &b);
		}
		break;
	}
	case 4: {
		double d;

		if (n < sizeof(d))
			break;
		memcpy(&d, s, sizeof(d));
		json_double(&b, d, &st);
		must_be_json(&b, "json_double");
		if (isfinite(d)) {
			double back = strtod(buf_cstr(&b), NULL);

			if (back != d)
				fail("json_double does not round-trip", &b);
		} else if (b.len != 4 || memcmp(b.data, "null", 4) != 0) {
			fail("non-finite double not null", &b);
		}
		break;
	}
	case 5: {
		float f;

		if (n < sizeof(f))
			break;
		memcpy(&f, s, sizeof(f));
		json_float(&b, f, &st);
		must_be_json(&b, "json_float");
		if (isfinite(f)) {
			float back = strtof(buf_cstr(&b), NULL);

			if (back != f)
				fail("json_float does not round-trip", &b);
		}
		break;
	}
	case 6:
		if (json_is_number(s, n)) {
			if (json_reemit(&b, s, n, &st, &e) != 0 || b.len != n ||
			    memcmp(b.data, s, n) != 0)
				fail("json_is_number accepted what json_reemit does not keep", &b);
		}
		break;
	}
	buf_free(&b);
	return 0;
}
