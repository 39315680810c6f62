/*
 * http_parse.h - the pure parts of the uploader's metrics endpoint
 * (http_metrics.h): the HTTP/1.x request-head parser and the METRICS_LISTEN
 * address parser. No I/O, no allocation, no globals: unit-tested in
 * tests/unit/test_http_metrics.c and fuzzed by tests/fuzz/fuzz_http.c.
 *
 * The parser is stateless: the server calls it on everything received so far
 * (at most HTTP_MAX_HEAD bytes) and it answers "complete", "need more" or the
 * status of a refusal. It reads only the request line; header fields are
 * checked for syntax (RFC 9112: token ':' value, no obs-fold, no NUL or bare
 * CR) and otherwise ignored. Lines may end in CRLF or a bare LF.
 */
#ifndef INGESTA_HTTP_PARSE_H
#define INGESTA_HTTP_PARSE_H

#include <stddef.h>
#include <sys/socket.h>

/* Request line plus header fields plus the blank line, bytes. */
#define HTTP_MAX_HEAD 8192

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

#define HTTP_PARSE_DONE 0 /* a complete head: *r is filled */
#define HTTP_PARSE_MORE 1 /* a valid beginning: read more */

struct http_request {
	enum http_method method; /* HTTP_OTHER: a well-formed method we refuse (405) */
	const char *path;        /* into the caller's buffer: the target without "?query" */
	size_t path_len;
	int minor;       /* HTTP/1.<minor>: 0 or 1 */
	size_t head_len; /* bytes of the head, through the blank line */
};

/* Parse the request head in buf[0..len). Returns HTTP_PARSE_DONE with *r,
 * HTTP_PARSE_MORE, or the status to answer with: 400 malformed, 414 request
 * line longer than HTTP_MAX_HEAD, 431 head longer than HTTP_MAX_HEAD, 505 an
 * HTTP version other than 1.0 and 1.1. Bytes past HTTP_MAX_HEAD are never
 * read. */
int http_parse_request(const char *buf, size_t len, struct http_request *r);

/* The reason phrase of the statuses the endpoint sends ("" for others). */
const char *http_reason(int status);

/* METRICS_LISTEN: "IPv4:port" or "[IPv6]:port", numeric only (no host names,
 * no zone, no empty address: the address is always explicit), port 1..65535.
 * Returns 0 with *addr and *addr_len, or -1 with a reason in why[0..n). */
int http_parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *addr_len, char *why,
                      size_t n);

#endif
