/*
 * test_many_tables.c - the spool with thousands of small tables (issue 12):
 * group commit of partition completions (spool_group_commit), the open
 * partition's rows committed without the WAL fsync but the connection back at
 * synchronous=FULL, and queries whose cost must not grow with the spool's
 * history (the partial indexes of schema 004, batched retention).
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "testlib.h"
#include "util.h"
#include "writer.h"

static char root[256];

static int write_table_q(struct spool *sp, struct spool_run *run, const char *table, int n,
                         int64_t quota, struct ierr *ep)
{
	struct norm_opts o = {0};
	struct segment_settings s = {
	    .key_template = "{table}/{run_id}-{seq}{ext}",
	    .key_prefix = "",
	    .source = "test",
	    .compress = false,
	    .max_bytes = 1 << 20,
	    .max_rows = 1000,
	    .quota_bytes = quota,
	    .wait_when_full = true,
	};
	struct ierr e;
	struct table_writer *w = table_writer_new_spool(sp, run, table, &o, &s, &e);
	int rc = 0;

	if (w == NULL)
		return -1;
	for (int i = 0; i < n && rc == 0; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", i);
		rc = table_writer_row_end(w, &e);
	}
	if (rc == 0)
		rc = table_writer_commit(w, &e);
	table_writer_free(w);
	if (ep)
		*ep = e;
	return rc;
}

static int write_table(struct spool *sp, struct spool_run *run, const char *table, int n)
{
	return write_table_q(sp, run, table, n, 0, NULL);
}

/* Completions wait for their group; nothing of a queued one is visible. */
static void test_group_commit(void)
{
	struct ierr e;
	struct spool *sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	struct spool *up = spool_open(root, SPOOL_ROLE_OPERATOR, &e);
	struct spool_run run;
	struct segment seg;

	CHECK(sp != NULL && up != NULL);
	if (sp == NULL || up == NULL)
		return;
	spool_group_commit(sp, 3, 3600 * 1000);
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	CHECK(write_table(sp, &run, "a", 2) == 0);
	CHECK(write_table(sp, &run, "b", 0) == 0);
	/* queued: open, segments pending, nothing to claim */
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE state='open'") == 2);
	CHECK(test_spool_int(up, "SELECT count(*) FROM segments WHERE state='pending'") == 1);
	CHECK(spool_claim_next(up, &seg, &e) == 0);
	/* the open partition's rows committed relaxed, the connection back at FULL */
	CHECK(test_spool_int(sp, "PRAGMA synchronous") == 2);
	CHECK(write_table(sp, &run, "c", 1) == 0); /* third: the group commits */
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE state='complete'") == 3);
	CHECK(test_spool_int(up, "SELECT count(*) FROM segments WHERE state='sealed'") == 2);
	CHECK(test_spool_int(up, "SELECT sum(rows) FROM partitions WHERE state='complete'") == 3);
	/* one more, committed by the end of the run */
	CHECK(write_table(sp, &run, "d", 1) == 0);
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE table_name='d' AND "
	                         "state='open'") == 1);
	CHECK(spool_run_end(sp, &run, "complete", 4, 4, NULL, &e) == 0);
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE state='complete'") == 4);
	CHECK(test_spool_int(up, "SELECT count(*) FROM segments WHERE state='sealed'") == 3);

	/* A collector that dies with a queue: its tables are open, recovery
	 * drops them (rows and files), the committed ones stay. */
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	CHECK(write_table(sp, &run, "e", 1) == 0);
	CHECK(spool_flush(sp, &e) == 0);
	CHECK(write_table(sp, &run, "f", 1) == 0);
	spool_close(sp);
	close(run.lock_fd); /* the process "dies" */
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE table_name='f' AND "
	                         "state='open'") == 1);
	sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e); /* recovery */
	CHECK(sp != NULL);
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE table_name='f'") == 0);
	CHECK(test_spool_int(up, "SELECT count(*) FROM segments WHERE table_name='f'") == 0);
	CHECK(test_spool_int(up, "SELECT count(*) FROM partitions WHERE table_name='e' AND "
	                         "state='complete'") == 1);
	CHECK(test_spool_int(up, "SELECT count(*) FROM segments WHERE state='sealed'") == 4);
	spool_close(sp);
	spool_close(up);
}

static void stop_soon(int sig)
{
	(void)sig;
	ingesta_stop_requested = 1;
}

/* A collector waiting for quota space first commits its queue: the bytes of
 * queued tables are the uploader's to drain (else it would wait for ever). */
static void test_quota_wait_flushes(void)
{
	struct ierr e;
	struct spool *sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	struct spool_run run;

	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	spool_group_commit(sp, 64, 3600 * 1000);
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	CHECK(write_table(sp, &run, "q1", 50) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE table_name='q1' AND "
	                         "state='open'") == 1);
	signal(SIGALRM, stop_soon);
	alarm(1); /* ends the wait for space, interrupted */
	CHECK(write_table_q(sp, &run, "q2", 5, 1, &e) != 0);
	alarm(0);
	ingesta_stop_requested = 0;
	CHECK(e.code == IERR_INTERRUPTED);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE table_name='q1' AND "
	                         "state='complete'") == 1);
	CHECK(spool_run_end(sp, &run, "failed", 1, 50, "interrupted", &e) == 0);
	spool_close(sp);
}

/* Group size 1 (the default): every completion commits at once. */
static void test_no_group(void)
{
	struct ierr e;
	struct spool *sp = spool_open(root, SPOOL_ROLE_COLLECTOR, &e);
	struct spool_run run;

	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	CHECK(write_table(sp, &run, "g", 1) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE table_name='g' AND "
	                         "state='complete'") == 1);
	CHECK(spool_run_end(sp, &run, "complete", 1, 1, NULL, &e) == 0);
	spool_close(sp);
}

