/*
 * target_file.c - the file:// target: the S3 key layout in a local directory.
 *
 * Each object is copied to <root>/.ingesta-tmp/<pid>-<random> while its SHA-256
 * is recomputed, fsynced, then published with renameat2(RENAME_NOREPLACE) and
 * the directory fsynced. Temporary files never sit beside real objects (a Glue
 * crawler would see them); those of dead uploaders are removed at open. RENAME_NOREPLACE is
 * the local equivalent of S3's If-None-Match: *: an existing key is never
 * overwritten, and an existing key with identical bytes counts as success.
 *
 * .ingesta-tmp/ exists only while a copy is in flight: it is created before
 * each copy and removed after it when empty, so an idle bucket holds nothing
 * but objects. Several uploaders may share a bucket: a removal that finds
 * another writer's file (ENOTEMPTY, EBUSY) leaves the directory, and a copy
 * whose directory was removed under it between mkdir and create retries.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoint.h"
#include "hex.h"
#include "log.h"
#include "target.h"
#include "util.h"

struct file_target {
	struct target base;
	char root[4096];
	char tmpdir[4200];
};

/* mkdir -p for the bucket tree (ordinary modes: the bucket is for readers). */
static int make_parents(const char *path, struct ierr *e)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return ierr_errno(e, errno, "mkdir %s", tmp);
		*p = '/';
	}
	return 0;
}

/* Remove the temporary directory if it is empty; another writer's file in it
 * (or the directory already gone) is not an error. */
static void tmpdir_release(const struct file_target *ft)
{
	if (rmdir(ft->tmpdir) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != EBUSY &&
	    errno != ENOENT)
		log_event(LOG_DEBUG, "file target: could not remove the temporary directory", "dir",
		          ft->tmpdir, "error", strerror(errno), NULL);
}

/* Create tmp (0644, exclusive) in .ingesta-tmp/, creating the directory;
 * retried when a concurrent tmpdir_release() removed it in between. */
static int tmp_create(const struct file_target *ft, const char *tmp)
{
	for (int attempt = 0;; attempt++) {
		int fd;

		if (mkdir(ft->tmpdir, 0700) != 0 && errno != EEXIST)
			return -1;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != ENOENT || attempt == 100)
			return fd;
	}
}

/* Publish tmp as dest without replacing; on EEXIST compare contents. */
static int publish(const char *tmp, const char *dest, const char *sha, struct put_result *res,
                   struct ierr *e)
{
	char dir[4096], existing[65];

	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) != 0) {
		int err = errno;

		unlink(tmp);
		if (err != EEXIST) {
			snprintf(res->code, sizeof(res->code), "%s",
			         err == ENOSPC ? "ENOSPC" : "EIO");
			ierr_errno(e, err, "file target: rename to %s", dest);
			e->code = IERR_TRANSIENT;
			return -1;
		}
		if (sha256_file_hex(dest, existing) == 0 && strcmp(existing, sha) == 0) {
			res->already_present = true;
			return 0;
		}
		snprintf(res->code, sizeof(res->code), "Conflict");
		return ierr_set(e, IERR_PERMANENT,
		                "file target: %s already exists with different content "
		                "(sha256 %.12s..., ours %.12s...); not overwritten",
		                dest, existing, sha);
	}
	dir_of(dest, dir, sizeof(dir));
	if (fsync_dir(dir, e) != 0) {
		e->code = IERR_TRANSIENT;
		return -1;
	}
	return 0;
}

/* true when a key has a "." or ".." segment (it would leave the bucket). */
static bool key_escapes(const char *key)
{
	const char *p = key;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return true;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return false;
}

static int file_put_segment(struct target *t, struct spool *sp, const struct segment *seg,
                            struct put_result *res, struct ierr *e)
{
	struct file_target *ft = (struct file_target *)t;
	char dest[8192], tmp[4300], rnd[9], sha[65];
	unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int in, out;
	ssize_t n;
	EVP_MD_CTX *ctx;
	int rc;

