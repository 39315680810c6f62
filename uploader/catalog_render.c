/*
 * catalog_render.c - what a catalog model looks like to Athena, Trino and
 * Glue: DDL, view SQL, Glue TableInput objects (see catalog.h).
 *
 * Everything here is a pure function of the model, so the unit test pins it
 * with golden strings.
 *
 * Views: a row belongs to the run whose id is in its object's file name
 * ("$path"; run ids are YYYYMMDDTHHMMSSZ-<8 hex>), and a run is visible only
 * through its commit record in ingesta_runs, whose presence means every
 * object of the run is there. Joining on year/month/day as well lets Trino
 * prune the data table's partitions (dynamic filtering from the small
 * commit-log side; a user's filter on year/month/day propagates to both
 * sides). Views are stored the way Trino's Hive connector stores them
 * (ViewReaderUtil.encodeViewData, TrinoViewUtil.createViewProperties):
 * TableType VIRTUAL_VIEW, ViewOriginalText "/" "* Presto View: <base64 of
 * the ConnectorViewDefinition JSON> *" "/", ViewExpandedText
 * "/" "* Presto View *" "/", parameters presto_view=true and
 * comment=Presto View (both are checked by isTrinoView()).
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#define SERDE         "org.openx.data.jsonserde.JsonSerDe"
#define INPUT_FORMAT  "org.apache.hadoop.mapred.TextInputFormat"
#define OUTPUT_FORMAT "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
/* A run id in a file name: 20261201T093000Z-1a2b3c4d. */
#define RUN_ID_REGEX "([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})[^/]*$"

/* The commit log's columns (docs/COMMIT_LOG.md). */
static const struct {
	const char *name, *type;
} runs_columns[] = {
    {"source", "string"},
    {"db_type", "string"},
    {"table_name", "string"},
    {"run_id", "string"},
    {"run_started_at", "timestamp"},
    {"committed_at", "timestamp"},
    {"mode", "string"},
    {"rows", "bigint"},
    {"bytes", "bigint"},
    {"raw_bytes", "bigint"},
    {"objects", "array<struct<key:string,rows:bigint,bytes:bigint,sha256:string>>"},
    {"lossy", "struct<nonfinite:bigint,invalid_utf8:bigint,invalid_dates:bigint,"
              "infinite_dates:bigint>"},
    {"schema_fingerprint", "string"},
    {"manifest_key", "string"},
};
#define NRUNS_COLUMNS (sizeof(runs_columns) / sizeof(runs_columns[0]))

static const char *const partition_keys[] = {"year", "month", "day"};

/* ================================================================ pieces */

/* s3://<bucket>/<prefix><head><dir>/; the commit log has no head (its keys
 * are [S3_PREFIX/]ingesta_runs/..., whatever the data's template). */
static void location(const struct catalog_model *m, const char *dir, struct buf *out)
{
	bool runs = strcmp(dir, CATALOG_RUNS_TABLE) == 0;

	if (strncmp(m->bucket, "file://", 7) == 0) {
		size_t n = strlen(m->bucket);

		buf_puts(out, m->bucket);
		if (n > 0 && m->bucket[n - 1] != '/')
			buf_putc(out, '/');
	} else {
		buf_printf(out, "s3://%s/", m->bucket);
	}
	buf_printf(out, "%s%s%s/", m->prefix, runs ? "" : m->head, dir);
}

/* Year range of partition projection: the runs' years, and the next year so
 * that a run on New Year's day is visible before anyone widens the range. */
static void year_range(int lo, int hi, char *out, size_t outsz)
{
	if (lo <= 0 || hi <= 0) {
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		lo = hi = tm.tm_year + 1900;
	}
	snprintf(out, outsz, "%d,%d", lo, hi + 1);
}

/* Hive DDL string literal body: backslash escapes. */
static void hive_str(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			buf_putc(out, '\\');
		buf_putc(out, *s);
	}
}

/* Trino SQL string literal body: quotes doubled. */
static void sql_str(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\'')
			buf_putc(out, '\'');
		buf_putc(out, *s);
	}
}