/* A fresh spool <root>-<suffix> with one complete run r1, or NULL. */
static struct spool *seeded_spool(const char *suffix)
{
	struct ierr e;
	char dir[300];
	struct spool *sp;

	snprintf(dir, sizeof(dir), "%s-%s", root, suffix);
	sp = spool_open(dir, SPOOL_ROLE_OPERATOR, &e);
	CHECK(sp != NULL);
	if (sp != NULL)
		CHECK(spool_exec(sp,
		                 "INSERT INTO runs (run_id, source, db_type, bucket, started_at, "
		                 "state) VALUES ('r1','s','sqlite','b',0,'complete')",
		                 &e) == 0);
	return sp;
}

static int count_step(void *ctx)
{
	(*(long *)ctx)++;
	return 0;
}

/* VM instructions one call costs (the progress handler fires every one). */
static long manifest_cost(struct spool *sp)
{
	struct manifest_job job;
	struct ierr e;
	long n = 0;
	int rc;

	sqlite3_progress_handler(spool_db(sp), 1, count_step, &n);
	rc = spool_next_manifest(sp, &job, &e);
	sqlite3_progress_handler(spool_db(sp), 0, NULL, NULL);
	CHECK(rc == 1);
	if (rc == 1)
		free(job.json);
	return n;
}

static long bytes_used_cost(struct spool *sp, int64_t *used)
{
	long n = 0;

	sqlite3_progress_handler(spool_db(sp), 1, count_step, &n);
	*used = spool_bytes_used(sp);
	sqlite3_progress_handler(spool_db(sp), 0, NULL, NULL);
	return n;
}

/*
 * 5,000 partitions and segments of earlier runs (manifests written, files
 * deleted) and one partition due: finding it, and the quota's sum, cost what
 * the rows still in play cost, not the history (schema 004's partial
 * indexes; dropped here to show the difference).
 */
static void test_history_independent(void)
{
	struct ierr e;
	struct spool *sp;
	long with, without;
	int64_t used;

	sp = seeded_spool("hist");
	if (sp == NULL)
		return;
	CHECK(
	    spool_exec(sp,
	               "BEGIN;"
	               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<5000) "
	               "INSERT INTO partitions (id, run_id, table_name, state, manifest_state, "
	               "commit_state) SELECT i, 'r1', 't'||i, 'complete', 'written', 'written' "
	               "FROM n;"
	               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<5000) "
	               "INSERT INTO segments (partition_id, run_id, source, table_name, seq, path, "
	               "bucket, key, rows, raw_bytes, bytes, sha256, md5, state, created_at, "
	               "uploaded_at, file_deleted_at) SELECT i, 'r1', 's', 't'||i, 1, 'data/'||i, "
	               "'b', 'k'||i, 1, 10, 10, 'x', 'y', 'uploaded', 0, 0, 1 FROM n;"
	               "INSERT INTO partitions (id, run_id, table_name, state) "
	               "VALUES (5001, 'r1', 'due', 'complete');"
	               "INSERT INTO segments (partition_id, run_id, source, table_name, seq, path, "
	               "bucket, key, rows, raw_bytes, bytes, sha256, md5, state, created_at) "
	               "VALUES (5001, 'r1', 's', 'due', 1, 'data/due', 'b', 'kdue', 1, 7, 7, 'x', "
	               "'y', 'sealed', 0);"
	               "COMMIT;",
	               &e) == 0);
	CHECK(spool_exec(sp, "UPDATE segments SET state='uploaded' WHERE path='data/due'", &e) ==
	      0);
	with = manifest_cost(sp);
	CHECK(bytes_used_cost(sp, &used) < 2000);
	CHECK(used == 7);
	CHECK(spool_exec(sp, "DROP INDEX partitions_manifest_due; DROP INDEX segments_on_disk",
	                 &e) == 0);
	without = manifest_cost(sp);
	fprintf(stderr,
	        "spool_next_manifest: %ld VM steps with the index, %ld without; "
	        "spool_bytes_used: %ld without\n",
	        with, without, bytes_used_cost(sp, &used));
	CHECK(with < 2000);
	CHECK(without > 10 * with);
	spool_close(sp);
}

/* Retention works through more due files than one batch holds. */
static void test_retention_batches(void)
{
	struct ierr e;
	struct spool *sp;

	sp = seeded_spool("ret");
	if (sp == NULL)
		return;
	CHECK(
	    spool_exec(sp,
	               "BEGIN;"
	               "INSERT INTO partitions (id, run_id, table_name, state) "
	               "VALUES (1, 'r1', 't', 'complete');"
	               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<700) "
	               "INSERT INTO segments (partition_id, run_id, source, table_name, seq, path, "
	               "bucket, key, rows, raw_bytes, bytes, sha256, md5, state, created_at, "
	               "uploaded_at) SELECT 1, 'r1', 's', 't', i, 'data/r1.1-'||i, 'b', 'k'||i, 1, "
	               "1, 1, 'x', 'y', 'uploaded', 0, 0 FROM n;"
	               "COMMIT;",
	               &e) == 0);
	CHECK(spool_apply_retention(sp, 0, &e) == 700);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE file_deleted_at IS NULL") ==
	      0);
	CHECK(spool_apply_retention(sp, 0, &e) == 0);
	spool_close(sp);
}

int main(void)
{
	char cmd[800];

	snprintf(root, sizeof(root), "/tmp/ingesta-test-many-%d", getpid());
	test_group_commit();
	test_no_group();
	test_quota_wait_flushes();
	test_history_independent();
	test_retention_batches();
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s-hist %s-ret", root, root, root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return test_done();
}
