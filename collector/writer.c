/*
 * writer.c - rows in, sealed spool segments out (contract in writer.h).
 *
 * Rows are batched into a small input buffer (BATCH_BYTES) and fed to a
 * streaming zstd context; every compressed byte is hashed (SHA-256 and MD5,
 * what S3 will be asked to verify) as it is written, so sealing never re-reads
 * a file. A segment ends at SEGMENT_MAX_BYTES of NDJSON or SEGMENT_MAX_ROWS
 * rows: the frame is finished, the file fsynced, and spool_segment_seal()
 * renames and records it. Nothing of a table is visible to the uploader before
 * table_writer_commit() commits its partition.
 *
 * The pipeline: compressing, hashing and writing a full batch happen on a
 * worker thread of the spool writer, so the thread that reads the socket and
 * normalizes rows never waits for zstd. The driver's thread fills a batch and
 * hands it over through a queue of PIPE_SLOTS batches (swapping buffers, no
 * copy); when the queue is full it waits, so memory stays bounded at
 * (PIPE_SLOTS + 1) * BATCH_BYTES plus one zstd context. The worker owns the
 * segment's zstd context, digests and fd while a batch is queued; the driver's
 * thread touches them only when the queue is empty (seg_drain: opening and
 * sealing a segment), the mutex ordering the two. An error on the worker (a
 * write failing with ENOSPC, ...) is kept and returned, with the same message,
 * by the next row_end / commit; later batches of that segment are dropped.
 * The worker blocks every signal: SIGTERM still interrupts the driver's
 * thread, which stops the worker (seg_discard) before removing the file.
 * With one CPU (or segment_settings.inline_compress) there is no worker and
 * seg_submit compresses on the caller's thread, as before the pipeline.
 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "failpoint.h"
#include "hex.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define BATCH_BYTES       (128 * 1024)
#define QUOTA_CHECK_BYTES (4 * 1024 * 1024)
#define PIPE_SLOTS        2 /* full batches queued for the worker */

struct segment_file {
	int fd;
	char tmp_path[4096];
	ZSTD_CCtx *zc;
	EVP_MD_CTX *sha;
	EVP_MD_CTX *md5;
	uint64_t rows;
	uint64_t raw_bytes;
	uint64_t bytes; /* written by the worker; read after seg_drain */
	struct buf out; /* compressed output staging (the worker's) */
};

/* The queue between the driver's thread and the worker (see the top). */
struct pipe {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t work; /* worker: a batch was queued, or quit */
	pthread_cond_t done; /* driver: a batch was consumed */
	struct buf slot[PIPE_SLOTS];
	bool slot_end[PIPE_SLOTS]; /* the segment's last batch: end the frame */
	unsigned head, count;      /* queued batches: slot[head], ... (count of them) */
	bool quit;                 /* worker: exit when the queue is empty */
	bool abandon;              /* worker: drop what is queued (seg_discard) */
	bool failed;               /* err holds the first error of this segment */
	struct ierr err;
	_Atomic uint64_t seg_bytes; /* bytes written to the open segment so far */
};

struct table_writer {
	/* memory mode when sp == NULL: rows kept in batch, or written to stream */
	struct spool *sp;
	/* A chunk's table writer (table_writer_new_chunk): the partition it
	 * writes into and the counters its segment numbers come from. */
	struct table_writer *parent;
	const struct partition_read *read; /* incremental: committed with the partition */
	FILE *stream;
	const struct spool_run *run;
	struct segment_settings set;
	struct norm_opts opts;
	struct lossy lossy;
	char table[512];
	int64_t partition_id;

	struct buf row;   /* the row being built by the driver */
	struct buf batch; /* NDJSON waiting to be compressed / the memory output */
	struct segment_file seg;
	struct pipe pipe;
	bool pipelined; /* else compressed on the caller's thread (one CPU) */
	bool seg_open;
	int segments;
	uint64_t file_counter;

	uint64_t rows;             /* whole table */
	uint64_t raw_bytes;        /* whole table, NDJSON */
	uint64_t bytes;            /* whole table, sealed segment bytes */
	uint64_t quota_checked_at; /* pipe.seg_bytes at the last quota check */
	int64_t started_ms;
	int64_t last_progress_ms;
	struct writer_stats stats;
	uint64_t row_started_ns; /* stats: when row_begin was called */
	uint64_t row_ended_ns;   /* stats: when the previous row_end returned */
};

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ helpers */

