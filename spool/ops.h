/*
 * ops.h - the operator commands over a live spool: list, replay, verify, gc.
 *
 * Every function here is safe while collectors and the uploader run on the
 * same spool: reads use short read transactions, each write is one short
 * BEGIN IMMEDIATE transaction that re-checks the row's state in its WHERE
 * clause, and no function ever changes a `pending` or `uploading` row (those
 * belong to a live collector or uploader). Long work - hashing files - is done
 * outside any transaction.
 *
 * Output goes to `out` (a human table, or JSON where the function says so);
 * the one-line reasons for refusals go there too. Errors: -1 with *e filled
 * (IERR_CONFIG for bad arguments, IERR_SPOOL / IERR_IO for the spool).
 */
#ifndef INGESTA_OPS_H
#define INGESTA_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "parse.h"
#include "spool.h"

/* Open an existing spool for an operator command. Unlike spool_open(), a
 * directory without spool.db is an error (a mistyped SPOOL_DIR must not
 * silently create an empty spool that looks healthy). */
struct spool *ops_open(const char *dir, struct ierr *e);

/* A duration flag (--max-age, --older-than): the configuration's syntax,
 * parse_duration() in common/parse.h ("inf", "nan" and overflows refused). */
static inline int ops_parse_duration(const char *s, int64_t *ms)
{
	return parse_duration(s, ms);
}

/* ---- list ---- */

struct list_opts {
	bool json;          /* a JSON array of segment objects (README "list --json") */
	const char *states; /* comma-separated states, NULL/"" = all */
	const char *source; /* exact SOURCE_NAME, NULL = all */
	const char *table;  /* exact table name, NULL = all */
};

/* Print the matching segments, oldest first. Returns how many, or -1. */
int ops_list(struct spool *sp, const struct list_opts *o, FILE *out, struct ierr *e);

/* ---- replay ---- */

struct replay_result {
	int requeued; /* back to `sealed` */
	int refused;  /* asked for but left as they were (reason printed) */
};

/* Put segments back to `sealed` (attempts reset, due now) and wake the
 * uploader. ids NULL: every `failed` segment plus every `quarantined` one
 * whose file verifies again; otherwise exactly those ids, each of which must be
 * failed, or quarantined with a file that matches its recorded SHA-256 again
 * (re-hashed here). Prints one line per segment re-queued or refused.
 * Returns 0 (see *r), or -1 with *e. */
int ops_replay(struct spool *sp, const int64_t *ids, int nids, FILE *out, struct replay_result *r,
               struct ierr *e);

/* ---- verify ---- */

struct verify_result {
	int checked;        /* files hashed */
	uint64_t bytes;     /* bytes hashed */
	int ok;             /* matched */
	int quarantined;    /* sealed/failed that did not match: quarantined now */
	int damaged;        /* uploaded segments whose retained copy is damaged */
	int still_bad;      /* quarantined and still not matching (or missing) */
	int verifies_again; /* quarantined but matching now (replayable) */
};

/* Re-hash every spooled file (file_deleted_at NULL) of sealed, failed,
 * uploaded and quarantined segments against the DB; quarantine sealed/failed
 * ones that no longer match (or whose file is gone). Returns the number of
 * problems (quarantined + damaged + still_bad; main exits 6 when > 0), or -1. */
int ops_verify(struct spool *sp, bool json, FILE *out, struct verify_result *r, struct ierr *e);

/* ---- gc ---- */

struct gc_opts {
	int64_t older_than_ms; /* rows of segments uploaded before now - this go */
	int64_t retention_ms;  /* RETENTION: uploaded files older than this go */
	bool drop_quarantined; /* also delete quarantined segments (data lost) */
	bool json;
};

struct gc_result {
	int files;           /* uploaded segment files deleted (RETENTION) */
	int64_t segments;    /* uploaded segment rows deleted */
	int64_t partitions;  /* partition rows deleted */
	int64_t runs;        /* run rows deleted */
	int64_t quarantined; /* quarantined segments dropped (drop_quarantined) */
	int64_t db_bytes_before, db_bytes_after; /* spool.db + -wal on disk */
	bool vacuumed;                           /* VACUUM completed (it waits for writers) */
};

/* Delete what is no longer needed, then checkpoint (TRUNCATE) and VACUUM.
 * Never deletes a segment that is not uploaded (except quarantined ones when
 * asked), a partition whose manifest is not written yet, or a running run.
 * Returns 0, or -1 with *e. */
int ops_gc(struct spool *sp, const struct gc_opts *o, FILE *out, struct gc_result *r,
           struct ierr *e);

#endif
