/*
 * fuzz_pgtext.c - libFuzzer target for the PostgreSQL text-form parsers
 * (collector/pg_text.c): COPY line splitting and unescaping, bytea decoding,
 * date/timestamp/time parsing and pg_text_value() for every conversion,
 * arrays of every element kind included.
 *
 * Input: byte 0 picks the function and conversion, byte 1 the element
 * conversion / field count, the rest is the text. Oracles: no crash; every
 * value pg_text_value() writes is valid JSON in valid UTF-8.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONV (PGC_ARRAY + 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lossy st = {0};
	struct pg_text_ctx cx = {.lossy = &st};
	struct buf b = {0};
	struct ierr e;
	char *s;
	size_t n;
	uint8_t op, arg;

	if (size < 2)
		return 0;
	op = data[0];
	arg = data[1];
	n = size - 2;
	s = malloc(n + 1); /* exact copy, NUL-terminated like libpq's rows */
	memcpy(s, data + 2, n);
	s[n] = '\0';
	cx.decimal = (enum decimal_mode)(arg % 3);
	cx.binary = (enum binary_mode)((arg / 3) % 3);
	switch (op % 6) {
	case 0:
	case 1: {
		struct pg_col col;

		col.conv = (enum pg_conv)((op / 6) % NCONV);
		col.elem = (enum pg_conv)(arg % PGC_ARRAY);
		col.delim = (arg & 0x80) ? ';' : ',';
		if (pg_text_value(&b, &col, s, n, &cx, &e) == 0) {
			struct buf again = {0};
			struct ierr e2;

			if (utf8_valid_prefix(b.data, b.len) != b.len)
				abort();
			if (json_reemit(&again, b.data, b.len, &st, &e2) != 0) {
				fprintf(stderr, "conv %d elem %d: invalid JSON (%s): %.*s\n",
				        (int)col.conv, (int)col.elem, e2.msg,
				        (int)(b.len > 300 ? 300 : b.len), b.data);
				abort();
			}
			buf_free(&again);
		}
		break;
	}
	case 2: {
		size_t nf = (size_t)(arg % 16) + 1;
		struct pg_field f[16];

		(void)pg_copy_split(s, n, f, nf);
		break;
	}
	case 3:
		(void)pg_copy_unescape(s, n);
		break;
	case 4:
		(void)pg_bytea_decode(s, n, &b);
		break;
	case 5: {
		struct pg_ts t;

		switch (arg % 5) {
		case 0:
			(void)pg_parse_date(s, n, &t);
			break;
		case 1:
			(void)pg_parse_timestamp(s, n, false, &t);
			break;
		case 2:
			(void)pg_parse_timestamp(s, n, true, &t);
			break;
		case 3:
			(void)pg_parse_time(s, n, false, &t);
			break;
		default:
			(void)pg_parse_time(s, n, true, &t);
			break;
		}
		break;
	}
	}
	buf_free(&b);
	pg_text_ctx_free(&cx);
	free(s);
	return 0;
}
