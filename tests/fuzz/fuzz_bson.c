/*
 * fuzz_bson.c - libFuzzer target for the BSON -> JSON converter
 * (collector/bson_json.c). Input: raw bytes taken as one BSON document after
 * libbson's own length check (bson_init_static), as the MongoDB driver hands
 * documents over. The first byte picks the decimal/binary modes.
 * Oracles: no crash; on success the output is one JSON object in valid UTF-8;
 * on failure the buffer is left as it was and the error names something.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bson_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct norm_opts o;
	struct buf b = {0};
	struct lossy st = {0};
	struct ierr e;
	bson_t doc;
	uint8_t *copy;

	if (size < 1 + 5)
		return 0;
	o.decimal = (enum decimal_mode)(data[0] % 3);
	o.binary = (enum binary_mode)((data[0] / 3) % 3);
	data++;
	size--;
	copy = malloc(size); /* exact-size heap copy: ASan sees any overread */
	memcpy(copy, data, size);
	/* libbson requires the declared length to match the buffer (the driver
	 * gets documents that passed that check); set it so the fuzzer spends
	 * its time on the elements, unless the mode byte asks for raw input. */
	if (!(data[-1] & 0x80)) {
		uint32_t len = (uint32_t)size;

		memcpy(copy, &len, 4);
	}
	if (bson_init_static(&doc, copy, size)) {
		buf_puts(&b, "X");
		if (bson_to_json(&b, &doc, &o, &st, &e) == 0) {
			struct buf again = {0};
			struct ierr e2;

			if (b.len < 3 || b.data[1] != '{' || b.data[b.len - 1] != '}')
				abort();
			if (utf8_valid_prefix(b.data + 1, b.len - 1) != b.len - 1)
				abort();
			if (json_reemit(&again, b.data + 1, b.len - 1, &st, &e2) != 0) {
				fprintf(stderr, "invalid JSON from bson_to_json: %s\n", e2.msg);
				abort();
			}
			buf_free(&again);
		} else if (b.len != 1 || e.msg[0] == '\0') {
			abort();
		}
		bson_destroy(&doc);
	}
	buf_free(&b);
	free(copy);
	return 0;
}
