/*
 * catalog.c - the catalog model: Glue-safe names, the key template check, the
 * union of a source's recorded schemas (see catalog.h).
 *
 * The model only ever grows: a column, once given a name and a type, keeps
 * both. Runs are merged oldest first, so the first type a column had is the
 * one Athena reads it as; a run that maps it differently is reported, and the
 * partition manifest keeps the truth.
 */
#include "catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "catalog_internal.h"
#include "log.h"
#include "util.h"

/* ================================================================ names */

void catalog_glue_name(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < outsz;) {
		unsigned char c = *p;

		if (isalnum(c) && c < 0x80) {
			out[o++] = (char)tolower(c);
			p++;
			continue;
		}
		out[o++] = '_';
		p++;
		/* The rest of a UTF-8 sequence belongs to the same character. */
		if (c >= 0xC0)
			while ((*p & 0xC0) == 0x80)
				p++;
	}
	if (o == 0 && outsz > 1)
		out[o++] = '_';
	out[o] = '\0';
}

/* The table's directory in object keys, as the collector writes it. */
static void key_dir(const char *table, struct buf *out)
{
	if (strcmp(table, ".") == 0 || strcmp(table, "..") == 0)
		buf_putc(out, '_');
	for (const char *c = table; *c; c++)
		buf_putc(out, *c == '/' ? '_' : *c);
}

static bool is_partition_key(const char *name)
{
	return strcmp(name, "year") == 0 || strcmp(name, "month") == 0 || strcmp(name, "day") == 0;
}

/* ================================================================ template */

int catalog_check_template(const char *tmpl, bool partitioning, const char *source,
                           struct buf *head_out, struct ierr *e)
{
	static const char dirs[] = "{table}/year={year}/month={month}/day={day}/";
	const char *at, *file;

	if (tmpl == NULL || *tmpl == '\0') {
		if (!partitioning)
			return ierr_set(e, IERR_CONFIG,
			                "ENABLE_PARTITIONING: false puts no year=/month=/day= "
			                "directories in keys; the catalog needs them");
		tmpl = "{table}/year={year}/month={month}/day={day}/{run_id}-{seq}{ext}";
	}
	at = strstr(tmpl, dirs);
	if (at == NULL)
		return ierr_set(e, IERR_CONFIG,
		                "S3_KEY_TEMPLATE: \"%.200s\" lacks \"%s\" (the catalog reads "
		                "<table>/year=YYYY/month=MM/day=DD/ partitions)",
		                tmpl, dirs);
	for (const char *p = tmpl; p < at; p++) {
		if (*p == '{' && strncmp(p, "{source}", 8) != 0)
			return ierr_set(e, IERR_CONFIG,
			                "S3_KEY_TEMPLATE: only literal text and {source} may come "
			                "before {table} for the catalog: \"%.200s\"",
			                tmpl);
	}
	file = at + strlen(dirs);
	if (strchr(file, '/') != NULL || strstr(file, "{run_id}") == NULL)
		return ierr_set(e, IERR_CONFIG,
		                "S3_KEY_TEMPLATE: the file name after \"day={day}/\" must hold "
		                "{run_id} and no further directory (the views find a row's run "
		                "in it): \"%.200s\"",
		                tmpl);
	if (head_out) {
		for (const char *p = tmpl; p < at;) {
			if (strncmp(p, "{source}", 8) == 0) {
				buf_puts(head_out, source ? source : "");
				p += 8;
			} else {
				buf_putc(head_out, *p++);
			}
		}
	}
	return 0;
}

/* ================================================================ model */

