/*
 * aws_http.h - what the two AWS HTTP clients, the S3 target (s3*.c) and the
 * Glue client (glue.c), share; implemented in s3_proto.c (pure).
 *
 * Apart from s3.h because that header brings in target.h and spool.h, whose
 * JSON writer cannot be included together with jansson, which glue.c uses.
 */
#ifndef INGESTA_AWS_HTTP_H
#define INGESTA_AWS_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "err.h"

/*
 * Split a configured base URL "http[s]://host[:port][/path]" (the value of
 * key, e.g. "S3_ENDPOINT"): scheme "http" or "https", host lowercased, path
 * without trailing '/' ("" when none). Returns -1 (IERR_CONFIG naming key)
 * for another scheme, credentials in the URL (never echoed), an empty or
 * too long host, a query, fragment or white space.
 */
int aws_base_url_parse(const char *key, const char *url, char *scheme, size_t scheme_sz, char *host,
                       size_t host_sz, char *base_path, size_t base_path_sz, struct ierr *e);

/* "NotFound", "Forbidden", ... for an HTTP status; NULL when unknown. */
const char *s3_status_name(long status);

/* IERR_TRANSIENT or IERR_PERMANENT for an S3 error (status, <Code>). Pure. */
enum ierr_code s3_classify(long status, const char *code);

/* IERR_TRANSIENT or IERR_PERMANENT for a libcurl failure (network errors,
 * timeouts, TLS handshakes: transient; TLS verification or configuration, a
 * bad URL: permanent); *name gets a short code for the error ("Timeout",
 * "ConnectFailed", ...). Pure. */
enum ierr_code s3_classify_curl(CURLcode rc, const char **name);

#endif