void json_key(struct buf *b, const char *name, size_t n)
{
	struct lossy ignored = {0};

	json_string(b, name, n, &ignored);
	buf_putc(b, ':');
}

static void hex_digest(EVP_MD_CTX *ctx, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_DigestFinal_ex(ctx, md, &len);
	hex_encode(md, len, out);
}

static int seg_write_out(struct table_writer *w, const void *p, size_t n, struct ierr *e)
{
	struct segment_file *s = &w->seg;
	uint64_t t0 = w->set.stats ? clock_ns() : 0, t1 = 0;

	EVP_DigestUpdate(s->sha, p, n);
	EVP_DigestUpdate(s->md5, p, n);
	if (w->set.stats) {
		t1 = clock_ns();
		w->stats.hash_ns += t1 - t0;
	}
	if (write_all(s->fd, p, n) != 0)
		return ierr_errno(e, errno, "spool %s: write %s", spool_dir(w->sp), s->tmp_path);
	if (w->set.stats)
		w->stats.write_ns += clock_ns() - t1;
	s->bytes += n;
	atomic_fetch_add_explicit(&w->pipe.seg_bytes, n, memory_order_relaxed);
	return 0;
}

static int quota_check(struct table_writer *w, struct ierr *e)
{
	int64_t used;
	bool warned = false;

	if (w->set.quota_bytes <= 0)
		return 0;
	for (;;) {
		used = spool_bytes_used(w->sp) +
		       (int64_t)(w->seg_open ? atomic_load_explicit(&w->pipe.seg_bytes,
		                                                    memory_order_relaxed)
		                             : 0);
		if (used <= w->set.quota_bytes)
			return 0;
		if (!w->set.wait_when_full)
			return ierr_set(e, IERR_NOSPACE,
			                "spool %s is full: %" PRId64 " bytes used, quota "
			                "SPOOL_MAX_BYTES=%" PRId64 " (table \"%s\" not committed; "
			                "let the uploader drain the spool or raise the quota)",
			                spool_dir(w->sp), used, w->set.quota_bytes, w->table);
		if (!warned) {
			/* Tables queued for their group commit (spool.h) hold bytes
			 * the uploader cannot drain yet: commit them first. */
			if (spool_flush(w->sp, e) != 0)
				return -1;
			log_event(LOG_WARNING, "spool full, waiting for the uploader to free space",
			          "spool", spool_dir(w->sp), "table", w->table, NULL);
			warned = true;
		}
		for (int i = 0; i < 20 && !ingesta_stop_requested; i++)
			usleep(250000);
		if (ingesta_stop_requested)
			return ierr_set(e, IERR_INTERRUPTED, "interrupted while waiting for space");
	}
}

/* Compress (or copy) one batch into the segment file: on the worker. */
static int seg_feed(struct table_writer *w, const struct buf *batch, bool end, struct ierr *e)
{
	struct segment_file *s = &w->seg;

	if (!w->set.compress)
		return batch->len ? seg_write_out(w, batch->data, batch->len, e) : 0;
	{
		ZSTD_inBuffer in = {batch->data, batch->len, 0};
		size_t outcap = ZSTD_CStreamOutSize();
		size_t rem;

		buf_reserve(&s->out, outcap);
		do {
			ZSTD_outBuffer out = {s->out.data, outcap, 0};
			uint64_t t0 = w->set.stats ? clock_ns() : 0;

			rem = ZSTD_compressStream2(s->zc, &out, &in,
			                           end ? ZSTD_e_end : ZSTD_e_continue);
			if (w->set.stats)
				w->stats.compress_ns += clock_ns() - t0;
			if (ZSTD_isError(rem))
				return ierr_set(e, IERR_INTERNAL, "zstd: %s",
				                ZSTD_getErrorName(rem));
			if (out.pos && seg_write_out(w, out.dst, out.pos, e) != 0)
				return -1;
		} while (end ? rem != 0 : in.pos < in.size);
	}
	return 0;
}

