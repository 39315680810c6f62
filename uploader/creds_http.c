/*
 * creds_http.c - steps 3 and 4 of the credentials chain: ECS container
 * credentials and EC2 instance metadata (IMDSv2), over libcurl (see creds.h
 * for the endpoints and the keys that configure them).
 *
 * Contract: creds_fetch_ecs() and creds_fetch_imds() make the requests, parse
 * the credentials JSON both services answer (AccessKeyId, SecretAccessKey,
 * Token, Expiration; IMDS also Code "Success") and return the credentials or
 * an error that says whether retrying later is worth it. They only read the
 * struct creds_endpoints they are given, so they need no lock of their own
 * (creds.c calls them under the provider's mutex). Tokens, answer bodies and
 * headers that carried secrets are wiped before they are freed; messages name
 * the step and, for ECS, only the scheme and host of the URI (its path may be
 * a capability), never a secret or the answer body.
 *
 * Endpoint requests never go through a proxy (a proxy must not see metadata
 * traffic), never follow redirects and read at most 64 KiB. A request is
 * retried after a network error or 5xx, ep->retries times, 100 ms apart.
 *
 * Limits: one fresh curl handle (and connection) per request; no IMDS token
 * caching between fetches (fetches are rare: once per credentials lifetime).
 */
#include "creds_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#define IMDS_TOKEN_TTL  "21600"
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"
#define MAX_RESPONSE    (64 * 1024)

/* ---- small helpers --------------------------------------------------------- */

/* "2024-05-01T12:34:56Z", optional fraction, "Z" or "+00:00". 0 on error. */
static time_t parse_iso8601(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	const char *rest;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n == 0)
		return 0;
	rest = s + n;
	if (*rest == '.') {
		rest++;
		while (isdigit((unsigned char)*rest))
			rest++;
	}
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && strcmp(rest, "+0000") != 0)
		return 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return 0;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return timegm(&tm);
}

/* scheme://host[:port] of a URL, for messages (paths may be capabilities). */
static void url_origin(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	size_t len;

	p = p ? p + 3 : url;
	len = strcspn(p, "/?#");
	snprintf(out, n, "%.*s%.*s", (int)(p - url), url, (int)len, p);
}

/* ---- HTTP and the credentials JSON ----------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > MAX_RESPONSE)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	buf_append(b, ptr, n);
	return n;
}

/*
 * One request with retries on network errors and 5xx. `what` names the step
 * for messages ("imds: PUT /latest/api/token"). On a transport failure after
 * all attempts returns -1 with *e set (IERR_TRANSIENT); otherwise 0 with
 * *status and *body (NUL-terminated) filled, whatever the status.
 * *timed_out (if not NULL) tells whether the last failure was a timeout.
 */
static int http_request(const struct creds_endpoints *ep, const char *method, const char *url,
                        const char *const *headers, const char *what, long *status,
                        struct buf *body, bool *timed_out, struct ierr *e)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hl = NULL;
	CURL *h = curl_easy_init();
	CURLcode rc = CURLE_OK;
	int attempt;

	if (h == NULL)
		return ierr_set(e, IERR_INTERNAL, "%s: cannot create a libcurl handle", what);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (strcmp(method, "PUT") == 0) {
		/* A bodiless PUT with Content-Length: 0, without the form
		 * content type libcurl would add. */
		hl = curl_slist_append(hl, "Content-Type:");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ep->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ep->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	for (attempt = 0; attempt <= ep->retries; attempt++) {
		if (attempt > 0)
			usleep(100 * 1000);
		buf_reset(body);
		errbuf[0] = '\0';
		*status = 0;
		rc = curl_easy_perform(h);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
			if (*status < 500)
				break;
		}
	}
	if (timed_out != NULL)
		*timed_out = (rc == CURLE_OPERATION_TIMEDOUT);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	buf_cstr(body);
	if (rc != CURLE_OK)
		return ierr_set(e, IERR_TRANSIENT, "%s: %s", what,
		                errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return 0;
}

/* Take AccessKeyId, SecretAccessKey, Token, Expiration from an ECS or IMDS
 * answer. `what` prefixes messages; never quotes the body. */
static int parse_creds_json(const char *body, const char *what, bool need_code, struct aws_creds *c,
                            struct ierr *e)
{
	json_error_t jerr;
	json_t *root = json_loads(body, 0, &jerr);
	const char *ak, *sk, *tok, *exp, *code;
	int rc = -1;

