/*
 * test_target_file.c - the file:// target (target.h): objects published
 * exactly once, identical bytes accepted, different bytes refused, "..""
 * keys refused, and no .ingesta-tmp/ left at the bucket root once the
 * copies are done, also when several uploaders share the bucket; put_bytes
 * (manifests, commit records) replaces its key, and an uploader killed in
 * the middle of one leaves nothing beside the objects.
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target.h"
#include "testlib.h"
#include "util.h"

static char root[256];

/* A spooled segment file with the given bytes, keyed key. */
static void make_segment(struct segment *seg, const char *name, const char *key, const char *data)
{
	struct ierr e = {0};

	memset(seg, 0, sizeof(*seg));
	snprintf(seg->path, sizeof(seg->path), "%s/spool/%s", root, name);
	snprintf(seg->key, sizeof(seg->key), "%s", key);
	if (write_file_atomic(seg->path, data, strlen(data), &e) != 0)
		fprintf(stderr, "%s\n", e.msg);
	sha256_file_hex(seg->path, seg->sha256);
	snprintf(seg->md5, sizeof(seg->md5), "%s", "00000000000000000000000000000000");
	seg->bytes = strlen(data);
}

static int put(struct target *t, const struct segment *seg, struct put_result *res, struct ierr *e)
{
	memset(res, 0, sizeof(*res));
	return t->ops->put_segment(t, NULL, seg, res, e);
}

static bool tmpdir_exists(const char *bucket_dir)
{
	char p[512];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/.ingesta-tmp", bucket_dir);
	return stat(p, &sb) == 0;
}

static void test_once(void)
{
	char bucket[512], dir[512], p[600];
	struct ierr e = {0};
	struct put_result res;
	struct segment a, same, other, bad;
	struct target *t;

	snprintf(dir, sizeof(dir), "%s/b1", root);
	snprintf(bucket, sizeof(bucket), "file://%s", dir);
	t = target_file_open(bucket, &e);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(!tmpdir_exists(dir)); /* nothing at the root before the first copy */

	make_segment(&a, "a", "users/year=2025/a.json", "{\"id\":1}\n");
	CHECK(put(t, &a, &res, &e) == 0);
	CHECK(!res.already_present);
	snprintf(p, sizeof(p), "%s/users/year=2025/a.json", dir);
	{
		char sha[65];

		CHECK(sha256_file_hex(p, sha) == 0);
		CHECK_STR(sha, a.sha256);
	}
	CHECK(!tmpdir_exists(dir));

	/* Again with the same bytes: success, already there. */
	make_segment(&same, "same", "users/year=2025/a.json", "{\"id\":1}\n");
	CHECK(put(t, &same, &res, &e) == 0);
	CHECK(res.already_present);
	/* Other bytes under the same key: a permanent conflict, not overwritten. */
	make_segment(&other, "other", "users/year=2025/a.json", "{\"id\":2}\n");
	CHECK(put(t, &other, &res, &e) == -1);
	CHECK(e.code == IERR_PERMANENT);
	CHECK_STR(res.code, "Conflict");
	CHECK(!tmpdir_exists(dir));
	/* A spool file that no longer matches its checksum: quarantine. */
	make_segment(&bad, "bad", "users/year=2025/b.json", "{\"id\":3}\n");
	bad.sha256[0] = bad.sha256[0] == '0' ? '1' : '0';
	CHECK(put(t, &bad, &res, &e) == -1);
	CHECK(res.quarantine);
	CHECK(!tmpdir_exists(dir));
	/* A key that would leave the bucket. */
	make_segment(&bad, "esc", "users/../../etc/x", "x");
	CHECK(put(t, &bad, &res, &e) == -1);
	CHECK_STR(res.code, "InvalidKey");
	t->ops->free(t);

	/* An old bucket with an empty .ingesta-tmp/: removed at open. */
	snprintf(p, sizeof(p), "%s/.ingesta-tmp", dir);
	CHECK(mkdir(p, 0700) == 0);
	t = target_file_open(bucket, &e);
	CHECK(t != NULL && !tmpdir_exists(dir));
	if (t)
		t->ops->free(t);
}

