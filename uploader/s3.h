/*
 * s3.h - the S3 target: PutObject and multipart uploads, exactly once.
 *
 * target_s3_open() (target.h) returns a target that ships spool segments to
 * one bucket over HTTP(S) with libcurl, signing every request with our SigV4
 * module (sigv4.h) and credentials from the AWS chain (creds.h). This header
 * is what s3.c (target, PutObject, comparing objects), s3_multipart.c
 * (multipart with resume) and s3_http.c (the request layer and the pure
 * pieces) share, and what tests/unit/test_s3.c exercises.
 *
 * The protocol, in short:
 * - Below MULTIPART_THRESHOLD: one PutObject streamed from the spool file
 *   (never held in memory), with Content-MD5, x-amz-checksum-sha256 (unless
 *   S3_CHECKSUM=none), the recorded SHA-256 as the signed payload hash (or
 *   UNSIGNED-PAYLOAD once the server has shown it checks the signed
 *   x-amz-checksum-sha256: s3_payload_hash()) and
 *   If-None-Match: * (S3_CONDITIONAL_WRITES=false: a HEAD first instead; auto:
 *   If-None-Match until the server answers 501 NotImplemented, then HEAD
 *   first). The server checks the body against those digests; a refusal
 *   (BadDigest, XAmzContentSHA256Mismatch) or a returned ETag that is not the
 *   recorded MD5 re-reads the file: one that no longer matches its recorded
 *   SHA-256 is quarantined, an intact one was corrupted in transit (retried).
 * - Above it: a HEAD first (an object already there is settled before
 *   megabytes are sent again; a 403 from a write-only role is tolerated),
 *   CreateMultipartUpload (x-amz-checksum-algorithm SHA256), the upload id
 *   recorded in the spool before any part is sent, one UploadPart per
 *   MULTIPART_PART_SIZE bytes (Content-MD5 and x-amz-checksum-sha256 of the
 *   part, its SHA-256 as payload hash; each part is read twice, once to digest
 *   it and once to send it, so memory stays at a few buffers), each finished
 *   part recorded with spool_part_done() as soon as the server has confirmed
 *   it (up to UPLOAD_PART_CONCURRENCY parts in flight at once: read in order
 *   by the worker, sent by helper threads, each streaming from the file),
 *   the whole file's SHA-256 checked against the recorded one, then
 *   CompleteMultipartUpload with If-None-Match: * and every part's ETag and
 *   checksum (S3 stores the composite checksum base64(sha256(sha_1..sha_N))-N,
 *   the ETag hex(md5(md5_1..md5_N))-N; both are recomputed here). A restarted
 *   uploader finds the upload id and the finished parts in the spool and
 *   sends only the missing parts, with the recorded part size. NoSuchUpload
 *   starts over. Before any multipart work on a key, in-progress uploads of
 *   that exact key other than the recorded one (left by a crash between
 *   Create and recording its id) are aborted (ListMultipartUploads, prefix =
 *   the key); abandoned uploads (conflict, quarantine) are aborted too.
 * - Exactly once: a 412 (or 409 ConditionalRequestConflict) means the key
 *   exists. The object is then compared with the segment (s3_same_object()):
 *   a different Content-Length is a conflict; the full-object
 *   x-amz-checksum-sha256 (HEAD with x-amz-checksum-mode: ENABLED) or a plain
 *   ETag equal to the recorded MD5 proves the same bytes; a multipart
 *   ETag/checksum ("...-N") is recomputed from the spool file with the part
 *   size in use; when none of these decides (other part size, SSE-KMS ETags,
 *   no checksum stored) the object is downloaded and its SHA-256 compared.
 *   Same bytes: success (res->already_present). Different: IERR_PERMANENT,
 *   code "Conflict", never overwritten.
 *
 * Errors: -1 with e->code IERR_TRANSIENT (5xx, 429, SlowDown, RequestTimeout,
 * InternalError, BadDigest with an intact spool file, resets, timeouts, DNS)
 * or IERR_PERMANENT (AccessDenied, NoSuchBucket, InvalidAccessKeyId,
 * SignatureDoesNotMatch, AuthorizationHeaderMalformed, redirects, other 4xx),
 * res->code the S3 <Code>, e->msg "S3 <status> <Code> for s3://bucket/key:
 * <Message>". Secrets never appear in messages or logs.
 *
 * Threads: the target is shared by all upload workers. Each request borrows a
 * curl easy handle from a small pool (one handle per request in flight, kept
 * with its keep-alive connections after the request), DNS cache and TLS
 * sessions are shared. Every function below may block on the network unless
 * it says "pure".
 */
