/*
 * creds.c - the AWS credentials chain and its refreshing cache (see creds.h).
 *
 * Shape: creds_provider_new() snapshots every key it may need (so the lookup
 * callback is never called from uploader threads); the first creds_get() walks
 * the chain env -> shared files -> ECS -> IMDS and pins the first source that
 * answers; later calls hand out copies of the cached credentials and, for the
 * temporary ones, fetch new ones from the pinned source when the refresh time
 * has come. Everything after the snapshot happens under one mutex.
 *
 * Each chain step returns FOUND, SKIPPED (not configured here; a line is added
 * to the "tried" list) or an error (configured but broken: stop, as the SDKs
 * do, rather than silently using some other identity).
 *
 * Endpoint requests never go through a proxy (a proxy must not see metadata
 * traffic), never follow redirects and read at most 64 KiB.
 */
#include "creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "log.h"

#define ECS_DEFAULT_BASE    "http://169.254.170.2"
#define IMDS_DEFAULT_V4     "http://169.254.169.254"
#define IMDS_DEFAULT_V6     "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL      "21600"
#define IMDS_CREDS_PATH     "/latest/meta-data/iam/security-credentials/"
#define MAX_RESPONSE        (64 * 1024)
#define MAX_FILE            (1024 * 1024)
#define REFRESH_RETRY_DELAY 5 /* s between failed refreshes of still-valid creds */

enum source { SRC_NONE, SRC_ENV, SRC_FILE, SRC_ECS, SRC_IMDS };
enum step { STEP_ERROR = -1, STEP_SKIPPED = 0, STEP_FOUND = 1 };

struct creds_provider {
	pthread_mutex_t mu;

	/* snapshot of the configuration, read once */
	char *env_access_key, *env_secret_key, *env_session_token;
	char *credentials_file, *config_file; /* NULL: unknown HOME */
	char *profile;
	bool profile_explicit;
	char *ecs_relative_uri, *ecs_full_uri, *ecs_token, *ecs_token_file;
	char *ecs_base;
	bool imds_disabled, imds_v1;
	char *imds_endpoint;
	long connect_timeout_ms, timeout_ms;
	int retries, margin;
	bool curl_ready;

	/* state, under mu */
	enum source source;
	struct aws_creds cur;
	time_t refresh_at; /* 0: never */
	char name[128];
};

/* ---- small helpers --------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, "ingesta: out of memory\n");
		abort();
	}
	return p;
}

static void free_secret(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void aws_creds_free(struct aws_creds *c)
{
	free_secret(c->access_key);
	free_secret(c->secret_key);
	free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

static void creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key = xstrdup(src->access_key);
	dst->secret_key = xstrdup(src->secret_key);
	dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
}

/* Trim blanks (and CR/LF) at both ends, in place. */
static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Credential material must fit on one header line. */
static bool one_line(const char *s)
{
	return s != NULL && *s != '\0' && strpbrk(s, "\r\n") == NULL;
}

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

static time_t refresh_time(time_t now, time_t exp, int margin)
{
	time_t at, half;

	if (exp == 0)
		return 0;
	at = exp - margin;
	half = now + (exp - now) / 2;
	return at < half ? half : at;
}

