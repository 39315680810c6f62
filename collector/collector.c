/*
 * collector.c - the run loop every source driver shares (see collector.h).
 *
 * The drivers only know their database (source.h); this file owns table
 * selection, one table writer per table, run bookkeeping in the spool, the
 * summary line, and the mapping of failures to run states. The snapshot, the
 * connections and the threads that read the tables (COLLECT_PARALLEL) are
 * parallel.c's.
 */
#include "collector.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "incremental.h"
#include "json.h"
#include "log.h"
#include "parallel.h"
#include "schema.h"
#include "source.h"
#include "spool.h"
#include "util.h"
#include "writer.h"

/* ------------------------------------------------------------ strlist */

void strlist_push(struct strlist *l, const char *s)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->len++] = xstrdup(s);
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------ sources */

static const struct source_ops *const all_sources[] = {
    &source_sqlite,
    &source_mysql,
    &source_postgres,
    &source_mongo,
};

const struct source_ops *source_lookup(const char *db_type)
{
	static const struct {
		const char *alias, *canonical;
	} aliases[] = {{"mariadb", "mysql"}, {"postgres", "postgresql"}, {"mongo", "mongodb"}};

	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (strcmp(db_type, aliases[i].alias) == 0)
			db_type = aliases[i].canonical;
	}
	for (size_t i = 0; i < sizeof(all_sources) / sizeof(all_sources[0]); i++) {
		if (strcmp(all_sources[i]->db_type, db_type) == 0)
			return all_sources[i];
	}
	return NULL;
}

static const struct source_ops *configured_source(const struct config *cfg, struct ierr *e)
{
	const char *t = config_str(cfg, "DB_TYPE");
	const struct source_ops *ops;

	if (*t == '\0') {
		ierr_set(e, IERR_CONFIG,
		         "DB_TYPE: not set (one of mysql, postgresql, mongodb, sqlite)");
		return NULL;
	}
	ops = source_lookup(t);
	if (ops == NULL)
		ierr_set(e, IERR_CONFIG, "DB_TYPE: no driver for \"%s\" in this build", t);
	return ops;
}

const char *collector_bucket(const struct config *cfg, struct ierr *e)
{
	const char *b = config_str(cfg, "S3_BUCKET");
	const struct source_ops *ops;

	if (*b)
		return b;
	ops = source_lookup(config_str(cfg, "DB_TYPE"));
	if (ops && ops->legacy_bucket_key && *config_str(cfg, ops->legacy_bucket_key))
		return config_str(cfg, ops->legacy_bucket_key);
	ierr_set(e, IERR_CONFIG,
	         "S3_BUCKET: not set (an S3 bucket name, or file:///path for a local directory)");
	return NULL;
}

const char *collector_source_name(const struct config *cfg)
{
	const struct source_ops *ops = source_lookup(config_str(cfg, "DB_TYPE"));

	if (*config_str(cfg, "SOURCE_NAME"))
		return config_str(cfg, "SOURCE_NAME");
	return ops ? ops->db_type : NULL;
}

static void norm_opts_from(const struct config *cfg, struct norm_opts *o)
{
	const char *d = config_str(cfg, "DECIMAL_MODE");
	const char *b = config_str(cfg, "BINARY_MODE");

	o->decimal = strcmp(d, "double") == 0   ? DECIMAL_DOUBLE
	             : strcmp(d, "string") == 0 ? DECIMAL_STRING
	                                        : DECIMAL_EXACT;
	o->binary = strcmp(b, "base64") == 0 ? BINARY_BASE64
	            : strcmp(b, "hex") == 0  ? BINARY_HEX
	                                     : BINARY_UTF8;
}

/* Tables to extract: discovery filtered by INCLUDE_TABLES / EXCLUDE_TABLES, or
 * the explicit list (which must exist). */
