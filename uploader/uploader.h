/*
 * uploader.h - the upload daemon: spool -> targets, exactly once.
 *
 * uploader_run() takes the spool's uploader lock, repairs what a dead uploader
 * left, then loops: UPLOAD_CONCURRENCY workers claim due `sealed` segments and
 * put them; each outcome is one transaction (uploaded / retry with backoff /
 * failed / quarantined). Completed partitions get their manifest, uploaded
 * files are deleted after RETENTION. Between passes it sleeps on inotify (the
 * .wakeup file the collectors touch) with a RESCAN_INTERVAL timeout; the DB is
 * the source of truth, inotify only says "look now".
 *
 * once: return when nothing sealed or uploading is left. Returns 0, or -1 with
 * *e; *failed_left receives the number of failed/quarantined segments.
 */
#ifndef INGESTA_UPLOADER_H
#define INGESTA_UPLOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

int uploader_run(const struct config *cfg, bool once, int64_t *failed_left, struct ierr *e);

#endif
