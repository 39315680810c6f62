/*
 * test_sigv4.c - SigV4 against published and independently computed answers.
 *
 * Part 1 reproduces the four worked examples of the Amazon S3 API reference,
 * "Signature Calculations for the Authorization Header: Transferring Payload
 * in a Single Chunk (AWS Signature Version 4)": canonical request, string to
 * sign and signature, byte for byte.
 *
 * Part 2 covers what those examples do not (session token, multipart query
 * parameters, value-less `?uploads`, keys with spaces, UTF-8, '+' and '=').
 * AWS publishes no S3 vectors for them; the expected signatures were computed
 * with botocore 1.29 (Debian python3-botocore, S3SigV4Auth, time pinned to
 * 2013-05-24T00:00:00Z), an implementation independent of this one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "testlib.h"

#define AK       "AKIAIOSFODNN7EXAMPLE"
#define SK       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST     "examplebucket.s3.amazonaws.com"
#define T2013    ((time_t)1369353600) /* 2013-05-24T00:00:00Z */
#define SCOPE    "20130524/us-east-1/s3/aws4_request"
#define EMPTY    SIGV4_EMPTY_SHA256
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct sigv4_request base_request(const char *method, const char *path)
{
	struct sigv4_request r = {
	    .method = method,
	    .path = path,
	    .region = "us-east-1",
	    .service = "s3",
	    .when = T2013,
	    .access_key = AK,
	    .secret_key = SK,
	};
	return r;
}

