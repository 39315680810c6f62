/*
 * ops.c - list, replay, verify and gc over a live spool (contract in ops.h).
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
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "json_cstr.h"
#include "log.h"
#include "status.h"
#include "util.h"

/* ------------------------------------------------------------- helpers */

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

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

static void jint_or_null(struct buf *b, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		json_null(b);
	else
		buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, i));
}

static int db_fail(struct spool *sp, struct ierr *e, const char *what)
{
	return ierr_set(e, IERR_SPOOL, "spool %s/spool.db: %s: %s", spool_dir(sp), what,
	                sqlite3_errmsg(spool_db(sp)));
}

/* One statement in its own BEGIN IMMEDIATE transaction; returns the number of
 * rows it changed, or -1. The statement is finalized. */
static int64_t write_one(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e)
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
		db_fail(sp, e, what);
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	if (spool_exec(sp, "COMMIT", e) != 0) {
		spool_exec(sp, "ROLLBACK", NULL);
		return -1;
	}
	return changed;
}

static sqlite3_stmt *prep(struct spool *sp, const char *sql, struct ierr *e)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(spool_db(sp), sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(sp, e, "prepare");
		return NULL;
	}
	return st;
}

static bool valid_state(const char *s, size_t n)
{
	for (int i = 0; i < STATUS_NSTATES; i++) {
		if (strlen(status_states[i]) == n && strncmp(status_states[i], s, n) == 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- list */

int ops_list(struct spool *sp, const struct list_opts *o, FILE *out, struct ierr *e)
{
	struct buf sql = {0}, b = {0};
	sqlite3_stmt *st;
	int64_t now = now_ms();
	int n = 0, bind = 1;
	int rc;

	buf_puts(&sql,
	         "SELECT id, state, source, table_name, run_id, seq, bucket, key, rows, bytes, "
	         "attempts, created_at, sealed_at, uploaded_at, file_deleted_at, "
	         "last_error_code, last_error, path FROM segments WHERE 1");
	if (o->states && *o->states) {
		const char *p = o->states;
		bool first = true;

		buf_puts(&sql, " AND state IN (");
		while (*p) {
			size_t len = strcspn(p, ",");

			if (!valid_state(p, len)) {
				buf_free(&sql);
				return ierr_set(
				    e, IERR_CONFIG,
				    "--state: \"%.*s\" is not a state (pending, sealed, "
				    "uploading, uploaded, failed, quarantined)",
				    (int)len, p);
			}
			buf_printf(&sql, "%s'%.*s'", first ? "" : ",", (int)len, p);
			first = false;
			p += len;
			if (*p == ',')
				p++;
		}
		buf_puts(&sql, ")");
	}
	if (o->source)
		buf_printf(&sql, " AND source=?%d", bind++);
	if (o->table)
		buf_printf(&sql, " AND table_name=?%d", bind++);
	buf_puts(&sql, " ORDER BY id");
	st = prep(sp, buf_cstr(&sql), e);
	buf_free(&sql);
	if (st == NULL)
		return -1;
	bind = 1;
	if (o->source)
		sqlite3_bind_text(st, bind++, o->source, -1, SQLITE_STATIC);
	if (o->table)
		sqlite3_bind_text(st, bind++, o->table, -1, SQLITE_STATIC);

	if (o->json)
		buf_putc(&b, '[');
	else
		fprintf(out, "%7s %-11s %-12s %-24s %9s %10s %4s %7s %-16s %s\n", "id", "state",
		        "source", "table", "rows", "bytes", "att", "age", "error", "key");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			static const char *const names[] = {
			    "id",        "state",       "source",          "table",
			    "run_id",    "seq",         "bucket",          "key",
			    "rows",      "bytes",       "attempts",        "created_at",
			    "sealed_at", "uploaded_at", "file_deleted_at", "error_code",
			    "error",     "path"};

			buf_puts(&b, n ? ",{" : "{");
			for (int i = 0; i < 18; i++) {
				int t = sqlite3_column_type(st, i);

				buf_printf(&b, "%s\"%s\":", i ? "," : "", names[i]);
				if (t == SQLITE_INTEGER || t == SQLITE_NULL)
					jint_or_null(&b, st, i);
				else
					json_cstr(&b, col(st, i));
			}
			buf_putc(&b, '}');
		} else {
			char h[32], age[32];
			int64_t created = sqlite3_column_int64(st, 11);
			int64_t s = (now - created) / 1000;

			human_bytes(h, sizeof(h), (uint64_t)sqlite3_column_int64(st, 9));
			if (s < 120)
				snprintf(age, sizeof(age), "%llds", (long long)s);
			else if (s < 7200)
				snprintf(age, sizeof(age), "%lldm", (long long)(s / 60));
			else if (s < 172800)
				snprintf(age, sizeof(age), "%lldh", (long long)(s / 3600));
			else
				snprintf(age, sizeof(age), "%lldd", (long long)(s / 86400));
			fprintf(out, "%7lld %-11s %-12s %-24s %9lld %10s %4d %7s %-16s %s\n",
			        (long long)sqlite3_column_int64(st, 0), col(st, 1), col(st, 2),
			        col(st, 3), (long long)sqlite3_column_int64(st, 8), h,
			        sqlite3_column_int(st, 10), age, *col(st, 15) ? col(st, 15) : "-",
			        col(st, 7));
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		buf_free(&b);
		return db_fail(sp, e, "list segments");
	}
	if (o->json) {
		buf_puts(&b, "]\n");
		fputs(buf_cstr(&b), out);
	} else {
		fprintf(out, "(%d segment%s)\n", n, n == 1 ? "" : "s");
	}
	buf_free(&b);
	return n;
}

/* -------------------------------------------------------------- replay */

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
	    prep(sp,
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
		snprintf(r->state, sizeof(r->state), "%s", col(st, 1));
		snprintf(r->path, sizeof(r->path), "%s", col(st, 2));
		snprintf(r->sha256, sizeof(r->sha256), "%s", col(st, 3));
		snprintf(r->key, sizeof(r->key), "%s", col(st, 4));
		snprintf(r->code, sizeof(r->code), "%s", col(st, 5));
		r->file_deleted = sqlite3_column_int(st, 6) != 0;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(sp, e, "read segment");
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
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE segments SET state='sealed', attempts=0, next_attempt_at=0 "
	                        "WHERE id=?1 AND state=?2 AND file_deleted_at IS NULL",
	                        e);
	int64_t n;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_text(st, 2, r->state, -1, SQLITE_STATIC);
	n = write_one(sp, st, "replay", e);
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

	memset(r, 0, sizeof(*r));
	if (ids == NULL) {
		sqlite3_stmt *st =
		    prep(sp,
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
	if (r->requeued > 0)
		spool_wakeup(sp);
	if (rc == 0)
		fprintf(out, "replay: %d segment(s) re-queued, %d not\n", r->requeued, r->refused);
	return rc;
}

/* -------------------------------------------------------------- verify */

struct vrow {
	int64_t id;
	char state[16];
	char path[1024];
	char sha256[65];
	char key[1024];
	int64_t bytes;
};

static int load_verify_rows(struct spool *sp, struct vrow **rows, int *n, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "SELECT id, state, path, sha256, key, bytes FROM segments "
	                        "WHERE file_deleted_at IS NULL AND state IN "
	                        "('sealed','failed','uploaded','quarantined') ORDER BY id",
	                        e);
	int cap = 0;

	*rows = NULL;
	*n = 0;
	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct vrow *v;

		if (*n == cap) {
			struct vrow *grown;

			cap = cap ? cap * 2 : 128;
			grown = realloc(*rows, (size_t)cap * sizeof(**rows));
			if (grown == NULL) {
				sqlite3_finalize(st);
				return ierr_set(e, IERR_INTERNAL, "out of memory");
			}
			*rows = grown;
		}
		v = &(*rows)[(*n)++];
		v->id = sqlite3_column_int64(st, 0);
		snprintf(v->state, sizeof(v->state), "%s", col(st, 1));
		snprintf(v->path, sizeof(v->path), "%s", col(st, 2));
		snprintf(v->sha256, sizeof(v->sha256), "%s", col(st, 3));
		snprintf(v->key, sizeof(v->key), "%s", col(st, 4));
		v->bytes = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return 0;
}

/* Quarantine a sealed/failed segment, if it is still in the state we saw. */
static int64_t quarantine(struct spool *sp, const struct vrow *v, bool missing, const char *msg,
                          struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE segments SET state='quarantined', "
	                        "last_error_code='ChecksumMismatch', last_error=?3, "
	                        "file_deleted_at=CASE WHEN ?4 THEN ?5 ELSE NULL END "
	                        "WHERE id=?1 AND state=?2 AND file_deleted_at IS NULL",
	                        e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, v->id);
	sqlite3_bind_text(st, 2, v->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, msg, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, missing ? 1 : 0);
	sqlite3_bind_int64(st, 5, now_ms());
	return write_one(sp, st, "quarantine", e);
}

/* A file that vanished while an uploaded row still claims it: the uploader's
 * retention got there first (or a person did). Just record it as deleted. */
static int64_t note_deleted(struct spool *sp, const struct vrow *v, struct ierr *e)
{
	sqlite3_stmt *st = prep(sp,
	                        "UPDATE segments SET file_deleted_at=?2 WHERE id=?1 AND "
	                        "state='uploaded' AND file_deleted_at IS NULL",
	                        e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, v->id);
	sqlite3_bind_int64(st, 2, now_ms());
	return write_one(sp, st, "verify", e);
}

static void problem(struct buf *jb, bool json, FILE *out, const struct vrow *v, const char *what,
                    const char *action, const char *detail)
{
	if (json) {
		buf_printf(jb, "%s{\"id\":%" PRId64 ",\"state\":", jb->len > 1 ? "," : "", v->id);
		json_cstr(jb, v->state);
		buf_puts(jb, ",\"key\":");
		json_cstr(jb, v->key);
		buf_puts(jb, ",\"problem\":");
		json_cstr(jb, what);
		buf_puts(jb, ",\"action\":");
		json_cstr(jb, action);
		buf_puts(jb, ",\"detail\":");
		json_cstr(jb, detail);
		buf_putc(jb, '}');
	} else {
		fprintf(out, "#%" PRId64 " %-11s %s: %s -> %s (%s)\n", v->id, v->state, v->key,
		        what, action, detail);
	}
}

static int verify_one(struct spool *sp, const struct vrow *v, bool json, struct buf *jb,
                      struct buf *again, FILE *out, struct verify_result *r, struct ierr *e)
{
	char full[4096], sha[65], detail[4400];
	bool missing = false, sealed_or_failed;
	int64_t changed;

	sealed_or_failed = strcmp(v->state, "sealed") == 0 || strcmp(v->state, "failed") == 0;
	snprintf(full, sizeof(full), "%s/%s", spool_dir(sp), v->path);
	if (sha256_file_hex(full, sha) != 0) {
		if (errno != ENOENT) {
			snprintf(detail, sizeof(detail), "%s: %s", full, strerror(errno));
			sha[0] = '\0';
		} else {
			missing = true;
			snprintf(detail, sizeof(detail), "%s is missing", full);
		}
	} else {
		r->checked++;
		r->bytes += (uint64_t)v->bytes;
		if (strcmp(sha, v->sha256) == 0) {
			r->ok++;
			if (strcmp(v->state, "quarantined") == 0) {
				r->verifies_again++;
				if (json)
					buf_printf(again, "%s%" PRId64, again->len ? "," : "",
					           v->id);
				else
					fprintf(out,
					        "#%" PRId64
					        " quarantined %s: matches again; `ingesta "
					        "replay %" PRId64 "` re-queues it\n",
					        v->id, v->key, v->id);
			}
			return 0;
		}
		snprintf(detail, sizeof(detail), "sha256 %.12s... != recorded %.12s...", sha,
		         v->sha256);
	}
	if (sealed_or_failed) {
		char msg[4500];

		snprintf(msg, sizeof(msg), "ingesta verify: spool file %s", detail);
		changed = quarantine(sp, v, missing, msg, e);
		if (changed < 0)
			return -1;
		if (changed == 0)
			return 0; /* the uploader took it meanwhile; it verifies while sending */
		r->quarantined++;
		problem(jb, json, out, v, missing ? "missing" : "mismatch", "quarantined", detail);
	} else if (strcmp(v->state, "uploaded") == 0) {
		if (missing) {
			/* Retention deleted it while we were looking: nothing wrong. */
			return note_deleted(sp, v, e) < 0 ? -1 : 0;
		}
		r->damaged++;
		problem(jb, json, out, v, "mismatch",
		        "none (the bucket copy was verified at upload)", detail);
	} else {
		r->still_bad++;
		problem(jb, json, out, v, missing ? "missing" : "mismatch", "stays quarantined",
		        detail);
	}
	return 0;
}

int ops_verify(struct spool *sp, bool json, FILE *out, struct verify_result *r, struct ierr *e)
{
	struct vrow *rows = NULL;
	struct buf jb = {0}, again = {0};
	int n = 0, rc = 0;

	memset(r, 0, sizeof(*r));
	if (load_verify_rows(sp, &rows, &n, e) != 0) {
		free(rows);
		return -1;
	}
	buf_putc(&jb, '[');
	for (int i = 0; i < n && rc == 0 && !ingesta_stop_requested; i++)
		rc = verify_one(sp, &rows[i], json, &jb, &again, out, r, e);
	free(rows);
	if (rc == 0) {
		int problems = r->quarantined + r->damaged + r->still_bad;
		char h[32];

		if (json) {
			buf_puts(&jb, "]");
			fprintf(out,
			        "{\"checked\":%d,\"bytes\":%" PRIu64
			        ",\"ok\":%d,\"quarantined\":%d,"
			        "\"damaged\":%d,\"still_quarantined\":%d,\"problems\":%s,"
			        "\"verifies_again\":[%s]}\n",
			        r->checked, r->bytes, r->ok, r->quarantined, r->damaged,
			        r->still_bad, buf_cstr(&jb), buf_cstr(&again));
		} else {
			human_bytes(h, sizeof(h), r->bytes);
			fprintf(out,
			        "verify: %d file(s), %s checked: %d ok, %d quarantined now, %d "
			        "uploaded copies damaged, %d still quarantined%s\n",
			        r->checked, h, r->ok, r->quarantined, r->damaged, r->still_bad,
			        problems ? "" : " - all good");
		}
		rc = problems;
	}
	buf_free(&jb);
	buf_free(&again);
	return rc;
}

/* ------------------------------------------------------------------ gc */

static int64_t db_size(const struct spool *sp)
{
	static const char *const names[] = {"spool.db", "spool.db-wal"};
	int64_t total = 0;

	for (int i = 0; i < 2; i++) {
		char path[4096];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", spool_dir(sp), names[i]);
		if (stat(path, &sb) == 0)
			total += (int64_t)sb.st_size;
	}
	return total;
}

/* Run a DELETE in batches (each its own short write transaction) until it
 * changes nothing; returns the rows deleted, or -1. */
static int64_t delete_batches(struct spool *sp, const char *sql, int64_t cutoff, struct ierr *e)
{
	int64_t total = 0;

	for (;;) {
		sqlite3_stmt *st = prep(sp, sql, e);
		int64_t n;

		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, cutoff);
		n = write_one(sp, st, "gc", e);
		if (n < 0)
			return -1;
		if (n == 0)
			return total;
		total += n;
	}
}

