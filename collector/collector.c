/*
 * collector.c - the run loop every source driver shares (see collector.h).
 *
 * The drivers only know their database (source.h); this file owns table
 * selection, the snapshot, one table writer per table, run bookkeeping in the
 * spool, the summary line, and the mapping of failures to run states.
 */
#include "collector.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "incremental.h"
#include "json.h"
#include "log.h"
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

/*
 * The tables of a run are taken in order from one queue by the run's
 * workers: one (the calling thread) with COLLECT_PARALLEL=1, else one thread
 * per source connection, every connection in the one snapshot of the run
 * (source.h, begin_shared_snapshot) and with its own spool connection (a
 * struct spool is not shared between threads). A worker commits each table
 * as it completes; the first failure stops every worker from taking another
 * table, and is the run's error.
 */
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

	struct work_item *items; /* the queue: tables, or ranges of a split table */
	size_t nitems;

	pthread_mutex_t mu; /* guards everything below, sum and the splits' state */
	pthread_cond_t done_cv;
	size_t next;     /* next item to take */
	int running;     /* worker threads not finished */
	bool failed;     /* a table failed: take no more */
	struct ierr err; /* the first failure */
};

/* A table read as key ranges on several connections (COLLECT_SPLIT_BYTES):
 * range k of n holds the rows with cuts[k-1] < column <= cuts[k] (no lower
 * bound for the first, the snapshot's max for the last). Its partition is
 * opened by whoever takes range 0 and committed, with every range's
 * segments, by whoever finishes the last one; a failed range leaves it
 * uncommitted. */
struct split {
	int nchunks;
	int64_t *cuts; /* nchunks entries; cuts[nchunks - 1] = max */
	char column[256];
	char type[256];
	struct buf schema_json;
	struct table_writer *parent;
	int done; /* ranges absorbed into parent */
	bool failed;
};

struct work_item {
	size_t table;
	struct split *split; /* NULL: the whole table */
	int chunk;
};

struct worker {
	struct run_ctx *rc;
	struct source *src;
	struct spool *sp;
	pthread_t tid;
	bool thread;   /* tid is a started thread */
	bool finished; /* thread: its loop returned */
};

/* One table, start to commit, on the worker's connections. */
static int collect_table(struct worker *wk, size_t i, struct ierr *e)
{
	struct run_ctx *rc = wk->rc;
	const char *table = rc->tables->items[i];
	struct table_writer *w =
	    table_writer_new_spool(wk->sp, rc->run, table, rc->opts, rc->set, e);
	struct table_schema schema = {0};
	struct buf schema_json = {0};
	struct incr_read ir = {0};
	struct incr_ctx ic = {.sp = wk->sp,
	                      .source_name = rc->source_name,
	                      .run = rc->run,
	                      .inc = rc->inc,
	                      .pl = &rc->plans[i],
	                      .r = &ir};
	int trc;

	if (w == NULL)
		return -1;
	trc = read_with_schema(rc->ops, wk->src, table, w, &schema, &ic, e);
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
		return -1;
	}
	pthread_mutex_lock(&rc->mu);
	rc->sum->tables++;
	rc->sum->rows += table_writer_rows(w);
	rc->sum->bytes += table_writer_bytes(w);
	/* n: the table's place in commit order (its place in the list when
	 * serial). */
	log_table(table, w, rc->sum->tables, rc->tables->len, rc->set->stats);
	pthread_mutex_unlock(&rc->mu);
	table_writer_free(w);
	return 0;
}

/* One key range of a split table; the last one to finish commits it. The
 * parent exists: range 0 is taken first and opens it before the lock that
 * hands out range 1 is released. */
