/* testlib.c - counters behind testlib.h. */
#include "testlib.h"

int test_checks;
int test_failures;

int test_done(void)
{
	printf("%d checks, %d failed\n", test_checks, test_failures);
	return test_failures == 0 ? 0 : 1;
}