static void *pipe_worker(void *arg)
{
	struct table_writer *w = arg;
	struct pipe *q = &w->pipe;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		unsigned i;
		bool skip, end;
		int rc = 0;
		struct ierr e;

		while (q->count == 0 && !q->quit)
			pthread_cond_wait(&q->work, &q->mu);
		if (q->count == 0)
			break;
		i = q->head;
		end = q->slot_end[i];
		skip = q->failed || q->abandon;
		pthread_mutex_unlock(&q->mu);
		/* slot[i] and the segment are this thread's until count drops. */
		if (!skip)
			rc = seg_feed(w, &q->slot[i], end, &e);
		q->slot[i].len = 0;
		/* A batch that held a huge row gives its memory back. */
		if (q->slot[i].cap > 4 * BATCH_BYTES)
			buf_free(&q->slot[i]);
		pthread_mutex_lock(&q->mu);
		if (rc != 0) {
			q->failed = true;
			q->err = e;
		}
		q->head = (q->head + 1) % PIPE_SLOTS;
		q->count--;
		pthread_cond_broadcast(&q->done);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static int pipe_start(struct table_writer *w, struct ierr *e)
{
	struct pipe *q = &w->pipe;
	sigset_t all, old;
	int rc;

	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->done, NULL);
	/* Signals go to the driver's thread, whose blocking reads they interrupt. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&q->thread, NULL, pipe_worker, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&q->done);
		pthread_cond_destroy(&q->work);
		pthread_mutex_destroy(&q->mu);
		return ierr_errno(e, rc, "table \"%s\": start the compression thread", w->table);
	}
	q->started = true;
	return 0;
}

/* Stop the worker (dropping queued batches when abandon) and free the queue. */
static void pipe_stop(struct table_writer *w, bool abandon)
{
	struct pipe *q = &w->pipe;

	if (!q->started)
		return;
	pthread_mutex_lock(&q->mu);
	q->quit = true;
	q->abandon = q->abandon || abandon;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->done);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->mu);
	for (unsigned i = 0; i < PIPE_SLOTS; i++)
		buf_free(&q->slot[i]);
	q->started = false;
}

/* Queue the batch for the worker (end: the segment's last, which ends the
 * frame); w->batch comes back empty. Returns the worker's error, if any. */
static int seg_submit(struct table_writer *w, bool end, struct ierr *e)
{
	struct pipe *q = &w->pipe;
	struct buf tmp;
	unsigned i;
	int rc = 0;

	if (!w->pipelined) {
		rc = seg_feed(w, &w->batch, end, e);
		w->batch.len = 0;
		return rc;
	}
	pthread_mutex_lock(&q->mu);
	while (q->count == PIPE_SLOTS && !q->failed)
		pthread_cond_wait(&q->done, &q->mu);
	if (q->failed) {
		*e = q->err;
		rc = -1;
	} else {
		i = (q->head + q->count) % PIPE_SLOTS;
		tmp = q->slot[i]; /* an empty buffer the worker is done with */
		q->slot[i] = w->batch;
		q->slot_end[i] = end;
		w->batch = tmp;
		q->count++;
		pthread_cond_signal(&q->work);
	}
	pthread_mutex_unlock(&q->mu);
	w->batch.len = 0;
	return rc;
}

/* Wait until the worker has consumed every queued batch; returns its error. */
static int seg_drain(struct table_writer *w, struct ierr *e)
{
	struct pipe *q = &w->pipe;
	int rc = 0;

	if (!w->pipelined)
		return 0;
	pthread_mutex_lock(&q->mu);
	while (q->count > 0)
		pthread_cond_wait(&q->done, &q->mu);
	if (q->failed) {
		*e = q->err;
		rc = -1;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int seg_open(struct table_writer *w, struct ierr *e)
{
	struct segment_file *s = &w->seg;

	if (quota_check(w, e) != 0)
		return -1;
	if (w->pipelined && !w->pipe.started && pipe_start(w, e) != 0)
		return -1;
	/* The queue is empty here (a new table, or after seg_seal's drain). */
	memset(s, 0, sizeof(*s));
	atomic_store(&w->pipe.seg_bytes, 0);
	w->quota_checked_at = 0;
	w->pipe.failed = false;
	/* Chunks of one partition, on other threads, share the parent's numbers. */
	spool_tmp_path(
	    w->sp, w->run, w->partition_id,
	    __atomic_add_fetch(&(w->parent ? w->parent : w)->file_counter, 1, __ATOMIC_RELAXED),
	    s->tmp_path, sizeof(s->tmp_path));
	s->fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return ierr_errno(e, errno, "spool %s: create %s", spool_dir(w->sp), s->tmp_path);
	s->sha = EVP_MD_CTX_new();
	s->md5 = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL);
	EVP_DigestInit_ex(s->md5, EVP_md5(), NULL);
	if (w->set.compress) {
		s->zc = ZSTD_createCCtx();
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, w->set.zstd_level);
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1);
	}
	w->seg_open = true;
	return 0;
}