static int drop_quarantined(struct spool *sp, struct gc_result *r, FILE *out, bool json,
                            struct ierr *e)
{
	struct vrow *rows = NULL;
	sqlite3_stmt *st = prep(sp,
	                        "SELECT id, partition_id, path, key, file_deleted_at IS NULL "
	                        "FROM segments WHERE state='quarantined' ORDER BY id",
	                        e);
	int n = 0, cap = 0, rc = 0;
	int64_t *parts = NULL;
	bool *has_file = NULL;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = xrealloc(rows, (size_t)cap * sizeof(*rows));
			parts = xrealloc(parts, (size_t)cap * sizeof(*parts));
			has_file = xrealloc(has_file, (size_t)cap * sizeof(*has_file));
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		parts[n] = sqlite3_column_int64(st, 1);
		snprintf(rows[n].path, sizeof(rows[n].path), "%s", col(st, 2));
		snprintf(rows[n].key, sizeof(rows[n].key), "%s", col(st, 3));
		has_file[n] = sqlite3_column_int(st, 4) != 0;
		n++;
	}
	sqlite3_finalize(st);
	for (int i = 0; i < n && rc == 0; i++) {
		char full[4096];
		int64_t changed;

		/* DB first, file second: a crash between leaves an unrecorded file,
		 * which recovery deletes; never a row without its file. The partition
		 * never gets a manifest: it lost a segment, so it is incomplete. */
		if (spool_exec(sp, "BEGIN IMMEDIATE", e) != 0)
			break;
		st = prep(sp, "DELETE FROM segment_parts WHERE segment_id=?", e);
		if (st)
			sqlite3_bind_int64(st, 1, rows[i].id);
		if (st == NULL || sqlite3_step(st) != SQLITE_DONE)
			rc = st ? db_fail(sp, e, "gc") : -1;
		sqlite3_finalize(st);
		st = rc ? NULL
		        : prep(sp, "DELETE FROM segments WHERE id=? AND state='quarantined'", e);
		if (st) {
			sqlite3_bind_int64(st, 1, rows[i].id);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = db_fail(sp, e, "gc");
		} else if (rc == 0) {
			rc = -1;
		}
		changed = sqlite3_changes(spool_db(sp));
		sqlite3_finalize(st);
		st = rc ? NULL
		        : prep(sp, "UPDATE partitions SET manifest_state='written' WHERE id=?", e);
		if (st) {
			sqlite3_bind_int64(st, 1, parts[i]);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = db_fail(sp, e, "gc");
			sqlite3_finalize(st);
		} else if (rc == 0) {
			rc = -1;
		}
		if (rc != 0 || spool_exec(sp, "COMMIT", e) != 0) {
			spool_exec(sp, "ROLLBACK", NULL);
			rc = -1;
			break;
		}
		if (changed == 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", spool_dir(sp), rows[i].path);
		if (has_file[i] && unlink(full) != 0 && errno != ENOENT)
			log_event(LOG_WARNING, "gc: could not delete a quarantined file", "file",
			          full, "error", strerror(errno), NULL);
		if (!json)
			fprintf(out, "dropped quarantined #%" PRId64 " %s\n", rows[i].id,
			        rows[i].key);
		r->quarantined++;
	}
	free(rows);
	free(parts);
	free(has_file);
	return rc;
}

