/*
 * s3_http.c - the S3 request layer (see s3.h; the pure protocol helpers it
 * uses are in s3_proto.c).
 *
 * One function sends a request: s3_request() borrows an idle curl easy handle
 * from the target's pool (it keeps its keep-alive connections between
 * requests), gets current credentials, signs with sigv4_sign() and sends
 * exactly the URL and headers that were signed. Bodies are streamed from a
 * file range with pread() (hashing what is read, so the caller can prove what
 * went on the wire) or from a small memory buffer; response bodies are kept up
 * to S3_BODY_CAP bytes or handed to a sink. Memory use per request is a few
 * small buffers, whatever the object size.
 *
 * libcurl reads HTTPS_PROXY / https_proxy and NO_PROXY from the environment
 * itself; nothing here sets a proxy, so those keep working. Certificate
 * verification is on unless S3_INSECURE_SKIP_VERIFY=true. A connection that
 * does not connect within the connect timeout, or moves less than one byte
 * per second for low_speed_time_s, fails as a transient "Timeout".
 */
#include "s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ingesta_build.h"
#include "log.h"
#include "util.h"

/* ================================================================ handles */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct s3_target *t = userp;

	(void)h;
	(void)access;
	pthread_mutex_lock(&t->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
	struct s3_target *t = userp;

	(void)h;
	pthread_mutex_unlock(&t->share_locks[data]);
}

int s3_http_init(struct s3_target *t, struct ierr *e)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&t->share_locks[i], NULL);
	pthread_mutex_init(&t->pool_lock, NULL);
	t->share = curl_share_init();
	if (t->share == NULL)
		return ierr_set(e, IERR_INTERNAL, "bucket %s: libcurl share init failed",
		                t->base.bucket);
	curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
	/* Not CURL_LOCK_DATA_CONNECT: libcurl documents it as unsafe between
	 * concurrent threads. Connections live in the pooled handles instead. */
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

void s3_http_cleanup(struct s3_target *t)
{
	for (int i = 0; i < t->npool; i++)
		curl_easy_cleanup(t->pool[i]);
	t->npool = 0;
	if (t->share)
		curl_share_cleanup(t->share);
	t->share = NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&t->share_locks[i]);
	pthread_mutex_destroy(&t->pool_lock);
}

static CURL *handle_get(struct s3_target *t)
{
	CURL *h = NULL;

	pthread_mutex_lock(&t->pool_lock);
	if (t->npool > 0)
		h = t->pool[--t->npool];
	pthread_mutex_unlock(&t->pool_lock);
	if (h == NULL)
		h = curl_easy_init();
	return h;
}

static void handle_put(struct s3_target *t, CURL *h)
{
	pthread_mutex_lock(&t->pool_lock);
	if (t->npool < (int)(sizeof(t->pool) / sizeof(t->pool[0]))) {
		t->pool[t->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&t->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ================================================================ one request */

struct xfer {
	const struct s3_req *rq;
	struct s3_resp *resp;
	uint64_t pos; /* body bytes handed to curl */
};

void s3_resp_free(struct s3_resp *r)
{
	buf_free(&r->body);
	memset(&r->body, 0, sizeof(r->body));
}

static void resp_reset_headers(struct s3_resp *r)
{
	r->etag[0] = r->checksum_sha256[0] = r->bucket_region[0] = '\0';
	r->sse[0] = r->error_code[0] = '\0';
	r->content_length = -1;
}

static void header_value(const char *v, size_t n, char *out, size_t outsz)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	struct s3_resp *r = x->resp;
	size_t n = size * nmemb;
	const char *colon = memchr(p, ':', n);
	static const struct {
		const char *name;
		size_t off, size;
	} want[] = {
	    {"etag", offsetof(struct s3_resp, etag), sizeof(((struct s3_resp *)0)->etag)},
	    {"x-amz-checksum-sha256", offsetof(struct s3_resp, checksum_sha256),
	     sizeof(((struct s3_resp *)0)->checksum_sha256)},
	    {"x-amz-bucket-region", offsetof(struct s3_resp, bucket_region),
	     sizeof(((struct s3_resp *)0)->bucket_region)},
	    {"x-amz-server-side-encryption", offsetof(struct s3_resp, sse),
	     sizeof(((struct s3_resp *)0)->sse)},
	    {"x-minio-error-code", offsetof(struct s3_resp, error_code),
	     sizeof(((struct s3_resp *)0)->error_code)},
	    {"x-amz-error-code", offsetof(struct s3_resp, error_code),
	     sizeof(((struct s3_resp *)0)->error_code)},
	};

	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		resp_reset_headers(r); /* a new response (after 100 Continue) */
		return n;
	}
	if (colon == NULL)
		return n;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t l = strlen(want[i].name);

		if ((size_t)(colon - p) == l && strncasecmp(p, want[i].name, l) == 0) {
			header_value(colon + 1, n - l - 1, (char *)r + want[i].off, want[i].size);
			return n;
		}
	}
	if ((size_t)(colon - p) == 14 && strncasecmp(p, "content-length", 14) == 0) {
		char v[32];

		header_value(colon + 1, n - 15, v, sizeof(v));
		r->content_length = strtoll(v, NULL, 10);
	}
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;

	if (x->rq->sink)
		return x->rq->sink(p, n, x->rq->sink_ctx);
	if (x->resp->body.len < S3_BODY_CAP) {
		size_t keep = S3_BODY_CAP - x->resp->body.len;

		buf_append(&x->resp->body, p, n < keep ? n : keep);
	}
	return n; /* the rest is read and dropped: no crash, no unbounded memory */
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	const struct s3_req *rq = x->rq;
	size_t want = size * nmemb;
	uint64_t total = rq->fd >= 0 ? rq->file_len : rq->body_len;
	ssize_t got;

	if (x->pos >= total)
		return 0;
	if (want > total - x->pos)
		want = (size_t)(total - x->pos);
	if (rq->fd < 0) {
		memcpy(p, (const char *)rq->body + x->pos, want);
		x->pos += want;
		return want;
	}
	do {
		got = pread(rq->fd, p, want, (off_t)(rq->file_off + x->pos));
	} while (got < 0 && errno == EINTR);
	if (got < 0) {
		x->resp->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0) {
		x->resp->file_short = true; /* the file shrank under us */
		return CURL_READFUNC_ABORT;
	}
	if (rq->file_sha)
		EVP_DigestUpdate(rq->file_sha, p, (size_t)got);
	x->pos += (uint64_t)got;
	x->resp->file_read = x->pos;
	return (size_t)got;
}

