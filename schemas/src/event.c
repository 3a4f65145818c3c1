#include "schemas_int.h"
#include "prime/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Single-object encoding header: marker C3 01 and an 8-byte fingerprint. */
#define SOE_HEADER 10

static const char *const kind_names[] = {
    [KIND_STRING] = "string", [KIND_INT] = "int", [KIND_LONG] = "long",
    [KIND_DOUBLE] = "double", [KIND_BOOLEAN] = "boolean", [KIND_STRING_ARRAY] = "array of strings",
};

int event_field(const prime_event_t *ev, size_t i, avro_value_t *out, bool *is_null)
{
    avro_value_t v;
    int disc;

    if (avro_value_get_by_index(&ev->value, i, &v, NULL))
        return -1;
    *is_null = false;
    if (!ev->type->fields[i].nullable) {
        *out = v;
        return 0;
    }
    if (avro_value_get_discriminant(&v, &disc))
        return -1;
    if (disc == 0) {
        *is_null = true;
        return 0;
    }
    return avro_value_get_current_branch(&v, out);
}

int event_field_for_write(prime_event_t *ev, size_t i, avro_value_t *out)
{
    avro_value_t v;

    ev->json_checked &= ~(1ULL << i);
    if (avro_value_get_by_index(&ev->value, i, &v, NULL))
        return -1;
    if (!ev->type->fields[i].nullable) {
        *out = v;
        return 0;
    }
    return avro_value_set_branch(&v, 1, out);
}

