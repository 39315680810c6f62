/*
 * target.h - where segments go: an S3 bucket or a file:// directory.
 *
 * A target puts one spooled segment under its fixed key, exactly once: if the
 * key already holds the same bytes (an earlier attempt landed before a crash)
 * that counts as success; different bytes are a conflict, never overwritten.
 * Targets verify the spooled file against its recorded SHA-256 while sending
 * it; a mismatch means the spool copy is damaged (res->quarantine).
 *
 * put_segment() blocks for the duration of the upload and is safe to call from
 * several threads at once on the same target. Errors: -1 with e->code
 * IERR_TRANSIENT (retry with backoff) or IERR_PERMANENT (fail now), res->code
 * the S3 error code or a short name ("Conflict", "ChecksumMismatch", "EIO").
 */
#ifndef INGESTA_TARGET_H
#define INGESTA_TARGET_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "spool.h"

struct put_result {
	char etag[256];
	char code[64];
	bool already_present; /* the key held these exact bytes already */
	bool quarantine;      /* the spooled file no longer matches its checksum */
};

struct target;

struct target_ops {
	const char *scheme; /* "file", "s3" */
	/* sp is the calling thread's own spool connection (multipart progress). */
	int (*put_segment)(struct target *t, struct spool *sp, const struct segment *seg,
	                   struct put_result *res, struct ierr *e);
	/* Small objects (manifests): written atomically, overwriting allowed. */
	int (*put_bytes)(struct target *t, const char *key, const void *data, size_t n,
	                 struct put_result *res, struct ierr *e);
	/* Optional, from the main thread after a pass: abort leftovers (multipart
	 * uploads open at keys the spool records as uploaded). */
	void (*sweep)(struct target *t, struct spool *sp);
	void (*free)(struct target *t);
};

struct target {
	const struct target_ops *ops;
	char bucket[1024]; /* as configured: "raw-ms1" or "file:///srv/lake" */
};

/* A target for a bucket string; file:// -> local directory, else S3. */
struct target *target_open(const char *bucket, const struct config *cfg, struct ierr *e);

struct target *target_file_open(const char *bucket, struct ierr *e);
/* Implemented by the S3 client (s3.c); NULL with *e when unavailable. */
struct target *target_s3_open(const char *bucket, const struct config *cfg, struct ierr *e);

#endif