	if (root == NULL) {
		ierr_set(e, IERR_TRANSIENT, "%s: answer is not JSON (line %d, column %d)", what,
		         jerr.line, jerr.column); /* not jerr.text: it quotes the input */
		goto out;
	}
	if (!json_is_object(root)) {
		ierr_set(e, IERR_TRANSIENT, "%s: answer is not a JSON object", what);
		goto out;
	}
	code = json_string_value(json_object_get(root, "Code"));
	if (need_code && (code == NULL || strcmp(code, "Success") != 0)) {
		ierr_set(e, IERR_TRANSIENT, "%s: Code is \"%.60s\", not \"Success\"", what,
		         code ? code : "(missing)");
		goto out;
	}
	ak = json_string_value(json_object_get(root, "AccessKeyId"));
	sk = json_string_value(json_object_get(root, "SecretAccessKey"));
	tok = json_string_value(json_object_get(root, "Token"));
	exp = json_string_value(json_object_get(root, "Expiration"));
	if (!creds_one_line(ak) || !creds_one_line(sk)) {
		ierr_set(e, IERR_TRANSIENT,
		         "%s: answer lacks a valid AccessKeyId or SecretAccessKey", what);
		goto out;
	}
	if (tok != NULL && *tok != '\0' && !creds_one_line(tok)) {
		ierr_set(e, IERR_TRANSIENT, "%s: Token contains a line break", what);
		goto out;
	}
	memset(c, 0, sizeof(*c));
	if (exp != NULL) {
		c->expiration = parse_iso8601(exp);
		if (c->expiration == 0) {
			ierr_set(e, IERR_TRANSIENT, "%s: Expiration \"%.40s\" is not ISO 8601 UTC",
			         what, exp);
			goto out;
		}
	}
	c->access_key = xstrdup(ak);
	c->secret_key = xstrdup(sk);
	c->session_token = (tok != NULL && *tok != '\0') ? xstrdup(tok) : NULL;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- ECS container credentials --------------------------------------------- */

static bool allowed_http_host(const char *host)
{
	unsigned char a[16];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127 || strcmp(host, "169.254.170.2") == 0 ||
		       strcmp(host, "169.254.170.23") == 0;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char loop6[16] = {[15] = 1};
		static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};

		return memcmp(a, loop6, 16) == 0 || memcmp(a, eks6, 16) == 0;
	}
	return false;
}

/* The SDK rule for AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere, plain
 * http only to this host or the container agent. */
