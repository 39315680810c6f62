/*
 * test_util.c - the small shared helpers of common/, tested once here: hex
 * (hex.h), durations and sizes (parse.h), the calendar, the file SHA-256,
 * the out-of-memory helpers and the rest of util.h, json_cstr.h, and the
 * housekeeping thread's stop (notify.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "hex.h"
#include "json_cstr.h"
#include "notify.h"
#include "parse.h"
#include "testlib.h"
#include "util.h"

static void test_hex(void)
{
	static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	unsigned char raw[16];
	char out[64];

	hex_encode(bytes, sizeof(bytes), out);
	CHECK_STR(out, "00017f80abff");
	hex_encode(bytes, 0, out);
	CHECK_STR(out, "");
	memset(out, 'x', sizeof(out));
	CHECK(hex_put(out, bytes, 2) == out + 4);
	CHECK(memcmp(out, "0001x", 5) == 0); /* no NUL from hex_put */

	CHECK(hex_decode("00017F80abFF", raw, 6) == 0);
	CHECK(memcmp(raw, bytes, 6) == 0);
	CHECK(hex_decode("D41D8CD98F00B204E9800998ECF8427E", raw, 16) == 0);
	hex_encode(raw, 16, out);
	CHECK_STR(out, "d41d8cd98f00b204e9800998ecf8427e");
	CHECK(hex_decode("d41d8cd98f00b204e9800998ecf8427", raw, 16) == -1); /* short */
	CHECK(hex_decode("d41d8cd98f00b204e9800998ecf8427e0", raw, 16) == -1);
	CHECK(hex_decode("g41d8cd98f00b204e9800998ecf8427e", raw, 16) == -1);
	CHECK(hex_decode("0x", raw, 1) == -1);
	CHECK(hex_decode("", raw, 16) == -1);
	CHECK(hex_decode("", raw, 0) == 0);
	CHECK(hex_decode(NULL, raw, 1) == -1);
	CHECK(hex_digit('0') == 0 && hex_digit('9') == 9 && hex_digit('a') == 10);
	CHECK(hex_digit('F') == 15 && hex_digit('g') == -1 && hex_digit(0) == -1);
}

static void test_duration(void)
{
	static const struct {
		const char *in;
		int64_t ms;
	} ok[] = {{"0", 0},         {"90", 90000},
	          {"500ms", 500},   {"1.5s", 1500},
	          {"15m", 900000},  {"15min", 900000},
	          {"6h", 21600000}, {"7d", 604800000},
	          {".5s", 500},     {"100000000d", 8640000000000000}};
	static const char *const bad[] = {"",     "inf",  "nan",   "-1",   "-0",   "+5",
	                                  " 5",   "5 s",  "5S",    "5x",   "ms",   "1e999",
	                                  "infs", "nand", "1e12d", "0x10", "5sec", "1.5.3"};
	int64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = -7;
		CHECK(parse_duration(ok[i].in, &ms) == 0);
		if (ms != ok[i].ms)
			fprintf(stderr, "duration \"%s\": got %lld\n", ok[i].in, (long long)ms);
		CHECK(ms == ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = -7;
		if (parse_duration(bad[i], &ms) == 0)
			fprintf(stderr, "duration \"%s\" accepted\n", bad[i]);
		CHECK(parse_duration(bad[i], &ms) == -1);
		CHECK(ms == -7);
	}
	CHECK(parse_duration(NULL, &ms) == -1);
}

