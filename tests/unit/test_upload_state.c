/*
 * test_upload_state.c - the uploader's transitions over the spool (spool.h,
 * upload_state.c), through the public functions: claim order and due times,
 * transient retries with backoff up to the attempt limit, permanent failures,
 * quarantine, replay (failed always; quarantined only by id), uploaded,
 * retention, the manifest of a partition only once all of it is uploaded, and
 * batches (claims bounded by count and bytes, marks in one transaction,
 * released claims), and manifests and commit records claimed in batches (each
 * job once, in id order) with their outcomes recorded in one transaction.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "testlib.h"
#include "util.h"
#include "writer.h"

static char root[256];

/* One committed table of n one-row segments. */
static void committed_table(struct spool *sp, struct spool_run *run, const char *table, int n)
{
	struct segment_settings s = {.key_template = "{table}/{run_id}-{seq}{ext}",
	                             .key_prefix = "",
	                             .source = "utest",
	                             .compress = false,
	                             .max_bytes = 1 << 20,
	                             .max_rows = 1};
	struct norm_opts o = {0};
	struct ierr e = {0};
	struct table_writer *w = table_writer_new_spool(sp, run, table, &o, &s, &e);

	for (int i = 0; w && i < n; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", i);
		CHECK(table_writer_row_end(w, &e) == 0);
	}
	CHECK(w && table_writer_commit(w, &e) == 0);
	table_writer_free(w);
}

/*
 * The uploader claims manifests and commit records in batches: walking by
 * id > the last one claimed hands out each due job once, in id order; a
 * batch of outcomes is recorded in one transaction, all or none.
 */
