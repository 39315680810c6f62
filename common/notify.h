/*
 * notify.h - service lifecycle: systemd notifications, watchdog, SIGHUP.
 *
 * systemd's Type=notify protocol without libsystemd: one datagram per message
 * ("READY=1", "WATCHDOG=1", "STOPPING=1") to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the Linux abstract namespace). When
 * the variable is unset every call is a cheap no-op, so the same binary runs
 * under systemd, in a container or from a shell.
 *
 * A long-running command starts one housekeeping thread (service_start) that
 * sends READY=1, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 as soon as
 * SIGTERM/SIGINT is seen, reopens LOG_FILE after SIGHUP, and runs an optional
 * periodic hook (the uploader's metrics file). The hook runs on that thread:
 * a hook stuck on the spool database stops the watchdog pings, which is the
 * point - systemd then restarts a wedged daemon.
 */
#ifndef INGESTA_NOTIFY_H
#define INGESTA_NOTIFY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Set by the SIGHUP handler in main.c; the service thread reopens the log. */
extern volatile sig_atomic_t ingesta_reopen_requested;

/* Send one state string to $NOTIFY_SOCKET. Returns 1 sent, 0 when no socket is
 * configured, -1 on a send error (errno kept). Never blocks for long. */
int notify_send(const char *state);

/* The watchdog period from $WATCHDOG_USEC, in ms (0: no watchdog, or
 * $WATCHDOG_PID names another process). */
int64_t notify_watchdog_ms(void);

struct service_hooks {
	void (*periodic)(void *arg); /* may be NULL */
	void *arg;
	int64_t period_ms; /* how often periodic runs (its first run is at start) */
	bool ready;        /* send READY=1 once the thread runs */
};

/* Start the housekeeping thread (one per process). Returns 0, or -1 with *e. */
int service_start(const struct service_hooks *h, struct ierr *e);
/* Stop and join it; runs the periodic hook one last time, sends STOPPING=1 if
 * not sent yet. Safe to call when service_start was not called. */
void service_stop(void);

#endif