static bool needs_mapping(const struct catalog_column *c)
{
	char lower[512];
	size_t n = strlen(c->key);

	if (n >= sizeof(lower))
		return true;
	for (size_t i = 0; i <= n; i++)
		lower[i] =
		    (char)((c->key[i] >= 'A' && c->key[i] <= 'Z') ? c->key[i] + 32 : c->key[i]);
	return strcmp(lower, c->name) != 0;
}

/* Projection parameters, as (key, value) pairs appended through fn. */
static void projection(const struct catalog_model *m, const char *dir, int lo, int hi,
                       void (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	char range[32];
	struct buf loc = {0};

	year_range(lo, hi, range, sizeof(range));
	location(m, dir, &loc);
	buf_puts(&loc, "year=${year}/month=${month}/day=${day}/");
	fn(ctx, "projection.enabled", "true");
	fn(ctx, "projection.year.type", "integer");
	fn(ctx, "projection.year.range", range);
	fn(ctx, "projection.month.type", "integer");
	fn(ctx, "projection.month.range", "1,12");
	fn(ctx, "projection.month.digits", "2");
	fn(ctx, "projection.day.type", "integer");
	fn(ctx, "projection.day.range", "1,31");
	fn(ctx, "projection.day.digits", "2");
	fn(ctx, "storage.location.template", buf_cstr(&loc));
	buf_free(&loc);
}

/* ================================================================ DDL */

struct ddl_props {
	struct buf *out;
	bool first;
};

static void ddl_prop(void *ctx, const char *k, const char *v)
{
	struct ddl_props *p = ctx;

	buf_puts(p->out, p->first ? "\n  '" : ",\n  '");
	hive_str(p->out, k);
	buf_puts(p->out, "'='");
	hive_str(p->out, v);
	buf_putc(p->out, '\'');
	p->first = false;
}

static void ddl_table(const struct catalog_model *m, const char *name, const char *dir,
                      const char *const *names, const char *const *types, size_t n,
                      const struct catalog_column *cols, int lo, int hi, struct buf *out)
{
	struct ddl_props p = {.out = out, .first = true};
	struct buf loc = {0};
	bool mapped = false;

	buf_printf(out, "CREATE EXTERNAL TABLE IF NOT EXISTS `%s` (", name);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s\n  `%s` %s", i ? "," : "", cols ? cols[i].name : names[i],
		           cols ? cols[i].type : types[i]);
	buf_puts(out, "\n)\nPARTITIONED BY (`year` string, `month` string, `day` string)\n");
	buf_puts(out, "ROW FORMAT SERDE '" SERDE "'\n");
	for (size_t i = 0; cols && i < n; i++) {
		if (!needs_mapping(&cols[i]))
			continue;
		buf_puts(out, mapped ? ",\n  '" : "WITH SERDEPROPERTIES (\n  '");
		buf_puts(out, "mapping.");
		hive_str(out, cols[i].name);
		buf_puts(out, "'='");
		hive_str(out, cols[i].key);
		buf_putc(out, '\'');
		mapped = true;
	}
	if (mapped)
		buf_puts(out, "\n)\n");
	buf_puts(out, "STORED AS INPUTFORMAT '" INPUT_FORMAT "'\n");
	buf_puts(out, "OUTPUTFORMAT '" OUTPUT_FORMAT "'\n");
	location(m, dir, &loc);
	buf_puts(out, "LOCATION '");
	hive_str(out, buf_cstr(&loc));
	buf_puts(out, "'\nTBLPROPERTIES (");
	projection(m, dir, lo, hi, ddl_prop, &p);
	buf_puts(out, "\n);\n");
	buf_free(&loc);
}

void catalog_render_table_ddl(const struct catalog_model *m, const struct catalog_table *t,
                              struct buf *out)
{
	ddl_table(m, t->name, t->dir, NULL, NULL, t->ncols, t->cols, t->year_min, t->year_max, out);
}

void catalog_render_runs_ddl(const struct catalog_model *m, struct buf *out)
{
	const char *names[NRUNS_COLUMNS], *types[NRUNS_COLUMNS];

	for (size_t i = 0; i < NRUNS_COLUMNS; i++) {
		names[i] = runs_columns[i].name;
		types[i] = runs_columns[i].type;
	}
	ddl_table(m, CATALOG_RUNS_TABLE, CATALOG_RUNS_TABLE, names, types, NRUNS_COLUMNS, NULL,
	          m->year_min, m->year_max, out);
}

