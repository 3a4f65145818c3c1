/* Fuzz target: one line of client JSON -> prime_event_from_json, the value
 * rules, and the encode/decode round trip prime-publish relies on. */
#include "fuzz.h"
#include "prime/event.h"

#include <stdlib.h>
#include <string.h>

static prime_registry_t *registry(void)
{
    static prime_registry_t *reg;
    if (!reg && !(reg = prime_registry_new(NULL)))
        abort();
    return reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prime_registry_t *reg = registry();
    prime_event_t *ev = NULL, *back = NULL;
    prime_error_t err;
    void *bytes;
    size_t len;
    char *j1, *j2;

    prime_error_clear(&err);
    if (prime_event_from_json(reg, (const char *)data, size, &ev, &err)) {
        if (!err.message[0])
            abort();
        return 0;
    }
    prime_error_clear(&err);
    if (prime_event_validate(ev, &err) == PRIME_OK) {
        if (prime_event_encode(ev, &bytes, &len, NULL) == PRIME_OK) {
            if (prime_event_decode(reg, bytes, len, &back, NULL))
                abort();
            j1 = prime_event_to_json(ev, NULL);
            j2 = prime_event_to_json(back, NULL);
            if (!j1 || !j2 || strcmp(j1, j2))
                abort();
            free(j1);
            free(j2);
            free(bytes);
            prime_event_free(back);
        }
    } else if (!err.message[0]) {
        abort();
    }
    prime_event_free(ev);
    return 0;
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t))
{
    prime_registry_t *reg = registry();
    for (size_t i = 0; i < prime_registry_count(reg); i++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            prime_event_t *ev = prime_event_example(reg, prime_event_type_name(prime_registry_at(reg, i)), seed, NULL);
            char *json = ev ? prime_event_to_json(ev, NULL) : NULL;
            if (json)
                add((const uint8_t *)json, strlen(json));
            free(json);
            prime_event_free(ev);
        }
}
