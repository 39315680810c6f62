/*
 * test_recovery.c - what spool_recover() repairs after a crash (spool.h,
 * recovery.c), through the public spool functions and the real writer: a dead
 * run loses its open partition (rows, data files, temporary files) and its
 * unrecorded files but keeps its committed tables; a live run keeps
 * everything; a recorded file that vanished is quarantined (an uploaded one
 * only noted); the uploader lock makes `uploading` rows stale; a second
 * recovery finds nothing to do.
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "testlib.h"
#include "writer.h"

static char root[256];

static bool exists(const char *rel)
{
	char p[600];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return stat(p, &sb) == 0;
}

static void touch(const char *rel)
{
	char p[600];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
}

/* Count the files in sub/ whose name starts with run_id. */
static int files_of(const char *sub, const char *run_id)
{
	char cmd[600];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s/%s | grep -c '^%s' || true", root, sub, run_id);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

/* A run with a committed table "done" (4 rows: 2 segments) and an open table
 * "open" (5 rows: 2 pending segments and a third still in tmp/), left as a
 * crash leaves it: the writer is returned, not committed or freed. */
static struct table_writer *crashed_run(struct spool *sp, struct spool_run *run)
{
	struct segment_settings s = {.key_template = "{table}/{run_id}-{seq}{ext}",
	                             .key_prefix = "",
	                             .source = "rtest",
	                             .compress = true,
	                             .zstd_level = 1,
	                             .max_bytes = 1 << 20,
	                             .max_rows = 2};
	struct norm_opts o = {0};
	struct ierr e = {0};
	struct table_writer *w;

	CHECK(spool_run_begin(sp, "rtest", "sqlite", "file:///tmp/x", run, &e) == 0);
	w = table_writer_new_spool(sp, run, "done", &o, &s, &e);
	for (int i = 0; w && i < 4; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", i);
		CHECK(table_writer_row_end(w, &e) == 0);
	}
	CHECK(w && table_writer_commit(w, &e) == 0);
	table_writer_free(w);
	w = table_writer_new_spool(sp, run, "open", &o, &s, &e);
	for (int i = 0; w && i < 5; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", i);
		CHECK(table_writer_row_end(w, &e) == 0);
	}
	return w;
}

static void test_dead_and_live_runs(void)
{
	struct ierr e = {0};
	struct spool *sp = spool_open(root, SPOOL_ROLE_OPERATOR, &e);
	struct spool_run live, dead;
	struct table_writer *wl, *wd;
	char stray[2][300];

	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	wl = crashed_run(sp, &live);
	wd = crashed_run(sp, &dead);
	/* Leftovers a crash between "file written" and "row inserted" leaves. */
	for (int i = 0; i < 2; i++) {
		const char *id = i ? dead.run_id : live.run_id;

		snprintf(stray[i], sizeof(stray[i]), "data/%s.999-00001.json.zst", id);
		touch(stray[i]);
		snprintf(stray[i], sizeof(stray[i]), "tmp/%s.999-00001.tmp", id);
		touch(stray[i]);
	}
	CHECK(files_of("tmp", live.run_id) == 2 && files_of("tmp", dead.run_id) == 2);
	CHECK(files_of("data", dead.run_id) == 5); /* 2 done + 2 open + 1 stray */

	/* The dead collector's lock goes with its process. */
	close(dead.lock_fd);
	CHECK(spool_recover(sp, &e) >= 1);

	/* Dead run: the open table is gone, rows and files; committed stays. */
	CHECK(test_spool_int(
	          sp, "SELECT count(*) FROM partitions WHERE run_id='%s' AND table_name='open'",
	          dead.run_id) == 0);
	CHECK(test_spool_int(
	          sp, "SELECT count(*) FROM segments WHERE run_id='%s' AND table_name='open'",
	          dead.run_id) == 0);
	CHECK(test_spool_int(
	          sp,
	          "SELECT count(*) FROM segments WHERE run_id='%s' AND table_name='done' AND "
	          "state='sealed'",
	          dead.run_id) == 2);
	CHECK(test_spool_int(sp,
	                     "SELECT state='complete' FROM partitions WHERE run_id='%s' AND "
	                     "table_name='done'",
	                     dead.run_id) == 1);
	CHECK(files_of("tmp", dead.run_id) == 0);
	CHECK(files_of("data", dead.run_id) == 2); /* the committed table's two */
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='abandoned' AND finished_at IS NOT NULL AND error IS NOT NULL "
	          "FROM runs WHERE run_id='%s'",
	          dead.run_id) == 1);
	{
		char lock[300];

		snprintf(lock, sizeof(lock), "locks/run-%s.lock", dead.run_id);
		CHECK(!exists(lock));
	}

	/* Live run: nothing touched. */
	CHECK(test_spool_int(sp,
	                     "SELECT count(*) FROM partitions WHERE run_id='%s' AND state='open'",
	                     live.run_id) == 1);
	CHECK(test_spool_int(sp,
	                     "SELECT count(*) FROM segments WHERE run_id='%s' AND state='pending'",
	                     live.run_id) == 2);
	CHECK(files_of("tmp", live.run_id) == 2);
	CHECK(files_of("data", live.run_id) == 5);
	CHECK(test_spool_int(sp, "SELECT state='running' FROM runs WHERE run_id='%s'",
	                     live.run_id) == 1);

	/* Nothing left to repair while the live run lives. */
	CHECK(spool_recover(sp, &e) == 0);

	/* Then the live one dies too. */
	table_writer_free(wd);
	close(live.lock_fd);
	CHECK(spool_recover(sp, &e) >= 1);
	CHECK(files_of("tmp", live.run_id) == 0);
	CHECK(files_of("data", live.run_id) == 2);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='pending'") == 0);
	table_writer_free(wl);
	spool_close(sp);
}

