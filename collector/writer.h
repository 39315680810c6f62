/*
 * writer.h - the table writer: rows in, sealed spool segments out.
 *
 * A driver appends one JSON object per row to the buffer it gets from
 * table_writer_row_begin() and calls table_writer_row_end(). The writer adds the
 * newline, feeds the bytes through zstd (or not) into a temporary segment file
 * while computing SHA-256 and MD5 of the bytes that will be uploaded (on a
 * worker thread of the writer, fed full batches: see writer.c), and rolls
 * to a new segment at SEGMENT_MAX_BYTES / SEGMENT_MAX_ROWS. Each full segment is
 * sealed into the spool (fsync, rename, fsync dir, DB row) as state `pending`;
 * the partition becomes visible to the uploader only when the collector commits
 * the whole table (spool.h, spool_partition_complete).
 *
 * row_end() returns -1 (with *e set) when the run must stop: SIGTERM/SIGINT
 * (IERR_INTERRUPTED), spool quota or disk full (IERR_NOSPACE), I/O errors. An
 * error of the worker thread (a write of an earlier batch) comes back from a
 * later row_end or from table_writer_commit, with the same message.
 */
#ifndef INGESTA_WRITER_H
#define INGESTA_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"
#include "json.h"

struct table_writer;

/* Normalization options every driver honours (from DECIMAL_MODE, BINARY_MODE). */
struct norm_opts {
	enum decimal_mode decimal;
	enum binary_mode binary;
};

/* The row buffer, empty; valid until row_end. */
struct buf *table_writer_row_begin(struct table_writer *w);
int table_writer_row_end(struct table_writer *w, struct ierr *e);

/* Lossy-conversion counters for this table (increment through json.h). */
struct lossy *table_writer_lossy(struct table_writer *w);
const struct norm_opts *table_writer_opts(const struct table_writer *w);

/* Append the JSON key `"name":` (escaped) to b; drivers precompute these once
 * per table into a buf and copy them per row. */
void json_key(struct buf *b, const char *name, size_t n);

/* ---- for collector.c: a writer that seals segments into the spool ---- */
struct spool;
struct spool_run;

struct segment_settings {
	const char
	    *key_template; /* with {table} {year} {month} {day} {run_id} {seq} {ext} {source} */
	const char *key_prefix; /* S3_PREFIX, may be "" */
	const char *source;
	bool compress; /* zstd or plain */
	int zstd_level;
	uint64_t max_bytes; /* uncompressed bytes per segment */
	uint64_t max_rows;
	int64_t quota_bytes; /* 0 = none */
	bool wait_when_full;
	bool progress; /* progress line on stderr */
	bool stats;    /* time the stages (COLLECT_STATS); costs ~4 clock reads per row */
	/* Compress, hash and write on the thread that calls row_end instead of the
	 * writer's worker thread (writer.c; the default on a machine with one CPU). */
	bool inline_compress;
};

/* Start a table: opens its partition. Returns NULL with *e on error. */
struct table_writer *table_writer_new_spool(struct spool *sp, const struct spool_run *run,
                                            const char *table, const struct norm_opts *opts,
                                            const struct segment_settings *set, struct ierr *e);
/* Seal the last segment and commit the partition (the table becomes visible
 * to the uploader), storing schema_json (the table's schema as canonical JSON,
 * schema.h; NULL: none) in the same transaction. A table without rows commits
 * a partition of 0 segments. On error nothing of the table is committed. */
int(table_writer_commit)(struct table_writer *w, const char *schema_json, struct ierr *e);
/* Callers written before schemas, table_writer_commit(w, e), commit with a
 * NULL schema. */
#define TW_COMMIT_PICK_(a1, a2, a3, fn, ...) fn
#define TW_COMMIT2_(w, e)                    (table_writer_commit)(w, NULL, e)
#define TW_COMMIT3_(w, j, e)                 (table_writer_commit)(w, j, e)
#define table_writer_commit(...)                                                                   \
	TW_COMMIT_PICK_(__VA_ARGS__, TW_COMMIT3_, TW_COMMIT2_, -)(__VA_ARGS__)
uint64_t table_writer_bytes(const struct table_writer *w);

/* COLLECT_PARALLEL: one table read as several key ranges at once. A chunk
 * writer writes rows into parent's partition through its own spool
 * connection sp (each on its own thread; segment and file numbers come from
 * the parent, atomically); it commits nothing. table_writer_finish_chunk()
 * seals its last segment; table_writer_absorb() adds a finished chunk's
 * counts to the parent (the caller serializes it with the parent's other
 * absorbs); once every chunk is absorbed, table_writer_commit(parent)
 * commits the partition with all their segments. A chunk that fails leaves
 * the partition uncommitted (table_writer_free the parent: nothing of the
 * table becomes visible). The parent writes no rows itself. */
struct table_writer *table_writer_new_chunk(struct table_writer *parent, struct spool *sp,
                                            struct ierr *e);
int table_writer_finish_chunk(struct table_writer *chunk, struct ierr *e);
/* The parent is committed by whichever thread absorbed the last chunk: it
 * first moves the parent to that thread's spool connection. */
void table_writer_use_spool(struct table_writer *w, struct spool *sp);
void table_writer_absorb(struct table_writer *parent, const struct table_writer *chunk);
/* Incremental extraction: how this table was read, committed (with the
 * watermark move) in the same transaction as the partition (spool.h,
 * struct partition_read). rd must stay valid until the commit; NULL: none. */
struct partition_read;
void table_writer_set_read(struct table_writer *w, const struct partition_read *rd);

/* Where a table's time went, in nanoseconds, when segment_settings.stats is on.
 * read: between rows (the driver waiting for and decoding the next row);
 * normalize: building the row's JSON; compress, hash, write: in the writer. */
struct writer_stats {
	uint64_t read_ns;
	uint64_t normalize_ns;
	uint64_t compress_ns;
	uint64_t hash_ns;
	uint64_t write_ns;
};
const struct writer_stats *table_writer_stats(const struct table_writer *w);
int table_writer_segments(const struct table_writer *w);

/* A writer that keeps every row in memory instead of the spool: for unit tests
 * and `ingesta extract` (which prints the NDJSON to stdout). */
struct table_writer *table_writer_new_memory(const struct norm_opts *opts);
/* The NDJSON written so far (each row ends with '\n'). */
const struct buf *table_writer_memory_output(const struct table_writer *w);
/* Same, but each row goes straight to `out` (memory stays bounded). */
struct table_writer *table_writer_new_stream(const struct norm_opts *opts, FILE *out);
uint64_t table_writer_rows(const struct table_writer *w);
void table_writer_free(struct table_writer *w);

#endif
