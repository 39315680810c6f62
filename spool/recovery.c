/*
 * recovery.c - what each process repairs at start (spool.h, "Contract").
 *
 * A run is dead when no process holds its lock (locks/run-<id>.lock, an flock
 * held by the collector for the whole run). Dead runs lose their open
 * partitions (rows and files), their temporary files and their unrecorded data
 * files; committed partitions are never touched. A recorded file that vanished
 * is quarantined, loudly. The uploader lock makes every `uploading` row stale.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "log.h"
#include "spool.h"
#include "spool_internal.h"
#include "util.h"

/* ---------------------------------------------------------------- locks */

/* true when no live process holds the run's lock. */
bool run_is_dead(const struct spool *sp, const char *run_id)
{
	char path[4096];
	int fd;
	bool dead;

	sp_lock_path(sp, run_id, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return true;
	dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return dead;
}

int spool_uploader_lock(struct spool *sp, struct ierr *e)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/locks/uploader.lock", sp->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ierr_errno(e, errno, "spool %s: open %s", sp->dir, path);
	/* `status` probes this lock for an instant: retry briefly before giving up. */
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
		if (i == 10) {
			close(fd);
			return ierr_set(
			    e, IERR_SPOOL,
			    "spool %s: another uploader is running on this spool (%s is locked)",
			    sp->dir, path);
		}
		usleep(20000);
	}
	sp->uploader_lock_fd = fd;
	/* Holding the lock, every `uploading` row belongs to a dead uploader. */
	if (spool_exec(sp, "UPDATE segments SET state='sealed' WHERE state='uploading'", e) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- recovery */

/* Run id from a file name "<run-id>.<n>...". */
static bool name_run_id(const char *name, char *out, size_t n)
{
	const char *dot = strchr(name, '.');

	if (dot == NULL || (size_t)(dot - name) >= n || dot == name)
		return false;
	memcpy(out, name, (size_t)(dot - name));
	out[dot - name] = '\0';
	return true;
}

static bool path_recorded(sqlite3_stmt *st, const char *rel)
{
	bool found = true; /* on error, assume recorded: never delete by doubt */

	if (st == NULL)
		return true;
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_DONE)
		found = false;
	return found;
}

/*
 * Delete temporary files and unrecorded data files of dead runs. A spool
 * holds thousands of files of one run (one per table): whether a run is dead
 * is asked once per run and sweep (a dead run stays dead; a live one found
 * dead later is swept next time), and the lookup statement is prepared once.
 */
static int sweep_dir(struct spool *sp, const char *sub, bool check_db, int *repairs, struct ierr *e)
{
	char path[4096], last_run[64] = "";
	bool last_dead = false;
	sqlite3_stmt *lookup = NULL;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", sp->dir, sub);
	d = opendir(path);
	if (d == NULL)
		return ierr_errno(e, errno, "spool: opendir %s", path);
	if (check_db && sqlite3_prepare_v2(sp->db, "SELECT 1 FROM segments WHERE path=?", -1,
	                                   &lookup, NULL) != SQLITE_OK) {
		sqlite3_finalize(lookup);
		lookup = NULL;
	}
	while ((de = readdir(d)) != NULL) {
		char run_id[64], rel[600], full[4096];

		if (de->d_name[0] == '.')
			continue;
		if (!name_run_id(de->d_name, run_id, sizeof(run_id)))
			continue;
		if (strcmp(run_id, last_run) != 0) {
			snprintf(last_run, sizeof(last_run), "%s", run_id);
			last_dead = run_is_dead(sp, run_id);
		}
		if (!last_dead)
			continue;
		snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name);
		if (check_db && path_recorded(lookup, rel))
			continue;
		snprintf(full, sizeof(full), "%s/%s", sp->dir, rel);
		log_event(LOG_WARNING, "recovery: removing file left by a dead collector", "file",
		          full, NULL);
		if (sp_remove_path(full, e) != 0) {
			rc = -1;
			break;
		}
		(*repairs)++;
	}
	sqlite3_finalize(lookup);
	closedir(d);
	return rc;
}

