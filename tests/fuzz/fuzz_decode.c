/* Fuzz target: bytes off the wire -> prime_event_decode and everything a
 * consumer then does with an event (validate, print as JSON, encode again).
 * Any input must end in a decoded event or a clean error. */
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
    prime_event_t *ev = NULL, *again = NULL;
    prime_error_t err;
    void *bytes;
    size_t len;
    char *json, *json2;

    prime_error_clear(&err);
    if (prime_event_decode(reg, data, size, &ev, &err)) {
        if (err.code == PRIME_OK || !err.message[0])
            abort(); /* a failure must say why */
        return 0;
    }
    prime_event_validate(ev, NULL);
    json = prime_event_to_json(ev, NULL);
    if (!json)
        abort();
    /* Whatever decoded must encode and decode to the same event. */
    if (prime_event_encode(ev, &bytes, &len, NULL) == PRIME_OK) {
        if (prime_event_decode(reg, bytes, len, &again, NULL))
            abort();
        json2 = prime_event_to_json(again, NULL);
        if (!json2 || strcmp(json, json2))
            abort();
        free(json2);
        free(bytes);
        prime_event_free(again);
    }
    free(json);
    prime_event_free(ev);
    return 0;
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t))
{
    prime_registry_t *reg = registry();
    for (size_t i = 0; i < prime_registry_count(reg); i++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            prime_event_t *ev = prime_event_example(reg, prime_event_type_name(prime_registry_at(reg, i)), seed, NULL);
            void *bytes;
            size_t len;
            if (ev && prime_event_encode(ev, &bytes, &len, NULL) == PRIME_OK) {
                add(bytes, len);
                free(bytes);
            }
            prime_event_free(ev);
        }
}