static void seg_discard(struct table_writer *w)
{
	struct segment_file *s = &w->seg;

	pipe_stop(w, true);
	if (!w->seg_open)
		return;
	close(s->fd);
	unlink(s->tmp_path);
	EVP_MD_CTX_free(s->sha);
	EVP_MD_CTX_free(s->md5);
	ZSTD_freeCCtx(s->zc);
	buf_free(&s->out);
	w->seg_open = false;
}

static void format_key(struct table_writer *w, int seq, char *out, size_t n)
{
	struct buf k = {0};
	time_t t = (time_t)(w->run->started_at / 1000);
	struct tm tm;
	const char *p = w->set.key_template;
	char num[32];

	gmtime_r(&t, &tm);
	if (w->set.key_prefix && *w->set.key_prefix) {
		size_t pl = strlen(w->set.key_prefix);

		while (pl > 0 && w->set.key_prefix[pl - 1] == '/')
			pl--;
		buf_append(&k, w->set.key_prefix, pl);
		buf_putc(&k, '/');
	}
	while (*p) {
		const char *close = *p == '{' ? strchr(p, '}') : NULL;

		if (close == NULL) {
			buf_putc(&k, *p++);
			continue;
		}
		size_t len = (size_t)(close - p - 1);
		const char *name = p + 1;

		if (len == 5 && strncmp(name, "table", 5) == 0) {
			/* A '/' in a table name would invent a directory level, and
			 * "." or ".." would climb out of a file:// bucket. */
			if (strcmp(w->table, ".") == 0 || strcmp(w->table, "..") == 0)
				buf_putc(&k, '_');
			for (const char *c = w->table; *c; c++)
				buf_putc(&k, *c == '/' ? '_' : *c);
		} else if (len == 4 && strncmp(name, "year", 4) == 0) {
			buf_printf(&k, "%04d", tm.tm_year + 1900);
		} else if (len == 5 && strncmp(name, "month", 5) == 0) {
			buf_printf(&k, "%02d", tm.tm_mon + 1);
		} else if (len == 3 && strncmp(name, "day", 3) == 0) {
			buf_printf(&k, "%02d", tm.tm_mday);
		} else if (len == 6 && strncmp(name, "run_id", 6) == 0) {
			buf_puts(&k, w->run->run_id);
		} else if (len == 3 && strncmp(name, "seq", 3) == 0) {
			snprintf(num, sizeof(num), "%05d", seq);
			buf_puts(&k, num);
		} else if (len == 3 && strncmp(name, "ext", 3) == 0) {
			buf_puts(&k, w->set.compress ? ".json.zst" : ".json");
		} else if (len == 6 && strncmp(name, "source", 6) == 0) {
			buf_puts(&k, w->set.source);
		} else {
			buf_append(&k, p, len + 2);
		}
		p = close + 1;
	}
	snprintf(out, n, "%s", buf_cstr(&k));
	buf_free(&k);
}

static int seg_seal(struct table_writer *w, struct ierr *e)
{
	struct segment_file *s = &w->seg;
	struct segment_info info;
	char key[1024];
	int rc, seq;

	if (seg_submit(w, true, e) != 0 || seg_drain(w, e) != 0)
		return -1;
	FAILPOINT("seal.before_fsync");
	if (fsync(s->fd) != 0)
		return ierr_errno(e, errno, "spool %s: fsync %s", spool_dir(w->sp), s->tmp_path);
	close(s->fd);
	s->fd = -1;
	memset(&info, 0, sizeof(info));
	info.rows = s->rows;
	info.raw_bytes = s->raw_bytes;
	info.bytes = s->bytes;
	info.ext = w->set.compress ? ".json.zst" : ".json";
	hex_digest(s->sha, info.sha256);
	hex_digest(s->md5, info.md5);
	seq = __atomic_add_fetch(&(w->parent ? w->parent : w)->segments, 1, __ATOMIC_RELAXED);
	if (w->parent)
		w->segments++;
	format_key(w, seq, key, sizeof(key));
	rc = spool_segment_seal(w->sp, w->run, w->partition_id, w->table, seq, s->tmp_path, &info,
	                        key, e);
	EVP_MD_CTX_free(s->sha);
	EVP_MD_CTX_free(s->md5);
	ZSTD_freeCCtx(s->zc);
	buf_free(&s->out);
	w->seg_open = false;
	if (rc != 0) {
		unlink(s->tmp_path);
		return -1;
	}
	w->bytes += info.bytes;
	return 0;
}