int ops_gc(struct spool *sp, const struct gc_opts *o, FILE *out, struct gc_result *r,
           struct ierr *e)
{
	int64_t cutoff = now_ms() - o->older_than_ms;
	char before[32], after[32];

	memset(r, 0, sizeof(*r));
	r->db_bytes_before = db_size(sp);
	r->files = spool_apply_retention(sp, o->retention_ms, e);
	if (r->files < 0)
		return -1;
	if (o->drop_quarantined && drop_quarantined(sp, r, out, o->json, e) != 0)
		return -1;
	/* Rows of uploaded segments whose file is gone and whose partition has its
	 * manifest (so the manifest never misses a file). */
	r->segments =
	    delete_batches(sp,
	                   "DELETE FROM segments WHERE id IN (SELECT s.id FROM segments s "
	                   "JOIN partitions p ON p.id=s.partition_id WHERE s.state='uploaded' "
	                   "AND s.file_deleted_at IS NOT NULL AND s.uploaded_at <= ?1 "
	                   "AND p.manifest_state='written' AND NOT EXISTS (SELECT 1 FROM "
	                   "segment_parts sp WHERE sp.segment_id=s.id) LIMIT 500)",
	                   cutoff, e);
	if (r->segments < 0)
		return -1;
	r->partitions = delete_batches(sp,
	                               "DELETE FROM partitions WHERE id IN (SELECT p.id FROM "
	                               "partitions p WHERE p.state='complete' AND "
	                               "p.manifest_state='written' AND "
	                               "coalesce(p.completed_at,0) <= ?1 AND NOT EXISTS "
	                               "(SELECT 1 FROM segments s WHERE s.partition_id=p.id) "
	                               "LIMIT 500)",
	                               cutoff, e);
	if (r->partitions < 0)
		return -1;
	r->runs = delete_batches(sp,
	                         "DELETE FROM runs WHERE run_id IN (SELECT r.run_id FROM runs r "
	                         "WHERE r.state <> 'running' AND "
	                         "coalesce(r.finished_at, r.started_at) <= ?1 AND NOT EXISTS "
	                         "(SELECT 1 FROM partitions p WHERE p.run_id=r.run_id) AND NOT "
	                         "EXISTS (SELECT 1 FROM segments s WHERE s.run_id=r.run_id) "
	                         "LIMIT 500)",
	                         cutoff, e);
	if (r->runs < 0)
		return -1;

