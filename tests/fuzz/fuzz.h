#ifndef PRIME_FUZZ_H
#define PRIME_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Each target defines the libFuzzer entry point and its seeds: valid inputs
 * that the mutation driver (standalone.c) starts from when no libFuzzer is
 * linked. scripts/fuzz writes the same seeds as libFuzzer's corpus. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_seeds(void (*add)(const uint8_t *data, size_t size));

#endif