	(void)sp;
	if (key_escapes(seg->key)) {
		snprintf(res->code, sizeof(res->code), "InvalidKey");
		return ierr_set(e, IERR_PERMANENT,
		                "file target: key %s has a \".\" or \"..\" segment; refused",
		                seg->key);
	}
	snprintf(dest, sizeof(dest), "%s/%s", ft->root, seg->key);
	if (make_parents(dest, e) != 0) {
		snprintf(res->code, sizeof(res->code), "EIO");
		e->code = IERR_TRANSIENT;
		return -1;
	}
	in = open(seg->path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(res->code, sizeof(res->code), "ChecksumMismatch");
		res->quarantine = true;
		return ierr_errno(e, errno, "spool file %s", seg->path);
	}
	random_hex(rnd, 8);
	snprintf(tmp, sizeof(tmp), "%s/%d-%s", ft->tmpdir, (int)getpid(), rnd);
	out = tmp_create(ft, tmp);
	if (out < 0) {
		int err = errno;

		close(in);
		tmpdir_release(ft);
		snprintf(res->code, sizeof(res->code), err == ENOSPC ? "ENOSPC" : "EIO");
		ierr_errno(e, err, "file target: create %s", tmp);
		e->code = IERR_TRANSIENT;
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		if (write_all(out, buf, (size_t)n) != 0) {
			n = -2;
			break;
		}
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	close(in);
	if (n < 0 || fsync(out) != 0) {
		int err = errno;

		close(out);
		unlink(tmp);
		tmpdir_release(ft);
		snprintf(res->code, sizeof(res->code), err == ENOSPC ? "ENOSPC" : "EIO");
		ierr_errno(e, err, "file target: write %s", tmp);
		e->code = IERR_TRANSIENT;
		return -1;
	}
	close(out);
	hex_encode(md, mdlen, sha);
	if (strcmp(sha, seg->sha256) != 0) {
		unlink(tmp);
		tmpdir_release(ft);
		snprintf(res->code, sizeof(res->code), "ChecksumMismatch");
		res->quarantine = true;
		return ierr_set(e, IERR_PERMANENT,
		                "spool file %s no longer matches its recorded sha256 "
		                "(%.12s... != %.12s...): quarantined",
		                seg->path, sha, seg->sha256);
	}
	FAILPOINT("upload.file.before_publish");
	rc = publish(tmp, dest, sha, res, e); /* tmp is renamed or unlinked */
	tmpdir_release(ft);
	if (rc != 0)
		return -1;
	snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
	return 0;
}

/* Remove temporary files whose uploader process is gone. */
static void sweep_dead_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[8192];
		long pid = strtol(de->d_name, NULL, 10);

		if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

/* Manifests and commit records: staged in .ingesta-tmp/ like segments (a
 * killed uploader must not leave "<key>.tmp-..." beside the objects, where a
 * reader listing the prefix takes it for one), then renamed over the key: a
 * retry rewrites the same bytes (commit_log.h), so replacing is the contract. */
static int file_put_bytes(struct target *t, const char *key, const void *data, size_t n,
                          struct put_result *res, struct ierr *e)
{
	struct file_target *ft = (struct file_target *)t;
	char dest[8192], tmp[4300], rnd[9], dir[4096];
	int fd, err = 0;

	memset(res, 0, sizeof(*res));
	snprintf(dest, sizeof(dest), "%s/%s", ft->root, key);
	if (make_parents(dest, e) != 0)
		goto fail;
	random_hex(rnd, 8);
	snprintf(tmp, sizeof(tmp), "%s/%d-%s", ft->tmpdir, (int)getpid(), rnd);
	fd = tmp_create(ft, tmp);
	if (fd < 0) {
		ierr_errno(e, errno, "file target: create %s", tmp);
		tmpdir_release(ft);
		goto fail;
	}
	if (write_all(fd, data, n) != 0 || fsync(fd) != 0)
		err = errno;
	close(fd);
	if (err == 0 && rename(tmp, dest) != 0)
		err = errno;
	if (err != 0) {
		unlink(tmp);
		tmpdir_release(ft);
		ierr_errno(e, err, "file target: write %s", dest);
		goto fail;
	}
	tmpdir_release(ft);
	dir_of(dest, dir, sizeof(dir));
	if (fsync_dir(dir, e) != 0)
		goto fail;
	return 0;
fail:
	snprintf(res->code, sizeof(res->code), "EIO");
	e->code = IERR_TRANSIENT;
	return -1;
}

static void file_free(struct target *t)
{
	free(t);
}

static const struct target_ops file_ops = {
    .scheme = "file",
    .put_segment = file_put_segment,
    .put_bytes = file_put_bytes,
    .free = file_free,
};

struct target *target_file_open(const char *bucket, struct ierr *e)
{
	struct file_target *ft;
	const char *path = bucket + strlen("file://");

	if (*path != '/') {
		ierr_set(e, IERR_CONFIG,
		         "S3_BUCKET: \"%s\": a file:// bucket needs an absolute "
		         "path (file:///srv/lake/raw)",
		         bucket);
		return NULL;
	}
	ft = calloc(1, sizeof(*ft));
	if (ft == NULL)
		return NULL;
	ft->base.ops = &file_ops;
	snprintf(ft->base.bucket, sizeof(ft->base.bucket), "%s", bucket);
	snprintf(ft->root, sizeof(ft->root), "%s", path);
	{
		size_t l = strlen(ft->root);

		while (l > 1 && ft->root[l - 1] == '/')
			ft->root[--l] = '\0';
	}
	snprintf(ft->tmpdir, sizeof(ft->tmpdir), "%s/.ingesta-tmp", ft->root);
	if (mkdir(ft->root, 0755) != 0 && errno != EEXIST) {
		ierr_errno(e, errno, "file target %s", ft->root);
		free(ft);
		return NULL;
	}
	/* Leftovers of dead uploaders (and the directory an older version kept). */
	sweep_dead_tmp(ft->tmpdir);
	tmpdir_release(ft);
	return &ft->base;
}

#pragma weak target_s3_open

struct target *target_open(const char *bucket, const struct config *cfg, struct ierr *e)
{
	if (strncmp(bucket, "file://", 7) == 0)
		return target_file_open(bucket, e);
	if (target_s3_open == NULL) {
		ierr_set(e, IERR_CONFIG, "bucket %s: S3 support is not built in", bucket);
		return NULL;
	}
	return target_s3_open(bucket, cfg, e);
}