static void test_manifest_commit_batches(struct spool *sp)
{
	struct ierr e = {0};
	struct spool_run run3;
	struct segment *b = calloc(16, sizeof(*b));
	struct spool_done d[16];
	struct manifest_job mj[8];
	struct commit_job cj[8];
	struct commit_outcome oc[8];
	int64_t ids[8], after = 0, later = now_ms() + 60000, before;
	const char *keys[8];
	int n, nm = 0, nc = 0;

	CHECK(b != NULL);
	if (b == NULL)
		return;
	CHECK(spool_run_begin(sp, "utest", "sqlite", "file:///tmp/x", &run3, &e) == 0);
	committed_table(sp, &run3, "m1", 1);
	committed_table(sp, &run3, "m2", 2);
	committed_table(sp, &run3, "m3", 1);
	CHECK(spool_run_end(sp, &run3, "complete", 3, 4, NULL, &e) == 0);
	while ((n = spool_claim_batch(sp, b, 16, 1 << 20, &e)) > 0) {
		for (int i = 0; i < n; i++) {
			d[i].id = b[i].id;
			d[i].bytes = 1;
			snprintf(d[i].etag, sizeof(d[i].etag), "e");
		}
		CHECK(spool_mark_uploaded_batch(sp, d, n, &e) == 0);
	}
	free(b);
	/* u's last claims: uploaded too. */
	CHECK(spool_exec(sp, "UPDATE segments SET state='uploaded' WHERE state='uploading'", &e) ==
	      0);
	/* Due: t and u (earlier runs, manifests never recorded), m1-m3. */
	while (nm < 8 && spool_next_manifest_after(sp, after, &mj[nm], &e) == 1) {
		CHECK(mj[nm].partition_id > after);
		after = mj[nm].partition_id;
		ids[nm] = mj[nm].partition_id;
		keys[nm] = mj[nm].key;
		nm++;
	}
	CHECK(nm == 5);
	CHECK(spool_next_manifest_after(sp, after, &mj[7], &e) == 0);
	CHECK(spool_next_commit(sp, now_ms(), &cj[0], &e) == 0); /* no manifest recorded yet */
	CHECK(spool_manifests_written(sp, ids, keys, nm, &e) == 0);
	CHECK(spool_next_manifest(sp, &mj[7], &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE manifest_state='written' "
	                         "AND manifest_key LIKE '%%_manifest-%%'") == 5);
	for (int i = 0; i < nm; i++)
		free(mj[i].json);

	/* Commit records: the same walk, each record's job once. */
	after = 0;
	while (nc < 8 && spool_next_commit_after(sp, now_ms(), after, &cj[nc], &e) == 1) {
		CHECK(cj[nc].partition_id > after && cj[nc].partition_id == ids[nc]);
		after = cj[nc++].partition_id;
	}
	CHECK(nc == 5);
	before = test_spool_int(
	    sp, "SELECT coalesce(max(value),0) FROM counters WHERE name='commit_records_total'");
	memset(oc, 0, sizeof(oc));
	for (int i = 0; i < nc; i++) {
		oc[i].partition_id = cj[i].partition_id;
		oc[i].key = cj[i].key;
		oc[i].written = i == 0 || i >= 3;
	}
	oc[1].next_at = later; /* transient: retried later */
	oc[1].msg = "slow down";
	oc[2].permanent = true; /* failed, for replay */
	oc[2].msg = "denied";
	CHECK(spool_commits_record(sp, oc, nc, &e) == 0);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE commit_state='written' "
	                         "AND commit_key IS NOT NULL") == 3);
	CHECK(test_spool_int(sp,
	                     "SELECT commit_state='none' AND commit_attempts=1 AND "
	                     "commit_next_at=%" PRId64 " AND commit_error='slow down' FROM "
	                     "partitions WHERE id=%" PRId64,
	                     later, cj[1].partition_id) == 1);
	CHECK(test_spool_int(sp,
	                     "SELECT commit_state='failed' AND commit_error='denied' FROM "
	                     "partitions WHERE id=%" PRId64,
	                     cj[2].partition_id) == 1);
	CHECK(test_spool_int(sp, "SELECT value FROM counters WHERE name='commit_records_total'") ==
	      before + 3);
	CHECK(spool_commits_waiting(sp, NULL) == 1);
	CHECK(spool_next_commit(sp, now_ms(), &cj[7], &e) == 0); /* backing off */

	/* All or none: the second update fails, the first is rolled back. */
	CHECK(spool_commit_replay(sp, &e) == 1);
	CHECK(spool_exec(sp,
	                 "CREATE TEMP TRIGGER boom BEFORE UPDATE OF commit_state ON partitions "
	                 "WHEN NEW.commit_state='written' AND NEW.id=(SELECT max(id) FROM "
	                 "partitions WHERE commit_state<>'written') BEGIN SELECT RAISE(ABORT, "
	                 "'boom'); END",
	                 &e) == 0);
	oc[0] = oc[1];
	oc[0].written = true;
	oc[1] = oc[2];
	oc[1].written = true;
	CHECK(spool_commits_record(sp, oc, 2, &e) == -1 && strstr(e.msg, "boom") != NULL);
	CHECK(test_spool_int(sp, "SELECT count(*) FROM partitions WHERE commit_state='written'") ==
	      3);
	CHECK(test_spool_int(sp, "SELECT value FROM counters WHERE name='commit_records_total'") ==
	      before + 3);
	CHECK(spool_exec(sp, "DROP TRIGGER boom", &e) == 0);
	CHECK(spool_commits_record(sp, oc, 2, &e) == 0);
	CHECK(spool_commits_waiting(sp, NULL) == 0 && spool_commits_failed(sp) == 0);
	for (int i = 0; i < nc; i++)
		free(cj[i].json);
}