	/* Give the space back: checkpoint the WAL into the DB, rebuild it, and
	 * truncate the WAL that VACUUM itself filled. VACUUM waits (busy timeout)
	 * for writers; if it cannot get its turn it is skipped, not an error. */
	spool_exec(sp, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	{
		struct ierr ve = {0};

		r->vacuumed = spool_exec(sp, "VACUUM", &ve) == 0;
		if (!r->vacuumed)
			log_event(LOG_WARNING, "gc: VACUUM skipped", "error", ve.msg, NULL);
	}
	spool_exec(sp, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	r->db_bytes_after = db_size(sp);

	human_bytes(before, sizeof(before), (uint64_t)r->db_bytes_before);
	human_bytes(after, sizeof(after), (uint64_t)r->db_bytes_after);
	if (o->json)
		fprintf(out,
		        "{\"files_deleted\":%d,\"segments_deleted\":%" PRId64
		        ",\"partitions_deleted\":%" PRId64 ",\"runs_deleted\":%" PRId64
		        ",\"quarantined_dropped\":%" PRId64 ",\"db_bytes_before\":%" PRId64
		        ",\"db_bytes_after\":%" PRId64 ",\"vacuumed\":%s}\n",
		        r->files, r->segments, r->partitions, r->runs, r->quarantined,
		        r->db_bytes_before, r->db_bytes_after, r->vacuumed ? "true" : "false");
	else
		fprintf(out,
		        "gc: deleted %d uploaded file(s) past RETENTION; %" PRId64
		        " segment, %" PRId64 " partition and %" PRId64
		        " run row(s) older than --older-than%s; spool.db %s -> %s%s\n",
		        r->files, r->segments, r->partitions, r->runs,
		        r->quarantined ? " (and quarantined segments dropped)" : "", before, after,
		        r->vacuumed ? "" : " (VACUUM skipped: the spool was busy)");
	return 0;
}