/* Drop the open partitions (and their pending segments) of dead runs. */
static int abandon_dead_runs(struct spool *sp, int *repairs, struct ierr *e)
{
	sqlite3_stmt *st =
	    sp_prep(sp,
	            "SELECT run_id FROM runs r WHERE state='running' OR (state='failed' "
	            "AND EXISTS (SELECT 1 FROM partitions p WHERE p.run_id=r.run_id "
	            "AND p.state='open'))",
	            e);
	struct {
		char id[64];
	} dead[256];
	int ndead = 0;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW && ndead < 256) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (id && run_is_dead(sp, id))
			snprintf(dead[ndead++].id, sizeof(dead[0].id), "%s", id);
	}
	sqlite3_finalize(st);

	for (int i = 0; i < ndead; i++) {
		sqlite3_stmt *files;
		char lock[4096];

		/* Files first, DB second: a crash between leaves rows without
		 * files of an open partition, which this same loop removes. */
		files = sp_prep(
		    sp,
		    "SELECT s.path FROM segments s JOIN partitions p ON p.id=s.partition_id "
		    "WHERE p.run_id=? AND p.state='open'",
		    e);
		if (files == NULL)
			return -1;
		sqlite3_bind_text(files, 1, dead[i].id, -1, SQLITE_STATIC);
		while (sqlite3_step(files) == SQLITE_ROW) {
			char full[4096];

			snprintf(full, sizeof(full), "%s/%s", sp->dir,
			         (const char *)sqlite3_column_text(files, 0));
			if (sp_remove_path(full, e) != 0) {
				sqlite3_finalize(files);
				return -1;
			}
		}
		sqlite3_finalize(files);
		FAILPOINT("recovery.after_unlink");
		if (sp_begin(sp, e) != 0)
			return -1;
		st =
		    sp_prep(sp,
		            "DELETE FROM segments WHERE partition_id IN (SELECT id FROM partitions "
		            "WHERE run_id=?1 AND state='open')",
		            e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		if (sp_step_done(sp, st, "recovery", e) != 0)
			goto fail;
		st = sp_prep(sp, "DELETE FROM partitions WHERE run_id=?1 AND state='open'", e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		if (sp_step_done(sp, st, "recovery", e) != 0)
			goto fail;
		st = sp_prep(sp,
		             "UPDATE runs SET state=CASE state WHEN 'running' THEN 'abandoned' "
		             "ELSE state END, "
		             "finished_at=coalesce(finished_at, ?2), "
		             "error=coalesce(error,'collector died (recovered)') WHERE run_id=?1",
		             e);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, dead[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_ms());
		if (sp_step_done(sp, st, "recovery", e) != 0)
			goto fail;
		if (sp_commit(sp, e) != 0)
			return -1;
		log_event(LOG_WARNING, "recovery: dropped the unfinished tables of a dead run",
		          "run", dead[i].id, NULL);
		sp_lock_path(sp, dead[i].id, lock, sizeof(lock));
		unlink(lock);
		(*repairs)++;
	}
	return 0;
fail:
	sp_rollback(sp);
	return -1;
}

/* Segments whose file vanished while still needed: quarantine, loudly. */
static int check_missing_files(struct spool *sp, int *repairs, struct ierr *e)
{
	sqlite3_stmt *st =
	    sp_prep(sp,
	            "SELECT id, path, state FROM segments WHERE file_deleted_at IS NULL "
	            "AND state IN ('sealed','uploading','failed','uploaded')",
	            e);
	int64_t missing[512];
	int nmissing = 0;

	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW && nmissing < 512) {
		char full[4096];
		struct stat sb;

		snprintf(full, sizeof(full), "%s/%s", sp->dir,
		         (const char *)sqlite3_column_text(st, 1));
		if (stat(full, &sb) != 0 && errno == ENOENT)
			missing[nmissing++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (int i = 0; i < nmissing; i++) {
		sqlite3_stmt *u = sp_prep(sp,
		                          "UPDATE segments SET file_deleted_at=?2, "
		                          "state=CASE state WHEN 'uploaded' THEN 'uploaded' "
		                          "ELSE 'quarantined' END, "
		                          "last_error=CASE state WHEN 'uploaded' THEN last_error "
		                          "ELSE 'segment file missing from the spool' END "
		                          "WHERE id=?1",
		                          e);
		if (u == NULL)
			return -1;
		sqlite3_bind_int64(u, 1, missing[i]);
		sqlite3_bind_int64(u, 2, now_ms());
		if (sp_step_done(sp, u, "recovery", e) != 0)
			return -1;
		(*repairs)++;
	}
	return 0;
}

int spool_recover(struct spool *sp, struct ierr *e)
{
	int repairs = 0;

	if (abandon_dead_runs(sp, &repairs, e) != 0 ||
	    sweep_dir(sp, "tmp", false, &repairs, e) != 0 ||
	    sweep_dir(sp, "data", true, &repairs, e) != 0 ||
	    check_missing_files(sp, &repairs, e) != 0)
		return -1;
	return repairs;
}