void catalog_view_name(const struct catalog_table *t, enum catalog_view kind, char *out,
                       size_t outsz)
{
	snprintf(out, outsz, "%s%s", t->name,
	         kind == CATALOG_VIEW_LATEST  ? "_latest"
	         : kind == CATALOG_VIEW_DAILY ? "_daily"
	                                      : "_current");
}

/* The Glue name of the column whose JSON key is key (as the SerDe matches
 * keys: case-insensitively); NULL when t has none. */
static const char *column_of(const struct catalog_table *t, const char *key)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (strcasecmp(t->cols[i].key, key) == 0)
			return t->cols[i].name;
	return NULL;
}

int catalog_view_count(const struct catalog_table *t)
{
	if (t->cursor_key == NULL || t->npk == 0 || column_of(t, t->cursor_key) == NULL)
		return 2;
	for (size_t i = 0; i < t->npk; i++)
		if (column_of(t, t->pk_keys[i]) == NULL)
			return 2;
	return 3;
}

static void source_table_filter(const struct catalog_model *m, const struct catalog_table *t,
                                const char *alias, struct buf *out)
{
	buf_printf(out, "%s\"source\" = '", alias);
	sql_str(out, m->source);
	buf_printf(out, "' AND %s\"table_name\" = '", alias);
	sql_str(out, t->source_table);
	buf_putc(out, '\'');
}

/*
 * <table>_current: the runs of the newest committed snapshot of the table
 * and every committed run after it (by run_started_at, then run_id: the
 * order of the _latest view); per primary key the row of the newest version,
 * by the cursor descending (NULLs last, Trino's default), then the run.
 */
static void current_sql(const struct catalog_model *m, const struct catalog_table *t,
                        struct buf *out)
{
	buf_puts(out, "SELECT");
	for (size_t i = 0; i < t->ncols; i++)
		buf_printf(out, "%s \"%s\"", i ? "," : "", t->cols[i].name);
	buf_printf(out, "%s \"year\", \"month\", \"day\"\nFROM (\n  SELECT", t->ncols ? "," : "");
	for (size_t i = 0; i < t->ncols; i++)
		buf_printf(out, "%s t.\"%s\"", i ? "," : "", t->cols[i].name);
	buf_printf(out, "%s t.\"year\", t.\"month\", t.\"day\",\n", t->ncols ? "," : "");
	buf_puts(out, "    row_number() OVER (PARTITION BY");
	for (size_t i = 0; i < t->npk; i++)
		buf_printf(out, "%s t.\"%s\"", i ? "," : "", column_of(t, t->pk_keys[i]));
	buf_printf(out,
	           " ORDER BY t.\"%s\" DESC, c.\"run_started_at\" DESC, c.\"run_id\" DESC) "
	           "AS \"ingesta_rn\"\n",
	           column_of(t, t->cursor_key));
	buf_printf(out, "  FROM \"%s\" t\n  JOIN (\n", t->name);
	buf_puts(out, "    SELECT r.\"run_id\", r.\"year\", r.\"month\", r.\"day\", "
	              "r.\"run_started_at\"\n");
	buf_printf(out, "    FROM \"%s\" r\n    CROSS JOIN (\n", CATALOG_RUNS_TABLE);
	buf_puts(out,
	         "      SELECT \"run_started_at\" AS \"snap_at\", \"run_id\" AS \"snap_id\"\n");
	buf_printf(out, "      FROM \"%s\"\n      WHERE ", CATALOG_RUNS_TABLE);
	source_table_filter(m, t, "", out);
	buf_puts(out, " AND coalesce(\"mode\", 'snapshot') = 'snapshot'\n");
	buf_puts(out, "      ORDER BY \"run_started_at\" DESC, \"run_id\" DESC\n      LIMIT 1\n"
	              "    ) s\n    WHERE ");
	source_table_filter(m, t, "r.", out);
	buf_puts(out,
	         "\n      AND (r.\"run_started_at\" > s.\"snap_at\" OR "
	         "(r.\"run_started_at\" = s.\"snap_at\" AND r.\"run_id\" >= s.\"snap_id\"))\n");
	buf_puts(out, "  ) c\n  ON t.\"year\" = c.\"year\" AND t.\"month\" = c.\"month\" AND "
	              "t.\"day\" = c.\"day\"\n");
	buf_puts(out, "  AND regexp_extract(t.\"$path\", '" RUN_ID_REGEX "', 1) = c.\"run_id\"\n");
	buf_puts(out, ") v\nWHERE \"ingesta_rn\" = 1");
}