/* libcurl rewinds the body to resend it (e.g. a reused connection died). */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
	struct xfer *x = userp;

	if (origin != SEEK_SET || offset != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->pos = 0;
	x->resp->file_read = 0;
	if (x->rq->file_sha)
		EVP_DigestInit_ex(x->rq->file_sha, EVP_sha256(), NULL);
	return CURL_SEEKFUNC_OK;
}

/* A stop request cuts a transfer short, except one that commits state on the
 * server (rq->finish_on_stop): that one runs to its answer, bounded by the
 * low-speed timeout. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const struct xfer *x = userp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return ingesta_stop_requested && !x->rq->finish_on_stop ? 1 : 0;
}

static void set_method(CURL *h, const struct s3_req *rq, uint64_t body_len)
{
	if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
}

static bool has_header(const struct s3_req *rq, const char *name)
{
	for (size_t i = 0; i < rq->nheaders; i++) {
		if (strcasecmp(rq->headers[i].name, name) == 0)
			return true;
	}
	return false;
}

static void set_common(struct s3_target *t, CURL *h, struct xfer *x, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_SHARE, t->share);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ingesta/" INGESTA_VERSION);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, t->low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, t->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, t->verify_tls ? 2L : 0L);
	if (t->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(h, CURLOPT_READDATA, x);
	curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
}

static int sign(struct s3_target *t, const struct s3_req *rq, struct sigv4_result *sig,
                struct buf *host, char *code, size_t codesz, struct ierr *e)
{
	struct buf path = {0};
	struct sigv4_kv hdrs[24];
	struct aws_creds creds;
	struct sigv4_request sr;
	int rc;

	if (rq->nheaders + 1 > sizeof(hdrs) / sizeof(hdrs[0]))
		return ierr_set(e, IERR_INTERNAL, "s3: too many headers");
	s3_location(&t->ep, t->base.bucket, rq->key, host, &path);
	hdrs[0].name = "host";
	hdrs[0].value = buf_cstr(host);
	for (size_t i = 0; i < rq->nheaders; i++)
		hdrs[i + 1] = rq->headers[i];
	if (creds_get(t->creds, &creds, e) != 0) {
		snprintf(code, codesz, "%s",
		         e->code == IERR_TRANSIENT ? "CredentialsUnavailable" : "NoCredentials");
		ierr_prefix(e, "s3://%s: credentials", t->base.bucket);
		if (e->code != IERR_TRANSIENT)
			e->code = IERR_PERMANENT;
		buf_free(&path);
		return -1;
	}
	memset(&sr, 0, sizeof(sr));
	sr.method = rq->method;
	sr.path = buf_cstr(&path);
	sr.query = rq->query;
	sr.nquery = rq->nquery;
	sr.headers = hdrs;
	sr.nheaders = rq->nheaders + 1;
	sr.payload_hash = rq->payload_hash;
	sr.region = t->ep.region;
	sr.when = time(NULL);
	sr.access_key = creds.access_key;
	sr.secret_key = creds.secret_key;
	sr.session_token = creds.session_token;
	rc = sigv4_sign(&sr, sig, e);
	aws_creds_free(&creds);
	buf_free(&path);
	if (rc != 0) {
		snprintf(code, codesz, "SigningFailed");
		e->code = IERR_PERMANENT;
	}
	return rc;
}

int s3_request(struct s3_target *t, const struct s3_req *rq, struct s3_resp *resp, char *code,
               size_t codesz, struct ierr *e)
{
	struct sigv4_result sig;
	struct buf host = {0}, url = {0}, line = {0};
	struct curl_slist *hl = NULL;
	struct xfer x = {.rq = rq, .resp = resp};
	char errbuf[CURL_ERROR_SIZE] = "";
	uint64_t body_len = rq->fd >= 0 ? rq->file_len : rq->body_len;
	CURLcode rc;
	CURL *h;
	int ret = 0;

	memset(resp, 0, sizeof(*resp));
	resp_reset_headers(resp);
	if (sign(t, rq, &sig, &host, code, codesz, e) != 0) {
		buf_free(&host);
		return -1;
	}
	buf_printf(&url, "%s://%s%s", t->ep.scheme, buf_cstr(&host), buf_cstr(&sig.canonical_uri));
	if (sig.canonical_query.len > 0)
		buf_printf(&url, "?%s", buf_cstr(&sig.canonical_query));
	for (size_t i = 0; i < sig.nheaders; i++) {
		buf_reset(&line);
		buf_printf(&line, "%s: %s", sig.headers[i].name, sig.headers[i].value);
		hl = curl_slist_append(hl, buf_cstr(&line));
	}
	if (strcmp(rq->method, "POST") == 0 && !has_header(rq, "content-type"))
		hl = curl_slist_append(hl, "Content-Type:"); /* not curl's form type */
	h = handle_get(t);
	if (h == NULL || hl == NULL) {
		ret = ierr_set(e, IERR_TRANSIENT, "s3://%s: out of memory for a request",
		               t->base.bucket);
		snprintf(code, codesz, "OutOfMemory");
		goto out;
	}
	curl_easy_reset(h);
	set_common(t, h, &x, errbuf);
	set_method(h, rq, body_len);
	curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&url));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (rq->file_sha)
		EVP_DigestInit_ex(rq->file_sha, EVP_sha256(), NULL);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	/* A server that answers early (403, 412) and closes the connection while
	 * the body is still being sent makes curl report a send error; the
	 * answer is what counts. */
	if (rc != CURLE_OK && resp->status >= 300 && !resp->file_short && resp->read_errno == 0 &&
	    !ingesta_stop_requested)
		rc = CURLE_OK;
	if (rc != CURLE_OK) {
		const char *name;
		enum ierr_code cls = s3_classify_curl(rc, &name);

		resp->status = 0;
		if (resp->read_errno != 0) {
			snprintf(code, codesz, "EIO");
			ret = ierr_set(e, IERR_TRANSIENT,
			               "S3 %s s3://%s/%s: reading the spool file: %s", rq->method,
			               t->base.bucket, rq->key ? rq->key : "",
			               strerror(resp->read_errno));
		} else if (resp->file_short) {
			snprintf(code, codesz, "ChecksumMismatch");
			ret = ierr_set(e, IERR_PERMANENT,
			               "S3 %s s3://%s/%s: the spool file is shorter than recorded",
			               rq->method, t->base.bucket, rq->key ? rq->key : "");
		} else if (rc == CURLE_ABORTED_BY_CALLBACK && ingesta_stop_requested) {
			snprintf(code, codesz, "Interrupted");
			ret = ierr_set(e, IERR_TRANSIENT,
			               "S3 %s s3://%s/%s: interrupted by a stop request",
			               rq->method, t->base.bucket, rq->key ? rq->key : "");
		} else {
			snprintf(code, codesz, "%s", name);
			ret = ierr_set(e, cls, "S3 %s s3://%s/%s: %s: %s", rq->method,
			               t->base.bucket, rq->key ? rq->key : "", name,
			               errbuf[0] ? errbuf : curl_easy_strerror(rc));
		}
	}
