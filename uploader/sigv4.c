/*
 * sigv4.c - AWS Signature Version 4 (S3 flavour), see sigv4.h.
 *
 * The four steps of the S3 API reference, in order:
 *   1. canonical request: method, UriEncode(path) keeping '/', the query
 *      parameters UriEncode'd and sorted by name then value, the canonical
 *      headers (lowercase name ':' trimmed value, sorted), the signed header
 *      names, the payload hash;
 *   2. string to sign: algorithm, x-amz-date, scope, hex SHA-256 of step 1;
 *   3. signing key: HMAC chain "AWS4"+secret -> date -> region -> service ->
 *      "aws4_request";
 *   4. signature: hex HMAC of step 2 under that key.
 * S3 differs from the generic SigV4 in two ways that matter here: the path is
 * encoded exactly once and never normalised, and x-amz-content-sha256 is
 * required (we always send and sign it).
 *
 * Intermediate keys live on the stack and are wiped before returning.
 */
#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hex.h"
#include "util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A header while the canonical form is built: owned copies. */
struct hdr {
	char *name;  /* lowercase */
	char *value; /* trimmed, as sent */
	char *canon; /* trimmed and inner blanks collapsed, as signed */
	bool sign;
};

struct qparam {
	char *name;  /* encoded */
	char *value; /* encoded */
};

/* Headers that intermediaries or HTTP libraries may add, drop or rewrite:
 * signing them would make a correct request fail verification. */
static const char *const unsigned_headers[] = {
    "user-agent",      "expect", "content-length", "transfer-encoding", "connection",
    "x-amzn-trace-id", NULL,
};

/* Produced by sigv4_sign() itself; a caller-supplied copy would conflict. */
static const char *const reserved_headers[] = {
    "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], s) == 0)
			return true;
	}
	return false;
}

static char *buf_steal(struct buf *b)
{
	char *p;

	buf_cstr(b);
	p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void sigv4_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) && c < 0x80) {
			buf_putc(out, (char)c);
		} else if (c == '-' || c == '.' || c == '_' || c == '~' ||
		           (c == '/' && keep_slash)) {
			buf_putc(out, (char)c);
		} else {
			buf_putc(out, '%');
			buf_putc(out, digits[c >> 4]);
			buf_putc(out, digits[c & 0x0f]);
		}
	}
}

static int digest(const EVP_MD *md, const void *data, size_t len, unsigned char *out,
                  unsigned int *outlen, const char *what, struct ierr *e)
{
	if (EVP_Digest(data, len, out, outlen, md, NULL) != 1)
		return ierr_set(e, IERR_INTERNAL, "%s: the crypto library refused the digest",
		                what);
	return 0;
}

int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_SHA256_HEX_SIZE], struct ierr *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (digest(EVP_sha256(), data, len, md, &n, "SHA-256", e) < 0)
		return -1;
	hex_encode(md, n, out);
	return 0;
}

int sigv4_sha256_base64(const void *data, size_t len, char out[SIGV4_SHA256_BASE64_SIZE],
                        struct ierr *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (digest(EVP_sha256(), data, len, md, &n, "SHA-256", e) < 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
	return 0;
}

int sigv4_md5_base64(const void *data, size_t len, char out[SIGV4_MD5_BASE64_SIZE], struct ierr *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (digest(EVP_md5(), data, len, md, &n, "MD5", e) < 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
	return 0;
}

int sigv4_hex_to_base64(const char *hex, char *out, size_t outsz, struct ierr *e)
{
	unsigned char bytes[64];
	size_t len = strlen(hex);
	size_t n = len / 2;

	if (len == 0 || len % 2 != 0 || n > sizeof(bytes))
		return ierr_set(e, IERR_INTERNAL,
		                "digest \"%.*s\": not a hex digest of 1 to %zu bytes", 80, hex,
		                sizeof(bytes));
	if (outsz < 4 * ((n + 2) / 3) + 1)
		return ierr_set(e, IERR_INTERNAL, "digest: output buffer of %zu bytes too small",
		                outsz);
	if (hex_decode(hex, bytes, n) != 0)
		return ierr_set(e, IERR_INTERNAL, "digest \"%.*s\": not hex", 80, hex);
	EVP_EncodeBlock((unsigned char *)out, bytes, (int)n);
	return 0;
}

static int hmac(const void *key, size_t keylen, const char *msg, size_t msglen,
                unsigned char out[32], struct ierr *e)
{
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &n) ==
	        NULL ||
	    n != 32)
		return ierr_set(e, IERR_INTERNAL,
		                "sigv4: HMAC-SHA256 failed in the crypto library");
	return 0;
}

