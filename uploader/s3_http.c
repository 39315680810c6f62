/*
 * s3_http.c - the S3 request layer and its pure helpers (see s3.h).
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
 *
 * The rest of the file is pure: endpoint parsing and URL building, a small
 * XML text extractor (bounded, never trusts the input), S3 error parsing and
 * classification, digests.
 */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hex.h"
#include "ingesta_build.h"
#include "log.h"
#include "util.h"

/* ================================================================ addressing */

int s3_endpoint_init(struct s3_endpoint *ep, const char *endpoint, const char *force,
                     const char *bucket, const char *region, struct ierr *e)
{
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->region, sizeof(ep->region), "%s", region && *region ? region : "us-east-1");
	snprintf(ep->scheme, sizeof(ep->scheme), "https");
	if (endpoint && *endpoint) {
		const char *p = strstr(endpoint, "://");
		const char *slash;
		size_t hlen;

		if (p == NULL || !((p - endpoint == 4 && strncasecmp(endpoint, "http", 4) == 0) ||
		                   (p - endpoint == 5 && strncasecmp(endpoint, "https", 5) == 0)))
			return ierr_set(e, IERR_CONFIG,
			                "S3_ENDPOINT: \"%.200s\" is not an http:// or https:// URL",
			                endpoint);
		snprintf(ep->scheme, sizeof(ep->scheme), "%s",
		         p - endpoint == 4 ? "http" : "https");
		p += 3;
		slash = strchr(p, '/');
		hlen = slash ? (size_t)(slash - p) : strlen(p);
		if (memchr(p, '@', hlen) != NULL) /* user:password@: never echoed */
			return ierr_set(e, IERR_CONFIG,
			                "S3_ENDPOINT: credentials in the URL are not supported "
			                "(use the AWS_* keys)");
		if (hlen == 0 || hlen >= sizeof(ep->host) || strpbrk(endpoint, "?# \t\r\n") != NULL)
			return ierr_set(e, IERR_CONFIG,
			                "S3_ENDPOINT: \"%.200s\" is not a base URL "
			                "(scheme://host[:port][/path])",
			                endpoint);
		memcpy(ep->host, p, hlen);
		ep->host[hlen] = '\0';
		for (char *h = ep->host; *h; h++)
			*h = (char)tolower((unsigned char)*h);
		if (slash) {
			snprintf(ep->base_path, sizeof(ep->base_path), "%s", slash);
			for (size_t n = strlen(ep->base_path); n > 0 && ep->base_path[n - 1] == '/';
			     n--)
				ep->base_path[n - 1] = '\0';
		}
	}
	if (force && strcmp(force, "true") == 0)
		ep->path_style = true;
	else if (force && strcmp(force, "false") == 0)
		ep->path_style = false;
	else
		ep->path_style = ep->host[0] != '\0' || strchr(bucket, '.') != NULL;
	return 0;
}

static void aws_host(const struct s3_endpoint *ep, struct buf *host)
{
	buf_printf(host, "s3.%s.amazonaws.com%s", ep->region,
	           strncmp(ep->region, "cn-", 3) == 0 ? ".cn" : "");
}

void s3_location(const struct s3_endpoint *ep, const char *bucket, const char *key,
                 struct buf *host, struct buf *path)
{
	if (!ep->path_style)
		buf_printf(host, "%s.", bucket);
	if (ep->host[0])
		buf_puts(host, ep->host);
	else
		aws_host(ep, host);
	buf_puts(path, ep->base_path);
	if (ep->path_style)
		buf_printf(path, "/%s", bucket);
	buf_putc(path, '/');
	if (key && *key)
		buf_puts(path, key);
	/* Path-style bucket URL: "/bucket/" signs and works like "/bucket". */
}

/* ================================================================ XML */

