#include "prime_test.h"

#include <stdio.h>

int prime_test_run(const char *suite_name, CU_InitializeFunc init, CU_CleanupFunc cleanup, const prime_test_t *tests)
{
    CU_pSuite suite;
    unsigned failed, ran;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite(suite_name, init, cleanup);
    for (const prime_test_t *t = tests; suite && t->name; t++)
        CU_add_test(suite, t->name, t->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() + CU_get_number_of_tests_failed();
    ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return failed == 0 && ran > 0 ? 0 : 1;
}

const char *prime_test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run this test through ctest (tests/with-stack)\n", name);
        exit(1);
    }
    return v;
}
