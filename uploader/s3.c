/*
 * s3.c - the S3 target: open, PutObject, and the evidence that decides
 * whether an existing object is the segment (contract and design in s3.h;
 * multipart in s3_multipart.c, the request layer in s3_http.c).
 *
 * A segment is reported uploaded only after the server confirmed the exact
 * bytes: Content-MD5 and x-amz-checksum-sha256 make S3 reject a corrupted
 * body, the signed payload hash is the SHA-256 recorded at seal time, the
 * returned ETag is checked; a refusal or an unexpected ETag re-reads the spool
 * file to tell a changed file (quarantine) from a corrupted transfer. A key is written at most
 * once: If-None-Match: * (or a HEAD first), and an existing object is compared, never overwritten.
 */
#include "s3.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "log.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 10000
#define LOW_SPEED_TIME_S   30
#define READ_CHUNK         (256 * 1024)
#define MIB                (1024ULL * 1024)

/* ================================================================ helpers */

bool s3_cond_enabled(struct s3_target *t)
{
	return t->cond == S3_COND_ON ||
	       (t->cond == S3_COND_AUTO && !atomic_load(&t->cond_unsupported));
}

const char *s3_payload_hash(struct s3_target *t, const char *sha_hex)
{
	return t->checksum && atomic_load(&t->checksum_echoed) ? "UNSIGNED-PAYLOAD" : sha_hex;
}

void s3_checksum_seen(struct s3_target *t, const struct s3_resp *resp, const char *sha_b64)
{
	if (t->checksum && resp->checksum_sha256[0] && strcmp(resp->checksum_sha256, sha_b64) == 0)
		atomic_store(&t->checksum_echoed, true);
}

int s3_quarantine(struct put_result *res, struct ierr *e, const char *fmt, ...)
{
	va_list ap;

	res->quarantine = true;
	snprintf(res->code, sizeof(res->code), "ChecksumMismatch");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = IERR_PERMANENT;
	return -1;
}

