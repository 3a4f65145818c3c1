/* Fuzz target: bytes off the wire -> prime_event_decode and everything a
 * consumer then does with an event (validate, print as JSON, encode again).
 * Any input must end in a decoded event or a clean error. */
#include "fuzz.h"
#include "prime/event.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const prime_registry_t *reg = fuzz_registry();
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

static void add_encoded(prime_event_t *ev, void (*add)(const uint8_t *, size_t))
{
    void *bytes;
    size_t len;
    if (prime_event_encode(ev, &bytes, &len, NULL) == PRIME_OK) {
        add(bytes, len);
        free(bytes);
    }
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t))
{
    fuzz_each_example(add_encoded, add);
}