/* ---- HTTP to the metadata endpoints ---------------------------------------- */

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
static int http_request(struct creds_provider *p, const char *method, const char *url,
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
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, p->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	for (attempt = 0; attempt <= p->retries; attempt++) {
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
		ierr_set(e, IERR_TRANSIENT, "%s: answer is not JSON (line %d: %s)", what, jerr.line,
		         jerr.text);
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
	if (!one_line(ak) || !one_line(sk)) {
		ierr_set(e, IERR_TRANSIENT,
		         "%s: answer lacks a valid AccessKeyId or SecretAccessKey", what);
		goto out;
	}
	if (tok != NULL && *tok != '\0' && !one_line(tok)) {
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

/* ---- 1. environment -------------------------------------------------------- */

static enum step try_env(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                         struct ierr *e)
{
	if (p->env_access_key == NULL && p->env_secret_key == NULL) {
		buf_puts(tried, "environment (AWS_ACCESS_KEY_ID not set)");
		return STEP_SKIPPED;
	}
	if (p->env_access_key == NULL || p->env_secret_key == NULL) {
		ierr_set(e, IERR_CONFIG, "AWS credentials: %s is set but %s is not",
		         p->env_access_key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		         p->env_access_key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return STEP_ERROR;
	}
	if (!one_line(p->env_access_key) || !one_line(p->env_secret_key) ||
	    (p->env_session_token && !one_line(p->env_session_token))) {
		ierr_set(e, IERR_CONFIG,
		         "AWS credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
		         "AWS_SESSION_TOKEN contains a line break");
		return STEP_ERROR;
	}
	memset(c, 0, sizeof(*c));
	c->access_key = xstrdup(p->env_access_key);
	c->secret_key = xstrdup(p->env_secret_key);
	c->session_token = p->env_session_token ? xstrdup(p->env_session_token) : NULL;
	snprintf(p->name, sizeof(p->name), "environment");
	return STEP_FOUND;
}

/* ---- 2. shared files ------------------------------------------------------- */

struct profile_keys {
	bool section_found;
	char *access_key, *secret_key, *session_token;
};

static void profile_keys_free(struct profile_keys *k)
{
	free_secret(k->access_key);
	free_secret(k->secret_key);
	free_secret(k->session_token);
	memset(k, 0, sizeof(*k));
}

/* Does the section header text (between the brackets, trimmed) name our
 * profile? The config file prefixes "profile " except for "default". */
static bool section_matches(char *inner, const char *profile, bool config_style)
{
	if (!config_style)
		return strcmp(inner, profile) == 0;
	if (strcmp(inner, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(inner, "profile", 7) == 0 && (inner[7] == ' ' || inner[7] == '\t'))
		return strcmp(trim(inner + 8), profile) == 0;
	return false;
}

/* Strip a " #" or " ;" comment from a value. Secrets are base64 and contain
 * neither, and a '#' glued to the text is kept. */
static void strip_inline_comment(char *v)
{
	for (char *q = v; *q; q++) {
		if ((*q == '#' || *q == ';') && q > v && (q[-1] == ' ' || q[-1] == '\t')) {
			*q = '\0';
			return;
		}
	}
}

/* Parse INI text (modified in place) for the keys of one profile. Sections
 * may repeat; later values win. An indented line after a key with an empty
 * value is a nested setting ("s3 =\n  max_concurrent_requests = 2") and is
 * ignored. */
static void ini_profile(char *text, const char *profile, bool config_style, struct profile_keys *k)
{
	bool in_section = false, nested = false;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		bool indented = (*line == ' ' || *line == '\t');
		char *s = trim(line), *eq, *key, *val, **slot = NULL;

		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strrchr(s, ']');

			nested = false;
			in_section = false;
			if (close == NULL)
				continue;
			*close = '\0';
			in_section = section_matches(trim(s + 1), profile, config_style);
			if (in_section)
				k->section_found = true;
			continue;
		}
		if (nested && indented)
			continue;
		nested = false;
		eq = strchr(s, '=');
		if (!in_section || eq == NULL)
			continue;
		*eq = '\0';
		key = trim(s);
		val = eq + 1;
		strip_inline_comment(val);
		val = trim(val);
		if (*val == '\0') {
			nested = true;
			continue;
		}
		if (strcasecmp(key, "aws_access_key_id") == 0)
			slot = &k->access_key;
		else if (strcasecmp(key, "aws_secret_access_key") == 0)
			slot = &k->secret_key;
		else if (strcasecmp(key, "aws_session_token") == 0)
			slot = &k->session_token;
		if (slot != NULL) {
			free_secret(*slot);
			*slot = xstrdup(val);
		}
	}
}

/* Read a whole file. 1: read; 0: does not exist; -1: error (*e set). */
static int read_file(const char *path, const char *key, struct buf *out, struct ierr *e)
{
	FILE *f = fopen(path, "r");
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return ierr_errno(e, errno, "AWS credentials: %s %s", key, path);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > MAX_FILE) {
			fclose(f);
			return ierr_set(e, IERR_CONFIG,
			                "AWS credentials: %s %s: larger than %d bytes", key, path,
			                MAX_FILE);
		}
		buf_append(out, chunk, n);
	}
	if (ferror(f)) {
		int err = errno;

		fclose(f);
		return ierr_errno(e, err, "AWS credentials: %s %s", key, path);
	}
	fclose(f);
	buf_cstr(out);
	return 1;
}

/* Look for the profile in one file. 1: section found (keys in *k), 0: not. */
static int scan_file(const char *path, const char *key, bool config_style, const char *profile,
                     struct profile_keys *k, struct buf *tried, struct ierr *e)
{
	struct buf text = {0};
	int rc;

	if (path == NULL) {
		buf_printf(tried, "%s: HOME unknown", key);
		return 0;
	}
	rc = read_file(path, key, &text, e);
	if (rc < 0) {
		buf_free(&text);
		return -1;
	}
	if (rc == 0) {
		buf_printf(tried, "%s not found", path);
		buf_free(&text);
		return 0;
	}
	ini_profile(text.data, profile, config_style, k);
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	if (!k->section_found) {
		buf_printf(tried, "%s has no profile %s", path, profile);
		return 0;
	}
	if (k->access_key == NULL && k->secret_key == NULL) {
		buf_printf(tried, "%s: profile %s has no aws_access_key_id", path, profile);
		return 0;
	}
	return 1;
}

static enum step try_files(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                           struct ierr *e)
{
	static const char *const keys[] = {"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"};
	const char *paths[] = {p->credentials_file, p->config_file};
	struct profile_keys k;
	bool any_section = false;

	buf_puts(tried, "shared files (");
	for (int i = 0; i < 2; i++) {
		int rc;

		memset(&k, 0, sizeof(k));
		if (i > 0)
			buf_puts(tried, ", ");
		rc = scan_file(paths[i], keys[i], i == 1, p->profile, &k, tried, e);
		if (rc < 0) {
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		any_section = any_section || k.section_found;
		if (rc == 0) {
			profile_keys_free(&k);
			continue;
		}
		if (k.access_key == NULL || k.secret_key == NULL) {
			ierr_set(e, IERR_CONFIG, "AWS credentials: %s: profile %s has %s but no %s",
			         paths[i], p->profile,
			         k.access_key ? "aws_access_key_id" : "aws_secret_access_key",
			         k.access_key ? "aws_secret_access_key" : "aws_access_key_id");
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		if (!one_line(k.access_key) || !one_line(k.secret_key)) {
			ierr_set(e, IERR_CONFIG, "AWS credentials: %s: profile %s: bad key value",
			         paths[i], p->profile);
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		memset(c, 0, sizeof(*c));
		c->access_key = k.access_key;
		c->secret_key = k.secret_key;
		c->session_token = k.session_token;
		snprintf(p->name, sizeof(p->name), "shared-file:profile %s", p->profile);
		return STEP_FOUND;
	}
	buf_puts(tried, ")");
	if (p->profile_explicit) {
		if (!any_section)
			ierr_set(e, IERR_CONFIG,
			         "AWS credentials: AWS_PROFILE=%s: no such profile in %s or %s",
			         p->profile, paths[0] ? paths[0] : "(no HOME)",
			         paths[1] ? paths[1] : "(no HOME)");
		else
			ierr_set(
			    e, IERR_CONFIG,
			    "AWS credentials: AWS_PROFILE=%s has no aws_access_key_id "
			    "(role_arn, sso and credential_process profiles are not supported)",
			    p->profile);
		return STEP_ERROR;
	}
	return STEP_SKIPPED;
}

/* ---- 3. ECS container credentials ------------------------------------------ */

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
static int check_full_uri(const char *uri, struct ierr *e)
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
static char *ecs_auth_token(struct creds_provider *p, struct ierr *e)
{
	struct buf text = {0};
	char *tok;
	int rc;

	if (p->ecs_token_file == NULL)
		return xstrdup(p->ecs_token ? p->ecs_token : "");
	rc = read_file(p->ecs_token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &text, e);
	if (rc == 0)
		ierr_set(e, IERR_CONFIG,
		         "AWS credentials: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: "
		         "no such file",
		         p->ecs_token_file);
	if (rc <= 0) {
		buf_free(&text);
		return NULL;
	}
	tok = xstrdup(trim(text.data));
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	return tok;
}

static int fetch_ecs(struct creds_provider *p, struct aws_creds *c, struct ierr *e)
{
	struct buf url = {0}, hdr = {0}, body = {0};
	char origin[160], what[200];
	const char *headers[3] = {"Accept: application/json", NULL, NULL};
	char *tok;
	long status = 0;
	int rc = -1;

	if (p->ecs_relative_uri != NULL)
		buf_printf(&url, "%s%s", p->ecs_base, p->ecs_relative_uri);
	else
		buf_puts(&url, p->ecs_full_uri);
	buf_cstr(&url);
	url_origin(url.data, origin, sizeof(origin));
	snprintf(what, sizeof(what), "AWS credentials: ecs: GET %s", origin);

	tok = ecs_auth_token(p, e);
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
	if (http_request(p, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
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
	free_secret(tok);
	if (hdr.data != NULL)
		OPENSSL_cleanse(hdr.data, hdr.len);
	buf_free(&hdr);
	if (body.data != NULL)
		OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	buf_free(&url);
	return rc;
}

static enum step try_ecs(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                         struct ierr *e)
{
	if (p->ecs_relative_uri == NULL && p->ecs_full_uri == NULL) {
		buf_puts(tried, "ecs (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set)");
		return STEP_SKIPPED;
	}
	if (fetch_ecs(p, c, e) < 0)
		return STEP_ERROR;
	snprintf(p->name, sizeof(p->name), "ecs");
	return STEP_FOUND;
}

/* ---- 4. EC2 instance metadata ---------------------------------------------- */

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

static int fetch_imds(struct creds_provider *p, struct aws_creds *c, struct ierr *e)
{
	struct buf url = {0}, tokhdr = {0}, body = {0};
	const char *headers[2] = {NULL, NULL};
	char what[256], role[80];
	bool v1 = false, timed_out = false;
	long status = 0;
	int rc = -1;

	/* the session token */
	buf_printf(&url, "%s/latest/api/token", p->imds_endpoint);
	snprintf(what, sizeof(what), "AWS credentials: imds: PUT %s", buf_cstr(&url));
	headers[0] = "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL;
	if (http_request(p, "PUT", url.data, headers, what, &status, &body, &timed_out, e) < 0) {
		/* A hop limit of 1 behind a container bridge shows up as a timeout. */
		if (!p->imds_v1 || !timed_out)
			goto out;
		v1 = true;
	} else if (status == 200) {
		const char *t = trim(body.data);

		if (!one_line(t)) {
			ierr_set(e, IERR_TRANSIENT, "%s: empty or malformed token", what);
			goto out;
		}
		buf_printf(&tokhdr, "X-aws-ec2-metadata-token: %s", t);
		headers[0] = buf_cstr(&tokhdr);
	} else if ((status == 404 || status == 405) && p->imds_v1) {
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
	buf_printf(&url, "%s" IMDS_CREDS_PATH, p->imds_endpoint);
	snprintf(what, sizeof(what), "AWS credentials: imds: GET %s", buf_cstr(&url));
	if (http_request(p, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
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
	snprintf(role, sizeof(role), "%s", trim(body.data));
	if (!role_name_ok(role)) {
		ierr_set(e, IERR_TRANSIENT, "%s: no valid role name in the answer", what);
		goto out;
	}

	/* the role's credentials */
	buf_printf(&url, "%s", role);
	snprintf(what, sizeof(what), "AWS credentials: imds: GET %s", buf_cstr(&url));
	if (http_request(p, "GET", url.data, headers, what, &status, &body, NULL, e) < 0)
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

static enum step try_imds(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                          struct ierr *e)
{
	struct ierr sub = {0};

	(void)e; /* IMDS failures are reported in the "tried" list instead */
	if (p->imds_disabled) {
		buf_puts(tried, "imds (disabled by AWS_EC2_METADATA_DISABLED)");
		return STEP_SKIPPED;
	}
	if (fetch_imds(p, c, &sub) < 0) {
		/* The normal outcome off EC2: report it with the others. */
		const char *m = sub.msg;

		if (strncmp(m, "AWS credentials: ", 17) == 0)
			m += 17;
		buf_printf(tried, "%s", m);
		return STEP_SKIPPED;
	}
	snprintf(p->name, sizeof(p->name), "%s", c->source);
	return STEP_FOUND;
}

/* ---- the chain and the cache ----------------------------------------------- */

static int resolve(struct creds_provider *p, struct ierr *e)
{
	enum step (*const steps[])(struct creds_provider *, struct aws_creds *, struct buf *,
	                           struct ierr *) = {try_env, try_files, try_ecs, try_imds};
	static const enum source sources[] = {SRC_ENV, SRC_FILE, SRC_ECS, SRC_IMDS};
	struct buf tried = {0};
	struct aws_creds c;
	time_t now = time(NULL);

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		enum step st;

		if (tried.len > 0)
			buf_puts(&tried, "; ");
		st = steps[i](p, &c, &tried, e);
		if (st == STEP_ERROR) {
			buf_free(&tried);
			return -1;
		}
		if (st == STEP_FOUND) {
			snprintf(c.source, sizeof(c.source), "%s", p->name);
			p->source = sources[i];
			p->cur = c;
			p->refresh_at = refresh_time(now, c.expiration, p->margin);
			buf_free(&tried);
			log_event(LOG_INFO, "aws credentials found", "source", p->name, NULL);
			return 0;
		}
	}
	ierr_set(e, IERR_CONFIG, "no AWS credentials found; tried: %s", buf_cstr(&tried));
	buf_free(&tried);
	return -1;
}

static int refresh(struct creds_provider *p, time_t now, struct ierr *e)
{
	struct aws_creds c;
	struct ierr sub = {0};
	int rc;

	memset(&c, 0, sizeof(c));
	rc = p->source == SRC_ECS ? fetch_ecs(p, &c, &sub) : fetch_imds(p, &c, &sub);
	if (rc == 0) {
		if (p->source == SRC_IMDS)
			snprintf(p->name, sizeof(p->name), "%s", c.source);
		snprintf(c.source, sizeof(c.source), "%s", p->name);
		aws_creds_free(&p->cur);
		p->cur = c;
		p->refresh_at = refresh_time(now, c.expiration, p->margin);
		log_event(LOG_DEBUG, "aws credentials refreshed", "source", p->name, NULL);
		return 0;
	}
	if (p->cur.expiration > now) {
		/* Still valid: keep them, try again soon. */
		p->refresh_at = now + REFRESH_RETRY_DELAY;
		log_event(LOG_WARNING, "aws credentials refresh failed; using the current ones",
		          "source", p->name, "error", sub.msg, NULL);
		return 0;
	}
	if (e != NULL)
		*e = sub;
	return ierr_prefix(e, "AWS credentials from %s expired and could not be refreshed",
	                   p->name);
}

int creds_get(struct creds_provider *p, struct aws_creds *out, struct ierr *e)
{
	time_t now = time(NULL);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->mu);
	if (p->source == SRC_NONE)
		rc = resolve(p, e);
	else if ((p->refresh_at != 0 && now >= p->refresh_at) ||
	         (p->cur.expiration != 0 && now >= p->cur.expiration))
		rc = refresh(p, now, e);
	if (rc == 0)
		creds_copy(out, &p->cur);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

const char *creds_source_name(struct creds_provider *p, char *buf, size_t size)
{
	pthread_mutex_lock(&p->mu);
	snprintf(buf, size, "%s", p->source == SRC_NONE ? "none" : p->name);
	pthread_mutex_unlock(&p->mu);
	return buf;
}

/* ---- construction ---------------------------------------------------------- */

static char *look(const struct creds_options *o, const char *key)
{
	const char *v = o->lookup(key, o->lookup_ctx);

	return (v != NULL && *v != '\0') ? xstrdup(v) : NULL;
}

static int look_bool(const struct creds_options *o, const char *key, bool *out, struct ierr *e)
{
	const char *v = o->lookup(key, o->lookup_ctx);

	if (v == NULL || *v == '\0')
		return 0;
	if (strcasecmp(v, "true") == 0)
		*out = true;
	else if (strcasecmp(v, "false") == 0)
		*out = false;
	else
		return ierr_set(e, IERR_CONFIG, "%s: expected true or false, got \"%.40s\"", key,
		                v);
	return 0;
}

static int look_number(const struct creds_options *o, const char *key, double min, double max,
                       double *out, struct ierr *e)
{
	const char *v = o->lookup(key, o->lookup_ctx);
	char *end;
	double d;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || d < min || d > max)
		return ierr_set(e, IERR_CONFIG, "%s: not a number between %g and %g: \"%.40s\"",
		                key, min, max, v);
	*out = d;
	return 1;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && *h != '\0')
		return h;
	pw = getpwuid(getuid()); /* only at construction, before threads */
	return pw != NULL ? pw->pw_dir : NULL;
}

/* The key's value with a leading "~/" expanded, or HOME/dflt when unset. */
static char *file_path(const struct creds_options *o, const char *key, const char *dflt)
{
	const char *v = o->lookup(key, o->lookup_ctx);
	const char *home = home_dir();
	struct buf b = {0};

	if (v != NULL && *v != '\0' && !(v[0] == '~' && (v[1] == '/' || v[1] == '\0')))
		return xstrdup(v);
	if (home == NULL)
		return NULL;
	if (v != NULL && *v != '\0')
		buf_printf(&b, "%s%s", home, v + 1);
	else
		buf_printf(&b, "%s/%s", home, dflt);
	return (char *)buf_cstr(&b);
}

static int check_endpoint(const char *key, const char *url, struct ierr *e)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return ierr_set(e, IERR_CONFIG, "%s: \"%.100s\" is not an http:// or https:// URL",
		                key, url);
	if (strpbrk(url, " \t\r\n?#") != NULL)
		return ierr_set(e, IERR_CONFIG, "%s: \"%.100s\" is not a base URL", key, url);
	return 0;
}

static int snapshot(struct creds_provider *p, const struct creds_options *o, struct ierr *e)
{
	char *mode;
	double d;
	int rc;

	p->env_access_key = look(o, "AWS_ACCESS_KEY_ID");
	p->env_secret_key = look(o, "AWS_SECRET_ACCESS_KEY");
	p->env_session_token = look(o, "AWS_SESSION_TOKEN");
	p->credentials_file = file_path(o, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	p->config_file = file_path(o, "AWS_CONFIG_FILE", ".aws/config");
	p->profile = look(o, "AWS_PROFILE");
	p->profile_explicit = p->profile != NULL;
	if (p->profile == NULL)
		p->profile = xstrdup("default");
	if (strpbrk(p->profile, "[]\r\n") != NULL)
		return ierr_set(e, IERR_CONFIG, "AWS_PROFILE: \"%.60s\" is not a profile name",
		                p->profile);

	p->ecs_relative_uri = look(o, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	p->ecs_full_uri = look(o, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	p->ecs_token = look(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	p->ecs_token_file = look(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	p->ecs_base = xstrdup(o->ecs_relative_base ? o->ecs_relative_base : ECS_DEFAULT_BASE);
	if (p->ecs_relative_uri != NULL && p->ecs_relative_uri[0] != '/')
		return ierr_set(e, IERR_CONFIG,
		                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: must start with '/'");
	if (p->ecs_relative_uri == NULL && p->ecs_full_uri != NULL &&
	    check_full_uri(p->ecs_full_uri, e) < 0)
		return -1;

	if (look_bool(o, "AWS_EC2_METADATA_DISABLED", &p->imds_disabled, e) < 0)
		return -1;
	p->imds_v1 = o->imds_v1_fallback;
	if (look_bool(o, "AWS_EC2_METADATA_V1_FALLBACK", &p->imds_v1, e) < 0)
		return -1;
	if (o->imds_v1_fallback)
		p->imds_v1 = true;
	p->imds_endpoint = look(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	mode = look(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	if (mode != NULL && strcasecmp(mode, "IPv4") != 0 && strcasecmp(mode, "IPv6") != 0) {
		ierr_set(
		    e, IERR_CONFIG,
		    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: expected IPv4 or IPv6, got \"%.20s\"",
		    mode);
		free(mode);
		return -1;
	}
	if (p->imds_endpoint == NULL)
		p->imds_endpoint =
		    xstrdup(mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6
		                                                          : IMDS_DEFAULT_V4);
	free(mode);
	if (check_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", p->imds_endpoint, e) < 0)
		return -1;
	for (size_t n = strlen(p->imds_endpoint); n > 0 && p->imds_endpoint[n - 1] == '/'; n--)
		p->imds_endpoint[n - 1] = '\0';

	p->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 1000;
	p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
	p->retries = o->retries < 0 ? 0 : (o->retries == 0 ? 2 : o->retries);
	p->margin = o->refresh_margin_s > 0 ? o->refresh_margin_s : 300;
	rc = look_number(o, "AWS_METADATA_SERVICE_TIMEOUT", 0.1, 60, &d, e);
	if (rc < 0)
		return -1;
	if (rc > 0)
		p->timeout_ms = (long)(d * 1000);
	rc = look_number(o, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 10, &d, e);
	if (rc < 0)
		return -1;
	if (rc > 0)
		p->retries = (int)d - 1;
	if (p->connect_timeout_ms > p->timeout_ms)
		p->connect_timeout_ms = p->timeout_ms;
	return 0;
}

struct creds_provider *creds_provider_new(const struct creds_options *o, struct ierr *e)
{
	struct creds_provider *p;

	if (o == NULL || o->lookup == NULL) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: a lookup function is required");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	if (snapshot(p, o, e) < 0) {
		creds_provider_free(p);
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: libcurl initialisation failed");
		creds_provider_free(p);
		return NULL;
	}
	p->curl_ready = true;
	return p;
}

void creds_provider_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	free_secret(p->env_access_key);
	free_secret(p->env_secret_key);
	free_secret(p->env_session_token);
	free(p->credentials_file);
	free(p->config_file);
	free(p->profile);
	free_secret(p->ecs_relative_uri);
	free_secret(p->ecs_full_uri);
	free_secret(p->ecs_token);
	free(p->ecs_token_file);
	free(p->ecs_base);
	free(p->imds_endpoint);
	aws_creds_free(&p->cur);
	if (p->curl_ready)
		curl_global_cleanup();
	pthread_mutex_destroy(&p->mu);
	free(p);
}