int s3_transient(struct put_result *res, struct ierr *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(res->code, sizeof(res->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = IERR_TRANSIENT;
	return -1;
}

int s3_conflict(struct s3_target *t, const struct segment *seg, const char *why,
                struct put_result *res, struct ierr *e)
{
	snprintf(res->code, sizeof(res->code), "Conflict");
	log_event(LOG_ERROR, "CONFLICT: the key already holds a different object; not overwritten",
	          "bucket", t->base.bucket, "key", seg->key, "detail", why, NULL);
	return ierr_set(e, IERR_PERMANENT,
	                "Conflict: s3://%s/%s already exists with different content (%s); "
	                "ingesta never overwrites an object: inspect it, then remove it and "
	                "`ingesta replay`",
	                t->base.bucket, seg->key, why);
}

/* Quoted-or-not ETag equal to a hex MD5? */
static bool etag_is_md5(const char *etag, const char *md5hex)
{
	char v[256];

	s3_etag_unquote(etag, v, sizeof(v));
	return strcasecmp(v, md5hex) == 0;
}

static bool is_hex32(const char *s)
{
	unsigned char raw[16];

	return hex_decode(s, raw, 16) == 0;
}

/* SSE-KMS (and DSSE-KMS) ETags are not the MD5 of the content. */
bool s3_etag_not_md5(const struct s3_resp *r)
{
	return strncmp(r->sse, "aws:kms", 7) == 0;
}

static void hex_to_b64(const char *hex, size_t nbytes, char *out)
{
	unsigned char raw[64];

	if (nbytes > sizeof(raw) || hex_decode(hex, raw, nbytes) != 0) {
		out[0] = '\0';
		return;
	}
	s3_base64(raw, nbytes, out);
}

/* Read [off, off+len) of fd and feed it to every non-NULL context. Returns 0,
 * 1 when the file ended early, -1 with errno on a read error. */
int s3_digest_range(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *a, EVP_MD_CTX *b, EVP_MD_CTX *c)
{
	char *buf = malloc(READ_CHUNK);
	uint64_t done = 0;

	if (buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	while (done < len) {
		size_t want = len - done < READ_CHUNK ? (size_t)(len - done) : READ_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = errno;

			free(buf);
			errno = err;
			return n == 0 ? 1 : -1;
		}
		if (a)
			EVP_DigestUpdate(a, buf, (size_t)n);
		if (b)
			EVP_DigestUpdate(b, buf, (size_t)n);
		if (c)
			EVP_DigestUpdate(c, buf, (size_t)n);
		done += (uint64_t)n;
	}
	free(buf);
	return 0;
}

static void digest_final(EVP_MD_CTX *ctx, unsigned char *out)
{
	unsigned int len = 0;

	EVP_DigestFinal_ex(ctx, out, &len);
}

static void digest_init(EVP_MD_CTX *ctx, const EVP_MD *md)
{
	EVP_DigestInit_ex(ctx, md, NULL);
}

/* SHA-256 hex of the whole file; 0, 1 (short), -1 (read error). */
static int file_sha256_hex(int fd, uint64_t bytes, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	int rc;

	digest_init(ctx, EVP_sha256());
	rc = s3_digest_range(fd, 0, bytes, ctx, NULL, NULL);
	digest_final(ctx, md);
	EVP_MD_CTX_free(ctx);
	hex_encode(md, 32, out);
	return rc;
}

/* Part size for a new multipart upload: the configured one, raised (in
 * 64 MiB steps) until the object fits in S3's 10000 parts. */
uint64_t s3_part_size_for(const struct s3_target *t, uint64_t bytes)
{
	uint64_t p = t->part_size;

	while ((bytes + p - 1) / p > S3_MAX_PARTS)
		p += 64 * MIB;
	return p;
}

/* ================================================================ small requests */

static int head_object(struct s3_target *t, const char *key, struct s3_resp *resp,
                       struct put_result *res, struct ierr *e)
{
	struct sigv4_kv hdr[] = {{"x-amz-checksum-mode", "ENABLED"}};
	struct s3_req rq = {.method = "HEAD", .key = key, .headers = hdr, .nheaders = 1, .fd = -1};

	return s3_request(t, &rq, resp, res->code, sizeof(res->code), e);
}

struct get_hash {
	EVP_MD_CTX *sha;
	uint64_t bytes;
};

static size_t get_sink(const void *p, size_t n, void *ctx)
{
	struct get_hash *g = ctx;

	EVP_DigestUpdate(g->sha, p, n);
	g->bytes += n;
	return n;
}

/* Download the object and hash it: the last word on "same bytes?". */
static int get_compare(struct s3_target *t, const struct segment *seg, enum s3_verdict *v,
                       struct put_result *res, struct ierr *e)
{
	struct get_hash g = {.sha = EVP_MD_CTX_new()};
	struct s3_req rq = {
	    .method = "GET", .key = seg->key, .fd = -1, .sink = get_sink, .sink_ctx = &g};
	struct s3_resp resp;
	unsigned char md[32];
	char hex[65];
	int rc;

	digest_init(g.sha, EVP_sha256());
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	digest_final(g.sha, md);
	EVP_MD_CTX_free(g.sha);
	if (rc == 0 && resp.status == 404) {
		*v = S3_ABSENT;
	} else if (rc == 0 && resp.status == 200) {
		hex_encode(md, 32, hex);
		*v = (g.bytes == seg->bytes && strcmp(hex, seg->sha256) == 0) ? S3_SAME
		                                                              : S3_DIFFERENT;
	} else if (rc == 0) {
		rc = s3_fail(t, &resp, seg->key, res->code, sizeof(res->code), e);
	}
	s3_resp_free(&resp);
	return rc;
}

/*
 * Digests of the local file cut in parts of part_size: the multipart ETag and
 * composite checksum it would have. Returns 0 when the whole file still
 * matches its recorded SHA-256 (otherwise the values prove nothing).
 */
static int local_multipart(int fd, const struct segment *seg, uint64_t part_size, char *etag,
                           size_t etagsz, char *cks, size_t ckssz)
{
	int n = (int)((seg->bytes + part_size - 1) / part_size);
	unsigned char *md5s = malloc((size_t)n * 16), *shas = malloc((size_t)n * 32), whole_md[32];
	EVP_MD_CTX *m = EVP_MD_CTX_new(), *s = EVP_MD_CTX_new(), *w = EVP_MD_CTX_new();
	char hex[65];
	int rc = 0;

	digest_init(w, EVP_sha256());
	for (int i = 0; i < n && md5s && shas && rc == 0; i++) {
		uint64_t off = (uint64_t)i * part_size;
		uint64_t len = seg->bytes - off < part_size ? seg->bytes - off : part_size;

		digest_init(m, EVP_md5());
		digest_init(s, EVP_sha256());
		if (s3_digest_range(fd, off, len, m, s, w) != 0)
			rc = -1;
		digest_final(m, md5s + 16 * i);
		digest_final(s, shas + 32 * i);
	}
	digest_final(w, whole_md);
	hex_encode(whole_md, 32, hex);
	if (md5s == NULL || shas == NULL || strcmp(hex, seg->sha256) != 0)
		rc = -1;
	if (rc == 0) {
		s3_multipart_etag(md5s, n, etag, etagsz);
		s3_multipart_checksum(shas, n, cks, ckssz);
	}
	free(md5s);
	free(shas);
	EVP_MD_CTX_free(m);
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(w);
	return rc;
}

/* "...-N" -> N, else 0. */
static int multipart_count(const char *v)
{
	const char *dash = strrchr(v, '-');
	char *end;
	long n;

	if (dash == NULL)
		return 0;
	n = strtol(dash + 1, &end, 10);
	return (*end == '\0' || *end == '"') && n > 0 && n <= S3_MAX_PARTS ? (int)n : 0;
}

/*
 * Is the object at seg->key the segment? See s3.h for the order of evidence.
 * fd may be -1 (then multipart values are not recomputed locally).
 */
int s3_same_object(struct s3_target *t, const struct segment *seg, int fd, uint64_t used_part_size,
                   enum s3_verdict *v, char *why, size_t whysz, struct put_result *res,
                   struct ierr *e)
{
	struct s3_resp resp;
	char etag[256], ours[64];
	int n;

	if (head_object(t, seg->key, &resp, res, e) != 0)
		return -1;
	if (resp.status == 403 && v != NULL && *v == S3_UNKNOWN) {
		/* Only a courtesy check: a role allowed to write but not to read
		 * (s3:PutObject only) answers 403; If-None-Match still protects. */
		s3_resp_free(&resp);
		return 0;
	}
	if (resp.status == 404) {
		s3_resp_free(&resp);
		*v = S3_ABSENT;
		return 0;
	}
	if (resp.status != 200) {
		int rc = s3_fail(t, &resp, seg->key, res->code, sizeof(res->code), e);

		s3_resp_free(&resp);
		return rc;
	}
	s3_resp_free(&resp);
	s3_etag_unquote(resp.etag, etag, sizeof(etag));
	snprintf(res->etag, sizeof(res->etag), "%s", etag); /* recorded when S3_SAME */
	if (resp.content_length >= 0 && (uint64_t)resp.content_length != seg->bytes) {
		snprintf(why, whysz, "its size is %lld bytes, the segment's %" PRIu64,
		         (long long)resp.content_length, seg->bytes);
		*v = S3_DIFFERENT;
		return 0;
	}
	hex_to_b64(seg->sha256, 32, ours);
	if (resp.checksum_sha256[0] && strchr(resp.checksum_sha256, '-') == NULL) {
		*v = strcmp(resp.checksum_sha256, ours) == 0 ? S3_SAME : S3_DIFFERENT;
		snprintf(why, whysz, "its sha256 checksum is %.60s, the segment's %s",
		         resp.checksum_sha256, ours);
		return 0;
	}
	if (is_hex32(etag) && !s3_etag_not_md5(&resp)) {
		*v = strcasecmp(etag, seg->md5) == 0 ? S3_SAME : S3_DIFFERENT;
		snprintf(why, whysz, "its ETag is %s, the segment's MD5 %s", etag, seg->md5);
		return 0;
	}
	n = multipart_count(resp.checksum_sha256[0] ? resp.checksum_sha256 : etag);
	if (n > 0 && fd >= 0) {
		/* Candidate part sizes: the one in use and the smallest whole MiB
		 * that gives n parts (what most clients pick). */
		uint64_t cand[3] = {used_part_size, s3_part_size_for(t, seg->bytes),
		                    ((seg->bytes + (uint64_t)n - 1) / (uint64_t)n + MIB - 1) / MIB *
		                        MIB};

		for (int i = 0; i < 3; i++) {
			char le[64], lc[96];

			if (cand[i] == 0 || (seg->bytes + cand[i] - 1) / cand[i] != (uint64_t)n)
				continue;
			if (i > 0 && (cand[i] == cand[0] || (i == 2 && cand[2] == cand[1])))
				continue;
			if (local_multipart(fd, seg, cand[i], le, sizeof(le), lc, sizeof(lc)) != 0)
				break;
			if ((resp.checksum_sha256[0] && strcmp(resp.checksum_sha256, lc) == 0) ||
			    (!s3_etag_not_md5(&resp) && strcasecmp(etag, le) == 0)) {
				*v = S3_SAME;
				return 0;
			}
		}
	}
	/* Nothing conclusive in the metadata: compare the bytes themselves. */
	if (get_compare(t, seg, v, res, e) != 0)
		return -1;
	snprintf(why, whysz, "its content's sha256 differs from the segment's %.16s...",
	         seg->sha256);
	return 0;
}

/* Decide after the key turned out to exist (412, 409, HEAD first). */
static int settle_existing(struct s3_target *t, const struct segment *seg, int fd,
                           uint64_t part_size, struct put_result *res, struct ierr *e)
{
	enum s3_verdict v;
	char why[512];

	if (s3_same_object(t, seg, fd, part_size, &v, why, sizeof(why), res, e) != 0)
		return -1;
	if (v == S3_ABSENT)
		return s3_transient(res, e, "ConditionalRequestConflict",
		                    "S3 s3://%s/%s: the write was refused but no object is there "
		                    "(a concurrent write?); retrying",
		                    t->base.bucket, seg->key);
	if (v == S3_DIFFERENT)
		return s3_conflict(t, seg, why, res, e);
	res->already_present = true;
	return 0;
}

/* ================================================================ PutObject */

static int put_single(struct s3_target *t, const struct segment *seg, int fd,
                      struct put_result *res, struct ierr *e)
{
	char md5_b64[32], sha_b64[64];
	struct sigv4_kv hdr[5];
	size_t nh = 0;
	struct s3_req rq = {.method = "PUT",
	                    .key = seg->key,
	                    .fd = fd,
	                    .file_len = seg->bytes,
	                    .payload_hash = seg->sha256};
	struct s3_resp resp;
	char sent[65];
	bool cond = s3_cond_enabled(t);
	int rc;

	if (!cond) {
		enum s3_verdict v;
		char why[512];

		if (s3_same_object(t, seg, fd, 0, &v, why, sizeof(why), res, e) != 0)
			return -1;
		if (v == S3_SAME) {
			res->already_present = true;
			return 0;
		}
		if (v == S3_DIFFERENT)
			return s3_conflict(t, seg, why, res, e);
	}
	hex_to_b64(seg->md5, 16, md5_b64);
	hex_to_b64(seg->sha256, 32, sha_b64);
	if (md5_b64[0] == '\0' || sha_b64[0] == '\0')
		return s3_quarantine(res, e, "spool row of %s has malformed checksums", seg->path);
	rq.payload_hash = s3_payload_hash(t, seg->sha256);
	hdr[nh++] = (struct sigv4_kv){"content-md5", md5_b64};
	hdr[nh++] = (struct sigv4_kv){"content-type", "application/octet-stream"};
	if (t->checksum)
		hdr[nh++] = (struct sigv4_kv){"x-amz-checksum-sha256", sha_b64};
	if (cond)
		hdr[nh++] = (struct sigv4_kv){"if-none-match", "*"};
	rq.headers = hdr;
	rq.nheaders = nh;
	/* No second hash while sending (as for multipart parts): the server
	 * checks the body against Content-MD5, the signed payload hash and the
	 * checksum, and the returned ETag is checked below; a refusal or an
	 * unexpected ETag re-reads the file to tell a changed file (quarantine)
	 * from a corrupted transfer. */
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	if (resp.file_short) {
		s3_resp_free(&resp);
		return s3_quarantine(res, e,
		                     "spool file %s no longer matches its recorded sha256 %.16s... "
		                     "(read while sending to s3://%s/%s): quarantined",
		                     seg->path, seg->sha256, t->base.bucket, seg->key);
	}
	if (rc != 0) {
		s3_resp_free(&resp);
		return -1;
	}
	if (resp.status == 200) {
		char etag[256];

		s3_etag_unquote(resp.etag, etag, sizeof(etag));
		s3_resp_free(&resp);
		if (!etag_is_md5(etag, seg->md5) && !s3_etag_not_md5(&resp)) {
			int frc = file_sha256_hex(fd, seg->bytes, sent);

			if (frc > 0 || (frc == 0 && strcmp(sent, seg->sha256) != 0))
				return s3_quarantine(
				    res, e,
				    "spool file %s no longer matches its recorded sha256 %.16s... "
				    "(ETag %.40s from s3://%s/%s): quarantined",
				    seg->path, seg->sha256, etag, t->base.bucket, seg->key);
			snprintf(res->code, sizeof(res->code), "ETagMismatch");
			return ierr_set(e, IERR_PERMANENT,
			                "S3 200 for s3://%s/%s but ETag %.64s is not the MD5 %s "
			                "of the segment",
			                t->base.bucket, seg->key, etag, seg->md5);
		}
		if (resp.checksum_sha256[0] && t->checksum &&
		    strcmp(resp.checksum_sha256, sha_b64) != 0) {
			snprintf(res->code, sizeof(res->code), "ChecksumMismatch");
			return ierr_set(e, IERR_PERMANENT,
			                "S3 200 for s3://%s/%s but the stored sha256 %.60s is not "
			                "the segment's %s",
			                t->base.bucket, seg->key, resp.checksum_sha256, sha_b64);
		}
		s3_checksum_seen(t, &resp, sha_b64);
		snprintf(res->etag, sizeof(res->etag), "%s", etag);
		return 0;
	}
	rc = s3_fail(t, &resp, seg->key, res->code, sizeof(res->code), e);
	s3_resp_free(&resp);
	if (resp.status == 412 || strcmp(res->code, "ConditionalRequestConflict") == 0)
		return settle_existing(t, seg, fd, 0, res, e);
	if (resp.status == 501 && cond && t->cond == S3_COND_AUTO) {
		atomic_store(&t->cond_unsupported, true);
		log_event(LOG_WARNING,
		          "the S3 server does not support If-None-Match on writes; "
		          "checking with HEAD before each write from now on "
		          "(S3_CONDITIONAL_WRITES=false avoids this probe)",
		          "bucket", t->base.bucket, NULL);
		return put_single(t, seg, fd, res, e);
	}
	if (strcmp(res->code, "BadDigest") == 0 ||
	    strcmp(res->code, "XAmzContentSHA256Mismatch") == 0 ||
	    strcmp(res->code, "InvalidDigest") == 0) {
		/* The server saw other bytes than we meant: did the file change? */
		int frc = file_sha256_hex(fd, seg->bytes, sent);

		if (frc > 0 || (frc == 0 && strcmp(sent, seg->sha256) != 0))
			return s3_quarantine(res, e,
			                     "spool file %s no longer matches its recorded "
			                     "sha256 %.16s... (%s from s3://%s/%s): quarantined",
			                     seg->path, seg->sha256, res->code, t->base.bucket,
			                     seg->key);
		e->code = IERR_TRANSIENT; /* corrupted in transit: send again */
	}
	return -1;
}

/* ================================================================ target ops */

static int s3_put_segment(struct target *tt, struct spool *sp, const struct segment *seg,
                          struct put_result *res, struct ierr *e)
{
	struct s3_target *t = (struct s3_target *)tt;
	struct stat st;
	int fd, rc;

	fd = open(seg->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err != ENOENT && err != ENOTDIR)
			return s3_transient(res, e, "EIO", "spool file %s: %s", seg->path,
			                    strerror(err));
		return s3_quarantine(res, e, "spool file %s: %s: quarantined", seg->path,
		                     strerror(err));
	}
	if (fstat(fd, &st) != 0) {
		int err = errno;

		close(fd);
		return s3_transient(res, e, "EIO", "spool file %s: %s", seg->path, strerror(err));
	}
	if ((uint64_t)st.st_size != seg->bytes) {
		close(fd);
		return s3_quarantine(
		    res, e, "spool file %s is %lld bytes, %" PRIu64 " recorded: quarantined",
		    seg->path, (long long)st.st_size, seg->bytes);
	}
	if (seg->upload_id[0] || seg->bytes > t->threshold || seg->bytes > S3_MAX_PUT_SIZE)
		rc = s3_put_multipart(t, sp, seg, fd, res, e);
	else
		rc = put_single(t, seg, fd, res, e);
	close(fd);
	return rc;
}

static int s3_put_bytes(struct target *tt, const char *key, const void *data, size_t n,
                        struct put_result *res, struct ierr *e)
{
	struct s3_target *t = (struct s3_target *)tt;
	unsigned char md[32];
	char sha_hex[65], md5_hex[33], md5_b64[32];
	struct sigv4_kv hdr[] = {{"content-md5", md5_b64}, {"content-type", "application/json"}};
	struct s3_req rq = {.method = "PUT",
	                    .key = key,
	                    .headers = hdr,
	                    .nheaders = 2,
	                    .fd = -1,
	                    .body = data ? data : "",
	                    .body_len = n,
	                    .payload_hash = sha_hex};
	struct s3_resp resp;
	int rc;

	memset(res, 0, sizeof(*res));
	EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL);
	hex_encode(md, 32, sha_hex);
	EVP_Digest(data, n, md, NULL, EVP_md5(), NULL);
	hex_encode(md, 16, md5_hex);
	s3_base64(md, 16, md5_b64);
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	if (rc == 0 && resp.status != 200)
		rc = s3_fail(t, &resp, key, res->code, sizeof(res->code), e);
	if (rc == 0) {
		s3_etag_unquote(resp.etag, res->etag, sizeof(res->etag));
		if (strcasecmp(res->etag, md5_hex) != 0 && !s3_etag_not_md5(&resp)) {
			snprintf(res->code, sizeof(res->code), "ETagMismatch");
			rc = ierr_set(e, IERR_TRANSIENT,
			              "S3 200 for s3://%s/%s but ETag %.64s is not the MD5 %s",
			              t->base.bucket, key, res->etag, md5_hex);
		}
	}
	s3_resp_free(&resp);
	return rc;
}

