/*
 * notify.c - sd_notify without libsystemd, and the housekeeping thread
 * (contract in notify.h).
 *
 * The datagram is sent on a fresh socket each time: messages are rare (at most
 * a few per second) and a fresh socket survives the manager restarting its end.
 */
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

volatile sig_atomic_t ingesta_reopen_requested;

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t plen;
	socklen_t alen;
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: no trailing NUL counted */
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
	           alen);
	close(fd);
	return n < 0 ? -1 : 1;
}

int64_t notify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end = NULL;
	long long v;

	if (usec == NULL || *usec == '\0')
		return 0;
	if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	v = strtoll(usec, &end, 10);
	if (end == usec || *end != '\0' || v <= 0)
		return 0;
	return v < 1000 ? 1 : (int64_t)(v / 1000);
}

/* ------------------------------------------------------ the service thread */

static struct {
	pthread_t thread;
	bool running;
	bool quit; /* under lock; service_stop wakes the nap through cond */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping_sent;
	struct service_hooks hooks;
	int64_t watchdog_ms;
} svc;

static void send_logged(const char *state)
{
	if (notify_send(state) < 0)
		log_event(LOG_WARNING, "systemd notification failed", "state", state, "error",
		          strerror(errno), NULL);
}

static void *service_main(void *arg)
{
	int64_t next_hook = 0, next_watchdog = 0;
	/* Short naps: STOPPING=1 and SIGHUP are handled within a quarter second. */
	int64_t nap = 250;

	(void)arg;
	if (svc.watchdog_ms > 0 && svc.watchdog_ms / 2 < nap)
		nap = svc.watchdog_ms / 2 > 0 ? svc.watchdog_ms / 2 : 1;
	if (svc.hooks.ready)
		send_logged("READY=1");
	for (;;) {
		int64_t now = monotonic_ms();
		struct timespec ts;
		bool quit;

		if (ingesta_reopen_requested) {
			ingesta_reopen_requested = 0;
			if (log_reopen() != 0)
				log_event(LOG_ERROR, "SIGHUP: could not reopen LOG_FILE", "error",
				          strerror(errno), NULL);
			else
				log_event(LOG_INFO, "SIGHUP: log file reopened", NULL);
		}
		if (ingesta_stop_requested && !svc.stopping_sent) {
			svc.stopping_sent = true;
			send_logged("STOPPING=1");
		}
		if (svc.hooks.periodic && now >= next_hook) {
			svc.hooks.periodic(svc.hooks.arg);
			next_hook = monotonic_ms() + svc.hooks.period_ms;
		}
		if (svc.watchdog_ms > 0 && now >= next_watchdog) {
			send_logged("WATCHDOG=1");
			next_watchdog = now + svc.watchdog_ms / 2;
		}
		/* Nap, but wake at once for service_stop: a process that is done
		 * must not wait out the nap before it exits. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(nap / 1000);
		ts.tv_nsec += (long)(nap % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&svc.lock);
		while (!svc.quit && pthread_cond_timedwait(&svc.cond, &svc.lock, &ts) != ETIMEDOUT)
			;
		quit = svc.quit;
		pthread_mutex_unlock(&svc.lock);
		if (quit)
			break;
	}
	return NULL;
}

int service_start(const struct service_hooks *h, struct ierr *e)
{
	pthread_condattr_t ca;
	int rc;

	if (svc.running)
		return ierr_set(e, IERR_INTERNAL, "service thread already running");
	memset(&svc, 0, sizeof(svc));
	pthread_mutex_init(&svc.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&svc.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (h)
		svc.hooks = *h;
	if (svc.hooks.period_ms <= 0)
		svc.hooks.period_ms = 5000;
	svc.watchdog_ms = notify_watchdog_ms();
	rc = pthread_create(&svc.thread, NULL, service_main, NULL);
	if (rc != 0)
		return ierr_errno(e, rc, "start the service thread");
	svc.running = true;
	return 0;
}

void service_stop(void)
{
	if (!svc.running)
		return;
	pthread_mutex_lock(&svc.lock);
	svc.quit = true;
	pthread_cond_signal(&svc.cond);
	pthread_mutex_unlock(&svc.lock);
	pthread_join(svc.thread, NULL);
	svc.running = false;
	if (svc.hooks.periodic)
		svc.hooks.periodic(svc.hooks.arg);
	if (!svc.stopping_sent) {
		svc.stopping_sent = true;
		send_logged("STOPPING=1");
	}
}