static bool tag_ends(char c)
{
	return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decode the five XML entities and numeric references; others are copied. */
static void xml_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < outsz;) {
		char c = s[i];

		if (c == '&') {
			static const struct {
				const char *name;
				char c;
			} ent[] = {{"&amp;", '&'},
			           {"&lt;", '<'},
			           {"&gt;", '>'},
			           {"&quot;", '"'},
			           {"&apos;", '\''}};
			bool done = false;

			for (size_t k = 0; k < sizeof(ent) / sizeof(ent[0]); k++) {
				size_t l = strlen(ent[k].name);

				if (n - i >= l && memcmp(s + i, ent[k].name, l) == 0) {
					out[o++] = ent[k].c;
					i += l;
					done = true;
					break;
				}
			}
			if (!done && n - i > 3 && s[i + 1] == '#') {
				size_t j = i + 2;
				unsigned long v = 0;
				bool hex = j < n && (s[j] == 'x' || s[j] == 'X');

				if (hex)
					j++;
				while (j < n && j - i < 12 && isxdigit((unsigned char)s[j])) {
					int d = isdigit((unsigned char)s[j])
					            ? s[j] - '0'
					            : tolower((unsigned char)s[j]) - 'a' + 10;

					if (!hex && d > 9)
						break;
					v = v * (hex ? 16 : 10) + (unsigned long)d;
					j++;
				}
				if (j < n && s[j] == ';' && v > 0 && v < 0x80) {
					out[o++] = (char)v;
					i = j + 1;
					done = true;
				} else if (j < n && s[j] == ';' && v >= 0x80) {
					out[o++] =
					    '?'; /* non-ASCII reference: not worth UTF-8 here */
					i = j + 1;
					done = true;
				}
			}
			if (done)
				continue;
		}
		/* Control characters would break one-line logs and messages. */
		out[o++] = (unsigned char)c < 0x20 ? ' ' : c;
		i++;
	}
	out[o] = '\0';
}

bool s3_xml_element(const char *xml, size_t len, const char *tag, size_t *start, size_t *end,
                    size_t *from)
{
	size_t tl = strlen(tag);
	size_t pos = from ? *from : 0;

	if (xml == NULL || tl == 0 || tl > 128)
		return false;
	while (pos < len) {
		const char *lt = memchr(xml + pos, '<', len - pos);
		const char *p;
		size_t open, gt;
		char close[140];

		if (lt == NULL)
			return false;
		open = (size_t)(lt - xml);
		pos = open + 1;
		if (len - open < tl + 2 || memcmp(xml + open + 1, tag, tl) != 0 ||
		    !tag_ends(xml[open + 1 + tl]))
			continue;
		p = memchr(xml + open, '>', len - open);
		if (p == NULL)
			return false;
		gt = (size_t)(p - xml);
		if (xml[gt - 1] == '/') { /* <Tag/> */
			*start = *end = gt + 1;
			if (from)
				*from = gt + 1;
			return true;
		}
		snprintf(close, sizeof(close), "</%s>", tag);
		p = memmem(xml + gt + 1, len - gt - 1, close, tl + 3);
		if (p == NULL)
			return false;
		*start = gt + 1;
		*end = (size_t)(p - xml);
		if (from)
			*from = *end + tl + 3;
		return true;
	}
	return false;
}

bool s3_xml_text(const char *xml, size_t len, const char *tag, char *out, size_t outsz,
                 size_t *from)
{
	size_t start, end;

	if (outsz > 0)
		out[0] = '\0';
	if (!s3_xml_element(xml, len, tag, &start, &end, from))
		return false;
	if (outsz > 0)
		xml_decode(xml + start, end - start, out, outsz);
	return true;
}

/* ================================================================ errors */

const char *s3_status_name(long status)
{
	switch (status) {
	case 301:
		return "PermanentRedirect";
	case 302:
		return "Found";
	case 304:
		return "NotModified";
	case 307:
		return "TemporaryRedirect";
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 408:
		return "RequestTimeout";
	case 409:
		return "Conflict";
	case 411:
		return "LengthRequired";
	case 412:
		return "PreconditionFailed";
	case 416:
		return "InvalidRange";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 501:
		return "NotImplemented";
	case 502:
		return "BadGateway";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "GatewayTimeout";
	default:
		return NULL;
	}
}

void s3_parse_error(long status, const char *body, size_t len, struct s3_error *out)
{
	memset(out, 0, sizeof(*out));
	out->status = status;
	if (body && len > 0) {
		s3_xml_text(body, len, "Code", out->code, sizeof(out->code), NULL);
		s3_xml_text(body, len, "Message", out->message, sizeof(out->message), NULL);
		s3_xml_text(body, len, "Region", out->region, sizeof(out->region), NULL);
	}
	/* A code is one identifier; anything else is not a code we can trust. */
	for (const char *p = out->code; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
			out->code[0] = '\0';
			break;
		}
	}
	if (out->code[0] == '\0') {
		const char *name = s3_status_name(status);

		if (name)
			snprintf(out->code, sizeof(out->code), "%s", name);
		else
			snprintf(out->code, sizeof(out->code), "HTTP%ld", status);
	}
}

