/*
 * test_s3.c - the pure pieces of the S3 client (uploader/s3.h): endpoint
 * parsing and URL building for both addressing styles, the XML extractor on
 * good, malformed and huge input, S3 error parsing and classification, libcurl
 * error classification, digest conversions and the expected multipart ETag and
 * composite checksum (expected values computed with Python's hashlib/base64).
 * The network side is covered by tests/integration/test_s3.py against MinIO.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hex.h"
#include "s3.h"
#include "testlib.h"

static void location(const char *endpoint, const char *force, const char *bucket,
                     const char *region, const char *key, const char *want_host,
                     const char *want_path)
{
	struct s3_endpoint ep;
	struct buf host = {0}, path = {0};
	struct ierr e;

	CHECK(s3_endpoint_init(&ep, endpoint, force, bucket, region, &e) == 0);
	s3_location(&ep, bucket, key, &host, &path);
	CHECK_STR(buf_cstr(&host), want_host);
	CHECK_STR(buf_cstr(&path), want_path);
	buf_free(&host);
	buf_free(&path);
}

static void test_addressing(void)
{
	struct s3_endpoint ep;
	struct ierr e;

	/* AWS, virtual-hosted by default. */
	location("", "auto", "raw-ms1", "eu-west-1", "users/year=2024/a.json.zst",
	         "raw-ms1.s3.eu-west-1.amazonaws.com", "/users/year=2024/a.json.zst");
	location("", "auto", "raw-ms1", "", NULL, "raw-ms1.s3.us-east-1.amazonaws.com", "/");
	location("", "auto", "raw", "cn-north-1", "k", "raw.s3.cn-north-1.amazonaws.com.cn", "/k");
	/* Dots in the name: path-style (the wildcard certificate would not match). */
	location("", "auto", "my.data.lake", "us-west-2", "t/k", "s3.us-west-2.amazonaws.com",
	         "/my.data.lake/t/k");
	location("", "true", "raw", "us-east-1", "k", "s3.us-east-1.amazonaws.com", "/raw/k");
	location("", "false", "my.lake", "us-east-1", "k", "my.lake.s3.us-east-1.amazonaws.com",
	         "/k");
	/* Custom endpoint: path-style unless told otherwise; port kept. */
	location("http://127.0.0.1:19000", "auto", "b1", "us-east-1", "t/a b.json",
	         "127.0.0.1:19000", "/b1/t/a b.json");
	location("https://S3.Example.com/", "auto", "b1", "us-east-1", NULL, "s3.example.com",
	         "/b1/");
	location("https://s3.example.com/base/", "auto", "b1", "us-east-1", "k", "s3.example.com",
	         "/base/b1/k");
	location("https://s3.example.com:8443", "false", "b1", "us-east-1", "k",
	         "b1.s3.example.com:8443", "/k");
	CHECK(s3_endpoint_init(&ep, "http://h:1", "auto", "b", "r", &e) == 0);
	CHECK_STR(ep.scheme, "http");
	CHECK(s3_endpoint_init(&ep, "", "auto", "b", "r", &e) == 0);
	CHECK_STR(ep.scheme, "https");

	/* Unusable endpoints fail naming the key. */
	CHECK(s3_endpoint_init(&ep, "ftp://h", "auto", "b", "r", &e) == -1);
	CHECK(e.code == IERR_CONFIG && strstr(e.msg, "S3_ENDPOINT") != NULL);
	CHECK(s3_endpoint_init(&ep, "127.0.0.1:9000", "auto", "b", "r", &e) == -1);
	CHECK(s3_endpoint_init(&ep, "http://", "auto", "b", "r", &e) == -1);
	CHECK(s3_endpoint_init(&ep, "http://h/?x=1", "auto", "b", "r", &e) == -1);
	CHECK(s3_endpoint_init(&ep, "http://user:pw@h/", "auto", "b", "r", &e) == -1);
	CHECK(strstr(e.msg, "pw") == NULL); /* a password in the URL is never echoed */
}

