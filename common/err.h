/*
 * err.h - the one error convention of ingesta.
 *
 * A function that can fail returns 0 (or a non-NULL pointer) on success and -1
 * (or NULL) on failure, after filling a caller-owned `struct ierr` with a human
 * message that names the thing (table, key, file, config key) and the cause.
 * Messages never contain secrets: callers format only names, never values of
 * passwords or keys. Nothing below main() calls exit().
 */
#ifndef INGESTA_ERR_H
#define INGESTA_ERR_H

#include <stddef.h>

/* Process exit codes, documented in README.md ("Exit codes"). */
enum ingesta_exit {
	EXIT_OK = 0,
	EXIT_FAILURE_GENERIC = 1, /* unexpected internal error */
	EXIT_USAGE = 2,           /* bad command line or configuration */
	EXIT_SOURCE = 3,          /* source database error (connect, query, data) */
	EXIT_SPOOL = 4,           /* spool error: disk full, quota, corrupt or newer spool */
	EXIT_UPLOAD = 5,          /* upload --once: segments left failed or pending */
	EXIT_CHECK = 6,           /* status --check / verify: unhealthy */
	EXIT_INTERRUPTED = 7,     /* stopped by SIGTERM/SIGINT before finishing */
};

/* Error classes: let callers decide retry vs. fail without parsing text. */
enum ierr_code {
	IERR_NONE = 0,
	IERR_INTERNAL,
	IERR_CONFIG,
	IERR_IO,
	IERR_NOSPACE, /* ENOSPC, EDQUOT or the spool quota */
	IERR_SOURCE,
	IERR_SPOOL,
	IERR_TRANSIENT, /* worth retrying: network, 5xx, throttling */
	IERR_PERMANENT, /* not worth retrying: 4xx, conflict */
	IERR_INTERRUPTED,
};

struct ierr {
	enum ierr_code code;
	char msg[1024];
};

/* Fill *e (if not NULL) and return -1, so callers can `return ierr_set(...)`. */
int ierr_set(struct ierr *e, enum ierr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ierr_set, appending ": strerror(errnum)". */
int ierr_errno(struct ierr *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "<prefix>: <old message>". Returns -1. */
int ierr_prefix(struct ierr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void ierr_clear(struct ierr *e);

#endif
