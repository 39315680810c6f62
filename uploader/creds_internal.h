/*
 * creds_internal.h - what creds.c, creds_file.c and creds_http.c share; not
 * installed and not for other components (they use creds.h).
 *
 * creds.c owns the chain, the provider, its cache and its mutex; the other two
 * are sources the chain calls into, under that mutex. They never see the
 * provider: they get the settings it snapshotted and fill a struct aws_creds.
 */
#ifndef INGESTA_CREDS_INTERNAL_H
#define INGESTA_CREDS_INTERNAL_H

#include <stdbool.h>

#include "buf.h"
#include "creds.h"
#include "err.h"
#include "util.h"

/* Outcome of one chain step: FOUND (*c filled), SKIPPED (not configured here;
 * a line was added to the "tried" list) or ERROR (configured but broken; *e
 * set; the chain stops). */
enum step { STEP_ERROR = -1, STEP_SKIPPED = 0, STEP_FOUND = 1 };

/* ---- helpers (creds.c) ----------------------------------------------------- */

/* Wipe then free a string holding secret material; NULL is a no-op. */
void creds_free_secret(char *s);
/* Trim blanks (and CR/LF) at both ends of s, in place; returns the start. */
char *creds_trim(char *s);
/* Non-empty and without CR/LF: credential material must fit on one header
 * line. */
bool creds_one_line(const char *s);

/* ---- shared files (creds_file.c) ------------------------------------------- */

/*
 * Step 2 of the chain: look for `profile` in credentials_file, then in
 * config_file (either may be NULL: HOME unknown). Appends "shared files (...)"
 * to *tried. FOUND: *c holds the profile's keys (expiration 0, source empty).
 * ERROR: a file could not be read, the profile has only half a key pair or a
 * bad value, or an explicit AWS_PROFILE (profile_explicit) yields no keys.
 * Reads files; does not otherwise block.
 */
enum step creds_from_files(const char *credentials_file, const char *config_file,
                           const char *profile, bool profile_explicit, struct aws_creds *c,
                           struct buf *tried, struct ierr *e);

/* Read the whole file at path into *out (NUL-terminated), at most 1 MiB; `key`
 * names the setting for messages. Returns 1 when read, 0 when it does not
 * exist, -1 with *e set on error. The caller wipes *out if it holds secrets. */
int creds_read_file(const char *path, const char *key, struct buf *out, struct ierr *e);

/* ---- metadata endpoints (creds_http.c) ------------------------------------- */

/* What the HTTP sources need, snapshotted by creds_provider_new() and owned
 * (freed) by the provider; read-only afterwards. */
struct creds_endpoints {
	char *ecs_relative_uri, *ecs_full_uri, *ecs_token, *ecs_token_file;
	char *ecs_base;
	bool imds_v1;
	char *imds_endpoint; /* no trailing '/' */
	long connect_timeout_ms, timeout_ms;
	int retries;
};

/* The SDK rule for AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere, plain
 * http only to loopback or the container agent. 0, or -1 with *e set
 * (IERR_CONFIG). Does not block. */
int creds_check_full_uri(const char *uri, struct ierr *e);

/*
 * Fetch credentials from the ECS container endpoint or from EC2 instance
 * metadata (IMDSv2, IMDSv1 only as ep->imds_v1 allows). Returns 0 with *c
 * filled (c->source "ecs" or "imds:ROLE[ (IMDSv1)]"), or -1 with *e set:
 * IERR_TRANSIENT when worth retrying (network error, 5xx, malformed answer),
 * IERR_CONFIG for refusals, IERR_IO/IERR_INTERNAL for a token file or libcurl
 * failure. Messages start with "AWS credentials: " and never contain secrets
 * or ECS URI paths. Blocks for network I/O (see creds.h); touches no shared
 * state.
 */
int creds_fetch_ecs(const struct creds_endpoints *ep, struct aws_creds *c, struct ierr *e);
int creds_fetch_imds(const struct creds_endpoints *ep, struct aws_creds *c, struct ierr *e);

#endif
