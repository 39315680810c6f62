/*
 * ops_verify.c - `ingesta verify`: re-hash every spooled file against the index and
 * quarantine sealed/failed segments that no longer match (contract in ops.h).
 * Hashing runs outside any transaction; each quarantine is one short write.
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json_cstr.h"
#include "ops_internal.h"
#include "util.h"

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
	sqlite3_stmt *st = ops_prep(sp,
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
		snprintf(v->state, sizeof(v->state), "%s", ops_col(st, 1));
		snprintf(v->path, sizeof(v->path), "%s", ops_col(st, 2));
		snprintf(v->sha256, sizeof(v->sha256), "%s", ops_col(st, 3));
		snprintf(v->key, sizeof(v->key), "%s", ops_col(st, 4));
		v->bytes = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return 0;
}

/* Quarantine a sealed/failed segment, if it is still in the state we saw. */
static int64_t quarantine(struct spool *sp, const struct vrow *v, bool missing, const char *msg,
                          struct ierr *e)
{
	sqlite3_stmt *st = ops_prep(sp,
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
	return ops_write_one(sp, st, "quarantine", e);
}

/* A file that vanished while an uploaded row still claims it: the uploader's
 * retention got there first (or a person did). Just record it as deleted. */
static int64_t note_deleted(struct spool *sp, const struct vrow *v, struct ierr *e)
{
	sqlite3_stmt *st = ops_prep(sp,
	                            "UPDATE segments SET file_deleted_at=?2 WHERE id=?1 AND "
	                            "state='uploaded' AND file_deleted_at IS NULL",
	                            e);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, v->id);
	sqlite3_bind_int64(st, 2, now_ms());
	return ops_write_one(sp, st, "verify", e);
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