static char *normal_prefix(const char *prefix)
{
	struct buf b = {0};
	size_t n = prefix ? strlen(prefix) : 0;
	char *s;

	while (n > 0 && prefix[n - 1] == '/')
		n--;
	if (n > 0) {
		buf_append(&b, prefix, n);
		buf_putc(&b, '/');
	}
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

void catalog_model_init(struct catalog_model *m, const char *source, const char *database,
                        const char *bucket, const char *prefix, const char *head)
{
	memset(m, 0, sizeof(*m));
	m->source = xstrdup(source ? source : "");
	m->database = xstrdup(database && *database ? database : "default");
	m->bucket = xstrdup(bucket ? bucket : "");
	m->prefix = normal_prefix(prefix);
	m->head = xstrdup(head ? head : "");
	m->view_catalog = xstrdup(CATALOG_VIEW_CATALOG);
}

void catalog_model_set_view_catalog(struct catalog_model *m, const char *name)
{
	if (name && *name) {
		free(m->view_catalog);
		m->view_catalog = xstrdup(name);
	}
}

static void table_free(struct catalog_table *t)
{
	for (size_t i = 0; i < t->ncols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].key);
		free(t->cols[i].type);
		free(t->cols[i].source_type);
	}
	free(t->cols);
	free(t->source_table);
	free(t->name);
	free(t->dir);
	free(t->cursor_key);
	for (size_t i = 0; i < t->npk; i++)
		free(t->pk_keys[i]);
	free(t->pk_keys);
}

bool catalog_table_set_current(struct catalog_table *t, const char *range_json,
                               const char *key_json)
{
	json_t *range, *keys;
	const char *col;
	bool changed = false;
	size_t i;
	json_t *k;

	if (range_json == NULL || key_json == NULL)
		return false;
	range = json_loads(range_json, 0, NULL);
	keys = json_loads(key_json, 0, NULL);
	col = json_string_value(json_object_get(range, "column"));
	if (col == NULL || !json_is_array(keys) || json_array_size(keys) == 0)
		goto out;
	json_array_foreach(keys, i, k) if (!json_is_string(k)) goto out;
	changed = t->cursor_key == NULL || strcmp(t->cursor_key, col) != 0 ||
	          t->npk != json_array_size(keys);
	for (i = 0; !changed && i < t->npk; i++)
		changed = strcmp(t->pk_keys[i], json_string_value(json_array_get(keys, i))) != 0;
	if (!changed)
		goto out;
	free(t->cursor_key);
	for (i = 0; i < t->npk; i++)
		free(t->pk_keys[i]);
	free(t->pk_keys);
	t->cursor_key = xstrdup(col);
	t->npk = json_array_size(keys);
	t->pk_keys = xcalloc(t->npk, sizeof(*t->pk_keys));
	json_array_foreach(keys, i, k) t->pk_keys[i] = xstrdup(json_string_value(k));
out:
	json_decref(range);
	json_decref(keys);
	return changed;
}

bool catalog_table_copy_current(struct catalog_table *dst, const struct catalog_table *src)
{
	bool changed;

	if (src->cursor_key == NULL)
		return false;
	changed = dst->cursor_key == NULL || strcmp(dst->cursor_key, src->cursor_key) != 0 ||
	          dst->npk != src->npk;
	for (size_t i = 0; !changed && i < src->npk; i++)
		changed = strcmp(dst->pk_keys[i], src->pk_keys[i]) != 0;
	if (!changed)
		return false;
	free(dst->cursor_key);
	for (size_t i = 0; i < dst->npk; i++)
		free(dst->pk_keys[i]);
	free(dst->pk_keys);
	dst->cursor_key = xstrdup(src->cursor_key);
	dst->npk = src->npk;
	dst->pk_keys = xcalloc(src->npk, sizeof(*dst->pk_keys));
	for (size_t i = 0; i < src->npk; i++)
		dst->pk_keys[i] = xstrdup(src->pk_keys[i]);
	return true;
}

void catalog_model_free(struct catalog_model *m)
{
	for (size_t i = 0; i < m->ntables; i++)
		table_free(&m->tables[i]);
	free(m->tables);
	free(m->source);
	free(m->database);
	free(m->bucket);
	free(m->prefix);
	free(m->head);
	free(m->view_catalog);
	memset(m, 0, sizeof(*m));
}

struct catalog_table *catalog_model_table(struct catalog_model *m, const char *source_table)
{
	for (size_t i = 0; i < m->ntables; i++) {
		if (strcmp(m->tables[i].source_table, source_table) == 0)
			return &m->tables[i];
	}
	return NULL;
}

