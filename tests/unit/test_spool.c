/*
 * test_spool.c - the spool's state machine, migrations, permissions and crash
 * recovery (spool.h), driven through the real table writer.
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

static int count_files(const char *sub)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s/%s | wc -l", root, sub);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static struct segment_settings settings(void)
{
	struct segment_settings s = {
	    .key_template = "{table}/year={year}/month={month}/day={day}/{run_id}-{seq}{ext}",
	    .key_prefix = "",
	    .source = "test",
	    .compress = true,
	    .zstd_level = 3,
	    .max_bytes = 1 << 20,
	    .max_rows = 3,
	    .quota_bytes = 0,
	};
	return s;
}

/* Write n rows of table into the run; commit when asked. */
static int write_table(struct spool *sp, struct spool_run *run, const char *table, int n,
                       bool commit)
{
	struct norm_opts o = {0};
	struct segment_settings s = settings();
	struct ierr e;
	struct table_writer *w = table_writer_new_spool(sp, run, table, &o, &s, &e);
	int rc = 0;

	if (w == NULL)
		return -1;
	for (int i = 0; i < n && rc == 0; i++) {
		struct buf *b = table_writer_row_begin(w);

		buf_printf(b, "{\"id\":%d}", i);
		rc = table_writer_row_end(w, &e);
	}
	if (rc == 0 && commit)
		rc = table_writer_commit(w, &e);
	table_writer_free(w);
	return rc;
}