static int select_tables(const struct config *cfg, const struct source_ops *ops, struct source *src,
                         const char *const *only, struct strlist *out, struct ierr *e)
{
	struct strlist all = {0};
	const char *inc = config_str(cfg, "INCLUDE_TABLES");
	const char *exc = config_str(cfg, "EXCLUDE_TABLES");

	if (ops->list_tables(src, &all, e) != 0) {
		strlist_free(&all);
		return -1;
	}
	if (only && *only) {
		for (; *only; only++) {
			bool found = false;

			for (size_t i = 0; i < all.len && !found; i++)
				found = strcmp(all.items[i], *only) == 0;
			if (!found) {
				strlist_free(&all);
				return ierr_set(e, IERR_SOURCE, "%s: table \"%s\" not found",
				                ops->db_type, *only);
			}
			strlist_push(out, *only);
		}
		strlist_free(&all);
		return 0;
	}
	for (size_t i = 0; i < all.len; i++) {
		if (*inc && !glob_list_match(inc, all.items[i]))
			continue;
		if (*exc && glob_list_match(exc, all.items[i]))
			continue;
		strlist_push(out, all.items[i]);
	}
	strlist_free(&all);
	return 0;
}

/* A table whose objects would land in the commit log's directory
 * (docs/COMMIT_LOG.md) would be read as commit records: refuse it by name. */
static int check_reserved(const struct strlist *tables, const char *tmpl, struct ierr *e)
{
	if (strncmp(tmpl, "{table}/", 8) != 0)
		return 0;
	for (size_t i = 0; i < tables->len; i++) {
		if (strcmp(tables->items[i], "ingesta_runs") == 0)
			return ierr_set(
			    e, IERR_CONFIG,
			    "table \"ingesta_runs\": its objects would land in the commit "
			    "log's directory ingesta_runs/; exclude it (EXCLUDE_TABLES) or "
			    "set S3_KEY_TEMPLATE");
	}
	return 0;
}

/* runs.settings_json: what the catalog needs to type and locate this run's
 * data (README "Querying with Athena"). */
static int record_settings(const struct config *cfg, struct spool *sp, const struct spool_run *run,
                           const struct segment_settings *set, struct ierr *e)
{
	static const char *const keys[][2] = {{"decimal_mode", "DECIMAL_MODE"},
	                                      {"binary_mode", "BINARY_MODE"},
	                                      {"s3_prefix", "S3_PREFIX"}};
	struct buf b = {0};
	struct lossy none = {0};
	int rc;

	buf_putc(&b, '{');
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = config_str(cfg, keys[i][1]);

		buf_printf(&b, "%s\"%s\":", i ? "," : "", keys[i][0]);
		json_string(&b, v, strlen(v), &none);
	}
	buf_puts(&b, ",\"key_template\":");
	json_string(&b, set->key_template, strlen(set->key_template), &none);
	buf_putc(&b, '}');
	rc = spool_run_settings(sp, run, buf_cstr(&b), e);
	buf_free(&b);
	return rc;
}

static void settings_from(const struct config *cfg, const char *source, struct segment_settings *s)
{
	const char *tmpl = config_str(cfg, "S3_KEY_TEMPLATE");
	const char *p = config_str(cfg, "PROGRESS");

	memset(s, 0, sizeof(*s));
	if (*tmpl == '\0')
		tmpl = config_bool(cfg, "ENABLE_PARTITIONING")
		           ? "{table}/year={year}/month={month}/day={day}/{run_id}-{seq}{ext}"
		           : "{table}/{run_id}-{seq}{ext}";
	s->key_template = tmpl;
	s->key_prefix = config_str(cfg, "S3_PREFIX");
	s->source = source;
	s->compress = strcmp(config_str(cfg, "COMPRESSION"), "zstd") == 0;
	s->zstd_level = (int)config_int(cfg, "ZSTD_LEVEL");
	s->max_bytes = (uint64_t)config_int(cfg, "SEGMENT_MAX_BYTES");
	if (s->max_bytes == 0)
		s->max_bytes = 1;
	s->max_rows = (uint64_t)config_int(cfg, "SEGMENT_MAX_ROWS");
	s->quota_bytes = config_int(cfg, "SPOOL_MAX_BYTES");
	s->wait_when_full = strcmp(config_str(cfg, "SPOOL_FULL_ACTION"), "wait") == 0;
	s->progress = strcmp(p, "always") == 0 || (strcmp(p, "auto") == 0 && isatty(2));
	s->stats = config_bool(cfg, "COLLECT_STATS");
}