static void progress(struct table_writer *w, bool final)
{
	int64_t now = monotonic_ms();
	double secs;

	if (!w->set.progress || (!final && now - w->last_progress_ms < 1000))
		return;
	w->last_progress_ms = now;
	secs = (double)(now - w->started_ms) / 1000.0;
	fprintf(stderr, "\r\033[K%s: %" PRIu64 " rows, %.0f rows/s%s", w->table, w->rows,
	        secs > 0 ? (double)w->rows / secs : 0.0, final ? "\n" : "");
}

/* --------------------------------------------------------------- API */

struct buf *table_writer_row_begin(struct table_writer *w)
{
	w->row.len = 0;
	if (w->set.stats) {
		w->row_started_ns = clock_ns();
		if (w->row_ended_ns)
			w->stats.read_ns += w->row_started_ns - w->row_ended_ns;
	}
	return &w->row;
}

static int row_end(struct table_writer *w, struct ierr *e);

int table_writer_row_end(struct table_writer *w, struct ierr *e)
{
	int rc;

	if (!w->set.stats)
		return row_end(w, e);
	w->stats.normalize_ns += clock_ns() - w->row_started_ns;
	rc = row_end(w, e);
	w->row_ended_ns = clock_ns();
	return rc;
}

static int row_end(struct table_writer *w, struct ierr *e)
{
	buf_putc(&w->row, '\n');
	w->rows++;
	w->raw_bytes += w->row.len;
	if (ingesta_stop_requested)
		return ierr_set(e, IERR_INTERRUPTED, "table \"%s\": stopped by signal", w->table);
	if (w->sp == NULL) {
		if (w->stream == NULL) {
			buf_append(&w->batch, w->row.data, w->row.len);
		} else if (fwrite(w->row.data, 1, w->row.len, w->stream) != w->row.len) {
			return ierr_errno(e, errno, "write rows to output");
		}
		return 0;
	}
	if (!w->seg_open && seg_open(w, e) != 0)
		return -1;
	buf_append(&w->batch, w->row.data, w->row.len);
	w->seg.rows++;
	w->seg.raw_bytes += w->row.len;
	if (w->batch.len >= BATCH_BYTES && seg_submit(w, false, e) != 0)
		return -1;
	if (w->seg.raw_bytes >= w->set.max_bytes || w->seg.rows >= w->set.max_rows) {
		if (seg_seal(w, e) != 0)
			return -1;
	} else {
		uint64_t written = atomic_load_explicit(&w->pipe.seg_bytes, memory_order_relaxed);

		if (written - w->quota_checked_at >= QUOTA_CHECK_BYTES) {
			w->quota_checked_at = written;
			if (quota_check(w, e) != 0)
				return -1;
		}
	}
	if ((w->rows & 1023) == 0)
		progress(w, false);
	return 0;
}

struct lossy *table_writer_lossy(struct table_writer *w)
{
	return &w->lossy;
}

const struct norm_opts *table_writer_opts(const struct table_writer *w)
{
	return &w->opts;
}

/* A second thread only costs on a machine with one CPU. Asked once: glibc
 * reads /sys for it, and a run opens a writer per table. */
static bool several_cpus(void)
{
	static _Atomic int cpus; /* 0: not asked yet */

	if (cpus == 0)
		cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 1;
}