#ifndef INGESTA_S3_H
#define INGESTA_S3_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "aws_http.h"
#include "buf.h"
#include "creds.h"
#include "err.h"
#include "sigv4.h"
#include "target.h"

/* Bytes of a response body kept for parsing (errors, XML results). */
#define S3_BODY_CAP (64 * 1024)
/* S3 limits on multipart uploads. */
#define S3_MIN_PART_SIZE (5ULL * 1024 * 1024)
#define S3_MAX_PART_SIZE (5ULL * 1024 * 1024 * 1024)
#define S3_MAX_PARTS     10000
#define S3_MAX_PUT_SIZE  (5ULL * 1024 * 1024 * 1024)
/* Most parts of one multipart upload in flight (UPLOAD_PART_CONCURRENCY). */
#define S3_MAX_PART_CONCURRENCY 16

/* ---- addressing (pure) ---- */

struct s3_endpoint {
	char scheme[8];      /* "https" or "http" */
	char host[512];      /* S3_ENDPOINT's host[:port], or "" for AWS */
	char base_path[512]; /* S3_ENDPOINT's path without trailing '/', usually "" */
	char region[64];
	bool path_style;
};

/*
 * Fill *ep from the configuration values: endpoint (S3_ENDPOINT, "" for AWS),
 * force ("auto", "true", "false": S3_FORCE_PATH_STYLE), the bucket and the
 * region. auto means path-style with a custom endpoint or a bucket name with
 * dots (a dotted name breaks the *.s3 wildcard certificate), virtual-hosted
 * otherwise. Returns -1 (IERR_CONFIG naming the key) for an unusable URL.
 */
int s3_endpoint_init(struct s3_endpoint *ep, const char *endpoint, const char *force,
                     const char *bucket, const char *region, struct ierr *e);

/*
 * Host (for the URL and the Host header; includes a non-default port) and raw,
 * not yet encoded path of an object (key) or of the bucket (key NULL or "").
 * Virtual-hosted: bucket.s3.<region>.amazonaws.com + "/key"; path-style:
 * s3.<region>.amazonaws.com (or the endpoint) + "/bucket/key". Appends to
 * host and path. Pure.
 */
void s3_location(const struct s3_endpoint *ep, const char *bucket, const char *key,
                 struct buf *host, struct buf *path);

/* ---- response parsing and error classification (pure) ---- */

/*
 * Text of the first element <tag>...</tag> (or <tag attr="...">) in
 * xml[0..len), XML entities decoded, truncated to outsz-1 bytes. *from, when
 * not NULL, is where the search starts and is advanced past the element.
 * Returns true when found. Never reads outside xml[0..len); malformed input
 * just does not match.
 */
bool s3_xml_text(const char *xml, size_t len, const char *tag, char *out, size_t outsz,
                 size_t *from);

/* Like s3_xml_text() but gives the raw inner range xml[*start..*end) of the
 * element (for nested elements such as <Upload> of ListMultipartUploads). */
bool s3_xml_element(const char *xml, size_t len, const char *tag, size_t *start, size_t *end,
                    size_t *from);

/* The S3 error of a response: <Code>, <Message>, a region hint. */
struct s3_error {
	long status;
	char code[64];
	char message[512];
	char region[64]; /* <Region> of the body or x-amz-bucket-region */
};

/*
 * Parse an error body (any size, possibly malformed or empty: then the code
 * is the status name, e.g. "NotFound" for a HEAD's 404). Pure.
 */
void s3_parse_error(long status, const char *body, size_t len, struct s3_error *out);

/* s3_status_name(), s3_classify(), s3_classify_curl() and the base URL
 * parser: aws_http.h (shared with the Glue client). */