/* Four processes, 40 objects each, into one bucket at once: every object
 * lands, and the last copy out removes .ingesta-tmp/ (the others' rmdir
 * meet ENOTEMPTY, or a directory removed between mkdir and create). */
static void test_concurrent(void)
{
	char bucket[512], dir[512];
	enum { NPROC = 4, NOBJ = 40 };
	pid_t pids[NPROC];
	int failed = 0, present = 0;

	snprintf(dir, sizeof(dir), "%s/b2", root);
	snprintf(bucket, sizeof(bucket), "file://%s", dir);
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			struct ierr e = {0};
			struct target *t = target_file_open(bucket, &e);
			int bad = t == NULL;

			for (int i = 0; t && i < NOBJ; i++) {
				struct segment seg;
				struct put_result res;
				char name[64], key[128], data[64];

				snprintf(name, sizeof(name), "c%d-%d", p, i);
				snprintf(key, sizeof(key), "t/p%d/%d.json", p, i);
				snprintf(data, sizeof(data), "{\"p\":%d,\"i\":%d}\n", p, i);
				make_segment(&seg, name, key, data);
				if (put(t, &seg, &res, &e) != 0) {
					fprintf(stderr, "put %s: %s\n", key, e.msg);
					bad++;
				}
			}
			_exit(bad ? 1 : 0);
		}
	}
	for (int p = 0; p < NPROC; p++) {
		int st = 0;

		waitpid(pids[p], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	CHECK(failed == 0);
	for (int p = 0; p < NPROC; p++) {
		for (int i = 0; i < NOBJ; i++) {
			char path[600];
			struct stat sb;

			snprintf(path, sizeof(path), "%s/t/p%d/%d.json", dir, p, i);
			present += stat(path, &sb) == 0;
		}
	}
	CHECK(present == NPROC * NOBJ);
	CHECK(!tmpdir_exists(dir));
}

static void test_put_bytes(void)
{
	char bucket[512], dir[512], p[700], got[16] = {0};
	static char big[1 << 20];
	struct ierr e = {0};
	struct put_result res;
	struct target *t;
	FILE *f;
	pid_t pid;
	int st = 0;

	snprintf(dir, sizeof(dir), "%s/b3", root);
	snprintf(bucket, sizeof(bucket), "file://%s", dir);
	t = target_file_open(bucket, &e);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(t->ops->put_bytes(t, "runs/r1.json", "first\n", 6, &res, &e) == 0);
	CHECK(t->ops->put_bytes(t, "runs/r1.json", "again\n", 6, &res, &e) == 0);
	snprintf(p, sizeof(p), "%s/runs/r1.json", dir);
	f = fopen(p, "r");
	CHECK(f != NULL && fread(got, 1, sizeof(got) - 1, f) == 6);
	if (f)
		fclose(f);
	CHECK_STR(got, "again\n"); /* replaced: a retry rewrites its record */
	CHECK(!tmpdir_exists(dir));
	/* Killed in the middle of a write (SIGXFSZ past RLIMIT_FSIZE): what is
	 * left sits in .ingesta-tmp/, never beside the objects, and the next
	 * open sweeps it. */
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};

		signal(SIGXFSZ, SIG_DFL);
		setrlimit(RLIMIT_FSIZE, &rl);
		t->ops->put_bytes(t, "runs/r2.json", big, sizeof(big), &res, &e);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ);
	snprintf(p, sizeof(p), "%s/runs", dir);
	CHECK(test_dir_entries(p, "r1.json") == 0);
	CHECK(tmpdir_exists(dir));
	t->ops->free(t);
	t = target_file_open(bucket, &e);
	CHECK(t != NULL);
	snprintf(p, sizeof(p), "%s/.ingesta-tmp", dir);
	CHECK(test_dir_entries(p, NULL) <= 0); /* swept (or removed) */
	if (t)
		t->ops->free(t);
}

int main(void)
{
	char cmd[300], spool[300];

	snprintf(root, sizeof(root), "/tmp/ingesta-test-target-file-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	snprintf(spool, sizeof(spool), "%s/spool", root);
	mkdir(spool, 0700);
	test_once();
	test_concurrent();
	test_put_bytes();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return test_done();
}
