/*
 * http_parse.c - request-head and listen-address parsers of the metrics
 * endpoint (contract in http_parse.h). Byte-wise and ASCII-only on purpose:
 * no locale, no ctype, no strtol on unterminated input.
 */
#include "http_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* RFC 9110 tchar: the characters of a method or a field name. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

int http_parse_request(const char *buf, size_t len, struct http_request *r)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t n = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	size_t i = 0, m, t, v, p;
	int in_request_line = 1;
	static const char http[] = "HTTP/";

	memset(r, 0, sizeof(*r));
	/* Empty lines before the request line are ignored (RFC 9112 2.2). */
	while (i < n && (b[i] == '\r' || b[i] == '\n')) {
		if (b[i] == '\r') {
			if (i + 1 >= n)
				goto more;
			if (b[i + 1] != '\n')
				return 400;
			i++;
		}
		i++;
	}
	/* method SP */
	for (m = i; m < n && is_tchar(b[m]); m++)
		;
	if (m >= n)
		goto more;
	if (m == i || b[m] != ' ')
		return 400;
	if (m - i == 3 && memcmp(b + i, "GET", 3) == 0)
		r->method = HTTP_GET;
	else if (m - i == 4 && memcmp(b + i, "HEAD", 4) == 0)
		r->method = HTTP_HEAD;
	else
		r->method = HTTP_OTHER;
	/* request-target SP: origin-form, visible ASCII only */
	for (t = m + 1; t < n && b[t] > 0x20 && b[t] < 0x7f; t++)
		;
	if (t >= n)
		goto more;
	if (t == m + 1 || b[t] != ' ' || b[m + 1] != '/')
		return 400;
	r->path = buf + m + 1;
	for (r->path_len = 0; m + 1 + r->path_len < t && b[m + 1 + r->path_len] != '?';
	     r->path_len++)
		;
	/* HTTP-version: "HTTP/" DIGIT "." DIGIT, then the end of the line */
	v = t + 1;
	for (size_t k = 0; k < 5; k++) {
		if (v + k >= n)
			goto more;
		if (b[v + k] != (unsigned char)http[k])
			return 400;
	}
	for (size_t k = 5; k < 8; k++) {
		if (v + k >= n)
			goto more;
		if (k == 6 ? b[v + k] != '.' : !is_digit(b[v + k]))
			return 400;
	}
	p = v + 8;
	if (p >= n)
		goto more;
	if (b[p] == '\r') {
		if (++p >= n)
			goto more;
	}
	if (b[p] != '\n')
		return 400;
	p++;
	if (b[v + 5] != '1' || (b[v + 7] != '0' && b[v + 7] != '1'))
		return 505;
	r->minor = b[v + 7] - '0';
	in_request_line = 0;

	/* field-name ":" field-value, until the empty line */
	for (;;) {
		size_t q;

		if (p >= n)
			goto more;
		if (b[p] == '\n' || b[p] == '\r') {
			if (b[p] == '\r') {
				if (p + 1 >= n)
					goto more;
				if (b[p + 1] != '\n')
					return 400;
				p++;
			}
			r->head_len = p + 1;
			return HTTP_PARSE_DONE;
		}
		for (q = p; q < n && is_tchar(b[q]); q++)
			;
		if (q >= n)
			goto more;
		if (q == p || b[q] != ':')
			return 400; /* also obs-fold and whitespace before the colon */
		for (q++;; q++) {
			if (q >= n)
				goto more;
			if (b[q] == '\n')
				break;
			if (b[q] == '\r') {
				if (q + 1 >= n)
					goto more;
				if (b[q + 1] != '\n')
					return 400;
				q++;
				break;
			}
			if ((b[q] < 0x20 && b[q] != '\t') || b[q] == 0x7f)
				return 400;
		}
		p = q + 1;
	}
more:
	if (len >= HTTP_MAX_HEAD)
		return in_request_line ? 414 : 431;
	return HTTP_PARSE_MORE;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "";
	}
}

int http_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addr_len, char *why,
                      size_t n)
{
	char host[64];
	const char *h, *port, *end;
	size_t hlen;
	long pv = 0;
	int v6 = s[0] == '[';

	memset(addr, 0, sizeof(*addr));
	if (v6) {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':') {
			snprintf(why, n,
			         "an IPv6 address is written [address]:port, e.g. [::1]:9464");
			return -1;
		}
		h = s + 1;
		hlen = (size_t)(end - h);
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (end == NULL) {
			snprintf(why, n, "no port: write address:port, e.g. 127.0.0.1:9464");
			return -1;
		}
		if (strchr(s, ':') != end) {
			snprintf(why, n, "an IPv6 address goes in brackets, e.g. [::1]:9464");
			return -1;
		}
		h = s;
		hlen = (size_t)(end - s);
		port = end + 1;
	}
	if (hlen == 0) {
		snprintf(why, n,
		         "no address: give one explicitly (127.0.0.1 for this host only, 0.0.0.0 "
		         "for every interface)");
		return -1;
	}
	if (hlen >= sizeof(host)) {
		snprintf(why, n, "not a numeric IP address");
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	for (const char *c = port; *c; c++) {
		if (!is_digit((unsigned char)*c) || c - port >= 5) {
			pv = -1;
			break;
		}
		pv = pv * 10 + (*c - '0');
	}
	if (*port == '\0' || pv < 1 || pv > 65535) {
		snprintf(why, n, "the port is not a number in 1..65535");
		return -1;
	}
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
			snprintf(why, n, "not a numeric IPv6 address (no host names, no zone)");
			return -1;
		}
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)pv);
		*addr_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)addr;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
			snprintf(why, n, "not a numeric IPv4 address (no host names)");
			return -1;
		}
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)pv);
		*addr_len = sizeof(*a);
	}
	return 0;
}