out:
	if (h)
		handle_put(t, h);
	curl_slist_free_all(hl);
	sigv4_result_free(&sig);
	buf_free(&host);
	buf_free(&url);
	buf_free(&line);
	return ret;
}

int s3_fail(struct s3_target *t, const struct s3_resp *resp, const char *key, char *code,
            size_t codesz, struct ierr *e)
{
	struct s3_error err;
	char hint[160] = "";

	s3_parse_error(resp->status, resp->body.data, resp->body.len, &err);
	if (resp->body.len == 0 && resp->error_code[0])
		snprintf(err.code, sizeof(err.code), "%s", resp->error_code);
	if (err.region[0] == '\0' && resp->bucket_region[0])
		snprintf(err.region, sizeof(err.region), "%s", resp->bucket_region);
	if (err.region[0] &&
	    (resp->status == 301 || resp->status == 307 ||
	     strcmp(err.code, "AuthorizationHeaderMalformed") == 0 ||
	     strcmp(err.code, "PermanentRedirect") == 0) &&
	    strcmp(err.region, t->ep.region) != 0)
		snprintf(hint, sizeof(hint), " (the bucket is in region %s; set AWS_REGION=%s)",
		         err.region, err.region);
	snprintf(code, codesz, "%s", err.code);
	return ierr_set(e, s3_classify(resp->status, err.code), "S3 %ld %s for s3://%s/%s: %s%s",
	                resp->status, err.code, t->base.bucket, key ? key : "",
	                err.message[0] ? err.message : "(no message)", hint);
}
