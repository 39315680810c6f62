/*
 * fuzz_http.c - libFuzzer target for the metrics endpoint's parsers
 * (uploader/http_parse.c): http_parse_request() on the input as received, and
 * http_parse_listen() on its first bytes as a string.
 *
 * Oracles besides "no crash, no sanitizer report" (the input buffer is exactly
 * the input, so any read past it is an ASan error):
 *   - the result is DONE, MORE or one of 400 414 431 505;
 *   - DONE: head_len <= min(size, HTTP_MAX_HEAD), the path lies inside the head
 *     and starts with '/', and the head alone parses to the same request while
 *     the head minus its last byte asks for more;
 *   - MORE only below HTTP_MAX_HEAD bytes, and then every prefix is MORE too
 *     (checked for the half);
 *   - an error on a prefix stays that error on the whole input, unless the
 *     whole input reaches the size limit first (414/431);
 *   - a parsed address is AF_INET or AF_INET6 with a port, a refusal has a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, int rc)
{
	fprintf(stderr, "oracle: %s (rc %d)\n", what, rc);
	abort();
}

static void listen_once(const uint8_t *data, size_t size)
{
	char s[96], why[160];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	struct sockaddr_storage a;
	socklen_t alen = 0;

	memcpy(s, data, n);
	s[n] = '\0';
	why[0] = '\0';
	if (http_parse_listen(s, &a, &alen, why, sizeof(why)) == 0) {
		if (a.ss_family == AF_INET) {
			if (alen != sizeof(struct sockaddr_in) ||
			    ((struct sockaddr_in *)&a)->sin_port == 0)
				fail("bad IPv4 result", 0);
		} else if (a.ss_family != AF_INET6 || alen != sizeof(struct sockaddr_in6) ||
		           ((struct sockaddr_in6 *)&a)->sin6_port == 0) {
			fail("bad IPv6 result", 0);
		}
	} else if (why[0] == '\0') {
		fail("refusal without a reason", -1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_request r, r2;
	int rc = http_parse_request(buf, size, &r), rc2;

	listen_once(data, size);
	if (rc != HTTP_PARSE_DONE && rc != HTTP_PARSE_MORE && rc != 400 && rc != 414 && rc != 431 &&
	    rc != 505)
		fail("unexpected result", rc);
	if (rc == HTTP_PARSE_DONE) {
		size_t lim = size < HTTP_MAX_HEAD ? size : HTTP_MAX_HEAD;

		if (r.head_len == 0 || r.head_len > lim)
			fail("head_len out of range", rc);
		if (r.path < buf || r.path + r.path_len > buf + r.head_len || r.path_len == 0 ||
		    r.path[0] != '/')
			fail("path outside the head", rc);
		if (r.minor != 0 && r.minor != 1)
			fail("minor version", rc);
		rc2 = http_parse_request(buf, r.head_len, &r2);
		if (rc2 != HTTP_PARSE_DONE || r2.head_len != r.head_len || r2.path != r.path ||
		    r2.path_len != r.path_len || r2.method != r.method)
			fail("the head alone parses differently", rc2);
		if (http_parse_request(buf, r.head_len - 1, &r2) != HTTP_PARSE_MORE)
			fail("the head minus a byte is not incomplete", rc2);
	} else if (rc == HTTP_PARSE_MORE) {
		if (size >= HTTP_MAX_HEAD)
			fail("MORE at the size limit", rc);
		if (http_parse_request(buf, size / 2, &r2) != HTTP_PARSE_MORE)
			fail("a prefix of an incomplete head is not incomplete", rc);
	} else {
		/* the error seen on the half is the error of the whole */
		rc2 = http_parse_request(buf, size / 2, &r2);
		if (rc2 != HTTP_PARSE_MORE && rc2 != rc)
			fail("a prefix fails differently", rc2);
		if (rc2 == HTTP_PARSE_DONE)
			fail("a prefix is complete but the whole is refused", rc2);
	}
	return 0;
}
