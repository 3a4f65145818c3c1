#ifndef PRIME_TEST_H
#define PRIME_TEST_H

#include <CUnit/Basic.h>
#include <stdlib.h>

typedef struct prime_test {
    const char *name;
    CU_TestFunc fn;
} prime_test_t;

/* Runs the NULL-terminated list as one CUnit suite with verbose output and
 * returns the process exit status: 0 only when every assertion passed and
 * at least one test ran. */
int prime_test_run(const char *suite, CU_InitializeFunc init, CU_CleanupFunc cleanup, const prime_test_t *tests);

/* The value of an environment variable the test cannot run without; aborts
 * the test program with a message naming it when unset. */
const char *prime_test_env(const char *name);

#endif