/* Another relation of the model (a table, a view, ingesta_runs) already has
 * one of the names the new table needs. */
static int table_name_clash(const struct catalog_model *m, const char *table, const char *name,
                            struct ierr *e)
{
	static const char *const suffix[] = {"", "_latest", "_daily"};

	for (int a = 0; a < 3; a++) {
		char mine[600];

		snprintf(mine, sizeof(mine), "%s%s", name, suffix[a]);
		if (strcmp(mine, CATALOG_RUNS_TABLE) == 0)
			return ierr_set(e, IERR_CONFIG,
			                "table \"%s\": its Glue name %s is the commit log's", table,
			                mine);
		for (size_t i = 0; i < m->ntables; i++) {
			for (int b = 0; b < 3; b++) {
				char theirs[600];

				snprintf(theirs, sizeof(theirs), "%s%s", m->tables[i].name,
				         suffix[b]);
				if (strcmp(mine, theirs) == 0)
					return ierr_set(
					    e, IERR_CONFIG,
					    "tables \"%s\" and \"%s\" both need the Glue name %s "
					    "(names are lowercased, other characters become _)",
					    m->tables[i].source_table, table, mine);
			}
		}
	}
	return 0;
}

struct catalog_table *catalog_model_add_table(struct catalog_model *m, const char *table,
                                              struct ierr *e)
{
	char name[512];
	struct buf dir = {0};
	struct catalog_table *t = catalog_model_table(m, table);

	if (t != NULL)
		return t;
	catalog_glue_name(table, name, sizeof(name));
	if (table_name_clash(m, table, name, e) != 0)
		return NULL;
	if (m->ntables == m->captables) {
		m->captables = m->captables ? 2 * m->captables : 16;
		m->tables = xrealloc(m->tables, m->captables * sizeof(*m->tables));
	}
	t = &m->tables[m->ntables++];
	memset(t, 0, sizeof(*t));
	t->source_table = xstrdup(table);
	t->name = xstrdup(name);
	key_dir(table, &dir);
	t->dir = xstrdup(buf_cstr(&dir));
	buf_free(&dir);
	return t;
}

int catalog_table_add_column(struct catalog_model *m, struct catalog_table *t, const char *key,
                             const char *source_type, bool nullable, const char *type,
                             struct ierr *e)
{
	char name[512];
	struct catalog_column *c;

	for (size_t i = 0; i < t->ncols; i++) {
		if (strcasecmp(t->cols[i].key, key) != 0)
			continue;
		if (strcmp(t->cols[i].type, type) != 0) {
			t->type_changes++;
			m->type_changes++;
			log_event(LOG_WARNING,
			          "column type changed in the source; the catalog keeps the first "
			          "type (the partition manifest has the new one)",
			          "table", t->source_table, "column", key, "catalog_type",
			          t->cols[i].type, "new_type", type, "source_type", source_type,
			          NULL);
		}
		return 0;
	}
	catalog_glue_name(key, name, sizeof(name));
	/* A data column cannot share a name with a partition key. */
	if (is_partition_key(name) && strlen(name) + 2 <= sizeof(name))
		strcat(name, "_");
	for (size_t i = 0; i < t->ncols; i++) {
		if (strcmp(t->cols[i].name, name) == 0)
			return ierr_set(e, IERR_CONFIG,
			                "table \"%s\": columns \"%s\" and \"%s\" both become %s in "
			                "Glue (names are lowercased, other characters become _)",
			                t->source_table, t->cols[i].key, key, name);
	}
	if (t->ncols == t->capcols) {
		t->capcols = t->capcols ? 2 * t->capcols : 16;
		t->cols = xrealloc(t->cols, t->capcols * sizeof(*t->cols));
	}
	c = &t->cols[t->ncols++];
	c->name = xstrdup(name);
	c->key = xstrdup(key);
	c->type = xstrdup(type);
	c->source_type = xstrdup(source_type);
	c->nullable = nullable;
	return 0;
}

static void years_cover(int *lo, int *hi, int year)
{
	if (year <= 0)
		return;
	if (*lo == 0 || year < *lo)
		*lo = year;
	if (year > *hi)
		*hi = year;
}