/* ---- digests (pure) ---- */

/* Raw digest -> base64 (out needs 4*ceil(n/3)+1 bytes). */
void s3_base64(const unsigned char *in, size_t n, char *out);
/* Hex: hex_encode() / hex_decode() in common/hex.h. */

/*
 * Expected results of a multipart upload from the parts' raw MD5s and
 * SHA-256s (n parts): the ETag hex(md5(md5_1 || ... || md5_n)) + "-n" and the
 * composite checksum base64(sha256(sha_1 || ... || sha_n)) + "-n". Pure.
 */
void s3_multipart_etag(const unsigned char *md5s, int n, char *out, size_t outsz);
void s3_multipart_checksum(const unsigned char *shas, int n, char *out, size_t outsz);

/* ETag value without surrounding quotes (and a W/ prefix), into out. Pure. */
void s3_etag_unquote(const char *etag, char *out, size_t outsz);

/* ---- the target and its request layer (s3_http.c) ---- */

enum s3_cond_mode { S3_COND_AUTO, S3_COND_ON, S3_COND_OFF };

struct s3_target {
	struct target base;
	struct s3_endpoint ep;
	struct creds_provider *creds;
	bool verify_tls;
	char ca_file[4096];
	bool checksum; /* S3_CHECKSUM=sha256 */
	enum s3_cond_mode cond;
	atomic_bool cond_unsupported; /* auto mode saw 501 for If-None-Match */
	atomic_bool checksum_echoed;  /* a write was answered with our x-amz-checksum-sha256 */
	atomic_bool sweep_due; /* s3_sweep_orphans() has work: first pass, or multipart since */
	uint64_t threshold;    /* MULTIPART_THRESHOLD */
	uint64_t part_size;    /* MULTIPART_PART_SIZE, clamped to S3's limits */
	int part_concurrency;  /* UPLOAD_PART_CONCURRENCY: parts of one upload in flight */
	long connect_timeout_ms;
	long low_speed_time_s; /* a transfer slower than 1 B/s this long fails */
	CURLSH *share;         /* DNS cache and TLS sessions */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[64]; /* idle easy handles, each with its connections */
	int npool;
};

/* A request. The body comes from memory (body/body_len), from a file range
 * (fd >= 0: file_off, file_len, hashed into file_sha as it is read) or is
 * empty. */
struct s3_req {
	const char *method;
	const char *key; /* NULL: bucket-level request */
	const struct sigv4_kv *query;
	size_t nquery;
	const struct sigv4_kv *headers; /* besides host and the signature's own */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body; NULL for no body */
	const void *body;
	size_t body_len;
	int fd;
	uint64_t file_off;
	uint64_t file_len;
	EVP_MD_CTX *file_sha; /* may be NULL */
	/* Response body sink; NULL keeps the first S3_BODY_CAP bytes in resp->body. */
	size_t (*sink)(const void *p, size_t n, void *ctx);
	void *sink_ctx;
	/* Not cut short by a stop request: CreateMultipartUpload (its id must be
	 * recorded) and CompleteMultipartUpload (cut off mid-commit, MinIO keeps
	 * listing the completed upload). */
	bool finish_on_stop;
};

struct s3_resp {
	long status; /* 0 when no HTTP response arrived */
	char etag[256];
	char checksum_sha256[128];
	char bucket_region[64];
	char sse[64];           /* x-amz-server-side-encryption */
	char error_code[64];    /* x-minio-error-code / x-amz-error-code (HEAD) */
	int64_t content_length; /* -1 when absent */
	struct buf body;        /* capped at S3_BODY_CAP */
	uint64_t file_read;     /* body bytes read from the file */
	int read_errno;         /* a read() error on the file */
	bool file_short;        /* the file ended before file_len */
};

/* Release what a response holds; safe to call twice. */
void s3_resp_free(struct s3_resp *r);

/*
 * Sign and send one request, wait for the whole response. Returns 0 when an
 * HTTP response arrived (whatever its status: look at resp->status), or -1
 * with *e (IERR_TRANSIENT / IERR_PERMANENT) and code (a short name for
 * res->code) when none did: credentials, a network failure, a timeout, a file
 * read error, a stop request. Messages name s3://bucket/key.
 */
