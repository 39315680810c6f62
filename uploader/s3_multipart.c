/*
 * s3_multipart.c - multipart uploads that survive a crash (see s3.h).
 *
 * Order of writes, so that a `kill -9` anywhere loses at most the part in
 * flight: CreateMultipartUpload, then its id into the spool
 * (spool_set_upload_id) before any part is sent; each part recorded
 * (spool_part_done) only after the server confirmed it with the part's MD5 as
 * ETag; CompleteMultipartUpload (If-None-Match: *) last. A restart reads the
 * id and the finished parts back (spool_parts_list) and sends only the others,
 * with the part size of the recorded parts. Every part is read twice from the
 * spool file: once to digest it (Content-MD5, x-amz-checksum-sha256, the
 * signed payload hash, and the whole-file SHA-256 that must equal the
 * recorded one before Complete), once to send it. The send is not hashed
 * again: the server refuses bytes that differ from those digests, and such a
 * refusal re-reads the part to tell a changed file (quarantine) from a
 * corrupted transfer (retry). Memory: 48 bytes of digests per part plus a
 * read buffer, whatever the object size.
 *
 * An upload that cannot be used any more is forgotten in the spool first and
 * aborted on the server second (a crash in between leaves an upload that the
 * next attempt's ListMultipartUploads sweep aborts). NoSuchUpload means the
 * upload expired, was aborted, or was completed by a run that crashed before
 * recording it: the object is compared first, then the upload starts over.
 */
#include "s3.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "failpoint.h"
#include "hex.h"
#include "log.h"
#include "util.h"

static void digest_init(EVP_MD_CTX *ctx, const EVP_MD *md)
{
	EVP_DigestInit_ex(ctx, md, NULL);
}

static void digest_final(EVP_MD_CTX *ctx, unsigned char *out)
{
	unsigned int len = 0;

	EVP_DigestFinal_ex(ctx, out, &len);
}

static bool is_hex32(const char *s)
{
	unsigned char raw[16];

	return hex_decode(s, raw, 16) == 0;
}

/*
 * What one step of a multipart upload tells s3_put_multipart() to do next.
 * Only MPU_OK and MPU_FAILED ever leave this file (as 0 and -1).
 */
enum mpu_result {
	MPU_FAILED = -1,        /* error, *e and res->code filled */
	MPU_OK = 0,             /* the step is done */
	MPU_START_OVER = 1,     /* the upload is gone or unusable (NoSuchUpload, InvalidPart...) */
	MPU_FILE_CHANGED = 2,   /* the spool file no longer matches its digests: quarantine */
	MPU_KEY_EXISTS = 3,     /* Complete answered 412: the key is already written */
	MPU_NO_CONDITIONAL = 4, /* Complete answered 501 to If-None-Match: HEAD, then plain */
};

/* What mpu_layout() found in the recorded progress. */
enum mpu_layout_result {
	LAYOUT_SPOOL_ERROR = -2, /* the spool could not be read (or no memory), *e filled */
	LAYOUT_UNUSABLE = -1,    /* recorded parts do not fit the object: start over */
	LAYOUT_OK = 0,
};

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
	pthread_mutex_t spool_lock; /* m->sp from the part senders (one connection) */
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

/* AbortMultipartUpload; a transient failure is tried twice more (100, 200
 * ms): an upload left open holds its parts' storage until a lifecycle rule
 * removes it. */
