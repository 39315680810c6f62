/*
 * test_writer.c - the table writer (writer.h): segments roll at
 * SEGMENT_MAX_BYTES and SEGMENT_MAX_ROWS, every row lands in exactly one
 * segment in order, row and byte counts and the recorded SHA-256/MD5 match
 * the files, zstd segments decompress to the same NDJSON, nothing is visible
 * before the commit, and the memory writer keeps rows and counts. The
 * pipeline (compression, hashing and writing on the writer's worker thread):
 * segments of many batches come out whole and in order, and a write error on
 * the worker (EFBIG under RLIMIT_FSIZE, as ENOSPC would) comes back from
 * row_end/commit with the write's message, nothing of the table committed and
 * its temporary file removed. Everything once more with inline_compress (no
 * worker: what a one-CPU machine runs).
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "buf.h"
#include "hex.h"
#include "spool.h"
#include "testlib.h"
#include "util.h"
#include "writer.h"

static char root[256];
static bool inline_mode; /* segment_settings.inline_compress for this pass */

static struct segment_settings settings(bool compress, uint64_t max_bytes, uint64_t max_rows)
{
	struct segment_settings s = {
	    .key_template = "{table}/{run_id}-{seq}{ext}",
	    .key_prefix = "",
	    .source = "wtest",
	    .compress = compress,
	    .zstd_level = 3,
	    .max_bytes = max_bytes,
	    .max_rows = max_rows,
	    .inline_compress = inline_mode,
	};
	return s;
}

/* Rows {"id":10000}..: 12 bytes + newline each. */
static int write_rows(struct spool *sp, struct spool_run *run, const char *table,
                      const struct segment_settings *s, int n, bool commit)
{
	struct norm_opts o = {0};
	struct ierr e = {0};
	struct table_writer *w = table_writer_new_spool(sp, run, table, &o, s, &e);
	int rc = 0;

	if (w == NULL)
		return -1;
	for (int i = 0; i < n && rc == 0; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", 10000 + i);
		rc = table_writer_row_end(w, &e);
	}
	CHECK(table_writer_rows(w) == (uint64_t)n);
	if (rc == 0 && commit)
		rc = table_writer_commit(w, &e);
	table_writer_free(w);
	return rc;
}

/* The NDJSON of a segment file (decompressed when zstd). */
static char *segment_text(const char *path, bool zstd, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf raw = {0};
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&raw, chunk, n);
	fclose(f);
	if (!zstd) {
		*len = raw.len;
		return buf_cstr(&raw) ? raw.data : NULL;
	}
	{
		unsigned long long size = ZSTD_getFrameContentSize(raw.data, raw.len);
		char *out;

		if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
			/* Streamed frames: decompress with a generous bound. */
			size = 1 << 20;
		}
		out = malloc(size + 1);
		*len = ZSTD_decompress(out, size, raw.data, raw.len);
		buf_free(&raw);
		if (ZSTD_isError(*len)) {
			free(out);
			return NULL;
		}
		out[*len] = '\0';
		return out;
	}
}

static void md5_hex(const char *path, char out[33])
{
	size_t n = 0;
	char *t = segment_text(path, false, &n);
	unsigned char md[16];

	EVP_Digest(t, n, md, NULL, EVP_md5(), NULL);
	hex_encode(md, 16, out);
	free(t);
}

/* Every segment of table: sizes as recorded, digests of the file, rows in
 * order; returns the number of segments and fills rows[] per segment. */
static int check_segments(struct spool *sp, const char *table, bool zstd, uint64_t max_bytes,
                          int *rows, int max)
{
	sqlite3_stmt *st;
	int nseg = 0, next_id = 10000;
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT seq, path, rows, raw_bytes, bytes, sha256, md5, state, key FROM segments "
	         "WHERE table_name='%s' ORDER BY seq",
	         table);
	if (sqlite3_prepare_v2(spool_db(sp), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW && nseg < max) {
		char path[4200], sha[65], md5[33];
		size_t len = 0;
		char *text;
		int nrows = sqlite3_column_int(st, 2);
		int64_t raw = sqlite3_column_int64(st, 3);

		CHECK(sqlite3_column_int(st, 0) == nseg + 1);
		snprintf(path, sizeof(path), "%s/%s", root,
		         (const char *)sqlite3_column_text(st, 1));
		CHECK(sha256_file_hex(path, sha) == 0);
		CHECK_STR(sha, (const char *)sqlite3_column_text(st, 5));
		md5_hex(path, md5);
		CHECK_STR(md5, (const char *)sqlite3_column_text(st, 6));
		CHECK(
		    strstr((const char *)sqlite3_column_text(st, 8), zstd ? ".json.zst" : ".json"));
		text = segment_text(path, zstd, &len);
		CHECK(text != NULL);
		CHECK((int64_t)len == raw);
		CHECK(raw == 13 * nrows);
		if (!zstd)
			CHECK(sqlite3_column_int64(st, 4) == raw);
		/* Rolled as soon as the segment reached the limit, not later. */
		if (max_bytes)
			CHECK(raw - 13 < (int64_t)max_bytes);
		for (int i = 0; text && i < nrows; i++) {
			char want[32];

			snprintf(want, sizeof(want), "{\"id\":%d}\n", next_id++);
			CHECK(strncmp(text + 13 * i, want, 13) == 0);
		}
		free(text);
		rows[nseg++] = nrows;
	}
	sqlite3_finalize(st);
	return nseg;
}