static void s3_free(struct target *tt)
{
	struct s3_target *t = (struct s3_target *)tt;

	if (t == NULL)
		return;
	s3_http_cleanup(t);
	creds_provider_free(t->creds);
	curl_global_cleanup();
	free(t);
}

static const struct target_ops s3_ops = {
    .scheme = "s3",
    .put_segment = s3_put_segment,
    .put_bytes = s3_put_bytes,
    .sweep = s3_sweep_orphans,
    .free = s3_free,
};

static int check_bucket_name(const char *bucket, struct ierr *e)
{
	size_t n = strlen(bucket);

	if (n < 3 || n > 255 || strpbrk(bucket, "/ \t\r\n?#\\") != NULL)
		return ierr_set(e, IERR_CONFIG, "S3_BUCKET: \"%.100s\" is not a bucket name",
		                bucket);
	return 0;
}

struct target *target_s3_open(const char *bucket, const struct config *cfg, struct ierr *e)
{
	struct creds_options co = {.lookup = creds_config_lookup, .lookup_ctx = (void *)cfg};
	const char *region = config_str(cfg, "AWS_REGION");
	const char *cond = config_str(cfg, "S3_CONDITIONAL_WRITES");
	struct s3_target *t;
	int64_t part = config_int(cfg, "MULTIPART_PART_SIZE");
	int64_t threshold = config_int(cfg, "MULTIPART_THRESHOLD");

