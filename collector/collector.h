/*
 * collector.h - one collection run: source -> normalized rows -> spool.
 *
 * collector_run() reads every selected table of the configured source inside
 * one snapshot and commits each table to the spool as it completes. It stops
 * at the first failing table: that table leaves nothing behind, the tables
 * committed before it stay committed and upload normally.
 *
 * Blocks for as long as the extraction takes; polls ingesta_stop_requested.
 */
#ifndef INGESTA_COLLECTOR_H
#define INGESTA_COLLECTOR_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

struct collect_summary {
	int tables;
	uint64_t rows;
	uint64_t bytes;
	char bucket[1024];
	char run_id[64];
};

/* The target bucket for this source: S3_BUCKET, else the original's
 * S3_BUCKET_MS1/2/3 by DB_TYPE. NULL with *e when none is configured. */
const char *collector_bucket(const struct config *cfg, struct ierr *e);

/* The source name the spool knows this config's runs by: SOURCE_NAME, else
 * the canonical DB_TYPE; NULL when DB_TYPE names no driver. */
const char *collector_source_name(const struct config *cfg);

int collector_run(const struct config *cfg, struct collect_summary *sum, struct ierr *e);

/* Print the NDJSON of the selected tables (all when tables is NULL/empty) to
 * out, without touching any spool: for checks and debugging. */
int collector_extract(const struct config *cfg, const char *const *tables, FILE *out,
                      struct ierr *e);

#endif