static int collect_range(struct worker *wk, const struct work_item *it, struct ierr *e)
{
	struct run_ctx *rc = wk->rc;
	struct split *sl = it->split;
	const char *table = rc->tables->items[it->table];
	char lo[32], hi[32];
	struct cursor_val after = {.kind = 'i', .text = lo}, through = {.kind = 'i', .text = hi};
	struct range_req rq = {.column = sl->column,
	                       .type = sl->type,
	                       .kind = CK_INT,
	                       .after = it->chunk > 0 ? &after : NULL,
	                       .through = &through};
	struct table_writer *w = table_writer_new_chunk(sl->parent, wk->sp, e);
	bool last;
	int trc;

	if (w == NULL)
		return -1;
	if (it->chunk > 0)
		snprintf(lo, sizeof(lo), "%" PRId64, sl->cuts[it->chunk - 1]);
	snprintf(hi, sizeof(hi), "%" PRId64, sl->cuts[it->chunk]);
	trc = rc->ops->read_range(wk->src, table, &rq, w, e);
	if (trc == 0)
		trc = table_writer_finish_chunk(w, e);
	pthread_mutex_lock(&rc->mu);
	if (trc == 0 && !sl->failed) {
		table_writer_absorb(sl->parent, w);
		sl->done++;
	} else {
		sl->failed = true;
	}
	last = trc == 0 && sl->done == sl->nchunks;
	pthread_mutex_unlock(&rc->mu);
	table_writer_free(w);
	if (trc != 0) {
		if (strstr(e->msg, table) == NULL)
			ierr_prefix(e, "table \"%s\"", table);
		return -1;
	}
	if (!last)
		return 0;
	/* Every range is sealed: the partition commits, from this thread. */
	table_writer_use_spool(sl->parent, wk->sp);
	if (table_writer_commit(sl->parent, sl->schema_json.len ? buf_cstr(&sl->schema_json) : NULL,
	                        e) != 0) {
		if (strstr(e->msg, table) == NULL)
			ierr_prefix(e, "table \"%s\"", table);
		return -1;
	}
	pthread_mutex_lock(&rc->mu);
	rc->sum->tables++;
	rc->sum->rows += table_writer_rows(sl->parent);
	rc->sum->bytes += table_writer_bytes(sl->parent);
	log_table(table, sl->parent, rc->sum->tables, rc->tables->len, rc->set->stats);
	pthread_mutex_unlock(&rc->mu);
	return 0;
}

static void worker_loop(struct worker *wk)
{
	struct run_ctx *rc = wk->rc;

	for (;;) {
		struct ierr e = {0};
		struct work_item it;
		int trc;

		pthread_mutex_lock(&rc->mu);
		if (rc->failed || rc->next >= rc->nitems) {
			pthread_mutex_unlock(&rc->mu);
			return;
		}
		it = rc->items[rc->next++];
		if (it.split && it.chunk == 0) {
			/* Open the partition before range 1 can be handed out. */
			it.split->parent = table_writer_new_spool(
			    wk->sp, rc->run, rc->tables->items[it.table], rc->opts, rc->set, &e);
			if (it.split->parent == NULL) {
				rc->failed = true;
				rc->err = e;
				pthread_mutex_unlock(&rc->mu);
				return;
			}
		}
		pthread_mutex_unlock(&rc->mu);
		trc = it.split ? collect_range(wk, &it, &e) : collect_table(wk, it.table, &e);
		if (trc != 0) {
			pthread_mutex_lock(&rc->mu);
			if (!rc->failed) {
				rc->failed = true;
				rc->err = e;
			}
			pthread_mutex_unlock(&rc->mu);
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct run_ctx *rc = wk->rc;

	worker_loop(wk);
	pthread_mutex_lock(&rc->mu);
	wk->finished = true;
	rc->running--;
	pthread_cond_signal(&rc->done_cv);
	pthread_mutex_unlock(&rc->mu);
	return NULL;
}

/* Run the workers; with more than one, each on its own thread while this
 * one waits. A signal may land on any thread and interrupts the blocking
 * read of that thread only: once a stop is requested it is passed on to
 * every worker still running (again every 200 ms, for a worker that was
 * between its check of the flag and its next wait). */
static void run_workers(struct run_ctx *rc, struct worker *wk, int n)
{
	bool stop_sent = false;
	int64_t last_kick = 0;

	if (n == 1) {
		worker_loop(&wk[0]);
		return;
	}
	pthread_mutex_lock(&rc->mu);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]) != 0) {
			/* The started ones take the whole queue. */
			log_event(LOG_WARNING, "could not start a collector thread", NULL);
			continue;
		}
		wk[i].thread = true;
		rc->running++;
	}
	if (rc->running == 0) {
		pthread_mutex_unlock(&rc->mu);
		worker_loop(&wk[0]);
		return;
	}
	while (rc->running > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&rc->done_cv, &rc->mu, &ts);
		if (ingesta_stop_requested && (!stop_sent || monotonic_ms() - last_kick >= 200)) {
			for (int i = 0; i < n; i++)
				if (wk[i].thread && !wk[i].finished)
					pthread_kill(wk[i].tid, SIGTERM);
			stop_sent = true;
			last_kick = monotonic_ms();
		}
	}
	pthread_mutex_unlock(&rc->mu);
	for (int i = 0; i < n; i++)
		if (wk[i].thread)
			pthread_join(wk[i].tid, NULL);
}