static void test_xml(void)
{
	const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                  "<Error><Code>NoSuchKey</Code><CodeX>no</CodeX>"
	                  "<Message>The key &lt;a&amp;b&gt; &quot;x&quot; &#65;&#x42; does not "
	                  "exist</Message><Key>a&amp;b</Key><Empty/><Region>eu-west-1</Region>"
	                  "<Attr kind=\"x\">v</Attr></Error>";
	char out[256];
	size_t from = 0, s, end;
	int n = 0;

	CHECK(s3_xml_text(doc, strlen(doc), "Code", out, sizeof(out), NULL));
	CHECK_STR(out, "NoSuchKey");
	CHECK(s3_xml_text(doc, strlen(doc), "CodeX", out, sizeof(out), NULL));
	CHECK_STR(out, "no");
	CHECK(s3_xml_text(doc, strlen(doc), "Message", out, sizeof(out), NULL));
	CHECK_STR(out, "The key <a&b> \"x\" AB does not exist");
	CHECK(s3_xml_text(doc, strlen(doc), "Empty", out, sizeof(out), NULL));
	CHECK_STR(out, "");
	CHECK(s3_xml_text(doc, strlen(doc), "Attr", out, sizeof(out), NULL));
	CHECK_STR(out, "v");
	CHECK(!s3_xml_text(doc, strlen(doc), "Missing", out, sizeof(out), NULL));
	CHECK(!s3_xml_text(doc, strlen(doc), "Cod", out, sizeof(out), NULL));
	/* Truncation to the output size. */
	CHECK(s3_xml_text(doc, strlen(doc), "Message", out, 8, NULL));
	CHECK_STR(out, "The key");

	/* Malformed: unclosed elements, a tag cut off at the end of the buffer. */
	CHECK(!s3_xml_text("<Code>abc", 9, "Code", out, sizeof(out), NULL));
	CHECK(!s3_xml_text("<Code", 5, "Code", out, sizeof(out), NULL));
	CHECK(!s3_xml_text("<Code>abc</Code>", 10, "Code", out, sizeof(out), NULL));
	CHECK(!s3_xml_text("", 0, "Code", out, sizeof(out), NULL));
	CHECK(!s3_xml_text(NULL, 0, "Code", out, sizeof(out), NULL));
	CHECK(s3_xml_text("<Code>&bogus; &#xZZ; &#99999999999;</Code>", 42, "Code", out,
	                  sizeof(out), NULL));
	CHECK_STR(out, "&bogus; &#xZZ; &#99999999999;");
	/* Control characters never reach a message. */
	CHECK(s3_xml_text("<M>a\nb\tc</M>", 12, "M", out, sizeof(out), NULL));
	CHECK_STR(out, "a b c");

	/* Iteration over repeated elements (ListMultipartUploads). */
	{
		const char *list = "<R><Upload><Key>k1</Key><UploadId>u1</UploadId></Upload>"
		                   "<Upload><Key>k2</Key><UploadId>u2</UploadId></Upload></R>";

		while (s3_xml_element(list, strlen(list), "Upload", &s, &end, &from)) {
			char k[16], id[16];

			CHECK(s3_xml_text(list + s, end - s, "Key", k, sizeof(k), NULL));
			CHECK(s3_xml_text(list + s, end - s, "UploadId", id, sizeof(id), NULL));
			CHECK(k[1] == id[1]);
			n++;
		}
		CHECK(n == 2);
	}

	/* Huge and hostile input: 4 MiB of '<', tags, and random bytes. */
	{
		size_t len = 4u << 20;
		char *big = malloc(len);

		for (size_t i = 0; i < len; i++)
			big[i] = "<Code>/&#x;\0\xff"[(i * 2654435761u) % 13];
		s3_xml_text(big, len, "Code", out, sizeof(out), NULL); /* must not crash */
		CHECK(strlen(out) < sizeof(out));
		memset(big, '<', len);
		CHECK(!s3_xml_text(big, len, "Code", out, sizeof(out), NULL));
		memcpy(big, "<Code>", 6);
		memset(big + 6, 'x', len - 6);
		CHECK(!s3_xml_text(big, len, "Code", out, sizeof(out), NULL));
		memcpy(big + len - 7, "</Code>", 7);
		CHECK(s3_xml_text(big, len, "Code", out, sizeof(out), NULL));
		CHECK(strlen(out) == sizeof(out) - 1);
		free(big);
	}
}

