#ifndef PRIME_FUZZ_H
#define PRIME_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "prime/event.h"

/* Each target defines the libFuzzer entry point and its seeds: valid inputs
 * that the mutation driver (standalone.c) starts from when no libFuzzer is
 * linked. scripts/fuzz writes the same seeds as libFuzzer's corpus. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_seeds(void (*add)(const uint8_t *data, size_t size));

/* fuzz_common.c: the process's registry, and every type's examples (three
 * seeds each) handed to use() to turn into seeds. */
const prime_registry_t *fuzz_registry(void);
void fuzz_each_example(void (*use)(prime_event_t *ev, void (*add)(const uint8_t *, size_t)),
                       void (*add)(const uint8_t *, size_t));

#endif
