/*
 * catalog.h - the lake as Athena reads it: table definitions, the commit-log
 * table, snapshot views, and keeping them registered in the Glue Data Catalog.
 *
 * The model (struct catalog_model) is built from spool.db: for one source,
 * every complete partition with a recorded schema (partitions.schema_json),
 * oldest run first. A table's columns are the union over its runs in
 * first-seen order; a column keeps the Athena type it was first given (a
 * later run that maps it to another type is logged as a warning and counted,
 * never retyped), new columns are appended. Names are made Glue-safe:
 * lowercase, [a-z0-9_], every other character '_'; a JSON key that is not
 * already its lowercased name gets a SerDe mapping (mapping.<col>=<Key>); two
 * keys that end up with one name are an error naming both.
 *
 * From a model, catalog_render.c prints (pure, deterministic):
 * - per table: CREATE EXTERNAL TABLE IF NOT EXISTS with typed columns,
 *   PARTITIONED BY (year, month, day string), the OpenX JSON SerDe, LOCATION
 *   s3://<bucket>/<prefix><table>/ and partition projection properties;
 * - ingesta_runs, the commit log (docs/COMMIT_LOG.md), typed;
 * - two views per table: <table>_latest (the newest committed run of the
 *   table) and <table>_daily (per day partition, the newest committed run of
 *   that day). A row belongs to the run whose id is in its object's file
 *   name ("$path"); only runs with a commit record are visible. Incremental
 *   tables (LOAD_MODE=incremental: partitions with a cursor range and a
 *   key) get a third, <table>_current: one row per primary key, its newest
 *   version (cursor descending, then run) over the newest committed
 *   snapshot run of the table and every committed run after it.
 * - the same as Glue CreateTable requests ({"DatabaseName", "TableInput"}),
 *   views in the encoding Trino and Athena use (VIRTUAL_VIEW, presto_view).
 *
 * catalog_ctx (catalog_sync.c) keeps Glue current for the uploader: before a
 * commit record is written, catalog_sync_partition() makes sure the database,
 * ingesta_runs, the partition's table (with every column of its schema) and
 * its views exist. What is registered is cached in memory: the steady state
 * costs no Glue call.
 */
#ifndef INGESTA_CATALOG_H
#define INGESTA_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "athena_types.h"
#include "buf.h"
#include "config.h"
#include "err.h"

/* Not included here: spool.h's JSON writer and jansson both define json_*
 * names. Files that use one never include the other. */
struct spool;
struct json_t;

/* The catalog name view definitions resolve their tables in by default:
 * Athena's (GLUE_VIEW_CATALOG changes it, e.g. for a Trino catalog "hive"). */
#define CATALOG_VIEW_CATALOG "awsdatacatalog"
/* The commit log's table and directory. */
#define CATALOG_RUNS_TABLE "ingesta_runs"
/* Partition projection's default year range start when no run is known. */
#define CATALOG_YEAR_MIN_DEFAULT 2020

struct catalog_column {
	char *name;        /* Glue name: [a-z0-9_] */
	char *key;         /* the JSON key (the source's column name) */
	char *type;        /* Athena/Hive type */
	char *source_type; /* as the source spelled it at first sight */
	bool nullable;
};

struct catalog_table {
	char *source_table; /* the source's name ("sales.orders") */
	char *name;         /* Glue name ("sales_orders") */
	char *dir;          /* its directory in object keys ("sales.orders") */
	struct catalog_column *cols;
	size_t ncols, capcols;
	int type_changes; /* columns a later run mapped to another type */
	int year_min, year_max;
	/* Incremental tables (<table>_current): the cursor column's and the
	 * primary key's JSON keys, from the newest partition that has them;
	 * NULL / 0 otherwise. */
	char *cursor_key;
	char **pk_keys;
	size_t npk;
};

struct catalog_model {
	char *source;       /* SOURCE_NAME */
	char *database;     /* Glue database ("default" when GLUE_DATABASE is empty) */
	char *bucket;       /* bucket name (s3://<bucket>/...), or a file:// URL */
	char *prefix;       /* "" or "prefix/" */
	char *head;         /* key template text before {table}, expanded ("" usually) */
	char *view_catalog; /* GLUE_VIEW_CATALOG */
	struct catalog_table *tables;
	size_t ntables, captables;
	int year_min, year_max; /* over all runs: partition projection range */
	int type_changes;
};

