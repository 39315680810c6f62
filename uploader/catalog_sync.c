/*
 * catalog_sync.c - keeping the Glue Data Catalog current (see catalog.h).
 *
 * What this process knows Glue holds is cached per (database, table): the
 * table's columns as registered (read back with GetTable the first time, so
 * columns and types someone set in Glue are kept), its projection year range,
 * and whether its views are registered for these columns. A partition whose
 * columns and year are all covered costs no Glue call. Writes replace the
 * whole TableInput (Glue has no partial update), regenerated from the cached
 * columns plus the new ones: a column is never dropped or retyped here.
 *
 * A table (or ingesta_runs) registered at another location belongs to
 * another source or bucket: that is a permanent error that names both
 * locations instead of a silent re-pointing; give each source its own
 * database with GLUE_DATABASE=..._{source}.
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog_internal.h"
#include "glue.h"
#include "log.h"
#include "util.h"

struct reg_table {
	struct catalog_model m; /* one table: its columns as registered */
	bool table_ok;          /* Glue has every column of m and its range */
	bool views_ok;
	bool known; /* looked up in Glue at least once */
};

struct reg_db {
	char name[256];
	bool ok;
	struct catalog_model runs; /* location and year range of ingesta_runs */
	bool runs_known, runs_ok;
};

struct catalog_ctx {
	struct glue_client *g;
	char db_template[256]; /* GLUE_DATABASE */
	char tmpl[1024];       /* the configured key template ("" = default) */
	bool partitioning;
	char prefix[600];
	char view_catalog[256]; /* GLUE_VIEW_CATALOG */
	struct reg_db *dbs;
	size_t ndbs;
	struct reg_table *tables;
	size_t ntables;
	int64_t type_changes;
};

bool catalog_enabled(const struct config *cfg)
{
	return config_str(cfg, "GLUE_DATABASE")[0] != '\0';
}

static void expand_db(const char *tmpl, const char *source, char *out, size_t outsz)
{
	struct buf b = {0};

	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "{source}", 8) == 0) {
			buf_puts(&b, source);
			p += 8;
		} else {
			buf_putc(&b, *p++);
		}
	}
	catalog_glue_name(b.len ? buf_cstr(&b) : "default", out, outsz);
	buf_free(&b);
}

void catalog_database_name(const struct config *cfg, const char *source, char *out, size_t outsz)
{
	expand_db(config_str(cfg, "GLUE_DATABASE"), source, out, outsz);
}

struct catalog_ctx *catalog_ctx_new(const struct config *cfg, struct ierr *e)
{
	struct catalog_ctx *c;

	if (catalog_check_template(config_str(cfg, "S3_KEY_TEMPLATE"),
	                           config_bool(cfg, "ENABLE_PARTITIONING"), NULL, NULL, e) != 0) {
		ierr_prefix(e, "GLUE_DATABASE is set");
		e->code = IERR_CONFIG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		return NULL;
	}
	c->g = glue_client_new(cfg, catalog_enabled(cfg) ? 3 : 5, e);
	if (c->g == NULL) {
		free(c);
		return NULL;
	}
	snprintf(c->db_template, sizeof(c->db_template), "%s", config_str(cfg, "GLUE_DATABASE"));
	snprintf(c->tmpl, sizeof(c->tmpl), "%s", config_str(cfg, "S3_KEY_TEMPLATE"));
	snprintf(c->prefix, sizeof(c->prefix), "%s", config_str(cfg, "S3_PREFIX"));
	snprintf(c->view_catalog, sizeof(c->view_catalog), "%s",
	         config_str(cfg, "GLUE_VIEW_CATALOG"));
	c->partitioning = config_bool(cfg, "ENABLE_PARTITIONING");
	return c;
}

void catalog_ctx_free(struct catalog_ctx *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ntables; i++)
		catalog_model_free(&c->tables[i].m);
	for (size_t i = 0; i < c->ndbs; i++)
		catalog_model_free(&c->dbs[i].runs);
	free(c->tables);
	free(c->dbs);
	glue_client_free(c->g);
	free(c);
}

int64_t catalog_type_changes(const struct catalog_ctx *c)
{
	return c->type_changes;
}

/* ================================================================ reading Glue back */

static void location_of(const struct catalog_model *m, json_t *ti, char *out, size_t outsz)
{
	const char *loc = json_string_value(
	    json_object_get(json_object_get(ti, "StorageDescriptor"), "Location"));

	(void)m;
	snprintf(out, outsz, "%s", loc ? loc : "");
}