	if (check_bucket_name(bucket, e) != 0)
		return NULL;
	if (part < (int64_t)S3_MIN_PART_SIZE || part > (int64_t)S3_MAX_PART_SIZE) {
		ierr_set(e, IERR_CONFIG,
		         "MULTIPART_PART_SIZE: %lld bytes is outside S3's part size limits "
		         "(5M..5G)",
		         (long long)part);
		return NULL;
	}
	if (region == NULL || *region == '\0')
		region = config_str(cfg, "AWS_DEFAULT_REGION");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ierr_set(e, IERR_INTERNAL, "s3://%s: libcurl initialisation failed", bucket);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		curl_global_cleanup();
		ierr_set(e, IERR_INTERNAL, "s3://%s: out of memory", bucket);
		return NULL;
	}
	t->base.ops = &s3_ops;
	snprintf(t->base.bucket, sizeof(t->base.bucket), "%s", bucket);
	if (s3_endpoint_init(&t->ep, config_str(cfg, "S3_ENDPOINT"),
	                     config_str(cfg, "S3_FORCE_PATH_STYLE"), bucket, region, e) != 0)
		goto fail_early;
	t->verify_tls = !config_bool(cfg, "S3_INSECURE_SKIP_VERIFY");
	snprintf(t->ca_file, sizeof(t->ca_file), "%s", config_str(cfg, "S3_CA_FILE"));
	if (t->ca_file[0] && access(t->ca_file, R_OK) != 0) {
		ierr_errno(e, errno, "S3_CA_FILE: %s", t->ca_file);
		e->code = IERR_CONFIG;
		goto fail_early;
	}
	t->checksum = strcmp(config_str(cfg, "S3_CHECKSUM"), "none") != 0;
	t->cond = strcmp(cond, "true") == 0    ? S3_COND_ON
	          : strcmp(cond, "false") == 0 ? S3_COND_OFF
	                                       : S3_COND_AUTO;
	t->part_size = (uint64_t)part;
	t->part_concurrency = (int)config_int(cfg, "UPLOAD_PART_CONCURRENCY");
	if (t->part_concurrency < 1)
		t->part_concurrency = 1;
	if (t->part_concurrency > S3_MAX_PART_CONCURRENCY)
		t->part_concurrency = S3_MAX_PART_CONCURRENCY;
	t->threshold = threshold < 0 ? 0 : (uint64_t)threshold;
	atomic_store(&t->sweep_due, true); /* a run before this one may have left some */
	t->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	t->low_speed_time_s = LOW_SPEED_TIME_S;
	t->creds = creds_provider_new(&co, e);
	if (t->creds == NULL)
		goto fail_early;
	if (s3_http_init(t, e) != 0) {
		s3_free(&t->base);
		return NULL;
	}
	if (!t->verify_tls)
		log_event(LOG_WARNING,
		          "S3_INSECURE_SKIP_VERIFY=true: TLS certificates of the S3 endpoint are "
		          "NOT verified",
		          "bucket", bucket, NULL);
	{
		struct buf host = {0}, path = {0};

		s3_location(&t->ep, bucket, NULL, &host, &path);
		log_event(LOG_INFO, "S3 target ready", "bucket", bucket, "endpoint",
		          buf_cstr(&host), "region", t->ep.region, "addressing",
		          t->ep.path_style ? "path" : "virtual-host", NULL);
		buf_free(&host);
		buf_free(&path);
	}
	return &t->base;
fail_early:
	creds_provider_free(t->creds);
	free(t);
	curl_global_cleanup();
	return NULL;
}