/* How many connections to read with: COLLECT_PARALLEL, at most one per
 * table unless tables may be split, 1 for incremental runs (their plans and watermarks are read
 * serially) and for drivers without a shared snapshot. */
static int wanted_workers(const struct config *cfg, const struct source_ops *ops,
                          const struct incr_settings *inc, size_t ntables)
{
	int64_t n = config_int(cfg, "COLLECT_PARALLEL");
	bool splits = ops->key_bounds != NULL && config_int(cfg, "COLLECT_SPLIT_BYTES") > 0;

	if (n <= 1 || ntables == 0 || (ntables == 1 && !splits))
		return 1;
	if (ops->begin_shared_snapshot == NULL) {
		if (config_is_set(cfg, "COLLECT_PARALLEL"))
			log_event(LOG_INFO,
			          "COLLECT_PARALLEL: this source is read with one connection",
			          "db_type", ops->db_type, NULL);
		return 1;
	}
	if (inc->on) {
		log_event(LOG_INFO, "COLLECT_PARALLEL: incremental runs read with one connection",
		          NULL);
		return 1;
	}
	if ((size_t)n > ntables && !splits)
		n = (int64_t)ntables;
	return (int)n;
}

/* Open the extra connections and spool handles of workers 1..n-1 and start
 * the run's snapshot on all of them (or on worker 0 alone). Returns the
 * number of workers that share the snapshot, or -1. A connection the server
 * refuses (its connection limit) leaves fewer workers, said once. */
static int start_workers(const struct config *cfg, const struct source_ops *ops, struct worker *wk,
                         int n, struct ierr *e)
{
	struct source **more = NULL;
	char why[512] = "";
	int got = 1, r;

	if (n == 1)
		return ops->begin_snapshot(wk[0].src, e) == 0 ? 1 : -1;
	for (; got < n; got++) {
		struct ierr e2 = {0};
		struct strlist ignored = {0};

		wk[got].sp = spool_open(spool_dir(wk[0].sp), SPOOL_ROLE_OPERATOR, &e2);
		if (wk[got].sp == NULL)
			break;
		wk[got].src = ops->open(cfg, &e2);
		if (wk[got].src != NULL && ops->list_tables(wk[got].src, &ignored, &e2) != 0) {
			ops->close(wk[got].src);
			wk[got].src = NULL;
		}
		strlist_free(&ignored);
		if (wk[got].src == NULL) {
			spool_close(wk[got].sp);
			wk[got].sp = NULL;
			break;
		}
		continue;
	}
	if (got < n) {
		char want[16], have[16];

		snprintf(want, sizeof(want), "%d", n);
		snprintf(have, sizeof(have), "%d", got);
		log_event(LOG_WARNING, "COLLECT_PARALLEL: could not open every connection",
		          "wanted", want, "opened", have, NULL);
	}
	if (got == 1)
		return ops->begin_snapshot(wk[0].src, e) == 0 ? 1 : -1;
	more = xrealloc(NULL, (size_t)got * sizeof(*more));
	for (int i = 1; i < got; i++)
		more[i - 1] = wk[i].src;
	r = ops->begin_shared_snapshot(wk[0].src, more, got - 1, why, sizeof(why), e);
	free(more);
	if (r < 0)
		return -1;
	if (r == 1) {
		log_event(LOG_WARNING, "COLLECT_PARALLEL: reading with one connection", "reason",
		          why, NULL);
		got = 1;
	} else {
		char k[16];

		snprintf(k, sizeof(k), "%d", got);
		log_event(LOG_INFO, "parallel extraction: connections share one snapshot",
		          "connections", k, NULL);
	}
	return got;
}