static const char *header(const struct sigv4_result *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

static void expect_auth(const struct sigv4_result *r, const char *signed_headers,
                        const char *signature)
{
	char want[512];

	snprintf(want, sizeof(want),
	         "AWS4-HMAC-SHA256 Credential=" AK "/" SCOPE ",SignedHeaders=%s,Signature=%s",
	         signed_headers, signature);
	CHECK_STR(r->signature, signature);
	CHECK_STR(r->signed_headers.data, signed_headers);
	CHECK_STR(r->authorization.data, want);
	CHECK_STR(header(r, "authorization"), want);
}

/* --- Part 1: the S3 API reference examples ------------------------------- */

static void doc_get_object(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}, {"Range", "bytes=0-9"}};
	struct sigv4_request q = base_request("GET", "/test.txt");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.payload_hash = EMPTY;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_request.data, "GET\n"
	                                    "/test.txt\n"
	                                    "\n"
	                                    "host:examplebucket.s3.amazonaws.com\n"
	                                    "range:bytes=0-9\n"
	                                    "x-amz-content-sha256:" EMPTY "\n"
	                                    "x-amz-date:20130524T000000Z\n"
	                                    "\n"
	                                    "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
	CHECK_STR(r.string_to_sign.data,
	          "AWS4-HMAC-SHA256\n"
	          "20130524T000000Z\n" SCOPE "\n"
	          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	expect_auth(&r, "host;range;x-amz-content-sha256;x-amz-date",
	            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	/* What goes on the wire: the headers we were given plus ours. */
	CHECK_STR(header(&r, "host"), HOST);
	CHECK_STR(header(&r, "range"), "bytes=0-9");
	CHECK_STR(header(&r, "x-amz-date"), "20130524T000000Z");
	CHECK_STR(header(&r, "x-amz-content-sha256"), EMPTY);
	CHECK(header(&r, "x-amz-security-token") == NULL);
	CHECK(r.nheaders == 5);
	CHECK_STR(r.canonical_uri.data, "/test.txt");
	CHECK_STR(r.canonical_query.data, "");
	sigv4_result_free(&r);
}

static void doc_put_object(void)
{
	static const char body[] = "Welcome to Amazon S3.";
	struct sigv4_kv h[] = {
	    {"Host", HOST},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	};
	struct sigv4_request q = base_request("PUT", "/test$file.text");
	char hash[SIGV4_SHA256_HEX_SIZE];
	struct sigv4_result r;
	struct ierr e = {0};

	CHECK(sigv4_sha256_hex(body, strlen(body), hash, &e) == 0);
	CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	q.headers = h;
	q.nheaders = NELEM(h);
	q.payload_hash = hash;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_request.data,
	          "PUT\n"
	          "/test%24file.text\n"
	          "\n"
	          "date:Fri, 24 May 2013 00:00:00 GMT\n"
	          "host:examplebucket.s3.amazonaws.com\n"
	          "x-amz-content-sha256:"
	          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
	          "x-amz-date:20130524T000000Z\n"
	          "x-amz-storage-class:REDUCED_REDUNDANCY\n"
	          "\n"
	          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	CHECK_STR(r.string_to_sign.data,
	          "AWS4-HMAC-SHA256\n"
	          "20130524T000000Z\n" SCOPE "\n"
	          "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
	expect_auth(&r, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
	            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	CHECK_STR(r.canonical_uri.data, "/test%24file.text");
	sigv4_result_free(&r);
}

static void doc_get_lifecycle(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_kv qp[] = {{"lifecycle", NULL}};
	struct sigv4_request q = base_request("GET", "/");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	CHECK(sigv4_sign(&q, &r, &e) == 0); /* payload_hash NULL: empty body */
	CHECK_STR(r.canonical_request.data, "GET\n"
	                                    "/\n"
	                                    "lifecycle=\n"
	                                    "host:examplebucket.s3.amazonaws.com\n"
	                                    "x-amz-content-sha256:" EMPTY "\n"
	                                    "x-amz-date:20130524T000000Z\n"
	                                    "\n"
	                                    "host;x-amz-content-sha256;x-amz-date\n" EMPTY);
	CHECK_STR(r.string_to_sign.data,
	          "AWS4-HMAC-SHA256\n"
	          "20130524T000000Z\n" SCOPE "\n"
	          "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
	expect_auth(&r, "host;x-amz-content-sha256;x-amz-date",
	            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	CHECK_STR(r.canonical_query.data, "lifecycle=");
	sigv4_result_free(&r);
}

static void doc_list_objects(void)
{
	struct sigv4_kv h[] = {{"host", HOST}};
	/* Given in the opposite order to the canonical one. */
	struct sigv4_kv qp[] = {{"prefix", "J"}, {"max-keys", "2"}};
	struct sigv4_request q = base_request("GET", "/");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	q.payload_hash = EMPTY;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_request.data, "GET\n"
	                                    "/\n"
	                                    "max-keys=2&prefix=J\n"
	                                    "host:examplebucket.s3.amazonaws.com\n"
	                                    "x-amz-content-sha256:" EMPTY "\n"
	                                    "x-amz-date:20130524T000000Z\n"
	                                    "\n"
	                                    "host;x-amz-content-sha256;x-amz-date\n" EMPTY);
	CHECK_STR(r.string_to_sign.data,
	          "AWS4-HMAC-SHA256\n"
	          "20130524T000000Z\n" SCOPE "\n"
	          "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
	expect_auth(&r, "host;x-amz-content-sha256;x-amz-date",
	            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	sigv4_result_free(&r);
}

/* --- Part 2: beyond the published examples (expected values: botocore) --- */

#define TOKEN                                                                                      \
	"AQoDYXdzEPT//////////"                                                                    \
	"wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxf"                     \
	"pSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/"                                                 \
	"kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPk"                                        \
	"yQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+"                                  \
	"xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA"                                                       \
	"z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

static void session_token(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_request q = base_request("GET", "/test.txt");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.session_token = TOKEN;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_request.data,
	          "GET\n"
	          "/test.txt\n"
	          "\n"
	          "host:examplebucket.s3.amazonaws.com\n"
	          "x-amz-content-sha256:" EMPTY "\n"
	          "x-amz-date:20130524T000000Z\n"
	          "x-amz-security-token:" TOKEN "\n"
	          "\n"
	          "host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n" EMPTY);
	expect_auth(&r, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
	            "77b8bb14c064eec550b682400c0aade97d8a56020288787f8549efe55e0dc32e");
	CHECK_STR(header(&r, "x-amz-security-token"), TOKEN);
	/* The token never leaks into the Authorization value. */
	CHECK(strstr(r.authorization.data, "AQoDYXdz") == NULL);
	sigv4_result_free(&r);

	/* An empty token is no token. */
	q.session_token = "";
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK(header(&r, "x-amz-security-token") == NULL);
	sigv4_result_free(&r);
}

static void upload_part_query(void)
{
	static const char body[] = "part one";
	struct sigv4_kv h[] = {{"Host", "127.0.0.1:9000"}, {"Content-MD5", NULL}};
	struct sigv4_kv qp[] = {{"uploadId", "VXBsb2FkIElE-x_y.z~"}, {"partNumber", "1"}};
	struct sigv4_request q = base_request("PUT", "/examplebucket/big file.json.zst");
	char hash[SIGV4_SHA256_HEX_SIZE], md5[SIGV4_MD5_BASE64_SIZE];
	struct sigv4_result r;
	struct ierr e = {0};

	CHECK(sigv4_sha256_hex(body, strlen(body), hash, &e) == 0);
	CHECK(sigv4_md5_base64(body, strlen(body), md5, &e) == 0);
	CHECK_STR(md5, "MwPhKvR0yhHYXtKWapMpkg==");
	h[1].value = md5;
	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	q.payload_hash = hash;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_uri.data, "/examplebucket/big%20file.json.zst");
	CHECK_STR(r.canonical_query.data, "partNumber=1&uploadId=VXBsb2FkIElE-x_y.z~");
	CHECK_STR(r.canonical_request.data,
	          "PUT\n"
	          "/examplebucket/big%20file.json.zst\n"
	          "partNumber=1&uploadId=VXBsb2FkIElE-x_y.z~\n"
	          "content-md5:MwPhKvR0yhHYXtKWapMpkg==\n"
	          "host:127.0.0.1:9000\n"
	          "x-amz-content-sha256:"
	          "fed7f05c10bc95d597e6f8103228c4c10798b5f77215f718a854534da563dc9e\n"
	          "x-amz-date:20130524T000000Z\n"
	          "\n"
	          "content-md5;host;x-amz-content-sha256;x-amz-date\n"
	          "fed7f05c10bc95d597e6f8103228c4c10798b5f77215f718a854534da563dc9e");
	expect_auth(&r, "content-md5;host;x-amz-content-sha256;x-amz-date",
	            "eb69fde9e98c2016de1cead0035393131e827625fd5b7596e2c4e69027d1adaa");
	sigv4_result_free(&r);
}

static void create_multipart_uploads(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_kv qp[] = {{"uploads", NULL}};
	struct sigv4_request q = base_request("POST", "/users/year=2024/a.json");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_uri.data, "/users/year%3D2024/a.json");
	CHECK_STR(r.canonical_query.data, "uploads=");
	expect_auth(&r, "host;x-amz-content-sha256;x-amz-date",
	            "cf7540a4ba16e7c85cc19ae7c06928703f2ca03a48980fdc444585672315599a");
	sigv4_result_free(&r);

	/* "" and NULL values are the same parameter. */
	qp[0].value = "";
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.signature, "cf7540a4ba16e7c85cc19ae7c06928703f2ca03a48980fdc444585672315599a");
	sigv4_result_free(&r);
}

static void awkward_key_and_headers(void)
{
	static const char body[] = "{}\n";
	struct sigv4_kv h[] = {
	    {"Host", HOST},
	    {"If-None-Match", "*"},
	    {"x-amz-checksum-sha256", NULL},
	    {"Content-MD5", NULL},
	    {"X-Amz-Meta-Note", "  a   b  "},
	    {"User-Agent", "ingesta/0.1.0"},
	};
	/* space, '+', '=', U+00FC and U+20AC in the key */
	struct sigv4_request q =
	    base_request("PUT", "/users/year=2024/a b+c=d/\xc3\xbc\xe2\x82\xac.json");
	char hash[SIGV4_SHA256_HEX_SIZE], md5[SIGV4_MD5_BASE64_SIZE];
	char sha_b64[SIGV4_SHA256_BASE64_SIZE], conv[SIGV4_SHA256_BASE64_SIZE];
	struct sigv4_result r;
	struct ierr e = {0};

	CHECK(sigv4_sha256_hex(body, strlen(body), hash, &e) == 0);
	CHECK(sigv4_md5_base64(body, strlen(body), md5, &e) == 0);
	CHECK(sigv4_sha256_base64(body, strlen(body), sha_b64, &e) == 0);
	CHECK_STR(md5, "ioBVTJHZ/KisuC8CPeAvEQ==");
	CHECK_STR(sha_b64, "yj0WO6sFU4GCciYUBWjzvvfqrBh869doeOC2Pp5EI1Y=");
	CHECK(sigv4_hex_to_base64(hash, conv, sizeof(conv), &e) == 0);
	CHECK_STR(conv, sha_b64);
	h[2].value = sha_b64;
	h[3].value = md5;
	q.headers = h;
	q.nheaders = NELEM(h);
	q.payload_hash = hash;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_uri.data, "/users/year%3D2024/a%20b%2Bc%3Dd/%C3%BC%E2%82%AC.json");
	CHECK_STR(r.canonical_request.data,
	          "PUT\n"
	          "/users/year%3D2024/a%20b%2Bc%3Dd/%C3%BC%E2%82%AC.json\n"
	          "\n"
	          "content-md5:ioBVTJHZ/KisuC8CPeAvEQ==\n"
	          "host:examplebucket.s3.amazonaws.com\n"
	          "if-none-match:*\n"
	          "x-amz-checksum-sha256:yj0WO6sFU4GCciYUBWjzvvfqrBh869doeOC2Pp5EI1Y=\n"
	          "x-amz-content-sha256:"
	          "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356\n"
	          "x-amz-date:20130524T000000Z\n"
	          "x-amz-meta-note:a b\n"
	          "\n"
	          "content-md5;host;if-none-match;x-amz-checksum-sha256;x-amz-content-sha256;"
	          "x-amz-date;x-amz-meta-note\n"
	          "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356");
	expect_auth(&r,
	            "content-md5;host;if-none-match;x-amz-checksum-sha256;x-amz-content-sha256;"
	            "x-amz-date;x-amz-meta-note",
	            "fad92cf373c03ef3538fc5eddea2596866ac14ba389ad5f194aba9f3297904cb");
	/* user-agent is sent but not signed; values are sent trimmed. */
	CHECK_STR(header(&r, "user-agent"), "ingesta/0.1.0");
	CHECK_STR(header(&r, "x-amz-meta-note"), "a   b");
	CHECK_STR(header(&r, "if-none-match"), "*");
	CHECK(r.nheaders == 9);
	sigv4_result_free(&r);
}

static void list_with_encoded_prefix(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_kv qp[] = {{"prefix", "users/a b+"}, {"max-keys", "2"}, {"list-type", "2"}};
	struct sigv4_request q = base_request("GET", "/");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_query.data, "list-type=2&max-keys=2&prefix=users%2Fa%20b%2B");
	expect_auth(&r, "host;x-amz-content-sha256;x-amz-date",
	            "17b06b858b38f85e4bcb2b02acbc4630e42a92b6aa7aba5c520d27f709e5d6af");
	sigv4_result_free(&r);
}