prime_event_t *prime_event_new(const prime_registry_t *reg, const char *type, prime_error_t *err)
{
    const prime_event_type_t *t = prime_registry_find(reg, type);
    prime_event_t *ev;
    avro_value_t fv, branch;

    if (!t) {
        prime_error_set(err, PRIME_ERR_UNKNOWN_TYPE, "type", "unknown event type '%s'", type ? type : "");
        return NULL;
    }
    ev = calloc(1, sizeof(*ev));
    if (!ev || avro_generic_value_new(t->iface, &ev->value)) {
        free(ev);
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    ev->type = t;
    /* Nullable fields start null (a fresh union has no branch selected). */
    for (size_t i = 0; i < t->nfields; i++) {
        if (!t->fields[i].nullable)
            continue;
        avro_value_get_by_index(&ev->value, i, &fv, NULL);
        avro_value_set_branch(&fv, 0, &branch);
        avro_value_set_null(&branch);
    }
    avro_value_get_by_index(&ev->value, 1, &fv, NULL);
    avro_value_set_string_len(&fv, t->name, strlen(t->name) + 1);
    return ev;
}

void prime_event_free(prime_event_t *ev)
{
    if (!ev)
        return;
    avro_value_decref(&ev->value);
    free(ev);
}

const prime_event_type_t *prime_event_type(const prime_event_t *ev)
{
    return ev->type;
}

/* Finds a field and checks it holds the kind the caller asks for. */
static int lookup(const prime_event_t *ev, const char *field, field_kind_t kind, prime_error_t *err)
{
    int i = ev ? prime_event_type_field_index(ev->type, field) : -1;

    if (i < 0) {
        prime_error_set(err, PRIME_ERR_ARG, field, "%s has no field '%s'", ev ? ev->type->name : "(null)",
                        field);
        return -1;
    }
    if (ev->type->fields[i].kind != kind) {
        prime_error_set(err, PRIME_ERR_ARG, field, "field is a %s, not a %s",
                        kind_names[ev->type->fields[i].kind], kind_names[kind]);
        return -1;
    }
    return i;
}

prime_errcode_t event_avro_failed(prime_error_t *err, const char *field)
{
    return prime_error_set(err, PRIME_ERR_NOMEM, field, "avro: %s", avro_strerror());
}

int event_store_string(const prime_event_t *ev, size_t i, avro_value_t *v, const char *text, size_t len)
{
    char canonical[PRIME_UUID_TEXT];

    if (ev->type->fields[i].check == CHECK_UUID && prime_uuid_valid(text, len)) {
        prime_uuid_canonical(text, canonical);
        text = canonical;
    }
    return avro_value_set_string_len(v, text, len + 1);
}

/* avro-c strings carry their terminator in the length, and the caller's
 * value need not have one: copy, terminate, store. */
static prime_errcode_t set_text(const prime_event_t *ev, size_t i, avro_value_t *v, const char *value, size_t len,
                                const char *field, prime_error_t *err)
{
    char *copy = malloc(len + 1);
    int rc;

    if (!copy)
        return prime_error_set(err, PRIME_ERR_NOMEM, field, "out of memory");
    memcpy(copy, value, len);
    copy[len] = '\0';
    rc = event_store_string(ev, i, v, copy, len);
    free(copy);
    return rc ? event_avro_failed(err, field) : PRIME_OK;
}

/* A decoded event straight from avro-c: its UUID fields as written, put
 * in canonical form. */
static prime_errcode_t canonicalize_uuids(prime_event_t *ev, prime_error_t *err)
{
    for (size_t i = 0; i < ev->type->nfields; i++) {
        avro_value_t v;
        const char *s = NULL;
        size_t size = 0;
        bool is_null;

        if (ev->type->fields[i].check != CHECK_UUID || ev->type->fields[i].kind != KIND_STRING)
            continue;
        if (event_field(ev, i, &v, &is_null) || (!is_null && avro_value_get_string(&v, &s, &size)))
            return event_avro_failed(err, ev->type->fields[i].name);
        if (is_null || size != PRIME_UUID_TEXT || !prime_uuid_valid(s, size - 1))
            continue;
        for (size_t k = 0; k < size - 1; k++)
            if (s[k] >= 'A' && s[k] <= 'F') {
                char copy[PRIME_UUID_TEXT];
                memcpy(copy, s, sizeof(copy));
                if (event_store_string(ev, i, &v, copy, size - 1))
                    return event_avro_failed(err, ev->type->fields[i].name);
                break;
            }
    }
    return PRIME_OK;
}

prime_errcode_t prime_event_set_string(prime_event_t *ev, const char *field, const char *value, size_t len,
                                       prime_error_t *err)
{
    avro_value_t v;
    int i = lookup(ev, field, KIND_STRING, err);

    if (i < 0)
        return PRIME_ERR_ARG;
    if (event_field_for_write(ev, (size_t)i, &v))
        return event_avro_failed(err, field);
    return set_text(ev, (size_t)i, &v, value, len, field, err);
}

prime_errcode_t prime_event_append_string(prime_event_t *ev, const char *field, const char *value, size_t len,
                                          prime_error_t *err)
{
    avro_value_t v, item;
    int i = lookup(ev, field, KIND_STRING_ARRAY, err);

    if (i < 0)
        return PRIME_ERR_ARG;
    if (event_field_for_write(ev, (size_t)i, &v) || avro_value_append(&v, &item, NULL))
        return event_avro_failed(err, field);
    return set_text(ev, (size_t)i, &item, value, len, field, err);
}

#define SETTER(fn, ctype, kind, avro_set)                                                      \
    prime_errcode_t fn(prime_event_t *ev, const char *field, ctype value, prime_error_t *err) \
    {                                                                                          \
        avro_value_t v;                                                                        \
        int i = lookup(ev, field, kind, err);                                                  \
        if (i < 0)                                                                             \
            return PRIME_ERR_ARG;                                                              \
        if (event_field_for_write(ev, (size_t)i, &v) || avro_set(&v, value))                   \
            return event_avro_failed(err, field);                                                    \
        return PRIME_OK;                                                                       \
    }

SETTER(prime_event_set_long, int64_t, KIND_LONG, avro_value_set_long)
SETTER(prime_event_set_int, int32_t, KIND_INT, avro_value_set_int)
SETTER(prime_event_set_double, double, KIND_DOUBLE, avro_value_set_double)

prime_errcode_t prime_event_set_bool(prime_event_t *ev, const char *field, bool value, prime_error_t *err)
{
    avro_value_t v;
    int i = lookup(ev, field, KIND_BOOLEAN, err);
    if (i < 0)
        return PRIME_ERR_ARG;
    if (event_field_for_write(ev, (size_t)i, &v) || avro_value_set_boolean(&v, value ? 1 : 0))
        return event_avro_failed(err, field);
    return PRIME_OK;
}

prime_errcode_t prime_event_set_null(prime_event_t *ev, const char *field, prime_error_t *err)
{
    avro_value_t v, branch;
    int i = ev ? prime_event_type_field_index(ev->type, field) : -1;

    if (i < 0)
        return prime_error_set(err, PRIME_ERR_ARG, field, "no such field");
    if (!ev->type->fields[i].nullable)
        return prime_error_set(err, PRIME_ERR_INVALID, field, "field is required and cannot be null");
    ev->json_checked &= ~(1ULL << i);
    avro_value_get_by_index(&ev->value, (size_t)i, &v, NULL);
    if (avro_value_set_branch(&v, 0, &branch) || avro_value_set_null(&branch))
        return event_avro_failed(err, field);
    return PRIME_OK;
}

/* Shared head of the getters: the field's value, or is_null. */
static int get_value(const prime_event_t *ev, const char *field, field_kind_t kind, avro_value_t *v,
                     bool *is_null, prime_error_t *err)
{
    bool null;
    int i = lookup(ev, field, kind, err);

    if (i < 0)
        return PRIME_ERR_ARG;
    if (event_field(ev, (size_t)i, v, &null))
        return event_avro_failed(err, field);
    if (is_null)
        *is_null = null;
    return null ? -1 : 0;
}

const char *prime_event_string(const prime_event_t *ev, const char *field)
{
    const char *v = NULL;
    prime_event_get_string(ev, field, &v, NULL, NULL);
    return v;
}

prime_errcode_t prime_event_get_string(const prime_event_t *ev, const char *field, const char **value,
                                       size_t *len, prime_error_t *err)
{
    avro_value_t v;
    size_t size = 0;
    int rc = get_value(ev, field, KIND_STRING, &v, NULL, err);

    *value = NULL;
    if (len)
        *len = 0;
    if (rc > 0)
        return (prime_errcode_t)rc;
    if (rc < 0)
        return PRIME_OK;
    if (avro_value_get_string(&v, value, &size))
        return event_avro_failed(err, field);
    if (len)
        *len = size ? size - 1 : 0;
    return PRIME_OK;
}

#define GETTER(fn, ctype, avrotype, kind, avro_get)                                            \
    prime_errcode_t fn(const prime_event_t *ev, const char *field, ctype *value, bool *is_null, \
                       prime_error_t *err)                                                     \
    {                                                                                          \
        avro_value_t v;                                                                        \
        avrotype tmp = 0;                                                                      \
        int rc = get_value(ev, field, kind, &v, is_null, err);                                 \
        if (rc > 0)                                                                            \
            return (prime_errcode_t)rc;                                                        \
        if (rc < 0)                                                                            \
            return PRIME_OK;                                                                   \
        if (avro_get(&v, &tmp))                                                                \
            return event_avro_failed(err, field);                                                    \
        *value = (ctype)tmp;                                                                   \
        return PRIME_OK;                                                                       \
    }

GETTER(prime_event_get_long, int64_t, int64_t, KIND_LONG, avro_value_get_long)
GETTER(prime_event_get_int, int32_t, int32_t, KIND_INT, avro_value_get_int)
GETTER(prime_event_get_double, double, double, KIND_DOUBLE, avro_value_get_double)
GETTER(prime_event_get_bool, bool, int, KIND_BOOLEAN, avro_value_get_boolean)
GETTER(prime_event_get_array_size, size_t, size_t, KIND_STRING_ARRAY, avro_value_get_size)

prime_errcode_t prime_event_get_array_string(const prime_event_t *ev, const char *field, size_t i,
                                             const char **value, size_t *len, prime_error_t *err)
{
    avro_value_t v, item;
    size_t n = 0, size = 0;
    int rc = get_value(ev, field, KIND_STRING_ARRAY, &v, NULL, err);

    *value = NULL;
    if (rc > 0)
        return (prime_errcode_t)rc;
    if (rc < 0 || avro_value_get_size(&v, &n) || i >= n)
        return prime_error_set(err, PRIME_ERR_ARG, field, "no element %zu", i);
    if (avro_value_get_by_index(&v, i, &item, NULL) || avro_value_get_string(&item, value, &size))
        return event_avro_failed(err, field);
    if (len)
        *len = size ? size - 1 : 0;
    return PRIME_OK;
}

/* Encoding walks the value once, into a per-thread scratch buffer sized to
 * the message limit, then copies out exactly what was written
 * (avro_value_sizeof() first would be a second walk). The buffer is freed
 * when its thread exits. */
typedef struct scratch {
    size_t size;
    char data[];
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, free);
}

