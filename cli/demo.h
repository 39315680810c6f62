/*
 * demo.h - helpers of `ingesta demo` (the pipeline without servers).
 */
#ifndef INGESTA_DEMO_H
#define INGESTA_DEMO_H

#include <stdio.h>

#include "err.h"

/* (Re)create the demo SQLite database at path: users 10, products 12, orders 15. */
int demo_make_source(const char *path, struct ierr *e);
void demo_print_tree(const char *dir, int depth, FILE *out);

#endif
