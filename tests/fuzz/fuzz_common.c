/* Shared by the fuzz targets: one registry for the process, and the event
 * examples that seed the corpora. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

const prime_registry_t *fuzz_registry(void)
{
    static prime_registry_t *reg;
    if (!reg && !(reg = prime_registry_new(NULL)))
        abort();
    return reg;
}

void fuzz_each_example(void (*use)(prime_event_t *ev, void (*add)(const uint8_t *, size_t)),
                       void (*add)(const uint8_t *, size_t))
{
    const prime_registry_t *reg = fuzz_registry();
    for (size_t i = 0; i < prime_registry_count(reg); i++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            prime_event_t *ev = prime_event_example(reg, prime_event_type_name(prime_registry_at(reg, i)), seed, NULL);
            if (ev)
                use(ev, add);
            prime_event_free(ev);
        }
}
