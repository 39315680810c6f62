/*
 * http_metrics.c - the METRICS_LISTEN endpoint: one thread, poll(), a fixed
 * connection table (contract and limits in http_metrics.h; the request parser
 * is http_parse.c).
 *
 * A connection goes READ (request head into its fixed buffer) -> WRITE (the
 * whole response, rendered beforehand) -> DRAIN (our side shut down, input
 * read and dropped until the client closes, so the response is not cut off by
 * a reset) -> closed; the deadline closes it in any state.
 *
 * Stopping is graceful: the connections already queued in the listen backlog
 * are accepted, the listening socket is closed (a new connection is refused),
 * and the requests begun are answered, for at most STOP_GRACE_MS. What is
 * left is TCP's own window: a handshake the kernel completes between the last
 * accept() and close() is reset by the kernel. (A socket filter dropping SYNs
 * first was tried: it left half-open connections that timed out instead.)
 * Closing a socket with an unread request on it sends a reset, which a
 * scraper reports as an error rather than as "the target is down".
 */
#include "http_metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "http_parse.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "util.h"

#define ACCEPTS_PER_ROUND 64
#define DRAIN_MS          1000 /* at most this long after the response */
#define ACCEPT_PAUSE_MS   100  /* after EMFILE and the like */
#define STOP_GRACE_MS     1000 /* on stop, at most this long for requests begun */

#define CT_METRICS "text/plain; version=0.0.4"
#define CT_TEXT    "text/plain; charset=utf-8"

enum conn_state { C_FREE, C_READ, C_WRITE, C_DRAIN };

struct conn {
	enum conn_state st;
	int fd;
	uint64_t seq;     /* accept order, for eviction */
	int64_t deadline; /* monotonic ms */
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	char in[HTTP_MAX_HEAD];
};

struct rendering {
	struct buf body;
	int status;
	int64_t at; /* monotonic ms; 0: never */
};

static struct {
	bool running;
	pthread_t thread;
	int lfd, wake;
	struct spool *sp;
	int64_t quota;
	struct conn *conns;
	struct rendering metrics, health;
	int64_t accept_paused_until;
	uint64_t accepted;
} h = {.lfd = -1, .wake = -1};

static void conn_close(struct conn *c)
{
	if (c->st == C_FREE)
		return;
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->st = C_FREE;
	c->fd = -1;
}

/* ------------------------------------------------------------ rendering */

static void render_metrics(int64_t now)
{
	struct ierr e = {0};

	if (h.metrics.at != 0 && now - h.metrics.at < HTTP_CACHE_MS)
		return;
	buf_reset(&h.metrics.body);
	h.metrics.status = 200;
	if (metrics_render(h.sp, h.quota, &h.metrics.body, &e) != 0) {
		buf_reset(&h.metrics.body);
		buf_printf(&h.metrics.body, "ERROR: metrics not rendered: %s\n", e.msg);
		h.metrics.status = 503;
	}
	h.metrics.at = now;
}

static void render_health(int64_t now)
{
	/* The defaults of `ingesta status --check`. */
	struct status_check_opts o = {.max_age_ms = STATUS_CHECK_MAX_AGE_MS,
	                              .max_spool_fraction = STATUS_CHECK_MAX_SPOOL_FRACTION,
	                              .quota_bytes = h.quota,
	                              .require_uploader = true};
	struct ierr e = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (h.health.at != 0 && now - h.health.at < HTTP_CACHE_MS)
		return;
	buf_reset(&h.health.body);
	h.health.at = now;
	f = open_memstream(&text, &len);
	if (f == NULL) {
		buf_puts(&h.health.body, "ERROR: out of memory\n");
		h.health.status = 500;
		return;
	}
	rc = status_check(h.sp, &o, f, &e);
	fclose(f);
	if (rc < 0) {
		buf_printf(&h.health.body, "ERROR: spool not readable: %s\n", e.msg);
		h.health.status = 503;
	} else {
		buf_append(&h.health.body, text ? text : "", text ? len : 0);
		h.health.status = rc == 0 ? 200 : 503;
	}
	free(text);
}

/* ------------------------------------------------------------ responses */

/* Write what the socket takes now; on the last byte shut our side down and
 * drain. Closes the connection on an error. */
static void conn_flush(struct conn *c, int64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	shutdown(c->fd, SHUT_WR);
	c->st = C_DRAIN;
	if (c->deadline > now + DRAIN_MS)
		c->deadline = now + DRAIN_MS;
}

static void respond(struct conn *c, int status, const char *ctype, const char *extra,
                    const char *body, size_t blen, bool head, int64_t now)
{
	struct buf b = {0};

	buf_printf(&b,
	           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	           "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
	           status, http_reason(status), ctype, blen, extra);
	if (!head)
		buf_append(&b, body, blen);
	c->out = b.data;
	c->out_len = b.len;
	c->out_off = 0;
	c->st = C_WRITE;
	conn_flush(c, now);
}