/* Is the value safe in a header line? */
static bool header_value_ok(const char *v)
{
	return strpbrk(v, "\r\n") == NULL;
}

static bool header_name_ok(const char *n)
{
	if (*n == '\0')
		return false;
	for (; *n; n++) {
		unsigned char c = (unsigned char)*n;

		if (c <= 0x20 || c >= 0x7f || c == ':')
			return false;
	}
	return true;
}

static void trim(const char *v, const char **start, size_t *len)
{
	const char *end = v + strlen(v);

	while (*v == ' ' || *v == '\t')
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*start = v;
	*len = (size_t)(end - v);
}

/* SigV4 "Trimall": trimmed, and runs of blanks inside become one space. */
static char *collapse_blanks(const char *v, size_t n)
{
	struct buf b = {0};
	bool in_blank = false;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == ' ' || v[i] == '\t') {
			in_blank = true;
			continue;
		}
		if (in_blank)
			buf_putc(&b, ' ');
		in_blank = false;
		buf_putc(&b, v[i]);
	}
	return buf_steal(&b);
}

static int cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

static int cmp_qparam(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static void add_hdr(struct hdr *h, size_t *n, const char *name, const char *value)
{
	const char *v;
	size_t vlen;
	struct hdr *x = &h[(*n)++];

	x->name = xstrndup(name, strlen(name));
	for (char *p = x->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	trim(value, &v, &vlen);
	x->value = xstrndup(v, vlen);
	x->canon = collapse_blanks(v, vlen);
	x->sign = !in_list(unsigned_headers, x->name);
}

static void free_hdrs(struct hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
		free(h[i].canon);
	}
	free(h);
}

static bool payload_hash_ok(const char *h)
{
	if (strcmp(h, SIGV4_UNSIGNED_PAYLOAD) == 0 || strncmp(h, "STREAMING-", 10) == 0)
		return true;
	if (strlen(h) != 64)
		return false;
	for (; *h; h++) {
		if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
			return false;
	}
	return true;
}

/* region and service go into the credential scope, '/'-separated. */
static bool scope_part_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x80 || !(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static int check_request(const struct sigv4_request *r, struct ierr *e)
{
	if (r->method == NULL || *r->method == '\0' || !header_name_ok(r->method))
		return ierr_set(e, IERR_INTERNAL, "sigv4: missing or bad HTTP method");
	if (r->path == NULL || r->path[0] != '/')
		return ierr_set(e, IERR_INTERNAL, "sigv4: path \"%.200s\" must start with '/'",
		                r->path ? r->path : "(null)");
	if (!scope_part_ok(r->region))
		return ierr_set(e, IERR_CONFIG, "sigv4: bad region \"%.100s\"",
		                r->region ? r->region : "(null)");
	if (r->service != NULL && !scope_part_ok(r->service))
		return ierr_set(e, IERR_INTERNAL, "sigv4: bad service \"%.100s\"", r->service);
	if (r->access_key == NULL || *r->access_key == '\0' || strpbrk(r->access_key, "/,\r\n "))
		return ierr_set(e, IERR_CONFIG, "sigv4: missing or malformed access key id");
	if (r->secret_key == NULL || *r->secret_key == '\0')
		return ierr_set(e, IERR_CONFIG, "sigv4: missing secret access key");
	if (r->session_token != NULL && !header_value_ok(r->session_token))
		return ierr_set(e, IERR_CONFIG, "sigv4: session token contains a line break");
	if (r->payload_hash != NULL && !payload_hash_ok(r->payload_hash))
		return ierr_set(e, IERR_INTERNAL,
		                "sigv4: payload hash \"%.80s\" is neither 64 lowercase hex "
		                "digits nor UNSIGNED-PAYLOAD",
		                r->payload_hash);
	return 0;
}

/* Collect, validate and sort the headers; add the ones we own. */
static struct hdr *build_headers(const struct sigv4_request *r, const char *amz_date,
                                 const char *payload_hash, size_t *count, struct ierr *e)
{
	struct hdr *h = xcalloc(r->nheaders + 3, sizeof(*h));
	size_t n = 0;
	bool have_host = false;

	for (size_t i = 0; i < r->nheaders; i++) {
		const char *name = r->headers[i].name;
		const char *value = r->headers[i].value ? r->headers[i].value : "";

		if (name == NULL || !header_name_ok(name)) {
			ierr_set(e, IERR_INTERNAL, "sigv4: bad header name \"%.100s\"",
			         name ? name : "(null)");
			goto fail;
		}
		if (!header_value_ok(value)) {
			ierr_set(e, IERR_INTERNAL,
			         "sigv4: header %.100s: value contains a line break", name);
			goto fail;
		}
		add_hdr(h, &n, name, value);
		if (in_list(reserved_headers, h[n - 1].name)) {
			ierr_set(e, IERR_INTERNAL,
			         "sigv4: header %s is set by the signer, not the caller",
			         h[n - 1].name);
			goto fail;
		}
		if (strcmp(h[n - 1].name, "host") == 0) {
			if (h[n - 1].value[0] == '\0') {
				ierr_set(e, IERR_INTERNAL, "sigv4: empty host header");
				goto fail;
			}
			have_host = true;
		}
	}
	if (!have_host) {
		ierr_set(e, IERR_INTERNAL, "sigv4: the host header is required");
		goto fail;
	}
	add_hdr(h, &n, "x-amz-date", amz_date);
	add_hdr(h, &n, "x-amz-content-sha256", payload_hash);
	if (r->session_token != NULL && *r->session_token != '\0')
		add_hdr(h, &n, "x-amz-security-token", r->session_token);
	qsort(h, n, sizeof(*h), cmp_hdr);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(h[i - 1].name, h[i].name) == 0) {
			ierr_set(e, IERR_INTERNAL, "sigv4: header %s given more than once",
			         h[i].name);
			goto fail;
		}
	}
	*count = n;
	return h;
fail:
	free_hdrs(h, n);
	return NULL;
}

