/*
 * fuzz_creds.c - libFuzzer target for the credential parsers of
 * uploader/creds_http.c (the ECS/IMDS JSON answer, parse_creds_json) and
 * uploader/creds_file.c (the shared credentials/config INI files,
 * ini_profile). Both are file-local, so this harness includes those two files
 * itself rather than widening their API (creds.c is linked beside it).
 *
 * Byte 0 picks the parser (and, for INI, the profile and file style).
 * Oracles: no crash; parsed keys are single-line strings; an error message
 * never contains the secret the input carries (the marker below).
 */
#include "../../uploader/creds_file.c"
#include "../../uploader/creds_http.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const profiles[] = {"default", "prod", "a b", ""};
	char *text;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (sel & 1) {
		struct aws_creds c;
		struct ierr e;

		memset(&c, 0, sizeof(c));
		memset(&e, 0, sizeof(e));
		if (parse_creds_json(text, "fuzz", (sel & 2) != 0, &c, &e) == 0) {
			if (c.access_key == NULL || c.secret_key == NULL ||
			    !creds_one_line(c.access_key) || !creds_one_line(c.secret_key))
				abort();
			aws_creds_free(&c);
		} else {
			/* The answer's secret key must never be quoted back. */
			const char *sk = strstr(text, "\"SecretAccessKey\"");

			if (e.msg[0] == '\0')
				abort();
			if (sk != NULL) {
				char val[64];
				const char *q = strchr(sk + 17, '"');

				/* (only when that value appears once: a Code or
				 * Expiration equal to it may be quoted legitimately) */
				if (q && sscanf(q + 1, "%63[^\"]", val) == 1 && strlen(val) >= 8 &&
				    strstr(strstr(text, val) + 1, val) == NULL &&
				    strstr(e.msg, val) != NULL) {
					fprintf(stderr, "secret in error: %s\n", e.msg);
					abort();
				}
			}
		}
	} else {
		struct profile_keys k;

		memset(&k, 0, sizeof(k));
		ini_profile(text, profiles[(sel >> 1) % 4], (sel & 8) != 0, &k);
		profile_keys_free(&k);
	}
	free(text);
	return 0;
}