static void test_errors(void)
{
	struct s3_error err;
	const char *body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
	                   "<RequestId>X</RequestId></Error>";
	const char *redirect = "<Error><Code>PermanentRedirect</Code><Message>use the right "
	                       "endpoint</Message><Region>eu-central-1</Region></Error>";

	s3_parse_error(403, body, strlen(body), &err);
	CHECK(err.status == 403);
	CHECK_STR(err.code, "AccessDenied");
	CHECK_STR(err.message, "Access Denied");
	s3_parse_error(301, redirect, strlen(redirect), &err);
	CHECK_STR(err.code, "PermanentRedirect");
	CHECK_STR(err.region, "eu-central-1");
	/* HEAD errors have no body: the status name. */
	s3_parse_error(404, NULL, 0, &err);
	CHECK_STR(err.code, "NotFound");
	CHECK_STR(err.message, "");
	s3_parse_error(412, "", 0, &err);
	CHECK_STR(err.code, "PreconditionFailed");
	s3_parse_error(599, "garbage <<<>>>", 14, &err);
	CHECK_STR(err.code, "HTTP599");
	/* A "code" that is not an identifier is not trusted. */
	s3_parse_error(503, "<Code>Slow Down; rm -rf</Code>", 30, &err);
	CHECK_STR(err.code, "ServiceUnavailable");
	/* Truncated body (the 64 KiB cap can cut anywhere). */
	s3_parse_error(500, "<Error><Code>InternalError</Code><Message>We encount", 52, &err);
	CHECK_STR(err.code, "InternalError");
	CHECK_STR(err.message, "");

	CHECK(s3_classify(500, "InternalError") == IERR_TRANSIENT);
	CHECK(s3_classify(503, "SlowDown") == IERR_TRANSIENT);
	CHECK(s3_classify(502, "BadGateway") == IERR_TRANSIENT);
	CHECK(s3_classify(429, "TooManyRequests") == IERR_TRANSIENT);
	CHECK(s3_classify(400, "RequestTimeout") == IERR_TRANSIENT);
	CHECK(s3_classify(400, "BadDigest") == IERR_TRANSIENT);
	CHECK(s3_classify(400, "ExpiredToken") == IERR_TRANSIENT);
	CHECK(s3_classify(409, "OperationAborted") == IERR_TRANSIENT);
	CHECK(s3_classify(200, "InternalError") == IERR_TRANSIENT);
	CHECK(s3_classify(200, "SomethingNew") == IERR_TRANSIENT);
	CHECK(s3_classify(403, "AccessDenied") == IERR_PERMANENT);
	CHECK(s3_classify(404, "NoSuchBucket") == IERR_PERMANENT);
	CHECK(s3_classify(403, "InvalidAccessKeyId") == IERR_PERMANENT);
	CHECK(s3_classify(403, "SignatureDoesNotMatch") == IERR_PERMANENT);
	CHECK(s3_classify(400, "AuthorizationHeaderMalformed") == IERR_PERMANENT);
	CHECK(s3_classify(400, "InvalidBucketName") == IERR_PERMANENT);
	CHECK(s3_classify(301, "PermanentRedirect") == IERR_PERMANENT);
	CHECK(s3_classify(307, "TemporaryRedirect") == IERR_PERMANENT);
	CHECK(s3_classify(501, "NotImplemented") == IERR_PERMANENT);
	CHECK(s3_classify(403, "Forbidden") == IERR_PERMANENT);

	{
		const char *name = NULL;

		CHECK(s3_classify_curl(CURLE_OPERATION_TIMEDOUT, &name) == IERR_TRANSIENT);
		CHECK_STR(name, "Timeout");
		CHECK(s3_classify_curl(CURLE_COULDNT_RESOLVE_HOST, &name) == IERR_TRANSIENT);
		CHECK(s3_classify_curl(CURLE_COULDNT_CONNECT, &name) == IERR_TRANSIENT);
		CHECK(s3_classify_curl(CURLE_RECV_ERROR, &name) == IERR_TRANSIENT);
		CHECK(s3_classify_curl(CURLE_SEND_ERROR, &name) == IERR_TRANSIENT);
		CHECK(s3_classify_curl(CURLE_GOT_NOTHING, &name) == IERR_TRANSIENT);
		CHECK(s3_classify_curl(CURLE_PEER_FAILED_VERIFICATION, &name) == IERR_PERMANENT);
		CHECK_STR(name, "TLSVerifyFailed");
		CHECK(s3_classify_curl(CURLE_SSL_CACERT_BADFILE, &name) == IERR_PERMANENT);
	}
}

static void test_digests(void)
{
	char out[128];
	unsigned char raw[32];
	unsigned char md5s[32], shas[64];
	static const char a[10] = "aaaaaaaaaa", b[3] = "bbb";
	unsigned int len;

	/* hex -> base64: Content-MD5 and x-amz-checksum-sha256 of the empty body. */
	CHECK(hex_decode("d41d8cd98f00b204e9800998ecf8427e", raw, 16) == 0);
	s3_base64(raw, 16, out);
	CHECK_STR(out, "1B2M2Y8AsgTpgAmY7PhCfg==");
	CHECK(hex_decode(SIGV4_EMPTY_SHA256, raw, 32) == 0);
	s3_base64(raw, 32, out);
	CHECK_STR(out, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	/* (hex itself: test_util.c) */

	/* Multipart ETag and composite checksum of parts "a"*10 and "bbb". */
	EVP_Digest(a, sizeof(a), md5s, &len, EVP_md5(), NULL);
	EVP_Digest(b, sizeof(b), md5s + 16, &len, EVP_md5(), NULL);
	EVP_Digest(a, sizeof(a), shas, &len, EVP_sha256(), NULL);
	EVP_Digest(b, sizeof(b), shas + 32, &len, EVP_sha256(), NULL);
	s3_multipart_etag(md5s, 2, out, sizeof(out));
	CHECK_STR(out, "568bd1f3a3ef4a720453555306037d4b-2");
	s3_multipart_checksum(shas, 2, out, sizeof(out));
	CHECK_STR(out, "CIJrzwIbc8tzvAMWrzIQkoiqAb7LOtg+w+uTT7XtgtA=-2");

	s3_etag_unquote("\"abc\"", out, sizeof(out));
	CHECK_STR(out, "abc");
	s3_etag_unquote("W/\"abc-2\"", out, sizeof(out));
	CHECK_STR(out, "abc-2");
	s3_etag_unquote("abc", out, sizeof(out));
	CHECK_STR(out, "abc");
	s3_etag_unquote("\"", out, sizeof(out));
	CHECK_STR(out, "");
	s3_etag_unquote("", out, sizeof(out));
	CHECK_STR(out, "");
}

int main(void)
{
	test_addressing();
	test_xml();
	test_errors();
	test_digests();
	return test_done();
}