struct table_writer *table_writer_new_spool(struct spool *sp, const struct spool_run *run,
                                            const char *table, const struct norm_opts *opts,
                                            const struct segment_settings *set, struct ierr *e)
{
	struct table_writer *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		return NULL;
	}
	w->sp = sp;
	w->run = run;
	w->set = *set;
	w->pipelined = !set->inline_compress && several_cpus();
	w->opts = *opts;
	snprintf(w->table, sizeof(w->table), "%s", table);
	w->started_ms = monotonic_ms();
	{
		/* The manifest sits beside the partition's first segment. */
		char key[1024], mkey[1200];
		const char *slash;

		format_key(w, 1, key, sizeof(key));
		slash = strrchr(key, '/');
		if (slash)
			snprintf(mkey, sizeof(mkey), "%.*s/_manifest-%s.json", (int)(slash - key),
			         key, run->run_id);
		else
			snprintf(mkey, sizeof(mkey), "_manifest-%s.json", run->run_id);
		w->partition_id = spool_partition_begin(sp, run, table, mkey, e);
	}
	if (w->partition_id < 0) {
		free(w);
		return NULL;
	}
	return w;
}

int(table_writer_commit)(struct table_writer *w, const char *schema_json, struct ierr *e)
{
	/* No row: no segment was opened, and the partition commits with none. */
	if (w->seg_open && seg_seal(w, e) != 0)
		return -1;
	pipe_stop(w, false);
	progress(w, true);
	return spool_partition_complete_read(w->sp, w->partition_id, w->rows, w->raw_bytes,
	                                     w->bytes, w->segments, &w->lossy, schema_json, w->read,
	                                     e);
}

struct table_writer *table_writer_new_chunk(struct table_writer *parent, struct spool *sp,
                                            struct ierr *e)
{
	struct table_writer *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		return NULL;
	}
	w->sp = sp;
	w->parent = parent;
	w->run = parent->run;
	w->set = parent->set;
	w->set.progress = false; /* the parent's commit shows the table's */
	w->pipelined = parent->pipelined;
	w->opts = parent->opts;
	snprintf(w->table, sizeof(w->table), "%s", parent->table);
	w->partition_id = parent->partition_id;
	w->started_ms = monotonic_ms();
	return w;
}

void table_writer_use_spool(struct table_writer *w, struct spool *sp)
{
	w->sp = sp;
}

int table_writer_finish_chunk(struct table_writer *w, struct ierr *e)
{
	if (w->seg_open && seg_seal(w, e) != 0)
		return -1;
	pipe_stop(w, false);
	return 0;
}

void table_writer_absorb(struct table_writer *parent, const struct table_writer *chunk)
{
	parent->rows += chunk->rows;
	parent->raw_bytes += chunk->raw_bytes;
	parent->bytes += chunk->bytes;
	parent->lossy.nonfinite += chunk->lossy.nonfinite;
	parent->lossy.invalid_utf8 += chunk->lossy.invalid_utf8;
	parent->lossy.invalid_dates += chunk->lossy.invalid_dates;
	parent->lossy.infinite_dates += chunk->lossy.infinite_dates;
	parent->stats.read_ns += chunk->stats.read_ns;
	parent->stats.normalize_ns += chunk->stats.normalize_ns;
	parent->stats.compress_ns += chunk->stats.compress_ns;
	parent->stats.hash_ns += chunk->stats.hash_ns;
	parent->stats.write_ns += chunk->stats.write_ns;
}

void table_writer_set_read(struct table_writer *w, const struct partition_read *rd)
{
	w->read = rd;
}

const struct writer_stats *table_writer_stats(const struct table_writer *w)
{
	return &w->stats;
}

uint64_t table_writer_bytes(const struct table_writer *w)
{
	return w->bytes;
}

int table_writer_segments(const struct table_writer *w)
{
	return w->segments;
}

struct table_writer *table_writer_new_memory(const struct norm_opts *opts)
{
	struct table_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->opts = *opts;
	return w;
}

struct table_writer *table_writer_new_stream(const struct norm_opts *opts, FILE *out)
{
	struct table_writer *w = table_writer_new_memory(opts);

	if (w)
		w->stream = out;
	return w;
}

const struct buf *table_writer_memory_output(const struct table_writer *w)
{
	return &w->batch;
}

uint64_t table_writer_rows(const struct table_writer *w)
{
	return w->rows;
}

void table_writer_free(struct table_writer *w)
{
	if (w == NULL)
		return;
	if (w->sp)
		seg_discard(w);
	buf_free(&w->row);
	buf_free(&w->batch);
	free(w);
}