/* "2026,2027" -> lo 2026, hi 2026 (the rendering adds the spare year back). */
static void read_range(json_t *table, int *lo, int *hi)
{
	const char *r = json_string_value(
	    json_object_get(json_object_get(table, "Parameters"), "projection.year.range"));
	int a, b;

	if (r && sscanf(r, "%d,%d", &a, &b) == 2 && a > 0 && b > a) {
		*lo = a;
		*hi = b - 1;
	}
}

/* Fill t's columns from a Glue table (its registered names, types and SerDe
 * mappings), before any new column is merged. */
static int read_columns(struct catalog_model *m, struct catalog_table *t, json_t *table,
                        struct ierr *e)
{
	json_t *sd = json_object_get(table, "StorageDescriptor");
	json_t *maps = json_object_get(json_object_get(sd, "SerdeInfo"), "Parameters");
	json_t *col;
	size_t i;

	json_array_foreach(json_object_get(sd, "Columns"), i, col)
	{
		const char *name = json_string_value(json_object_get(col, "Name"));
		const char *type = json_string_value(json_object_get(col, "Type"));
		const char *comment = json_string_value(json_object_get(col, "Comment"));
		char mk[600], st[256];
		const char *key;
		bool nullable = true;
		size_t n;

		if (name == NULL || type == NULL)
			continue;
		snprintf(mk, sizeof(mk), "mapping.%s", name);
		key = json_string_value(json_object_get(maps, mk));
		snprintf(st, sizeof(st), "%s", comment ? comment : "");
		n = strlen(st);
		if (n >= 9 && strcmp(st + n - 9, " not null") == 0) {
			st[n - 9] = '\0';
			nullable = false;
		}
		if (catalog_table_add_column(m, t, key ? key : name, st, nullable, type, e) != 0)
			return -1;
	}
	read_range(table, &t->year_min, &t->year_max);
	return 0;
}

/* ================================================================ registration steps */

static struct reg_db *db_entry(struct catalog_ctx *c, const char *name)
{
	struct reg_db *d;

	for (size_t i = 0; i < c->ndbs; i++) {
		if (strcmp(c->dbs[i].name, name) == 0)
			return &c->dbs[i];
	}
	c->dbs = xrealloc(c->dbs, (c->ndbs + 1) * sizeof(*c->dbs));
	d = &c->dbs[c->ndbs++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	return d;
}

static void say(FILE *out, const char *what, const char *db, const char *name)
{
	if (out)
		fprintf(out, "%s %s%s%s\n", what, db, *name ? "." : "", name);
	log_event(LOG_INFO, "Glue catalog updated", "action", what, "database", db, "table", name,
	          NULL);
}

static int ensure_db(struct catalog_ctx *c, struct reg_db *d, FILE *out, struct ierr *e)
{
	int rc;

	if (d->ok)
		return 0;
	rc = glue_get_database(c->g, d->name, e);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		ierr_clear(e);
		rc = glue_create_database(c->g, d->name, e);
		if (rc < 0)
			return -1;
		if (rc == 0)
			say(out, "created database", d->name, "");
	}
	ierr_clear(e);
	d->ok = true;
	return 0;
}

/* Create (not there) or update (there, changed) one table; views: upsert. */
static int put_table(struct catalog_ctx *c, const char *db, json_t *ti, bool exists, FILE *out,
                     struct ierr *e)
{
	const char *name = json_string_value(json_object_get(ti, "Name"));
	int rc;

	if (!exists) {
		rc = glue_create_table(c->g, db, ti, e);
		if (rc == 0) {
			say(out, "created", db, name);
			return 0;
		}
		if (rc < 0)
			return -1;
		ierr_clear(e); /* created meanwhile: update it */
	}
	rc = glue_update_table(c->g, db, ti, e);
	if (rc == 1) {
		ierr_clear(e);
		rc = glue_create_table(c->g, db, ti, e);
		if (rc == 0)
			say(out, "created", db, name);
		return rc < 0 ? -1 : 0;
	}
	if (rc == 0)
		say(out, "updated", db, name);
	return rc;
}

static int location_clash(const char *what, const char *db, const char *name, const char *theirs,
                          const char *ours, struct ierr *e)
{
	return ierr_set(e, IERR_PERMANENT,
	                "Glue %s %s.%s is registered at %s, not at %s (another source or "
	                "bucket: give each its own database, e.g. GLUE_DATABASE=lake_{source})",
	                what, db, name, theirs, ours);
}