static void test_missing_files_and_uploading(void)
{
	struct ierr e = {0};
	struct spool *sp = spool_open(root, SPOOL_ROLE_OPERATOR, &e);
	struct segment a, b;
	char path[4200];

	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	/* Four sealed segments from the runs above. */
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='sealed'") == 4);
	CHECK(spool_claim_next(sp, &a, &e) == 1);
	CHECK(spool_mark_uploaded(sp, a.id, "etag", &e) == 0);
	CHECK(spool_claim_next(sp, &b, &e) == 1);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploading'") == 1);

	/* Files vanish: the uploaded one is noted, the other is quarantined. */
	unlink(a.path);
	unlink(b.path);
	CHECK(spool_recover(sp, &e) == 2);
	snprintf(path, sizeof(path),
	         "SELECT state='uploaded' AND file_deleted_at IS NOT NULL FROM segments WHERE "
	         "id=%lld",
	         (long long)a.id);
	CHECK(test_spool_int(sp, "%s", path) == 1);
	snprintf(path, sizeof(path),
	         "SELECT state='quarantined' AND file_deleted_at IS NOT NULL AND last_error LIKE "
	         "'%%missing%%' FROM segments WHERE id=%lld",
	         (long long)b.id);
	CHECK(test_spool_int(sp, "%s", path) == 1);
	CHECK(spool_recover(sp, &e) == 0);

	/* An upload in flight when its uploader died: back to sealed on the next
	 * uploader's lock. */
	CHECK(spool_claim_next(sp, &a, &e) == 1);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploading'") == 1);
	spool_close(sp);
	sp = spool_open(root, SPOOL_ROLE_OPERATOR, &e);
	CHECK(sp && spool_uploader_lock(sp, &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploading'") == 0);
	snprintf(path, sizeof(path), "SELECT state='sealed' FROM segments WHERE id=%lld",
	         (long long)a.id);
	CHECK(test_spool_int(sp, "%s", path) == 1);
	spool_close(sp);
}

int main(void)
{
	char cmd[300];

	snprintf(root, sizeof(root), "/tmp/ingesta-test-recovery-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	test_dead_and_live_runs();
	test_missing_files_and_uploading();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return test_done();
}
