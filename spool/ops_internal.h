/*
 * ops_internal.h - what the four operator commands (ops_list.c,
 * ops_replay.c, ops_verify.c, ops_gc.c) share: statement helpers that name
 * the spool in their errors, and the one-statement write transaction that
 * re-checks a row's state (the rule in ops.c). Not for use outside spool/.
 */
#ifndef INGESTA_OPS_INTERNAL_H
#define INGESTA_OPS_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>

#include "err.h"
#include "spool.h"

/* Column text, "" for NULL. */
const char *ops_col(sqlite3_stmt *st, int i);

/* "spool DIR/spool.db: WHAT: sqlite message" into *e; returns -1. */
int ops_db_fail(struct spool *sp, struct ierr *e, const char *what);

/* Prepare sql, or NULL with *e. */
sqlite3_stmt *ops_prep(struct spool *sp, const char *sql, struct ierr *e);

/* One statement in its own BEGIN IMMEDIATE transaction; returns the number of
 * rows it changed, or -1. The statement is finalized. */
int64_t ops_write_one(struct spool *sp, sqlite3_stmt *st, const char *what, struct ierr *e);

#endif
