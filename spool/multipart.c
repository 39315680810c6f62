/*
 * multipart.c - reading back multipart progress from the spool index.
 *
 * The uploader records a segment's multipart upload id (spool_set_upload_id)
 * before it sends any part, and each part (spool_part_done) only after the
 * server confirmed it. A restarted uploader reads both back to resume: the
 * parts listed here are never sent again. Writes stay in spool.c; this file
 * only reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

int spool_parts_list(struct spool *sp, int64_t id, struct spool_part **out, struct ierr *e)
{
	sqlite3 *db = spool_db(sp);
	sqlite3_stmt *st = NULL;
	struct spool_part *parts = NULL;
	int n = 0, cap = 0, rc;

	*out = NULL;
	if (sqlite3_prepare_v2(db,
	                       "SELECT part_number, size, etag FROM segment_parts "
	                       "WHERE segment_id=? ORDER BY part_number",
	                       -1, &st, NULL) != SQLITE_OK)
		return ierr_set(e, IERR_SPOOL, "spool %s/spool.db: list parts: %s", spool_dir(sp),
		                sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *etag = sqlite3_column_text(st, 2);

		if (n == cap) {
			struct spool_part *p;

			cap = cap ? cap * 2 : 16;
			p = realloc(parts, (size_t)cap * sizeof(*parts));
			if (p == NULL) {
				free(parts);
				sqlite3_finalize(st);
				return ierr_set(e, IERR_INTERNAL, "list parts: out of memory");
			}
			parts = p;
		}
		parts[n].part_number = sqlite3_column_int(st, 0);
		parts[n].size = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(parts[n].etag, sizeof(parts[n].etag), "%s",
		         etag ? (const char *)etag : "");
		n++;
	}
	if (rc != SQLITE_DONE) {
		ierr_set(e, IERR_SPOOL, "spool %s/spool.db: list parts: %s", spool_dir(sp),
		         sqlite3_errmsg(db));
		free(parts);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	*out = parts;
	return n;
}
