/*
 * json_cstr.c - a C string or NULL as a JSON value (see json_cstr.h).
 */
#include "json_cstr.h"

#include <string.h>

#include "json.h"

void json_cstr(struct buf *b, const char *s)
{
	struct lossy none = {0};

	if (s == NULL) {
		json_null(b);
		return;
	}
	json_string(b, s, strlen(s), &none);
}
