/*
 * ops_replay.c - `ingesta replay`: failed (and re-verified quarantined) segments back
 * to the queue, each in one short transaction that re-checks its state
 * (contract in ops.h).
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"
#include "util.h"

struct seg_row {
	int64_t id;
	char state[16];
	char path[1024];
	char sha256[65];
	char key[1024];
	char code[64];
	bool file_deleted;
};

static int load_row(struct spool *sp, int64_t id, struct seg_row *r, struct ierr *e)
{
	sqlite3_stmt *st =
	    ops_prep(sp,
	             "SELECT id, state, path, sha256, key, coalesce(last_error_code,''), "
	             "file_deleted_at IS NOT NULL FROM segments WHERE id=?",
	             e);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		snprintf(r->state, sizeof(r->state), "%s", ops_col(st, 1));
		snprintf(r->path, sizeof(r->path), "%s", ops_col(st, 2));
		snprintf(r->sha256, sizeof(r->sha256), "%s", ops_col(st, 3));
		snprintf(r->key, sizeof(r->key), "%s", ops_col(st, 4));
		snprintf(r->code, sizeof(r->code), "%s", ops_col(st, 5));
		r->file_deleted = sqlite3_column_int(st, 6) != 0;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return ops_db_fail(sp, e, "read segment");
}

/* Does the segment's spooled file match its recorded SHA-256? */
static bool file_matches(struct spool *sp, const struct seg_row *r, char *why, size_t n)
{
	char full[4096], sha[65];

	if (r->file_deleted) {
		snprintf(why, n, "its spool file is gone");
		return false;
	}
	snprintf(full, sizeof(full), "%s/%s", spool_dir(sp), r->path);
	if (sha256_file_hex(full, sha) != 0) {
		snprintf(why, n, "%s: %s", full, strerror(errno));
		return false;
	}
	if (strcmp(sha, r->sha256) != 0) {
		snprintf(why, n,
		         "%s still does not match its recorded sha256 (%.12s... != %.12s...)", full,
		         sha, r->sha256);
		return false;
	}
	return true;
}

/* Re-queue one segment known to be in state r->state; 1 done, 0 raced, -1. */
static int requeue(struct spool *sp, const struct seg_row *r, struct ierr *e)
{
	sqlite3_stmt *st =
	    ops_prep(sp,
	             "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
	             "WHERE id=?1 AND state=?2 AND file_deleted_at IS NULL",
	             e);
	int64_t n;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_text(st, 2, r->state, -1, SQLITE_STATIC);
	n = ops_write_one(sp, st, "replay", e);
	return n < 0 ? -1 : (int)n;
}

static int replay_one(struct spool *sp, int64_t id, bool explicit, FILE *out,
                      struct replay_result *res, struct ierr *e)
{
	struct seg_row r;
	char why[4400];
	int rc = load_row(sp, id, &r, e);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		fprintf(out, "not re-queued #%" PRId64 ": no such segment\n", id);
		res->refused++;
		return 0;
	}
	if (strcmp(r.state, "failed") != 0 && strcmp(r.state, "quarantined") != 0) {
		fprintf(out,
		        "not re-queued #%" PRId64 ": it is %s (only failed or quarantined segments "
		        "are replayed)\n",
		        id, r.state);
		res->refused++;
		return 0;
	}
	if (strcmp(r.state, "quarantined") == 0 && !file_matches(sp, &r, why, sizeof(why))) {
		fprintf(out, "not re-queued #%" PRId64 " %s: quarantined, %s\n", id, r.key, why);
		if (explicit)
			res->refused++;
		return 0;
	}
	if (strcmp(r.state, "failed") == 0 && r.file_deleted) {
		fprintf(out, "not re-queued #%" PRId64 " %s: its spool file is gone\n", id, r.key);
		res->refused++;
		return 0;
	}
	rc = requeue(sp, &r, e);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		fprintf(out, "not re-queued #%" PRId64 ": it changed state meanwhile\n", id);
		res->refused++;
		return 0;
	}
	fprintf(out, "re-queued #%" PRId64 " %s (was %s%s%s)\n", id, r.key, r.state,
	        r.code[0] ? ": " : "", r.code);
	res->requeued++;
	return 0;
}

int ops_replay(struct spool *sp, const int64_t *ids, int nids, FILE *out, struct replay_result *r,
               struct ierr *e)
{
	int64_t *all = NULL;
	int nall = 0, cap = 0;
	int rc = 0;
	bool all_failed = ids == NULL;

	memset(r, 0, sizeof(*r));
	if (ids == NULL) {
		sqlite3_stmt *st =
		    ops_prep(sp,
		             "SELECT id FROM segments WHERE state='failed' OR "
		             "(state='quarantined' AND file_deleted_at IS NULL) ORDER BY id",
		             e);

		if (st == NULL)
			return -1;
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (nall == cap) {
				int64_t *grown;

				cap = cap ? cap * 2 : 256;
				grown = realloc(all, (size_t)cap * sizeof(*all));
				if (grown == NULL) {
					sqlite3_finalize(st);
					free(all);
					return ierr_set(e, IERR_INTERNAL, "out of memory");
				}
				all = grown;
			}
			all[nall++] = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		ids = all;
		nids = nall;
	}
	for (int i = 0; i < nids && rc == 0 && !ingesta_stop_requested; i++)
		rc = replay_one(sp, ids[i], all == NULL, out, r, e);
	free(all);
	/* --all-failed also retries the commit records that failed (a Glue or
	 * S3 error that needed an operator; docs/COMMIT_LOG.md). */
	if (rc == 0 && all_failed) {
		int n = spool_commit_replay(sp, e);

		if (n < 0) {
			rc = -1;
		} else if (n > 0) {
			fprintf(out, "replay: %d commit record(s) re-queued\n", n);
			spool_wakeup(sp);
		}
	}
	if (r->requeued > 0)
		spool_wakeup(sp);
	if (rc == 0)
		fprintf(out, "replay: %d segment(s) re-queued, %d not\n", r->requeued, r->refused);
	return rc;
}