void catalog_view_sql(const struct catalog_model *m, const struct catalog_table *t,
                      enum catalog_view kind, struct buf *out)
{
	if (kind == CATALOG_VIEW_CURRENT) {
		current_sql(m, t, out);
		return;
	}
	buf_puts(out, "SELECT");
	for (size_t i = 0; i < t->ncols; i++)
		buf_printf(out, "%s t.\"%s\"", i ? "," : "", t->cols[i].name);
	buf_printf(out, "%s t.\"year\", t.\"month\", t.\"day\"\n", t->ncols ? "," : "");
	buf_printf(out, "FROM \"%s\" t\nJOIN (\n", t->name);
	buf_puts(out, "  SELECT \"run_id\", \"year\", \"month\", \"day\"\n  FROM (\n");
	buf_puts(out, "    SELECT \"run_id\", \"year\", \"month\", \"day\",\n");
	buf_printf(out,
	           "      row_number() OVER (%sORDER BY \"run_started_at\" DESC, \"run_id\" "
	           "DESC) AS \"rn\"\n",
	           kind == CATALOG_VIEW_DAILY ? "PARTITION BY \"year\", \"month\", \"day\" " : "");
	buf_printf(out, "    FROM \"%s\"\n    WHERE \"source\" = '", CATALOG_RUNS_TABLE);
	sql_str(out, m->source);
	buf_puts(out, "' AND \"table_name\" = '");
	sql_str(out, t->source_table);
	buf_puts(out, "'\n  )\n  WHERE \"rn\" = 1\n) c\n");
	buf_puts(out, "ON t.\"year\" = c.\"year\" AND t.\"month\" = c.\"month\" AND t.\"day\" = "
	              "c.\"day\"\n");
	buf_puts(out, "AND regexp_extract(t.\"$path\", '" RUN_ID_REGEX "', 1) = c.\"run_id\"");
}

void catalog_render_ddl(const struct catalog_model *m, struct buf *out)
{
	buf_printf(out,
	           "-- ingesta catalog: source %s, %zu table(s), Glue database %s.\n"
	           "-- Run in Athena (engine v3) with that database selected. Tables use\n"
	           "-- partition projection: no crawler, no MSCK REPAIR.\n\n",
	           m->source, m->ntables, m->database);
	catalog_render_runs_ddl(m, out);
	for (size_t i = 0; i < m->ntables; i++) {
		buf_putc(out, '\n');
		catalog_render_table_ddl(m, &m->tables[i], out);
	}
	for (size_t i = 0; i < m->ntables; i++) {
		for (int k = 0; k < catalog_view_count(&m->tables[i]); k++) {
			char name[600];

			catalog_view_name(&m->tables[i], (enum catalog_view)k, name, sizeof(name));
			buf_printf(out, "\nCREATE OR REPLACE VIEW \"%s\" AS\n", name);
			catalog_view_sql(m, &m->tables[i], (enum catalog_view)k, out);
			buf_puts(out, ";\n");
		}
	}
}

/* ================================================================ Glue JSON */

static json_t *jcol(const char *name, const char *type, const char *comment)
{
	json_t *c = json_object();

	json_object_set_new(c, "Name", json_string(name));
	json_object_set_new(c, "Type", json_string(type));
	if (comment && *comment)
		json_object_set_new(c, "Comment", json_string(comment));
	return c;
}

static void jparam(void *ctx, const char *k, const char *v)
{
	json_object_set_new((json_t *)ctx, k, json_string(v));
}

