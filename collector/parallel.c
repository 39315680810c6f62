/*
 * parallel.c - COLLECT_PARALLEL: connections in one snapshot, the queue of
 * tables and key ranges, the worker threads (contract in parallel.h).
 *
 * Every connection is in the run's one snapshot (source.h,
 * begin_shared_snapshot) and has its own spool connection (a struct spool is
 * not shared between threads). The queue holds the tables in order, a split
 * table as its ranges; a worker takes the next item under the pool's lock.
 * A split table's partition is opened by the worker that takes its range 0
 * (under that lock, so it exists before range 1 is handed out) and committed
 * by the worker that absorbs its last range: nothing of it is visible before
 * every range is sealed, and a failed range leaves it uncommitted. Memory is
 * bounded per connection: each range has its own table writer.
 */
#include "parallel.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incremental.h"
#include "log.h"
#include "schema.h"
#include "spool.h"
#include "util.h"

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
	struct par_pool *p;
	struct source *src;
	struct spool *sp;
	pthread_t tid;
	bool thread;   /* tid is a started thread */
	bool finished; /* thread: its loop returned */
};

struct par_pool {
	const struct source_ops *ops;
	struct worker *wk; /* wk[0]: the caller's connections */
	int n;
	const struct par_job *job;

	struct work_item *items; /* the queue: tables, or ranges of a split table */
	size_t nitems;

	pthread_mutex_t mu; /* guards everything below and the splits' state */
	pthread_cond_t done_cv;
	size_t next;     /* next item to take */
	int running;     /* worker threads not finished */
	bool failed;     /* a table failed: take no more */
	struct ierr err; /* the first failure */
};

static int collect_whole(struct worker *wk, size_t i, struct ierr *e)
{
	struct par_pool *p = wk->p;
	const struct par_job *job = p->job;
	struct table_writer *w = job->collect_table(job->ctx, wk->src, wk->sp, i, e);

	if (w == NULL)
		return -1;
	pthread_mutex_lock(&p->mu);
	job->committed(job->ctx, i, w);
	pthread_mutex_unlock(&p->mu);
	table_writer_free(w);
	return 0;
}

/* One key range of a split table; the last one to finish commits it. The
 * parent exists: range 0 is taken first and opens it before the lock that
 * hands out range 1 is released. */
static int collect_range(struct worker *wk, const struct work_item *it, struct ierr *e)
{
	struct par_pool *p = wk->p;
	const struct par_job *job = p->job;
	struct split *sl = it->split;
	const char *table = job->tables->items[it->table];
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
	trc = p->ops->read_range(wk->src, table, &rq, w, e);
	if (trc == 0)
		trc = table_writer_finish_chunk(w, e);
	pthread_mutex_lock(&p->mu);
	if (trc == 0 && !sl->failed) {
		table_writer_absorb(sl->parent, w);
		sl->done++;
	} else {
		sl->failed = true;
	}
	last = trc == 0 && sl->done == sl->nchunks;
	pthread_mutex_unlock(&p->mu);
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
	pthread_mutex_lock(&p->mu);
	job->committed(job->ctx, it->table, sl->parent);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static void worker_loop(struct worker *wk)
{
	struct par_pool *p = wk->p;
	const struct par_job *job = p->job;

	for (;;) {
		struct ierr e = {0};
		struct work_item it;
		int trc;

		pthread_mutex_lock(&p->mu);
		if (p->failed || p->next >= p->nitems) {
			pthread_mutex_unlock(&p->mu);
			return;
		}
		it = p->items[p->next++];
		if (it.split && it.chunk == 0) {
			/* Open the partition before range 1 can be handed out. */
			it.split->parent =
			    table_writer_new_spool(wk->sp, job->run, job->tables->items[it.table],
			                           job->opts, job->set, &e);
			if (it.split->parent == NULL) {
				p->failed = true;
				p->err = e;
				pthread_mutex_unlock(&p->mu);
				return;
			}
		}
		pthread_mutex_unlock(&p->mu);
		trc = it.split ? collect_range(wk, &it, &e) : collect_whole(wk, it.table, &e);
		if (trc != 0) {
			pthread_mutex_lock(&p->mu);
			if (!p->failed) {
				p->failed = true;
				p->err = e;
			}
			pthread_mutex_unlock(&p->mu);
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct par_pool *p = wk->p;

	worker_loop(wk);
	pthread_mutex_lock(&p->mu);
	wk->finished = true;
	p->running--;
	pthread_cond_signal(&p->done_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Run the workers; with more than one, each on its own thread while this
 * one waits. A signal may land on any thread and interrupts the blocking
 * read of that thread only: once a stop is requested it is passed on to
 * every worker still running (again every 200 ms, for a worker that was
 * between its check of the flag and its next wait). */
static void run_workers(struct par_pool *p, struct worker *wk, int n)
{
	bool stop_sent = false;
	int64_t last_kick = 0;

	if (n == 1) {
		worker_loop(&wk[0]);
		return;
	}
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]) != 0) {
			/* The started ones take the whole queue. */
			log_event(LOG_WARNING, "could not start a collector thread", NULL);
			continue;
		}
		wk[i].thread = true;
		p->running++;
	}
	if (p->running == 0) {
		pthread_mutex_unlock(&p->mu);
		worker_loop(&wk[0]);
		return;
	}
	while (p->running > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->done_cv, &p->mu, &ts);
		if (ingesta_stop_requested && (!stop_sent || monotonic_ms() - last_kick >= 200)) {
			for (int i = 0; i < n; i++)
				if (wk[i].thread && !wk[i].finished)
					pthread_kill(wk[i].tid, SIGTERM);
			stop_sent = true;
			last_kick = monotonic_ms();
		}
	}
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < n; i++)
		if (wk[i].thread)
			pthread_join(wk[i].tid, NULL);
}

