/*
 * sigv4.h - AWS Signature Version 4 for S3 requests (Authorization header form,
 * payload in a single chunk), plus the digests an upload needs.
 *
 * Why our own: Debian 12's libcurl (CURLOPT_AWS_SIGV4) signs unsorted query
 * strings and value-less parameters such as `?uploads` wrongly, and does not
 * add x-amz-content-sha256. This module follows the Amazon S3 API reference,
 * "Signature Calculations for the Authorization Header: Transferring Payload in
 * a Single Chunk", and reproduces its worked examples byte for byte
 * (tests/unit/test_sigv4.c).
 *
 * The caller describes the request with *raw* (not yet encoded) path and query
 * parameters; sigv4_sign() encodes them the S3 way and returns both what was
 * signed and what must be sent, so the URL and headers on the wire can never
 * drift from the signature:
 *
 *   - send the request to  scheme://host + canonical_uri + ("?" canonical_query)
 *     (with libcurl set CURLOPT_PATH_AS_IS, or it squashes "/../" segments);
 *   - send every header of `headers` (it includes host, x-amz-date,
 *     x-amz-content-sha256, x-amz-security-token when there is a session
 *     token, and authorization); the Host curl derives from the URL must equal
 *     the host header given (include a non-default port in both).
 *
 * Pure computation: nothing here blocks, touches the network or keeps state;
 * every function may be called from any thread. Secrets (the secret key, the
 * session token) never appear in error messages; they do appear, by necessity,
 * in the output headers (the token) and nowhere else.
 */
#ifndef INGESTA_SIGV4_H
#define INGESTA_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"

/* SHA-256 of the empty payload, the x-amz-content-sha256 of a bodiless request. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Payload hash for a body that is not hashed (still protected by TLS/Content-MD5). */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Sizes of the text digests below, including the terminating NUL. */
#define SIGV4_SHA256_HEX_SIZE    65 /* 64 lowercase hex digits */
#define SIGV4_SHA256_BASE64_SIZE 45 /* 44 base64 characters (x-amz-checksum-sha256) */
#define SIGV4_MD5_BASE64_SIZE    25 /* 24 base64 characters (Content-MD5) */

/* A (name, value) pair: a query parameter or a header. */
struct sigv4_kv {
	const char *name;
	const char *value; /* NULL is the same as "" */
};

/* One header to send, owned by a struct sigv4_result. Names are lowercase. */
struct sigv4_header {
	char *name;
	char *value;
};

struct sigv4_request {
	const char *method; /* "GET", "PUT", "POST", "HEAD", "DELETE" */
	/* Raw path, starting with '/', e.g. "/bucket/users/year=2024/a b.json";
	 * every byte but A-Z a-z 0-9 - . _ ~ and '/' is percent-encoded once
	 * (S3 rule: no double encoding, no "." / ".." normalisation). */
	const char *path;
	/* Raw query parameters, any order; a value-less one (`?uploads`) is
	 * {"uploads", NULL} and is signed and sent as "uploads=". */
	const struct sigv4_kv *query;
	size_t nquery;
	/* Headers to send and sign, any case and order; "host" is required.
	 * Values are trimmed; CR, LF and NUL are refused. Each name at most once.
	 * x-amz-date, x-amz-content-sha256, x-amz-security-token and
	 * authorization are produced by sigv4_sign() and refused here.
	 * Signed: all of them except user-agent, expect, content-length,
	 * transfer-encoding, connection and x-amzn-trace-id, which proxies and
	 * HTTP libraries may rewrite (they are still sent). */
	const struct sigv4_kv *headers;
	size_t nheaders;
	/* Lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD; NULL
	 * means an empty body (SIGV4_EMPTY_SHA256). Sent as x-amz-content-sha256. */
	const char *payload_hash;
	const char *region;  /* e.g. "us-east-1" */
	const char *service; /* NULL: "s3" */
	time_t when;         /* signing time, UTC; tests pin it */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "": none (static credentials) */
};

/* Everything sigv4_sign() computed. Owned by the caller after a successful
 * sigv4_sign(); release with sigv4_result_free(). */
struct sigv4_result {
	struct buf canonical_uri;     /* encoded path: "/test%24file.text" */
	struct buf canonical_query;   /* "max-keys=2&prefix=J", "" when none */
	struct buf canonical_request; /* for debugging and tests */
	struct buf string_to_sign;    /* for debugging and tests */
	struct buf signed_headers;    /* "host;range;x-amz-content-sha256;x-amz-date" */
	struct buf authorization;     /* the Authorization header value */
	char signature[SIGV4_SHA256_HEX_SIZE];
	char amz_date[17];            /* "20130524T000000Z" */
	struct sigv4_header *headers; /* to send: sorted by name, authorization last */
	size_t nheaders;
};

/*
 * Sign `req`. On success returns 0 and fills *out (which needs no
 * initialisation; any previous content is not freed). On error (missing host,
 * a refused or duplicate header, a bad payload hash, region or time) returns -1
 * with *e naming the offending item and leaves *out empty (nothing to free).
 */
int sigv4_sign(const struct sigv4_request *req, struct sigv4_result *out, struct ierr *e);

/* Free what sigv4_sign() put in *r and empty it. Safe on an emptied result. */
void sigv4_result_free(struct sigv4_result *r);

/* Append the S3 UriEncode() of s[0..n) to out: every byte except A-Z a-z 0-9
 * - . _ ~ becomes %XX (uppercase hex); '/' is kept when keep_slash (paths) and
 * encoded otherwise (query names and values). */
void sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash);

/* Digests of a memory buffer as text. Return 0, or -1 with *e set if the
 * crypto library refuses (e.g. MD5 in a FIPS-only configuration). */
int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_SHA256_HEX_SIZE], struct ierr *e);
int sigv4_sha256_base64(const void *data, size_t len, char out[SIGV4_SHA256_BASE64_SIZE],
                        struct ierr *e);
int sigv4_md5_base64(const void *data, size_t len, char out[SIGV4_MD5_BASE64_SIZE], struct ierr *e);

/* Convert a hex digest (as the spool stores them: 32 hex digits for MD5, 64
 * for SHA-256, either case) to base64 (Content-MD5, x-amz-checksum-sha256).
 * out must hold 4 * ceil(bytes / 3) + 1 characters. Returns 0, or -1 with *e
 * set on a non-hex string, an odd length or too small an `out`. */
int sigv4_hex_to_base64(const char *hex, char *out, size_t outsz, struct ierr *e);

#endif