int creds_check_full_uri(const char *uri, struct ierr *e)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;

	if (u == NULL)
		return ierr_set(e, IERR_INTERNAL, "AWS_CONTAINER_CREDENTIALS_FULL_URI: no memory");
	if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		ierr_set(e, IERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI: not a URL");
		goto out;
	}
	if (strcmp(scheme, "https") == 0) {
		rc = 0;
	} else if (strcmp(scheme, "http") == 0) {
		size_t n = strlen(host);

		if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
			memmove(host, host + 1, n - 2);
			host[n - 2] = '\0';
		}
		if (allowed_http_host(host))
			rc = 0;
		else
			ierr_set(
			    e, IERR_CONFIG,
			    "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to "
			    "loopback or 169.254.170.2/169.254.170.23, not to %.100s",
			    host);
	} else {
		ierr_set(e, IERR_CONFIG,
		         "AWS_CONTAINER_CREDENTIALS_FULL_URI: scheme %.20s is not "
		         "http or https",
		         scheme);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* The Authorization header value: the token file wins, re-read each time
 * (EKS Pod Identity rotates it). NULL with *e set on error; "" for none. */
static char *ecs_auth_token(const struct creds_endpoints *ep, struct ierr *e)
{
	struct buf text = {0};
	char *tok;
	int rc;

	if (ep->ecs_token_file == NULL)
		return xstrdup(ep->ecs_token ? ep->ecs_token : "");
	rc =
	    creds_read_file(ep->ecs_token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &text, e);
	if (rc == 0)
		ierr_set(e, IERR_CONFIG,
		         "AWS credentials: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: "
		         "no such file",
		         ep->ecs_token_file);
	if (rc <= 0) {
		buf_free(&text);
		return NULL;
	}
	tok = xstrdup(creds_trim(text.data));
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	return tok;
}

int creds_fetch_ecs(const struct creds_endpoints *ep, struct aws_creds *c, struct ierr *e)
{
	struct buf url = {0}, hdr = {0}, body = {0};
	char origin[160], what[200];
	const char *headers[3] = {"Accept: application/json", NULL, NULL};
	char *tok;
	long status = 0;
	int rc = -1;

	if (ep->ecs_relative_uri != NULL)
		buf_printf(&url, "%s%s", ep->ecs_base, ep->ecs_relative_uri);
	else
		buf_puts(&url, ep->ecs_full_uri);
	buf_cstr(&url);
	url_origin(url.data, origin, sizeof(origin));
	snprintf(what, sizeof(what), "AWS credentials: ecs: GET %s", origin);

	tok = ecs_auth_token(ep, e);
	if (tok == NULL)
		goto out;
	if (*tok != '\0') {
		if (strpbrk(tok, "\r\n") != NULL) {
			ierr_set(e, IERR_CONFIG,
			         "AWS credentials: the container authorization token contains a "
			         "line break");
			goto out;
		}
		buf_printf(&hdr, "Authorization: %s", tok);
		headers[1] = buf_cstr(&hdr);
	}
	if (http_request(ep, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
		goto out;
	if (status != 200) {
		ierr_set(e, status >= 500 || status == 429 ? IERR_TRANSIENT : IERR_CONFIG,
		         "%s: HTTP %ld%s", what, status,
		         status == 401 || status == 403 ? " (authorization token refused)" : "");
		goto out;
	}
	if (parse_creds_json(body.data, what, false, c, e) < 0)
		goto out;
	snprintf(c->source, sizeof(c->source), "ecs");
	rc = 0;
out:
	creds_free_secret(tok);
	if (hdr.data != NULL)
		OPENSSL_cleanse(hdr.data, hdr.len);
	buf_free(&hdr);
	if (body.data != NULL)
		OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	buf_free(&url);
	return rc;
}

/* ---- EC2 instance metadata ------------------------------------------------- */

static bool role_name_ok(const char *r)
{
	if (*r == '\0' || strlen(r) > 64)
		return false;
	for (; *r; r++) {
		unsigned char ch = (unsigned char)*r;

		if (ch >= 0x80 || !(isalnum(ch) || strchr("+=,.@_-", ch)))
			return false;
	}
	return true;
}

int creds_fetch_imds(const struct creds_endpoints *ep, struct aws_creds *c, struct ierr *e)
{
	struct buf url = {0}, tokhdr = {0}, body = {0};
	const char *headers[2] = {NULL, NULL};
	char what[256], role[80];
	bool v1 = false, timed_out = false;
	long status = 0;
	int rc = -1;

	/* the session token */
	buf_printf(&url, "%s/latest/api/token", ep->imds_endpoint);
	snprintf(what, sizeof(what), "AWS credentials: imds: PUT %s", buf_cstr(&url));
	headers[0] = "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL;
	if (http_request(ep, "PUT", url.data, headers, what, &status, &body, &timed_out, e) < 0) {
		/* A hop limit of 1 behind a container bridge shows up as a timeout. */
		if (!ep->imds_v1 || !timed_out)
			goto out;
		v1 = true;
	} else if (status == 200) {
		const char *t = creds_trim(body.data);

		if (!creds_one_line(t)) {
			ierr_set(e, IERR_TRANSIENT, "%s: empty or malformed token", what);
			goto out;
		}
		buf_printf(&tokhdr, "X-aws-ec2-metadata-token: %s", t);
		headers[0] = buf_cstr(&tokhdr);
	} else if ((status == 404 || status == 405) && ep->imds_v1) {
		v1 = true;
	} else if (status == 404 || status == 405) {
		ierr_set(e, IERR_CONFIG,
		         "%s: HTTP %ld, IMDSv2 not available, and IMDSv1 fallback is off "
		         "(AWS_EC2_METADATA_V1_FALLBACK=true allows it)",
		         what, status);
		goto out;
	} else {
		ierr_set(e, status >= 500 ? IERR_TRANSIENT : IERR_CONFIG, "%s: HTTP %ld%s", what,
		         status,
		         status == 403 ? " (instance metadata disabled for this instance)" : "");
		goto out;
	}
	if (v1)
		headers[0] = NULL;

	/* the role name */
	buf_reset(&url);
	buf_printf(&url, "%s" IMDS_CREDS_PATH, ep->imds_endpoint);
	snprintf(what, sizeof(what), "AWS credentials: imds: GET %s", buf_cstr(&url));
	if (http_request(ep, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
		goto out;
	if (status != 200) {
		ierr_set(e, status >= 500 ? IERR_TRANSIENT : IERR_CONFIG, "%s: HTTP %ld%s", what,
		         status,
		         status == 404   ? " (no IAM role attached to the instance)"
		         : status == 401 ? " (token refused)"
		                         : "");
		goto out;
	}
	body.data[strcspn(body.data, "\r\n")] = '\0';
	snprintf(role, sizeof(role), "%s", creds_trim(body.data));
	if (!role_name_ok(role)) {
		ierr_set(e, IERR_TRANSIENT, "%s: no valid role name in the answer", what);
		goto out;
	}

	/* the role's credentials */
	buf_printf(&url, "%s", role);
	snprintf(what, sizeof(what), "AWS credentials: imds: GET %s", buf_cstr(&url));
	if (http_request(ep, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
		goto out;
	if (status != 200) {
		ierr_set(e, status >= 500 ? IERR_TRANSIENT : IERR_CONFIG, "%s: HTTP %ld", what,
		         status);
		goto out;
	}
	if (parse_creds_json(body.data, what, true, c, e) < 0)
		goto out;
	snprintf(c->source, sizeof(c->source), "imds:%s%s", role, v1 ? " (IMDSv1)" : "");
	rc = 0;
out:
	if (tokhdr.data != NULL)
		OPENSSL_cleanse(tokhdr.data, tokhdr.len);
	buf_free(&tokhdr);
	if (body.data != NULL)
		OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	buf_free(&url);
	return rc;
}
