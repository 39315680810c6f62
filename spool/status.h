/*
 * status.h - read-only views of the spool for operators: `ingesta status`.
 *
 * Safe while collectors and the uploader run (a read transaction on the WAL
 * database). Output goes to `out`, as a human table or as JSON (schema in
 * README.md, "status --json").
 */
#ifndef INGESTA_STATUS_H
#define INGESTA_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "spool.h"

struct status_opts {
	bool json;
	int64_t quota_bytes; /* SPOOL_MAX_BYTES, for "spool size against quota" */
};

int status_print(struct spool *sp, const struct status_opts *o, FILE *out, struct ierr *e);

#endif
