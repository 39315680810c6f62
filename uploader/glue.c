/*
 * glue.c - the Glue JSON 1.1 client (see glue.h).
 *
 * One curl easy handle per client keeps its connection alive between calls.
 * Each attempt gets fresh credentials from the chain (temporary ones refresh
 * themselves), signs the exact body with sigv4_sign() (service "glue"; the
 * x-amz-content-sha256 header it adds is accepted by every AWS JSON service)
 * and sends exactly the signed URL and headers.
 */
#include "glue.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aws_http.h"
#include "buf.h"
#include "creds.h"
#include "ingesta_build.h"
#include "log.h"
#include "sigv4.h"
#include "util.h"

#define GLUE_CONNECT_TIMEOUT_MS 10000L
#define GLUE_TIMEOUT_MS         60000L
#define GLUE_BODY_CAP           (4 * 1024 * 1024)

struct glue_client {
	CURL *h;
	struct creds_provider *creds;
	char scheme[8];
	char host[512];
	char base_path[512];
	char region[64];
	char endpoint[1100];
	bool verify_tls;
	char ca_file[4096];
	int attempts;
};

struct glue_client *glue_client_new(const struct config *cfg, int attempts, struct ierr *e)
{
	struct creds_options co = {.lookup = creds_config_lookup, .lookup_ctx = (void *)cfg};
	const char *region = config_str(cfg, "GLUE_REGION");
	const char *endpoint = config_str(cfg, "GLUE_ENDPOINT");
	struct glue_client *g;

	if (*region == '\0')
		region = config_str(cfg, "AWS_REGION");
	if (*region == '\0')
		region = config_str(cfg, "AWS_DEFAULT_REGION");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ierr_set(e, IERR_INTERNAL, "Glue: libcurl initialisation failed");
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		curl_global_cleanup();
		ierr_set(e, IERR_INTERNAL, "Glue: out of memory");
		return NULL;
	}
	g->attempts = attempts < 1 ? 1 : attempts;
	snprintf(g->region, sizeof(g->region), "%s", *region ? region : "us-east-1");
	if (*endpoint) {
		if (aws_base_url_parse("GLUE_ENDPOINT", endpoint, g->scheme, sizeof(g->scheme),
		                       g->host, sizeof(g->host), g->base_path, sizeof(g->base_path),
		                       e) != 0)
			goto fail;
	} else {
		snprintf(g->scheme, sizeof(g->scheme), "https");
		snprintf(g->host, sizeof(g->host), "glue.%s.amazonaws.com%s", g->region,
		         strncmp(g->region, "cn-", 3) == 0 ? ".cn" : "");
	}
	snprintf(g->endpoint, sizeof(g->endpoint), "%s://%s%s", g->scheme, g->host, g->base_path);
	g->verify_tls = !config_bool(cfg, "S3_INSECURE_SKIP_VERIFY");
	snprintf(g->ca_file, sizeof(g->ca_file), "%s", config_str(cfg, "S3_CA_FILE"));
	g->creds = creds_provider_new(&co, e);
	if (g->creds == NULL)
		goto fail;
	g->h = curl_easy_init();
	if (g->h == NULL) {
		ierr_set(e, IERR_INTERNAL, "Glue: libcurl handle init failed");
		goto fail;
	}
	return g;
fail:
	creds_provider_free(g->creds);
	free(g);
	curl_global_cleanup();
	return NULL;
}

void glue_client_free(struct glue_client *g)
{
	if (g == NULL)
		return;
	if (g->h)
		curl_easy_cleanup(g->h);
	creds_provider_free(g->creds);
	free(g);
	curl_global_cleanup();
}

const char *glue_client_endpoint(const struct glue_client *g)
{
	return g->endpoint;
}

/* ================================================================ errors (pure) */