static void build_query(const struct sigv4_request *r, struct buf *out)
{
	struct qparam *q;

	if (r->nquery == 0)
		return;
	q = xcalloc(r->nquery, sizeof(*q));
	for (size_t i = 0; i < r->nquery; i++) {
		struct buf nb = {0}, vb = {0};
		const char *name = r->query[i].name ? r->query[i].name : "";
		const char *value = r->query[i].value ? r->query[i].value : "";

		sigv4_uri_encode(&nb, name, strlen(name), false);
		sigv4_uri_encode(&vb, value, strlen(value), false);
		q[i].name = buf_steal(&nb);
		q[i].value = buf_steal(&vb);
	}
	qsort(q, r->nquery, sizeof(*q), cmp_qparam);
	for (size_t i = 0; i < r->nquery; i++) {
		if (i > 0)
			buf_putc(out, '&');
		buf_printf(out, "%s=%s", q[i].name, q[i].value);
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
}

static int signing_key(const struct sigv4_request *r, const char *date, const char *service,
                       unsigned char key[32], struct ierr *e)
{
	struct buf k = {0};
	unsigned char a[32], b[32];
	int rc = -1;

	buf_printf(&k, "AWS4%s", r->secret_key);
	if (hmac(k.data, k.len, date, strlen(date), a, e) < 0 ||
	    hmac(a, sizeof(a), r->region, strlen(r->region), b, e) < 0 ||
	    hmac(b, sizeof(b), service, strlen(service), a, e) < 0 ||
	    hmac(a, sizeof(a), "aws4_request", 12, key, e) < 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(k.data, k.cap);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	buf_free(&k);
	return rc;
}

int sigv4_sign(const struct sigv4_request *req, struct sigv4_result *out, struct ierr *e)
{
	const char *service = req->service ? req->service : "s3";
	const char *payload_hash = req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256;
	char date[9], creq_hash[SIGV4_SHA256_HEX_SIZE];
	unsigned char key[32], sig[32];
	struct hdr *h = NULL;
	size_t nh = 0;
	struct tm tm;

	memset(out, 0, sizeof(*out));
	if (check_request(req, e) < 0)
		return -1;
	if (gmtime_r(&req->when, &tm) == NULL || tm.tm_year + 1900 < 1970 ||
	    tm.tm_year + 1900 > 9999)
		return ierr_set(e, IERR_INTERNAL, "sigv4: signing time %lld out of range",
		                (long long)req->when);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';

	h = build_headers(req, out->amz_date, payload_hash, &nh, e);
	if (h == NULL)
		return -1;

	/* 1. canonical request */
	sigv4_uri_encode(&out->canonical_uri, req->path, strlen(req->path), true);
	buf_cstr(&out->canonical_uri);
	build_query(req, &out->canonical_query);
	buf_cstr(&out->canonical_query);
	for (size_t i = 0; i < nh; i++) {
		if (!h[i].sign)
			continue;
		if (out->signed_headers.len > 0)
			buf_putc(&out->signed_headers, ';');
		buf_puts(&out->signed_headers, h[i].name);
	}
	buf_cstr(&out->signed_headers);
	buf_printf(&out->canonical_request, "%s\n%s\n%s\n", req->method, out->canonical_uri.data,
	           out->canonical_query.data);
	for (size_t i = 0; i < nh; i++) {
		if (h[i].sign)
			buf_printf(&out->canonical_request, "%s:%s\n", h[i].name, h[i].canon);
	}
	buf_printf(&out->canonical_request, "\n%s\n%s", out->signed_headers.data, payload_hash);
	buf_cstr(&out->canonical_request);

	/* 2. string to sign */
	if (sigv4_sha256_hex(out->canonical_request.data, out->canonical_request.len, creq_hash,
	                     e) < 0)
		goto fail;
	buf_printf(&out->string_to_sign, ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date,
	           date, req->region, service, creq_hash);

	/* 3. and 4. */
	if (signing_key(req, date, service, key, e) < 0)
		goto fail;
	if (hmac(key, sizeof(key), out->string_to_sign.data, out->string_to_sign.len, sig, e) < 0) {
		OPENSSL_cleanse(key, sizeof(key));
		goto fail;
	}
	OPENSSL_cleanse(key, sizeof(key));
	hex_encode(sig, sizeof(sig), out->signature);

	buf_printf(&out->authorization,
	           ALGORITHM " Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,Signature=%s",
	           req->access_key, date, req->region, service, out->signed_headers.data,
	           out->signature);
	buf_cstr(&out->authorization);

	/* What goes on the wire: every header, then the authorization. */
	out->headers = xcalloc(nh + 1, sizeof(*out->headers));
	for (size_t i = 0; i < nh; i++) {
		out->headers[i].name = h[i].name;
		out->headers[i].value = h[i].value;
		h[i].name = NULL;
		h[i].value = NULL;
	}
	out->headers[nh].name = xstrndup("authorization", 13);
	out->headers[nh].value = xstrndup(out->authorization.data, out->authorization.len);
	out->nheaders = nh + 1;
	free_hdrs(h, nh);
	return 0;
fail:
	free_hdrs(h, nh);
	sigv4_result_free(out);
	return -1;
}

void sigv4_result_free(struct sigv4_result *r)
{
	buf_free(&r->canonical_uri);
	buf_free(&r->canonical_query);
	buf_free(&r->canonical_request);
	buf_free(&r->string_to_sign);
	buf_free(&r->signed_headers);
	buf_free(&r->authorization);
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		if (r->headers[i].value != NULL)
			OPENSSL_cleanse(r->headers[i].value, strlen(r->headers[i].value));
		free(r->headers[i].value);
	}
	free(r->headers);
	memset(r, 0, sizeof(*r));
}