static void respond_error(struct conn *c, int status, const char *extra, bool head, int64_t now)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));

	respond(c, status, CT_TEXT, extra, body, (size_t)n, head, now);
}

static void route(struct conn *c, const struct http_request *r, int64_t now)
{
	bool head = r->method == HTTP_HEAD;
	struct rendering *x;

	if (r->path_len == 8 && memcmp(r->path, "/metrics", 8) == 0)
		x = &h.metrics;
	else if (r->path_len == 8 && memcmp(r->path, "/healthz", 8) == 0)
		x = &h.health;
	else
		x = NULL;
	if (x == NULL) {
		respond_error(c, 404, "", head, now);
		return;
	}
	if (r->method == HTTP_OTHER) {
		respond_error(c, 405, "Allow: GET, HEAD\r\n", false, now);
		return;
	}
	if (x == &h.metrics)
		render_metrics(now);
	else
		render_health(now);
	respond(c, x->status, x == &h.metrics && x->status == 200 ? CT_METRICS : CT_TEXT, "",
	        x->body.data ? x->body.data : "", x->body.len, head, now);
}

/* ------------------------------------------------------------ reading */

static void conn_read(struct conn *c, int64_t now)
{
	if (c->st == C_DRAIN) {
		char sink[4096];
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(c);
		return;
	}
	for (;;) {
		struct http_request r;
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c); /* gone before sending a request */
			return;
		}
		c->in_len += (size_t)n;
		rc = http_parse_request(c->in, c->in_len, &r);
		if (rc == HTTP_PARSE_MORE)
			continue;
		if (rc == HTTP_PARSE_DONE)
			route(c, &r, now);
		else
			respond_error(c, rc, "", false, now);
		return;
	}
}

/* ------------------------------------------------------------ accepting */

/* The slot for a new connection: a free one, else the one to evict (served
 * and draining first, then the oldest still sending its request), else NULL. */
static struct conn *slot_for_new(void)
{
	struct conn *victim = NULL;

	for (int i = 0; i < HTTP_MAX_CONNS; i++) {
		struct conn *c = &h.conns[i];

		if (c->st == C_FREE)
			return c;
		if (c->st == C_WRITE)
			continue;
		if (victim == NULL || (c->st == C_DRAIN && victim->st != C_DRAIN) ||
		    (c->st == victim->st && c->seq < victim->seq))
			victim = c;
	}
	if (victim)
		conn_close(victim);
	return victim;
}

static void accept_some(int64_t now)
{
	for (int k = 0; k < ACCEPTS_PER_ROUND; k++) {
		int fd = accept4(h.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				h.accept_paused_until = now + ACCEPT_PAUSE_MS;
			return; /* EAGAIN, or paused */
		}
		c = slot_for_new();
		if (c == NULL) {
			close(fd); /* every slot is writing a response */
			continue;
		}
		c->st = C_READ;
		c->fd = fd;
		c->seq = ++h.accepted;
		c->deadline = now + HTTP_DEADLINE_MS;
		c->in_len = 0;
		conn_read(c, now); /* the request is often there already */
	}
}

static void expire(int64_t now)
{
	for (int i = 0; i < HTTP_MAX_CONNS; i++) {
		struct conn *c = &h.conns[i];

		if (c->st == C_FREE || now < c->deadline)
			continue;
		if (c->st == C_READ) {
			static const char timeout[] =
			    "HTTP/1.1 408 Request Timeout\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n";

			/* best effort, never waited for */
			if (send(c->fd, timeout, sizeof(timeout) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) <
			    0)
				errno = 0;
		}
		conn_close(c);
	}
}

/* ------------------------------------------------------------ the thread */

/* Stop taking connections: accept the backlog (closing the listening socket
 * resets what is queued on it), then close. */
static void stop_listening(int64_t now)
{
	accept_some(now);
	close(h.lfd);
	h.lfd = -1;
}

/* A connection that still owes its client an answer. */
static bool conn_pending(const struct conn *c)
{
	return c->st == C_READ || c->st == C_WRITE;
}