static void test_size(void)
{
	static const struct {
		const char *in;
		int64_t bytes;
	} ok[] = {{"0", 0},
	          {"123", 123},
	          {"100B", 100},
	          {"100b", 100},
	          {"64K", 65536},
	          {"64k", 65536},
	          {"64KiB", 65536},
	          {"64KB", 65536},
	          {"1.5M", 1572864},
	          {"2MB", 2097152},
	          {"1G", 1073741824},
	          {"1GiB", 1073741824},
	          {"2T", 2199023255552}};
	static const char *const bad[] = {"",  "inf", "nan",  "-1",    "1X", "1KiBB", "1Bi",
	                                  "K", "1 K", "1e30", "1e999", "8E", "0x10",  "infK"};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -7;
		CHECK(parse_size(ok[i].in, &v) == 0);
		if (v != ok[i].bytes)
			fprintf(stderr, "size \"%s\": got %lld\n", ok[i].in, (long long)v);
		CHECK(v == ok[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		if (parse_size(bad[i], &v) == 0)
			fprintf(stderr, "size \"%s\" accepted\n", bad[i]);
		CHECK(parse_size(bad[i], &v) == -1);
		CHECK(v == -7);
	}
}

static void test_civil(void)
{
	static const struct {
		int64_t days;
		int64_t y;
		int m, d;
	} cases[] = {{0, 1970, 1, 1},         {-1, 1969, 12, 31},     {59, 1970, 3, 1},
	             {11016, 2000, 2, 29},    {11017, 2000, 3, 1},    {-719468, 0, 3, 1},
	             {-719469, 0, 2, 29},     {-719528, 0, 1, 1},     {-719529, -1, 12, 31},
	             {2932896, 9999, 12, 31}, {2932897, 10000, 1, 1}, {20366, 2025, 10, 5}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t y = 0;
		int m = 0, d = 0;

		civil_from_days(cases[i].days, &y, &m, &d);
		if (y != cases[i].y || m != cases[i].m || d != cases[i].d)
			fprintf(stderr, "day %lld: got %lld-%d-%d\n", (long long)cases[i].days,
			        (long long)y, m, d);
		CHECK(y == cases[i].y && m == cases[i].m && d == cases[i].d);
	}
	/* Eight centuries around the epoch, day after day: each date follows the last. */
	{
		const int64_t start = -146097 * 4;
		int64_t y, py;
		int m, d, pm, pd, bad = 0;

		civil_from_days(start - 1, &py, &pm, &pd);
		for (int64_t z = start; z < start + 146097 * 8; z++) {
			civil_from_days(z, &y, &m, &d);
			if (!((y == py && m == pm && d == pd + 1) ||
			      (y == py && m == pm + 1 && d == 1 && pd >= 28) ||
			      (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31)))
				bad++;
			py = y;
			pm = m;
			pd = d;
		}
		CHECK(bad == 0);
	}
}

static void test_file_sha256(const char *dir)
{
	char path[512], out[65];
	int fd;

	snprintf(path, sizeof(path), "%s/empty", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(sha256_file_hex(path, out) == 0);
	CHECK_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	snprintf(path, sizeof(path), "%s/abc", dir);
	CHECK(write_file_atomic(path, "abc", 3, &(struct ierr){0}) == 0);
	CHECK(sha256_file_hex(path, out) == 0);
	CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	/* More than one read buffer: 200000 bytes of 'a'. */
	{
		char *big = malloc(200000);

		memset(big, 'a', 200000);
		snprintf(path, sizeof(path), "%s/big", dir);
		CHECK(write_file_atomic(path, big, 200000, &(struct ierr){0}) == 0);
		free(big);
		CHECK(sha256_file_hex(path, out) == 0);
		CHECK_STR(out, "2287d207f24a941ff3b56c04c8a25ad56b63e3023207b3bb5b4ac0c9869d74be");
	}

	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	CHECK(sha256_file_hex(path, out) == -1);
	CHECK(errno == ENOENT);
	errno = 0;
	CHECK(sha256_file_hex(dir, out) == -1); /* a directory: read fails */
	CHECK(errno == EISDIR);
}

static void test_json_cstr(void)
{
	struct buf b = {0};

	json_cstr(&b, NULL);
	buf_putc(&b, ',');
	json_cstr(&b, "a\"b\n");
	buf_putc(&b, ',');
	json_cstr(&b, "");
	CHECK_STR(buf_cstr(&b), "null,\"a\\\"b\\n\",\"\"");
	buf_free(&b);
}

static void test_misc(const char *dir)
{
	char out[128], path[512];
	char *p;
	struct stat sb;

	p = xstrndup("hello world", 5);
	CHECK_STR(p, "hello");
	free(p);
	p = xstrndup("ab\0cd", 5); /* exactly n bytes, embedded NUL kept */
	CHECK(memcmp(p, "ab\0cd", 6) == 0);
	free(p);
	p = xstrdup("hello world");
	CHECK_STR(p, "hello world");
	free(p);
	p = xstrdup("");
	CHECK(p != NULL && p[0] == '\0');
	free(p);
	p = xmalloc(0);
	CHECK(p != NULL);
	free(p);
	p = xcalloc(4, 8);
	CHECK(p != NULL && p[31] == 0);
	p = xrealloc(p, 1 << 20);
	CHECK(p != NULL);
	free(p);

	random_hex(out, 8);
	CHECK(strlen(out) == 8 && strspn(out, "0123456789abcdef") == 8);
	random_hex(out, 7);
	CHECK(strlen(out) == 7 && strspn(out, "0123456789abcdef") == 7);
	random_hex(out, 0);
	CHECK_STR(out, "");

	format_utc(out, sizeof(out), 1759674600);
	CHECK_STR(out, "2025-10-05T14:30:00Z");
	human_bytes(out, sizeof(out), 1023);
	CHECK_STR(out, "1023 B");
	human_bytes(out, sizeof(out), 1536 * 1024);
	CHECK_STR(out, "1.5 MiB");
	CHECK(glob_list_match(" users , order*", "orders"));
	CHECK(!glob_list_match("users,orders", "order"));
	dir_of("/a/b/c", out, sizeof(out));
	CHECK_STR(out, "/a/b");
	dir_of("c", out, sizeof(out));
	CHECK_STR(out, ".");
	dir_of("/c", out, sizeof(out));
	CHECK_STR(out, "/");

	snprintf(path, sizeof(path), "%s/x/y/z", dir);
	CHECK(mkdir_private(path, &(struct ierr){0}) == 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/x/y/z/f", dir);
	CHECK(write_file_atomic(path, "1", 1, &(struct ierr){0}) == 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 1);
}

static int periodic_runs;

static void count_periodic(void *arg)
{
	(void)arg;
	periodic_runs++;
}

/* service_stop wakes the thread from its nap: a process that is done exits at
 * once (it used to wait out the 250 ms nap, on every collect). */
static void test_service_stop(void)
{
	struct service_hooks h = {.periodic = count_periodic, .period_ms = 60000};
	int64_t t0;

	CHECK(service_start(&h, &(struct ierr){0}) == 0);
	for (int i = 0; i < 100 && periodic_runs == 0; i++)
		usleep(10000); /* the first run is at start */
	t0 = monotonic_ms();
	service_stop();
	CHECK(monotonic_ms() - t0 < 100);
	CHECK(periodic_runs == 2); /* the first, and the last one at stop */
	service_stop();            /* safe twice */
}

int main(void)
{
	char dir[] = "/tmp/ingesta-test-util-XXXXXX";
	char cmd[128];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_hex();
	test_duration();
	test_size();
	test_civil();
	test_file_sha256(dir);
	test_json_cstr();
	test_misc(dir);
	test_service_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return test_done();
}