/* ---- names and the key template (pure) ---- */

/* Glue-safe name of s: lowercase ASCII letters, digits and '_', every other
 * character (a UTF-8 sequence counts once) '_'; "" becomes "_". */
void catalog_glue_name(const char *s, char *out, size_t outsz);

/*
 * Check that objects under tmpl (S3_KEY_TEMPLATE; "" = the default chosen by
 * partitioning, i.e. ENABLE_PARTITIONING) are readable as a partitioned
 * table: the template must contain "{table}/year={year}/month={month}/day={day}/"
 * (with only literal text and {source} before it) and {run_id} in the file
 * name. -1 with IERR_CONFIG naming the key otherwise. On success *head_out
 * (when not NULL) gets the text before {table} with {source} expanded.
 */
int catalog_check_template(const char *tmpl, bool partitioning, const char *source,
                           struct buf *head_out, struct ierr *e);

/* ---- the model ---- */

/* Empty model for a source; database and bucket may be NULL ("default",
 * ""). prefix is S3_PREFIX as configured (slashes normalised here). */
void catalog_model_init(struct catalog_model *m, const char *source, const char *database,
                        const char *bucket, const char *prefix, const char *head);
void catalog_model_free(struct catalog_model *m);
/* The catalog views resolve in (default CATALOG_VIEW_CATALOG; "" keeps it). */
void catalog_model_set_view_catalog(struct catalog_model *m, const char *name);

/*
 * Merge one recorded schema (the canonical schema JSON of partitions.
 * schema_json) of table `table` (source name; its key directory is the name
 * with '/' -> '_') of a run started in `year` into the model: new table, new
 * columns appended, type changes logged (warning) and counted. -1 with
 * IERR_CONFIG on a name clash, IERR_SPOOL on JSON that is not a schema.
 */
int catalog_model_add(struct catalog_model *m, const char *db_type, const char *table,
                      const char *schema_json, const struct athena_settings *s, int year,
                      struct ierr *e);

/* The table of that source name, added (empty) when absent; NULL with *e on
 * a Glue name clash with another table, view or ingesta_runs. */
struct catalog_table *catalog_model_add_table(struct catalog_model *m, const char *source_table,
                                              struct ierr *e);

/* Merge one column (JSON key, the source's type, the Athena type): kept as
 * it is when a column with that key (case-insensitively, as the SerDe reads
 * keys) exists (a different type is logged and counted), appended
 * otherwise. -1 with IERR_CONFIG on a Glue name clash. */
int catalog_table_add_column(struct catalog_model *m, struct catalog_table *t, const char *key,
                             const char *source_type, bool nullable, const char *type,
                             struct ierr *e);

/* Settings from runs.settings_json (NULL or unparsable: the defaults). */
void catalog_settings_parse(const char *settings_json, struct athena_settings *s);

/* The S3_PREFIX and key template recorded in runs.settings_json, appended
 * to prefix and tmpl; dflt_* when the settings do not say (older runs). */
void catalog_settings_layout(const char *settings_json, const char *dflt_prefix,
                             const char *dflt_tmpl, struct buf *prefix, struct buf *tmpl);

/*
 * Build the model of `source` from the spool: complete partitions with a
 * schema, oldest run first. Runs whose S3_PREFIX or key template (from their
 * settings) differ from the given ones are skipped with a warning (their
 * objects are elsewhere). Returns the number of partitions merged (0: the
 * spool has no schema for the source yet), or -1 with *e.
 */
int catalog_model_load(struct catalog_model *m, struct spool *sp, const char *tmpl, struct ierr *e);

/* Record that t is read incrementally: range_json {"column",...} and key_json
 * ["id",...] of one of its partitions (partitions.range_json / key_json;
 * either NULL: nothing changes). A later call replaces an earlier one.
 * Returns true when the cursor or the key changed. */
bool catalog_table_set_current(struct catalog_table *t, const char *range_json,
                               const char *key_json);
/* The same from another model's table (src without a cursor: nothing). */
bool catalog_table_copy_current(struct catalog_table *dst, const struct catalog_table *src);

/* Find a table by its source name; NULL when absent. */
struct catalog_table *catalog_model_table(struct catalog_model *m, const char *source_table);

/* ---- rendering (catalog_render.c, pure) ---- */