int catalog_model_add(struct catalog_model *m, const char *db_type, const char *table,
                      const char *schema_json, const struct athena_settings *s, int year,
                      struct ierr *e)
{
	json_error_t jerr;
	json_t *root = json_loads(schema_json, 0, &jerr);
	json_t *cols = json_object_get(root, "columns");
	struct catalog_table *t;
	size_t i;
	json_t *col;
	int rc = 0;

	if (!json_is_array(cols)) {
		json_decref(root);
		return ierr_set(e, IERR_SPOOL, "table \"%s\": schema_json is not a schema (%s)",
		                table, root ? "no \"columns\" array" : jerr.text);
	}
	t = catalog_model_add_table(m, table, e);
	if (t == NULL) {
		json_decref(root);
		return -1;
	}
	json_array_foreach(cols, i, col)
	{
		const char *key = json_string_value(json_object_get(col, "name"));
		const char *st = json_string_value(json_object_get(col, "type"));
		json_t *nl = json_object_get(col, "nullable");
		bool nullable = nl == NULL || json_is_true(nl);
		char type[64];

		if (key == NULL) {
			rc = ierr_set(e, IERR_SPOOL, "table \"%s\": schema column %zu has no name",
			              table, i);
			break;
		}
		for (size_t j = 0; j < i; j++) {
			const char *other =
			    json_string_value(json_object_get(json_array_get(cols, j), "name"));

			if (other && strcasecmp(other, key) == 0) {
				rc = ierr_set(
				    e, IERR_CONFIG,
				    "table \"%s\": columns \"%s\" and \"%s\" differ only "
				    "in case (the JSON SerDe reads keys case-insensitively)",
				    table, other, key);
				break;
			}
		}
		if (rc != 0)
			break;
		athena_type(db_type, st ? st : "", nullable, s, type, sizeof(type));
		rc = catalog_table_add_column(m, t, key, st ? st : "", nullable, type, e);
		if (rc != 0)
			break;
	}
	json_decref(root);
	if (rc == 0) {
		years_cover(&t->year_min, &t->year_max, year);
		years_cover(&m->year_min, &m->year_max, year);
	}
	return rc;
}

void catalog_settings_parse(const char *settings_json, struct athena_settings *s)
{
	json_t *root = settings_json ? json_loads(settings_json, 0, NULL) : NULL;
	const char *dm = json_string_value(json_object_get(root, "decimal_mode"));
	const char *bm = json_string_value(json_object_get(root, "binary_mode"));

	athena_settings_default(s);
	if (dm && *dm)
		snprintf(s->decimal_mode, sizeof(s->decimal_mode), "%s", dm);
	if (bm && *bm)
		snprintf(s->binary_mode, sizeof(s->binary_mode), "%s", bm);
	json_decref(root);
}

int catalog_year_of_ms(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return 0;
	return tm.tm_year + 1900;
}

void catalog_settings_layout(const char *settings_json, const char *dflt_prefix,
                             const char *dflt_tmpl, struct buf *prefix, struct buf *tmpl)
{
	json_t *root = settings_json ? json_loads(settings_json, 0, NULL) : NULL;
	const char *p = json_string_value(json_object_get(root, "s3_prefix"));
	const char *k = json_string_value(json_object_get(root, "key_template"));

	buf_puts(prefix, p ? p : dflt_prefix);
	buf_puts(tmpl, k && *k ? k : dflt_tmpl);
	json_decref(root);
}

bool catalog_run_matches(const struct catalog_model *m, const char *settings_json, const char *tmpl)
{
	struct buf p = {0}, k = {0};
	char *np;
	bool ok;

	catalog_settings_layout(settings_json, m->prefix, tmpl ? tmpl : "", &p, &k);
	np = normal_prefix(buf_cstr(&p));
	ok = strcmp(np, m->prefix) == 0 && (!tmpl || !*tmpl || strcmp(buf_cstr(&k), tmpl) == 0);
	free(np);
	buf_free(&p);
	buf_free(&k);
	return ok;
}
