/*
 * ops.c - what list, replay, verify and gc share (contract in ops.h; each
 * command in its own file: ops_list.c, ops_replay.c, ops_verify.c, ops_gc.c).
 *
 * The rule that makes these safe next to running collectors and an uploader:
 * decide outside a transaction, then write in one short BEGIN IMMEDIATE
 * transaction whose WHERE clause repeats the state the decision was based on
 * ("... WHERE id=? AND state='failed'"). If the uploader moved the row in the
 * meantime, the write changes nothing and the row is reported as skipped.
 * Rows in `pending` (a collector's open table) or `uploading` (an upload in
 * flight) are never written here.
 */
#include "ops.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ops_internal.h"

struct spool *ops_open(const char *dir, struct ierr *e)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/spool.db", dir);
	if (stat(path, &sb) != 0) {
		ierr_errno(e, errno, "no spool at %s (%s)", dir, path);
		e->code = IERR_SPOOL;
		ierr_prefix(e, "SPOOL_DIR");
		return NULL;
	}
	return spool_open(dir, SPOOL_ROLE_OPERATOR, e);
}

const char *ops_col(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

int ops_db_fail(struct spool *sp, struct ierr *e, const char *what)
{
	return ierr_set(e, IERR_SPOOL, "spool %s/spool.db: %s: %s", spool_dir(sp), what,
	                sqlite3_errmsg(spool_db(sp)));
}

int64_t ops_write_one(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e)
{
	int64_t changed;
	int rc;

	if (spool_exec(sp, "BEGIN IMMEDIATE", e) != 0) {
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	changed = sqlite3_changes(spool_db(sp));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		ops_db_fail(sp, e, what);
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	if (spool_exec(sp, "COMMIT", e) != 0) {
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	return changed;
}

sqlite3_stmt *ops_prep(struct spool *sp, const char *sql, struct ierr *e)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(spool_db(sp), sql, -1, &st, NULL) != SQLITE_OK) {
		ops_db_fail(sp, e, "prepare");
		return NULL;
	}
	return st;
}