static json_t *partition_columns(void)
{
	json_t *a = json_array();

	for (int i = 0; i < 3; i++)
		json_array_append_new(a, jcol(partition_keys[i], "string", NULL));
	return a;
}

static json_t *storage(const struct catalog_model *m, const char *dir, json_t *cols,
                       json_t *serde_params)
{
	json_t *sd = json_object(), *serde = json_object();
	struct buf loc = {0};

	location(m, dir, &loc);
	json_object_set_new(sd, "Columns", cols);
	json_object_set_new(sd, "Location", json_string(buf_cstr(&loc)));
	json_object_set_new(sd, "InputFormat", json_string(INPUT_FORMAT));
	json_object_set_new(sd, "OutputFormat", json_string(OUTPUT_FORMAT));
	json_object_set_new(sd, "Compressed", json_false());
	json_object_set_new(sd, "NumberOfBuckets", json_integer(0));
	json_object_set_new(serde, "SerializationLibrary", json_string(SERDE));
	json_object_set_new(serde, "Parameters", serde_params);
	json_object_set_new(sd, "SerdeInfo", serde);
	buf_free(&loc);
	return sd;
}

static json_t *table_input(const struct catalog_model *m, const char *name, const char *dir,
                           const char *source_table, json_t *cols, json_t *serde_params, int lo,
                           int hi)
{
	json_t *ti = json_object(), *params = json_object();

	json_object_set_new(ti, "Name", json_string(name));
	json_object_set_new(ti, "TableType", json_string("EXTERNAL_TABLE"));
	json_object_set_new(params, "EXTERNAL", json_string("TRUE"));
	json_object_set_new(params, "classification", json_string("json"));
	if (source_table) { /* ingesta_runs is shared by every source of the database */
		json_object_set_new(params, "ingesta.source", json_string(m->source));
		json_object_set_new(params, "ingesta.table", json_string(source_table));
	}
	projection(m, dir, lo, hi, jparam, params);
	json_object_set_new(ti, "Parameters", params);
	json_object_set_new(ti, "PartitionKeys", partition_columns());
	json_object_set_new(ti, "StorageDescriptor", storage(m, dir, cols, serde_params));
	return ti;
}

json_t *catalog_table_input(const struct catalog_model *m, const struct catalog_table *t)
{
	json_t *cols = json_array(), *serde = json_object();

	for (size_t i = 0; i < t->ncols; i++) {
		const struct catalog_column *c = &t->cols[i];
		char comment[256];

		snprintf(comment, sizeof(comment), "%.230s%s", c->source_type,
		         c->nullable ? "" : " not null");
		json_array_append_new(cols, jcol(c->name, c->type, comment));
		if (needs_mapping(c)) {
			char k[600];

			snprintf(k, sizeof(k), "mapping.%s", c->name);
			json_object_set_new(serde, k, json_string(c->key));
		}
	}
	return table_input(m, t->name, t->dir, t->source_table, cols, serde, t->year_min,
	                   t->year_max);
}

json_t *catalog_runs_table_input(const struct catalog_model *m)
{
	json_t *cols = json_array();

	for (size_t i = 0; i < NRUNS_COLUMNS; i++)
		json_array_append_new(cols, jcol(runs_columns[i].name, runs_columns[i].type, NULL));
	return table_input(m, CATALOG_RUNS_TABLE, CATALOG_RUNS_TABLE, NULL, cols, json_object(),
	                   m->year_min, m->year_max);
}

/* The view's output columns: the table's, then the partition keys. */
static void view_columns(const struct catalog_table *t,
                         void (*fn)(void *ctx, const char *name, const char *hive), void *ctx)
{
	for (size_t i = 0; i < t->ncols; i++)
		fn(ctx, t->cols[i].name, t->cols[i].type);
	for (int i = 0; i < 3; i++)
		fn(ctx, partition_keys[i], "string");
}

static void trino_col(void *ctx, const char *name, const char *hive)
{
	json_t *c = json_object();
	char type[256];

	json_object_set_new(c, "name", json_string(name));
	json_object_set_new(c, "type", json_string(athena_trino_type(hive, type, sizeof(type))));
	json_array_append_new((json_t *)ctx, c);
}

