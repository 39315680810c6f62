/*
 * fuzz_config.c - libFuzzer target for the KEY=VALUE configuration parser
 * (common/config.c, config_parse_text()).
 *
 * Oracles besides "no crash, no sanitizer report": a secret value placed in
 * the file before the fuzzed text never appears in an error message, and an
 * error always names something (non-empty message, IERR_CONFIG).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define SECRET_VALUE "Fz9-SECRET-never-printed-7Q"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static const char head[] = "MYSQL_PASSWORD=" SECRET_VALUE "\n"
	                           "export AWS_SECRET_ACCESS_KEY='" SECRET_VALUE "'\n";
	char *text;
	struct ierr e;
	struct config *c;

	if (!ready) {
		log_setup(LOG_CRITICAL, false, NULL);
		ready = 1;
	}
	if (memchr(data, '\0', size) != NULL)
		return 0; /* config_load refuses NUL bytes before parsing */
	text = malloc(sizeof(head) + size);
	memcpy(text, head, sizeof(head) - 1);
	memcpy(text + sizeof(head) - 1, data, size);
	text[sizeof(head) - 1 + size] = '\0';
	memset(&e, 0, sizeof(e));
	c = config_parse_text(text, "fuzz.env", NULL, false, &e);
	if (c == NULL) {
		/* (the fuzzed text may spell the marker itself, e.g. as a key name,
		 * which messages rightly quote) */
		if (e.msg[0] == '\0' ||
		    (strstr(e.msg, SECRET_VALUE) != NULL &&
		     memmem(data, size, SECRET_VALUE, strlen(SECRET_VALUE)) == NULL)) {
			fprintf(stderr, "bad error message: \"%s\"\n", e.msg);
			abort();
		}
	} else {
		/* Every typed getter must work on a loaded config. */
		(void)config_int(c, "MYSQL_PORT");
		(void)config_int(c, "SPOOL_MAX_BYTES");
		(void)config_int(c, "RETRY_BASE");
		(void)config_bool(c, "ENABLE_PARTITIONING");
		(void)config_str(c, "S3_BUCKET");
		for (const char *const *s = config_secrets(c); s && *s; s++)
			(void)strlen(*s);
		config_free(c);
	}
	free(text);
	return 0;
}