static scratch_t *scratch_get(size_t size)
{
    scratch_t *sc;

    pthread_once(&scratch_once, scratch_key_init);
    sc = pthread_getspecific(scratch_key);
    if (sc && sc->size >= size)
        return sc;
    free(sc);
    if ((sc = malloc(sizeof(*sc) + size)))
        sc->size = size;
    pthread_setspecific(scratch_key, sc);
    return sc;
}

prime_errcode_t prime_event_encode(const prime_event_t *ev, void **out, size_t *len, prime_error_t *err)
{
    const prime_limits_t *limits = &ev->type->reg->limits;
    scratch_t *sc = scratch_get(limits->max_message_bytes + 1);
    uint64_t fp = ev->type->fingerprint;
    avro_writer_t w;
    int64_t body;
    unsigned char *buf;
    int rc;

    *out = NULL;
    if (!sc)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    /* One byte more than a message may hold: filling it means too large. */
    w = avro_writer_memory(sc->data + SOE_HEADER, (int64_t)(limits->max_message_bytes + 1 - SOE_HEADER));
    rc = avro_value_write(w, (avro_value_t *)&ev->value);
    body = avro_writer_tell(w);
    avro_writer_free(w);
    if (rc == ENOSPC || (!rc && (size_t)body + SOE_HEADER > limits->max_message_bytes))
        return prime_error_set(err, PRIME_ERR_TOO_LARGE, NULL, "encoded %s is over the %zu-byte message limit",
                               ev->type->name, limits->max_message_bytes);
    if (rc)
        return prime_error_set(err, PRIME_ERR_INVALID, NULL, "cannot encode %s: %s", ev->type->name,
                               avro_strerror());
    if (!(buf = malloc((size_t)body + SOE_HEADER)))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    buf[0] = 0xC3;
    buf[1] = 0x01;
    for (int i = 0; i < 8; i++)
        buf[2 + i] = (unsigned char)(fp >> (8 * i));
    memcpy(buf + SOE_HEADER, sc->data + SOE_HEADER, (size_t)body);
    *out = buf;
    *len = (size_t)body + SOE_HEADER;
    return PRIME_OK;
}