static void hive_col(void *ctx, const char *name, const char *hive)
{
	json_array_append_new((json_t *)ctx, jcol(name, hive, NULL));
}

char *catalog_presto_view_text(const struct catalog_model *m, const struct catalog_table *t,
                               enum catalog_view kind)
{
	json_t *def = json_object(), *cols = json_array();
	struct buf sql = {0};
	char *json, *out, *b64;
	size_t n;

	catalog_view_sql(m, t, kind, &sql);
	json_object_set_new(def, "originalSql", json_string(buf_cstr(&sql)));
	json_object_set_new(def, "catalog", json_string(m->view_catalog));
	json_object_set_new(def, "schema", json_string(m->database));
	view_columns(t, trino_col, cols);
	json_object_set_new(def, "columns", cols);
	/* Invoker rights and no owner: the querying user's permissions apply. */
	json_object_set_new(def, "runAsInvoker", json_true());
	json = json_dumps(def, JSON_COMPACT);
	json_decref(def);
	buf_free(&sql);
	if (json == NULL)
		return NULL;
	n = strlen(json);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	out = b64 ? malloc(4 * ((n + 2) / 3) + 64) : NULL;
	if (out == NULL) {
		free(b64);
		free(json);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)json, (int)n);
	sprintf(out, "/* Presto View: %s */", b64);
	free(b64);
	free(json);
	return out;
}

json_t *catalog_view_input(const struct catalog_model *m, const struct catalog_table *t,
                           enum catalog_view kind)
{
	json_t *ti = json_object(), *params = json_object(), *sd = json_object();
	json_t *cols = json_array(), *serde = json_object();
	char name[600];
	char *text = catalog_presto_view_text(m, t, kind);

	catalog_view_name(t, kind, name, sizeof(name));
	json_object_set_new(ti, "Name", json_string(name));
	json_object_set_new(ti, "TableType", json_string("VIRTUAL_VIEW"));
	json_object_set_new(params, "presto_view", json_string("true"));
	json_object_set_new(params, "comment", json_string("Presto View"));
	json_object_set_new(params, "trino_created_by", json_string("ingesta"));
	json_object_set_new(params, "ingesta.source", json_string(m->source));
	json_object_set_new(params, "ingesta.table", json_string(t->source_table));
	json_object_set_new(ti, "Parameters", params);
	json_object_set_new(ti, "PartitionKeys", json_array());
	view_columns(t, hive_col, cols);
	json_object_set_new(sd, "Columns", cols);
	json_object_set_new(sd, "Location", json_string(""));
	json_object_set_new(sd, "NumberOfBuckets", json_integer(0));
	json_object_set_new(serde, "Parameters", json_object());
	json_object_set_new(sd, "SerdeInfo", serde);
	json_object_set_new(ti, "StorageDescriptor", sd);
	json_object_set_new(ti, "ViewOriginalText", json_string(text ? text : ""));
	json_object_set_new(ti, "ViewExpandedText", json_string("/* Presto View */"));
	free(text);
	return ti;
}

static void json_line(struct buf *out, json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	if (s) {
		buf_puts(out, s);
		buf_putc(out, '\n');
		free(s);
	}
	json_decref(obj);
}

static json_t *create_request(const struct catalog_model *m, json_t *ti)
{
	json_t *rq = json_object();

	json_object_set_new(rq, "DatabaseName", json_string(m->database));
	json_object_set_new(rq, "TableInput", ti);
	return rq;
}

void catalog_render_json(const struct catalog_model *m, struct buf *out)
{
	json_t *db = json_object(), *dbi = json_object();

	json_object_set_new(dbi, "Name", json_string(m->database));
	json_object_set_new(db, "DatabaseInput", dbi);
	json_line(out, db);
	json_line(out, create_request(m, catalog_runs_table_input(m)));
	for (size_t i = 0; i < m->ntables; i++)
		json_line(out, create_request(m, catalog_table_input(m, &m->tables[i])));
	for (size_t i = 0; i < m->ntables; i++)
		for (int k = 0; k < catalog_view_count(&m->tables[i]); k++)
			json_line(out, create_request(m, catalog_view_input(m, &m->tables[i],
			                                                    (enum catalog_view)k)));
}
