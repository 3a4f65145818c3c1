/* Fuzz target: bytes off the wire -> prime_event_decode and everything a
 * consumer then does with an event (validate, print as JSON, encode again).
 * Any input must end in a decoded event or a clean error.
 *
 * Two kinds of input:
 *   - raw: an input starting with C3 (the single-object marker) is the
 *     message itself;
 *   - recipe: any other input builds a message. Byte 0 picks a writer
 *     schema the registry knows (its index modulo their number), the header
 *     gets that schema's real fingerprint, and the remaining bytes drive a
 *     walk of its fields that writes the body: a union branch, a string's
 *     length, an array's blocks and counts, each from a byte or two. Bytes
 *     past the end read as zero, which writes the smallest valid value
 *     (null, "", 0, an empty array). Random bytes after a fingerprint die at
 *     the first string length; a recipe reaches deep shapes of every
 *     schema in a few bytes: the 5.5 KB message of issue 16 (an array of
 *     5,150 empty strings) is a recipe of a dozen bytes. */
#include "fuzz.h"
#include "prime/event.h"
#include "prime/fingerprint.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* What the recipe walk needs of a field. */
typedef enum { F_STRING, F_INT, F_LONG, F_DOUBLE, F_BOOLEAN, F_ARRAY } fkind_t;

typedef struct {
    fkind_t kind;
    int nullable;
} rfield_t;

typedef struct {
    uint64_t fingerprint;
    rfield_t *fields;
    size_t nfields;
} rschema_t;

static rschema_t *schemas;
static size_t nschemas;

static fkind_t kind_of(json_t *type)
{
    const char *t = json_is_string(type) ? json_string_value(type) : json_string_value(json_object_get(type, "type"));
    if (!t)
        abort();
    if (!strcmp(t, "string"))
        return F_STRING;
    if (!strcmp(t, "int"))
        return F_INT;
    if (!strcmp(t, "long"))
        return F_LONG;
    if (!strcmp(t, "double"))
        return F_DOUBLE;
    if (!strcmp(t, "boolean"))
        return F_BOOLEAN;
    if (!strcmp(t, "array"))
        return F_ARRAY;
    abort(); /* the registry refuses other shapes */
}

static void add_schema(const char *text)
{
    json_t *j = json_loads(text, 0, NULL), *fields, *f;
    char *pcf = prime_avro_canonical_form(text, strlen(text), NULL);
    rschema_t *s;
    size_t i;

    if (!j || !pcf || !(schemas = realloc(schemas, (nschemas + 1) * sizeof(*schemas))))
        abort();
    s = &schemas[nschemas++];
    s->fingerprint = prime_avro_crc64(pcf, strlen(pcf));
    fields = json_object_get(j, "fields");
    s->nfields = json_array_size(fields);
    if (!(s->fields = calloc(s->nfields, sizeof(*s->fields))))
        abort();
    json_array_foreach(fields, i, f) {
        json_t *type = json_object_get(f, "type");
        if (json_is_array(type)) {
            s->fields[i].nullable = 1;
            type = json_array_get(type, 1);
        }
        s->fields[i].kind = kind_of(type);
    }
    free(pcf);
    json_decref(j);
}

/* Every writer schema the registry reads: the current and the older
 * versions of each type. */
static void load_schemas(void)
{
    const prime_registry_t *reg = fuzz_registry();
    if (schemas)
        return;
    for (size_t i = 0; i < prime_registry_writer_count(reg); i++)
        add_schema(prime_registry_writer_schema_json(reg, i));
}

typedef struct {
    const uint8_t *p, *end; /* the recipe */
    uint8_t *buf;           /* the message */
    size_t n, cap;
} build_t;

/* Messages are capped a little past the registry's limit, so that the
 * size check is reached too. */
#define BUILD_MAX (PRIME_DEFAULT_MAX_MESSAGE_BYTES + 1024)

static unsigned take(build_t *b)
{
    return b->p < b->end ? *b->p++ : 0;
}

static void put(build_t *b, const void *data, size_t len)
{
    if (b->n + len > BUILD_MAX)
        len = BUILD_MAX - b->n;
    if (!len)
        return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len)
            cap *= 2;
        if (!(b->buf = realloc(b->buf, cap)))
            abort();
        b->cap = cap;
    }
    memcpy(b->buf + b->n, data, len);
    b->n += len;
}