static void query_sort_by_value(void)
{
	/* Same name twice: sorted by (encoded) value too. */
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_kv qp[] = {{"a", "z"}, {"a", "b"}, {"A", "x"}, {"b c", "/"}};
	struct sigv4_request q = base_request("GET", "/");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.query = qp;
	q.nquery = NELEM(qp);
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.canonical_query.data, "A=x&a=b&a=z&b%20c=%2F");
	sigv4_result_free(&r);
}

static void uri_encode(void)
{
	struct buf b = {0};
	const char all[] = "AZaz09-._~ /!*'()$&+,;=:@?#[]%\x7f\x80\xff";

	sigv4_uri_encode(&b, all, strlen(all), true);
	CHECK_STR(buf_cstr(&b),
	          "AZaz09-._~%20/%21%2A%27%28%29%24%26%2B%2C%3B%3D%3A%40%3F%23%5B%5D%25"
	          "%7F%80%FF");
	buf_reset(&b);
	sigv4_uri_encode(&b, "a/b", 3, false);
	CHECK_STR(buf_cstr(&b), "a%2Fb");
	buf_reset(&b);
	/* Already-encoded input is encoded again: callers pass raw keys. */
	sigv4_uri_encode(&b, "a%20b", 5, true);
	CHECK_STR(buf_cstr(&b), "a%2520b");
	buf_free(&b);
}