int main(void)
{
	struct ierr e = {0};
	struct spool *sp;
	struct spool_run run;
	struct segment s1, s2, s3, s4, s5, x;
	struct manifest_job job;
	int64_t later = now_ms() + 60000;
	char cmd[300];

	snprintf(root, sizeof(root), "/tmp/ingesta-test-upload-state-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	sp = spool_open(root, SPOOL_ROLE_UPLOADER, &e);
	CHECK(sp != NULL);
	if (sp == NULL)
		return test_done();
	CHECK(spool_uploader_lock(sp, &e) == 0);
	CHECK(spool_run_begin(sp, "utest", "sqlite", "file:///tmp/x", &run, &e) == 0);
	committed_table(sp, &run, "t", 5);
	CHECK(spool_run_end(sp, &run, "complete", 1, 5, NULL, &e) == 0);
	CHECK(spool_count_state(sp, "sealed") == 5);
	CHECK(spool_next_manifest(sp, &job, &e) == 0); /* nothing uploaded yet */

	/* Claim: oldest first, -> uploading with attempts 1. */
	CHECK(spool_claim_next(sp, &s1, &e) == 1);
	CHECK(s1.attempts == 1 && s1.rows == 1 && strcmp(s1.table, "t") == 0);
	CHECK(strstr(s1.key, "-00001.json") != NULL);
	CHECK(test_spool_int(sp, "SELECT state='uploading' FROM segments WHERE id=%" PRId64,
	                     s1.id) == 1);
	CHECK(spool_count_state(sp, "uploading") == 1);

	/* Transient error: back to sealed, not due before its backoff. */
	CHECK(spool_mark_retry(sp, s1.id, false, later, 3, "SlowDown", "slow down", &e) == 0);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='sealed' AND attempts=1 AND last_error_code='SlowDown' AND "
	          "last_error='slow down' FROM segments WHERE id=%" PRId64,
	          s1.id) == 1);
	CHECK(spool_claim_next(sp, &s2, &e) == 1 && s2.id != s1.id);
	CHECK(spool_claim_next(sp, &s3, &e) == 1 && s3.id != s1.id);
	CHECK(spool_claim_next(sp, &s4, &e) == 1 && s4.id != s1.id);
	CHECK(spool_claim_next(sp, &s5, &e) == 1 && s5.id != s1.id);
	CHECK(spool_claim_next(sp, &x, &e) == 0); /* s1 is backing off */
	CHECK(spool_next_due(sp) == later);

	/* Backoff over (time moved): claimed again, attempts count up to the
	 * limit; the retry at the limit fails the segment. */
	for (int attempt = 2; attempt <= 3; attempt++) {
		sqlite3_exec(spool_db(sp),
		             "UPDATE segments SET next_attempt_at=0 WHERE state='sealed'", NULL,
		             NULL, NULL);
		CHECK(spool_claim_next(sp, &x, &e) == 1);
		CHECK(x.id == s1.id && x.attempts == attempt);
		CHECK(spool_mark_retry(sp, x.id, false, later, 3, "InternalError", "500", &e) == 0);
	}
	CHECK(test_spool_int(sp,
	                     "SELECT state='failed' AND attempts=3 FROM segments WHERE id=%" PRId64,
	                     s1.id) == 1);

	/* Permanent: failed at the first attempt. */
	CHECK(spool_mark_retry(sp, s2.id, true, 0, 3, "AccessDenied", "denied", &e) == 0);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='failed' AND attempts=1 AND last_error_code='AccessDenied' FROM "
	          "segments WHERE id=%" PRId64,
	          s2.id) == 1);
	/* Quarantine. */
	CHECK(spool_mark_quarantined(sp, s3.id, "sha256 differs", &e) == 0);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='quarantined' AND last_error_code='ChecksumMismatch' FROM segments "
	          "WHERE id=%" PRId64,
	          s3.id) == 1);
	/* Uploaded: errors cleared, time and ETag stored. */
	CHECK(spool_mark_uploaded(sp, s4.id, "\"abc\"", &e) == 0);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='uploaded' AND uploaded_at IS NOT NULL AND etag IS NOT NULL AND "
	          "last_error IS NULL FROM segments WHERE id=%" PRId64,
	          s4.id) == 1);
	CHECK(spool_mark_uploaded(sp, s5.id, "\"def\"", &e) == 0);

	/* Replay all: the failed ones (attempts reset, due now), not the
	 * quarantined one; by id: the quarantined one too. */
	CHECK(spool_replay(sp, NULL, 0, &e) == 2);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='sealed' AND attempts=0 AND next_attempt_at=0 FROM segments "
	          "WHERE id=%" PRId64,
	          s1.id) == 1);
	CHECK(test_spool_int(
	          sp,
	          "SELECT state='sealed' AND attempts=0 AND next_attempt_at=0 FROM segments "
	          "WHERE id=%" PRId64,
	          s2.id) == 1);
	CHECK(test_spool_int(sp, "SELECT state='quarantined' FROM segments WHERE id=%" PRId64,
	                     s3.id) == 1);
	CHECK(spool_replay(sp, &s3.id, 1, &e) == 1);
	CHECK(spool_replay(sp, &s4.id, 1, &e) == 0); /* uploaded: not replayable */
	CHECK(spool_count_state(sp, "sealed") == 3);

	/* Everything uploaded: now the partition's manifest is due. */
	while (spool_claim_next(sp, &x, &e) == 1)
		CHECK(spool_mark_uploaded(sp, x.id, "\"e\"", &e) == 0);
	CHECK(spool_count_state(sp, "uploaded") == 5);
	CHECK(spool_next_manifest(sp, &job, &e) == 1);
	CHECK(strstr(job.key, "_manifest-") != NULL && strstr(job.key, run.run_id) != NULL);
	CHECK(job.json && strstr(job.json, s1.key) && strstr(job.json, s5.key));
	free(job.json);

	/* Retention: files older than the period go, rows stay. */
	CHECK(spool_apply_retention(sp, 3600000, &e) == 0);
	CHECK(spool_apply_retention(sp, 0, &e) == 5);
	CHECK(access(s1.path, F_OK) != 0);
	CHECK(test_spool_int(
	          sp, "SELECT count(*) FROM segments WHERE file_deleted_at IS NOT NULL") == 5);
	CHECK(spool_apply_retention(sp, 0, &e) == 0);

	/* Batches: claims bounded by count and bytes (the first always), marks
	 * and counters in one transaction, unstarted claims released. */
	{
		struct spool_run run2;
		struct segment *b = calloc(8, sizeof(*b));
		struct spool_done d[3];
		int64_t before = test_spool_int(
		    sp, "SELECT coalesce(max(value),0) FROM counters WHERE name='uploads_total'");

		CHECK(b != NULL);
		CHECK(spool_run_begin(sp, "utest", "sqlite", "file:///tmp/x", &run2, &e) == 0);
		committed_table(sp, &run2, "u", 6);
		CHECK(spool_run_end(sp, &run2, "complete", 1, 6, NULL, &e) == 0);
		CHECK(spool_claim_batch(sp, b, 8, 0, &e) == 1); /* byte budget 0: one */
		CHECK(b[0].attempts == 1 && strcmp(b[0].table, "u") == 0);
		CHECK(spool_claim_batch(sp, b + 1, 3, 1 << 20, &e) == 3); /* count bound */
		CHECK(b[1].id < b[2].id && b[2].id < b[3].id && b[1].id > b[0].id);
		CHECK(spool_count_state(sp, "uploading") == 4);
		for (int i = 0; i < 3; i++) {
			d[i].id = b[i].id;
			d[i].bytes = 10;
			snprintf(d[i].etag, sizeof(d[i].etag), "etag%d", i);
		}
		CHECK(spool_mark_uploaded_batch(sp, d, 3, &e) == 0);
		CHECK(test_spool_int(sp, "SELECT count(*) FROM segments WHERE state='uploaded' AND "
		                         "etag LIKE 'etag%%' AND uploaded_at IS NOT NULL") == 3);
		CHECK(test_spool_int(sp, "SELECT value FROM counters WHERE name='uploads_total'") ==
		      before + 3);
		/* b[3] never tried: back to sealed, its attempt not counted. */
		CHECK(spool_release_claims(sp, b + 3, 1, &e) == 0);
		CHECK(test_spool_int(
		          sp,
		          "SELECT state='sealed' AND attempts=0 FROM segments WHERE id=%" PRId64,
		          b[3].id) == 1);
		CHECK(spool_claim_batch(sp, b, 8, 1 << 20, &e) == 3); /* the rest */
		CHECK(spool_claim_batch(sp, b, 8, 1 << 20, &e) == 0);
		free(b);
	}

	test_manifest_commit_batches(sp);

	spool_close(sp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return test_done();
}