/* Whether `table` is split, and where: at least twice COLLECT_SPLIT_BYTES
 * on disk, a primary key of one integer column, and a key span wide enough;
 * then ranges of about that size, at most one per connection, cut evenly
 * over [min, max] of the key. Read on the first connection, in the
 * snapshot, which also gives the schema the partition is committed with. */
static int plan_split(const struct source_ops *ops, struct source *src, const char *table,
                      int nworkers, int64_t chunk_bytes, struct split **out, struct ierr *e)
{
	struct table_schema sc = {0};
	struct split *sl = NULL;
	const char *type = NULL;
	int64_t bytes, lo, hi, k;
	bool empty;
	int rc = -1;

	*out = NULL;
	if (ops->table_bytes(src, table, &bytes, e) != 0)
		return -1;
	if (bytes < 2 * chunk_bytes)
		return 0;
	if (ops->table_schema(src, table, &sc, e) != 0)
		goto out;
	for (size_t c = 0; sc.npk == 1 && c < sc.ncols && type == NULL; c++)
		if (strcmp(sc.cols[c].name, sc.pk[0]) == 0)
			type = sc.cols[c].type;
	if (type == NULL || incr_cursor_kind(ops->db_type, type) != CK_INT ||
	    strlen(sc.pk[0]) >= sizeof(sl->column) || strlen(type) >= sizeof(sl->type)) {
		rc = 0;
		goto out;
	}
	if (ops->key_bounds(src, table, sc.pk[0], &lo, &hi, &empty, e) != 0)
		goto out;
	k = bytes / chunk_bytes;
	if (k > nworkers)
		k = nworkers;
	if (empty || (__int128)hi - lo < k) {
		rc = 0;
		goto out;
	}
	sl = xrealloc(NULL, sizeof(*sl));
	memset(sl, 0, sizeof(*sl));
	sl->nchunks = (int)k;
	sl->cuts = xrealloc(NULL, (size_t)k * sizeof(*sl->cuts));
	for (int64_t j = 1; j < k; j++)
		sl->cuts[j - 1] = lo + (int64_t)(((__int128)hi - lo) * j / k);
	sl->cuts[k - 1] = hi;
	snprintf(sl->column, sizeof(sl->column), "%s", sc.pk[0]);
	snprintf(sl->type, sizeof(sl->type), "%s", type);
	table_schema_json(&sc, &sl->schema_json);
	{
		char n[16], from[32], to[32], sz[32];

		snprintf(n, sizeof(n), "%" PRId64, k);
		snprintf(from, sizeof(from), "%" PRId64, lo);
		snprintf(to, sizeof(to), "%" PRId64, hi);
		snprintf(sz, sizeof(sz), "%" PRId64, bytes);
		log_event(LOG_INFO, "table split into key ranges", "table", table, "column",
		          sl->column, "ranges", n, "min", from, "max", to, "table_bytes", sz, NULL);
	}
	*out = sl;
	rc = 0;
out:
	table_schema_free(&sc);
	return rc;
}

static void split_free(struct split *sl)
{
	if (sl == NULL)
		return;
	table_writer_free(sl->parent);
	buf_free(&sl->schema_json);
	free(sl->cuts);
	free(sl);
}

/* The run's queue: every table in order, a split table as its ranges. */
static int plan_items(const struct config *cfg, const struct source_ops *ops, struct source *src,
                      const struct strlist *tables, int nworkers, struct run_ctx *rc,
                      struct ierr *e)
{
	int64_t chunk = config_int(cfg, "COLLECT_SPLIT_BYTES");
	bool can = nworkers > 1 && chunk > 0 && ops->table_bytes && ops->key_bounds &&
	           ops->table_schema && ops->read_range;
	size_t cap = tables->len + 1;