static void digests(void)
{
	char hex[SIGV4_SHA256_HEX_SIZE], b64[SIGV4_SHA256_BASE64_SIZE];
	char md5[SIGV4_MD5_BASE64_SIZE], small[8];
	struct ierr e = {0};

	CHECK(sigv4_sha256_hex("", 0, hex, &e) == 0);
	CHECK_STR(hex, SIGV4_EMPTY_SHA256);
	CHECK(sigv4_sha256_base64("", 0, b64, &e) == 0);
	CHECK_STR(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	CHECK(sigv4_md5_base64("", 0, md5, &e) == 0);
	CHECK_STR(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
	CHECK(sigv4_hex_to_base64("D41D8CD98F00B204E9800998ECF8427E", md5, sizeof(md5), &e) == 0);
	CHECK_STR(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
	CHECK(sigv4_hex_to_base64("d41d8cd98f00b204e9800998ecf8427", md5, sizeof(md5), &e) == -1);
	CHECK(sigv4_hex_to_base64("zz", md5, sizeof(md5), &e) == -1);
	CHECK(sigv4_hex_to_base64("", md5, sizeof(md5), &e) == -1);
	CHECK(sigv4_hex_to_base64(SIGV4_EMPTY_SHA256, small, sizeof(small), &e) == -1);
}

static void refusals(void)
{
	struct sigv4_kv ok[] = {{"Host", HOST}};
	struct sigv4_kv nohost[] = {{"Range", "bytes=0-1"}};
	struct sigv4_kv dup[] = {{"Host", HOST}, {"RANGE", "a"}, {"range", "b"}};
	struct sigv4_kv own[] = {{"Host", HOST}, {"X-Amz-Date", "20130524T000000Z"}};
	struct sigv4_kv crlf[] = {{"Host", HOST}, {"x-amz-meta-a", "a\r\nInjected: yes"}};
	struct sigv4_kv badname[] = {{"Host", HOST}, {"bad name", "x"}};
	struct sigv4_request q = base_request("GET", "/k");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = nohost;
	q.nheaders = NELEM(nohost);
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "host") != NULL);
	CHECK(r.nheaders == 0 && r.headers == NULL);

	q.headers = dup;
	q.nheaders = NELEM(dup);
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "range") != NULL);

	q.headers = own;
	q.nheaders = NELEM(own);
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "x-amz-date") != NULL);

	q.headers = crlf;
	q.nheaders = NELEM(crlf);
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "x-amz-meta-a") != NULL);

	q.headers = badname;
	q.nheaders = NELEM(badname);
	CHECK(sigv4_sign(&q, &r, &e) == -1);

	q.headers = ok;
	q.nheaders = NELEM(ok);
	q.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "payload hash") != NULL);
	q.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(header(&r, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
	CHECK(strstr(r.canonical_request.data, "\nUNSIGNED-PAYLOAD") != NULL);
	sigv4_result_free(&r);
	q.payload_hash = NULL;

	q.path = "k";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	q.path = "/k";
	q.region = "us-east-1/evil";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	q.region = "us-east-1";

	/* Secrets never appear in messages, even about themselves. */
	q.session_token = "sekrit\ntoken";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, "sekrit") == NULL);
	q.session_token = NULL;
	q.secret_key = "";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	q.secret_key = SK;
	q.access_key = "AKIA/BAD";
	CHECK(sigv4_sign(&q, &r, &e) == -1);
	CHECK(strstr(e.msg, SK) == NULL);

	/* A signing result can be freed twice (emptied by the first free). */
	q.access_key = AK;
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	sigv4_result_free(&r);
	sigv4_result_free(&r);
}

static void other_times_and_regions(void)
{
	struct sigv4_kv h[] = {{"Host", HOST}};
	struct sigv4_request q = base_request("GET", "/");
	struct sigv4_result r;
	struct ierr e = {0};

	q.headers = h;
	q.nheaders = NELEM(h);
	q.when = (time_t)1704067199; /* 2023-12-31T23:59:59Z */
	q.region = "eu-west-3";
	CHECK(sigv4_sign(&q, &r, &e) == 0);
	CHECK_STR(r.amz_date, "20231231T235959Z");
	CHECK(strstr(r.authorization.data, "/20231231/eu-west-3/s3/aws4_request,") != NULL);
	CHECK(strstr(r.string_to_sign.data, "\n20231231T235959Z\n20231231/eu-west-3/s3/") != NULL);
	sigv4_result_free(&r);
}

int main(void)
{
	doc_get_object();
	doc_put_object();
	doc_get_lifecycle();
	doc_list_objects();
	session_token();
	upload_part_query();
	create_multipart_uploads();
	awkward_key_and_headers();
	list_with_encoded_prefix();
	query_sort_by_value();
	uri_encode();
	digests();
	refusals();
	other_times_and_regions();
	return test_done();
}
