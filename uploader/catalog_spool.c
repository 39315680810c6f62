/*
 * catalog_spool.c - what the catalog reads from spool.db: the recorded
 * schemas of a source, one partition's schema and run (see catalog.h).
 *
 * Kept apart from the JSON code: spool.h brings the spool's JSON writer,
 * whose names collide with jansson's.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_internal.h"
#include "log.h"
#include "spool.h"
#include "util.h"

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? xstrdup((const char *)v) : NULL;
}

void catalog_part_free(struct catalog_part *r)
{
	free(r->table);
	free(r->schema);
	free(r->source);
	free(r->db_type);
	free(r->bucket);
	free(r->settings);
	free(r->range_json);
	free(r->key_json);
}

int catalog_read_partition(struct spool *sp, int64_t id, struct catalog_part *r, struct ierr *e)
{
	static const char sql[] = "SELECT p.table_name, p.schema_json, r.source, r.db_type, "
	                          "r.bucket, r.started_at, r.settings_json, p.range_json, "
	                          "p.key_json FROM partitions p "
	                          "JOIN runs r ON r.run_id = p.run_id WHERE p.id = ?1";
	sqlite3 *db = spool_db(sp);
	sqlite3_stmt *st = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return ierr_set(e, IERR_SPOOL, "spool %s: partition %lld: %s", spool_dir(sp),
		                (long long)id, sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->table = col_dup(st, 0);
		r->schema = col_dup(st, 1);
		r->source = col_dup(st, 2);
		r->db_type = col_dup(st, 3);
		r->bucket = col_dup(st, 4);
		r->started_at = sqlite3_column_int64(st, 5);
		r->settings = col_dup(st, 6);
		r->range_json = col_dup(st, 7);
		r->key_json = col_dup(st, 8);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return ierr_set(e, IERR_SPOOL, "spool %s: no partition %lld", spool_dir(sp),
		                (long long)id);
	return ierr_set(e, IERR_SPOOL, "spool %s: partition %lld: %s", spool_dir(sp), (long long)id,
	                sqlite3_errmsg(db));
}

int catalog_model_load(struct catalog_model *m, struct spool *sp, const char *tmpl, struct ierr *e)
{
	static const char sql[] =
	    "SELECT r.run_id, r.db_type, r.bucket, r.started_at, r.settings_json, "
	    "p.table_name, p.schema_json, p.range_json, p.key_json "
	    "FROM partitions p JOIN runs r ON r.run_id = p.run_id "
	    "WHERE r.source = ?1 AND p.state = 'complete' AND p.schema_json IS NOT NULL "
	    "ORDER BY r.started_at, r.run_id, p.id";
	sqlite3 *db = spool_db(sp);
	sqlite3_stmt *st = NULL;
	int merged = 0, skipped = 0, rc;
	char *bucket = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return ierr_set(e, IERR_SPOOL, "spool %s: reading schemas: %s", spool_dir(sp),
		                sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, m->source, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *run_id = (const char *)sqlite3_column_text(st, 0);
		const char *db_type = (const char *)sqlite3_column_text(st, 1);
		const char *b = (const char *)sqlite3_column_text(st, 2);
		int64_t started = sqlite3_column_int64(st, 3);
		const char *settings = (const char *)sqlite3_column_text(st, 4);
		const char *table = (const char *)sqlite3_column_text(st, 5);
		const char *schema = (const char *)sqlite3_column_text(st, 6);
		struct athena_settings s;

		if (!catalog_run_matches(m, settings, tmpl)) {
			if (skipped++ == 0)
				log_event(LOG_WARNING,
				          "run skipped: its objects are under another S3_PREFIX or "
				          "key template than the configuration's",
				          "run", run_id, "table", table, NULL);
			continue;
		}
		if (bucket && b && strcmp(bucket, b) != 0)
			log_event(LOG_WARNING,
			          "runs of this source went to different buckets; the catalog "
			          "uses the newest",
			          "run", run_id, "bucket", b, "before", bucket, NULL);
		free(bucket);
		bucket = xstrdup(b ? b : "");
		catalog_settings_parse(settings, &s);
		if (catalog_model_add(m, db_type, table, schema, &s, catalog_year_of_ms(started),
		                      e) != 0) {
			ierr_prefix(e, "run %s", run_id);
			sqlite3_finalize(st);
			free(bucket);
			return -1;
		}
		catalog_table_set_current(catalog_model_table(m, table),
		                          (const char *)sqlite3_column_text(st, 7),
		                          (const char *)sqlite3_column_text(st, 8));
		merged++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(bucket);
		return ierr_set(e, IERR_SPOOL, "spool %s: reading schemas: %s", spool_dir(sp),
		                sqlite3_errmsg(db));
	}
	if (bucket) {
		free(m->bucket);
		m->bucket = bucket;
	}
	return merged;
}