static void put_long(build_t *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t out[10];
    size_t n = 0;
    while (z & ~0x7fULL) {
        out[n++] = (uint8_t)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    out[n++] = (uint8_t)z;
    put(b, out, n);
}

static uint64_t take_bytes(build_t *b, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | take(b);
    return v;
}

/* A string: byte < 0xf0 is its length; 0xf0-0xfd a two-byte length
 * follows; 0xfe a forged four-byte length with nothing after it; 0xff a
 * negative length. The content is copied from the recipe (zeros past its
 * end). */
static void put_string(build_t *b)
{
    unsigned c = take(b);
    size_t len;

    if (c == 0xfe) {
        put_long(b, (int64_t)take_bytes(b, 4));
        return;
    }
    if (c == 0xff) {
        put_long(b, -1);
        return;
    }
    len = c < 0xf0 ? c : (size_t)take_bytes(b, 2);
    put_long(b, (int64_t)len);
    for (size_t i = 0; i < len && b->n < BUILD_MAX; i++) {
        uint8_t ch = (uint8_t)take(b);
        put(b, &ch, 1);
    }
}

/* An array: a byte gives the number of blocks (0-3); each block has a
 * two-byte item count and a form byte (bit 0: negative count with its byte
 * size, bit 1: a wrong byte size), then its items. */
static void put_array(build_t *b)
{
    unsigned blocks = take(b) % 4;

    for (unsigned k = 0; k < blocks; k++) {
        size_t count = (size_t)take_bytes(b, 2);
        unsigned form = take(b);
        build_t items = {.p = b->p, .end = b->end};

        if (!(form & 1)) {
            put_long(b, (int64_t)count);
            for (size_t i = 0; i < count && b->n < BUILD_MAX; i++)
                put_string(b);
            continue;
        }
        /* The items first, to know their size. */
        for (size_t i = 0; i < count && items.n < BUILD_MAX; i++)
            put_string(&items);
        b->p = items.p;
        put_long(b, -(int64_t)count);
        put_long(b, (int64_t)items.n + ((form & 2) ? 1 : 0));
        put(b, items.buf, items.n);
        free(items.buf);
    }
    put_long(b, 0);
}

static void put_field(build_t *b, const rfield_t *f)
{
    if (f->nullable) {
        unsigned c = take(b);
        if (c == 0xff) { /* a branch the union does not have */
            put_long(b, 2);
            return;
        }
        put_long(b, c & 1);
        if (!(c & 1))
            return;
    }
    switch (f->kind) {
    case F_STRING: put_string(b); break;
    case F_INT: put_long(b, (int32_t)take_bytes(b, 4)); break;
    case F_LONG: put_long(b, (int64_t)take_bytes(b, 8)); break;
    case F_DOUBLE: {
        uint64_t bits = take_bytes(b, 8);
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(bits >> (8 * i));
        put(b, le, 8);
        break;
    }
    case F_BOOLEAN: {
        unsigned c = take(b);
        uint8_t v = c == 0xff ? 2 : (uint8_t)(c & 1);
        put(b, &v, 1);
        break;
    }
    case F_ARRAY: put_array(b); break;
    }
}

/* The message a recipe describes; *len its size. The caller frees it. */
static uint8_t *build(const uint8_t *data, size_t size, size_t *len)
{
    build_t b = {.p = data + 1, .end = data + size};
    const rschema_t *s = &schemas[data[0] % nschemas];
    uint8_t head[10] = {0xC3, 0x01};

    for (int i = 0; i < 8; i++)
        head[2 + i] = (uint8_t)(s->fingerprint >> (8 * i));
    put(&b, head, sizeof(head));
    for (size_t i = 0; i < s->nfields; i++)
        put_field(&b, &s->fields[i]);
    if (take(&b) == 0x5a) /* what is left, as trailing bytes */
        put(&b, b.p, (size_t)(b.end - b.p));
    *len = b.n;
    return b.buf;
}

static void check_message(const uint8_t *data, size_t size)
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
        return;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg;
    size_t len;

    if (!size || data[0] == 0xC3) {
        check_message(data, size);
        return 0;
    }
    load_schemas();
    msg = build(data, size, &len);
    check_message(msg, len);
    free(msg);
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

/* A recipe for schema i whose arrays (when set) hold `items` empty strings
 * in one block, every other field at its smallest value. */
static void add_recipe(size_t i, size_t items, void (*add)(const uint8_t *, size_t))
{
    uint8_t r[1024];
    size_t n = 0;
    static const size_t width[] = {[F_STRING] = 1, [F_INT] = 4, [F_LONG] = 8, [F_DOUBLE] = 8, [F_BOOLEAN] = 1};

    r[n++] = (uint8_t)i;
    for (size_t k = 0; k < schemas[i].nfields && n + 16 < sizeof(r); k++) {
        const rfield_t *f = &schemas[i].fields[k];
        if (f->nullable)
            r[n++] = f->kind == F_ARRAY; /* arrays set, the rest null */
        if (f->nullable && f->kind != F_ARRAY)
            continue;
        if (f->kind != F_ARRAY) {
            memset(r + n, 0, width[f->kind]);
            n += width[f->kind];
            continue;
        }
        r[n++] = 1; /* one block */
        r[n++] = (uint8_t)(items >> 8), r[n++] = (uint8_t)items;
        r[n++] = 0; /* positive count */
        /* The items are empty strings, a zero byte each; past the end of
         * the recipe every byte reads as zero anyway. */
        if (n + items > sizeof(r)) {
            add(r, n);
            return;
        }
        memset(r + n, 0, items);
        n += items;
    }
    add(r, n);
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t))
{
    const prime_registry_t *reg = fuzz_registry();
    prime_event_t *ev;

    fuzz_each_example(add_encoded, add);
    load_schemas();
    for (size_t i = 0; i < nschemas && i < 256; i++) {
        add_recipe(i, 0, add);
        add_recipe(i, 3, add);
        add_recipe(i, 5150, add); /* issue 16's shape, for every schema with an array */
    }
    /* Issue 16's message itself, raw: audio.file_uploaded with 5,150 empty
     * tags (5.5 KB). */
    if ((ev = prime_event_example(reg, "audio.file_uploaded", 0, NULL))) {
        for (int k = 0; k < 5150; k++)
            prime_event_append_string(ev, "tags", "", 0, NULL);
        add_encoded(ev, add);
        prime_event_free(ev);
    }
}