static void *serve(void *arg)
{
	struct pollfd pfd[HTTP_MAX_CONNS + 2];
	int who[HTTP_MAX_CONNS + 2];
	int64_t stop_by = -1; /* >= 0: stopping, give up at this time */

	(void)arg;
	for (;;) {
		int64_t now = monotonic_ms(), timeout = 1000;
		int n = 0, rc, pending = 0;

		if (stop_by < 0) {
			pfd[n] = (struct pollfd){.fd = h.wake, .events = POLLIN};
			who[n++] = -1;
		}
		if (h.lfd >= 0 && now >= h.accept_paused_until) {
			pfd[n] = (struct pollfd){.fd = h.lfd, .events = POLLIN};
			who[n++] = -2;
		} else if (h.lfd >= 0 && h.accept_paused_until - now < timeout) {
			timeout = h.accept_paused_until - now;
		}
		for (int i = 0; i < HTTP_MAX_CONNS; i++) {
			struct conn *c = &h.conns[i];

			if (c->st == C_FREE)
				continue;
			if (stop_by >= 0 && !conn_pending(c)) {
				conn_close(c); /* answered: nothing is lost by closing now */
				continue;
			}
			pending += conn_pending(c);
			pfd[n] = (struct pollfd){.fd = c->fd,
			                         .events = c->st == C_WRITE ? POLLOUT : POLLIN};
			who[n++] = i;
			if (c->deadline - now < timeout)
				timeout = c->deadline - now;
		}
		if (stop_by >= 0) {
			if (pending == 0 || now >= stop_by)
				break;
			if (stop_by - now < timeout)
				timeout = stop_by - now;
		}
		rc = poll(pfd, (nfds_t)n, timeout < 0 ? 0 : (int)timeout);
		if (rc < 0 && errno != EINTR)
			break;
		now = monotonic_ms();
		if (rc > 0) {
			for (int k = 0; k < n; k++) {
				struct conn *c;

				if (pfd[k].revents == 0)
					continue;
				if (who[k] == -1) { /* http_metrics_stop */
					stop_by = now + STOP_GRACE_MS;
					stop_listening(now);
					continue;
				}
				if (who[k] == -2) {
					if (h.lfd >= 0)
						accept_some(now);
					continue;
				}
				c = &h.conns[who[k]];
				if (c->st == C_FREE)
					continue; /* evicted by accept_some in this round */
				if (c->st == C_WRITE &&
				    (pfd[k].revents & (POLLOUT | POLLERR | POLLHUP)))
					conn_flush(c, now);
				else if (c->st != C_WRITE)
					conn_read(c, now);
			}
		}
		expire(now);
	}
	for (int i = 0; i < HTTP_MAX_CONNS; i++)
		conn_close(&h.conns[i]);
	return NULL;
}

static bool is_loopback(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static int listen_error(struct ierr *e, int err, const char *listen, const char *what)
{
	ierr_errno(e, err, "METRICS_LISTEN=%s: %s", listen, what);
	e->code = IERR_CONFIG;
	return -1;
}

int http_metrics_start(const struct http_metrics_opts *o, struct ierr *e)
{
	struct sockaddr_storage addr;
	socklen_t alen = 0;
	char why[160];
	sigset_t all, old;
	int one = 1, rc;

	if (http_parse_listen(o->listen, &addr, &alen, why, sizeof(why)) != 0)
		return ierr_set(e, IERR_CONFIG, "METRICS_LISTEN=\"%s\": %s", o->listen, why);
	h.lfd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h.lfd < 0)
		return listen_error(e, errno, o->listen, "socket");
	setsockopt(h.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr.ss_family == AF_INET6)
		setsockopt(h.lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(h.lfd, (struct sockaddr *)&addr, alen) != 0 || listen(h.lfd, 64) != 0) {
		int err = errno;

		close(h.lfd);
		h.lfd = -1;
		return listen_error(e, err, o->listen, "cannot listen");
	}
	h.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h.conns = calloc(HTTP_MAX_CONNS, sizeof(*h.conns));
	h.sp = spool_open(o->spool_dir, SPOOL_ROLE_OPERATOR, e);
	if (h.wake < 0 || h.conns == NULL || h.sp == NULL) {
		if (h.sp == NULL)
			ierr_prefix(e, "METRICS_LISTEN=%s", o->listen);
		else
			ierr_errno(e, errno, "METRICS_LISTEN=%s: start", o->listen);
		e->code = IERR_CONFIG;
		http_metrics_stop();
		return -1;
	}
	for (int i = 0; i < HTTP_MAX_CONNS; i++)
		h.conns[i].fd = -1;
	h.quota = o->quota_bytes;
	h.accept_paused_until = 0;
	/* The thread takes no signal: SIGTERM and friends go to the uploader. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&h.thread, NULL, serve, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ierr_errno(e, rc, "METRICS_LISTEN=%s: start the thread", o->listen);
		e->code = IERR_CONFIG;
		http_metrics_stop();
		return -1;
	}
	h.running = true;
	log_event(LOG_INFO, "metrics endpoint listening", "listen", o->listen, "paths",
	          "/metrics /healthz", "scope",
	          is_loopback(&addr) ? "this host only" : "other hosts", NULL);
	return 0;
}

void http_metrics_stop(void)
{
	if (h.running) {
		uint64_t one = 1;

		if (write(h.wake, &one, sizeof(one)) < 0)
			errno = 0;
		pthread_join(h.thread, NULL);
		h.running = false;
	}
	if (h.lfd >= 0)
		close(h.lfd);
	if (h.wake >= 0)
		close(h.wake);
	h.lfd = h.wake = -1;
	if (h.sp)
		spool_close(h.sp);
	h.sp = NULL;
	free(h.conns);
	h.conns = NULL;
	buf_free(&h.metrics.body);
	buf_free(&h.health.body);
	h.metrics.at = h.health.at = 0;
}
