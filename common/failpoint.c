/*
 * failpoint.c - see failpoint.h. Compiled into every build; only reachable
 * when INGESTA_FAILPOINTS is on.
 */
#include "failpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void failpoint_hit(const char *name);

void failpoint_hit(const char *name)
{
	const char *want = getenv("INGESTA_FAILPOINT");
	const char *logp = getenv("INGESTA_FAILPOINT_LOG");
	/* Hit from several threads at once (upload workers, the manifest and
	 * commit-record PUT threads): each hit takes its own number. */
	static atomic_long skipped;

	if (logp && *logp) {
		int fd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

		if (fd >= 0) {
			char line[256];
			int n = snprintf(line, sizeof(line), "%s\n", name);

			if (write(fd, line, (size_t)n) < 0) {
				/* best effort: the log only helps the test's bookkeeping */
			}
			close(fd);
		}
	}
	if (want == NULL || strcmp(want, name) != 0)
		return;
	if (getenv("INGESTA_FAILPOINT_SKIP") &&
	    atomic_fetch_add(&skipped, 1) < atol(getenv("INGESTA_FAILPOINT_SKIP")))
		return;
	fprintf(stderr, "ingesta: failpoint %s: killing myself\n", name);
	kill(getpid(), SIGKILL);
}
