/*
 * s3.c - the S3 upload protocol: PutObject, multipart with resume, exactly
 * once (the contract and the design are in s3.h; the request layer is
 * s3_http.c).
 *
 * A segment is reported uploaded only after the server confirmed the exact
 * bytes: Content-MD5 and x-amz-checksum-sha256 make S3 reject a corrupted
 * body, the signed payload hash is the SHA-256 recorded at seal time, the
 * returned ETag is checked, and the bytes read from the spool are hashed again
 * while they are sent. A key is written at most once: If-None-Match: * (or a
 * HEAD first), and an existing object is compared, never overwritten.
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

#include "failpoint.h"
#include "log.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 10000
#define LOW_SPEED_TIME_S   30
#define READ_CHUNK         (256 * 1024)
#define MIB                (1024ULL * 1024)

enum verdict { V_ABSENT, V_SAME, V_DIFFERENT };

/* ================================================================ helpers */

static bool cond_enabled(struct s3_target *t)
{
	return t->cond == S3_COND_ON || (t->cond == S3_COND_AUTO && !atomic_load(&t->cond_unsupported));
}

static int quarantine(struct put_result *res, struct ierr *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int quarantine(struct put_result *res, struct ierr *e, const char *fmt, ...)
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

static int transient(struct put_result *res, struct ierr *e, const char *code, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

static int transient(struct put_result *res, struct ierr *e, const char *code, const char *fmt,
		     ...)
{
	va_list ap;

	snprintf(res->code, sizeof(res->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = IERR_TRANSIENT;
	return -1;
}

static int conflict(struct s3_target *t, const struct segment *seg, const char *why,
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

	return s3_unhex(s, raw, 16) == 0;
}

/* SSE-KMS (and DSSE-KMS) ETags are not the MD5 of the content. */
static bool etag_not_md5(const struct s3_resp *r)
{
	return strncmp(r->sse, "aws:kms", 7) == 0;
}

static void hex_to_b64(const char *hex, size_t nbytes, char *out)
{
	unsigned char raw[64];

	if (nbytes > sizeof(raw) || s3_unhex(hex, raw, nbytes) != 0) {
		out[0] = '\0';
		return;
	}
	s3_base64(raw, nbytes, out);
}

static void u64str(char *out, size_t n, uint64_t v)
{
	snprintf(out, n, "%" PRIu64, v);
}

/* Read [off, off+len) of fd and feed it to every non-NULL context. Returns 0,
 * 1 when the file ended early, -1 with errno on a read error. */
static int digest_range(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *a, EVP_MD_CTX *b,
			EVP_MD_CTX *c)
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
	rc = digest_range(fd, 0, bytes, ctx, NULL, NULL);
	digest_final(ctx, md);
	EVP_MD_CTX_free(ctx);
	s3_hex(md, 32, out);
	return rc;
}

/* Part size for a new multipart upload: the configured one, raised (in MiB
 * steps) until the object fits in S3's 10000 parts. */
static uint64_t choose_part_size(const struct s3_target *t, uint64_t bytes)
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
static int get_compare(struct s3_target *t, const struct segment *seg, enum verdict *v,
		       struct put_result *res, struct ierr *e)
{
	struct get_hash g = {.sha = EVP_MD_CTX_new()};
	struct s3_req rq = {.method = "GET", .key = seg->key, .fd = -1, .sink = get_sink,
			    .sink_ctx = &g};
	struct s3_resp resp;
	unsigned char md[32];
	char hex[65];
	int rc;

	digest_init(g.sha, EVP_sha256());
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	digest_final(g.sha, md);
	EVP_MD_CTX_free(g.sha);
	if (rc == 0 && resp.status == 404) {
		*v = V_ABSENT;
	} else if (rc == 0 && resp.status == 200) {
		s3_hex(md, 32, hex);
		*v = (g.bytes == seg->bytes && strcmp(hex, seg->sha256) == 0) ? V_SAME : V_DIFFERENT;
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
		if (digest_range(fd, off, len, m, s, w) != 0)
			rc = -1;
		digest_final(m, md5s + 16 * i);
		digest_final(s, shas + 32 * i);
	}
	digest_final(w, whole_md);
	s3_hex(whole_md, 32, hex);
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
static int same_object(struct s3_target *t, const struct segment *seg, int fd,
		       uint64_t used_part_size, enum verdict *v, char *why, size_t whysz,
		       struct put_result *res, struct ierr *e)
{
	struct s3_resp resp;
	char etag[256], ours[64];
	int n;

	if (head_object(t, seg->key, &resp, res, e) != 0)
		return -1;
	if (resp.status == 404) {
		s3_resp_free(&resp);
		*v = V_ABSENT;
		return 0;
	}
	if (resp.status != 200) {
		int rc = s3_fail(t, &resp, seg->key, res->code, sizeof(res->code), e);

		s3_resp_free(&resp);
		return rc;
	}
	s3_resp_free(&resp);
	s3_etag_unquote(resp.etag, etag, sizeof(etag));
	if (resp.content_length >= 0 && (uint64_t)resp.content_length != seg->bytes) {
		snprintf(why, whysz, "its size is %lld bytes, the segment's %" PRIu64,
			 (long long)resp.content_length, seg->bytes);
		*v = V_DIFFERENT;
		return 0;
	}
	hex_to_b64(seg->sha256, 32, ours);
	if (resp.checksum_sha256[0] && strchr(resp.checksum_sha256, '-') == NULL) {
		*v = strcmp(resp.checksum_sha256, ours) == 0 ? V_SAME : V_DIFFERENT;
		snprintf(why, whysz, "its sha256 checksum is %.60s, the segment's %s",
			 resp.checksum_sha256, ours);
		return 0;
	}
	if (is_hex32(etag) && !etag_not_md5(&resp)) {
		*v = strcasecmp(etag, seg->md5) == 0 ? V_SAME : V_DIFFERENT;
		snprintf(why, whysz, "its ETag is %s, the segment's MD5 %s", etag, seg->md5);
		return 0;
	}
	n = multipart_count(resp.checksum_sha256[0] ? resp.checksum_sha256 : etag);
	if (n > 0 && fd >= 0) {
		/* Candidate part sizes: the one in use and the smallest whole MiB
		 * that gives n parts (what most clients pick). */
		uint64_t cand[3] = {used_part_size, choose_part_size(t, seg->bytes),
				    ((seg->bytes + (uint64_t)n - 1) / (uint64_t)n + MIB - 1) / MIB * MIB};

		for (int i = 0; i < 3; i++) {
			char le[64], lc[96];

			if (cand[i] == 0 || (seg->bytes + cand[i] - 1) / cand[i] != (uint64_t)n)
				continue;
			if (i > 0 && (cand[i] == cand[0] || (i == 2 && cand[2] == cand[1])))
				continue;
			if (local_multipart(fd, seg, cand[i], le, sizeof(le), lc, sizeof(lc)) != 0)
				break;
			if ((resp.checksum_sha256[0] && strcmp(resp.checksum_sha256, lc) == 0) ||
			    (!etag_not_md5(&resp) && strcasecmp(etag, le) == 0)) {
				*v = V_SAME;
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
	enum verdict v;
	char why[512];

	if (same_object(t, seg, fd, part_size, &v, why, sizeof(why), res, e) != 0)
		return -1;
	if (v == V_ABSENT)
		return transient(res, e, "ConditionalRequestConflict",
				 "S3 s3://%s/%s: the write was refused but no object is there "
				 "(a concurrent write?); retrying",
				 t->base.bucket, seg->key);
	if (v == V_DIFFERENT)
		return conflict(t, seg, why, res, e);
	res->already_present = true;
	snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
	return 0;
}

/* ================================================================ PutObject */

static int put_single(struct s3_target *t, const struct segment *seg, int fd,
		      struct put_result *res, struct ierr *e)
{
	char md5_b64[32], sha_b64[64];
	struct sigv4_kv hdr[5];
	size_t nh = 0;
	struct s3_req rq = {.method = "PUT", .key = seg->key, .fd = fd, .file_len = seg->bytes,
			    .payload_hash = seg->sha256};
	struct s3_resp resp;
	unsigned char md[32];
	char sent[65];
	bool cond = cond_enabled(t);
	int rc;

	if (!cond) {
		enum verdict v;
		char why[512];

		if (same_object(t, seg, fd, 0, &v, why, sizeof(why), res, e) != 0)
			return -1;
		if (v == V_SAME) {
			res->already_present = true;
			snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
			return 0;
		}
		if (v == V_DIFFERENT)
			return conflict(t, seg, why, res, e);
	}
	hex_to_b64(seg->md5, 16, md5_b64);
	hex_to_b64(seg->sha256, 32, sha_b64);
	if (md5_b64[0] == '\0' || sha_b64[0] == '\0')
		return quarantine(res, e, "spool row of %s has malformed checksums", seg->path);
	hdr[nh++] = (struct sigv4_kv){"content-md5", md5_b64};
	hdr[nh++] = (struct sigv4_kv){"content-type", "application/octet-stream"};
	if (t->checksum)
		hdr[nh++] = (struct sigv4_kv){"x-amz-checksum-sha256", sha_b64};
	if (cond)
		hdr[nh++] = (struct sigv4_kv){"if-none-match", "*"};
	rq.headers = hdr;
	rq.nheaders = nh;
	rq.file_sha = EVP_MD_CTX_new();
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	digest_final(rq.file_sha, md);
	EVP_MD_CTX_free(rq.file_sha);
	s3_hex(md, 32, sent);
	if (resp.file_short || (resp.file_read == seg->bytes && strcmp(sent, seg->sha256) != 0)) {
		s3_resp_free(&resp);
		return quarantine(res, e,
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
		if (!etag_is_md5(etag, seg->md5) && !etag_not_md5(&resp)) {
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
		if (resp.file_read != seg->bytes) {
			int frc = file_sha256_hex(fd, seg->bytes, sent);

			if (frc > 0 || (frc == 0 && strcmp(sent, seg->sha256) != 0))
				return quarantine(res, e,
						  "spool file %s no longer matches its recorded "
						  "sha256 %.16s... (%s from s3://%s/%s): quarantined",
						  seg->path, seg->sha256, res->code, t->base.bucket,
						  seg->key);
		}
		e->code = IERR_TRANSIENT; /* corrupted in transit: send again */
	}
	return -1;
}

/* ================================================================ multipart */

struct mpu {
	struct s3_target *t;
	struct spool *sp;
	const struct segment *seg;
	int fd;
	char upload_id[512];
	uint64_t part_size;
	int nparts;
	unsigned char *md5s; /* 16 bytes per part */
	unsigned char *shas; /* 32 bytes per part */
	char (*etags)[72];   /* as returned by UploadPart (quotes stripped) */
	struct spool_part *done;
	int ndone;
};

static void mpu_free(struct mpu *m)
{
	free(m->md5s);
	free(m->shas);
	free(m->etags);
	free(m->done);
	m->md5s = m->shas = NULL;
	m->etags = NULL;
	m->done = NULL;
	m->ndone = 0;
}

static int abort_upload(struct s3_target *t, const char *key, const char *upload_id)
{
	struct sigv4_kv q[] = {{"uploadId", upload_id}};
	struct s3_req rq = {.method = "DELETE", .key = key, .query = q, .nquery = 1, .fd = -1};
	struct s3_resp resp;
	struct ierr e;
	char code[64];
	int rc = s3_request(t, &rq, &resp, code, sizeof(code), &e);

	if (rc == 0 && resp.status != 204 && resp.status != 200 && resp.status != 404)
		rc = s3_fail(t, &resp, key, code, sizeof(code), &e);
	s3_resp_free(&resp);
	if (rc != 0)
		log_event(LOG_WARNING, "could not abort a multipart upload", "bucket",
			  t->base.bucket, "key", key, "error", e.msg, NULL);
	else
		log_event(LOG_INFO, "multipart upload aborted", "bucket", t->base.bucket, "key", key,
			  NULL);
	return rc;
}

/* Forget the current upload (spool first, so a crash never resumes an
 * aborted upload), then abort it on the server. */
static void abandon(struct mpu *m)
{
	struct ierr e;

	if (m->upload_id[0] == '\0')
		return;
	if (spool_set_upload_id(m->sp, m->seg->id, "", &e) != 0)
		log_event(LOG_WARNING, "could not clear the upload id", "key", m->seg->key, "error",
			  e.msg, NULL);
	abort_upload(m->t, m->seg->key, m->upload_id);
	m->upload_id[0] = '\0';
}

/*
 * Abort in-progress uploads of exactly this key except keep_id: left by a
 * crash between CreateMultipartUpload and recording its id, or by an older
 * uploader. Best effort: a missing s3:ListBucketMultipartUploads permission
 * only costs a warning.
 */
static void abort_stale_uploads(struct s3_target *t, const char *key, const char *keep_id)
{
	char key_marker[1024] = "", id_marker[512] = "";

	for (int page = 0; page < 20; page++) {
		struct sigv4_kv q[5] = {{"uploads", NULL}, {"prefix", key}, {"max-uploads", "100"}};
		struct s3_req rq = {.method = "GET", .query = q, .nquery = 3, .fd = -1};
		struct s3_resp resp;
		struct ierr e;
		char code[64], trunc[16];
		size_t from = 0, s, end;

		if (key_marker[0]) {
			q[3] = (struct sigv4_kv){"key-marker", key_marker};
			q[4] = (struct sigv4_kv){"upload-id-marker", id_marker};
			rq.nquery = 5;
		}
		if (s3_request(t, &rq, &resp, code, sizeof(code), &e) != 0 ||
		    (resp.status != 200 && s3_fail(t, &resp, key, code, sizeof(code), &e) != 0)) {
			log_event(LOG_WARNING, "could not list multipart uploads", "bucket",
				  t->base.bucket, "key", key, "error", e.msg, NULL);
			s3_resp_free(&resp);
			return;
		}
		while (s3_xml_element(resp.body.data, resp.body.len, "Upload", &s, &end, &from)) {
			char k[1024], id[512];

			if (s3_xml_text(resp.body.data + s, end - s, "Key", k, sizeof(k), NULL) &&
			    s3_xml_text(resp.body.data + s, end - s, "UploadId", id, sizeof(id),
					NULL) &&
			    strcmp(k, key) == 0 && strcmp(id, keep_id) != 0) {
				log_event(LOG_INFO, "aborting a stale multipart upload", "bucket",
					  t->base.bucket, "key", key, NULL);
				abort_upload(t, key, id);
			}
		}
		s3_xml_text(resp.body.data, resp.body.len, "IsTruncated", trunc, sizeof(trunc),
			    NULL);
		s3_xml_text(resp.body.data, resp.body.len, "NextKeyMarker", key_marker,
			    sizeof(key_marker), NULL);
		s3_xml_text(resp.body.data, resp.body.len, "NextUploadIdMarker", id_marker,
			    sizeof(id_marker), NULL);
		s3_resp_free(&resp);
		if (strcmp(trunc, "true") != 0 || key_marker[0] == '\0')
			return;
	}
}

static int create_upload(struct mpu *m, struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	struct sigv4_kv q[] = {{"uploads", NULL}};
	struct sigv4_kv hdr[] = {{"content-type", "application/octet-stream"},
				 {"x-amz-checksum-algorithm", "SHA256"}};
	struct s3_req rq = {.method = "POST", .key = m->seg->key, .query = q, .nquery = 1,
			    .headers = hdr, .nheaders = t->checksum ? 2 : 1, .fd = -1};
	struct s3_resp resp;
	int rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);

	if (rc == 0 && resp.status != 200)
		rc = s3_fail(t, &resp, m->seg->key, res->code, sizeof(res->code), e);
	if (rc == 0 && (!s3_xml_text(resp.body.data, resp.body.len, "UploadId", m->upload_id,
				     sizeof(m->upload_id), NULL) ||
			m->upload_id[0] == '\0')) {
		snprintf(res->code, sizeof(res->code), "BadReply");
		rc = ierr_set(e, IERR_TRANSIENT,
			      "S3 CreateMultipartUpload for s3://%s/%s: no UploadId in the answer",
			      t->base.bucket, m->seg->key);
	}
	s3_resp_free(&resp);
	if (rc != 0)
		return -1;
	if (spool_set_upload_id(m->sp, m->seg->id, m->upload_id, e) != 0) {
		abort_upload(t, m->seg->key, m->upload_id);
		m->upload_id[0] = '\0';
		snprintf(res->code, sizeof(res->code), "SpoolError");
		e->code = IERR_TRANSIENT;
		return -1;
	}
	log_event(LOG_DEBUG, "multipart upload created", "bucket", t->base.bucket, "key",
		  m->seg->key, NULL);
	return 0;
}

/* Result of one part: 0 sent, -1 error (*e), 1 NoSuchUpload, 2 file changed. */
static int upload_part(struct mpu *m, int pn, uint64_t off, uint64_t len,
		       struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	char pnum[16], md5_b64[32], sha_b64[64], sha_hex[65], md5_hex[33], sent[65], sz[32];
	struct sigv4_kv q[] = {{"partNumber", pnum}, {"uploadId", m->upload_id}};
	struct sigv4_kv hdr[3];
	struct s3_req rq = {.method = "PUT", .key = m->seg->key, .query = q, .nquery = 2,
			    .headers = hdr, .fd = m->fd, .file_off = off, .file_len = len,
			    .payload_hash = sha_hex};
	struct s3_resp resp;
	unsigned char md[32];
	int rc;

	snprintf(pnum, sizeof(pnum), "%d", pn);
	s3_base64(m->md5s + 16 * (pn - 1), 16, md5_b64);
	s3_base64(m->shas + 32 * (pn - 1), 32, sha_b64);
	s3_hex(m->shas + 32 * (pn - 1), 32, sha_hex);
	s3_hex(m->md5s + 16 * (pn - 1), 16, md5_hex);
	hdr[0] = (struct sigv4_kv){"content-md5", md5_b64};
	rq.nheaders = 1;
	if (t->checksum)
		hdr[rq.nheaders++] = (struct sigv4_kv){"x-amz-checksum-sha256", sha_b64};
	rq.file_sha = EVP_MD_CTX_new();
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	digest_final(rq.file_sha, md);
	EVP_MD_CTX_free(rq.file_sha);
	s3_hex(md, 32, sent);
	if (resp.file_short || (resp.file_read == len && strcmp(sent, sha_hex) != 0)) {
		s3_resp_free(&resp);
		return 2;
	}
	if (rc != 0) {
		s3_resp_free(&resp);
		return -1;
	}
	if (resp.status != 200) {
		rc = s3_fail(t, &resp, m->seg->key, res->code, sizeof(res->code), e);
		s3_resp_free(&resp);
		if (strcmp(res->code, "NoSuchUpload") == 0)
			return 1;
		if (strcmp(res->code, "BadDigest") == 0 ||
		    strcmp(res->code, "XAmzContentSHA256Mismatch") == 0)
			e->code = IERR_TRANSIENT; /* our bytes were verified while sent */
		ierr_prefix(e, "part %d", pn);
		return -1;
	}
	s3_etag_unquote(resp.etag, m->etags[pn - 1], sizeof(m->etags[pn - 1]));
	s3_resp_free(&resp);
	if (strcasecmp(m->etags[pn - 1], md5_hex) != 0 && !etag_not_md5(&resp)) {
		snprintf(res->code, sizeof(res->code), "ETagMismatch");
		return ierr_set(e, IERR_TRANSIENT,
				"S3 UploadPart %d for s3://%s/%s: ETag %.64s is not the part's MD5 %s",
				pn, t->base.bucket, m->seg->key, m->etags[pn - 1], md5_hex);
	}
	if (spool_part_done(m->sp, m->seg->id, pn, len, m->etags[pn - 1], e) != 0) {
		snprintf(res->code, sizeof(res->code), "SpoolError");
		e->code = IERR_TRANSIENT;
		return -1;
	}
	FAILPOINT("upload.s3.after_part");
	snprintf(pnum, sizeof(pnum), "%d", pn);
	u64str(sz, sizeof(sz), len);
	{
		char of[16];

		snprintf(of, sizeof(of), "%d", m->nparts);
		log_event(LOG_DEBUG, "part uploaded", "bucket", t->base.bucket, "key", m->seg->key,
			  "part", pnum, "of", of, "bytes", sz, NULL);
	}
	return 0;
}

/* 0 done, -1 error, 1 start over (the upload is gone or unusable). */
static int complete_upload(struct mpu *m, struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	struct buf body = {0};
	char sha_hex[65], md5_b64[32], expect[64], etag[256], cks[96];
	unsigned char md[32];
	struct sigv4_kv q[] = {{"uploadId", m->upload_id}};
	struct sigv4_kv hdr[3];
	struct s3_req rq = {.method = "POST", .key = m->seg->key, .query = q, .nquery = 1,
			    .headers = hdr, .fd = -1, .payload_hash = sha_hex};
	struct s3_resp resp;
	size_t from = 0, s, end;
	bool cond = cond_enabled(t);
	int rc;

	buf_puts(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < m->nparts; i++) {
		buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag>", i + 1,
			   m->etags[i]);
		if (t->checksum) {
			s3_base64(m->shas + 32 * i, 32, cks);
			buf_printf(&body, "<ChecksumSHA256>%s</ChecksumSHA256>", cks);
		}
		buf_puts(&body, "</Part>");
	}
	buf_puts(&body, "</CompleteMultipartUpload>");
	EVP_Digest(body.data, body.len, md, NULL, EVP_sha256(), NULL);
	s3_hex(md, 32, sha_hex);
	EVP_Digest(body.data, body.len, md, NULL, EVP_md5(), NULL);
	s3_base64(md, 16, md5_b64);
	hdr[0] = (struct sigv4_kv){"content-type", "application/xml"};
	hdr[1] = (struct sigv4_kv){"content-md5", md5_b64};
	hdr[2] = (struct sigv4_kv){"if-none-match", "*"};
	rq.nheaders = cond ? 3 : 2;
	rq.body = body.data;
	rq.body_len = body.len;
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	buf_free(&body);
	if (rc != 0)
		return -1;
	/* S3 may answer 200 and put an <Error> in the body (it keeps the
	 * connection alive with whitespace while it assembles the object). */
	if (resp.status != 200 ||
	    s3_xml_element(resp.body.data, resp.body.len, "Error", &s, &end, &from)) {
		rc = s3_fail(t, &resp, m->seg->key, res->code, sizeof(res->code), e);
		s3_resp_free(&resp);
		if (resp.status == 412)
			return 2;
		if (resp.status == 501 && cond && t->cond == S3_COND_AUTO) {
			atomic_store(&t->cond_unsupported, true);
			log_event(LOG_WARNING,
				  "the S3 server does not support If-None-Match on "
				  "CompleteMultipartUpload; checking with HEAD first from now on",
				  "bucket", t->base.bucket, NULL);
			return 3;
		}
		if (strcmp(res->code, "NoSuchUpload") == 0 ||
		    strcmp(res->code, "ConditionalRequestConflict") == 0 ||
		    strcmp(res->code, "InvalidPart") == 0 ||
		    strcmp(res->code, "InvalidPartOrder") == 0 ||
		    strcmp(res->code, "EntityTooSmall") == 0)
			return 1;
		return rc;
	}
	s3_xml_text(resp.body.data, resp.body.len, "ETag", etag, sizeof(etag), NULL);
	if (etag[0] == '\0')
		snprintf(etag, sizeof(etag), "%s", resp.etag);
	s3_etag_unquote(etag, res->etag, sizeof(res->etag));
	s3_resp_free(&resp);
	s3_multipart_etag(m->md5s, m->nparts, expect, sizeof(expect));
	if (strcasecmp(res->etag, expect) != 0 && !etag_not_md5(&resp)) {
		/* Not the ETag S3 computes from our parts: look at the object. */
		char why[512];
		enum verdict v;

		if (same_object(t, m->seg, m->fd, m->part_size, &v, why, sizeof(why), res, e) != 0)
			return -1;
		if (v != V_SAME) {
			snprintf(res->code, sizeof(res->code), "ETagMismatch");
			return ierr_set(e, IERR_PERMANENT,
					"S3 CompleteMultipartUpload for s3://%s/%s: ETag %.64s, "
					"expected %s, and the object does not match: %s",
					t->base.bucket, m->seg->key, res->etag, expect, why);
		}
	}
	return 0;
}

/* Load recorded parts and decide the part layout; -1: layout unusable. */
static int mpu_layout(struct mpu *m, struct ierr *e)
{
	const struct segment *seg = m->seg;

	mpu_free(m);
	m->part_size = choose_part_size(m->t, seg->bytes);
	if (m->upload_id[0]) {
		m->ndone = spool_parts_list(m->sp, seg->id, &m->done, e);
		if (m->ndone < 0) {
			m->ndone = 0;
			return -2;
		}
		if (m->ndone > 0 && m->done[0].part_number == 1)
			m->part_size = m->done[0].size; /* keep the layout of the upload */
	}
	if (m->part_size == 0)
		return -1;
	m->nparts = (int)((seg->bytes + m->part_size - 1) / m->part_size);
	if (m->nparts < 1 || m->nparts > S3_MAX_PARTS ||
	    (m->nparts > 1 && m->part_size < S3_MIN_PART_SIZE))
		return -1;
	for (int i = 0; i < m->ndone; i++) {
		int pn = m->done[i].part_number;
		uint64_t off = (uint64_t)(pn - 1) * m->part_size;

		if (pn < 1 || pn > m->nparts ||
		    m->done[i].size != (seg->bytes - off < m->part_size ? seg->bytes - off
									 : m->part_size))
			return -1;
	}
	m->md5s = calloc((size_t)m->nparts, 16);
	m->shas = calloc((size_t)m->nparts, 32);
	m->etags = calloc((size_t)m->nparts, sizeof(*m->etags));
	if (!m->md5s || !m->shas || !m->etags) {
		ierr_set(e, IERR_TRANSIENT, "multipart s3://%s/%s: out of memory",
			 m->t->base.bucket, seg->key);
		return -2;
	}
	return 0;
}

static const struct spool_part *find_done(const struct mpu *m, int pn)
{
	for (int i = 0; i < m->ndone; i++) {
		if (m->done[i].part_number == pn)
			return &m->done[i];
	}
	return NULL;
}

/*
 * Send every part not yet recorded, verifying the whole file on the way.
 * 0 all parts there, -1 error, 1 start over, 2 quarantine.
 */
static int send_parts(struct mpu *m, struct put_result *res, struct ierr *e)
{
	const struct segment *seg = m->seg;
	EVP_MD_CTX *whole = EVP_MD_CTX_new(), *pm = EVP_MD_CTX_new(), *ps = EVP_MD_CTX_new();
	unsigned char md[32];
	char hex[65];
	bool stale_part = false;
	int rc = 0, skipped = 0;

	digest_init(whole, EVP_sha256());
	for (int pn = 1; pn <= m->nparts && rc == 0; pn++) {
		uint64_t off = (uint64_t)(pn - 1) * m->part_size;
		uint64_t len = seg->bytes - off < m->part_size ? seg->bytes - off : m->part_size;
		const struct spool_part *d = find_done(m, pn);
		int drc;

		if (ingesta_stop_requested) {
			rc = transient(res, e, "Interrupted",
				       "multipart s3://%s/%s: interrupted by a stop request "
				       "(progress kept)",
				       m->t->base.bucket, seg->key);
			break;
		}
		digest_init(pm, EVP_md5());
		digest_init(ps, EVP_sha256());
		drc = digest_range(m->fd, off, len, pm, ps, whole);
		digest_final(pm, m->md5s + 16 * (pn - 1));
		digest_final(ps, m->shas + 32 * (pn - 1));
		if (drc > 0) {
			rc = 2;
			break;
		}
		if (drc < 0) {
			rc = transient(res, e, "EIO", "spool file %s: read: %s", seg->path,
				       strerror(errno));
			break;
		}
		if (d != NULL) {
			char md5_hex[33];

			s3_etag_unquote(d->etag, m->etags[pn - 1], sizeof(m->etags[pn - 1]));
			s3_hex(m->md5s + 16 * (pn - 1), 16, md5_hex);
			if (is_hex32(m->etags[pn - 1]) && strcasecmp(m->etags[pn - 1], md5_hex) != 0)
				stale_part = true;
			skipped++;
			continue; /* confirmed by the server earlier: never sent again */
		}
		rc = upload_part(m, pn, off, len, res, e);
	}
	if (rc == 0 || rc == 2) {
		/* A part already recorded was not read by this pass only if we
		 * stopped early; when all were read, check the whole file. */
		digest_final(whole, md);
		s3_hex(md, 32, hex);
		if (rc == 0 && strcmp(hex, seg->sha256) != 0)
			rc = 2;
		if (rc == 0 && stale_part) {
			log_event(LOG_WARNING, "recorded part does not match the file; starting over",
				  "key", seg->key, NULL);
			rc = 1;
		}
	}
	if (skipped > 0 && rc == 0) {
		char n[16];

		snprintf(n, sizeof(n), "%d", skipped);
		log_event(LOG_INFO, "multipart upload resumed", "bucket", m->t->base.bucket, "key",
			  seg->key, "parts_already_done", n, NULL);
	}
	EVP_MD_CTX_free(whole);
	EVP_MD_CTX_free(pm);
	EVP_MD_CTX_free(ps);
	return rc;
}

static int put_multipart(struct s3_target *t, struct spool *sp, const struct segment *seg,
			 int fd, struct put_result *res, struct ierr *e)
{
	struct mpu m = {.t = t, .sp = sp, .seg = seg, .fd = fd};
	int rc = -1;

	snprintf(m.upload_id, sizeof(m.upload_id), "%s", seg->upload_id);
	for (int round = 0; round < 3; round++) {
		int lrc = mpu_layout(&m, e);

		if (lrc == -2) {
			snprintf(res->code, sizeof(res->code), "SpoolError");
			e->code = IERR_TRANSIENT;
			break;
		}
		if (lrc == -1) {
			log_event(LOG_WARNING, "recorded multipart progress unusable; starting over",
				  "key", seg->key, NULL);
			abandon(&m);
			continue;
		}
		abort_stale_uploads(t, seg->key, m.upload_id);
		/* One HEAD before sending many megabytes, whatever the write mode:
		 * an object already there (an earlier run completed it) is settled
		 * now instead of after every part was sent again. Complete still
		 * carries If-None-Match, which is what makes the write atomic. */
		{
			enum verdict v;
			char why[512];

			if (same_object(t, seg, fd, m.part_size, &v, why, sizeof(why), res, e) != 0)
				break;
			if (v != V_ABSENT) {
				abandon(&m);
				if (v == V_DIFFERENT) {
					rc = conflict(t, seg, why, res, e);
					break;
				}
				res->already_present = true;
				snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
				rc = 0;
				break;
			}
		}
		if (m.upload_id[0] == '\0') {
			if (create_upload(&m, res, e) != 0)
				break;
			mpu_free(&m); /* nothing recorded for a fresh upload */
			if (mpu_layout(&m, e) != 0) {
				snprintf(res->code, sizeof(res->code), "SpoolError");
				e->code = IERR_TRANSIENT;
				break;
			}
		}
		rc = send_parts(&m, res, e);
		if (rc == 2) {
			abandon(&m);
			rc = quarantine(res, e,
					"spool file %s no longer matches its recorded sha256 "
					"%.16s... (multipart upload to s3://%s/%s abandoned): "
					"quarantined",
					seg->path, seg->sha256, t->base.bucket, seg->key);
			break;
		}
		if (rc == 1) {
			/* NoSuchUpload: expired, aborted, or completed by a run that
			 * crashed before recording it. */
			enum verdict v;
			char why[512];

			if (same_object(t, seg, fd, m.part_size, &v, why, sizeof(why), res, e) != 0) {
				rc = -1;
				break;
			}
			if (v == V_SAME) {
				m.upload_id[0] = '\0';
				res->already_present = true;
				snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
				rc = 0;
				break;
			}
			if (v == V_DIFFERENT) {
				rc = conflict(t, seg, why, res, e);
				break;
			}
			abandon(&m);
			rc = -1;
			continue;
		}
		if (rc != 0)
			break;
		rc = complete_upload(&m, res, e);
		if (rc == 2 || rc == 3) { /* 412 or 501: the key may exist */
			enum verdict v;
			char why[512];

			if (same_object(t, seg, fd, m.part_size, &v, why, sizeof(why), res, e) != 0) {
				rc = -1;
				break;
			}
			if (v == V_ABSENT && rc == 3) {
				rc = complete_upload(&m, res, e); /* now without If-None-Match */
				if (rc != 0 && rc != -1)
					rc = transient(res, e, "CompleteFailed",
						       "CompleteMultipartUpload s3://%s/%s failed",
						       t->base.bucket, seg->key);
				break;
			}
			abandon(&m);
			if (v == V_DIFFERENT) {
				rc = conflict(t, seg, why, res, e);
			} else if (v == V_SAME) {
				res->already_present = true;
				snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
				rc = 0;
			} else {
				rc = transient(res, e, "ConditionalRequestConflict",
					       "S3 s3://%s/%s: Complete refused but no object is "
					       "there; starting over",
					       t->base.bucket, seg->key);
			}
			break;
		}
		if (rc == 1) {
			enum verdict v;
			char why[512];

			if (same_object(t, seg, fd, m.part_size, &v, why, sizeof(why), res, e) != 0) {
				rc = -1;
				break;
			}
			if (v == V_SAME) {
				res->already_present = true;
				snprintf(res->etag, sizeof(res->etag), "%s", seg->md5);
				rc = 0;
				break;
			}
			abandon(&m);
			if (v == V_DIFFERENT) {
				rc = conflict(t, seg, why, res, e);
				break;
			}
			rc = -1;
			continue;
		}
		break;
	}
	if (rc == 1 || rc == 2 || rc == 3)
		rc = transient(res, e, "MultipartRestart",
			       "multipart upload to s3://%s/%s had to start over too often",
			       t->base.bucket, seg->key);
	mpu_free(&m);
	return rc;
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
			return transient(res, e, "EIO", "spool file %s: %s", seg->path,
					 strerror(err));
		return quarantine(res, e, "spool file %s: %s: quarantined", seg->path,
				  strerror(err));
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != seg->bytes) {
		close(fd);
		return quarantine(res, e,
				  "spool file %s is %lld bytes, %" PRIu64 " recorded: quarantined",
				  seg->path, (long long)st.st_size, seg->bytes);
	}
	if (seg->upload_id[0] || seg->bytes > t->threshold || seg->bytes > S3_MAX_PUT_SIZE)
		rc = put_multipart(t, sp, seg, fd, res, e);
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
	struct s3_req rq = {.method = "PUT", .key = key, .headers = hdr, .nheaders = 2, .fd = -1,
			    .body = data ? data : "", .body_len = n, .payload_hash = sha_hex};
	struct s3_resp resp;
	int rc;

	memset(res, 0, sizeof(*res));
	EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL);
	s3_hex(md, 32, sha_hex);
	EVP_Digest(data, n, md, NULL, EVP_md5(), NULL);
	s3_hex(md, 16, md5_hex);
	s3_base64(md, 16, md5_b64);
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	if (rc == 0 && resp.status != 200)
		rc = s3_fail(t, &resp, key, res->code, sizeof(res->code), e);
	if (rc == 0) {
		s3_etag_unquote(resp.etag, res->etag, sizeof(res->etag));
		if (strcasecmp(res->etag, md5_hex) != 0 && !etag_not_md5(&resp)) {
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
    .free = s3_free,
};

/* Keys the credentials chain may ask for: the declared ones come from the
 * config (file, environment, flags); the few standard AWS variables ingesta
 * does not declare come from the environment. */
static const char *creds_lookup(const char *key, void *ctx)
{
	static const char *const declared[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_PROFILE",
	    "AWS_SHARED_CREDENTIALS_FILE",
	    "AWS_CONFIG_FILE",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	    "AWS_EC2_METADATA_DISABLED",
	    "AWS_EC2_METADATA_V1_FALLBACK",
	    NULL,
	};
	const struct config *cfg = ctx;

	for (int i = 0; declared[i]; i++) {
		if (strcmp(declared[i], key) == 0)
			return config_str(cfg, key);
	}
	return getenv(key);
}

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
	struct creds_options co = {.lookup = creds_lookup, .lookup_ctx = (void *)cfg};
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
	t->threshold = threshold < 0 ? 0 : (uint64_t)threshold;
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