static int ensure_runs(struct catalog_ctx *c, struct reg_db *d, const struct catalog_model *src,
                       int year_lo, int year_hi, FILE *out, struct ierr *e)
{
	struct catalog_model *r = &d->runs;
	bool exists = false;
	json_t *ti;
	int rc;

	if (!d->runs_known) {
		json_t *table = NULL;

		catalog_model_init(r, src->source, d->name, src->bucket, src->prefix, src->head);
		rc = glue_get_table(c->g, d->name, CATALOG_RUNS_TABLE, &table, e);
		if (rc < 0) {
			catalog_model_free(r);
			return -1;
		}
		ierr_clear(e);
		if (rc == 1) {
			char theirs[2048];
			json_t *ours = catalog_runs_table_input(r);
			char want[2048];

			location_of(r, table, theirs, sizeof(theirs));
			location_of(r, ours, want, sizeof(want));
			json_decref(ours);
			read_range(table, &r->year_min, &r->year_max);
			json_decref(table);
			if (strcmp(theirs, want) != 0) {
				catalog_model_free(r);
				return location_clash("table", d->name, CATALOG_RUNS_TABLE, theirs,
				                      want, e);
			}
			exists = true;
			d->runs_ok = r->year_min > 0;
		}
		d->runs_known = true;
	} else {
		exists = true;
	}
	if (d->runs_ok && year_lo >= r->year_min && year_hi <= r->year_max)
		return 0;
	if (r->year_min == 0 || year_lo < r->year_min)
		r->year_min = year_lo;
	if (year_hi > r->year_max)
		r->year_max = year_hi;
	ti = catalog_runs_table_input(r);
	rc = put_table(c, d->name, ti, exists, out, e);
	json_decref(ti);
	d->runs_ok = rc == 0;
	return rc;
}

static struct reg_table *table_entry(struct catalog_ctx *c, const char *db,
                                     const char *source_table)
{
	struct reg_table *t;

	for (size_t i = 0; i < c->ntables; i++) {
		t = &c->tables[i];
		if (strcmp(t->m.database, db) == 0 &&
		    strcmp(t->m.tables[0].source_table, source_table) == 0)
			return t;
	}
	return NULL;
}

/*
 * Make Glue hold table src_t of src (its columns merged into what is
 * registered) and its views. The cached entry is created on first use.
 */
static int sync_table(struct catalog_ctx *c, const char *db, const struct catalog_model *src,
                      const struct catalog_table *src_t, FILE *out, struct ierr *e)
{
	struct reg_table *rt = table_entry(c, db, src_t->source_table);
	struct catalog_table *t;
	size_t before;
	int lo, hi, changes;
	bool exists = true;
	json_t *ti;

	if (rt == NULL) {
		c->tables = xrealloc(c->tables, (c->ntables + 1) * sizeof(*c->tables));
		rt = &c->tables[c->ntables];
		memset(rt, 0, sizeof(*rt));
		catalog_model_init(&rt->m, src->source, db, src->bucket, src->prefix, src->head);
		catalog_model_set_view_catalog(&rt->m, c->view_catalog);
		if (catalog_model_add_table(&rt->m, src_t->source_table, e) == NULL) {
			catalog_model_free(&rt->m);
			return -1;
		}
		c->ntables++;
	}
	t = &rt->m.tables[0];
	if (!rt->known) {
		json_t *table = NULL;
		int rc = glue_get_table(c->g, db, t->name, &table, e);

		if (rc < 0)
			return -1;
		ierr_clear(e);
		exists = rc == 1;
		if (exists) {
			char theirs[2048], want[2048];
			json_t *ours = catalog_table_input(&rt->m, t);

			location_of(&rt->m, table, theirs, sizeof(theirs));
			location_of(&rt->m, ours, want, sizeof(want));
			json_decref(ours);
			if (strcmp(theirs, want) != 0) {
				json_decref(table);
				return location_clash("table", db, t->name, theirs, want, e);
			}
			if (read_columns(&rt->m, t, table, e) != 0) {
				json_decref(table);
				return -1;
			}
			rt->table_ok = t->ncols > 0 && t->year_min > 0;
		}
		json_decref(table);
		rt->known = true;
	}
	before = t->ncols;
	lo = t->year_min;
	hi = t->year_max;
	changes = t->type_changes;
	for (size_t i = 0; i < src_t->ncols; i++) {
		const struct catalog_column *col = &src_t->cols[i];

		if (catalog_table_add_column(&rt->m, t, col->key, col->source_type, col->nullable,
		                             col->type, e) != 0)
			return -1;
	}
	c->type_changes += t->type_changes - changes;
	if (src_t->year_min > 0 && (t->year_min == 0 || src_t->year_min < t->year_min))
		t->year_min = src_t->year_min;
	if (src_t->year_max > t->year_max)
		t->year_max = src_t->year_max;
	if (t->ncols != before || t->year_min != lo || t->year_max != hi)
		rt->table_ok = false;
	if (t->ncols != before)
		rt->views_ok = false; /* a view lists its columns */
	if (catalog_table_copy_current(t, src_t))
		rt->views_ok = false; /* _current appears or changes */
	if (!rt->table_ok) {
		int rc;

		ti = catalog_table_input(&rt->m, t);
		rc = put_table(c, db, ti, exists, out, e);
		json_decref(ti);
		if (rc != 0)
			return -1;
		rt->table_ok = true;
	} else if (out) {
		fprintf(out, "unchanged %s.%s\n", db, t->name);
	}
	if (!rt->views_ok) {
		for (int k = 0; k < catalog_view_count(t); k++) {
			int rc;

			ti = catalog_view_input(&rt->m, t, (enum catalog_view)k);
			rc = put_table(c, db, ti, true, out, e);
			json_decref(ti);
			if (rc != 0)
				return -1;
		}
		rt->views_ok = true;
	}
	return 0;
}