enum catalog_view { CATALOG_VIEW_LATEST, CATALOG_VIEW_DAILY, CATALOG_VIEW_CURRENT };

/* The views t has: 2 (_latest, _daily), 3 with _current (an incremental
 * table whose cursor and key columns are all columns of t). */
int catalog_view_count(const struct catalog_table *t);

/* Athena DDL for the whole model: database comment, ingesta_runs, each
 * table, each table's views (CREATE OR REPLACE VIEW). */
void catalog_render_ddl(const struct catalog_model *m, struct buf *out);
void catalog_render_table_ddl(const struct catalog_model *m, const struct catalog_table *t,
                              struct buf *out);
void catalog_render_runs_ddl(const struct catalog_model *m, struct buf *out);

/* The SELECT of a view (Trino/Athena dialect), table names unqualified
 * (the view's catalog and schema resolve them). */
void catalog_view_sql(const struct catalog_model *m, const struct catalog_table *t,
                      enum catalog_view kind, struct buf *out);
/* "<table>_latest" / "<table>_daily" / "<table>_current" */
void catalog_view_name(const struct catalog_table *t, enum catalog_view kind, char *out,
                       size_t outsz);

/* Glue TableInput objects (new references; json_decref them). */
struct json_t *catalog_table_input(const struct catalog_model *m, const struct catalog_table *t);
struct json_t *catalog_runs_table_input(const struct catalog_model *m);
struct json_t *catalog_view_input(const struct catalog_model *m, const struct catalog_table *t,
                                  enum catalog_view kind);
/* The ViewOriginalText: the "Presto View: " comment around the base64 of the
 * view definition JSON, as Trino writes it (malloc'd). */
char *catalog_presto_view_text(const struct catalog_model *m, const struct catalog_table *t,
                               enum catalog_view kind);

/* One CreateTable request per line: {"DatabaseName":...,"TableInput":...},
 * after a first line {"DatabaseInput":{"Name":...}} (CreateDatabase). */
void catalog_render_json(const struct catalog_model *m, struct buf *out);

/* ---- Glue registration (catalog_sync.c) ---- */

struct catalog_ctx;

/* GLUE_DATABASE is set: the uploader registers tables. */
bool catalog_enabled(const struct config *cfg);

/* The Glue database of a source: GLUE_DATABASE with {source} expanded,
 * Glue-safe; "default" when GLUE_DATABASE is empty. */
void catalog_database_name(const struct config *cfg, const char *source, char *out, size_t outsz);

/*
 * A Glue registrar from the configuration (GLUE_DATABASE, GLUE_ENDPOINT,
 * GLUE_REGION or the S3 region, credentials as for S3, S3_PREFIX and the key
 * template, which must pass catalog_check_template()). NULL with *e
 * (IERR_CONFIG naming the key). Opens no connection. One context per thread.
 */
struct catalog_ctx *catalog_ctx_new(const struct config *cfg, struct ierr *e);
void catalog_ctx_free(struct catalog_ctx *c);

/*
 * Make Glue hold what partition `partition_id` (complete, of any source in
 * the spool) needs before its commit record is written: the database,
 * ingesta_runs, its table with every column of its schema (new columns added
 * with UpdateTable; existing ones never dropped or retyped: a type change is
 * logged and counted), a projection year range covering its run, and the
 * table's two views (re-registered whenever the table's columns grow). A
 * partition without a schema (older spools) needs nothing. Cached: a
 * partition whose table is registered with all its columns costs no Glue
 * call. Returns 0, or -1 with e->code IERR_TRANSIENT (throttling, 5xx,
 * network: retry later) or IERR_PERMANENT (AccessDenied, validation, a
 * table of another source at that name: needs an operator), e->msg naming
 * the Glue operation, table and error code. May block on the network.
 */
int catalog_sync_partition(struct catalog_ctx *c, struct spool *sp, int64_t partition_id,
                           struct ierr *e);

/* Type changes seen by this context (for status/metrics). */
int64_t catalog_type_changes(const struct catalog_ctx *c);

/*
 * `ingesta catalog --apply`: register the whole model once (database,
 * ingesta_runs, every table and its views). Prints one line per object
 * created, updated or unchanged to `out` when not NULL. 0 or -1 with *e.
 */
int catalog_apply(struct catalog_ctx *c, const struct catalog_model *m, FILE *out, struct ierr *e);

#endif