static void log_table(const char *table, const struct table_writer *w, int n, size_t of, bool stats)
{
	char rows[32], bytes[32], segs[16], pos[32], nf[24], iu[24], idt[24], inf[24];
	const struct lossy *l = table_writer_lossy((struct table_writer *)w);

	snprintf(rows, sizeof(rows), "%" PRIu64, table_writer_rows(w));
	snprintf(bytes, sizeof(bytes), "%" PRIu64, table_writer_bytes(w));
	snprintf(segs, sizeof(segs), "%d", table_writer_segments(w));
	snprintf(pos, sizeof(pos), "%d/%zu", n, of);
	snprintf(nf, sizeof(nf), "%" PRIu64, l->nonfinite);
	snprintf(iu, sizeof(iu), "%" PRIu64, l->invalid_utf8);
	snprintf(idt, sizeof(idt), "%" PRIu64, l->invalid_dates);
	snprintf(inf, sizeof(inf), "%" PRIu64, l->infinite_dates);
	log_event(LOG_INFO, "table committed", "table", table, "n", pos, "rows", rows, "bytes",
	          bytes, "segments", segs, "nonfinite_to_null", nf, "invalid_utf8", iu,
	          "invalid_dates", idt, "infinite_dates", inf, NULL);
	if (stats) {
		const struct writer_stats *st = table_writer_stats(w);
		char r[32], nm[32], c[32], h[32], wr[32];

		snprintf(r, sizeof(r), "%.3f", (double)st->read_ns / 1e9);
		snprintf(nm, sizeof(nm), "%.3f", (double)st->normalize_ns / 1e9);
		snprintf(c, sizeof(c), "%.3f", (double)st->compress_ns / 1e9);
		snprintf(h, sizeof(h), "%.3f", (double)st->hash_ns / 1e9);
		snprintf(wr, sizeof(wr), "%.3f", (double)st->write_ns / 1e9);
		log_event(LOG_INFO, "table stats", "table", table, "read_s", r, "normalize_s", nm,
		          "compress_s", c, "hash_s", h, "write_s", wr, NULL);
	}
}

/* ------------------------------------------------------------ incremental */

/* LOAD_MODE=incremental, checked before the run starts: every table's plan
 * from its schema inside the snapshot; a bad combination is IERR_CONFIG
 * (exit 2) naming the table and the column. */
