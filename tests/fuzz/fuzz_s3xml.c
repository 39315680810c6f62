/*
 * fuzz_s3xml.c - libFuzzer target for the S3 response parsers
 * (uploader/s3_http.c): s3_parse_error(), s3_xml_text(), s3_xml_element()
 * (the walk over <Upload> elements of ListMultipartUploads), s3_etag_unquote()
 * and s3_classify(). Input: the response body as the server sent it, byte 0
 * picks the HTTP status. Oracles: no crash, no read outside the body (ASan on
 * an exact-size copy), results NUL-terminated within their buffers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 301, 307, 400, 403, 404, 409, 412,
                                429, 500, 501, 503, 0,   206, 204, 302};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_error err;
	char *body, out[256], etag[64];
	size_t from = 0, s, end, n;
	long status;
	int loops = 0;

	if (size < 1)
		return 0;
	status = statuses[data[0] % 16];
	n = size - 1;
	body = malloc(n ? n : 1);
	memcpy(body, data + 1, n);
	s3_parse_error(status, body, n, &err);
	if (memchr(err.code, '\0', sizeof(err.code)) == NULL ||
	    memchr(err.message, '\0', sizeof(err.message)) == NULL ||
	    memchr(err.region, '\0', sizeof(err.region)) == NULL)
		abort();
	(void)s3_classify(status, err.code);
	while (s3_xml_element(body, n, "Upload", &s, &end, &from)) {
		if (s > end || end > n)
			abort();
		(void)s3_xml_text(body + s, end - s, "Key", out, sizeof(out), NULL);
		(void)s3_xml_text(body + s, end - s, "UploadId", out, sizeof(out), NULL);
		if (++loops > 100000)
			abort(); /* `from` must advance */
	}
	from = 0;
	while (s3_xml_text(body, n, "ETag", out, sizeof(out), &from)) {
		if (strlen(out) >= sizeof(out))
			abort();
		s3_etag_unquote(out, etag, sizeof(etag));
		if (++loops > 200000)
			abort();
	}
	(void)s3_xml_text(body, n, "UploadId", out, 1, NULL);
	free(body);
	return 0;
}
