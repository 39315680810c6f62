/*
 * failpoint.h - named crash points for the reliability suite.
 *
 * Built with -Dfailpoints=true, FAILPOINT("seal.before_rename") kills the
 * process with SIGKILL (exactly like `kill -9`) when the environment variable
 * INGESTA_FAILPOINT names it; with INGESTA_FAILPOINT_SKIP=N the first N hits
 * pass. INGESTA_FAILPOINT_LOG=FILE appends the name of every failpoint reached,
 * so a test can prove each one is hit. In normal builds FAILPOINT compiles to
 * nothing.
 */
#ifndef INGESTA_FAILPOINT_H
#define INGESTA_FAILPOINT_H

#include "ingesta_build.h"

#if INGESTA_FAILPOINTS
void failpoint_hit(const char *name);
#define FAILPOINT(name) failpoint_hit(name)
#else
#define FAILPOINT(name) ((void)0)
#endif

#endif