static void test_roll_by_bytes(struct spool *sp, struct spool_run *run, bool zstd)
{
	struct segment_settings s = settings(zstd, 50, 1000);
	const char *table = zstd ? "bytes_zst" : "bytes_plain";
	int rows[16], n;
	char sql[160];

	/* 50-byte limit, 13-byte rows: a segment is sealed at its 4th row (52);
	 * before the commit the full ones are pending and the last is still open. */
	snprintf(sql, sizeof(sql), "%s_open", table);
	CHECK(write_rows(sp, run, sql, &s, 23, false) == 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM segments WHERE table_name='%s_open' AND state='pending'",
	         table);
	CHECK(test_spool_int(sp, "%s", sql) == 5);
	CHECK(write_rows(sp, run, table, &s, 23, true) == 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM segments WHERE table_name='%s' AND state='sealed'", table);
	CHECK(test_spool_int(sp, "%s", sql) == 6);
	n = check_segments(sp, table, zstd, 50, rows, 16);
	CHECK(n == 6);
	for (int i = 0; i < 5 && i < n; i++)
		CHECK(rows[i] == 4);
	CHECK(n == 6 && rows[5] == 3);
}

static void test_roll_by_rows_and_commit(struct spool *sp, struct spool_run *run)
{
	struct segment_settings s = settings(true, 1 << 20, 3);
	int rows[16], n;

	CHECK(write_rows(sp, run, "by_rows", &s, 9, true) == 0);
	n = check_segments(sp, "by_rows", true, 0, rows, 16);
	CHECK(n == 3 && rows[0] == 3 && rows[1] == 3 && rows[2] == 3); /* no empty 4th */
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE table_name='by_rows' AND "
	                         "state='sealed'") == 3);
	CHECK(test_spool_int(sp, "SELECT rows FROM partitions WHERE table_name='by_rows'") == 9);
	CHECK(test_spool_int(sp, "SELECT segments FROM partitions WHERE table_name='by_rows'") ==
	      3);
	CHECK(test_spool_int(sp, "SELECT raw_bytes FROM partitions WHERE table_name='by_rows'") ==
	      9 * 13);
	CHECK(test_spool_int(
	          sp, "SELECT state='complete' FROM partitions WHERE table_name='by_rows'") == 1);

	/* A table without rows commits a partition of 0 segments. */
	CHECK(write_rows(sp, run, "empty", &s, 0, true) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE table_name='empty'") == 0);
	CHECK(test_spool_int(sp, "SELECT segments FROM partitions WHERE table_name='empty' AND "
	                         "state='complete'") == 0);
}

/* Many 128 KiB batches per segment, several segments: every row in order, the
 * recorded digests those of the files (hashed on the worker). */
static void test_pipeline_many_batches(struct spool *sp, struct spool_run *run, bool zstd)
{
	struct segment_settings s = settings(zstd, 400000, 1000000);
	const char *table = zstd ? "many_zst" : "many_plain";
	int rows[16], n, total = 0;

	CHECK(write_rows(sp, run, table, &s, 89999, true) == 0);
	n = check_segments(sp, table, zstd, 400000, rows, 16);
	CHECK(n == 3);
	for (int i = 0; i < n; i++)
		total += rows[i];
	CHECK(total == 89999);
}

static int threads_of_process(void)
{
	return test_dir_entries("/proc/self/task", NULL);
}

/* The worker exists while a segment is open and is joined by the commit (and
 * by free after an error): the row loop's thread never compresses. */