/* How many connections to read with: COLLECT_PARALLEL, at most one per
 * table unless tables may be split, 1 for incremental runs (their plans and watermarks are read
 * serially) and for drivers without a shared snapshot. */
static int wanted_workers(const struct config *cfg, const struct source_ops *ops, bool incremental,
                          size_t ntables)
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
	if (incremental) {
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
	struct ierr e2 = {0};
	char why[512] = "";
	int got = 1, r;

	if (n == 1)
		return ops->begin_snapshot(wk[0].src, e) == 0 ? 1 : -1;
	for (; got < n; got++) {
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
	}
	if (got < n) {
		char want[16], have[16];

		snprintf(want, sizeof(want), "%d", n);
		snprintf(have, sizeof(have), "%d", got);
		log_event(LOG_WARNING, "COLLECT_PARALLEL: could not open every connection",
		          "wanted", want, "opened", have, "reason", e2.msg, NULL);
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
int par_plan(struct par_pool *rc, const struct config *cfg, const struct strlist *tables,
             struct ierr *e)
{
	const struct source_ops *ops = rc->ops;
	struct source *src = rc->wk[0].src;
	int nworkers = rc->n;
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

static void items_free(struct par_pool *rc)
{
	for (size_t i = 0; i < rc->nitems; i++)
		if (rc->items[i].split && rc->items[i].chunk == 0)
			split_free(rc->items[i].split);
	free(rc->items);
	rc->items = NULL;
	rc->nitems = 0;
}

/* Close the connections of workers keep..n-1 (never the caller's). */
static void close_extra(struct par_pool *p, int keep)
{
	for (int i = keep > 1 ? keep : 1; i < p->n; i++) {
		if (p->wk[i].src)
			p->ops->close(p->wk[i].src);
		spool_close(p->wk[i].sp);
		p->wk[i].src = NULL;
		p->wk[i].sp = NULL;
	}
	p->n = keep;
}

struct par_pool *par_open(const struct config *cfg, const struct source_ops *ops,
                          struct source *src, struct spool *sp, size_t ntables, bool incremental,
                          struct ierr *e)
{
	struct par_pool *p = xrealloc(NULL, sizeof(*p));
	int want = wanted_workers(cfg, ops, incremental, ntables), got;

	memset(p, 0, sizeof(*p));
	p->ops = ops;
	p->wk = xrealloc(NULL, (size_t)want * sizeof(*p->wk));
	memset(p->wk, 0, (size_t)want * sizeof(*p->wk));
	p->wk[0].src = src;
	p->wk[0].sp = sp;
	p->n = want;
	got = start_workers(cfg, ops, p->wk, want, e);
	if (got < 0) {
		par_close(p);
		return NULL;
	}
	close_extra(p, got);
	return p;
}

int par_run(struct par_pool *p, const struct par_job *job, struct ierr *e)
{
	p->job = job;
	p->next = 0;
	p->failed = false;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	for (int i = 0; i < p->n; i++)
		p->wk[i].p = p;
	run_workers(p, p->wk, p->n);
	pthread_cond_destroy(&p->done_cv);
	pthread_mutex_destroy(&p->mu);
	if (p->failed) {
		*e = p->err;
		return -1;
	}
	return 0;
}

void par_close(struct par_pool *p)
{
	if (p == NULL)
		return;
	/* Before the spool connections close: a split table's parent writer. */
	items_free(p);
	close_extra(p, 1);
	free(p->wk);
	free(p);
}
