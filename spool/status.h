/*
 * status.h - read-only views of the spool for operators: `ingesta status`,
 * `status --check`, and the numbers the uploader's metrics file exports.
 *
 * Safe while collectors and the uploader run: every view is computed in one
 * read transaction on the WAL database, so its numbers agree with each other
 * even while the uploader changes them. Output goes to `out`, as a human table
 * or as JSON (schema: docs/status.schema.json, described in README.md).
 */
#ifndef INGESTA_STATUS_H
#define INGESTA_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "spool.h"

#define STATUS_NSTATES 6
/* pending, sealed, uploading, uploaded, failed, quarantined (schema order). */
extern const char *const status_states[STATUS_NSTATES];

struct status_summary {
	struct {
		int64_t segments, bytes, rows;
	} states[STATUS_NSTATES];
	int64_t generated_at;        /* ms */
	int64_t oldest_not_uploaded; /* ms (sealed_at) of the oldest sealed/uploading/
	                                failed/quarantined segment; -1 when none */
	int64_t last_upload_at;      /* ms; -1 when nothing was ever uploaded */
	int64_t spool_bytes;         /* segment files still on disk */
	bool uploader_running;       /* someone holds locks/uploader.lock */
	struct {
		int64_t written, waiting, failed;
	} commits; /* commit records (docs/COMMIT_LOG.md) of complete partitions */
};

/* Fill *s from one read transaction. Returns 0, or -1 with *e. */
int status_summary_load(struct spool *sp, struct status_summary *s, struct ierr *e);

/* true when a live process holds <spool>/locks/uploader.lock. Probes with a
 * non-blocking shared flock released at once (the uploader retries its own
 * lock briefly, so the probe never makes a starting uploader fail). */
bool status_uploader_running(const struct spool *sp);

struct status_opts {
	bool json;
	int64_t quota_bytes; /* SPOOL_MAX_BYTES, for "spool size against quota" */
};

int status_print(struct spool *sp, const struct status_opts *o, FILE *out, struct ierr *e);

struct status_check_opts {
	int64_t max_age_ms;        /* backlog older than this is unhealthy */
	double max_spool_fraction; /* of quota_bytes; unhealthy above */
	int64_t quota_bytes;       /* 0: no quota, no spool-size check */
	bool require_uploader;     /* unhealthy when no uploader holds its lock */
};
/* The defaults of `status --check` (also the uploader's /healthz). */
#define STATUS_CHECK_MAX_AGE_MS         (3600 * 1000)
#define STATUS_CHECK_MAX_SPOOL_FRACTION 0.9

/* `status --check`: print ONE line ("OK: ..." or "UNHEALTHY: reason; reason")
 * to out. Returns 0 when healthy, 1 when not, -1 with *e when the spool
 * cannot be read. */
int status_check(struct spool *sp, const struct status_check_opts *o, FILE *out, struct ierr *e);

#endif