prime_errcode_t prime_message_fingerprint(const void *data, size_t len, uint64_t *fingerprint,
                                          prime_error_t *err)
{
    const unsigned char *p = data;

    if (len < SOE_HEADER)
        return prime_error_set(err, PRIME_ERR_DECODE, NULL,
                               "truncated message: %zu bytes, a single-object encoded event has at least %d",
                               len, SOE_HEADER);
    if (p[0] != 0xC3 || p[1] != 0x01)
        return prime_error_set(err, PRIME_ERR_DECODE, NULL,
                               "not Avro single-object encoding: expected marker C3 01, found %02X %02X", p[0],
                               p[1]);
    *fingerprint = 0;
    for (int i = 7; i >= 0; i--)
        *fingerprint = (*fingerprint << 8) | p[2 + i];
    return PRIME_OK;
}

prime_errcode_t prime_event_decode(const prime_registry_t *reg, const void *data, size_t len,
                                   prime_event_t **out, prime_error_t *err)
{
    const writer_schema_t *w;
    const char *body = (const char *)data + SOE_HEADER;
    prime_event_t *ev;
    avro_reader_t r;
    avro_value_t written;
    uint64_t fp = 0;
    prime_errcode_t code = PRIME_OK;
    char extra;
    bool have_written = false;
    int rc;

    *out = NULL;
    if (len > reg->limits.max_message_bytes)
        return prime_error_set(err, PRIME_ERR_TOO_LARGE, NULL,
                               "message is %zu bytes, over the %zu-byte limit", len,
                               reg->limits.max_message_bytes);
    if ((code = prime_message_fingerprint(data, len, &fp, err)))
        return code;
    if (!(w = registry_find_writer(reg, fp)))
        return prime_error_set(err, PRIME_ERR_UNKNOWN_TYPE, NULL,
                               "unknown writer schema fingerprint %016llx (%zu schemas known)",
                               (unsigned long long)fp, reg->nwriters);
    /* Structure first: avro-c allocates from the lengths and counts it
     * reads before it knows the bytes are there (scan.c says why). */
    if ((code = w->iface ? body_scan(w->type->name, w->fields, w->nfields, body, len - SOE_HEADER, err)
                         : body_scan(w->type->name, w->type->fields, w->type->nfields, body, len - SOE_HEADER,
                                     err)))
        return code;
    if (!(ev = prime_event_new(reg, w->type->name, err)))
        return err ? err->code : PRIME_ERR_NOMEM;

    r = avro_reader_memory(body, (int64_t)(len - SOE_HEADER));
    decode_track_begin(len);
    if (!w->iface) {
        rc = avro_value_read(r, &ev->value);
    } else if ((rc = avro_generic_value_new(w->iface, &written)) == 0) {
        have_written = true;
        rc = avro_value_read(r, &written);
    }
    if (rc) {
        code = prime_error_set(err, PRIME_ERR_DECODE, NULL, "malformed or truncated %s body: %s",
                               w->type->name, w->iface && !have_written ? "out of memory" : avro_strerror());
    } else if (avro_read(r, &extra, 1) == 0) {
        /* avro_reader_is_eof() only works for file readers: probe instead. */
        code = prime_error_set(err, PRIME_ERR_DECODE, NULL,
                               "%s body is followed by trailing bytes", w->type->name);
    }
    avro_reader_free(r);
    if (code) {
        if (decode_track_torn()) {
            /* An array's storage is NULL with its items still counted:
             * walking the values would crash. What the decode allocated
             * is freed below; the event's empty skeleton is abandoned. */
            free(ev);
        } else {
            /* Free the partial values first, so that what the tracker still
             * holds is only what avro-c orphaned. */
            if (have_written)
                avro_value_decref(&written);
            prime_event_free(ev);
        }
        decode_track_end(true);
        return code;
    }
    decode_track_end(false);
    if (w->iface) {
        /* Through the setters, which store canonical UUIDs. */
        code = resolve_into(w, &written, ev, err);
        avro_value_decref(&written);
    } else {
        code = canonicalize_uuids(ev, err);
    }
    if (code) {
        prime_event_free(ev);
        return code;
    }
    *out = ev;
    return PRIME_OK;
}