	rc->items = xrealloc(NULL, cap * sizeof(*rc->items));
	rc->nitems = 0;
	for (size_t i = 0; i < tables->len; i++) {
		struct split *sl = NULL;

		if (can && plan_split(ops, src, tables->items[i], nworkers, chunk, &sl, e) != 0)
			return -1;
		if (rc->nitems + (size_t)(sl ? sl->nchunks : 1) > cap) {
			cap = cap * 2 + (size_t)(sl ? sl->nchunks : 1);
			rc->items = xrealloc(rc->items, cap * sizeof(*rc->items));
		}
		if (sl == NULL) {
			rc->items[rc->nitems++] = (struct work_item){.table = i};
			continue;
		}
		for (int k = 0; k < sl->nchunks; k++)
			rc->items[rc->nitems++] =
			    (struct work_item){.table = i, .split = sl, .chunk = k};
	}
	return 0;
}

static void items_free(struct run_ctx *rc)
{
	for (size_t i = 0; i < rc->nitems; i++)
		if (rc->items[i].split && rc->items[i].chunk == 0)
			split_free(rc->items[i].split);
	free(rc->items);
	rc->items = NULL;
	rc->nitems = 0;
}

static void close_workers(const struct source_ops *ops, struct worker *wk, int n)
{
	for (int i = 1; i < n; i++) {
		if (wk[i].src)
			ops->close(wk[i].src);
		spool_close(wk[i].sp);
		wk[i].src = NULL;
		wk[i].sp = NULL;
	}
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
	struct worker *wk = NULL;
	struct run_ctx rc;
	int nworkers = 0, want;
	bool run_started = false;
	int rcode = -1;

	memset(sum, 0, sizeof(*sum));
	memset(&rc, 0, sizeof(rc));
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
	src = ops->open(cfg, e);
	if (src == NULL)
		goto out;
	if (select_tables(cfg, ops, src, NULL, &tables, e) != 0 ||
	    check_reserved(&tables, set.key_template, e) != 0)
		goto out;
	want = wanted_workers(cfg, ops, &inc, tables.len);
	wk = calloc((size_t)want, sizeof(*wk));
	if (wk == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		goto out;
	}
	wk[0].src = src;
	wk[0].sp = sp;
	nworkers = want;
	{
		int got = start_workers(cfg, ops, wk, want, e);

		if (got < 0)
			goto out;
		close_workers(ops, wk + got - 1, want - got + 1);
		nworkers = got;
	}
	plans = calloc(tables.len + 1, sizeof(*plans));
	if (plans == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		goto out;
	}
	if (inc.on && plan_tables(&inc, ops, src, &tables, plans, e) != 0)
		goto out;
	if (plan_items(cfg, ops, src, &tables, nworkers, &rc, e) != 0)
		goto out;
	if (spool_run_begin(sp, source_name, ops->db_type, bucket, &run, e) != 0)
		goto out;
	run_started = true;
	snprintf(sum->run_id, sizeof(sum->run_id), "%s", run.run_id);
	if (record_settings(cfg, sp, &run, &set, e) != 0)
		goto out;
	log_event(LOG_INFO, "extraction started", "source", source_name, "run", run.run_id,
	          "bucket", bucket, NULL);
	rc.ops = ops;
	rc.run = &run;
	rc.set = &set;
	rc.opts = &opts;
	rc.inc = &inc;
	rc.source_name = source_name;
	rc.tables = &tables;
	rc.plans = plans;
	rc.sum = sum;
	pthread_mutex_init(&rc.mu, NULL);
	pthread_cond_init(&rc.done_cv, NULL);
	for (int i = 0; i < nworkers; i++)
		wk[i].rc = &rc;
	run_workers(&rc, wk, nworkers);
	pthread_cond_destroy(&rc.done_cv);
	pthread_mutex_destroy(&rc.mu);
	if (rc.failed) {
		*e = rc.err;
		goto out;
	}
	rcode = 0;
out:
	/* Before the spool connections close: a split table's parent writer. */
	items_free(&rc);
	if (wk)
		close_workers(ops, wk, nworkers);
	free(wk);
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