/* ================================================================ entry points */

int catalog_sync_partition(struct catalog_ctx *c, struct spool *sp, int64_t partition_id,
                           struct ierr *e)
{
	struct catalog_part r;
	struct buf prefix = {0}, tmpl = {0}, head = {0};
	struct catalog_model m;
	struct athena_settings s;
	char db[256];
	struct reg_db *d;
	int year, rc = -1;

	if (catalog_read_partition(sp, partition_id, &r, e) != 0)
		return -1;
	if (r.schema == NULL) { /* written before schemas were recorded */
		catalog_part_free(&r);
		return 0;
	}
	catalog_settings_layout(r.settings, c->prefix, c->tmpl, &prefix, &tmpl);
	if (catalog_check_template(buf_cstr(&tmpl), c->partitioning, r.source, &head, e) != 0) {
		log_event(LOG_WARNING, "partition not registered in Glue", "table", r.table,
		          "error", e->msg, NULL);
		ierr_clear(e);
		rc = 0;
		goto out_bufs;
	}
	expand_db(c->db_template, r.source, db, sizeof(db));
	catalog_model_init(&m, r.source, db, r.bucket, buf_cstr(&prefix), buf_cstr(&head));
	catalog_settings_parse(r.settings, &s);
	year = catalog_year_of_ms(r.started_at);
	if (catalog_model_add(&m, r.db_type, r.table, r.schema, &s, year, e) != 0) {
		/* A clash inside one schema cannot be retried away. */
		if (e->code == IERR_CONFIG)
			e->code = IERR_PERMANENT;
		goto out;
	}
	catalog_table_set_current(&m.tables[0], r.range_json, r.key_json);
	d = db_entry(c, db);
	if (ensure_db(c, d, NULL, e) != 0 || ensure_runs(c, d, &m, year, year, NULL, e) != 0 ||
	    sync_table(c, db, &m, &m.tables[0], NULL, e) != 0) {
		if (e->code == IERR_CONFIG)
			e->code = IERR_PERMANENT;
		goto out;
	}
	rc = 0;
out:
	catalog_model_free(&m);
out_bufs:
	buf_free(&prefix);
	buf_free(&tmpl);
	buf_free(&head);
	catalog_part_free(&r);
	return rc;
}

int catalog_apply(struct catalog_ctx *c, const struct catalog_model *m, FILE *out, struct ierr *e)
{
	struct reg_db *d = db_entry(c, m->database);

	if (ensure_db(c, d, out, e) != 0)
		return -1;
	if (ensure_runs(c, d, m, m->year_min, m->year_max, out, e) != 0)
		return -1;
	for (size_t i = 0; i < m->ntables; i++) {
		if (sync_table(c, m->database, m, &m->tables[i], out, e) != 0)
			return -1;
	}
	return 0;
}
