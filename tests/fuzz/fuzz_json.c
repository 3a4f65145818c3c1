/* Fuzz target: one line of client JSON -> prime_event_from_json, the value
 * rules, and the encode/decode round trip prime-publish relies on; and the
 * same bytes as a stored document through prime_json_parse(), whose tree
 * must print to text it reads back to the same print (numbers as written). */
#include "fuzz.h"
#include "prime/event.h"
#include "prime/jsontext.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void document(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *p1, *p2;
    cJSON *tree, *again;

    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    if ((tree = prime_json_parse(text))) {
        p1 = cJSON_PrintUnformatted(tree);
        again = p1 ? prime_json_parse(p1) : NULL;
        p2 = again ? cJSON_PrintUnformatted(again) : NULL;
        if (!p1 || !again || !p2 || strcmp(p1, p2))
            abort();
        cJSON_free(p1);
        cJSON_free(p2);
        cJSON_Delete(again);
        cJSON_Delete(tree);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const prime_registry_t *reg = fuzz_registry();
    prime_event_t *ev = NULL, *back = NULL;
    prime_error_t err;
    void *bytes;
    size_t len;
    char *j1, *j2;

    document(data, size);
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

static void add_json(prime_event_t *ev, void (*add)(const uint8_t *, size_t))
{
    char *json = prime_event_to_json(ev, NULL);
    if (json)
        add((const uint8_t *)json, strlen(json));
    free(json);
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t))
{
    fuzz_each_example(add_json, add);
}