void glue_error_code(const char *type_field, const char *header, long status, char *out,
                     size_t outsz)
{
	const char *src = NULL, *name;
	size_t n = 0;

	if (type_field && *type_field) {
		const char *hash = strrchr(type_field, '#');

		src = hash ? hash + 1 : type_field;
		n = strcspn(src, ":");
	} else if (header && *header) {
		src = header;
		n = strcspn(src, ":");
	}
	if (src && n > 0) {
		size_t k = 0;

		for (size_t i = 0; i < n && k + 1 < outsz; i++) {
			char c = src[i];

			if (isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-')
				out[k++] = c;
		}
		out[k] = '\0';
		if (k > 0)
			return;
	}
	name = s3_status_name(status);
	if (name)
		snprintf(out, outsz, "%s", name);
	else
		snprintf(out, outsz, "HTTP%ld", status);
}

enum ierr_code glue_classify(long status, const char *code)
{
	static const char *const transient[] = {
	    "ThrottlingException",       "Throttling",
	    "TooManyRequestsException",  "RequestLimitExceeded",
	    "InternalServiceException",  "InternalFailure",
	    "ServiceUnavailable",        "ServiceUnavailableException",
	    "OperationTimeoutException", "ConcurrentModificationException",
	    "ExpiredTokenException",     "RequestTimeout",
	    "RequestTimeoutException",   NULL,
	};

	for (int i = 0; code && transient[i]; i++) {
		if (strcmp(code, transient[i]) == 0)
			return IERR_TRANSIENT;
	}
	if (status >= 500 || status == 429 || status == 408 || status == 0)
		return IERR_TRANSIENT;
	return IERR_PERMANENT;
}

/* ================================================================ one call */

struct xfer {
	struct buf body;
	char error_type[256];
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;

	if (x->body.len < GLUE_BODY_CAP)
		buf_append(&x->body, p,
		           n < GLUE_BODY_CAP - x->body.len ? n : GLUE_BODY_CAP - x->body.len);
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	static const char name[] = "x-amzn-errortype:";

	if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		const char *v = p + sizeof(name) - 1;
		size_t len = n - (sizeof(name) - 1);

		while (len > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
			len--;
		if (len >= sizeof(x->error_type))
			len = sizeof(x->error_type) - 1;
		memcpy(x->error_type, v, len);
		x->error_type[len] = '\0';
	}
	return n;
}

/* One attempt. 0 with an HTTP status in *status, or -1 (no answer). */
static int attempt(struct glue_client *g, const char *op, const char *body, struct xfer *x,
                   long *status, char *code, size_t codesz, struct ierr *e)
{
	char target[128], hash[SIGV4_SHA256_HEX_SIZE], errbuf[CURL_ERROR_SIZE] = "";
	struct sigv4_kv hdrs[3];
	struct sigv4_request sr;
	struct sigv4_result sig;
	struct aws_creds creds;
	struct buf path = {0}, url = {0}, line = {0};
	struct curl_slist *hl = NULL;
	size_t blen = strlen(body);
	CURLcode rc;
	int ret = 0;

	*status = 0;
	snprintf(target, sizeof(target), "AWSGlue.%s", op);
	if (sigv4_sha256_hex(body, blen, hash, e) != 0) {
		snprintf(code, codesz, "SigningFailed");
		e->code = IERR_PERMANENT;
		return -1;
	}
	if (creds_get(g->creds, &creds, e) != 0) {
		snprintf(code, codesz, "%s",
		         e->code == IERR_TRANSIENT ? "CredentialsUnavailable" : "NoCredentials");
		ierr_prefix(e, "Glue %s: credentials", op);
		if (e->code != IERR_TRANSIENT)
			e->code = IERR_PERMANENT;
		return -1;
	}
	hdrs[0] = (struct sigv4_kv){"host", g->host};
	hdrs[1] = (struct sigv4_kv){"content-type", "application/x-amz-json-1.1"};
	hdrs[2] = (struct sigv4_kv){"x-amz-target", target};
	buf_printf(&path, "%s/", g->base_path);
	memset(&sr, 0, sizeof(sr));
	sr.method = "POST";
	sr.path = buf_cstr(&path);
	sr.headers = hdrs;
	sr.nheaders = 3;
	sr.payload_hash = hash;
	sr.region = g->region;
	sr.service = "glue";
	sr.when = time(NULL);
	sr.access_key = creds.access_key;
	sr.secret_key = creds.secret_key;
	sr.session_token = creds.session_token;
	ret = sigv4_sign(&sr, &sig, e);
	aws_creds_free(&creds);
	buf_free(&path);
	if (ret != 0) {
		snprintf(code, codesz, "SigningFailed");
		e->code = IERR_PERMANENT;
		return -1;
	}
	buf_printf(&url, "%s://%s%s", g->scheme, g->host, buf_cstr(&sig.canonical_uri));
	for (size_t i = 0; i < sig.nheaders; i++) {
		buf_reset(&line);
		buf_printf(&line, "%s: %s", sig.headers[i].name, sig.headers[i].value);
		hl = curl_slist_append(hl, buf_cstr(&line));
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_reset(g->h);
	curl_easy_setopt(g->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(g->h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(g->h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(g->h, CURLOPT_USERAGENT, "ingesta/" INGESTA_VERSION);
	curl_easy_setopt(g->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(g->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(g->h, CURLOPT_CONNECTTIMEOUT_MS, GLUE_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(g->h, CURLOPT_TIMEOUT_MS, GLUE_TIMEOUT_MS);
	curl_easy_setopt(g->h, CURLOPT_SSL_VERIFYPEER, g->verify_tls ? 1L : 0L);
	curl_easy_setopt(g->h, CURLOPT_SSL_VERIFYHOST, g->verify_tls ? 2L : 0L);
	if (g->ca_file[0])
		curl_easy_setopt(g->h, CURLOPT_CAINFO, g->ca_file);
	curl_easy_setopt(g->h, CURLOPT_URL, buf_cstr(&url));
	curl_easy_setopt(g->h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(g->h, CURLOPT_POST, 1L);
	curl_easy_setopt(g->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(g->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	curl_easy_setopt(g->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(g->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(g->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(g->h, CURLOPT_HEADERDATA, x);
	rc = curl_easy_perform(g->h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(g->h, CURLINFO_RESPONSE_CODE, status);
	} else {
		const char *name;
		enum ierr_code cls = s3_classify_curl(rc, &name);

		snprintf(code, codesz, "%s", name);
		ret = ierr_set(e, cls, "Glue %s at %s: %s: %s", op, g->endpoint, name,
		               errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hl);
	sigv4_result_free(&sig);
	buf_free(&url);
	buf_free(&line);
	return ret;
}

/* "Glue GetTable db.t: 400 EntityNotFoundException: Table t not found" */
static int answer_error(const char *op, const char *what, long status, const struct xfer *x,
                        char *code, size_t codesz, struct ierr *e)
{
	json_t *root = json_loadb(x->body.data ? x->body.data : "", x->body.len, 0, NULL);
	const char *type = json_string_value(json_object_get(root, "__type"));
	const char *msg = json_string_value(json_object_get(root, "Message"));
	char clean[512];
	size_t k = 0;

	if (msg == NULL)
		msg = json_string_value(json_object_get(root, "message"));
	glue_error_code(type, x->error_type, status, code, codesz);
	for (const char *p = msg ? msg : "(no message)"; *p && k + 1 < sizeof(clean); p++)
		clean[k++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	clean[k] = '\0';
	ierr_set(e, glue_classify(status, code), "Glue %s %s: %ld %s: %s", op, what, status, code,
	         clean);
	json_decref(root);
	return -1;
}

static int call_what(struct glue_client *g, const char *op, const char *what, json_t *req,
                     json_t **resp, char *code, size_t codesz, struct ierr *e)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int ret = -1;

	*resp = NULL;
	code[0] = '\0';
	if (body == NULL)
		return ierr_set(e, IERR_INTERNAL, "Glue %s %s: request not encodable", op, what);
	for (int i = 0; i < g->attempts; i++) {
		struct xfer x = {0};
		long status = 0;

		if (i > 0) {
			uint64_t cap = 250000ULL << (i < 5 ? i : 5);
			char rnd[9];

			random_hex(rnd, 8);
			usleep((useconds_t)(strtoull(rnd, NULL, 16) % cap));
		}
		if (attempt(g, op, body, &x, &status, code, codesz, e) == 0) {
			if (status == 200) {
				json_error_t jerr;

				*resp = json_loadb(x.body.data ? x.body.data : "{}",
				                   x.body.len ? x.body.len : 2, 0, &jerr);
				if (*resp == NULL)
					ierr_set(e, IERR_TRANSIENT,
					         "Glue %s %s: answer is not JSON: %s", op, what,
					         jerr.text);
				buf_free(&x.body);
				ret = *resp ? 0 : -1;
				break;
			}
			answer_error(op, what, status, &x, code, codesz, e);
		}
		buf_free(&x.body);
		if (e->code != IERR_TRANSIENT || ingesta_stop_requested)
			break;
	}
	free(body);
	return ret;
}

int glue_call(struct glue_client *g, const char *op, json_t *req, json_t **resp, char *code,
              size_t codesz, struct ierr *e)
{
	return call_what(g, op, "", req, resp, code, codesz, e);
}

/* ================================================================ operations */

static json_t *db_req(const char *db)
{
	json_t *r = json_object();

	json_object_set_new(r, "DatabaseName", json_string(db));
	return r;
}

int glue_get_table(struct glue_client *g, const char *db, const char *name, json_t **table,
                   struct ierr *e)
{
	json_t *req = db_req(db), *resp = NULL;
	char code[128], what[600];
	int rc;

	*table = NULL;
	snprintf(what, sizeof(what), "%s.%s", db, name);
	json_object_set_new(req, "Name", json_string(name));
	rc = call_what(g, "GetTable", what, req, &resp, code, sizeof(code), e);
	json_decref(req);
	if (rc != 0)
		return strcmp(code, "EntityNotFoundException") == 0 ? 0 : -1;
	*table = json_incref(json_object_get(resp, "Table"));
	json_decref(resp);
	if (*table == NULL)
		return ierr_set(e, IERR_TRANSIENT, "Glue GetTable %s: answer without a Table",
		                what);
	return 1;
}

static int table_write(struct glue_client *g, const char *op, const char *db, json_t *table_input,
                       const char *expected, struct ierr *e)
{
	const char *name = json_string_value(json_object_get(table_input, "Name"));
	json_t *req = db_req(db), *resp = NULL;
	char code[128], what[600];
	int rc;

	snprintf(what, sizeof(what), "%s.%s", db, name ? name : "?");
	json_object_set(req, "TableInput", table_input);
	rc = call_what(g, op, what, req, &resp, code, sizeof(code), e);
	json_decref(req);
	json_decref(resp);
	if (rc != 0)
		return strcmp(code, expected) == 0 ? 1 : -1;
	return 0;
}

int glue_create_table(struct glue_client *g, const char *db, json_t *table_input, struct ierr *e)
{
	return table_write(g, "CreateTable", db, table_input, "AlreadyExistsException", e);
}

int glue_update_table(struct glue_client *g, const char *db, json_t *table_input, struct ierr *e)
{
	return table_write(g, "UpdateTable", db, table_input, "EntityNotFoundException", e);
}

int glue_get_database(struct glue_client *g, const char *db, struct ierr *e)
{
	json_t *req = json_object(), *resp = NULL;
	char code[128];
	int rc;

	json_object_set_new(req, "Name", json_string(db));
	rc = call_what(g, "GetDatabase", db, req, &resp, code, sizeof(code), e);
	json_decref(req);
	json_decref(resp);
	if (rc != 0)
		return strcmp(code, "EntityNotFoundException") == 0 ? 0 : -1;
	return 1;
}

int glue_create_database(struct glue_client *g, const char *db, struct ierr *e)
{
	json_t *req = json_object(), *in = json_object(), *resp = NULL;
	char code[128];
	int rc;

	json_object_set_new(in, "Name", json_string(db));
	json_object_set_new(in, "Description",
	                    json_string("ingesta data lake (tables registered by ingesta)"));
	json_object_set_new(req, "DatabaseInput", in);
	rc = call_what(g, "CreateDatabase", db, req, &resp, code, sizeof(code), e);
	json_decref(req);
	json_decref(resp);
	if (rc != 0)
		return strcmp(code, "AlreadyExistsException") == 0 ? 1 : -1;
	return 0;
}