static int plan_tables(const struct incr_settings *inc, const struct source_ops *ops,
                       struct source *src, const struct strlist *tables, struct incr_table *plans,
                       struct ierr *e)
{
	if (ops->cursor_high == NULL || ops->read_range == NULL ||
	    (ops->table_schema == NULL && ops->cursor_schema == NULL))
		return ierr_set(e, IERR_CONFIG,
		                "LOAD_MODE=incremental: not supported for DB_TYPE=%s in this "
		                "version",
		                ops->db_type);
	for (size_t i = 0; i < tables->len; i++) {
		struct table_schema schema = {0};
		char column[256];
		int rc;

		if (ops->cursor_schema) {
			if (!incr_list_lookup(inc->per_table, tables->items[i], column,
			                      sizeof(column)))
				snprintf(column, sizeof(column), "%s", inc->column);
			rc = *column ? ops->cursor_schema(src, tables->items[i], column, &schema, e)
			             : 0;
		} else {
			rc = ops->table_schema(src, tables->items[i], &schema, e);
		}

		if (rc == 0 && ops->cursor_schema && schema.ncols == 0) {
			/* schemaless: no document has the field (yet) */
			if (*column)
				log_event(LOG_INFO,
				          "no document has the cursor field: read as a "
				          "snapshot",
				          "table", tables->items[i], "column", column, NULL);
			table_schema_free(&schema);
			continue;
		}
		if (rc == 0)
			rc = incr_plan_table(inc, ops->db_type, tables->items[i], &schema,
			                     &plans[i], e);
		table_schema_free(&schema);
		if (rc != 0)
			return -1;
		if (!plans[i].incremental)
			log_event(LOG_INFO, "no cursor column: read as a snapshot", "table",
			          tables->items[i], "column", inc->column, NULL);
	}
	/* A table named in INCREMENTAL_COLUMNS that this run does not read. */
	for (const char *p = inc->per_table; *p;) {
		const char *end = strchr(p, ',');
		const char *colon = NULL;
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char name[512];
		bool found = false;

		for (size_t i = 0; i < n; i++)
			if (p[i] == ':')
				colon = p + i;
		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		if (colon) {
			snprintf(name, sizeof(name), "%.*s", (int)(colon - p), p);
			for (size_t i = 0; i < tables->len && !found; i++)
				found = strcmp(tables->items[i], name) == 0;
			if (!found)
				log_event(
				    LOG_WARNING,
				    "INCREMENTAL_COLUMNS names a table this run does not read",
				    "table", name, NULL);
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

/* What one incremental table's read needs to outlive it until its commit. */
struct incr_read {
	struct spool_watermark wm;
	struct cursor_val after;
	struct cursor_val high;
	struct partition_read rd;
};

static void incr_read_free(struct incr_read *r)
{
	spool_watermark_free(&r->wm);
	free(r->high.text);
	memset(r, 0, sizeof(*r));
}

/*
 * One table of an incremental plan, inside the run's snapshot: the committed
 * watermark, the snapshot-or-range decision, the high-water mark, then
 * exactly the rows of (after, high] (a snapshot: every row up to high, and
 * the NULL cursors). r->rd is committed with the partition.
 */
static int read_incremental(const struct source_ops *ops, struct source *src, struct spool *sp,
                            const char *source_name, const struct spool_run *run, const char *table,
                            const struct incr_table *pl, const struct incr_settings *inc,
                            struct table_writer *w, struct incr_read *r, struct ierr *e)
{
	struct range_req rq = {.column = pl->column, .type = pl->type, .kind = pl->kind};
	const char *why = NULL;
	bool nulls = false, snapshot;

	if (spool_watermark_get(sp, source_name, table, &r->wm, e) != 0)
		return -1;
	if (!r->wm.present)
		why = "no watermark (first run, or after reset)";
	else if (strcmp(r->wm.column, pl->column) != 0)
		why = "cursor column changed";
	else if (inc->refresh_ms > 0 &&
	         (r->wm.snapshot_at < 0 || run->started_at - r->wm.snapshot_at >= inc->refresh_ms))
		why = "FULL_REFRESH_EVERY";
	snapshot = why != NULL;
	if (!snapshot && r->wm.has_value) {
		r->after.kind = r->wm.kind;
		r->after.text = r->wm.value;
		rq.after = &r->after;
	}
	rq.snapshot = snapshot;
	rq.lag_ms = inc->lag_ms;
	if (ops->cursor_high(
	        src, table, &rq, &r->high,
	        !snapshot && pl->nullable && inc->nulls == NULLS_SNAPSHOT ? &nulls : NULL, e) != 0)
		return -1;
	if (nulls) {
		/* INCREMENTAL_NULLS=snapshot: a NULL cursor cannot be placed in a
		 * range, so this run reads the whole table. */
		why = "NULL cursor values";
		snapshot = true;
		rq.snapshot = true;
		rq.after = NULL;
		free(r->high.text);
		r->high.text = NULL;
		if (ops->cursor_high(src, table, &rq, &r->high, NULL, e) != 0)
			return -1;
	}
	rq.through = r->high.text ? &r->high : NULL;
	log_event(LOG_INFO, snapshot ? "table read as a snapshot" : "table read as a range",
	          "table", table, "column", pl->column, "reason", why ? why : "", "after",
	          rq.after ? rq.after->text : "", "through", r->high.text ? r->high.text : "",
	          NULL);
	if ((snapshot || rq.through) && ops->read_range(src, table, &rq, w, e) != 0)
		return -1;
	r->rd = (struct partition_read){
	    .source = source_name,
	    .table = table,
	    .run_id = run->run_id,
	    .run_started_at = run->started_at,
	    .incremental = !snapshot,
	    .column = pl->column,
	    .after = rq.after ? rq.after->text : NULL,
	    .after_kind = rq.after ? rq.after->kind : 't',
	    .through = r->high.text,
	    .through_kind = r->high.kind,
	    .key_json = buf_cstr((struct buf *)&pl->key_json),
	    .expect_present = r->wm.present,
	    .expect_version = r->wm.version,
	};
	table_writer_set_read(w, &r->rd);
	return 0;
}

/* The table's declared schema, its rows, then (MongoDB) the schema the rows
 * showed. A failure reading the schema is a source error (exit 3). With an
 * incremental plan (pl), the rows are read by read_incremental(). */
struct incr_ctx {
	struct spool *sp;
	const char *source_name;
	const struct spool_run *run;
	const struct incr_settings *inc;
	const struct incr_table *pl;
	struct incr_read *r;
};

static int read_with_schema(const struct source_ops *ops, struct source *src, const char *table,
                            struct table_writer *w, struct table_schema *schema,
                            const struct incr_ctx *ic, struct ierr *e)
{
	if (ops->table_schema && ops->table_schema(src, table, schema, e) != 0)
		return -1;
	if (ic && ic->pl && ic->pl->incremental) {
		if (read_incremental(ops, src, ic->sp, ic->source_name, ic->run, table, ic->pl,
		                     ic->inc, w, ic->r, e) != 0)
			return -1;
	} else if (ops->read_table(src, table, w, e) != 0)
		return -1;
	if (ops->inferred_schema && ops->inferred_schema(src, table, schema, e) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ the run */

struct run_ctx {
	const struct source_ops *ops;
	const struct spool_run *run;
	const struct segment_settings *set;
	const struct norm_opts *opts;
	const struct incr_settings *inc;
	const char *source_name;
	const struct strlist *tables;
	const struct incr_table *plans;
	struct collect_summary *sum;
};

/* One table, start to commit, on one worker's connections (parallel.h):
 * the committed writer, or NULL. */
static struct table_writer *collect_table(void *ctx, struct source *src, struct spool *sp, size_t i,
                                          struct ierr *e)
{
	struct run_ctx *rc = ctx;
	const char *table = rc->tables->items[i];
	struct table_writer *w = table_writer_new_spool(sp, rc->run, table, rc->opts, rc->set, e);
	struct table_schema schema = {0};
	struct buf schema_json = {0};
	struct incr_read ir = {0};
	struct incr_ctx ic = {.sp = sp,
	                      .source_name = rc->source_name,
	                      .run = rc->run,
	                      .inc = rc->inc,
	                      .pl = &rc->plans[i],
	                      .r = &ir};
	int trc;

	if (w == NULL)
		return NULL;
	trc = read_with_schema(rc->ops, src, table, w, &schema, &ic, e);
	if (trc == 0 && (rc->ops->table_schema || rc->ops->inferred_schema))
		table_schema_json(&schema, &schema_json);
	if (trc == 0)
		trc = table_writer_commit(w, schema_json.len ? buf_cstr(&schema_json) : NULL, e);
	table_schema_free(&schema);
	buf_free(&schema_json);
	incr_read_free(&ir);
	if (trc != 0) {
		if (strstr(e->msg, table) == NULL)
			ierr_prefix(e, "table \"%s\"", table);
		table_writer_free(w);
		return NULL;
	}
	return w;
}

/* n: the table's place in commit order (its place in the list when serial). */
static void table_committed(void *ctx, size_t i, const struct table_writer *w)
{
	struct run_ctx *rc = ctx;

	rc->sum->tables++;
	rc->sum->rows += table_writer_rows(w);
	rc->sum->bytes += table_writer_bytes(w);
	log_table(rc->tables->items[i], w, rc->sum->tables, rc->tables->len, rc->set->stats);
}

int collector_run(const struct config *cfg, struct collect_summary *sum, struct ierr *e)
{
	const struct source_ops *ops = configured_source(cfg, e);
	const char *bucket = ops ? collector_bucket(cfg, e) : NULL;
	const char *source_name;
	struct spool *sp = NULL;
	struct source *src = NULL;
	struct strlist tables = {0};
	struct spool_run run = {.lock_fd = -1};
	struct segment_settings set;
	struct norm_opts opts;
	struct incr_settings inc;
	struct incr_table *plans = NULL;
	struct par_pool *pool = NULL;
	struct run_ctx rc;
	struct par_job job;
	bool run_started = false;
	int rcode = -1;

	memset(sum, 0, sizeof(*sum));
	if (incr_settings_from(cfg, &inc, e) != 0)
		return -1;
	if (bucket == NULL)
		return -1;
	snprintf(sum->bucket, sizeof(sum->bucket), "%s", bucket);
	source_name =
	    *config_str(cfg, "SOURCE_NAME") ? config_str(cfg, "SOURCE_NAME") : ops->db_type;
	norm_opts_from(cfg, &opts);
	settings_from(cfg, source_name, &set);

	sp = spool_open(config_str(cfg, "SPOOL_DIR"), SPOOL_ROLE_COLLECTOR, e);
	if (sp == NULL)
		return -1;
	/* Small tables commit in groups (spool.h): fewer fsyncs per table. */
	spool_group_commit(sp, SPOOL_GROUP_MAX_TABLES, SPOOL_GROUP_MAX_MS);
	src = ops->open(cfg, e);
	if (src == NULL)
		goto out;
	if (select_tables(cfg, ops, src, NULL, &tables, e) != 0 ||
	    check_reserved(&tables, set.key_template, e) != 0)
		goto out;
	/* The snapshot, on one connection or several (parallel.h). */
	pool = par_open(cfg, ops, src, sp, tables.len, inc.on, e);
	if (pool == NULL)
		goto out;
	plans = calloc(tables.len + 1, sizeof(*plans));
	if (plans == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		goto out;
	}
	if (inc.on && plan_tables(&inc, ops, src, &tables, plans, e) != 0)
		goto out;
	if (par_plan(pool, cfg, &tables, e) != 0)
		goto out;
	if (spool_run_begin(sp, source_name, ops->db_type, bucket, &run, e) != 0)
		goto out;
	run_started = true;
	snprintf(sum->run_id, sizeof(sum->run_id), "%s", run.run_id);
	if (record_settings(cfg, sp, &run, &set, e) != 0)
		goto out;
	log_event(LOG_INFO, "extraction started", "source", source_name, "run", run.run_id,
	          "bucket", bucket, NULL);
	rc = (struct run_ctx){.ops = ops,
	                      .run = &run,
	                      .set = &set,
	                      .opts = &opts,
	                      .inc = &inc,
	                      .source_name = source_name,
	                      .tables = &tables,
	                      .plans = plans,
	                      .sum = sum};
	job = (struct par_job){.tables = &tables,
	                       .run = &run,
	                       .opts = &opts,
	                       .set = &set,
	                       .ctx = &rc,
	                       .collect_table = collect_table,
	                       .committed = table_committed};
	if (par_run(pool, &job, e) != 0)
		goto out;
	rcode = 0;
out:
	par_close(pool);
	if (run_started) {
		struct ierr e2;

		if (spool_run_end(sp, &run, rcode == 0 ? "complete" : "failed", sum->tables,
		                  sum->rows, rcode == 0 ? NULL : e->msg, &e2) != 0 &&
		    rcode == 0) {
			*e = e2;
			rcode = -1;
		}
	}
	if (src)
		ops->close(src);
	for (size_t i = 0; plans != NULL && i < tables.len; i++)
		incr_table_free(&plans[i]);
	free(plans);
	strlist_free(&tables);
	spool_close(sp);
	return rcode;
}

int collector_extract(const struct config *cfg, const char *const *only, FILE *out, struct ierr *e)
{
	const struct source_ops *ops = configured_source(cfg, e);
	struct source *src;
	struct strlist tables = {0};
	struct norm_opts opts;
	int rc = -1;

	if (ops == NULL)
		return -1;
	norm_opts_from(cfg, &opts);
	src = ops->open(cfg, e);
	if (src == NULL)
		return -1;
	if (select_tables(cfg, ops, src, only, &tables, e) != 0 || ops->begin_snapshot(src, e) != 0)
		goto done;
	for (size_t i = 0; i < tables.len; i++) {
		struct table_writer *w = table_writer_new_stream(&opts, out);

		if (ops->read_table(src, tables.items[i], w, e) != 0) {
			table_writer_free(w);
			goto done;
		}
		table_writer_free(w);
	}
	fflush(out);
	rc = 0;
done:
	ops->close(src);
	strlist_free(&tables);
	return rc;
}