static void test_pipeline_thread(struct spool *sp, struct spool_run *run)
{
	struct segment_settings s = settings(true, 1 << 20, 1000000);
	struct norm_opts o = {0};
	struct ierr e = {0};
	struct table_writer *w = table_writer_new_spool(sp, run, "threads", &o, &s, &e);
	int before = threads_of_process();

	CHECK(w != NULL);
	if (w == NULL)
		return;
	buf_printf(table_writer_row_begin(w), "{\"id\":%d}", 10000);
	CHECK(table_writer_row_end(w, &e) == 0);
	CHECK(threads_of_process() == before + (inline_mode ? 0 : 1));
	CHECK(table_writer_commit(w, &e) == 0);
	CHECK(threads_of_process() == before);
	table_writer_free(w);
	CHECK(threads_of_process() == before);
}

static int tmp_files(void)
{
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/tmp", root);
	return test_dir_entries(dir, NULL);
}

/* A write failing on the worker: the error surfaces on a later row_end or on
 * the commit, with the text of the write's error. */
static void test_pipeline_write_error(struct spool *sp, struct spool_run *run, bool zstd)
{
	struct segment_settings s = settings(zstd, (uint64_t)1 << 40, 1000000);
	const char *table = zstd ? "efbig_zst" : "efbig_plain";
	struct rlimit old, lim;
	struct norm_opts o = {0};
	struct ierr e = {0};
	struct table_writer *w;
	int rc = 0, i, threads = threads_of_process();
	char sql[160];

	w = table_writer_new_spool(sp, run, table, &o, &s, &e);
	CHECK(w != NULL);
	if (w == NULL)
		return;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 1 << 20; /* spool.db and its WAL stay below this */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	/* Plain: 13 bytes a row; zstd: rows that do not compress (random hex). */
	for (i = 0; i < 400000 && rc == 0; i++) {
		struct buf *b = table_writer_row_begin(w);

		if (zstd)
			buf_printf(b, "{\"id\":%d,\"r\":\"%08x%08x%08x\"}", i, (unsigned)random(),
			           (unsigned)random(), (unsigned)random());
		else
			buf_printf(b, "{\"id\":%d}", 10000 + i % 90000);
		rc = table_writer_row_end(w, &e);
	}
	if (rc == 0)
		rc = table_writer_commit(w, &e);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(rc == -1);
	CHECK(i < 400000); /* from a row_end, not only at the commit */
	CHECK(strstr(e.msg, ": write ") != NULL);
	CHECK(strstr(e.msg, strerror(EFBIG)) != NULL);
	table_writer_free(w);
	CHECK(threads_of_process() == threads);
	CHECK(tmp_files() == 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM partitions WHERE table_name='%s' AND state='complete'",
	         table);
	CHECK(test_spool_int(sp, "%s", sql) == 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM segments WHERE table_name='%s'", table);
	CHECK(test_spool_int(sp, "%s", sql) == 0);
}

static void test_memory_writer(void)
{
	struct norm_opts o = {0};
	struct table_writer *w = table_writer_new_memory(&o);
	struct ierr e = {0};

	for (int i = 0; i < 3; i++) {
		buf_printf(table_writer_row_begin(w), "{\"n\":%d}", i);
		CHECK(table_writer_row_end(w, &e) == 0);
	}
	CHECK(table_writer_rows(w) == 3);
	CHECK_STR(buf_cstr((struct buf *)table_writer_memory_output(w)),
	          "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
	table_writer_free(w);
}

/* Every spool test, in a spool of its own, pipelined or inline. */
static void spool_tests(bool inl)
{
	struct ierr e = {0};
	struct spool *sp;
	struct spool_run run;
	char cmd[300];

	inline_mode = inl;
	snprintf(root, sizeof(root), "/tmp/ingesta-test-writer-XXXXXX");
	if (mkdtemp(root) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp != NULL);
	if (sp != NULL) {
		CHECK(spool_run_begin(sp, "wtest", "sqlite", "file:///tmp/x", &run, &e) == 0);
		test_roll_by_bytes(sp, &run, false);
		test_roll_by_bytes(sp, &run, true);
		test_roll_by_rows_and_commit(sp, &run);
		test_pipeline_thread(sp, &run);
		test_pipeline_many_batches(sp, &run, false);
		test_pipeline_many_batches(sp, &run, true);
		test_pipeline_write_error(sp, &run, false);
		test_pipeline_write_error(sp, &run, true);
		CHECK(spool_run_end(sp, &run, "complete", 2, 9, NULL, &e) == 0);
		spool_close(sp);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

int main(void)
{
	spool_tests(false);
	spool_tests(true);
	test_memory_writer();
	return test_done();
}