static int abort_upload(struct s3_target *t, const char *key, const char *upload_id)
{
	struct sigv4_kv q[] = {{"uploadId", upload_id}};
	struct s3_req rq = {.method = "DELETE", .key = key, .query = q, .nquery = 1, .fd = -1};
	struct ierr e;
	char code[64];
	int rc = -1;

	for (int i = 0; i < 3 && rc != 0; i++) {
		struct s3_resp resp;

		if (i > 0) {
			if (e.code != IERR_TRANSIENT || ingesta_stop_requested)
				break;
			usleep(100000u << (i - 1));
		}
		rc = s3_request(t, &rq, &resp, code, sizeof(code), &e);
		if (rc == 0 && resp.status != 204 && resp.status != 200 && resp.status != 404)
			rc = s3_fail(t, &resp, key, code, sizeof(code), &e);
		s3_resp_free(&resp);
	}
	if (rc != 0)
		log_event(LOG_WARNING, "could not abort a multipart upload", "bucket",
		          t->base.bucket, "key", key, "error", e.msg, NULL);
	else
		log_event(LOG_INFO, "multipart upload aborted", "bucket", t->base.bucket, "key",
		          key, NULL);
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
 * Call fn(t, key, upload_id, ctx) for each in-progress upload under prefix
 * (NULL: the whole bucket), up to pages pages of 50 (a page of 50 fits
 * S3_BODY_CAP). -1 when a listing
 * failed (logged), else 0.
 */
static int each_upload(struct s3_target *t, const char *prefix, int pages,
                       void (*fn)(struct s3_target *, const char *, const char *, void *),
                       void *ctx)
{
	char key_marker[1024] = "", id_marker[512] = "";

	for (int page = 0; page < pages; page++) {
		struct sigv4_kv q[5] = {{"uploads", NULL}, {"max-uploads", "50"}};
		struct s3_req rq = {.method = "GET", .query = q, .nquery = 2, .fd = -1};
		struct s3_resp resp;
		struct ierr e;
		char code[64], trunc[16] = "";
		size_t from = 0, s, end;

		if (prefix)
			q[rq.nquery++] = (struct sigv4_kv){"prefix", prefix};
		if (key_marker[0]) {
			q[rq.nquery++] = (struct sigv4_kv){"key-marker", key_marker};
			q[rq.nquery++] = (struct sigv4_kv){"upload-id-marker", id_marker};
		}
		if (s3_request(t, &rq, &resp, code, sizeof(code), &e) != 0 ||
		    (resp.status != 200 &&
		     s3_fail(t, &resp, prefix ? prefix : "", code, sizeof(code), &e) != 0)) {
			log_event(LOG_WARNING, "could not list multipart uploads", "bucket",
			          t->base.bucket, "key", prefix ? prefix : "", "error", e.msg,
			          NULL);
			s3_resp_free(&resp);
			return -1;
		}
		while (s3_xml_element(resp.body.data, resp.body.len, "Upload", &s, &end, &from)) {
			char k[1024], id[512];

			if (s3_xml_text(resp.body.data + s, end - s, "Key", k, sizeof(k), NULL) &&
			    s3_xml_text(resp.body.data + s, end - s, "UploadId", id, sizeof(id),
			                NULL))
				fn(t, k, id, ctx);
		}
		s3_xml_text(resp.body.data, resp.body.len, "IsTruncated", trunc, sizeof(trunc),
		            NULL);
		s3_xml_text(resp.body.data, resp.body.len, "NextKeyMarker", key_marker,
		            sizeof(key_marker), NULL);
		s3_xml_text(resp.body.data, resp.body.len, "NextUploadIdMarker", id_marker,
		            sizeof(id_marker), NULL);
		s3_resp_free(&resp);
		if (strcmp(trunc, "true") != 0 || key_marker[0] == '\0')
			return 0;
	}
	return 0;
}

struct stale_ctx {
	const char *key, *keep_id;
	bool abort_failed;
};

static void abort_if_stale(struct s3_target *t, const char *k, const char *id, void *p)
{
	struct stale_ctx *c = p;

	if (strcmp(k, c->key) != 0 || strcmp(id, c->keep_id) == 0)
		return;
	log_event(LOG_INFO, "aborting a stale multipart upload", "bucket", t->base.bucket, "key", k,
	          NULL);
	if (abort_upload(t, k, id) != 0)
		c->abort_failed = true;
}

/*
 * Abort in-progress uploads of exactly this key except keep_id: left by a
 * crash between CreateMultipartUpload and recording its id, or by an older
 * uploader. Best effort: a missing s3:ListBucketMultipartUploads permission
 * only costs a warning. -1 when the listing or an abort failed.
 */
static int abort_stale_uploads(struct s3_target *t, const char *key, const char *keep_id)
{
	struct stale_ctx c = {.key = key, .keep_id = keep_id};

	if (each_upload(t, key, 40, abort_if_stale, &c) != 0)
		return -1;
	return c.abort_failed ? -1 : 0;
}

struct orphan_ctx {
	struct spool *sp;
	int aborted;
};

static void abort_if_orphan(struct s3_target *t, const char *k, const char *id, void *p)
{
	struct orphan_ctx *c = p;

	if (spool_key_uploaded(c->sp, t->base.bucket, k) != 1)
		return; /* not ours, or not done yet: left alone */
	log_event(LOG_INFO, "aborting a multipart upload left at an uploaded key", "bucket",
	          t->base.bucket, "key", k, NULL);
	if (abort_upload(t, k, id) == 0)
		c->aborted++;
}

/*
 * The sweep after a pass (target_ops.sweep): every upload open at a key the
 * spool records as uploaded is an orphan. The sweeps of s3_put_multipart()
 * cannot see one whose CreateMultipartUpload reached the server after the
 * object was completed (a request of a killed uploader held by a proxy, or
 * sent twice by libcurl on a connection that died before the answer). Runs at
 * the first pass of a process and after passes that sent multipart uploads;
 * a failed listing is tried again after the next pass.
 */
void s3_sweep_orphans(struct target *tt, struct spool *sp)
{
	struct s3_target *t = (struct s3_target *)tt;
	struct orphan_ctx c = {.sp = sp};

	if (!atomic_exchange(&t->sweep_due, false))
		return;
	if (each_upload(t, NULL, 100, abort_if_orphan, &c) != 0)
		atomic_store(&t->sweep_due, true);
}

static int create_upload(struct mpu *m, struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	struct sigv4_kv q[] = {{"uploads", NULL}};
	struct sigv4_kv hdr[] = {{"content-type", "application/octet-stream"},
	                         {"x-amz-checksum-algorithm", "SHA256"}};
	struct s3_req rq = {.method = "POST",
	                    .key = m->seg->key,
	                    .query = q,
	                    .nquery = 1,
	                    .headers = hdr,
	                    .nheaders = t->checksum ? 2 : 1,
	                    .fd = -1,
	                    .finish_on_stop = true};
	struct s3_resp resp;
	int rc;

	/* No parts of an earlier upload may survive into this one (an abandon
	 * whose spool update failed would leave them). */
	if (spool_set_upload_id(m->sp, m->seg->id, "", e) != 0) {
		snprintf(res->code, sizeof(res->code), "SpoolError");
		e->code = IERR_TRANSIENT;
		return -1;
	}
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
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

/* One part: MPU_OK sent and recorded, MPU_FAILED, MPU_START_OVER
 * (NoSuchUpload) or MPU_FILE_CHANGED. */
static enum mpu_result upload_part(struct mpu *m, int pn, uint64_t off, uint64_t len,
                                   struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	char pnum[16], md5_b64[32], sha_b64[64], sha_hex[65], md5_hex[33], sz[32];
	struct sigv4_kv q[] = {{"partNumber", pnum}, {"uploadId", m->upload_id}};
	struct sigv4_kv hdr[3];
	struct s3_req rq = {.method = "PUT",
	                    .key = m->seg->key,
	                    .query = q,
	                    .nquery = 2,
	                    .headers = hdr,
	                    .fd = m->fd,
	                    .file_off = off,
	                    .file_len = len,
	                    .payload_hash = sha_hex};
	struct s3_resp resp;
	unsigned char md[32];
	int rc;

	snprintf(pnum, sizeof(pnum), "%d", pn);
	s3_base64(m->md5s + 16 * (pn - 1), 16, md5_b64);
	s3_base64(m->shas + 32 * (pn - 1), 32, sha_b64);
	hex_encode(m->shas + 32 * (pn - 1), 32, sha_hex);
	hex_encode(m->md5s + 16 * (pn - 1), 16, md5_hex);
	rq.payload_hash = s3_payload_hash(t, sha_hex);
	hdr[0] = (struct sigv4_kv){"content-md5", md5_b64};
	rq.nheaders = 1;
	if (t->checksum)
		hdr[rq.nheaders++] = (struct sigv4_kv){"x-amz-checksum-sha256", sha_b64};
	/* No second hash while sending: the server checks these bytes against
	 * the digests just computed (Content-MD5, the signed payload hash and
	 * the part checksum) and refuses anything else. */
	rc = s3_request(t, &rq, &resp, res->code, sizeof(res->code), e);
	if (resp.file_short) {
		s3_resp_free(&resp);
		return MPU_FILE_CHANGED;
	}
	if (rc != 0) {
		s3_resp_free(&resp);
		return MPU_FAILED;
	}
	if (resp.status != 200) {
		rc = s3_fail(t, &resp, m->seg->key, res->code, sizeof(res->code), e);
		s3_resp_free(&resp);
		if (strcmp(res->code, "NoSuchUpload") == 0)
			return MPU_START_OVER;
		if (strcmp(res->code, "BadDigest") == 0 ||
		    strcmp(res->code, "XAmzContentSHA256Mismatch") == 0 ||
		    strcmp(res->code, "InvalidDigest") == 0) {
			/* Other bytes than we digested: the file, or the wire? */
			EVP_MD_CTX *ctx = EVP_MD_CTX_new();
			int drc;

			digest_init(ctx, EVP_sha256());
			drc = s3_digest_range(m->fd, off, len, ctx, NULL, NULL);
			digest_final(ctx, md);
			EVP_MD_CTX_free(ctx);
			if (drc > 0 || (drc == 0 && memcmp(md, m->shas + 32 * (pn - 1), 32) != 0))
				return MPU_FILE_CHANGED;
			e->code = IERR_TRANSIENT; /* corrupted in transit: send again */
		}
		return MPU_FAILED;
	}
	s3_etag_unquote(resp.etag, m->etags[pn - 1], sizeof(m->etags[pn - 1]));
	s3_checksum_seen(t, &resp, sha_b64);
	s3_resp_free(&resp);
	if (strcasecmp(m->etags[pn - 1], md5_hex) != 0 && !s3_etag_not_md5(&resp)) {
		snprintf(res->code, sizeof(res->code), "ETagMismatch");
		ierr_set(e, IERR_TRANSIENT,
		         "S3 UploadPart %d for s3://%s/%s: ETag %.64s is not the part's MD5 %s", pn,
		         t->base.bucket, m->seg->key, m->etags[pn - 1], md5_hex);
		return MPU_FAILED;
	}
	pthread_mutex_lock(&m->spool_lock);
	rc = spool_part_done(m->sp, m->seg->id, pn, len, m->etags[pn - 1], e);
	pthread_mutex_unlock(&m->spool_lock);
	if (rc != 0) {
		snprintf(res->code, sizeof(res->code), "SpoolError");
		e->code = IERR_TRANSIENT;
		return MPU_FAILED;
	}
	FAILPOINT("upload.s3.after_part");
	snprintf(pnum, sizeof(pnum), "%d", pn);
	snprintf(sz, sizeof(sz), "%" PRIu64, len);
	{
		char of[16];

		snprintf(of, sizeof(of), "%d", m->nparts);
		log_event(LOG_DEBUG, "part uploaded", "bucket", t->base.bucket, "key", m->seg->key,
		          "part", pnum, "of", of, "bytes", sz, NULL);
	}
	return MPU_OK;
}

/* CompleteMultipartUpload: MPU_OK (res->etag set), MPU_FAILED,
 * MPU_START_OVER (the upload is gone or unusable), MPU_KEY_EXISTS (412) or
 * MPU_NO_CONDITIONAL (501 to If-None-Match; the server is marked so). */
static enum mpu_result complete_upload(struct mpu *m, struct put_result *res, struct ierr *e)
{
	struct s3_target *t = m->t;
	struct buf body = {0};
	char sha_hex[65], md5_b64[32], expect[64], etag[256], cks[96];
	unsigned char md[32];
	struct sigv4_kv q[] = {{"uploadId", m->upload_id}};
	struct sigv4_kv hdr[3];
	struct s3_req rq = {.method = "POST",
	                    .key = m->seg->key,
	                    .query = q,
	                    .nquery = 1,
	                    .headers = hdr,
	                    .fd = -1,
	                    .payload_hash = sha_hex,
	                    .finish_on_stop = true};
	struct s3_resp resp;
	size_t from = 0, s, end;
	bool cond = s3_cond_enabled(t);
	int rc;

	buf_puts(&body,
	         "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
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
	hex_encode(md, 32, sha_hex);
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
		return MPU_FAILED;
	/* S3 may answer 200 and put an <Error> in the body (it keeps the
	 * connection alive with whitespace while it assembles the object). */
	if (resp.status != 200 ||
	    s3_xml_element(resp.body.data, resp.body.len, "Error", &s, &end, &from)) {
		s3_fail(t, &resp, m->seg->key, res->code, sizeof(res->code), e);
		s3_resp_free(&resp);
		if (resp.status == 412)
			return MPU_KEY_EXISTS;
		if (resp.status == 501 && cond && t->cond == S3_COND_AUTO) {
			atomic_store(&t->cond_unsupported, true);
			log_event(LOG_WARNING,
			          "the S3 server does not support If-None-Match on "
			          "CompleteMultipartUpload; checking with HEAD first from now on",
			          "bucket", t->base.bucket, NULL);
			return MPU_NO_CONDITIONAL;
		}
		if (strcmp(res->code, "NoSuchUpload") == 0 ||
		    strcmp(res->code, "ConditionalRequestConflict") == 0 ||
		    strcmp(res->code, "InvalidPart") == 0 ||
		    strcmp(res->code, "InvalidPartOrder") == 0 ||
		    strcmp(res->code, "EntityTooSmall") == 0)
			return MPU_START_OVER;
		return MPU_FAILED;
	}
	s3_xml_text(resp.body.data, resp.body.len, "ETag", etag, sizeof(etag), NULL);
	if (etag[0] == '\0')
		snprintf(etag, sizeof(etag), "%s", resp.etag);
	s3_etag_unquote(etag, res->etag, sizeof(res->etag));
	s3_resp_free(&resp);
	s3_multipart_etag(m->md5s, m->nparts, expect, sizeof(expect));
	if (strcasecmp(res->etag, expect) != 0 && !s3_etag_not_md5(&resp)) {
		/* Not the ETag S3 computes from our parts: look at the object. */
		char why[512];
		enum s3_verdict v;

		if (s3_same_object(t, m->seg, m->fd, m->part_size, &v, why, sizeof(why), res, e) !=
		    0)
			return MPU_FAILED;
		if (v != S3_SAME) {
			snprintf(res->code, sizeof(res->code), "ETagMismatch");
			ierr_set(e, IERR_PERMANENT,
			         "S3 CompleteMultipartUpload for s3://%s/%s: ETag %.64s, "
			         "expected %s, and the object does not match: %s",
			         t->base.bucket, m->seg->key, res->etag, expect, why);
			return MPU_FAILED;
		}
	}
	return MPU_OK;
}

/* Does part_size give a valid layout in which every recorded part has its
 * size? */
static bool layout_fits(const struct mpu *m, uint64_t part_size)
{
	uint64_t bytes = m->seg->bytes;
	int nparts;

	if (part_size == 0)
		return false;
	nparts = (int)((bytes + part_size - 1) / part_size);
	if (nparts < 1 || nparts > S3_MAX_PARTS || (nparts > 1 && part_size < S3_MIN_PART_SIZE))
		return false;
	for (int i = 0; i < m->ndone; i++) {
		int pn = m->done[i].part_number;
		uint64_t off = (uint64_t)(pn - 1) * part_size;

		if (pn < 1 || pn > nparts ||
		    m->done[i].size != (bytes - off < part_size ? bytes - off : part_size))
			return false;
	}
	return true;
}

/* Load the recorded parts and decide the part layout (LAYOUT_OK), or say
 * why not: LAYOUT_UNUSABLE (start over) or LAYOUT_SPOOL_ERROR (*e). */
static enum mpu_layout_result mpu_layout(struct mpu *m, struct ierr *e)
{
	const struct segment *seg = m->seg;

	mpu_free(m);
	m->part_size = s3_part_size_for(m->t, seg->bytes);
	if (m->upload_id[0]) {
		m->ndone = spool_parts_list(m->sp, seg->id, &m->done, e);
		if (m->ndone < 0) {
			m->ndone = 0;
			return LAYOUT_SPOOL_ERROR;
		}
		if (m->ndone > 0 && m->done[0].part_number == 1)
			m->part_size = m->done[0].size; /* keep the layout of the upload */
	}
	if (!layout_fits(m, m->part_size)) {
		/* Parts are sent in parallel, so part 1 may be missing: any other
		 * part but the last has the upload's part size, the largest one. */
		uint64_t largest = 0;

		for (int i = 0; i < m->ndone; i++)
			if (m->done[i].size > largest)
				largest = m->done[i].size;
		if (largest == m->part_size || !layout_fits(m, largest))
			return LAYOUT_UNUSABLE;
		m->part_size = largest;
	}
	m->nparts = (int)((seg->bytes + m->part_size - 1) / m->part_size);
	m->md5s = calloc((size_t)m->nparts, 16);
	m->shas = calloc((size_t)m->nparts, 32);
	m->etags = calloc((size_t)m->nparts, sizeof(*m->etags));
	if (!m->md5s || !m->shas || !m->etags) {
		ierr_set(e, IERR_TRANSIENT, "multipart s3://%s/%s: out of memory",
		         m->t->base.bucket, seg->key);
		return LAYOUT_SPOOL_ERROR;
	}
	return LAYOUT_OK;
}

static const struct spool_part *find_done(const struct mpu *m, int pn)
{
	for (int i = 0; i < m->ndone; i++) {
		if (m->done[i].part_number == pn)
			return &m->done[i];
	}
	return NULL;
}

static uint64_t part_len(const struct mpu *m, int pn)
{
	uint64_t off = (uint64_t)(pn - 1) * m->part_size;

	return m->seg->bytes - off < m->part_size ? m->seg->bytes - off : m->part_size;
}

/* Digest part pn (its MD5 and SHA-256, and into the whole-file SHA-256).
 * MPU_OK, MPU_FILE_CHANGED or MPU_FAILED. A part recorded earlier gets its
 * ETag back; *stale when that ETag is not the part's MD5. */
static enum mpu_result digest_part(struct mpu *m, int pn, EVP_MD_CTX *whole, EVP_MD_CTX *pm,
                                   EVP_MD_CTX *ps, bool *stale, bool *send, struct put_result *res,
                                   struct ierr *e)
{
	const struct spool_part *d = find_done(m, pn);
	int drc;

	if (ingesta_stop_requested) {
		s3_transient(res, e, "Interrupted",
		             "multipart s3://%s/%s: interrupted by a stop request "
		             "(progress kept)",
		             m->t->base.bucket, m->seg->key);
		return MPU_FAILED;
	}
	digest_init(pm, EVP_md5());
	digest_init(ps, EVP_sha256());
	drc = s3_digest_range(m->fd, (uint64_t)(pn - 1) * m->part_size, part_len(m, pn), pm, ps,
	                      whole);
	digest_final(pm, m->md5s + 16 * (pn - 1));
	digest_final(ps, m->shas + 32 * (pn - 1));
	if (drc > 0)
		return MPU_FILE_CHANGED;
	if (drc < 0) {
		s3_transient(res, e, "EIO", "spool file %s: read: %s", m->seg->path,
		             strerror(errno));
		return MPU_FAILED;
	}
	*send = d == NULL;
	if (d != NULL) {
		char md5_hex[33];

		s3_etag_unquote(d->etag, m->etags[pn - 1], sizeof(m->etags[pn - 1]));
		hex_encode(m->md5s + 16 * (pn - 1), 16, md5_hex);
		if (is_hex32(m->etags[pn - 1]) && strcasecmp(m->etags[pn - 1], md5_hex) != 0)
			*stale = true;
	}
	return MPU_OK; /* a part confirmed by the server earlier is never sent again */
}

/*
 * Parts in parallel: this thread digests the parts in order (the whole-file
 * SHA-256 needs them in order) and queues those to send; `senders` threads
 * send them. The queue holds at most `senders` digested parts, so a part is
 * sent soon after it was read (still in the page cache) and memory stays at
 * the digests plus one request's buffers per sender. The first error stops
 * the queue; parts in flight finish (and are recorded when confirmed).
 */
struct part_queue {
	struct mpu *m;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *pns; /* part numbers to send, in order */
	int head, tail, cap;
	bool closed; /* the digesting thread is done queueing */
	bool stop;   /* an error: send nothing more */
	enum mpu_result rc;
	struct put_result res;
	struct ierr e;
};

static void queue_fail(struct part_queue *q, enum mpu_result rc, const struct put_result *res,
                       const struct ierr *e)
{
	/* The first error wins, except that a changed file outranks all. */
	if (q->rc == MPU_OK || (rc == MPU_FILE_CHANGED && q->rc != MPU_FILE_CHANGED)) {
		q->rc = rc;
		if (res)
			q->res = *res;
		if (e)
			q->e = *e;
	}
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
}

static void *part_sender(void *p)
{
	struct part_queue *q = p;
	struct mpu *m = q->m;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct put_result res;
		struct ierr e;
		enum mpu_result rc;
		int pn;

		while (q->head == q->tail && !q->closed && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop || q->head == q->tail)
			break;
		pn = q->pns[q->head++];
		pthread_cond_broadcast(&q->cond); /* room for the digesting thread */
		pthread_mutex_unlock(&q->lock);
		memset(&res, 0, sizeof(res));
		ierr_clear(&e);
		rc = MPU_FAILED;
		if (ingesta_stop_requested)
			s3_transient(&res, &e, "Interrupted",
			             "multipart s3://%s/%s: interrupted by a stop request "
			             "(progress kept)",
			             m->t->base.bucket, m->seg->key);
		else
			rc = upload_part(m, pn, (uint64_t)(pn - 1) * m->part_size, part_len(m, pn),
			                 &res, &e);
		pthread_mutex_lock(&q->lock);
		if (rc != MPU_OK)
			queue_fail(q, rc, &res, &e);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/*
 * Send every part not yet recorded, verifying the whole file on the way:
 * MPU_OK (all parts there), MPU_FAILED, MPU_START_OVER or MPU_FILE_CHANGED.
 * Up to t->part_concurrency parts are in flight at once.
 */
static enum mpu_result send_parts(struct mpu *m, struct put_result *res, struct ierr *e)
{
	const struct segment *seg = m->seg;
	EVP_MD_CTX *whole = EVP_MD_CTX_new(), *pm = EVP_MD_CTX_new(), *ps = EVP_MD_CTX_new();
	unsigned char md[32];
	char hex[65];
	bool stale_part = false;
	enum mpu_result rc = MPU_OK;
	int to_send = m->nparts - m->ndone, nsenders = m->t->part_concurrency;
	struct part_queue q = {.m = m, .rc = MPU_OK};
	pthread_t th[S3_MAX_PART_CONCURRENCY];
	int started = 0;

	if (m->ndone > 0) {
		char n[16], of[16];

		snprintf(n, sizeof(n), "%d", m->ndone);
		snprintf(of, sizeof(of), "%d", m->nparts);
		log_event(LOG_INFO, "resuming a multipart upload", "bucket", m->t->base.bucket,
		          "key", seg->key, "parts_already_done", n, "parts", of, NULL);
	}
	if (nsenders > to_send)
		nsenders = to_send;
	if (nsenders > S3_MAX_PART_CONCURRENCY)
		nsenders = S3_MAX_PART_CONCURRENCY;
	if (nsenders > 1) {
		q.cap = nsenders;
		q.pns = calloc((size_t)q.cap, sizeof(int));
		pthread_mutex_init(&q.lock, NULL);
		pthread_cond_init(&q.cond, NULL);
		for (int i = 0; q.pns != NULL && i < nsenders; i++) {
			if (pthread_create(&th[i], NULL, part_sender, &q) != 0)
				break;
			started++;
		}
		if (started == 0) { /* no threads: send from this one */
			pthread_mutex_destroy(&q.lock);
			pthread_cond_destroy(&q.cond);
			free(q.pns);
			q.pns = NULL;
		}
	}
	digest_init(whole, EVP_sha256());
	for (int pn = 1; pn <= m->nparts && rc == MPU_OK; pn++) {
		bool send = false;

		rc = digest_part(m, pn, whole, pm, ps, &stale_part, &send, res, e);
		if (rc != MPU_OK || !send)
			continue;
		if (started == 0) {
			rc = upload_part(m, pn, (uint64_t)(pn - 1) * m->part_size, part_len(m, pn),
			                 res, e);
			continue;
		}
		pthread_mutex_lock(&q.lock);
		/* A ring of cap slots: head and tail only grow. */
		while (q.tail - q.head >= q.cap && !q.stop)
			pthread_cond_wait(&q.cond, &q.lock);
		if (q.stop) {
			pthread_mutex_unlock(&q.lock);
			break;
		}
		/* Shift the live window to the front when it reaches the end. */
		if (q.tail == q.cap) {
			memmove(q.pns, q.pns + q.head, (size_t)(q.tail - q.head) * sizeof(int));
			q.tail -= q.head;
			q.head = 0;
		}
		q.pns[q.tail++] = pn;
		pthread_cond_broadcast(&q.cond);
		pthread_mutex_unlock(&q.lock);
	}
	if (started > 0) {
		pthread_mutex_lock(&q.lock);
		if (rc != MPU_OK)
			queue_fail(&q, rc, res, e);
		q.closed = true;
		pthread_cond_broadcast(&q.cond);
		pthread_mutex_unlock(&q.lock);
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		if (q.rc != MPU_OK) {
			rc = q.rc;
			*res = q.res;
			*e = q.e;
		}
		pthread_mutex_destroy(&q.lock);
		pthread_cond_destroy(&q.cond);
		free(q.pns);
	}
	if (rc == MPU_OK || rc == MPU_FILE_CHANGED) {
		/* When all parts were read, check the whole file. */
		digest_final(whole, md);
		hex_encode(md, 32, hex);
		if (rc == MPU_OK && strcmp(hex, seg->sha256) != 0)
			rc = MPU_FILE_CHANGED;
		if (rc == MPU_OK && stale_part) {
			log_event(LOG_WARNING,
			          "recorded part does not match the file; starting over", "key",
			          seg->key, NULL);
			rc = MPU_START_OVER;
		}
	}
	EVP_MD_CTX_free(whole);
	EVP_MD_CTX_free(pm);
	EVP_MD_CTX_free(ps);
	return rc;
}

/*
 * After the server said the key exists, or that the upload is gone: compare
 * the object with the segment. Returns 0 when that settled it (*rc: 0 success
 * with res->already_present, or -1 conflict/error), 1 when the key is empty.
 */
static int settle(struct mpu *m, struct put_result *res, struct ierr *e, int *rc)
{
	enum s3_verdict v = S3_ABSENT;
	char why[512];

	if (s3_same_object(m->t, m->seg, m->fd, m->part_size, &v, why, sizeof(why), res, e) != 0) {
		*rc = -1;
		return 0;
	}
	if (v == S3_ABSENT)
		return 1;
	abandon(m);
	if (v == S3_DIFFERENT) {
		*rc = s3_conflict(m->t, m->seg, why, res, e);
	} else {
		res->already_present = true;
		*rc = 0;
	}
	return 0;
}

int s3_put_multipart(struct s3_target *t, struct spool *sp, const struct segment *seg, int fd,
                     struct put_result *res, struct ierr *e)
{
	struct mpu m = {.t = t, .sp = sp, .seg = seg, .fd = fd};
	int rc = MPU_START_OVER; /* an enum mpu_result until the loop ends, then 0 or -1 */

	pthread_mutex_init(&m.spool_lock, NULL);
	atomic_store(&t->sweep_due, true);

	snprintf(m.upload_id, sizeof(m.upload_id), "%s", seg->upload_id);
	for (int round = 0; round < 3 && rc > MPU_OK; round++) {
		enum mpu_layout_result lrc = mpu_layout(&m, e);

		if (lrc == LAYOUT_SPOOL_ERROR) {
			snprintf(res->code, sizeof(res->code), "SpoolError");
			e->code = IERR_TRANSIENT;
			rc = -1;
			break;
		}
		if (lrc == LAYOUT_UNUSABLE) {
			log_event(LOG_WARNING,
			          "recorded multipart progress unusable; starting over", "key",
			          seg->key, NULL);
			abandon(&m);
			continue;
		}
		abort_stale_uploads(t, seg->key, m.upload_id);
		/* One HEAD before sending many megabytes, whatever the write mode:
		 * an object already there (an earlier run completed it) is settled
		 * now instead of after every part was sent again. Complete still
		 * carries If-None-Match, which is what makes the write atomic. */
		{
			enum s3_verdict v = s3_cond_enabled(t) ? S3_UNKNOWN : S3_ABSENT;
			char why[512];

			if (s3_same_object(t, seg, fd, m.part_size, &v, why, sizeof(why), res, e) !=
			    0) {
				rc = -1;
				break;
			}
			if (v == S3_SAME || v == S3_DIFFERENT) {
				abandon(&m);
				if (v == S3_DIFFERENT) {
					rc = s3_conflict(t, seg, why, res, e);
				} else {
					res->already_present = true;
					rc = 0;
				}
				break;
			}
		}
		if (m.upload_id[0] == '\0') {
			if (create_upload(&m, res, e) != 0) {
				rc = -1;
				break;
			}
			if (mpu_layout(&m, e) != LAYOUT_OK) {
				snprintf(res->code, sizeof(res->code), "SpoolError");
				e->code = IERR_TRANSIENT;
				rc = -1;
				break;
			}
		}
		rc = send_parts(&m, res, e);
		if (rc == MPU_FILE_CHANGED) {
			abandon(&m);
			rc = s3_quarantine(res, e,
			                   "spool file %s no longer matches its recorded sha256 "
			                   "%.16s... (multipart upload to s3://%s/%s abandoned): "
			                   "quarantined",
			                   seg->path, seg->sha256, t->base.bucket, seg->key);
			break;
		}
		if (rc == MPU_START_OVER) { /* NoSuchUpload while sending parts */
			if (settle(&m, res, e, &rc) == 0)
				break;
			abandon(&m);
			rc = MPU_START_OVER;
			continue;
		}
		if (rc != MPU_OK)
			break;
		rc = complete_upload(&m, res, e);
		if (rc == MPU_NO_CONDITIONAL) { /* HEAD, then complete plainly */
			if (settle(&m, res, e, &rc) == 0)
				break;
			rc = complete_upload(&m, res, e);
			if (rc > MPU_OK)
				rc = s3_transient(res, e, "CompleteFailed",
				                  "CompleteMultipartUpload s3://%s/%s refused",
				                  t->base.bucket, seg->key);
			break;
		}
		if (rc == MPU_KEY_EXISTS) {
			if (settle(&m, res, e, &rc) == 0)
				break;
			abandon(&m);
			rc = s3_transient(
			    res, e, "ConditionalRequestConflict",
			    "S3 s3://%s/%s: Complete refused with 412 but no object is "
			    "there; starting over",
			    t->base.bucket, seg->key);
			break;
		}
		if (rc == MPU_START_OVER) {
			if (settle(&m, res, e, &rc) == 0)
				break;
			abandon(&m);
			continue;
		}
	}
	if (rc > MPU_OK)
		rc = s3_transient(res, e, "MultipartRestart",
		                  "multipart upload to s3://%s/%s had to start over too often",
		                  t->base.bucket, seg->key);
	/* The key is settled: any upload still open at it is an orphan (e.g. a
	 * CreateMultipartUpload whose answer was lost and was then retried). */
	if (rc == 0) {
		/* The last chance to find them (the key is recorded as done next):
		 * a failed listing is tried twice more. */
		for (int i = 0;
		     abort_stale_uploads(t, seg->key, "") != 0 && i < 2 && !ingesta_stop_requested;
		     i++)
			usleep(100000u << i);
	}
	mpu_free(&m);
	pthread_mutex_destroy(&m.spool_lock);
	return rc;
}
