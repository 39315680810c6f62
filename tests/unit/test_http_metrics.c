/*
 * test_http_metrics.c - the metrics endpoint: the pure request and address
 * parsers (http_parse.h) case by case, then the server (http_metrics.h) on a
 * temporary spool through real sockets: both endpoints, the refusals, the
 * connection limit with eviction, a header over the limit, and a second start
 * on an address in use.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_metrics.h"
#include "http_parse.h"
#include "spool.h"
#include "testlib.h"
#include "util.h"

static int parse(const char *s, struct http_request *r)
{
	return http_parse_request(s, strlen(s), r);
}

static void test_requests(void)
{
	struct http_request r;
	char big[HTTP_MAX_HEAD + 100];

	CHECK(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == HTTP_PARSE_DONE);
	CHECK(r.method == HTTP_GET && r.minor == 1 && r.path_len == 8 &&
	      memcmp(r.path, "/metrics", 8) == 0);
	CHECK(r.head_len == strlen("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
	/* bare LF, HTTP/1.0, HEAD, a query cut from the path, leading empty lines */
	CHECK(parse("\r\n\nHEAD /healthz?x=1 HTTP/1.0\n\n", &r) == HTTP_PARSE_DONE);
	CHECK(r.method == HTTP_HEAD && r.minor == 0 && r.path_len == 8);
	CHECK(parse("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r) == HTTP_PARSE_DONE);
	CHECK(r.method == HTTP_OTHER);
	/* what Prometheus sends */
	CHECK(parse("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: "
	            "Prometheus/2.45.0\r\nAccept: application/openmetrics-text;version=1.0.0,"
	            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n"
	            "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
	            &r) == HTTP_PARSE_DONE);
	/* incomplete: every prefix of a valid request asks for more */
	{
		const char *full = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";

		for (size_t i = 0; i < strlen(full); i++)
			CHECK(http_parse_request(full, i, &r) == HTTP_PARSE_MORE);
	}
	/* malformed */
	CHECK(parse("GET  /metrics HTTP/1.1\r\n\r\n", &r) == 400);
	CHECK(parse("GET metrics HTTP/1.1\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics\r\n\r\n", &r) == 400); /* HTTP/0.9 */
	CHECK(parse("GET /metrics HTTP/1.1\r\n", &r) == HTTP_PARSE_MORE);
	CHECK(parse("GET /metrics http/1.1\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/1.10\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/2.0\r\n\r\n", &r) == 505);
	CHECK(parse("GET /metrics HTTP/1.2\r\n\r\n", &r) == 505);
	CHECK(parse("GET /metrics HTTP/1.1\rX\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/1.1\r\n: x\r\n\r\n", &r) == 400);
	CHECK(parse("GET /metrics HTTP/1.1\r\nHost: a\x01"
	            "b\r\n\r\n",
	            &r) == 400);
	CHECK(http_parse_request("GET /m\0 HTTP/1.1\r\n\r\n", 21, &r) == 400);
	CHECK(parse("G\xc3\xa9T / HTTP/1.1\r\n\r\n", &r) == 400);
	CHECK(parse("\x16\x03\x01\x02\x00\x01", &r) == 400); /* a TLS ClientHello */
	CHECK(parse("\r\r\n", &r) == 400);
	/* early garbage is refused before the limit */
	CHECK(parse("GET /a b", &r) == 400);
	/* limits: a request line over HTTP_MAX_HEAD -> 414, headers -> 431 */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	CHECK(http_parse_request(big, HTTP_MAX_HEAD - 1, &r) == HTTP_PARSE_MORE);
	CHECK(http_parse_request(big, HTTP_MAX_HEAD, &r) == 414);
	CHECK(http_parse_request(big, sizeof(big), &r) == 414);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	CHECK(http_parse_request(big, HTTP_MAX_HEAD - 1, &r) == HTTP_PARSE_MORE);
	CHECK(http_parse_request(big, sizeof(big), &r) == 431);
	/* a head that ends exactly at the limit is fine, bytes after it unread */
	memcpy(big + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
	CHECK(http_parse_request(big, sizeof(big), &r) == HTTP_PARSE_DONE);
	CHECK(r.head_len == HTTP_MAX_HEAD);
	CHECK_STR(http_reason(431), "Request Header Fields Too Large");
	CHECK_STR(http_reason(299), "");
}

static void test_listen(void)
{
	struct sockaddr_storage a;
	socklen_t n = 0;
	char why[160];

	CHECK(http_parse_listen("127.0.0.1:9464", &a, &n, why, sizeof(why)) == 0);
	CHECK(a.ss_family == AF_INET && n == sizeof(struct sockaddr_in) &&
	      ntohs(((struct sockaddr_in *)&a)->sin_port) == 9464);
	CHECK(http_parse_listen("[::1]:9464", &a, &n, why, sizeof(why)) == 0);
	CHECK(a.ss_family == AF_INET6 && n == sizeof(struct sockaddr_in6));
	CHECK(http_parse_listen("0.0.0.0:1", &a, &n, why, sizeof(why)) == 0);
	CHECK(http_parse_listen("[::]:65535", &a, &n, why, sizeof(why)) == 0);
	static const char *const bad[] = {
	    "",
	    ":9464",
	    "9464",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    "127.0.0.1:65536",
	    "127.0.0.1:+80",
	    "127.0.0.1:8a",
	    "localhost:9464",
	    "::1:9464",
	    "[::1]",
	    "[::1]9464",
	    "[]:9464",
	    "[127.0.0.1]:80",
	    "[::1%lo]:80",
	    "1.2.3:80",
	    "127.0.0.1:999999",
	    "[::1:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CHECK(http_parse_listen(bad[i], &a, &n, why, sizeof(why)) == -1);
		CHECK(why[0] != '\0');
	}
	CHECK(http_parse_listen(":9464", &a, &n, why, sizeof(why)) == -1 &&
	      strstr(why, "explicitly") != NULL);
}

/* ------------------------------------------------------------ the server */

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &n);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send req, read the whole response (the server closes), return it (malloc). */
static char *exchange(int port, const char *req, size_t len)
{
	int fd = dial(port);
	char *out = calloc(1, 65536);
	size_t got = 0;

	if (fd < 0)
		return out;
	if (write(fd, req, len) < 0)
		got = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		n = read(fd, out + got, 65535 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return out;
}

static void test_server(void)
{
	char dir[] = "/tmp/ingesta-test-http-XXXXXX";
	char addr[64], cmd[128];
	struct ierr e = {0};
	struct spool *sp;
	int port = free_port(), idle[HTTP_MAX_CONNS + 4];
	char *resp, *req;

	if (mkdtemp(dir) == NULL)
		return;
	sp = spool_open(dir, SPOOL_ROLE_OPERATOR, &e); /* creates spool.db */
	CHECK(sp != NULL);
	if (sp)
		spool_close(sp);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct http_metrics_opts o = {.listen = addr, .spool_dir = dir, .quota_bytes = 1 << 20};
	CHECK(http_metrics_start(&o, &e) == 0);

	resp = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 35);
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4\r\n") != NULL);
	CHECK(strstr(resp, "\r\n\r\n# HELP ingesta_segments ") != NULL);
	CHECK(strstr(resp, "\ningesta_spool_quota_bytes 1048576\n") != NULL);
	free(resp);
	/* no uploader holds the lock here: /healthz says so with 503 */
	resp = exchange(port, "GET /healthz HTTP/1.0\r\n\r\n", 25);
	CHECK(strncmp(resp, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
	CHECK(strstr(resp, "\r\n\r\nUNHEALTHY: no uploader running") != NULL);
	free(resp);
	resp = exchange(port, "HEAD /metrics HTTP/1.1\r\n\r\n", 26);
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(resp, "# HELP") == NULL);
	free(resp);
	resp = exchange(port, "GET /nope HTTP/1.1\r\n\r\n", 22);
	CHECK(strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
	free(resp);
	resp = exchange(port, "DELETE /metrics HTTP/1.1\r\n\r\n", 28);
	CHECK(strncmp(resp, "HTTP/1.1 405 ", 13) == 0 && strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
	free(resp);
	resp = exchange(port, "\x01\x02garbage\r\n\r\n", 13);
	CHECK(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
	free(resp);
	/* a header over the limit: 431, the rest of what was sent is drained */
	req = malloc(3 * HTTP_MAX_HEAD);
	memset(req, 'a', 3 * HTTP_MAX_HEAD);
	memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
	memcpy(req + 3 * HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
	resp = exchange(port, req, 3 * HTTP_MAX_HEAD);
	CHECK(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
	free(resp);
	free(req);

	/* More idle connections than the limit: the oldest are evicted, a real
	 * request still gets its answer. */
	for (int i = 0; i < HTTP_MAX_CONNS + 4; i++) {
		idle[i] = dial(port);
		CHECK(idle[i] >= 0);
		if (idle[i] >= 0 && write(idle[i], "GE", 2) < 0)
			CHECK(0);
	}
	usleep(200 * 1000);
	resp = exchange(port, "GET /metrics HTTP/1.1\r\n\r\n", 25);
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(resp);
	{
		char c;
		struct pollfd p = {.fd = idle[0], .events = POLLIN};

		CHECK(poll(&p, 1, 2000) == 1 && read(idle[0], &c, 1) <= 0); /* evicted */
	}
	for (int i = 0; i < HTTP_MAX_CONNS + 4; i++)
		close(idle[i]);

	/* The same address twice: a clear error naming the key. */
	{
		struct ierr e2 = {0};
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int p2 = free_port();
		char l2[64];

		a.sin_port = htons((uint16_t)p2);
		CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0);
		http_metrics_stop();
		snprintf(l2, sizeof(l2), "127.0.0.1:%d", p2);
		o.listen = l2;
		CHECK(http_metrics_start(&o, &e2) == -1);
		CHECK(e2.code == IERR_CONFIG && strstr(e2.msg, "METRICS_LISTEN=127.0.0.1:") &&
		      strstr(e2.msg, "in use"));
		close(fd);
		o.listen = "127.0.0.1";
		CHECK(http_metrics_start(&o, &e2) == -1 && e2.code == IERR_CONFIG);
	}
	http_metrics_stop();
	http_metrics_stop(); /* idempotent */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	test_requests();
	test_listen();
	test_server();
	return test_done();
}
