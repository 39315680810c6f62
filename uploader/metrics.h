/*
 * metrics.h - the uploader's Prometheus textfile (METRICS_FILE) and its
 * housekeeping thread.
 *
 * node_exporter's textfile collector reads *.prom files from a directory; the
 * uploader rewrites METRICS_FILE every METRICS_PERIOD_MS atomically (temporary
 * file + rename, write_file_atomic), so the collector never sees half a file.
 * Spool numbers (segments and bytes by state, counters, ages, sizes) come from
 * spool.db, so they survive restarts and agree with `ingesta status --json`;
 * the upload duration histogram is kept in this process (it restarts from zero
 * with the uploader, which Prometheus' rate() handles as a counter reset).
 *
 * With METRICS_LISTEN set, the same text is also served over HTTP at /metrics,
 * with /healthz (http_metrics.h), by a thread of its own that metrics_start()
 * starts first; a METRICS_LISTEN that cannot be served (malformed, address in
 * use) fails metrics_start() with IERR_CONFIG, which stops the uploader.
 *
 * metrics_start() also starts the service thread (common/notify.h): READY=1,
 * the systemd watchdog, STOPPING=1 and SIGHUP log reopening, with the metrics
 * refresh as its periodic hook. Call it once the uploader holds its lock;
 * metrics_stop() writes the file one last time and joins the thread.
 */
#ifndef INGESTA_METRICS_H
#define INGESTA_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "spool.h"

#define METRICS_PERIOD_MS 5000

/* Returns 0, or -1 with *e: IERR_CONFIG for METRICS_LISTEN (the uploader
 * stops, exit 2), anything else for METRICS_FILE or the service thread (the
 * uploader logs it and runs on without). */
int metrics_start(const struct config *cfg, struct ierr *e);
void metrics_stop(void);

/* Record one put_segment call (thread-safe, no I/O): ok = it succeeded. */
void metrics_observe_upload(bool ok, double seconds);

/* The whole exposition text for this spool into *out (appended). */
int metrics_render(struct spool *sp, int64_t quota_bytes, struct buf *out, struct ierr *e);

#endif
