/*
 * catalog_internal.h - what the catalog's own files share (catalog.c,
 * catalog_spool.c, catalog_sync.c). Not for other components: catalog.h.
 */
#ifndef INGESTA_CATALOG_INTERNAL_H
#define INGESTA_CATALOG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "err.h"

/* One complete partition and its run, as spool.db records them (owned
 * strings; NULL where the column is NULL). */
struct catalog_part {
	char *table, *schema, *source, *db_type, *bucket, *settings;
	char *range_json, *key_json; /* incremental tables; NULL otherwise */
	int64_t started_at;
};

int catalog_read_partition(struct spool *sp, int64_t id, struct catalog_part *r, struct ierr *e);
void catalog_part_free(struct catalog_part *r);

/* The run's objects are where the model's prefix and tmpl say. */
bool catalog_run_matches(const struct catalog_model *m, const char *settings_json,
                         const char *tmpl);

/* UTC year of a unix time in ms (0 when out of range). */
int catalog_year_of_ms(int64_t ms);

#endif
