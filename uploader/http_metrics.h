/*
 * http_metrics.h - the uploader's scrape endpoint (METRICS_LISTEN).
 *
 *   GET /metrics  the text of the METRICS_FILE textfile (metrics_render), in
 *                 the Prometheus text format 0.0.4
 *   GET /healthz  the `ingesta status --check` verdict with that command's
 *                 defaults: 200 and the "OK: ..." line, or 503 and the
 *                 "UNHEALTHY: ..." line (503 "ERROR: ..." when the spool
 *                 cannot be read)
 *   HEAD of both; any other path 404, any other method 405, a malformed
 *   request 400 (414, 431, 505: http_parse.h).
 *
 * Isolation: one thread of its own, poll() over non-blocking sockets, its own
 * read-only (operator) spool connection; the upload threads are never waited
 * for and no spool transaction is open while a client is written to. Every
 * response is rendered from one read transaction into memory first, and a
 * rendering is reused for HTTP_CACHE_MS, so a scraper hammering the endpoint
 * costs the spool at most four reads per second per endpoint.
 *
 * Bounds: HTTP_MAX_CONNS connections (a new one past the limit evicts the
 * oldest that has not finished sending its request); a request head of at
 * most HTTP_MAX_HEAD bytes held in a fixed per-connection buffer; every
 * connection closed HTTP_DEADLINE_MS after it was accepted, whatever it is
 * doing (slowloris, a client that does not read). One request per connection
 * (Connection: close). Memory does not grow with clients: the connection table
 * is allocated once, and only responses being written hold a buffer.
 */
#ifndef INGESTA_HTTP_METRICS_H
#define INGESTA_HTTP_METRICS_H

#include <stdint.h>

#include "err.h"

#define HTTP_MAX_CONNS   16
#define HTTP_DEADLINE_MS 5000
#define HTTP_CACHE_MS    250

struct http_metrics_opts {
	const char *listen;    /* METRICS_LISTEN: "127.0.0.1:9464", "[::1]:9464" */
	const char *spool_dir; /* opened again, read-only, for this thread */
	int64_t quota_bytes;   /* SPOOL_MAX_BYTES */
};

/* Parse the address, bind, listen, open the spool and start the thread.
 * Returns 0, or -1 with *e (IERR_CONFIG, the message names METRICS_LISTEN):
 * a malformed address, an address in use or not on this host. */
int http_metrics_start(const struct http_metrics_opts *o, struct ierr *e);

/* Stop and join the thread, close every connection. Safe when not started. */
void http_metrics_stop(void);

#endif
