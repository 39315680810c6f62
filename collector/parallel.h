/*
 * parallel.h - COLLECT_PARALLEL: the run's source connections, the queue of
 * tables and key ranges, and the threads that read them (for collector.c).
 *
 * par_open() opens up to COLLECT_PARALLEL connections besides the caller's
 * (at most one per table unless tables may be split; one for incremental
 * runs and for drivers without begin_shared_snapshot) and starts the run's
 * one snapshot on all of them: with one connection this is begin_snapshot().
 * par_plan() decides, in that snapshot, which tables are read as key ranges
 * (COLLECT_SPLIT_BYTES). par_run() hands the tables and ranges out in order
 * to one worker per connection, each on its own thread (the caller's own
 * thread when there is one connection), each with its own spool connection.
 * The first failure stops every worker from taking more, and is par_run()'s
 * error; SIGTERM/SIGINT reach every worker.
 *
 * Threads: the par_job callbacks run on the workers' threads; `committed` is
 * called with the pool's lock held (one at a time, in commit order).
 */
#ifndef INGESTA_PARALLEL_H
#define INGESTA_PARALLEL_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "source.h"
#include "writer.h"

struct spool;
struct spool_run;

struct par_job {
	const struct strlist *tables;
	const struct spool_run *run;
	const struct norm_opts *opts;
	const struct segment_settings *set;
	void *ctx;
	/* Read and commit table i whole on (src, sp): the committed writer
	 * (par_run frees it), or NULL with *e. */
	struct table_writer *(*collect_table)(void *ctx, struct source *src, struct spool *sp,
	                                      size_t i, struct ierr *e);
	/* Table i (whole, or its last range) is committed. */
	void (*committed)(void *ctx, size_t i, const struct table_writer *w);
};

struct par_pool;

/* src and sp are the caller's (list_tables already run on src) and stay
 * its own. NULL with *e on error. */
struct par_pool *par_open(const struct config *cfg, const struct source_ops *ops,
                          struct source *src, struct spool *sp, size_t ntables, bool incremental,
                          struct ierr *e);
int par_plan(struct par_pool *p, const struct config *cfg, const struct strlist *tables,
             struct ierr *e);
int par_run(struct par_pool *p, const struct par_job *job, struct ierr *e);
/* Closes the connections par_open() opened and what par_plan() planned;
 * an uncommitted split table's partition stays open (nothing visible). */
void par_close(struct par_pool *p);

#endif