int s3_request(struct s3_target *t, const struct s3_req *rq, struct s3_resp *resp, char *code,
               size_t codesz, struct ierr *e);

/*
 * Turn a response with an error status (or a 200 whose body is an <Error>)
 * into -1 with *e and code filled: "S3 <status> <Code> for s3://bucket/key:
 * <Message>" (with the region hint for redirects and wrong-region errors).
 */
int s3_fail(struct s3_target *t, const struct s3_resp *resp, const char *key, char *code,
            size_t codesz, struct ierr *e);

/* Pool management for target_s3_open()/free (s3_http.c). */
int s3_http_init(struct s3_target *t, struct ierr *e);
void s3_http_cleanup(struct s3_target *t);

/* ---- shared by s3.c and s3_multipart.c (not for other components) ---- */

/* What the key holds compared with a segment. S3_UNKNOWN in *v on entry to
 * s3_same_object() makes a 403 on the HEAD leave it so (a write-only role);
 * otherwise a 403 is an error. */
enum s3_verdict { S3_ABSENT, S3_SAME, S3_DIFFERENT, S3_UNKNOWN };

/* If-None-Match in use (S3_CONDITIONAL_WRITES, and not refused by the server). */
bool s3_cond_enabled(struct s3_target *t);

/*
 * The x-amz-content-sha256 of a write whose body has the SHA-256 sha_hex:
 * sha_hex itself, or "UNSIGNED-PAYLOAD" once the server has answered a write
 * with the x-amz-checksum-sha256 we sent (S3_CHECKSUM=sha256): it then checks
 * the body's SHA-256 against that checksum header, which is signed, so the
 * body stays bound to the signature, and it hashes the body once instead of
 * twice. Content-MD5 is sent either way. s3_checksum_seen() records an answer.
 */
const char *s3_payload_hash(struct s3_target *t, const char *sha_hex);
void s3_checksum_seen(struct s3_target *t, const struct s3_resp *resp, const char *sha_b64);

/* Fill res->code and *e, return -1: the spool file is damaged
 * (res->quarantine, code ChecksumMismatch, IERR_PERMANENT); a retryable
 * failure (IERR_TRANSIENT with the given code); a conflict at seg->key
 * (IERR_PERMANENT, code Conflict, logged loudly). */
int s3_quarantine(struct put_result *res, struct ierr *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int s3_transient(struct put_result *res, struct ierr *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int s3_conflict(struct s3_target *t, const struct segment *seg, const char *why,
                struct put_result *res, struct ierr *e);

/* The response's ETag is not an MD5 (SSE-KMS). */
bool s3_etag_not_md5(const struct s3_resp *r);

/* Feed fd[off, off+len) to every non-NULL digest context (pread, bounded
 * buffer). 0, 1 when the file ended early, -1 with errno on a read error. */
int s3_digest_range(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *a, EVP_MD_CTX *b,
                    EVP_MD_CTX *c);

/* Part size for a new upload of `bytes`: MULTIPART_PART_SIZE, raised in
 * 64 MiB steps until the object fits in 10000 parts. */
uint64_t s3_part_size_for(const struct s3_target *t, uint64_t bytes);

/*
 * Compare the object at seg->key with the segment (HEAD, then local multipart
 * digests with part_size, then a download; see the top of this file). fd is
 * the open spool file or -1. Returns 0 with *v, or -1 with *e. On S3_SAME,
 * res->etag holds the object's ETag. May block for a full download.
 */
int s3_same_object(struct s3_target *t, const struct segment *seg, int fd, uint64_t part_size,
                   enum s3_verdict *v, char *why, size_t whysz, struct put_result *res,
                   struct ierr *e);

/* The multipart path of put_segment (s3_multipart.c); fd is the open file. */
int s3_put_multipart(struct s3_target *t, struct spool *sp, const struct segment *seg, int fd,
                     struct put_result *res, struct ierr *e);
/* target_ops.sweep: abort uploads left open at keys the spool records as
 * uploaded (s3_multipart.c). */
void s3_sweep_orphans(struct target *t, struct spool *sp);

#endif