enum ierr_code s3_classify(long status, const char *code)
{
	static const char *const transient[] = {
	    "SlowDown",
	    "SlowDownRead",
	    "SlowDownWrite",
	    "RequestTimeout",
	    "InternalError",
	    "ServiceUnavailable",
	    "OperationAborted",
	    "ExpiredToken",
	    "TokenRefreshRequired",
	    "BadDigest",
	    "XAmzContentSHA256Mismatch",
	    "IncompleteBody",
	    "Throttling",
	    "ThrottlingException",
	    "RequestLimitExceeded",
	    "ConditionalRequestConflict",
	    "XMinioServerNotInitialized",
	    "ServerBusy",
	    NULL,
	};

	for (int i = 0; code && transient[i]; i++) {
		if (strcmp(code, transient[i]) == 0)
			return IERR_TRANSIENT;
	}
	if (status == 501)
		return IERR_PERMANENT;
	if (status >= 500 || status == 429 || status == 408 || status == 0)
		return IERR_TRANSIENT;
	if (status >= 200 && status < 300)
		return IERR_TRANSIENT; /* an <Error> inside a 200: S3 says retry */
	return IERR_PERMANENT;
}

enum ierr_code s3_classify_curl(CURLcode rc, const char **name)
{
	const char *n = "NetworkError";
	enum ierr_code c = IERR_TRANSIENT;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		n = "DNSFailure";
		break;
	case CURLE_COULDNT_RESOLVE_PROXY:
		n = "ProxyDNSFailure";
		break;
	case CURLE_COULDNT_CONNECT:
		n = "ConnectFailed";
		break;
	case CURLE_OPERATION_TIMEDOUT:
		n = "Timeout";
		break;
	case CURLE_SEND_ERROR:
	case CURLE_SEND_FAIL_REWIND:
		n = "SendError";
		break;
	case CURLE_RECV_ERROR:
		n = "RecvError";
		break;
	case CURLE_GOT_NOTHING:
		n = "EmptyReply";
		break;
	case CURLE_PARTIAL_FILE:
		n = "PartialResponse";
		break;
	case CURLE_SSL_CONNECT_ERROR:
		n = "TLSHandshake";
		break;
	case CURLE_WEIRD_SERVER_REPLY:
		n = "BadReply";
		break;
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		n = "HTTP2Error";
		break;
	case CURLE_READ_ERROR:
		n = "EIO";
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		n = "Interrupted";
		break;
	case CURLE_OUT_OF_MEMORY:
		n = "OutOfMemory";
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		n = "TLSVerifyFailed";
		c = IERR_PERMANENT;
		break;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
		n = "TLSConfig";
		c = IERR_PERMANENT;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		n = "BadURL";
		c = IERR_PERMANENT;
		break;
	default:
		break;
	}
	if (name)
		*name = n;
	return c;
}

/* ================================================================ digests */

void s3_base64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void digest_concat(const EVP_MD *md, const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned int len = 0;

	EVP_Digest(in, n, out, &len, md, NULL);
}

void s3_multipart_etag(const unsigned char *md5s, int n, char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * 16 + 1];

	digest_concat(EVP_md5(), md5s, (size_t)n * 16, md);
	hex_encode(md, 16, hex);
	snprintf(out, outsz, "%s-%d", hex, n);
}

void s3_multipart_checksum(const unsigned char *shas, int n, char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char b64[64];

	digest_concat(EVP_sha256(), shas, (size_t)n * 32, md);
	s3_base64(md, 32, b64);
	snprintf(out, outsz, "%s-%d", b64, n);
}

void s3_etag_unquote(const char *etag, char *out, size_t outsz)
{
	size_t n;

	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	if (*etag == '"')
		etag++;
	n = strlen(etag);
	if (n > 0 && etag[n - 1] == '"')
		n--;
	snprintf(out, outsz, "%.*s", (int)n, etag);
}

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

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)userp;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return ingesta_stop_requested ? 1 : 0;
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