static void test_layout_and_permissions(void)
{
	struct ierr e;
	struct spool *sp;
	struct stat sb;
	char path[512];

	umask(0);
	sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	stat(root, &sb);
	CHECK((sb.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/data", root);
	stat(path, &sb);
	CHECK((sb.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/spool.db", root);
	stat(path, &sb);
	CHECK((sb.st_mode & 0777) == 0600);
	CHECK(test_spool_int(sp, "PRAGMA user_version") >= 1);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM sqlite_master WHERE name='segments'") == 1);
	spool_close(sp);
	umask(022);
}

static void test_state_machine(void)
{
	struct ierr e;
	struct spool *sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	struct spool_run run;
	struct segment seg;
	struct stat sb;
	char path[4200];

	CHECK(sp != NULL);
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	/* 7 rows at 3 rows per segment: 3 segments, pending until commit. */
	CHECK(write_table(sp, &run, "users", 7, false) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='pending'") == 2);
	CHECK(spool_claim_next(sp, &seg, &e) == 0); /* nothing visible yet */
	spool_close(sp);
	/* The abandoned writer left an open partition; a second table commits. */
	sp = spool_open(root, SPOOL_ROLE_OPERATOR, &e);
	CHECK(write_table(sp, &run, "orders", 7, true) == 0);
	CHECK(
	    test_spool_int(
	        sp, "SELECT count(*) FROM segments WHERE table_name='orders' AND state='sealed'") ==
	    3);
	CHECK(test_spool_int(sp, "SELECT sum(rows) FROM segments WHERE table_name='orders'") == 7);
	CHECK(test_spool_int(
	          sp, "SELECT count(DISTINCT key) FROM segments WHERE table_name='orders'") == 3);
	CHECK(test_spool_int(sp, "SELECT rows FROM partitions WHERE table_name='orders'") == 7);

	CHECK(spool_claim_next(sp, &seg, &e) == 1);
	CHECK(strcmp(seg.table, "orders") == 0 && seg.attempts == 1);
	CHECK(stat(seg.path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK(strncmp(seg.key, "orders/year=", 12) == 0);
	CHECK(strstr(seg.key, "-00001.json.zst") != NULL);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploading'") == 1);
	/* Transient error: back to sealed, due later. */
	CHECK(spool_mark_retry(sp, seg.id, false, INT64_MAX / 2, 3, "SlowDown", "slow", &e) == 0);
	snprintf(path, sizeof(path),
	         "SELECT state='sealed' AND attempts=1 FROM segments WHERE id=%lld",
	         (long long)seg.id);
	CHECK(test_spool_int(sp, "%s", path) == 1);
	/* Permanent error: failed at once; replay brings it back. */
	CHECK(spool_claim_next(sp, &seg, &e) == 1);
	CHECK(spool_mark_retry(sp, seg.id, true, 0, 3, "AccessDenied", "denied", &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='failed'") == 1);
	CHECK(spool_replay(sp, NULL, 0, &e) == 1);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='failed'") == 0);
	/* Success. */
	CHECK(spool_claim_next(sp, &seg, &e) == 1);
	CHECK(spool_mark_uploaded(sp, seg.id, "etag", &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploaded'") == 1);
	/* Quarantine. */
	CHECK(spool_claim_next(sp, &seg, &e) == 1);
	CHECK(spool_mark_quarantined(sp, seg.id, "bad", &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='quarantined'") == 1);
	/* Retention deletes uploaded files, rows stay. */
	CHECK(spool_apply_retention(sp, 0, &e) == 1);
	CHECK(test_spool_int(
	          sp, "SELECT count(*) FROM segments WHERE file_deleted_at IS NOT NULL") == 1);
	/* The run is still locked by us: recovery must not touch it. */
	CHECK(spool_recover(sp, &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE table_name='users'") == 2);
	/* Crash: the lock goes away with the process. */
	close(run.lock_fd);
	CHECK(spool_recover(sp, &e) >= 1);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE table_name='users'") == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE table_name='users'") == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE table_name='orders'") == 3);
	CHECK(test_spool_int(sp, "SELECT state FROM runs") != -1);
	CHECK(count_files("tmp") == 0);
	CHECK(count_files("data") == 2); /* orders: 3 files, one deleted by retention */
	spool_close(sp);
}

static void test_orphans(void)
{
	struct ierr e;
	struct spool *sp;
	char path[512];
	int fd;

	/* Files of a run with no lock (dead) and no rows: removed. */
	snprintf(path, sizeof(path), "%s/tmp/20250101T000000Z-deadbeef.1-00001.tmp", root);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(path, sizeof(path), "%s/data/20250101T000000Z-deadbeef.1-00001.json.zst", root);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp != NULL);
	CHECK(count_files("tmp") == 0);
	CHECK(count_files("data") == 2);
	/* A recorded file that vanished: its row is quarantined, loudly. */
	{
		struct segment seg;
		int n;

		CHECK(spool_replay(sp, NULL, 0, &e) == 0);
		sqlite3_exec(spool_db(sp), "UPDATE segments SET next_attempt_at=0", NULL, NULL,
		             NULL);
		n = spool_claim_next(sp, &seg, &e);
		CHECK(n == 1);
		if (n == 1) {
			unlink(seg.path);
			CHECK(spool_uploader_lock(sp, &e) == 0); /* resets uploading -> sealed */
			CHECK(test_spool_int(
			          sp, "SELECT count(*) FROM segments WHERE state='uploading'") ==
			      0);
			CHECK(spool_recover(sp, &e) == 1);
			CHECK(test_spool_int(
			          sp, "SELECT count(*) FROM segments WHERE state='quarantined'") ==
			      2);
		}
	}
	/* A second uploader on the same spool is refused. */
	{
		struct spool *sp2 = spool_open(root, SPOOL_ROLE_OPERATOR, &e);

		CHECK(spool_uploader_lock(sp2, &e) != 0);
		CHECK(strstr(e.msg, "another uploader is running") != NULL);
		spool_close(sp2);
	}
	spool_close(sp);
}

static void test_newer_spool_refused(void)
{
	struct ierr e;
	struct spool *sp = spool_open(root, SPOOL_ROLE_OPERATOR, &e);

	CHECK(sp != NULL);
	sqlite3_exec(spool_db(sp), "PRAGMA user_version = 999", NULL, NULL, NULL);
	spool_close(sp);
	sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp == NULL);
	CHECK(strstr(e.msg, "written by a newer ingesta (schema version 999") != NULL);
}

static void test_quota(void)
{
	char dir[300];
	struct ierr e;
	struct spool *sp;
	struct spool_run run;
	struct norm_opts o = {0};
	struct segment_settings s = settings();
	struct table_writer *w;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s-quota", root);
	sp = spool_open(dir, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	s.quota_bytes = 1000;
	s.max_rows = 50;
	s.compress = false;
	w = table_writer_new_spool(sp, &run, "big", &o, &s, &e);
	for (int i = 0; i < 1000 && rc == 0; i++) {
		struct buf *b = table_writer_row_begin(w);

		buf_printf(b, "{\"id\":%d,\"pad\":\"pppppppppppppppppppp\"}", i);
		rc = table_writer_row_end(w, &e);
	}
	CHECK(rc != 0);
	CHECK(e.code == IERR_NOSPACE);
	CHECK(strstr(e.msg, "is full") != NULL && strstr(e.msg, "SPOOL_MAX_BYTES") != NULL);
	table_writer_free(w);
	CHECK(spool_run_end(sp, &run, "failed", 0, 0, e.msg, &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments") == 0);
	spool_close(sp);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/ingesta-test-spool-%d", getpid());
	test_layout_and_permissions();
	test_state_machine();
	test_orphans();
	test_newer_spool_refused();
	test_quota();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf %s %s-quota", root, root);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	return test_done();
}
