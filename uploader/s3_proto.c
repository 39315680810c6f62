/*
 * s3_proto.c - the pure half of the S3 protocol (see s3.h): endpoint parsing
 * and URL building (virtual-hosted or path style), a small XML text
 * extractor (bounded, never trusts the input), S3 error parsing and
 * classification of HTTP statuses, S3 codes and curl results, and the
 * digests a multipart upload is checked against. Nothing here does I/O,
 * allocates beyond a struct buf, or blocks; the fuzz target s3xml and
 * tests/unit/test_s3.c drive it directly. The request code is s3_http.c.
 * The base URL parser and the classifications are declared in aws_http.h:
 * the Glue client (glue.c) uses them too.
 */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "hex.h"

/* ================================================================ addressing */

int aws_base_url_parse(const char *key, const char *url, char *scheme, size_t scheme_sz, char *host,
                       size_t host_sz, char *base_path, size_t base_path_sz, struct ierr *e)
{
	const char *p = strstr(url, "://");
	const char *slash;
	size_t hlen;

	if (p == NULL || !((p - url == 4 && strncasecmp(url, "http", 4) == 0) ||
	                   (p - url == 5 && strncasecmp(url, "https", 5) == 0)))
		return ierr_set(e, IERR_CONFIG, "%s: \"%.200s\" is not an http:// or https:// URL",
		                key, url);
	snprintf(scheme, scheme_sz, "%s", p - url == 4 ? "http" : "https");
	p += 3;
	slash = strchr(p, '/');
	hlen = slash ? (size_t)(slash - p) : strlen(p);
	if (memchr(p, '@', hlen) != NULL) /* user:password@: never echoed */
		return ierr_set(e, IERR_CONFIG,
		                "%s: credentials in the URL are not supported (use the AWS_* keys)",
		                key);
	if (hlen == 0 || hlen >= host_sz || strpbrk(url, "?# \t\r\n") != NULL)
		return ierr_set(e, IERR_CONFIG,
		                "%s: \"%.200s\" is not a base URL (scheme://host[:port][/path])",
		                key, url);
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	for (char *h = host; *h; h++)
		*h = (char)tolower((unsigned char)*h);
	base_path[0] = '\0';
	if (slash) {
		snprintf(base_path, base_path_sz, "%s", slash);
		for (size_t n = strlen(base_path); n > 0 && base_path[n - 1] == '/'; n--)
			base_path[n - 1] = '\0';
	}
	return 0;
}

int s3_endpoint_init(struct s3_endpoint *ep, const char *endpoint, const char *force,
                     const char *bucket, const char *region, struct ierr *e)
{
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->region, sizeof(ep->region), "%s", region && *region ? region : "us-east-1");
	snprintf(ep->scheme, sizeof(ep->scheme), "https");
	if (endpoint && *endpoint &&
	    aws_base_url_parse("S3_ENDPOINT", endpoint, ep->scheme, sizeof(ep->scheme), ep->host,
	                       sizeof(ep->host), ep->base_path, sizeof(ep->base_path), e) != 0)
		return -1;
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
				while (j < n && j - i < 12 && hex_digit((unsigned char)s[j]) >= 0) {
					int d = hex_digit((unsigned char)s[j]);

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
